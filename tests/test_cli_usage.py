"""Usage errors and messages of the CLI (issue 18, NEWCOMER.md findings), on a KB built with the hash embedder:
no model is loaded, so this file is in the fast tier."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import run  # the CLI in-process, fixed width; the `hashed` fixture is there too
from typer.testing import CliRunner

from ragkit.cli import app


@pytest.fixture
def kb(tmp_path: Path, hashed: None) -> Path:
    """A small KB: two Markdown files and a text file with known words."""
    docs = tmp_path / "docs"
    (docs / "b1").mkdir(parents=True)
    (docs / "b1" / "alpha.md").write_text("# Alpha\n\nThe hotel costs ninety euros per night.\n", encoding="utf-8")
    (docs / "b1" / "beta.md").write_text("# Beta\n\nKeys are rotated every ninety days.\n", encoding="utf-8")
    (docs / "notes.txt").write_text("The on-call engineer answers a page within five minutes.\n", encoding="utf-8")
    root = tmp_path / "kb"
    result = run("ingest", docs, "--kb", root)
    assert result.exit_code == 0, result.output
    return root


def one_red_line(result) -> str:  # type: ignore[no-untyped-def]
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error:"), result.output
    assert "Traceback" not in result.output
    return lines[0]


# -- 5: unknown filter fields --------------------------------------------------------------------------------


@pytest.mark.parametrize("expr", ["sourse=*.pdf", "bogus=1"])
def test_an_unknown_filter_field_is_a_usage_error_naming_the_fields(kb: Path, expr: str) -> None:
    result = run("search", "hotel", "--kb", kb, "-f", expr, "--mode", "keyword")
    assert result.exit_code == 2
    line = one_red_line(result)
    field = expr.split("=")[0]
    assert f"unknown filter field '{field}'" in line and "fields: source, doc, page" in line


def test_only_tenant_and_meta_keys_reach_metadata(kb: Path) -> None:
    assert run("search", "hotel", "--kb", kb, "-f", "tenant=acme", "--mode", "keyword").exit_code == 0
    assert run("search", "hotel", "--kb", kb, "-f", "meta.team=ops", "--mode", "keyword").exit_code == 0
    typo = run("search", "hotel", "--kb", kb, "-f", "sourse=*.md", "--mode", "keyword")
    assert "did you mean source" in typo.output


# -- 6: numbers SQL cannot hold ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "reason"),
    [
        ("page>=99999999999999999999999", "out of range for a page number"),
        ("page>=inf", "not a finite number"),
        ("doc in 1,99999999999999999999999", "out of range for a document id"),
        ("meta.year>=nan", "not a finite number"),
        ("page>=2.5", "not a page number"),
    ],
)
def test_numbers_out_of_range_are_one_red_line(kb: Path, expr: str, reason: str) -> None:
    result = run("search", "hotel", "--kb", kb, "-f", expr, "--mode", "keyword")
    assert result.exit_code == 2
    line = one_red_line(result)
    assert f"filter '{expr}'" in line and reason in line


# -- 29: the filter echoed as typed, a trailing Z ---------------------------------------------------------------


def test_errors_quote_the_filter_as_typed(kb: Path) -> None:
    result = run("search", "hotel", "--kb", kb, "-f", "doc in a,b", "--mode", "keyword")
    assert "filter 'doc in a,b': 'a' is not a number" in one_red_line(result)
    result = run("search", "hotel", "--kb", kb, "-f", "doc in 3;4", "--mode", "keyword")
    assert "filter 'doc in 3;4'" in one_red_line(result)


@pytest.mark.parametrize("when", ["2999-06-01Z", "2999-06-01T10:00:00Z", "2999-06-01T10:00z"])
def test_iso_dates_take_a_trailing_z(kb: Path, when: str) -> None:
    result = run("search", "hotel", "--kb", kb, "-f", f"modified<{when}", "--mode", "keyword", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["hits"]


# -- 15: why a search found nothing --------------------------------------------------------------------------


def test_an_empty_result_says_whether_the_filters_or_the_words_found_nothing(kb: Path) -> None:
    words = run("search", "zebra", "--kb", kb, "-f", "source=*.md", "--mode", "keyword")
    assert words.exit_code == 0
    assert "no chunk under these filters contains the query words (2 chunks match the filters)" in words.output
    nothing = run("search", "hotel", "--kb", kb, "-f", "source=*.pdf", "--mode", "keyword")
    assert "no chunk matches these filters" in nothing.output
    one = run("search", "zebra", "--kb", kb, "-f", "source=*.txt", "--mode", "keyword")
    assert "(1 chunk match" in one.output
    unfiltered = run("search", "zebra", "--kb", kb, "--mode", "keyword")
    assert "no chunk contains the query words" in unfiltered.output


# -- 17: usage mistakes exit 2 -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("search", "hotel", "--mode", "bogus"), "--mode takes hybrid, dense or keyword"),
        (("search", "hotel", "-f", "page"), "cannot read the filter 'page'"),
        (("search", "hotel", "-f", "page>=abc"), "'abc' is not a number"),
        (("search", "hotel", "--device", "tpu"), "--device takes auto, cpu or gpu"),
        (("search", "", "--mode", "keyword"), "the query is empty"),
        (("search", "   "), "the query is empty"),
        (("ask", " "), "the question is empty"),
        (("ask", "why?", "--mode", "bogus"), "--mode takes"),
        (("ingest", "{docs}", "--meta", "noequals"), "--meta takes KEY=VALUE"),
        (("ingest",), "nothing to ingest"),
    ],
)
def test_usage_mistakes_exit_2(kb: Path, args: tuple[str, ...], message: str) -> None:
    result = run(*(a.format(docs=kb.parent / "docs") for a in args), "--kb", kb)
    assert result.exit_code == 2, result.output
    assert message in one_red_line(result)


def test_mode_is_case_insensitive(kb: Path) -> None:
    result = run("search", "hotel", "--kb", kb, "--mode", "KEYWORD", "--json")
    assert result.exit_code == 0 and json.loads(result.output)["mode"] == "keyword"


def test_errors_that_are_not_usage_errors_still_exit_1(tmp_path: Path, hashed: None) -> None:
    result = run("search", "hotel", "--kb", tmp_path / "nokb")
    assert result.exit_code == 1 and "no knowledge base" in one_red_line(result)


# -- 24: the --json contract -----------------------------------------------------------------------------------


def test_search_json_is_one_object_with_the_options_as_run(kb: Path) -> None:
    result = run("search", "hotel night", "--kb", kb, "--json", "-k", "2", "-f", "source=*.md", "--mode", "keyword")
    assert result.exit_code == 0
    data = json.loads(result.output)
    assert set(data) == {"query", "mode", "k", "filters", "hits"}
    assert (data["query"], data["mode"], data["k"], data["filters"]) == ("hotel night", "keyword", 2, ["source=*.md"])
    hit = data["hits"][0]
    assert Path(hit["chunk"]["uri"]).name == "alpha.md" and {"rank", "score", "location"} <= set(hit)
    defaults = json.loads(run("search", "hotel", "--kb", kb, "--json").output)
    assert (defaults["mode"], defaults["k"], defaults["filters"]) == ("hybrid", 3, [])


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (("search", "hotel", "--kb", "{kb}", "-f", "sourse=x", "--json"), 2),
        (("search", "hotel", "--kb", "{tmp}/nokb", "--json"), 1),
        (("info", "--kb", "{tmp}/nokb", "--json"), 1),
        (("ingest", "--kb", "{kb}", "--json"), 2),
    ],
)
def test_an_error_under_json_is_a_json_object_on_stdout(kb: Path, args: tuple[str, ...], code: int) -> None:
    runner_split = CliRunner()
    result = runner_split.invoke(app, [a.format(kb=kb, tmp=kb.parent) for a in args])
    assert result.exit_code == code
    data = json.loads(result.stdout)
    assert data["exit_code"] == code and data["error"] and "Error:" not in data["error"]
    assert result.stderr.startswith("Error: ") and data["error"] in " ".join(result.stderr.split())


def test_without_json_stdout_stays_empty_on_error(kb: Path) -> None:
    result = CliRunner().invoke(app, ["search", "hotel", "--kb", str(kb), "-f", "sourse=x"])
    assert result.exit_code == 2 and result.stdout == "" and "unknown filter field" in result.stderr


# -- 35: info names the resolved index -----------------------------------------------------------------------


def test_info_text_shows_the_resolved_index(kb: Path) -> None:
    result = run("info", "--kb", kb)
    assert result.exit_code == 0 and "index: auto (Flat; searches on the CPU)" in result.output


# -- 11 and 23: help rendering -----------------------------------------------------------------------------------


def help_of(*command: str) -> str:
    result = run(*command, "--help")
    assert result.exit_code == 0
    return result.output


def flat(text: str) -> str:
    """Help text without the panels' borders, each run of whitespace one space (wrapped lines joined)."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", text).split())


