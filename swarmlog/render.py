"""How runs, replays and diffs look: rich tables for the terminal, one self-contained HTML page.

Nothing here reads a store; the CLI (``swarmlog.cli``) fetches and this module draws. A run's
timeline shows one row per event (seq, time, agent, type, short payload) with the traces that
explain an event nested under it.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable
from typing import Any

from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from journal.hlc import to_datetime
from journal.records import Event
from journal.verify import VerifyReport
from projections.refold import ReplayReport
from swarmlog.diff import RunDiff

PAYLOAD_CHARS = 72
_ROW_STYLE = {"equal": "", "changed": "yellow", "only_a": "red", "only_b": "green"}


# -- text helpers ----------------------------------------------------------------------------------


def short(value: Any, limit: int = PAYLOAD_CHARS) -> str:
    """``value`` as compact one-line JSON-like text, cut to ``limit`` characters."""
    text = json.dumps(_jsonable(value), ensure_ascii=False, separators=(",", ":"), sort_keys=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return repr(value)


def when(ev: Event) -> str:
    """The event's time as ``HH:MM:SS.mmm`` (UTC)."""
    return to_datetime(ev.ts).strftime("%H:%M:%S.%f")[:-3]


def body(ev: Event) -> Any:
    """What is worth showing of an event's payload (a trace's data, a put's key and value …)."""
    p = ev.payload
    if not isinstance(p, dict):
        return p
    if ev.type == "kv.put":
        return {p["key"]: p["value"]}
    if ev.type == "kv.delete":
        return {"delete": p["key"]}
    if ev.type.startswith("trace."):
        return p["data"]
    if ev.type == "call.tool":
        args = [short(a, 24) for a in p.get("args", [])]
        args += [f"{k}={short(v, 24)}" for k, v in p.get("kwargs", {}).items()]
        call = f"{p.get('name')}({', '.join(args)})"
        return {call: p["output"]} if "output" in p else {call: {"raised": p["error"].get("type")}}
    return p


def nest_traces(events: list[Event]) -> list[tuple[Event, list[Event]]]:
    """``(event, traces linked to it)`` in order; a trace whose event is not in the list stands alone."""
    seqs = {ev.seq for ev in events}
    linked: dict[int, list[Event]] = {}
    for ev in events:
        link = _link(ev)
        if link is not None and link in seqs:
            linked.setdefault(link, []).append(ev)
    out = []
    for ev in events:
        link = _link(ev)
        if link is not None and link in seqs:
            continue
        out.append((ev, linked.get(ev.seq, [])))
    return out


def _link(ev: Event) -> int | None:
    if ev.type.startswith("trace.") and isinstance(ev.payload, dict):
        link = ev.payload.get("event")
        return link if isinstance(link, int) else None
    return None


# -- terminal ----------------------------------------------------------------------------------


def timeline_table(events: list[Event], *, title: str = "") -> Table:
    """One row per event, traces nested under the event they explain."""
    several = len({ev.run_id for ev in events}) > 1
    table = Table(title=title or None, show_lines=False, header_style="bold")
    table.add_column("seq", justify="right", style="cyan", no_wrap=True)
    table.add_column("time", style="dim", no_wrap=True)
    if several:
        table.add_column("run", no_wrap=True)
    table.add_column("agent", no_wrap=True)
    table.add_column("type", style="bold", no_wrap=True)
    table.add_column("payload", overflow="fold")
    for ev, traces in nest_traces(events):
        table.add_row(*_cells(ev, several, nested=False))
        for t in traces:
            table.add_row(*_cells(t, several, nested=True), style="dim")
    return table


def _cells(ev: Event, several: bool, *, nested: bool) -> list[Any]:
    type_ = Text(("  └ " if nested else "") + ev.type)
    if ev.type.startswith("call."):
        type_.stylize("magenta")
    cells: list[Any] = [str(ev.seq), when(ev)]
    if several:
        cells.append(ev.run_id)
    cells += [ev.agent + (f" ({ev.tool})" if ev.tool else ""), type_, short(body(ev))]
    return cells


