/* tui/pane_schedules.c — the Schedules pane (tab "5 Schedules", "5Cron" under 100 columns): every
 * periodic job on the database (issue 10, docs/SCHEDULES.md) with its expression and zone, whether it is active or paused, its next run
 * and its last run with that job's id and outcome (the job's state now), how many runs it made,
 * and why it cannot run when its zone no longer loads; the header says which engine holds the
 * scheduler lease. Keys: e enables / disables the schedule under the cursor, n runs it now (one
 * job from its template), enter opens its last job. Behind tui_pane_ops (app.h).
 *
 * The UI thread never waits on the database: the list is read on libuv's thread pool through a
 * read-only store handle of the pane's own, at most once a second while the pane is shown, and
 * the actions run there too, through the console's engine (aspen_engine_schedule_*); their
 * results come back in the after-work callbacks. Names and expressions are drawn through
 * tui_put's sanitiser (another process may have written anything a name check lets through). */
#include "app.h"

#include <curses.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int64_t store_days_from_civil(int64_t y, int m, int d);
void store_civil_from_days(int64_t z, int64_t *y, int *m, int *d);

static struct {
    aspen_store *store; /* read-only; opened (and used) on the pool */
    bool busy;          /* a read in flight */
    double read_at;
    aspen_store_schedule *list;
    size_t n;
    int64_t holder;
    char error[512];
    long cursor;
    char cursor_name[ASPEN_STORE_SCHEDULE_NAME_MAX + 1]; /* kept across reads */
} S;

typedef struct read_req {
    uv_work_t w;
    tui_app *a;
    char db[4096];
    aspen_store_schedule *list;
    size_t n;
    int64_t holder;
    int code;
    char error[512];
} read_req;

static void read_work(uv_work_t *w)
{
    read_req *r = w->data;
    aspen_store_error se = {0};
    if (!S.store) {
        aspen_store_options o = {.read_only = true};
        if (aspen_store_open(r->db, &o, &S.store, &se) != 0) {
            r->code = se.code ? se.code : -1;
            snprintf(r->error, sizeof r->error, "%s", se.msg);
            return;
        }
    }
    int64_t until = 0;
    if ((r->code = aspen_store_schedules(S.store, &r->list, &r->n, &se)) != 0 ||
        (r->code = aspen_store_scheduler_holder(S.store, &r->holder, &until, &se)) != 0)
        snprintf(r->error, sizeof r->error, "%s", se.msg);
    if (r->holder && until < aspen_store_now_ms())
        r->holder = 0; /* lapsed: nobody enqueues until an engine takes it */
}

static void read_done(uv_work_t *w, int status)
{
    read_req *r = w->data;
    (void)status;
    S.busy = false;
    if (r->code) {
        tui_pane_error_seen(r->a, "Schedules pane", S.error, r->error);
        snprintf(S.error, sizeof S.error, "%s", r->error); /* keep the last list on screen */
        aspen_store_schedules_free(r->list, r->n);
    } else {
        S.error[0] = 0;
        aspen_store_schedules_free(S.list, S.n);
        S.list = r->list;
        S.n = r->n;
        S.holder = r->holder;
        for (size_t i = 0; i < S.n; i++) /* the cursor stays on its schedule */
            if (strcmp(S.list[i].name, S.cursor_name) == 0)
                S.cursor = (long)i;
        if (S.cursor >= (long)S.n)
            S.cursor = S.n ? (long)S.n - 1 : 0;
    }
    tui_request_draw(r->a);
    free(r);
}

static void start_read(tui_app *a, bool now)
{
    double t = tui_mono_ms();
    /* 900, not 1000: the console's tick is 1000 ms and a tick a hair early skipped a read,
     * so the list (a run's count) was read every other second */
    if (S.busy || (!now && S.read_at && t - S.read_at < 900))
        return;
    read_req *r = calloc(1, sizeof *r);
    if (!r)
        return;
    r->a = a;
    r->w.data = r;
    snprintf(r->db, sizeof r->db, "%s", aspen_engine_db_path(a->eng));
    S.busy = true;
    S.read_at = t;
    if (uv_queue_work(a->loop, &r->w, read_work, read_done) != 0) {
        S.busy = false;
        free(r);
    }
}

void tui_schedules_close(void)
{
    aspen_store_schedules_free(S.list, S.n);
    aspen_store_close(S.store);
    memset(&S, 0, sizeof S);
}

/* ---- actions ------------------------------------------------------------------------------------ */

