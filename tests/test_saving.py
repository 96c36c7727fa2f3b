"""state_dict / load_state_dict (graphc.nn) and save / load (graphc.saving): layouts, strictness,
bit-for-bit round trips, and files that are garbage, truncated or hostile."""
from __future__ import annotations

import io
import json
import math
import os
import pickle
import random
import re
import struct
import zipfile

import numpy as np
import pytest

import graphc
from graphc import ArgumentError, DataError, GraphcError, LoadError, ShapeError, Value
from graphc.nn import MLP, Layer, Module, Neuron
from conftest import ROOT


def params(model: Module) -> list[float]:
    return [p.data for p in model.parameters()]


def bits(model: Module) -> list[bytes]:
    return [struct.pack("<d", p.data) for p in model.parameters()]


# -- state_dict ------------------------------------------------------------------------

def test_mlp_state_dict_is_pytorch_linear_layout():
    random.seed(1)
    model = MLP(3, [4, 2])
    state = model.state_dict()
    assert list(state) == ["layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias"]
    assert [a.shape for a in state.values()] == [(4, 3), (4,), (2, 4), (2,)]
    assert all(a.dtype == np.float64 for a in state.values())
    for i, layer in enumerate(model.layers):
        assert state[f"layers.{i}.weight"].tolist() == [[w.data for w in n.w] for n in layer.neurons]
        assert state[f"layers.{i}.bias"].tolist() == [n.b.data for n in layer.neurons]


def test_the_state_dict_computes_the_model_as_torch_linear_would():
    """An independent forward pass on the arrays: relu(W @ x + b), then W @ h + b."""
    random.seed(2)
    model = MLP(3, [5, 2])
    state = model.state_dict()
    x = np.array([0.5, -1.5, 2.0])
    hidden = np.maximum(state["layers.0.weight"] @ x + state["layers.0.bias"], 0)
    expected = state["layers.1.weight"] @ hidden + state["layers.1.bias"]
    np.testing.assert_allclose([v.data for v in model(x.tolist())], expected, rtol=1e-13, atol=1e-13)


def test_neuron_and_layer_keys():
    neuron = Neuron(3, w=[1.0, 2.0, 3.0], b=4.0)
    assert {k: v.tolist() for k, v in neuron.state_dict().items()} == {"weight": [1.0, 2.0, 3.0], "bias": 4.0}
    assert neuron.state_dict()["bias"].shape == ()
    layer = Layer(2, 3, init=lambda nin, nout: (np.arange(6.0).reshape(2, 3), np.arange(3.0)))
    assert layer.state_dict()["weight"].tolist() == [[0.0, 3.0], [1.0, 4.0], [2.0, 5.0]]


def test_state_dict_returns_copies():
    model = MLP(2, [2])
    before = params(model)
    model.state_dict()["layers.0.weight"][:] = 7.0
    assert params(model) == before


class Block(Module):
    """A block holding the next: a chain of Modules as deep as a user builds one."""

    def __init__(self, inner: "Block | None") -> None:
        self.w, self.inner = Value(0.5), inner

    def parameters(self) -> list[Value]:
        params, block = [], self
        while block is not None:
            params.append(block.w)
            block = block.inner
        return params


def test_a_chain_of_modules_deeper_than_the_recursion_limit_has_its_state_dict():
    """A chain of 3,000 Modules each holding the next raised RecursionError from state_dict()
    (an outside hunt): the attributes are walked with a stack, in the same order."""
    model = None
    for _ in range(3000):
        model = Block(model)
    state = model.state_dict()
    assert list(state) == ["w", *(f"{'inner.' * k}w" for k in range(1, 3000))]
    model.load_state_dict({key: np.array(float(k)) for k, key in enumerate(state)})
    assert [p.data for p in model.parameters()] == [float(k) for k in range(3000)]


class Custom(Module):
    """A Module of the user's own: a nested MLP, a Value param, a list of Value params, a constant."""

    def __init__(self) -> None:
        self.body = MLP(2, [2])
        self.scale = Value(2.0)
        self.offsets = [Value(3.0), Value(4.0)]
        self.constant = Value(9.0)  # not a param: not state
        self.me = self  # a cycle the walk must survive

    def parameters(self) -> list[Value]:
        return self.body.parameters() + [self.scale] + self.offsets


