"""Manual pages (`/usr/share/man/man1/tar.1.gz`): roff source with the man(7) macros, read as `man` shows it.

A line that starts with "." or "'" is a request: ".SH"/".SS" open a section, ".PP"/".TP"/".IP" a paragraph (a
".TP" paragraph's first line is its tag: an option), ".B"/".BR"/".IR" print their arguments in a font, and the
rest (".ll +8", ".nf", ".de ... ..", ".if ...") only lay text out. Inline escapes are fonts ("\\fB"), sizes and
special characters ("\\-", "\\(em"). A page written with BSD's mdoc macros (".Dd", ".Sh") is another language,
read by connectors/mdoc.py; given one, this reader reports it rather than read it as garbage.
"""

from __future__ import annotations

import re
import unicodedata

from ragkit.connectors.base import RawElement
from ragkit.errors import ParseError

MAN_SECTION = re.compile(r"^\.[1-9][a-z]{0,4}$")  # ".1", ".8", ".3pm", ".1ssl": a manual page
# a request's arguments follow a space, or directly a brace: pod2man's troff branch ".el\{\"
_REQUEST = re.compile(r"^[.'][ \t]*([A-Za-z]{1,3}|\\\")(?:(?:[ \t]+|(?=\\\{))(.*))?$")
_HEADINGS = {"SH", "SS"}
_BREAKS = {"PP", "LP", "P", "sp", "HP", "RS", "RE", "EX", "EE", "nf", "fi", "ne", "in", "TH", "UE", "ME"}
_ITEMS = {"TP", "IP", "TQ"}
_FONTS = {"B", "I", "SM", "SB"}  # arguments joined by spaces
_ALTERNATING = {"BR", "RB", "BI", "IB", "IR", "RI"}  # arguments joined without spaces, fonts alternating
_LINKS = {"UR", "MT"}  # a URL or an address, printed with its escapes read
# groff's www.tmac links, ".URL url text after" and ".MTO address text after" (Asciidoctor's pages define them),
# printed as `man` shows them: "text <url>after"
_WWW_LINKS = {"URL", "MTO"}
# requests whose lines up to ".." are no text: macro definitions and appends (rst2man's preamble, on Sphinx's and
# docutils' pages, defines its macros with groff's ".de1"; they were read as a paragraph) and ".ig"
_DEFINE = re.compile(r"^[.'][ \t]*(de|de1|dei|am|am1|ami|ig)(?:[ \t]+(\S+))?(?:[ \t]+(\S+))?")
# ".ie n .IP "tag" 4": a request for the terminal on the conditional's own line is that request, as `man` prints it
# (pod2man writes an item named in code so, then ".el .IP" for the typesetter, which stays unread)
_TERMINAL_REQUEST = re.compile(r"^[.'][ \t]*ie[ \t]+n[ \t]+(?=[.'])")
_COMMENT = re.compile(r'\\".*$')  # text \" a comment to the end of the line
_MDOC = re.compile(r"^\.(?:Dd|Sh)\b", re.M)
# a backslash ending a line (an odd number of them: an escaped "\\" prints one) joins it to the next, as in roff:
# pod2man's ".if \n(.H>23 .if \n(.V>19 \" continues on the next line with its block, "\{\". A block opened at a
# line's end ("\{\") and a request on the next line stay lines of their own: the loop below reads a block's lines
# one by one (DocBook's bullets: ".ie n \{\", then "\(bu" on the next line)
_ESCAPED_NEWLINE = re.compile(r"(?<!\\)(?<!\\\{)((?:\\\\)*)\\\n(?![.'])")
_SPECIAL = {
    "em": "—", "en": "–", "aq": "'", "dq": '"', "lq": "“", "rq": "”", "oq": "‘", "cq": "’", "bu": "•",
    "co": "©", "rg": "®", "tm": "™", "mi": "-", "hy": "-", "ti": "~", "ha": "^", "dg": "†", "de": "°",
    "mu": "×", "<=": "≤", ">=": "≥", "->": "→", "<-": "←", "Fo": "«", "Fc": "»", "rs": "\\", "ga": "`",
    "ci": "○", "sq": "□", "pc": "·", "bv": "|", "sl": "/", "lB": "[", "rB": "]", "lC": "{", "rC": "}",
    "at": "@",
}  # fmt: skip
# a one-character escape prints its character ("\." a full stop, ronn's pages write every one so) unless it is
# one of these: zero-width marks, motions, hyphenation and break points and line continuation print nothing ("\t"
# is a tab; "\:" a break point inside a long word: ps's "pid,\:user,\:args", its author's address)
_SILENT = set("&)/,|^%cdupraz{}!:")
_ONE = {"e": "\\", "~": " ", " ": " ", "0": " ", "t": "\t"}
_BULLETS = {"", "•", "○", "·", "-", "*", "o", "+", "–", "—", "□"}  # ".IP \(bu 4": an item with no tag
_PARAGRAPHS = {"PP", "LP", "P", "sp"}  # ".sp": Asciidoctor opens its definition list's entries so
# a DocBook term ("--cleanup=<mode>", "-D directory"): short, with no sentence stop or colon at its end
_TERM_CHARS, _TERM_WORDS = 60, 6
_TERM_END = re.compile(r"[.!?;,:]$")
# strings ("\*N", "\*(Aq", "\*[name]"), defined by ".ds" (mawk's page: ".ds n mawk", then "\fB\*n\fP" for every
# "mawk"); the ones pages use without defining them in a way read here: pod2man's apostrophe "\*(Aq" (defined
# under ".ie \n(.g"), man(7)'s quotes, registered and trade marks
_STRING = re.compile(r"\\\\|\\\*(?:\[([^\]]*)\]|\((..)|(.))")  # "\\*" is a backslash and a star
_STRINGS = {"Aq": "'", "AQ": "'", "lq": "“", "rq": "”", "R": "®", "Tm": "™", "S": ""}
_TBL_FORMAT = re.compile(r"^[lcrnasLCRNAS^_=|\s.tTbBiIfFwWeEpPvVxXzZ0-9()-]+$")  # "lB lB.": a table's layout
# fonts, registers, colours, sizes, strings, motions and marks with a quoted argument (\h'-04': DocBook's list
# numbers), then special characters by two-letter or bracketed name, then one-character escapes
_ESCAPE = re.compile(
    r"\\(?:[fnmMgYVF](?:\[[^\]]*\]|\(..|.)|s[-+]?\d+|\*(?:\[[^\]]*\]|\(..|.)|[hvwlLDXoZbxkn]'[^']*'|\((..)|\[([^\]]+)\]|(.))"
)


