/* tui/pane_engines.c — the Engines pane: every engine registered on the database, on any host
 * (issue 8), from their heartbeats in the store: host, pid, started, workers, busy, warm VMs,
 * memory, jobs/s, the last heartbeat, and under each engine what each busy worker runs (job and
 * guest). The console's own engine is marked "*", a host whose heartbeat stopped (over
 * ASPEN_STORE_HEARTBEAT_STALE_MS) "STALE". Up/down select an engine's worker row, enter opens
 * that job. Behind tui_pane_ops (app.h).
 *
 * The list is read once a second (tui_engines_tick, whatever pane is shown; at once when the pane
 * is first drawn or refreshed) through a read-only store handle of the pane's own, on libuv's
 * thread pool like every other read of the console (app.c): the UI thread only draws the last
 * list, so a slow or locked database (another host holding the engines table, a server far
 * away) never freezes the keyboard or the screen. One read is in flight at a time, so the handle
 * and the tail table below are only ever touched by one pool thread. Host names and guests come
 * from other hosts: every cell goes through tui_put's sanitiser.
 *
 * The same read also tails the log lines of jobs that run on OTHER engines into the logs pane's
 * all-jobs buffer: this console's engine sends its own lines as events, other hosts' lines reach
 * it only through the store's log feed (aspen_store_log_feed: every job's lines after a cursor,
 * their engine named), so a job too short for any heartbeat to list still shows. On PostgreSQL a
 * waiter thread of its own (its own handle, LISTEN aspen_logs: one NOTIFY per transaction that
 * wrote lines) wakes the UI loop through an async handle the moment lines commit, and the loop
 * starts a read of the feed alone then, instead of at the next tick; the tick still reads once a
 * second (SQLite has no announcements, and lines held back behind an older open transaction on
 * PostgreSQL come with no announcement of their own). */
#include "app.h"

#include <curses.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The UI thread's side: what is drawn. */
static struct {
    char error[600]; /* a store message (512) and its prefix: never cut short of its end */
    aspen_store_engine_info *list;
    size_t n;
    bool have_list;
    bool busy;      /* a read is on the thread pool */
    double read_at; /* tui_mono_ms when the last read was started; 0: read at the next draw */
    long cursor;    /* index into the flattened job rows */
    tui_backoff retry; /* after a failed read: when to try again (view.h, as the Queues pane) */
} E;

/* The reader's side (one pool thread at a time: E.busy). */
static struct {
    aspen_store *store; /* read-only, opened on first use and again after a failed read */
    char open_error[600];
} R;

/* The log feed's cursor (reader's side): every engine's lines after it come with each read. */
static struct {
    aspen_store_log_cursor at;
    bool started;
} T;

/* The LISTEN waiter (PostgreSQL): a thread blocked in poll() on its handle's descriptor; on an
 * announcement it wakes the UI loop (W.async), which reads the feed. The UI thread's flags:
 * woken_busy, an announcement came while a read was in flight (read again when it is back). */
static struct {
    aspen_store *store; /* the waiter's own handle: a handle listens for one thread only */
    pthread_t th;
    int pipe[2];       /* written to stop the thread */
    uv_async_t async;
    bool tried, started, async_open, woken_busy;
    atomic_bool stop;
} W = {.pipe = {-1, -1}};

typedef struct engines_req {
    uv_work_t w;
    tui_app *a;
    const char *db;
    int64_t own; /* this console's engine: its lines come as events */
    bool tail;
    bool feed_only; /* woken by an announcement: the feed alone, the engines list waits its tick */
    bool again;     /* a full page came, or lines were announced during the read: read again */
    int rc;
    char error[600];
    aspen_store_engine_info *list;
    size_t n;
    aspen_store_feed_line *got;
    size_t n_got;
} engines_req;

/* On the pool: the lines other engines wrote since the last read (store feed, schema 12), up to
 * 2,000 a read; this console's own engine's lines are left out (they come as events). Starting
 * at the end: lines from before the console opened are in each job's own log. */
