"""Moved: the answering pipeline is `ragkit.answering` (generation/ holds the backends only). These names stay
importable from here for code written against ragkit 0.1."""

from ragkit.answering import (
    AnswerOptions,
    answer_question,
    options_from_config,
    packed_prompt,
    relevance_gate,
    relevance_of,
)

__all__ = ["AnswerOptions", "answer_question", "options_from_config", "packed_prompt", "relevance_gate", "relevance_of"]