def test_a_custom_module_is_named_by_its_attributes():
    model = Custom()
    state = model.state_dict()
    assert list(state) == ["body.layers.0.weight", "body.layers.0.bias", "scale", "offsets"]
    assert state["scale"].tolist() == 2.0 and state["offsets"].tolist() == [3.0, 4.0]
    other = Custom()
    other.load_state_dict(state)
    assert params(other) == params(model)


def test_a_param_no_attribute_reaches_is_an_error():
    class Hidden(Module):
        def __init__(self) -> None:
            self.store = {"w": Value(1.0)}  # dicts are not walked

        def parameters(self) -> list[Value]:
            return [self.store["w"]]
    with pytest.raises(GraphcError, match="reaches"):
        Hidden().state_dict()


# -- load_state_dict ------------------------------------------------------------------

def test_load_state_dict_round_trips_bit_for_bit_and_outputs_agree():
    random.seed(3)
    source = MLP(3, [4, 4, 1])
    source.parameters()[0].data = -0.0
    random.seed(4)
    target = MLP(3, [4, 4, 1])
    assert target.load_state_dict(source.state_dict()) == ([], [])
    assert bits(target) == bits(source)
    assert target([0.1, -0.2, 0.3]).data == source([0.1, -0.2, 0.3]).data


def test_load_state_dict_accepts_lists_and_ints():
    model = MLP(2, [1])
    model.load_state_dict({"layers.0.weight": [[1, 2]], "layers.0.bias": [3]})
    assert params(model) == [1.0, 2.0, 3.0] and all(type(p.data) is float for p in model.parameters())


def test_load_state_dict_accepts_numbers_held_in_an_object_array():
    model = MLP(2, [1])
    model.load_state_dict({"layers.0.weight": np.array([[1, 2.5]], dtype=object),
                           "layers.0.bias": np.array([np.float32(3)], dtype=object)})
    assert params(model) == [1.0, 2.5, 3.0] and all(type(p.data) is float for p in model.parameters())


@pytest.mark.parametrize("change, error, match", [
    (lambda s: s.pop("layers.1.bias"), LoadError, "missing keys layers.1.bias"),
    (lambda s: s.update(extra=np.zeros(1)), LoadError, "unexpected keys 'extra'"),
    (lambda s: s.update({"layers.1.weight": np.zeros((3, 1))}), ShapeError,
     r"layers.1.weight must have shape \(1, 3\); got \(3, 1\)"),
    (lambda s: s.update({"layers.1.bias": np.array(["a"])}), ArgumentError,
     "layers.1.bias must be numbers .*; got ndarray of dtype <U1"),
    (lambda s: s.update({"layers.1.bias": [object()]}), ArgumentError, "must be numbers .*; got list of dtype object"),
    (lambda s: s.update({"layers.1.bias": np.array([None], dtype=object)}), ArgumentError, "dtype object"),
    (lambda s: s.update({"layers.1.bias": np.array([True], dtype=object)}), ArgumentError, "dtype object"),
    (lambda s: s.update({"layers.1.bias": [10 ** 400]}), ArgumentError, "does not fit in a float"),
    (lambda s: s.update({"layers.1.bias": np.array([np.longdouble("1e400")])}), DataError,
     "layers.1.bias: expected real numbers that fit in a float"),  # found by an outside hunt: it loaded inf
    (lambda s: s.update({"layers.1.bias": np.ma.masked_array([1.0], mask=[True])}), ArgumentError,
     "layers.1.bias: a masked array with masked entries"),  # it loaded the number under the mask
    (lambda s: s.update({"layers.1.bias": [[1.0], [2.0, 3.0]]}), ArgumentError, "must be numbers"),
    (lambda s: s.update({"layers.1.bias": np.array([True])}), ArgumentError, "must be numbers"),
])
def test_a_mismatched_state_raises_and_changes_nothing(change, error, match):
    random.seed(5)
    model = MLP(2, [3, 1])
    state = {key: value + 1.0 for key, value in model.state_dict().items()}
    change(state)
    before = bits(model)
    with pytest.raises(error, match=match):
        model.load_state_dict(state)
    assert bits(model) == before  # layers.0 was fine, and still nothing changed


def test_load_state_dict_needs_a_mapping():
    with pytest.raises(ArgumentError, match="mapping"):
        MLP(2, [1]).load_state_dict([("layers.0.weight", [[1.0, 2.0]])])


