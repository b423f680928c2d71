"""The filter language of collections, with MongoDB semantics (sorts and projections are in
``projections.shaping``).

Pure functions over plain values: nothing here knows about storage, indexes or events, so the
same code matches documents in a full scan, re-checks index candidates, filters vector
metadata and runs in tests without a store.

Filters
    ``{"path": value}`` (equality) or ``{"path": {"$op": operand, ...}}`` with ``$eq $ne $in
    $nin $gt $gte $lt $lte $exists $not``; ``$and $or $nor`` at the top level (or nested in
    each other). Paths are dotted (``"author.name"``, ``"tags.0"``).
Arrays
    A path that meets an array looks into the array's documents (``"items.sku"``), and a field
    that holds an array matches when the array itself or any of its elements matches
    (``{"tags": "x"}`` matches ``{"tags": ["x", "y"]}``). Range operators need one element to
    satisfy each operator, not necessarily the same one (MongoDB does the same).
Missing fields
    A missing field equals ``null``: ``{"a": None}`` matches documents without ``a``, and
    ``{"a": {"$ne": None}}`` matches only those that have a non-null ``a``.
Types
    Comparisons use ``projections.ordering`` (null < numbers < strings < objects < arrays <
    binary < booleans). Range operators only match values of the operand's type bracket:
    ``{"a": {"$gt": 5}}`` never matches a string. ``$gte``/``$lte`` with ``null`` behave like
    ``$eq: null``; ``$gt``/``$lt`` with ``null`` match nothing. ``NaN`` is matched only by
    ``$eq``/``$gte``/``$lte`` with ``NaN``.

A malformed filter raises ``ValidationError`` naming the operator and the path.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from journal.errors import ValidationError
from projections.ordering import NAN_KEY, NULL_KEY, R_NULL, R_NUM, sort_key

FIELD_OPERATORS = ("$eq", "$ne", "$in", "$nin", "$gt", "$gte", "$lt", "$lte", "$exists", "$not")
LOGICAL_OPERATORS = ("$and", "$or", "$nor")
MAX_PATH_PARTS = 32

# -- paths -------------------------------------------------------------------------------------


def parse_path(path: Any, what: str = "path") -> tuple[str, ...]:
    """The components of a dotted path; ``ValidationError`` when it is not a usable path."""
    if not isinstance(path, str) or not path:
        raise ValidationError(f"{what} must be a non-empty string, got {path!r}")
    parts = tuple(path.split("."))
    for part in parts:
        if not part:
            raise ValidationError(f"{what} {path!r} has an empty component (leading, trailing or double dot)")
        if part[0] == "$":
            raise ValidationError(
                f"{what} {path!r}: component {part!r} starts with '$', which is reserved for operators"
            )
        if "\0" in part:
            raise ValidationError(f"{what} {path!r} contains a NUL character")
    if len(parts) > MAX_PATH_PARTS:
        raise ValidationError(f"{what} {path!r} is nested {len(parts)} deep; the limit is {MAX_PATH_PARTS}")
    return parts


def _is_index(part: str) -> bool:
    return part.isascii() and part.isdigit()


def resolve(doc: Any, parts: tuple[str, ...]) -> tuple[list, bool, bool]:
    """``(values, missing, through_array)`` at ``parts`` in ``doc``.

    ``values`` holds every value the path reaches (several when it crosses an array of
    documents); ``missing`` is true when some branch of the path found nothing (the field
    counts as null there); ``through_array`` when the path crossed an array."""
    out: list = []
    flags = [False, False]
    _walk(doc, parts, 0, out, flags)
    return out, flags[0], flags[1]


def _walk(value: Any, parts: tuple[str, ...], i: int, out: list, flags: list) -> None:
    if i == len(parts):
        out.append(value)
        return
    name = parts[i]
    t = type(value)
    if t is dict:
        if name in value:
            _walk(value[name], parts, i + 1, out, flags)
        else:
            flags[0] = True
    elif t is list:
        flags[1] = True
        found = False
        if _is_index(name):
            idx = int(name)
            if idx < len(value):
                found = True
                _walk(value[idx], parts, i + 1, out, flags)
        for item in value:
            if type(item) is dict:
                found = True
                if name in item:
                    _walk(item[name], parts, i + 1, out, flags)
                else:
                    flags[0] = True
        if not found:
            flags[0] = True
    else:
        flags[0] = True


def candidates(values: list) -> Iterable:
    """The values a field predicate is tested against: each value and, for arrays, their
    elements (one level deep, like MongoDB)."""
    for v in values:
        yield v
        if type(v) is list:
            yield from v


# -- predicates --------------------------------------------------------------------------------


def _num(v: Any) -> bool:
    t = type(v)
    return (t is int or t is float) and v == v


class Pred:
    """One operator applied to the values at a path."""

    __slots__ = ("op", "operand")

    def __init__(self, op: str, operand: Any):
        self.op = op
        self.operand = operand

    def test(self, values: list, missing: bool) -> bool:  # pragma: no cover - overridden
        raise NotImplementedError


class Eq(Pred):
    __slots__ = ("key", "fast")

    def __init__(self, op: str, operand: Any):
        super().__init__(op, operand)
        self.key = sort_key(operand)
        t = type(operand)
        # Strings and (non-NaN) numbers compare natively; everything else through its key.
        self.fast = t is str or _num(operand)

    def test(self, values: list, missing: bool) -> bool:
        key = self.key
        if key is NULL_KEY and (missing or not values):
            return True
        operand = self.operand
        if self.fast:
            is_str = type(operand) is str
            for c in candidates(values):
                tc = type(c)
                if is_str:
                    if tc is str and c == operand:
                        return True
                elif (tc is int or tc is float) and c == operand:
                    return True
            return False
        return any(sort_key(c) == key for c in candidates(values))


class Ne(Eq):
    __slots__ = ()

    def test(self, values: list, missing: bool) -> bool:
        return not Eq.test(self, values, missing)


class In(Pred):
    __slots__ = ("keys", "null")

    def __init__(self, op: str, operand: Any):
        super().__init__(op, operand)
        self.keys = frozenset(sort_key(v) for v in operand)
        self.null = NULL_KEY in self.keys

    def test(self, values: list, missing: bool) -> bool:
        if self.null and (missing or not values):
            return True
        keys = self.keys
        return any(sort_key(c) in keys for c in candidates(values))


class Nin(In):
    __slots__ = ()

    def test(self, values: list, missing: bool) -> bool:
        return not In.test(self, values, missing)


class Range(Pred):
    """``$gt $gte $lt $lte`` inside the operand's type bracket."""

    __slots__ = ("key", "lower", "inclusive", "fast")

    def __init__(self, op: str, operand: Any):
        super().__init__(op, operand)
        self.key = sort_key(operand)
        self.lower = op in ("$gt", "$gte")  # the operand is a lower bound
        self.inclusive = op in ("$gte", "$lte")
        self.fast = _num(operand)

    def holds(self, ck: tuple) -> bool:
        key = self.key
        if ck[0] != key[0]:
            return False
        if key is NAN_KEY or ck == NAN_KEY:
            return self.inclusive and ck == key
        if ck == key:
            return self.inclusive
        return ck > key if self.lower else ck < key

    def test(self, values: list, missing: bool) -> bool:
        if self.fast:
            operand = self.operand
            lower, inclusive = self.lower, self.inclusive
            for c in candidates(values):
                if _num(c):
                    if c == operand:
                        if inclusive:
                            return True
                    elif (c > operand) == lower:
                        return True
            return False
        holds = self.holds
        return any(holds(sort_key(c)) for c in candidates(values))


