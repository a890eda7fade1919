"""The eval runner end to end on the sample corpus KB with the bundled models (all slow: the real MiniLM, and
SmolLM2 where answers are generated); resume; reports; compare. test_evals_rundir.py runs the same paths fast."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

import ragkit
from ragkit.cli.app import app
from ragkit.evals.datasets import Dataset, EvalItem, load_dataset
from ragkit.evals.rundir import read_samples
from ragkit.evals.runner import EvalOptions, run_eval

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = ROOT / "examples" / "sample_questions.jsonl"


def _pick(ids: set[str]) -> Dataset:
    ds = load_dataset(QUESTIONS)
    return Dataset("sample-pick", tuple(i for i in ds.items if i.id in ids), ds.source)


@pytest.mark.slow
def test_end_to_end_with_generation_judge_and_report(built_kb: Path) -> None:
    with ragkit.open(built_kb) as kb:
        run = kb.evaluate(_pick({"q01", "u01"}), name="e2e", max_new_tokens=32)
    assert run.n_samples == 2 and run.n_errors == 0
    m = run.metrics
    assert m["retrieval/recall@3"] == 1.0 and m["retrieval/mrr"] == 1.0  # key-rotation.md ranks first
    # greedy SmolLM2 at 32 tokens answers q01 with "90 days", then gives production keys the staging keys' 180
    # days: the citation check's word share cites it, the judge's role check calls it unsupported (ragkit.roles);
    # it abstains on u01
    assert m["answer/f1"] == pytest.approx(0.2) and m["answer/contains"] == 1.0 and m["answer/exact_match"] == 0.0
    assert m["abstention/rate_unanswerable"] == 1.0 and m["abstention/false_rate_answerable"] == 0.0
    assert m["claims/supported_rate"] == 0.5 and m["citations/precision"] == 0.5 and m["citations/recall"] == 0.5
    assert m["latency/generate_p50_s"] > 0 and m["tokens/out_mean"] > 0 and m["tokens/per_s"] > 0
    assert run.primary_metric == "answer/f1"
    files = {p.name for p in run.run_dir.iterdir()}
    assert {"config.json", "samples.jsonl", "metrics.json", "report.md", "report.html"} <= files
    config = json.loads((run.run_dir / "config.json").read_text())
    assert config["dataset"]["sha256"] == _pick({"q01", "u01"}).sha256
    assert config["models"]["embedder"]["name"] == "all-MiniLM-L6-v2"
    assert config["models"]["generator"]["name"] == "SmolLM2-135M-Instruct" and config["models"]["generator"]["bytes"]
    assert config["models"]["judge"]["name"] == "minilm-lexical"
    assert config["config"]["generator"]["max_new_tokens"] == 160  # the KB's config, resolved
    metrics_file = json.loads((run.run_dir / "metrics.json").read_text())
    assert metrics_file["primary_metric"] == "answer/f1"
    q01 = next(s for s in run.samples() if s["id"] == "q01")
    assert q01["contexts"] and q01["retrieved"][0]["relevant"] and "generate" in q01["timings"]
    assert not q01["abstained"] and q01["answer"].startswith("The key rotation policy is to rotate every 90 days [1].")
    assert [c["claim"] for c in q01["claims"]] == [
        "The key rotation policy is to rotate every 90 days.",
        "The production API keys must be rotated every 180 days.",
    ]
    assert [c["support"] for c in q01["claims"]] == pytest.approx([0.7163, 0.1], abs=0.01)
    assert [(c["supported"], c["citations"], c["cited_supported"]) for c in q01["claims"]] == [
        (True, [1], [True]),
        (False, [1], [False]),
    ]
    md = (run.run_dir / "report.md").read_text()
    for section in ("# Evaluation report: e2e", "## Summary", "## Per category", "## Worst examples", "How often"):
        assert section in md
    page = (run.run_dir / "report.html").read_text()
    assert page.startswith("<!doctype html>") and page.count("<svg") >= 2 and "Per category" in page
    assert "Latency per question" in page and "<script" not in page


@pytest.mark.slow
def test_interrupted_run_resumes_where_it_stopped(built_kb: Path) -> None:
    opts = EvalOptions(generate=False)
    seen: list[int] = []

    def stop_after_three(done: int, total: int, question: str) -> None:
        seen.append(done)
        if done == 3:
            raise KeyboardInterrupt

    with ragkit.open(built_kb) as kb:
        with pytest.raises(KeyboardInterrupt):
            run_eval(kb, QUESTIONS, name="resume", options=opts, progress=stop_after_three)
        run_dir = next(d for d in (built_kb / "runs").iterdir() if d.name.endswith("-resume"))
        assert len(read_samples(run_dir / "samples.jsonl")) == 3 and not (run_dir / "metrics.json").exists()
        with (run_dir / "samples.jsonl").open("a") as f:
            f.write('{"id": "q04", "cut off by a kil')  # a kill in the middle of a write
        asked: list[str] = []
        run = run_eval(kb, QUESTIONS, name="resume", options=opts, progress=lambda d, t, q: asked.append(q))
    assert run.run_dir == run_dir and run.resumed == 3 and run.n_samples == 12
    assert len([q for q in asked if q]) == 9  # only the questions not done before
    ids = [s["id"] for s in read_samples(run_dir / "samples.jsonl")]
    assert sorted(ids) == sorted(i.id for i in load_dataset(QUESTIONS).items)
    assert run.metrics["retrieval/recall@5"] == 1.0


@pytest.mark.slow
def test_a_failing_sample_is_recorded_not_dropped(built_kb: Path) -> None:
    ds = Dataset("with-error", (EvalItem("ok", "How often must keys be rotated?"), EvalItem("bad", "   ")), "test")
    with ragkit.open(built_kb) as kb:
        run = run_eval(kb, ds, options=EvalOptions(generate=False))
    samples = {s["id"]: s for s in run.samples()}
    assert run.n_samples == 2 and run.n_errors == 1 and run.metrics["samples/errors"] == 1.0
    assert samples["bad"]["status"] == "error" and "empty" in samples["bad"]["error"]
    assert samples["ok"]["status"] == "ok"
    assert "## Errors" in (run.run_dir / "report.md").read_text()


@pytest.mark.slow
def test_cli_run_and_compare_with_regression_exit(built_kb: Path, tmp_path: Path) -> None:
    cli = CliRunner()
    res = cli.invoke(
        app,
        [
            "eval",
            "run",
            str(QUESTIONS),
            "--kb",
            str(built_kb),
            "--retrieval-only",
            "--name",
            "cli",
            "--fresh",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["samples"] == 12 and out["primary_metric"] == "retrieval/ndcg@10"
    run_a = Path(out["run_dir"])
    # a worse copy of the run: one question's retrieval and the mean drop
    run_b = tmp_path / "worse"
    shutil.copytree(run_a, run_b)
    metrics = json.loads((run_b / "metrics.json").read_text())
    metrics["retrieval/ndcg@10"] -= 0.2
    (run_b / "metrics.json").write_text(json.dumps(metrics))
    samples = read_samples(run_b / "samples.jsonl")
    samples[0]["retrieval"]["ndcg@10"] = 0.0
    (run_b / "samples.jsonl").write_text("".join(json.dumps(s) + "\n" for s in samples))

    res = cli.invoke(app, ["eval", "compare", str(run_a), str(run_b), "--json"])
    assert res.exit_code == 0, res.output
    cmp = json.loads(res.output)
    assert cmp["metrics"]["retrieval/ndcg@10"]["delta"] == pytest.approx(-0.2)
    assert cmp["losses"] == [samples[0]["id"]] and cmp["wins"] == [] and cmp["ties"] == 11
    res = cli.invoke(app, ["eval", "compare", str(run_a), str(run_b), "--max-drop", "0.1"])
    assert res.exit_code == 4 and "Regression" in res.output
    res = cli.invoke(app, ["eval", "compare", str(run_a), str(run_b), "--max-drop", "0.3"])
    assert res.exit_code == 0
    res = cli.invoke(app, ["eval", "compare", str(run_a), str(tmp_path / "nothing")])
    assert res.exit_code == 1 and "Traceback" not in res.output


def test_cli_errors_are_one_line(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["eval", "run", str(tmp_path / "missing.jsonl"), "--kb", str(tmp_path / "kb")])
    assert res.exit_code == 1 and "Traceback" not in res.output


@pytest.mark.slow
def test_parallel_workers_give_the_same_run_as_one_worker(built_kb: Path) -> None:
    with ragkit.open(built_kb) as kb:
        one = run_eval(kb, QUESTIONS, name="one", options=EvalOptions(generate=False), resume=False)
        four = run_eval(kb, QUESTIONS, name="four", workers=4, options=EvalOptions(generate=False), resume=False)
    assert four.n_samples == one.n_samples == 12 and four.n_errors == 0
    assert four.metrics["retrieval/mrr"] == one.metrics["retrieval/mrr"]
    assert [s["id"] for s in four.samples()] == [s["id"] for s in one.samples()]  # kept in dataset order
    hits = {s["id"]: [h["chunk_id"] for h in s["retrieved"]] for s in one.samples()}
    assert all([h["chunk_id"] for h in s["retrieved"]] == hits[s["id"]] for s in four.samples())


@pytest.mark.slow
def test_parallel_workers_with_the_real_gpt(built_kb: Path) -> None:
    with ragkit.open(built_kb) as kb:
        run = kb.evaluate(_pick({"q01", "q02", "u01"}), name="par", workers=3, max_new_tokens=24)
    assert run.n_samples == 3 and run.n_errors == 0, [s.get("error") for s in run.samples()]
    assert all(s["answer"] or s["abstained"] for s in run.samples())


@pytest.mark.slow
def test_cli_eval_dataset_is_short_for_eval_run(built_kb: Path) -> None:
    args = [str(QUESTIONS), "--kb", str(built_kb), "--retrieval-only", "--limit", "2", "--fresh", "--json"]
    res = CliRunner().invoke(app, ["eval", *args])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["samples"] == 2
    res = CliRunner().invoke(app, ["eval", "--kb", str(built_kb), str(QUESTIONS), "--retrieval-only", "--limit", "1"])
    assert res.exit_code == 0 and "1 questions" in res.output


@pytest.mark.slow
def test_cli_run_takes_another_generator_without_editing_the_config(built_kb: Path, tmp_path: Path) -> None:
    kb = tmp_path / "kb"
    shutil.copytree(built_kb, kb)
    toml_before = (kb / "ragkit.toml").read_text(encoding="utf-8")
    res = CliRunner().invoke(
        app,
        ["eval", "run", str(QUESTIONS), "--kb", str(kb), "--retrieval-only", "--limit", "2", "--json"]
        + ["--generator", "openai:http://127.0.0.1:9/v1", "--model", "served-model"],
    )
    assert res.exit_code == 0, res.output
    run_dir = Path(json.loads(res.output)["run_dir"])
    used = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))["config"]["generator"]
    assert (used["backend"], used["url"], used["model"]) == ("openai", "http://127.0.0.1:9/v1", "served-model")
    assert (kb / "ragkit.toml").read_text(encoding="utf-8") == toml_before


@pytest.mark.slow
def test_cli_run_takes_another_retrieval_mode_without_editing_the_config(built_kb: Path, tmp_path: Path) -> None:
    kb = tmp_path / "kb"
    shutil.copytree(built_kb, kb)
    toml_before = (kb / "ragkit.toml").read_text(encoding="utf-8")
    base = ["eval", "run", str(QUESTIONS), "--kb", str(kb), "--retrieval-only", "--limit", "3", "--json", "--fresh"]
    runs = {}
    for mode in ("dense", "KEYWORD"):
        res = CliRunner().invoke(app, [*base, "--mode", mode, "--name", mode.lower()])
        assert res.exit_code == 0, res.output
        runs[mode.lower()] = Path(json.loads(res.output)["run_dir"])
    for mode, run_dir in runs.items():
        assert json.loads((run_dir / "config.json").read_text(encoding="utf-8"))["config"]["retrieval"]["mode"] == mode
    # each run retrieved as its mode does, and the two modes rank differently here (else this proves nothing)
    lists = {
        m: [[h["chunk_id"] for h in s["retrieved"]] for s in read_samples(d / "samples.jsonl")] for m, d in runs.items()
    }
    assert lists["dense"] != lists["keyword"]
    with ragkit.open(kb) as opened:
        question = read_samples(runs["dense"] / "samples.jsonl")[0]["question"]
        for mode, run_dir in runs.items():
            got = [h["chunk_id"] for h in read_samples(run_dir / "samples.jsonl")[0]["retrieved"]]
            assert got == [h.chunk.id for h in opened.search(question, k=len(got), mode=mode)]
    res = CliRunner().invoke(app, [*base, "--mode", "fuzzy"])
    assert res.exit_code != 0 and "--mode takes hybrid, dense or keyword" in res.output
    assert (kb / "ragkit.toml").read_text(encoding="utf-8") == toml_before
