"""report.md and a self-contained report.html (inline SVG plots, no scripts, no external files) for a run.

The report is built once as data (`build_report`: header facts, tables, plots, worst examples, errors) and
rendered twice, as markdown and as HTML, so the two files always show the same numbers.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ragkit.evals.answerers import HEADER as ANSWERED_BY
from ragkit.evals.answerers import answered_by
from ragkit.evals.metrics import METRIC, fmt, summary_rows
from ragkit.evals.rundir import read_samples
from ragkit.evals.scoring import compute_metrics, sample_score
from ragkit.evals.svg import bars_svg, histogram_svg
from ragkit.fsutil import atomic_write

N_WORST = 5
CONTEXT_PREVIEW_CHARS = 300  # of each context in report.md (report.html shows it whole, folded)

CATEGORY_COLUMNS = (
    "retrieval/recall@5",
    "retrieval/mrr",
    "answer/f1",
    "answer/contains",
    "claims/unsupported_rate",
    "abstention/rate_unanswerable",
    "abstention/false_rate_answerable",
    "abstention/withheld_right_answerable",
)


def categories(samples: Sequence[dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    """Metrics per category (only when the dataset has more than one)."""
    names = sorted({s.get("category") or "(none)" for s in samples})
    if len(names) < 2:
        return {}
    return {n: compute_metrics([s for s in samples if (s.get("category") or "(none)") == n]) for n in names}


# --- the report as data -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Table:
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True, slots=True)
class Plot:
    """A histogram of per-question values (report.html only)."""

    title: str
    values: tuple[float, ...]
    xlabel: str
    lo: float | None = None
    hi: float | None = None
    marker: float | None = None  # a threshold drawn as a vertical line


@dataclass(frozen=True, slots=True)
class Context:
    rank: int
    location: str
    score: float
    text: str


@dataclass(frozen=True, slots=True)
class Claim:
    text: str
    supported: bool
    support: float


@dataclass(frozen=True, slots=True)
class Example:
    """One of the worst questions: what was asked, what came back, and how it scored."""

    id: str
    question: str
    score: float
    category: str
    answerable: bool
    gold: tuple[str, ...]
    error: str | None  # None when the question ran
    answer: str | None  # None without generation
    abstained: bool
    claims: tuple[Claim, ...]
    contexts: tuple[Context, ...]


@dataclass(frozen=True, slots=True)
class Failure:
    id: str
    question: str
    error: str


@dataclass(frozen=True, slots=True)
class Report:
    name: str
    created: str
    kb: str
    dataset: dict[str, Any]  # name, items, sha256, source
    embedder: str
    generator: str
    judge: str
    judge_threshold: float | None
    n_samples: int
    n_errors: int
    primary: str
    primary_value: float | None
    summary: Table
    plots: tuple[Plot, ...]
    categories: Table | None
    primary_by_category: tuple[tuple[str, float | None], ...]
    worst: tuple[Example, ...]
    errors: tuple[Failure, ...]
    answered_by: Table | None = None  # with generator.fallback: each model's answers (ragkit.evals.answerers)


def build_report(config: dict[str, Any], metrics: dict[str, Any], samples: Sequence[dict[str, Any]]) -> Report:
    """The report of a run from its config.json, metrics.json and sample records."""
    models = config.get("models") or {}
    judge = models.get("judge") or {}
    primary = metrics["primary_metric"]
    summary = [(label, fmt(metrics.get(key))) for key, label in summary_rows(metrics)]
    cats = categories(samples)
    cat_table = None
    if cats:
        header = ("category", "n", *(METRIC[c].label for c in CATEGORY_COLUMNS))
        rows = [(n, str(int(m["samples/total"])), *(fmt(m.get(c)) for c in CATEGORY_COLUMNS)) for n, m in cats.items()]
        cat_table = Table(header, tuple(rows))
    return Report(
        name=config["name"],
        created=config.get("created", ""),
        kb=config["kb"],
        dataset=config["dataset"],
        embedder=str((models.get("embedder") or {}).get("name")),
        generator=_generators(config, models),
        judge=judge.get("name", "-"),
        judge_threshold=judge.get("threshold"),
        n_samples=int(metrics["samples/total"]),
        n_errors=int(metrics["samples/errors"]),
        primary=primary,
        primary_value=metrics.get(primary),
        summary=Table(("metric", "value"), tuple(summary)),
        plots=_plots(samples, judge.get("threshold")),
        categories=cat_table,
        primary_by_category=tuple((n, m.get(primary)) for n, m in cats.items()),
        worst=tuple(_example(s) for s in sorted(samples, key=sample_score)[:N_WORST]),
        errors=tuple(Failure(s["id"], s["question"], str(s.get("error"))) for s in samples if s.get("status") != "ok"),
        answered_by=Table(ANSWERED_BY, rows) if (rows := answered_by(samples)) else None,
    )


def _generators(config: dict[str, Any], models: dict[str, Any]) -> str:
    """The generator's name, and its fallback's when one was configured."""
    name = (models.get("generator") or {}).get("name", "-")
    fallback = ((config.get("config") or {}).get("generator") or {}).get("fallback")
    return f"{name} (fallback {fallback})" if fallback else name


def _plots(samples: Sequence[dict[str, Any]], threshold: float | None) -> tuple[Plot, ...]:
    """Per-question F1, nDCG@10 and claim support where there are any; latency always (last)."""
    f1 = [s["scores"]["f1"] for s in samples if s.get("scores", {}).get("f1") is not None]
    ndcg = [s["retrieval"]["ndcg@10"] for s in samples if "retrieval" in s]
    support = [c["support"] for s in samples for c in s.get("claims", [])]
    total = [s["timings"]["total"] for s in samples if "total" in s.get("timings", {})]
    plots = []
    if f1:
        plots.append(Plot("Token F1 per question", tuple(f1), "F1", 0, 1))
    if ndcg:
        plots.append(Plot("nDCG@10 per question", tuple(ndcg), "nDCG@10", 0, 1))
    if support:
        plots.append(Plot("Claim support (judge)", tuple(support), "support probability", 0, 1, threshold))
    plots.append(Plot("Latency per question", tuple(total), "seconds"))
    return tuple(plots)


def _example(s: dict[str, Any]) -> Example:
    return Example(
        id=str(s["id"]),
        question=s["question"],
        score=sample_score(s),
        category=s.get("category") or "-",
        answerable=bool(s.get("answerable")),
        gold=tuple(s.get("gold_answers") or ()),
        error=str(s.get("error")) if s.get("status") != "ok" else None,
        answer=(s["answer"] or "(empty)") if "answer" in s else None,
        abstained=bool(s.get("abstained")),
        claims=tuple(Claim(c["claim"], c["supported"], c["support"]) for c in s.get("claims", [])),
        contexts=tuple(Context(h["rank"], h["location"], h["score"], h["text"]) for h in s.get("contexts", [])),
    )


# --- markdown -----------------------------------------------------------------------------------------


# balanced accuracy for "unsupported" on 786 held-out, length-matched HaluEval-QA pairs (docs/benchmarks.md,
# "Judges"; `ragkit eval judge-accuracy`): a reader of a report must know how far its claim rates can be trusted.
# An LLM judge is named by its model ("llm:<model>"); only the model measured since it reads P(yes) is listed
MEASURED_JUDGE_ACCURACY = {"minilm-lexical": 0.637, "lexical": 0.546, "llm:Qwen2.5-Coder-1.5B-Instruct": 0.628}


def judge_caveat(judge: str) -> str:
    """One sentence on how far the judge's verdicts can be trusted, for the reports."""
    accuracy = MEASURED_JUDGE_ACCURACY.get(judge)
    if accuracy is None:
        return f"Measure this judge with `ragkit eval judge-accuracy --judge {judge}` before trusting its rates."
    return (
        f"The {judge} judge's balanced accuracy is {accuracy:.2f} on held-out HaluEval-QA pairs (ragkit eval "
        "judge-accuracy): compare claim rates between runs, do not read them as verdicts on single sentences."
    )