class Nothing(Pred):
    """``$gt``/``$lt`` with null: no value is strictly above or below null in MongoDB."""

    __slots__ = ()

    def test(self, values: list, missing: bool) -> bool:
        return False


class Exists(Pred):
    __slots__ = ()

    def test(self, values: list, missing: bool) -> bool:
        return bool(values) == self.operand


class Not(Pred):
    __slots__ = ("preds",)

    def __init__(self, op: str, operand: Any, preds: list[Pred]):
        super().__init__(op, operand)
        self.preds = preds

    def test(self, values: list, missing: bool) -> bool:
        return not all(p.test(values, missing) for p in self.preds)


# -- filter nodes ------------------------------------------------------------------------------


class Node:
    """A compiled filter: ``match(doc)`` says whether a document satisfies it."""

    __slots__ = ()

    def match(self, doc: Any) -> bool:  # pragma: no cover - overridden
        raise NotImplementedError


class MatchAll(Node):
    __slots__ = ()

    def match(self, doc: Any) -> bool:
        return True


class Field(Node):
    """The predicates of one path (all must hold)."""

    __slots__ = ("path", "parts", "preds")

    def __init__(self, path: str, parts: tuple[str, ...], preds: list[Pred]):
        self.path = path
        self.parts = parts
        self.preds = preds

    def match(self, doc: Any) -> bool:
        parts = self.parts
        if len(parts) == 1 and type(doc) is dict:
            # The common case, without the generic walk: a top-level field.
            name = parts[0]
            if name in doc:
                values: list = [doc[name]]
                missing = False
            else:
                values = []
                missing = True
        else:
            values, missing, _ = resolve(doc, parts)
        # Plain loops in the three matchers below: they run once per document in a scan.
        for p in self.preds:  # noqa: SIM110
            if not p.test(values, missing):
                return False
        return True


