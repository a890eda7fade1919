"""`check --compare` (ragkit.compare): two KBs of the same sources are the same; any change is found and named."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import SAMPLE_CORPUS

import ragkit
from ragkit.compare import compare_stores


@pytest.fixture
def two_kbs(tmp_path: Path, hashed: None) -> tuple[Path, Path]:
    roots = tmp_path / "a", tmp_path / "b"
    for root in roots:
        with ragkit.open(root) as kb:
            kb.ingest([SAMPLE_CORPUS])
    return roots


def test_two_builds_of_the_same_sources_are_the_same(two_kbs: tuple[Path, Path]) -> None:
    with ragkit.open(two_kbs[0]) as a, ragkit.open(two_kbs[1]) as b:
        report = compare_stores(a.store, b.store)
    assert report.same, report.differences
    assert report["documents_a"] == report.documents_b == 5 and report.chunks_a == report.chunks_b > 5
    assert report.queries > 0 and report.results_differ == 0 and report.max_vector_delta == 0.0
    assert report.to_json()["same"] is True


def test_a_changed_document_is_found_and_named(two_kbs: tuple[Path, Path], tmp_path: Path) -> None:
    changed = tmp_path / "extra"
    changed.mkdir()
    (changed / "note.md").write_text("# Note\n\nThe cafeteria opens at eight.\n", encoding="utf-8")
    with ragkit.open(two_kbs[1]) as b:
        b.ingest([changed])
        b.delete([str(SAMPLE_CORPUS / "security")])
    with ragkit.open(two_kbs[0]) as a, ragkit.open(two_kbs[1]) as b:
        report = compare_stores(a.store, b.store)
    assert not report.same
    assert report.documents_only_in_b == 1 and report.documents_only_in_a >= 1
    assert report.chunks_only_in_b >= 1 and report.chunks_only_in_a >= 1
    assert any("note.md" in d for d in report.differences)
    assert report.results_differ >= 1  # the queries drawn from a's security chunks now find other chunks


def test_vectors_beyond_the_tolerance_are_counted(two_kbs: tuple[Path, Path]) -> None:
    import numpy as np
    from sqlalchemy import text

    with ragkit.open(two_kbs[1]) as b, b.store.engine.begin() as c:
        blob = c.execute(text("SELECT vector FROM chunks ORDER BY id LIMIT 1")).scalar_one()
        vec = np.frombuffer(blob, dtype="<f4").copy()
        vec[0] += 1e-3
        c.execute(text("UPDATE chunks SET vector = :v WHERE id = (SELECT min(id) FROM chunks)"), {"v": vec.tobytes()})
    with ragkit.open(two_kbs[0]) as a, ragkit.open(two_kbs[1]) as b:
        loose = compare_stores(a.store, b.store, queries=[], tolerance=1e-2)
        strict = compare_stores(a.store, b.store, queries=[])
    assert loose.same and loose.max_vector_delta == pytest.approx(1e-3, rel=1e-2)
    assert not strict.same and strict.vectors_over_tolerance == 1 and strict.chunks_changed == 0


def test_cli_check_compare_says_same_or_lists_what_differs(two_kbs: tuple[Path, Path], tmp_path: Path) -> None:
    import json

    from conftest import run

    same = run("check", "--kb", two_kbs[0], "--compare", two_kbs[1])
    assert same.exit_code == 0, same.output
    assert "same" in same.output and "documents: 5 vs 5" in same.output
    with ragkit.open(two_kbs[1]) as b:
        b.delete([str(SAMPLE_CORPUS / "expenses.pdf")])
    differ = run("check", "--kb", two_kbs[0], "--compare", two_kbs[1], "--json")
    assert differ.exit_code == 1
    data = json.loads(differ.stdout)
    assert data["same"] is False and data["documents_only_in_a"] == 1 and data["kb"].endswith("a")
    assert any("expenses.pdf" in d for d in data["differences"])


def test_cli_ray_on_sqlite_is_refused_before_anything_is_created(tmp_path: Path) -> None:
    from conftest import run

    for args in (["ingest", SAMPLE_CORPUS, "--ray"], ["ingest", SAMPLE_CORPUS, "--ray-address", "auto"]):
        result = run(*args, "--kb", tmp_path / "kb")
        assert result.exit_code == 1, result.output
        assert "--ray needs a PostgreSQL database" in result.output
        assert "SQLite is a file on one machine" in result.output
        assert not (tmp_path / "kb").exists()