def render_markdown(r: Report) -> str:
    """report.md: summary, per-category table, worst examples with their contexts, errors."""
    ds = r.dataset
    lines = [
        f"# Evaluation report: {r.name}",
        "",
        f"- dataset: {ds['name']} ({ds['items']} items, sha256 {ds['sha256'][:12]}), source {ds['source']}",
        f"- knowledge base: {r.kb}",
        f"- models: embedder {r.embedder}, generator {r.generator}, judge {r.judge}",
        f"- samples: {r.n_samples} ({r.n_errors} errors); primary metric {r.primary} = {fmt(r.primary_value)}",
        f"- judge: {judge_caveat(r.judge)}",
        "",
        "## Summary",
        "",
        *_md_table(r.summary),
    ]
    if r.answered_by:
        lines += ["", "## Who answered", "", *_md_table(r.answered_by)]
    if r.categories:
        lines += ["", "## Per category", "", *_md_table(r.categories)]
    lines += ["", f"## Worst examples (lowest {N_WORST})", ""]
    for ex in r.worst:
        lines += _md_example(ex)
    if r.errors:
        lines += ["", "## Errors", ""]
        lines += [f"- `{e.id}` {e.question}: {e.error}" for e in r.errors]
    lines.append("")
    lines.append("Plots (score distributions, latency histogram) are in report.html.")
    return "\n".join(lines) + "\n"


