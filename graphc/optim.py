"""Optimizers for lists of Values, micrograd style: ``loss.backward(); opt.step(); opt.zero_grad()``.

An optimizer reads every param's ``.data`` and ``.grad`` at each ``step()`` and writes
``.data`` back, so it composes with anything that fills ``.grad`` -- eager ``backward()``,
a compiled call, ``compiled.mean(X, Y)`` -- and with code that edits ``.data`` between
steps.  Its state (velocities, moments) is kept in NumPy arrays, one entry per param,
and the update is computed for all params at once: for the few thousand params of a
small MLP this costs a fraction of a Python loop over them.  ``lr`` is a plain attribute:
schedules assign it between steps.  ``weight_decay`` is PyTorch's: SGD and Adam add
``weight_decay * p`` to each gradient before their update (an L2 term's gradient, without
the term in the loss), AdamW shrinks the params by ``1 - lr * weight_decay`` before Adam's
update (Loshchilov & Hutter's decoupled decay).
"""
from __future__ import annotations

import copy
import numbers
from typing import Iterable

import numpy as np

from .engine import Value
from .errors import ArgumentError, DataError


class Optimizer:
    """The params, and the reading and writing every optimizer shares."""

    #: Whether ``weight_decay`` shrinks the params before the update (AdamW) rather than
    #: adding to the gradient (SGD, Adam).
    decoupled = False

    def __init__(self, params: Iterable[Value], lr: float, weight_decay: float = 0.0) -> None:
        self.params = list(params)
        if not self.params:  # a Module subclassed without parameters() has none: no step would train it
            raise ValueError("an optimizer got an empty list of params (a Module of your own lists its params "
                             "in parameters(), as micrograd's do)")
        for k, p in enumerate(self.params):
            if not isinstance(p, Value):
                raise TypeError(f"an optimizer updates Values; param {k} is a {type(p).__name__}")
        if len(set(self.params)) != len(self.params):
            raise ValueError("a param appears more than once: it would be updated twice per step")
        Optimizer._check_settings(self, {"lr": lr, "weight_decay": weight_decay})
        self.lr, self.weight_decay = lr, weight_decay

    def _check_settings(self, settings: dict) -> None:
        """A clear error unless ``settings`` (the numbers besides the state arrays) are what
        the constructor takes: the constructor's checks, and restore's (a snapshot with
        ``lr=nan`` or ``betas=(2.0, 0.9)`` was put back silently: an outside hunt)."""
        check_range("lr", settings["lr"], 0.0, None)
        check_range("weight_decay", settings["weight_decay"], 0.0, None)

    def snapshot(self) -> dict:
        """The optimizer's state (velocities, moments, step count, lr), copied, without its
        params: what :meth:`restore` puts back, so a training run that is interrupted can undo
        its steps, or a run saved with the model's ``state_dict()`` resume (as PyTorch's
        optimizer ``state_dict()``)."""
        return {k: copy.deepcopy(v) for k, v in vars(self).items() if k != "params"}  # a subclass's dict of
        # state too (a shallow copy let an interrupted train keep its steps there: an outside hunt)

    def restore(self, state: dict) -> None:
        """Put back a :meth:`snapshot` (of this optimizer, or of one of its class over as many
        params): the state only, so the optimizer goes on updating its own params.  All or
        nothing: a state of another kind or size is refused and nothing changes."""
        if not isinstance(state, dict):
            raise TypeError(f"restore takes a snapshot() (a dict); got {type(state).__name__}")
        mine = {k: v for k, v in vars(self).items() if k != "params"}
        if set(state) != set(mine):  # a snapshot holding params (older graphc) replaced them: training stopped
            raise ValueError(f"restore: a {type(self).__name__} snapshot has {', '.join(sorted(mine))}; "
                             f"this one has {', '.join(map(str, sorted(state, key=str)))}")
        for key, value in state.items():
            if isinstance(mine[key], np.ndarray) and np.shape(value) != (len(self.params),):
                raise ValueError(f"restore: {key} holds {np.shape(value)} numbers, for {len(self.params)} params")
        arrays = {}
        for key in (k for k, v in mine.items() if isinstance(v, np.ndarray)):
            try:  # float64, as the C driver reads them (a float32 one split them)
                arrays[key] = np.array(state[key], dtype=np.float64)
            except (TypeError, ValueError):
                raise TypeError(f"restore: {key} must hold numbers; got {state[key]!r:.80}") from None
        self._check_settings({k: v for k, v in state.items() if k not in arrays})
        vars(self).update({**state, **arrays})

    state_dict = snapshot
    load_state_dict = restore

    def rollback(self, state: dict) -> None:
        """:meth:`restore` a snapshot taken before steps that raised, state made since (an
        attribute a subclass sets on its first step) dropped: the exception goes on, not
        restore's refusal (an outside hunt)."""
        for key in set(vars(self)) - set(state) - {"params"}:
            delattr(self, key)
        self.restore(state)

    def check(self) -> None:
        """The constructor's checks of the settings and the state as they are now (a user may
        set ``opt.betas`` or ``opt.m`` after it), the state arrays made float64: what
        ``train`` asks before it steps, so that its steps and ``step()`` 's stay the same."""
        self.restore(self.snapshot())

    def zero_grad(self) -> None:
        """Set every param's ``.grad`` to 0, as ``Module.zero_grad`` does."""
        for p in self.params:
            p.grad = 0

    def step(self) -> None:
        """Update every param's ``.data`` from its ``.grad``."""
        n = len(self.params)
        data = np.fromiter((p.data for p in self.params), np.float64, n)
        grads = [p.grad for p in self.params]
        if None in grads:  # np.fromiter reads None as nan, which would spread through the state
            k = grads.index(None)
            raise TypeError(f"param {k}'s .grad is None (PyTorch's zero_grad(set_to_none=True)?): a graphc "
                            f".grad is a number; set it to 0 (zero_grad()), or leave the param out of the "
                            f"optimizer")
        if not set(map(type, grads)) <= {float, int}:  # np.fromiter parses a str "1" (an outside hunt)
            k = next((k for k, g in enumerate(grads) if not isinstance(g, numbers.Real)), None)
            if k is not None:
                raise TypeError(f"param {k}'s .grad is a {type(grads[k]).__name__}; a .grad is a number")
        try:
            grad = np.fromiter(grads, np.float64, n)
        except OverflowError:  # an int .grad of 10**400
            raise DataError("a param's .grad is an int too large for a float (|x| < 1.8e308)") from None
        for p, value in zip(self.params, self.apply(data, grad).tolist()):
            p.data = value

    def apply(self, data: np.ndarray, grad: np.ndarray) -> np.ndarray:
        """What ``step()`` does, on arrays: the params ``data`` (one entry per param) moved
        by their gradient ``grad``, returned as a new array, the optimizer's state advanced.
        For loops that keep the params in an array (``Compiled.mean_and_grad``) and write
        them to their Values once at the end.  Any array-like of numbers is taken."""
        data, grad = _as_vector(data, "data"), _as_vector(grad, "grad")
        if data.shape != (len(self.params),) or grad.shape != data.shape:
            raise ValueError(f"apply needs data and grad of shape ({len(self.params)},), one entry per param; "
                             f"got {data.shape} and {grad.shape}")
        lr, weight_decay = float(self.lr), float(self.weight_decay)  # float64, as train's driver: a float32
        if weight_decay and self.decoupled:                              # lr decayed in float32 (an outside hunt)
            data = data * (1.0 - lr * weight_decay)
        elif weight_decay:
            grad = grad + weight_decay * data
        return data + self._update(grad)

    def _update(self, grad: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def native(self) -> tuple[str, tuple[float, ...], tuple[str, ...]] | None:
        """How a native training driver (:mod:`graphc.codegen.c_train`) runs this
        optimizer's ``apply``: its kind, its constants and the names of its state arrays
        (one entry per param); None where it cannot -- a subclass with its own update."""
        return None

    def _own_rule(self, cls: type) -> bool:
        """Whether this optimizer updates as ``cls`` does: a subclass that overrides
        ``_update``, ``apply`` or ``step`` (clipping the gradient, say) runs its own code."""
        kind = type(self)
        return kind._update is cls._update and kind.apply is Optimizer.apply and kind.step is Optimizer.step


class SGD(Optimizer):
    """Stochastic gradient descent, with optional (Nesterov) momentum.

    Without momentum, ``p.data -= lr * p.grad``: micrograd's update, bit for bit.  With it,
    the velocity form of Sutskever et al. (2013), as scikit-learn's MLPs use it::

        v = momentum * v - lr * g
        p += v                        # or, with nesterov: p += momentum * v - lr * g

    With a constant ``lr`` this is, in exact arithmetic, the sequence of params of PyTorch's
    ``SGD(momentum=..., nesterov=...)``, whose buffer is ``g + momentum * b`` stepped by
    ``lr * b``: the floats differ in the last bits from the first steps (8.9e-16 at most over
    20 steps of a review's comparison); when ``lr`` changes, the velocity keeps the steps
    already taken at their old rate.
    """

    def __init__(self, params: Iterable[Value], lr: float = 0.01, momentum: float = 0.0,
                 nesterov: bool = False, *, weight_decay: float = 0.0) -> None:
        super().__init__(params, lr, weight_decay)
        self._check_settings({"lr": lr, "weight_decay": weight_decay, "momentum": momentum, "nesterov": nesterov})
        self.momentum, self.nesterov = momentum, nesterov
        self.velocity = np.zeros(len(self.params))

    def _check_settings(self, settings: dict) -> None:
        super()._check_settings(settings)
        check_range("momentum", settings["momentum"], 0.0, None)
        if settings["nesterov"] and settings["momentum"] == 0.0:
            raise ValueError("nesterov momentum needs momentum > 0; got momentum=0")

    def _update(self, grad: np.ndarray) -> np.ndarray:
        if self.momentum == 0.0:
            return -(self.lr * grad)
        self.velocity = self.momentum * np.asarray(self.velocity, np.float64) - self.lr * grad
        return self.momentum * self.velocity - self.lr * grad if self.nesterov else self.velocity

    def native(self) -> tuple[str, tuple[float, ...], tuple[str, ...]] | None:
        """``("sgd", (), ())``, or ``("momentum" | "nesterov", (momentum,), ("velocity",))``."""
        if not self._own_rule(SGD):
            return None
        if self.momentum == 0.0:
            return "sgd", (), ()
        return ("nesterov" if self.nesterov else "momentum"), (float(self.momentum),), ("velocity",)


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015, Algorithm 1), PyTorch's formula (PyTorch's kernels order and
    fuse its operations their own way, so the floats can differ in the last bits)::

        m = b1 * m + (1 - b1) * g;   v = b2 * v + (1 - b2) * g**2;   t += 1
        p -= lr * (m / (1 - b1**t)) / (sqrt(v / (1 - b2**t)) + eps)

    ``eps_hat=True`` computes the paper's Section 2 form instead, where ``eps`` is its
    epsilon-hat, as scikit-learn and TensorFlow do::

        p -= lr * sqrt(1 - b2**t) / (1 - b1**t) * m / (sqrt(v) + eps)

    -- the same as Algorithm 1 with ``eps / sqrt(1 - b2**t)`` for ``eps``; the two differ
    where gradients are as small as ``eps``.
    """

    def __init__(self, params: Iterable[Value], lr: float = 0.001, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, *, eps_hat: bool = False, weight_decay: float = 0.0) -> None:
        super().__init__(params, lr, weight_decay)
        self._check_settings({"lr": lr, "weight_decay": weight_decay, "betas": betas, "eps": eps,
                              "eps_hat": eps_hat, "t": 0})
        self.betas, self.eps, self.eps_hat = (float(betas[0]), float(betas[1])), eps, eps_hat
        self.t = 0
        self.m = np.zeros(len(self.params))
        self.v = np.zeros(len(self.params))

    def _check_settings(self, settings: dict) -> None:
        super()._check_settings(settings)
        betas, t = settings["betas"], settings["t"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise TypeError(f"betas must be a pair (beta1, beta2); got {betas!r}")
        for name, beta in zip(("betas[0]", "betas[1]"), betas):
            check_range(name, beta, 0.0, 1.0)
        check_range("eps", settings["eps"], 0.0, None)
        if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or not 0 <= t < 2**62:
            raise TypeError(f"t (the steps taken) must be an int >= 0 (and < 2**62: train's driver counts in "
                            f"64 bits); got {t!r}")

    def _update(self, grad: np.ndarray) -> np.ndarray:
        b1, b2 = float(self.betas[0]), float(self.betas[1])  # float64 if set to float32 since (1 - b1)
        self.t += 1
        m, v = np.asarray(self.m, np.float64), np.asarray(self.v, np.float64)  # (a float32 one set since)
        self.m = b1 * m + (1.0 - b1) * grad
        self.v = b2 * v + (1.0 - b2) * grad * grad
        if self.eps_hat:
            rate = self.lr * np.sqrt(1.0 - b2 ** self.t) / (1.0 - b1 ** self.t)
            return -(rate * self.m / (np.sqrt(self.v) + self.eps))
        m_hat = self.m / (1.0 - b1 ** self.t)
        v_hat = self.v / (1.0 - b2 ** self.t)
        return -(self.lr * m_hat / (np.sqrt(v_hat) + self.eps))

    def native(self) -> tuple[str, tuple[float, ...], tuple[str, ...]] | None:
        """``("adam" | "adam_eps_hat", (beta1, beta2, eps), ("m", "v"))``; ``t`` counts the steps."""
        if not self._own_rule(Adam):
            return None
        return ("adam_eps_hat" if self.eps_hat else "adam"), (*self.betas, float(self.eps)), ("m", "v")


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter 2019), PyTorch's ``AdamW``: each
    step first shrinks the params, ``p *= 1 - lr * weight_decay``, then takes :class:`Adam`'s
    step from the gradient alone -- so the decay is not scaled by Adam's per-param rate, as
    an L2 term in the loss (or ``Adam(weight_decay=...)``) would be."""

    decoupled = True

    def __init__(self, params: Iterable[Value], lr: float = 0.001, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, *, eps_hat: bool = False, weight_decay: float = 0.01) -> None:
        super().__init__(params, lr, betas, eps, eps_hat=eps_hat, weight_decay=weight_decay)


