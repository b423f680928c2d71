"""Update operators (``$set $unset $inc $push $pull``), whole-document replacement, and the
rules a stored document follows.

``compile_update`` checks an update on the caller's side (operators, paths, operand types,
conflicting paths); ``Update.apply`` runs on the engine against the current document and
raises ``ValidationError`` for what only the document can tell (``$inc`` on a string, a path
through a number). The engine journals the resulting document, so folding never re-runs an
operator: replay cannot drift from what was decided.
"""

from __future__ import annotations

from typing import Any

from journal.errors import ValidationError
from projections.ordering import a_type, sort_key
from projections.query import Node, Pred, _compile_field, _is_operator_doc, compile_filter, parse_path

UPDATE_OPERATORS = ("$set", "$unset", "$inc", "$push", "$pull")
SYSTEM_FIELDS = ("_id", "_rev")
MAX_DEPTH = 64
MAX_ARRAY_PAD = 10_000


# -- documents ---------------------------------------------------------------------------------


def check_document(doc: Any, what: str = "a document") -> None:
    """A storable document: a dict whose field names (at every depth) are non-empty strings
    without dots, NUL or a leading ``$``, holding msgpack-encodable values."""
    if not isinstance(doc, dict):
        raise ValidationError(f"{what} must be a dict, got {type(doc).__name__}")
    _check_fields(doc, what, "", 0)


