"""Rule R1: the entry adapter's LoRA deltas hooked onto the generator's own model, on only in the thread that reads
(ragkit.generation.entry_reader). A small torch model checks the arithmetic; the bundled SmolLM2 checks it against
peft's own computation of the same adapter."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from ragkit.generation.entry_reader import LoraDeltas, ReaderUnavailable, hooked, reading  # noqa: E402


class _Block(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.q_proj = torch.nn.Linear(6, 4, bias=False)
        self.o_proj = torch.nn.Linear(4, 6, bias=False)

    def forward(self, x):  # type: ignore[no-untyped-def]
        return self.o_proj(self.q_proj(x))


class _Tiny(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.model = torch.nn.Module()
        self.model.layers = torch.nn.ModuleList([_Block()])

    def forward(self, x):  # type: ignore[no-untyped-def]
        return self.model.layers[0](x)


def _adapter(folder: Path, tensors: dict, **config: object) -> Path:
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    base = {"peft_type": "LORA", "r": 2, "lora_alpha": 4, "use_dora": False, "fan_in_fan_out": False}
    (folder / "adapter_config.json").write_text(json.dumps(base | config))
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(folder / "adapter_model.safetensors"))
    return folder


def _q_adapter(folder: Path) -> tuple[Path, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    a, b = torch.randn(2, 6), torch.randn(4, 2)
    key = "base_model.model.model.layers.0.q_proj"
    return _adapter(folder, {f"{key}.lora_A.weight": a, f"{key}.lora_B.weight": b}), a, b


def test_the_delta_is_added_while_reading_and_only_then(tmp_path: Path) -> None:
    model, x = _Tiny().eval(), torch.randn(3, 6)
    adapter, a, b = _q_adapter(tmp_path / "ad")
    with torch.no_grad():
        base = model(x)
        deltas = LoraDeltas(model, adapter)
        assert deltas.layers == 1
        assert torch.equal(model(x), base)  # hooked but not reading: the model as it was
        with reading():
            tuned = model(x)
        q = model.model.layers[0].q_proj.weight
        expected = model.model.layers[0].o_proj(x @ q.T + (x @ a.T) @ b.T * 2.0)  # alpha / r = 4 / 2
        assert torch.allclose(tuned, expected, atol=1e-6)
        assert not torch.allclose(tuned, base)
        assert torch.equal(model(x), base)  # off again after the block
        deltas.close()
        with reading():
            assert torch.equal(model(x), base)  # unhooked


def test_another_thread_sees_the_model_as_it_was_while_one_reads(tmp_path: Path) -> None:
    model, x = _Tiny().eval(), torch.randn(3, 6)
    adapter, _, _ = _q_adapter(tmp_path / "ad")
    with torch.no_grad():
        base = model(x)
        assert hooked(model, adapter) is hooked(model, adapter)  # hooked once per model
        inside, done, seen = threading.Event(), threading.Event(), {}

        def other() -> None:
            inside.wait(5)
            with torch.no_grad():
                seen["out"] = model(x)
            done.set()

        t = threading.Thread(target=other)
        t.start()
        with reading():
            inside.set()
            assert done.wait(5)
            tuned = model(x)
        t.join()
    assert torch.equal(seen["out"], base) and not torch.allclose(tuned, base)


@pytest.mark.parametrize(
    "change, why",
    [
        ({"use_dora": True}, "not a plain LoRA"),
        ({"rank_pattern": {"q_proj": 4}}, "not a plain LoRA"),
        ({"peft_type": "IA3"}, "not a plain LoRA"),
    ],
)
def test_an_adapter_that_is_not_plain_lora_is_refused(tmp_path: Path, change: dict, why: str) -> None:
    adapter, _, _ = _q_adapter(tmp_path / "ad")
    config = json.loads((adapter / "adapter_config.json").read_text())
    (adapter / "adapter_config.json").write_text(json.dumps(config | change))
    with pytest.raises(ReaderUnavailable, match=why):
        LoraDeltas(_Tiny(), adapter)


def test_an_adapter_for_another_model_is_refused_and_leaves_no_hook(tmp_path: Path) -> None:
    def lora(folder: str, module: str, width: int) -> Path:
        key = f"base_model.model.model.layers.0.{module}"
        tensors = {f"{key}.lora_A.weight": torch.ones(2, width), f"{key}.lora_B.weight": torch.ones(4, 2)}
        return _adapter(tmp_path / folder, tensors)

    model = _Tiny().eval()
    with pytest.raises(ReaderUnavailable, match="does not fit this model"):
        LoraDeltas(model, lora("w", "q_proj", 9))  # A's width is not the layer's
    absent = lora("a", "k_proj", 6)  # no such layer
    with pytest.raises(ReaderUnavailable, match="does not fit this model"):
        LoraDeltas(model, absent)
    assert not model.model.layers[0].q_proj._forward_hooks


@pytest.mark.slow
def test_hooked_deltas_read_as_peft_reads_the_adapter(tmp_path: Path) -> None:
    """Through the bundled SmolLM2-135M and a random LoRA on q/k/v/o saved by peft: P(yes) with the hooked deltas
    equals peft's own (unmerged) reading, and the generator reads as before outside `reading()`."""
    import copy

    from peft import LoraConfig, get_peft_model

    from ragkit.generation.entry_reader import LazyEntryReader
    from ragkit.generation.hf import TransformersGenerator

    gen = TransformersGenerator("SmolLM2-135M-Instruct", device="cpu", dtype="float32")
    chat = [{"role": "user", "content": "Does `-r` create a system account? Reply yes or no."}]
    base = gen.yes_probability(chat)
    config = LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"])
    config.init_lora_weights = False  # B random, not zero: the adapter changes the reading
    torch.manual_seed(1)
    peft_model = get_peft_model(copy.deepcopy(gen.model), config).eval()
    peft_model.save_pretrained(str(tmp_path / "ad"))
    reference = copy.copy(gen)
    reference.model = peft_model
    expected = reference.yes_probability(chat)
    read = LazyEntryReader(gen, tmp_path / "ad").yes_probability(chat)
    assert abs(read - expected) < 1e-4 and abs(expected - base) > 1e-3, (read, expected, base)
    assert gen.yes_probability(chat) == base
