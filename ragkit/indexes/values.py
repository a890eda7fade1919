"""Values as both SQL backends accept them: text without NUL, JSON without NaN/inf."""

from __future__ import annotations

import math
from typing import Any


def _text(value: str) -> str:
    """Postgres text cannot hold NUL; U+FFFD keeps the length, so chunk char offsets stay true."""
    return value.replace("\x00", "\ufffd")


def _json_safe(value: Any) -> Any:
    """Metadata as JSON both backends accept: no NUL, no NaN/inf (Postgres rejects both), others as text."""
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, bool) or value is None or isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {_text(str(k)): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return _text(str(value))  # Decimal, datetime, ... from SQL sources
