"""A second opinion: when the checks after generation withhold one model's draft, a second model answers from
the same sources, under the same checks and its own floors (generator.fallback).

Why a cascade of two local models and not the larger one alone: on the abstention dev set the small model
answers most questions right and fast, the larger one rescues most of the questions whose small-model draft was
withheld, and it is asked only for those (docs/benchmarks.md, "Tenth round").
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from ragkit.answering import AnswerOptions, answer_question
from ragkit.protocols import Generator
from ragkit.types import Answer, Flag, Hit
from ragkit.verification import read
from ragkit.withholding import WITHHOLDING_FLAGS


def wants_second_opinion(first: Answer, options: AnswerOptions) -> bool:
    """True when the checks after generation withheld `first`'s draft (not a refusal before generation, not
    the model's own "I don't know", not a JSON Schema answer)."""
    return bool(first.draft) and options.schema is None


def _why(answer: Answer) -> str:
    """The first withholding flag's detail, in parentheses ("" without one)."""
    flag = next((f for f in answer.flags if f.kind in WITHHOLDING_FLAGS), None)
    return "" if flag is None else f" ({flag.detail})"


def second_opinion(first: Answer, second: Answer) -> Answer:
    """The answer to give after `second` (the fallback model's, from the same hits) followed `first`, whose
    draft was withheld: `second` when it was delivered, else `first` as it was. Either way it adds a "fallback"
    flag saying what happened (text = the draft not delivered), and both generations' tokens and seconds."""
    timings = {k: round(first.timings.get(k, 0.0) + v, 4) for k, v in second.timings.items() if k != "retrieve"}
    cost = {
        "prompt_tokens": first.prompt_tokens + second.prompt_tokens,
        "completion_tokens": first.completion_tokens + second.completion_tokens,
        "timings": {**first.timings, **timings},
    }
    if second.abstained:
        # the first model's draft stays the one reported (Answer.draft); the second one's is in the flag
        detail = f"{second.generator or 'the fallback model'} was asked too, and its answer was withheld{_why(second)}"
        flag = Flag("fallback", second.draft or second.raw_text, detail=detail)
        return replace(first, flags=(*first.flags, flag), **cost)
    detail = f"{first.generator}'s answer was withheld{_why(first)}; {second.generator} answered instead"
    return replace(second, flags=(Flag("fallback", first.draft, detail=detail), *second.flags), **cost)


def with_second_opinion(
    first: Answer,
    hits: Sequence[Hit],
    options: AnswerOptions,
    fallback: Callable[[], Generator | None],
    embed: Callable[[list[str]], Any] | None,
) -> Answer:
    """`first` (answer_question's answer from `hits`), or, when its draft was withheld and `fallback()` gives a
    model (loaded only then), second_opinion of the two. options: the fallback's (build.fallback_options). The
    fallback model reads a delivered answer (`read`): the first model's with options.min_verified > 0, before
    it is delivered; its own with options.fallback_min_verified > 0."""
    reads = not first.abstained and options.min_verified > 0 and options.schema is None
    if not reads and not wants_second_opinion(first, options):
        return first
    gen = fallback()
    if gen is None or gen.name == first.generator:
        return first
    if reads:
        first = read(first, gen, options.min_verified, "min_verified", options.template.abstain)
        if not wants_second_opinion(first, options):
            return first
    second = answer_question(first.question, hits, gen, options, relevance=first.relevance, embed=embed)
    if not second.abstained and options.fallback_min_verified > 0 and options.schema is None:
        # the larger model says "no" to a fifth of its own wrong answers and to few right ones (ragkit.config)
        # the same text, question and sources read the same: a draft the first reading scored is not read twice
        known = first.verified if first.draft and second.text == first.draft else None
        floor, abstain = options.fallback_min_verified, options.template.abstain
        second = read(second, gen, floor, "fallback_min_verified", abstain, known=known)
    return second_opinion(first, second)
