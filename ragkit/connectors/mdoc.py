"""Manual pages in BSD's mdoc macros (OpenSSH's `ssh_config.5`, `tmux.1`, `dash.1`), read as `man` shows them.

mdoc says what a word is rather than how it looks: ".Fl v" is the flag "-v", ".Op Fl p Ar port" the optional
"[-p port]", ".Xr ssh 1" the reference "ssh(1)". A macro line is read word by word; a word that names a callable
macro starts that macro, so one line mixes several. Lists (".Bl -tag" ... ".It Cm Host" ... ".El") are entries
whose ".It" line is the tag, as the man(7) reader's ".TP" entries are; inline escapes are the man reader's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ragkit.connectors.base import RawElement
from ragkit.connectors.roff import _ESCAPED_NEWLINE, _MDOC, _STRINGS, _args, _inline, _strings, block_end, ends_block

_TAGGED = {"-tag", "-hang", "-ohang", "-inset", "-diag"}  # lists whose ".It" line is the entry's tag
# a punctuation word given alone sticks to the word before it ("ssh(1) ,") or after it ("( text")
_CLOSE = {".", ",", ":", ";", ")", "]", "?", "!"}
_OPEN = {"(", "["}
_QUOTES = {
    "Dq": ("“", "”"), "Qq": ('"', '"'), "Sq": ("‘", "’"), "Ql": ("‘", "’"), "Pq": ("(", ")"), "Bq": ("[", "]"),
    "Brq": ("{", "}"), "Aq": ("⟨", "⟩"), "Op": ("[", "]"),
}  # fmt: skip
# the same enclosures spread over several lines: ".Oo" ... ".Oc"
_OPENERS = {"Do": "“", "Qo": '"', "So": "‘", "Po": "(", "Bo": "[", "Bro": "{", "Ao": "⟨", "Oo": "["}
_CLOSERS = {"Dc": "”", "Qc": '"', "Sc": "’", "Pc": ")", "Bc": "]", "Brc": "}", "Ac": "⟩", "Oc": "]"}
_SYSTEMS = {
    "Ox": "OpenBSD", "Nx": "NetBSD", "Fx": "FreeBSD", "Dx": "DragonFly", "Bsx": "BSD/OS", "Ux": "UNIX",
    "At": "AT&T UNIX",
}  # fmt: skip
_PLAIN = {
    "Ad", "An", "Ar", "Cd", "Cm", "Dv", "Em", "Er", "Ev", "Fa", "Fd", "Ft", "Ic", "Li", "Ms", "Mt", "No", "Pa",
    "Sx", "Sy", "Tn", "Va", "Vt", "Lb", "St", "%A", "%B", "%C", "%D", "%I", "%J", "%N", "%O", "%P", "%Q", "%R",
    "%T", "%U", "%V",
}  # fmt: skip
_CALLABLE = _PLAIN | set(_QUOTES) | set(_OPENERS) | set(_CLOSERS) | set(_SYSTEMS)
_CALLABLE |= {"Fl", "Xr", "Nm", "Ns", "Pf", "Ap", "Bx", "Fn", "Lk", "Sm", "Ta", "Xo", "Xc", "Eo", "Ec", "In"}
_BLOCKS = {"It", "El", "Sh", "Ss", "Bl", "Pp"}  # macros that cannot sit inside an ".It ... Xo" tag
_DEFAULTS = {"Fl": "-", "Nm": "", "Ar": "file ..."}  # "" : the page's name
# mdoc's own strings ("\*(Lq", "\*(Ba"), beside man(7)'s
_MDOC_STRINGS = {"Lq": "“", "Rq": "”", "Ba": "|", "Le": "≤", "Ge": "≥", "Lt": "<", "Gt": ">", "Ne": "≠",
                 "Pm": "±", "If": "∞", "Pi": "π", "Na": "NaN", "Am": "&", "q": '"'}  # fmt: skip


def is_mdoc(text: str) -> bool:
    """Whether a manual page's source is written in mdoc (".Dd" / ".Sh") rather than man(7)."""
    return bool(_MDOC.search(text))


@dataclass
class _List:
    """An open ".Bl" list: its type, its number of items so far, and which element its open item heads."""

    type: str
    count: int = 0
    element: int = -1  # index in the output of the open tagged item's entry (-1: none yet)


