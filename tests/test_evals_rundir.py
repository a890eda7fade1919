"""The eval runner, run folder, scoring and report on a fake KB: no model, fast. The real-model runs are in
test_evals_runner.py (slow)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from ragkit.config import RagkitConfig
from ragkit.errors import ConfigError
from ragkit.evals import metrics as M
from ragkit.evals.compare import compare_runs
from ragkit.evals.datasets import Dataset, EvalItem
from ragkit.evals.judges import EmbeddingLexicalJudge, LexicalJudge, judge_identity
from ragkit.evals.report import build_report, load_report, render_html, render_markdown
from ragkit.evals.rundir import RunDir, load_run, read_samples
from ragkit.evals.runner import EvalOptions, run_eval
from ragkit.evals.scoring import UNSUPPORTED_PENALTY, compute_metrics, sample_score
from ragkit.testing import HashEmbedder, ScriptedGenerator, make_hit
from ragkit.types import Answer, Citation, Hit

DOCS = {
    "/kb/keys.md": "Production API keys must be rotated every 90 days.",
    "/kb/travel.md": "Hotel costs are reimbursed up to 180 euros per night.",
    "/kb/oncall.md": "The on-call engineer answers pages within 15 minutes.",
}
ITEMS = (
    EvalItem("k", "How often are production API keys rotated?", ("90 days",), gold_uris=("keys.md",), category="a"),
    EvalItem("t", "How much is a hotel night reimbursed?", ("180 euros",), gold_uris=("travel.md",), category="a"),
    EvalItem("o", "How fast are pages answered by the on-call engineer?", ("15 minutes",), category="b"),
    EvalItem("u", "What is the office wifi password?", answerable=False, category="b"),
)
DATASET = Dataset("fake", ITEMS, "test")
URIS = list(DOCS)
ANSWERS = {  # question -> the fake model's answer and the sentences it cites [1] for
    ITEMS[0].question: (
        "Production API keys must be rotated every 90 days [1]. Keys are shredded by lawyers [1].",
        ("Production API keys must be rotated every 90 days.", "Keys are shredded by lawyers."),
    ),
    ITEMS[1].question: ("Up to 180 euros per night [1].", ("Up to 180 euros per night.",)),
    ITEMS[2].question: ("Within 15 minutes.", ()),
}


class FakeKB:
    """An EvalTarget: word-overlap search over DOCS and canned answers; no model."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.config = RagkitConfig()
        self.manifest: dict[str, Any] = {"embedder": {"name": "hash", "dim": 64}}
        self.embedder = HashEmbedder()
        self.generator = ScriptedGenerator([])
        self.searches: list[str] = []

    def search(self, query: str, k: int | None = None, **options: Any) -> list[Hit]:
        if not query.strip():
            raise ValueError("empty question")
        self.searches.append(query)
        words = set(query.lower().rstrip("?").split())
        order = sorted(range(len(URIS)), key=lambda i: -len(words & set(DOCS[URIS[i]].lower().rstrip(".").split())))
        return [make_hit(rank, DOCS[URIS[i]], URIS[i], id=i + 1) for rank, i in enumerate(order[: k or 3], 1)]

    def ask(self, question: str, k: int | None = None, max_new_tokens: int | None = None, **options: Any) -> Answer:
        hits = tuple(self.search(question, k=k))
        text, cited = ANSWERS.get(question, ("", ()))
        first = hits[0].chunk
        return Answer(
            question=question,
            text=text or "I don't know.",
            raw_text=text,
            citations=tuple(Citation(1, first.id, first.uri, None, None, 0, 1, "cited", s, 1.0) for s in cited),
            hits=hits,
            abstained=not text,
            unsupported=(),
            dropped_hits=0,
            prompt_tokens=100,
            completion_tokens=len(text.split()),
            timings={"retrieve": 0.01, "generate": 0.5},
            relevance=0.6 if text else 0.2,
        )


