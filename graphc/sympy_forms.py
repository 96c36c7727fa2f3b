"""The op table's SymPy side: the forms that are more than one SymPy call, and their matchers.

An op's ``sympy`` form says what the op is in SymPy; its ``sympy_inverse`` matcher says
when a SymPy expression is that op: ``match(sp, e)`` returns ``(operands, params)`` --
operand *expressions*, still to be converted -- or None.  :func:`graphc.symbolic.from_sympy`
asks the matchers in table order, so it is derived from the table, not a second map.
Matchers of one SymPy head (``Add``: ``add``, ``sum``, ``sub``, ``neg``) split its cases
between them, so at most one op matches an expression.  Ops written as calls (``exp(x)``,
``relu(x)``) need no matcher: :mod:`graphc.symbolic` maps each call back to its op.

SymPy is passed in as ``sp`` (or imported on first use): importing it costs ~0.25 s, and
the op table is read by every graphc program.
"""
from __future__ import annotations

import math
import sys
from typing import Any

from .errors import GraphcError


def sympy_number(value: float, binary: bool = False) -> Any:
    """``value`` as an exact SymPy number: integers stay integers, ``0.1`` becomes ``1/10``
    (the shortest decimal that round-trips, within half an ulp of the float), ``-0.0`` is
    ``0``, ``inf`` ``oo``, nan ``nan``.  A subnormal float is its exact binary value: it has
    few significant bits, so its shortest decimal can be far off (``5e-324`` is 4.94e-324, 1.2%
    away), and an expression evaluated at high precision would be too; with ``binary``,
    every float is (``0.1`` is 3602879701896397/36028797018963968)."""
    import sympy as sp
    value = float(value)
    if math.isnan(value):
        return sp.nan
    if math.isinf(value):
        return sp.oo if value > 0 else -sp.oo
    if value.is_integer() and abs(value) < 2.0 ** 53:
        return sp.Integer(int(value))
    if binary or abs(value) < sys.float_info.min:
        return sp.Rational(*value.as_integer_ratio())
    return sp.Rational(repr(value))


# -- forms ----------------------------------------------------------------------------------

def relu(sp, x):
    return sp.Piecewise((x, x > 0), (0, True))  # relu(0) = 0 and relu'(0) = 0, as micrograd


def step(sp, x):
    return sp.Piecewise((1, x > 0), (0, True))


def maximum(sp, a, b):
    return sp.Piecewise((a, a >= b), (b, True))  # ties pick (and differentiate) the first


def stop_gradient(sp, x):
    """``StopGradient(x)``: ``x``, whose derivative SymPy takes to be 0, as autodiff does."""
    return _stop_gradient_function(sp)(x)


def _stop_gradient_function(sp) -> type:
    """The SymPy function of ``stop_gradient``, made on first use (SymPy is imported then),
    kept in this module as ``StopGradient`` (where pickle finds it)."""
    made = globals().get("StopGradient")
    if made is not None:
        return made

    class StopGradient(sp.Function):
        """graphc's ``stop_gradient`` op: its argument's value, and a derivative of 0."""

        nargs = 1
        _imp_ = staticmethod(lambda x: x)  # what sympy.lambdify calls

        @classmethod
        def eval(cls, x):
            return x if x.is_Number else None

        def fdiff(self, argindex: int = 1):
            return sp.S.Zero

        def _eval_evalf(self, prec: int):
            return self.args[0].evalf(sp.core.evalf.prec_to_dps(prec))

        def _eval_is_extended_real(self):
            return self.args[0].is_extended_real

        def _eval_is_finite(self):
            return self.args[0].is_finite

    StopGradient.__module__, StopGradient.__qualname__ = __name__, "StopGradient"
    globals()["StopGradient"] = StopGradient
    return StopGradient


def __getattr__(name: str) -> Any:
    """``StopGradient``, made on first use (unpickling a SymPy expression holding one)."""
    if name == "StopGradient":
        import sympy as sp
        return _stop_gradient_function(sp)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# -- matchers -------------------------------------------------------------------------------

def _signed_terms(sp, e) -> tuple[list, list] | None:
    """An ``Add``'s terms split into those written with a plus and a minus sign."""
    if not isinstance(e, sp.Add):
        return None
    negative = [t for t in e.args if t.as_coeff_Mul()[0].is_negative]
    return [t for t in e.args if t not in negative], negative


def match_add(sp, e):
    """a + b"""
    terms = _signed_terms(sp, e)
    return (e.args, ()) if terms and not terms[1] and len(e.args) == 2 else None


def match_sum(sp, e):
    """a + b + c + ..."""
    terms = _signed_terms(sp, e)
    return (e.args, ()) if terms and not terms[1] and len(e.args) > 2 else None


def match_sub(sp, e):
    """a - b (an Add with terms of both signs)"""
    terms = _signed_terms(sp, e)
    if not terms or not (terms[0] and terms[1]):
        return None
    positive, negative = terms
    return (sp.Add(*positive), sp.Add(*[-t for t in negative])), ()


def match_neg(sp, e):
    """-a, and Min(a, b) = -Max(-a, -b)"""
    terms = _signed_terms(sp, e)
    if terms and not terms[0]:
        return (sp.Add(*[-t for t in terms[1]]),), ()
    if isinstance(e, sp.Mul) and e.as_coeff_Mul()[0] == -1:
        return (e.as_coeff_Mul()[1],), ()
    if isinstance(e, sp.Min):
        *rest, last = e.args
        head = e.func(*rest) if len(rest) > 1 else rest[0]
        return (sp.Max(-head, -last, evaluate=False),), ()
    return None


