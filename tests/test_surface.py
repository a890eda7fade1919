"""The public surface only grows: ragkit.__all__, ragkit.evals.__all__, every public KnowledgeBase method's
parameters and every command's --help, against tests/data/golden/surface.json (recorded at d2e2389, before the
engine/workflow split). A new name, method, parameter with a default or help line is fine; a lost or changed
one fails."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import ragkit
import ragkit.evals
from ragkit.api import KnowledgeBase
from ragkit.cli.app import app

SURFACE = json.loads((Path(__file__).parent / "data" / "golden" / "surface.json").read_text(encoding="utf-8"))


def test_public_names_only_grow() -> None:
    assert set(SURFACE["ragkit.__all__"]) <= set(ragkit.__all__)
    assert set(SURFACE["ragkit.evals.__all__"]) <= set(ragkit.evals.__all__)


@pytest.mark.parametrize("name", sorted(SURFACE["KnowledgeBase"]))
def test_knowledge_base_methods_keep_their_parameters(name: str) -> None:
    was = SURFACE["KnowledgeBase"][name]
    now = getattr(KnowledgeBase, name)
    if was == "property":
        assert not callable(now) or isinstance(inspect.getattr_static(KnowledgeBase, name), property)
        return
    params = {p.name: p for p in inspect.signature(now).parameters.values()}
    for pname, kind, default in was:
        assert pname in params, f"KnowledgeBase.{name} lost parameter {pname}"
        assert str(params[pname].kind) == kind, f"KnowledgeBase.{name}({pname}) changed kind"
        if default != repr(inspect.Parameter.empty):  # a default may be added, never changed or removed
            assert repr(params[pname].default) == default, f"KnowledgeBase.{name}({pname}) changed its default"
    added = [p for p in params.values() if p.name not in {w[0] for w in was}]
    assert all(p.default is not inspect.Parameter.empty or p.kind is p.VAR_KEYWORD for p in added)


@pytest.mark.parametrize("command", sorted(SURFACE["help"]))
def test_help_keeps_every_line(command: str) -> None:
    res = CliRunner().invoke(app, [*command.split(), "--help"], env={"COLUMNS": "120", "TERM": "dumb"})
    assert res.exit_code == 0
    now = set(res.output.splitlines())
    lost = [line for line in SURFACE["help"][command].splitlines() if line not in now]
    assert not lost, f"`ragkit {command} --help` lost: {lost[:5]}"
