"""Judges: how likely a claim (an answer sentence) is supported by a context (retrieved or cited text).

No NLI or hallucination classifier ships on PyPI, so the default judge is built from what ragkit has:
the bundled MiniLM embedder (claim-to-sentence similarity) and the lexical support of ragkit's citation
check (content-word, number and name coverage), combined by a logistic model whose weights and threshold
were calibrated on labelled HaluEval-QA pairs (`ragkit eval judge-accuracy --calibrate`); a claim that copies
a number or name from another role in the context is capped whatever the model says (ragkit/roles.py). A
cross-encoder or NLI judge takes any local model path; an LLM judge asks a configured generator. Every judge's
accuracy is measured on held-out pairs (`judge_accuracy`) of two parts: HaluEval-QA, and the copied-number
pairs built from the dev set (copied_pairs.py: the right answer's number or name swapped for a neighbour's),
see docs/benchmarks.md "Judges".
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from ragkit.citations import support as lexical_support
from ragkit.errors import ConfigError, ModelError
from ragkit.evals.copied_pairs import copied_number_pairs
from ragkit.evals.judge_data import LabelledPair, as_claim, halueval_judge_pairs, judge_accuracy
from ragkit.evals.llm_judge import LLMJudge
from ragkit.evals.metrics import binary_scores
from ragkit.protocols import Judge
from ragkit.roles import role_support
from ragkit.textutil import NUMBER, content_words, context_sentences, numbers_held

if TYPE_CHECKING:
    from ragkit.protocols import Embedder, Generator

__all__ = [  # the labelled-pair helpers live in judge_data.py and the protocol in protocols.py; old imports work
    "DEFAULT_BIAS",
    "DEFAULT_THRESHOLD",
    "DEFAULT_WEIGHTS",
    "FEATURES",
    "JUDGES",
    "PARTS",
    "NUMBER_CAP",
    "ROLE_MIN",
    "CrossEncoderJudge",
    "EmbeddingLexicalJudge",
    "Identifies",
    "Judge",
    "LabelledPair",
    "LexicalJudge",
    "LLMJudge",
    "as_claim",
    "best_threshold",
    "context_sentences",
    "fit_logistic",
    "halueval_judge_pairs",
    "judge_accuracy",
    "judge_accuracy_parts",
    "judge_identity",
    "judge_pairs",
    "make_judge",
    "missing_words",
    "name_coverage",
    "trained_judge_dir",
    "verdicts",
]


@runtime_checkable
class Identifies(Protocol):
    """A judge with more to record than its name and threshold (weights, a model's path)."""

    def identity(self) -> dict[str, Any]:
        """name, threshold and whatever else tells two versions of this judge apart (JSON-ready)."""
        ...


def judge_identity(judge: Judge) -> dict[str, Any]:
    """What a run's config.json records of its judge: `identity()` where the judge has one, else its name and
    threshold."""
    if isinstance(judge, Identifies):
        return judge.identity()
    return {"name": judge.name, "threshold": judge.threshold}


def verdicts(
    judge: Judge, claims: Sequence[str], contexts: Sequence[str], questions: Sequence[str] | None = None
) -> list[tuple[float, bool]]:
    """(probability, supported) for each pair (questions: what each claim answers, see Judge.support)."""
    if not claims:
        return []
    return [(p, p >= judge.threshold) for p in judge.support(claims, contexts, questions)]


# --- what the judges are measured on ---------------------------------------------------------------------

PARTS = ("halueval", "copied-number")


def judge_pairs(part: str, split: str = "heldout") -> list[LabelledPair]:
    """Labelled pairs of one part: "halueval" (HaluEval-QA, judge_data.py) or "copied-number" (copied_pairs.py);
    split "calibration" (HaluEval's calibration split, the dev set's dev split) or "heldout"."""
    if split not in ("calibration", "heldout"):
        raise ConfigError("split must be 'calibration' or 'heldout'")
    if part == "halueval":
        return halueval_judge_pairs(split)
    if part == "copied-number":
        return copied_number_pairs("dev" if split == "calibration" else "heldout")
    raise ConfigError(f"unknown part {part!r}; use one of: {', '.join(PARTS)}")


def judge_accuracy_parts(
    judge: Judge, parts: Sequence[str] = PARTS, *, split: str = "heldout", limit: int | None = None
) -> dict[str, dict[str, float]]:
    """judge_accuracy on each part's pairs (the first `limit` of each), reported apart: a judge can score well on
    HaluEval's hallucinated answers and still call every copied neighbour supported."""
    return {part: judge_accuracy(judge, judge_pairs(part, split)[:limit]) for part in parts}


# --- the default judge: embeddings + lexical coverage -------------------------------------------------

_NAME = re.compile(r"(?<!^)(?<![.!?]\s)\b[A-Z][\w'-]*")


def name_coverage(claim: str, context: str) -> float:
    """Share of the claim's names (capitalised words not starting a sentence) and numbers found in the
    context, case-insensitive; 1.0 when the claim has none."""
    names = {m.group().lower() for m in _NAME.finditer(claim)} | set(NUMBER.findall(claim))
    if not names:
        return 1.0
    ctx = context.lower()
    return sum(n in ctx for n in names) / len(names)


def missing_words(claim: str, context: str) -> float:
    """Content words of the claim absent from the context, as min(count, 4) / 4: a fact added from
    nowhere shows up as new words whatever the claim's length."""
    return min(len(content_words(claim) - content_words(context)), 4) / 4


NUMBER_CAP = 0.1  # support of a claim carrying a number absent from its context


def _foreign_number(claim: str, context: str, question: str = "") -> bool:
    """True when the claim has a number neither the context nor its question has (as written, or spelled out
    below 100: 180 and 180.0 differ). A number the claim repeats from its question is the question's premise,
    not the claim's: the role check skips it for the same reason."""
    return not numbers_held(claim, f"{context}\n{question}")


# A claim whose number or name stands in the context in another role ("keys rotate every 30 days" where 30 is
# the sessions' figure, see ragkit/roles.py) is capped like a foreign number. The cut was chosen on the dev
# split of the copied-number pairs and HaluEval's calibration split (bench/judge_roles.py); 0 turns it off.
ROLE_MIN = 0.9


FEATURES = ("lexical", "similarity", "names", "missing")

# Fitted by `ragkit eval judge-accuracy --calibrate` on the calibration split of the length-matched
# HaluEval-QA pairs (see halueval_judge_pairs); the held-out split measures them (docs/benchmarks.md).
DEFAULT_WEIGHTS = (0.2338, 1.6837, 0.3204, -1.2445)
DEFAULT_BIAS = -0.8087
DEFAULT_THRESHOLD = 0.518


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


@dataclass
class EmbeddingLexicalJudge:
    """The default offline judge: logistic model over lexical support, claim-to-sentence cosine similarity,
    name/number coverage and missing words. Needs only the bundled MiniLM embedder. Support is capped at
    NUMBER_CAP for a number the context lacks and for a number or name it holds in another role (role score
    below `role_min`, ragkit/roles.py; 0 turns that off)."""

    embedder: Embedder
    weights: tuple[float, ...] = DEFAULT_WEIGHTS
    bias: float = DEFAULT_BIAS
    threshold: float = DEFAULT_THRESHOLD
    name: str = "minilm-lexical"
    role_min: float = ROLE_MIN

    def features(self, claims: Sequence[str], contexts: Sequence[str]) -> np.ndarray:
        """(n,) pairs -> (n, 4) features in FEATURES order, each in [0, 1]."""
        sents = [context_sentences(c) or [c] for c in contexts]
        uniq = list(dict.fromkeys([*claims, *(s for ss in sents for s in ss)]))
        vecs = self.embedder.embed(uniq)  # (u, dim), unit norm
        row = {t: i for i, t in enumerate(uniq)}
        out = np.zeros((len(claims), len(FEATURES)), dtype=np.float64)
        for i, (claim, ctx) in enumerate(zip(claims, contexts, strict=True)):
            sims = vecs[[row[s] for s in sents[i]]] @ vecs[row[claim]]
            out[i] = (
                lexical_support(claim, ctx),
                max(0.0, float(sims.max())),
                name_coverage(claim, ctx),
                missing_words(claim, ctx),
            )
        return out

    def identity(self) -> dict[str, Any]:
        """What a run records of this judge: its name, threshold and calibrated weights."""
        return {"name": self.name, "threshold": self.threshold, "weights": self.weights, "bias": self.bias}

    def support(
        self, claims: Sequence[str], contexts: Sequence[str], questions: Sequence[str] | None = None
    ) -> list[float]:
        """(n,) claims and contexts -> n support probabilities. questions: what each claim answers (the role
        check then skips the names and numbers a claim repeats from its question)."""
        if not claims:
            return []
        asked = list(questions) if questions is not None else [""] * len(claims)
        z = self.features(claims, contexts) @ np.asarray(self.weights) + self.bias
        probs = _sigmoid(z)
        # A figure the context does not contain is unsupported however similar the sentence reads ("2.5 euros"
        # for "180 euros"): HaluEval has too few numbers for the calibration to learn that weight. So is a figure
        # or name the context holds in another role: every feature above reads a copied neighbour as support.
        return [
            min(float(p), NUMBER_CAP) if self._capped(claim, ctx, q) else float(p)
            for p, claim, ctx, q in zip(probs, claims, contexts, asked, strict=True)
        ]

    def _capped(self, claim: str, context: str, question: str) -> bool:
        return _foreign_number(claim, context, question) or role_support(claim, context, question) < self.role_min

    def calibrate(self, claims: Sequence[str], contexts: Sequence[str], unsupported: Sequence[bool]) -> None:
        """Fit the weights (L2-regularised logistic regression) and the threshold that maximises balanced
        accuracy on labelled pairs."""
        x = self.features(claims, contexts)
        y = np.array([0.0 if u else 1.0 for u in unsupported])  # 1 = supported
        w, b = fit_logistic(x, y)
        self.weights, self.bias = tuple(round(float(v), 4) for v in w), round(float(b), 4)
        probs = _sigmoid(x @ w + b)
        self.threshold = best_threshold(probs, [bool(u) for u in unsupported])


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-3, steps: int = 3000, lr: float = 0.5) -> tuple:
    """Logistic regression by full-batch gradient descent: (n, f) features, (n,) 0/1 labels -> (w, b)."""
    w, b = np.zeros(x.shape[1]), 0.0
    for _ in range(steps):
        p = _sigmoid(x @ w + b)
        grad = p - y
        w -= lr * (x.T @ grad / len(y) + l2 * w)
        b -= lr * float(grad.mean())
    return w, b


