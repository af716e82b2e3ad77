#!/usr/bin/env bash
# Compute API benchmark (not a test): boot-and-delete throughput and create-to-ACTIVE
# latency against a release build of `nimbus up --fake-hosts N` on a temp data dir.
#
#   (a) GET /compute/v2.1              version document from Python threads: the baseline
#   (b) boot-and-delete cycles/s       POST /servers, GET /servers/{id} every --poll-ms until
#                                      ACTIVE, DELETE; --concurrency workers, --servers cycles
#   (c) create-to-ACTIVE latency       POST sent -> first GET showing ACTIVE
#   (d) POST /servers latency alone    the 202 comes before scheduling
#   (e)/(f) the polling GET and the DELETE
#   (g) create-to-ACTIVE again from a second, smaller run at concurrency 5 (no queueing)
#
# The measuring is done by benchmarks/compute_boot.py (see its docstring); the boot cycles are
# sent by benchmarks/ComputeLoad, a small Swift client built here, since the Python threads
# cost about 2.5 ms of CPU per cycle on the two cores the server also runs on. Before the first
# start the data dir gets a nimbus.conf with a high cpu_allocation_ratio so capacity is
# never the limit; the admin project's quotas are set to unlimited, and nothing is timed
# until all N hosts are registered and up. A run with any non-2xx answer or any server in
# ERROR is not reported.
#
# Usage: benchmarks/compute.sh [--write] [--no-build] [--client swift|python] [--hosts N]
#                              [--servers N] [--concurrency N] [--poll-ms MS]
#                              [--baseline-seconds S]
#   --write             also rewrite the compute results section of BENCHMARKS.md
#   --no-build          use the existing binaries (default: swift build -c release, for
#                       --product nimbus and for benchmarks/ComputeLoad)
#   --client C          who sends the boot cycles: swift (ComputeLoad) or python (threads in
#                       compute_boot.py); default swift if ComputeLoad builds (with
#                       --no-build: if its binary exists), else python
#   --hosts N           fake compute hosts (default 1000)
#   --servers N         measured boot-and-delete cycles (default 2000)
#   --concurrency N     client workers, one connection each (default 50)
#   --poll-ms MS        pause between GETs while waiting for ACTIVE (default 20)
#   --baseline-seconds  length of the (a) run (default 10)
# Environment: NIMBUS_BIN overrides the binary (.build/release/nimbus); PYTHON the
# interpreter (default .venv/bin/python, else python3).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

WRITE=0
BUILD=1
HOSTS=1000
SERVERS=2000
CONCURRENCY=50
POLL_MS=20
BASELINE_SECONDS=10
CLIENT=""
while [ $# -gt 0 ]; do
    case "$1" in
        --write) WRITE=1 ;;
        --no-build) BUILD=0 ;;
        --hosts) HOSTS="$2"; shift ;;
        --servers) SERVERS="$2"; shift ;;
        --concurrency) CONCURRENCY="$2"; shift ;;
        --poll-ms) POLL_MS="$2"; shift ;;
        --baseline-seconds) BASELINE_SECONDS="$2"; shift ;;
        --client)
            case "$2" in swift|python) CLIENT="$2" ;; *) echo "compute.sh: --client is swift or python" >&2; exit 2 ;; esac
            shift ;;
        -h|--help) sed -n '2,36p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "compute.sh: unknown argument: $1" >&2; exit 2 ;;
    esac
    shift
done

PYTHON="${PYTHON:-}"
if [ -z "$PYTHON" ]; then
    if [ -x "$ROOT/.venv/bin/python" ]; then PYTHON="$ROOT/.venv/bin/python"
    elif [ -x /work/main/.venv/bin/python ]; then PYTHON=/work/main/.venv/bin/python
    else PYTHON=python3; fi
fi
for tool in curl "$PYTHON"; do
    command -v "$tool" >/dev/null 2>&1 || { echo "compute.sh: $tool is missing" >&2; exit 1; }
done

LOG_DIR="$ROOT/.build-logs"
mkdir -p "$LOG_DIR"

if [ "$BUILD" -eq 1 ] && [ -z "${NIMBUS_BIN:-}" ]; then
    echo "building: swift build -c release --product nimbus (log: .build-logs/bench-build.log)" >&2
    if ! swift build -c release --product nimbus >"$LOG_DIR/bench-build.log" 2>&1; then
        tail -n 100 "$LOG_DIR/bench-build.log" >&2
        exit 1
    fi
fi
# The load generator is built even with NIMBUS_BIN: it is the client, not the server.
LOAD_PKG="$ROOT/benchmarks/ComputeLoad"
LOAD_BIN="$LOAD_PKG/.build/release/ComputeLoad"
if [ "$BUILD" -eq 1 ] && [ "$CLIENT" != python ]; then
    echo "building: swift build -c release --package-path benchmarks/ComputeLoad (log: .build-logs/bench-computeload-build.log)" >&2
    if ! swift build -c release --package-path "$LOAD_PKG" >"$LOG_DIR/bench-computeload-build.log" 2>&1; then
        tail -n 50 "$LOG_DIR/bench-computeload-build.log" >&2
        if [ "$CLIENT" = swift ]; then exit 1; fi
        echo "compute.sh: ComputeLoad did not build; the Python client sends the boot cycles" >&2
        CLIENT=python
    fi
fi
if [ -z "$CLIENT" ]; then
    if [ -x "$LOAD_BIN" ]; then CLIENT=swift; else CLIENT=python; fi
