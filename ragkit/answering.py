"""From retrieved hits to a checked Answer: pack the prompt, generate (once, N samples, or under a JSON
Schema), check citations, and record what was dropped, cut and flagged."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from ragkit.citations import CheckedAnswer, check_answer, is_abstention, majority, should_stop
from ragkit.entry_reading import default_entry_release_min, release_by_entry
from ragkit.generation.entry_reader import entry_reader
from ragkit.prompts import DEFAULT_TEMPLATE, PackedPrompt, PromptTemplate, load_template, pack
from ragkit.protocols import Embedder, Generator
from ragkit.types import Answer, Flag, Generation, Hit
from ragkit.verification import default_own_min_verified, default_release_min_verified
from ragkit.withholding import release, withhold_unfounded

if TYPE_CHECKING:
    from ragkit.config import GeneratorConfig


# Cosine similarity between a question and its best retrieved chunk below which `ask` abstains without
# generating (GeneratorConfig.min_relevance = None). Measured per embedder on HaluEval-QA and the sample
# corpus (docs/benchmarks.md, "Abstaining before generation"), raised from 0.35 to 0.40 on the abstention dev
# set (the smallest floor refusing 95 % of its off-topic questions with no right answer lost; "Abstention dev
# set", third round); embedders not listed get no such gate, because a cosine scale does not carry over.
MIN_RELEVANCE = {"all-MiniLM-L6-v2": 0.40}
# Pairs whose checks after generation were measured to handle the questions between a lower floor and the
# embedder's: with Qwen2.5-Coder-1.5B (its coverage floor, and its reading of drafts that check withheld) the
# off-topic questions between 0.30 and 0.40 are withheld after generation, and answerable ones get through; on
# fifteen real-document trials +1 with on-topic abstention unchanged (docs/benchmarks.md, "Twentieth round"); 0.20
# (rule RV, docs/design-notes.md): a user's own words score 0.20-0.30 against the entry that answers them
GENERATOR_MIN_RELEVANCE = {("all-MiniLM-L6-v2", "Qwen2.5-Coder-1.5B-Instruct"): 0.20}


# The answer's key fact must sit in a source sentence at least this similar to the question (ragkit.grounding),
# measured on the abstention dev set (docs/benchmarks.md). Other embedders get only the embedder-free part:
# a key fact found in no source at all (score 0) abstains.
MIN_GROUNDING = {"all-MiniLM-L6-v2": 0.2}
ANY_GROUNDING = 1e-6

# The source sentence holding the answer's key fact must mention at least this share of what the question asks
# (rarity-weighted, ragkit.coverage). Lexical, so one value for every embedder and generator: the smallest that
# abstains on 80 % of the dev set's on-topic unanswerable questions with no right answer withheld
# (docs/benchmarks.md, "Abstention dev set", fourth round). Raised to 0.25 with the sources' hard-wrapped lines
# joined before the check (textutil.source_sentences): the pair chosen on eleven real-document trials and
# adopted by a rule checked on a twelfth (docs/benchmarks.md, "Eighteenth round").
MIN_COVERAGE = 0.25
# Generators measured to need another floor, chosen by the same rule on their own dev drafts. Qwen2.5-Coder-1.5B
# copies a fact from a sentence off the question fluently: the smallest floor abstaining on 80 % of the dev set's
# on-topic unanswerable questions is 0.45 for it (docs/benchmarks.md, "Abstention dev set", sixth round). 0.40
# scored higher on thirteen real-document trials once coverage read section titles, passed a fourteenth trial
# that could not test it and failed a fifteenth (docs/benchmarks.md, "Nineteenth round"), so 0.45 stays.
GENERATOR_MIN_COVERAGE = {"Qwen2.5-Coder-1.5B-Instruct": 0.45}


def default_min_coverage(generator: str) -> float:
    """The coverage floor measured for a bundled generator's name; MIN_COVERAGE for any other model."""
    return GENERATOR_MIN_COVERAGE.get(generator, MIN_COVERAGE)


def default_min_grounding(embedder: str) -> float:
    """The measured grounding floor for a bundled embedder name; for any other, "in some source" only."""
    return MIN_GROUNDING.get(embedder, ANY_GROUNDING)


def default_min_relevance(embedder: str, generator: str = "") -> float:
    """The measured relevance floor for a bundled embedder name (and, where measured, the generator behind it);
    0.0 (no floor) for any other embedder."""
    return GENERATOR_MIN_RELEVANCE.get((embedder, generator), MIN_RELEVANCE.get(embedder, 0.0))