def man_elements(text: str, name: str = "page") -> list[RawElement]:
    """The sections (Title), paragraphs (NarrativeText) and option entries (ListItem, tag first) of a man(7)
    page. Raises ParseError for an mdoc page."""
    if _MDOC.search(text):
        raise ParseError(f"{name}: a BSD mdoc manual page; ragkit reads man(7) pages (convert it: mandoc -T man)")
    out: list[RawElement] = []
    lines: list[str] = []
    kind = "NarrativeText"
    heading_next = nofill = nofill_outside = False
    until = ""  # inside a macro definition or ignored text: the line that ends it

    tagged = False  # the paragraph's first line is an item's tag (".TP": an option), on a line of its own

    continues = False  # the paragraph goes on the item above it
    plain = False  # the paragraph was opened by ".PP": its lines may be a DocBook entry's terms
    termed: list[str] = []  # the lines a DocBook entry's terms were made of, until text comes under them
    carried: list[str] = []  # tags stacked over one entry (".IP -t / .PD 0 / .IP --tries=number")

    def flush(next_kind: str = "NarrativeText", tag: bool = False) -> None:
        nonlocal lines, kind, tagged, carried, continues, termed
        kept = [ln.strip() for ln in lines if ln.strip()]
        head, body = (kept[:1], kept[1:]) if tagged else ([], kept)
        if termed and not body:  # no text came under the "terms" (bash: "An OR list has the form", .RS, .PP)
            head, body, tagged, kind = [], [ln.strip() for ln in termed if ln.strip()], False, "NarrativeText"
        termed = []
        if tagged and head and not body and next_kind == "ListItem" and tag:
            carried, lines, tagged = [*carried, *head], [], tag
            return
        # tags stacked with no entry under them (ronn's one-line bullets) are text, not lost
        head, carried = ([", ".join([*carried, *head])] if carried else head), []
        # filled text is one paragraph however its source lines fall; ".nf" keeps an example's lines
        para = "\n".join([*head, ("\n" if nofill else " ").join(body)]).strip()
        if para and continues:
            out[-1] = (f"{out[-1][0]}\n{para}", out[-1][1], None)
        elif para:
            out.append((para, kind, None))
        lines, kind, tagged, continues = [], next_kind, tag, False

    troff_only = 0  # depth inside a "\{ ... \}" block that only troff (typesetting) prints
    table, cell, row = "", "\t", ""  # inside ".TS ... .TE": "layout" before the data rows, then "rows"
    strings = dict(_STRINGS)
    for raw in _ESCAPED_NEWLINE.sub(r"\1", text.replace("\r\n", "\n")).split("\n"):
        raw = _TERMINAL_REQUEST.sub("", raw)
        if until or (until := block_end(raw)):
            until = "" if ends_block(raw, until) else until
            continue
        if troff_only:
            troff_only += raw.count("\\{") - raw.count("\\}")
            continue
        if raw.startswith("\\.") and raw[2:3].isalpha():
            raw = raw[1:]  # groff reads "\.B -perm" at a line's start as the request ".B" (find's page)
        if "\\*" in raw:
            # a request's arguments are read with their strings; a text line stays text even when its first
            # string is "'" (pod2man's "\*(Aqperf kvm ...\*(Aq"), as in troff, which reads strings after requests
            control = raw.startswith((".", "'"))
            raw = raw[:1] + _strings(raw[1:], strings) if control else "\\&" + _strings(raw, strings)
        if table and raw.strip() == ".T&":  # the layout changes for the rows below
            table = "layout"
            continue
        if table == "layout" and not raw.startswith("."):
            if raw.rstrip().endswith(";"):  # "allbox tab(:);": the table's options
                found = re.search(r"tab\s*\((.)\)", raw)
                cell = found.group(1) if found else cell
                continue
            if _TBL_FORMAT.match(raw.strip()):  # "lB lB lB", "^ l l", ... "l l.": the layout, one line a row
                table = "layout" if not raw.rstrip().endswith(".") else "rows"
                continue
            table = "rows"  # ronn writes no layout: its first line is a row
        if table == "rows" and not raw.startswith("."):
            row = f"{row}\n{raw}" if row else raw
            if row.count("T{") > row.count("T}"):  # "T{ ... T}": a cell's text over lines
                continue
            cells = [re.sub(r"^T\{\s*|\s*T\}$", "", c.strip()).strip() for c in row.split(cell)]
            lines.append(" | ".join(_inline(" ".join(c.split())) for c in cells if c))
            row = ""
            continue
        m = _REQUEST.match(raw)
        if m is None:
            if raw.startswith((".", "'")):
                continue  # a request with a longer name or odd spacing: layout
            if heading_next:
                flush()
                out.append((_inline(raw).strip(), "Title", None))
                heading_next = False
            else:
                lines.append(_inline(raw))
            continue
        name, args = m.group(1), _args(m.group(2) or "")
        if name == '\\"':
            continue
        breaks = name in _BREAKS or name in _ITEMS or name in _HEADINGS
        was_plain, plain = plain, (name in _PARAGRAPHS if breaks else plain)
        if name in ("ds", "as") and args:
            # ".ds N Mawk": the rest of the line after the name (a leading '"' keeps leading spaces), read at use
            value = re.sub(r"^\s*\S+\s?", "", m.group(2) or "", count=1)
            value = value[1:] if value.startswith('"') else value
            strings[args[0]] = (strings.get(args[0], "") if name == "as" else "") + value
        elif name in ("ie", "if", "el"):
            # ".ie n \{ ... \}" prints in a terminal, as `man` does; ".el \{" and ".if t \{" only when typeset
            condition = (m.group(2) or "").split(maxsplit=1)[:1]
            opens = "\\{" in (m.group(2) or "")
            if opens and (name == "el" or condition != ["n"]):
                troff_only = (m.group(2) or "").count("\\{") - (m.group(2) or "").count("\\}")
        elif name in _HEADINGS:
            flush()
            title = " ".join(_inline(a) for a in args).strip()
            if title:
                out.append((title, "Title", None))
            else:
                heading_next = True
        elif name in _ITEMS:
            mark = _inline(args[0]).strip() if name == "IP" and args else ""
            if name == "IP" and not mark:  # ".IP" alone: the item above goes on ("Note: ..." under an option)
                flush("ListItem")
                continues = bool(out) and out[-1][1] == "ListItem"
                continue
            bullet = name == "IP" and mark in _BULLETS
            flush("ListItem", tag=not bullet)
            if name == "IP" and not bullet:
                lines.append(_inline(args[0]))  # ".IP tag indent"
        elif name in ("TS", "TE"):
            flush()
            table, cell = ("layout" if name == "TS" else ""), "\t"
            nofill_outside, nofill = (nofill, True) if name == "TS" else (nofill_outside, nofill_outside)
        elif name == "RS" and was_plain and not (tagged or continues or nofill) and (terms := _terms(lines)):
            # DocBook's definition list, ".PP / term / .br / term / .RS 4 / text / .RE", is ".TP" spelled
            # otherwise: the terms head an entry over the text that follows, as a ".TP" tag does
            lines, tagged, kind, termed = [terms], True, "ListItem", lines
        elif name in _BREAKS:
            flush()
            nofill = name in ("nf", "EX") or (nofill and name not in ("fi", "EE"))
        elif name in _FONTS:
            lines.append(" ".join(_inline(a) for a in args))
        elif name in _ALTERNATING:
            lines.append("".join(_inline(a) for a in args))
        elif name in _LINKS and args:
            lines.append(_inline(args[0]))
        elif name in _WWW_LINKS and args:
            url, text, after = (_inline(a).strip() for a in [*args, "", ""][:3])
            lines.append(f"{text} <{url}>{after}" if text else f"{url}{after}")
        elif name == "br":
            lines.append("")
    flush()
    return out


