"""Sorts and field projections: how query results are ordered and shaped.

Sorting follows ``projections.ordering`` (MongoDB's type order). A field that holds an array
sorts by its smallest element when ascending and its largest when descending; a missing field
sorts as null and an empty array before null. Ties keep the order the documents came in
(``_id`` order), so every sort is deterministic.

A projection either includes fields (``{"a": 1, "b.c": 1}``) or excludes them
(``{"a": 0}``); ``_id`` and ``_rev`` are returned unless excluded explicitly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from journal.errors import ValidationError
from projections.ordering import EMPTY_KEY, NULL_KEY, sort_key
from projections.query import parse_path, resolve

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


def sort_docs(items: list, spec: list[tuple[str, int]], doc: Callable[[Any], Any] = lambda x: x) -> list:
    """Sort ``items`` in place by ``spec``; ``doc(item)`` is the document of an item. Items
    come in ``_id`` order, which breaks ties (the sorts are stable)."""
    for path, direction in reversed(spec):
        parts = tuple(path.split("."))
        items.sort(
            key=lambda it, p=parts, s=direction: field_sort_key(doc(it), p, s), reverse=direction == -1
        )
    return items


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
