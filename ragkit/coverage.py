"""Does the answer say something the question did not, taken from a source sentence about what was asked?

Two ways a small model answers an on-topic question whose answer the sources lack, that the grounding check
(ragkit.grounding) cannot see, because the words it checks are all in the sources:

- **restated**: the answer repeats the question and adds nothing ("The laptop model do new employees receive
  [1]." for "Which laptop model do new employees receive?"). Qwen2.5 writes this instead of abstaining.
- **off the question**: the answer's key fact stands in a source sentence that does not mention what the
  question asks about. "The maximum reimbursed price for a taxi ride is 180 euros" is copied from "Hotels are
  reimbursed up to 180 euros per night": the sentence is on the topic (reimbursed) but never says taxi or ride.

A third, seen on real manuals: asked what a document does not say, the model copies out the closest passage
(five sentences of the users-and-groups guide for "Who maintains the bzip2 package in Debian?"). Its many new
words always find some sentence that shares a few of the question's, so a **passage** (PASSAGE_SENTENCES or
more sentences) must reach PASSAGE_MIN_COVERAGE, not the floor for a short answer.

Coverage measures the second and third: the share of the question's content words found in the evidence
sentence (the one holding most of the answer's key spans, or of its new words) or the sentences beside it in
the same source, each word weighted by how rare it is among the sources' sentences, so "taxi" (in no
sentence) counts for far more than "reimbursed" (in several). Choice and yes/no questions are exempt from
these checks: their answers are made of the question's own words ("Les Huguenots has more acts").
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

# WINDOW: the sentences either side of the evidence sentence, in the same source, that also count (one value for
# both checks: they read the evidence where it stands)
from ragkit.grounding import CITATION, DOTTED_NUMBER, WINDOW, code_words, key_spans
from ragkit.roles import occurs
from ragkit.textutil import (
    NUMBER_WORDS,
    content_words,
    entry_tags,
    source_sentences,
    split_sentences,
    unwrap_lines,
    without_rejected,
)

# "X or Y?" picks one of the question's own names (in a which/what question, an "or" only after a comma: rule C');
# "Are/Is/Did ...?" is answered yes or no; "In which order does grep examine LC_ALL and LANG?" arranges them (rule J)
_CHOICE = re.compile(
    r"\bboth\b|^\s*(?:are|is|was|were|do|does|did|can|could|has|have|had|will)\b|\b(?:which|what)\s+order\b",
    re.I,
)
_OR = re.compile(r"\bor\b", re.I)  # also a choice answered by picking one of its options (not a yes/no)
_WH = re.compile(r"\s*(?:which|what|who|where|when|how)\b", re.I)
CHOICE_TAIL = re.compile(r",[^,]*\bor\b[^,]*\?\s*$", re.I)  # "..., grep -F or grep -E?"
_QUOTED_SYMBOL = re.compile(r"[\"'`“‘]([^\w\s\"'`“”‘’]{1,3})[\"'`”’]")  # "?", `@@`, '#'
_WORD = re.compile(r"[^\W_]+")
_PATHLIKE = re.compile(r"[^\s,;:()\"']*\w[/.\\]\w[^\s,;:()\"']*|(?<!\S)/\w[^\s,;:()\"']*")  # /etc/shadow, zlib.h
_COMPOUND = re.compile(r"[^\W_]+(?:-[^\W_]+)+")  # dpkg-trigger, Triggers-Pending, scrollkeeper-update-now
_IDENTIFIER = re.compile(r"\b[a-z]+[A-Z]\w*|\b\w+(?:\.\w+)+\b")  # fsyncMethod, core.fsync, Node.js, 2.31
_SOURCE_TERM = re.compile(r"\bsource\s+(?!\[)[a-z]", re.I)  # "source directory", not "the source [1]"
_HOW = re.compile(r"\bhow\s+(?:much|many|long|often|far|old|big|large|soon|frequently)\b", re.I)
# what answers "how many/much/often/old/long": a figure, a number word, an ordinal or a roman numeral ("Louis
# XIV"), or a word that bounds an amount or a time ("unlimited", "none", "weekly", "a day", "until ..."). "first"
# and "third" are left out: they stand in copied text that states no amount ("third-party archives")
# "what/which year" asks for a figure too: "In which year was pyenv first released?" was answered with a copied
# sentence about version files (pyenv's docs, twelfth session)
_QUANTITY_ASKED = re.compile(r"\bhow\s+(?:many|much|often|old|long)\b|\b(?:what|which)\s+year\b", re.I)
# a version, a numeric value or an amount in a unit is a figure too ("In which Node.js version ...?" answered "in a
# future major version"), in digits; "what marks the default version" asks for no version (rule A)
_VERSION_ASKED = re.compile(
    r"\b(?:what|which)(?:\s+(?:is|was|are|were)\s+(?:the|an?))?(?:\s+(?!(?:the|an?)\b)[\w.'-]+){0,3}?\s+versions?\b"
    r"(?!\s+control)|\bnumeric(?:al)?\s+value\b",
    re.I,
)
_UNIT_ASKED = re.compile(
    r"\bin\s+(?:(?:milli|micro|nano|kilo|mega|giga)?(?:seconds|bytes|bits)|minutes|hours|days|weeks|octets|"
    r"characters|columns|lines|pixels|percent|KiB|MiB|GiB|KB|MB|GB|ms)\b",
    re.I,
)
# ...unless the question asks for a named thing: "Which mawk function returns the time of day in seconds ...?" wants
# a function (rule U, docs/design-notes.md)
NAMED_ASKED = re.compile(
    r"^\W*(?:which|what)\s+(?:[\w.'-]+\s+){0,3}?(?:functions?|options?|commands?|variables?|files?|programs?|flags?|"
    r"settings?|signals?|macros?|keys?|fields?|formats?|methods?|tools?|modes?|units?)\b",
    re.I,
)
_NUMBER_WORDS = r"""hundreds? thousands? millions? billions? trillions? dozens? half halves quarters? twice thrice
    once single double triple second fourth fifth sixth seventh eighth ninth tenth eleventh twelfth \w+teenth
    \w+tieth hundredth thousandth"""
_AMOUNT_WORDS = r"""none nothing zero free unlimited infinite indefinite(?:ly)? forever permanent(?:ly)? arbitrary
    all several many few multiple numerous countless always never limit(?:s|ed)? until till lifetime life
    perpetual(?:ly)? perpetuity daily weekly monthly yearly annual(?:ly)? hourly nightly quarterly fortnightly biweekly
    seconds? minutes? hours? days? nights? weeks? months? years? decades? century centuries"""
# a figure starts with its digit: "sqlite3", "libxml2" are names (rule O)
_NUMBER = re.compile(r"(?<![^\W\d_])\d|\b(?:" + "|".join((*NUMBER_WORDS, *_NUMBER_WORDS.split())) + r")\b", re.I)
_AMOUNT = re.compile(r"\b(?:" + "|".join(_AMOUNT_WORDS.split()) + r")\b", re.I)
_DIGIT = re.compile(r"\d")
_TOKEN_RUN = re.compile(r"\w+(?:[.,:]\w+)*")  # a word or a number with its dots: CMP0135, 3.24, v10.2.0
_ROMAN = re.compile(r"\b[IVXLC]{2,}\b")  # upper case only: "ill" is no numeral
# "no" bounds an amount only when it governs what was counted or a bound ("no timers", "no fixed limit"): in
# "there is no need to ..." it counts nothing (a copied introduction for "How many timers can Node schedule?")
_NO = re.compile(r"\bno\s+(\w+)(?:\s+(\w+))?", re.I)
_BOUNDS = {"limit", "limits", "maximum", "max", "minimum", "min", "cap", "ceiling"}
# an answer of this many sentences is a copied passage, which needs this much coverage: on the dev and trial
# drafts, right passages covered 0.50-0.77 of their questions, copied non-answers 0.25-0.46
PASSAGE_SENTENCES = 3
PASSAGE_MIN_COVERAGE = 0.5


@dataclass(frozen=True, slots=True)
class Coverage:
    """How much of what the question asks the answer's evidence mentions: score in [0, 1] (rarity-weighted
    share of the question's content words in the evidence sentence and its neighbours; 0.0 when no source
    holds the answer's new words), the question's words it lacks, and the evidence sentence."""

    score: float
    missing: tuple[str, ...]
    sentence: str | None
    context: str = ""  # the evidence as the check read it: section title, then the sentence and its neighbours


def is_choice(question: str) -> bool:
    """True for a question answered from its own words: a choice ("A or B?", "both") or a yes/no question. A
    which/what/... question is a choice only when its alternatives close it after a comma ("Which is faster, grep
    -F or grep -E?"): an "or" inside a clause ("... when the type is unknown or specific to the format?") is not
    one (rule C')."""
    if _CHOICE.search(question):
        return True
    return bool(_OR.search(question)) and (not _WH.match(question) or bool(CHOICE_TAIL.search(question)))


def sentences(answer: str) -> int:
    """How many sentences (or list lines) of two words or more the answer has, citations left out."""
    return sum(len(_WORD.findall(p)) >= 2 for p in split_sentences(unwrap_lines(CITATION.sub("", answer))))


def coverage_floor(answer: str, floor: float) -> float:
    """The coverage the answer must reach: `floor`, or PASSAGE_MIN_COVERAGE for a passage (0 keeps it off)."""
    if floor <= 0 or sentences(answer) < PASSAGE_SENTENCES:
        return floor
    return max(floor, PASSAGE_MIN_COVERAGE)


def asked_words(question: str) -> set[str]:
    """The question's content words (stemmed) without the word that completes "how" ("how much", "how long"):
    it says what kind of answer is wanted, not what the answer is about. A dotted number is one word ("1.12",
    not "1" and "12", which "1.3.12" also holds)."""
    text = _HOW.sub("", question)
    return content_words(DOTTED_NUMBER.sub(" ", text)) | set(DOTTED_NUMBER.findall(text))


def _holds(text: str, dotted: set[str]) -> set[str]:
    """The content words of `text`, with each of the question's dotted numbers it holds whole."""
    return content_words(text) | {d for d in dotted if occurs(d, text)}


def new_words(question: str, answer: str) -> set[str]:
    """The answer's content words (stemmed, citations removed) and identifiers that the question does not
    contain."""
    text = CITATION.sub("", answer)
    # a word the question holds only inside a path or file name is new on its own: "shadow" answers "Which group
    # can read /etc/shadow?"
    plain = content_words(_PATHLIKE.sub(" ", text)) - content_words(_PATHLIKE.sub(" ", question))
    # "source" is a stopword for the meta talk about the sources ("according to the source"), but before a noun it
    # is a term: "relative to the source directory" answers "Relative to which directory ...?" (CMake's presets)
    term = {"source"} if _SOURCE_TERM.search(text) and not _SOURCE_TERM.search(question) else set()
    return (content_words(text) - content_words(question)) | plain | (code_words(text) - code_words(question)) | term


def restates(question: str, answer: str) -> bool:
    """True when the answer adds nothing to the question: no new content word and no key span (choice and
    yes/no questions excepted)."""
    if not answer.strip() or is_choice(question):
        return False
    text = CITATION.sub("", answer)
    if not _WORD.search(text):  # "#" answers "Which character begins a comment?"
        return False
    # a compound of the question's words is a name of its own: "dpkg-trigger" answers "Which program activates an
    # explicit dpkg trigger?" (dpkg's triggers spec)
    compounds = {c.lower() for c in _COMPOUND.findall(text)} - {c.lower() for c in _COMPOUND.findall(question)}
    # so is an identifier the five-letter stem would merge with the question's: "core.fsyncMethod" is not the
    # "core.fsyncObjectFiles" it replaces (Git's release notes)
    compounds |= set(_IDENTIFIER.findall(text)) - set(_IDENTIFIER.findall(question))
    # and a path: "~/.cache/pip" answers "Where does pip store its cache?" with the question's words (pip's docs)
    compounds |= _paths(text) - _paths(question)
    # and a quoted symbol: 'nm shows "?"' answers which symbol type nm shows for an unknown one (rule C')
    compounds |= set(_QUOTED_SYMBOL.findall(text)) - set(_QUOTED_SYMBOL.findall(question))
    if compounds or new_words(question, answer) or key_spans(answer, question):
        return False
    return not _written_as_names(question, text)


def _written_as_names(question: str, text: str) -> set[str]:
    """The question's words the answer writes as names (rule S): in capitals where the question writes them in
    lower case ("WGETRC" for "wgetrc") or with a capital inside a sentence where the question has none ("Makefile"
    for "makefile"). Backticks are not enough: the model puts the question's own words in code ("`pyenv root`")."""
    asked = {w.lower() for w in _WORD.findall(question)}
    written = set(_WORD.findall(question))
    names: set[str] = set()
    for sentence in split_sentences(text):
        for k, word in enumerate(_WORD.findall(sentence)):
            if word in written or word.islower() or word.lower() not in asked:
                continue
            if (len(word) > 1 and word.isupper()) or (k > 0 and word[:1].isupper()):
                names.add(word.lower())
    return names


def _paths(text: str) -> set[str]:
    """The paths in `text` ("~/.cache/pip", "/etc/shadow"), lower-cased, without a closing "?" or full stop."""
    return {p.lower().rstrip("?.!") for p in _PATHLIKE.findall(text) if "/" in p or "\\" in p}


def coverage(
    question: str, answer: str, sources: Sequence[str], headings: Sequence[str | None] = ()
) -> Coverage | None:
    """The coverage of `question` by the sentence of `sources` (the texts the model saw) that holds the
    answer's key fact; headings[i], when given, is the section title above sources[i], whose words count as
    near every sentence of that source. None when there is nothing to measure (a choice or yes/no question, an
    answer with no new word, a question with no content word, no sources)."""
    if is_choice(question):
        return None
    asked = asked_words(question)
    spans = key_spans(answer, question)
    novel = new_words(question, answer)
    if not asked or not (spans or novel):
        return None
    sents = [(i, s) for i, text in enumerate(sources) for s in source_sentences(text)]
    if not sents:
        return None
    dotted = {w for w in asked if "." in w or "," in w or ":" in w}
    # the entry tag above each sentence (rule P'): "Valid values for METHOD are seek and raw." is about the
    # "--hole-detection=METHOD" above it, as the model reads it
    tags = [tag for text in sources for tag in entry_tags(text)]
    words = [_holds(s, dotted) for _, s in sents]
    # the evidence: sentences holding most key spans (or, with none, most of the answer's new words)
    kept = [without_rejected(s) for _, s in sents]  # an alternative a sentence rules out is not held there
    held = [sum(occurs(span, s) for span in spans) for s in kept] if spans else [len(novel & w) for w in words]
    most = max(held)
    if most == 0:  # the answer's new words are in no source
        return Coverage(0.0, _missing(question, asked), None)
    rarity = _rarity(asked, words)
    total = sum(rarity.values())
    best = (-1.0, set[str](), 0, "")
    for j in (j for j, n in enumerate(held) if n == most):
        # the model sees each source under its section title ("setTimeout(callback[, delay])" above a
        # "**Default:** 1" line), so the title says what the sentences below it are about
        i = sents[j][0]
        title = (headings[i] or "") if i < len(headings) else ""
        tag = tags[j]
        near, context = _holds(f"{title}\n{tag}", dotted), [title, tag] if tag else [title]
        for t in range(max(0, j - WINDOW), min(len(sents), j + WINDOW + 1)):
            if sents[t][0] == sents[j][0]:
                near |= words[t]
                context.append(sents[t][1])
        near |= _kinds_shown(question, answer, "\n".join(context))
        score = sum(rarity[w] for w in asked & near) / total
        if score > best[0]:
            best = (score, near, j, "\n".join(context))
    score, near, j, text = best
    return Coverage(score, _missing(question, asked - near), sents[j][1], text)


# rule M: the noun naming the kind of thing asked ("Which environment variable ...") is covered by an answer of that
# kind's shape the evidence holds ("LIBMOUNT_DEBUG"): the evidence need not say "variable". Rule G, the noun as a
# bonus word, released copied text whose kind was nowhere; the shape tells the two apart. Kinds a digit shows
# (version, year, value) are left out: a copied sentence almost always holds some number (rule L)
_KIND_PHRASE = re.compile(r"\b(?:which|what)((?:\s+[^\s?]+){1,3})", re.I)
_CALLABLE = re.compile(r".*(?:\w\(|::|[a-z][A-Z])")  # open(), Getopt::Long, GetOptionsFromString
_KIND_SHAPES = (
    ({"option", "options", "flag", "flags", "switch", "switches"}, re.compile(r"[-+]{1,2}[^\W_]")),
    ({"variable", "variables"}, re.compile(r"\$\w|[A-Z][A-Z0-9_]{2,}(?:=|$)")),
    ({"file", "files", "directory", "directories", "folder", "folders", "path", "paths"}, re.compile(r".*\w/|/\w")),
    ({"function", "functions", "method", "methods", "subroutine", "subroutines"}, _CALLABLE),
    ({"module", "modules"}, re.compile(r".*\w::\w")),
)
_ANSWER_TOKEN = re.compile(r"[^\s`'\"“”‘’,;]+")
_EDGES = re.compile(r"^[^\w$~/.+-]+|[^\w)/]+$")


def _kinds_shown(question: str, answer: str, evidence: str) -> set[str]:
    """The stems of the kind nouns in the question's "which/what" phrase that an answer token of the kind's shape,
    new to the question and held by the evidence, stands for (rule M)."""
    phrase = _KIND_PHRASE.search(question)
    if phrase is None:
        return set()
    nouns = {w.lower().strip(",.:") for w in phrase.group(1).split()}
    kinds = [(names & nouns, shape) for names, shape in _KIND_SHAPES if names & nouns]
    if not kinds:
        return set()
    shown: set[str] = set()
    for token in (_EDGES.sub("", t) for t in _ANSWER_TOKEN.findall(CITATION.sub("", answer))):
        core = re.sub(r"^[-+$~]+|\(\)$", "", token).rstrip("=")
        if not core or occurs(core, question) or not occurs(core, evidence):
            continue
        for names, shape in kinds:
            if shape.match(token):
                shown |= content_words(" ".join(names))
    return shown


def unquantified(question: str, answer: str) -> str | None:
    """The phrase of the question that asks for a figure, when the answer gives none: it does not answer what was
    asked, whatever its source says (a copied passage, "How many days notice ...?" answered with the licence's
    appendix). "how many/much/often/old/long" needs a figure, a number word, or a word bounding an amount or a
    time that the question does not hold already; an amount "in <unit>" a figure or a number word; "which year",
    "which version" and a "numeric value" a digit. None otherwise, and for an amount or a "how ..." inside a
    question that asks which option, command, variable, ... (a name is asked for)."""
    named = NAMED_ASKED.search(question) is not None
    asked = _QUANTITY_ASKED.search(question)
    if named and asked is not None and asked.group().lower().startswith("how"):
        asked = None  # rule H: "Which option shows ... how much RAM xz thinks the system has?" asks for an option
    written = _VERSION_ASKED.search(question)  # answered in digits
    unit = _UNIT_ASKED.search(question) if not named else None  # digits or number words
    if (asked is None and written is None and unit is None) or not answer.strip():
        return None
    # a figure the question writes is not the one it asks for: the digits of "CMP0135" in "In which CMake version will
    # ... CMP0135 be removed?" do not make "... in a future version of CMake." a version
    held = {t.lower() for t in _TOKEN_RUN.findall(question)}
    text = " ".join(t for t in _TOKEN_RUN.findall(CITATION.sub("", answer)) if t.lower() not in held)
    if asked is not None and asked.group().lower().endswith("year"):
        written = asked  # "until" bounds no year
    if written is not None or asked is None:
        # "in a future version" names no version, and "all of the files" is no amount of seconds
        phrase, needed = (written, _DIGIT) if written is not None else (unit, _NUMBER)
        return None if phrase is None or needed.search(text) else " ".join(phrase.group().lower().split())
    if _NUMBER.search(text) or _ROMAN.search(text):
        return None
    # a unit or other amount word the question names does not answer it ("How much is paid for a week on
    # call?" answered "... is paid for a week on call")
    amounts = {m.group().lower() for m in _AMOUNT.finditer(text)}
    if amounts - {m.group().lower() for m in _AMOUNT.finditer(question)} or _counts_none(question, text):
        return None
    return " ".join(asked.group().lower().split())


def _counts_none(question: str, text: str) -> bool:
    """True when the answer says "no" of what the question counts or of a bound ("No timers ...", "no limit")."""
    asked = content_words(question)
    for m in _NO.finditer(text):
        after = [w.lower() for w in m.groups() if w]
        if any(w in _BOUNDS or content_words(w) & asked for w in after):
            return True
    return False


def unnamed_options(question: str, answer: str, sources: Sequence[str]) -> tuple[str, ...]:
    """For a choice or yes/no question, the names and numbers of the question that the answer claims and no
    source mentions: answering "A" to "Which is older, A or B?" from sources that never name A is a guess, which
    the other checks cannot see because every word of it is the question's. A choice answer claims the option
    it names first ("A is older than B" claims A); a yes/no answer claims every name it repeats. Initials
    ("J" of "Ernest J. Gaines") are left out: a source may spell the name out. () otherwise."""
    if not is_choice(question):
        return ()
    asked = {w.lower() for w in _WORD.findall(question)}
    spans = [s for s in key_spans(answer, "") if len(s) > 1 and {w.lower() for w in _WORD.findall(s)} <= asked]
    if _OR.search(question):
        spans = _first_option(spans, question)
    return tuple(s for s in spans if not any(occurs(s, text) for text in sources))


def _first_option(spans: list[str], question: str) -> list[str]:
    """The spans of the first option the answer names: the answer's first span and those that follow it
    inside the same option of the question ("Les", "Huguenots" of "Les Huguenots or Eugene Onegin")."""
    options = [o for o in re.split(r",|\bor\b", question.split("?")[0]) if o.strip()]
    for option in options:
        if spans and occurs(spans[0], option):
            return [s for s in spans if occurs(s, option)]
    return spans[:1]


def _rarity(asked: set[str], words: list[set[str]]) -> dict[str, float]:
    """log((sentences + 1) / (sentences holding the word + 0.5)): a word no source sentence holds weighs most."""
    n = len(words)
    return {w: math.log((n + 1) / (sum(w in ws for ws in words) + 0.5)) for w in asked}


def _missing(question: str, stems: set[str]) -> tuple[str, ...]:
    """The question's words (as written, once each, in order) whose stems are in `stems`."""
    out = [w for w in _WORD.findall(question) if content_words(w) & stems]
    out += [d for d in DOTTED_NUMBER.findall(question) if d in stems]  # "1.12", asked whole
    return tuple(dict.fromkeys(w.lower() for w in out))
