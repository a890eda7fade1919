"""SFT examples built as `ask` builds prompts: the same retrieval, template and packing, with the answer sentence
cited as the target (a positive) or, with every chunk holding the answer left out, the abstention phrase (a
negative). tokenize_example masks the prompt so the loss covers the answer tokens only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from ragkit.citations import SUPPORT_THRESHOLD
from ragkit.finetune.questions import SENTENCE_ENDS, QAPair, folded
from ragkit.types import Chunk, Hit

if TYPE_CHECKING:
    from ragkit.answering import AnswerOptions
    from ragkit.api import KnowledgeBase
    from ragkit.protocols import TrainableGenerator

# chunks searched for others quoting an answer (all of them leave a negative's sources): deeper than top_k
SUPPORT_SEARCH_K = 20


@dataclass(frozen=True, slots=True)
class SftExample:
    """One supervised example: the chat `ask` would send and the target reply ("answer" or "abstain")."""

    messages: tuple[dict[str, str], ...]
    target: str
    kind: str
    question: str
    origin: str
    source_ids: tuple[int, ...]  # chunk ids of the numbered sources, in order (negative ids: user passages)
    support_ids: tuple[int, ...] = ()  # chunks known to hold the answer (left out of a negative's sources)


def holds(text: str, answer: str) -> bool:
    """True when a chunk's text contains the answer (case, punctuation and spacing folded)."""
    a = folded(answer)
    return bool(a) and a in folded(text)


def cite(answer: str, n: int) -> str:
    """'Keys are rotated every 90 days.' -> 'Keys are rotated every 90 days [1].' (each sentence cited)."""
    from ragkit.textutil import split_sentences

    parts = []
    for s in split_sentences(answer):
        end = s[-1] if s.endswith(SENTENCE_ENDS) else "."
        parts.append(f"{s.rstrip('.!?').rstrip()} [{n}]{end}")
    return " ".join(parts)


def _user_hit(text: str, i: int, where: str) -> Hit:
    chunk = Chunk(id=-1 - i, doc_id=-1, uri=where, ord=0, text=text, start=0, end=len(text), token_count=0)
    return Hit(chunk=chunk, score=1.0, rank=1)


def _first_source(hits: Sequence[Hit], match: Callable[[Hit], bool]) -> int | None:
    """The source number (1-based) of the first hit that matches, or None."""
    for n, h in enumerate(hits, start=1):
        if match(h):
            return n
    return None


def retrieve_without(kb: KnowledgeBase, question: str, exclude: set[int], k: int | None = None) -> list[Hit]:
    """`ask`'s retrieval for the question with the given chunk ids left out (the corpus without them)."""
    k = k or kb.config.retrieval.top_k
    hits = kb.search(question, k + len(exclude))
    kept = [h for h in hits if h.chunk.id not in exclude][:k]
    return [replace(h, rank=i) for i, h in enumerate(kept, start=1)]


# (pair, contexts, index) -> the passage a user record's refusal example gets in place of its own, or None for
# no refusal example. contexts: the passages of the training records that have one, in order; index: the
# position of this record's own passage among them.
RefusalPassage = Callable[[QAPair, Sequence[str], int], str | None]


