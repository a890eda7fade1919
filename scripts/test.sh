#!/usr/bin/env bash
# Install ragkit with its test tools, then run the whole test suite offline. CI runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRAS=dev,pg,qwen,server,ray bash scripts/install.sh
# The PostgreSQL tests start their own server (tests/pgserver.py) and need its binaries: install Debian's
# postgresql quietly where they are missing and apt-get is usable; otherwise those tests skip and say why.
if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then sudo=""; elif sudo -n true 2>/dev/null; then sudo="sudo -n"; else sudo=no; fi
  if command -v apt-get >/dev/null 2>&1 && [ "$sudo" != no ]; then
    echo "ragkit test: installing PostgreSQL (Debian package) for the PostgreSQL tests"
    { $sudo apt-get update -qq &&
      $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql; } \
      >/dev/null 2>&1 || echo "ragkit test: could not install PostgreSQL; its tests will skip"
  fi
fi
# The web page tests (tests/test_web.py) drive Debian's chromium through Playwright (never `playwright install`,
# which downloads a browser of its own): install the package quietly where it is missing; else those tests skip.
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then sudo=""; elif sudo -n true 2>/dev/null; then sudo="sudo -n"; else sudo=no; fi
  if command -v apt-get >/dev/null 2>&1 && [ "$sudo" != no ]; then
    echo "ragkit test: installing Chromium (Debian package) for the web page tests"
    { $sudo apt-get update -qq &&
      $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; } \
      >/dev/null 2>&1 || echo "ragkit test: could not install Chromium; the web page tests will skip"
  else
    echo "ragkit test: no chromium and no root, sudo or apt-get to install it; the web page tests will skip"
  fi
fi
# shellcheck disable=SC1091
[ -n "${VIRTUAL_ENV:-}" ] || . .venv/bin/activate
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
python -m pytest --durations=25 "$@"
