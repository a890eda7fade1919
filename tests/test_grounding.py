"""ragkit.grounding: the answer's key spans, and the source sentence that holds them scored against the
question (a deterministic hash embedder here; the real MiniLM in the dev-set bench)."""

from __future__ import annotations

from ragkit.grounding import grounding, key_spans
from ragkit.testing import HashEmbedder

SOURCES = [
    "Backups are encrypted with AES-256 and stored in two regions. Nightly backups are kept for 35 days.",
    "Northwind Robotics keeps every production secret in the company vault.",
]


def test_key_spans_are_what_the_answer_adds_to_the_question() -> None:
    assert key_spans("Production API keys must be rotated every 90 days [1].", "How often are API keys rotated?") == [
        "Production",
        "90",
    ]
    assert key_spans("The vault is encrypted with AES-256 [2].", "Which encryption protects the vault?") == ["AES-256"]
    assert key_spans("It is the vault.", "Where are secrets kept in the vault?") == []
    # a digit inside a word is no number: "asn1Parser ... only" restates its question, it adds no fact "1"
    # (found on GNU libtasn1's manual); a name with a version ("ASN.1") is one span
    question = "Which option of asn1Parser checks the syntax only?"
    assert key_spans("asn1Parser checks the syntax only [1].", question) == []
    assert key_spans("The header is libtasn1.h, for ASN.1 and X.509 [1].", "") == ["libtasn1", "ASN.1", "X.509"]
    # a command-line option is a key fact (bzip2's manual: "-s" answers which option saves memory); a hyphen
    # inside a word starts none
    question = "Which bzip2 option reduces memory usage?"
    assert key_spans("The option is -s, or --small [1].", question) == ["-s", "--small"]
    assert key_spans("The base-passwd package, re-read daily [1].", "") == []
    # a number the question writes inside a word is the question's ("166" of "the 166th year"), not a new fact
    question = "The king during the 166th year of the Kingdom served for how many years?"
    assert key_spans("The king during the 166th year served for 70 years [1].", question) == ["70"]
    assert key_spans("The king during the 166th year served long [1].", question) == []
    # a number is one token: "0.3.0" is new to a question about ^0.2.3 (semver's README), so a code answer made
    # of the question's digits is no restatement; an option the question does not write is new even when its
    # word is asked ("--exit" for the exit status: GNU time has no such option)
    question = "What does the caret range ^0.2.3 desugar to?"
    assert key_spans("`>=0.2.3 <0.3.0-0` [2].", question) == [">=0.2.3 <0.3.0-0"]
    assert key_spans("It desugars to `^0.2.3` [2].", question) == []
    question = "Which format specifier gives the exit status of the timed command?"
    assert key_spans("The exit status is given by the option --exit [2].", question) == ["--exit"]
    assert key_spans("The --exit status is 0 [2].", "What is the --exit status?") == ["0"]
    # a quoted literal is one span, new unless the question writes it (Node's querystring docs: every word of
    # 'foo:bar;baz:qux' is in the question, the string is not); a bare symbol too ("`;`" starts an .npmrc
    # comment) unless asked; a capitalised name keeps its dotted part ("Punycode.js" for "punycode")
    question = "What does querystring.stringify({ foo: 'bar', baz: 'qux' }, ';', ':') return?"
    assert key_spans("It returns 'foo:bar;baz:qux' [1].", question) == ["foo:bar;baz:qux"]
    assert key_spans("It returns 'bar' with ';' [1].", question) == []
    assert key_spans('It is "utf8" [1].', "Which encoding?") == ["utf8"]
    assert key_spans("`;` or `#` [2].", "Which characters start a comment line in an .npmrc file?") == [";", "#"]
    # a literal the question holds only in another case is new: `TIMEOUT` names the option (CMake's file())
    download = "Which option of the file(DOWNLOAD) command sets the timeout?"
    assert key_spans("The `TIMEOUT` option of the `file(DOWNLOAD)` command sets the timeout [1].", download) == [
        "TIMEOUT"
    ]
    assert key_spans("Users' files and Node's own [1].", "") == ["Users", "Node"]  # apostrophes quote nothing
    question = "Which userland module should users switch to instead of Node's bundled punycode module?"
    assert key_spans("The userland [Punycode.js][] module [1].", question) == ["Punycode.js"]
    # a word with a digit keeps its dotted parts: "v10" alone stands in no "Added in: v10.2.0." (Node's timers)
    question = "In which Node.js version was timeout.refresh() added?"
    assert key_spans("timeout.refresh() was added in v10.2.0 [1].", question) == ["v10.2.0"]
    # a number the question writes with dots is one number: its "3" is not the answer's (CMake's policies)
    question = "How many policies were introduced in CMake 3.24?"
    assert key_spans("3 policies were introduced in CMake 3.24.", question) == ["3"]
    assert key_spans("Policies were introduced in CMake 3.24.", question) == []
    # a code literal is new even when its word is a stopword: `BOTH` is a registry view, `while` a command
    question = "What is the default registry view of the find_program command?"
    assert key_spans("The default registry view of the find_program command is ``BOTH`` [1].", question) == ["BOTH"]
    assert key_spans("The :command:`while` diagnoses errors [1].", "Which command diagnoses errors?") == ["while"]
    assert key_spans("It is both [1].", "Which views?") == []
    # an identifier the question writes as is is the question's, in backticks or not (CMake's <LANG>_EXTENSIONS)
    question = "Which policy changes how <LANG>_EXTENSIONS is initialized?"
    assert key_spans("The policy changes how `<LANG>_EXTENSIONS` is initialized [1].", question) == []
    assert key_spans("It is sys_path_hooks [1].", "What does sys_path do?") == ["sys_path_hooks"]


