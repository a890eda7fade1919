"""--set SECTION.KEY=VALUE: any ragkit.toml setting for one command, without editing the file, so two settings
are compared on one KB (`ragkit eval run Q.jsonl --set retrieval.fusion=score --set retrieval.keyword_weight=1`).
The config validates the result as it validates the file, so a mistyped key fails with the key it meant."""

from __future__ import annotations

import tomllib
from typing import Annotated, Any

import typer

from ragkit.errors import UsageError

SetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        help="A ragkit.toml setting for this command only, SECTION.KEY=VALUE (repeatable), e.g. "
        "retrieval.fusion=score; the file is not changed (an eval run records it in config.json).",
    ),
]


def parse_sets(pairs: list[str] | None) -> dict[str, Any]:
    """["retrieval.top_k=5", "retrieval.fusion=score"] -> {"retrieval.top_k": 5, "retrieval.fusion": "score"}.

    Each value is read as a TOML value (5, 1.0, true, "text", [1, 2]) and, failing that, as plain text."""
    out: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, raw = pair.partition("=")
        key, raw = key.strip(), raw.strip()
        if not sep or not raw or "." not in key or not all(key.split(".")):
            raise UsageError(f"--set takes SECTION.KEY=VALUE, e.g. retrieval.fusion=score, not {pair!r}")
        try:
            out[key] = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            out[key] = raw
    return out
