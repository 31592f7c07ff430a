/* pg_open.c — the PostgreSQL backend's handle and its ops table (api.c calls through it):
 * connecting, with errors a user can act on (server unreachable, authentication refused,
 * database missing, a database that is not Aspen's, a schema from a newer Aspen); the schema,
 * created on first use under an advisory lock so that two hosts opening a fresh database at once
 * do not race; running statements (prepared once per connection, text parameters, binary bytea);
 * reconnecting with backoff when the connection is lost outside a transaction, and a clear EIO
 * inside one; SQLSTATE → ASPEN_STORE_E* mapping; transactions with their count deltas and the
 * data version; settings; binaries by content hash; check and recount.
 *
 * Rule, as on SQLite: a database that is not Aspen's, or holds a newer schema, is never written.
 * The first statements only read the catalog and aspen_schema; nothing is written before they
 * check out, and the check is repeated under the lock before the schema is created. */
#include "pg_store.h"
#include "schedule_backend.h"

#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ASPEN_APPLICATION_ID 0x4173706e /* "Aspn", as in SQLite's header */
#define PG_SCHEMA_LOCK 0x4173706e       /* pg_advisory_xact_lock key for creating/migrating */
#define BYTEAOID 17                     /* pg_type.oid of bytea (catalog/pg_type_d.h) */
#define PG_RECONNECT_MS 5000            /* how long pg_reconnect keeps trying */

/* store/postgres/schema_v4.sql, embedded by store/CMakeLists.txt (pg_schema_v4.c). */
extern const char pg_schema_v4_sql[];

/* ---- small helpers --------------------------------------------------------------------------- */

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* libpq's messages end in a newline and may span lines: one line, no trailing space. */
static void one_line(const char *in, char *out, size_t size)
{
    size_t n = 0;
    bool space = false;
    for (const char *p = in ? in : ""; *p && n + 1 < size; p++) {
        if (*p == '\n' || *p == '\t' || *p == '\r' || *p == ' ') {
            space = n > 0;
            continue;
        }
        if (space && n + 2 < size)
            out[n++] = ' ';
        space = false;
        out[n++] = *p;
    }
    out[n] = '\0';
}

/* The password in a conninfo (URI or key=value), or NULL; free with free(). */
static char *conninfo_password(const char *name)
{
    char *emsg = NULL;
    PQconninfoOption *opts = PQconninfoParse(name ? name : "", &emsg);
    PQfreemem(emsg);
    if (!opts)
        return NULL;
    char *pw = NULL;
    for (PQconninfoOption *o = opts; o->keyword; o++)
        if (strcmp(o->keyword, "password") == 0 && o->val && *o->val)
            pw = store_strdup(o->val);
    PQconninfoFree(opts);
    return pw;
}

/* Replaces every occurrence of the handle's password in err->msg by ***: libpq or the server
 * could echo part of a connection string, and a message must never carry the password. */
static void scrub(const char *name, aspen_store_error *err)
{
    if (!err || !err->msg[0])
        return;
    char *pw = conninfo_password(name);
    if (!pw)
        return;
    size_t pl = strlen(pw);
    char out[sizeof err->msg];
    size_t n = 0;
    for (const char *p = err->msg; *p && n + 1 < sizeof out;) {
        if (strncmp(p, pw, pl) == 0) {
            for (const char *r = "***"; *r && n + 1 < sizeof out; r++)
                out[n++] = *r;
            p += pl;
        } else {
            out[n++] = *p++;
        }
    }
    out[n] = '\0';
    memcpy(err->msg, out, n + 1);
    free(pw);
}

/* Where the connection went (or tried to): "socket /run/x/.s.PGSQL.5432" or "127.0.0.1 port
 * 5432". */
static void where_tried(PGconn *c, char *out, size_t size)
{
    const char *host = c ? PQhost(c) : NULL, *port = c ? PQport(c) : NULL;
    if (!host || !*host)
        host = "/var/run/postgresql"; /* libpq's default socket directory on Debian */
    if (!port || !*port)
        port = "5432";
    if (host[0] == '/' || host[0] == '@')
        snprintf(out, size, "socket %s/.s.PGSQL.%s", host, port);
    else
        snprintf(out, size, "%s port %s", host, port);
}

/* ---- waiting for answers ---------------------------------------------------------------------- */

/* libpq's blocking calls (PQexec, PQexecPrepared, PQgetResult, PQconnectdb) wait for the server
 * without a bound. A server that stops answering without closing the connection — its process
 * stopped (SIGSTOP, a debugger), its VM paused, a network path that drops packets without a reset
 * — held them forever: keepalives do not run while a request is outstanding, and on loopback a
 * stopped server's kernel still acknowledges every byte, so neither keepalives nor
 * tcp_user_timeout notice. So every connection is in nonblocking mode and every wait for the
 * server goes through await_answer: poll() on the socket with a bound on the server's silence
 * (the answer deadline, struct pg_store answer_ms; reset by every byte that arrives or leaves, so
 * a long result streaming in or a big binary going out is not cut). When it passes, the
 * connection is closed (drop_silent) and the caller's lost-connection path takes over: reconnect
 * and retry outside a transaction, "rolled back" inside one, "unknown outcome" for a COMMIT. */

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool giving_up(const struct pg_store *s);

/* A wait ended for silence while its owner gave up: the server is taken as gone for this process
 * (one process talks to one server), and later waits while giving up only peek
 * (PG_STOP_PEEK_MS). Cleared by any answer. */
static _Atomic bool g_silent_at_stop;

/* How long a wait may see no progress: the answer deadline (0: none), or while giving up
 * PG_STOP_SILENCE_MS (PG_STOP_PEEK_MS once the server was found silent). */
static int64_t silence_bound(const struct pg_store *s, int64_t deadline)
{
    if (!giving_up(s))
        return deadline;
    int64_t stop = atomic_load(&g_silent_at_stop) ? PG_STOP_PEEK_MS : PG_STOP_SILENCE_MS;
    return deadline > 0 && deadline < stop ? deadline : stop;
}

/* Waits on fd for `events` until ready (1, *revents set), the server has been silent since
 * *last for the bound (0), or poll fails (-1). With a give_up flag the wait wakes every 50 ms to
 * see it (then the bound shrinks, silence_bound); without one it sleeps the whole bound. */
static int wait_socket(const struct pg_store *s, int fd, short events, int64_t deadline,
                       int64_t *last, short *revents)
{
    for (;;) {
        int64_t bound = silence_bound(s, deadline), now = mono_ms();
        int64_t left = bound > 0 ? *last + bound - now : -1;
        if (bound > 0 && left <= 0)
            return 0;
        int ms = left < 0 || left > INT32_MAX ? -1 : (int)left;
        if (s->give_up && (ms < 0 || ms > 50))
            ms = 50;
        struct pollfd pfd = {.fd = fd, .events = events};
        int n = poll(&pfd, 1, ms);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n > 0) {
            *revents = pfd.revents;
            *last = mono_ms();
            return 1;
        }
    }
}

/* The connection's answer deadline now. */
static int64_t answer_deadline(const struct pg_store *s)
{
    return s->long_wait ? PG_MIGRATE_ANSWER_MS : s->answer_ms;
}

/* Gives up on a server that said nothing for silent_ms: closes the connection. libpq's Terminate
 * goes into the socket behind what was sent; a server that runs again reads it all in order, so
 * a COMMIT already sent may still land (the "unknown outcome" of lost_err), and what is left open
 * after it is rolled back. The prepared statements went with the connection. */
static void drop_silent(struct pg_store *s, int64_t silent_ms)
{
    s->silent_ms = silent_ms > 0 ? silent_ms : 1;
    if (giving_up(s))
        atomic_store(&g_silent_at_stop, true);
    PQfinish(s->conn);
    s->conn = NULL;
    s->n_prepared = 0;
}

/* Until PQgetResult can be called without blocking: sends what libpq holds (nonblocking mode)
 * and reads what arrives. 0 ready (a result, or a broken connection that libpq reports as
 * one), 1 the server was silent past the deadline (the connection is closed: drop_silent). */
static int await_answer(struct pg_store *s)
{
    PGconn *c = s->conn;
    int64_t start = mono_ms(), last = start;
    for (;;) {
        int flushing = PQflush(c); /* 0 all sent, 1 more to send, -1 broken */
        if (flushing < 0)
            return 0; /* libpq marked the connection bad; PQgetResult says so */
        if (!flushing && !PQisBusy(c)) {
            atomic_store(&g_silent_at_stop, false);
            return 0;
        }
        short ev = 0;
        int got = wait_socket(s, PQsocket(c), (short)(POLLIN | (flushing ? POLLOUT : 0)),
                              answer_deadline(s), &last, &ev);
        if (got == 0) {
            drop_silent(s, mono_ms() - start);
            return 1;
        }
        if (got < 0 || ((ev & (POLLIN | POLLERR | POLLHUP)) && !PQconsumeInput(c)))
            return 0; /* the connection broke: libpq's error result says how */
    }
}

/* The results of what was just sent, as PQexec gives them: the last one, or the first error.
 * NULL when the server did not answer in time (closed, s->silent_ms set) or nothing came. */
static PGresult *collect(struct pg_store *s)
{
    PGresult *keep = NULL;
    for (;;) {
        if (await_answer(s)) {
            PQclear(keep);
            return NULL;
        }
        PGresult *r = PQgetResult(s->conn);
        if (!r)
            return keep;
        ExecStatusType st = PQresultStatus(r);
        if (keep && PQresultStatus(keep) == PGRES_FATAL_ERROR) {
            PQclear(r); /* the first error is the one that matters */
            continue;
        }
        PQclear(keep);
        keep = r;
        if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH ||
            PQstatus(s->conn) == CONNECTION_BAD)
            return keep;
    }
}

PGresult *pg_exec_script(struct pg_store *s, const char *sql)
{
    if (!s->conn || !PQsendQuery(s->conn, sql))
        return NULL;
    return collect(s);
}

/* ---- the server's clock ------------------------------------------------------------------------ */

/* This process's skew from the server (pg_store.h, "Time"): one value for the process, since one
 * process talks to one database server; every handle re-measures it when it connects and every
 * minute. */
static _Atomic int64_t g_skew_ms;

int64_t pg_clock_skew_ms(void) { return atomic_load(&g_skew_ms); }

static int64_t wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Server clock minus ours, from one round trip (error: half of it). Best effort: a failure keeps
 * the last value (a lost connection is found by the next statement). */
static void measure_skew(struct pg_store *s)
{
    int64_t t0 = wall_us();
    PGresult *r = pg_exec_script(s, "SELECT (extract(epoch from clock_timestamp()) * 1000000)::bigint");
    int64_t t1 = wall_us();
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
        int64_t server = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        int64_t skew_us = server - (t0 + (t1 - t0) / 2);
        int64_t skew = (skew_us + (skew_us >= 0 ? 500 : -500)) / 1000;
        atomic_store(&g_skew_ms, skew > -PG_SKEW_IGNORE_MS && skew < PG_SKEW_IGNORE_MS ? 0 : skew);
        s->skew_measured_ms = t1 / 1000;
    }
    PQclear(r);
}

/* ---- connecting ------------------------------------------------------------------------------- */

static bool has(const char *hay, const char *needle) { return hay && strstr(hay, needle); }

/* The reason in libpq's text for a connection that failed ("Connection refused", "No such file
 * or directory"): what follows its last "failed: ", up to the advice libpq appends (its "Is the
 * server running ..." repeats ours). The whole text, with the host and port we name anyway and
 * a multi-host list, made the message too long for its buffer and cut the advice off. */
static const char *connect_reason(char *lib)
{
    char *why = lib;
    for (char *p = strstr(lib, "failed: "); p; p = strstr(p + 1, "failed: "))
        why = p + strlen("failed: ");
    char *advice = strstr(why, " Is the server running");
    if (advice)
        *advice = '\0';
    if (strlen(why) > 160)
        strcpy(why + 157, "...");
    return why;
}

