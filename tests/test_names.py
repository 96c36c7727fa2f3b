"""Namespace: the bulk paths give the names one create() per text gives, in order."""
from __future__ import annotations

from hypothesis import given, settings, strategies as st

import graphc
from graphc.names import Namespace, sanitize, sanitize_all

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


@settings(max_examples=300)
@given(LABELS, st.sampled_from(["x", "p"]))
def test_sanitize_all_gives_what_sanitize_gives_each(texts, fallback):
    assert sanitize_all(texts, fallback) == [sanitize(text, fallback) for text in texts]


def test_sanitize_all_of_many_ascii_labels_with_one_to_mend():
    texts = [f"L0.N{j}.w{k}" for j in range(30) for k in range(30)]
    for bad in ("", "7up", "w.", "_w", "..", "w" * 41):
        assert sanitize_all(texts + [bad], "p") == [sanitize(text, "p") for text in texts + [bad]]


def test_a_label_made_a_name_does_not_take_the_users_own():
    """``é`` becomes the fallback ``x``: the user's own ``x``, written after it, keeps its name."""
    graph = graphc.trace(lambda é, x: é + 3 * x, 0.7, -0.4)
    assert [graph.names[i] for i in graph.inputs] == ["x_1", "x"]


def test_names_of_one_base_take_the_least_free_suffix_in_turn():
    """The search resumes where the last name of its base stopped (it began at 1 each time:
    quadratic, 89 s for 70,000 params labelled alike)."""
    space = Namespace()
    space.create("w_3")
    assert [space.create("w") for _ in range(6)] == ["w", "w_1", "w_2", "w_4", "w_5", "w_6"]
    assert space.create_plain(["w"] * 3 + ["b"]) == ["w_7", "w_8", "w_9", "b"]
    assert len(set(space.create("w") for _ in range(50_000))) == 50_000
