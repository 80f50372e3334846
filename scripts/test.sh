#!/usr/bin/env bash
# Runs the whole test suite: installs what is missing, fetches the test media, starts the local
# AWS emulator when the suite has one, runs `cargo test`, and stops the emulator again.
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$ROOT"

install_debian_packages
fetch_astronaut

if [ -x scripts/emulator.sh ]; then
  # An emulator that was already running is left running; one started here is stopped.
  scripts/emulator.sh status || trap 'scripts/emulator.sh stop' EXIT
  scripts/emulator.sh start
  # shellcheck disable=SC1091
  source "$KVSINFER_CACHE/emulator.env"
fi

log "Running the tests"
cargo test "$@"