/* Maps a failed connection attempt to a code and a message with what to do. */
static int connect_err(struct pg_store *s, PGconn *c, aspen_store_error *err, const char *when)
{
    char lib[300], tried[200];
    one_line(c ? PQerrorMessage(c) : "out of memory", lib, sizeof lib);
    where_tried(c, tried, sizeof tried);
    const char *db = c && PQdb(c) ? PQdb(c) : "?", *user = c && PQuser(c) ? PQuser(c) : "?";
    const char *host = c && PQhost(c) ? PQhost(c) : "", *port = c && PQport(c) ? PQport(c) : "";
    int code;
    if (has(lib, "database \"") && has(lib, "does not exist"))
        code = store_err(err, ASPEN_STORE_ENOTFOUND,
                         "database \"%s\" does not exist on the PostgreSQL server at %s (%s): "
                         "create it (createdb%s%s%s%s -O %s %s, run as a role that may create "
                         "databases, e.g. su postgres -c \"createdb …\"), or pass an existing "
                         "database in --db",
                         db, tried, s->shown, *host ? " -h " : "", host, *port ? " -p " : "", port,
                         user, db);
    else if (has(lib, "authentication failed") || has(lib, "no pg_hba.conf entry") ||
             has(lib, "no password supplied") || (has(lib, "role \"") && has(lib, "does not exist")) ||
             has(lib, "password is required") || has(lib, "permission denied for database") ||
             has(lib, "not permitted to log in"))
        code = store_err(err, ASPEN_STORE_EPERM,
                         "the PostgreSQL server at %s refused user \"%s\" for database \"%s\" "
                         "(libpq: %s): check the user and password in --db (or ~/.pgpass, "
                         "PGPASSWORD) and the server's pg_hba.conf",
                         tried, user, db, lib);
    else if (has(lib, "too many clients") || has(lib, "starting up") ||
             has(lib, "shutting down") || has(lib, "in recovery mode"))
        code = store_err(err, ASPEN_STORE_EBUSY,
                         "the PostgreSQL server at %s is not accepting connections now (libpq: "
                         "%s)%s: try again in a moment",
                         tried, lib, when);
    else
        code = store_err(err, ASPEN_STORE_EIO,
                         "cannot reach the PostgreSQL server for %s at %s (%s)%s. Is it "
                         "running? Start it (systemctl start postgresql, pg_ctlcluster VERSION "
                         "main start, or pg_ctl -D DATADIR start), or fix host and port in --db",
                         s->shown, tried, connect_reason(lib), when);
    scrub(s->base.name, err);
    if (err && (code == ASPEN_STORE_EIO || code == ASPEN_STORE_EBUSY))
        err->disconnected = true; /* down, stopping or starting: it may come back */
    return code;
}

/* Runs one statement without parameters on a fresh connection (session set-up). */
static int session_exec(struct pg_store *s, const char *sql, const char *what,
                        aspen_store_error *err)
{
    PGresult *r = pg_exec_script(s, sql);
    int code = 0;
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        code = pg_err(s, err, r, what);
    PQclear(r);
    return code;
}

/* libpq hands notices and the server's unsolicited errors to a notice processor; its default
 * writes them on stderr, which draws over the console's screen (and gives a worker's log
 * libpq's multi-line text). Every connection takes this one instead: the store's messages are
 * its only output. A FATAL or PANIC (the server going away) is kept for the lost-connection
 * message; NOTICEs and WARNINGs of Aspen's own statements (IF NOT EXISTS ...) are dropped. */
static void pg_notice(void *arg, const char *message)
{
    struct pg_store *s = arg;
    if (!s || !message)
        return;
    if (strncmp(message, "FATAL", 5) == 0 || strncmp(message, "PANIC", 5) == 0 ||
        strncmp(message, "ERROR", 5) == 0)
        one_line(message, s->server_said, sizeof s->server_said);
}

/* libpq's connect_timeout of conninfo c in ms, as libpq reads it (0 or none: no bound; under
 * 2 s: 2 s). */
static int64_t connect_bound(PGconn *c)
{
    int64_t ms = 0;
    PQconninfoOption *o = PQconninfo(c);
    for (PQconninfoOption *k = o; k && k->keyword; k++)
        if (strcmp(k->keyword, "connect_timeout") == 0 && k->val && *k->val)
            ms = strtoll(k->val, NULL, 10) * 1000;
    PQconninfoFree(o);
    return ms <= 0 ? 0 : ms < 2000 ? 2000 : ms;
}

/* PQconnectdbParams without its unbounded waits: a server that accepts the connection but never
 * answers the startup (stopped: on loopback and a unix socket its kernel still accepts) held it
 * for connect_timeout per attempt with no way out for a stopping owner. The same states driven
 * with PQconnectPoll under connect_timeout (the whole attempt, every host of a list) and the
 * give-up bound. *silent_ms: how long the server was silent when the attempt was given up (0:
 * it ended on its own; see PQstatus). */
static PGconn *connect_bounded(struct pg_store *s, const char *const *keys,
                               const char *const *vals, int64_t *silent_ms)
{
    *silent_ms = 0;
    PGconn *c = PQconnectStartParams(keys, vals, 1);
    if (!c || PQstatus(c) == CONNECTION_BAD)
        return c;
    int64_t bound = connect_bound(c), start = mono_ms(), last = start;
    PostgresPollingStatusType st = PGRES_POLLING_WRITING;
    while (st != PGRES_POLLING_OK && st != PGRES_POLLING_FAILED) {
        short ev = 0;
        /* The bound is on the whole attempt: a server that trickles bytes must not hold it. */
        last = start;
        int got = wait_socket(s, PQsocket(c), st == PGRES_POLLING_READING ? POLLIN : POLLOUT,
                              bound, &last, &ev);
        if (got == 0) {
            *silent_ms = mono_ms() - start;
            if (giving_up(s))
                atomic_store(&g_silent_at_stop, true);
            return c;
        }
        st = PQconnectPoll(c); /* also after a poll error: it reports the socket's state */
    }
    return c;
}

/* Opens s->conn from s->base.name. Aspen's defaults come before the user's string so that the
 * user's own settings win (libpq keeps the last value of a repeated keyword); client_encoding
 * comes after: the store's text is UTF-8. tcp_user_timeout (TCP only; libpq ignores it on a unix
 * socket) ends a connection whose sent data the peer has not acknowledged for that long: a
 * network path that died with a request in flight, where keepalives (idle connections only) do
 * not run. */
static int pg_connect(struct pg_store *s, const char *when, aspen_store_error *err)
{
    const char *const keys[] = {"connect_timeout",  "keepalives",      "keepalives_idle",
                                "keepalives_interval", "keepalives_count", "tcp_user_timeout",
                                "application_name", "dbname",          "client_encoding", NULL};
    const char *const vals[] = {"5", "1", "10", "3", "3", PG_TCP_USER_TIMEOUT_TEXT, "aspen",
                                s->base.name, "UTF8", NULL};
    int64_t silent = 0;
    PGconn *c = connect_bounded(s, keys, vals, &silent);
    if (c && silent) {
        char tried[200];
        where_tried(c, tried, sizeof tried);
        store_err(err, ASPEN_STORE_EIO,
                  "PostgreSQL at %s has not answered for %lld.%lld s while connecting (server "
                  "stopped or network path lost)%s: check that it runs and that the network "
                  "path to it is up",
                  tried, (long long)silent / 1000, (long long)silent % 1000 / 100, when);
        if (err)
            err->disconnected = true;
        PQfinish(c);
        return ASPEN_STORE_EIO;
    }
    if (!c || PQstatus(c) != CONNECTION_OK) {
        int code = connect_err(s, c, err, when);
        PQfinish(c);
        return code;
    }
    PQsetNoticeProcessor(c, pg_notice, s);
    /* Every wait is await_answer's, which needs sends that never block (a full socket buffer
     * towards a stopped server blocked a send of a big binary for good). */
    if (PQsetnonblocking(c, 1) != 0) {
        int code = connect_err(s, c, err, when);
        PQfinish(c);
        return code;
    }
    s->conn = c;
    s->n_prepared = 0;
    s->in_tx = false;
    s->server_said[0] = '\0';
    s->silent_ms = 0;
    where_tried(c, s->where, sizeof s->where);
    atomic_store(&g_silent_at_stop, false);
    s->statement_timeout_ms = PG_STATEMENT_TIMEOUT_MS; /* until the session says otherwise */
    s->answer_ms = PG_STATEMENT_TIMEOUT_MS + PG_ANSWER_MARGIN_MS;
    measure_skew(s);
    /* (pgb) A host cut off from the server in the middle of a transaction would keep its locks —
     * its engine row (so nobody can recover it), its jobs, the data-version row every writer takes
     * (so every host stalls) — until TCP noticed, which can take hours. The server ends such a
     * session once it has been idle inside a transaction for PG_IDLE_IN_TX_MS; the store's
     * transactions never wait on anything but the server, so only a lost client trips it. */
    /* (pgperf) Generic plans for the prepared statements: their parameters are batches (an
     * array of ids, a LIMIT) that a custom plan sizes against the table, and at tens of
     * thousands of rows the planner costs a sequential scan of all jobs plus a hash join below
     * a few hundred index probes (random_page_cost assumes a disk read each). That made every
     * claim and every group commit O(table): 25 ms for 400 jobs on 20,000 rows against 2 ms by
     * the primary key (docs/BENCHMARKS.md). A generic plan assumes a small batch and takes the
     * index at every table size; statements built at run time (filters) are unnamed and still
     * planned with their values. */
    /* (pgto) statement_timeout: the user's wherever it was set (conninfo options=-c
     * statement_timeout=..., PGOPTIONS, ALTER ROLE/DATABASE ... SET, the server's configuration),
     * else PG_STATEMENT_TIMEOUT_MS, so that a statement the client stopped waiting for does not
     * go on running on the server; the answer deadline follows from it (pg_store.h). */
    PGresult *r = pg_exec_script(
        s, "SET idle_in_transaction_session_timeout = " PG_IDLE_IN_TX_TEXT
           "; SET plan_cache_mode = force_generic_plan"
           "; SELECT v, set_config('statement_timeout', v::text, false) FROM (SELECT CASE WHEN"
           " source = 'default' THEN " PG_STATEMENT_TIMEOUT_TEXT " ELSE setting::bigint END v"
           " FROM pg_settings WHERE name = 'statement_timeout') t");
    int code = 0;
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
        code = pg_err(s, err, r, "setting up the session (timeouts, plans)");
    else {
        s->statement_timeout_ms = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        s->answer_ms = s->statement_timeout_ms > 0
                           ? s->statement_timeout_ms + PG_ANSWER_MARGIN_MS
                           : 0; /* the user asked for no limit: wait as long as it takes */
    }
    PQclear(r);
    if (code)
        return code;
    /* A read-only handle is refused writes by the server too, not only by pg_tx_begin. */
    if (s->read_only)
        return session_exec(s, "SET default_transaction_read_only = on",
                            "making the session read-only", err);
    return 0;
}

/* Whether the handle's owner is stopping (aspen_store_options.give_up). */
static bool giving_up(const struct pg_store *s)
{
    return s->give_up && atomic_load(s->give_up) != 0;
}

/* sleep_ms, cut short (checked every 50 ms) once the owner gives up: a stopping engine must not
 * sit out the rest of a 1.85 s backoff step in each of its threads. */
static void backoff_ms(const struct pg_store *s, int ms)
{
    while (ms > 0 && !giving_up(s)) {
        int step = ms < 50 ? ms : 50;
        sleep_ms(step);
        ms -= step;
    }
}

/* "PostgreSQL at WHERE has not answered for 32.0 s (server stopped or network path lost; the
 * answer deadline is statement_timeout 30 s + 2 s)": what drop_silent did, for the messages. */