static void tail_other_hosts(engines_req *r)
{
    aspen_store_error se = {0};
    aspen_store_feed_line *l = NULL;
    size_t n = 0;
    if (aspen_store_log_feed(R.store, &T.at, 2000, &l, &n, &se) != 0)
        return;
    r->again = n == 2000;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (l[i].engine_id == r->own && r->own) {
            free(l[i].line);
            continue;
        }
        l[k++] = l[i];
    }
    r->got = l;
    r->n_got = k;
}

static void engines_work(uv_work_t *w)
{
    engines_req *r = w->data;
    aspen_store_error se = {0};
    if (tui_store_open_ro(r->db, &R.store, R.open_error, sizeof R.open_error) != 0) {
        r->rc = -1;
        snprintf(r->error, sizeof r->error, "%s", R.open_error);
        return;
    }
    if (!r->feed_only &&
        aspen_store_engines(R.store, aspen_store_now_ms(), &r->list, &r->n, &se) != 0) {
        r->rc = -1;
        snprintf(r->error, sizeof r->error, "%s", se.msg[0] ? se.msg : "cannot read the engines");
        /* a broken connection or a lock that outlived the store's wait is not mended by asking
         * the same handle again: the next read (after the backoff) opens a fresh one */
        aspen_store_close(R.store);
        R.store = NULL;
        return;
    }
    /* The feed's start is the first read of any kind (the pane's own reads run without tailing):
     * lines written after the console opened are not missed while the ticks wait on them. */
    if (!T.started) {
        T.at = ASPEN_STORE_LOG_CURSOR_END;
        aspen_store_feed_line *none = NULL;
        size_t n_none = 0;
        if (aspen_store_log_feed(R.store, &T.at, 0, &none, &n_none, &se) == 0)
            T.started = true;
        aspen_store_log_feed_free(none, n_none);
    }
    /* Not before the console's own engine is known: its lines would come twice (events and feed);
     * the cursor waits meanwhile, so nothing of the other engines' is lost. */
    if (r->tail && T.started && r->own)
        tail_other_hosts(r);
}

static void start_read(tui_app *a, bool tail, bool feed_only);

static void engines_done(uv_work_t *w, int status)
{
    engines_req *r = w->data;
    tui_app *a = r->a;
    E.busy = false;
    if (status == 0 && !a->quitting) {
        if (r->rc != 0) {
            tui_pane_error_seen(a, "Engines pane", E.error, r->error);
            snprintf(E.error, sizeof E.error, "%s", r->error); /* keep the last list on screen */
            tui_backoff_failed(&E.retry, tui_mono_ms());
        } else if (!r->feed_only) {
            /* (a woken read does not read the list: the one shown stays, and so does an error) */
            aspen_store_engines_free(E.list);
            E.list = r->list;
            E.n = r->n;
            r->list = NULL;
            E.have_list = true;
            E.error[0] = 0;
            tui_backoff_ok(&E.retry);
        }
        for (size_t i = 0; i < r->n_got; i++)
            tui_logbuf_push_from(&a->logs_all, r->got[i].job_id, r->got[i].attempt,
                                 r->got[i].time_ms, r->got[i].line, r->got[i].host, r->got[i].pid,
                                 r->got[i].engine_id);
        tui_request_draw(a);
    }
    bool again = (r->again || W.woken_busy) && !a->quitting && status == 0;
    aspen_store_engines_free(r->list);
    aspen_store_log_feed_free(r->got, r->n_got);
    free(r);
    if (again) {
        W.woken_busy = false;
        start_read(a, true, true);
    }
}

/* Starts a read on the pool unless one is in flight (then that one's answer is awaited). */
static void start_read(tui_app *a, bool tail, bool feed_only)
{
    if (a->quitting)
        return;
    if (E.busy) {
        W.woken_busy |= feed_only; /* lines announced after the read in flight began */
        return;
    }
    engines_req *r = calloc(1, sizeof *r);
    if (!r)
        return;
    r->a = a;
    r->w.data = r;
    r->db = aspen_engine_db_path(a->eng);
    r->own = a->snap.engine_id;
    r->tail = tail;
    r->feed_only = feed_only;
    E.busy = true;
    if (!feed_only)
        E.read_at = tui_mono_ms();
    if (uv_queue_work(a->loop, &r->w, engines_work, engines_done) != 0) {
        E.busy = false;
        free(r);
    }
}

