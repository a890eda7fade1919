"""Perl's documentation (POD: `perldiag.pod`, and the docs inside a module, `Getopt/Long.pm`), read as perldoc
shows it.

POD is made of paragraphs separated by blank lines (perlpodspec). A paragraph that starts with "=" is a
command: "=head1 NAME" opens a section, "=over"/"=item"/"=back" make a list ("=item --verbose" is an entry's
tag, "=item *" a bullet), "=begin html" ... "=end html" and "=for comment ..." are for other formatters, "=cut"
goes back to code. A paragraph indented by a space or a tab is verbatim (an example, its lines kept); any other
is filled text with formatting codes: B<bold>, C<code>, C<< $a <=> $b >>, L<text|perlfunc/open>, E<gt>, X<index
entry>. A module's code, outside its POD, is not documentation and is left out.
"""

from __future__ import annotations

import html.entities
import re
import textwrap
from collections.abc import Callable

from ragkit.connectors.base import RawElement
from ragkit.connectors.document import SECTION
from ragkit.errors import NoDocumentation

POD_SUFFIXES = (".pod", ".pm")
_COMMAND = re.compile(r"^=([a-zA-Z]\w*)[ \t]*(.*)$", re.S)
_BLANK = re.compile(r"\n(?:[ \t]*\n)+")
_OPEN = re.compile(r"([A-Z])(<+)")
_ENCODING = re.compile(rb"^=encoding[ \t]+([\w.:-]+)", re.M)
_ESCAPES = {"lt": "<", "gt": ">", "verbar": "|", "sol": "/"}
_TEXT_FORMATS = ("text", ":text")


def pod_text(data: bytes, decode: Callable[[bytes], str]) -> str:
    """A POD document's text in the encoding it declares ("=encoding latin1"), else as `decode` reads any text."""
    m = _ENCODING.search(data)
    if m:
        try:
            return data.decode(m.group(1).decode("ascii", "replace"))
        except (LookupError, UnicodeDecodeError):
            pass  # an unknown name, or a declaration the bytes do not keep
    return decode(data)


def pod_elements(text: str, name: str = "document") -> list[RawElement]:
    """The sections (Title), paragraphs (NarrativeText), examples (CodeSnippet) and bullets (ListItem) of the POD
    in `text`. An "=item" with a text tag heads its entry, as POD's links treat it (`L<perldiag/"Misplaced _ in
    number">`): the tag is a title, stacked tags one title ("-v, --verbose"), and the list's "=back" returns to
    the section above it. Raises ParseError when there is no POD."""
    out: list[RawElement] = []
    in_pod = seen_pod = after_verbatim = False
    skip_to: str | None = None  # the "=end FORMAT" that closes a block for another formatter
    bullet: str | None = None  # "•" or "1." waiting for its paragraph
    heads: list[str] = []  # an entry's text tags waiting for its first paragraph
    section: str | None = None
    enclosing: list[str | None] = []  # the section at each open "=over"

    def settle() -> None:
        nonlocal bullet, heads, section
        if heads:
            section = ", ".join(heads)
            out.append((section, "Title", None))
            heads = []
        if bullet is not None:
            out.append((bullet, "ListItem", None))
            bullet = None

    for para in _paragraphs(text):
        follows_verbatim, after_verbatim = after_verbatim, False
        cmd = _COMMAND.match(para)
        if not in_pod:
            if cmd is None:
                continue  # a module's code
            in_pod = seen_pod = True
        if skip_to is not None:
            if cmd and cmd.group(1) == "end" and cmd.group(2).split()[:1] == [skip_to]:
                skip_to = None
            continue
        if cmd is None:
            if para[:1] in " \t":
                settle()
                code = textwrap.dedent(para.expandtabs(8)).strip("\n")
                if follows_verbatim:  # one example over blank lines
                    code = out.pop()[0] + "\n\n" + code
                out.append((code, "CodeSnippet", None))
                after_verbatim = True
            else:
                body = _inline(" ".join(line.strip() for line in para.split("\n")))
                mark, bullet = bullet, None
                settle()
                out.append((f"{mark}\n{body}" if mark else body, "ListItem" if mark else "NarrativeText", None))
            continue
        command, arg = cmd.group(1), " ".join(cmd.group(2).split())
        if command == "item":
            mark, rest = _mark(arg)
            if mark is not None:
                settle()
                bullet = mark
                if rest:  # "=item * pure perl": the bullet's text on its line
                    out.append((f"{mark} {_inline(rest)}", "ListItem", None))
                    bullet = None
            else:
                if bullet is not None:
                    settle()
                heads.append(_inline(arg))
            continue
        settle()
        if command == "cut":
            in_pod = False
        elif command.startswith("head") and arg:
            section = _inline(arg)
            out.append((section, "Title", None))
        elif command == "over":
            enclosing.append(section)
        elif command == "back" and enclosing:
            above = enclosing.pop()
            if above != section:
                out.append((above or "", SECTION, None))
                section = above
        elif command == "begin":
            fmt = arg.split()[:1]
            if fmt and fmt[0] not in _TEXT_FORMATS:
                skip_to = fmt[0]
        elif command == "for":
            fmt, _, rest = arg.partition(" ")
            if fmt in _TEXT_FORMATS and rest:
                out.append((_inline(rest), "NarrativeText", None))
    settle()
    if not seen_pod:
        raise NoDocumentation.for_file(name, "Perl code without POD")
    return out


