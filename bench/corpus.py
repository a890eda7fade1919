"""A reproducible corpus of real technical English for ingest benchmarks, built from the Python stdlib.

The Python reference topics (pydoc_data) and the plain-text pydoc of ~90 stdlib modules, written as .md
(topics, with headings) and .txt (module docs) files. No download; same text on every machine with the same
Python version.
"""

from __future__ import annotations

import importlib
import pydoc
from pathlib import Path

MODULES = """collections json re pathlib argparse logging typing itertools functools datetime decimal fractions
statistics string textwrap difflib csv sqlite3 zipfile tarfile shutil subprocess threading queue asyncio email
http.client urllib.parse unittest doctest inspect dataclasses enum heapq bisect random math hashlib hmac secrets
uuid io tempfile glob fnmatch pickle copy pprint contextlib abc operator socket ssl selectors struct codecs
locale gettext calendar sched configparser tomllib xml.etree.ElementTree html.parser base64 binascii zlib gzip
bz2 lzma mimetypes smtplib imaplib ftplib platform sysconfig traceback warnings weakref ast dis tokenize
keyword shlex cmd getopt optparse signal mmap ctypes""".split()


def build(folder: Path, max_chars: int = 2_000_000, per_file: int = 30_000, copies: int = 1) -> list[Path]:
    """Write up to max_chars of text into folder; return the files written.

    copies > 1 writes the whole corpus that many times, each copy's lines marked with its number, so a GPU
    benchmark can run for tens of seconds on distinct chunks (ragkit embeds identical chunk texts once)."""
    if copies > 1:
        first = build(folder / "copy-1", max_chars, per_file)
        written = list(first)
        for c in range(2, copies + 1):
            sub = folder / f"copy-{c}"
            sub.mkdir(parents=True, exist_ok=True)
            for path in first:
                lines = path.read_text(encoding="utf-8").splitlines()
                marked = "\n".join(f"({c}) {line}" if line.strip() else line for line in lines)
                written.append(sub / path.name)
                written[-1].write_text(marked + "\n", encoding="utf-8")
        return written
    from pydoc_data.topics import topics

    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    total = 0
    for name, body in sorted(topics.items()):
        text = f"# {name}\n\n" + body[:per_file]
        path = folder / f"topic-{name}.md"
        path.write_text(text, encoding="utf-8")
        written.append(path)
        total += len(text)
    for mod_name in MODULES:
        if total >= max_chars:
            break
        try:
            module = importlib.import_module(mod_name)
        except ImportError:
            continue
        text = pydoc.render_doc(module, renderer=pydoc.plaintext)[:per_file]
        path = folder / f"module-{mod_name}.txt"
        path.write_text(text, encoding="utf-8")
        written.append(path)
        total += len(text)
    return written
