"""Light parsers for the plain formats: Markdown (markdown-it-py), HTML (BeautifulSoup + lxml), plain text.

unstructured runs spaCy on every element, about 3.4 s for a 210k-character Markdown or HTML file where these
take about 10 ms; when parsing rather than embedding bounds ingest (always on a GPU) that decides the
throughput. They yield the same element kinds (Title, NarrativeText, ListItem, Table, CodeSnippet), so
sections and chunking behave the same. `ingest.parser = "unstructured"` routes everything through
unstructured instead. docs/benchmarks.md has the measurement behind the default.
"""

from __future__ import annotations

import re
import warnings
from typing import Any

RawElement = tuple[str, str, int | None]  # (text, kind, page)

_BLANK_LINES = re.compile(r"\n\s*\n")


_RST_UNDERLINE = re.compile(r"^([=\-~^*#+`'\".:_])\1{2,}$")
# an RST comment or link target: ".. " then no "word::" directive on the first line (".. _`Workflow Preset`:")
_RST_COMMENT = re.compile(r"\.\.(?:\s|$)(?!\s*[\w:.+-]+::)")


def text_elements(text: str, rst: bool = False) -> list[RawElement]:
    """Paragraphs split on blank lines. A Title is an RST heading (a line underlined, optionally overlined, with
    one repeated punctuation character) or, in plain text, a short single line without closing punctuation.
    rst=True (a .rst file): only underlined headings are titles, since a short line there is markup
    (".. versionadded:: 3.19", ".. only:: html"); comments and link targets (".. name: ...", ".. _target:") are
    dropped, and other directives stay as text (the version a feature was added in is worth finding)."""
    out: list[RawElement] = []
    for para in _BLANK_LINES.split(text):
        lines = [ln.rstrip() for ln in para.strip().splitlines()]
        if not lines:
            continue
        if len(lines) >= 2 and _RST_UNDERLINE.match(lines[-1]):
            body = [ln for ln in lines if not _RST_UNDERLINE.match(ln)]
            if len(body) == 1:
                out.append((body[0].strip(), "Title", None))
                continue
        para = "\n".join(lines)
        if rst and _RST_COMMENT.match(para):
            continue
        closed = para[-1] in ".,;:!?。！？；：，"  # a CJK sentence has no spaces to count words by, but its own stops
        is_title = not rst and len(lines) == 1 and len(para) <= 100 and not closed and len(para.split()) <= 12
        out.append((para, "Title" if is_title else "NarrativeText", None))
    return out


def markdown_elements(text: str) -> list[RawElement]:
    """Headings, paragraphs, list items, tables and code blocks of a Markdown document."""
    from markdown_it import MarkdownIt

    tokens = MarkdownIt("commonmark").enable("table").parse(text)
    out: list[RawElement] = []
    i = 0
    in_list = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok.type in ("bullet_list_open", "ordered_list_open"):
            in_list += 1
        elif tok.type in ("bullet_list_close", "ordered_list_close"):
            in_list -= 1
        elif tok.type == "heading_open":
            out.append((tokens[i + 1].content, "Title", None))
            i += 2
        elif tok.type == "inline" and tok.content.strip():
            out.append((tok.content, "ListItem" if in_list else "NarrativeText", None))
        elif tok.type in ("fence", "code_block") and tok.content.strip():
            out.append((tok.content.rstrip("\n"), "CodeSnippet", None))
        elif tok.type == "table_open":
            rows: list[str] = []
            cells: list[str] = []
            while tokens[i].type != "table_close":
                t = tokens[i]
                if t.type == "inline":
                    cells.append(t.content)
                elif t.type == "tr_close":
                    rows.append(" | ".join(cells))
                    cells = []
                i += 1
            out.append(("\n".join(rows), "Table", None))
        elif tok.type == "html_block" and tok.content.strip():
            out.extend(html_elements(tok.content))
        i += 1
    return out


