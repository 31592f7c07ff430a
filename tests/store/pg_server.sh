#!/usr/bin/env bash
# tests/store/pg_server.sh start|stop|status|down|crash|up DIR — a private PostgreSQL server for the store's
# tests: its own data directory (DIR/data), a unix socket in DIR (or a short /tmp directory when
# DIR's path is too long for a socket) and loopback on a free port, trust authentication for the
# superuser "aspen", no other access. ctest starts it as a fixture (tests/store/CMakeLists.txt)
# and stops it afterwards; a test never assumes a server is already running.
#
# PostgreSQL refuses to run as root, so as root the server runs as the system user "postgres"
# (made by Debian's postgresql-common) or, if that user is missing, "aspen-pg" (created here).
# `start` writes DIR/conninfo (a libpq key=value string for the socket), DIR/port and
# DIR/conninfo-tcp (the same server over 127.0.0.1). `stop` stops it and removes its files.
# `down` stops it as an administrator's restart does (pg_ctl -m fast: every session is ended with
# "FATAL: terminating connection due to administrator command") and keeps its data; `up` starts
# it again on the same port and socket (the outage tests: tests/tui/console_pgoutage_test.sh).
# `crash` stops it as a crash does (pg_ctl -m immediate: sessions end without a FATAL of their
# own, and libpq may first report a failed write: tests/cli/worker_pgstop_test.sh); `up` starts
# it again after recovery.
#
# A run interrupted by Ctrl-C (or killed) never runs ctest's cleanup fixture or the test's EXIT
# trap, and the server would run on. So `start` also leaves a watchdog, in its own session (the
# terminal's Ctrl-C does not reach it): it waits for the process that owns the server — the
# ctest running us, else $ASPEN_PG_OWNER_PID if set — and stops the server once that process is
# gone, unless the server was stopped (or DIR given to another server) first. A `start` on a DIR
# whose server was left behind anyway (the watchdog killed too) stops that one first.
set -euo pipefail

usage() { echo "usage: $0 start|stop|status|down|crash|up DIR" >&2; exit 2; }
[[ $# -eq 2 || ( $# -eq 4 && $1 == watch ) ]] || usage
cmd=$1
mkdir -p "$2"
dir=$(cd "$2" && pwd)

bindir=
for d in /usr/lib/postgresql/*/bin; do [[ -x $d/initdb ]] && bindir=$d; done
if [[ -z $bindir ]]; then
  echo "pg_server: PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb):" \
       "run scripts/setup.sh (it installs the Debian packages postgresql and libpq-dev)" >&2
  exit 1
fi

# Who runs the server, and a wrapper to run a command as them.
as_owner() { "$@"; }
owner=$(id -un)
if [[ $(id -u) -eq 0 ]]; then
  if getent passwd postgres >/dev/null; then
    owner=postgres
  else
    owner=aspen-pg
    getent passwd "$owner" >/dev/null ||
      useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$owner"
  fi
  as_owner() { runuser -u "$owner" -- "$@"; }
fi

state=$dir/state # where this server's data and socket are: one line each
read_state() {
  data= sock=
  if [[ -f $state ]]; then { read -r data; read -r sock; } <"$state" || true; fi
}

stop_server() {
  read_state
  if [[ -n $data && -f $data/postmaster.pid ]]; then
    as_owner "$bindir/pg_ctl" -D "$data" -m fast -w -t 30 stop >/dev/null 2>&1 ||
      as_owner "$bindir/pg_ctl" -D "$data" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
  fi
  if [[ -n $data ]]; then
    rm -rf "$data"
    [[ $data == /tmp/aspen-pg-data.*/data ]] && { rmdir "${data%/data}" 2>/dev/null || true; }
  fi
  [[ -n $sock && $sock != "$dir" ]] && rm -rf "$sock"
  rm -f "$state" "$dir/conninfo" "$dir/conninfo-tcp" "$dir/port" "$dir/initdb.log"
}

# The server's options on PORT (start and up): the socket in $sock, loopback, no fsync (the tests
# need no durability). $ASPEN_PG_EXTRA_OPTS comes last and so wins: bench/pg_engine.sh turns fsync
# back on there for the durable figure.
server_opts() { echo "-p $1 -k '$sock' -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100 ${ASPEN_PG_EXTRA_OPTS:-}"; }

