"""Rule X (docs/design-notes.md): a limit asked for must be said to be one.

Asked "What is the largest reserved-blocks percentage that tune2fs -m will accept?", the model answered "5%",
copied from "The default percentage is 5%". A manual rarely states a bound, so questions asking for one are
mostly unanswerable, and the answers the model gives them come from sentences that say nothing of a bound. Where
the sources do state one, the sentence says so ("The maximum length of the volume label is 16 bytes", "up to a
maximum of 2", "until it reaches 10 minutes").
"""

from __future__ import annotations

import re

from ragkit.coverage import NAMED_ASKED, Coverage


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
