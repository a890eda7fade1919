"""Manual pages saved as text (`man strings > strings.txt`): read by their layout, into the elements the roff
reader gives the page's source (reader RM, docs/design-notes.md).

Read as plain text, such a file lost its entries: `strings` stacks three spellings over one text ("-min-len",
"-n min-len", "--bytes=min-len"), which the entry finder read as one tag and two lines of text, so the answer
checks found no entry for `-n`. `man` lays a page out in a fixed way, and that layout is read here:

- the first line is a header ("STRINGS(1)   GNU Development Tools   STRINGS(1)") and the last a footer ending in
  the same "STRINGS(1)": both are left out, and they are how such a file is known;
- a line at column 0 is a section (".SH"), a line indented less than the body a subsection (".SS");
- tag lines stacked at one indent over deeper text are one entry, "-n min-len, --bytes=min-len" over its text;
  a tag short enough that its text starts on its own line ("-o  Like -t o.") is one when that text starts at the
  column its continuation lines use (or, for a one-line entry, where the page's other entries put their text);
- wrapped lines are one paragraph: groff's hyphenation (U+2010 at a line's end) is undone, a line ending in "-"
  joins the next without a space ("--print-file-" "name"), runs of spaces from justification become one; a
  block whose lines are not wrapped (an example, a table) keeps its lines.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

from ragkit.connectors.base import RawElement

# a header's or footer's last field: "SED(1)" of "SED(1)   User Commands   SED(1)"
_HEADER_NAME = re.compile(r"(?<!\S)(\S+)\([0-9]\w*\)$")
_SAME_LINE = re.compile(r"^(\S+(?: \S+)*)( {2,})(\S.*)$")  # "-o  Like -t o.": a tag, a gap, its text
# a sentence's end; a tag may end in "..." ("-u, --euid euid,...") and an option's in "," ("-CAform DER|PEM|P12,")
_TAG_END = re.compile(r"(?:[!?;:]|(?<!\.)\.|^[^-].*,)$")
_BULLETS = ("•", "·", "○", "o", "*", "-", "+", "–", "—")
_TAG_CHARS, _TAG_WORDS = 60, 6
_SOFT_HYPHEN = "\u2010"  # groff's hyphen in a UTF-8 locale: a word broken at the margin
_OVERSTRIKE = re.compile(r"[^\n\x08]\x08")  # "N\bN" bold, "_\bN" underlined: a character struck over


def without_overstrikes(text: str) -> str:
    r"""Text as a terminal shows it: each character struck over by the next ("N\bN", "_\bN") is the next alone,
    as `col -b` leaves it (`man ls > ls.txt` keeps them where MAN_KEEP_FORMATTING is set, or on systems whose man
    does not strip them)."""
    return _OVERSTRIKE.sub("", text).replace("\x08", "")


def is_rendered_man(text: str) -> bool:
    """Whether `text` is a manual page as `man` prints it: a header line naming the page ("SED(1) ... SED(1)")
    and a last line ending in the same name."""
    lines = [ln.strip() for ln in text[:400].splitlines() if ln.strip()]
    if not lines:
        return False
    tail = text.rstrip().rsplit("\n", 1)[-1].strip()
    if tail == lines[0]:
        return False
    # the footer's last field names the page as the header does at both its ends (a long name overlaps the
    # header's middle and is cut short at its start: "GCLOUD_COMPUTE_BACKEND-BUCKEGeneral...BUCKETS_DELETE(1)")
    name = _HEADER_NAME.search(tail)
    if name and lines[0].endswith(name.group()) and lines[0].startswith(name.group(1)[:8]):
        return True
    # a BSD (mdoc) page's footer names its system at both ends instead: "BSD   December 16, 2022   BSD"
    head, fields = _HEADER_NAME.search(lines[0]), re.split(r"\s{3,}", tail)
    return bool(head) and lines[0].startswith(head.group()) and len(fields) == 3 and fields[0] == fields[2]


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _tag_like(text: str) -> bool:
    """A line that can be an entry's tag: short, no sentence stop at its end, no columns (a table's row)."""
    words = len(text.replace(" | ", " ").split())  # "-p | -ps | -plain": spellings between bars
    short = len(text) <= _TAG_CHARS and words <= _TAG_WORDS
    return short and not _TAG_END.search(text) and "   " not in text


def _short_tag(text: str) -> bool:
    """A tag that can have its text beside it on its line: an option ("-o", "+F", "@file") or a word of at most
    four characters (ar's "m", an exit status "0")."""
    return _tag_like(text) and (text[:1] in "-+@" or len(text) <= 4)


def _join(lines: Sequence[str], width: int) -> str:
    """Lines of one block as text: wrapped lines joined into one paragraph, others kept as lines."""
    stripped = [ln.strip() for ln in lines]
    full = all(
        len(lines[k].rstrip()) + 1 + len(stripped[k + 1].split()[0]) > width or lines[k].rstrip().endswith("-")
        for k in range(len(lines) - 1)
    )
    if not full:
        depth = min(_indent(ln) for ln in lines)
        return "\n".join(ln[depth:].rstrip() for ln in lines)
    text = stripped[0]
    for nxt in stripped[1:]:
        if text.endswith(_SOFT_HYPHEN) and nxt[:1].isalpha():
            text = text[:-1] + nxt  # "in‐" "put": groff broke the word
        elif text.endswith("-") and text[-2:-1].isalnum():
            text += nxt  # a hyphen of the text itself ("command-" "line", "--print-file-" "name")
        else:
            text += " " + nxt
    return re.sub(r"(?<=\S) {2,}(?=\S)", " ", text)


class _Reader:
    """One page's lines -> elements; `width` is the page's right margin, `column` where its entries' text
    starts (from the tag's indent), learned from the entries whose text is under their tag."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        body = [ln for ln in lines if ln.strip()]
        # the right margin: most lines of a paragraph reach it; an example's long line must not set it
        sizes = sorted(len(ln) for ln in body)
        self.width = sizes[int(0.9 * (len(sizes) - 1))] if sizes else 78
        # the body's indent (7), under which a section's text starts: the least indent past a subsection's (3);
        # not the most common one, which is the entries' text on a page of many entries (ar's 11)
        self.body = min((_indent(ln) for ln in body if _indent(ln) >= 4), default=7)
        self.column = self._entry_column()
        self.out: list[RawElement] = []
        self.section = ""
        self.pending: list[str] = []

    def _entry_column(self) -> int | None:
        """The most common indent step from a tag line to the text under it (4 for binutils' `.TP 4`); on a page
        with no such entry ("m   Use this operation ...", "-r     Recurse into subdirectories."), the step to
        the text beside its short tags, when two or more agree."""
        steps: Counter[int] = Counter()
        beside: Counter[int] = Counter()
        for a, b in zip(self.lines, [*self.lines[1:], ""], strict=True):
            # from a tag in the body (a section's heading over its text says nothing of entries)
            if a.strip() and b.strip() and self.body <= _indent(a) < _indent(b) and _tag_like(a.strip()):
                steps[_indent(b) - _indent(a)] += 1
            elif (m := _SAME_LINE.match(a.strip())) and _indent(a) >= self.body and _short_tag(m.group(1)):
                beside[len(m.group(1)) + len(m.group(2))] += 1
        if steps:
            return steps.most_common(1)[0][0]
        step, count = beside.most_common(1)[0] if beside else (0, 0)
        return step if count >= 2 else None

    def read(self) -> list[RawElement]:
        block: list[str] = []
        for line in self.lines:
            if line.strip() and _indent(line) < 4:  # ".SH" at 0, ".SS" at 3; the body's text at 4 or deeper
                self._ended(block)
                self._flush()
                block = []
                self.section = re.sub(r"\s+", " ", line.strip())
                self.out.append((self.section, "Title", None))
            elif line.strip():
                block.append(line)
            else:
                self._ended(block)
                block = []
        self._ended(block)
        self._flush()
        return self.out

    def _ended(self, block: list[str]) -> None:
        """A block ended at a blank line. A tag line alone in its block waits for the next: a blank line may stand
        between a tag and its deeper text (Google Cloud SDK's pages: "--global", a blank line, its text)."""
        if not block:
            return
        if self.pending and _indent(block[0]) > _indent(self.pending[0]):
            block, self.pending = [*self.pending, *block], []
        self._flush()
        # one line: a ragged paragraph of short lines over an indented path is no stack of tags (hexdump's COLORS)
        tags = len(block) == 1 and _tag_like(block[0].strip())
        if tags and self.section.upper() != "SYNOPSIS":
            self.pending = block
        else:
            self._block(block)

    def _flush(self) -> None:
        if self.pending:
            self._block(self.pending)
            self.pending = []

    def _same_line(self, k: int, block: Sequence[str]) -> tuple[str, str] | None:
        """(tag, text) when block[k] is a tag with its text on its own line."""
        line = block[k]
        m = _SAME_LINE.match(line.strip())
        if m is None or not _tag_like(m.group(1)):
            return None
        at = _indent(line) + len(m.group(1)) + len(m.group(2))
        below = block[k + 1] if k + 1 < len(block) else ""
        if below and _indent(below) > _indent(line):
            return (m.group(1), m.group(3)) if _indent(below) == at else None
        fits = self.column and at == _indent(line) + self.column
        return (m.group(1), m.group(3)) if fits and _short_tag(m.group(1)) else None

    def _block(self, block: list[str]) -> None:
        """A run of lines between blank lines: entries (tags over deeper text) and paragraphs."""
        if self.section.upper() == "SYNOPSIS":  # a usage line over its wrapped options is no entry
            self._paragraph(block)
            return
        k = 0
        while k < len(block):
            base = _indent(block[k])
            tags: list[str] = []
            first = ""
            j = k
            while j < len(block) and _indent(block[j]) == base:
                same = self._same_line(j, block)
                if same is not None:
                    tags.append(same[0])
                    first, j = same[1], j + 1
                    break
                below = block[j + 1] if j + 1 < len(block) else ""
                if not _tag_like(block[j].strip()) or not below:
                    break
                tags.append(block[j].strip())
                j += 1
                if _indent(below) > base:
                    break
            end = j
            while end < len(block) and _indent(block[end]) > base:
                end += 1
            entry = bool(tags) and (bool(first) or end > j)
            if not entry:  # a paragraph: the lines at this indent, then whatever is deeper under it
                end = k + 1
                while end < len(block) and _indent(block[end]) == base:
                    end += 1
                self._paragraph(block[k:end])
                k = end
                continue
            body = [" " * (base + (self.column or 4)) + first] if first else []
            text = _join([*body, *block[j:end]], self.width) if body or end > j else ""
            bullet = len(tags) == 1 and tags[0] in _BULLETS
            self.out.append((text if bullet else ", ".join(tags) + ("\n" + text if text else ""), "ListItem", None))
            k = end

    def _paragraph(self, lines: Sequence[str]) -> None:
        if lines:
            self.out.append((_join(lines, self.width), "NarrativeText", None))


def rendered_man_elements(text: str) -> list[RawElement]:
    """The sections (Title), paragraphs (NarrativeText) and entries (ListItem, "tag, tag" over its text) of a
    manual page as `man` prints it (is_rendered_man), without its header and footer lines."""
    lines = [ln.rstrip() for ln in text.expandtabs().splitlines()]
    nonblank = [i for i, ln in enumerate(lines) if ln.strip()]
    if len(nonblank) >= 2:
        lines = lines[nonblank[0] + 1 : nonblank[-1]]
    return _Reader(lines).read()
