"""A default or a limit asked for must be stated as one: rule X (limits) and rule DF (what asks for a default)."""

from __future__ import annotations

import pytest
from test_fallback import ScriptedVerifier

from ragkit.answering import AnswerOptions, answer_question
from ragkit.coverage import coverage
from ragkit.stated import bound_asked, default_asked, unsaid_bound
from ragkit.testing import ScriptedGenerator, make_hit

# tune2fs(8), trimmed: the page gives the default percentage of reserved blocks and no largest one
TUNE2FS = (
    "-m reserved-blocks-percentage\n"
    "Set the percentage of the file system which may only be allocated by privileged processes. "
    "Reserving some number of file system blocks for use by privileged processes is done to avoid file system "
    "fragmentation. The default percentage is 5%."
)
LARGEST = "What is the largest reserved-blocks percentage that tune2fs -m will accept?"


@pytest.mark.parametrize(
    ("question", "asked"),
    [
        (LARGEST, "largest"),
        ("How many -m options may be given to git commit at most?", "at most"),
        ("How large can a tar archive be?", "How large can"),
        ("What is the minimum RSA key size?", "minimum"),
        # a bound inside a name asks for none; "newest" or "most closely" is no bound
        ("What does grep do when --max-count is 0?", None),
        ("Which journalctl option shows the newest entries first?", None),
        ("Which variable makes find comply most closely with POSIX?", None),
        # asked for a named thing, the name is the answer, not the bound
        ("Which ssh_config option sets the maximum number of dots?", None),
        ("Which sort option merges at most NMERGE inputs at once?", None),
    ],
)
def test_the_questions_that_ask_for_a_bound(question: str, asked: str | None) -> None:
    assert bound_asked(question) == asked


def test_a_value_from_a_sentence_stating_no_bound_is_no_limit() -> None:
    said = "The largest reserved-blocks percentage that tune2fs -m will accept is 5% [1]."
    assert unsaid_bound(LARGEST, coverage(LARGEST, said, [TUNE2FS])) == "largest"
    # the same value where the page states the bound beside it
    stated = TUNE2FS + " It may be at most 50%."
    assert unsaid_bound(LARGEST, coverage(LARGEST, said, [stated])) is None
    # mke2fs(8): "The maximum length of the volume label is 16 bytes." answers "How long can ... be?"
    label = "-L new-volume-label\nSet the volume label. The maximum length of the volume label is 16 bytes."
    asked = "How long can a volume label set by mke2fs be?"
    assert unsaid_bound(asked, coverage(asked, "It can be 16 bytes long [1].", [label])) is None
    # apt-get(8): a bound said in other words ("up to a maximum of 2")
    quiet = "-q, --quiet\nQuiet. More q's will produce more quiet up to a maximum of 2."
    highest = "What is the highest quiet level apt-get -q supports?"
    assert unsaid_bound(highest, coverage(highest, "The highest quiet level is 2 [1].", [quiet])) is None


def test_an_answer_stating_no_limit_is_withheld_and_not_released() -> None:
    said = "The largest reserved-blocks percentage that tune2fs -m will accept is 5% [1]."
    hits = [make_hit(1, TUNE2FS, "/kb/tune2fs.8.gz", dense=0.6)]
    # the model's reading would find "5%" stated; that is not what was asked, so it may not release the draft
    options = AnswerOptions(min_grounding=0, release_min_verified=0.5)
    sure = ScriptedVerifier([said], p=0.99, name="alone")
    ans = answer_question(LARGEST, hits, sure, options, embed=None)
    assert ans.abstained and ans.draft.startswith("The largest reserved-blocks") and sure.read == []
    (flag,) = [f for f in ans.flags if f.kind == "no_limit"]
    assert '"largest"' in flag.detail and flag.quote.startswith("The default percentage is 5%")
    # off, the same draft is delivered
    kept = answer_question(LARGEST, hits, ScriptedGenerator([said]), AnswerOptions(min_grounding=0, min_coverage=0))
    assert not kept.abstained


@pytest.mark.parametrize(
    ("question", "asked"),
    [
        ("Which port does valgrind-listener listen on by default?", True),
        ("What is the default value of UID_MIN?", True),
        ("Which port does it use if it defaults to one?", True),
        # rule DF: the default as what to depart from (useradd's -k, trial 63)
        ("Which option lets me use a different skeleton directory than the default?", False),
        ("Which environment variable overrides the default display width of ps?", False),
        ("Which configuration variable changes the default of git commit's --cleanup option?", False),
        ("How do I use another format instead of the default format?", False),
        # one "default" asked for is enough
        ("What is the default width, and which variable overrides the default?", True),
    ],
)
def test_the_questions_that_ask_for_a_default(question: str, asked: bool) -> None:
    assert default_asked(question) is asked
