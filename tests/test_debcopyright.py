"""Debian's machine-readable copyright files and the licence files a project ships without a suffix."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from ragkit.connectors import discover_files, parse_file

DEP5 = """\
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: zlib
Source: http://zlib.net/
Comment: This is the pre-packaged Debian version.
 .
 The deflate format was defined by Phil Katz.

Files: *
Copyright: 1995-2013 Jean-loup Gailly and Mark Adler
License: Zlib

License: Zlib
 This software is provided 'as-is', without any
 express or implied warranty.
 .
 Permission is granted to anyone.

Files: contrib/minizip/*
Copyright: 1998-2010 Gilles Vollant
           2007-2008 Even Rouault
License: Zlib

Files: debian/*
Copyright:
 2006-     Laszlo Boszormenyi (GCS) <gcs@debian.org>
License: GPL-2+
 This program is free software.
"""


def _parsed(path: Path, content: str) -> list[tuple[str, str | None, str]]:
    path.write_text(content, encoding="utf-8")
    return [(e.kind, e.section, e.text) for e in parse_file(path).elements]


def test_a_debian_copyright_file_is_read_by_its_stanzas(tmp_path: Path) -> None:
    (tmp_path / "zlib").mkdir()
    assert _parsed(tmp_path / "zlib" / "copyright", DEP5) == [
        ("NarrativeText", None, "Upstream-Name: zlib\nSource: http://zlib.net/"),
        ("NarrativeText", None, "Comment: This is the pre-packaged Debian version."),
        ("NarrativeText", None, "The deflate format was defined by Phil Katz."),  # " ." is a blank line
        ("NarrativeText", None, "Files: *\nCopyright: 1995-2013 Jean-loup Gailly and Mark Adler\nLicense: Zlib"),
        ("Title", "License: Zlib", "License: Zlib"),  # a standalone licence is a section over its paragraphs
        (
            "NarrativeText",
            "License: Zlib",
            "This software is provided 'as-is', without any express or implied warranty.",
        ),
        ("NarrativeText", "License: Zlib", "Permission is granted to anyone."),
        # a Files stanza after it is not part of that licence; one copyright holder a line
        (
            "NarrativeText",
            None,
            "Files: contrib/minizip/*\nCopyright: 1998-2010 Gilles Vollant\n2007-2008 Even Rouault\nLicense: Zlib",
        ),
        # a licence's text inside a Files stanza follows it, its short name in the stanza
        (
            "NarrativeText",
            None,
            "Files: debian/*\nCopyright: 2006-     Laszlo Boszormenyi (GCS) <gcs@debian.org>\nLicense: GPL-2+",
        ),
        ("NarrativeText", None, "This program is free software."),
    ]


def test_licence_files_without_a_suffix_are_plain_text(tmp_path: Path) -> None:
    # a free-form copyright file, and a project's COPYING and LICENSE, are read as text (gzipped too)
    (tmp_path / "copyright").write_text("This package was debianized by Jane.\n\nIt is GPL.\n", encoding="utf-8")
    (tmp_path / "COPYING").write_text("GNU GENERAL PUBLIC LICENSE\n\nVersion 3.\n", encoding="utf-8")
    (tmp_path / "LICENSE.gz").write_bytes(gzip.compress(b"MIT License\n\nPermission is hereby granted.\n"))
    files, unsupported = discover_files([tmp_path])
    assert sorted(p.name for p in files) == ["COPYING", "LICENSE.gz", "copyright"] and not unsupported
    assert [e.text for e in parse_file(tmp_path / "copyright").elements] == [
        "This package was debianized by Jane.",
        "It is GPL.",
    ]
    assert "Permission is hereby granted." in parse_file(tmp_path / "LICENSE.gz").text


def test_a_file_whose_name_names_no_document_is_shown_with_its_folder() -> None:
    from ragkit.types import Chunk

    def name(uri: str) -> str:
        return Chunk(id=1, doc_id=1, uri=uri, ord=0, text="t", start=0, end=1, token_count=1).source_name

    assert name("/usr/share/doc/zlib1g/copyright") == "zlib1g/copyright"
    assert name("/usr/share/doc/git/changelog.Debian.gz") == "git/changelog.Debian.gz"
    assert name("/srv/docs/api/index.html") == "api/index.html"
    assert name("/srv/docs/api/Getopt-Long.pm") == "Getopt-Long.pm"  # a name that says which document stays alone
    assert name("https://example.org/README") == "https://example.org/README"
    loc = Chunk(id=1, doc_id=1, uri="/d/zlib1g/copyright", ord=0, text="t", start=0, end=1, token_count=1).location
    assert loc == "zlib1g/copyright"


ZLIB = Path("/usr/share/doc/zlib1g/copyright")


@pytest.mark.skipif(not ZLIB.exists(), reason="needs zlib1g's copyright file as Debian ships it")
def test_a_real_debian_copyright_file() -> None:
    texts = [e.text for e in parse_file(ZLIB).elements]
    assert any(t.startswith("Files: *\nCopyright:") and "Jean-loup Gailly" in t for t in texts)
    assert "License: Zlib" in texts and not any(line.strip() == "." for t in texts for line in t.split("\n"))