@dataclass(frozen=True, slots=True)
class AnswerOptions:
    """How to answer: token budget, sampling, prompt template and checks (see GeneratorConfig)."""

    max_new_tokens: int = 160
    temperature: float = 0.0
    template: PromptTemplate = DEFAULT_TEMPLATE
    cut_hits: bool = True
    neutralise: bool = True
    threshold: float = 0.5
    strict: bool = False
    samples: int = 1
    sample_temperature: float = 0.7
    schema: dict[str, Any] | None = None  # a JSON Schema: the answer is a JSON value that satisfies it
    # abstain without generating when no hit's question cosine reaches this; 0 = off. The default is the floor
    # measured for the default embedder, as a KB with the default config uses (tests/test_build.py)
    min_relevance: float = MIN_RELEVANCE["all-MiniLM-L6-v2"]
    # abstain after generation when the answer's key fact is in no source sentence this similar to the question
    min_grounding: float = MIN_GROUNDING["all-MiniLM-L6-v2"]
    # abstain after generation when the model's probability of the answer's key fact is below this; None = the
    # floor measured for the generator (ragkit.confidence), 0 = off
    min_confidence: float | None = None
    # abstain after generation when the answer only restates the question, or when the source sentence holding
    # its key fact mentions less than this share of what the question asks (ragkit.coverage); 0 = off
    min_coverage: float = MIN_COVERAGE
    # withhold a delivered answer whose P(yes) from the fallback model (ragkit.verification) is below this;
    # 0 = off (and always off without a fallback)
    min_verified: float = 0.0
    # withhold the fallback model's own answer when its P(yes) that the sources state it is below this; 0 = off
    # (and always off without a fallback)
    fallback_min_verified: float = 0.0
    # withhold the generator's own answer when its P(yes) that the sources state it is below this; 0 = off (and
    # always off with a fallback, which has the two floors above)
    own_min_verified: float = 0.0
    # deliver a draft withheld by a coverage check alone when the generator's own P(yes) that the sources state it
    # reaches this (ragkit.withholding.release); 0 = off (and always off with a fallback)
    release_min_verified: float = 0.0
    # deliver a draft withheld by a coverage check alone when the generator reads the draft's own manual entry as
    # the answer at this P(yes) and better than the entries beside it (ragkit.entry_reading, rule R); 0 = off
    entry_release_min: float = 0.0
    entry_answer_min: float = 0.0  # that reading delivers another entry in a withheld draft's place (rule RA)


def options_from_config(cfg: GeneratorConfig, **overrides: Any) -> AnswerOptions:
    """AnswerOptions from the generator config; None-valued overrides keep the config's value."""
    template = load_template(cfg.template_file, persona=cfg.persona)
    if not cfg.few_shot:
        template = replace(template, examples=())
    opts = AnswerOptions(
        max_new_tokens=cfg.max_new_tokens,
        temperature=cfg.temperature,
        template=template,
        cut_hits=cfg.cut_hits,
        neutralise=cfg.neutralise_injections,
        threshold=cfg.support_threshold,
        strict=cfg.strict,
        samples=cfg.samples,
        sample_temperature=cfg.sample_temperature,
        min_relevance=cfg.min_relevance or 0.0,
        min_grounding=cfg.min_grounding or 0.0,
        min_confidence=cfg.min_confidence,
        min_coverage=default_min_coverage(cfg.model) if cfg.min_coverage is None else cfg.min_coverage,
        min_verified=cfg.min_verified if cfg.fallback else 0.0,
        fallback_min_verified=_own_floor(cfg),
        own_min_verified=_self_floor(cfg),
        release_min_verified=_release_floor(cfg, cfg.release_min_verified, default_release_min_verified),
        entry_release_min=_release_floor(cfg, cfg.entry_release_min, default_entry_release_min),
        entry_answer_min=0.0 if cfg.fallback else cfg.entry_answer_min,
    )
    return replace(opts, **{k: v for k, v in overrides.items() if v is not None})


def _own_floor(cfg: GeneratorConfig) -> float:
    """generator.fallback_min_verified resolved: the config's, else the fallback model's measured floor (0 off)."""
    if not cfg.fallback:
        return 0.0
    own = cfg.fallback_min_verified
    return default_own_min_verified(cfg.fallback) if own is None else own


def _release_floor(cfg: GeneratorConfig, given: float | None, measured: Callable[[str], float]) -> float:
    """A release floor (generator.release_min_verified, generator.entry_release_min) resolved: off with a fallback
    (which answers withheld drafts itself), else the config's, else the floor measured for the generator (0: off)."""
    if cfg.fallback:
        return 0.0
    return measured(cfg.model) if given is None else given


def _self_floor(cfg: GeneratorConfig) -> float:
    """generator.own_min_verified resolved: off with a fallback (which has its own two floors), else the
    config's (off unless set)."""
    return 0.0 if cfg.fallback else cfg.own_min_verified


