"""``verify``: walk the hash chain and every index, and report the first bad record."""

from __future__ import annotations

from collections.abc import Callable

import msgpack
import msgspec

from journal.codec import ZERO_HASH, unpack_raw
from journal.errors import CorruptionError
from journal.records import FIELD_COUNT, PREV, RUN_ID, SEQ, TS, TYPE, WRITE_ID
from journal.store import Journal


class VerifyReport(msgspec.Struct, frozen=True, kw_only=True):
    """What ``verify`` found."""

    ok: bool
    """True when the chain and every index check out."""
    checked: int
    """How many events were checked."""
    first_bad: int | None = None
    """Seq of the first bad event (or of the event a bad index entry names), else None."""
    reason: str | None = None
    """What was wrong with it, else None."""


def verify_journal(journal: Journal, progress: Callable[[int, int], None] | None = None) -> VerifyReport:
    """Check every record's hash, seq, chain link and clock, then the run, type and idempotency
    indexes and the head pointer. Reads everything once; holds one small string per event."""
    head = journal.head_seq
    run_of: list[str | None] = [None] * (head + 1)
    type_of: list[str | None] = [None] * (head + 1)
    write_id_of: dict[int, str] = {}
    prev_hash = ZERO_HASH
    prev_ts = 0
    expected = 1
    try:
        for seq, stored in journal.iter_stored(0, head):
            if seq != expected:
                return _bad(expected - 1, expected, f"event {expected} is missing")
            try:
                digest, canonical = journal.codec.open(stored, seq)
                f = unpack_raw(canonical)
            except CorruptionError as exc:
                return _bad(seq - 1, seq, str(exc))
            except Exception as exc:  # undecodable msgpack
                return _bad(seq - 1, seq, f"record {seq} does not decode: {exc}")
            if not isinstance(f, list) or len(f) < FIELD_COUNT:
                return _bad(seq - 1, seq, f"record {seq} has a malformed field list")
            if f[SEQ] != seq:
                return _bad(seq - 1, seq, f"record stored at {seq} says it is event {f[SEQ]}")
            if f[PREV] != prev_hash:
                return _bad(seq - 1, seq, f"record {seq} does not link to the hash of record {seq - 1}")
            if not isinstance(f[TS], int) or f[TS] <= prev_ts:
                return _bad(seq - 1, seq, f"record {seq} has a timestamp that does not increase")
            run_of[seq] = f[RUN_ID]
            type_of[seq] = f[TYPE]
            if f[WRITE_ID] is not None:
                write_id_of[seq] = f[WRITE_ID]
            prev_hash, prev_ts = digest, f[TS]
            expected = seq + 1
            if progress is not None and seq % 10_000 == 0:
                progress(seq, head)
    except CorruptionError as exc:
        return _bad(expected - 1, expected, str(exc))
    except Exception as exc:  # RocksDB reports on-disk corruption as a plain Exception
        return _bad(expected - 1, expected, f"the store cannot read event {expected}: {exc}")
    if expected != head + 1:
        return _bad(expected - 1, expected, f"the journal ends at {expected - 1} but its head is {head}")
    if journal.head_hash != prev_hash:
        return _bad(head, head, "the head pointer does not match the last record")

    for cf_name, owner_of, what in (("runs", run_of, "run"), ("types", type_of, "type")):
        covered = bytearray(head + 1)
        try:
            for name, first, seqs in journal.iter_index(cf_name):
                if not seqs or seqs[0] != first or seqs != sorted(seqs):
                    return _bad(head, first, f"{what} index entry {name!r}@{first} is malformed")
                for seq in seqs:
                    if not 1 <= seq <= head or owner_of[seq] != name or covered[seq]:
                        return _bad(head, seq, f"{what} index lists event {seq} under {name!r} wrongly")
                    covered[seq] = 1
        except CorruptionError as exc:
            return _bad(head, None, str(exc))
        missing = covered.find(0, 1)
        if missing != -1:
            return _bad(head, missing, f"event {missing} is missing from the {what} index")

    try:
        for write_id, value in journal.iter_idem():
            try:
                first, last = msgpack.unpackb(value)[:2]
            except Exception:
                return _bad(head, None, f"idempotency entry {write_id!r} does not decode")
            if first and not (
                1 <= first <= last <= head
                and all(write_id_of.get(s) == write_id for s in range(first, last + 1))
            ):
                return _bad(
                    head, first, f"idempotency entry {write_id!r} names events {first}..{last} wrongly"
                )
    except CorruptionError as exc:
        return _bad(head, None, str(exc))
    return VerifyReport(ok=True, checked=head)


def _bad(checked: int, seq: int | None, reason: str) -> VerifyReport:
    return VerifyReport(ok=False, checked=max(checked, 0), first_bad=seq, reason=reason)
