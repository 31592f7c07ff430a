#!/usr/bin/env bash
# bench/pg_queue_limit.sh [--rounds N] [--jobs N] [--procs N] ASPEN [ASPEN...] — issues 8 and 10:
# what a bounded named queue costs the default queue's jobs on PostgreSQL. On a private server of
# its own (tests/store/pg_server.sh, pg_stat_statements loaded), for each round, each ASPEN binary
# (order reversed every other round: the machine is shared, only ratios within a round mean
# anything) and each setting — none, `queue set pgq --limit 3`, `queue set pgq --rate 5/1s`
# (pgq never gets a job) — a fresh database, N `aspen worker --workers 2 --quiet` processes, one
# `aspen submit --type echo --count JOBS`, timed until no job is queued or running. One JSON line
# per run: seconds, jobs_per_s, the claim's statements (pg_stat_statements calls of every statement
# reading jobs' heads, queue settings or queue counts, and reserving) per job, lock waits seen by
# sampling pg_stat_activity every 0.2 s, and the load average. Reports only: nothing passes or
# fails on time (docs/BENCHMARKS.md). Needs /dev/kvm and the guest binaries (ASPEN_GUEST_DIR).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
rounds=2 jobs=20000 procs=3
while [[ $# -gt 0 ]]; do
  case $1 in
  --rounds) rounds=$2; shift 2 ;;
  --jobs) jobs=$2; shift 2 ;;
  --procs) procs=$2; shift 2 ;;
  -h | --help) sed -n '2,12p' "$0"; exit 0 ;;
  *) break ;;
  esac
done
[[ $rounds =~ ^[1-9][0-9]{0,2}$ && $jobs =~ ^[1-9][0-9]{0,6}$ && $procs =~ ^[1-9]$ ]] ||
  { echo "pg_queue_limit.sh: --rounds, --jobs and --procs take a positive whole number" >&2; exit 2; }
[[ $# -ge 1 ]] || { echo "usage: $0 [--rounds N] [--jobs N] [--procs N] ASPEN [ASPEN...]" >&2; exit 2; }
for a in "$@"; do
  [[ -x $a ]] || { echo "pg_queue_limit.sh: $a is not an executable aspen: build it first" >&2; exit 1; }
done
export ASPEN_GUEST_DIR=${ASPEN_GUEST_DIR:-$root/target/guest-binaries}

pgdir=$(mktemp -d /tmp/aspen-bench-pgq.XXXXXX)
workers=()
cleanup() {
  for p in "${workers[@]}"; do kill "$p" 2>/dev/null || true; done
  bash "$root/tests/store/pg_server.sh" stop "$pgdir" >/dev/null 2>&1; rm -rf "$pgdir"
}
trap cleanup EXIT
export ASPEN_PG_OWNER_PID=$$ # the server's watchdog stops it if this script is killed
export ASPEN_PG_EXTRA_OPTS="-c shared_preload_libraries=pg_stat_statements"
bash "$root/tests/store/pg_server.sh" start "$pgdir" >&2
conn=$(cat "$pgdir/conninfo")
psql() { command psql -X -q -v ON_ERROR_STOP=1 "$@"; }
psql "$conn" -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" >/dev/null

run() { # ASPEN DB SETTING
  local aspen=$1 db=$2 setting=$3 dconn t0 t1 left waits=0 samples=0 w i k
  psql "$conn" -c "CREATE DATABASE $db" >/dev/null
  dconn="${conn% dbname=*} dbname=$db"
  case $setting in
  limit) "$aspen" queue set pgq --limit 3 --db "$dconn" >/dev/null ;;
  rate) "$aspen" queue set pgq --rate 5/1s --db "$dconn" >/dev/null ;;
  esac
  psql "$conn" -Atc "SELECT pg_stat_statements_reset()" >/dev/null
  workers=()
  for ((i = 0; i < procs; i++)); do
    "$aspen" worker --workers 2 --quiet --db "$dconn" >/dev/null 2>&1 &
    workers+=($!)
  done
  sleep 1
  t0=$(date +%s%N)
  "$aspen" submit --type echo --payload '{"n":1}' --count "$jobs" --db "$dconn" >/dev/null
  for ((k = 0; k < 6000; k++)); do # at most 20 minutes
    left=$(psql "$dconn" -Atc "SELECT count(*) FROM jobs WHERE state IN ('queued', 'running')")
    w=$(psql "$conn" -Atc "SELECT count(*) FROM pg_stat_activity WHERE datname = '$db'
        AND wait_event_type = 'Lock'")
    waits=$((waits + w)) samples=$((samples + 1))
    [[ $left == 0 ]] && break
    sleep 0.2
  done
  t1=$(date +%s%N)
  for p in "${workers[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${workers[@]}"; do wait "$p" 2>/dev/null || true; done
  workers=()
  local calls
  calls=$(psql "$conn" -Atc "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements
      WHERE dbid = (SELECT oid FROM pg_database WHERE datname = '$db') AND (query LIKE 'WITH head AS%'
      OR query LIKE 'SELECT id, priority, run_at FROM jobs%' OR query LIKE '%FROM queues WHERE name = ANY%'
      OR query LIKE 'SELECT name, coalesce(concurrency%' OR query LIKE 'SELECT \$_, queue, count(*) FROM jobs WHERE state = \$_ GROUP BY queue UNION ALL SELECT \$_, (SELECT%'
      OR query LIKE 'SELECT \$_, queue, count(*) FROM jobs WHERE state = \$_ GROUP BY queue UNION ALL SELECT \$_, j.queue%')")
  awk -v a="$aspen" -v s="$setting" -v n="$jobs" -v p="$procs" -v ns=$((t1 - t0)) -v c="$calls" \
    -v w="$waits" -v m="$samples" -v l="$(cut -d' ' -f1-3 /proc/loadavg)" -v r="$round" 'BEGIN {
    printf "{\"round\":%d,\"aspen\":\"%s\",\"setting\":\"%s\",\"procs\":%d,\"jobs\":%d,\"seconds\":%.2f,\"jobs_per_s\":%.0f,\"claim_statements_per_job\":%.3f,\"lock_waits_sampled\":%d,\"samples\":%d,\"load\":\"%s\"}\n",
      r, a, s, p, n, ns / 1e9, n / (ns / 1e9), c / n, w, m, l }'
  psql "$conn" -c "DROP DATABASE $db" >/dev/null
}

for ((round = 1; round <= rounds; round++)); do
  order=()
  for ((i = 1; i <= $#; i++)); do order+=("$i"); done
  if ((round % 2 == 0)); then
    for ((i = 1; i <= $#; i++)); do order[i - 1]=$(($# - i + 1)); done
  fi
  for i in "${order[@]}"; do
    for setting in none limit rate; do
      run "${!i}" "bq_${round}_${i}_$setting" "$setting"
    done
  done
done