class And(Node):
    __slots__ = ("children",)

    def __init__(self, children: list[Node]):
        self.children = children

    def match(self, doc: Any) -> bool:
        for c in self.children:  # noqa: SIM110
            if not c.match(doc):
                return False
        return True


class Or(Node):
    __slots__ = ("children",)

    def __init__(self, children: list[Node]):
        self.children = children

    def match(self, doc: Any) -> bool:
        for c in self.children:  # noqa: SIM110
            if c.match(doc):
                return True
        return False


class Nor(Or):
    __slots__ = ()

    def match(self, doc: Any) -> bool:
        return not Or.match(self, doc)


# -- compiling ---------------------------------------------------------------------------------


def compile_filter(spec: Any) -> Node:
    """Compile a filter document (``None`` or ``{}`` matches everything)."""
    if spec is None:
        return MatchAll()
    if not isinstance(spec, dict):
        raise ValidationError(
            f"a filter must be a dict such as {{'status': 'open'}}, got {type(spec).__name__}"
        )
    return _compile_doc(spec, "")


def _compile_doc(spec: dict, where: str) -> Node:
    nodes: list[Node] = []
    for name, value in spec.items():
        if not isinstance(name, str):
            raise ValidationError(f"filter field names must be strings, got {name!r}{where}")
        if name.startswith("$"):
            if name not in LOGICAL_OPERATORS:
                hint = " ($not applies to a field: {'path': {'$not': {...}}})" if name == "$not" else ""
                raise ValidationError(
                    f"unknown top-level operator {name!r}{where}; use one of "
                    f"{', '.join(LOGICAL_OPERATORS)} or a field path{hint}"
                )
            if not isinstance(value, list) or not value:
                raise ValidationError(f"operator {name!r}{where} needs a non-empty list of filters")
            children = []
            for i, sub in enumerate(value):
                if not isinstance(sub, dict):
                    raise ValidationError(
                        f"operator {name!r}{where}: item {i} must be a filter dict, got {type(sub).__name__}"
                    )
                children.append(_compile_doc(sub, f" (in {name}[{i}])"))
            nodes.append(
                And(children) if name == "$and" else Or(children) if name == "$or" else Nor(children)
            )
        else:
            parts = parse_path(name, "filter path")
            nodes.append(Field(name, parts, _compile_field(name, value)))
    if not nodes:
        return MatchAll()
    return nodes[0] if len(nodes) == 1 else And(nodes)


