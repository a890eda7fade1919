"""Parse time of the plain formats: ragkit's light parsers vs unstructured, on the same real-text corpus.

    python bench/parsers.py [--chars 400000] [--repeats 3]

Median seconds over repeats for each engine, and the ratio, measured in one run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chars", type=int, default=400_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from corpus import build

    from ragkit.connectors import SourceOptions, parse_file

    with tempfile.TemporaryDirectory() as tmp:
        files = build(Path(tmp), max_chars=args.chars)
        chars = sum(len(f.read_text(encoding="utf-8")) for f in files)
        parse_file(files[0], options=SourceOptions(engine="unstructured"))  # load spaCy outside the timing
        times: dict[str, list[float]] = {"auto": [], "unstructured": []}
        for _ in range(args.repeats):
            for engine in times:
                options = SourceOptions(engine=engine)
                t = time.perf_counter()
                for f in files:
                    parse_file(f, options=options)
                times[engine].append(time.perf_counter() - t)
    light, heavy = statistics.median(times["auto"]), statistics.median(times["unstructured"])
    print(f"{len(files)} files (.md topics + .txt module docs), {chars / 1e6:.2f} M chars, median of {args.repeats}")
    print("\n| parser | seconds | M chars/s |")
    print("| --- | --- | --- |")
    print(f"| ragkit light (markdown-it-py, plain text) | {light:.2f} | {chars / 1e6 / light:.2f} |")
    print(f"| unstructured 0.27 (partition_md / partition_text) | {heavy:.2f} | {chars / 1e6 / heavy:.3f} |")
    print(f"| ratio unstructured / light | {heavy / light:.0f}x | |")


if __name__ == "__main__":
    main()
