"""Per-generator parse audit of manual pages: each sampled page's words as `man` prints them against the words
ragkit reads from it, by the generator that wrote the page (Pod::Man, help2man, DocBook, Asciidoctor, rst2man,
mdoc, the rest).

    python bench/man_audit.py [--seed 1] [--per 15] [--sections 1 8]

A page is listed when more than 2% of the words `man` prints are missing from ragkit's reading, or more than 2%
of ragkit's words are ones `man` does not print (macro names or definitions read as text). Needs `man` (man-db)
and groff; words are compared as multisets, so order and layout are not judged: read the listed pages by hand.
"""

from __future__ import annotations

import argparse
import collections
import glob
import gzip
import os
import random
import re
import subprocess

from ragkit.connectors.mdoc import is_mdoc, mdoc_elements
from ragkit.connectors.roff import man_elements

GENERATORS = [
    ("Pod::Man", "Pod::Man"),
    ("help2man", "help2man"),
    ("DocBook", "[Dd]oc[Bb]ook"),
    ("Asciidoctor", "Asciidoctor"),
    ("rst2man", "generated from reStructuredText"),
    ("mdoc", r"^\.Dd"),
]
WORD = re.compile(r"(?<![\w-])-{1,2}[A-Za-z0-9][\w-]*|\w+")  # "--apple" is one word, "- -apple" two


def words(text: str) -> collections.Counter[str]:
    """The words of `text`, counted."""
    return collections.Counter(WORD.findall(text))


def rendered(path: str) -> str:
    """The page as `man` prints it 80 columns wide, without its header and footer lines, hyphenation undone."""
    env = {**os.environ, "MANWIDTH": "80"}
    out = subprocess.run(["man", "-P", "cat", "-l", path], capture_output=True, text=True, env=env).stdout
    lines = [line for line in out.split("\n") if line.strip()][1:-1]
    return re.sub(r"‐\n\s*", "", "\n".join(lines))


def read(path: str, source: str) -> str:
    """The page as ragkit reads it: its elements' texts."""
    name = os.path.basename(path)
    elements = mdoc_elements(source, name) if is_mdoc(source) else man_elements(source, name)
    return "\n".join(text for text, _, _ in elements)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--per", type=int, default=15, help="pages drawn per generator (four times that of the rest)")
    parser.add_argument("--sections", nargs="+", default=["1", "8"])
    args = parser.parse_args()
    random.seed(args.seed)
    families: dict[str, list[str]] = collections.defaultdict(list)
    for path in sorted(p for s in args.sections for p in glob.glob(f"/usr/share/man/man{s}/*.gz")):
        with gzip.open(path, "rt", errors="replace") as f:
            head = f.read(3000)
        if head.startswith(".so "):
            continue  # a link to another page
        families[next((n for n, pat in GENERATORS if re.search(pat, head, re.M)), "other")].append(path)
    for family, paths in sorted(families.items()):
        drawn = random.sample(paths, min(args.per * (4 if family == "other" else 1), len(paths)))
        missing = extra = 0.0
        listed = []
        for path in drawn:
            with gzip.open(path, "rt", errors="replace") as f:
                source = f.read()
            shown, ours = words(rendered(path)), words(read(path, source))
            m = sum((shown - ours).values()) / max(1, sum(shown.values()))
            e = sum((ours - shown).values()) / max(1, sum(ours.values()))
            missing, extra = missing + m, extra + e
            if m > 0.02 or e > 0.02:
                listed.append(f"    {os.path.basename(path)}: missing {m:.3f} {(shown - ours).most_common(5)}, "
                              f"extra {e:.3f} {(ours - shown).most_common(5)}")  # fmt: skip
        n = max(1, len(drawn))
        print(f"{family}: {len(paths)} pages, {len(drawn)} read; mean missing {missing / n:.4f}, extra {extra / n:.4f}")
        print("\n".join(listed)) if listed else None


if __name__ == "__main__":
    main()
