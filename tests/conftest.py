"""Shared fixtures. Tests never reach the network: non-loopback connections raise."""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from pgserver import db_url, pg_app_url, pg_server, pg_url  # noqa: F401 - PostgreSQL fixtures

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# a new KB gets the best bundled generator installed (Qwen with ragkit[qwen]); the suite pins the small one so
# it behaves the same with or without the extra and stays in its time budget. test_default_generator.py
# checks the choice itself, and the tests that want Qwen name it.
os.environ.setdefault("RAGKIT_DEFAULT_GENERATOR", "SmolLM2-135M-Instruct")

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_CORPUS = ROOT / "examples" / "sample_corpus"

_real_connect = socket.socket.connect


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden", action="store_true", help="rewrite tests/data/golden/ from this run (tests/test_golden.py)"
    )


def _guarded_connect(self: socket.socket, address: object) -> object:
    host = address[0] if isinstance(address, tuple) else str(address)
    if self.family == socket.AF_UNIX or str(host) in {"127.0.0.1", "::1", "localhost"}:
        return _real_connect(self, address)
    raise OSError(f"test tried to reach the network: {address!r}")


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket.socket, "connect", _guarded_connect)


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """A private copy of the sample corpus that a test may change."""
    dst = tmp_path / "corpus"
    shutil.copytree(SAMPLE_CORPUS, dst)
    return dst


def run(*args: object):  # type: ignore[no-untyped-def]
    """Invoke the ragkit CLI in-process at a fixed terminal width (help and tables wrap the same everywhere)."""
    from typer.testing import CliRunner

    from ragkit.cli import app

    return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "120", "TERM": "dumb"})


@pytest.fixture
def hashed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every KB opened embeds with HashEmbedder(64) instead of loading the bundled model (the fast tier)."""
    from ragkit import build
    from ragkit.testing import HashEmbedder

    monkeypatch.setattr(build, "embedder_from", lambda cfg, manifest, root: HashEmbedder(64, name="hash"))


@pytest.fixture(scope="session")
def built_kb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A knowledge base built once from the sample corpus with the real bundled embedder."""
    import ragkit

    root = tmp_path_factory.mktemp("kb") / "kb"
    with ragkit.open(root) as kb:
        report = kb.ingest([SAMPLE_CORPUS])
    assert report.ingested == 5 and not report.failed
    yield root


@pytest.fixture(scope="session")
def minilm_tokenizer():  # type: ignore[no-untyped-def]
    """The bundled embedder's own tokenizer (loads in well under a second)."""
    from transformers import AutoTokenizer

    from ragkit.assets import resolve_embedder

    return AutoTokenizer.from_pretrained(str(resolve_embedder("all-MiniLM-L6-v2")))


@pytest.fixture(scope="session")
def bundled_gpt():  # type: ignore[no-untyped-def]
    """The bundled SmolLM2-135M-Instruct generator, loaded once per session."""
    from ragkit.generation.hf import TransformersGenerator

    return TransformersGenerator("SmolLM2-135M-Instruct")