def test_a_span_from_a_sentence_about_something_else_scores_below_one_about_the_question() -> None:
    embed = HashEmbedder().embed
    on = grounding("How long are nightly backups kept?", "Nightly backups are kept for 35 days [1].", SOURCES, embed)
    off = grounding("Which algorithm encrypts the company vault?", "AES-256 [1].", SOURCES, embed)
    assert on is not None and off is not None
    assert on.sentence == "Nightly backups are kept for 35 days." and on.spans == ("35",)
    assert off.sentence == "Backups are encrypted with AES-256 and stored in two regions."
    assert on.score > off.score
    missing = grounding("Who founded the company?", "It was founded by Ada Lovelace in 1901.", SOURCES, embed)
    assert missing is not None and missing.score == 0.0 and missing.sentence is None
    assert grounding("Where are secrets kept?", "In the vault.", SOURCES, embed) is None  # nothing to check


def _answer(reply: str, question: str, **options: float):  # type: ignore[no-untyped-def]
    from ragkit.answering import AnswerOptions, answer_question
    from ragkit.testing import ScriptedGenerator, make_hit

    hits = [make_hit(1, SOURCES[0], "/kb/backups.md", dense=0.6), make_hit(2, SOURCES[1], "/kb/vault.md", dense=0.5)]
    return answer_question(
        question, hits, ScriptedGenerator([reply]), AnswerOptions(**options), embed=HashEmbedder().embed
    )


def test_an_answer_whose_key_fact_is_in_no_source_is_withheld() -> None:
    # most of its words are in a source (so its [1] stands), but not its key fact
    ans = _answer("It is encrypted and stored by Ada Lovelace [1].", "Who founded the company?")
    assert ans.abstained and ans.text == "I don't know based on the provided sources."
    assert ans.draft.startswith("It is encrypted and stored by Ada Lovelace") and ans.grounding == 0.0
    (flag,) = [f for f in ans.flags if f.kind == "ungrounded"]
    assert "in no source" in flag.detail and "Ada" in flag.detail and not ans.citations
    kept = _answer(
        "It is encrypted and stored by Ada Lovelace [1].", "Who founded the company?", min_grounding=0, min_coverage=0
    )
    assert not kept.abstained and kept.draft == "" and kept.grounding is None


