"""Which GPU architectures a wheel's CUDA code runs on, read from the fatbins in its shared objects.

    python bench/device/fatbin_archs.py WHEEL [--sm 90]    # exit 1 if no kernel in it runs on that GPU

faiss-gpu-cu12 1.14.1 holds machine code (SASS) for sm_70 and sm_80 and no PTX, so on an H200 (sm_90) every
kernel launch fails with "no kernel image is available" and FAISS aborts the process: the first device run
found that out (docs/benchmarks.md "GPU"). This reads the fatbin headers (CUDA's fatbinary format: a header
with magic 0xBA55ED50, then entries of kind 1 = PTX or 2 = ELF with the architecture at byte 28), so a wheel
can be checked here, with no GPU, before it travels.
"""

from __future__ import annotations

import argparse
import collections
import struct
import sys
import zipfile
from pathlib import Path

MAGIC = struct.pack("<I", 0xBA55ED50)
KINDS = {1: "PTX", 2: "SASS"}


def fatbin_entries(data: bytes) -> collections.Counter[tuple[str, int]]:
    """{(PTX | SASS, sm): count} over the fatbins inside one binary's bytes."""
    found: collections.Counter[tuple[str, int]] = collections.Counter()
    pos = data.find(MAGIC)
    while pos != -1 and pos + 16 <= len(data):
        _, _, header, size = struct.unpack_from("<IHHQ", data, pos)
        off, end = pos + header, min(len(data), pos + header + size)
        while off + 32 <= end:
            kind, _, entry_header, payload = struct.unpack_from("<HHIQ", data, off)
            if kind not in KINDS or entry_header == 0:
                break
            found[(KINDS[kind], struct.unpack_from("<I", data, off + 28)[0])] += 1
            off += entry_header + payload
        pos = data.find(MAGIC, max(end, pos + 4))
    return found


def wheel_entries(wheel: Path) -> collections.Counter[tuple[str, int]]:
    """fatbin_entries summed over the shared objects in a wheel (a zip)."""
    found: collections.Counter[tuple[str, int]] = collections.Counter()
    with zipfile.ZipFile(wheel) as z:
        for name in z.namelist():
            if name.endswith(".so") or ".so." in name:
                found += fatbin_entries(z.read(name))
    return found


def runs_on(entries: collections.Counter[tuple[str, int]], sm: int) -> bool:
    """Machine code runs on GPUs of its major version and a minor at least its own; PTX is compiled by the
    driver for any GPU at least as new."""
    return any(
        (kind == "SASS" and arch // 10 == sm // 10 and arch <= sm) or (kind == "PTX" and arch <= sm)
        for kind, arch in entries
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("wheel", type=Path)
    ap.add_argument("--sm", type=int, default=90, help="the GPU's compute capability x 10 (H100/H200: 90)")
    args = ap.parse_args()
    entries = wheel_entries(args.wheel)
    archs = ", ".join(f"{kind} sm_{arch}" for kind, arch in sorted(entries))
    ok = runs_on(entries, args.sm)
    print(f"{args.wheel.name}: {archs or 'no CUDA code'}; runs on sm_{args.sm}: {'yes' if ok else 'NO'}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