def test_retrieval_run_writes_the_folder_and_scores_gold_uris(tmp_path: Path) -> None:
    kb = FakeKB(tmp_path / "kb")
    run = run_eval(kb, DATASET, options=EvalOptions(generate=False, retrieval_k=3))
    assert run.run_dir.parent == tmp_path / "kb" / "runs" and run.run_dir.name.endswith("-fake")
    assert {p.name for p in run.run_dir.iterdir()} == {
        "config.json",
        "samples.jsonl",
        "metrics.json",
        "report.md",
        "report.html",
    }
    # k and t find their gold document first; o has only an answer string, found in the on-call chunk
    assert run.metrics["retrieval/recall@1"] == 1.0 and run.metrics["retrieval/mrr"] == 1.0
    assert run.metrics["answer/f1"] is None and run.primary_metric == "retrieval/ndcg@10"
    assert run.n_samples == 4 and run.n_errors == 0 and run.resumed == 0 and run.name == "fake"
    config = json.loads((run.run_dir / "config.json").read_text())
    assert config["options"]["retrieval_k"] == 3 and "judge" not in config["models"]
    again = load_run(run.run_dir)
    assert again.metrics == run.metrics and again.name == run.run_dir.name and again.n_samples == 4


def test_resume_after_an_interrupt_and_a_cut_off_line(tmp_path: Path) -> None:
    kb = FakeKB(tmp_path / "kb")
    opts = EvalOptions(generate=False)

    def stop_after_two(done: int, total: int, question: str) -> None:
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_eval(kb, DATASET, name="r", options=opts, progress=stop_after_two)
    (run_dir,) = (tmp_path / "kb" / "runs").iterdir()
    assert len(read_samples(run_dir / "samples.jsonl")) == 2 and not (run_dir / "metrics.json").exists()
    with pytest.raises(ConfigError, match="not a finished eval run"):
        load_run(run_dir)
    with pytest.raises(ConfigError, match="no such run folder"):  # a typo is not "an unfinished run"
        load_run(run_dir.parent / "20990101-000000-typo")
    with (run_dir / "samples.jsonl").open("a") as f:
        f.write('{"id": "o", "cut off')
    kb.searches.clear()
    run = run_eval(kb, DATASET, name="r", options=opts)
    assert run.run_dir == run_dir and run.resumed == 2 and run.n_samples == 4
    assert kb.searches == [ITEMS[2].question, ITEMS[3].question]  # only what was not done
    assert [s["id"] for s in read_samples(run_dir / "samples.jsonl")] == ["k", "t", "o", "u"]
    # other settings are another run, and resume=False always starts one
    assert run_eval(kb, DATASET, name="r", options=EvalOptions(generate=False, retrieval_k=2)).run_dir != run_dir
    assert run_eval(kb, DATASET, name="r", options=opts, resume=False).run_dir != run_dir
    assert RunDir.find_unfinished(tmp_path / "kb" / "runs", "r", "0" * 16) is None


