"""Rebuilding the coordinator's state from its journal: newest sound snapshot, then the tail.

A snapshot is only an optimisation: one that does not decode or does not match the journal's
hash at its seq is skipped (and noted), and the state is folded from further back.
"""

from __future__ import annotations

import logging

from coordination.state import CoordinatorState
from journal.codec import ZERO_HASH, unpack_raw
from journal.errors import CorruptionError
from journal.records import PREV
from journal.snapshots import open_snapshot, seal_snapshot
from journal.store import Journal

log = logging.getLogger("swarmlog.coordinator")


def recover(journal: Journal, notes: list[str]) -> CoordinatorState:
    """The state after the journal's last event. Skipped snapshots are appended to ``notes``;
    raises ``CorruptionError`` when the journal's chain is broken."""
    state, prev = _load_snapshot(journal, notes)
    for seq, digest, canonical in journal.iter_canonical(state.seq, journal.head_seq):
        f = unpack_raw(canonical)
        if f[PREV] != prev:
            raise CorruptionError(f"coordinator event {seq} does not link to event {seq - 1}; run verify()")
        state.apply(f)
        prev = digest
    return state


def fold_all(journal: Journal) -> CoordinatorState:
    """A fresh fold of every event (no snapshot): what ``verify`` compares the live state with."""
    state = CoordinatorState()
    for _seq, _digest, canonical in journal.iter_canonical():
        state.apply(unpack_raw(canonical))
    return state


def write_snapshot(journal: Journal, state: CoordinatorState, head_hash: bytes, keep: int) -> None:
    """Store ``state`` (after event ``state.seq``, whose hash is ``head_hash``)."""
    blob = seal_snapshot({"state": state.dump(), "hash": head_hash})
    journal.put_snapshot(state.seq, blob, keep)


def newest_snapshot_seq(journal: Journal) -> int:
    for seq, _ in journal.snapshots():
        return seq
    return 0


def _load_snapshot(journal: Journal, notes: list[str]) -> tuple[CoordinatorState, bytes]:
    for seq, blob in journal.snapshots(journal.head_seq):
        try:
            snap = open_snapshot(blob, seq)
            state = CoordinatorState.load(snap["state"])
            digest, _ = journal.canonical(seq)
            if state.seq != seq or snap["hash"] != digest:
                raise CorruptionError(f"snapshot at {seq} does not match the journal")
            return state, digest
        except (CorruptionError, KeyError, TypeError, ValueError) as exc:
            note = f"skipped coordinator snapshot at {seq}: {exc}"
            log.warning("%s: %s", journal.path, note)
            notes.append(note)
    return CoordinatorState(), ZERO_HASH
