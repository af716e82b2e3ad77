#!/usr/bin/env bash
# Identity API benchmark (not a test): a release build of nimbus on a temp
# data dir, loaded with wrk over loopback.
#
#   (a) GET  /identity/v3               version discovery: the baseline
#   (b) GET  /identity/v3/auth/tokens   validate a pre-issued token
#   (c) POST /identity/v3/auth/tokens   issue a token by the "token" method
#   (d) POST /identity/v3/auth/tokens   issue a token by "password" (bcrypt)
#
# Prints a Markdown table of requests/s, p50 and p99 latency, each also as a
# ratio to (a) measured in the same run, so results from different machines
# can be compared by their ratios.
#
# Usage: benchmarks/identity.sh [--write] [--no-build] [--duration SECONDS]
#   --write        also rewrite the results section of BENCHMARKS.md
#   --no-build     use the existing binary (default: swift build -c release --product nimbus)
#   --duration N   seconds for (a)-(c) (default 10; (d) runs 3x as long)
# Environment: NIMBUS_BIN overrides the binary (.build/release/nimbus).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

WRITE=0
BUILD=1
DURATION=10
while [ $# -gt 0 ]; do
    case "$1" in
        --write) WRITE=1 ;;
        --no-build) BUILD=0 ;;
        --duration) DURATION="$2"; shift ;;
        -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "identity.sh: unknown argument: $1" >&2; exit 2 ;;
    esac
    shift
done

for tool in wrk curl python3; do
    command -v "$tool" >/dev/null 2>&1 || {
        echo "identity.sh: $tool is missing (apt-get install wrk curl)" >&2
        exit 1
    }
done

LOG_DIR="$ROOT/.build-logs"
mkdir -p "$LOG_DIR"
WRK_DIR="$ROOT/benchmarks/wrk"

if [ "$BUILD" -eq 1 ] && [ -z "${NIMBUS_BIN:-}" ]; then
    echo "building: swift build -c release --product nimbus (log: .build-logs/bench-build.log)" >&2
    if ! swift build -c release --product nimbus >"$LOG_DIR/bench-build.log" 2>&1; then
        tail -n 100 "$LOG_DIR/bench-build.log" >&2
        exit 1
    fi
fi
BIN="${NIMBUS_BIN:-$ROOT/.build/release/nimbus}"
[ -x "$BIN" ] || { echo "identity.sh: no binary at $BIN" >&2; exit 1; }