static void silence_text(const struct pg_store *s, const char *where, char *out, size_t size)
{
    long long silent = s->silent_ms, limit = s->statement_timeout_ms;
    char deadline[96];
    if (s->long_wait)
        snprintf(deadline, sizeof deadline, "%d min while creating or migrating the schema",
                 PG_MIGRATE_ANSWER_MS / 60000);
    else if (giving_up(s))
        snprintf(deadline, sizeof deadline, "%d ms while stopping", PG_STOP_SILENCE_MS);
    else
        snprintf(deadline, sizeof deadline, "statement_timeout %lld.%lld s + %d s", limit / 1000,
                 limit % 1000 / 100, PG_ANSWER_MARGIN_MS / 1000);
    snprintf(out, size,
             "PostgreSQL at %.150s has not answered for %lld.%lld s (server stopped or network "
             "path lost; the answer deadline is %s)",
             where, silent / 1000, silent % 1000 / 100, deadline);
}

int pg_reconnect(struct pg_store *s, aspen_store_error *err)
{
    static const int delays[] = {0, 50, 100, 200, 400, 800, 1600, 1850}; /* ≈ PG_RECONNECT_MS */
    int code = 0;
    aspen_store_error last = {0};
    int64_t began = mono_ms();
    for (size_t i = 0; i < sizeof delays / sizeof delays[0]; i++) {
        /* A server that accepts connections and never answers them costs connect_timeout per
         * attempt: the window, not the count of attempts, bounds the reconnect. */
        if (i > 0 && mono_ms() - began >= PG_RECONNECT_MS)
            break;
        /* Stopping: one attempt (the server may be back), then fail at once. The shutdown's
         * calls (unclaim, the last group commit, unregister, ...) each waited out the whole
         * backoff, one after another: SIGTERM took 20-25 s to end a worker whose server was
         * down. What they could not write stays leased and is recovered once the lease ends. */
        if (i > 0 && giving_up(s))
            break;
        backoff_ms(s, delays[i]);
        PQfinish(s->conn);
        s->conn = NULL;
        code = pg_connect(s, "", &last);
        if (!code) {
            s->reconnects++;
            return 0;
        }
        /* A server that answers but refuses us will not change its mind in 5 s: auth refused,
         * the database dropped. These stop an engine (permanent), where a server that is down
         * or starting (EIO, EBUSY) is an outage the caller rides out by calling again. */
        if (last.code == ASPEN_STORE_EPERM || last.code == ASPEN_STORE_ENOTFOUND)
            break;
    }
    s->n_prepared = 0;
    s->in_tx = false;
    if (last.code == ASPEN_STORE_EPERM || last.code == ASPEN_STORE_ENOTFOUND) {
        /* ENOTFOUND is "no such job" to callers: a database gone is a missing schema (ESCHEMA,
         * permanent), with connect_err's message saying how to create it */
        code = store_err(err, last.code == ASPEN_STORE_EPERM ? ASPEN_STORE_EPERM
                                                             : ASPEN_STORE_ESCHEMA,
                         "lost the connection to the PostgreSQL server and reconnecting was "
                         "refused: %s",
                         last.msg);
        scrub(s->base.name, err);
        return code;
    }
    char lost[512] = "lost the connection to the PostgreSQL server";
    if (s->silent_ms)
        silence_text(s, s->where, lost, sizeof lost);
    if (giving_up(s))
        code = store_err(err, ASPEN_STORE_EIO, "%s and could not reconnect (not retried: "
                         "stopping): %s", lost, last.msg);
    else if (s->silent_ms)
        code = store_err(err, ASPEN_STORE_EIO,
                         "%s; reconnecting did not succeed for %d s: %s. The next call tries again",
                         lost, (int)((mono_ms() - began + 500) / 1000), last.msg);
    else
        code = store_err(err, ASPEN_STORE_EIO,
                         "%s and could not reconnect for %d s: %s. The next call tries again",
                         lost, PG_RECONNECT_MS / 1000, last.msg);
    scrub(s->base.name, err);
    if (err)
        err->disconnected = true;
    return code;
}

/* ---- errors ---------------------------------------------------------------------------------- */

static bool connection_lost(struct pg_store *s)
{
    return !s->conn || PQstatus(s->conn) == CONNECTION_BAD;
}

/* connection_lost after a statement failed with result r. libpq can report a server that went
 * away as an error result of its own ("server closed the connection unexpectedly", no SQLSTATE)
 * while the connection still says CONNECTION_OK (seen after pg_ctl -m immediate: the failed
 * send is reported before the end of the stream has been read). That was taken for an ordinary
 * error, not an outage, and `aspen worker` exited with it ("error: counting jobs: ...
 * (SQLSTATE none)") instead of reconnecting. Reading what is left settles it: at the end of the
 * stream libpq marks the connection bad. Only for errors without a SQLSTATE (the server's own
 * always carry one), so a statement that succeeds costs nothing more. */
static bool lost_after_error(struct pg_store *s, const PGresult *r)
{
    if (connection_lost(s))
        return true;
    if (r && PQresultErrorField(r, PG_DIAG_SQLSTATE))
        return false;
    (void)PQconsumeInput(s->conn); /* 0 when the stream ended: the status says it */
    return connection_lost(s);
}

/* The schema version in aspen_schema, or -1 when it cannot be read. */
static int64_t schema_version(struct pg_store *s)
{
    if (connection_lost(s) || PQtransactionStatus(s->conn) == PQTRANS_INERROR)
        return -1;
    PGresult *r = pg_exec_script(s, "SELECT max(version) FROM aspen_schema");
    int64_t v = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && !PQgetisnull(r, 0, 0)
                    ? strtoll(PQgetvalue(r, 0, 0), NULL, 10)
                    : -1;
    PQclear(r);
    return v;
}

static int lost_err(struct pg_store *s, aspen_store_error *err, const char *what, bool in_tx,
                    bool committing)
{
    char lib[300], tried[200];
    one_line(s->conn ? PQerrorMessage(s->conn) : "no connection", lib, sizeof lib);
    if (s->conn || !s->where[0])
        where_tried(s->conn, tried, sizeof tried);
    else
        snprintf(tried, sizeof tried, "%s", s->where);
    if (s->silent_ms) {
        /* await_answer gave up on a server that said nothing (drop_silent) */
        char silence[512];
        silence_text(s, tried, silence, sizeof silence);
        int code = store_err(
            err, ASPEN_STORE_EIO, "%s while %s: the connection was closed%s", silence, what,
            committing ? "; it is not known whether the transaction committed: aspen reconnects "
                         "and the retry finds out (a finished job is never completed twice)"
            : in_tx    ? "; the transaction was not committed and nothing of it is kept: aspen "
                         "reconnects on the next call: retry"
                       : "; reconnecting");
        scrub(s->base.name, err);
        if (err)
            err->disconnected = true;
        return code;
    }
    int code = store_err(
        err, ASPEN_STORE_EIO,
        "lost the connection to the PostgreSQL server at %s while %s (libpq: %s%s%s)%s",
        tried, what, lib, s->server_said[0] ? "; the server said: " : "", s->server_said,
        committing ? ": it is not known whether the transaction committed; aspen reconnects "
                     "and the retry finds out (a finished job is never completed twice)"
        : in_tx    ? ": the transaction was rolled back and nothing of it was written; aspen "
                     "reconnects on the next call: retry"
                   : ": reconnecting failed; is the server running?");
    scrub(s->base.name, err);
    if (err)
        err->disconnected = true;
    return code;
}

int pg_err(struct pg_store *s, aspen_store_error *err, PGresult *r, const char *what)
{
    if (lost_after_error(s, r))
        return lost_err(s, err, what, s->in_tx, false);
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    const char *primary = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    const char *constraint = r ? PQresultErrorField(r, PG_DIAG_CONSTRAINT_NAME) : NULL;
    char msg[300];
    one_line(primary ? primary : PQerrorMessage(s->conn), msg, sizeof msg);
    if (!state)
        state = "";
    const char *name = s->shown;
    int code;
    if (strncmp(state, "23", 2) == 0) {
        if (has(constraint, "tags_array"))
            code = store_err(err, ASPEN_STORE_EINVAL,
                             "tags must be a JSON array of strings like [\"a\",\"b\"] (while %s)",
                             what);
        else if (has(constraint, "payload_no_nul") || has(constraint, "tags_no_nul"))
            code = store_err(err, ASPEN_STORE_EINVAL,
                             "the job's %s holds \\u0000 (an escaped NUL character) while %s: "
                             "valid JSON, but PostgreSQL cannot read it back as text, so this "
                             "database refuses it. Leave it out, or encode the bytes (base64)",
                             has(constraint, "tags") ? "tags" : "payload", what);
        else if (has(constraint, "type_nonempty"))
            code = store_err(err, ASPEN_STORE_EINVAL, "job type must not be empty (while %s)",
                             what);
        else if (has(constraint, "state_known"))
            code = store_err(err, ASPEN_STORE_ESTATE,
                             "the database refused an unknown job state while %s", what);
        else if (strcmp(state, "23503") == 0)
            code = store_err(err, ASPEN_STORE_ENOTFOUND,
                             "the database refused a reference to a row that does not exist "
                             "while %s (%s): store the binary first",
                             what, msg);
        else
            code = store_err(err, ASPEN_STORE_EINVAL,
                             "the database refused a value while %s: %s (constraint %s)", what,
                             msg, constraint ? constraint : "?");
    } else if (strcmp(state, "22P02") == 0 && has(msg, "json")) {
        code = store_err(err, ASPEN_STORE_EINVAL,
                         "payload is not valid JSON (while %s): %s. Fix it, e.g. "
                         "{\"key\":\"value\"}",
                         what, msg);
    } else if (strcmp(state, "22021") == 0 || strcmp(state, "22P05") == 0 ||
               strcmp(state, "22000") == 0) {
        code = store_err(err, ASPEN_STORE_EINVAL,
                         "the database cannot store this text while %s (%s): PostgreSQL keeps "
                         "text as UTF-8 without NUL characters (also no \\u0000 in a JSON "
                         "string it has to read)",
                         what, msg);
    } else if (strncmp(state, "22", 2) == 0) {
        code = store_err(err, ASPEN_STORE_EINVAL, "the database refused a value while %s: %s",
                         what, msg);
    } else if (strcmp(state, "53100") == 0) {
        code = store_err(err, ASPEN_STORE_EFULL,
                         "the PostgreSQL server's disk is full while %s in %s (%s): the "
                         "transaction was rolled back and everything committed before is intact. "
                         "Free space on the server and try again",
                         what, name, msg);
    } else if (strcmp(state, "53200") == 0) {
        code = store_err(err, ASPEN_STORE_ENOMEM, "the PostgreSQL server ran out of memory while "
                                                  "%s (%s): try again",
                         what, msg);
    } else if (strcmp(state, "53300") == 0) {
        code = store_err(err, ASPEN_STORE_EBUSY,
                         "the PostgreSQL server has too many connections while %s (%s): try "
                         "again, or raise max_connections",
                         what, msg);
    } else if (strcmp(state, "57014") == 0 && has(msg, "statement timeout")) {
        /* The server's own deadline (pg_connect sets it): a statement that legitimately runs
         * longer needs a larger one, not a retry of the same. */
        code = store_err(err, ASPEN_STORE_EBUSY,
                         "PostgreSQL cancelled a statement that ran longer than statement_timeout "
                         "(%lld ms) while %s: nothing of it was written. If it is legitimately "
                         "that slow, raise it in --db (options=-c statement_timeout=120s, or "
                         "ALTER ROLE ... SET statement_timeout; docs/STORE.md, \"Answer "
                         "deadline\")",
                         (long long)s->statement_timeout_ms, what);
    } else if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0 ||
               strcmp(state, "55P03") == 0 || strcmp(state, "57014") == 0) {
        code = store_err(err, ASPEN_STORE_EBUSY,
                         "the PostgreSQL server gave up on the transaction while %s (%s): it was "
                         "rolled back, nothing of it was written; try again",
                         what, msg);
    } else if (strcmp(state, "42P01") == 0 || strcmp(state, "42703") == 0 ||
               strcmp(state, "42883") == 0) {
        int64_t v = schema_version(s);
        if (v > ASPEN_STORE_SCHEMA_VERSION)
            code = store_err(err, ASPEN_STORE_ENEWER,
                             "database %s now has schema version %lld, newer than this aspen (%d) "
                             "(PostgreSQL: %s while %s): upgrade aspen, or use the aspen that "
                             "wrote it",
                             name, (long long)v, ASPEN_STORE_SCHEMA_VERSION, msg, what);
        else
            code = store_err(err, ASPEN_STORE_ESCHEMA,
                             "database %s is missing part of Aspen's schema (PostgreSQL: %s) "
                             "while %s: it was damaged or changed by another program. Restore it "
                             "from a backup, or create a new database for aspen (createdb) and "
                             "pass it in --db",
                             name, msg, what);
    } else if (strcmp(state, "25006") == 0) {
        code = store_err(err, ASPEN_STORE_EPERM,
                         "database %s refused a write while %s (%s): the handle was opened "
                         "read-only or the server is a read-only standby; open it writable, on "
                         "the primary",
                         name, what, msg);
    } else if (strcmp(state, "42501") == 0 || strncmp(state, "28", 2) == 0) {
        code = store_err(err, ASPEN_STORE_EPERM,
                         "permission denied on database %s while %s (%s): grant the user the "
                         "rights on Aspen's tables (or connect as their owner)",
                         name, what, msg);
    } else if (strcmp(state, "54000") == 0) {
        code = store_err(err, ASPEN_STORE_ETOOBIG, "value too large while %s (PostgreSQL: %s)",
                         what, msg);
    } else if (strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0) {
        code = lost_err(s, err, what, s->in_tx, false);
    } else {
        code = store_err(err, ASPEN_STORE_EIO, "PostgreSQL failed on %s while %s: %s (SQLSTATE %s)",
                         name, what, msg, *state ? state : "none");
    }
    scrub(s->base.name, err);
    return code;
}

