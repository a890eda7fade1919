"""Parse audit of POD, Markdown and HTML files: each sampled file's words as a reference renderer shows them
against the words ragkit reads from it (manual pages: bench/man_audit.py).

    python bench/parse_audit.py pod  [--seed 1] [--n 60]   # reference: pod2text (Perl)
    python bench/parse_audit.py md   [--seed 1] [--n 60]   # reference: Python-Markdown's HTML, its text nodes
    python bench/parse_audit.py html [--seed 1] [--n 60]   # reference: the page's text nodes (no script/style/head)

A file is listed when more than 2% of the reference's words are missing from ragkit's reading, or more than 3% of
ragkit's words are not the reference's. Words are compared as multisets, so order and layout are not judged, and
some differences are by design (HTML navigation and tables of contents are left out; Markdown keeps link targets
and a Node page's `<!-- YAML -->` history): read the listed files before calling a difference a defect.
"""

from __future__ import annotations

import argparse
import collections
import glob
import os
import random
import re
import subprocess
from html.parser import HTMLParser
from pathlib import Path

from ragkit.connectors.parsing import SourceOptions, parse_bytes
from ragkit.errors import RagkitError

WORD = re.compile(r"\w+")
SOURCES = {
    "pod": ["/usr/share/perl/5.*/**/*.pod", "/usr/share/perl/5.*/**/*.pm"],
    "md": ["/usr/share/doc/**/*.md", "/usr/lib/node_modules/npm/docs/content/**/*.md"],
    "html": ["/usr/share/doc/**/*.html"],
}


class _Text(HTMLParser):
    """The text nodes of an HTML page outside script, style and head."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.hidden += tag in ("script", "style", "head")

    def handle_endtag(self, tag: str) -> None:
        self.hidden -= tag in ("script", "style", "head") and self.hidden > 0

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.parts.append(data)


def html_text(html: str) -> str:
    """The words a browser would show of `html`, roughly: its text nodes outside script, style and head."""
    parser = _Text()
    parser.feed(html)
    return " ".join(parser.parts)


def reference(kind: str, path: Path) -> str:
    """The text of `path` as the reference renderer for `kind` shows it."""
    if kind == "pod":
        return subprocess.run(["pod2text", str(path)], capture_output=True).stdout.decode("utf-8", "replace")
    text = path.read_text(encoding="utf-8", errors="replace")
    if kind == "md":
        import markdown  # Python-Markdown, not the markdown-it ragkit reads with: an independent reading

        text = markdown.markdown(re.sub(r"<!--.*?-->", "", text, flags=re.S), extensions=["tables", "fenced_code"])
    return html_text(text)


def ours(path: Path) -> str:
    """The text ragkit reads from `path`: its elements' texts."""
    doc = parse_bytes(path.read_bytes(), uri=str(path), name=path.name, suffix=path.suffix, options=SourceOptions())
    return "\n".join(e.text for e in doc.elements)


def audit(kind: str, paths: list[Path]) -> None:
    """Prints each listed file with its most missing and most extra words, then the means."""
    missing = extra = 0.0
    read = 0
    for path in paths:
        try:
            got = collections.Counter(WORD.findall(ours(path)))
        except RagkitError as e:  # a module with no POD, an empty page: ragkit reports it, nothing to compare
            print(f"  {path}: not read ({e})")
            continue
        shown = collections.Counter(WORD.findall(reference(kind, path)))
        m = sum((shown - got).values()) / max(1, sum(shown.values()))
        e = sum((got - shown).values()) / max(1, sum(got.values()))
        missing, extra, read = missing + m, extra + e, read + 1
        if m > 0.02 or e > 0.03:
            lost, added = (shown - got).most_common(5), (got - shown).most_common(5)
            print(f"  {path}: missing {m:.3f} {lost}, extra {e:.3f} {added}")
    n = max(1, read)
    print(f"{kind}: {read} files read; mean missing {missing / n:.4f}, extra {extra / n:.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("kind", choices=sorted(SOURCES))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--n", type=int, default=60, help="files drawn")
    args = parser.parse_args()
    found = sorted({p for pattern in SOURCES[args.kind] for p in glob.glob(pattern, recursive=True)})
    files = [Path(p) for p in found if os.path.isfile(p) and os.path.getsize(p) < 1_000_000]
    random.seed(args.seed)
    audit(args.kind, random.sample(files, min(args.n, len(files))))


if __name__ == "__main__":
    main()