def best_threshold(probs: Sequence[float], unsupported: Sequence[bool]) -> float:
    """The support threshold with the best balanced accuracy for "unsupported" on these pairs."""
    best, best_t = -1.0, 0.5
    for t in sorted({round(float(p), 3) for p in probs}):
        score = binary_scores(unsupported, [p < t for p in probs])["balanced_accuracy"]
        if score > best:
            best, best_t = score, t
    return best_t


@dataclass
class LexicalJudge:
    """ragkit's own citation check as a judge: share of the claim's content words in the context (a
    number absent from the context gives 0). Supported at 0.5, as in `ragkit ask`."""

    threshold: float = 0.5
    name: str = "lexical"

    def support(
        self, claims: Sequence[str], contexts: Sequence[str], questions: Sequence[str] | None = None
    ) -> list[float]:
        """(n,) claims and contexts -> n lexical support scores. (questions unused)."""
        return [lexical_support(c, x) for c, x in zip(claims, contexts, strict=True)]


# --- cross-encoder / NLI judge ------------------------------------------------------------------------


class CrossEncoderJudge:
    """Any local sentence-transformers CrossEncoder: an NLI model (P(entailment)), a 1-logit grounding
    model (sigmoid), or one trained by `ragkit eval train-judge`. Input pairs are (context, claim)."""

    def __init__(self, path: str | Path, *, device: str = "auto", threshold: float = 0.5, max_length: int = 512):
        from ragkit.assets import auto_device, quiet_transformers, set_offline_env

        set_offline_env()
        quiet_transformers()
        p = Path(path).expanduser()
        if not p.exists():
            raise ModelError(f"cross-encoder judge {path}: no such directory; give a local model folder")
        from sentence_transformers import CrossEncoder

        try:
            self.model = CrossEncoder(str(p), device=auto_device(device), local_files_only=True, max_length=max_length)
        except (OSError, ValueError) as exc:
            raise ModelError(f"cannot load a cross-encoder from {p}: {exc}") from None
        self.name = f"cross-encoder:{p.name}"
        self.threshold = threshold
        labels = {int(k): str(v).lower() for k, v in (self.model.config.id2label or {}).items()}
        self._entail = next((i for i, v in labels.items() if v.startswith("entail")), None)
        if self.model.num_labels > 1 and self._entail is None:
            raise ModelError(f"{p}: {self.model.num_labels} labels but none named 'entailment'; cannot read support")

    def support(
        self, claims: Sequence[str], contexts: Sequence[str], questions: Sequence[str] | None = None
    ) -> list[float]:
        """(n,) claims and contexts -> n probabilities that the context entails the claim. (questions unused)."""
        if not claims:
            return []
        pairs = [(ctx, claim) for claim, ctx in zip(claims, contexts, strict=True)]
        if self.model.num_labels == 1:
            scores = self.model.predict(pairs, show_progress_bar=False)  # sigmoid applied by CrossEncoder
            return [float(s) for s in np.atleast_1d(scores)]
        probs = self.model.predict(pairs, apply_softmax=True, show_progress_bar=False)
        return [float(p[self._entail]) for p in probs]


