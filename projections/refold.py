"""``replay(run_id)`` without an agent: re-fold a run's history and check every transition.

The hash chain already fixes every event's bytes; what depends on the projections at write time
is what the engine *decided* from them, and every event records that: a ``kv.put`` or
``kv.delete`` holds the version it replaced (``prev``), a trace the event it explains, every
event that its run was open; document, index and vector events likewise record what they were
decided against (``projections.transitions``). So no digest is written per event or per commit
(which would cost every write): the re-fold starts from the state right before the run's first
event (nearest snapshot, then the journal), folds forward, and checks before each event that the
freshly folded state would have led to exactly what was recorded, and after it that the event
landed. Where a stored snapshot falls inside the range, the re-folded state's digest is compared
with the snapshot's, which checks the whole state at that point. A fork's history is re-folded
on its branch (see ``projections.lineage``). Nothing is written.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgpack
import msgspec

from journal.codec import blake, unpack_raw, unpack_value
from journal.errors import CorruptionError, NotFoundError
from journal.records import EXTRA, PAYLOAD, PREV, RUN_ID, SEQ, TS, TYPE
from journal.snapshots import open_snapshot
from projections import transitions
from projections.kv import E_VERSION
from projections.lineage import history, lineage
from projections.runs import R_BEGIN_SEQ, R_FORK_SEQ, R_LAST, R_STATUS, RUNNING
from projections.state import ProjectionSet

if TYPE_CHECKING:
    from projections.engine import NamespaceEngine


class ReplayReport(msgspec.Struct, frozen=True, kw_only=True):
    """What a replay of one run found."""

    run_id: str
    """The run replayed."""
    mode: str
    """``"fold"`` (``replay(run_id)``: events re-folded) or ``"agent"`` (the agent re-run)."""
    ok: bool
    """True when everything matched (an agent replay raises ``NonDeterminismError`` instead)."""
    events_checked: int
    """Events of the run's history checked (a fork's includes its parent's up to the fork point)."""
    events_folded: int = 0
    """fold: every event re-folded on the way, the run's and others' in between."""
    snapshots_compared: int = 0
    """fold: stored snapshots inside the range whose state digest was compared."""
    calls_replayed: int = 0
    """agent: ``call``/``random``/``now``/``uuid`` answered from the record (nothing called)."""
    writes_checked: int = 0
    """agent: write operations that re-encoded to the recorded event, byte for byte."""
    reads: int = 0
    """agent: reads answered as the run saw the namespace at that point."""
    first_mismatch: int | None = None
    """fold: seq of the first event whose transition did not match, else None."""
    mismatch_type: str | None = None
    """fold: that event's type."""
    reason: str | None = None
    """What did not match, else None."""
    state_digest: str | None = None
    """Digest of the run's state after its last event (fold: the re-folded state; agent: the
    recorded one): equal digests, equal state."""
    resumed_at: int | None = None
    """agent with ``resume=True``: seq after which the agent went on live, else None."""


def refold_run(engine: NamespaceEngine, run_id: str) -> ReplayReport:
    """Re-fold ``run_id``'s history on ``engine`` and check every transition (module doc)."""
    return _refold(engine, run_id, None)[0]


def refold_runs(engine: NamespaceEngine, run_ids: list[str]) -> list[ReplayReport | Exception]:
    """``refold_run`` for many runs, sweeping forward: main-line runs are taken in the order they
    began, and each starts from the state where the previous one ended (folded on to its start)
    instead of from a snapshot, so a stretch of journal is folded about once, not once per run.
    One item per run, in the order given: its report, or the error it raised."""
    with engine._lock:
        runs = engine.state.runs.runs
        begins = {rid: runs[rid][R_BEGIN_SEQ] if rid in runs else 0 for rid in run_ids}
    out: dict[str, ReplayReport | Exception] = {}
    carry: tuple[ProjectionSet, bytes] | None = None
    for run_id in sorted(set(run_ids), key=lambda rid: begins[rid]):
        start = begins[run_id] - 1
        base = None
        if carry is not None and carry[0].seq <= start:
            ps, prev = carry
            with engine._lock:
                engine._fold_range(ps, ps.seq, start, prev, [])
            base = (ps, engine.journal.canonical(start)[0] if start else prev)
        try:
            out[run_id], carry = _refold(engine, run_id, base)
        except Exception as exc:  # reported for this run; the sweep goes on from scratch
            out[run_id], carry = exc, None
    return [out[rid] for rid in run_ids]


