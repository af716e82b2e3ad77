#!/usr/bin/env bash
# Image upload and download throughput against `dd` writing the same bytes to the same disk.
#
#   benchmarks/image.sh [--no-build] [--size-mib N] [--rounds N] [--write]
#
# Builds a release nimbus (`swift build -c release --product nimbus`; not with --no-build or
# NIMBUS_BIN, which names another binary), starts it on a temporary data dir, makes an N MiB
# file of random bytes (default 1024), then measures in one run:
#   dd       dd if=FILE of=DATADIR/dd.out bs=1M conv=fsync   (the disk's own write rate)
#   upload   curl -T FILE  PUT /image/v2/images/{id}/file    (hashing, inspection, fsync included)
#   download curl -o DATADIR/dl.out GET /image/v2/images/{id}/file
# in N rounds (default 3), and prints the median MB/s of each with its median ratio to dd.
# --write puts the table into BENCHMARKS.md.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BUILD=1 SIZE_MIB=1024 WRITE=0 ROUNDS=3
while [ $# -gt 0 ]; do
    case "$1" in
        --no-build) BUILD=0 ;;
        --size-mib) SIZE_MIB="$2"; shift ;;
        --write) WRITE=1 ;;
        --rounds) ROUNDS="$2"; shift ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
if [ "$BUILD" -eq 1 ] && [ -z "${NIMBUS_BIN:-}" ]; then
    # Only the server: a whole-package release build stops at NimbusFuzzTargets (@testable import).
    mkdir -p .build-logs
    echo "building: swift build -c release --product nimbus (log: .build-logs/bench-build.log)" >&2
    swift build -c release --product nimbus >.build-logs/bench-build.log 2>&1 || { tail -n 100 .build-logs/bench-build.log >&2; exit 1; }
fi
BIN="${NIMBUS_BIN:-$ROOT/.build/release/nimbus}"
WORK="$(mktemp -d /tmp/nimbus-image-bench.XXXXXX)"
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
# No dataplane: as root, nimbus up would otherwise wire its default network (a bridge in this
# namespace, a qdhcp- namespace with dnsmasq), which outlives the server.
mkdir -p "$WORK/data"
printf '[network]\ndataplane = none\n' >"$WORK/data/nimbus.conf"
"$BIN" up --data-dir "$WORK/data" --listen "127.0.0.1:$PORT" >"$WORK/nimbus.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 1 120); do grep -q "Nimbus is ready" "$WORK/nimbus.log" 2>/dev/null && break; sleep 0.5; done
BASE="http://127.0.0.1:$PORT"
PW="$(cat "$WORK/data/admin-password")"
TOKEN="$(curl -s -i -X POST "$BASE/identity/v3/auth/tokens" -H 'Content-Type: application/json' -d "{\"auth\":{\"identity\":{\"methods\":[\"password\"],\"password\":{\"user\":{\"name\":\"admin\",\"domain\":{\"id\":\"default\"},\"password\":\"$PW\"}}},\"scope\":{\"project\":{\"name\":\"admin\",\"domain\":{\"id\":\"default\"}}}}}" | awk -F': ' 'tolower($1)=="x-subject-token"{print $2}' | tr -d '\r')"
[ -n "$TOKEN" ] || { echo "image.sh: no token from nimbus (log follows)" >&2; cat "$WORK/nimbus.log" >&2; exit 1; }

head -c "$((SIZE_MIB * 1024 * 1024))" /dev/urandom >"$WORK/source"
sync
seconds() { python3 -c 'import sys,time; t=time.monotonic(); import subprocess; subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); print(time.monotonic()-t)' "$@"; }

# Rounds alternate dd, upload and download so that whatever else the shared machine is doing
# weighs on all three alike; each figure is the median of its rounds, and each ratio the
# median of the rounds' ratios.
DD=() UP=() DOWN=()
for round in $(seq 1 "$ROUNDS"); do
    DD+=("$(seconds dd if="$WORK/source" of="$WORK/data/dd.out" bs=1M conv=fsync)")
    rm -f "$WORK/data/dd.out"
    ID="$(curl -s -X POST "$BASE/image/v2/images" -H "X-Auth-Token: $TOKEN" -H 'Content-Type: application/json' \
        -d '{"name":"bench","disk_format":"raw","container_format":"bare"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')"
    UP+=("$(seconds curl -sf -X PUT -T "$WORK/source" -H "X-Auth-Token: $TOKEN" -H 'Content-Type: application/octet-stream' "$BASE/image/v2/images/$ID/file")")
    DOWN+=("$(seconds curl -sf -o "$WORK/data/dl.out" -H "X-Auth-Token: $TOKEN" "$BASE/image/v2/images/$ID/file")")
    cmp -s "$WORK/source" "$WORK/data/dl.out" || { echo "downloaded bytes differ" >&2; exit 1; }
    rm -f "$WORK/data/dl.out"
    curl -sf -X DELETE -H "X-Auth-Token: $TOKEN" "$BASE/image/v2/images/$ID"
done

TABLE="$(python3 - "$SIZE_MIB" "$(git rev-parse --short HEAD)" "${DD[*]}" "${UP[*]}" "${DOWN[*]}" <<'PY'
import statistics, sys
size, commit = int(sys.argv[1]), sys.argv[2]
dd, up, down = ([float(x) for x in arg.split()] for arg in sys.argv[3:6])
mb = size * 1.048576
rate = lambda seconds: mb / statistics.median(seconds)
ratio = lambda seconds: statistics.median(d / s for d, s in zip(dd, seconds))
print(f"Run with {size} MiB of random bytes, {len(dd)} rounds (medians), commit `{commit}`, release build, SQLite, filesystem store.\n")
print("| Measurement | MB/s | × dd |")
print("|---|---:|---:|")
print(f"| `dd bs=1M conv=fsync` to the data dir | {rate(dd):,.0f} | 1.00 |")
print(f"| upload `PUT /v2/images/{{id}}/file` (MD5 + SHA-512 + format inspection + fsync) | {rate(up):,.0f} | {ratio(up):.2f} |")
print(f"| download `GET /v2/images/{{id}}/file` (to the same disk) | {rate(down):,.0f} | {ratio(down):.2f} |")
PY
)"
echo "$TABLE"
if [ "$WRITE" -eq 1 ]; then
    python3 - "$ROOT/BENCHMARKS.md" "$TABLE" <<'PY'
import sys, re
path, table = sys.argv[1], sys.argv[2]
text = open(path).read()
block = "<!-- image-results:start -->\n" + table + "\n<!-- image-results:end -->"
if "<!-- image-results:start -->" in text:
    text = re.sub(r"<!-- image-results:start -->.*?<!-- image-results:end -->", block, text, flags=re.S)
else:
    text = text.rstrip() + "\n\n## Image data path\n\n`benchmarks/image.sh --write` (see the script's header for what each line measures).\n\n" + block + "\n"
open(path, "w").write(text)
PY
    echo "wrote the results into BENCHMARKS.md"
fi