def _strings(value: Any) -> list[str]:
    """Every string inside a JSON value, depth first."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def packed_prompt(question: str, hits: Sequence[Hit], generator: Generator, options: AnswerOptions) -> PackedPrompt:
    """The prompt `answer_question` gives the generator for these hits (fine-tuning builds its examples here too)."""
    o = options
    return pack(
        question,
        hits,
        generator.count_prompt_tokens,
        generator.context_window,
        o.max_new_tokens,
        o.template,
        cut=o.cut_hits,
        neutralise_text=o.neutralise,
        schema=o.schema,
    )


def relevance_of(hits: Sequence[Hit]) -> float | None:
    """The best dense (cosine) score among the hits; None when the dense retriever found none of them.

    In hybrid mode a hit the dense retriever missed ranks below its candidates, so the best dense score
    among the hits is the best cosine of any hit.
    """
    scores = [h.dense for h in hits if h.dense is not None]
    return max(scores) if scores else None


def _timings(retrieve: float, pack: float, generate: float, check: float, total: float) -> dict[str, float]:
    """An answer's stage timings in seconds, as `Answer.timings` reports them."""
    stages = {"retrieve": retrieve, "pack": pack, "generate": generate, "check": check, "total": total}
    return {k: round(v, 4) for k, v in stages.items()}


def measured_relevance(question: str, hits: Sequence[Hit], embedder: Callable[[], Embedder]) -> float | None:
    """The best cosine similarity between the question and any hit; None without hits.

    Dense hits carry it already; keyword-only hits are measured (one small embedding call, the embedder
    loaded only then) so that the floor applies and every answer reports its relevance in every mode.
    """
    relevance = relevance_of(hits)
    if relevance is None and hits:
        vecs = embedder().embed([question, *(h.chunk.text for h in hits)])
        relevance = float((vecs[1:] @ vecs[0]).max())
    return relevance


def relevance_gate(
    question: str,
    hits: Sequence[Hit],
    relevance: float | None,
    options: AnswerOptions,
    *,
    retrieve_s: float = 0.0,
) -> Answer | None:
    """The abstention `answer_question` returns without asking the model, or None when the model is to answer.

    It abstains when options.min_relevance > 0 and either no hit was retrieved or the best hit's cosine
    similarity to the question (relevance) is below it. Unmeasured relevance (None) with hits never abstains;
    a JSON Schema answer is always generated.
    """
    o = options
    if o.min_relevance <= 0 or o.schema is not None or (hits and (relevance is None or relevance >= o.min_relevance)):
        return None
    shown = "none" if relevance is None else f"{relevance:.3f}"
    flag = Flag("low_relevance", "", detail=f"best source similarity {shown} < min_relevance {o.min_relevance:.2f}")
    return Answer(
        question=question,
        text=o.template.abstain,
        raw_text="",
        citations=(),
        hits=tuple(hits),
        abstained=True,
        unsupported=(),
        dropped_hits=0,
        prompt_tokens=0,
        completion_tokens=0,
        timings=_timings(retrieve_s, 0.0, 0.0, 0.0, retrieve_s),
        flags=(flag,),
        relevance=relevance,
    )


def _without(hits: Sequence[Hit], echoes: Sequence[Flag]) -> list[Hit]:
    """The hits with the source sentences that echoed flags quote cut out of their text."""
    cut: dict[int, list[str]] = {}
    for f in echoes:
        if f.source and f.quote:
            cut.setdefault(f.source, []).append(f.quote)
    out = []
    for n, h in enumerate(hits, start=1):
        text = h.chunk.text
        for sentence in cut.get(n, []):
            text = text.replace(sentence, "")
        out.append(replace(h, chunk=replace(h.chunk, text=text)) if text != h.chunk.text else h)
    return out


