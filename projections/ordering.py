"""One total order over every value a document can hold, as comparable Python tuples.

Queries, sorts and secondary indexes all compare values through ``sort_key``, so an index
range scan and a full scan can never disagree about what "greater than" means. The order
follows MongoDB's BSON comparison order for the types msgpack can carry:

    (empty array, in sorts only) < null (and missing fields) < numbers < strings
    < objects < arrays < binary < booleans

- Numbers compare by value across int and float (``1 == 1.0``); ``NaN`` equals ``NaN`` and
  sorts below every other number.
- Strings compare by code point (the same as MongoDB's UTF-8 byte order).
- Objects compare field by field in their stored order: the value's type, then the field name,
  then the value; a prefix sorts first. So ``{"a": 1, "b": 2}`` is not equal to
  ``{"b": 2, "a": 1}``, as in MongoDB.
- Arrays compare element by element; a prefix sorts first.
- Binary compares by length, then bytes; ``False < True``.

Keys are plain tuples of ints, floats, strings and bytes: hashable, picklable and ordered by
Python's own tuple comparison, which ``sortedcontainers`` uses directly.
"""

from __future__ import annotations

from typing import Any

R_EMPTY = 0  # an empty array, when a sort has to place one (MongoDB puts it before null)
R_NULL = 1
R_NUM = 2
R_STR = 3
R_OBJ = 4
R_ARR = 5
R_BIN = 6
R_BOOL = 7

TYPE_NAMES = {
    R_NULL: "null",
    R_NUM: "number",
    R_STR: "string",
    R_OBJ: "object",
    R_ARR: "array",
    R_BIN: "binary",
    R_BOOL: "boolean",
}

NULL_KEY: tuple = (R_NULL,)
NAN_KEY: tuple = (R_NUM, 0)
EMPTY_KEY: tuple = (R_EMPTY,)
# Compares above every key (used as an open upper bound in index scans).
TOP: tuple = (99,)


def rank(value: Any) -> int:
    """The type bracket of ``value`` (``R_NULL`` … ``R_BOOL``)."""
    if value is None:
        return R_NULL
    t = type(value)
    if t is bool:
        return R_BOOL
    if t is int or t is float:
        return R_NUM
    if t is str:
        return R_STR
    if t is dict:
        return R_OBJ
    if t is list or t is tuple:
        return R_ARR
    if t is bytes or t is bytearray:
        return R_BIN
    raise TypeError(f"{t.__name__} values cannot be stored in a document")


def sort_key(value: Any) -> tuple:
    """The total-order key of ``value``; equal keys mean equal values."""
    if value is None:
        return NULL_KEY
    t = type(value)
    if t is str:
        return (R_STR, value)
    if t is int:
        return (R_NUM, 1, value)
    if t is float:
        return NAN_KEY if value != value else (R_NUM, 1, value)
    if t is bool:
        return (R_BOOL, value)
    if t is dict:
        fields = []
        for name, item in value.items():
            k = sort_key(item)
            fields.append((k[0], name, k))
        return (R_OBJ, tuple(fields))
    if t is list or t is tuple:
        return (R_ARR, tuple(sort_key(item) for item in value))
    if t is bytes or t is bytearray:
        return (R_BIN, len(value), bytes(value))
    raise TypeError(f"{t.__name__} values cannot be stored in a document")


def bracket_bounds(key: tuple) -> tuple[tuple, tuple]:
    """``(lowest, highest)`` keys of the type bracket ``key`` is in, for range scans that must
    stay inside one type (``$gt: 5`` matches numbers only). NaN is outside the numeric range."""
    r = key[0]
    if r == R_NUM:
        return (R_NUM, 1), (R_NUM, 2)
    return (r,), (r + 1,)


def type_name(value: Any) -> str:
    """A short name of ``value``'s type for error messages."""
    try:
        return TYPE_NAMES[rank(value)]
    except TypeError:
        return type(value).__name__


def a_type(value: Any) -> str:
    """``type_name`` with its article, for messages: "a string", "an array"."""
    name = type_name(value)
    return ("an " if name[0] in "aeiou" else "a ") + name
