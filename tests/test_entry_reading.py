"""Rule R: a draft the coverage check withheld is delivered when the generator reads the draft's own manual entry,
alone, as the answer, and better than the entries beside it (ragkit.entry_reading).

The scripted reader stands in for the GPT and answers by the entry it is shown; the checks around it are real.
The real model's readings are measured in docs/design-notes.md (rule R) and the slow test below."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragkit.answering import AnswerOptions, answer_question
from ragkit.entries import answer_entries
from ragkit.entry_reading import (
    ENTRY_RELEASE_MIN,
    default_entry_release_min,
    entry_messages,
    read_entries,
    reads_as_answer,
)
from ragkit.testing import HashEmbedder, ScriptedGenerator, make_hit

# shadow's useradd(8) as ragkit reads it: each option over its text
USERADD = (
    "-m, --create-home\n"
    "Create the user's home directory if it does not exist.\n\n"
    "-r, --system\n"
    "Create a system account. System users will be created with no aging information in /etc/shadow.\n\n"
    "-s, --shell SHELL\n"
    "The path of the user's login shell.\n"
)
# in the user's words: "system" and "account" are nowhere in it, so the coverage check withholds `-r`
ASKED = "I need a login for a background service daemon, not a real person. Which useradd option makes that?"
RIGHT = "`-r`: Create a system account [1]."
NEIGHBOUR = "`-m`: Create the user's home directory if it does not exist [1]."


class EntryReader(ScriptedGenerator):
    """Replies with `reply`; yes_probability gives each entry the P(yes) of the first option it heads in `p`."""

    def __init__(self, reply: str, p: dict[str, float]):
        super().__init__([reply], name="reader")
        self.p = p
        self.read: list[str] = []

    def yes_probability(self, messages) -> float:  # type: ignore[no-untyped-def]
        chat = messages[-1]["content"]
        self.read.append(chat)
        entry = chat.split("Manual entry:\n")[1]
        return next((p for option, p in self.p.items() if entry.startswith(option)), 0.1)


def _ask(reply: str, p: dict[str, float], question: str = ASKED, **options: float):  # type: ignore[no-untyped-def]
    reader = EntryReader(reply, p)
    opts = AnswerOptions(**{"min_coverage": 0.45, "entry_release_min": 0.5, **options})
    hits = [make_hit(1, USERADD, "/kb/useradd.txt", dense=0.6)]
    return answer_question(question, hits, reader, opts, embed=HashEmbedder().embed), reader


def test_a_withheld_draft_whose_own_entry_reads_as_the_answer_is_delivered() -> None:
    ans, reader = _ask(RIGHT, {"-r": 0.8, "-m": 0.4, "-s": 0.2})
    assert not ans.abstained and ans.text == RIGHT and ans.draft == ""
    (flag,) = [f for f in ans.flags if f.kind == "released"]
    assert "the model read the entry of -r as the answer (0.80; the best other entry 0.40)" in flag.detail
    assert "does not mention" in flag.detail  # the overruled check's reason
    assert len(reader.read) == 3  # its own entry, then each other entry once
    assert reader.read[0].startswith("Manual entry:\n-r, --system\nCreate a system account.")
    assert f"Question: {ASKED}" in reader.read[0]


@pytest.mark.parametrize(
    ("reply", "p", "why"),
    [
        (RIGHT, {"-r": 0.45, "-m": 0.1}, "under the floor"),
        (RIGHT, {"-r": 0.8, "-m": 0.75}, "not 0.1 above a neighbour"),
        (NEIGHBOUR, {"-r": 0.8, "-m": 0.6}, "a neighbour copied, the right entry reads better"),
    ],
)
def test_the_draft_stays_withheld_unless_its_entry_reads_best_by_the_margin(reply: str, p: dict, why: str) -> None:
    ans, _ = _ask(reply, p, min_grounding=0.0)  # the coverage check alone, as for a neighbour the others pass
    assert ans.abstained and ans.draft == reply, why
    assert [f.kind for f in ans.flags] == ["off_question"]


def test_nothing_is_read_off_for_other_checks_or_for_questions_asking_for_no_option() -> None:
    ans, reader = _ask(RIGHT, {"-r": 0.9}, entry_release_min=0.0)
    assert ans.abstained and reader.read == []
    invented = "`--daemon`: Create a system account [1]."  # no entry of the sources is headed by it: none to read
    ans, reader = _ask(invented, {"--daemon": 0.9})
    assert ans.abstained and reader.read == []
    ans, reader = _ask(NEIGHBOUR, {"-m": 0.9})  # withheld by the grounding check: a factual one, never overruled
    assert ans.abstained and [f.kind for f in ans.flags] == ["ungrounded"] and reader.read == []
    assert answer_entries("Who wrote useradd?", RIGHT, [USERADD]) is None
    assert answer_entries(ASKED, "It creates a system account [1].", [USERADD]) is None  # names no option
    how = answer_entries("How do I make a login for a daemon with useradd?", RIGHT, [USERADD])
    assert how is not None and how.named == "-r" and len(how.others) == 2
    plain = ScriptedGenerator([RIGHT], name="plain")  # a backend without probabilities releases nothing
    opts = AnswerOptions(min_coverage=0.45, entry_release_min=0.5)
    assert answer_question(ASKED, [make_hit(1, USERADD)], plain, opts, embed=HashEmbedder().embed).abstained


# no [n], and no source sentence holds its words: the citation check withholds it as "unsourced" (rule RU's case)
UNCITED = "Pick `-r` for a background service."


def test_a_draft_that_cites_nothing_is_delivered_citing_the_entry_read_as_the_answer() -> None:
    ans, reader = _ask(UNCITED, {"-r": 0.8, "-m": 0.2})
    assert not ans.abstained and ans.draft == ""
    assert ans.text == "Pick `-r` for a background service [1]."
    (cited,) = ans.citations
    assert (cited.n, cited.kind, cited.uri) == (1, "entry", "/kb/useradd.txt")
    assert cited.sentence == "Pick `-r` for a background service"
    (flag,) = [f for f in ans.flags if f.kind == "released"]
    assert flag.detail.startswith("none of its sentences is in a source")
    assert "the model read the entry of -r as the answer (0.80; the best other entry 0.20)" in flag.detail
    assert len(reader.read) == 3


@pytest.mark.parametrize(
    ("reply", "p"),
    [
        (UNCITED, {"-r": 0.45}),  # under the floor
        (UNCITED, {"-r": 0.8, "-s": 0.75}),  # a competing entry reads as well
        ("Pick `--daemon` for a background service.", {"--daemon": 0.9}),  # heads no entry: nothing to read
    ],
)
def test_a_draft_that_cites_nothing_stays_withheld_unless_its_entry_reads_as_the_answer(reply: str, p: dict) -> None:
    ans, _ = _ask(reply, p)
    assert ans.abstained and ans.draft == reply and ans.citations == ()
    assert [f.kind for f in ans.flags if f.kind != "unsupported"] == ["unsourced"]


def _built(cache: Path) -> Path:
    """An entry adapter folder as bench/entry_reader.py train leaves it, under a cache folder (config only)."""
    folder = cache / "entry_reader" / "qwen2.5-coder-1.5b"
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text("{}")
    return folder


def test_on_for_the_model_whose_reader_is_built_off_otherwise_unless_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ragkit import build
    from ragkit.config import load_config

    monkeypatch.setenv("RAGKIT_CACHE_DIR", str(tmp_path))
    qwen = "Qwen2.5-Coder-1.5B-Instruct"
    assert default_entry_release_min(qwen) == 0.0  # not built: the base reading is an option, not the default
    assert build.answer_options(load_config(None, {"generator.model": qwen})).entry_release_min == 0.0
    _built(tmp_path)
    assert build.answer_options(load_config(None, {"generator.model": qwen})).entry_release_min == 0.3
    assert default_entry_release_min(qwen) == 0.3 and {qwen: 0.3} == ENTRY_RELEASE_MIN  # rules RT and RF
    small = load_config(None, {"generator.model": "Qwen2.5-Coder-0.5B-Instruct"})
    assert build.answer_options(small).entry_release_min == 0.0  # no tuned reader is made for it
    given = load_config(None, {"generator.model": qwen, "generator.entry_release_min": 0.0})
    assert build.answer_options(given).entry_release_min == 0.0
    with_fallback = load_config(None, {"generator.entry_release_min": 0.5, "generator.fallback": "x"})
    assert build.answer_options(with_fallback).entry_release_min == 0.0


def test_the_tuned_reader_is_used_for_its_model_only_and_loads_at_the_first_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ragkit.generation import entry_reader as er
    from ragkit.generation.hf import TransformersGenerator

    monkeypatch.setenv("RAGKIT_CACHE_DIR", str(tmp_path))
    gen = object.__new__(TransformersGenerator)  # its fields only: no weights are loaded here
    gen.name = "Qwen2.5-Coder-1.5B-Instruct"
    assert er.entry_reader(gen) is gen  # no adapter built: the generator reads as before
    assert er.entry_adapter_dir(gen.name) == _built(tmp_path) == er.entry_adapter(gen.name)
    scripted = ScriptedGenerator(["x"], name="Qwen2.5-Coder-1.5B-Instruct")
    assert er.entry_reader(scripted) is scripted  # not a local transformers model: nothing to put an adapter on
    for name, tuned in [
        ("Qwen2.5-Coder-1.5B-Instruct", True),
        ("Qwen2.5-Coder-1.5B-Instruct+my-adapter", True),  # a user's adapter merged: the entry adapter goes on the base
        ("Qwen2.5-Coder-0.5B-Instruct", False),
    ]:
        gen = object.__new__(TransformersGenerator)
        gen.name = name
        hooked = len(er._HOOKED)
        reader = er.entry_reader(gen)
        assert isinstance(reader, er.LazyEntryReader) is tuned, name
        assert (reader is gen) is not tuned and hooked == len(er._HOOKED)  # nothing is hooked until a draft is read


def _real_adapter() -> Path:
    from ragkit.generation.entry_reader import entry_adapter

    path = entry_adapter("Qwen2.5-Coder-1.5B-Instruct")
    if path is None or not (path / "adapter_model.safetensors").exists():
        pytest.skip("no entry adapter built (python bench/entry_reader.py pairs ..., then train; docs/benchmarks.md)")
    return path


def test_a_built_adapter_is_whole() -> None:
    """The adapter bench/entry_reader.py train writes: LoRA r 8 on q/k/v/o of 28 layers of width 1,536, loadable
    without the model."""
    import json

    from safetensors.torch import load_file

    path = _real_adapter()
    config = json.loads((path / "adapter_config.json").read_text())
    assert config["r"] == 8 and sorted(config["target_modules"]) == ["k_proj", "o_proj", "q_proj", "v_proj"]
    tensors = load_file(str(path / "adapter_model.safetensors"))
    assert len(tensors) == 28 * 4 * 2
    a = [t for k, t in tensors.items() if k.endswith("q_proj.lora_A.weight")]
    assert len(a) == 28 and all(t.shape == (8, 1536) for t in a)
    assert all(bool(t.isfinite().all()) for t in tensors.values())
    assert any(float(t.abs().max()) > 0 for k, t in tensors.items() if "lora_B" in k)  # trained: B starts at zero


def test_competing_entries_are_the_ones_most_like_the_question() -> None:
    many = "".join(f"--opt{i}\nUnrelated entry number {i} about colours.\n\n" for i in range(8)) + USERADD
    reader = EntryReader(RIGHT, {"-r": 0.8})
    read = read_entries(ASKED, RIGHT, [many], reader, HashEmbedder().embed)
    assert read is not None and read.named == "-r" and read.own == 0.8 and read.rival == 0.1
    assert len(reader.read) == 6  # its own entry and five others, not all ten
    assert entry_messages(ASKED, "x" * 2000)[1]["content"].count("x") == 800


@pytest.mark.slow
def test_the_real_generator_reads_the_entry_that_answers_higher(tmp_path: Path) -> None:
    """Through the real Qwen 0.5B (the 1.5B one, whose floor is measured, is too large for the suite): it reads the
    entry that does what the question asks higher than the ones that do not."""
    from ragkit import build
    from ragkit.assets import GENERATORS, is_installed
    from ragkit.config import load_config

    if not is_installed(GENERATORS["Qwen2.5-Coder-0.5B-Instruct"]):
        pytest.skip("Qwen2.5-Coder-0.5B-Instruct is not installed (pip install 'ragkit[qwen]')")
    cfg = load_config(None, {"generator.model": "Qwen2.5-Coder-0.5B-Instruct", "generator.device": "cpu"})
    gen = build.generator_from(cfg, tmp_path)
    question = "Which useradd option sets the user's login shell?"
    read = read_entries(question, "`-s` [1].", [USERADD], gen, None)
    assert read is not None and read.rival is not None and read.own > read.rival


@pytest.mark.slow
def test_the_tuned_reader_reads_a_user_worded_question_s_entry_first(tmp_path: Path) -> None:
    """Through the real Qwen 1.5B with its entry adapter (ragkit[qwen-large] and the adapter built; skipped
    without them): the question in the user's own words above, whose entry shares almost none of its words."""
    from ragkit import build
    from ragkit.assets import GENERATORS, is_installed
    from ragkit.config import load_config
    from ragkit.generation.entry_reader import LazyEntryReader, entry_reader

    if not is_installed(GENERATORS["Qwen2.5-Coder-1.5B-Instruct"]):
        pytest.skip("Qwen2.5-Coder-1.5B-Instruct is not installed (pip install 'ragkit[qwen-large]')")
    _real_adapter()
    cfg = load_config(None, {"generator.model": "Qwen2.5-Coder-1.5B-Instruct", "generator.device": "cpu"})
    reader = entry_reader(build.generator_from(cfg, tmp_path))
    assert isinstance(reader, LazyEntryReader)
    read = read_entries(ASKED, RIGHT, [USERADD], reader, None)
    assert read is not None and read.rival is not None
    assert read.own >= 0.5 and read.own >= read.rival + 0.1, read
    wrong = read_entries(ASKED, NEIGHBOUR, [USERADD], reader, None)
    floor = ENTRY_RELEASE_MIN["Qwen2.5-Coder-1.5B-Instruct"]
    assert wrong is not None and not reads_as_answer(wrong, floor), wrong  # a copied neighbour's entry is not it


