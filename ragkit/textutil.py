"""Small text helpers shared by answer checking and generation stopping: sentences, content words."""

from __future__ import annotations

import functools
import re

# a stop ends a sentence unless it ends an initial ("Ernest J. Gaines") or a title or abbreviation ("Roy Morris
# Jr.", "Dr. Smith", "e.g. this"): a split there put a citation inside a name ("Ernest J [1]. Gaines")
_ABBREVIATIONS = ("Jr", "Sr", "Dr", "Mr", "Ms", "Mrs", "St", "vs", "e.g", "i.e")
_NOT_END = r"(?<!\b[A-Z]\.)" + "".join(rf"(?<!\b{re.escape(a)}\.)" for a in _ABBREVIATIONS)
_SENTENCE_END = re.compile(rf"(?<=[.!?]){_NOT_END}\s+|\n+")
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
NUMBER = re.compile(r"\d+(?:[.,:]\d+)*")
# what a text names only to rule it out: "it is `lockfileVersion: 3`, rather than `lockfileVersion: 2`" (npm's
# docs) gives 2 no role but the rejected one; the alternative runs to the next comma, stop or line end, or to a
# word that starts another phrase: in "use standard allocation instead of memory pools by setting the variable
# GLIBCXX_FORCE_NEW" (Valgrind's DRD manual) only "memory pools" is ruled out
_PHRASE = r"by|when|whenever|if|because|since|unless|while|which|where|so|via|using|through|after|before|until"
_REJECTED = re.compile(
    r"\b(?:rather\s+than|instead\s+of|as\s+opposed\s+to|in\s+place\s+of)\s+(?P<alt>[^,;!?\n]{1,80}?)"
    rf"(?=[,;!?\n]|\.(?:\s|$)|$|\s+(?:{_PHRASE})\b)",
    re.IGNORECASE,
)


def without_rejected(text: str) -> str:
    """`text` with each alternative it rules out ("rather than X", "instead of X") blanked: an answer's key
    fact found only there is not found."""
    return _REJECTED.sub(lambda m: m.group()[: m.start("alt") - m.start()], text)


_STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being below between
    both but by can could did do does doing down during each few for from further had has have having he her here
    hers herself him himself his how i if in into is it its itself just me more most my myself no nor not now of
    off on once only or other our ours ourselves out over own same she should so some such than that the their
    theirs them themselves then there these they this those through to too under until up very was we were what
    when where which while who whom why will with would you your yours yourself yourselves answer answers
    source sources question according also must may might shall""".split()
)
STOPWORDS = _STOPWORDS  # shared with keyword search


_ONES = """zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen
    seventeen eighteen nineteen""".split()
_TENS = "twenty thirty forty fifty sixty seventy eighty ninety".split()
NUMBER_WORDS = (*_ONES, *_TENS)  # the words that `spelled` builds numbers below 100 from


def spelled(number: str) -> str | None:
    """A whole number below 100 written in words ("14" -> "fourteen", "21" -> "twenty-one"); None for anything
    else. Sources spell small numbers out that answers write in figures."""
    if not number.isdigit() or int(number) >= 100:
        return None
    n = int(number)
    if n < 20:
        return _ONES[n]
    tens, ones = divmod(n, 10)
    return _TENS[tens - 2] + (f"-{_ONES[ones]}" if ones else "")


def spelled_in(number: str, text: str) -> bool:
    """True when the number (below 100) stands in `text` spelled out, as a whole word, any case ("14" in "at
    Fourteen")."""
    words = spelled(number)
    return words is not None and re.search(rf"\b{words}\b", text, re.IGNORECASE) is not None


def numbers_held(text: str, source: str) -> bool:
    """True when every number of `text` stands in `source`, as written or, below 100, spelled out ("14" held
    by "at fourteen"); 180 and 180.0 differ."""
    missing = set(NUMBER.findall(text)) - set(NUMBER.findall(source))
    return all(spelled_in(number, source) for number in missing)


def split_sentences(text: str) -> list[str]:
    """Sentences and lines of `text`, stripped, empty pieces dropped."""
    return [p.strip() for p in _SENTENCE_END.split(text) if p.strip()]


# a line break inside a sentence: hard-wrapped text (a licence, a manual) goes on in lower case on the next line
_WRAPPED = re.compile(r"(?<=[^\s.!?:;])[ \t]*\n[ \t]*(?=[a-z(])")


def unwrap_lines(text: str) -> str:
    """The text with hard-wrapped lines joined where a sentence goes on in lower case on the next line; list
    items, headings and paragraphs (a line that starts upper case, with a marker or after a stop) stay apart."""
    return _WRAPPED.sub(" ", text)


# a source's line break inside a sentence of prose: the line before ends in a word, comma, bracket, backtick or
# apostrophe, the next starts like a word, link, code or path; a table row (two spaces between words, a tab, a |),
# a list item and a heading stay lines of their own
_PROSE_END = re.compile(r"[\w,)`'\]]$")
_PROSE_START = re.compile(r"[\w\[`$(~'\"]")
_TABLE_ROW = re.compile(r"[^\s.!?] {2,}\S|\t|\|")  # "form.  Default": a sentence gap, not a column
_LIST_OR_HEADING = re.compile(r"(?:[-*+•]|\d+[.)]|#+)\s")


def join_wrapped_lines(text: str) -> str:
    """`text` with hard-wrapped prose lines joined by a space, so that a source sentence is checked whole
    ("The default weight value is / 50, and the maximum is 100." is one sentence); tables, lists and headings
    keep their lines. Unlike unwrap_lines (for answers), the next line may start upper case: "... the
    environment variable / GLIBCXX_FORCE_NEW."."""
    out: list[str] = []
    for line in text.split("\n"):
        prev = out[-1].rstrip() if out else ""
        now = line.strip()
        if (
            prev.strip()
            and now
            and _PROSE_END.search(prev)
            and _PROSE_START.match(now)
            and not _TABLE_ROW.search(prev.strip())
            and not _TABLE_ROW.search(now)
            and not _LIST_OR_HEADING.match(now)
        ):
            out[-1] = f"{prev} {now}"
        else:
            out.append(line)
    return "\n".join(out)


@functools.lru_cache(maxsize=256)
def source_sentences(text: str) -> tuple[str, ...]:
    """The sentences of a source the checks after generation score (ragkit.grounding, ragkit.coverage):
    context_sentences of the text with its hard-wrapped prose lines joined. Cached: both checks split the same
    retrieved chunks for every answer."""
    return tuple(context_sentences(join_wrapped_lines(text)))


# an entry's tag: a short line of its own above the entry's text ("--hole-detection=METHOD", "'bell-style'",
# "Files: *"), ending in no sentence stop; a table's row ("Constant  Property  Value") is none (rule P')
_TAG_WORDS, _TAG_CHARS = 6, 60
_TAG_END = re.compile(r"[.!?;,]$")


# an option's tag listing its spellings or arguments as alternatives: "-v | -version", "-t dsa | ecdsa | rsa",
# "-R hostname | [hostname]:port" (mdoc's and Vim's pages); the bars are not a table's columns
_ALTERNATIVES = re.compile(r"^--?[A-Za-z0-9][^|\s]*(?:\s+[^|\s]+)*(?:\s+\|\s+[^|\s]+(?:\s+[^|\s]+)*)+$")
_BAR = re.compile(r"\s+\|\s+")


def _is_tag(line: str) -> bool:
    text, words = line.strip(), _TAG_WORDS
    if _ALTERNATIVES.match(text):
        text, words = _BAR.sub(" ", text), 2 * _TAG_WORDS  # one list of spellings, each a word or two
    short = len(text) <= _TAG_CHARS and len(text.split()) <= words
    return short and bool(_WORD.search(text)) and not _TAG_END.search(text) and not _TABLE_ROW.search(text)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def entry_ranges(text: str) -> list[tuple[int, int, str]]:
    """(start, end, tag) character ranges of the entries in `text`: a paragraph whose first line is a tag with
    more lines under it (a manual page's option over its text), or, inside a paragraph, a tag line followed by a
    more-indented line (an Info table: "'C-b'" over "     Move back one character."), whose entry ends at the
    next line indented no deeper than the tag, or at the next tag."""
    out: list[tuple[int, int, str]] = []
    lines = text.split("\n")
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line) + 1)
    open_at, tag, depth = -1, "", -1
    for i, line in enumerate(lines):
        first = i == 0 or not lines[i - 1].strip()
        below = lines[i + 1] if i + 1 < len(lines) else ""
        deeper = bool(below.strip()) and _indent(below) > _indent(line)
        begins = bool(line.strip()) and bool(below.strip()) and _is_tag(line) and (first or deeper)
        ends = not line.strip() or (depth >= 0 and _indent(line) <= depth)
        if open_at >= 0 and (begins or ends):
            out.append((open_at, starts[i], tag))
            open_at = -1
        if begins:
            open_at, tag, depth = starts[i], line.strip(), _indent(line) if deeper else -1
    if open_at >= 0:
        out.append((open_at, len(text), tag))
    return out


