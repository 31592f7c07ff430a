/* tui/pane_engines.c — the Engines pane: every engine registered on the database, on any host
 * (issue 8), from their heartbeats in the store: host, pid, started, workers, busy, warm VMs,
 * memory, jobs/s, the last heartbeat, and under each engine what each busy worker runs (job and
 * guest). The console's own engine is marked "*", a host whose heartbeat stopped (over
 * ASPEN_STORE_HEARTBEAT_STALE_MS) "STALE". Up/down select an engine's worker row, enter opens
 * that job. Behind tui_pane_ops (app.h).
 *
 * The list is read at most once a second through a read-only store handle of the pane's own
 * (one indexed query of a few rows; other hosts' figures change once a second anyway). Host
 * names and guests come from other hosts: every cell goes through tui_put's sanitiser.
 *
 * tui_engines_tick (once a second, whatever pane is shown) also tails the log lines of jobs that
 * run on OTHER engines into the logs pane's all-jobs buffer: this console's engine sends its own
 * lines as events, other hosts' lines reach it only through the store (their engines write a
 * running job's lines every ~200 ms, the rest with its completion). A job is followed while an
 * engine's heartbeat lists it and for 5 s after, so the lines of its completion come too. */
#include "app.h"

#include <curses.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static struct {
    aspen_store *store; /* read-only, opened on first use */
    bool open_failed;
    char error[256];
    aspen_store_engine_info *list;
    size_t n;
    double read_at; /* tui_mono_ms of the last read */
    long cursor;    /* index into the flattened job rows */
} E;

static void read_engines(tui_app *a)
{
    double now = tui_mono_ms();
    if (E.read_at && now - E.read_at < 1000)
        return;
    E.read_at = now;
    aspen_store_error se = {0};
    if (!E.store && !E.open_failed) {
        aspen_store_options o = {.read_only = true};
        if (aspen_store_open(aspen_engine_db_path(a->eng), &o, &E.store, &se) != 0) {
            E.open_failed = true;
            snprintf(E.error, sizeof E.error, "%s", se.msg);
            return;
        }
    }
    if (!E.store)
        return;
    aspen_store_engine_info *list = NULL;
    size_t n = 0;
    if (aspen_store_engines(E.store, aspen_store_now_ms(), &list, &n, &se) != 0) {
        snprintf(E.error, sizeof E.error, "%s", se.msg); /* keep the last list on screen */
        return;
    }
    E.error[0] = 0;
    aspen_store_engines_free(E.list);
    E.list = list;
    E.n = n;
}

/* Jobs of other engines whose log lines are tailed: the last seq read, and when a heartbeat last
 * listed the job. */
#define TAIL_JOBS 256
static struct {
    int64_t job, after_seq;
    double seen_at;
} T[TAIL_JOBS];

static void tail_job(tui_app *a, int64_t job, bool listed, double now, size_t slot)
{
    (void)a;
    if (listed)
        T[slot].seen_at = now;
    aspen_store_log *lines = NULL;
    size_t n = 0;
    aspen_store_error se = {0};
    if (aspen_store_logs(E.store, job, T[slot].after_seq, 500, &lines, &n, &se) != 0)
        return;
    for (size_t i = 0; i < n; i++) {
        tui_logbuf_push(&a->logs_all, job, lines[i].attempt, lines[i].time_ms, 0, lines[i].line);
        if (lines[i].seq > T[slot].after_seq)
            T[slot].after_seq = lines[i].seq;
    }
    aspen_store_logs_free(lines, n);
    if (n)
        tui_request_draw(a);
}

void tui_engines_tick(tui_app *a)
{
    E.read_at = 0; /* a fresh list */
    read_engines(a);
    if (!E.store)
        return;
    double now = tui_mono_ms();
    int64_t own = a->snap.engine_id;
    for (size_t i = 0; i < E.n; i++) {
        if (E.list[i].id == own)
            continue; /* its lines come as events */
        for (size_t k = 0; k < E.list[i].n_slots; k++) {
            int64_t job = E.list[i].slots[k].job_id;
            size_t slot = TAIL_JOBS, free_slot = TAIL_JOBS;
            for (size_t t = 0; t < TAIL_JOBS; t++) {
                if (T[t].job == job)
                    slot = t;
                else if (!T[t].job && free_slot == TAIL_JOBS)
                    free_slot = t;
            }
            if (slot == TAIL_JOBS && free_slot != TAIL_JOBS) {
                slot = free_slot;
                T[slot].job = job;
                T[slot].after_seq = 0;
            }
            if (slot != TAIL_JOBS)
                T[slot].seen_at = now;
        }
    }
    for (size_t t = 0; t < TAIL_JOBS; t++) {
        if (!T[t].job)
            continue;
        tail_job(a, T[t].job, false, now, t);
        if (now - T[t].seen_at > 5000)
            T[t].job = 0; /* finished a while ago: its last lines were read */
    }
}

void tui_engines_close(void)
{
    aspen_store_engines_free(E.list);
    aspen_store_close(E.store);
    memset(&E, 0, sizeof E);
    memset(T, 0, sizeof T);
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
    read_engines(a);
    int64_t own = a->snap.engine_id;
    size_t stale = 0;
    for (size_t i = 0; i < E.n; i++)
        stale += E.list[i].stale;
    tui_put(y0, 1, COLS - 1, A_BOLD,
            "Engines on this database: %zu (%zu stale: no heartbeat for %d s) | * this console",
            E.n, stale, ASPEN_STORE_HEARTBEAT_STALE_MS / 1000);
    tui_put(y0 + 1, 0, COLS, A_BOLD | A_UNDERLINE, "  %-5s %-20s %-8s %-8s %-7s %-6s %-4s %-7s %-7s %s",
            "ID", "HOST", "PID", "STARTED", "WORKERS", "BUSY", "VMS", "RSS", "JOBS/S", "HEARTBEAT");
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
        tui_put(y++, 0, COLS, attr, "%s %-5lld %-20.20s %-8lld %-8s %-7lld %-6lld %-4lld %-7s %-7.1f %s%s%s",
                e->id == own ? "*" : " ", (long long)e->id, e->host, (long long)e->pid, started,
                (long long)e->workers, (long long)e->busy, (long long)e->warm_vms, rss,
                e->jobs_per_s, e->stale ? "STALE " : "", beat,
                e->version[0] ? "" : " (no heartbeat yet)");
        for (size_t k = 0; k < e->n_slots && y < y0 + h; k++, row++) {
            const aspen_store_engine_slot *s = &e->slots[k];
            attr_t ra = row == E.cursor ? A_REVERSE : tui_state_attr(a, ASPEN_STORE_RUNNING);
            tui_put(y++, 0, COLS, ra, "      worker %-3d job %-10lld %s", s->worker,
                    (long long)s->job_id, s->guest);
        }
    }
    if (E.n == 0 && !E.error[0])
        tui_put(y0 + 3, 2, COLS - 2, A_DIM,
                "no engine is registered (a console started with --workers 0 registers none)");
    if (E.error[0])
        tui_put(y0 + h - 1, 1, COLS - 1, tui_pair_or(a, TUI_P_ERRMSG, A_BOLD), "%s", E.error);
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
    return 0; /* read by the pane itself, at most once a second */
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