/* ---- parameters and results ------------------------------------------------------------------- */

static int p_slot(struct pg_params *p)
{
    if (p->n >= PG_MAX_PARAMS) {
        p->overflow = true;
        return -1;
    }
    int i = p->n++;
    p->values[i] = NULL;
    p->lengths[i] = 0;
    p->formats[i] = 0;
    return i;
}

void pg_p_int(struct pg_params *p, int64_t v)
{
    int i = p_slot(p);
    if (i < 0)
        return;
    snprintf(p->buf[i], sizeof p->buf[i], "%lld", (long long)v);
    p->values[i] = p->buf[i];
}

void pg_p_opt_int(struct pg_params *p, int64_t v)
{
    if (v)
        pg_p_int(p, v);
    else
        (void)p_slot(p);
}

void pg_p_bool(struct pg_params *p, bool v)
{
    int i = p_slot(p);
    if (i >= 0)
        p->values[i] = v ? "t" : "f";
}

void pg_p_text(struct pg_params *p, const char *v)
{
    int i = p_slot(p);
    if (i >= 0)
        p->values[i] = v;
}

void pg_p_bytes(struct pg_params *p, const void *v, size_t n)
{
    int i = p_slot(p);
    if (i < 0)
        return;
    p->formats[i] = 1; /* binary, typed bytea (see run) even when NULL */
    if (!v)
        return;
    if (n > (size_t)INT32_MAX) {
        p->overflow = true;
        return;
    }
    p->values[i] = n ? (const char *)v : "";
    p->lengths[i] = (int)n;
}

void pg_p_now(struct pg_params *p, int64_t now_ms) { pg_p_int(p, now_ms + pg_clock_skew_ms()); }

int64_t pg_get_int(const PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col))
        return 0;
    return strtoll(PQgetvalue(r, row, col), NULL, 10);
}

bool pg_get_bool(const PGresult *r, int row, int col)
{
    const char *v = PQgetvalue(r, row, col);
    return v && (v[0] == 't' || v[0] == '1');
}

char *pg_get_text(const PGresult *r, int row, int col, bool *oom)
{
    if (PQgetisnull(r, row, col))
        return NULL;
    char *c = store_strdup(PQgetvalue(r, row, col));
    if (!c)
        *oom = true;
    return c;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                        : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                                               : -1;
}

/* A text-format bytea: "\x…" hex (the default), else the old escape format through libpq. One
 * extra NUL byte after the data, so text results can be printed as they are. */
void *pg_get_bytes(const PGresult *r, int row, int col, size_t *n, bool *oom)
{
    *n = 0;
    if (PQgetisnull(r, row, col))
        return NULL;
    const char *v = PQgetvalue(r, row, col);
    size_t len = (size_t)PQgetlength(r, row, col);
    if (len >= 2 && v[0] == '\\' && v[1] == 'x') {
        size_t m = (len - 2) / 2;
        unsigned char *out = malloc(m + 1);
        if (!out) {
            *oom = true;
            return NULL;
        }
        for (size_t i = 0; i < m; i++) {
            int hi = hexval(v[2 + 2 * i]), lo = hexval(v[3 + 2 * i]);
            out[i] = (unsigned char)((hi < 0 ? 0 : hi) << 4 | (lo < 0 ? 0 : lo));
        }
        out[m] = '\0';
        *n = m;
        return out;
    }
    size_t m = 0;
    unsigned char *raw = PQunescapeBytea((const unsigned char *)v, &m);
    unsigned char *out = raw ? malloc(m + 1) : NULL;
    if (!out) {
        PQfreemem(raw);
        *oom = true;
        return NULL;
    }
    if (m)
        memcpy(out, raw, m);
    out[m] = '\0';
    PQfreemem(raw);
    *n = m;
    return out;
}

/* ---- running statements ------------------------------------------------------------------------ */

static bool is_prepared(const struct pg_store *s, const char *name)
{
    for (size_t i = 0; i < s->n_prepared; i++)
        if (s->prepared[i].name == name || strcmp(s->prepared[i].name, name) == 0)
            return true;
    return false;
}

/* One attempt: prepares `name` on this connection the first time (bytes parameters typed
 * bytea, the rest inferred), then executes. NULL name: an unnamed statement. */
static PGresult *run(struct pg_store *s, const char *name, const char *sql,
                     const struct pg_params *p)
{
    int n = p ? p->n : 0;
    Oid types[PG_MAX_PARAMS];
    for (int i = 0; i < n; i++)
        types[i] = p->formats[i] ? BYTEAOID : 0;
    const char *const *values = p ? p->values : NULL;
    const int *lengths = p ? p->lengths : NULL, *formats = p ? p->formats : NULL;
    if (name && !is_prepared(s, name)) {
        if (s->n_prepared < sizeof s->prepared / sizeof s->prepared[0]) {
            if (!PQsendPrepare(s->conn, name, sql, n, types))
                return NULL;
            PGresult *r = collect(s);
            if (PQresultStatus(r) != PGRES_COMMAND_OK)
                return r;
            PQclear(r);
            s->prepared[s->n_prepared++].name = name;
        } else {
            name = NULL; /* the cache is full: run it unprepared */
        }
    }
    int sent = name ? PQsendQueryPrepared(s->conn, name, n, values, lengths, formats, 0)
                    : PQsendQueryParams(s->conn, sql, n, types, values, lengths, formats, 0);
    return sent ? collect(s) : NULL; /* NULL: libpq's error (pg_err reads it) or the deadline */
}

/* Whether a command changed rows (the transaction is then a write). */
static void note_write(struct pg_store *s, const PGresult *r)
{
    const char *cs = PQcmdStatus((PGresult *)r), *rows = PQcmdTuples((PGresult *)r);
    if (!s->in_tx || !cs || !rows || !*rows || strcmp(rows, "0") == 0)
        return;
    if (strncmp(cs, "INSERT", 6) == 0 || strncmp(cs, "UPDATE", 6) == 0 ||
        strncmp(cs, "DELETE", 6) == 0 || strncmp(cs, "MERGE", 5) == 0)
        s->tx_wrote = true;
}

static PGresult *exec_common(struct pg_store *s, const char *name, const char *sql,
                             const struct pg_params *p, const char *what, bool committing,
                             aspen_store_error *err)
{
    if (p && p->overflow) {
        store_err(err, ASPEN_STORE_EINVAL,
                  "too many parameters (more than %d) or a value over 2 GB while %s", PG_MAX_PARAMS,
                  what);
        return NULL;
    }
    if (connection_lost(s)) {
        if (s->in_tx) {
            s->in_tx = false;
            lost_err(s, err, what, true, committing);
            return NULL;
        }
        if (pg_reconnect(s, err))
            return NULL;
    }
    for (int attempt = 0;; attempt++) {
        PGresult *r = run(s, name, sql, p);
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
            note_write(s, r);
            return r;
        }
        if (!lost_after_error(s, r)) {
            pg_err(s, err, r, what);
            PQclear(r);
            return NULL;
        }
        PQclear(r);
        if (s->in_tx) {
            /* The server rolls back a transaction whose connection is gone. */
            s->in_tx = false;
            lost_err(s, err, what, true, committing);
            return NULL;
        }
        if (attempt > 0 || pg_reconnect(s, err))
            return NULL;
    }
}

PGresult *pg_exec(struct pg_store *s, const char *name, const char *sql, const struct pg_params *p,
                  const char *what, aspen_store_error *err)
{
    return exec_common(s, name, sql, p, what, false, err);
}

PGresult *pg_exec_dynamic(struct pg_store *s, const char *sql, const struct pg_params *p,
                          const char *what, aspen_store_error *err)
{
    return exec_common(s, NULL, sql, p, what, false, err);
}

/* ---- pipelines: several statements in one round trip ------------------------------------------ */

/* Whether every step can be sent: parameters that fit, a connection (re-established first when it
 * is gone outside a transaction, as exec_common does). */
static int pipeline_ready(struct pg_store *s, const struct pg_step *steps, size_t n,
                          bool committing, aspen_store_error *err)
{
    for (size_t i = 0; i < n; i++)
        if (steps[i].p && steps[i].p->overflow)
            return store_err(err, ASPEN_STORE_EINVAL,
                             "too many parameters (more than %d) or a value over 2 GB while %s",
                             PG_MAX_PARAMS, steps[i].what);
    if (!connection_lost(s))
        return 0;
    if (s->in_tx) {
        s->in_tx = false;
        return lost_err(s, err, steps[0].what, true, committing);
    }
    return pg_reconnect(s, err);
}

/* One pass: sends every step (a Parse first for a statement new to this connection), one Sync,
 * and reads the results back in order into steps[i].r / prep[i]. false when the connection broke
 * on the way (whatever was read is cleared). */
