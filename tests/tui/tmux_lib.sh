# tests/tui/tmux_lib.sh — what the console's tmux tests share (sourced, not run): the checks that
# KVM and tmux are there, a private tmux server per console, polling the screen until text shows
# up, keys, and starting / quitting a console with its exit status, stderr and terminal mode saved.
#
# The sourcing script sets ASPEN (the binary) and TMP (a scratch directory) first.

fail() {
    echo "FAIL: $*" >&2
    if [ -n "${SOCK:-}" ] && tmux -L "$SOCK" has-session -t c 2>/dev/null; then
        echo "---- screen ----" >&2
        tmux -L "$SOCK" capture-pane -p -t c >&2
        echo "----------------" >&2
    fi
    exit 1
}

need_kvm_and_tmux() {
    [ -x "$ASPEN" ] || fail "no aspen binary at $ASPEN (build first)"
    [ -e /dev/kvm ] || fail "/dev/kvm is missing: the console runs jobs in KVM micro-VMs (enable KVM)"
    [ -r /dev/kvm ] && [ -w /dev/kvm ] || fail "/dev/kvm is not readable and writable by $(id -un)"
    command -v tmux >/dev/null || fail "tmux is not installed (apt-get install tmux)"
}

SOCK=
SOCKS=()
kill_servers() {
    local s
    for s in "${SOCKS[@]}"; do tmux -L "$s" kill-server 2>/dev/null; done
    SOCKS=()
}

T() { tmux -L "$SOCK" "$@"; }
screen() { T capture-pane -p -t c; }
# wait_for REGEX [SECONDS]: until the screen matches (extended regex)
# (while a console launched by launch should be running, its early exit fails at once)
RUNNING=
wait_for() {
    local re=$1 secs=${2:-15} i
    for ((i = 0; i < secs * 20; i++)); do
        screen | grep -Eq -- "$re" && return 0
        if [ -n "$RUNNING" ] && [ -s "$TMP/$RUNNING.exit" ]; then
            cat "$TMP/$RUNNING.err" >&2
            fail "the console exited with status $(cat "$TMP/$RUNNING.exit") while waiting for /$re/"
        fi
        sleep 0.05
    done
    fail "waited ${secs}s for /$re/"
}
# wait_for_text TEXT [SECONDS]: until the screen shows TEXT as it is (no regex: backslashes, |)
wait_for_text() {
    local text=$1 secs=${2:-15} i
    for ((i = 0; i < secs * 20; i++)); do
        screen | grep -Fq -- "$text" && return 0
        sleep 0.05
    done
    fail "waited ${secs}s for the text '$text'"
}
wait_gone() {
    local re=$1 secs=${2:-15} i
    for ((i = 0; i < secs * 20; i++)); do
        screen | grep -Eq -- "$re" || return 0
        sleep 0.05
    done
    fail "waited ${secs}s for /$re/ to go away"
}
keys() { T send-keys -t c "$@"; }
# input_read: until the console has read every byte sent to its terminal (none waiting in the
# pane's tty), for a check timed from when the console got a key rather than from when tmux was
# asked to send it (a console a loaded machine schedules late reads it late). The round trip to
# the tmux server first: what send-keys queued has been written to the pty by its reply.
input_read() {
    local tty
    tty=$(T display-message -p -t c '#{pane_tty}') || fail "no pane tty"
    python3 - "$tty" <<'PY' || fail "the console did not read its terminal's input within 30 s"
import array, fcntl, os, sys, termios, time
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK)
deadline = time.monotonic() + 30
while time.monotonic() < deadline:
    n = array.array("i", [0])
    fcntl.ioctl(fd, termios.FIONREAD, n)
    if n[0] == 0:
        sys.exit(0)
    time.sleep(0.02)
sys.exit(1)
PY
}
# form_joined: the rows of a box drawn 2 columns in from an 80-column screen's edges (the submit
# form), joined into one line: a message wrapped over its rows reads as one
form_joined() { screen | sed -n '2,23p' | cut -c5-77 | sed 's/ *$//' | tr '\n' ' '; }
# text goes in literally (no key-name lookup)
type_text() { T send-keys -t c -l -- "$1"; }