class _Words:
    """Words printed with mdoc's spacing: a space between words unless a macro or a delimiter glues them."""

    def __init__(self, spacing: bool = True) -> None:
        self.text, self.glue, self.spacing, self.space_once = "", False, spacing, False

    def add(self, word: str, glued: bool = False) -> None:
        if word == "":
            return
        # the first word after ".Sm off" keeps its space: "-L [bind_address:]port"
        joined = glued or self.glue or (not self.spacing and not self.space_once) or not self.text
        self.text = (self.text + word) if joined else f"{self.text} {word}"
        self.glue = self.space_once = False


def _render(tokens: list[str], name: str, words: _Words | None = None) -> str:
    """The text a macro line's words print: `tokens` are its arguments (a leading macro name included)."""
    out = words or _Words()
    macro, i, args_seen = "", 0, 0

    def close() -> None:
        # a macro given no arguments prints its default: "-" for a flag, the page's name, "file ..."
        if args_seen == 0 and macro in _DEFAULTS:
            out.add(_DEFAULTS[macro] or name)

    while i < len(tokens):
        token = tokens[i]
        i += 1
        if token in _CALLABLE:
            close()
            out.glue = out.glue or (macro == "Fl" and args_seen == 0 and token == "Fl")  # "Fl Fl apple": "--apple"
            macro, args_seen = token, 0
            if token in _QUOTES:
                # the enclosure holds the rest of the line but its closing punctuation: ".Pq Pa ~/.ssh/config ."
                end = len(tokens)
                while end > i and tokens[end - 1] in _CLOSE:
                    end -= 1
                left, right = _QUOTES[token]
                inner = _render(tokens[i:end], name, _Words(out.spacing))
                out.add(left + inner + right)
                i, macro = end, ""
            elif token in _OPENERS:
                out.add(_OPENERS[token])
                out.glue = True
            elif token in _CLOSERS:
                out.add(_CLOSERS[token], glued=True)
            elif token in ("Ns", "Ap"):
                if token == "Ap":
                    out.add("'", glued=True)
                out.glue = True
            elif token == "Pf" and i < len(tokens):
                out.add(_inline(tokens[i]))
                out.glue, i = True, i + 1
            elif token == "Sm":
                given = tokens[i] if i < len(tokens) and tokens[i] in ("on", "off") else ""
                spacing = given == "on" if given else not out.spacing
                out.space_once = out.space_once or (out.spacing and not spacing)
                out.spacing, i = spacing, i + (1 if given else 0)
            elif token == "Xr" and i < len(tokens):
                page, section = tokens[i], tokens[i + 1] if i + 1 < len(tokens) else ""
                has_section = section not in _CALLABLE and section not in _CLOSE and section != ""
                out.add(f"{_inline(page)}({_inline(section)})" if has_section else _inline(page))
                i += 2 if has_section else 1
                macro = ""
            elif token == "Fn" and i < len(tokens):
                rest = []
                j = i + 1
                while j < len(tokens) and tokens[j] not in _CALLABLE and tokens[j] not in _CLOSE:
                    rest.append(_inline(tokens[j]))
                    j += 1
                out.add(f"{_inline(tokens[i])}({', '.join(rest)})")
                i, macro = j, ""
            elif token == "Lk" and i < len(tokens):
                url, j, label = _inline(tokens[i]), i + 1, []
                while j < len(tokens) and tokens[j] not in _CLOSE:
                    label.append(_inline(tokens[j]))
                    j += 1
                out.add(f"{' '.join(label)}: {url}" if label else url)
                i, macro = j, ""
            elif token == "In" and i < len(tokens):
                out.add(f"#include <{_inline(tokens[i])}>")
                i, macro = i + 1, ""
            elif token in _SYSTEMS or token == "Bx":
                version = tokens[i] if i < len(tokens) and tokens[i] not in _CALLABLE | _CLOSE else ""
                i += 1 if version else 0
                system = f"{_inline(version)}BSD" if token == "Bx" and version else _SYSTEMS.get(token, "BSD")
                out.add(system if token == "Bx" or not version else f"{system} {_inline(version)}")
                macro = ""
            elif token == "Ta":
                out.add("\t", glued=True)
                out.glue = True
            continue
        if token in _CLOSE:
            out.add(token, glued=True)
            continue
        if token in _OPEN:
            out.add(token)
            out.glue = True
            continue
        if macro == "An" and token in ("-split", "-nosplit"):
            continue  # how authors' names break onto lines, not text
        word = _inline(token)
        if macro == "Fl":
            word = "-" + word
        args_seen += 1
        out.add(word)
    close()
    return out.text


