"""Deterministic fakes and record builders for tests: ragkit's own and those of code that plugs into ragkit.

No model, no torch, no database: a `ScriptedGenerator` replays answers (a `Generator`), a `HashEmbedder` turns
texts into bag-of-hashed-words unit vectors (an `Embedder`), `FixedEmbedder` hands back the query vectors a test
chose, and `make_chunk` / `make_hit` / `unit_vectors` build the records and vectors the engine works on.

    gen = ScriptedGenerator(["Keys are rotated every 90 days [1]."])
    ans = answer_question("How often?", [make_hit(1, "Keys are rotated every 90 days.")], gen)
    assert gen.temperatures == [0.0]
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ragkit.types import Chunk, Generation, Hit, Message

__all__ = [
    "FixedEmbedder",
    "GenerateCall",
    "HashEmbedder",
    "ScriptedGenerator",
    "make_chunk",
    "make_hit",
    "pieces",
    "unit_vectors",
]

_PIECE = re.compile(r"\s*\S+")  # a word with the whitespace before it: the fakes' token
_WORD = re.compile(r"\w+")
SPECIAL_TOKENS = 2  # what HashEmbedder adds to every count, as a BERT-style [CLS] ... [SEP] does


# -- records ------------------------------------------------------------------------------------------------------


def make_chunk(
    text: str,
    *,
    id: int = 1,  # noqa: A002 (the field's name)
    doc_id: int = 1,
    uri: str = "/docs/doc.md",
    ord: int = 0,  # noqa: A002
    start: int = 0,
    token_count: int = 5,
    page: int | None = None,
    section: str | None = None,
    kinds: tuple[str, ...] = (),
) -> Chunk:
    """A stored chunk holding `text` at `start` of its document (end = start + len(text))."""
    return Chunk(
        id=id,
        doc_id=doc_id,
        uri=uri,
        ord=ord,
        text=text,
        start=start,
        end=start + len(text),
        token_count=token_count,
        page=page,
        section=section,
        kinds=kinds,
    )


def make_hit(
    rank: int,
    text: str,
    uri: str = "/docs/doc.md",
    *,
    score: float = 0.5,
    dense: float | None = None,
    keyword: float | None = None,
    id: int | None = None,  # noqa: A002 (the chunk's field)
    ord: int | None = None,  # noqa: A002
    **chunk: Any,
) -> Hit:
    """A hit at 1-based `rank` whose chunk holds `text`; the chunk id and ord default to the rank.

    Other keywords (doc_id, start, page, section, kinds, token_count) go to `make_chunk`.
    """
    c = make_chunk(text, id=rank if id is None else id, ord=rank if ord is None else ord, uri=uri, **chunk)
    return Hit(c, score, rank, dense=dense, keyword=keyword)


def unit_vectors(n: int, dim: int, seed: int) -> np.ndarray:
    """(n, dim) float32 rows drawn from a seeded normal distribution, each of unit L2 norm."""
    x = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


# -- generation ---------------------------------------------------------------------------------------------------


def pieces(text: str) -> list[str]:
    """`text` cut into the fakes' tokens: each word with the whitespace before it; trailing whitespace joins the
    last piece, so "".join(pieces(text)) == text for any text that holds a word."""
    out = _PIECE.findall(text)
    if out:
        out[-1] += text[len("".join(out)) :]
    return out


@dataclass(frozen=True)
class GenerateCall:
    """One `ScriptedGenerator.generate` call as it arrived."""

    messages: list[Message]
    max_new_tokens: int
    temperature: float
    schema: dict[str, Any] | None

    @property
    def prompt(self) -> str:
        """Every message's content, joined by newlines."""
        return "\n".join(m["content"] for m in self.messages)


