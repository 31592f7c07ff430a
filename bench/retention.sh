#!/usr/bin/env bash
# bench/retention.sh [BUILD_DIR] [ARGS...] — the retention pruner's effect on claim latency
# (aspen-bench-retention, issue 10) on SQLite and on PostgreSQL, one JSON line per backend and
# round. PostgreSQL runs on a private server of its own (tests/store/pg_server.sh, the one the
# tests use), started here and stopped on exit; skipped with a note when PostgreSQL is not
# installed. ARGS go to both runs: --old 1000000 is the issue's "a million finished jobs pruned
# while 10,000 jobs run". Reports only; nothing passes or fails on time (docs/BENCHMARKS.md).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
[[ $build = /* ]] || build=$root/$build
shift || true
bin=$build/aspen-bench-retention
[[ -x $bin ]] || { echo "retention.sh: $bin is missing: make build first" >&2; exit 1; }
export ASPEN_GUEST_DIR=${ASPEN_GUEST_DIR:-$build/guests}

echo "== retention pruner on SQLite"
"$bin" "$@"

pgdir=$(mktemp -d /tmp/aspen-bench-pg.XXXXXX)
trap 'bash "$root/tests/store/pg_server.sh" stop "$pgdir" >/dev/null 2>&1; rm -rf "$pgdir"' EXIT
if ! bash "$root/tests/store/pg_server.sh" start "$pgdir" >/dev/null; then
  echo "== PostgreSQL skipped: its server could not be started (scripts/setup.sh installs it)"
  exit 0
fi
echo "== retention pruner on PostgreSQL"
"$bin" --pg "$(cat "$pgdir/conninfo")" "$@"