def test_non_strict_loads_the_shared_keys_and_reports_the_rest():
    model = MLP(2, [1])
    result = model.load_state_dict({"layers.0.bias": [5.0], "other": 1}, strict=False)
    assert result.missing_keys == ["layers.0.weight"] and result.unexpected_keys == ["other"]
    assert model.parameters()[-1].data == 5.0


# -- save and load --------------------------------------------------------------------

SPECIALS = [math.inf, -math.inf, math.nan, -0.0, 5e-324, 1.7976931348623157e308]


@pytest.mark.parametrize("build", [
    lambda: MLP(3, [4, 4, 1]), lambda: MLP(2, [3, 2], activation="tanh"), lambda: MLP(1, [1]),
    lambda: Layer(3, 2), lambda: Layer(2, 1, nonlin=False, activation="sigmoid"),
    lambda: Neuron(4), lambda: Neuron(0, nonlin=False), lambda: Neuron(2, activation="identity"),
])
def test_save_load_round_trips_bit_for_bit(tmp_path, build):
    random.seed(6)
    model = build()
    for p, special in zip(model.parameters(), SPECIALS):
        p.data = special
    graphc.save(model, tmp_path / "model.npz")
    state = random.getstate()
    loaded = graphc.load(tmp_path / "model.npz")
    assert random.getstate() == state  # rebuilding draws no random numbers
    assert type(loaded) is type(model) and repr(loaded) == repr(model)
    assert bits(loaded) == bits(model)


def test_a_loaded_model_computes_what_the_saved_one_did(tmp_path):
    random.seed(7)
    model = MLP(3, [8, 8, 2], activation="tanh")
    graphc.save(model, tmp_path / "m.npz")
    loaded = graphc.load(tmp_path / "m.npz")
    X = np.random.default_rng(0).normal(size=(20, 3))
    assert np.array_equal(graphc.compile(loaded)(X), graphc.compile(model)(X))
    assert [v.data for v in loaded(X[0].tolist())] == [v.data for v in model(X[0].tolist())]


def test_the_file_is_a_plain_npz_written_where_asked(tmp_path):
    model = MLP(2, [3, 1])
    path = tmp_path / "model.weights"  # no .npz added, unlike np.savez(path)
    graphc.save(model, str(path))
    assert [p.name for p in tmp_path.iterdir()] == ["model.weights"]
    with np.load(path, allow_pickle=False) as npz:
        header = json.loads(str(npz["__graphc__"]))
        assert header == {"format": "graphc.save", "version": 1, "class": "MLP",
                          "config": {"nin": 2, "activation": "relu", "nouts": [3, 1]}}
        assert np.array_equal(npz["layers.0.weight"], model.state_dict()["layers.0.weight"])


def test_save_refuses_what_it_cannot_rebuild(tmp_path):
    with pytest.raises(ArgumentError, match="MLP, a Layer or a Neuron; got Custom"):
        graphc.save(Custom(), tmp_path / "c.npz")
    changed = MLP(2, [3, 1])
    changed.layers[0].neurons[1].activation = "tanh"
    with pytest.raises(ArgumentError, match="changed after it was built"):
        graphc.save(changed, tmp_path / "m.npz")
    holding = MLP(2, [2, 1])  # a subclass's repr is its base's: it was saved, and loaded as the base

    class GainLayer(Layer):
        def __call__(self, x):
            return [o * 2.0 for o in super().__call__(x)]
    holding.layers[0] = GainLayer(2, 2)
    with pytest.raises(ArgumentError, match="this MLP holds a GainLayer"):
        graphc.save(holding, tmp_path / "h.npz")
    tied = MLP(2, [2, 1])  # saved, and loaded with one more param, untied (an outside hunt)
    tied.layers[1].neurons[0].w[0] = tied.layers[0].neurons[0].w[0]
    with pytest.raises(ArgumentError, match=r"one param in several places \(tied weights\)"):
        graphc.save(tied, tmp_path / "t.npz")
    computed = Neuron(2)
    computed.w[1] = computed.w[0] * 2.0
    with pytest.raises(ArgumentError, match="a computed Value as a param"):
        graphc.save(computed, tmp_path / "v.npz")
    assert list(tmp_path.iterdir()) == []  # and no file, not even a temporary one


