"""Rule RL: a withheld draft naming an option whose entry is not among the sources the model saw has that entry
looked up in the documents it saw, and is delivered citing it when the reader reads it as the answer
(ragkit.entry_lookup).

The scripted reader stands in for the GPT (it answers by the entry it is shown); the knowledge base, its keyword
search, the filters and the checks are real. The real reader's readings are measured in docs/design-notes.md."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import ragkit
from ragkit.answering import AnswerOptions
from ragkit.testing import ScriptedGenerator

# shadow's useradd(8) as three entries, each its own chunk; cp's -r in another document
USERADD = (
    "-m, --create-home\nCreate the user's home directory if it does not exist. The files and directories contained"
    " in the skeleton directory will be copied to the home directory.\n\n"
    "-r, --system\nCreate a system account. System users will be created with no aging information in /etc/shadow,"
    " and their numeric identifiers are chosen in the SYS_UID_MIN-SYS_UID_MAX range.\n\n"
    "-s, --shell SHELL\nThe path of the user's login shell. The default is to leave this field blank, which causes"
    " the system to select the default login shell.\n"
)
CP = "-r, --recursive\nCopy directories recursively, with everything below them, into the destination folder.\n"
ASKED = "I need a login for a background service daemon, not a real person. Which useradd option makes that?"
UNCITED = "Pick `-r` for a background service."  # no [n], no source sentence holds its words: "unsourced"
SETTINGS = {"chunking.max_tokens": 40, "chunking.overlap": 0}


class EntryReader(ScriptedGenerator):
    """Replies with `reply`; yes_probability gives each entry the P(yes) of the first option it heads in `p`."""

    def __init__(self, reply: str, p: dict[str, float]):
        super().__init__([reply], name="reader")
        self.p = p
        self.read: list[str] = []

    def yes_probability(self, messages) -> float:  # type: ignore[no-untyped-def]
        entry = messages[-1]["content"].split("Manual entry:\n")[1]
        self.read.append(entry)
        return next((p for option, p in self.p.items() if entry.startswith(option)), 0.1)


@pytest.fixture
def kb(tmp_path: Path, hashed: None) -> Iterator[ragkit.KnowledgeBase]:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "useradd.txt").write_text(USERADD)
    (docs / "cp.txt").write_text(CP)
    with ragkit.open(tmp_path / "kb", **SETTINGS) as kb:
        kb.ingest([docs])
        yield kb


def _ask(kb: ragkit.KnowledgeBase, reply: str, p: dict[str, float], filters: str | None = None, floor: float = 0.5):
    """Answer from the -m chunk alone (as if retrieval had missed -r's), with the scripted reader."""
    (home,) = [c for c in kb.chunks(list(kb.chunk_ids())).values() if c.text.startswith("-m")]
    (hit,) = [h for h in kb.search("skeleton home directory", 4) if h.chunk.id == home.id]
    reader = EntryReader(reply, p)
    kb._generator.set(reader)
    opts = AnswerOptions(min_coverage=0.45, entry_release_min=floor)
    return kb.answer(ASKED, [hit], opts, filters=filters), reader


def test_the_entry_out_of_view_is_looked_up_in_the_same_document_and_cited(kb: ragkit.KnowledgeBase) -> None:
    ans, reader = _ask(kb, UNCITED, {"-r, --system": 0.8, "-m": 0.2})
    assert not ans.abstained and ans.draft == ""
    assert ans.text == "Pick `-r` for a background service [2]."
    assert len(ans.hits) == 2 and ans.hits[1].chunk.text.startswith("-r, --system") and ans.hits[1].rank == 2
    (cited,) = ans.citations
    assert (cited.n, cited.kind, cited.uri) == (2, "entry", ans.hits[1].chunk.uri)
    (flag,) = [f for f in ans.flags if f.kind == "released"]
    assert "the model read the entry of -r as the answer (0.80; the best other entry 0.20)" in flag.detail
    assert "looked up in useradd.txt" in flag.detail and flag.detail.startswith("none of its sentences")
    assert not [f for f in ans.flags if f.kind == "unsourced"]  # overruled: the released flag says why
    assert [e.split("\n")[0] for e in reader.read] == ["-r, --system", "-m, --create-home"]  # never cp's -r


def test_a_coverage_withheld_draft_drops_its_markers_for_the_entry_s(kb: ragkit.KnowledgeBase) -> None:
    ans, _ = _ask(kb, "`-r`: Create a system account [1].", {"-r, --system": 0.8})
    assert not ans.abstained and ans.text == "`-r`: Create a system account [2]."
    assert [(c.n, c.kind) for c in ans.citations] == [(2, "entry")]


@pytest.mark.parametrize(
    ("p", "filters", "floor", "why"),
    [
        ({"-r, --system": 0.45}, None, 0.5, "under the floor"),
        ({"-r, --system": 0.8, "-m": 0.75}, None, 0.5, "not 0.1 above the entry in view"),
        ({"-r, --system": 0.8}, "source=*/cp.txt", 0.5, "the filters keep only another document's -r"),
        ({"-r, --system": 0.8}, None, 0.0, "rule R off"),
    ],
)
def test_the_draft_stays_withheld_unless_the_entry_looked_up_reads_as_the_answer(
    kb: ragkit.KnowledgeBase, p: dict[str, float], filters: str | None, floor: float, why: str
) -> None:
    ans, _ = _ask(kb, UNCITED, p, filters=filters, floor=floor)
    assert ans.abstained and ans.draft == UNCITED and len(ans.hits) == 1, why
    assert "unsourced" in [f.kind for f in ans.flags] and "released" not in [f.kind for f in ans.flags]


def test_nothing_is_looked_up_for_an_option_no_entry_heads_or_a_question_asking_for_none(
    kb: ragkit.KnowledgeBase,
) -> None:
    ans, reader = _ask(kb, "Pick `--daemon` for a background service.", {"--daemon": 0.9})
    assert ans.abstained and reader.read == []
    (hit,) = kb.search("skeleton home directory", 1)
    kb._generator.set(reader := EntryReader(UNCITED, {"-r, --system": 0.9}))
    ans = kb.answer("Who wrote useradd?", [hit], AnswerOptions(min_coverage=0.45, entry_release_min=0.5))
    assert ans.abstained and reader.read == []