static bool pipeline_pass(struct pg_store *s, struct pg_step *steps, size_t n, PGresult **prep)
{
    PGconn *c = s->conn;
    if (!PQenterPipelineMode(c))
        return false;
    bool sent = true;
    size_t pending = 0; /* Parses sent in this pipeline: room for them in s->prepared */
    for (size_t i = 0; i < n && sent; i++) {
        const struct pg_params *p = steps[i].p;
        int np = p ? p->n : 0;
        Oid types[PG_MAX_PARAMS];
        for (int k = 0; k < np; k++)
            types[k] = p->formats[k] ? BYTEAOID : 0;
        const char *name = steps[i].name;
        steps[i].r = prep[i] = NULL;
        steps[i].prepare_sent = false;
        if (name && !is_prepared(s, name)) {
            /* Parsed in this pipeline; remembered as prepared only once the server says so. */
            bool room = s->n_prepared + pending < sizeof s->prepared / sizeof s->prepared[0];
            for (size_t k = 0; room && k < i; k++)
                if (steps[k].prepare_sent && strcmp(steps[k].name, name) == 0)
                    room = false; /* the same statement twice in one pipeline: unnamed */
            if (room) {
                sent = PQsendPrepare(c, name, steps[i].sql, np, types) == 1;
                steps[i].prepare_sent = sent;
                pending++;
            } else {
                name = NULL;
            }
        }
        if (!sent)
            break;
        sent = name ? PQsendQueryPrepared(c, name, np, p ? p->values : NULL,
                                          p ? p->lengths : NULL, p ? p->formats : NULL, 0) == 1
                    : PQsendQueryParams(c, steps[i].sql, np, types, p ? p->values : NULL,
                                        p ? p->lengths : NULL, p ? p->formats : NULL, 0) == 1;
    }
    bool ok = sent && PQpipelineSync(c) == 1;
    /* Results come in the order sent, each followed by a NULL, then the Sync's; each read waits
     * under the answer deadline (await_answer: false when it passed, the connection closed). */
    for (size_t i = 0; ok && i < n; i++) {
        for (int part = steps[i].prepare_sent ? 0 : 1; ok && part < 2; part++) {
            PGresult *r = await_answer(s) ? NULL : PQgetResult(c);
            if (!r) {
                ok = false;
                break;
            }
            if (part == 0)
                prep[i] = r;
            else
                steps[i].r = r;
            while ((ok = !await_answer(s)) && (r = PQgetResult(c)) != NULL)
                PQclear(r); /* nothing more is expected for one query */
        }
    }
    for (int nulls = 0; ok;) {
        if (await_answer(s)) {
            ok = false;
            break;
        }
        PGresult *r = PQgetResult(c);
        if (!r) {
            if (connection_lost(s) || ++nulls > 4) /* the Sync's answer never came */
                ok = false;
            continue;
        }
        ExecStatusType st = PQresultStatus(r);
        PQclear(r);
        if (st == PGRES_PIPELINE_SYNC)
            break;
    }
    if (ok && !PQexitPipelineMode(c))
        ok = false;
    if (!ok || connection_lost(s)) {
        for (size_t i = 0; i < n; i++) {
            PQclear(prep[i]);
            PQclear(steps[i].r);
            prep[i] = steps[i].r = NULL;
        }
        return false;
    }
    return true;
}

int pg_pipeline(struct pg_store *s, struct pg_step *steps, size_t n, bool committing,
                aspen_store_error *err)
{
    if (n == 0)
        return 0;
    if (n > PG_PIPELINE_MAX)
        return store_err(err, ASPEN_STORE_EINVAL, "%zu statements in one pipeline (at most %d) "
                         "while %s (a bug in aspen)", n, PG_PIPELINE_MAX, steps[0].what);
    int code = pipeline_ready(s, steps, n, committing, err);
    if (code)
        return code;
    PGresult *prep[PG_PIPELINE_MAX];
    bool started_in_tx = s->in_tx;
    for (int attempt = 0;; attempt++) {
        if (pipeline_pass(s, steps, n, prep))
            break;
        /* The connection broke. Inside a transaction (or once one was begun in this pipeline and
         * may have run), the server rolled it back: say so. Outside one, a statement that has
         * not run cannot have done anything: reconnect and send them all again once. */
        if (started_in_tx || attempt > 0) {
            s->in_tx = false;
            return lost_err(s, err, steps[0].what, true, committing);
        }
        if ((code = pg_reconnect(s, err)) != 0)
            return code;
    }
    /* Every statement up to the first failure ran; after it the server skipped the rest. */
    code = 0;
    for (size_t i = 0; i < n; i++) {
        if (prep[i]) {
            if (!code && PQresultStatus(prep[i]) == PGRES_COMMAND_OK)
                s->prepared[s->n_prepared++].name = steps[i].name;
            else if (!code)
                code = pg_err(s, err, prep[i], steps[i].what);
            PQclear(prep[i]);
        }
        ExecStatusType st = steps[i].r ? PQresultStatus(steps[i].r) : PGRES_FATAL_ERROR;
        if (!code && st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
            code = pg_err(s, err, steps[i].r, steps[i].what);
        if (!code)
            note_write(s, steps[i].r);
    }
    if (code)
        for (size_t i = 0; i < n; i++) {
            PQclear(steps[i].r);
            steps[i].r = NULL;
        }
    return code;
}

/* pg_exec for statements whose result is not needed: 0 or the error code. */
static int exec_ok(struct pg_store *s, const char *name, const char *sql,
                   const struct pg_params *p, const char *what, aspen_store_error *err)
{
    PGresult *r = pg_exec(s, name, sql, p, what, err);
    if (!r)
        return err && err->code ? err->code : ASPEN_STORE_EIO;
    PQclear(r);
    return 0;
}

static int code_of(aspen_store_error *err) { return err && err->code ? err->code : ASPEN_STORE_EIO; }

/* ---- transactions --------------------------------------------------------------------------------- */

/* What every BEGIN checks and resets first: 0 or the error. */
static int tx_begin_check(struct pg_store *s, aspen_store_error *err)
{
    memset(s->count_delta, 0, sizeof s->count_delta);
    s->tx_wrote = false;
    if (s->read_only)
        return store_err(err, ASPEN_STORE_EPERM,
                         "database %s was opened read-only: open it without read-only to change it",
                         s->shown);
    if (s->in_tx)
        return store_err(err, ASPEN_STORE_EIO,
                         "a transaction is already open on this handle while starting another "
                         "(a bug in aspen: one handle is one thread)");
    if (!connection_lost(s) && aspen_store_now_ms() - s->skew_measured_ms > 60000)
        measure_skew(s);
    return 0;
}

int pg_tx_begin(struct pg_store *s, aspen_store_error *err)
{
    int code = tx_begin_check(s, err);
    if (code)
        return code;
    code = exec_ok(s, "aspen_begin", "BEGIN", NULL, "starting a transaction", err);
    if (!code)
        s->in_tx = true;
    return code;
}

int pg_tx_begin_with(struct pg_store *s, struct pg_step *steps, size_t n, aspen_store_error *err)
{
    if (n + 1 > PG_PIPELINE_MAX)
        return store_err(err, ASPEN_STORE_EINVAL, "%zu statements after BEGIN in one pipeline "
                         "(a bug in aspen)", n);
    int code = tx_begin_check(s, err);
    if (code)
        return code;
    struct pg_step all[PG_PIPELINE_MAX];
    all[0] = (struct pg_step){.name = "aspen_begin", .sql = "BEGIN", .what = "starting a transaction"};
    memcpy(all + 1, steps, n * sizeof *steps);
    code = pg_pipeline(s, all, n + 1, false, err);
    if (code) {
        /* Which statement failed decides whether a transaction is open: the server skipped
         * everything after the failure, and a BEGIN that ran leaves one (aborted) behind. */
        s->in_tx = !connection_lost(s) && PQtransactionStatus(s->conn) != PQTRANS_IDLE;
        return code;
    }
    s->in_tx = true;
    PQclear(all[0].r);
    memcpy(steps, all + 1, n * sizeof *steps);
    return 0;
}

void pg_counts_note(struct pg_store *s, aspen_store_state from, aspen_store_state to, int64_t n)
{
    if (from >= 0 && from < ASPEN_STORE_STATE_COUNT)
        s->count_delta[from] -= n;
    if (to >= 0 && to < ASPEN_STORE_STATE_COUNT)
        s->count_delta[to] += n;
    s->tx_wrote = true;
}

/* Before COMMIT of a write, in one statement (one round trip): the data-version row first, then
 * the net count change. Every writer takes that one row lock last, just before committing, so the
 * job_counts rows behind it are only ever locked by one transaction at a time, in any order,
 * without deadlocks. The CTE runs first: the count rows are updated only as they are joined with
 * its one output row. */
#define COMMIT_NOTE_SQL                                                                            \
    "WITH v AS (UPDATE aspen_schema SET data_version = data_version + 1"                          \
    " RETURNING data_version)"                                                                     \
    " UPDATE job_counts c SET n = c.n + d.n FROM v, (VALUES"                                       \
    " ('queued', $1::bigint), ('scheduled', $2::bigint), ('running', $3::bigint),"                 \
    " ('succeeded', $4::bigint), ('failed', $5::bigint),"                                          \
    " ('cancelled', $6::bigint)) d (state, n)"                                                     \
    " WHERE c.state = d.state AND d.n <> 0"

static void counts_params(struct pg_store *s, struct pg_params *p)
{
    for (int i = 0; i < ASPEN_STORE_STATE_COUNT; i++)
        pg_p_int(p, s->count_delta[i]);
}

int pg_tx_commit(struct pg_store *s, const char *what, aspen_store_error *err)
{
    if (!s->in_tx)
        return store_err(err, ASPEN_STORE_EIO,
                         "no transaction is open while %s: it was lost with the connection; "
                         "retry",
                         what);
    bool wrote = s->tx_wrote;
    PGresult *r = NULL;
    if (wrote) {
        /* The counts and the data version, then COMMIT, in one round trip. */
        struct pg_params p = {0};
        struct pg_step steps[2] = {
            {.name = "aspen_commit_note", .sql = COMMIT_NOTE_SQL, .p = &p,
             .what = "recording the job counts and the data version"},
            {.name = "aspen_commit", .sql = "COMMIT", .what = what},
        };
        counts_params(s, &p);
        int code = pg_pipeline(s, steps, 2, true, err);
        if (code) {
            if (s->in_tx)
                pg_tx_rollback(s); /* the note failed: the COMMIT was skipped */
            s->in_tx = false;
            memset(s->count_delta, 0, sizeof s->count_delta);
            s->tx_wrote = false;
            return code;
        }
        PQclear(steps[0].r);
        r = steps[1].r;
    } else {
        r = exec_common(s, "aspen_commit", "COMMIT", NULL, what, true, err);
    }
    s->in_tx = false;
    memset(s->count_delta, 0, sizeof s->count_delta);
    s->tx_wrote = false;
    if (!r)
        return code_of(err);
    /* COMMIT of a transaction the server already aborted answers ROLLBACK. */
    bool committed = strcmp(PQcmdStatus(r), "COMMIT") == 0;
    PQclear(r);
    if (!committed)
        return store_err(err, ASPEN_STORE_EBUSY,
                         "the PostgreSQL server rolled the transaction back while %s (an earlier "
                         "statement in it failed): nothing of it was written; try again",
                         what);
    if (wrote)
        s->own_commits++;
    return 0;
}

void pg_tx_rollback(struct pg_store *s)
{
    memset(s->count_delta, 0, sizeof s->count_delta);
    s->tx_wrote = false;
    if (!s->in_tx)
        return;
    s->in_tx = false;
    if (!connection_lost(s))
        PQclear(pg_exec_script(s, "ROLLBACK"));
}

/* ---- UTF-8 --------------------------------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at p (1-4), or 0 when it is not one (overlong forms,
 * surrogates and code points past U+10FFFF are invalid, as PostgreSQL holds them). */
static size_t utf8_seq(const unsigned char *p)
{
    if (p[0] < 0x80)
        return 1;
    if (p[0] >= 0xc2 && p[0] <= 0xdf)
        return (p[1] & 0xc0) == 0x80 ? 2 : 0;
    if (p[0] >= 0xe0 && p[0] <= 0xef) {
        if ((p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80)
            return 0;
        if ((p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xed && p[1] > 0x9f))
            return 0;
        return 3;
    }
    if (p[0] >= 0xf0 && p[0] <= 0xf4) {
        if ((p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80 || (p[3] & 0xc0) != 0x80)
            return 0;
        if ((p[0] == 0xf0 && p[1] < 0x90) || (p[0] == 0xf4 && p[1] > 0x8f))
            return 0;
        return 4;
    }
    return 0;
}

int pg_utf8_clean(const char *in, char **out, aspen_store_error *err)
{
    *out = NULL;
    if (!in)
        return 0;
    size_t bad = 0, len = 0;
    for (const unsigned char *p = (const unsigned char *)in; *p;) {
        size_t k = utf8_seq(p);
        if (!k) {
            bad++;
            k = 1;
        }
        p += k;
        len += k;
    }
    if (!bad)
        return 0;
    char *copy = malloc(len + 2 * bad + 1);
    if (!copy)
        return store_err(err, ASPEN_STORE_ENOMEM, "out of memory cleaning text for the database");
    char *w = copy;
    for (const unsigned char *p = (const unsigned char *)in; *p;) {
        size_t k = utf8_seq(p);
        if (k) {
            memcpy(w, p, k);
            w += k;
            p += k;
        } else {
            memcpy(w, "\xef\xbf\xbd", 3); /* U+FFFD */
            w += 3;
            p++;
        }
    }
    *w = '\0';
    *out = copy;
    return 0;
}

/* ---- schema ------------------------------------------------------------------------------------ */

/* What the current schema (namespace) holds: Aspen's version (0 when there is no aspen_schema
 * table), its application id, and how many other relations there are (a few names in `names`). */
struct inspection {
    int64_t version, app;
    int64_t others;
    char names[160];
    char nsp[64];
};

static int inspect(struct pg_store *s, struct inspection *in, aspen_store_error *err)
{
    memset(in, 0, sizeof *in);
    PGresult *r = pg_exec(
        s, NULL,
        "SELECT to_regclass('aspen_schema') IS NOT NULL, coalesce(current_schema(), ''),"
        " (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        "  WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p', 'v', 'm', 'f')"
        "  AND c.relname <> 'aspen_schema'),"
        " (SELECT string_agg(relname, ', ' ORDER BY relname) FROM (SELECT c.relname FROM pg_class c"
        "  JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = current_schema()"
        "  AND c.relkind IN ('r', 'p', 'v', 'm', 'f') ORDER BY c.relname LIMIT 4) x)",
        NULL, "reading the database's catalog", err);
    if (!r)
        return code_of(err);
    bool aspen = pg_get_bool(r, 0, 0);
    snprintf(in->nsp, sizeof in->nsp, "%s", PQgetvalue(r, 0, 1));
    in->others = pg_get_int(r, 0, 2);
    snprintf(in->names, sizeof in->names, "%s", PQgetvalue(r, 0, 3));
    PQclear(r);
    if (!aspen)
        return 0;
    r = pg_exec(s, NULL, "SELECT version, application_id FROM aspen_schema ORDER BY version DESC",
                NULL, "reading the schema version", err);
    if (!r)
        return code_of(err);
    if (PQntuples(r) >= 1) {
        in->version = pg_get_int(r, 0, 0);
        in->app = pg_get_int(r, 0, 1);
    } else {
        in->version = -1; /* a table without its row */
    }
    PQclear(r);
    return 0;
}

/* Refuses what is not an Aspen database this program understands. *fresh: nothing there yet. */
static int check_inspection(struct pg_store *s, const struct inspection *in, bool *fresh,
                            aspen_store_error *err)
{
    *fresh = false;
    if (in->version >= 4 && in->version < ASPEN_STORE_SCHEMA_VERSION &&
        in->app == ASPEN_APPLICATION_ID)
        return 0; /* an older schema: migrated by open (create_schema) */
    if (in->version == 0 && in->others == 0) {
        *fresh = true;
        return 0;
    }
    if (in->version == 0)
        return store_err(err, ASPEN_STORE_ECORRUPT,
                         "PostgreSQL database %s is not an Aspen database: schema \"%s\" holds %lld "
                         "tables or views (%s%s) and no aspen_schema table. It was left untouched: "
                         "create a database for aspen (createdb aspen) and pass it in --db",
                         s->shown, in->nsp, (long long)in->others, in->names,
                         in->others > 4 ? ", …" : "");
    if (in->version < 0 || in->app != ASPEN_APPLICATION_ID)
        return store_err(err, ASPEN_STORE_ECORRUPT,
                         "PostgreSQL database %s has an aspen_schema table that Aspen did not "
                         "write (application id %lld, version %lld). It was left untouched: use "
                         "another database for aspen",
                         s->shown, (long long)in->app, (long long)in->version);
    if (in->version > ASPEN_STORE_SCHEMA_VERSION)
        return store_err(err, ASPEN_STORE_ENEWER,
                         "database schema version %lld is newer than this aspen (%d): upgrade "
                         "aspen, or use the aspen that wrote %s",
                         (long long)in->version, ASPEN_STORE_SCHEMA_VERSION, s->shown);
    if (in->version < ASPEN_STORE_SCHEMA_VERSION)
        /* PostgreSQL databases begin at version 4: versions 1-3 predate the backend. */
        return store_err(err, ASPEN_STORE_ECORRUPT,
                         "PostgreSQL database %s claims Aspen schema version %lld, which no "
                         "PostgreSQL Aspen wrote (they begin at 4). It was left untouched: "
                         "restore it from a backup or use another database",
                         s->shown, (long long)in->version);
    return 0;
}

/* Version 5: engines carry their heartbeat and live figures (the columns are written once, in
 * store/common.c, for both backends). */
static int pg_migrate_v5(struct pg_store *s, aspen_store_error *err)
{
    for (size_t i = 0; i < store_engine_v5_ncolumns; i++) {
        char sql[160];
        snprintf(sql, sizeof sql, "ALTER TABLE engines ADD COLUMN %s", store_engine_v5_columns[i]);
        PGresult *r = pg_exec_script(s, sql);
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            int code = pg_err(s, err, r, "adding engines' heartbeats (version 5)");
            PQclear(r);
            return code;
        }
        PQclear(r);
    }
    return 0;
}

/* Version 6: attempt data (pg_attempt_data.c), the blobs a finished attempt keeps, in their own
 * table; the foreign key deletes them with their job. */
static int pg_migrate_v6(struct pg_store *s, aspen_store_error *err)
{
    PGresult *r = pg_exec_script(s,
                         "CREATE TABLE attempt_data ("
                         "  job bigint NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,"
                         "  attempt integer NOT NULL,"
                         "  kind integer NOT NULL,"
                         "  size bigint NOT NULL,"
                         "  bytes bytea NOT NULL,"
                         "  PRIMARY KEY (job, attempt, kind))");
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        int code = pg_err(s, err, r, "adding attempt data (version 6)");
        PQclear(r);
        return code;
    }
    PQclear(r);
    return 0;
}

/* Version 7: schedules, their occurrence keys and the scheduler lease (the SQL is in
 * store/schedule.c, beside SQLite's). */
static int pg_migrate_v7(struct pg_store *s, aspen_store_error *err)
{
    PGresult *r = pg_exec_script(s, store_schedule_v7_pg); /* several statements: simple protocol */
    int code = PQresultStatus(r) == PGRES_COMMAND_OK ? 0 : pg_err(s, err, r, "adding schedules (version 7)");
    PQclear(r);
    return code;
}

/* Version 9: an index per whole-store sort key (store/sort.c, the same as SQLite's). */
static int pg_migrate_v9(struct pg_store *s, aspen_store_error *err)
{
    for (int k = 0; k < ASPEN_STORE_SORT_COUNT; k++) {
        char sql[256];
        if (store_sort_index_sql((aspen_store_sort)k, true, sql, sizeof sql) != 0)
            continue;
        PGresult *r = pg_exec_script(s, sql);
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            int code = pg_err(s, err, r, "adding the sort indexes (version 9)");
            PQclear(r);
            return code;
        }
        PQclear(r);
    }
    return 0;
}