def mdoc_elements(text: str, name: str = "page") -> list[RawElement]:
    """The sections (Title), paragraphs (NarrativeText) and list entries (ListItem, tag first) of an mdoc page;
    `name` is the page's file name, used until the page names itself (".Nm ssh")."""
    page = _page_name(text) or name.split(".")[0]
    reader = _Reader(page)
    strings = {**_STRINGS, **_MDOC_STRINGS}
    until = ""  # inside a macro definition or ignored text: the line that ends it
    for raw in _ESCAPED_NEWLINE.sub(r"\1", text.replace("\r\n", "\n")).split("\n"):
        if until or (until := block_end(raw)):
            until = "" if ends_block(raw, until) else until
            continue
        if "\\*" in raw:
            raw = _strings(raw, strings)
        if not raw.startswith((".", "'")):
            reader.text(raw)
            continue
        body = raw[1:].strip()
        if body.startswith('\\"') or not body:
            continue
        macro, _, rest = body.partition(" ")
        reader.macro(macro, rest)
    return reader.finish()


def _page_name(text: str) -> str:
    """The name the page gives itself in its first ".Nm" line ("ssh_config"), or ""."""
    found = re.search(r"^\.Nm[ \t]+(\S+)", text, re.M)
    return _inline(found.group(1)) if found else ""