/* ---- the LISTEN waiter (PostgreSQL) ---------------------------------------------------------- */

static void *waiter_main(void *arg)
{
    const char *db = arg;
    pthread_setname_np(pthread_self(), "aspen-logwait");
    aspen_store_error se = {0};
    char error[256] = "";
    tui_backoff retry = {0}; /* the waiter's own pacing (the tick's reads say why it fails) */
    while (!atomic_load(&W.stop)) {
        int fd = -1, rc = -1;
        /* opened here, not on the UI thread: a server far away or down must not freeze it */
        bool ready = W.store != NULL;
        if (!ready && !tui_backoff_waiting(&retry, tui_mono_ms())) {
            ready = tui_store_open_ro(db, &W.store, error, sizeof error) == 0;
            if (ready)
                tui_backoff_ok(&retry);
            else
                tui_backoff_failed(&retry, tui_mono_ms());
        }
        if (ready) {
            /* asked before each wait: the descriptor changes when the handle reconnects */
            rc = aspen_store_log_wait_fd(W.store, &fd, &se);
            if (rc == 0 && fd < 0)
                break; /* no announcements on this backend (SQLite): the tick reads */
        }
        struct pollfd p[2] = {{.fd = W.pipe[0], .events = POLLIN}, {.fd = fd, .events = POLLIN}};
        /* a second at most: a server gone away is tried again without a busy loop */
        int n = poll(p, rc || fd < 0 ? 1 : 2, 1000);
        if (n < 0 && errno != EINTR)
            break;
        if (p[0].revents)
            break; /* stop */
        if (rc || fd < 0 || !(p[1].revents & (POLLIN | POLLHUP | POLLERR)))
            continue;
        bool woken = false;
        if (aspen_store_log_notified(W.store, &woken, &se) == 0 && woken)
            uv_async_send(&W.async);
    }
    return NULL;
}

static void on_logs_announced(uv_async_t *h)
{
    tui_app *a = h->data;
    start_read(a, true, true);
}

/* Once, at the first tick: the waiter thread (it opens its handle itself, and ends at once on a
 * backend without announcements). Failing to start is not fatal: the tick still reads. */
static void start_waiter(tui_app *a)
{
    if (W.tried)
        return;
    W.tried = true;
    if (pipe2(W.pipe, O_CLOEXEC) != 0)
        return;
    if (uv_async_init(a->loop, &W.async, on_logs_announced) != 0)
        goto close_pipe;
    W.async.data = a;
    W.async_open = true;
    atomic_store(&W.stop, false);
    if (pthread_create(&W.th, NULL, waiter_main, (void *)aspen_engine_db_path(a->eng)) != 0) {
        uv_close((uv_handle_t *)&W.async, NULL);
        W.async_open = false;
        goto close_pipe;
    }
    W.started = true;
    return;
close_pipe:
    close(W.pipe[0]);
    close(W.pipe[1]);
    W.pipe[0] = W.pipe[1] = -1;
}

void tui_engines_quit(void)
{
    if (W.started) {
        atomic_store(&W.stop, true);
        ssize_t w = write(W.pipe[1], "x", 1);
        (void)w;
        pthread_join(W.th, NULL); /* no uv_async_send after this: the handle may close */
        close(W.pipe[0]);
        close(W.pipe[1]);
        W.pipe[0] = W.pipe[1] = -1;
        W.started = false;
    }
    if (W.async_open && !uv_is_closing((uv_handle_t *)&W.async))
        uv_close((uv_handle_t *)&W.async, NULL);
    W.async_open = false;
}

void tui_engines_begin(tui_app *a)
{
    /* The feed's start is taken here, as the console opens, on the UI thread while no pool work
     * can hold the handle: taken at the first pool read instead, it came after lines that other
     * engines wrote in the console's first second or two (a fast machine ran and logged a whole
     * job by then), and those never reached the pane. If this fails, the first read takes it. */
    aspen_store_error se = {0};
    if (T.started || tui_store_open_ro(aspen_engine_db_path(a->eng), &R.store, R.open_error,
                                       sizeof R.open_error) != 0)
        return;
    T.at = ASPEN_STORE_LOG_CURSOR_END;
    aspen_store_feed_line *none = NULL;
    size_t n_none = 0;
    if (aspen_store_log_feed(R.store, &T.at, 0, &none, &n_none, &se) == 0)
        T.started = true;
    aspen_store_log_feed_free(none, n_none);
}

