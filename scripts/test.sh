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
# One test at a time: the fault tests time the streaming thread, and on a 2-core machine a
# neighbouring test's load would be measured instead.
RUST_TEST_THREADS=${RUST_TEST_THREADS:-1} cargo test "$@"
