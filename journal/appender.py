"""``Appender``: encode, hash and chain records onto one journal, a commit at a time.

The namespace engine inlines the same steps in its hot path (``NamespaceEngine._emit``); this is
the plain version for journals with a simpler write path, such as the coordinator's. It owns the
chain head (next seq, previous hash) between commits, so a commit that fails to write leaves the
head where the journal is.
"""

from __future__ import annotations

from typing import Any

import msgspec

from journal.codec import blake
from journal.errors import ValidationError
from journal.store import CommitBuilder, Journal


class Appender:
    """Builds chained records for one journal. Not thread-safe: callers hold their write lock."""

    __slots__ = ("_encode", "journal", "next_seq", "prev", "ts")

    def __init__(self, journal: Journal):
        self.journal = journal
        self._encode = msgspec.msgpack.Encoder().encode
        self.reset()

    def reset(self) -> None:
        """Put the chain head back where the journal's durable head is."""
        self.next_seq = self.journal.head_seq + 1
        self.prev = self.journal.head_hash
        self.ts = self.journal.head_ts

    def mark(self) -> tuple[int, bytes, int]:
        """The chain head now, for ``rollback`` when a record added after it is dropped."""
        return self.next_seq, self.prev, self.ts

    def rollback(self, mark: tuple[int, bytes, int]) -> None:
        """Put the chain head back to ``mark`` (drop the builder's records after it too)."""
        self.next_seq, self.prev, self.ts = mark

    def emit(
        self,
        builder: CommitBuilder,
        *,
        ts: int,
        run_id: str,
        agent: str | None,
        tool: str | None,
        type_: str,
        payload: Any,
        source: Any = None,
        write_id: str | None = None,
        extra: Any = None,
    ) -> tuple[int, bytes, bytes]:
        """Add one record to ``builder`` and advance the chain head.

        Returns ``(seq, digest, canonical bytes)``; raises ``ValidationError`` (nothing added)
        when the record is larger than ``Settings.max_record_bytes``.
        """
        seq = self.next_seq
        fields = [
            seq,
            f"{self.journal.uid}-{seq}",
            ts,
            run_id,
            agent,
            tool,
            type_,
            payload,
            source,
            write_id,
            self.prev,
            extra,
        ]
        canonical = self._encode(fields)
        limit = self.journal.settings.max_record_bytes
        if len(canonical) > limit:
            raise ValidationError(
                f"the {type_} event is {len(canonical)} bytes; the limit is {limit} "
                "(Settings.max_record_bytes). Store large values elsewhere and keep a reference."
            )
        digest = blake(canonical)
        builder.add(seq, run_id, type_, self.journal.codec.seal(canonical, digest))
        self.next_seq = seq + 1
        self.prev = digest
        self.ts = ts
        return seq, digest, canonical

    def write(self, builder: CommitBuilder) -> None:
        """Write ``builder`` as one commit (durable per the journal's setting). On any failure
        the chain head goes back to the journal's head and the error propagates."""
        try:
            self.journal.write(builder, self.prev, self.ts)
        except BaseException:
            self.reset()
            raise