void tui_engines_tick(tui_app *a)
{
    start_waiter(a);
    /* after a failure, at the backoff's time: a server that is down is not asked every second */
    if (!tui_backoff_waiting(&E.retry, tui_mono_ms()))
        start_read(a, true, false);
}

/* At exit, after the loop has drained its work (no read in flight). */
void tui_engines_close(void)
{
    aspen_store_engines_free(E.list);
    aspen_store_close(R.store);
    aspen_store_close(W.store); /* its thread was joined by tui_engines_quit */
    memset(&W, 0, sizeof W);
    W.pipe[0] = W.pipe[1] = -1;
    memset(&E, 0, sizeof E);
    memset(&R, 0, sizeof R);
    memset(&T, 0, sizeof T);
}

static long job_rows(void)
{
    long n = 0;
    for (size_t i = 0; i < E.n; i++)
        n += (long)E.list[i].n_slots;
    return n;
}

static void fmt_age(int64_t ms, char *out, size_t cap)
{
    if (ms < 0)
        ms = 0;
    if (ms < 10000)
        snprintf(out, cap, "%.1fs ago", (double)ms / 1000.0);
    else if (ms < 3600000)
        snprintf(out, cap, "%llds ago", (long long)(ms / 1000));
    else
        snprintf(out, cap, "%lldh ago", (long long)(ms / 3600000));
}

static void engines_draw(tui_app *a, int y0, int h)
{
    if (!E.read_at)
        start_read(a, false, false); /* first shown, or refreshed: the tick keeps it fresh after */
    int64_t own = a->snap.engine_id;
    size_t stale = 0;
    for (size_t i = 0; i < E.n; i++)
        stale += E.list[i].stale;
    tui_put(y0, 1, COLS - 1, A_BOLD,
            "Engines on this database: %zu (%zu stale: no heartbeat for %d s) | * this console",
            E.n, stale, ASPEN_STORE_HEARTBEAT_STALE_MS / 1000);
    /* under 100 columns (80x24) STARTED goes and HOST narrows, as htop drops its less read
     * columns, so HEARTBEAT (is that host alive?) and every worker's job stay in view */
    bool narrow = COLS < 100;
    int hw = narrow ? 14 : 20;
    if (narrow)
        tui_put(y0 + 1, 0, COLS, A_BOLD | A_UNDERLINE, "  %-5s %-*s %-8s %-7s %-4s %-4s %-6s %-6s %s",
                "ID", hw, "HOST", "PID", "WORKERS", "BUSY", "VMS", "RSS", "JOBS/S", "HEARTBEAT");
    else
        tui_put(y0 + 1, 0, COLS, A_BOLD | A_UNDERLINE, "  %-5s %-*s %-8s %-8s %-7s %-6s %-4s %-7s %-7s %s",
                "ID", hw, "HOST", "PID", "STARTED", "WORKERS", "BUSY", "VMS", "RSS", "JOBS/S",
                "HEARTBEAT");
    int y = y0 + 2;
    long row = 0;
    for (size_t i = 0; i < E.n && y < y0 + h; i++) {
        const aspen_store_engine_info *e = &E.list[i];
        char started[16] = "-", beat[24], rss[16];
        time_t t = (time_t)(e->started_at_ms / 1000);
        struct tm tm;
        if (localtime_r(&t, &tm))
            strftime(started, sizeof started, "%H:%M:%S", &tm);
        fmt_age(e->heartbeat_age_ms, beat, sizeof beat);
        tui_fmt_size((uint64_t)(e->rss_bytes > 0 ? e->rss_bytes : 0), rss, sizeof rss);
        attr_t attr = e->stale ? tui_pair_or(a, TUI_P_FAILED, A_BOLD) : A_BOLD;
        const char *none = e->version[0] ? "" : narrow ? " (none yet)" : " (no heartbeat yet)";
        if (narrow)
            tui_put(y++, 0, COLS, attr, "%s %-5lld %-*.*s %-8lld %-7lld %-4lld %-4lld %-6s %-6.1f %s%s%s",
                    e->id == own ? "*" : " ", (long long)e->id, hw, hw, e->host, (long long)e->pid,
                    (long long)e->workers, (long long)e->busy, (long long)e->warm_vms, rss,
                    e->jobs_per_s, e->stale ? "STALE " : "", beat, none);
        else
            tui_put(y++, 0, COLS, attr, "%s %-5lld %-*.*s %-8lld %-8s %-7lld %-6lld %-4lld %-7s %-7.1f %s%s%s",
                    e->id == own ? "*" : " ", (long long)e->id, hw, hw, e->host, (long long)e->pid,
                    started, (long long)e->workers, (long long)e->busy, (long long)e->warm_vms, rss,
                    e->jobs_per_s, e->stale ? "STALE " : "", beat, none);
        /* which queues it takes (aspen worker --queues): nothing showed it (trial 23) */
        if (y < y0 + h && e->heartbeat_ms) /* the first heartbeat carries them */
            tui_put(y++, 0, COLS, A_DIM, "      serves %s%s",
                    e->queues[0] ? (strchr(e->queues, ',') ? "queues " : "queue ") : "every queue",
                    e->queues);
        for (size_t k = 0; k < e->n_slots && y < y0 + h; k++, row++) {
            const aspen_store_engine_slot *s = &e->slots[k];
            attr_t ra = row == E.cursor ? A_REVERSE : tui_state_attr(a, ASPEN_STORE_RUNNING);
            tui_put(y++, 0, COLS, ra, "      worker %-3d job %-10lld %s", s->worker,
                    (long long)s->job_id, s->guest);
        }
    }
    if (!E.have_list && !E.error[0])
        tui_put(y0 + 3, 2, COLS - 2, A_DIM, "reading the engines from the database...");
    else if (E.n == 0 && !E.error[0])
        tui_put(y0 + 3, 2, COLS - 2, A_DIM,
                "no engine is registered (a console started with --workers 0 registers none)");
    if (E.error[0]) {
        char when[48], line[600];
        tui_backoff_say(&E.retry, E.busy, tui_mono_ms(), when, sizeof when);
        snprintf(line, sizeof line, "%s: %s", when, E.error);
        tui_put_error_line(a, y0 + h - 1, 1, COLS - 1, line);
    }
}