# -- files that are not what save writes ----------------------------------------------

def npz_bytes(arrays: dict, allow_pickle: bool = False) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, allow_pickle=allow_pickle, **arrays)
    return buffer.getvalue()


def saved(tmp_path, header_change=None, state_change=None) -> dict:
    """The arrays of a saved MLP(2, [3, 1]), changed."""
    graphc.save(MLP(2, [3, 1]), tmp_path / "good.npz")
    with np.load(tmp_path / "good.npz") as npz:
        arrays = dict(npz)
    header = json.loads(str(arrays["__graphc__"]))
    if header_change:
        header_change(header)
    arrays["__graphc__"] = np.array(json.dumps(header))
    if state_change:
        state_change(arrays)
    return arrays


def load_bytes(tmp_path, data: bytes):
    path = tmp_path / "bad.npz"
    path.write_bytes(data)
    return graphc.load(path)


TRIPPED = []


class Tripwire:
    """Unpickling it records the fact: a load must never get that far."""

    def __reduce__(self):
        return TRIPPED.append, ("unpickled",)


@pytest.mark.parametrize("make, match", [
    (lambda t: b"", "not a file graphc.save wrote"),
    (lambda t: b"garbage" * 100, "not a file graphc.save wrote"),
    (lambda t: pickle.dumps(Tripwire()), "not a file graphc.save wrote"),
    (lambda t: npz_bytes({"x": np.zeros(2)}), "expected a __graphc__ member"),
    (lambda t: npz_bytes(saved(t, lambda h: h.update({"class": "Compiled"}))), "unknown class 'Compiled'"),
    (lambda t: npz_bytes(saved(t, lambda h: h.update({"class": "os.system"}))), "unknown class"),
    (lambda t: npz_bytes(saved(t, lambda h: h.update(format="other"))), "format mark"),
    (lambda t: npz_bytes(saved(t, lambda h: h.update(version=2))), "version 2"),
    (lambda t: npz_bytes(saved(t, lambda h: h.update(version=True))), "version True"),  # == 1 (outside hunt)
    (lambda t: npz_bytes(saved(t, lambda h: h.update(version=1.0))), "version 1.0"),
    (lambda t: npz_bytes(saved(t, lambda h: h["config"].update(nin="2"))), "arguments must be"),
    (lambda t: npz_bytes(saved(t, lambda h: h["config"].update(nin=True))), "arguments must be"),
    (lambda t: npz_bytes(saved(t, lambda h: h["config"].update(nouts=[3.0, 1]))), "arguments must be"),
    (lambda t: npz_bytes(saved(t, lambda h: h["config"].update(extra=1))), "arguments must be"),
    (lambda t: npz_bytes(saved(t, lambda h: h["config"].update(activation="system"))), "do not build one"),
    (lambda t: npz_bytes(saved(t, lambda h: h["config"].update(nouts=[3, 0]))), "do not build one"),
    (lambda t: npz_bytes(saved(t, lambda h: h["config"].update(nouts=[10 ** 9, 1]))), "over max_params"),
    (lambda t: npz_bytes(saved(t, lambda h: h["config"].update(nouts=[10 ** 400]))), "over max_params"),
    (lambda t: npz_bytes(saved(t, lambda h: h["config"].update(nouts=[4, 1]))), r"expected float64 of shape \(4, 2\)"),
    (lambda t: npz_bytes(saved(t, state_change=lambda a: a.update(extra=np.zeros(1)))), "has members"),
    (lambda t: npz_bytes(saved(t, state_change=lambda a: a.pop("layers.1.bias"))), "has members"),
    (lambda t: npz_bytes(saved(t, state_change=lambda a: a.update({"layers.1.weight": np.zeros((3, 1))}))),
     r"layers.1.weight: expected float64 of shape \(1, 3\)"),
    (lambda t: npz_bytes(saved(t, state_change=lambda a: a.update({"layers.1.weight": np.zeros((1, 3), "f4")}))),
     "expected float64"),
    (lambda t: npz_bytes(saved(t, state_change=lambda a: a.update({"layers.1.bias": np.array([Tripwire()])})),
                         allow_pickle=True), "expected float64"),
    (lambda t: npz_bytes(saved(t, state_change=lambda a: a.update(__graphc__=np.array([Tripwire()]))),
                         allow_pickle=True), "expected a JSON text"),
    (lambda t: npz_bytes(saved(t, state_change=lambda a: a.update(__graphc__=np.array("{not json")))), "not JSON"),
    (lambda t: npz_bytes(saved(t, state_change=lambda a: a.update(__graphc__=np.array("[1]")))), "format mark"),
])
def test_a_bad_file_raises_a_load_error(tmp_path, make, match):
    with pytest.raises(LoadError, match=match) as caught:
        load_bytes(tmp_path, make(tmp_path))
    assert isinstance(caught.value, GraphcError) and isinstance(caught.value, ValueError)
    assert TRIPPED == []