def test_an_answer_no_source_supports_at_all_is_withheld_as_unsourced() -> None:
    """Rule C: the citation check kept no citation (its [1] was dropped), so no source holds the answer; held-out
    trial 37 delivered "The largest file size diff can compare is 2^32 bytes (4GB)." that way."""
    ans = _answer("The company was founded by Ada Lovelace in 1901 [1].", "Who founded the company?")
    assert ans.abstained and ans.draft == "The company was founded by Ada Lovelace in 1901." and not ans.citations
    assert [f.kind for f in ans.flags] == ["unsupported", "unsourced"]  # the first check after generation
    assert ans.flags[1].detail == ("none of its sentences is in a source (best support 0.00, support_threshold 0.50)")
    assert ans.grounding is None and ans.coverage is None  # the later checks did not run
    # one supported sentence is enough: the answer goes on to the other checks (here: delivered)
    ok = _answer(
        "Nightly backups are kept for 35 days [1]. They were founded by Ada Lovelace.", "How long are backups kept?"
    )
    assert [f.kind for f in ok.flags if f.kind in ("unsourced", "ungrounded")] == [] and not ok.abstained
    off = _answer("The company was founded by Ada Lovelace in 1901 [1].", "Who founded the company?", min_grounding=0)
    assert "unsourced" not in [f.kind for f in off.flags]  # min_grounding 0 turns it off with grounding


def test_a_grounded_answer_is_kept_with_its_grounding() -> None:
    ans = _answer("Nightly backups are kept for 35 days [1].", "How long are nightly backups kept?")
    assert not ans.abstained and "35 days" in ans.text and ans.draft == ""
    assert ans.grounding is not None and ans.grounding >= 0.2
    assert not [f for f in ans.flags if f.kind == "ungrounded"]


def test_a_number_in_figures_is_grounded_by_the_same_number_in_words() -> None:
    # dev split: "emigrated ... at 14 years old" was withheld as in no source, which says "at fourteen"
    embed = HashEmbedder().embed
    spelled = grounding("How long are backups kept?", "Backups are kept for 2 regions [1].", SOURCES, embed)
    assert spelled is not None and spelled.sentence == SOURCES[0].split(". ")[0] + "."
    assert grounding("How long?", "For 3 days.", SOURCES, embed).score == 0.0  # type: ignore[union-attr]
    from ragkit.citations import support
    from ragkit.evals.judges import _foreign_number
    from ragkit.roles import occurs

    # the coverage check and the role judge find it too; the citation check and the judge's number cap hold it
    assert occurs("14", "He emigrated at fourteen.") and not occurs("4", "He emigrated at fourteen.")
    assert support("He emigrated at 14.", "He emigrated at fourteen.") > 0.0
    assert support("He emigrated at 15.", "He emigrated at fourteen.") == 0.0
    assert not _foreign_number("at 14", "at fourteen") and _foreign_number("at 4", "at fourteen")
    # a number the claim repeats from its question is the question's premise (dev split: the "400 class" of
    # "the museum where two 400 class locomotives are preserved moved in 1988")
    museum = "The museum moved to its current premises in 1988."
    claim = "The museum where 400 class locomotives stand moved in 1988."
    assert _foreign_number(claim, museum)
    assert not _foreign_number(claim, museum, "When did the museum where 400 class locomotives stand move?")
    ans = _answer("They are stored in 2 regions [1].", "In how many regions are backups stored?")
    assert not ans.abstained and ans.grounding is not None and ans.grounding > 0


# npm's docs (npm 11.19.1, package-lock-json.md): the hidden lockfile's version is 3, and 2 is named only as the
# alternative ruled out; the 0.5B model answered "lockfileVersion: 2"
HIDDEN = (
    "As the hidden lockfile is ignored by older npm versions, it does not contain the backwards compatibility "
    "affordances present in normal lockfiles. That is, it is `lockfileVersion: 3`, rather than `lockfileVersion: 2`."
)


