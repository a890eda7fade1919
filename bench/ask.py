"""Answer quality and latency of `ask` on the sample corpus, against the raw model on the same prompt.

    python bench/ask.py [--repeats 3] [--ks 2,3,4]

For each k: how many of the sample questions get the right fact in the answer (gold string match), how many
cite the right file, and median seconds of ragkit's ask next to the bare generation of the identical prompt
with the same stop rule (the ratio is ragkit's overhead: retrieval, packing, checking; taken in the same run,
so a noisy machine shifts both alike), and a plain transformers generate without the stop rule.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = [
    ("How often must production API keys be rotated?", "90 days", "key-rotation.md"),
    ("Within how many minutes must a page be acknowledged?", "15 minutes", "on-call.txt"),
    ("How much are hotel costs reimbursed per night?", "180 euros", "expenses.pdf"),
    ("Where do new employees collect their laptop?", "floor 3", "onboarding.docx"),
    ("How long are customer telemetry logs kept?", "400 days", "data-retention.html"),
    ("When are badge photos taken?", "Tuesday", "onboarding.docx"),
    ("How many days does a customer deletion request take at most?", "21 days", "data-retention.html"),
    ("Who is a new employee paired with for the first eight weeks?", "buddy", "onboarding.docx"),
    ("In which class are flights shorter than six hours booked?", "economy", "expenses.pdf"),
    ("When is the on-call handover meeting held?", "Monday", "on-call.txt"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--ks", default="2,3,4")
    args = parser.parse_args()

    import torch

    import ragkit
    from ragkit.citations import should_stop
    from ragkit.prompts import pack

    with tempfile.TemporaryDirectory() as tmp:
        kb = ragkit.open(Path(tmp) / "kb")
        t0 = time.perf_counter()
        kb.ingest([ROOT / "examples" / "sample_corpus"])
        ingest_s = time.perf_counter() - t0
        gen = kb.generator
        gen.generate([{"role": "user", "content": "hi"}], 4)  # warm-up
        rows = []
        for k in (int(x) for x in args.ks.split(",")):
            right = cited_right = 0
            ragkit_s: list[float] = []
            raw_s: list[float] = []
            plain_s: list[float] = []
            for question, gold, name in QUESTIONS:
                for rep in range(args.repeats):
                    t = time.perf_counter()
                    ans = kb.ask(question, k=k)
                    ragkit_s.append(time.perf_counter() - t)
                    packed = pack(question, kb.search(question, k), gen.count_prompt_tokens, gen.context_window, 160)
                    # the same prompt and stop rule straight through the model: what ragkit adds is the rest
                    raw_s.append(gen.generate(packed.messages, 160, stop=should_stop).seconds)
                    inputs = gen._encode(packed.messages)
                    t = time.perf_counter()
                    with torch.inference_mode():  # a plain transformers loop: no stop rule
                        gen.model.generate(
                            **inputs,
                            max_new_tokens=160,
                            do_sample=False,
                            eos_token_id=gen._stop_ids,
                            pad_token_id=gen._stop_ids[0],
                        )
                    plain_s.append(time.perf_counter() - t)
                    if rep == 0:
                        right += gold.lower() in ans.text.lower()
                        cited_right += any(Path(c.uri).name == name for c in ans.citations)
            rows.append((k, right, cited_right, *(statistics.median(x) for x in (ragkit_s, raw_s, plain_s))))
        kb.close()

    n = len(QUESTIONS)
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch threads "
        f"{torch.get_num_threads()}, device {getattr(gen, 'device', '?')}; "
        f"ingest of the sample corpus {ingest_s:.1f} s"
    )
    print(
        "\n| top_k | right fact | cites right file | ask s | generate s (same stop rule) | ask / generate |"
        " plain transformers generate s |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for k, right, cited, rs, raw, plain in rows:
        print(f"| {k} | {right}/{n} | {cited}/{n} | {rs:.2f} | {raw:.2f} | {rs / raw:.2f} | {plain:.2f} |")


if __name__ == "__main__":
    main()
