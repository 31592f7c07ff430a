#!/usr/bin/env bash
# bench/pg_engine.sh [--rounds N] [--jobs N] ASPEN [ASPEN...] (make bench-pg) — `aspen bench
# engine` on PostgreSQL (issue 8), durably: a private server of its own (tests/store/pg_server.sh,
# the tests' server) started with fsync=on and synchronous_commit=on (ASPEN_PG_EXTRA_OPTS; the
# tests run it with fsync off), and pg_stat_statements loaded. Each round runs every ASPEN binary
# given once, in turn, the order reversed every other round (alternating rounds: this machine is
# shared and its load drifts, so only ratios between binaries run in the same minutes mean
# anything), each on a fresh database, and the KVM floor once
# (../shared/bench/kvm_floor.c, its warm p50 and exit cost, for scale). One JSON line per run:
# the bench's own JSON plus "server_cpu_us_per_job" — the CPU of every process of the cluster
# (postmaster, backends, walwriter, checkpointer...) from /proc over the whole run, submit
# included — and "client_cpu_us_per_job" (the bench process's run phase, as the bench reports it).
# "jobs_upd" and "jobs_hot_upd" are the jobs table's row updates over the run and how many of
# them were HOT (pg_stat_user_tables: a HOT update writes no index entry), "wal_bytes_per_job" the
# cluster's WAL over the run, submit included.
# With ASPEN_PG_STATEMENTS=1 the top statements by server time of each run follow (µs per call
# and per row). Reports only; nothing passes or fails on time (docs/BENCHMARKS.md).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
rounds=3 jobs=20000
# options first, then the binaries (make bench-pg: PG_BENCH_ARGS, then its own build's aspen)
while [[ $# -gt 0 ]]; do
  case $1 in
  --rounds) rounds=$2; shift 2 ;;
  --jobs) jobs=$2; shift 2 ;;
  -h | --help) sed -n '2,17p' "$0"; exit 0 ;;
  *) break ;;
  esac
done
[[ $rounds =~ ^[1-9][0-9]{0,3}$ && $jobs =~ ^[1-9][0-9]{0,7}$ ]] ||
  { echo "pg_engine.sh: --rounds and --jobs take a positive whole number" >&2; exit 2; }