def refusal_passage(pair: QAPair, contexts: Sequence[str], index: int) -> str | None:
    """Another record's passage, far along the list, so it is about something else. (bench/finetune_hardneg.py
    passes the nearest one instead.)"""
    return contexts[(index + len(contexts) // 2) % len(contexts)]


def answer_removed(pair: QAPair, contexts: Sequence[str], index: int) -> str | None:
    """The record's own passage with the sentences that state its answer cut out: on topic, answer missing, which
    no relevance floor can tell from an answerable question. Another record's passage (refusal_passage) where
    no sentence states the answer verbatim."""
    from ragkit.evals.datasets import without_answer

    cut = without_answer(pair.context, pair.answer) if pair.context else None
    return cut or refusal_passage(pair, contexts, index)


class ExampleBuilder:
    """Turns QA pairs into SFT examples with the KB's own retrieval, template and packing.

    refusal_passage: how a user record's refusal example picks the passage that replaces its own.
    """

    def __init__(
        self,
        kb: KnowledgeBase,
        options: AnswerOptions | None = None,
        *,
        refusal_passage: RefusalPassage = answer_removed,
    ) -> None:
        from ragkit.answering import options_from_config

        self.kb = kb
        self.options = options or options_from_config(kb.config.generator)
        self.k = kb.config.retrieval.top_k
        self.refusal_passage = refusal_passage
        self.placed = 0  # positives whose supporting chunk retrieval missed (put in the last source slot)

    def _example(
        self,
        pair: QAPair,
        hits: Sequence[Hit],
        kind: str,
        support: tuple[int, ...],
        source_id: int | None = None,
    ) -> SftExample | None:
        """source_id: the hit that is the pair's own passage (its chunk, or a user record's context), if any."""
        from ragkit.answering import packed_prompt

        packed = packed_prompt(pair.question, hits, self.kb.generator, self.options)
        if kind == "answer":
            n = _first_source(packed.hits, lambda h: holds(h.chunk.text, pair.answer))
            if n is None and source_id is not None:
                # An answer in other words than its passage (a user's own sentence, a model-written answer the
                # judge accepted) cites that passage, if packing kept it whole; dropping these left a user's QA
                # file with free-form answers with refusal examples only.
                whole = next((h.chunk.text for h in hits if h.chunk.id == source_id), None)
                n = _first_source(packed.hits, lambda h: (h.chunk.id, h.chunk.text) == (source_id, whole))
                if n is None:
                    return None  # packing cut or dropped the passage
            if n is not None:
                target = cite(pair.answer, n)
            else:
                # a user answer the sources do not quote: cite the source that supports it best, if any does
                from ragkit.citations import support as lexical

                scores = [lexical(pair.answer, h.chunk.text) for h in packed.hits]
                best = max(range(len(scores)), key=scores.__getitem__) if scores else -1
                supported = best >= 0 and scores[best] >= SUPPORT_THRESHOLD
                target = cite(pair.answer, best + 1) if supported else pair.answer
        else:
            if any(holds(h.chunk.text, pair.answer) for h in packed.hits):
                return None
            target = self.options.template.abstain
        return SftExample(
            messages=tuple(packed.messages),
            target=target,
            kind=kind,
            question=pair.question,
            origin=pair.origin,
            source_ids=tuple(h.chunk.id for h in packed.hits),
            support_ids=support,
        )

    def positive(self, pair: QAPair, index: int = 0) -> SftExample | None:
        """The question with `ask`'s sources and the cited answer; a user passage joins the KB's top hits."""
        if pair.context is not None:
            hits = self.among_hits(pair.question, pair.context, index)
            return self._example(pair, hits, "answer", (), source_id=-1 - index)
        hits = self.kb.search(pair.question, self.k)
        found = any(holds(h.chunk.text, pair.answer) for h in hits) or any(h.chunk.id == pair.chunk_id for h in hits)
        if pair.chunk_id is not None and not found:
            chunk = self.kb.chunks([pair.chunk_id]).get(pair.chunk_id)
            if chunk is None:
                return None
            self.placed += 1
            hits = [*hits[: self.k - 1], Hit(chunk=chunk, score=0.0, rank=min(len(hits) + 1, self.k))]
        support = tuple(h.chunk.id for h in hits if holds(h.chunk.text, pair.answer) or h.chunk.id == pair.chunk_id)
        return self._example(pair, hits, "answer", support, source_id=pair.chunk_id)

    def negative(self, pair: QAPair, other_context: str | None = None, index: int = 0) -> SftExample | None:
        """The same question with every chunk holding the answer left out; the target is the abstention phrase.

        A user record with its own passage gets other_context instead (by default that passage without the
        sentences stating the answer), among the question's hits that do not hold the answer.
        """
        if pair.context is not None:
            if not other_context:
                return None
            hits = self.among_hits(pair.question, other_context, index, without=pair.answer)
            return self._example(pair, hits, "abstain", ())
        support = self.supporting_ids(pair)
        if not support:
            return None  # a user answer no chunk quotes: nothing known to remove
        return self._example(pair, retrieve_without(self.kb, pair.question, support, self.k), "abstain", tuple(support))

    def among_hits(self, question: str, passage: str, index: int, *, without: str | None = None) -> list[Hit]:
        """A user passage in a slot of `ask`'s retrieval for the question, as the model will meet real sources.

        With the passage as the only source the model never learns to find the answer among others, and at
        `ask` time (top_k sources) it answered from whichever source it liked (seen on HaluEval: run F vs H in
        docs/benchmarks.md). The slot rotates with the record so no position gives the answer away. without: an
        answer no other source may hold (a refusal example's sources are the corpus without it, as for a KB pair).
        """
        body = " ".join(passage.split())
        hits = self.kb.search(question, self.k + 1 + (SUPPORT_SEARCH_K if without else 0))
        others = [h for h in hits if " ".join(h.chunk.text.split()) not in body]
        if without:
            others = [h for h in others if not holds(h.chunk.text, without)]
        others = others[: self.k - 1]
        slot = index % (len(others) + 1)
        hits = [*others[:slot], _user_hit(passage, index, f"training/record-{index}.txt"), *others[slot:]]
        return [replace(h, rank=i) for i, h in enumerate(hits, start=1)]

    def supporting_ids(self, pair: QAPair) -> set[int]:
        """The pair's chunk and every chunk among the question's top hits that holds the answer."""
        hits = self.kb.search(pair.question, max(SUPPORT_SEARCH_K, self.k))
        found = {h.chunk.id for h in hits if holds(h.chunk.text, pair.answer)}
        return found | ({pair.chunk_id} if pair.chunk_id is not None else set())


# --- tokenising with the loss on the answer only ------------------------------------------------------


def tokenize_example(generator: TrainableGenerator, example: SftExample) -> tuple[list[int], list[int]]:
    """(input_ids, labels): the prompt exactly as `generate` encodes it, then the target and the end of the
    assistant turn. labels are -100 on the prompt, so the loss covers the answer tokens only."""
    messages = list(example.messages)
    prompt = generator.prompt_ids(messages)
    tok = generator.tokenizer
    if tok.chat_template:
        before = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        full = tok.apply_chat_template([*messages, {"role": "assistant", "content": example.target}], tokenize=False)
        # the chat template's own end of turn ("<|im_end|>\n") follows the answer, so the model learns to stop
        suffix = full[len(before) :] if full.startswith(before) else example.target + (tok.eos_token or "")
    else:
        suffix = " " + example.target + (tok.eos_token or "")
    answer = tok(suffix, add_special_tokens=False)["input_ids"]
    return prompt + answer, [-100] * len(prompt) + list(answer)
