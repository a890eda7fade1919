"""Untrusted text: retrieved documents are data, never instructions.

Before generation, sentences that look like instructions to the assistant are removed from sources
(`neutralise`; ingest marks such chunks with `flag_injections`). After generation, `echoed_instruction`
catches an answer sentence that repeats an order planted in a source. Used by prompts (before), citations
(after) and ingest (flags); imports none of them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

from ragkit.textutil import content_words, split_sentences
from ragkit.types import ChunkSpan

# -- untrusted text ---------------------------------------------------------------------------------

# Each rule names a way a document can try to steer the assistant. They look for text addressed to the model
# (its instructions, its answer, its role), not for imperatives in general: "You must rotate keys every 90
# days" is a fact a handbook states and must survive.
_ADDRESSEE = r"(assistant|AI|chat ?bot|language model|LLM|model|GPT|bot)"
_INJECTION_RULES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern, re.IGNORECASE))
    for name, pattern in (
        (
            "override",
            r"\b(ignore|disregard|forget|override|bypass)\b[^.!?\n]{0,40}"
            r"\b(instructions?|rules?|prompts?|directions?|guidelines|context|sources?)\b|"
            # "forget everything you were told before", "ignore all of the above": no object named
            r"\b(ignore|disregard|forget)\s+(everything|anything|all)\b[^.!?\n]{0,30}"
            r"\b(above|before|earlier|previous(ly)?|prior|so far|told|said)\b",
        ),
        (
            "role",
            # a chat token is <|word|> (<|im_start|>, <|eot_id|>): no spaces inside, so an operator table such as
            # "<<   >>   <<|   |>>" is not one
            r"(^|\n)\s*(system|assistant|user|developer|human|ai)\s*:|<\|[^\s|<>]+\|>|\[/?INST\]|<</?SYS>>|"
            r"#{2,}\s*(instruction|system|response)|\b(you are now|from now on,? you|role-?play as)\b|"
            r"\b(act as|pretend (to be|you are)) (an?|the|my) |"
            # Gemma's turn markers; a change of identity
            rf"<(start|end)_of_turn>|\b(stop|quit) being (an?|the|my) {_ADDRESSEE}\b",
        ),
        (
            "tool",
            r"</?\s*(tool_call|tool_use|function_call|tools?)\s*>|\"(function_call|tool_calls?|tool_use)\"\s*:|"
            r"\b(call|invoke|use)\s+the\s+\w+\s+tool\b",
        ),
        (
            "directive",
            rf"\b(the|this|an?|dear)\s+{_ADDRESSEE}\b[^.!?\n]{{0,30}}\b(must|should|shall|will|needs? to|is to)\b|"
            r"\b(when|if|before)\s+(you\s+)?(answer|respond|repl(y|ies)|summari[sz]e)[^.!?\n]{0,10}\b(you|always)|"
            r"\b(in|to|end|start|begin)\s+(your|every|each)\s+(answer|response|reply)s?\b|"
            r"\b(new|updated|real|actual|hidden|secret)\s+instructions?\b|"
            # text addressed to whatever model reads it, rather than to the document's human readers
            rf"\b(note|message|instructions?|reminder)\s+(for|to)\s+(the\s+|all\s+|any\s+)?{_ADDRESSEE}s?\b|"
            r"\b(whoever|anyone who|any(one|body) (that|who))\s+(summari[sz]es?|process(es)?|parses?)\s+this\b|"
            r"\bwhen(ever)?\s+(you\s+are\s+|you're\s+)?asked\b[^.!?\n,]{0,30},\s*(always\s+)?"
            r"(reply|respond|answer|say|tell)\b|"  # an order right after the clause, not "..., staff reply"
            r"\b(the\s+)?(correct|right|real|only)\s+answer\s+to\s+(any|every|all|each)\b|\bsay only\b",
        ),
        (
            "format",
            r"\b(respond|reply|answer|write|speak|output)\b[^.!?\n]{0,30}\b((only|exclusively|solely)\s+in|in\s+(all\s+)?(caps|capitals|"
            r"upper ?case|json|french|german|spanish|italian|chinese|japanese|russian|pirate|rhymes?|verse|"
            r"emojis?|[a-z]+ language)|as\s+an?\s+(poem|haiku|song|limerick|pirate|json))\b|"
            r"\btranslate\s+(your|the|this|every|each|all)\s+(answers?|responses?|repl(y|ies)|outputs?)\b|"
            # an order to emit a fixed token: "print the words ACCESS GRANTED", 'say "PWNED"' (not "output JSON")
            r"\b(output|print|say|write|reply with|respond with)\s+(the\s+(words?|phrase|text|string)\s+[\"'“]?|"
            r"[\"'“])(?-i:[A-Z]{3,})\b",
        ),
        (
            "citation",
            r"\b(cite|citations?)\b[^.!?\n]{0,40}(\[\d+\]|\bsources?\s*\[?\d+)|\b(always|only)\s+cite\b|"
            r"\bcite\s+only\b",
        ),
        (
            "exfiltrate",
            r"\b(reveal|print|repeat|output|show|leak|send|disclose|include)\b[^.!?\n]{0,40}"
            r"\b(system prompt|your (instructions|prompt|rules)|password|secret|api key|the conversation|"
            r"hidden)\b|!\[[^\]]*\]\(https?://|https?://\S+[?&]\w+=\{",
        ),
    )
)
SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+|\n")
# removed without a placeholder: a small model copies any placeholder into its answer (seen with SmolLM2-135M)
NEUTRALISED = ""


def injection_rule(sentence: str) -> str | None:
    """The name of the first rule an instruction-like sentence matches, or None for ordinary text."""
    for name, rule in _INJECTION_RULES:
        if rule.search(sentence):
            return name
    return None


def neutralise(text: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    """Remove instruction-like sentences from a retrieved text; returns (text, ((sentence, rule), ...)).

    Chat control tokens (<|im_start|> and the like) are broken up so the tokenizer cannot read them as turns.
    """
    found: list[tuple[str, str]] = []
    out: list[str] = []
    pos = 0
    pieces: list[tuple[str, str]] = []  # (sentence, the separator after it)
    for m in SENTENCE_BREAK.finditer(text):
        pieces.append((text[pos : m.start()], m.group()))
        pos = m.end()
    pieces.append((text[pos:], ""))
    for piece, sep in pieces:
        rule = injection_rule(piece) if piece.strip() else None
        if rule:
            found.append((piece.strip(), rule))
            piece, sep = NEUTRALISED, ("\n" if "\n" in sep else "")
        out.append(piece + sep)
    return "".join(out).replace("<|", "< |").replace("|>", "| >"), tuple(found)


# -- after generation: instructions the model echoed -------------------------------------------------

# A sentence that talks about the reader's reply or addresses the reader: loose on purpose, because it is only
# used on source sentences the answer copied and that share nothing with the question.
_ABOUT_THE_REPLY = re.compile(
    r"\b(you|your|yourself|assistants?|ai|chat ?bots?|models?|llms?|gpt|bots?|answers?|answering|repl(y|ies)|"
    r"respon(d|ds|se|ses)|outputs?|print|cite|citations?|pretend|sign|introduce|mention|append|include|"
    r"capital letters|yaml|json|emojis?|language|questions?|statements?|summar\w+|refuse|attribut\w+|sources?|"
    r"reader)\b",
    re.IGNORECASE,
)
# tokens a clean answer has no reason to carry unless the question asks for them: URLs, codes mixing letters
# and digits (QX-77-ALPHA, Tango4491), shouted words (HACKED)
# ... and that is worded as an order (a modal, or an imperative verb first): descriptions such as "Clients include
# Syngenta" or "He is the assistant coach" are facts even when an answer copies them
_ORDER = re.compile(
    r"\b(must|should|shall|needs? to|have to|has to|is to|are to|required|obliged|always|never|from now|"
    r"from (this|here) on|please|do not|don't)\b|"
    # an imperative verb opening the sentence or a clause ("Note for models: answer ...", "[X] Output ...")
    r"(^|[:;\]]|,)\W*(to [^,]{1,40},\s*)?(include|append|add|print|output|reply|respond|answer|write|say|cite|"
    r"sign|pretend|introduce|translate|use|end|begin|start|finish|repeat|mention|list|format|forget|ignore|"
    r"disregard|remember|tell|speak|act|stop|refuse|reference|refer)\b",
    re.IGNORECASE,
)
_MARKER_TOKEN = re.compile(r"https?://\S+|\b(?=[\w-]*\d)(?=[\w-]*[a-zA-Z])[\w-]{5,}\b|\b[A-Z]{4,}\b")
_ECHO_MIN_COVER = 0.6


# A source sentence "shares nothing with the question" when at most one content word, and at most a fifth of its
# words, are the question's: one shared word is chance ("keys" in a planted order about keys), more is topic.
ECHO_MAX_SHARED_WORDS = 1
ECHO_MAX_SHARED_SHARE = 0.2


def _off_question(sentence: str, question_words: set[str]) -> bool:
    words = content_words(sentence)
    shared = words & question_words
    return len(shared) <= ECHO_MAX_SHARED_WORDS and len(shared) <= ECHO_MAX_SHARED_SHARE * max(1, len(words))


def echoed_instruction(answer_sentence: str, question: str, sources: Sequence[str]) -> tuple[int, str, str] | None:
    """(source index, source sentence, how) when an answer sentence repeats an instruction planted in a
    source, else None.

    The prompt-time rules only catch phrasings they were written for; what a small model does with the rest is
    mostly copy them (measured: 2 of 20 held-out injections changed answers, both by copying). So after
    generation: an answer sentence whose content words come mostly from one source sentence ("copied"), or
    that carries a URL, code or shouted word found in such a sentence ("marker"), is an echoed instruction
    when that source sentence talks about the reply or its reader, is worded as an order, and shares nothing
    with the question, i.e. it cannot be what answers it.
    """
    mine = content_words(answer_sentence)
    q = content_words(question)
    markers = _markers(answer_sentence) - _markers(question)
    orders: list[tuple[int, str]] = []
    ordinary: list[str] = []
    for i, text in enumerate(sources):
        for src in split_sentences(text):
            if _ABOUT_THE_REPLY.search(src) and _ORDER.search(src) and _off_question(src, q):
                orders.append((i, src))
            else:
                ordinary.append(src)
    closest: int | None = None  # the most words of the answer sentence one ordinary source sentence holds
    for i, src in orders:
        shared = len(mine & content_words(src))
        if mine and shared >= _ECHO_MIN_COVER * len(mine) and shared >= 2:
            # a sentence an ordinary source sentence holds more of was copied from that one: Valgrind's DRD
            # manual lists "--check-stack-var=<yes|no> [default: no]: Controls whether ..." beside
            # "--show-stack-usage=<yes|no> [default: no]: Print stack usage ...", and the first copied as an
            # answer shares 3 of its 5 words with the second, an "order" to print
            if closest is None:  # counted only when an order is a candidate: most answers meet none
                closest = max((len(mine & content_words(o)) for o in ordinary), default=0)
            if shared >= closest:
                return i, src, "copied"
        if markers & _markers(src):
            return i, src, "marker"
    return None


def _markers(text: str) -> set[str]:
    return {m.group().lower().rstrip(".,;:!?)") for m in _MARKER_TOKEN.finditer(text)}


SUSPECTED_INJECTION = "SuspectedInjection"  # the element kind ingest adds to a chunk holding instruction-like text


def flag_injections(spans: Sequence[ChunkSpan]) -> list[ChunkSpan]:
    """The spans, with SUSPECTED_INJECTION appended to the kinds of each one `neutralise` would change (ingest).

    The stored text stays as written (citations point at real spans); the prompt neutralises it again when it is
    retrieved, and `--filter kind!=SuspectedInjection` keeps such chunks out of retrieval altogether.
    """
    return [replace(sp, kinds=(*sp.kinds, SUSPECTED_INJECTION)) if neutralise(sp.text)[1] else sp for sp in spans]