def _md_table(t: Table) -> list[str]:
    out = ["| " + " | ".join(t.header) + " |", "|" + " --- |" * len(t.header)]
    out += ["| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in row) + " |" for row in t.rows]
    return out


def _md_example(ex: Example) -> list[str]:
    out = [f"### {ex.id}: {ex.question}", ""]
    out.append(f"- score {ex.score:.2f}; category {ex.category}; {'answerable' if ex.answerable else 'unanswerable'}")
    if ex.gold:
        out.append(f"- gold: {' / '.join(ex.gold)}")
    if ex.error is not None:
        out.append(f"- **error**: {ex.error}")
    if ex.answer is not None:
        out.append(f"- answer{' (abstained)' if ex.abstained else ''}: {ex.answer}")
    for c in ex.claims:
        mark = "supported" if c.supported else "**unsupported**"
        out.append(f"  - claim ({mark}, {c.support:.2f}): {c.text}")
    for h in ex.contexts:
        text = " ".join(h.text.split())
        more = "..." if len(text) > CONTEXT_PREVIEW_CHARS else ""
        out.append(f"  - [{h.rank}] {h.location} ({h.score:.3f}): {text[:CONTEXT_PREVIEW_CHARS]}{more}")
    out.append("")
    return out


# --- HTML ---------------------------------------------------------------------------------------------

_CSS = """body{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:0.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}
th{background:#f2f2f2}.bad{color:#c0392b}.ok{color:#1e8449}.ctx{color:#555;font-size:90%}
.plots{display:flex;flex-wrap:wrap;gap:1.5em}.ex{border-top:1px solid #ddd;padding:0.5em 0}
details{margin:0.3em 0}"""


def render_html(r: Report) -> str:
    """report.html: one page with tables and inline SVG plots, readable offline."""
    esc = html.escape
    ds = r.dataset
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>ragkit eval: {esc(r.name)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>Evaluation report: {esc(r.name)}</h1>",
        f"<p>Dataset <b>{esc(ds['name'])}</b> ({ds['items']} items, sha256 {esc(ds['sha256'][:12])}) on "
        f"<code>{esc(r.kb)}</code>, created {esc(r.created)}. "
        f"{r.n_samples} samples, {r.n_errors} errors. "
        f"Primary metric <b>{esc(r.primary)} = {fmt(r.primary_value)}</b>.</p>",
        "<h2>Summary</h2>",
        _html_table(r.summary),
        "<p class='ctx'>Claims are answer sentences judged against all retrieved context by the "
        f"{esc(r.judge)} judge (supported at probability &ge; {fmt(r.judge_threshold)}); "
        "citation precision = cited chunks that support their sentence; citation recall = sentences with a "
        f"supporting citation. {esc(judge_caveat(r.judge))}</p>",
        "<h2>Distributions</h2><div class='plots'>",
    ]
    for p in r.plots:
        svg = histogram_svg(p.values, lo=p.lo, hi=p.hi, xlabel=p.xlabel, marker=p.marker)
        parts.append(f"<div><h3>{p.title}</h3>{svg}</div>")
    parts[-1] += "</div>"  # closes the plots row
    if r.answered_by:
        parts += ["<h2>Who answered</h2>", _html_table(r.answered_by)]
    if r.categories:
        parts.append("<h2>Per category</h2>")
        parts.append(_html_table(r.categories))
        parts.append(f"<h3>{esc(r.primary)} by category</h3>")
        parts.append(bars_svg([n for n, _ in r.primary_by_category], [v for _, v in r.primary_by_category]))
    parts.append(f"<h2>Worst examples (lowest {N_WORST})</h2>")
    parts += [_html_example(ex) for ex in r.worst]
    if r.errors:
        parts.append("<h2>Errors</h2><ul>")
        parts += [f"<li><code>{esc(e.id)}</code> {esc(e.question)}: {esc(e.error)}</li>" for e in r.errors]
        parts.append("</ul>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _html_table(t: Table) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in t.header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in t.rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _html_example(ex: Example) -> str:
    esc = html.escape
    out = [f"<div class='ex'><h3>{esc(ex.id)}: {esc(ex.question)}</h3><ul>"]
    out.append(
        f"<li>score {ex.score:.2f}; category {esc(ex.category)}; "
        f"{'answerable' if ex.answerable else 'unanswerable'}</li>"
    )
    if ex.gold:
        out.append(f"<li>gold: {esc(' / '.join(ex.gold))}</li>")
    if ex.error is not None:
        out.append(f"<li class='bad'>error: {esc(ex.error)}</li>")
    if ex.answer is not None:
        out.append(f"<li>answer{' (abstained)' if ex.abstained else ''}: {esc(ex.answer)}</li>")
    for c in ex.claims:
        cls, word = ("ok", "supported") if c.supported else ("bad", "unsupported")
        out.append(f"<li class='{cls}'>claim ({word}, {c.support:.2f}): {esc(c.text)}</li>")
    out.append("</ul>")
    for h in ex.contexts:
        out.append(
            f"<details><summary>[{h.rank}] {esc(h.location)} ({h.score:.3f})</summary>"
            f"<p class='ctx'>{esc(h.text)}</p></details>"
        )
    out.append("</div>")
    return "".join(out)


# --- writing ------------------------------------------------------------------------------------------


def load_report(run_dir: Path) -> Report:
    """The report of a finished run folder."""
    config = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))
    metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    return build_report(config, metrics, read_samples(run_dir / "samples.jsonl"))


def write_markdown(run_dir: Path) -> Path:
    """Write run_dir/report.md."""
    path = run_dir / "report.md"
    atomic_write(path, render_markdown(load_report(run_dir)))
    return path


def write_html(run_dir: Path) -> Path:
    """Write run_dir/report.html."""
    path = run_dir / "report.html"
    atomic_write(path, render_html(load_report(run_dir)))
    return path


def write_report(run_dir: str | Path) -> tuple[Path, Path]:
    """Write report.md and report.html for a finished run (one report, rendered twice); returns their paths."""
    d = Path(run_dir)
    report = load_report(d)
    md, page = d / "report.md", d / "report.html"
    atomic_write(md, render_markdown(report))
    atomic_write(page, render_html(report))
    return md, page