/* Version 10: unique jobs' keys and the finished-jobs index of retention (the same tables and
 * indexes as SQLite's migrate_v10; docs/STORE.md "Unique jobs", "Retention"). */
static int pg_migrate_v10(struct pg_store *s, aspen_store_error *err)
{
    PGresult *r = pg_exec_script(s,
                         "CREATE TABLE job_unique ("
                         "  job bigint PRIMARY KEY,"
                         "  key text NOT NULL,"
                         "  created_at bigint NOT NULL);"
                         "CREATE INDEX job_unique_key ON job_unique (key, created_at);"
                         "CREATE INDEX jobs_finished ON jobs (state, finished_at)"
                         "  WHERE finished_at IS NOT NULL;");
    int code = 0;
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        code = pg_err(s, err, r, "adding unique keys and the finished-jobs index (version 10)");
    PQclear(r);
    return code;
}

/* Version 11: the metrics history, per-minute rollups of what each engine finished (the table's
 * text is store/metrics.c's, the same on SQLite). */
static int pg_migrate_v11(struct pg_store *s, aspen_store_error *err)
{
    PGresult *r = pg_exec_script(s, store_metrics_v11_sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        int code = pg_err(s, err, r, "adding the metrics history (version 11)");
        PQclear(r);
        return code;
    }
    PQclear(r);
    return 0;
}

/* Version 12: the log feed. Transactions of many hosts commit in any order, so a sequence would
 * let a reader pass a number whose transaction has not committed yet and skip its lines for
 * good. Each line carries instead the id of the transaction that wrote it (a column default, so
 * no INSERT changes), and the feed reads only lines of transactions older than every one still
 * running (pg_snapshot_xmin): those can no longer gain lines. The constant default first, so
 * the ALTER does not rewrite the table; then the default new lines take. */
static int pg_migrate_v12(struct pg_store *s, aspen_store_error *err)
{
    PGresult *r = pg_exec_script(s, "ALTER TABLE logs ADD COLUMN IF NOT EXISTS xid xid8 NOT NULL DEFAULT '0';"
                                  "ALTER TABLE logs ALTER COLUMN xid SET DEFAULT pg_current_xact_id();"
                                  "CREATE INDEX IF NOT EXISTS logs_feed ON logs (xid, job, seq);");
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        int code = pg_err(s, err, r, "adding the log feed (version 12)");
        PQclear(r);
        return code;
    }
    PQclear(r);
    return 0;
}

/* Version 13 keeps job ids from being handed out twice on SQLite (migrate_v13, a trigger): a
 * PostgreSQL sequence never hands a number out twice, whatever is deleted, so nothing to do
 * here; the version moves with SQLite's so one number means one schema everywhere. */
static int pg_migrate_v13(struct pg_store *s, aspen_store_error *err)
{
    (void)s;
    (void)err;
    return 0;
}

/* Version 15: SQLite's job id floor repaired (sqlite_open.c); a sequence has none to repair. */
static int pg_migrate_v15(struct pg_store *s, aspen_store_error *err)
{
    (void)s;
    (void)err;
    return 0;
}

/* Version 14: one index fewer per finished job (issue 8; docs/STORE.md "Indexes"). A state change
 * on PostgreSQL is never a HOT update (state is in every partial index's predicate), so a finished
 * job's new row version gets an entry in every index whose predicate it meets: jobs_succeeded,
 * jobs_failed and jobs_cancelled gave each finished job one entry beside the one it has in
 * jobs_finished (state, finished_at), which serves the same filters (the readers add
 * `finished_at IS NOT NULL` to a final state's filter so the planner may use it). Neither index
 * orders a state's jobs by id on PostgreSQL (equal keys are in heap order), so a state's newest-
 * first page is a range of the state and a sort, or the primary key read backwards, as before.
 * The duration sort's index stays whole here: an index over unfinished jobs, which SQLite needs to
 * read their -1 block by id (sqlite_open.c version 14), would get an entry at the submit and
 * another at the start (a new row version), as many as jobs_sort_duration takes now. */
static int pg_migrate_v14(struct pg_store *s, aspen_store_error *err)
{
    PGresult *r = pg_exec_script(s, "DROP INDEX IF EXISTS jobs_succeeded;"
                                  "DROP INDEX IF EXISTS jobs_failed;"
                                  "DROP INDEX IF EXISTS jobs_cancelled;");
    int code = 0;
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        code = pg_err(s, err, r, "dropping the final states' indexes (version 14)");
    PQclear(r);
    return code;
}

