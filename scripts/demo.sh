#!/usr/bin/env bash
# The main job on real input, with no cloud account: OpenCV's real face detector on real footage
# and a real photo, and recorded weapon, fire, smoke and licence-plate detections replayed over
# real footage, all into a local directory, then a summary of what came out.
#
#   bash scripts/demo.sh [OUTPUT_DIR]      (default: ./out, emptied first)
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$ROOT"
OUT=$(realpath -m "${1:-out}")

install_debian_packages
fetch_astronaut
fetch_footage

log "Building the plugin (release)"
cargo build --release --quiet
export GST_PLUGIN_PATH="$ROOT/target/release${GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}"
rm -rf "$OUT"
mkdir -p "$OUT"

run() {
  log "$*"
  # shellcheck disable=SC2068
  gst-launch-1.0 -q $@
}

run filesrc location="$MEDIA/Megamind.avi" ! decodebin ! videoconvert \
  ! facedetect display=false ! kvsinfersink camera-id=megamind output-dir="$OUT"

run filesrc location="$MEDIA/astronaut.png" ! pngdec ! imagefreeze num-buffers=30 \
  ! videoconvert ! facedetect display=false ! kvsinfersink camera-id=astronaut output-dir="$OUT"

run filesrc location="$MEDIA/vtest.avi" ! decodebin ! videoconvert \
  ! kvsinferreplay location="$ROOT/examples/replay/vtest-detections.jsonl" \
  ! kvsinfersink camera-id=vtest output-dir="$OUT"

python3 - "$OUT" <<'PY'
import collections, json, os, sys
out = sys.argv[1]
events = [json.loads(line) for line in open(os.path.join(out, "events.jsonl"))]
print(f"\n{len(events)} events in {out}/events.jsonl")
by_camera = collections.Counter((e["camera_id"], e["payload"]["type"]) for e in events)
for (camera, event_type), count in sorted(by_camera.items()):
    print(f"  {camera:10} {event_type:8} {count}")
snapshots = [os.path.join(d, f) for d, _, fs in os.walk(out) for f in fs if f.endswith(".jpg")]
print(f"\n{len(snapshots)} snapshots under {out}")
if events:
    print("\nfirst envelope:")
    print(json.dumps(events[0], indent=2))
PY