def match_mul(sp, e):
    """a * b"""
    if isinstance(e, sp.Mul) and e.as_coeff_Mul()[0] != -1:
        return (sp.Mul(*e.args[:-1]), e.args[-1]), ()
    return None


def match_sigmoid(sp, e):
    """1 / (1 + exp(-x))"""
    if not isinstance(e, sp.Pow) or e.exp != -1:
        return None
    base = e.base
    if isinstance(base, sp.Add) and len(base.args) == 2 and sp.S.One in base.args:
        other = base.args[1] if base.args[0] == 1 else base.args[0]
        if isinstance(other, sp.exp):
            return (-other.args[0],), ()
    return None


def match_pow(sp, e):
    """x ** c for a real number c"""
    if not isinstance(e, sp.Pow) or not e.exp.is_Number or match_sigmoid(sp, e):
        return None
    exponent = e.exp
    if not exponent.is_extended_real or exponent is sp.nan:
        raise GraphcError(f"from_sympy: exponent {exponent} is not a real number")
    try:
        value = float(exponent)
    except OverflowError:  # an Integer beyond float range; a Rational or Float gives inf
        value = math.inf
    if math.isinf(value) and exponent.is_finite:
        raise GraphcError(f"from_sympy: exponent {short(exponent)} does not fit in a float (|x| < 1.8e308); "
                          f"graphc's pow takes a float exponent")
    return (e.base,), (int(exponent) if exponent.is_Integer else value,)


def match_vpow(sp, e):
    """x ** y for an expression y"""
    return ((e.base, e.exp), ()) if isinstance(e, sp.Pow) and not e.exp.is_Number else None


def match_relu(sp, e):
    """Piecewise((x, x > 0), (0, True))"""
    u = _strict_case(sp, e)
    return ((u,), ()) if u is not None and e.args[0].expr == u else None


def match_step(sp, e):
    """Piecewise((1, x > 0), (0, True)) and Heaviside(x, 0)"""
    if isinstance(e, sp.Heaviside):
        if len(e.args) == 2 and e.args[1] == 0:
            return (e.args[0],), ()
        at_zero = e.args[1] if len(e.args) == 2 else sp.Rational(1, 2)
        raise GraphcError(f"from_sympy: {e} is {at_zero} at 0, graphc's step is 0 there; "
                          f"write Heaviside(x, 0)")
    u = _strict_case(sp, e)
    return ((u,), ()) if u is not None and e.args[0].expr == 1 else None


def match_max(sp, e):
    """Max(a, b, ...) and Piecewise((a, a >= b), (b, True))"""
    if isinstance(e, sp.Max):
        *rest, last = e.args
        return (e.func(*rest) if len(rest) > 1 else rest[0], last), ()
    if _two_cases(sp, e):
        (value, cond), (other, _) = e.args
        big, small, strict = comparison(sp, cond)
        if not strict and big is not None and value == big and other == small:
            return (big, small), ()
    return None


def match_relation(relation: str):
    """A matcher of ``Piecewise((1, a <relation> b), (0, True))``, the form of comparison op
    ``relation`` ("lt", "gt", ...); ``x > 0`` and ``0 < x`` stay step's form."""
    def match(sp, e):
        if not _two_cases(sp, e) or e.args[0].expr != 1 or e.args[1].expr != 0:
            return None
        cond = e.args[0].cond
        kind = {sp.StrictLessThan: "lt", sp.LessThan: "le", sp.StrictGreaterThan: "gt", sp.GreaterThan: "ge",
                sp.Equality: "eq", sp.Unequality: "ne"}.get(type(cond))
        if kind != relation or (kind in ("gt", "lt") and 0 in cond.args):
            return None
        return tuple(cond.args), ()
    match.__doc__ = f"Piecewise((1, a {_RELATION_TEXT[relation]} b), (0, True))"
    PRIORITY.add(match)
    return match


_RELATION_TEXT = {"lt": "<", "le": "<=", "gt": ">", "ge": ">=", "eq": "== (Eq)", "ne": "!= (Ne)"}
#: Matchers tried before the others: a comparison's form is a special case of step's.
PRIORITY: set = set()


def _two_cases(sp, e) -> bool:
    return isinstance(e, sp.Piecewise) and len(e.args) == 2 and e.args[1].cond == sp.true


def _strict_case(sp, e):
    """``u`` when ``e`` is ``Piecewise((value, u > 0), (0, True))`` (``big > small`` gives
    ``u = big - small``), else None."""
    if not _two_cases(sp, e) or e.args[1].expr != 0:
        return None
    big, small, strict = comparison(sp, e.args[0].cond)
    if not strict or big is None:
        return None
    return big if small == 0 else big - small


def comparison(sp, cond) -> tuple[Any, Any, bool]:
    """``cond`` as ``big > small`` (strict) or ``big >= small``; (None, None, False) otherwise."""
    if isinstance(cond, sp.StrictGreaterThan):
        return cond.lhs, cond.rhs, True
    if isinstance(cond, sp.StrictLessThan):
        return cond.rhs, cond.lhs, True
    if isinstance(cond, sp.GreaterThan):
        return cond.lhs, cond.rhs, False
    if isinstance(cond, sp.LessThan):
        return cond.rhs, cond.lhs, False
    return None, None, False


def short(e: Any) -> str:
    """``e`` as text, cut to 60 characters (for error messages)."""
    text = str(e)
    return text if len(text) <= 60 else text[:57] + "..."