/* Version 16: room in the guest, priority and created sort indexes' leaves for a job's second
 * entry (issue 8; docs/STORE.md "Indexes", docs/BENCHMARKS.md). A finished job's row version is
 * never HOT (see version 14), so it gets a second entry, beside its first, in each of these
 * indexes, although no state change touches their keys: a leaf the submit's appends left 90 %
 * full (the B-tree default) splits as those entries arrive, in the middle of the group commit.
 * Left half full, it takes them: the completion UPDATE spent 13-24 % less time in the server in
 * alternated runs, and after every job finished the indexes are no larger (the splits left
 * half-full leaves too). Only pages made from now on are filled this way: an existing index is
 * not rewritten. Not for the duration index, whose finished entries go to another key (room only
 * made it bigger), nor the primary key (measured: no gain). */
static int pg_migrate_v16(struct pg_store *s, aspen_store_error *err)
{
    PGresult *r = pg_exec_script(s, "ALTER INDEX IF EXISTS jobs_sort_guest SET (fillfactor = 50);"
                                  "ALTER INDEX IF EXISTS jobs_sort_priority SET (fillfactor = 50);"
                                  "ALTER INDEX IF EXISTS jobs_sort_created SET (fillfactor = 50);");
    int code = 0;
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        code = pg_err(s, err, r, "leaving room in the sort indexes (version 16)");
    PQclear(r);
    return code;
}

/* Version 17: the rule's period and states kept with a unique key, and the max attempts as
 * submitted, noted by the first retry that raises them (the same columns as SQLite's migrate_v17,
 * which says why). Constant defaults and a NULL column: no table is rewritten. */
static int pg_migrate_v17(struct pg_store *s, aspen_store_error *err)
{
    PGresult *r = pg_exec_script(s,
                         "ALTER TABLE job_unique ADD COLUMN IF NOT EXISTS period_ms bigint NOT NULL"
                         " DEFAULT 0, ADD COLUMN IF NOT EXISTS states integer NOT NULL DEFAULT 0;"
                         "ALTER TABLE jobs ADD COLUMN IF NOT EXISTS submitted_max_attempts integer;");
    int code = 0;
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        code = pg_err(s, err, r, "keeping unique rules and submitted attempts (version 17)");
    PQclear(r);
    return code;
}

/* Version 18: the queues an engine serves (store/common.c's column, as SQLite's migrate_v18). */
static int pg_migrate_v18(struct pg_store *s, aspen_store_error *err)
{
    char sql[160];
    snprintf(sql, sizeof sql, "ALTER TABLE engines ADD COLUMN IF NOT EXISTS %s",
             store_engine_v18_column);
    PGresult *r = PQexec(s->conn, sql);
    int code = 0;
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        code = pg_err(s, err, r, "keeping the queues engines serve (version 18)");
    PQclear(r);
    return code;
}

/* pg_migrations[v - 4] takes a database from v to v + 1, inside the transaction that holds the
 * schema lock (a fresh database is created at 4 and migrated at once, in the same transaction). */
static int (*const pg_migrations[ASPEN_STORE_SCHEMA_VERSION - 4])(struct pg_store *,
                                                                  aspen_store_error *) = {
    pg_migrate_v5,
    pg_migrate_v6,
    pg_migrate_v7,
    pg_migrate_queues, /* version 8: named queues (pg_queues.c) */
    pg_migrate_v9,
    pg_migrate_v10,
    pg_migrate_v11,
    pg_migrate_v12,
    pg_migrate_v13,
    pg_migrate_v14,
    pg_migrate_v15,
    pg_migrate_v16,
    pg_migrate_v17,
    pg_migrate_v18,
};

static int create_schema_locked(struct pg_store *s, aspen_store_error *err);

/* Creating or migrating runs without statement_timeout and under PG_MIGRATE_ANSWER_MS: an index
 * built over millions of jobs, or the schema lock while another host migrates, may take minutes
 * where no other statement of the store takes a second. */
static int create_schema(struct pg_store *s, aspen_store_error *err)
{
    s->long_wait = true;
    int code = create_schema_locked(s, err);
    s->long_wait = false;
    return code;
}

static int create_schema_locked(struct pg_store *s, aspen_store_error *err)
{
    int code = pg_tx_begin(s, err);
    if (code)
        return code;
    code = exec_ok(s, NULL, "SET LOCAL statement_timeout = 0", NULL,
                   "lifting statement_timeout for the schema's creation or migration", err);
    if (code)
        goto rollback;
    struct pg_params p = {0};
    pg_p_int(&p, PG_SCHEMA_LOCK);
    code = exec_ok(s, NULL, "SELECT pg_advisory_xact_lock($1::bigint)", &p,
                   "waiting for the schema lock", err);
    if (code)
        goto rollback;
    /* Again under the lock: another host may have created it meanwhile. */
    struct inspection in;
    bool fresh = false;
    code = inspect(s, &in, err);
    if (!code)
        code = check_inspection(s, &in, &fresh, err);
    if (code || (!fresh && in.version >= ASPEN_STORE_SCHEMA_VERSION))
        goto rollback; /* nothing to do, or refused: either way nothing written */
    int64_t version = in.version;
    if (!fresh)
        goto migrate;
    if (!in.nsp[0]) {
        code = store_err(err, ASPEN_STORE_EINVAL,
                         "database %s has no schema to create Aspen's tables in (search_path "
                         "names none that exists): create one or fix search_path",
                         s->shown);
        goto rollback;
    }
    PGresult *r = pg_exec_script(s, pg_schema_v4_sql); /* several statements: simple protocol */
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) {
        code = pg_err(s, err, r, "creating the schema (version 4)");
        PQclear(r);
        goto rollback;
    }
    PQclear(r);
    version = 4;
migrate:
    for (int64_t v = version; v < ASPEN_STORE_SCHEMA_VERSION; v++) {
        code = pg_migrations[v - 4](s, err);
        if (code)
            goto rollback;
    }
    if (version < ASPEN_STORE_SCHEMA_VERSION) {
        struct pg_params pv = {0};
        pg_p_int(&pv, ASPEN_STORE_SCHEMA_VERSION);
        code = exec_ok(s, NULL, "UPDATE aspen_schema SET version = $1::bigint", &pv,
                       "recording the schema version", err);
        if (code)
            goto rollback;
    }
    return pg_tx_commit(s, "committing the schema", err);
rollback:
    pg_tx_rollback(s);
    return code;
}

/* ---- open and close ------------------------------------------------------------------------------ */

int store_pg_open(const char *conninfo, const aspen_store_options *o, aspen_store **out,
                  aspen_store_error *err)
{
    *out = NULL;
    struct pg_store *s = calloc(1, sizeof *s);
    if (!s)
        return store_err(err, ASPEN_STORE_ENOMEM, "out of memory opening a PostgreSQL database");
    s->base.ops = &store_pg_ops;
    s->base.name = store_strdup(conninfo ? conninfo : "");
    s->base.log_cap = o->log_cap > 0 ? o->log_cap : 1000;
    s->read_only = o->read_only;
    s->give_up = o->give_up;
    store_redact_conninfo(conninfo, s->shown, sizeof s->shown);
    int code;
    if (!s->base.name) {
        code = store_err(err, ASPEN_STORE_ENOMEM, "out of memory opening %s", s->shown);
        goto fail;
    }
    char *emsg = NULL;
    PQconninfoOption *parsed = PQconninfoParse(conninfo, &emsg);
    if (!parsed) {
        char lib[300];
        one_line(emsg ? emsg : "out of memory", lib, sizeof lib);
        PQfreemem(emsg);
        code = store_err(err, ASPEN_STORE_EINVAL,
                         "'%s' names a PostgreSQL database but libpq cannot read it (%s): write "
                         "it as postgresql://USER@HOST:PORT/DBNAME or host=HOST dbname=DBNAME",
                         s->shown, lib);
        scrub(conninfo, err);
        goto fail;
    }
    PQconninfoFree(parsed);
    code = pg_connect(s, "", err);
    if (code)
        goto fail;
    struct inspection in;
    bool fresh = false;
    code = inspect(s, &in, err);
    if (!code)
        code = check_inspection(s, &in, &fresh, err);
    if (code)
        goto fail;
    if (fresh) {
        if (o->read_only) {
            code = store_err(err, ASPEN_STORE_ENOTFOUND,
                             "PostgreSQL database %s holds no Aspen schema yet, and nothing was "
                             "created: add --create to create it (aspen worker and aspen submit "
                             "create it on first use), or check the database name in --db",
                             s->shown);
            goto fail;
        }
        if (o->no_create) {
            code = store_err(err, ASPEN_STORE_ENOTFOUND,
                             "PostgreSQL database %s holds no Aspen schema yet, and nothing was "
                             "created: add --create to create it (aspen worker and aspen submit "
                             "create it on first use), or check the database name in --db",
                             s->shown);
            goto fail;
        }
        code = create_schema(s, err);
        if (code)
            goto fail;
    } else if (in.version < ASPEN_STORE_SCHEMA_VERSION) {
        if (o->read_only) {
            code = store_err(err, ASPEN_STORE_EINVAL,
                             "database %s has Aspen schema version %lld, older than this aspen's "
                             "(%d): open it once writable to migrate it (aspen does so on open)",
                             s->shown, (long long)in.version, ASPEN_STORE_SCHEMA_VERSION);
            goto fail;
        }
        code = create_schema(s, err); /* migrates under the schema lock */
        if (code)
            goto fail;
    }
    *out = &s->base;
    return 0;
fail:
    pg_close(&s->base);
    return code;
}

void pg_close(aspen_store *base)
{
    struct pg_store *s = pgs(base);
    if (!s)
        return;
    PQfinish(s->conn);
    free(s->base.name);
    free(s);
}

/* ---- check and recount --------------------------------------------------------------------------- */

static int recount_into(struct pg_store *s, int64_t real[ASPEN_STORE_STATE_COUNT],
                        aspen_store_error *err)
{
    memset(real, 0, sizeof(int64_t) * ASPEN_STORE_STATE_COUNT);
    PGresult *r = pg_exec(s, "aspen_recount", "SELECT state, count(*) FROM jobs GROUP BY state",
                          NULL, "counting jobs", err);
    if (!r)
        return code_of(err);
    for (int i = 0; i < PQntuples(r); i++) {
        int state = state_from_text((const unsigned char *)PQgetvalue(r, i, 0));
        if (state >= 0)
            real[state] = pg_get_int(r, i, 1);
    }
    PQclear(r);
    return 0;
}

/* PostgreSQL has no quick_check (amcheck is an extension that may not be there): the check
 * reads every table Aspen needs, verifies every stored binary against its hash on the server,
 * and compares the kept counts with a recount. */