def test_the_cli_names_an_entry_citation_and_does_not_warn_over_it(
    tmp_path: Path, hashed: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from conftest import run

    from ragkit import build

    (tmp_path / "useradd.txt").write_text(USERADD)
    assert run("ingest", tmp_path / "useradd.txt", "--kb", tmp_path / "kb").exit_code == 0
    monkeypatch.setattr(build, "generator_from", lambda cfg, root: EntryReader(UNCITED, {"-r": 0.8}))
    sets = ("--set", "generator.entry_release_min=0.5", "--min-relevance", "0", "--min-coverage", "0.45")
    res = run("ask", ASKED, "--kb", tmp_path / "kb", "--no-stream", *sets)
    assert res.exit_code == 0, res.output
    assert res.output.startswith("Pick `-r` for a background service [1].")
    assert "(the model read this source's entry of the option it names as the answer)" in res.output
    assert "not supported by any source" not in res.output and "Delivered after a second look" in res.output


def test_another_entry_read_as_the_answer_is_delivered_in_place_of_a_withheld_draft() -> None:
    """Rule RA: the draft names a neighbour (-m); the reader reads -r's entry as the answer, well above -m's and
    every other entry's, so -r's entry is delivered, citing its source, and the flag says which it replaced."""
    p = {"-r": 0.8, "-m": 0.2, "-s": 0.1}
    ans, reader = _ask(NEIGHBOUR, p, min_grounding=0.0, entry_answer_min=0.5)
    assert not ans.abstained and ans.draft == ""
    assert ans.text == "`-r, --system`: Create a system account [1]."
    (cited,) = ans.citations
    assert (cited.n, cited.kind, cited.uri, cited.sentence) == (1, "entry", "/kb/useradd.txt", ans.text)
    (flag,) = [f for f in ans.flags if f.kind == "released"]
    assert flag.text == NEIGHBOUR and "does not mention" in flag.detail
    assert "the model read the entry of -r, --system as the answer in place of the draft's -m (0.80;" in flag.detail
    assert "own entry 0.20, the next entry 0.10" in flag.detail
    assert len(reader.read) == 3
    # the grounding check's withholding too: the draft's words are not what is delivered
    ans, _ = _ask(NEIGHBOUR, p, entry_answer_min=0.5)
    assert not ans.abstained and ans.text.startswith("`-r, --system`")
    assert not [f for f in ans.flags if f.kind in ("unsupported", "uncited")]


@pytest.mark.parametrize(
    ("p", "options", "why"),
    [
        ({"-r": 0.45, "-m": 0.1, "-s": 0.1}, {}, "under the floor"),
        ({"-r": 0.8, "-m": 0.1, "-s": 0.75}, {}, "another entry reads nearly as well"),
        ({"-r": 0.8, "-m": 0.75, "-s": 0.1}, {}, "the draft's own entry reads nearly as well"),
        ({"-r": 0.9, "-m": 0.1, "-s": 0.1}, {"entry_answer_min": 0.0}, "rule RA off"),
        ({"-r": 0.9, "-m": 0.1, "-s": 0.1}, {"entry_release_min": 0.0}, "rule R off: no reading at all"),
    ],
)
def test_no_other_entry_is_delivered_unless_it_alone_reads_as_the_answer(p: dict, options: dict, why: str) -> None:
    ans, _ = _ask(NEIGHBOUR, p, **{"min_grounding": 0.0, "entry_answer_min": 0.5, **options})
    assert ans.abstained and ans.draft == NEIGHBOUR, why
    assert [f.kind for f in ans.flags] == ["off_question"], why


def test_rule_ra_is_off_unless_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ragkit import build
    from ragkit.config import load_config

    monkeypatch.setenv("RAGKIT_CACHE_DIR", str(tmp_path))
    qwen = "Qwen2.5-Coder-1.5B-Instruct"
    _built(tmp_path)  # even with the reader built: held-out trials did not keep it as a default
    assert build.answer_options(load_config(None, {"generator.model": qwen})).entry_answer_min == 0.0
    on = load_config(None, {"generator.model": qwen, "generator.entry_answer_min": 0.5})
    assert build.answer_options(on).entry_answer_min == 0.5
    with_fallback = load_config(None, {"generator.entry_answer_min": 0.5, "generator.fallback": "x"})
    assert build.answer_options(with_fallback).entry_answer_min == 0.0


def test_the_cli_says_which_entry_replaced_the_draft_and_how_to_turn_that_off(
    tmp_path: Path, hashed: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from conftest import run

    from ragkit import build

    (tmp_path / "useradd.txt").write_text(USERADD)
    assert run("ingest", tmp_path / "useradd.txt", "--kb", tmp_path / "kb").exit_code == 0
    p = {"-r": 0.8, "-m": 0.2, "-s": 0.1}
    monkeypatch.setattr(build, "generator_from", lambda cfg, root: EntryReader(NEIGHBOUR, p))
    sets = ("--set", "generator.entry_release_min=0.5", "--set", "generator.entry_answer_min=0.5")
    more = ("--min-relevance", "0", "--min-coverage", "0.45", "--min-grounding", "0")
    res = run("ask", ASKED, "--kb", tmp_path / "kb", "--no-stream", *sets, *more)
    assert res.exit_code == 0, res.output
    assert res.output.startswith("`-r, --system`: Create a system account [1].")
    assert "in place of the draft's -m" in res.output
    assert "--set generator.entry_answer_min=0 withholds it" in res.output