# launch NAME COLS ROWS DB [ARGS...]: `aspen console --db DB --create ARGS...` in a tmux server of its own,
# run from $TMP/NAME.cwd (where a core dump would land); its exit status goes to $TMP/NAME.exit,
# its stderr to $TMP/NAME.err and the terminal's mode after it to $TMP/NAME.stty. Its settings
# (console.conf) live in $TMP/NAME.config, never in the user's. Returns at once.
launch() {
    local name=$1 cols=$2 rows=$3 db=$4
    shift 4
    [ -n "$SOCK" ] && T kill-server 2>/dev/null
    SOCK="aspen-tui-test-$$-$name" # a server of its own per console
    SOCKS+=("$SOCK")
    rm -f "$TMP/$name.exit" "$TMP/$name.stty" "$TMP/$name.err"
    mkdir -p "$TMP/$name.cwd"
    T -f /dev/null new-session -d -s c -x "$cols" -y "$rows" -c "$TMP/$name.cwd" \
        "env LANG=C.UTF-8 TERM=xterm-256color XDG_CONFIG_HOME='$TMP/$name.config' '$ASPEN' console --db '$db' --create $* 2>'$TMP/$name.err'; echo \$? >'$TMP/$name.exit'; stty -a >'$TMP/$name.stty'; echo CONSOLE-EXITED; sleep 300"
    T set-option -t c status off >/dev/null
    RUNNING=$name
}

# quit_and_check NAME: q, then the process is gone with status 0 and nothing on its stderr from a
# sanitizer or a crash, no core file, the screen is the shell's again and the tty is back in cooked
# mode with echo.
quit_and_check() {
    local name=$1 i
    local asked=
    RUNNING=
    keys q
    for ((i = 0; i < 300; i++)); do
        [ -s "$TMP/$name.exit" ] && [ -s "$TMP/$name.stty" ] && break
        # q asks first while the console's own workers run jobs: yes (once)
        if [ -z "$asked" ] && screen | grep -q "given back to the queue"; then
            keys y
            asked=1
        fi
        sleep 0.05
    done
    [ -s "$TMP/$name.exit" ] || fail "the console did not exit within 15 s of q"
    [ "$(cat "$TMP/$name.exit")" = 0 ] || { cat "$TMP/$name.err" >&2; fail "the console exited with $(cat "$TMP/$name.exit")"; }
    if grep -Eq 'Sanitizer|runtime error|Segmentation|core dumped' "$TMP/$name.err"; then
        cat "$TMP/$name.err" >&2
        fail "the console's stderr has a sanitizer or crash report"
    fi
    [ -z "$(ls -A "$TMP/$name.cwd")" ] || fail "files (a core dump?) left in the console's directory: $(ls -A "$TMP/$name.cwd")"
    wait_for "CONSOLE-EXITED" 5
    screen | grep -q "Aspen console" && fail "the console's screen is still showing after exit (alternate screen not left)"
    grep -Eq '(^| )icanon( |$)' "$TMP/$name.stty" || fail "terminal left without icanon: $(cat "$TMP/$name.stty")"
    grep -Eq '(^| )echo( |$)' "$TMP/$name.stty" || fail "terminal left without echo"
    return 0
}

