#!/usr/bin/env bash
# Install ragkit with its test tools, then run the whole test suite offline. CI runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRAS=dev bash scripts/install.sh
# shellcheck disable=SC1091
[ -n "${VIRTUAL_ENV:-}" ] || . .venv/bin/activate
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
python -m pytest "$@"
