#!/usr/bin/env bash
# Runs the whole test suite: installs what is missing, fetches the test media, starts the local
# AWS emulator when the suite has one, runs `cargo test`, and stops the emulator again.
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$ROOT"

install_debian_packages
fetch_astronaut

if [ -x scripts/emulator.sh ]; then
  scripts/emulator.sh start
  trap 'scripts/emulator.sh stop' EXIT
  # shellcheck disable=SC1091
  source "$KVSINFER_CACHE/emulator.env"
fi

log "Running the tests"
cargo test "$@"
