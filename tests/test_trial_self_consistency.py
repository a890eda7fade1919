"""bench/trial_self_consistency.py: how many sampled answers agree with the delivered one."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))  # it imports bench/self_consistency.py's AUROC
_spec = importlib.util.spec_from_file_location("trial_self_consistency", ROOT / "bench" / "trial_self_consistency.py")
assert _spec and _spec.loader
tsc = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tsc)


def test_agreement_counts_samples_that_say_the_same_thing() -> None:
    answer = "The default compression level is -6 [1]."
    samples = [
        "The default compression level is -6 [2].",  # another citation, the same words
        "Use -1 for the fastest speed [1].",  # another answer: no agreement
        "I don't know based on the provided sources.",
        "The default compression level is -9 [1].",  # one word of five differs: 4 / 6 >= 0.5
    ]
    assert tsc.agreement(answer, samples) == pytest.approx(0.5)
    assert tsc.agreement("I don't know based on the provided sources.", samples[2:3]) == 1.0
    assert tsc.agreement(answer, []) == 0.0