def test_help_keeps_bracketed_text() -> None:
    search = flat(help_of("search"))
    assert "(extra ragkit[pg])" in search and "[default: the KB's SQLite file]" in search
    assert "cpu or gpu [default: config]" in search
    ask = flat(help_of("ask"))
    assert "ragkit[llamacpp]" in ask and "[default: when a terminal]" in ask
    assert "[default: text]" in flat(help_of("ingest"))


@pytest.mark.parametrize("command", ["", "ask", "search", "ingest", "eval run", "finetune", "check", "info"])
def test_flags_show_no_type_and_h_is_help(command: str) -> None:
    text = help_of(*command.split())
    assert "<bool>" not in text
    assert run(*command.split(), "-h").output == text


def test_search_help_shows_the_defaults_of_k_and_mode() -> None:
    text = flat(help_of("search"))
    assert "[default: retrieval.top_k of ragkit.toml, 3]" in text
    assert "[default: retrieval.mode of ragkit.toml: keyword for a KB made for Qwen2.5-Coder-1.5B, else hybrid]" in text
    assert "{QUERY}" in text and "SOURCES" in help_of("ingest")


@pytest.mark.parametrize("command", ["finetune", "ask", "eval run", "search", "ingest"])
def test_no_stray_space_before_a_full_stop(command: str) -> None:
    assert not re.search(r"\w \.(\s|$)", flat(help_of(*command.split())))