def _is_operator_doc(value: Any, path: str) -> bool:
    if type(value) is not dict or not value:
        return False
    dollar = [k for k in value if isinstance(k, str) and k.startswith("$")]
    if not dollar:
        return False
    if len(dollar) != len(value):
        raise ValidationError(
            f"filter at path {path!r} mixes operators ({', '.join(dollar)}) with plain fields; "
            "use either {'$op': value} or a literal document"
        )
    return True


def _check_value(value: Any, op: str, path: str) -> None:
    try:
        sort_key(value)
    except TypeError as exc:
        raise ValidationError(f"operator {op!r} at path {path!r}: {exc}") from None
    except RecursionError:
        raise ValidationError(f"operator {op!r} at path {path!r}: the operand is nested too deeply") from None


def _compile_field(path: str, value: Any) -> list[Pred]:
    if not _is_operator_doc(value, path):
        _check_value(value, "$eq", path)
        return [Eq("$eq", value)]
    return [_compile_op(path, op, operand) for op, operand in value.items()]


def _compile_op(path: str, op: str, operand: Any) -> Pred:
    if op in ("$eq", "$ne"):
        _check_value(operand, op, path)
        return Eq(op, operand) if op == "$eq" else Ne(op, operand)
    if op in ("$in", "$nin"):
        if not isinstance(operand, list | tuple):
            raise ValidationError(
                f"operator {op!r} at path {path!r} needs a list, got {type(operand).__name__}"
            )
        operand = list(operand)
        _check_value(operand, op, path)
        return In(op, operand) if op == "$in" else Nin(op, operand)
    if op in ("$gt", "$gte", "$lt", "$lte"):
        _check_value(operand, op, path)
        if operand is None:
            return Eq("$eq", None) if op in ("$gte", "$lte") else Nothing(op, None)
        return Range(op, operand)
    if op == "$exists":
        if operand not in (True, False) or not isinstance(operand, bool | int):
            raise ValidationError(f"operator '$exists' at path {path!r} needs true or false, got {operand!r}")
        return Exists(op, bool(operand))
    if op == "$not":
        if type(operand) is not dict or not operand:
            raise ValidationError(
                f"operator '$not' at path {path!r} needs an operator document such as "
                f"{{'$gt': 5}}, got {operand!r}"
            )
        preds = []
        for sub_op, sub_operand in operand.items():
            if not isinstance(sub_op, str) or not sub_op.startswith("$"):
                raise ValidationError(
                    f"operator '$not' at path {path!r} takes operators only, got the field {sub_op!r}"
                )
            preds.append(_compile_op(path, sub_op, sub_operand))
        return Not(op, operand, preds)
    raise ValidationError(
        f"unknown operator {op!r} at path {path!r}; supported: {', '.join(FIELD_OPERATORS)}"
    )


def equality_fields(node: Node) -> dict[str, Any]:
    """``{path: value}`` of the plain equalities a filter requires at its top level (through
    ``$and``); an upsert seeds its new document with them."""
    out: dict[str, Any] = {}
    stack = [node]
    while stack:
        n = stack.pop(0)
        if isinstance(n, And):
            stack.extend(n.children)
        elif isinstance(n, Field):
            for p in n.preds:
                if type(p) is Eq:
                    out[n.path] = p.operand
    return out


__all__ = [
    "FIELD_OPERATORS",
    "LOGICAL_OPERATORS",
    "And",
    "Eq",
    "Field",
    "In",
    "MatchAll",
    "Node",
    "Nor",
    "Or",
    "R_NULL",
    "R_NUM",
    "Range",
    "candidates",
    "compile_filter",
    "equality_fields",
    "parse_path",
    "resolve",
]