_HTML_BLOCKS = {
    "h1": "Title",
    "h2": "Title",
    "h3": "Title",
    "h4": "Title",
    "h5": "Title",
    "h6": "Title",
    "p": "NarrativeText",
    "li": "ListItem",
    "pre": "CodeSnippet",
    "table": "Table",
    "blockquote": "NarrativeText",
    "dt": "NarrativeText",
    "dd": "NarrativeText",
    "figcaption": "NarrativeText",
}
_CONTAINERS = ("blockquote", "dd", "dt", "figcaption")  # blocks that may hold other blocks
_HTML_SKIP = ["script", "style", "noscript", "template", "svg", "nav", "head"]
_PERMALINKS = {"#", "¶", "§", "🔗", "¤"}
_HEADINGS = ["h1", "h2", "h3", "h4", "h5", "h6"]


def html_elements(html: str) -> list[RawElement]:
    """Block elements of an HTML page in document order; scripts, styles and navigation are dropped."""
    from bs4 import BeautifulSoup, XMLParsedAsHTMLWarning

    with warnings.catch_warnings():
        # an XHTML page (an <?xml ...?> line first, as libxslt's docs) is HTML to us; bs4 would print a page of advice
        warnings.simplefilter("ignore", XMLParsedAsHTMLWarning)
        soup = BeautifulSoup(html, "lxml")
    for tag in soup(_HTML_SKIP):
        tag.decompose()
    for heading in soup.find_all(_HEADINGS):
        # a heading's permalink ("os.tmpdir()#" in Node's docs, "Abstract¶" in Sphinx's) is not part of its title
        for link in heading.find_all("a"):
            if link.get_text(strip=True) in _PERMALINKS:
                link.decompose()
    out: list[RawElement] = []
    for tag in soup.find_all([*_HTML_BLOCKS, "dl"]):
        if tag.find_parent(["table", "pre", "li", "dl"]) is not None:
            continue  # its text is part of the enclosing block
        if tag.name == "dl":
            out.extend(_definitions(tag))
            continue
        if tag.name in _CONTAINERS and tag.find(list(_HTML_BLOCKS)) is not None:
            continue  # a blockquote of paragraphs: they come on their own (it was read twice)
        if tag.name == "table":
            rows = [" | ".join(c.get_text(" ", strip=True) for c in tr.find_all(["th", "td"])) for tr in tag("tr")]
            text = "\n".join(r for r in rows if r.strip())
        elif tag.name == "pre":
            text = tag.get_text()
        else:
            text = " ".join(tag.get_text().split())  # inline tags join without a separator: "bold." not "bold ."
        if text.strip():
            out.append((text.strip("\n"), _HTML_BLOCKS[tag.name], None))
    if not out:  # a page of bare text without block tags
        body = soup.get_text("\n", strip=True)
        out = text_elements(body) if body else []
    return out


def _definitions(dl: Any) -> list[RawElement]:
    """A definition list's entries, one element each, the term before its definition ("-k --keep: Keep (don't
    delete) input files ..."). Read apart, as they were, a manual's option names were a sentence of their own
    that no question resembles, and a chunk could end between an option and what it does."""
    out: list[RawElement] = []
    terms: list[str] = []
    for tag in dl.find_all(["dt", "dd"]):
        if tag.find_parent("dl") is not dl:
            continue  # a nested list is part of its entry's definition
        text = _flat_text(tag)
        if tag.name == "dt":
            terms.append(text)
        elif text or terms:
            head = "; ".join(t for t in terms if t)
            out.append((f"{head}: {text}" if head and text else head or text, "NarrativeText", None))
            terms = []
    if any(terms):
        out.append(("; ".join(t for t in terms if t), "NarrativeText", None))
    return [e for e in out if e[0].strip()]


def _flat_text(tag: Any) -> str:
    """The tag's text on one line; block children end with a space so paragraphs do not run together."""
    for block in tag.find_all([*_HTML_BLOCKS, "div", "ul", "ol", "br"]):
        block.append(" ")
    return " ".join(tag.get_text().split())
