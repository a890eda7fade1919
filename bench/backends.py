"""llama.cpp against transformers on the bundled SmolLM2 GGUF: speed on the same prompts, and greedy agreement.

    python bench/backends.py [--repeats 3] [--threads 2] [--max-tokens 64]

Needs the llamacpp extra (llama-cpp-python). Both backends load the same SmolLM2-135M-Instruct Q4_1 GGUF:
transformers dequantises it to fp32 (ragkit's safetensors cache), llama.cpp runs the Q4_1 weights. Each prompt
is a ragkit RAG prompt (system, one-shot example, sources from the sample corpus, question) packed as `ask`
packs it; each backend answers it greedily, without a stop rule, `--repeats` times, alternating backends so a
noisy machine slows both alike. llama.cpp's KV cache is cleared before each run, so both process the whole
prompt every time (in `ask`, llama.cpp reuses the shared prefix, which only helps it). Reports the medians of
generate seconds and completion tokens per second (prompt processing included), the time to the first text
(prompt processing) and decode tokens per second after it, the prompt-token counts of both tokenizers, and
whether the greedy answers are identical (and where they part when not).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "examples" / "sample_corpus"
PROMPTS = [  # (question, sample-corpus file that answers it)
    ("How often must production API keys be rotated?", "security/key-rotation.md"),
    ("Within how many minutes must a page be acknowledged?", "on-call.txt"),
    ("When is the on-call handover meeting held?", "on-call.txt"),
    ("What happens after an incident that affects customers?", "on-call.txt"),
]


def _hits(first: str):  # type: ignore[no-untyped-def]
    from ragkit.types import Chunk, Hit

    names = [first, *(n for n in ("on-call.txt", "security/key-rotation.md") if n != first)]
    hits = []
    for i, name in enumerate(names, 1):
        text = (CORPUS / name).read_text(encoding="utf-8")
        hits.append(Hit(Chunk(i, i, str(CORPUS / name), 0, text, 0, len(text), 0), 1.0 / i, i))
    return hits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-tokens", type=int, default=64)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from ragkit.answering import AnswerOptions, packed_prompt
    from ragkit.generation.hf import TransformersGenerator
    from ragkit.generation.llamacpp import LlamaCppGenerator

    t0 = time.perf_counter()
    hf = TransformersGenerator("SmolLM2-135M-Instruct", device="cpu", threads=args.threads)
    hf_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    lc = LlamaCppGenerator("SmolLM2-135M-Instruct", device="cpu", threads=args.threads)
    lc_load = time.perf_counter() - t0
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    print(f"load s (converted cache warm): transformers {hf_load:.2f}, llama.cpp {lc_load:.2f}")
    opts = AnswerOptions(max_new_tokens=args.max_tokens)
    tps: dict[str, list[float]] = {"transformers": [], "llama.cpp": []}
    secs: dict[str, list[float]] = {"transformers": [], "llama.cpp": []}
    ttft: dict[str, list[float]] = {"transformers": [], "llama.cpp": []}
    decode: dict[str, list[float]] = {"transformers": [], "llama.cpp": []}
    same = 0
    for question, source in PROMPTS:
        msgs = packed_prompt(question, _hits(source), hf, opts).messages
        texts: dict[str, str] = {}
        for _ in range(args.repeats):
            for name, gen in (("transformers", hf), ("llama.cpp", lc)):
                if gen is lc:
                    lc.llm.reset()  # no KV-cache reuse: both evaluate the whole prompt
                first: list[float] = []

                def mark(_: str, first: list[float] = first) -> None:
                    if not first:
                        first.append(time.perf_counter())

                t_start = time.perf_counter()
                out = gen.generate(msgs, args.max_tokens, on_text=mark)
                t_end = time.perf_counter()
                secs[name].append(out.seconds)
                tps[name].append(out.completion_tokens / out.seconds)
                if first and out.completion_tokens > 2:  # prompt processing ends where the first text arrives
                    ttft[name].append(first[0] - t_start)
                    decode[name].append((out.completion_tokens - 1) / (t_end - first[0]))
                texts[name] = out.text
                n_new = out.completion_tokens
        same += texts["transformers"] == texts["llama.cpp"]
        a, b = texts["transformers"], texts["llama.cpp"]
        split = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
        if a != b:
            print(
                f"  answers part at character {split}: {a[split - 20 : split + 30]!r} / {b[split - 20 : split + 30]!r}"
            )
        print(
            f"- {question!r}: prompt {hf.count_prompt_tokens(msgs)} / {lc.count_prompt_tokens(msgs)} tokens "
            f"(transformers / llama.cpp), {n_new} new; same greedy answer: "
            f"{texts['transformers'] == texts['llama.cpp']}; {texts['llama.cpp'][:70]!r}"
        )
    print(f"\nidentical greedy answers: {same}/{len(PROMPTS)}")
    print("| backend | generate s | completion tokens/s | prompt processing s | decode tokens/s |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name in ("transformers", "llama.cpp"):
        med = statistics.median
        print(
            f"| {name} | {med(secs[name]):.2f} | {med(tps[name]):.1f} | {med(ttft[name]):.2f} "
            f"| {med(decode[name]):.1f} |"
        )
    ratio = statistics.median(tps["llama.cpp"]) / statistics.median(tps["transformers"])
    print(f"\nllama.cpp / transformers tokens/s: {ratio:.1f}x ({len(PROMPTS)} prompts x {args.repeats} repeats)")


if __name__ == "__main__":
    main()