[[ $# -ge 1 ]] || { echo "usage: $0 [--rounds N] [--jobs N] ASPEN [ASPEN...]" >&2; exit 2; }
for a in "$@"; do
  [[ -x $a ]] || { echo "pg_engine.sh: $a is not an executable aspen: build it first" >&2; exit 1; }
done

pgdir=$(mktemp -d /tmp/aspen-bench-pg.XXXXXX)
trap 'bash "$root/tests/store/pg_server.sh" stop "$pgdir" >/dev/null 2>&1; rm -rf "$pgdir"' EXIT
export ASPEN_PG_OWNER_PID=$$ # the server's watchdog stops it if this script is killed
# Durable commits: the figure issue 8 asks for (a job counts once its COMMIT is on disk).
ASPEN_PG_EXTRA_OPTS="-c fsync=on -c synchronous_commit=on -c shared_buffers=128MB"
ASPEN_PG_EXTRA_OPTS+=" -c max_wal_size=1GB -c shared_preload_libraries=pg_stat_statements"
export ASPEN_PG_EXTRA_OPTS
bash "$root/tests/store/pg_server.sh" start "$pgdir" >&2
conn=$(cat "$pgdir/conninfo")
psql() { command psql -X -q -v ON_ERROR_STOP=1 "$@"; }
psql "$conn" -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" >/dev/null
echo "server: $(psql "$conn" -Atc "SELECT 'fsync=' || current_setting('fsync') || ' synchronous_commit=' || current_setting('synchronous_commit') || ' ' || version()")" >&2

floor=
floor_src=${ASPEN_FLOOR_SRC:-$root/../shared/bench/kvm_floor.c}
if [[ -f $floor_src ]]; then
  floor=$pgdir/kvm_floor
  cc -O2 -o "$floor" "$floor_src"
fi

# The cluster's CPU so far, in clock ticks: the postmaster's own and that of its children it has
# reaped (cutime + cstime: the bench's backend exits before the run is over), and the live
# children's. Fields 14-17 of /proc/PID/stat, after the ")" that ends the command name.
pm_pid=$(head -1 "$(sed -n 1p "$pgdir/state")/postmaster.pid")
server_ticks() {
  local sum p
  sum=$(sed 's/.*) //' "/proc/$pm_pid/stat" | awk '{print $12 + $13 + $14 + $15}')
  for p in $(pgrep -P "$pm_pid"); do
    sum=$((sum + $(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12 + $13}' || echo 0)))
  done
  echo "$sum"
}
hz=$(getconf CLK_TCK)
# Waits (at most 10 s) until no backend of database $1 is left, so that every one has been reaped
# into the postmaster's cutime before the next sample (one read while it exits would be lost).
backends_gone() {
  local t
  for ((t = 0; t < 100; t++)); do
    pgrep -P "$pm_pid" -f "^postgres: [^ ]+ $1 " >/dev/null || return 0
    sleep 0.1
  done
}
json_num() { sed -n "s/.*\"$2\": *\([-0-9.eE+]*\).*/\1/p" <<<"$1"; }

for ((round = 1; round <= rounds; round++)); do
  if [[ -n $floor ]]; then
    f=$("$floor" 300 | tail -1)
    echo "{\"round\":$round,\"kvm_floor\":$f}"
  fi
  # Every other round runs the binaries in the opposite order, so that none always runs first
  # (right after the floor) or last.
  order=()
  for ((i = 1; i <= $#; i++)); do order+=("$i"); done
  if ((round % 2 == 0)); then
    for ((i = 1; i <= $#; i++)); do order[i - 1]=$(($# - i + 1)); done
  fi
  for i in "${order[@]}"; do
    aspen=${!i}
    db=bench_${round}_$i
    psql "$conn" -c "CREATE DATABASE $db" >/dev/null
    dconn="${conn% dbname=*} dbname=$db"
    # the extension lives in the postgres database (aspen wants its own empty); it sees every one
    psql "$conn" -Atc "SELECT pg_stat_statements_reset()" >/dev/null
    backends_gone postgres
    lsn0=$(psql "$conn" -Atc "SELECT pg_current_wal_lsn()")
    t0=$(server_ticks)
    out=$("$aspen" bench engine --jobs "$jobs" --json --db "$dconn" | tail -1)
    backends_gone "$db"
    t1=$(server_ticks)
    srv=$(awk -v d=$((t1 - t0)) -v hz="$hz" -v n="$jobs" 'BEGIN { printf "%.1f", d * 1e6 / hz / n }')
    cli=$(json_num "$out" cpu_us_per_job)
    # The backends have exited (backends_gone), so their table statistics have been flushed.
    upd=$(psql "$dconn" -At -F , -c "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables
        WHERE relname = 'jobs'")
    wal=$(psql "$conn" -Atc "SELECT round(pg_wal_lsn_diff(pg_current_wal_lsn(), '$lsn0') / $jobs)")
    echo "{\"round\":$round,\"aspen\":\"$aspen\",\"server_cpu_us_per_job\":$srv,\"client_cpu_us_per_job\":${cli:-null},\"jobs_upd\":${upd%,*},\"jobs_hot_upd\":${upd#*,},\"wal_bytes_per_job\":$wal,\"bench\":$out}"
    if [[ ${ASPEN_PG_STATEMENTS:-0} == 1 ]]; then
      psql "$conn" -At -F ' | ' -c "SELECT round(total_exec_time::numeric, 1) AS ms, calls, rows,
          round((total_exec_time * 1000 / greatest(calls, 1))::numeric, 1) AS us_call,
          round((total_exec_time * 1000 / greatest(rows, 1))::numeric, 1) AS us_row,
          left(regexp_replace(query, '\s+', ' ', 'g'), 110)
        FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = '$db')
        ORDER BY total_exec_time DESC LIMIT 14" | sed 's/^/  /'
    fi
    psql "$conn" -c "DROP DATABASE $db" >/dev/null
  done
done