def _refold(
    engine: NamespaceEngine, run_id: str, base: tuple[ProjectionSet, bytes] | None
) -> tuple[ReplayReport, tuple[ProjectionSet, bytes] | None]:
    """The re-fold of one run; ``base`` is the state right before it began (main-line runs
    only), else it is built from a snapshot. Also returns the state after the run's last event
    and that event's hash when the run is on the main line and matched, for the next run."""
    journal = engine.journal
    with engine._lock:
        engine._check_open()
        runs = engine.state.runs.runs
        r = runs.get(run_id)
        if r is None:
            raise NotFoundError(f"run {run_id!r} does not exist in namespace {engine.name!r}")
        last = r[R_LAST]
        fork_base, segments = lineage(runs, run_id)
        parts = history(runs, run_id)
        start = runs[parts[0][0]][R_BEGIN_SEQ] - 1
        main_end = fork_base if segments else last
        if base is not None and not segments and base[0].seq == start:
            ps, prev = base
        else:
            ps, prev, _ = engine._load_snapshot(start)
            engine._fold_range(ps, ps.seq, start, prev, [])
            prev = journal.canonical(start)[0] if start else prev
        snapshot_seqs = {seq for seq, _ in journal.snapshots(main_end) if start < seq}
    own = {rid: cut for rid, cut in parts}
    checked = folded = compared = 0

    def report(seq: int | None = None, type_: str | None = None, reason: str | None = None) -> ReplayReport:
        return ReplayReport(
            run_id=run_id,
            mode="fold",
            ok=reason is None,
            events_checked=checked,
            events_folded=folded,
            snapshots_compared=compared,
            first_mismatch=seq,
            mismatch_type=type_,
            reason=reason,
            state_digest=ps.digest() if reason is None else None,
        )

    def step(f: list) -> str | None:
        nonlocal checked, folded
        problem = _before(ps, f)
        if problem is None:
            ps.apply(f)
            problem = _after(ps, f)
        folded += 1
        cut = own.get(f[RUN_ID], -1)
        if cut is None or f[SEQ] <= cut:
            checked += 1
        return problem

    try:
        for seq, digest, canonical in journal.iter_canonical(start, main_end):
            f = unpack_raw(canonical)
            if f[PREV] != prev:
                return report(seq, f[TYPE], f"event {seq} does not link to event {seq - 1}"), None
            prev = digest
            problem = step(f)
            if problem is not None:
                return report(seq, f[TYPE], problem), None
            if seq in snapshot_seqs:
                compared += 1
                problem = _compare_snapshot(journal, seq, ps)
                if problem is not None:
                    return report(seq, f[TYPE], problem), None
        if segments:
            ps.lineage = frozenset(rid for rid, _ in segments)
            for rid, cut in segments:
                for seq in journal.run_seqs(rid, fork_base, last if cut is None else cut):
                    f = unpack_raw(journal.canonical(seq)[1])
                    problem = step(f)
                    if problem is not None:
                        return report(seq, f[TYPE], problem), None
    except CorruptionError as exc:
        return report(None, None, str(exc)), None
    return report(), (None if segments else (ps, prev))


