"""Vector operations, checked and packed on the caller's side.

Embeddings travel as little-endian float32 bytes: checked for shape and finiteness here
(a wrong dimension, NaN or an infinity is refused before anything is sent) and stored as they
are, so the canonical vectors in the journal, the snapshots and the index are bit-identical.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from journal.codec import pack_value
from journal.errors import ValidationError
from journal.settings import Settings
from projections.commands import Op, check_name, check_size
from projections.doc_commands import check_collection
from projections.updates import check_document, check_id
from projections.vectors import METRICS

_DEFAULTS = Settings()
MAX_DIM = 65_536
_F32 = np.dtype("<f4")


class VecCreate(Op):
    coll: str
    dim: int
    metric: str | None = None


class VecUpsert(Op):
    coll: str
    ids: list
    vectors: list  # float32 bytes each
    metas: list  # packed metadata or None each


class VecDelete(Op):
    coll: str
    ids: list


class VecCompact(Op):
    coll: str


def check_dim(dim: Any) -> None:
    if isinstance(dim, bool) or not isinstance(dim, int) or not 1 <= dim <= MAX_DIM:
        raise ValidationError(f"dim must be an int between 1 and {MAX_DIM}, got {dim!r}")


def check_metric(metric: Any, *, optional: bool = False) -> None:
    if metric is None and optional:
        return
    if metric not in METRICS:
        raise ValidationError(f"metric must be one of {', '.join(map(repr, METRICS))}, got {metric!r}")


def encode_vector(embedding: Any, dim: int, metric: str, what: str = "the embedding") -> bytes:
    """Little-endian float32 bytes of ``embedding``; ``ValidationError`` for a wrong shape, a
    non-numeric value, NaN, an infinity (also after rounding to float32), or a zero vector
    under the cosine metric."""
    if (
        type(embedding) is np.ndarray
        and embedding.dtype == _F32
        and embedding.shape == (dim,)
        and np.isfinite(embedding).all()
        and (metric != "cosine" or embedding.any())
    ):
        return embedding.tobytes()  # the common case: float32 already; otherwise check below
    try:
        arr = np.asarray(embedding)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"{what} is not a vector of numbers: {exc}") from None
    if arr.dtype.kind not in "fiu":
        raise ValidationError(f"{what} must hold numbers, got values of type {arr.dtype}")
    if arr.shape != (dim,):
        raise ValidationError(f"{what} has shape {arr.shape}; this collection needs ({dim},) vectors")
    with np.errstate(over="ignore"):  # values beyond float32 become inf, refused just below
        vec = arr.astype("<f4")
    if not np.isfinite(vec).all():
        bad = int(np.flatnonzero(~np.isfinite(vec))[0])
        raise ValidationError(
            f"{what} holds {arr[bad]!r} at position {bad}; NaN and infinite values (or values "
            "beyond float32's range) cannot be searched"
        )
    if metric == "cosine" and not vec.any():
        raise ValidationError(f"{what} is all zeros, which has no direction for the cosine metric")
    return vec.tobytes()


def vec_create_op(coll, dim, metric=None, *, tool=None) -> VecCreate:
    check_collection(coll, "vector collection name")
    check_dim(dim)
    check_metric(metric, optional=True)
    check_name(tool, "tool", optional=True)
    return VecCreate(coll=coll, dim=dim, metric=metric, tool=tool)


def vec_upsert_op(coll, items, *, dim, metric, tool=None, limits=_DEFAULTS) -> VecUpsert:
    """Upsert ``items``: ``(id, embedding, metadata)`` triples (metadata a dict or None)."""
    check_collection(coll, "vector collection name")
    check_name(tool, "tool", optional=True)
    ids: list = []
    vectors: list = []
    metas: list = []
    for i, item in enumerate(items):
        if isinstance(item, dict):
            item = (item.get("id"), item.get("embedding"), item.get("metadata"))
        if not isinstance(item, list | tuple) or len(item) not in (2, 3):
            raise ValidationError(f"item {i} must be an (id, embedding, metadata) triple, got {item!r}")
        item_id, embedding = item[0], item[1]
        metadata = item[2] if len(item) == 3 else None
        check_id(item_id, f"vector id (item {i})")
        vectors.append(encode_vector(embedding, dim, metric, f"the embedding of {item_id!r}"))
        if metadata is None:
            metas.append(None)
        else:
            check_document(metadata, f"the metadata of {item_id!r}")
            metas.append(
                check_size(pack_value(metadata, what="metadata"), f"the metadata of {item_id!r}", limits)
            )
        ids.append(item_id)
    if not ids:
        raise ValidationError("upsert needs at least one (id, embedding, metadata) item")
    return VecUpsert(coll=coll, ids=ids, vectors=vectors, metas=metas, tool=tool)


def vec_delete_op(coll, ids, *, tool=None) -> VecDelete:
    check_collection(coll, "vector collection name")
    check_name(tool, "tool", optional=True)
    ids = list(ids)
    if not ids:
        raise ValidationError("delete needs at least one id")
    for item_id in ids:
        check_id(item_id, "vector id")
    return VecDelete(coll=coll, ids=ids, tool=tool)


def vec_compact_op(coll, *, tool=None) -> VecCompact:
    check_collection(coll, "vector collection name")
    check_name(tool, "tool", optional=True)
    return VecCompact(coll=coll, tool=tool)