def _as_vector(x, name: str) -> np.ndarray:
    """``x`` as a float64 array (no copy when it is one); a clear TypeError when it holds no numbers."""
    try:
        return np.asarray(x, dtype=np.float64)
    except Exception:  # TypeError, ValueError, a torch tensor's RuntimeError (it requires grad)
        raise TypeError(f"apply's {name} must be an array of numbers, one per param; "
                        f"got {type(x).__name__} {x!r}"[:200]) from None


def check_range(name: str, value: float, low: float, high: float | None) -> None:
    """``low <= value`` (and ``value < high``), for a real number ``value``; else a clear error.
    No NumPy float wider than float64 (``np.longdouble``): the Python update would compute in
    its extended precision and the C driver in float64, so they would not be the same steps
    (an outside hunt)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a real number; got {type(value).__name__} {value!r}")
    if isinstance(value, np.floating) and np.finfo(value).bits > 64:
        raise ArgumentError(f"{name} is a numpy.{type(value).__name__}: steps would compute in its extended "
                            f"precision in Python and in float64 in C; pass float({name})")
    if isinstance(value, int):
        try:
            float(value)
        except OverflowError:  # 10**400: compares fine, and overflows where the update reads it
            raise DataError(f"{name} must be a number that fits in a float (|x| < 1.8e308); got an int of "
                            f"{value.bit_length()} bits") from None
    if not (low <= value and (high is None or value < high)):
        bounds = f"in [{low:g}, {high:g})" if high is not None else f">= {low:g}"
        raise DataError(f"{name} must be {bounds}; got {value!r}")
