#!/usr/bin/env bash
# The main job on real input, with no cloud account: a real detector (OpenCV's facedetect) on a
# real photo, events written to a local directory, and a summary of what came out.
#
#   bash scripts/demo.sh [OUTPUT_DIR]      (default: ./out)
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$ROOT"
OUT=$(realpath -m "${1:-out}")

install_debian_packages
fetch_astronaut

log "Building the plugin (release)"
cargo build --release --quiet
export GST_PLUGIN_PATH="$ROOT/target/release${GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}"

log "facedetect on astronaut.png -> $OUT"
gst-launch-1.0 -q filesrc location="$MEDIA/astronaut.png" ! pngdec ! imagefreeze num-buffers=30 \
  ! videoconvert ! facedetect display=false \
  ! kvsinfersink camera-id=astronaut output-dir="$OUT"

python3 - "$OUT" <<'PY'
import collections, json, os, sys
out = sys.argv[1]
events = [json.loads(line) for line in open(os.path.join(out, "events.jsonl"))]
by_type = collections.Counter(e["payload"]["type"] for e in events)
print(f"\n{len(events)} events in {out}/events.jsonl")
for event_type, count in sorted(by_type.items()):
    print(f"  {event_type:10} {count}")
if events:
    print("\nfirst envelope:")
    print(json.dumps(events[0], indent=2))
PY
