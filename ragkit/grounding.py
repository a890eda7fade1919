"""Is the answer's key fact grounded in a source sentence that is about the question?

The relevance floor asks whether anything retrieved is about the question. On-topic questions whose answer
the corpus lacks pass it, and a small model then answers with a number or name that stands near the topic
(the vault's encryption answered with the backups' AES-256). This check looks at what the answer states
beyond the question, its key spans (numbers, names, code words), finds the source sentence that holds most
of them, and scores how close that sentence is to the question (cosine of their embeddings). A key fact
found in no source, or only in a sentence about something else, scores low.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ragkit.textutil import STOPWORDS, entry_tags, source_sentences, spelled_in, without_rejected

CITATION = re.compile(r"\[\d+\]")
# numbers (90, 3.11, 10:00) but not the digits inside a word, words holding a digit (libtasn1, asn1Parser),
# mixed-case or capitalised words (AES-256, Tuesday, Frankfurt, ASN.1, X.509), identifiers with an underscore
# (__len__), calls (id()), command-line options (-k, --keep) and `code`. The digit of "asn1Parser" read as the
# number 1 made an answer that only repeats the question look as if it added a fact. A capitalised name keeps
# its dotted parts ("Punycode.js" is new to "Node's bundled punycode module"), and a quoted literal without
# spaces is one span ('foo:bar;baz:qux', every word of it in the question that asks what stringify returns).
# A word with a digit keeps its dotted numeric parts: "v10" alone does not stand in "Added in: v10.2.0."
_KEY = re.compile(
    r"(?<![\w-])--?[A-Za-z][\w-]*|(?<![\w.])\d+(?:[.,:]\d+)*|\b[a-z]\w*\d\w*(?:\.\d+)*|\b[A-Z][\w-]*(?:\.\w+)*\b|\b\w*_\w*\b"
    r"|\b\w+\(\)|`[^`]+`|(?<![\w'])'[^'\s]+'(?![\w'])|(?<![\w\"])\"[^\"\s]+\"(?![\w\"])"
)
_WORD = re.compile(r"[^\W_]+")
_DOTTED = re.compile(r"(?<![\w.])\d+(?:[.,:]\d+)+")  # 3.24, 10:00, 1,000: one number, not its pieces
DOTTED_NUMBER = _DOTTED  # shared with the coverage check
_TOKEN = re.compile(r"\d+(?:[.,:]\d+)*|[^\W_]+")  # a word, or a number with its dots
_CODE = re.compile(r"\w*_\w*")
_STRING_VALUE = re.compile(r"`(['\"])[^`]+\1`")
_PATH = re.compile(r"[/\\~]|^\.\w")  # a `code` span that is a path or a dotfile: ~/.pyenv, /etc/shadow, .bashrc
MAX_CANDIDATES = 32  # sentences embedded per answer at most (one embedding call)
WINDOW = 1  # sentences either side of the evidence sentence read with it, here and in the coverage check
_NOT_KEY = {"i", "the", "a", "an", "it", "this", "that", "these", "those", "there", "they", "we", "you", "yes", "no"}


@dataclass(frozen=True, slots=True)
class Grounding:
    """How the answer's key spans sit in the sources: score in [-1, 1] (cosine of the question and the
    sentence holding most spans; 0.0 when no source holds any), and that sentence."""

    score: float
    spans: tuple[str, ...]
    sentence: str | None


def code_words(text: str) -> set[str]:
    """The identifiers with an underscore in `text` ("__len__", "sys_path"), lower-cased: the word splitter
    reads them as their letters ("len"), which the question may hold while the identifier is new."""
    return {w.lower() for w in _CODE.findall(text)}


def _written_in(span: str, text: str) -> bool:
    """True when `text` holds `span` as is, any case, not inside a longer word ("sys_path" is not in "sys_paths")."""
    return re.search(r"(?<!\w)" + re.escape(span) + r"(?!\w)", text, re.IGNORECASE) is not None


def key_spans(answer: str, question: str) -> list[str]:
    """What the answer states beyond the question: its numbers, names and code words, in order, once each."""
    text = CITATION.sub("", answer)
    # the question's own numbers are asked too when they are part of a word ("166" of "the 166th year")
    # a number with dots is one number: "3.24" does not ask "3" ("How many policies were introduced in CMake 3.24?")
    asked = {w.lower() for w in _WORD.findall(_DOTTED.sub(" ", question))}
    asked |= {m.group().lower() for m in _KEY.finditer(question)}
    asked_code = code_words(question)
    found = [m.group() for m in _KEY.finditer(text)]
    options = {m for m in found if m.startswith("-")}  # command-line options, as the answer writes them
    keep = []
    # a literal, quoted or `code`, without spaces: new unless the question writes it as is ("`;`" answers
    # "Which characters start a comment line in an .npmrc file?")
    literals = {m.strip("`'\"") for m in found if m[0] in "`'\"" and not re.search(r"\s", m)}
    # a string value in code is new unless the question quotes it: `'default'` answers "What is the default label
    # of console.count()?" (Node's console docs)
    code = {m.strip("`") for m in found if m[0] == "`" and not re.search(r"\s", m)}
    values = {m[2:-2] for m in found if _STRING_VALUE.fullmatch(m) and m[1:-1] not in question}
    for s in dict.fromkeys(m.strip("`'\"") for m in found):
        # a number is one token here: "0.3.0" in "`>=0.2.3 <0.3.0-0`" is new to "What does ^0.2.3 desugar to?"
        words = {w.lower() for w in _TOKEN.findall(s)}
        # an identifier, a path or an option is new unless the question writes it as is: "__len__" answers
        # "which method implements len()?", "~/.pyenv" answers "What is the default of PYENV_ROOT?", and "--exit"
        # (no option of GNU time) answers "Which format specifier gives the exit status?"
        # ... unless the question writes it as is: `<LANG>_EXTENSIONS` answers nothing in "how <LANG>_EXTENSIONS is
        # initialized?" although the word pattern finds only "_EXTENSIONS" there (CMake's policies)
        named = "_" in s and s.lower() not in asked_code and not _written_in(s, question)
        written = _PATH.search(s) is not None or s in options or s in literals
        # as is means with its case: `TIMEOUT` names the option "Which option ... sets the timeout?" asks for
        named = named or (written and s not in question) or s in values
        # a code literal is new whatever its word: `BOTH` (a registry view) and `while` (a command) answer CMake
        # questions, and read as the stopwords "both" and "while" the answers looked like restatements
        if s in code and s not in question:
            keep.append(s)
            continue
        if s.lower() in _NOT_KEY or s.lower() in STOPWORDS or (words <= asked and not named):
            continue
        keep.append(s)
    return keep


def grounding(
    question: str, answer: str, sources: Sequence[str], embed: Callable[[list[str]], np.ndarray]
) -> Grounding | None:
    """The answer's grounding in `sources` (the texts the model saw); None when the answer states nothing
    beyond the question (no key span: nothing to check)."""
    spans = key_spans(answer, question)
    if not spans:
        return None
    holding: list[tuple[int, str, str]] = []  # (key spans held, sentence, the sentence where it stands)
    for text in sources:
        sentences, tags = source_sentences(text), entry_tags(text)
        for k, sentence in enumerate(sentences):
            lowered = without_rejected(sentence).lower()  # "3, rather than 2" does not hold 2
            n = sum(s.lower() in lowered or spelled_in(s, lowered) for s in spans)
            if n:
                # read as the model read it (rule U): under its entry's tag, after the sentence before it
                near = sentences[max(0, k - WINDOW) : k + WINDOW + 1]
                holding.append((n, sentence, "\n".join([tags[k], *near] if tags[k] else near)))
    if not holding:
        return Grounding(0.0, tuple(spans), None)
    most = max(n for n, _, _ in holding)
    # of the sentences holding the most key spans, the one closest to the question: a common token ("None",
    # "2") stands in many sentences, and only one about the question grounds the answer
    candidates = list(dict.fromkeys((s, read) for n, s, read in holding if n == most))[:MAX_CANDIDATES]
    vecs = embed([question, *(read for _, read in candidates)])
    sims = vecs[1:] @ vecs[0]
    best = int(np.argmax(sims))
    return Grounding(float(sims[best]), tuple(spans), candidates[best][0])
