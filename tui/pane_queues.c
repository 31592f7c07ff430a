/* tui/pane_queues.c — the Queues pane (key 6): every named queue on the database with its
 * figures and settings, as `aspen queues` shows them (docs/QUEUES.md): waiting, reserved, later,
 * running, the concurrency limit, the rate, paused, the oldest due job's wait and the jobs finished
 * in the last minute. Up/down select a queue; `p` pauses or resumes it (the global pause stays on
 * :pause), `l` edits its limit through the command line (`:limit N`, `:limit none`), enter opens
 * the jobs pane's filter line with queue:NAME (enter again applies it). Behind tui_pane_ops (app.h).
 *
 * Like the Engines pane it reads the store itself, at most once a second, through a handle of its
 * own; its writes (pause, limit) go through the same handle and the list is read again at once.
 * Queue names are checked by the store (letters, digits, _ - .), and still pass tui_put's
 * sanitiser like every cell. */
#include "app.h"

#include <curses.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct {
    aspen_store *store; /* opened on first use, writable: pause and limit write through it */
    bool open_failed;
    char error[512];
    aspen_store_queue_info *list;
    size_t n;
    double read_at;
    long cursor;
} Q;

static void read_queues(tui_app *a, bool now_please)
{
    double now = tui_mono_ms();
    if (!now_please && Q.read_at && now - Q.read_at < 1000)
        return;
    Q.read_at = now;
    aspen_store_error se = {0};
    if (!Q.store && !Q.open_failed) {
        if (aspen_store_open(aspen_engine_db_path(a->eng), NULL, &Q.store, &se) != 0) {
            Q.open_failed = true;
            snprintf(Q.error, sizeof Q.error, "%s", se.msg);
            return;
        }
    }
    if (!Q.store)
        return;
    aspen_store_queue_info *list = NULL;
    size_t n = 0;
    if (aspen_store_queues(Q.store, aspen_store_now_ms(), &list, &n, &se) != 0) {
        snprintf(Q.error, sizeof Q.error, "%s", se.msg); /* keep the last list on screen */
        return;
    }
    Q.error[0] = 0;
    aspen_store_queues_free(Q.list);
    Q.list = list;
    Q.n = n;
    if (Q.cursor >= (long)n)
        Q.cursor = (long)n - 1;
    if (Q.cursor < 0)
        Q.cursor = 0;
}

void tui_queues_close(void)
{
    aspen_store_queues_free(Q.list);
    aspen_store_close(Q.store);
    memset(&Q, 0, sizeof Q);
}

static void queues_draw(tui_app *a, int y0, int h)
{
    read_queues(a, false);
    size_t paused = 0, limited = 0;
    for (size_t i = 0; i < Q.n; i++) {
        paused += Q.list[i].paused;
        limited += Q.list[i].limit > 0 || Q.list[i].rate_n > 0;
    }
    tui_put(y0, 1, COLS - 1, A_BOLD,
            "Queues on this database: %zu (%zu paused, %zu limited) | p pause/resume  l limit  "
            "enter its jobs", Q.n, paused, limited);
    tui_put(y0 + 1, 0, COLS, A_BOLD | A_UNDERLINE, "  %-20s %8s %6s %6s %8s %6s %-10s %-7s %8s %8s",
            "QUEUE", "QUEUED", "RESV", "SCHED", "RUNNING", "LIMIT", "RATE", "PAUSED", "OLDEST",
            "DONE/MIN");
    int y = y0 + 2;
    long first = 0;
    if (Q.cursor >= h - 3)
        first = Q.cursor - (h - 3) + 1;
    for (size_t i = (size_t)first; i < Q.n && y < y0 + h - 1; i++) {
        const aspen_store_queue_info *q = &Q.list[i];
        char rate[32] = "-", limit[24] = "-", oldest[24] = "-", done[24];
        if (q->rate_n > 0)
            aspen_store_rate_format(q->rate_n, q->rate_period_ms, rate, sizeof rate);
        if (q->limit > 0)
            snprintf(limit, sizeof limit, "%lld", (long long)q->limit);
        if (q->oldest_waiting_ms)
            tui_fmt_ms(q->oldest_waiting_ms, oldest, sizeof oldest);
        snprintf(done, sizeof done, "%s%lld", q->throughput_capped ? ">=" : "",
                 (long long)q->finished_last_min);
        attr_t attr = (long)i == Q.cursor ? A_REVERSE
                      : q->paused         ? tui_pair_or(a, TUI_P_FAILED, A_BOLD)
                                          : A_NORMAL;
        tui_put(y++, 0, COLS, attr, "  %-20.20s %8lld %6lld %6lld %8lld %6s %-10s %-7s %8s %8s",
                q->name, (long long)q->queued, (long long)q->reserved, (long long)q->scheduled,
                (long long)q->running, limit, rate, q->paused ? "paused" : "-", oldest, done);
    }
    if (Q.error[0])
        tui_put(y0 + h - 1, 1, COLS - 1, tui_pair_or(a, TUI_P_ERRMSG, A_BOLD), "%s", Q.error);
}