def replay_table(report: ReplayReport) -> Table:
    """The fields of a replay report that say something for its mode."""
    table = Table(title=f"replay of {report.run_id} ({report.mode})", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    table.add_row("ok", Text("yes", style="green") if report.ok else Text("NO", style="bold red"))
    table.add_row("events checked", str(report.events_checked))
    if report.mode == "fold":
        table.add_row("events re-folded", str(report.events_folded))
        table.add_row("snapshots compared", str(report.snapshots_compared))
    else:
        table.add_row("calls replayed", str(report.calls_replayed))
        table.add_row("writes checked", str(report.writes_checked))
        table.add_row("reads", str(report.reads))
    if report.first_mismatch is not None:
        table.add_row("first mismatch", f"{report.first_mismatch} ({report.mismatch_type})")
    if report.reason:
        table.add_row("reason", Text(report.reason, style="red"))
    if report.state_digest:
        table.add_row("state digest", report.state_digest[:16] + "…")
    return table


def divergence_panel(exc: BaseException) -> Panel:
    """A ``NonDeterminismError`` as a red panel with expected vs got."""
    return Panel(Text(str(exc)), title="replay diverged", border_style="red")


def diff_table(diff: RunDiff, *, max_rows: int | None = 200) -> Table:
    """The aligned comparison; the first divergence is marked and highlighted."""
    first = diff.first_divergence
    title = f"diff {diff.run_a} ↔ {diff.run_b}: " + (
        "identical" if first is None else f"first divergence at #{first.index}"
    )
    table = Table(title=title, header_style="bold")
    table.add_column("", no_wrap=True)
    table.add_column(f"#  {diff.run_a}", overflow="fold")
    table.add_column(f"#  {diff.run_b}", overflow="fold")
    rows = diff.rows if max_rows is None else diff.rows[:max_rows]
    for row in rows:
        mark = (
            "▶"
            if first is not None and _is_first(row, first.index)
            else {"equal": "=", "changed": "≠"}.get(row.op, "+" if row.op == "only_b" else "-")
        )
        style = "bold red reverse" if mark == "▶" else _ROW_STYLE[row.op]
        table.add_row(mark, _side(row.index_a, row.a), _side(row.index_b, row.b), style=style)
    if max_rows is not None and len(diff.rows) > max_rows:
        table.caption = f"{len(diff.rows) - max_rows} more rows"
    return table


def _is_first(row, index: int) -> bool:
    return row.op != "equal" and (row.index_a == index or row.index_b == index)


def _side(index: int | None, ev: Event | None) -> str:
    if ev is None:
        return ""
    return f"{index} · {ev.seq} {ev.type} {short(body(ev), 48)}"


def keys_table(diff: RunDiff) -> Table:
    """Keys the two runs left differently."""
    table = Table(title="final state: keys", header_style="bold")
    table.add_column("key")
    table.add_column(diff.run_a, overflow="fold")
    table.add_column(diff.run_b, overflow="fold")
    for k in diff.keys:
        table.add_row(k.key, _effect(k.a, k.a_value), _effect(k.b, k.b_value))
    return table


def _effect(state: str, value: Any) -> str:
    return short(value, 48) if state == "set" else f"({state})"


def verify_table(report: VerifyReport) -> Table:
    table = Table(title="verify", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    table.add_row("ok", Text("yes", style="green") if report.ok else Text("NO", style="bold red"))
    table.add_row("events checked", str(report.checked))
    if report.first_bad is not None:
        table.add_row("first bad event", str(report.first_bad))
    if report.reason:
        table.add_row("reason", Text(report.reason, style="red"))
    return table


# -- HTML ------------------------------------------------------------------------------------

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222;background:#fff}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:2em}
table{border-collapse:collapse;width:100%;margin:.5em 0}
th,td{border-bottom:1px solid #e3e3e3;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f4f4f6}
td.seq{text-align:right;color:#0a7;font-variant-numeric:tabular-nums}
td.time{color:#888;white-space:nowrap}
td.type{font-weight:600;white-space:nowrap}
tr.trace td{color:#666;font-size:.92em}
tr.trace td.type{padding-left:2em;font-weight:400}
tr.trace td.type::before{content:"└ "}
tr.call td.type{color:#a0a}
code{font:12px ui-monospace,monospace;white-space:pre-wrap;word-break:break-all}
tr.equal td{color:#555}
tr.changed{background:#fff7d6}tr.only_a{background:#ffe6e6}tr.only_b{background:#e5f7e5}
tr.divergence{outline:3px solid #d00;background:#ffd0d0}
p.first-divergence{font-weight:600;color:#b00}
.summary{color:#555}
"""

_SCRIPT = """
(function(){
  var events=document.querySelectorAll('tr.event').length;
  var traces=document.querySelectorAll('tr.trace').length;
  document.body.setAttribute('data-rendered-events', String(events));
  var s=document.getElementById('summary');
  if(s){s.textContent=events+' events and '+traces+' nested traces rendered';}
  var first=document.getElementById('first-divergence');
  if(first){first.scrollIntoView({block:'center'});}
  document.querySelectorAll('tr.event').forEach(function(row){
    row.addEventListener('click',function(){
      var seq=row.getAttribute('data-seq');
      document.querySelectorAll('tr.trace[data-parent="'+seq+'"]').forEach(function(t){
        t.hidden=!t.hidden;});});});
})();
"""


def html_page(
    namespace: str, timelines: Iterable[tuple[str, list[Event]]], diff: RunDiff | None = None
) -> str:
    """One self-contained HTML page (inline style and script, no external assets) with each
    run's timeline and, for two runs, their diff with the first divergence highlighted."""
    timelines = list(timelines)
    e = html.escape
    title = f"swarmlog · {namespace} · " + " ↔ ".join(run_id for run_id, _ in timelines)
    out = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{e(title)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{e(title)}</h1>",
        f'<p id="summary" class="summary">{sum(len(evs) for _, evs in timelines)} events</p>',
    ]
    if diff is not None:
        out += _html_diff(diff)
    for run_id, events in timelines:
        out += _html_timeline(run_id, events)
    out += [f"<script>{_SCRIPT}</script>", "</body></html>"]
    return "\n".join(out)


def _html_timeline(run_id: str, events: list[Event]) -> list[str]:
    e = html.escape
    out = [
        f'<section class="timeline" data-run="{e(run_id)}"><h2>run {e(run_id)}</h2>',
        "<table><thead><tr><th>seq</th><th>time</th><th>run</th><th>agent</th><th>type</th>"
        "<th>payload</th></tr></thead><tbody>",
    ]
    for ev, traces in nest_traces(events):
        out.append(_html_event_row(ev, "event", None))
        out += [_html_event_row(t, "trace", ev.seq) for t in traces]
    out.append("</tbody></table></section>")
    return out


def _html_event_row(ev: Event, kind: str, parent: int | None) -> str:
    e = html.escape
    classes = kind + (" call" if ev.type.startswith("call.") else "")
    parent_attr = f' data-parent="{parent}"' if parent is not None else ""
    agent = ev.agent + (f" ({ev.tool})" if ev.tool else "")
    return (
        f'<tr class="{classes}" data-seq="{ev.seq}" data-type="{e(ev.type)}"{parent_attr}>'
        f'<td class="seq">{ev.seq}</td><td class="time" title="{e(ev.time.isoformat())}">{e(when(ev))}</td>'
        f'<td>{e(ev.run_id)}</td><td>{e(agent)}</td><td class="type">{e(ev.type)}</td>'
        f"<td><code>{e(short(body(ev), 400))}</code></td></tr>"
    )


def _html_diff(diff: RunDiff) -> list[str]:
    e = html.escape
    first = diff.first_divergence
    out = [f'<section class="diff"><h2>diff {e(diff.run_a)} ↔ {e(diff.run_b)}</h2>']
    if first is None:
        out.append('<p class="identical">The two runs did the same, event for event.</p>')
    else:
        a = "end of history" if first.a is None else f"{first.a.seq} {first.a.type}"
        b = "end of history" if first.b is None else f"{first.b.seq} {first.b.type}"
        out.append(
            f'<p class="first-divergence">First divergence at #{first.index}: '
            f"{e(diff.run_a)} has {e(a)}, {e(diff.run_b)} has {e(b)}.</p>"
        )
    out.append(
        f"<table><thead><tr><th></th><th>#</th><th>{e(diff.run_a)}</th><th>#</th><th>{e(diff.run_b)}</th>"
        "</tr></thead><tbody>"
    )
    marked = False
    for row in diff.rows:
        classes = f"row {row.op}"
        ident = ""
        if first is not None and not marked and _is_first(row, first.index):
            classes += " divergence"
            ident = ' id="first-divergence"'
            marked = True
        sign = {"equal": "=", "changed": "≠", "only_a": "−", "only_b": "+"}[row.op]
        out.append(
            f'<tr class="{classes}"{ident}><td>{sign}</td>{_html_side(row.index_a, row.a)}'
            f"{_html_side(row.index_b, row.b)}</tr>"
        )
    out.append("</tbody></table>")
    if diff.keys:
        out.append(
            f"<h3>Keys left differently</h3><table><thead><tr><th>key</th><th>{e(diff.run_a)}</th>"
            f"<th>{e(diff.run_b)}</th></tr></thead><tbody>"
        )
        for k in diff.keys:
            out.append(
                f'<tr class="key"><td>{e(k.key)}</td><td><code>{e(_effect(k.a, k.a_value))}</code></td>'
                f"<td><code>{e(_effect(k.b, k.b_value))}</code></td></tr>"
            )
        out.append("</tbody></table>")
    out.append("</section>")
    return out


def _html_side(index: int | None, ev: Event | None) -> str:
    if ev is None:
        return "<td></td><td></td>"
    e = html.escape
    return (
        f'<td class="seq">{index}</td><td><span class="type">{ev.seq} {e(ev.type)}</span> '
        f"<code>{e(short(body(ev), 160))}</code></td>"
    )
