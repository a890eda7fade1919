#!/usr/bin/env bash
# Install ragkit with its test tools, then run the whole test suite offline. CI runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRAS=dev,pg,qwen,server,ray bash scripts/install.sh

# need PACKAGE WHAT PRESENT...: install a Debian package quietly when none of the PRESENT commands or paths exists
# and apt-get is usable (as root or with sudo); otherwise the tests that need it skip and say why.
need() {
  local package=$1 what=$2 probe sudo
  shift 2
  for probe in "$@"; do
    if command -v "$probe" >/dev/null 2>&1 || compgen -G "$probe" >/dev/null; then return 0; fi
  done
  if [ "$(id -u)" = 0 ]; then sudo=""; elif sudo -n true 2>/dev/null; then sudo="sudo -n"; else sudo=no; fi
  if ! command -v apt-get >/dev/null 2>&1 || [ "$sudo" = no ]; then
    echo "ragkit test: no $package and no root, sudo or apt-get to install it; the $what tests will skip"
    return 0
  fi
  echo "ragkit test: installing $package (Debian package) for the $what tests"
  { { [ -n "${apt_updated:-}" ] || $sudo apt-get update -qq; } && apt_updated=1 &&
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$package"; } \
    >/dev/null 2>&1 || echo "ragkit test: could not install $package; the $what tests will skip"
}
# PostgreSQL: tests/pgserver.py starts its own throwaway server from these binaries.
need postgresql PostgreSQL initdb '/usr/lib/postgresql/*/bin/initdb'
# Chromium: tests/test_web.py drives Debian's chromium through Playwright (never `playwright install`, which
# downloads a browser of its own).
need chromium "web page" chromium
# nginx: tests/test_server_proxy.py streams answers through it on loopback (it starts its own, with its own config).
need nginx "reverse proxy" nginx /usr/sbin/nginx

# shellcheck disable=SC1091
[ -n "${VIRTUAL_ENV:-}" ] || . .venv/bin/activate
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
python -m pytest --durations=25 "$@"