def test_a_run_begun_in_bf16_is_not_resumed_in_fp32(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # generator.dtype "auto" resolves per machine: resumed on a CPU without bf16 units (or with them), the
    # run's first answers would come from another dtype than its last
    from ragkit import assets

    kb = FakeKB(tmp_path / "kb")

    def stop_after_two(done: int, total: int, question: str) -> None:
        if done == 2:
            raise KeyboardInterrupt

    def on(bf16: bool, **kw: Any) -> Any:
        monkeypatch.setattr(assets, "auto_cpu_bf16", lambda spec: bf16)
        return run_eval(kb, DATASET, name="d", options=EvalOptions(k=2), judge=LexicalJudge(), **kw)

    with pytest.raises(KeyboardInterrupt):
        on(True, progress=stop_after_two)
    (run_dir,) = (tmp_path / "kb" / "runs").iterdir()
    assert json.loads((run_dir / "config.json").read_text())["models"]["generator"]["dtype"] == "bfloat16"
    fp32 = on(False)
    assert fp32.run_dir != run_dir and fp32.resumed == 0
    assert json.loads((fp32.run_dir / "config.json").read_text())["models"]["generator"]["dtype"] == "float32"
    again = on(True)
    assert again.run_dir == run_dir and again.resumed == 2


def test_workers_and_one_worker_write_the_same_samples(tmp_path: Path) -> None:
    kb = FakeKB(tmp_path / "kb")
    one = run_eval(kb, DATASET, name="one", options=EvalOptions(generate=False))
    three = run_eval(kb, DATASET, name="three", workers=3, options=EvalOptions(generate=False))

    def strip(samples: list[dict]) -> list[dict]:
        return [{k: v for k, v in s.items() if k != "timings"} for s in samples]

    assert strip(three.samples()) == strip(one.samples())
    with pytest.raises(ConfigError, match="workers"):
        run_eval(kb, DATASET, workers=0)


def test_generated_answers_are_scored_judged_and_reported(tmp_path: Path) -> None:
    kb = FakeKB(tmp_path / "kb")
    run = run_eval(kb, DATASET, name="gen", options=EvalOptions(k=2), judge=LexicalJudge())
    samples = {s["id"]: s for s in run.samples()}
    k = samples["k"]
    assert k["scores"]["contains"] == 1.0 and k["scores"]["exact_match"] == 0.0
    assert [c["claim"] for c in k["claims"]] == [
        "Production API keys must be rotated every 90 days.",
        "Keys are shredded by lawyers.",
    ]
    assert [c["supported"] for c in k["claims"]] == [True, False]
    assert [c["citations"] for c in k["claims"]] == [[1], [1]] and k["claims"][1]["cited_supported"] == [False]
    assert samples["o"]["claims"][0]["citations"] == [] and samples["u"]["abstained"] and samples["u"]["claims"] == []
    assert list(samples["k"]["timings"]) == ["retrieve", "generate", "judge", "total"]
    m = run.metrics
    assert m["claims/supported_rate"] == pytest.approx(3 / 4) and m["citations/precision"] == pytest.approx(2 / 3)
    assert m["abstention/rate_unanswerable"] == 1.0 and m["abstention/false_rate_answerable"] == 0.0
    assert m["abstention/relevance_auroc"] == 1.0 and run.primary_metric == "answer/f1"
    assert json.loads((run.run_dir / "config.json").read_text())["models"]["judge"] == {
        "name": "lexical",
        "threshold": 0.5,
    }
    md = (run.run_dir / "report.md").read_text()
    page = (run.run_dir / "report.html").read_text()
    report = load_report(run.run_dir)
    assert md == render_markdown(report) and page == render_html(report)
    for label, value in report.summary.rows:  # both files show every summary row
        assert f"| {label} | {value} |" in md and f"<td>{label}</td><td>{value}</td>" in page
    assert "## Per category" in md and "**unsupported**" in md and "Claim support (judge)" in page
    # how far the claim rates can be trusted, in both files (the judge's measured balanced accuracy)
    caveat = "The lexical judge's balanced accuracy is 0.55 on held-out HaluEval-QA pairs"
    assert f"- judge: {caveat}" in md and caveat.replace("'", "&#x27;") in page


def test_report_lists_errors_and_escapes_html(tmp_path: Path) -> None:
    kb = FakeKB(tmp_path / "kb")
    ds = Dataset("err", (ITEMS[0], EvalItem("bad<1>", "   ")), "test")
    run = run_eval(kb, ds, options=EvalOptions(generate=False))
    assert run.n_errors == 1 and run.metrics["samples/errors"] == 1.0
    bad = next(s for s in run.samples() if s["id"] == "bad<1>")
    assert bad["status"] == "error" and bad["error"] == "ValueError: empty question"
    assert "- `bad<1>`    : ValueError: empty question" in (run.run_dir / "report.md").read_text()
    assert "<code>bad&lt;1&gt;</code>" in (run.run_dir / "report.html").read_text()


def test_compare_reads_directions_from_the_metrics_table(tmp_path: Path) -> None:
    kb = FakeKB(tmp_path / "kb")
    a = run_eval(kb, DATASET, name="a", options=EvalOptions(generate=False))
    b = run_eval(kb, DATASET, name="b", options=EvalOptions(generate=False, retrieval_k=1))
    cmp = compare_runs(a.run_dir, b.run_dir)
    assert cmp.delta_of("retrieval/recall@3").delta == 0.0
    faster = compare_runs(a.run_dir, a.run_dir, "latency/total_p50_s")
    assert faster.regression(0.0) is None and faster.ties == 4


def test_metrics_table_covers_every_run_metric() -> None:
    keys = list(compute_metrics([]))
    assert keys == [m.key for m in M.METRICS]
    lower = {m.key for m in M.METRICS if not m.higher_is_better}
    assert lower == {
        "samples/errors",
        "claims/unsupported_rate",
        "abstention/false_rate_answerable",
        "abstention/withheld_right_answerable",
        "abstention/hedged_rate",
        "tokens/in_mean",
        "tokens/out_mean",
        *(k for k in keys if k.startswith("latency/")),
    }
    assert M.higher_is_better("something/new")


def test_sample_score_by_hand() -> None:
    claims = [{"supported": True}, {"supported": False}]
    s = {"status": "ok", "answerable": True, "scores": {"f1": 0.8, "contains": 0.0}, "claims": claims}
    assert sample_score(s) == pytest.approx(0.8 - UNSUPPORTED_PENALTY * 0.5)
    assert sample_score({"status": "error"}) == 0.0
    assert sample_score({"status": "ok", "answerable": False, "abstained": True}) == 1.0
    assert sample_score({"status": "ok", "answerable": True, "retrieval": {"mrr": 0.5}}) == 0.5


def test_judge_identity_records_calibrated_weights() -> None:
    assert judge_identity(LexicalJudge()) == {"name": "lexical", "threshold": 0.5}
    ident = judge_identity(EmbeddingLexicalJudge(HashEmbedder()))
    assert list(ident) == ["name", "threshold", "weights", "bias"] and ident["name"] == "minilm-lexical"


def test_report_of_an_empty_category_free_run() -> None:
    config = {"name": "x", "kb": "/kb", "dataset": {"name": "d", "items": 0, "sha256": "0" * 64, "source": "s"}}
    report = build_report(config, {"primary_metric": "answer/f1", **compute_metrics([])}, [])
    assert report.categories is None and report.worst == () and report.errors == ()
    assert "generator -, judge -" in render_markdown(report)
    assert "<p><em>no values</em></p>" in render_html(report)


def test_abstention_is_reported_per_construction(tmp_path: Path) -> None:
    items = (
        EvalItem("k", ITEMS[0].question, ("90 days",), construction="sample"),
        EvalItem("t", ITEMS[1].question, ("180 euros",), construction="sample"),
        EvalItem("x", "Who won the 1998 world cup?", answerable=False, construction="off-topic"),
        EvalItem("u", "What is the office wifi password?", answerable=False, construction="on-topic-missing"),
        EvalItem("v", ITEMS[2].question, answerable=False, construction="on-topic-missing"),  # FakeKB answers it
    )
    run = run_eval(FakeKB(tmp_path / "kb"), Dataset("c", items, "test"), name="c", judge=LexicalJudge())
    m = run.metrics
    assert m["abstention/rate_unanswerable"] == pytest.approx(2 / 3)
    assert m["abstention/rate_unanswerable/off-topic"] == 1.0
    assert m["abstention/rate_unanswerable/on-topic-missing"] == 0.5
    assert m["abstention/false_rate_answerable/sample"] == 0.0
    assert M.higher_is_better("abstention/rate_unanswerable/off-topic")
    assert not M.higher_is_better("abstention/false_rate_answerable/sample")
    md = (run.run_dir / "report.md").read_text()
    assert "| abstains when unanswerable (on-topic-missing) | 0.500 |" in md
    assert {s["id"]: s.get("construction") for s in run.samples()}["x"] == "off-topic"
    # without constructions nothing is added (the goldens' metrics keep their keys)
    plain = run_eval(FakeKB(tmp_path / "kb2"), DATASET, name="p", judge=LexicalJudge()).metrics
    assert not [k for k in plain if k.count("/") > 1]


def test_right_answers_withheld_counts_only_drafts_that_held_the_gold_answer() -> None:
    from ragkit.evals.scoring import withheld_right

    def rec(answerable: bool, draft: str | None, golds: tuple[str, ...] = ("90 days",)) -> dict[str, object]:
        s: dict[str, object] = {"answerable": answerable, "abstained": draft is not None, "gold_answers": list(golds)}
        if draft:
            s["withheld"] = {"draft": draft, "reason": "off_question"}
        return s

    answered = [
        rec(True, "Keys rotate every 90 days [1]."),  # a right answer lost to a check
        rec(True, "Keys rotate every 180 days [1]."),  # a wrong draft withheld: false abstention, not a loss
        rec(True, None),  # delivered
        rec(True, ""),  # the model's own abstention
        rec(False, "Every 90 days."),  # unanswerable: not counted
    ]
    assert withheld_right(answered) == pytest.approx(1 / 4)
    assert M.higher_is_better("abstention/withheld_right_answerable") is False
    assert math.isnan(withheld_right([rec(False, "x")]))
    # the CLI's summary shows it beside false abstention
    rows = [
        k
        for k, _ in M.summary_rows(
            {"abstention/false_rate_answerable": 0.3, "abstention/withheld_right_answerable": 0.0}
        )
    ]
    assert rows == ["abstention/false_rate_answerable", "abstention/withheld_right_answerable"]
