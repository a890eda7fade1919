"""A default or a limit asked for must be stated as one (the `no_default` and `no_limit` checks).

The default: asked "Which port does valgrind-listener listen on by default?", the model copied "12345" from "if you
want logging output sent to port 12345": a value from an example is not the default. The evidence of an answer
to a question asking for a default must say "default".

A limit (rule X, docs/design-notes.md): asked "What is the largest reserved-blocks percentage that tune2fs -m will
accept?", the model answered "5%", copied from "The default percentage is 5%". A manual rarely states a bound, so
questions asking for one are mostly unanswerable, and the answers the model gives them come from sentences that
say nothing of a bound. Where the sources do state one, the sentence says so ("The maximum length of the volume
label is 16 bytes", "up to a maximum of 2", "until it reaches 10 minutes").
"""

from __future__ import annotations

import re

from ragkit.coverage import NAMED_ASKED, Coverage

_DEFAULT = re.compile(r"\bdefault(?:s|ed)?\b", re.I)
# "default" as a word of its own: inside a name ("--default-timeout", "PIP_DEFAULT_TIMEOUT") it calls nothing
# the default ("set the HTTP timeout (`--default-timeout`) to 60 seconds" gives an example's value, pip's docs)
_DEFAULT_SAID = re.compile(r"(?<![\w-])default(?:s|ed)?(?![\w-])", re.I)
# rule DF: the default as what to depart from asks for none ("a different skeleton directory than the default")
_DEPARTED = re.compile(
    r"\b(?:than|instead\s+of|other\s+than|from|overrid(?:es?|ing)|chang(?:es?|ing)|replac(?:es?|ing))\s+"
    r"(?:(?:the|its|their)\s+)?$",
    re.I,
)


def default_asked(question: str) -> bool:
    """Whether the question asks for a default: some "default" in it is not what the question departs from
    ("... than the default", "overrides the default ...": rule DF)."""
    return any(_DEPARTED.search(question[: m.start()]) is None for m in _DEFAULT.finditer(question))


def unsaid_default(question: str, covered: Coverage | None) -> bool:
    """True when the question asks for a default ("default", "by default", "defaults to") and the answer's evidence
    (the sentence holding its key fact, the sentences beside it and its section title: Coverage.missing) never
    says "default": a value the sources give in an example ("sent to port 12345") is not the default."""
    if covered is None or not default_asked(question):
        return False
    if any(_DEFAULT.fullmatch(w) for w in covered.missing):  # "defaults to" leaves "defaults" missing
        return True
    return bool(covered.context) and _DEFAULT_SAID.search(covered.context) is None


def _words(alternatives: str) -> re.Pattern[str]:
    # each a word of its own: "--max-count" or "MaxStartups" asks for no bound and says none
    return re.compile(rf"(?<![\w-])(?:{alternatives})(?![\w-])", re.I)


_BOUND_ASKED = _words(
    r"largest|biggest|maximum|max|highest|longest|smallest|minimum|lowest|shortest|at most|at least|upper limit"
    r"|lower limit|how (?:large|big|high|long|small)\b[^?]*\bcan"
)
_BOUND_SAID = _words(
    r"largest|biggest|maxim\w*|max|most|highest|longest|smallest|minim\w*|min|lowest|shortest|least|limit\w*"
    r"|up to|exceed\w*|no more than|no less than|cap|capped|ceiling|bound\w*|range|between|beyond|greater|larger"
    r"|smaller|fewer|until|as (?:much|many|large|long|high) as"
)


def bound_asked(question: str) -> str | None:
    """The words of a question that ask for a bound ("largest", "at most"), or None; a question asking for a named
    thing ("Which option sets the maximum ...?") asks for the name, not the bound."""
    if NAMED_ASKED.search(question):
        return None
    asked = _BOUND_ASKED.search(question)
    return asked.group() if asked else None


def unsaid_bound(question: str, covered: Coverage | None) -> str | None:
    """Rule X: the question's bound words when it asks for a bound and the answer's evidence (the coverage check's
    context: section title, entry tag, the sentence holding the key fact and the ones beside it) says none; else
    None (also with no evidence to read)."""
    asked = bound_asked(question)
    if asked is None or covered is None or not covered.context:
        return None
    return None if _BOUND_SAID.search(covered.context) else asked
