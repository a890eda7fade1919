"""Reader RM offline: manual pages rendered as a user saves them (`MANWIDTH=80 man -l PAGE > NAME.txt`) against
the roff reader's reading of their sources.

    python bench/rendered_audit.py [--seed 7] [--pages 250] [--only gcloud|classic] [--list]

For a sample of this machine's man1 and man8 pages it counts the pages reader RM knows as rendered pages
(connectors/rendered_man.is_rendered_man), the option names heading an entry of the roff reader's reading that
also head an entry (ragkit.entries.source_entries) of RM's reading, and the words of the rendering (header and
footer left out, groff's line-end hyphens joined) missing from RM's reading. `--only gcloud` samples Google Cloud
SDK's pages, `--only classic` the others. `--list` prints each page RM does not know or finds fewer than 60% of
the entries in. Needs man-db and groff.
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

from ragkit.connectors.document import build_document
from ragkit.connectors.mdoc import is_mdoc, mdoc_elements
from ragkit.connectors.rendered_man import is_rendered_man, rendered_man_elements
from ragkit.connectors.roff import man_elements
from ragkit.entries import _names, source_entries


def entry_names(elements: list) -> set[str]:
    """The option names that head an entry of a reading, as the answer checks find them."""
    text = build_document("page", elements, "hash", {}).text
    return {name for tag, _ in source_entries(text) for name in _names(tag)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--pages", type=int, default=250)
    ap.add_argument("--only", choices=["gcloud", "classic"])
    ap.add_argument("--list", action="store_true")
    args = ap.parse_args()
    pages = sorted(glob.glob("/usr/share/man/man1/*.gz") + glob.glob("/usr/share/man/man8/*.gz"))
    if args.only:
        pages = [p for p in pages if ("gcloud" in p) == (args.only == "gcloud")]
    random.seed(args.seed)
    pages = random.sample(pages, min(args.pages, len(pages)))
    env = dict(os.environ, MANWIDTH="80")
    tot: collections.Counter[str] = collections.Counter()
    for page in pages:
        rendered = subprocess.run(["man", "-l", page], capture_output=True, text=True, env=env, timeout=60).stdout
        with gzip.open(page, "rt", errors="replace") as fh:
            source = fh.read()
        if not rendered.strip() or source.startswith(".so "):
            continue
        tot["pages"] += 1
        if not is_rendered_man(rendered):
            if args.list:
                print("not known:", page)
            continue
        tot["known"] += 1
        elements = rendered_man_elements(rendered)
        lines = [line for line in rendered.splitlines() if line.strip()]
        body = re.sub("\u2010\n\\s*", "", "\n".join(lines[1:-1]))
        words = collections.Counter(re.findall(r"\w+", body))
        tot["words"] += sum(words.values())
        tot["words_missing"] += sum(
            (words - collections.Counter(re.findall(r"\w+", " ".join(e[0] for e in elements)))).values()
        )
        roff = mdoc_elements(source, page) if is_mdoc(source) else man_elements(source, page)
        want = {
            name
            for text, kind, _ in roff
            if kind == "ListItem" and "\n" in text
            for name in _names(text.split("\n", 1)[0])
        }
        found = len(want & entry_names(elements))
        tot["entries"] += len(want)
        tot["entries_found"] += found
        if args.list and len(want) >= 5 and found < 0.6 * len(want):
            print(f"entries {found} of {len(want)}:", page)
    print(
        f"{tot['pages']} pages, {tot['known']} known as rendered pages; option entries found {tot['entries_found']} "
        f"of {tot['entries']}; words missing {tot['words_missing']} of {tot['words']}"
    )


if __name__ == "__main__":
    main()