def answer_question(
    question: str,
    hits: Sequence[Hit],
    generator: Generator,
    options: AnswerOptions | None = None,
    *,
    on_text: Callable[[str], None] | None = None,
    retrieve_s: float = 0.0,
    relevance: float | None = None,
    embed: Callable[[list[str]], Any] | None = None,
) -> Answer:
    """Answer `question` from `hits` (best first) with `generator`.

    on_text streams the model's text as it is written (single-sample answers only; a structured answer
    streams its JSON). retrieve_s: seconds the caller spent retrieving, added to the timings. relevance: the
    question's best cosine similarity to any hit (default: from the hits' dense scores); below
    options.min_relevance, or with no hits, the answer is the abstention phrase and the model is not asked
    (text answers only: a JSON Schema answer is always generated). embed: the embedder's embed, for the
    grounding check after generation (options.min_grounding; skipped without it).
    """
    t0 = time.perf_counter()
    o = options or AnswerOptions()
    if relevance is None:
        relevance = relevance_of(hits)
    gated = relevance_gate(question, hits, relevance, o, retrieve_s=retrieve_s)
    if gated is not None:
        return gated
    packed = packed_prompt(question, hits, generator, o)
    t_pack = time.perf_counter() - t0

    def check(out: Generation) -> CheckedAnswer:
        return check_answer(
            out.text,
            packed.hits,
            complete=out.finish == "stop",
            threshold=o.threshold,
            strict=o.strict,
            abstain_phrase=o.template.abstain,
            question=question if o.neutralise else None,  # the echo check is part of the injection defence
        )

    structured: Any = None
    sample_texts: tuple[str, ...] = ()
    agreement: float | None = None
    gen_s = check_s = 0.0
    if o.schema is not None:
        from ragkit.generation.constrained import parse_and_validate

        out = generator.generate(packed.messages, o.max_new_tokens, o.temperature, on_text=on_text, schema=o.schema)
        gen_s = out.seconds
        t = time.perf_counter()
        structured = parse_and_validate(out.text, o.schema)
        # the citations and self-check run over the prose inside the JSON value
        pieces = [s.strip() for s in _strings(structured) if s.strip()]
        prose = " ".join(s if s[-1] in ".!?" else s + "." for s in pieces)
        checked = check_answer(prose, packed.hits, threshold=o.threshold, abstain_phrase=o.template.abstain)
        checked = replace(
            checked,
            text=json.dumps(structured, ensure_ascii=False),
            abstained=any(is_abstention(s, o.template.abstain) for s in _strings(structured)),
        )
        check_s = time.perf_counter() - t
    elif o.samples > 1:
        outs: list[Generation] = []
        checks: list[CheckedAnswer] = []
        for _ in range(o.samples):
            g = generator.generate(packed.messages, o.max_new_tokens, o.sample_temperature, stop=should_stop)
            gen_s += g.seconds
            t = time.perf_counter()
            outs.append(g)
            checks.append(check(g))
            check_s += time.perf_counter() - t
        best, agreement = majority(checks)
        order = [best, *(i for i in range(len(checks)) if i != best)]
        sample_texts = tuple(checks[i].text for i in order)
        checked = checks[best]
        out = replace(outs[best], completion_tokens=sum(g.completion_tokens for g in outs))  # all samples' cost
    else:
        out = generator.generate(packed.messages, o.max_new_tokens, o.temperature, stop=should_stop, on_text=on_text)
        gen_s = out.seconds
        t = time.perf_counter()
        checked = check(out)
        check_s = time.perf_counter() - t
        echoes = [f for f in checked.flags if f.kind == "echoed_instruction"]
        if echoes and not checked.text:
            # all the model said was a planted instruction: ask again with those sentences taken out
            retry = packed_prompt(question, _without(packed.hits, echoes), generator, o)
            again = generator.generate(retry.messages, o.max_new_tokens, o.temperature, stop=should_stop)
            gen_s += again.seconds
            second = check(again)
            checked = replace(second, flags=(*echoes, *second.flags))
            out = replace(again, completion_tokens=out.completion_tokens + again.completion_tokens)
    t = time.perf_counter()
    held = withhold_unfounded(question, checked, out, packed.hits, o, generator.name, embed)
    if o.schema is None:  # a draft withheld by a word-level check alone may be read by the model itself
        held = release(question, checked, held, packed.hits, generator, o.release_min_verified)
        floors = (o.entry_release_min, o.entry_answer_min)  # rules R and RA, read by the tuned reader (RT)
        held = release_by_entry(question, checked, held, packed.hits, entry_reader(generator), embed, *floors)
    checked, check_s = held.checked, check_s + time.perf_counter() - t
    return Answer(
        question=question,
        text=checked.text,
        raw_text=out.text,
        citations=checked.citations,
        hits=packed.hits,
        abstained=checked.abstained,
        unsupported=checked.unsupported,
        dropped_hits=len(packed.dropped),
        prompt_tokens=out.prompt_tokens,
        completion_tokens=out.completion_tokens,
        timings=_timings(retrieve_s, t_pack, gen_s, check_s, retrieve_s + time.perf_counter() - t0),
        packing=packed.notes,
        flags=packed.flags + checked.flags,
        samples=sample_texts,
        agreement=None if agreement is None else round(agreement, 3),
        structured=structured,
        generator=generator.name,
        relevance=relevance,
        draft=held.draft,
        grounding=held.grounding,
        confidence=held.confidence,
        coverage=held.coverage,
        verified=held.verified,
    )