@functools.lru_cache(maxsize=256)
def entry_tags(text: str) -> tuple[str, ...]:
    """The entry tag above each of source_sentences(text), "" for a sentence in no entry (rule P'). The
    sentences are found in `text` in order by their first words (joining wrapped lines only changed spaces)."""
    entries = entry_ranges(text)
    tags: list[str] = []
    cursor = 0
    for sentence in source_sentences(text):
        words = sentence.split()[:4]
        found = re.compile(r"\s+".join(map(re.escape, words))).search(text, cursor) if words else None
        if found is None:
            tags.append("")
            continue
        cursor = found.start() + 1
        tags.append(next((tag for a, b, tag in entries if a <= found.start() < b), ""))
    return tuple(tags)


# glued sentences ("...19th century.First for Women is...") are common in scraped text such as HaluEval's
_GLUED = re.compile(r"(?<=[a-z0-9)][.!?])(?=[A-Z])")


def context_sentences(context: str) -> list[str]:
    """The context's sentences, glued ones split apart."""
    return [s for piece in split_sentences(context) for s in _GLUED.split(piece) if s.strip()]


def _stem(word: str) -> str:
    # crude but predictable: "keys"/"key", "rotated"/"rotation" meet on their first five letters
    if len(word) > 3 and word.endswith("s"):
        word = word[:-1]
    return word[:5]


# a possessive is no word: "find's" is "find", not "find" and "s" (rule P); an option "-s" stays
_POSSESSIVE = re.compile(r"(?<=[^\W_])['’]s\b")


def content_words(text: str) -> set[str]:
    """Lower-cased, crudely stemmed content words (numbers included), possessives dropped."""
    words = (m.group().lower() for m in _WORD.finditer(_POSSESSIVE.sub("", text)))
    return {_stem(w) for w in words if w not in _STOPWORDS}


def template(text: str) -> set[str]:
    """Content words without numbers: sentences that differ only in figures share a template."""
    return {w for w in content_words(text) if not w[:1].isdigit()}


def repeats(sentence: str, earlier: list[str]) -> bool:
    """True when `sentence` restates an earlier one (templates overlap by 80% or more, Jaccard)."""
    t = template(sentence)
    if not t:
        return False
    return any(len(t & (e := template(s))) / max(1, len(t | e)) >= 0.8 for s in earlier)