# pg_create_db NAME: for the PostgreSQL tests (run through ctest, fixture pg): checks the tests'
# private server and psql, creates database NAME on it and sets SERVER (its conninfo) and DB (the
# new database's). pg_drop_db drops it again (for the EXIT trap; quiet when there is none).
SERVER=
PG_DBNAME=
pg_create_db() {
    [ -n "${ASPEN_PG_DIR:-}" ] && [ -s "$ASPEN_PG_DIR/conninfo" ] ||
        fail "no PostgreSQL test server (ASPEN_PG_DIR/conninfo): run through ctest (fixture pg)"
    command -v psql >/dev/null || fail "psql is not installed (apt-get install postgresql-client)"
    SERVER=$(cat "$ASPEN_PG_DIR/conninfo")
    psql "$SERVER" -qAt -c "CREATE DATABASE $1" >/dev/null || fail "creating the database $1"
    PG_DBNAME=$1
    DB="$SERVER dbname=$1"
}
pg_drop_db() {
    [ -n "$SERVER" ] && [ -n "$PG_DBNAME" ] &&
        psql "$SERVER" -qAt -c "DROP DATABASE IF EXISTS $PG_DBNAME WITH (FORCE)" >/dev/null 2>&1
    return 0
}
# help_opens_fast TABLE: ? opens the help and esc closes it while a read of the console still
# waits on TABLE, locked by pg_lock_table — the UI thread is free while a read waits on a slow or
# locked database. The lock is held until pg_unlock_table, so the proof is the order (the help came
# while the read was still blocked), not a wall-clock bound a loaded machine can miss.
help_opens_fast() {
    keys "?"
    wait_for "Aspen console - keys" 30
    pg_still_waiting "$1" "the help opened"
    keys Escape
    wait_gone "Aspen console - keys" 30
    pg_still_waiting "$1" "the help closed"
}
# pg_cleanup: the PostgreSQL tests' EXIT trap: the consoles' tmux servers, a locking session
# still holding its table (LOCKER), the test's database and TMP go.
pg_cleanup() {
    kill_servers
    [ -n "$LOCKER" ] && kill "$LOCKER" 2>/dev/null
    pg_drop_db
    rm -rf "$TMP"
}
# pg_lock_table TABLE [SECONDS]: another session holds TABLE of $DB ACCESS EXCLUSIVE (as a long
# migration or a stuck host would), in the background, until pg_unlock_table — or SECONDS (120 by
# default), a bound only for a test killed before its trap. Its pid is in LOCKER (the caller's trap
# kills it); returns once the lock is granted.
LOCKER=
LOCKER_APP="aspen-test-locker-$$"
pg_lock_table() {
    local table=$1 secs=${2:-120} i
    psql "$DB application_name=$LOCKER_APP" -qAt \
        -c "BEGIN; LOCK TABLE $table IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep($secs); COMMIT;" \
        >/dev/null 2>&1 &
    LOCKER=$!
    for ((i = 0; i < 600; i++)); do
        [ "$(psql "$DB" -qAt -c "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
              WHERE c.relname = '$table' AND l.mode = 'AccessExclusiveLock' AND l.granted")" = 1 ] && return 0
        sleep 0.05
    done
    fail "the locking session never took the $table table"
}
# pg_unlock_table: the locking session's statement is cancelled (its transaction rolls back and the
# lock goes); returns once it has ended.
pg_unlock_table() {
    psql "$DB" -qAt -c "SELECT pg_cancel_backend(pid) FROM pg_stat_activity
        WHERE application_name = '$LOCKER_APP'" >/dev/null || fail "cancelling the locking session"
    wait "$LOCKER"
    LOCKER=
}
# pg_lock_waiters TABLE: how many sessions of the console (launched with
# application_name=$CONSOLE_APP in its --db) wait on a SELECT for TABLE's lock.
CONSOLE_APP="aspen-test-console-$$"
pg_lock_waiters() {
    psql "$DB" -qAt -c "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
        JOIN pg_stat_activity a ON a.pid = l.pid
        WHERE c.relname = '$1' AND NOT l.granted AND a.application_name = '$CONSOLE_APP'
          AND a.query ILIKE 'SELECT%'"
}
# pg_wait_waiting TABLE: until a read of the console waits on TABLE's lock (instead of assuming
# that its periodic read has started after some sleep: under load it may come late).
pg_wait_waiting() {
    local i
    for ((i = 0; i < 600; i++)); do
        [ "$(pg_lock_waiters "$1")" -ge 1 ] && return 0
        sleep 0.05
    done
    fail "no read of the console waited on the locked $1 table within 30 s"
}
# pg_still_waiting TABLE WHAT: fails unless a read of the console still waits on TABLE: WHAT
# happened while the database was not answering.
pg_still_waiting() {
    [ "$(pg_lock_waiters "$1")" -ge 1 ] ||
        fail "$2 only after the console's read of $1 had stopped waiting (the UI thread waited?)"
}