def _paragraphs(text: str) -> list[str]:
    """The document cut at blank lines (a line of spaces is blank too)."""
    return [p.strip("\n") for p in _BLANK.split(text.replace("\r\n", "\n")) if p.strip()]


_MARK = re.compile(r"(\*|\d+\.)\s+(.*)|(\*?|\d+\.?)", re.S)


def _mark(arg: str) -> tuple[str | None, str]:
    """A bullet's or a numbered item's mark as printed ("•" for "*", "1." for "1") and any text after it on the
    item's line ("=item * pure perl"); (None, "") for a text tag: "=item 500 Server error" is perldiag's message
    and Getopt::Long's "=item o" its type letter."""
    m = _MARK.fullmatch(arg)
    if m is None:
        return None, ""
    mark = m.group(1) or m.group(3)
    return ("•" if mark in ("", "*") else mark.rstrip(".") + "."), m.group(2) or ""


def _inline(text: str) -> str:
    """Text with its formatting codes read: B<x>, I<x>, C<x>, F<x>, S<x> print x; L<> its text or target;
    E<> a character; X<> (index entries) and Z<> nothing. C<< a->b >> may hold ">" (perlpodspec)."""
    stack: list[tuple[str, str, list[str]]] = [("", "", [])]  # (code, closing delimiter, text so far)
    i = 0
    while i < len(text):
        m = _OPEN.match(text, i)
        if m:
            n = len(m.group(2))
            after = m.end()
            if n > 1 and after < len(text) and text[after] in " \t\n":
                stack.append((m.group(1), ">" * n, []))
                i = after + 1
            else:  # "C<x>"; in "C<<x>>" without a space only one code opens and the other "<" is text
                stack.append((m.group(1), ">", []))
                i = m.start() + 2
            continue
        code, closer, buf = stack[-1]
        if len(stack) > 1 and text.startswith(closer, i) and (len(closer) == 1 or (buf and buf[-1][-1:] in " \t\n")):
            stack.pop()
            stack[-1][2].append(_render(code, "".join(buf).strip() if len(closer) > 1 else "".join(buf)))
            i += len(closer)
            continue
        buf.append(text[i])
        i += 1
    while len(stack) > 1:  # an unclosed code: its text as written
        code, _, buf = stack.pop()
        stack[-1][2].append(f"{code}<{''.join(buf)}")
    return "".join(stack[0][2])


def _render(code: str, content: str) -> str:
    if code in ("X", "Z"):
        return ""
    if code == "E":
        return _entity(content)
    if code == "L":
        return _link(content)
    return content


def _entity(name: str) -> str:
    """E<gt>, E<0x263A>, E<9786>, E<eacute>."""
    if name in _ESCAPES:
        return _ESCAPES[name]
    try:
        if name.lower().startswith("0x"):
            return chr(int(name, 16))
        if name.isdigit():
            return chr(int(name, 8) if name.startswith("0") and len(name) > 1 else int(name))
    except (ValueError, OverflowError):
        return f"E<{name}>"
    code = html.entities.name2codepoint.get(name)
    return chr(code) if code is not None else f"E<{name}>"


def _link(content: str) -> str:
    """L<text|target> prints text, and a URL target after it, "text <url>" (as pod2text); L<perlfunc/open> '"open"
    in perlfunc'; L</Options> '"Options"'; a URL itself."""
    text, bar, target = content.partition("|")
    if bar:
        return f"{text} <{target}>" if "://" in target else text
    if "://" in content:
        return content
    page, slash, section = content.partition("/")
    if not slash:
        return content
    section = section.strip('"')
    return f'"{section}" in {page}' if page else f'"{section}"'