def test_an_alternative_the_source_rules_out_does_not_ground_an_answer() -> None:
    from ragkit.answering import AnswerOptions, answer_question
    from ragkit.coverage import coverage
    from ragkit.roles import rejected, rejected_spans, role_support
    from ragkit.testing import ScriptedGenerator, make_hit
    from ragkit.textutil import without_rejected

    assert without_rejected(HIDDEN).endswith("rather than .") and "`lockfileVersion: 3`" in without_rejected(HIDDEN)
    assert without_rejected("Use tabs instead of spaces, always.") == "Use tabs instead of , always."
    # the alternative ends where another phrase starts: the variable that does it is no alternative
    drd = "Use standard allocation instead of memory pools by setting the environment variable GLIBCXX_FORCE_NEW."
    assert "memory pools" not in without_rejected(drd) and without_rejected(drd).endswith("variable GLIBCXX_FORCE_NEW.")
    assert rejected("2", HIDDEN) and not rejected("3", HIDDEN) and not rejected("7", HIDDEN)
    assert not rejected("2", HIDDEN + " Version 2 was used by npm v7.")  # named in a role of its own too
    question = "Which lockfileVersion does the hidden lockfile use?"
    assert rejected_spans("lockfileVersion: 2 [1].", question, [HIDDEN]) == ["2"]
    assert rejected_spans("lockfileVersion: 3 [1].", question, [HIDDEN]) == []
    assert rejected_spans("Version 3, rather than 2 [1].", question, [HIDDEN]) == []  # the answer rules 2 out too
    assert grounding(question, "lockfileVersion: 2 [1].", [HIDDEN], HashEmbedder().embed).score == 0.0  # type: ignore[union-attr]
    assert coverage(question, "lockfileVersion: 2 [1].", [HIDDEN]).sentence is None  # type: ignore[union-attr]
    # the role judge reads it the same way
    assert role_support("The hidden lockfile uses lockfileVersion 2.", HIDDEN) == 0.0
    assert role_support("The hidden lockfile uses lockfileVersion 3.", HIDDEN) == 1.0

    def ask(reply: str):  # type: ignore[no-untyped-def]
        hits = [make_hit(1, HIDDEN, "/kb/package-lock-json.md", dense=0.6)]
        return answer_question(question, hits, ScriptedGenerator([reply]), AnswerOptions(), embed=None)

    wrong = ask("lockfileVersion: 2 [1].")
    assert wrong.abstained and wrong.draft == "lockfileVersion: 2 [1]."
    (flag,) = [f for f in wrong.flags if f.kind == "ungrounded"]
    assert '"2"' in flag.detail and "rule out" in flag.detail
    right = ask("The hidden lockfile uses `lockfileVersion: 3` [1].")
    assert not right.abstained and "lockfileVersion: 3" in right.text


def test_the_evidence_sentence_is_read_where_it_stands() -> None:
    # rule U (bzip2's manual): "The relevant flag is -s." alone says nothing of memory; the model read it under
    # its entry's tag and after the sentence before it, and so does the grounding check
    source = "Saving memory\nReduce memory usage, for decompression. The relevant flag is -s. It is slower."
    seen: list[str] = []

    def embed(texts: list[str]):  # type: ignore[no-untyped-def]
        seen.extend(texts)
        return HashEmbedder().embed(texts)

    question = "Which bzip2 option reduces memory usage when decompressing?"
    got = grounding(question, "The option is -s [1].", [source], embed)
    assert got is not None and got.sentence == "The relevant flag is -s."  # the sentence shown is the lone one
    read = seen[1:]
    assert any("Saving memory" in t and "Reduce memory usage" in t and "The relevant flag is -s." in t for t in read)
    assert not any(t == "The relevant flag is -s." for t in read)