def _check_fields(value: Any, what: str, at: str, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise ValidationError(f"{what} is nested more than {MAX_DEPTH} levels deep (at {at or 'the top'})")
    t = type(value)
    if t is dict:
        for name, item in value.items():
            if not isinstance(name, str) or not name:
                raise ValidationError(
                    f"{what}: field names must be non-empty strings, got {name!r} at {at or 'the top'}"
                )
            if name[0] == "$" or "." in name or "\0" in name:
                raise ValidationError(
                    f"{what}: field name {name!r} (at {at or 'the top'}) may not start with '$' or "
                    "contain '.' or NUL; those are reserved for operators and paths"
                )
            _check_fields(item, what, f"{at}.{name}" if at else name, depth + 1)
    elif t is list or t is tuple:
        for i, item in enumerate(value):
            _check_fields(item, what, f"{at}.{i}" if at else str(i), depth + 1)
    elif value is not None and t not in (bool, int, float, str, bytes):
        raise ValidationError(
            f"{what}: the value at {at or 'the top'} is a {t.__name__}; use None, bool, int, float, "
            "str, bytes, and lists/dicts of those"
        )


def check_id(value: Any, what: str = "_id") -> None:
    """Document ids are strings or 64-bit ints (not bools)."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValidationError(f"{what} must be a string or an int, got {value!r}")
    if isinstance(value, str) and (not value or len(value) > 512):
        raise ValidationError(f"{what} must be 1-512 characters long, got {len(value)}")
    if isinstance(value, int) and not -(2**63) <= value < 2**63:
        raise ValidationError(f"{what} must fit in 64 bits, got {value}")


# -- updates -----------------------------------------------------------------------------------


class Update:
    """A compiled operator update: ``[(op, path, parts, operand)]`` applied in order."""

    __slots__ = ("steps",)

    def __init__(self, steps: list[tuple[str, str, tuple[str, ...], Any]]):
        self.steps = steps

    def apply(self, doc: dict) -> dict:
        """Apply to ``doc`` (a private copy, modified in place) and return it."""
        for op, path, parts, operand in self.steps:
            if op == "$set":
                _assign(_parent(doc, parts, op, path, create=True), parts[-1], operand, op, path)
            elif op == "$unset":
                _unset(doc, parts, op, path)
            elif op == "$inc":
                parent = _parent(doc, parts, op, path, create=True)
                current = _get(parent, parts[-1])
                if current is _ABSENT:
                    new = operand
                elif type(current) in (int, float):
                    new = current + operand
                else:
                    raise ValidationError(
                        f"$inc at path {path!r}: the field holds {a_type(current)}, not a number"
                    )
                _assign(parent, parts[-1], new, op, path)
            elif op == "$push":
                parent = _parent(doc, parts, op, path, create=True)
                current = _get(parent, parts[-1])
                if current is _ABSENT:
                    _assign(parent, parts[-1], list(operand), op, path)
                elif type(current) is list:
                    current.extend(operand)
                else:
                    raise ValidationError(
                        f"$push at path {path!r}: the field holds {a_type(current)}, not an array"
                    )
            elif op == "$pull":
                parent = _parent(doc, parts, op, path, create=False)
                current = _ABSENT if parent is _ABSENT else _get(parent, parts[-1])
                if current is _ABSENT:
                    continue
                if type(current) is not list:
                    raise ValidationError(
                        f"$pull at path {path!r}: the field holds {a_type(current)}, not an array"
                    )
                current[:] = [item for item in current if not operand(item)]
        return doc


def compile_update(spec: Any) -> Update:
    """Compile ``{"$set": {...}, "$inc": {...}, ...}``; ``ValidationError`` when malformed."""
    if not isinstance(spec, dict) or not spec:
        raise ValidationError(
            f"an update must be a non-empty dict of operators such as {{'$set': {{'a': 1}}}}, got {spec!r}"
        )
    plain = [k for k in spec if not (isinstance(k, str) and k.startswith("$"))]
    if plain:
        raise ValidationError(
            f"an update takes operators ({', '.join(UPDATE_OPERATORS)}), got the field(s) "
            f"{', '.join(map(repr, plain))}; to replace a whole document use replace_one"
        )
    steps = []
    seen: list[tuple[tuple[str, ...], str]] = []
    for op, fields in spec.items():
        if op not in UPDATE_OPERATORS:
            raise ValidationError(f"unknown update operator {op!r}; supported: {', '.join(UPDATE_OPERATORS)}")
        if not isinstance(fields, dict) or not fields:
            raise ValidationError(
                f"update operator {op!r} needs a non-empty {{path: value}} dict, got {fields!r}"
            )
        for path, operand in fields.items():
            parts = parse_path(path, f"{op} path")
            if parts[0] in SYSTEM_FIELDS:
                raise ValidationError(
                    f"{op} at path {path!r}: {parts[0]} is set by swarmlog and cannot be updated"
                )
            for other_parts, other in seen:
                n = min(len(parts), len(other_parts))
                if parts[:n] == other_parts[:n]:
                    raise ValidationError(
                        f"{op} at path {path!r} conflicts with {other!r} in the same update; "
                        "split it into two updates"
                    )
            seen.append((parts, path))
            steps.append((op, path, parts, _compile_operand(op, path, operand)))
    return Update(steps)


def _compile_operand(op: str, path: str, operand: Any) -> Any:
    if op == "$set":
        _check_value(operand, op, path)
        return operand
    if op == "$unset":
        return None
    if op == "$inc":
        if type(operand) not in (int, float):
            raise ValidationError(f"$inc at path {path!r} needs a number, got {operand!r}")
        return operand
    if op == "$push":
        if type(operand) is dict and any(isinstance(k, str) and k.startswith("$") for k in operand):
            if set(operand) != {"$each"}:
                raise ValidationError(
                    f"$push at path {path!r}: only the $each modifier is supported, got {sorted(operand)}"
                )
            items = operand["$each"]
            if not isinstance(items, list | tuple):
                raise ValidationError(f"$push at path {path!r}: $each needs a list, got {items!r}")
            items = list(items)
        else:
            items = [operand]
        _check_value(items, op, path)
        return items
    # $pull: a value to remove, an operator condition on elements, or a filter on element docs.
    if type(operand) is dict and operand:
        if _is_operator_doc(operand, path):
            preds = _compile_field(path, operand)
            return _element_test(preds)
        node = compile_filter(operand)
        return _doc_test(node)
    _check_value(operand, op, path)
    key = sort_key(operand)
    return lambda item: sort_key(item) == key


def _element_test(preds: list[Pred]):
    def test(item: Any) -> bool:
        values = [item]
        return all(p.test(values, False) for p in preds)

    return test


def _doc_test(node: Node):
    return lambda item: type(item) is dict and node.match(item)


def _check_value(value: Any, op: str, path: str) -> None:
    try:
        _check_fields(value, f"the {op} value at path {path!r}", "", 0)
    except RecursionError:
        raise ValidationError(f"the {op} value at path {path!r} is nested too deeply") from None


# -- applying ----------------------------------------------------------------------------------


class _Absent:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<absent>"


_ABSENT: Any = _Absent()


def _index(part: str, op: str, path: str) -> int:
    if not (part.isascii() and part.isdigit()):
        raise ValidationError(
            f"{op} at path {path!r}: {part!r} meets an array; use a numeric position such as "
            f"'{path.split('.')[0]}.0' to address an element"
        )
    idx = int(part)
    if idx > MAX_ARRAY_PAD:
        raise ValidationError(f"{op} at path {path!r}: position {idx} is beyond the limit of {MAX_ARRAY_PAD}")
    return idx


def _get(node: Any, part: str) -> Any:
    if type(node) is dict:
        return node.get(part, _ABSENT)
    if type(node) is list and part.isascii() and part.isdigit():
        idx = int(part)
        return node[idx] if idx < len(node) else _ABSENT
    return _ABSENT


def _parent(doc: dict, parts: tuple[str, ...], op: str, path: str, *, create: bool) -> Any:
    """The container holding the last component of ``parts`` (created along the way when
    ``create``); ``_ABSENT`` when it does not exist and may not be created."""
    node: Any = doc
    for i, part in enumerate(parts[:-1]):
        t = type(node)
        if t is dict:
            child = node.get(part, _ABSENT)
            if child is _ABSENT:
                if not create:
                    return _ABSENT
                child = node[part] = {}
        elif t is list:
            idx = _index(part, op, path)
            if idx >= len(node):
                if not create:
                    return _ABSENT
                node.extend([None] * (idx + 1 - len(node)))
                node[idx] = {}
            child = node[idx]
        else:
            raise ValidationError(
                f"{op} at path {path!r}: cannot reach {part!r} because "
                f"{'.'.join(parts[:i]) or 'the document'} holds {a_type(node)}"
            )
        node = child
    if type(node) not in (dict, list):
        if not create:
            raise ValidationError(
                f"{op} at path {path!r}: {'.'.join(parts[:-1])} holds {a_type(node)}, not a document"
            )
        raise ValidationError(
            f"{op} at path {path!r}: cannot create field {parts[-1]!r} because "
            f"{'.'.join(parts[:-1])} holds {a_type(node)}"
        )
    return node


def _assign(node: Any, part: str, value: Any, op: str, path: str) -> None:
    if type(node) is dict:
        node[part] = value
    else:
        idx = _index(part, op, path)
        if idx >= len(node):
            node.extend([None] * (idx + 1 - len(node)))
        node[idx] = value


def _unset(doc: dict, parts: tuple[str, ...], op: str, path: str) -> None:
    node: Any = doc
    for part in parts[:-1]:
        node = _get(node, part)
        if node is _ABSENT or type(node) not in (dict, list):
            return
    last = parts[-1]
    if type(node) is dict:
        node.pop(last, None)
    elif type(node) is list and last.isascii() and last.isdigit():
        idx = int(last)
        if idx < len(node):
            node[idx] = None  # MongoDB keeps the array's length and leaves a null


def replacement(doc: Any) -> dict:
    """Check a whole-document replacement (no operators; ``_rev`` is ignored)."""
    if isinstance(doc, dict) and any(isinstance(k, str) and k.startswith("$") for k in doc):
        raise ValidationError("a replacement document cannot hold operators; use update_one for $set & co.")
    check_document(doc, "the replacement document")
    return {k: v for k, v in doc.items() if k != "_rev"}