class ScriptedGenerator:
    """A `Generator` that replays scripted replies: the orchestration around the model is under test, not the model.

    replies: texts returned in call order (running out is an error), or a function of the prompt (every message's
    content joined by newlines) that returns the reply. A token is a whitespace-separated word (see `pieces`):
    - count_prompt_tokens and Generation.prompt_tokens: words in all messages' contents;
    - generate streams the reply word by word to on_text; stops after max_new_tokens words (finish="length") or as
      soon as stop(text so far) is True (finish="rule", the word that fired it included); else finish="stop".
      The streamed pieces always join to the returned text. schema is recorded, not enforced: script valid JSON.
    - logprob: the natural log-probability of each piece; given, Generation.tokens reports (piece, logprob) for
      the pieces written, as the transformers backend does (without it, none, like llama.cpp and HTTP).
    Every call is kept in `calls`; `temperatures` and `prompts` list them by call.
    """

    def __init__(
        self,
        replies: Sequence[str] | Callable[[str], str],
        *,
        name: str = "scripted",
        context_window: int = 4096,
        seconds: float = 0.01,  # Generation.seconds of every call, so timings are not zero
        logprob: Callable[[str], float] | None = None,
    ) -> None:
        self.logprob = logprob
        self.replies = replies if callable(replies) else list(replies)
        self.name = name
        self.context_window = context_window
        self.seconds = seconds
        self.calls: list[GenerateCall] = []

    @property
    def temperatures(self) -> list[float]:
        return [c.temperature for c in self.calls]

    @property
    def prompts(self) -> list[str]:
        return [c.prompt for c in self.calls]

    def count_prompt_tokens(self, messages: list[Message]) -> int:
        return sum(len(m["content"].split()) for m in messages)

    def generate(
        self,
        messages: list[Message],
        max_new_tokens: int,
        temperature: float = 0.0,
        stop: Callable[[str], bool] | None = None,
        on_text: Callable[[str], None] | None = None,
        schema: dict[str, Any] | None = None,
    ) -> Generation:
        call = GenerateCall(list(messages), max_new_tokens, temperature, schema)
        self.calls.append(call)
        if callable(self.replies):
            reply = self.replies(call.prompt)
        elif len(self.calls) <= len(self.replies):
            reply = self.replies[len(self.calls) - 1]
        else:
            raise AssertionError(f"ScriptedGenerator: call {len(self.calls)}, but {len(self.replies)} replies scripted")
        words = pieces(reply)
        text, finish = "", "stop"
        for i, piece in enumerate(words):
            if i == max_new_tokens:
                finish = "length"
                break
            text += piece
            if on_text is not None:
                on_text(piece)
            if stop is not None and stop(text):
                finish = "rule"
                break
        written = pieces(text)
        tokens = tuple((p, self.logprob(p)) for p in written) if self.logprob else ()
        return Generation(text, self.count_prompt_tokens(messages), len(written), self.seconds, finish, tokens)


# -- embedding ----------------------------------------------------------------------------------------------------


class HashEmbedder:
    """An `Embedder` with no model: each lower-cased word (\\w+) adds +-1 at a hashed position; rows are unit norm.

    Deterministic across processes and machines (blake2b, not Python's hash), so texts that share words are
    similar and the ranking is predictable. A text with no word maps to the first basis vector.
    Tokens for counting are whitespace-separated words; count_tokens adds SPECIAL_TOKENS (2), as the chunker
    expects of a BERT-style model. Picklable; counter() returns the embedder itself.
    """

    def __init__(self, dim: int = 64, *, max_tokens: int = 256, name: str | None = None) -> None:
        self.dim = dim
        self.max_tokens = max_tokens
        self.name = name or f"hash:{dim}"
        self.calls: list[list[str]] = []  # the texts of every embed call

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """(n,) texts -> (n, dim) float32, unit L2 norm."""
        self.calls.append(list(texts))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in zip(out, texts, strict=True):
            for word in _WORD.findall(text.lower()):
                h = int.from_bytes(hashlib.blake2b(word.encode("utf-8"), digest_size=8).digest(), "little")
                row[h % self.dim] += 1.0 if h >> 63 else -1.0
            norm = float(np.linalg.norm(row))
            if norm == 0.0:
                row[0] = 1.0
            else:
                row /= norm
        return out

    def count_tokens(self, text: str) -> int:
        return len(text.split()) + SPECIAL_TOKENS

    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        return [m.span() for m in re.finditer(r"\S+", text)]

    def counter(self) -> HashEmbedder:
        return self


class FixedEmbedder(HashEmbedder):
    """A `HashEmbedder` that returns `vectors` instead, while they are set: a test picks the query vectors.

    Every embed call must then ask for exactly len(vectors) texts; set vectors = None to hash again.
    """

    def __init__(self, dim: int = 64, vectors: np.ndarray | None = None, **kwargs: Any) -> None:
        super().__init__(dim, **kwargs)
        self.vectors = vectors

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if self.vectors is None:
            return super().embed(texts)
        self.calls.append(list(texts))
        if len(texts) != len(self.vectors):
            raise AssertionError(f"FixedEmbedder: {len(texts)} texts, {len(self.vectors)} vectors set")
        return np.asarray(self.vectors, dtype=np.float32)