def test_train_judge_batch_size_has_help() -> None:
    assert "Training pairs per optimizer step." in help_of("eval", "train-judge")


# -- 25, 26, 27: ingest messages, XHTML, URL schemes -------------------------------------------------------------


def test_ingest_names_a_skipped_file_once_and_counts_in_words(tmp_path: Path, hashed: None) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "empty.txt").write_text("  \n", encoding="utf-8")
    (docs / "one.txt").write_text("A single short line about hotels.\n", encoding="utf-8")
    result = run("ingest", docs, "--kb", tmp_path / "kb")
    assert result.exit_code == 3
    assert "2 files: 1 ingested, 0 unchanged, 1 failed; 1 chunk added" in result.output
    skipped = next(line for line in result.output.splitlines() if line.startswith("skipped"))
    assert skipped.endswith("empty.txt: empty file") and skipped.count("empty.txt") == 1
    info = run("info", "--kb", tmp_path / "kb")
    failed = next(line for line in info.output.splitlines() if "failed " in line and "empty.txt" in line)
    assert failed.count("empty.txt") == 1 and failed.endswith(": empty file")


XHTML = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN" "http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd">
<html xmlns="http://www.w3.org/1999/xhtml"><head><title>Rates</title></head>
<body><h1>Rates</h1><p>The hotel costs ninety euros per night.</p></body></html>
"""


@pytest.mark.parametrize("suffix", [".xhtml", ".xht"])
def test_xhtml_is_parsed_as_html_without_warnings(tmp_path: Path, suffix: str) -> None:
    import warnings

    from ragkit.connectors.parsing import SourceOptions, parse_bytes

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # XMLParsedAsHTMLWarning (or any other) fails the test
        doc = parse_bytes(
            XHTML.encode(), uri=f"/x/page{suffix}", name=f"page{suffix}", suffix=suffix, options=SourceOptions()
        )
    assert "ninety euros" in doc.text and "<?xml" not in doc.text


def test_ingest_takes_an_xhtml_file(tmp_path: Path, hashed: None) -> None:
    (tmp_path / "page.xhtml").write_text(XHTML, encoding="utf-8")
    result = run("ingest", tmp_path / "page.xhtml", "--kb", tmp_path / "kb")
    assert result.exit_code == 0 and "1 file: 1 ingested" in result.output


@pytest.mark.parametrize("url", ["ftp://example.com/x.txt", "file:///tmp/x.txt"])
def test_an_unsupported_url_scheme_is_named(tmp_path: Path, hashed: None, url: str) -> None:
    result = run("ingest", url, "--kb", tmp_path / "kb")
    assert result.exit_code == 1
    scheme = url.split(":")[0]
    assert f"unsupported URL scheme {scheme}; use http(s)" in one_red_line(result)


# -- 32: the --json-field hint names the flag ------------------------------------------------------------------


def test_a_missing_json_field_names_the_flag(tmp_path: Path, hashed: None) -> None:
    (tmp_path / "sea.json").write_text('[{"text": "The sea is salty."}]', encoding="utf-8")
    result = run("ingest", tmp_path / "sea.json", "--kb", tmp_path / "kb", "--json-field", "body")
    assert result.exit_code == 3
    assert "no record has a text field 'body' (choose another with --json-field or ingest.json_text_field)" in (
        " ".join(result.output.split())
    )


# -- 21, 24, 25, 30: the last messages ---------------------------------------------------------------------------


@pytest.mark.parametrize("create", ["a-file", "a-folder"])
def test_a_kb_option_on_something_else_says_so_the_same_way(tmp_path: Path, hashed: None, create: str) -> None:
    target = tmp_path / create
    if create == "a-file":
        target.write_text("not a KB", encoding="utf-8")
    else:
        target.mkdir()
        (target / "x.txt").write_text("x", encoding="utf-8")
    for args in (("info",), ("search", "x")):
        line = one_red_line(run(*args, "--kb", target))
        assert "is not a ragkit knowledge base (no manifest.json)" in line, line


def test_check_json_names_the_kb_and_reindex_says_when_the_index_waits_for_training(kb: Path) -> None:
    report = json.loads(run("check", "--kb", kb, "--json").stdout)
    assert report["kb"] == str(kb.resolve()) and report["ok"]
    result = run("reindex", "--kb", kb, "--spec", "IVF16,Flat")
    assert result.exit_code == 0, result.output
    assert "untrained" in result.output and "searches are exact" in result.output
    assert "waiting for training: 3" in run("check", "--kb", kb).output


def test_an_oversized_file_is_reported_with_a_decimal(tmp_path: Path, hashed: None) -> None:
    import ragkit

    big = tmp_path / "docs" / "big.txt"
    big.parent.mkdir()
    big.write_text("word " * 500_000, encoding="utf-8")  # 2.5 MB
    with ragkit.open(tmp_path / "kb", **{"ingest.max_file_mb": 2}) as base:
        report = base.ingest([big.parent])
    assert "2.5 MB is over the 2 MB limit" in report.failed[0].reason


def test_include_that_matches_nothing_says_so(tmp_path: Path, hashed: None) -> None:
    docs = tmp_path / "b2"
    docs.mkdir()
    (docs / "m1.md").write_text("# M\n\ntext\n", encoding="utf-8")
    line = one_red_line(run("ingest", docs, "--kb", tmp_path / "kb", "--include", "*.pdf"))
    assert "no file in this folder matches --include '*.pdf'" in line


@pytest.mark.parametrize(
    ("reply", "says"),
    [
        ("I don't know based on the provided sources.", "The model found no answer in the"),
        ("The sources do not say. Keys are usually rotated yearly [1].", "and then guessed"),
        ("Keys are rotated often [1].", "only repeats the question"),
        ("Hotel keys are rotated every ninety euros [1].", "do not back the model's answer to this question"),
    ],
)
def test_ask_says_why_it_abstained(kb: Path, monkeypatch: pytest.MonkeyPatch, reply: str, says: str) -> None:
    """Every abstention after the model was asked prints one reason line (the model's own included); the
    scripted reply stands in for the GPT, the checks and the sources are real."""
    from ragkit import build
    from ragkit.testing import ScriptedGenerator

    monkeypatch.setattr(build, "generator_from", lambda cfg, root: ScriptedGenerator([reply]))
    question = "How often are keys rotated?"
    res = run("ask", question, "--kb", kb, "--no-stream", "--min-relevance", "0", "--min-grounding", "0")
    assert res.exit_code == 0, res.output
    assert res.output.startswith("I don't know based on the provided sources.") and says in res.output


@pytest.mark.parametrize("command", [("ask", "How long are keys kept?"), ("eval", "run", "QUESTIONS")])
def test_an_unknown_model_names_the_kbs_fine_tuned_models(kb: Path, tmp_path: Path, command: tuple[str, ...]) -> None:
    """--model takes an adapter of the KB or a model; a typo's error lists both kinds, not the bundled ones alone."""
    (kb / "models" / "tuned-v1").mkdir(parents=True)
    (kb / "models" / "tuned-v1" / "adapter_config.json").write_text("{}", encoding="utf-8")
    questions = tmp_path / "q.jsonl"
    questions.write_text(json.dumps({"question": "How long are keys kept?", "answers": ["ninety days"]}) + "\n")
    args = [str(questions) if a == "QUESTIONS" else a for a in command]
    line = one_red_line(run(*args, "--kb", kb, "--model", "tuned-v2"))
    assert "--model 'tuned-v2' is not a fine-tuned model of this KB (its models: tuned-v1)" in line
    assert "SmolLM2-135M-Instruct" in line  # and the bundled models


def test_eval_run_records_a_hedged_abstention(kb: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The model's "the sources do not say" followed by a guess is scored as the phrase, flagged, its words kept."""
    from ragkit import build
    from ragkit.testing import ScriptedGenerator

    reply = "The sources do not say. Keys are usually rotated yearly [1]."
    monkeypatch.setattr(build, "generator_from", lambda cfg, root: ScriptedGenerator([reply]))
    questions = tmp_path / "q.jsonl"
    questions.write_text(json.dumps({"question": "How often are keys rotated?", "answers": ["ninety days"]}) + "\n")
    res = run("eval", "run", questions, "--kb", kb, "--name", "hedge")
    assert res.exit_code == 0, res.output
    run_dir = next((kb / "runs").glob("*-hedge"))
    (sample,) = [json.loads(line) for line in run_dir.joinpath("samples.jsonl").open()]
    assert json.loads(run_dir.joinpath("metrics.json").read_text())["abstention/hedged_rate"] == 1.0
    assert sample["abstained"] and sample["hedged"] and sample["raw_answer"] == reply
    assert sample["answer"] == "I don't know based on the provided sources." and sample["scores"]["contains"] == 0.0


def test_dtype_is_an_option_of_ask_and_eval_run(kb: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--dtype sets generator.dtype for one command (recorded in the eval run's config.json); a value outside the
    choices is a usage error; fp16 on the CPU is one red line that says what to use."""
    from ragkit import build
    from ragkit.testing import ScriptedGenerator

    bad = run("ask", "How often are keys rotated?", "--kb", kb, "--dtype", "fp8")
    assert bad.exit_code == 2 and "is not one of auto, float32, bfloat16, float16" in bad.output
    import torch

    if not torch.cuda.is_available():  # generator.device auto is the CPU here
        line = one_red_line(run("ask", "How often are keys rotated?", "--kb", kb, "--dtype", "float16"))
        assert "'float16' is for GPUs; on the CPU use 'bfloat16'" in line
    seen: list[str] = []
    monkeypatch.setattr(
        build, "generator_from", lambda cfg, root: seen.append(cfg.generator.dtype) or ScriptedGenerator(["90 [1]."])
    )
    questions = tmp_path / "q.jsonl"
    questions.write_text(json.dumps({"question": "How often are keys rotated?", "answers": ["ninety days"]}) + "\n")
    res = run("eval", "run", questions, "--kb", kb, "--name", "bf", "--dtype", "bfloat16")
    assert res.exit_code == 0, res.output
    config = json.loads(next((kb / "runs").glob("*-bf")).joinpath("config.json").read_text())
    assert seen == ["bfloat16"] and config["config"]["generator"]["dtype"] == "bfloat16"
    assert config["models"]["generator"]["dtype"] == "bfloat16"  # what ran, "auto" resolved
    assert "bfloat16" not in (kb / "ragkit.toml").read_text()  # the KB's own file is not edited


# -- --set: any setting for one command -----------------------------------------------------------------------


def test_set_changes_a_setting_for_one_command_only(kb: Path, tmp_path: Path) -> None:
    """`--set retrieval.fusion=score` fuses by score in that search (a hit can score up to 1 + 2, the weights),
    an eval run records it in config.json, and the KB's ragkit.toml is not edited."""
    toml_before = (kb / "ragkit.toml").read_text(encoding="utf-8")
    by_rank = json.loads(run("search", "hotel euros", "--kb", kb, "--json").output)["hits"]
    res = run("search", "hotel euros", "--kb", kb, "--json", "--set", "retrieval.fusion=score")
    assert res.exit_code == 0, res.output
    by_score = json.loads(res.output)["hits"]
    assert max(h["score"] for h in by_rank) < 0.1 < max(h["score"] for h in by_score) <= 3.0
    questions = tmp_path / "q.jsonl"
    questions.write_text(json.dumps({"question": "How often are keys rotated?", "answers": ["ninety days"]}) + "\n")
    sets = ("--set", "retrieval.fusion=score", "--set", "retrieval.keyword_weight=1", "--set", "retrieval.top_k=2")
    res = run("eval", "run", questions, "--kb", kb, "--name", "fused", "--retrieval-only", *sets)
    assert res.exit_code == 0, res.output
    used = json.loads(next((kb / "runs").glob("*-fused")).joinpath("config.json").read_text())["config"]["retrieval"]
    assert (used["fusion"], used["keyword_weight"], used["top_k"]) == ("score", 1, 2)
    assert (kb / "ragkit.toml").read_text(encoding="utf-8") == toml_before


@pytest.mark.parametrize(
    ("value", "code", "message"),
    [
        ("fusion=score", 2, "--set takes SECTION.KEY=VALUE"),  # no section
        ("retrieval.fusion", 2, "--set takes SECTION.KEY=VALUE"),  # no value
        ("retrieval.fusio=score", 1, "unknown key retrieval.fusio (did you mean fusion?)"),
        ("retrieval.fusion=borda", 1, "retrieval.fusion: Input should be 'rank' or 'score'"),
        ("retrieval.top_k=many", 1, "retrieval.top_k: Input should be a valid integer"),
        ("chunking.max_tokens=50", 1, "chunking.overlap (32) must be below half of max_tokens (50)"),  # a rule
    ],
)
def test_a_bad_set_is_one_red_line(kb: Path, value: str, code: int, message: str) -> None:
    result = run("search", "hotel", "--kb", kb, "--set", value)
    assert result.exit_code == code, result.output
    line = one_red_line(result)
    assert message in line
    # the KB's ragkit.toml is fine: the error must not send the user there
    assert code == 2 or "in the settings given with this call (--set on the command line), not in" in line


def test_a_broken_file_is_still_blamed_when_a_set_is_given(kb: Path) -> None:
    with (kb / "ragkit.toml").open("a", encoding="utf-8") as f:
        f.write("\n[retrieval_extra]\nx = 1\n")
    line = one_red_line(run("search", "hotel", "--kb", kb, "--set", "retrieval.fusion=score"))
    assert f"invalid configuration in {kb / 'ragkit.toml'}" in line and "--set" not in line
