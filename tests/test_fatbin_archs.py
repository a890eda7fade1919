"""bench/device/fatbin_archs.py: which GPUs a wheel's CUDA code runs on, read with no GPU.

The first device run lost FAISS on the GPU to a wheel without kernels for the H200 (sm_90); this check, run on
the wheel before it travels, would have said so. Synthetic fatbins here; the real wheels' readings are in
docs/benchmarks.md ("GPU").
"""

from __future__ import annotations

import importlib.util
import struct
import zipfile
from pathlib import Path

import pytest

PATH = Path(__file__).resolve().parent.parent / "bench" / "device" / "fatbin_archs.py"
spec = importlib.util.spec_from_file_location("fatbin_archs", PATH)
assert spec is not None and spec.loader is not None
fatbin_archs = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fatbin_archs)


def fatbin(*entries: tuple[int, int]) -> bytes:
    """A fatbin with (kind, sm) entries (1 = PTX, 2 = SASS), each with a 64-byte entry header and 8 bytes of code."""
    body = b""
    for kind, sm in entries:
        header = struct.pack("<HHIQ", kind, 0x101, 64, 8) + b"\0" * 12 + struct.pack("<I", sm)
        body += header + b"\0" * (64 - len(header)) + b"\x90" * 8
    return struct.pack("<IHHQ", 0xBA55ED50, 1, 16, len(body)) + body


def wheel(tmp_path: Path, *entries: tuple[int, int]) -> Path:
    path = tmp_path / "faiss_gpu-0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("faiss/libfaiss.so", b"\x7fELF" + b"\0" * 100 + fatbin(*entries) + b"\0" * 50 + fatbin(*entries))
        z.writestr("faiss/__init__.py", "")
    return path


def test_the_wheel_that_failed_on_the_h200_is_caught(tmp_path: Path) -> None:
    entries = fatbin_archs.wheel_entries(wheel(tmp_path, (2, 70), (2, 80)))  # faiss-gpu-cu12 1.14.1's kinds
    assert entries == {("SASS", 70): 2, ("SASS", 80): 2}  # both fatbins of the binary are read
    assert fatbin_archs.runs_on(entries, 80) and not fatbin_archs.runs_on(entries, 90)


@pytest.mark.parametrize(
    ("entries", "sm", "runs"),
    [
        ([(2, 90)], 90, True),  # faiss-gpu 1.15.1 has sm_90 machine code
        ([(1, 80)], 90, True),  # PTX is compiled by the driver for newer GPUs
        ([(1, 100)], 90, False),  # but not for older ones
        ([(2, 86)], 89, True),  # machine code runs on a later minor of its major
        ([(2, 90)], 100, False),  # not on another major
    ],
)
def test_machine_code_and_ptx_rules(tmp_path: Path, entries: list[tuple[int, int]], sm: int, runs: bool) -> None:
    assert fatbin_archs.runs_on(fatbin_archs.wheel_entries(wheel(tmp_path, *entries)), sm) is runs


def test_the_command_exits_1_for_a_wheel_that_cannot_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.argv", ["fatbin_archs.py", str(wheel(tmp_path, (2, 70), (2, 80))), "--sm", "90"])
    with pytest.raises(SystemExit) as stop:
        fatbin_archs.main()
    assert stop.value.code == 1 and "runs on sm_90: NO" in capsys.readouterr().out
