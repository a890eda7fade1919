"""report.md and a self-contained report.html (inline SVG plots, no scripts, no external files) for a run."""

from __future__ import annotations

import html
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ragkit.evals.runner import compute_metrics, read_samples

N_WORST = 5

# (metric key, label, higher is better); the summary and per-category tables show these
SUMMARY = (
    ("retrieval/recall@1", "recall@1", True),
    ("retrieval/recall@5", "recall@5", True),
    ("retrieval/mrr", "MRR", True),
    ("retrieval/ndcg@10", "nDCG@10", True),
    ("answer/exact_match", "exact match", True),
    ("answer/f1", "token F1", True),
    ("answer/contains", "answer contains gold", True),
    ("claims/supported_rate", "supported claims", True),
    ("claims/unsupported_rate", "unsupported claims", False),
    ("citations/precision", "citation precision", True),
    ("citations/recall", "citation recall", True),
    ("abstention/rate_unanswerable", "abstains when unanswerable", True),
    ("abstention/false_rate_answerable", "abstains when answerable", False),
    ("abstention/relevance_auroc", "relevance AUROC", True),
    ("latency/retrieve_p50_s", "retrieve p50 (s)", False),
    ("latency/generate_p50_s", "generate p50 (s)", False),
    ("latency/generate_p95_s", "generate p95 (s)", False),
    ("latency/judge_p50_s", "judge p50 (s)", False),
    ("latency/total_p50_s", "total p50 (s)", False),
    ("latency/total_p95_s", "total p95 (s)", False),
    ("tokens/in_mean", "prompt tokens (mean)", False),
    ("tokens/out_mean", "answer tokens (mean)", False),
    ("tokens/per_s", "tokens/s", True),
)
CATEGORY_COLUMNS = (
    "retrieval/recall@5",
    "retrieval/mrr",
    "answer/f1",
    "answer/contains",
    "claims/unsupported_rate",
    "abstention/rate_unanswerable",
    "abstention/false_rate_answerable",
)
_LABEL = {k: label for k, label, _ in SUMMARY}


