"""Namespace: the bulk paths give the names one create() per text gives, in order."""
from __future__ import annotations

from hypothesis import given, settings, strategies as st

from graphc.names import Namespace

LABELS = st.lists(st.one_of(st.sampled_from(["w", "x", "v3", "L0.N3.w1", "L0.N3.w1", "_", "3x", "for", "e", "",
                                             "a\x00b", "é", "w" * 50, "w_1", "inputs"]),
                            st.text(max_size=8)), max_size=12)


@settings(max_examples=300)
@given(LABELS, st.sampled_from(["x", "p"]))
def test_create_all_names_as_create_does_one_by_one(texts, fallback):
    one_by_one, bulk = Namespace({"inputs", "e"}), Namespace({"inputs", "e"})
    assert bulk.create_all(texts, fallback) == [one_by_one.create(t, fallback) for t in texts]
    assert bulk.create("w") == one_by_one.create("w")  # and the same names are taken after


@settings(max_examples=200)
@given(st.lists(st.sampled_from(["v1", "v2", "v10", "for", "x", "v2_1"]), max_size=8))
def test_create_plain_names_as_create_does_one_by_one(texts):
    one_by_one, bulk = Namespace({"x"}), Namespace({"x"})
    assert bulk.create_plain(texts) == [one_by_one.create(t) for t in texts]
