"""EmbedAhead: groups embedded in order in a thread of their own, each distinct text once, sized by time."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from ragkit import ingest_embed
from ragkit.ingest_embed import MAX_GROUP, MIN_GROUP, EmbedAhead, Group
from ragkit.testing import HashEmbedder


class Clocked(HashEmbedder):
    """Embeds at `rate` texts per second of a fake clock (no real time passes), recording each call's texts."""

    def __init__(self, rate: float, monkeypatch: pytest.MonkeyPatch) -> None:
        super().__init__(16)
        self.rate, self.now = rate, 0.0
        monkeypatch.setattr(ingest_embed.time, "perf_counter", lambda: self.now)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.now += len(texts) / self.rate
        return super().embed(texts)


def group(texts: list[str], cached: dict[str, np.ndarray] | None = None) -> Group:
    return Group([], texts, [f"h:{t}" for t in texts], cached or {})


def test_groups_are_sized_to_about_a_second_of_the_measured_speed(monkeypatch: pytest.MonkeyPatch) -> None:
    for rate, expected in [(10.0, MIN_GROUP), (500.0, 500), (1e6, MAX_GROUP)]:
        emb = Clocked(rate, monkeypatch)
        ahead = EmbedAhead(emb.embed, 16)
        assert ahead.chunks == MIN_GROUP  # before anything is measured
        g = group([f"t{i}" for i in range(40)])
        ahead.send(g)
        g.vectors.result()
        ahead.close([])
        assert ahead.chunks == expected


def test_a_fixed_size_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    ahead = EmbedAhead(Clocked(1e6, monkeypatch).embed, 16, fixed=7)
    g = group([f"t{i}" for i in range(40)])
    ahead.send(g)
    g.vectors.result()
    ahead.close([])
    assert ahead.chunks == 7


def test_each_distinct_text_is_embedded_once_across_the_previous_group_and_sql() -> None:
    emb = HashEmbedder(16)
    ahead = EmbedAhead(emb.embed, 16)
    stored = HashEmbedder(16).embed(["s"])[0]
    first, second = group(["a", "b", "a"]), group(["b", "c", "s", "c"], cached={"h:s": stored})
    ahead.send(first)
    ahead.send(second)
    ahead.send(second)  # queued twice (a Ctrl-C between the put and the flag): embedded once
    v1, v2 = first.vectors.result(), second.vectors.result()
    ahead.close([])
    assert emb.calls == [["a", "b"], ["c"]]
    assert v1.shape == (3, 16) and v2.shape == (4, 16)
    np.testing.assert_array_equal(v2[0], v1[1])  # "b" from the previous group, not embedded again
    np.testing.assert_array_equal(v2[2], stored)
    np.testing.assert_array_equal(v2[1], v2[3])


def test_an_embedding_error_reaches_the_caller_and_close_drops_what_did_not_start() -> None:
    def broken(texts: Sequence[str]) -> np.ndarray:
        raise RuntimeError("CUDA out of memory")

    ahead = EmbedAhead(broken, 16)
    g = group(["a"])
    ahead.send(g)
    with pytest.raises(RuntimeError, match="out of memory"):
        g.vectors.result()
    later = group(["b"])
    ahead.close([later])  # never queued: cancelled, and close does not wait for it
    assert later.vectors.cancelled()
