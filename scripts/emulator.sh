#!/usr/bin/env bash
# Copyright (C) 2026 gst-plugin-kvsinfer developers
# SPDX-License-Identifier: MIT OR Apache-2.0
#
# A local AWS emulator (moto) for the tests, examples and benchmarks.
#
#   scripts/emulator.sh start   # prints the endpoint, writes $CACHE/emulator.env
#   scripts/emulator.sh stop
#   scripts/emulator.sh status  # exit status 0 while it runs
#
# The env file holds `export KVSINFER_EMULATOR=http://127.0.0.1:PORT`; source it before
# `cargo test` so the AWS tests know where the emulator listens.
set -euo pipefail

MOTO_VERSION="5.2.5"
CACHE="${KVSINFER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kvsinfer}"
VENV="$CACHE/venv"
ENV_FILE="$CACHE/emulator.env"
PID_FILE="$CACHE/emulator.pid"
LOG_FILE="$CACHE/emulator.log"

die() {
    echo "emulator.sh: $*" >&2
    exit 1
}

ensure_venv() {
    if [ -x "$VENV/bin/moto_server" ] &&
        "$VENV/bin/pip" show moto 2>/dev/null | grep -qx "Version: $MOTO_VERSION"; then
        return
    fi
    mkdir -p "$CACHE"
    if [ ! -x "$VENV/bin/python" ]; then
        if ! python3 -m venv "$VENV"; then
            # Debian splits venv support out of python3 itself.
            rm -rf "$VENV"
            apt-get install -y python3-venv || die "cannot install python3-venv"
            python3 -m venv "$VENV" || die "cannot create a virtual environment at $VENV"
        fi
    fi
    "$VENV/bin/pip" install --quiet "moto[server]==$MOTO_VERSION" ||
        die "cannot install moto[server]==$MOTO_VERSION"
}

free_port() {
    "$VENV/bin/python" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

running() {
    [ -f "$PID_FILE" ] && kill -0 "$(cat "$PID_FILE")" 2>/dev/null
}

start() {
    if running; then
        cat "$ENV_FILE"
        return
    fi
    ensure_venv

    local port endpoint
    port="$(free_port)"
    endpoint="http://127.0.0.1:$port"
    nohup "$VENV/bin/moto_server" -H 127.0.0.1 -p "$port" >"$LOG_FILE" 2>&1 &
    echo $! >"$PID_FILE"

    # moto imports every service model at start, which takes a few seconds on a small machine.
    for _ in $(seq 1 120); do
        if "$VENV/bin/python" -c "import urllib.request, sys
urllib.request.urlopen('$endpoint/moto-api/', timeout=1)" 2>/dev/null; then
            echo "export KVSINFER_EMULATOR=$endpoint" >"$ENV_FILE"
            cat "$ENV_FILE"
            return
        fi
        running || die "moto_server exited; see $LOG_FILE"
        sleep 0.5
    done
    stop
    die "moto_server did not answer at $endpoint within 60 s; see $LOG_FILE"
}

stop() {
    if running; then
        kill "$(cat "$PID_FILE")"
    fi
    rm -f "$PID_FILE" "$ENV_FILE"
}

case "${1:-}" in
start) start ;;
stop) stop ;;
status) running ;;
*) die "usage: $0 start|stop|status" ;;
esac
