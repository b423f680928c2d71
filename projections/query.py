"""The query language of collections: filters, sorts and projections with MongoDB semantics.

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
from projections.ordering import (
    EMPTY_KEY,
    NAN_KEY,
    NULL_KEY,
    R_NULL,
    R_NUM,
    sort_key,
)

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


# -- sorting -----------------------------------------------------------------------------------


def normalize_sort(spec: Any) -> list[tuple[str, int]]:
    """``[(path, 1 | -1), ...]`` from a path, a ``{path: dir}`` dict or a list of pairs."""
    if spec is None:
        return []
    if isinstance(spec, str):
        items: list = [(spec, 1)]
    elif isinstance(spec, dict):
        items = list(spec.items())
    elif isinstance(spec, list | tuple):
        items = []
        for item in spec:
            if isinstance(item, str):
                items.append((item, 1))
            elif isinstance(item, list | tuple) and len(item) == 2:
                items.append(tuple(item))
            else:
                raise ValidationError(f"sort items must be a path or a (path, 1 | -1) pair, got {item!r}")
    else:
        raise ValidationError(
            f"sort must be a path, a {{path: 1 | -1}} dict or a list of pairs, got {spec!r}"
        )
    out = []
    for path, direction in items:
        parse_path(path, "sort path")
        if direction not in (1, -1) or isinstance(direction, bool):
            raise ValidationError(f"sort direction for {path!r} must be 1 or -1, got {direction!r}")
        out.append((path, int(direction)))
    return out


def field_sort_key(doc: Any, parts: tuple[str, ...], direction: int) -> tuple:
    """The key a document sorts by on one field: for arrays the smallest element (ascending) or
    the largest (descending), as MongoDB does; missing fields sort as null, empty arrays
    before null."""
    values, missing, _ = resolve(doc, parts)
    keys = []
    for v in values:
        if type(v) is list:
            if v:
                keys.extend(sort_key(x) for x in v)
            else:
                keys.append(EMPTY_KEY)
        else:
            keys.append(sort_key(v))
    if missing or not keys:
        keys.append(NULL_KEY)
    return min(keys) if direction == 1 else max(keys)


def sort_docs(docs: list, spec: list[tuple[str, int]]) -> list:
    """Sort ``docs`` (already in ``_id`` order, which breaks ties) by ``spec``."""
    for path, direction in reversed(spec):
        parts = tuple(path.split("."))
        docs.sort(key=lambda d, p=parts, s=direction: field_sort_key(d, p, s), reverse=direction == -1)
    return docs


# -- projections -------------------------------------------------------------------------------


class Projection:
    """Which fields of a document to return: include some, or exclude some.

    ``_id`` and ``_rev`` are returned unless excluded explicitly (``{"_rev": 0}``)."""

    __slots__ = ("include", "tree", "keep_id", "keep_rev")

    def __init__(self, include: bool, tree: dict, keep_id: bool, keep_rev: bool):
        self.include = include
        self.tree = tree
        self.keep_id = keep_id
        self.keep_rev = keep_rev

    def apply(self, doc: dict) -> dict:
        if self.include:
            out = _include(doc, self.tree)
            if self.keep_id and "_id" in doc:
                out = {"_id": doc["_id"], **out}
            if self.keep_rev and "_rev" in doc:
                out["_rev"] = doc["_rev"]
            return out
        out = _exclude(doc, self.tree)
        if not self.keep_id:
            out.pop("_id", None)
        if not self.keep_rev:
            out.pop("_rev", None)
        return out


def compile_projection(spec: Any) -> Projection | None:
    """Compile ``{path: 1, ...}`` (include) or ``{path: 0, ...}`` (exclude); None means all."""
    if spec is None:
        return None
    if isinstance(spec, list | tuple):
        spec = dict.fromkeys(spec, 1)
    if not isinstance(spec, dict):
        raise ValidationError(f"projection must be a {{path: 0 | 1}} dict or a list of paths, got {spec!r}")
    keep_id = keep_rev = True
    modes = set()
    tree: dict = {}
    for path, flag in spec.items():
        if flag not in (0, 1) or not isinstance(flag, bool | int):
            raise ValidationError(f"projection of {path!r} must be 0/1 or False/True, got {flag!r}")
        parts = parse_path(path, "projection path")
        if path in ("_id", "_rev"):
            if path == "_id":
                keep_id = bool(flag)
            else:
                keep_rev = bool(flag)
            continue
        modes.add(bool(flag))
        _tree_add(tree, parts, path)
    if len(modes) > 1:
        raise ValidationError(
            "a projection either includes fields (1) or excludes them (0), not both "
            "(only _id and _rev may differ)"
        )
    include = modes == {True}
    if not modes:
        # Only _id/_rev given: {"_id": 0} excludes it; {"_id": 1} returns _id (and _rev) alone.
        include = (keep_id and spec.get("_id", 0) == 1) or (keep_rev and spec.get("_rev", 0) == 1)
    return Projection(include, tree, keep_id, keep_rev)


def _tree_add(tree: dict, parts: tuple[str, ...], path: str) -> None:
    node = tree
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        sub = node.get(part)
        if sub is True or (last and sub is not None):
            raise ValidationError(f"projection path {path!r} collides with another path of the projection")
        if last:
            node[part] = True
        else:
            node = node.setdefault(part, {})


def _include(doc: dict, tree: dict) -> dict:
    out = {}
    for name, value in doc.items():
        sub = tree.get(name)
        if sub is None:
            continue
        if sub is True:
            out[name] = value
        elif type(value) is dict:
            out[name] = _include(value, sub)
        elif type(value) is list:
            out[name] = [_include(v, sub) for v in value if type(v) is dict]
    return out


def _exclude(doc: dict, tree: dict) -> dict:
    out = {}
    for name, value in doc.items():
        sub = tree.get(name)
        if sub is None:
            out[name] = value
        elif sub is True:
            continue
        elif type(value) is dict:
            out[name] = _exclude(value, sub)
        elif type(value) is list:
            out[name] = [_exclude(v, sub) if type(v) is dict else v for v in value]
        else:
            out[name] = value
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
    "Projection",
    "R_NULL",
    "R_NUM",
    "Range",
    "candidates",
    "compile_filter",
    "compile_projection",
    "equality_fields",
    "field_sort_key",
    "normalize_sort",
    "parse_path",
    "resolve",
    "sort_docs",
]