# The ctest process this script runs under (the fixture's owner), or nothing.
owner_pid() {
  if [[ -n ${ASPEN_PG_OWNER_PID:-} ]]; then echo "$ASPEN_PG_OWNER_PID"; return; fi
  local p=$PPID comm
  while ((p > 1)); do
    comm=$(cat "/proc/$p/comm" 2>/dev/null) || return 0
    if [[ $comm == ctest ]]; then echo "$p"; return; fi
    p=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $2}') || return 0
    [[ -n $p ]] || return 0
  done
}
# A process's start time (field 22 of /proc/PID/stat): a pid reused later is not the owner.
started_at() { sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | awk '{print $20}'; }

case $cmd in
watch)
  # watch DIR OWNER_PID PORT: the server started on PORT is stopped when OWNER_PID ends.
  trap '' INT HUP
  pid=$3 port=$4 t0=$(started_at "$3")
  [[ -n $t0 ]] || t0=gone
  while [[ $(started_at "$pid") == "$t0" && -f $dir/port && $(cat "$dir/port" 2>/dev/null) == "$port" ]]; do
    sleep 1
  done
  # the owner is gone but the same server is still up: nobody else will stop it
  if [[ -f $dir/port && $(cat "$dir/port" 2>/dev/null) == "$port" ]]; then stop_server; fi
  ;;
stop)
  stop_server
  ;;
down|crash)
  read_state
  [[ -n $data && -f $dir/port ]] || { echo "pg_server: no server in $dir" >&2; exit 1; }
  mode=fast
  [[ $cmd == crash ]] && mode=immediate
  as_owner "$bindir/pg_ctl" -D "$data" -m $mode -w -t 30 stop >/dev/null
  ;;
up)
  read_state
  [[ -n $data && -f $dir/port ]] || { echo "pg_server: no server in $dir" >&2; exit 1; }
  port=$(cat "$dir/port")
  as_owner "$bindir/pg_ctl" -D "$data" -l "$data/server.log" -w -t 60 \
    -o "$(server_opts "$port")" \
    start >/dev/null || { cat "$data/server.log" >&2; exit 1; }
  ;;
status)
  read_state
  [[ -n $data ]] && as_owner "$bindir/pg_ctl" -D "$data" status
  ;;
start)
  stop_server # a server left by an interrupted run
  data=$dir/data
  # The server's user must be able to reach DIR; if a parent directory is closed to it, the data
  # goes to a private directory in /tmp instead.
  if ! as_owner test -x "$dir"; then
    data=$(mktemp -d /tmp/aspen-pg-data.XXXXXX)/data
    [[ $owner != "$(id -un)" ]] && chown "$owner" "${data%/data}"
  fi
  # A unix socket path is limited to 107 bytes ("/.s.PGSQL.NNNNN" included).
  sock=$dir
  if ((${#sock} > 80)) || ! as_owner test -w "$dir"; then
    sock=$(mktemp -d /tmp/aspen-pg.XXXXXX)
  fi
  printf '%s\n%s\n' "$data" "$sock" >"$state"
  mkdir -p "$data"
  [[ $owner != "$(id -un)" ]] && chown "$owner" "$data" "$sock"
  chmod 700 "$data"
  as_owner "$bindir/initdb" -D "$data" -U aspen -A trust -E UTF8 --locale=C --no-sync \
    >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; stop_server; exit 1; }
  # A free port: try random ones until the server starts (another may take one between a check
  # and the bind, so the server's own start is the test).
  for try in 1 2 3 4 5 6 7 8 9 10; do
    port=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
    if as_owner "$bindir/pg_ctl" -D "$data" -l "$data/server.log" -w -t 60 \
         -o "$(server_opts "$port")" \
         start >/dev/null 2>&1; then
      echo "host=$sock port=$port user=aspen dbname=postgres" >"$dir/conninfo"
      echo "host=127.0.0.1 port=$port user=aspen dbname=postgres" >"$dir/conninfo-tcp"
      echo "$port" >"$dir/port"
      watcher=$(owner_pid)
      if [[ -n $watcher ]]; then
        setsid bash "$0" watch "$dir" "$watcher" "$port" </dev/null >/dev/null 2>&1 &
      fi
      echo "pg_server: PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') as $owner," \
           "socket $sock, 127.0.0.1:$port, data $data"
      exit 0
    fi
    grep -q "could not bind\|Address already in use" "$data/server.log" 2>/dev/null || break
  done
  echo "pg_server: the server did not start; its log:" >&2
  cat "$data/server.log" >&2 2>/dev/null || true
  stop_server
  exit 1
  ;;
*)
  usage
  ;;
esac
