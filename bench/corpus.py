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


def build(folder: Path, max_chars: int = 2_000_000, per_file: int = 30_000) -> list[Path]:
    """Write up to max_chars of text into folder; return the files written."""
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
