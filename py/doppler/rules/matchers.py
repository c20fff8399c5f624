"""The comparisons a rule may make between a context value (actual) and the rule's operand.

eq/neq: JSON equality. gt/gte/lt/lte: numbers. in: actual is one of the operand array's items.
contains: the actual array has the operand among its items (e.g. "shader-f16" in features).
containsAll: the actual array has every item of the operand array.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any, Callable


def _anything(_value) -> bool:
    return True


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _array(value) -> bool:
    return isinstance(value, list)


def _scalar(value) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))


def _scalars(value) -> bool:
    return _array(value) and all(_scalar(v) for v in value)


@dataclass(frozen=True)
class Matcher:
    operand: str  # what the operand must be, in words
    operand_ok: Callable[[Any], bool]
    actual: str  # what the context value must be, in words
    actual_ok: Callable[[Any], bool]
    test: Callable[[Any, Any], bool]  # (actual, operand) -> matches


MATCHERS = {
    "eq": Matcher("any JSON value", _anything, "any JSON value", _anything, operator.eq),
    "neq": Matcher("any JSON value", _anything, "any JSON value", _anything, operator.ne),
    "gt": Matcher("a number", _number, "a number", _number, operator.gt),
    "gte": Matcher("a number", _number, "a number", _number, operator.ge),
    "lt": Matcher("a number", _number, "a number", _number, operator.lt),
    "lte": Matcher("a number", _number, "a number", _number, operator.le),
    "in": Matcher("an array", _array, "any JSON value", _anything, lambda actual, operand: actual in operand),
    "contains": Matcher("a string, number, boolean or null", _scalar, "an array", _array,
                        lambda actual, operand: operand in actual),
    "containsAll": Matcher("an array of strings, numbers, booleans or nulls", _scalars, "an array", _array,
                           lambda actual, operand: all(item in actual for item in operand)),
}