# --- start the server ------------------------------------------------------
WORK="$(mktemp -d /tmp/nimbus-bench.XXXXXX)"
SERVER_PID=""
cleanup() {
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.2; done
        kill -KILL "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
BASE="http://127.0.0.1:$PORT/identity"
PASSWORD="bench-$(python3 -c 'import secrets; print(secrets.token_hex(8))')"

# No dataplane: as root, nimbus up would otherwise wire its default network (a bridge in this
# namespace, a qdhcp- namespace with dnsmasq), which outlives the server.
mkdir -p "$WORK/data"
printf '[network]\ndataplane = none\n' >"$WORK/data/nimbus.conf"
"$BIN" up --data-dir "$WORK/data" --listen "127.0.0.1:$PORT" --admin-password "$PASSWORD" \
    >"$WORK/nimbus.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 600); do
    if grep -q "Nimbus is ready" "$WORK/nimbus.log" 2>/dev/null \
        || curl -fs -o /dev/null "$BASE/v3" 2>/dev/null; then
        break
    fi
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        echo "identity.sh: nimbus exited early:" >&2
        cat "$WORK/nimbus.log" >&2
        exit 1
    fi
    sleep 0.1
done
curl -fs -o /dev/null "$BASE/v3" || { echo "identity.sh: nimbus is not answering" >&2; cat "$WORK/nimbus.log" >&2; exit 1; }

# --- a token and the admin project ----------------------------------------
AUTH_BODY=$(python3 - "$PASSWORD" <<'EOF'
import json, sys
print(json.dumps({"auth": {
    "identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "domain": {"id": "default"}, "password": sys.argv[1]}}},
    "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}}))
EOF
)
curl -fsS -D "$WORK/headers" -o "$WORK/token.json" -H 'Content-Type: application/json' \
    -d "$AUTH_BODY" "$BASE/v3/auth/tokens"
NIMBUS_TOKEN="$(awk 'tolower($1) == "x-subject-token:" {print $2}' "$WORK/headers" | tr -d '\r')"
NIMBUS_PROJECT_ID="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["token"]["project"]["id"])' "$WORK/token.json")"
[ -n "$NIMBUS_TOKEN" ] && [ -n "$NIMBUS_PROJECT_ID" ] || { echo "identity.sh: could not get a token" >&2; exit 1; }
export NIMBUS_TOKEN NIMBUS_PROJECT_ID NIMBUS_USER=admin NIMBUS_PASSWORD="$PASSWORD"

# Every scripted request must succeed before it is timed.
check() {
    local what="$1" code; shift
    code="$(curl -s -o "$WORK/check.out" -w '%{http_code}' "$@")"
    case "$code" in
        2*) ;;
        *) echo "identity.sh: $what answered $code: $(head -c 300 "$WORK/check.out")" >&2; exit 1 ;;
    esac
}
check "version discovery" "$BASE/v3"
check "token validation" -H "X-Auth-Token: $NIMBUS_TOKEN" -H "X-Subject-Token: $NIMBUS_TOKEN" "$BASE/v3/auth/tokens"
check "token method" -H 'Content-Type: application/json' \
    -d "{\"auth\":{\"identity\":{\"methods\":[\"token\"],\"token\":{\"id\":\"$NIMBUS_TOKEN\"}},\"scope\":{\"project\":{\"id\":\"$NIMBUS_PROJECT_ID\"}}}}" \
    "$BASE/v3/auth/tokens"

# --- run wrk ----------------------------------------------------------------
# run_wrk NAME ARGS...: wrk's output goes to $WORK/NAME.txt
run_wrk() {
    local name="$1"; shift
    echo "wrk $* ..." >&2
    wrk "$@" >"$WORK/$name.txt" 2>&1 || { cat "$WORK/$name.txt" >&2; exit 1; }
    cp "$WORK/$name.txt" "$LOG_DIR/bench-$name.txt"
}

wrk -t2 -c32 -d2s "$BASE/v3" >/dev/null 2>&1 || true   # warm-up
run_wrk a --latency -t2 -c32 -d"${DURATION}s" "$BASE/v3"
run_wrk b --latency -t2 -c32 -d"${DURATION}s" -s "$WRK_DIR/token_validate.lua" "$BASE/v3/auth/tokens"
run_wrk c --latency -t2 -c32 -d"${DURATION}s" -s "$WRK_DIR/token_issue_token.lua" "$BASE/v3/auth/tokens"
# bcrypt at cost 12 is ~0.3 s of CPU per request: few connections, longer run.
run_wrk d --latency -t2 -c4 -d"$((DURATION * 3))s" --timeout 30s -s "$WRK_DIR/token_issue_password.lua" "$BASE/v3/auth/tokens"

kill -0 "$SERVER_PID" 2>/dev/null || { echo "identity.sh: nimbus died during the run" >&2; cat "$WORK/nimbus.log" >&2; exit 1; }

# --- the table ----------------------------------------------------------------
COMMIT="$(git rev-parse --short HEAD 2>/dev/null || echo none)"
if [ -n "$(git status --porcelain 2>/dev/null | grep -v '^??' || true)" ]; then COMMIT="$COMMIT+dirty"; fi
CPU="$(awk -F: '/model name/ {gsub(/^ +/, "", $2); print $2; exit}' /proc/cpuinfo 2>/dev/null || echo unknown)"
WRK_VERSION="$( (wrk -v 2>&1 || true) | head -n 1 | awk '{print $2}')"

BIN_SHOWN="${BIN#"$ROOT"/}"

TABLE="$(python3 - "$WORK" "$DURATION" "$COMMIT" "$CPU" "$(nproc)" "$WRK_VERSION" "$BIN_SHOWN" <<'EOF'
import datetime, re, sys
from pathlib import Path

work, duration, commit, cpu, cores, wrk_version, binary = sys.argv[1:]
UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}

def parse(name):
    text = (Path(work) / f"{name}.txt").read_text()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    lat = {}
    for pct, value, unit in re.findall(r"^\s+(50|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s|m)\s*$", text, re.M):
        lat[pct] = float(value) * UNITS[unit]
    total = int(re.search(r"(\d+) requests in", text).group(1))
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    errors = re.search(r"Socket errors:.*", text)
    return {"rps": rps, "p50": lat["50"], "p99": lat["99"], "total": total,
            "non2xx": int(bad.group(1)) if bad else 0,
            "socket_errors": errors.group(0) if errors else ""}

rows = [
    ("a", "(a) `GET /v3` version discovery", "-t2 -c32"),
    ("b", "(b) `GET /v3/auth/tokens` validate", "-t2 -c32"),
    ("c", "(c) `POST /v3/auth/tokens` token method", "-t2 -c32"),
    ("d", "(d) `POST /v3/auth/tokens` password (bcrypt 12)", "-t2 -c4"),
]
data = {key: parse(key) for key, _, _ in rows}
base = data["a"]

def ms(v):
    return f"{v:.3f} ms" if v < 10 else f"{v:.1f} ms"

print(f"Run {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}, commit `{commit}`, "
      f"`{binary}`, {cores} cores ({cpu}), wrk {wrk_version}, "
      f"{duration} s per run ((d): {int(duration) * 3} s).")
print()
print("| Benchmark | wrk | Requests/s | × (a) | p50 | × (a) | p99 | × (a) | Requests | Non-2xx |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for key, label, conns in rows:
    d = data[key]
    print(f"| {label} | `{conns}` | {d['rps']:,.1f} | {d['rps'] / base['rps']:.3f} | "
          f"{ms(d['p50'])} | {d['p50'] / base['p50']:.1f} | {ms(d['p99'])} | "
          f"{d['p99'] / base['p99']:.1f} | {d['total']:,} | {d['non2xx']} |")
notes = [f"{key}: {d['socket_errors']}" for key, d in data.items() if d["socket_errors"]]
if notes:
    print()
    print("wrk reported " + "; ".join(notes) + ".")
if any(d["non2xx"] for d in data.values()):
    print()
    print("**Some responses were not 2xx: these figures are not valid.**")
EOF
)"

echo
echo "$TABLE"

BAD_RUNS="$(grep -l "Non-2xx or 3xx responses" "$WORK"/[abcd].txt 2>/dev/null || true)"
if [ -n "$BAD_RUNS" ]; then
    echo "identity.sh: some responses were not 2xx (see .build-logs/bench-*.txt)" >&2
    [ "$WRITE" -eq 1 ] && echo "identity.sh: not writing BENCHMARKS.md" >&2
    exit 1
fi

if [ "$WRITE" -eq 1 ]; then
    python3 - "$ROOT/BENCHMARKS.md" "$TABLE" <<'EOF'
import sys
from pathlib import Path

path, table = Path(sys.argv[1]), sys.argv[2]
start, end = "<!-- identity-results:start -->", "<!-- identity-results:end -->"
text = path.read_text()
if start not in text or end not in text:
    sys.exit(f"{path}: markers {start} / {end} not found")
head, rest = text.split(start, 1)
_, tail = rest.split(end, 1)
path.write_text(f"{head}{start}\n{table}\n{end}{tail}")
print(f"\nwrote the results into {path}")
EOF
fi