def fmt(value: float | None) -> str:
    """A metric for a table: 3 decimals, '-' when there is nothing to report."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.3f}" if abs(value) < 1000 else f"{value:.0f}"


def sample_score(s: dict[str, Any]) -> float:
    """How well one question went, 0..1, for picking the worst: errors 0; answer F1 (or gold found in the
    answer) less the share of unsupported claims; an unanswerable question: 1 when the model abstained."""
    if s.get("status") != "ok":
        return 0.0
    if not s.get("answerable", True):
        return 1.0 if s.get("abstained") else 0.0
    claims = s.get("claims", [])
    bad = sum(not c["supported"] for c in claims) / len(claims) if claims else 0.0
    sc = s.get("scores", {})
    base = max(sc.get("f1") or 0.0, sc.get("contains") or 0.0) if sc else s.get("retrieval", {}).get("mrr", 1.0)
    return max(0.0, base - 0.5 * bad)


def categories(samples: Sequence[dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    """Metrics per category (only when the dataset has more than one)."""
    names = sorted({s.get("category") or "(none)" for s in samples})
    if len(names) < 2:
        return {}
    return {n: compute_metrics([s for s in samples if (s.get("category") or "(none)") == n]) for n in names}


# --- SVG ----------------------------------------------------------------------------------------------


def histogram_svg(
    values: Sequence[float],
    *,
    bins: int = 10,
    lo: float | None = None,
    hi: float | None = None,
    xlabel: str = "",
    marker: float | None = None,
    width: int = 420,
    height: int = 180,
) -> str:
    """An inline SVG histogram of the values; `marker` draws a vertical line (a threshold)."""
    vals = [v for v in values if v is not None and not math.isnan(v)]
    if not vals:
        return "<p><em>no values</em></p>"
    lo = min(vals) if lo is None else lo
    hi = max(vals) if hi is None else hi
    if hi <= lo:
        hi = lo + 1.0
    counts = [0] * bins
    for v in vals:
        counts[min(bins - 1, max(0, int((v - lo) / (hi - lo) * bins)))] += 1
    left, bottom, top = 36, 30, 10
    pw, ph = width - left - 10, height - bottom - top
    bw = pw / bins
    peak = max(counts)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">']
    parts.append(f'<line x1="{left}" y1="{top + ph}" x2="{left + pw}" y2="{top + ph}" stroke="#555"/>')
    for i, c in enumerate(counts):
        h = ph * c / peak if peak else 0
        x = left + i * bw
        label = f"{lo + i * (hi - lo) / bins:.2f}-{lo + (i + 1) * (hi - lo) / bins:.2f}: {c}"
        parts.append(
            f'<rect x="{x + 1:.1f}" y="{top + ph - h:.1f}" width="{bw - 2:.1f}" height="{h:.1f}" fill="#4a78b5">'
            f"<title>{label}</title></rect>"
        )
        if c:
            parts.append(
                f'<text x="{x + bw / 2:.1f}" y="{top + ph - h - 2:.1f}" font-size="10" text-anchor="middle">{c}</text>'
            )
    parts.append(f'<text x="{left}" y="{height - 14}" font-size="10">{lo:.2f}</text>')
    parts.append(f'<text x="{left + pw}" y="{height - 14}" font-size="10" text-anchor="end">{hi:.2f}</text>')
    parts.append(
        f'<text x="{left + pw / 2}" y="{height - 2}" font-size="11" text-anchor="middle">{html.escape(xlabel)}</text>'
    )
    parts.append(f'<text x="4" y="{top + 10}" font-size="10">n={len(vals)}</text>')
    if marker is not None and lo <= marker <= hi:
        mx = left + pw * (marker - lo) / (hi - lo)
        parts.append(
            f'<line x1="{mx:.1f}" y1="{top}" x2="{mx:.1f}" y2="{top + ph}" stroke="#c0392b" '
            f'stroke-dasharray="4 3"><title>threshold {marker:.3f}</title></line>'
        )
    parts.append("</svg>")
    return "".join(parts)


def bars_svg(labels: Sequence[str], values: Sequence[float | None], *, width: int = 420) -> str:
    """Horizontal bars for values in [0, 1] (per-category scores)."""
    row, left = 22, 150
    height = row * len(labels) + 10
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">']
    for i, (label, v) in enumerate(zip(labels, values, strict=True)):
        y = 5 + i * row
        parts.append(
            f'<text x="{left - 6}" y="{y + 14}" font-size="11" text-anchor="end">{html.escape(label[:24])}</text>'
        )
        w = (width - left - 50) * (v or 0.0)
        parts.append(f'<rect x="{left}" y="{y + 3}" width="{w:.1f}" height="{row - 8}" fill="#4a78b5"/>')
        parts.append(f'<text x="{left + w + 4:.1f}" y="{y + 14}" font-size="11">{fmt(v)}</text>')
    parts.append("</svg>")
    return "".join(parts)


# --- writing ------------------------------------------------------------------------------------------


def _load(run_dir: Path) -> tuple[dict, dict, list[dict]]:
    config = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))
    metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    return config, metrics, read_samples(run_dir / "samples.jsonl")


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    out += ["| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in r) + " |" for r in rows]
    return out


def _summary_rows(metrics: dict) -> list[tuple[str, str]]:
    return [(label, fmt(metrics.get(k))) for k, label, _ in SUMMARY if metrics.get(k) is not None]


def write_markdown(run_dir: Path) -> Path:
    """Write run_dir/report.md: summary, per-category table, worst examples with their contexts, errors."""
    config, metrics, samples = _load(run_dir)
    ds = config["dataset"]
    models = config.get("models", {})
    lines = [
        f"# Evaluation report: {config['name']}",
        "",
        f"- dataset: {ds['name']} ({ds['items']} items, sha256 {ds['sha256'][:12]}), source {ds['source']}",
        f"- knowledge base: {config['kb']}",
        f"- models: embedder {(models.get('embedder') or {}).get('name')}, generator "
        f"{(models.get('generator') or {}).get('name', '-')}, judge {(models.get('judge') or {}).get('name', '-')}",
        f"- samples: {int(metrics['samples/total'])} ({int(metrics['samples/errors'])} errors); "
        f"primary metric {metrics['primary_metric']} = {fmt(metrics.get(metrics['primary_metric']))}",
        "",
        "## Summary",
        "",
        *_md_table(["metric", "value"], _summary_rows(metrics)),
    ]
    cats = categories(samples)
    if cats:
        lines += ["", "## Per category", ""]
        header = ["category", "n", *(_LABEL[c] for c in CATEGORY_COLUMNS)]
        rows = [[n, str(int(m["samples/total"])), *(fmt(m.get(c)) for c in CATEGORY_COLUMNS)] for n, m in cats.items()]
        lines += _md_table(header, rows)
    lines += ["", f"## Worst examples (lowest {N_WORST})", ""]
    for s in sorted(samples, key=sample_score)[:N_WORST]:
        lines += _md_example(s)
    errors = [s for s in samples if s.get("status") != "ok"]
    if errors:
        lines += ["", "## Errors", ""]
        lines += [f"- `{s['id']}` {s['question']}: {s.get('error')}" for s in errors]
    lines.append("")
    lines.append("Plots (score distributions, latency histogram) are in report.html.")
    path = run_dir / "report.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _md_example(s: dict[str, Any]) -> list[str]:
    out = [f"### {s['id']}: {s['question']}", ""]
    out.append(
        f"- score {sample_score(s):.2f}; category {s.get('category') or '-'}; "
        f"{'answerable' if s.get('answerable') else 'unanswerable'}"
    )
    if s.get("gold_answers"):
        out.append(f"- gold: {' / '.join(s['gold_answers'])}")
    if s.get("status") != "ok":
        out.append(f"- **error**: {s.get('error')}")
    if "answer" in s:
        out.append(f"- answer{' (abstained)' if s.get('abstained') else ''}: {s['answer'] or '(empty)'}")
    for c in s.get("claims", []):
        mark = "supported" if c["supported"] else "**unsupported**"
        out.append(f"  - claim ({mark}, {c['support']:.2f}): {c['claim']}")
    for h in s.get("contexts", []):
        text = " ".join(h["text"].split())
        out.append(
            f"  - [{h['rank']}] {h['location']} ({h['score']:.3f}): {text[:300]}{'...' if len(text) > 300 else ''}"
        )
    out.append("")
    return out


_CSS = """body{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:0.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}
th{background:#f2f2f2}.bad{color:#c0392b}.ok{color:#1e8449}.ctx{color:#555;font-size:90%}
.plots{display:flex;flex-wrap:wrap;gap:1.5em}.ex{border-top:1px solid #ddd;padding:0.5em 0}
details{margin:0.3em 0}"""


def _html_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def write_html(run_dir: Path) -> Path:
    """Write run_dir/report.html: one file with tables and inline SVG plots, readable offline."""
    config, metrics, samples = _load(run_dir)
    esc = html.escape
    ds = config["dataset"]
    judge = (config.get("models") or {}).get("judge") or {}
    primary = metrics["primary_metric"]
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>ragkit eval: {esc(config['name'])}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>Evaluation report: {esc(config['name'])}</h1>",
        f"<p>Dataset <b>{esc(ds['name'])}</b> ({ds['items']} items, sha256 {esc(ds['sha256'][:12])}) on "
        f"<code>{esc(config['kb'])}</code>, created {esc(config.get('created', ''))}. "
        f"{int(metrics['samples/total'])} samples, {int(metrics['samples/errors'])} errors. "
        f"Primary metric <b>{esc(primary)} = {fmt(metrics.get(primary))}</b>.</p>",
        "<h2>Summary</h2>",
        _html_table(["metric", "value"], _summary_rows(metrics)),
        "<p class='ctx'>Claims are answer sentences judged against all retrieved context by the "
        f"{esc(judge.get('name', '-'))} judge (supported at probability &ge; {fmt(judge.get('threshold'))}); "
        "citation precision = cited chunks that support their sentence; citation recall = sentences with a "
        "supporting citation.</p>",
        "<h2>Distributions</h2><div class='plots'>",
    ]
    f1 = [s["scores"]["f1"] for s in samples if s.get("scores", {}).get("f1") is not None]
    if f1:
        parts.append("<div><h3>Token F1 per question</h3>" + histogram_svg(f1, lo=0, hi=1, xlabel="F1") + "</div>")
    ndcg = [s["retrieval"]["ndcg@10"] for s in samples if "retrieval" in s]
    if ndcg:
        parts.append(
            "<div><h3>nDCG@10 per question</h3>" + histogram_svg(ndcg, lo=0, hi=1, xlabel="nDCG@10") + "</div>"
        )
    support = [c["support"] for s in samples for c in s.get("claims", [])]
    if support:
        parts.append(
            "<div><h3>Claim support (judge)</h3>"
            + histogram_svg(support, lo=0, hi=1, xlabel="support probability", marker=judge.get("threshold"))
            + "</div>"
        )
    total = [s["timings"]["total"] for s in samples if "total" in s.get("timings", {})]
    parts.append("<div><h3>Latency per question</h3>" + histogram_svg(total, xlabel="seconds") + "</div></div>")
    cats = categories(samples)
    if cats:
        parts.append("<h2>Per category</h2>")
        header = ["category", "n", *(_LABEL[c] for c in CATEGORY_COLUMNS)]
        rows = [[n, str(int(m["samples/total"])), *(fmt(m.get(c)) for c in CATEGORY_COLUMNS)] for n, m in cats.items()]
        parts.append(_html_table(header, rows))
        parts.append(f"<h3>{esc(primary)} by category</h3>")
        parts.append(bars_svg(list(cats), [m.get(primary) for m in cats.values()]))
    parts.append(f"<h2>Worst examples (lowest {N_WORST})</h2>")
    for s in sorted(samples, key=sample_score)[:N_WORST]:
        parts.append(_html_example(s))
    errors = [s for s in samples if s.get("status") != "ok"]
    if errors:
        parts.append("<h2>Errors</h2><ul>")
        parts += [
            f"<li><code>{esc(s['id'])}</code> {esc(s['question'])}: {esc(str(s.get('error')))}</li>" for s in errors
        ]
        parts.append("</ul>")
    parts.append("</body></html>")
    path = run_dir / "report.html"
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


def _html_example(s: dict[str, Any]) -> str:
    esc = html.escape
    out = [f"<div class='ex'><h3>{esc(str(s['id']))}: {esc(s['question'])}</h3><ul>"]
    out.append(
        f"<li>score {sample_score(s):.2f}; category {esc(s.get('category') or '-')}; "
        f"{'answerable' if s.get('answerable') else 'unanswerable'}</li>"
    )
    if s.get("gold_answers"):
        out.append(f"<li>gold: {esc(' / '.join(s['gold_answers']))}</li>")
    if s.get("status") != "ok":
        out.append(f"<li class='bad'>error: {esc(str(s.get('error')))}</li>")
    if "answer" in s:
        out.append(f"<li>answer{' (abstained)' if s.get('abstained') else ''}: {esc(s['answer'] or '(empty)')}</li>")
    for c in s.get("claims", []):
        cls, word = ("ok", "supported") if c["supported"] else ("bad", "unsupported")
        out.append(f"<li class='{cls}'>claim ({word}, {c['support']:.2f}): {esc(c['claim'])}</li>")
    out.append("</ul>")
    for h in s.get("contexts", []):
        out.append(
            f"<details><summary>[{h['rank']}] {esc(h['location'])} ({h['score']:.3f})</summary>"
            f"<p class='ctx'>{esc(h['text'])}</p></details>"
        )
    out.append("</div>")
    return "".join(out)


def write_report(run_dir: str | Path) -> tuple[Path, Path]:
    """Write report.md and report.html for a finished run; returns their paths."""
    d = Path(run_dir)
    return write_markdown(d), write_html(d)