def with_member(arrays: dict, name: str, raw: bytes) -> bytes:
    """An npz of ``arrays`` whose member ``name`` is replaced by the bytes ``raw``."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for key, value in arrays.items():
            member = io.BytesIO()
            np.save(member, value)
            archive.writestr(f"{key}.npy", raw if key == name else member.getvalue())
    return buffer.getvalue()


def npy_header(shape: tuple, descr: str = "<f8") -> bytes:
    member = io.BytesIO()
    np.lib.format.write_array_header_1_0(member, {"descr": descr, "fortran_order": False, "shape": shape})
    return member.getvalue()


def test_a_huge_claimed_array_is_refused_before_its_data_is_read(tmp_path):
    arrays = saved(tmp_path)
    data = with_member(arrays, "layers.0.weight", npy_header((10 ** 12, 10 ** 6)) + b"\0" * 48)
    with pytest.raises(LoadError, match=r"expected float64 of shape \(3, 2\); found float64 of shape"):
        load_bytes(tmp_path, data)


def test_a_member_with_too_little_or_too_much_data_is_refused(tmp_path):
    arrays = saved(tmp_path)
    for raw in [npy_header((3, 2)) + b"\0" * 47, npy_header((3, 2)) + b"\0" * 49]:
        with pytest.raises(LoadError, match="expected 48 bytes of data"):
            load_bytes(tmp_path, with_member(arrays, "layers.0.weight", raw))


def test_duplicate_members_are_refused(tmp_path):
    arrays = saved(tmp_path)
    buffer = io.BytesIO(npz_bytes(arrays))
    with zipfile.ZipFile(buffer, "a") as archive, pytest.warns(UserWarning, match="Duplicate name"):
        archive.writestr("layers.0.bias.npy", b"x")
    with pytest.raises(LoadError, match="no duplicates"):
        load_bytes(tmp_path, buffer.getvalue())


def test_every_truncation_of_a_good_file_is_refused(tmp_path):
    graphc.save(MLP(2, [3, 1]), tmp_path / "good.npz")
    good = (tmp_path / "good.npz").read_bytes()
    for length in range(0, len(good), 7):
        with pytest.raises(LoadError):
            load_bytes(tmp_path, good[:length])


def test_a_corrupted_byte_is_refused_or_harmless(tmp_path):
    """Flipping any byte gives a LoadError or (a byte the zip does not check) the same model."""
    model = MLP(2, [2, 1])
    graphc.save(model, tmp_path / "good.npz")
    good = (tmp_path / "good.npz").read_bytes()
    for position in range(0, len(good), 5):
        data = bytearray(good)
        data[position] ^= 0xFF
        try:
            loaded = load_bytes(tmp_path, bytes(data))
        except LoadError:
            continue
        assert bits(loaded) == bits(model)


def test_a_missing_file_is_a_file_not_found_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        graphc.load(tmp_path / "nothing.npz")


def test_load_takes_a_bytes_path_as_open_does(tmp_path):
    random.seed(2)
    model = MLP(2, [3, 1])
    path = tmp_path / "m.graphc"
    graphc.save(model, path)
    assert bits(graphc.load(os.fsencode(path))) == bits(model)


def test_load_refuses_a_file_descriptor_it_would_close():
    """Found by an outside hunt: graphc.load(3) opened and closed whatever descriptor 3 was."""
    read, write = os.pipe()
    try:
        with pytest.raises(ArgumentError, match="takes a path .*; got int"):
            graphc.load(read)
        os.fstat(read)  # still open
    finally:
        os.close(read)
        os.close(write)


def test_saving_into_a_missing_directory_names_the_path_asked_for(tmp_path):
    target = tmp_path / "missing" / "model.npz"
    with pytest.raises(FileNotFoundError, match=f"cannot write {re.escape(str(target))}") as caught:
        graphc.save(MLP(2, [3]), target)
    assert caught.value.filename == str(target.parent) and not (tmp_path / "missing").exists()


def test_saving_onto_a_directory_names_it_and_leaves_nothing_aside(tmp_path):
    with pytest.raises(IsADirectoryError, match=f"cannot write {re.escape(str(tmp_path))}: it is a directory"):
        graphc.save(MLP(2, [3]), tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_max_params_is_a_keyword(tmp_path):
    graphc.save(MLP(2, [3, 1]), tmp_path / "m.npz")
    assert len(graphc.load(tmp_path / "m.npz", max_params=13).parameters()) == 13
    with pytest.raises(LoadError, match="13 params, over max_params=12"):
        graphc.load(tmp_path / "m.npz", max_params=12)
    for bad in (None, "100", True, -1, 1.5):  # the argument named, not the file blamed (outside hunt)
        with pytest.raises(ArgumentError, match="max_params must be an int >= 0"):
            graphc.load(tmp_path / "m.npz", max_params=bad)


# -- the README's example --------------------------------------------------------------

def test_the_readmes_saving_example_runs(tmp_path, monkeypatch):
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Saving and shipping"):]
    code = section[section.index("```python\n") + 10:section.index("\n```")]
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {})  # noqa: S102  (the README's own code)


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions and symbolic links")
def test_save_gives_the_file_np_savez_permissions_and_writes_through_a_symlink(tmp_path):
    """The file written aside came from ``tempfile.mkstemp``: mode 0o600 whatever the umask,
    even over a 0o664 file, and a symbolic link was replaced by a file (outside hunt)."""
    random.seed(0)
    model = MLP(2, [2, 1])
    old = os.umask(0o022)
    try:
        graphc.save(model, tmp_path / "new.npz")
        np.savez(tmp_path / "reference.npz", a=np.zeros(1))
        assert os.stat(tmp_path / "new.npz").st_mode & 0o777 == os.stat(tmp_path / "reference.npz").st_mode & 0o777
        (tmp_path / "shared.npz").write_bytes(b"")
        os.chmod(tmp_path / "shared.npz", 0o664)
        graphc.save(model, tmp_path / "shared.npz")
        assert os.stat(tmp_path / "shared.npz").st_mode & 0o777 == 0o664
    finally:
        os.umask(old)
    os.symlink("target.npz", tmp_path / "link.npz")
    graphc.save(model, tmp_path / "link.npz")
    assert os.path.islink(tmp_path / "link.npz")
    assert graphc.load(tmp_path / "target.npz").state_dict().keys() == model.state_dict().keys()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.npz", "new.npz", "reference.npz", "shared.npz",
                                                          "target.npz"]


@pytest.mark.skipif(not hasattr(os, "fchmod"), reason="POSIX permissions")
def test_a_file_system_refusing_the_permissions_leaves_nothing_behind(tmp_path, monkeypatch):
    """vfat and CIFS refuse chmod: the file written aside was left open and behind (a review)."""
    random.seed(0)
    model = MLP(2, [2, 1])
    graphc.save(model, tmp_path / "m.npz")

    def refuse(fd, mode):
        raise PermissionError(1, "Operation not permitted")
    monkeypatch.setattr(os, "fchmod", refuse)
    with pytest.raises(PermissionError, match="cannot write"):
        graphc.save(model, tmp_path / "m.npz")
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]


def test_a_torch_parameter_is_refused_saying_to_detach_it():
    """An outside hunt: "must be numbers; got Parameter" did not say what to pass."""
    torch = pytest.importorskip("torch")
    model = MLP(2, [3, 1])
    state = model.state_dict()
    state["layers.0.weight"] = torch.nn.Parameter(torch.zeros(3, 2, dtype=torch.float64))
    with pytest.raises(ArgumentError, match=r"got Parameter that requires grad: pass its \.detach\(\)"):
        model.load_state_dict(state)
    state["layers.0.weight"] = state["layers.0.weight"].detach()
    model.load_state_dict(state)
    assert model.layers[0].neurons[0].w[0].data == 0.0