def block_end(raw: str) -> str:
    """The line that ends the block `raw` opens when it opens a macro's definition or text roff ignores (".." or
    the end macro it names: ".de NAME END", ".ig END"), "" when it opens none."""
    if not raw.startswith((".", "'")):
        return ""  # most lines are text: no regex for them (this runs on every line of every page)
    found = _DEFINE.match(_COMMENT.sub("", raw))  # ".ig \\" -*- nroff -*-": a comment names no end macro
    if found is None:
        return ""
    end = found.group(2) if found.group(1) == "ig" else found.group(3)
    return f".{end}" if end else ".."


def ends_block(raw: str, until: str) -> bool:
    """Whether `raw` is the line `until` that ends a definition or ignored text: "..", ".  ." (spaces may follow
    the control character, as in Asciidoctor's ".  am URL" block), ".. \\" end"."""
    line = re.sub(r"^\.[ \t]*", ".", raw.strip())
    return line == until or line.startswith((until + " ", until + "\t"))


def _terms(lines: list[str]) -> str:
    """A DocBook entry's terms, joined with ", " ("-A authmethod, --auth=authmethod"), when every line group of
    the paragraph (groups are split by ".br") is a term; "" when one is not, or there is none."""
    groups = " ".join(line.strip() if line.strip() else "\n" for line in lines).split("\n")
    terms = [" ".join(g.split()) for g in groups if g.strip()]
    if not terms or any(
        len(t) > _TERM_CHARS or len(t.split()) > _TERM_WORDS or _TERM_END.search(t) or not re.search(r"\w", t)
        for t in terms
    ):
        return ""
    return ", ".join(terms)