class _Reader:
    """Builds the elements of an mdoc page one source line at a time."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.out: list[RawElement] = []
        self.lines: list[str] = []  # the paragraph being read
        self.glue = False  # the next line joins the last one without a space (".Pf (", "... Ns")
        self.tag: list[str] | None = None  # the open entry's tags, until its text starts
        self.mark = ""  # the open list item's mark ("3."), printed before its text
        self.lists: list[_List] = []
        self.nofill = False
        self.spacing = True  # ".Sm off": words join with no space between them
        self.space_once = False  # spacing was just turned off: the next line's first word keeps its space
        self.rows = False  # the paragraph is a column list's rows, one a line
        self.section = ""
        # an ".It ... Xo" tag's lines of words, until ".Xc" (an enclosure ends with its line: "[-t target] name")
        self.xo: list[list[str]] | None = None
        self.reference: list[str] | None = None  # ".Rs" ... ".Re": a bibliography entry's fields

    # lines
    def text(self, raw: str) -> None:
        """A text line: words printed as they are (escapes read)."""
        if self.xo is not None:
            self.xo.append(["No", *_args(raw)])
            return
        if self.nofill:
            self.lines.append(_inline(raw).rstrip())
        elif raw.strip():
            self._line(" ".join(_inline(raw).split()))

    def _line(self, line: str, glued: bool = False) -> None:
        # the first words after ".Sm off" keep their space: "must be [bind_address:]port", "[-L port:host:port]"
        unspaced = not self.spacing and not self.space_once
        if self.lines and (glued or self.glue or unspaced) and not self.nofill:
            self.lines[-1] += line
        else:
            self.lines.append(line)
        self.glue = self.space_once = False

    def macro(self, macro: str, rest: str) -> None:
        """A macro line: ".Sh NAME", ".It Cm Host", ".Op Fl v", ..."""
        if self.xo is not None:
            line = [macro, *_args(rest)]
            if "Xc" in line:
                self._close_xo(line[: line.index("Xc")])
                return
            if macro not in _BLOCKS:
                self.xo.append(line)
                return
            self._close_xo([])  # a tag left open by a page that never writes ".Xc": not the rest of the page
            self.flush()  # an entry of its own, not stacked over the next item's tag
        args = _args(rest)
        if macro in ("Sh", "Ss"):
            self.flush()
            self.lists, self.nofill = [], False
            self.section = _render(args, self.name)
            self.out.append((self.section, "Title", None))
        elif macro in ("Pp", "Lp", "sp"):
            self.flush()
        elif macro == "br" and self.lines:
            self._line("")
        elif macro == "Bl":
            self.flush()
            kind = next((a for a in args if a.startswith("-") and a not in ("-compact",)), "-item")
            self.lists.append(_List(kind))
        elif macro == "El":
            self.flush()
            self.lists = self.lists[:-1]
        elif macro == "It":
            self._item(args, rest)
        elif macro == "Bd":
            self.flush()
            self.nofill = any(a in ("-literal", "-unfilled", "-centered") for a in args)
        elif macro == "Ed":
            self.flush()
            self.nofill = False
        elif macro in ("D1", "Dl"):
            self.flush()
            self.lines.append(_render(args, self.name))
            self.flush()
        elif macro == "Nd":
            self._line("— " + _render(args, self.name))
        elif macro == "Nm" and self.section == "SYNOPSIS" and self.lines and not self.lists:
            self.flush()  # each form of the command on a line of its own
            self._words(macro, args)
        elif macro == "Rs":
            self.reference = []
        elif macro.startswith("%") and self.reference is not None:
            self.reference.append(_render(args, self.name))
        elif macro == "Re" and self.reference is not None:
            self._line(", ".join(self.reference) + ".")
            self.reference = None
        elif macro == "Ex" and "-std" in args:
            utility = next((a for a in args if a != "-std"), self.name)
            self._line(f"The {utility} utility exits 0 on success, and >0 if an error occurs.")
        elif macro == "Rv" and "-std" in args:
            function = next((a for a in args if a != "-std"), self.name)
            self._line(
                f"The {function}() function returns the value 0 if successful; otherwise the value -1 is "
                "returned and the global variable errno is set to indicate the error."
            )
        elif macro in _CALLABLE or macro == "Nm":
            self._words(macro, args)
        # anything else (".Dd", ".Os", ".Bk", roff's ".nh", ".if") only lays text out

    def _close_xo(self, last: list[str]) -> None:
        """Ends an ".It ... Xo" tag: its lines read as one tag."""
        words = _Words()
        for tokens in [*(self.xo or []), last]:
            _render(tokens, self.name, words)
        self.xo = None
        self._item_tag(words.text)

    def _words(self, macro: str, args: list[str]) -> None:
        words = _Words(self.spacing)
        _render([macro, *args], self.name, words)
        self.space_once = self.space_once or (self.spacing and not words.spacing)
        self.spacing = words.spacing  # ".Sm off" holds until ".Sm on", over lines
        glued = macro in _CLOSERS or macro in ("Ns", "Ap") or (bool(args) and args[0] in _CLOSE and macro == "No")
        line = words.text
        if line:
            self._line(line, glued=glued)
        self.glue = self.glue or words.glue

    # lists
    def _item(self, args: list[str], rest: str) -> None:
        top = self.lists[-1] if self.lists else _List("-item")
        top.count += 1
        if top.type == "-column":
            cells = [_render(_args(cell), self.name) for cell in rest.split("\t")]
            self._row(" | ".join(c.strip() for c in "\t".join(cells).split("\t") if c.strip()))
            return
        if top.type in _TAGGED:
            if "Xo" in args:
                at = args.index("Xo")  # ".It Xo Ic rename-session": the words after it are the tag's too
                self.xo = [args[:at] + args[at + 1 :]]
                return
            self._item_tag(_render(args, self.name))
            return
        self.flush()
        self.mark = {"-enum": f"{top.count}.", "-bullet": "•", "-dash": "-", "-hyphen": "-"}.get(top.type, "")

    def _row(self, row: str) -> None:
        """A row of a column list ("a | b"), on a line of its own."""
        if not self.rows:
            self.flush()
            self.rows = True
        self.lines.append(row)

    def _item_tag(self, tag: str) -> None:
        if self.tag is not None and not any(line.strip() for line in self.lines):
            self.tag.append(tag)  # ".It Fl L Xo ... .It Fl L Xo ...": tags stacked over one entry
            return
        self.flush()
        self.tag = [tag]

    def flush(self) -> None:
        """Ends the paragraph being read: a new element, or more text of the list entry it sits in."""
        kept = [line.rstrip() for line in self.lines if line.strip() or self.nofill]
        body = ("\n" if self.nofill or self.rows else " ").join(kept).strip("\n").rstrip()
        if self.mark and body:
            body = f"{self.mark} {body}"
        self.lines, self.glue, self.mark, self.rows = [], False, "", False
        if self.tag is not None:
            head, self.tag = ", ".join(t for t in self.tag if t), None
            self.out.append((f"{head}\n{body}".strip() if body else head, "ListItem", None))
            self.lists[-1].element = len(self.out) - 1
            return
        if not body:
            return
        entry = next((frame for frame in reversed(self.lists) if frame.type in _TAGGED), None)
        if entry is not None and entry.element == len(self.out) - 1 >= 0:
            text, kind, meta = self.out[-1]
            self.out[-1] = (f"{text}\n{body}", kind, meta)  # the entry's next paragraph, list or display
        else:
            top = self.lists[-1] if self.lists else None
            in_list = top is not None and top.type not in _TAGGED | {"-column"} and top.count > 0
            self.out.append((body, "ListItem" if in_list else "NarrativeText", None))

    def finish(self) -> list[RawElement]:
        self.flush()
        return self.out