static const aspen_store_queue_info *selected(void)
{
    return Q.cursor >= 0 && (size_t)Q.cursor < Q.n ? &Q.list[Q.cursor] : NULL;
}

/* `:limit N` / `:limit none` for the selected queue. */
static void set_limit(tui_app *a, const aspen_store_queue_info *q, const char *text)
{
    while (text && *text == ' ')
        text++;
    long long v = 0;
    if (text && (!strcmp(text, "none") || !strcmp(text, "off") || !strcmp(text, "-"))) {
        v = 0;
    } else {
        char *end = NULL;
        errno = 0;
        v = text ? strtoll(text, &end, 10) : -1;
        if (!text || !*text || (end && *end && *end != ' ') || errno || v < 0 || v > 1000000) {
            tui_set_status(a, true, "limit: want a whole number from 1 to 1000000, or none "
                                    "(e.g. :limit 4)");
            return;
        }
    }
    aspen_store_error se = {0};
    if (aspen_store_queue_set(Q.store, q->name, ASPEN_STORE_QUEUE_SET_LIMIT, v, 0, 0,
                              aspen_store_now_ms(), &se) != 0) {
        tui_set_status(a, true, "%s", se.msg);
        return;
    }
    if (v)
        tui_set_status(a, false, "queue %s: at most %lld running at once (every worker)", q->name, v);
    else
        tui_set_status(a, false, "queue %s: no limit", q->name);
}

static unsigned queues_act(tui_app *a, tui_action act, int64_t arg, const char *text)
{
    (void)arg;
    const aspen_store_queue_info *q = selected();
    char name[ASPEN_STORE_QUEUE_NAME_MAX + 1] = "";
    if (q)
        snprintf(name, sizeof name, "%s", q->name);
    switch (act) {
    case TUI_A_UP: Q.cursor--; break;
    case TUI_A_DOWN: Q.cursor++; break;
    case TUI_A_PGUP: case TUI_A_TOP: Q.cursor = 0; break;
    case TUI_A_PGDN: case TUI_A_BOTTOM: Q.cursor = (long)Q.n - 1; break;
    case TUI_A_REFRESH: Q.read_at = 0; return 0; /* and the app's own refresh */
    case TUI_A_QUEUE_PAUSE: {
        if (!q || !Q.store) {
            tui_set_status(a, true, "no queue selected");
            return TUI_R_HANDLED;
        }
        bool pause = !q->paused;
        aspen_store_error se = {0};
        if (aspen_store_queue_pause(Q.store, name, pause, aspen_store_now_ms(), &se) != 0)
            tui_set_status(a, true, "%s", se.msg);
        else
            tui_set_status(a, false, "queue %s %s (every worker on this database)", name,
                           pause ? "paused" : "resumed");
        read_queues(a, true);
        return TUI_R_HANDLED;
    }
    case TUI_A_QUEUE_LIMIT: {
        if (!q || !Q.store) {
            tui_set_status(a, true, "no queue selected");
            return TUI_R_HANDLED;
        }
        if (!text || !*text) { /* the key: the command line with the current limit to edit */
            char line[64];
            if (q->limit)
                snprintf(line, sizeof line, "limit %lld", (long long)q->limit);
            else
                snprintf(line, sizeof line, "limit ");
            tui_open_prompt(a, TUI_PROMPT_COMMAND, line);
            tui_set_status(a, false, "limit of queue %s: a number, or none", name);
            return TUI_R_HANDLED;
        }
        set_limit(a, q, text);
        read_queues(a, true);
        return TUI_R_HANDLED;
    }
    case TUI_A_OPEN: {
        /* its jobs: the jobs pane's filter line with queue:NAME (enter applies it) */
        if (!q)
            return TUI_R_HANDLED;
        char filter[96];
        snprintf(filter, sizeof filter, "queue:%s", name);
        tui_show_pane(a, TUI_PANE_JOBS);
        tui_open_prompt(a, TUI_PROMPT_FILTER, filter);
        return TUI_R_HANDLED;
    }
    default: return 0;
    }
    if (Q.cursor >= (long)Q.n)
        Q.cursor = (long)Q.n - 1;
    if (Q.cursor < 0)
        Q.cursor = 0;
    return TUI_R_HANDLED;
}

static unsigned queues_needs(const tui_app *a)
{
    (void)a;
    return 0; /* read by the pane itself, at most once a second */
}

static void queues_click(tui_app *a, int y, int x, bool again)
{
    (void)a;
    (void)x;
    (void)again;
    /* rows start two lines below the pane's top (the title and the header) */
    long row = (long)y - 2 - a->lay.body_y;
    if (row >= 0 && row < (long)Q.n)
        Q.cursor = row;
}

const tui_pane_ops tui_pane_queues_ops = {
    .name = "Queues", .cx = TUI_CX_QUEUES, .draw = queues_draw, .act = queues_act,
    .needs = queues_needs, .click = queues_click,
};
