"""A small, typed, safe expression language for rule conditions and values.

Expressions use a subset of Python's expression syntax, parsed with `ast` and compiled to closures
over a facts mapping; nothing is ever passed to `eval`. Every name must be a declared fact, and every
operator is checked against the facts' types when the rule is loaded, so a rule that compares a set
with a number, or reads a fact that does not exist, fails at load time rather than at scoring time.

Grammar (informally):
    expr   := expr 'if' expr 'else' expr | expr ('and'|'or') expr | 'not' expr
            | arith (('=='|'!='|'<'|'<='|'>'|'>=') arith)*      chained comparisons allowed
            | arith ('in'|'not in') (set_literal | SET_FACT)      membership of a text in a set
            | TEXT_LITERAL ('in'|'not in') SET_FACT
    arith  := arith ('+'|'-'|'*'|'/') arith | '-' arith | atom
    atom   := FACT | number | 'text' | true/false | {'a', 'b'} | ['a', 'b']
            | min(a, b, ...) | max(a, b, ...) | count(SET_FACT) | any_of(SET_FACT, {'a', ...})
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

FactType = Literal["bool", "number", "text", "set"]
Facts = Mapping[str, Any]
Compiled = Callable[[Facts], Any]


EMPTY: Facts = {}  # constants evaluate without facts


class ExpressionError(ValueError):
    """An expression is malformed, names an unknown fact, or mixes types."""


@dataclass(frozen=True)
class CompiledExpression:
    source: str
    type: FactType
    names: frozenset[str]
    evaluate: Compiled


_COMPARE: dict[type, Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}
_ORDERING = (ast.Lt, ast.LtE, ast.Gt, ast.GtE)
_ARITH: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: lambda a, b: a / b if b else 0.0,  # a rule never divides by zero at scoring time
}


def compile_expression(source: str, fact_types: Mapping[str, FactType]) -> CompiledExpression:
    """Parse and type-check `source` against the declared facts; return a callable over facts."""
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"cannot parse '{source}': {exc.msg}") from exc
    names: set[str] = set()
    fn, kind = _compile(tree.body, fact_types, names)
    return CompiledExpression(source=source, type=kind, names=frozenset(names), evaluate=fn)


def _compile(node: ast.AST, types: Mapping[str, FactType], names: set[str]) -> tuple[Compiled, FactType]:
    match node:
        case ast.Name(id=name):
            if name in ("true", "false"):
                value = name == "true"
                return (lambda _f: value), "bool"
            if name not in types:
                raise ExpressionError(f"unknown fact '{name}'")
            names.add(name)
            return operator.itemgetter(name), types[name]
        case ast.Constant(value=value):
            if isinstance(value, bool):
                return (lambda _f: value), "bool"
            if isinstance(value, int | float):
                number = float(value)
                return (lambda _f: number), "number"
            if isinstance(value, str):
                return (lambda _f: value), "text"
            raise ExpressionError(f"unsupported constant {value!r}")
        case ast.Set(elts=elts) | ast.List(elts=elts) | ast.Tuple(elts=elts):
            items = []
            for elt in elts:
                if not (isinstance(elt, ast.Constant) and isinstance(elt.value, str)):
                    raise ExpressionError("set literals may hold only quoted texts")
                items.append(elt.value)
            frozen = frozenset(items)
            return (lambda _f: frozen), "set"
        case ast.BoolOp(op=op, values=values):
            parts = [_expect(v, "bool", types, names, "and/or operand") for v in values]
            return _chain(parts, isinstance(op, ast.And)), "bool"
        case ast.UnaryOp(op=ast.Not(), operand=operand):
            inner = _expect(operand, "bool", types, names, "'not' operand")
            return (lambda f: not inner(f)), "bool"
        case ast.UnaryOp(op=ast.USub(), operand=operand):
            inner = _expect(operand, "number", types, names, "'-' operand")
            return (lambda f: -inner(f)), "number"
        case ast.BinOp(left=left, op=op, right=right) if type(op) in _ARITH:
            lf = _expect(left, "number", types, names, "arithmetic operand")
            rf = _expect(right, "number", types, names, "arithmetic operand")
            fn = _ARITH[type(op)]
            return (lambda f: fn(lf(f), rf(f))), "number"
        case ast.IfExp(test=test, body=body, orelse=orelse):
            tf = _expect(test, "bool", types, names, "condition of 'if'")
            bf, bt = _compile(body, types, names)
            of, ot = _compile(orelse, types, names)
            if bt != ot:
                raise ExpressionError(f"both branches of 'if' must have one type, got {bt} and {ot}")
            return (lambda f: bf(f) if tf(f) else of(f)), bt
        case ast.Compare(left=left, ops=ops, comparators=comparators):
            return _compile_compare(left, ops, comparators, types, names), "bool"
        case ast.Call(func=ast.Name(id=fname), args=args, keywords=[]):
            return _compile_call(fname, args, types, names)
    raise ExpressionError(f"unsupported syntax: {ast.unparse(node)!r}")


def _chain(parts: list[Compiled], conjunction: bool) -> Compiled:
    """Fold and/or operands into nested two-operand closures (short-circuiting, no generator)."""
    fn = parts[-1]
    for part in reversed(parts[:-1]):
        fn = _and(part, fn) if conjunction else _or(part, fn)
    return fn


def _and(a: Compiled, b: Compiled) -> Compiled:
    return lambda f: bool(a(f)) and bool(b(f))


def _or(a: Compiled, b: Compiled) -> Compiled:
    return lambda f: bool(a(f)) or bool(b(f))


def _expect(node: ast.AST, kind: FactType, types: Mapping[str, FactType], names: set[str], what: str) -> Compiled:
    fn, actual = _compile(node, types, names)
    if actual != kind:
        raise ExpressionError(f"{what} must be {kind}, but '{ast.unparse(node)}' is {actual}")
    return fn


def _compile_compare(
    left: ast.AST, ops: list[ast.cmpop], comparators: list[ast.expr], types: Mapping[str, FactType], names: set[str]
) -> Compiled:
    checks: list[Compiled] = []
    lhs, ltype = _compile(left, types, names)
    for op, right in zip(ops, comparators, strict=True):
        rhs, rtype = _compile(right, types, names)
        if isinstance(op, ast.In | ast.NotIn):
            if rtype != "set" or ltype != "text":
                raise ExpressionError(
                    f"'in' needs a text on the left and a set on the right: '{ast.unparse(left)}' is {ltype},"
                    f" '{ast.unparse(right)}' is {rtype}"
                )
            negate = isinstance(op, ast.NotIn)
            if isinstance(right, ast.Set | ast.List | ast.Tuple):
                checks.append(_membership_constant(lhs, rhs(EMPTY), negate))
            else:
                checks.append(_membership(lhs, rhs, negate))
        elif type(op) in _COMPARE:
            if ltype != rtype:
                raise ExpressionError(f"cannot compare {ltype} with {rtype} in '{ast.unparse(right)}'")
            if isinstance(op, _ORDERING) and ltype != "number":
                raise ExpressionError(f"ordering comparisons need numbers, got {ltype}")
            if isinstance(op, ast.Eq) and isinstance(right, ast.Constant):
                # `fact == 'x'`, the commonest comparison, without a second closure call
                checks.append(_equals_constant(lhs, rhs(EMPTY)))
            else:
                checks.append(_binary(lhs, rhs, _COMPARE[type(op)]))
        else:
            raise ExpressionError(f"unsupported comparison {type(op).__name__}")
        lhs, ltype = rhs, rtype
    if len(checks) == 1:
        return checks[0]
    return lambda f: all(c(f) for c in checks)


def _equals_constant(lhs: Compiled, constant: Any) -> Compiled:
    return lambda f: lhs(f) == constant


def _membership_constant(lhs: Compiled, constant: frozenset[str], negate: bool) -> Compiled:
    if negate:
        return lambda f: lhs(f) not in constant
    return lambda f: lhs(f) in constant


def _membership(lhs: Compiled, rhs: Compiled, negate: bool) -> Compiled:
    if negate:
        return lambda f: lhs(f) not in rhs(f)
    return lambda f: lhs(f) in rhs(f)


def _binary(lhs: Compiled, rhs: Compiled, fn: Callable[[Any, Any], bool]) -> Compiled:
    return lambda f: fn(lhs(f), rhs(f))


def _compile_call(
    fname: str, args: list[ast.expr], types: Mapping[str, FactType], names: set[str]
) -> tuple[Compiled, FactType]:
    if fname in ("min", "max"):
        if len(args) < 2:
            raise ExpressionError(f"{fname}() needs at least two numbers")
        parts = [_expect(a, "number", types, names, f"argument of {fname}()") for a in args]
        agg = min if fname == "min" else max
        return (lambda f: agg(p(f) for p in parts)), "number"
    if fname == "count":
        if len(args) != 1:
            raise ExpressionError("count() takes one set")
        inner = _expect(args[0], "set", types, names, "argument of count()")
        return (lambda f: float(len(inner(f)))), "number"
    if fname == "any_of":
        if len(args) != 2:
            raise ExpressionError("any_of() takes two sets")
        a = _expect(args[0], "set", types, names, "argument of any_of()")
        b = _expect(args[1], "set", types, names, "argument of any_of()")
        return (lambda f: not a(f).isdisjoint(b(f))), "bool"
    raise ExpressionError(f"unknown function '{fname}' (allowed: min, max, count, any_of)")