typedef struct act_req {
    uv_work_t w;
    tui_app *a;
    char name[ASPEN_STORE_SCHEDULE_NAME_MAX + 1];
    bool run, pause;
    int64_t job;
    aspen_store_submitted ran; /* a run: the new job, or the one that has not finished */
    int code;
    char msg[1024];
} act_req;

static void act_work(uv_work_t *w)
{
    act_req *r = w->data;
    aspen_engine_error err = {0};
    r->code = r->run ? aspen_engine_schedule_run_now_ex(r->a->eng, r->name, &r->ran, &err)
                     : aspen_engine_schedule_set_paused(r->a->eng, r->name, r->pause, &err);
    r->job = r->ran.id;
    snprintf(r->msg, sizeof r->msg, "%s", err.msg);
    if (!r->code && r->ran.duplicate)
        aspen_store_schedule_duplicate_message(r->name, &r->ran, aspen_store_now_ms(), r->msg,
                                               sizeof r->msg);
}

static void act_done(uv_work_t *w, int status)
{
    act_req *r = w->data;
    (void)status;
    if (r->code)
        tui_set_status(r->a, true, "%s", r->msg);
    else if (r->run && r->ran.duplicate)
        tui_set_status(r->a, true, "%s", r->msg);
    else if (r->run)
        tui_set_status(r->a, false, "schedule %s: job %lld enqueued now", r->name,
                       (long long)r->job);
    else
        tui_set_status(r->a, false, "schedule %s %s", r->name,
                       r->pause ? "disabled (paused)"
                                : "enabled (the next run counts from now)");
    S.read_at = 0;
    start_read(r->a, true);
    free(r);
}

static void run_action(tui_app *a, const aspen_store_schedule *sc, bool run)
{
    act_req *r = calloc(1, sizeof *r);
    if (!r)
        return;
    r->a = a;
    r->w.data = r;
    r->run = run;
    r->pause = !sc->paused;
    snprintf(r->name, sizeof r->name, "%s", sc->name);
    if (uv_queue_work(a->loop, &r->w, act_work, act_done) != 0)
        free(r);
}

/* ---- drawing ------------------------------------------------------------------------------------ */

/* "03-29 03:00:00 +02:00" in the schedule's zone, and "in 5s" / "12m ago" / "just now"; short
 * is "03-29 03:00 (in 5s)", for a row that has to fit 80 columns (the zone is in the footer
 * then). now_ms: one reading of the clock for the whole frame. A past time counts whole seconds
 * elapsed (floor) and a future one the seconds left (ceiling): the quotient truncated toward zero
 * showed a run 0.4 s ago as "(in 0s)" (trial 23) and gave 0 a two-second span. */
static void when(int64_t ms, int64_t now_ms, const char *zone, bool short_form, char *out,
                 size_t cap)
{
    if (ms <= 0) {
        snprintf(out, cap, "-");
        return;
    }
    aspen_store_tz *tz = NULL;
    if (aspen_store_tz_open(zone, &tz, NULL) != 0)
        tz = NULL;
    int64_t s = ms / 1000;
    int32_t off = tz ? aspen_store_tz_offset(tz, s, NULL) : 0;
    aspen_store_tz_close(tz);
    int64_t local = s + off, day = local / 86400, y;
    int mo, d;
    store_civil_from_days(day, &y, &mo, &d);
    int64_t sec = local - day * 86400;
    int64_t dt = ms - now_ms;
    bool future = dt > 0;
    int64_t ar = future ? (dt + 999) / 1000 : -dt / 1000;
    char r[24];
    if (!future && ar == 0)
        snprintf(r, sizeof r, "just now");
    else if (ar < 120)
        snprintf(r, sizeof r, "%llds", (long long)ar);
    else if (ar < 7200)
        snprintf(r, sizeof r, "%lldm", (long long)(ar / 60));
    else if (ar < 172800)
        snprintf(r, sizeof r, "%lldh", (long long)(ar / 3600));
    else
        snprintf(r, sizeof r, "%lldd", (long long)(ar / 86400));
    int aoff = off < 0 ? -off : off;
    if (short_form) {
        snprintf(out, cap, "%02d-%02d %02d:%02d (%s%s%s)", mo, d, (int)(sec / 3600),
                 (int)(sec / 60 % 60), future ? "in " : "", r, !future && ar ? " ago" : "");
        return;
    }
    snprintf(out, cap, "%02d-%02d %02d:%02d:%02d %c%02d:%02d (%s%s%s)", mo, d, (int)(sec / 3600),
             (int)(sec / 60 % 60), (int)(sec % 60), off < 0 ? '-' : '+', aoff / 3600,
             aoff / 60 % 60, future ? "in " : "", r, !future && ar ? " ago" : "");
}

