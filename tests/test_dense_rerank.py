"""Rule DR: the search's head reordered by fusing its order with its chunks' cosine to the question."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import ragkit
from ragkit.indexes.sentences import rescore_head

DOCS = {
    "squash.md": (
        "# squash\n\nsquash - compress files with a block codec.\n\n"
        "-k, --keep: keep the input files after compressing them.\n\n"
        "--rm: remove the source files once compression succeeded.\n\n"
        "-t, --test: check the integrity of compressed files without writing anything.\n"
    ),
    "pack.md": (
        "# pack\n\npack - bundle files into one archive.\n\n"
        "--remove-files: remove files from the disk after adding them to the archive.\n\n"
        "-x, --extract: extract the files of an archive, compressed or not.\n"
    ),
    "mirror.md": (
        "# mirror\n\nmirror - copy a directory tree.\n\n"
        "--delete: delete destination files the source no longer has.\n\n"
        "--compress: compress file data while copying; files that succeeded are logged.\n"
    ),
}
QUESTION = "How do I delete files once they are in the archive?"


def fused_with_cosine(ids: list[int], cosines: list[float]) -> list[int]:
    """The head's order as rule DR gives it: rule R's fusion of the order with the (n,) cosines' order."""
    return [i for i, _ in rescore_head([(i, 0.0) for i in ids], np.array(cosines, dtype=np.float32), len(ids))]


def test_the_order_is_fused_with_the_cosine_order_and_ties_keep_the_given_order() -> None:
    # fused: a = 1/61 + 1/63 = c, b = 2/62 (smaller); a before c as given
    assert fused_with_cosine([1, 2, 3], [0.1, 0.2, 0.9]) == [1, 3, 2]
    # the best cosine from fifth place overtakes the third and fourth (1/65 + 1/61 > 1/63 + 1/64), not the second
    assert fused_with_cosine([1, 2, 3, 4, 5], [0.5, 0.3, 0.1, 0.1, 0.9]) == [1, 2, 5, 3, 4]
    assert fused_with_cosine([7, 8], [0.0, 0.0]) == [7, 8]


def _kb(tmp_path: Path, **settings: object) -> ragkit.KnowledgeBase:
    folder = tmp_path / "docs"
    if not folder.exists():
        folder.mkdir()
        for name, body in DOCS.items():
            (folder / name).write_text(body, encoding="utf-8")
    kb = ragkit.open(tmp_path / "kb", **{"retrieval.mode": "keyword", "retrieval.rescore": "none", **settings})
    if not kb.stats()["chunks"]:
        kb.ingest([folder])
    return kb


@pytest.mark.usefixtures("hashed")
def test_the_head_is_fused_with_its_stored_vectors_cosine_order(tmp_path: Path) -> None:
    with _kb(tmp_path, **{"retrieval.dense_rerank": False}) as kb:
        head = kb.search(QUESTION, 20)
        ids = [h.chunk.id for h in head]
        got = dict((int(i), v) for part in kb.store.vectors(ids, kb.index.dim) for i, v in zip(*part, strict=True))
        q = kb.embedder.embed([QUESTION])[0]
        expected = fused_with_cosine(ids, [float(got[i] @ q) for i in ids])[:3]
        assert expected != ids[:3]  # the example must move something, or it tests nothing
    with _kb(tmp_path, **{"retrieval.dense_rerank": True}) as kb:
        hits = kb.search(QUESTION, 3)
        assert [h.chunk.id for h in hits] == expected
        assert [h.rank for h in hits] == [1, 2, 3]
        by_id = {h.chunk.id: h.score for h in head}
        assert all(h.score == by_id[h.chunk.id] for h in hits)  # scores stay the retriever's
        # rerank=False asks for the retrievers' order; dense and hybrid modes rank by the vectors already
        assert [h.chunk.id for h in kb.search(QUESTION, 3, rerank=False)] == ids[:3]
        other = {mode: [h.chunk.id for h in kb.search(QUESTION, 3, mode=mode)] for mode in ("dense", "hybrid")}
    with _kb(tmp_path, **{"retrieval.dense_rerank": False}) as kb:
        assert {mode: [h.chunk.id for h in kb.search(QUESTION, 3, mode=mode)] for mode in other} == other


MAN = Path("/usr/share/man/man1")
PAGES = ["lz4.1.gz", "bzip2.1.gz", "gzip.1.gz", "zstd.1.gz", "xz.1.gz"]


@pytest.mark.slow
@pytest.mark.skipif(not all((MAN / p).exists() for p in PAGES), reason="needs the compressors' manual pages")
def test_a_question_in_a_users_words_finds_its_entry_among_five_real_manuals(tmp_path: Path) -> None:
    """The bundled MiniLM, five real manual pages in one KB, three questions of trials 96, 100 and 102: keyword weights
    alone leave the answering entry out of the top 3; fused with the vectors' order it is in."""
    folder = tmp_path / "man"
    folder.mkdir()
    for page in PAGES:
        (folder / page).write_bytes((MAN / page).read_bytes())
    questions = {  # of trials 100, 102 and 96, each with its page and the entry's option
        "In my 50 GB disk image the same big chunks show up again hundreds of megabytes later. Which option helps "
        "zstd notice those far-apart repeats to get a smaller file?": ("zstd.1.gz", "--long"),
        "I don't care how long lz4 takes, I just want the smallest possible output file. Which option picks "
        "the strongest compression setting?": ("lz4.1.gz", "--best"),
        "When I gzip a bunch of files I'd like it to print, for each one, how much smaller it got. Which "
        "flag turns that on?": ("gzip.1.gz", "--verbose"),
    }
    found = {}
    for on in (False, True):
        settings = {"retrieval.mode": "keyword", "retrieval.rescore": "entries", "retrieval.dense_rerank": on}
        with ragkit.open(tmp_path / "kb", **settings) as kb:  # the defaults Qwen2.5-Coder-1.5B's KBs get
            if not kb.stats()["chunks"]:
                kb.ingest([folder])
            for question, (page, gold) in questions.items():
                hits = kb.search(question, 3)
                found[on, gold] = any(h.chunk.source_name == page and gold in h.chunk.text for h in hits)
    assert not any(found[False, gold] for _, gold in questions.values())
    assert all(found[True, gold] for _, gold in questions.values())


def test_dense_rerank_is_on_by_default() -> None:
    from ragkit.config import RetrievalConfig

    assert RetrievalConfig().dense_rerank is True