# --- building judges by name --------------------------------------------------------------------------

JUDGES = ("minilm-lexical", "lexical", "cross-encoder:PATH", "trained", "llm", "llm:MODEL")


def trained_judge_dir() -> Path:
    """Where `ragkit eval train-judge` saves its cross-encoder."""
    from ragkit.assets import cache_dir

    return cache_dir() / "judges" / "minilm-halueval"


def make_judge(
    spec: str = "minilm-lexical", *, embedder: Embedder | None = None, generator: Generator | None = None
) -> Judge:
    """Build a judge from its name: minilm-lexical (default), lexical, cross-encoder:PATH, trained (the model
    `ragkit eval train-judge` saved), llm (the given generator, else the bundled GPT) or llm:MODEL."""
    if spec in ("minilm-lexical", "default"):
        if embedder is None:
            from ragkit.embedding import SentenceTransformerEmbedder

            embedder = SentenceTransformerEmbedder("all-MiniLM-L6-v2")
        return EmbeddingLexicalJudge(embedder)
    if spec == "lexical":
        return LexicalJudge()
    if spec.startswith("cross-encoder:"):
        return CrossEncoderJudge(spec.partition(":")[2])
    if spec == "trained":
        path = trained_judge_dir()
        if not path.exists():
            raise ModelError(f"no trained judge at {path}; run: ragkit eval train-judge")
        return CrossEncoderJudge(path)
    if spec == "llm" or spec.startswith("llm:"):
        model = spec.partition(":")[2]
        if generator is None or model:
            from ragkit.generation.hf import TransformersGenerator

            generator = TransformersGenerator(model or "SmolLM2-135M-Instruct")
        return LLMJudge(generator)
    raise ConfigError(f"unknown judge {spec!r}; use one of: {', '.join(JUDGES)}")