static void schedules_draw(tui_app *a, int y0, int h)
{
    start_read(a, false);
    int64_t now_ms = aspen_store_now_ms(); /* every time on the frame from the same instant */
    size_t paused = 0;
    for (size_t i = 0; i < S.n; i++)
        paused += S.list[i].paused;
    /* every column needs 143; under that (80 columns, say) the row keeps what a user scans for —
     * name, schedule, state, next run, last job — like htop drops columns, and the zone, last run
     * and run count of the schedule under the cursor move to the footer line */
    bool wide = COLS >= 143;
    char lease[96];
    if (!S.holder)
        snprintf(lease, sizeof lease, wide ? "no engine holds the scheduler lease: nothing is enqueued"
                                           : "no engine holds the lease: none enqueued");
    else
        snprintf(lease, sizeof lease, "enqueued by engine %lld%s", (long long)S.holder,
                 S.holder == a->snap.engine_id ? " (this console)" : "");
    tui_put(y0, 1, COLS - 1, A_BOLD, "Schedules: %zu (%zu paused) | %s%s", S.n, paused, lease,
            wide ? " | e enable/disable, n run now" : "");
    if (wide)
        tui_put(y0 + 1, 0, COLS, A_BOLD | A_UNDERLINE, "  %-18s %-16s %-14s %-7s %-30s %-30s %-18s %s",
                "NAME", "SCHEDULE", "TZ", "STATE", "NEXT RUN", "LAST RUN", "LAST JOB", "RUNS");
    else
        tui_put(y0 + 1, 0, COLS, A_BOLD | A_UNDERLINE, "  %-14s %-14s %-6s %-20s %s", "NAME",
                "SCHEDULE", "STATE", "NEXT RUN", "LAST JOB");
    int y = y0 + 2;
    long first = S.cursor - (h - 3) + 1 > 0 ? S.cursor - (h - 3) + 1 : 0;
    for (size_t i = (size_t)first; i < S.n && y < y0 + h - 1; i++) {
        const aspen_store_schedule *sc = &S.list[i];
        char next[48], last[48], job[48];
        when(aspen_store_schedule_next_due(sc), now_ms, sc->tz, !wide, next, sizeof next);
        when(sc->last_run_ms, now_ms, sc->tz, !wide, last, sizeof last);
        const char *outcome = !sc->last_job_id         ? ""
                              : sc->last_job_state < 0 ? "deleted"
                                                       : aspen_store_state_name(
                                                             (aspen_store_state)sc->last_job_state);
        if (sc->last_job_id)
            snprintf(job, sizeof job, "#%lld %s", (long long)sc->last_job_id, outcome);
        else
            snprintf(job, sizeof job, "-");
        attr_t attr = (long)i == S.cursor ? A_REVERSE
                      : sc->error         ? tui_pair_or(a, TUI_P_FAILED, A_BOLD)
                      : sc->paused        ? A_DIM
                                          : A_NORMAL;
        const char *state = sc->paused ? "paused" : sc->error ? "broken" : "active";
        /* cells cut with the marker (tui_cut_to): "0,5,10,15,20,25 9-17 * * MON-FRI" cut bare
         * read "0,5,10,15,20,2", another valid expression (trial 22) */
        char name[96], expr[96], tz[96];
        tui_cut_to(sc->name, wide ? 18 : 14, a->utf8, name, sizeof name);
        tui_cut_to(sc->expr, wide ? 16 : 14, a->utf8, expr, sizeof expr);
        tui_cut_to(sc->tz ? sc->tz : "UTC", 14, a->utf8, tz, sizeof tz);
        int nw = wide ? 18 : 14, ew = wide ? 16 : 14;
        /* padded by display columns: a marker or a wide character is not one byte a column */
        int npad = nw - tui_cols(name, strlen(name)), epad = ew - tui_cols(expr, strlen(expr));
        int tpad = 14 - tui_cols(tz, strlen(tz));
        if (!wide) {
            tui_put(y++, 0, COLS, attr, "  %s%*s %s%*s %-6s %-20s %s", name, npad > 0 ? npad : 0,
                    "", expr, epad > 0 ? epad : 0, "", state,
                    sc->error ? "none (see below)" : next, job);
            continue;
        }
        tui_put(y++, 0, COLS, attr, "  %s%*s %s%*s %s%*s %-7s %-30s %-30s %-18s %lld", name,
                npad > 0 ? npad : 0, "", expr, epad > 0 ? epad : 0, "", tz, tpad > 0 ? tpad : 0,
                "", state, sc->error ? "none (see below)" : next, last, job, (long long)sc->runs);
    }
    if (S.n == 0 && !S.error[0])
        tui_put(y0 + 3, 2, COLS - 2, A_DIM,
                "no schedules: add one with aspen cron add NAME 'EXPR' GUEST (docs/SCHEDULES.md)");
    const aspen_store_schedule *sel = S.cursor < (long)S.n ? &S.list[S.cursor] : NULL;
    if (S.error[0])
        tui_put_error_line(a, y0 + h - 1, 1, COLS - 1, S.error);
    else if (sel && sel->error)
        tui_put(y0 + h - 1, 1, COLS - 1, tui_pair_or(a, TUI_P_ERRMSG, A_BOLD), "%s: %s", sel->name,
                sel->error);
    else if (sel && !wide) { /* the columns the narrow row dropped come first */
        char last[48];
        when(sel->last_run_ms, now_ms, sel->tz, true, last, sizeof last);
        tui_put(y0 + h - 1, 1, COLS - 1, A_DIM, "%s: tz %s, last run %s, %lld run%s; %s%s%s",
                sel->name, sel->tz, last, (long long)sel->runs, sel->runs == 1 ? "" : "s",
                sel->binary_name ? sel->binary_name : sel->type, sel->queue ? ", queue " : "",
                sel->queue ? sel->queue : "");
    } else if (sel)
        tui_put(y0 + h - 1, 1, COLS - 1, A_DIM, "%s: %s%s%s, missed: %s, grace %llds, %s",
                sel->name, sel->binary_name ? sel->binary_name : sel->type,
                sel->queue ? ", queue " : "", sel->queue ? sel->queue : "",
                sel->missed == ASPEN_STORE_MISSED_ONCE ? "once" : "skip",
                (long long)(sel->grace_ms / 1000), sel->tags);
}