def _before(ps: ProjectionSet, f: list) -> str | None:
    """Why the re-folded state would not have produced event ``f``, or None."""
    seq, run_id, type_, p, extra = f[SEQ], f[RUN_ID], f[TYPE], f[PAYLOAD], f[EXTRA]
    runs = ps.runs.runs
    r = runs.get(run_id)
    marked = extra is not None and "branch" in extra
    if type_ == "run.begin":
        if r is not None:
            return f"run {run_id!r} begins a second time"
        parent = p.get("parent")
        if parent is not None and parent not in runs:
            return f"run {run_id!r} names parent {parent!r}, which the re-fold does not know"
        if marked != (p.get("fork_seq") is not None):
            return f"run {run_id!r}: its branch marker does not match its fork point"
        return None
    if r is None:
        return f"run {run_id!r} writes before it began"
    if r[R_STATUS] != RUNNING:
        return f"run {run_id!r} writes after it ended with status {r[R_STATUS]!r}"
    if marked != (r[R_FORK_SEQ] is not None):
        return f"run {run_id!r}: its branch marker does not match whether it is a fork"
    if marked and (ps.lineage is None or run_id not in ps.lineage):
        return None  # another branch's write: it changes nothing here
    if type_ == "kv.put" or type_ == "kv.delete":
        key = p["key"]
        current = ps.kv.version(key, f[TS] >> 16)
        if p.get("prev") != current:
            return (
                f"{type_} of {key!r} recorded that it replaced version {p.get('prev')}, "
                f"but the re-folded state holds version {current}"
            )
        if type_ == "kv.delete" and current == 0:
            return f"kv.delete of {key!r} was journaled, but the re-folded state has no such key"
    elif type_.startswith("trace."):
        link = p.get("event")
        if link is not None and not (isinstance(link, int) and 1 <= link < seq):
            return f"the trace links to event {link!r}, which was not written before it"
    elif type_.startswith("call."):
        return _check_call(type_, p)
    elif type_.startswith(transitions.PREFIXES):
        return transitions.before(ps, type_, p)
    return None


def _after(ps: ProjectionSet, f: list) -> str | None:
    """Why the state after folding ``f`` is not what ``f`` says, or None."""
    seq, run_id, type_ = f[SEQ], f[RUN_ID], f[TYPE]
    r = ps.runs.runs.get(run_id)
    if r is None or r[R_LAST] != seq:
        return f"the re-fold did not count event {seq} for run {run_id!r}"
    extra = f[EXTRA]
    if extra is not None and "branch" in extra and (ps.lineage is None or run_id not in ps.lineage):
        return None
    if type_ == "kv.put":
        entry = ps.kv.entries.get(f[PAYLOAD]["key"])
        expires = f[PAYLOAD].get("ttl_ms")
        if (entry is None and expires is None) or (entry is not None and entry[E_VERSION] != seq):
            return f"after kv.put {seq} the re-folded key does not hold version {seq}"
    elif type_ == "kv.delete" and f[PAYLOAD]["key"] in ps.kv.entries:
        return f"after kv.delete {seq} the re-folded key still exists"
    elif type_ == "run.end" and r[R_STATUS] == RUNNING:
        return f"after run.end {seq} the re-folded run is still running"
    elif type_.startswith(transitions.PREFIXES):
        return transitions.after(ps, seq, type_, f[PAYLOAD])
    return None


def _check_call(type_: str, p: Any) -> str | None:
    try:
        body = unpack_value(p) if isinstance(p, bytes) else p
    except Exception as exc:
        return f"the {type_} payload does not decode: {exc}"
    if not isinstance(body, dict):
        return f"the {type_} payload is not a record"
    if type_ == "call.tool":
        if not isinstance(body.get("name"), str) or ("output" in body) == ("error" in body):
            return "the call.tool record needs a name and exactly one of output and error"
    elif "value" not in body:
        return f"the {type_} record has no value"
    return None


def _compare_snapshot(journal, seq: int, ps: ProjectionSet) -> str | None:
    for snap_seq, blob in journal.snapshots(seq):
        if snap_seq != seq:
            return None  # deleted meanwhile (only a few are kept): nothing to compare
        try:
            state = open_snapshot(blob, seq)["state"]
        except (CorruptionError, KeyError, TypeError) as exc:
            return f"the snapshot at {seq} cannot be read: {exc}"
        stored = blake(msgpack.packb(state, use_bin_type=True)).hex()
        if stored != ps.digest():
            return f"the re-folded state after event {seq} differs from the snapshot stored there"
        return None
    return None
