"""An LLM judge: a local generator asked whether the context states the claim.

With the transformers backend the support is the model's P(yes) from one forward pass, asked as `ask` asks a
model to read an answer (ragkit.verification): with the claim's question when it has one, and the same system
prompt. A backend that cannot read its own probabilities (HTTP, llama.cpp) replies in words instead: "yes" ->
1.0, "no" -> 0.0, anything else 0.5. The threshold is 0.5 either way ("no" more likely than "yes"), not fitted
on any labelled set, so the judge-accuracy figures of an LLM judge are held out for it.
"""

from __future__ import annotations

from collections.abc import Sequence

from ragkit.protocols import Generator, YesNoScorer
from ragkit.types import Message
from ragkit.verification import SYSTEM, verification_messages

_REPLY_PROMPT = (
    "Context:\n{context}\n\nClaim: {claim}\n\n"
    "Is the claim fully supported by the context? Reply with one word: yes or no."
)
_ASK_CLAIM = "Do the sources state this claim? Reply yes or no."


def claim_messages(claim: str, context: str, question: str = "") -> list[Message]:
    """The chat that asks whether `context` (one source) states `claim`; a claim that answers `question` is
    asked as `ask` reads an answer, a "Q? A." claim (no question) on its own."""
    if question:
        return verification_messages(question, claim, [context], source_chars=len(context))
    user = f"Sources:\n[1] {context}\n\nClaim: {claim}\n\n{_ASK_CLAIM}"
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


class LLMJudge:
    """Asks a generator whether the context supports the claim: its P(yes) where the backend gives one, else
    its one-word reply (yes 1.0, no 0.0, else 0.5)."""

    def __init__(self, generator: Generator, *, max_context_chars: int = 4000) -> None:
        self.generator = generator
        self.name = f"llm:{generator.name}"
        self.threshold = 0.5
        self.max_context_chars = max_context_chars

    def support(
        self, claims: Sequence[str], contexts: Sequence[str], questions: Sequence[str] | None = None
    ) -> list[float]:
        """(n,) claims, contexts and (optional) questions -> n support scores in 0..1."""
        asked = list(questions) if questions is not None else [""] * len(claims)
        out: list[float] = []
        for claim, ctx, question in zip(claims, contexts, asked, strict=True):
            ctx = ctx[: self.max_context_chars]
            if isinstance(self.generator, YesNoScorer):
                out.append(float(self.generator.yes_probability(claim_messages(claim, ctx, question or ""))))
                continue
            prompt = _REPLY_PROMPT.format(context=ctx, claim=claim)
            reply = self.generator.generate([{"role": "user", "content": prompt}], 3).text.strip().lower()
            out.append(1.0 if reply.startswith("yes") else 0.0 if reply.startswith("no") else 0.5)
        return out
