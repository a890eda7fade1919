"""Every flag a withholding check can raise is explained by the CLI and the web page (a new check must say why)."""

from __future__ import annotations

from pathlib import Path

from ragkit.cli.ask_cmd import _WITHHELD
from ragkit.withholding import WITHHOLDING_FLAGS

APP_JS = Path(__file__).resolve().parent.parent / "ragkit" / "server" / "web" / "app.js"


def test_each_withholding_flag_has_words_in_the_cli_and_on_the_page() -> None:
    assert set(WITHHOLDING_FLAGS) <= set(_WITHHELD)
    page = APP_JS.read_text(encoding="utf-8")
    assert [k for k in WITHHOLDING_FLAGS if f'flag("{k}")' not in page] == []
