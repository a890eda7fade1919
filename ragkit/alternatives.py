"""A comparison between named alternatives needs what the sources say of each (rule CO, docs/design-notes.md).

"Who directed more movies, Vincent Sherman or David Seltzer?" answered "David Seltzer" from sources that never
name Sherman passes every check of the answer's own words: the name it picks is in a source and the question's
words are covered. The pick is still a guess. Here the question's alternatives are looked up in the sources.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ragkit.coverage import CHOICE_TAIL
from ragkit.grounding import key_spans
from ragkit.roles import occurs

# a comparison: the answer needs what the sources say of every alternative (rule CO)
_COMPARES = re.compile(
    r"\b(?:more|less|fewer|most|least|first|earlier|later|older|younger|newer|longer|shorter|larger|bigger|"
    r"smaller|higher|lower|faster|slower|greater|further|farther|better|worse|best|worst|cheaper|safer)\b",
    re.I,
)


def unnamed_alternatives(question: str, sources: Sequence[str]) -> tuple[str, ...]:
    """For a comparison between named alternatives that closes the question ("Who directed more movies, A or
    B?"), the alternatives no source names (rule CO): picking one of two things the sources describe only one of
    is a guess, whichever the answer picks. An alternative is named where one source holds at least half of its
    names and numbers ("Texas" and "System" of "The University of Texas System" are not in "Wake Forest
    University is ..."); one without any is not judged. () for any other question, a choice of a value among
    others ("Is the default 10 or 20?") included: the sources need state only the one picked."""
    tail = CHOICE_TAIL.search(question)
    if tail is None or not _COMPARES.search(question):
        return ()
    options = [o.strip() for o in re.split(r"\bor\b", tail.group().strip(",? \t\n"), flags=re.I) if o.strip()]
    unnamed = []
    for option in options:
        names = [s for s in key_spans(option, "") if len(s) > 1]
        if names and not any(2 * sum(occurs(n, text) for n in names) >= len(names) for text in sources):
            unnamed.append(option)
    return tuple(unnamed)
