"""Make this machine's Python see only what the GPU device's image has, plus the payload (bench/device).

Put this folder first on PYTHONPATH: an import of a top-level package whose distribution is neither in the
device image's list (DEVICE_PACKAGES, from the device tool's KINDS.md, 2026-11-17) nor in $DEVICE_PAYLOAD
(wheel names, comma separated) is not found, as it would not be there. So bench/device/pack.sh's wheel list is
checked here, at no device time: run the GPU tests and benchmarks in quick mode under it (run.sh --mimic).
"""

from __future__ import annotations

import importlib.machinery
import importlib.metadata
import os
import re

DEVICE_PACKAGES = """absl-py accelerate aiofiles aiohappyeyeballs aiohttp aiosignal annotated-doc anyio attrs
botorch build certifi charset-normalizer chex click cloudpickle cmake colorama contourpy coverage cuda-bindings
cuda-core cuda-pathfinder cuda-toolkit cupy-cuda13x cycler cython diffrax e3nn einops equinox etils execnet
filelock flatbuffers flax fonttools formulaic frozenlist fsspec gpytorch grpcio h11 h5py hf-xet httpcore httpx
huggingface-hub humanize hypothesis idna imageio iniconfig interface-meta jax jax-cuda13-pjrt jax-cuda13-plugin
jaxlib jaxtyping jinja2 joblib kiwisolver lazy-loader lightning lightning-utilities linear-operator lineax
llvmlite lxml markdown markdown-it-py markupsafe matplotlib mdurl meson ml-dtypes mpi4py mpmath msgpack
multidict multipledispatch mypy-extensions nanobind narwhals networkx ninja numba numba-cuda numpy numpyro
nvidia-cublas nvidia-cuda-cupti nvidia-cuda-nvrtc nvidia-cuda-runtime nvidia-cudnn-cu13 nvidia-cufft
nvidia-cufile nvidia-curand nvidia-cusolver nvidia-cusparse nvidia-cusparselt-cu13 nvidia-ml-py nvidia-nccl-cu13
nvidia-nvjitlink nvidia-nvshmem-cu13 nvidia-nvtx onnx onnx-ir onnxruntime onnxscript opencv-python-headless
optax opt-einsum opt-einsum-fx optimistix orbax-checkpoint packaging pandas pathspec patsy peft pillow pip
pluggy portalocker prometheus-client propcache protobuf psutil pyarrow pybind11 py-cpuinfo pygments pyparsing
pyproject-hooks pyre-extensions pytest pytest-benchmark pytest-cov pytest-mock pytest-timeout pytest-xdist
python-dateutil pytorch-lightning pyyaml regex requests rich sacrebleu safetensors scikit-build-core
scikit-image scikit-learn scipy seaborn sentencepiece sentence-transformers setuptools shellingham simplejson
six sortedcontainers statsmodels sympy tabulate tensorboard tensorboard-data-server tensorstore threadpoolctl
tifffile tiktoken timm tokenizers toolz torch torchaudio torchdiffeq torch-geometric torchmetrics torchvision
tqdm transformers treescope triton typer typing-extensions typing-inspect urllib3 uvloop wadler-lindig werkzeug
wheel wrapt xarray xxhash yarl zipp""".split()
# the CUDA runtime libraries of the image, under other names here (torch's CPU build has none)
DEVICE_PACKAGES += ["nvidia-cublas", "nvidia-cuda-runtime", "nvidia-cudnn-cu13", "nvidia-nccl-cu13"]


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


_PathFinder = importlib.machinery.PathFinder
_find_spec = _PathFinder.find_spec.__func__  # type: ignore[attr-defined]


def _install(allowed: set[str]) -> None:
    """Let sys.path's finder see a top-level package only when the device has its distribution."""
    owners = importlib.metadata.packages_distributions()

    def find_spec(cls, fullname, path=None, target=None):  # type: ignore[no-untyped-def]
        dists = owners.get(fullname) if path is None else None
        if dists and not any(_norm(d) in allowed for d in dists):
            return None  # absent, as on the device: import raises ModuleNotFoundError, find_spec gives None
        return _find_spec(cls, fullname, path, target)

    _PathFinder.find_spec = classmethod(find_spec)  # type: ignore[method-assign, assignment]


def _with_requirements(names: set[str]) -> set[str]:
    """names and what they require here, recursively (not extras): the device's own versions of its packages
    bring their own requirements, which may be named differently here (huggingface-hub's httpx, say)."""
    seen, todo = set(), list(names)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            reqs = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        for req in reqs:
            if "extra ==" not in req:
                todo.append(_norm(re.split(r"[ ;<>=!~\[(]", req, maxsplit=1)[0]))
    return seen


def _ragkit_requirements() -> set[str]:
    """What ragkit itself requires (every extra): these must be on the device's list or travel."""
    try:
        reqs = importlib.metadata.requires("ragkit") or []
    except importlib.metadata.PackageNotFoundError:
        return set()
    return {_norm(re.split(r"[ ;<>=!~\[(]", r, maxsplit=1)[0]) for r in reqs}


_device = {_norm(n) for n in DEVICE_PACKAGES}
_allowed = _with_requirements(_device) - (_ragkit_requirements() - _device)
_allowed |= {_norm(n) for n in os.environ.get("DEVICE_PAYLOAD", "").split(",") if n}
_install(_allowed)
