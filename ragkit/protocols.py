"""The seams: small interfaces every pluggable part implements, and what the workflows need of a KB.

Implementations live beside their libraries (embedding.py, indexes/, generation/); consumers are typed
against these, so a fake (ragkit.testing) or a third-party backend plugs in without subclassing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from ragkit.types import Answer, Generation, Hit, Message

if TYPE_CHECKING:
    from ragkit.config import RagkitConfig


class CountsTokens(Protocol):
    """Counts an embedder's word pieces; what the chunker needs."""

    def count_tokens(self, text: str) -> int:
        """Word pieces the model sees for `text`, special tokens included."""
        ...

    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        """Character span of each word piece of `text` (no special tokens)."""
        ...


class Embedder(CountsTokens, Protocol):
    """Maps texts to L2-normalised vectors; exposes the tokenizer and limit the chunker must respect."""

    name: str
    dim: int
    max_tokens: int  # the model's window in word pieces, special tokens included

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """(n,) texts -> (n, dim) float32, unit L2 norm."""
        ...

    def counter(self) -> CountsTokens:
        """A picklable token counter equal to count_tokens/token_offsets, for parser processes."""
        ...


class VectorIndex(Protocol):
    """Maps int64 ids to float32 vectors and answers k-nearest-neighbour queries.

    Vectors arrive L2-normalised, so scores are cosine similarities (higher is better).
    """

    dim: int
    kind: str  # "flat", "ivf", "hnsw", ...: which speed knobs (nprobe, ef_search) apply

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add vectors. ids: (n,) int64, unique and >= 0; vectors: (n, dim) float32."""
        ...

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Return (scores, ids), both (nq, k). Empty slots have id -1."""
        ...

    def remove(self, ids: np.ndarray) -> int:
        """Remove ids; return how many were present."""
        ...

    def ids(self) -> np.ndarray:
        """(n,) int64: every id in the index."""
        ...

    def __len__(self) -> int: ...

    def save(self, path: Path) -> None: ...


class KeywordIndex(Protocol):
    """Ranks chunks by keyword relevance to a query."""

    def search(self, query: str, k: int, allowed: Any = None) -> list[tuple[int, float]]:
        """Up to k (chunk id, score) pairs, best first; higher score is better.

        allowed: a SQLAlchemy SELECT of permitted chunk ids (a compiled filter), applied inside the query.
        """
        ...

    def check(self) -> bool:
        """Whether the index agrees with the chunks table."""
        ...

    def rebuild(self) -> None:
        """Rebuild the index from the chunks table."""
        ...


class Reranker(Protocol):
    """Scores (query, passage) pairs; higher is more relevant."""

    def score(self, query: str, passages: Sequence[str]) -> np.ndarray:
        """(len(passages),) float32 relevance scores."""
        ...


class Generator(Protocol):
    """A chat model that completes a list of messages."""

    name: str
    context_window: int  # tokens the prompt and the answer share

    def count_prompt_tokens(self, messages: list[Message]) -> int:
        """Tokens of the rendered chat prompt, generation prompt included."""
        ...

    def generate(
        self,
        messages: list[Message],
        max_new_tokens: int,
        temperature: float = 0.0,
        stop: Callable[[str], bool] | None = None,
        on_text: Callable[[str], None] | None = None,
        schema: dict[str, Any] | None = None,
    ) -> Generation:
        """Complete the chat; greedy when temperature is 0.

        Stops at the end of the assistant's turn, after max_new_tokens, or when stop(text so far) is True.
        on_text receives each new piece of text as it is decoded (streaming). schema: a JSON Schema the
        completion must satisfy; the backend constrains decoding to it.
        """
        ...


@runtime_checkable
class TrainableGenerator(Generator, Protocol):
    """A local generator whose weights fine-tuning can reach (the transformers backend)."""

    tokenizer: Any  # a Hugging Face tokenizer
    device: str
    base_model_dir: Path  # a transformers checkpoint folder of the base model (a .gguf is converted once)

    def prompt_ids(self, messages: list[Message]) -> list[int]:
        """The prompt's token ids exactly as `generate` encodes them (generation prompt included)."""
        ...


@runtime_checkable
class YesNoScorer(Protocol):
    """A local generator that reads its own next-token distribution (the transformers backend)."""

    def yes_probability(self, messages: list[Message]) -> float:
        """P(yes) / (P(yes) + P(no)) over the first token of the reply to the chat: one forward pass."""
        ...


class Judge(Protocol):
    """Scores (claim, context) pairs: support probability in [0, 1]; supported when >= threshold."""

    name: str
    threshold: float

    def support(
        self, claims: Sequence[str], contexts: Sequence[str], questions: Sequence[str] | None = None
    ) -> list[float]:
        """(n,) claims and (n,) contexts -> n support probabilities. questions: (n,) what each claim answers,
        when known; a judge may use it (the default judge does not hold a claim to the names and numbers it
        repeats from its question) or ignore it."""
        ...


class EvalTarget(Protocol):
    """What a batch evaluation needs of a knowledge base: `KnowledgeBase` is one, and so is finetune's
    held-out view (the same KB with some chunks hidden or a passage planted)."""

    root: Path
    config: RagkitConfig
    manifest: dict[str, Any]

    @property
    def embedder(self) -> Embedder: ...

    @property
    def generator(self) -> Generator: ...

    def search(self, query: str, k: int | None = None, **options: Any) -> list[Hit]:
        """The k best chunks for the query, best first."""
        ...

    def ask(self, question: str, k: int | None = None, max_new_tokens: int | None = None, **options: Any) -> Answer:
        """Retrieve, generate and check an answer."""
        ...