def _strings(line: str, strings: dict[str, str]) -> str:
    """The line with its string escapes replaced by their values (an undefined string is empty); a value may
    itself name strings, read to a depth of three."""
    for _ in range(3):
        read = _STRING.sub(
            lambda m: m.group() if m.group() == "\\\\" else strings.get(m.group(1) or m.group(2) or m.group(3), ""),
            line,
        )
        if read == line:
            break
        line = read
    return line


def _args(text: str) -> list[str]:
    """A request's arguments: words ("\\ " is a space inside one), or "quoted strings" with spaces ("" is a quote
    inside one)."""
    return [q.replace('""', '"') if q else w for q, w in re.findall(r'"((?:[^"]|"")*)"|((?:\\\s|\S)+)', text)]


# groff's accented letters ("\[:u]" ü, "\('e" é, "\[,c]" ç) and Unicode glyphs ("\[u00FC]", "\[u0065_0301]"):
# patch's page credits "Andreas Gr\[:u]nbacher", which read "Grnbacher"
_ACCENTS = {":": "\u0308", "'": "\u0301", "`": "\u0300", "^": "\u0302", "~": "\u0303", ",": "\u0327", "o": "\u030a"}
_LETTERS = {
    "ss": "ß", "/o": "ø", "/O": "Ø", "ae": "æ", "AE": "Æ", "oe": "œ", "OE": "Œ", "-D": "Ð", "Sd": "ð", "TP": "Þ",
    "Tp": "þ",
}  # fmt: skip
_UNICODE = re.compile(r"u([0-9A-Fa-f]{4,6}(?:_[0-9A-Fa-f]{4,6})*)")


def _glyph(name: str) -> str:
    """The character groff prints for a glyph name the table above lacks: an accented letter or "uXXXX"; ""
    for a name it does not know (a box-drawing piece, a typesetter's symbol)."""
    if name in _LETTERS:
        return _LETTERS[name]
    if len(name) == 2 and name[0] in _ACCENTS and name[1].isalpha():
        composed = unicodedata.normalize("NFC", name[1] + _ACCENTS[name[0]])
        return composed if len(composed) == 1 else ""
    code = _UNICODE.fullmatch(name)
    if code:
        points = [int(h, 16) for h in code.group(1).split("_")]
        if all(p <= 0x10FFFF and not 0xD800 <= p <= 0xDFFF for p in points):
            return unicodedata.normalize("NFC", "".join(map(chr, points)))
    return ""


def _inline(text: str) -> str:
    """Text with its escapes read: fonts and sizes dropped, "\\-" as "-", "\\(em" as "—", "\\&" as nothing."""

    def escape(m: re.Match[str]) -> str:
        two, named, one = m.group(1), m.group(2), m.group(3)
        if two or named:
            return _SPECIAL.get(two or named) or _glyph(two or named)
        if one is None:
            return ""  # a font, a size or a string
        return "" if one in _SILENT else _ONE.get(one, one)

    return _ESCAPE.sub(escape, _COMMENT.sub("", text))
