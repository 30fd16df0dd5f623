"""One self-contained HTML page for a run's quality results (no scripts, no CDN).

History checks get a small inline SVG chart: past values, the learned band
and today's value.
"""

from __future__ import annotations

import html
import json
from typing import Any

CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:1100px;color:#1d2430}
h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:2rem}
table{border-collapse:collapse;width:100%}th,td{padding:.4rem .6rem;border-bottom:1px solid #e3e6ea;
text-align:left;vertical-align:top}th{background:#f5f7f9}.pass{color:#17803d;font-weight:600}
.fail{color:#c0262d;font-weight:600}.muted{color:#67707c}code{font-size:12px;word-break:break-all}
.summary{display:flex;gap:2rem;margin:1rem 0}.summary div{background:#f5f7f9;padding:.6rem 1rem;border-radius:6px}
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _short(value: Any, limit: int = 160) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def history_chart(past: list[float], today: float | None, lo: float | None, hi: float | None,
                  ok: bool, width: int = 280, height: int = 80) -> str:
    """An inline SVG: past values as a line, the accepted band shaded, today's value as a dot."""
    values = [v for v in [*past, today, lo, hi] if v is not None]
    if not values:
        return ""
    vmin, vmax = min(values), max(values)
    span = (vmax - vmin) or 1.0
    n = len(past) + 1
    pad = 6

    def x(i: int) -> float:
        return pad + (width - 2 * pad) * (i / max(n - 1, 1))

    def y(v: float) -> float:
        return height - pad - (height - 2 * pad) * ((v - vmin) / span)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'role="img" aria-label="metric over past runs">']
    if lo is not None and hi is not None:
        parts.append(f'<rect x="0" y="{y(hi):.1f}" width="{width}" height="{max(y(lo) - y(hi), 1):.1f}" '
                     'fill="#e8f3ec"/>')
    if past:
        pts = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(past))
        parts.append(f'<polyline points="{pts}" fill="none" stroke="#5b6b7d" stroke-width="1.5"/>')
        parts += [f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="2" fill="#5b6b7d"/>' for i, v in enumerate(past)]
    if today is not None:
        colour = "#17803d" if ok else "#c0262d"
        parts.append(f'<circle cx="{x(n - 1):.1f}" cy="{y(today):.1f}" r="4" fill="{colour}"><title>today: '
                     f'{today:.6g}</title></circle>')
    parts.append("</svg>")
    return "".join(parts)


def _row(r: dict[str, Any]) -> str:
    d = r.get("details") or {}
    res = d.get("result") or {}
    status = '<span class="pass">PASS</span>' if r["success"] else '<span class="fail">FAIL</span>'
    counts = ""
    if res.get("unexpected_count") is not None:
        counts = (f'{res["unexpected_count"]:,} of {res.get("element_count", 0):,} '
                  f'({res.get("unexpected_percent", 0):.2f}%)')
    elif "observed_value" in res:
        counts = f"observed <code>{_e(_short(res['observed_value']))}</code>"
    sample = res.get("partial_unexpected_list") or []
    note = d.get("exception_info") or d.get("note") or ""
    chart = ""
    if "history" in res:
        chart = history_chart(res["history"], res.get("observed_value"), res.get("min_value"),
                              res.get("max_value"), r["success"])
    return (f"<tr><td>{status}</td><td><b>{_e(r['check_name'])}</b><br>"
            f"<span class='muted'>{_e(r['expectation_type'])}</span></td><td>{counts}</td>"
            f"<td><code>{_e(_short(sample)) if sample else ''}</code></td>"
            f"<td>{_e(note)}{chart}</td></tr>")


def render_report(run_id: str, results: list[dict[str, Any]], gates: list[dict[str, Any]]) -> str:
    """The page for one run: a summary per gate, then every check."""
    passed = sum(1 for r in results if r["success"])
    summary = [f"<div>Checks <b>{passed}/{len(results)}</b> passed</div>"]
    for g in gates:
        outcome = ("<span class='fail'>halted</span>" if g.get("halted") else
                   f"{g.get('rows_passed', 0):,} passed, {g.get('rows_quarantined', 0):,} quarantined")
        summary.append(f"<div>Gate <b>{_e(g.get('suite'))}</b> ({_e(g.get('policy'))}): "
                       f"{g.get('rows_in', 0):,} rows in, {outcome}</div>")
    suites: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        suites.setdefault(r["suite"], []).append(r)
    body = []
    for suite, rows in suites.items():
        body.append(f"<h2>Suite {_e(suite)}</h2><table><tr><th></th><th>Check</th><th>Result</th>"
                    "<th>Sample unexpected values</th><th>Notes</th></tr>")
        body += [_row(r) for r in rows]
        body.append("</table>")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>Quality report {_e(run_id)}</title>"
            f"<style>{CSS}</style></head><body><h1>Quality report for run <code>{_e(run_id)}</code></h1>"
            f"<div class='summary'>{''.join(summary)}</div>{''.join(body)}</body></html>")


def build_report(store: Any, run_id: str) -> str:
    """The report for a flow run or task run id (or a unique prefix) from the store."""
    from headrace.errors import RunNotFound

    results = store.get_quality_results(run_id)
    if not results:
        raise RunNotFound(f"no quality results for run {run_id!r}; "
                          "`headrace runs list` shows the runs, gates store results")
    flow_run_id = results[0]["flow_run_id"]
    gates = [p["profile"].get("gate", {}) for p in store.get_quality_profiles(flow_run_id)] \
        if flow_run_id else []
    return render_report(flow_run_id or run_id, results, gates)
