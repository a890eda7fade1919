"""JSON and JSON Lines sources: one element per record, its text from a chosen field."""

from __future__ import annotations

import json
from collections.abc import Callable

from ragkit.connectors.base import RawElement
from ragkit.errors import ParseError


def json_elements(name: str, suffix: str, text: str, field: str, note: Callable[[str], None]) -> list[RawElement]:
    """One element per record that has `field` (JSON: an object or a list of objects; JSONL: one per line) of
    the decoded file `text`; `note` is told how many records had none."""
    lineno = 0
    try:
        if suffix == ".jsonl":
            records = []
            for lineno, line in enumerate(text.splitlines(), start=1):  # noqa: B007 - the error names it
                if line.strip():
                    records.append(json.loads(line))
        else:
            loaded = json.loads(text)
            records = loaded if isinstance(loaded, list) else [loaded]
    except json.JSONDecodeError as exc:
        line = lineno or exc.lineno  # JSONL: each line is parsed alone, so exc.lineno is always 1
        raise ParseError(f"{name}: invalid JSON at line {line} ({exc.msg}); fix or remove that line") from exc
    out: list[RawElement] = []
    without = 0
    for record in records:
        value = record.get(field) if isinstance(record, dict) else None
        if isinstance(value, str) and value.strip():
            title = record.get("title") or record.get("id")
            if isinstance(title, (str, int)):
                out.append((str(title), "Title", None))
            out.append((value, "NarrativeText", None))
        else:
            without += 1
    if not out:
        raise ParseError(
            f"{name}: no record has a text field {field!r} (choose another with --json-field or ingest.json_text_field)"
        )
    if without:
        note(f"{without} of {len(records)} records have no text field {field!r} and were left out")
    return out