int pg_check(aspen_store *base, aspen_store_error *err)
{
    struct pg_store *s = pgs(base);
    static const char *const tables[] = {"aspen_schema", "jobs",     "attempts", "logs",
                                         "binaries",     "engines",  "claims",   "job_counts",
                                         "settings",     "attempt_data", "metrics"};
    for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++) {
        char sql[96], what[96];
        snprintf(sql, sizeof sql, "SELECT 1 FROM %s LIMIT 1", tables[i]);
        snprintf(what, sizeof what, "checking table %s", tables[i]);
        PGresult *r = pg_exec_dynamic(s, sql, NULL, what, err);
        if (!r)
            return code_of(err);
        PQclear(r);
    }
    PGresult *r = pg_exec(s, "aspen_check_binaries",
                          "SELECT sha256, encode(sha256(bytes), 'hex'), size, length(bytes)"
                          " FROM binaries WHERE encode(sha256(bytes), 'hex') <> sha256"
                          " OR size <> length(bytes) LIMIT 1",
                          NULL, "checking stored binaries", err);
    if (!r)
        return code_of(err);
    if (PQntuples(r) > 0) {
        int code = store_err(err, ASPEN_STORE_ECORRUPT,
                             "database %s is damaged: binary %.16s… does not match its hash (its "
                             "%s bytes hash to %.16s…, size column %s): resubmit the guest file "
                             "to store a good copy",
                             s->shown, PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 3),
                             PQgetvalue(r, 0, 1), PQgetvalue(r, 0, 2));
        PQclear(r);
        return code;
    }
    PQclear(r);
    int64_t kept[ASPEN_STORE_STATE_COUNT], real[ASPEN_STORE_STATE_COUNT];
    int code = pg_counts(&s->base, kept, err);
    if (!code)
        code = recount_into(s, real, err);
    if (code)
        return code;
    for (int i = 0; i < ASPEN_STORE_STATE_COUNT; i++)
        if (kept[i] != real[i])
            return store_err(
                err, ASPEN_STORE_EIO,
                "job counts drifted in %s (%s: kept %lld, actual %lld), probably after "
                "rows were changed by hand: run aspen_store_recount",
                s->shown, aspen_store_state_name((aspen_store_state)i), (long long)kept[i],
                (long long)real[i]);
    return 0;
}

int pg_recount(aspen_store *base, aspen_store_error *err)
{
    struct pg_store *s = pgs(base);
    int code = pg_tx_begin(s, err);
    if (code)
        return code;
    /* The data-version row first, as every committing writer takes it: no writer can commit a
     * count change between the recount and its write. */
    code = exec_ok(s, "aspen_version_lock", "SELECT 1 FROM aspen_schema FOR UPDATE", NULL,
                   "locking the job counts", err);
    int64_t real[ASPEN_STORE_STATE_COUNT];
    if (!code)
        code = recount_into(s, real, err);
    for (int i = 0; !code && i < ASPEN_STORE_STATE_COUNT; i++) {
        struct pg_params p = {0};
        pg_p_text(&p, aspen_store_state_name((aspen_store_state)i));
        pg_p_int(&p, real[i]);
        code = exec_ok(s, "aspen_counts_set", "UPDATE job_counts SET n = $2::bigint WHERE state = $1",
                       &p, "rewriting job counts", err);
    }
    if (code) {
        pg_tx_rollback(s);
        return code;
    }
    s->tx_wrote = true;
    return pg_tx_commit(s, "rewriting job counts", err);
}

/* ---- settings and change detection --------------------------------------------------------------- */

int pg_setting_set(aspen_store *base, const char *key, const char *value, aspen_store_error *err)
{
    struct pg_store *s = pgs(base);
    int code = pg_tx_begin(s, err);
    if (code)
        return code;
    struct pg_params p = {0};
    pg_p_text(&p, key);
    if (value) {
        pg_p_text(&p, value);
        code = exec_ok(s, "aspen_setting_set",
                       "INSERT INTO settings (key, value) VALUES ($1, $2)"
                       " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                       &p, "writing a setting", err);
    } else {
        code = exec_ok(s, "aspen_setting_del", "DELETE FROM settings WHERE key = $1", &p,
                       "writing a setting", err);
    }
    /* Unpausing makes the queue claimable again: wake idle engines on every host. */
    if (!code && strcmp(key, "queue.paused") == 0 && (!value || strcmp(value, "0") == 0))
        code = pg_notify_work(s, err);
    if (code) {
        pg_tx_rollback(s);
        return code;
    }
    s->tx_wrote = true;
    return pg_tx_commit(s, "writing a setting", err);
}

int pg_setting_get(aspen_store *base, const char *key, char **value, aspen_store_error *err)
{
    struct pg_store *s = pgs(base);
    *value = NULL;
    struct pg_params p = {0};
    pg_p_text(&p, key);
    PGresult *r = pg_exec(s, "aspen_setting_get", "SELECT value FROM settings WHERE key = $1", &p,
                          "reading a setting", err);
    if (!r)
        return code_of(err);
    int code = 0;
    if (PQntuples(r) > 0) {
        bool oom = false;
        *value = pg_get_text(r, 0, 0, &oom);
        if (oom)
            code = store_err(err, ASPEN_STORE_ENOMEM, "out of memory reading a setting");
    }
    PQclear(r);
    return code;
}

/* PostgreSQL manages its write-ahead log itself (checkpoint_timeout, max_wal_size), and a
 * CHECKPOINT needs the pg_checkpoint role and frees nothing on a full disk from a client: so
 * there is nothing for a client to do, and nothing to fail. */
int pg_checkpoint(aspen_store *base, aspen_store_error *err)
{
    (void)base;
    (void)err;
    return 0;
}

int pg_data_version(aspen_store *base, uint64_t *version, aspen_store_error *err)
{
    struct pg_store *s = pgs(base);
    PGresult *r = pg_exec(s, "aspen_data_version", "SELECT data_version FROM aspen_schema", NULL,
                          "reading the data version", err);
    if (!r)
        return code_of(err);
    *version = (uint64_t)pg_get_int(r, 0, 0) - s->own_commits;
    PQclear(r);
    return 0;
}

/* ---- binaries -------------------------------------------------------------------------------------- */

int pg_binary_store(struct pg_store *s, const char *sha, const void *bytes, size_t size,
                    const char *name, int64_t now_ms, aspen_store_error *err)
{
    struct pg_params p = {0};
    pg_p_text(&p, sha);
    pg_p_text(&p, name);
    pg_p_int(&p, (int64_t)size);
    pg_p_bytes(&p, bytes ? bytes : "", size);
    pg_p_now(&p, now_ms);
    /* Stored once; a stored copy that differs from these bytes (which do hash to sha) was
     * damaged, and is replaced. */
    return exec_ok(s, "aspen_binary_store",
                   "INSERT INTO binaries (sha256, name, size, bytes, created_at)"
                   " VALUES ($1, $2, $3::bigint, $4, " PG_NOW(5) ")"
                   " ON CONFLICT (sha256) DO UPDATE SET size = excluded.size, bytes = excluded.bytes"
                   " WHERE binaries.size <> excluded.size OR binaries.bytes <> excluded.bytes",
                   &p, "storing a binary", err);
}

int pg_binary_exists(struct pg_store *s, const char *sha, aspen_store_error *err)
{
    struct pg_params p = {0};
    pg_p_text(&p, sha);
    PGresult *r = pg_exec(s, "aspen_binary_exists", "SELECT 1 FROM binaries WHERE sha256 = $1", &p,
                          "looking up a binary", err);
    if (!r)
        return code_of(err);
    int n = PQntuples(r);
    PQclear(r);
    if (n)
        return 0;
    return store_err(err, ASPEN_STORE_ENOTFOUND,
                     "binary %.16s… is not stored in %s: store it first (aspen_store_put_binary) "
                     "or submit the job with the binary's bytes",
                     sha, s->shown);
}

int pg_put_binary(aspen_store *base, const void *bytes, size_t size, const char *name,
                  int64_t now_ms, char sha256_out[65], aspen_store_error *err)
{
    struct pg_store *s = pgs(base);
    char sha[65];
    aspen_store_sha256_hex(bytes ? bytes : "", size, sha);
    int code = pg_tx_begin(s, err);
    if (code)
        return code;
    code = pg_binary_store(s, sha, bytes, size, name, now_ms, err);
    if (code) {
        pg_tx_rollback(s);
        return code;
    }
    code = pg_tx_commit(s, "storing a binary", err);
    if (!code && sha256_out)
        memcpy(sha256_out, sha, 65);
    return code;
}

int pg_get_binary(aspen_store *base, const char *sha256, aspen_store_binary *out,
                  aspen_store_error *err)
{
    struct pg_store *s = pgs(base);
    memset(out, 0, sizeof *out);
    struct pg_params p = {0};
    pg_p_text(&p, sha256);
    PGresult *r = pg_exec(s, "aspen_binary_get",
                          "SELECT name, bytes, created_at FROM binaries WHERE sha256 = $1", &p,
                          "reading a binary", err);
    if (!r)
        return code_of(err);
    int code = 0;
    if (PQntuples(r) == 0) {
        code = store_err(err, ASPEN_STORE_ENOTFOUND, "binary %.16s… is not stored in %s", sha256,
                         s->shown);
        goto done;
    }
    bool oom = false;
    out->name = pg_get_text(r, 0, 0, &oom);
    out->bytes = pg_get_bytes(r, 0, 1, &out->size, &oom);
    out->created_at_ms = pg_get_int(r, 0, 2);
    if (!oom && !out->bytes)
        oom = !(out->bytes = calloc(1, 1));
    if (oom) {
        aspen_store_binary_clear(out);
        code = store_err(err, ASPEN_STORE_ENOMEM, "out of memory reading a binary");
        goto done;
    }
    /* The bytes become guest code: they must be what was stored under this hash. */
    char actual[65];
    aspen_store_sha256_hex(out->bytes, out->size, actual);
    if (strcmp(actual, sha256) != 0) {
        code = store_err(err, ASPEN_STORE_ECORRUPT,
                         "binary %.16s… in %s is damaged: its %zu stored bytes hash to %.16s…. "
                         "Resubmit the job with the guest file (that stores a good copy again)",
                         sha256, s->shown, out->size, actual);
        aspen_store_binary_clear(out);
        goto done;
    }
    memcpy(out->sha256, sha256, 65);
done:
    PQclear(r);
    return code;
}

/* ---- the ops table ---------------------------------------------------------------------------------- */

const struct store_ops store_pg_ops = {
    .name = "postgresql",
    .close = pg_close,
    .check = pg_check,
    .recount = pg_recount,
    .setting_set = pg_setting_set,
    .setting_get = pg_setting_get,
    .checkpoint = pg_checkpoint,
    .data_version = pg_data_version,
    .put_binary = pg_put_binary,
    .get_binary = pg_get_binary,
    .submit_batch = pg_submit_batch,
    .queue_set = pg_queue_set,
    .queues = pg_queues,
    .queue_remove = pg_queue_remove,
    .claim = pg_claim,
    .unclaim = pg_unclaim,
    .append_logs = pg_append_logs,
    .commit = pg_commit,
    .release = pg_release,
    .cancel = pg_cancel,
    .rerun = pg_rerun,
    .retry = pg_retry,
    .delete = pg_delete,
    .job_unique_rule = pg_job_unique_rule,
    .prune = pg_prune,
    .prune_count = pg_prune_count,
    .delete_jobs = pg_delete_jobs,
    .purge = pg_purge,
    .engine_register = pg_engine_register,
    .engine_renew = pg_engine_renew,
    .engine_unregister = pg_engine_unregister,
    .engine_heartbeat = pg_engine_heartbeat,
    .engines = pg_engines,
    .recover = pg_recover,
    .cancel_requests = pg_cancel_requests,
    .get = pg_get,
    .list = pg_list,
    .count = pg_count,
    .retry_failed = pg_retry_failed,
    .cancel_matching = pg_cancel_matching,
    .counts = pg_counts,
    .oldest_waiting = pg_oldest_waiting,
    .attempts = pg_attempts,
    .logs = pg_logs,
    .log_feed = pg_log_feed,
    .log_feed_end = pg_log_feed_end,
    .put_attempt_data = pg_put_attempt_data,
    .get_attempt_data = pg_get_attempt_data,
    .list_attempt_data = pg_list_attempt_data,
    .wait_fd = pg_wait_fd,
    .notified = pg_notified,
    .log_wait_fd = pg_log_wait_fd,
    .log_notified = pg_log_notified,
    .schedule = &store_pg_schedule_ops,
    .set_priority = pg_set_priority,
    .run_now = pg_run_now,
    .snooze = pg_snooze,
    .snooze_matching = pg_snooze_matching,
    .metrics_write = pg_metrics_write,
    .metrics_rows = pg_metrics_rows,
    .metrics_prune = pg_metrics_prune,
};