static int64_t cursor_job(void)
{
    long row = 0;
    for (size_t i = 0; i < E.n; i++)
        for (size_t k = 0; k < E.list[i].n_slots; k++, row++)
            if (row == E.cursor)
                return E.list[i].slots[k].job_id;
    return 0;
}

static unsigned engines_act(tui_app *a, tui_action act, int64_t arg, const char *text)
{
    (void)arg;
    (void)text;
    long n = job_rows();
    switch (act) {
    case TUI_A_UP: E.cursor--; break;
    case TUI_A_DOWN: E.cursor++; break;
    case TUI_A_PGUP: case TUI_A_TOP: E.cursor = 0; break;
    case TUI_A_PGDN: case TUI_A_BOTTOM: E.cursor = n - 1; break;
    case TUI_A_REFRESH: E.read_at = 0; return 0; /* and the app's own refresh */
    case TUI_A_OPEN: {
        int64_t job = cursor_job();
        if (job)
            tui_push(a, TUI_VIEW_DETAIL, job);
        else
            tui_set_status(a, true, "no job selected: no engine's worker runs one now");
        break;
    }
    default: return 0;
    }
    if (E.cursor >= n)
        E.cursor = n - 1;
    if (E.cursor < 0)
        E.cursor = 0;
    return TUI_R_HANDLED;
}

static unsigned engines_needs(const tui_app *a)
{
    (void)a;
    return 0; /* read by the pane itself on the thread pool, once a second */
}

static void engines_click(tui_app *a, int y, int x, bool again)
{
    (void)a;
    (void)y;
    (void)x;
    (void)again;
}

const tui_pane_ops tui_pane_engines_ops = {
    .name = "Engines", .cx = TUI_CX_ENGINES, .draw = engines_draw, .act = engines_act,
    .needs = engines_needs, .click = engines_click,
};
