#!/usr/bin/env bash
# The main job on real input, with no cloud account: OpenCV's real face detector on real footage
# and a real photo, and recorded weapon, fire, smoke and licence-plate detections replayed over
# real footage, all into a local directory, then a summary of what came out.
#
#   bash scripts/demo.sh [--aws] [OUTPUT_DIR]      (default: ./out, emptied first)
#
# With --aws the replayed events and snapshots also go to Kinesis, S3 and DynamoDB in the local
# AWS emulator (no account needed), and what the emulator holds is read back and printed.
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$ROOT"
AWS=false
if [ "${1:-}" = "--aws" ]; then
  AWS=true
  shift
fi
OUT=$(realpath -m "${1:-out}")

install_debian_packages
fetch_astronaut
fetch_footage

log "Building the plugin (release)"
cargo build --release --quiet
# Wherever cargo put it: CARGO_TARGET_DIR, when set, moves the whole target directory.
TARGET_DIR=$(realpath -m "${CARGO_TARGET_DIR:-$ROOT/target}")
if [ ! -e "$TARGET_DIR/release/libgstkvsinfer.so" ]; then
  echo "demo: the plugin is not at $TARGET_DIR/release/libgstkvsinfer.so after the build" >&2
  exit 1
fi
export GST_PLUGIN_PATH="$TARGET_DIR/release${GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}"
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

AWS_PROPERTIES=()
if $AWS; then
  # An emulator that was already running is left running; one started here is stopped.
  scripts/emulator.sh status || trap 'scripts/emulator.sh stop >/dev/null' EXIT
  scripts/emulator.sh start >/dev/null
  # shellcheck disable=SC1091
  source "$KVSINFER_CACHE/emulator.env"
  log "Provisioning the stream, bucket and table in the emulator at $KVSINFER_EMULATOR"
  # The emulator takes any credentials; these keep the SDK from looking for real ones.
  AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing \
    cargo run --release --quiet --example provision -- --stream detection-events --shards 1 \
      --bucket detection-snapshots --table events-table --region us-east-1 \
      --endpoint-uri "$KVSINFER_EMULATOR"
  AWS_PROPERTIES=(kinesis-stream=detection-events s3-bucket=detection-snapshots
    dynamodb-table=events-table endpoint-uri="$KVSINFER_EMULATOR" force-path-style=true
    region=us-east-1 access-key=testing secret-access-key=testing)
fi

run filesrc location="$MEDIA/vtest.avi" ! decodebin ! videoconvert \
  ! kvsinferreplay location="$ROOT/examples/replay/vtest-detections.jsonl" \
  ! kvsinfersink camera-id=vtest output-dir="$OUT" "${AWS_PROPERTIES[@]}"

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

if $AWS; then
  log "Reading back what the emulator holds"
  # boto3 comes with moto in the emulator's virtual environment.
  "$KVSINFER_CACHE/venv/bin/python" - "$KVSINFER_EMULATOR" <<'PY'
import json, sys
import boto3
endpoint = sys.argv[1]
kw = dict(endpoint_url=endpoint, region_name="us-east-1",
          aws_access_key_id="testing", aws_secret_access_key="testing")
kinesis, s3, ddb = (boto3.client(n, **kw) for n in ("kinesis", "s3", "dynamodb"))

shard = kinesis.list_shards(StreamName="detection-events")["Shards"][0]["ShardId"]
it = kinesis.get_shard_iterator(StreamName="detection-events", ShardId=shard,
                                ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
records = []
while it:
    out = kinesis.get_records(ShardIterator=it, Limit=1000)
    records += out["Records"]
    if not out["Records"]:
        break
    it = out.get("NextShardIterator")
types = {}
for r in records:
    t = json.loads(r["Data"])["payload"]["type"]
    types[t] = types.get(t, 0) + 1
print(f"Kinesis detection-events: {len(records)} records {types}")

objects = s3.list_objects_v2(Bucket="detection-snapshots").get("Contents", [])
print(f"S3 detection-snapshots: {len(objects)} snapshots")
for o in objects[:3]:
    head = s3.head_object(Bucket="detection-snapshots", Key=o["Key"])
    print(f"  {o['Key']}  {o['Size']} bytes  {head['ContentType']}  {head['Metadata']}")

items = ddb.scan(TableName="events-table")["Items"]
print(f"DynamoDB events-table: {len(items)} items")
if items:
    first = sorted(items, key=lambda i: int(i["ts_ms"]["N"]))[0]
    print("  " + json.dumps(first))
PY
fi