fi
if [ "$CLIENT" = swift ] && [ ! -x "$LOAD_BIN" ]; then
    echo "compute.sh: no ComputeLoad binary at ${LOAD_BIN#"$ROOT"/} (build it, or use --client python)" >&2
    exit 1
fi

BIN="${NIMBUS_BIN:-$ROOT/.build/release/nimbus}"
# The binary may be being relinked by a build elsewhere: wait a little for it to reappear.
for _ in $(seq 60); do [ -x "$BIN" ] && break; sleep 1; done
[ -x "$BIN" ] || { echo "compute.sh: no binary at $BIN" >&2; exit 1; }

# --- start the server ------------------------------------------------------
WORK="$(mktemp -d /tmp/nimbus-compute-bench.XXXXXX)"
SERVER_PID=""
cleanup() {
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.2; done
        kill -KILL "$SERVER_PID" 2>/dev/null || true
    fi
    [ -f "$WORK/nimbus.log" ] && cp "$WORK/nimbus.log" "$LOG_DIR/bench-compute-nimbus.log"
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -p "$WORK/data"
# Read on the first start (nimbus up only writes its sample file when there is none).
# 1,000 vCPUs per physical CPU: a fake host (8 vCPUs) holds 8,000 1-vCPU servers, so
# placement never runs out of VCPU; RAM (64 MiB flavor, 15.5 GiB per host) holds 248.
# No dataplane either: nothing is wired in this namespace (fake hosts need none).
cat >"$WORK/data/nimbus.conf" <<'EOF'
[DEFAULT]
cpu_allocation_ratio = 1000.0
[network]
dataplane = none
EOF

PORT="$("$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
BASE="http://127.0.0.1:$PORT"

# start_server: 0 once nimbus says it is ready, 1 if it exited first.
start_server() {
    "$BIN" up --data-dir "$WORK/data" --listen "127.0.0.1:$PORT" --fake-hosts "$HOSTS" \
        >"$WORK/nimbus.log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 1200); do
        if grep -q "Nimbus is ready" "$WORK/nimbus.log" 2>/dev/null; then return 0; fi
        kill -0 "$SERVER_PID" 2>/dev/null || return 1
        sleep 0.1
    done
    return 0
}
echo "starting $BIN up --fake-hosts $HOSTS (log: .build-logs/bench-compute-nimbus.log)" >&2
for attempt in 1 2 3 4 5 6; do
    start_server && break
    # A build elsewhere may be relinking the binary ("Text file busy", or briefly absent).
    if [ "$attempt" -lt 6 ] && grep -qE "Text file busy|No such file" "$WORK/nimbus.log"; then
        echo "compute.sh: $(tail -n 1 "$WORK/nimbus.log"); retrying in 10 s" >&2
        sleep 10
        continue
    fi
    echo "compute.sh: nimbus exited early:" >&2
    cat "$WORK/nimbus.log" >&2
    exit 1
done
curl -fs -o /dev/null "$BASE/compute/v2.1" || { echo "compute.sh: nimbus is not answering" >&2; cat "$WORK/nimbus.log" >&2; exit 1; }

# --- measure -------------------------------------------------------------------
COMMIT="$(git rev-parse --short HEAD 2>/dev/null || echo none)"
if [ -n "$(git status --porcelain 2>/dev/null | grep -v '^??' || true)" ]; then COMMIT="$COMMIT+dirty"; fi
CPU="$(awk -F: '/model name/ {gsub(/^ +/, "", $2); print $2; exit}' /proc/cpuinfo 2>/dev/null || echo unknown)"
BIN_SHOWN="${BIN#"$ROOT"/}"

set +e
"$PYTHON" "$ROOT/benchmarks/compute_boot.py" --base "$BASE" --data-dir "$WORK/data" \
    --hosts "$HOSTS" --servers "$SERVERS" --concurrency "$CONCURRENCY" --poll-ms "$POLL_MS" \
    --baseline-seconds "$BASELINE_SECONDS" --json "$LOG_DIR/bench-compute.json" --raw-dir "$LOG_DIR" \
    --commit "$COMMIT" --binary "$BIN_SHOWN" --cpu "$CPU" --server-pid "$SERVER_PID" \
    --client "$CLIENT" --computeload "$LOAD_BIN" >"$WORK/table.md"
STATUS=$?
set -e
if [ "$STATUS" -ne 0 ]; then
    echo "compute.sh: the run failed (server log: .build-logs/bench-compute-nimbus.log)" >&2
    [ "$WRITE" -eq 1 ] && echo "compute.sh: not writing BENCHMARKS.md" >&2
    exit 1
fi
kill -0 "$SERVER_PID" 2>/dev/null || { echo "compute.sh: nimbus died during the run" >&2; tail -n 50 "$WORK/nimbus.log" >&2; exit 1; }

TABLE="$(cat "$WORK/table.md")"
echo
echo "$TABLE"

if [ "$WRITE" -eq 1 ]; then
    "$PYTHON" - "$ROOT/BENCHMARKS.md" "$TABLE" <<'EOF'
import sys
from pathlib import Path

path, table = Path(sys.argv[1]), sys.argv[2]
start, end = "<!-- compute-results:start -->", "<!-- compute-results:end -->"
text = path.read_text()
if start not in text or end not in text:
    sys.exit(f"{path}: markers {start} / {end} not found")
head, rest = text.split(start, 1)
_, tail = rest.split(end, 1)
path.write_text(f"{head}{start}\n{table}\n{end}{tail}")
print(f"\nwrote the results into {path}")
EOF
fi