static unsigned schedules_act(tui_app *a, tui_action act, int64_t arg, const char *text)
{
    (void)arg;
    (void)text;
    long n = (long)S.n;
    const aspen_store_schedule *sel = S.cursor < n ? &S.list[S.cursor] : NULL;
    switch (act) {
    case TUI_A_UP: S.cursor--; break;
    case TUI_A_DOWN: S.cursor++; break;
    case TUI_A_PGUP: S.cursor -= tui_page(a); break;
    case TUI_A_PGDN: S.cursor += tui_page(a); break;
    case TUI_A_TOP: S.cursor = 0; break;
    case TUI_A_BOTTOM: S.cursor = n - 1; break;
    case TUI_A_REFRESH: S.read_at = 0; return 0; /* and the app's own refresh */
    case TUI_A_SCHEDULE_TOGGLE:
    case TUI_A_SCHEDULE_RUN:
        if (!sel) {
            tui_set_status(a, true, "no schedule selected (aspen cron add makes one)");
            return TUI_R_HANDLED;
        }
        run_action(a, sel, act == TUI_A_SCHEDULE_RUN);
        return TUI_R_HANDLED;
    case TUI_A_OPEN:
        if (sel && sel->last_job_id)
            tui_push(a, TUI_VIEW_DETAIL, sel->last_job_id);
        else
            tui_set_status(a, true, "this schedule has not enqueued a job yet");
        return TUI_R_HANDLED;
    default: return 0;
    }
    if (S.cursor >= n)
        S.cursor = n - 1;
    if (S.cursor < 0)
        S.cursor = 0;
    if (S.cursor < n)
        snprintf(S.cursor_name, sizeof S.cursor_name, "%s", S.list[S.cursor].name);
    return TUI_R_HANDLED;
}

static unsigned schedules_needs(const tui_app *a)
{
    (void)a;
    return 0; /* read by the pane itself, at most once a second */
}

static void schedules_click(tui_app *a, int y, int x, bool again)
{
    (void)x;
    long row = y - (a->lay.body_y + 2);
    long first = S.cursor - (a->lay.body_h - 3) + 1 > 0 ? S.cursor - (a->lay.body_h - 3) + 1 : 0;
    if (row < 0 || first + row >= (long)S.n)
        return;
    S.cursor = first + row;
    snprintf(S.cursor_name, sizeof S.cursor_name, "%s", S.list[S.cursor].name);
    if (again)
        schedules_act(a, TUI_A_OPEN, 0, NULL);
    tui_request_draw(a);
}

const tui_pane_ops tui_pane_schedules_ops = {
    .name = "Schedules", .cx = TUI_CX_SCHEDULES, .draw = schedules_draw, .act = schedules_act,
    .needs = schedules_needs, .click = schedules_click,
};
