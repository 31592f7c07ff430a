/* tui/pane_metrics.c — the Metrics pane (key 7; tab "Metrics", "Stats" under 100 columns): the
 * metrics history every engine on the database writes (per-minute rollups per job type and guest,
 * docs/STORE.md "Metrics history"), as `aspen metrics` reads it, over a window `w` cycles through
 * (15m, 1h, 24h, 7d; `:window 24h` picks one). It draws throughput (jobs finished per second) and
 * failures per second as bar charts, one column per step of the window (chart.c picks the step so
 * the window fits the width), and a table of every type / guest with finished, failed, jobs/s
 * and p50/p95/p99 run time over the window, "all" first: jobs/s as the header and `aspen metrics`
 * say it, one unit on every screen. The run time is the attempt's inside the VM (an in-process
 * type's: its handler's, counted in whole ms), not the Jobs pane's DUR (finished - started, the
 * VM's start and the store's writes too): the pane says so, so the two do not look contradictory. The cursor selects a row: the charts then
 * show that type / guest alone. Behind tui_pane_ops (app.h).
 *
 * It also feeds the header's p50/p95, which say their window: the last 5 minutes of the same
 * history, so they survive a restart and count every engine's jobs, not this console's only.
 *
 * Reads go to libuv's thread pool through a read-only store handle of the pane's own, like the
 * Engines pane: the UI thread only draws the last answer, so a slow or locked database never
 * freezes the keyboard. One read is in flight at a time (M.busy), so the handle is only touched
 * by one pool thread; a change of window or selection meanwhile asks for another read when it
 * lands (M.again). Only small per-column counts and the table's figures cross back to the UI
 * thread, never the 5 KB histograms of a rollup. Type and guest names come from job submitters:
 * every cell goes through tui_put's sanitiser. */
#include "app.h"
#include "chart.h"

#include <curses.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HEADER_MINUTES 5  /* the header's p50/p95 window */
#define MAX_COLS 512      /* chart columns read at most (a very wide terminal draws this many) */
#define MAX_ROWS 1024     /* type / guest rows kept (the engines fold more into "(other)") */

typedef struct metrics_row {
    char type[64], guest[128];
    uint64_t finished, failed;
    uint64_t p50, p95, p99; /* run time, µs; 0 when nothing finished */
    bool have_run;
} metrics_row;

/* What one read brings back. */
typedef struct metrics_answer {
    int64_t now_ms, from, step, span;
    size_t n_cols;
    double done[MAX_COLS], failed[MAX_COLS]; /* per minute, per column */
    metrics_row all;                         /* every type and guest over the window */
    metrics_row *rows;
    size_t n_rows;
    metrics_row header; /* the last HEADER_MINUTES minutes, everything */
    int64_t kept;       /* the database's metrics.retention, minutes (0: not read) */
} metrics_answer;

/* The UI thread's side. */
static struct {
    size_t window;            /* index into tui_metrics_windows */
    long cursor;              /* 0: all; i: ans.rows[i - 1] */
    char sel_type[64], sel_guest[128];
    bool sel; /* a type / guest is selected (else: all) */
    metrics_answer *ans;      /* the last answer, NULL before the first */
    bool ans_sel;             /* what ans's charts are of: all, or this type / guest */
    char ans_type[64], ans_guest[128];
    char error[600]; /* a store message (512) and its prefix: never cut short of its end */
    bool busy, again;
    double read_at;
    int cols; /* chart width the last draw had */
    double header_at; /* when the last read (of any kind) started */
    tui_backoff retry; /* after a failed read: when to try again (view.h, as the Queues pane) */
    int table_y;     /* where the last draw put the table's first row (clicks) */
    long table_first; /* and which row that was */
} M = {.window = 1};

/* The reader's side (one pool thread at a time: M.busy). */
static struct {
    aspen_store *store; /* read-only, opened on first use and again after a failed read */
    char open_error[600];
} R;

typedef struct metrics_req {
    uv_work_t w;
    tui_app *a;
    const char *db;
    int64_t span;
    int cols;
    bool sel;
    bool header_only; /* the pane is not shown: the header's 5 minutes only, not the window */
    char type[64], guest[128];
    int rc;
    char error[600];
    metrics_answer *ans;
} metrics_req;

static void row_from(metrics_row *out, const aspen_store_rollup *p)
{
    snprintf(out->type, sizeof out->type, "%s", p->type);
    snprintf(out->guest, sizeof out->guest, "%s", p->guest);
    out->finished = p->finished;
    out->failed = p->failed;
    out->have_run = p->run_us.n > 0;
    out->p50 = aspen_store_hist_percentile(&p->run_us, 50);
    out->p95 = aspen_store_hist_percentile(&p->run_us, 95);
    out->p99 = aspen_store_hist_percentile(&p->run_us, 99);
}

/* One merged point over [from, to] (step = the whole range): into *out. */
static int read_total(int64_t from, int64_t to, metrics_row *out, aspen_store_error *se)
{
    aspen_store_metrics_query q = {.from_minute = from, .to_minute = to,
                                   .step_minutes = to - from + 1};
    aspen_store_rollup *p = NULL;
    size_t n = 0;
    if (aspen_store_metrics(R.store, &q, &p, &n, se) != 0)
        return -1;
    memset(out, 0, sizeof *out);
    if (n)
        row_from(out, &p[0]);
    free(p);
    return 0;
}

static void metrics_work(uv_work_t *w)
{
    metrics_req *r = w->data;
    aspen_store_error se = {0};
    /* Declared before the first goto: a jump to `failed` past an initialiser leaves the
     * pointer uninitialised, and freeing it (the header-only read failing when the server went
     * away) freed stack text as a pointer — the console's crash on a PostgreSQL restart. */
    aspen_store_rollup *pts = NULL, *by = NULL;
    size_t n_pts = 0, n_by = 0;
    if (tui_store_open_ro(r->db, &R.store, R.open_error, sizeof R.open_error) != 0) {
        r->rc = -1;
        snprintf(r->error, sizeof r->error, "%s", R.open_error);
        return;
    }
    metrics_answer *ans = calloc(1, sizeof *ans);
    if (!ans) {
        r->rc = -1;
        snprintf(r->error, sizeof r->error, "metrics: out of memory");
        return;
    }
    /* the window as `aspen metrics --since` takes it: the current minute and span - 1 before */
    ans->now_ms = aspen_store_now_ms();
    int64_t to = ans->now_ms / 60000;
    ans->span = r->span;
    ans->from = to - r->span + 1;
    ans->step = tui_metrics_step(r->span, r->cols);
    if (r->header_only) {
        /* a 7d window of many guests is thousands of rows to merge: not every 5 s for a pane
         * nobody looks at */
        if (read_total(to - HEADER_MINUTES + 1, to, &ans->header, &se) != 0)
            goto failed;
        r->ans = ans;
        return;
    }
    aspen_store_metrics_query q = {.from_minute = ans->from, .to_minute = to,
                                   .step_minutes = ans->step,
                                   .type = r->sel ? r->type : NULL,
                                   .guest = r->sel ? r->guest : NULL};
    if (aspen_store_metrics(R.store, &q, &pts, &n_pts, &se) != 0)
        goto failed;
    for (size_t i = 0; i < n_pts && ans->n_cols < MAX_COLS; i++, ans->n_cols++) {
        /* over the column's whole minutes, the running one too: extrapolating a minute a few
         * seconds old would draw a burst as a spike far above what the minute will hold */
        int64_t m = pts[i].minutes > 0 ? pts[i].minutes : 1;
        ans->done[i] = (double)pts[i].finished / (double)m;
        ans->failed[i] = (double)pts[i].failed / (double)m;
    }
    free(pts);
    pts = NULL;
    /* how long the rollups are kept: a window longer than that is said to be cut short */
    aspen_store_error ke = {0};
    if (aspen_store_metrics_retention(R.store, &ans->kept, &ke) != 0)
        ans->kept = 0;
    if (read_total(ans->from, to, &ans->all, &se) != 0 ||
        read_total(to - HEADER_MINUTES + 1, to, &ans->header, &se) != 0)
        goto failed;
    aspen_store_metrics_query qb = {.from_minute = ans->from, .to_minute = to,
                                    .step_minutes = r->span, .by_guest = true};
    if (aspen_store_metrics(R.store, &qb, &by, &n_by, &se) != 0)
        goto failed;
    if (n_by > MAX_ROWS)
        n_by = MAX_ROWS;
    ans->rows = n_by ? calloc(n_by, sizeof *ans->rows) : NULL;
    if (n_by && !ans->rows) {
        snprintf(se.msg, sizeof se.msg, "metrics: out of memory for %zu rows", n_by);
        goto failed;
    }
    for (size_t i = 0; i < n_by; i++)
        row_from(&ans->rows[i], &by[i]);
    ans->n_rows = n_by;
    free(by);
    r->ans = ans;
    return;
failed:
    free(pts);
    free(by);
    free(ans->rows);
    free(ans);
    r->rc = -1;
    snprintf(r->error, sizeof r->error, "metrics history: %s",
             se.msg[0] ? se.msg : "cannot be read");
    /* a broken connection or a lock that outlived the store's wait is not mended by asking the
     * same handle again: the next read (after the backoff) opens a fresh one */
    aspen_store_close(R.store);
    R.store = NULL;
}

static void free_answer(metrics_answer *ans)
{
    if (ans)
        free(ans->rows);
    free(ans);
}

static void start_read(tui_app *a);

/* After a new list: the cursor stays on the same type / guest, wherever it moved to. */
static void keep_selection(void)
{
    if (!M.sel || !M.ans) {
        M.cursor = 0;
        return;
    }
    for (size_t i = 0; i < M.ans->n_rows; i++)
        if (!strcmp(M.ans->rows[i].type, M.sel_type) && !strcmp(M.ans->rows[i].guest, M.sel_guest)) {
            M.cursor = (long)i + 1;
            return;
        }
    /* gone from this window (nothing finished in it): the charts still show it, the cursor
     * sits on "all" until it is moved */
    M.cursor = 0;
}

static void metrics_done(uv_work_t *w, int status)
{
    metrics_req *r = w->data;
    tui_app *a = r->a;
    M.busy = false;
    if (status == 0 && !a->quitting) {
        if (r->rc == 0)
            tui_backoff_ok(&M.retry);
        if (r->rc == 0 && r->header_only) {
            a->metrics_known = true;
            a->n_recent = (size_t)r->ans->header.finished;
            a->p50_ms = r->ans->header.have_run ? (double)r->ans->header.p50 / 1000.0 : -1;
            a->p95_ms = r->ans->header.have_run ? (double)r->ans->header.p95 / 1000.0 : -1;
        } else if (r->rc == 0) {
            free_answer(M.ans);
            M.ans = r->ans;
            r->ans = NULL;
            M.ans_sel = r->sel;
            snprintf(M.ans_type, sizeof M.ans_type, "%s", r->type);
            snprintf(M.ans_guest, sizeof M.ans_guest, "%s", r->guest);
            M.error[0] = 0;
            keep_selection();
            /* the header: the last minutes of every engine's history (draw.c says the window) */
            a->metrics_known = true;
            a->n_recent = (size_t)M.ans->header.finished;
            a->p50_ms = M.ans->header.have_run ? (double)M.ans->header.p50 / 1000.0 : -1;
            a->p95_ms = M.ans->header.have_run ? (double)M.ans->header.p95 / 1000.0 : -1;
        } else {
            tui_pane_error_seen(a, "Metrics pane", M.error, r->error);
            snprintf(M.error, sizeof M.error, "%s", r->error); /* keep the last answer on screen */
            tui_backoff_failed(&M.retry, tui_mono_ms());
        }
        tui_request_draw(a);
    }
    free_answer(r->ans);
    free(r);
    if (M.again && status == 0 && !a->quitting) {
        M.again = false;
        start_read(a);
    }
}

static int chart_cols(void)
{
    int c = COLS - 8; /* the scale's gutter */
    return c < 1 ? 1 : c > MAX_COLS ? MAX_COLS : c;
}

static void start_read(tui_app *a)
{
    if (a->quitting)
        return;
    if (M.busy) {
        M.again = true; /* the answer in flight is for an older window or selection */
        return;
    }
    metrics_req *r = calloc(1, sizeof *r);
    if (!r)
        return;
    const tui_metrics_window *ws;
    size_t nw = tui_metrics_windows(&ws);
    r->a = a;
    r->w.data = r;
    r->db = aspen_engine_db_path(a->eng);
    r->span = ws[M.window % nw].minutes;
    r->cols = chart_cols();
    r->sel = M.sel;
    /* the pane reads everything when shown; elsewhere the header's minutes are enough, and the
     * pane reads again at once when it is opened (M.read_at = 0 below) */
    r->header_only = a->view != TUI_VIEW_METRICS;
    snprintf(r->type, sizeof r->type, "%s", M.sel_type);
    snprintf(r->guest, sizeof r->guest, "%s", M.sel_guest);
    M.busy = true;
    M.read_at = r->header_only ? 0 : tui_mono_ms();
    M.header_at = tui_mono_ms();
    M.cols = r->cols;
    if (uv_queue_work(a->loop, &r->w, metrics_work, metrics_done) != 0) {
        M.busy = false;
        free(r);
    }
}

/* Once a second from app.c: every 2 s while the pane is shown, every 5 s for the header alone
 * (the engines write their rollups every 5 s). */
void tui_metrics_tick(tui_app *a)
{
    double now = tui_mono_ms();
    /* after a failure, at the backoff's time: a server that is down is not asked every 2 s */
    if (tui_backoff_waiting(&M.retry, now))
        return;
    if (a->view == TUI_VIEW_METRICS) {
        if (!M.read_at || now - M.read_at >= 2000 || (M.cols && M.cols != chart_cols()))
            start_read(a);
    } else if (!M.header_at || now - M.header_at >= 5000) {
        start_read(a);
    }
}

void tui_metrics_close(void)
{
    free_answer(M.ans);
    aspen_store_close(R.store);
    memset(&M, 0, sizeof M);
    M.window = 1;
    memset(&R, 0, sizeof R);
}

static void row_label(const metrics_row *r, char *out, size_t cap)
{
    if (r->guest[0] && strcmp(r->guest, r->type) != 0)
        snprintf(out, cap, "%s / %s", r->type, r->guest);
    else
        snprintf(out, cap, "%s", r->type[0] ? r->type : r->guest);
}

/* p50, p95, p99 of a row with the header's one rule (tui_fmt_quantiles: a 0, an in-process
 * handler's whole ms, reads "<1ms" or "<=" a larger quantile under 1 ms). */
static void fmt_runs(const metrics_row *r, char q[3][32])
{
    if (!r->have_run) {
        for (int i = 0; i < 3; i++)
            snprintf(q[i], sizeof q[i], "-");
        return;
    }
    int64_t us[3] = {(int64_t)r->p50, (int64_t)r->p95, (int64_t)r->p99};
    tui_fmt_quantiles(us, 3, q);
}

static double max_of(const double *v, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++)
        if (v[i] > m)
            m = v[i];
    return m;
}

/* A chart with its scale in the gutter: the largest value on the top row (per second, "5.7k",
 * not 5743.0 a minute), 0 on the bottom. v is per minute (as the rollups count). */
static void draw_chart(tui_app *a, int y, int rows, const double *v, size_t n, unsigned long attr)
{
    double max = max_of(v, n);
    char line[MAX_COLS * 3 + 1], scale[16];
    tui_fmt_rate(max / 60.0, scale, sizeof scale);
    for (int r = 0; r < rows; r++) {
        if (r == 0)
            tui_put(y + r, 0, 7, A_DIM, "%6s", scale);
        else if (r == rows - 1)
            tui_put(y + r, 0, 7, A_DIM, "%6s", "0");
        tui_bar_row(v, n, max, rows, r, a->utf8, line, sizeof line);
        tui_put(y + r, 7, COLS - 7, attr, "%s", line);
    }
}

/* The charts on screen are of another selection than the cursor's (a read is on its way). */
static bool charts_stale(void)
{
    return M.sel != M.ans_sel ||
           (M.sel && (strcmp(M.sel_type, M.ans_type) || strcmp(M.sel_guest, M.ans_guest)));
}

static void metrics_draw(tui_app *a, int y0, int h)
{
    if (!M.read_at)
        start_read(a); /* first shown: the tick keeps it fresh after */
    const tui_metrics_window *ws;
    size_t nw = tui_metrics_windows(&ws);
    const tui_metrics_window *win = &ws[M.window % nw];
    const metrics_answer *ans = M.ans;
    char showing[220];
    if (M.sel) {
        metrics_row tmp = {0};
        snprintf(tmp.type, sizeof tmp.type, "%s", M.sel_type);
        snprintf(tmp.guest, sizeof tmp.guest, "%s", M.sel_guest);
        row_label(&tmp, showing, sizeof showing);
    } else {
        snprintf(showing, sizeof showing, "all types");
    }
    /* the window stated first: it is what every figure below covers */
    char windows[64] = "";
    for (size_t i = 0; i < nw; i++) {
        size_t len = strlen(windows);
        snprintf(windows + len, sizeof windows - len, i == M.window % nw ? "[%s]" : " %s ",
                 ws[i].name);
    }
    tui_put(y0, 1, COLS - 1, A_BOLD, "Metrics, last %s, every engine: %s | w window%s", win->name,
            showing, COLS >= 100 ? windows : "");
    if (h < 6) {
        tui_put(y0 + 1, 1, COLS - 1, A_DIM, "(too few rows for the charts: make the terminal taller)");
        return;
    }
    /* the charts take about half, the table the rest: at 80x24 3 + 2 chart rows, 7 table rows */
    int chart_rows = (h - 6) / 3;
    if (chart_rows < 1)
        chart_rows = 1;
    int fail_rows = (chart_rows + 1) / 2;
    int y = y0 + 1;
    char step_s[32];
    tui_fmt_minutes(ans ? ans->step : 1, step_s, sizeof step_s);
    /* a window longer than the database keeps: its start is empty because the rows were
     * pruned, not because nothing ran; say so and how to keep more */
    char kept[96] = "";
    if (ans && ans->kept > 0 && ans->kept < win->minutes) {
        char k[32];
        tui_fmt_minutes(ans->kept, k, sizeof k);
        /* at 80 columns the how-to would be cut: docs/CONSOLE.md says it */
        snprintf(kept, sizeof kept, COLS >= 100 ? "; only %s kept: aspen metrics --retention %s"
                                                : "; only %s kept%.0s",
                 k, win->name);
    }
    tui_put(y++, 1, COLS - 1, A_NORMAL, "finished, jobs/s (one column = %s%s%s)", step_s,
            kept, charts_stale() ? ", reading..." : "");
    if (ans)
        draw_chart(a, y, chart_rows, ans->done, ans->n_cols, tui_pair_or(a, TUI_P_OK, A_NORMAL));
    y += chart_rows;
    /* what the table's p50..p99 are, beside the second chart's title (a row the charts have) */
    tui_put(y++, 1, COLS - 1, A_NORMAL, "failed, jobs/s%s",
            COLS >= 120 ? "    p50/p95/p99 below: run time inside the VM (in-process: the handler's); "
                          "the Jobs pane's DUR is finished - started"
                        : "   p50-p99: run time in the VM, not DUR (? help)");
    if (ans)
        draw_chart(a, y, fail_rows, ans->failed, ans->n_cols,
                   tui_pair_or(a, TUI_P_FAILED, A_BOLD));
    y += fail_rows;
    if (ans) {
        /* the time axis: the window's start under the first column, now under the last */
        int end = 7 + (int)ans->n_cols;
        tui_put(y, 7, COLS - 7, A_DIM, "-%s", win->name);
        if (end - 3 > 7 + 6 && end <= COLS)
            tui_put(y, end - 3, 3, A_DIM, "now");
    }
    y++;
    /* the table: "all" and every type / guest, over the window */
    int lw = COLS - 52;
    if (lw < 12)
        lw = 12;
    if (lw > 48)
        lw = 48;
    tui_put(y++, 0, COLS, A_BOLD | A_UNDERLINE, "  %-*s %8s %6s %8s %7s %7s %7s", lw,
            "TYPE / GUEST", "FINISHED", "FAILED", "JOBS/S", "p50", "p95", "p99");
    if (!ans) {
        tui_put(y, 2, COLS - 2, A_DIM, "%s", M.error[0] ? "" : "reading the metrics history...");
    } else {
        long n = (long)ans->n_rows + 1, room = y0 + h - y - (M.error[0] ? 1 : 0);
        long first = M.cursor >= room && room > 0 ? M.cursor - room + 1 : 0;
        M.table_y = y;
        M.table_first = first;
        for (long i = first; i < n && y < y0 + h - (M.error[0] ? 1 : 0); i++) {
            const metrics_row *r = i == 0 ? &ans->all : &ans->rows[i - 1];
            char whole[256], label[256], q[3][32], rate[16];
            if (i == 0)
                snprintf(whole, sizeof whole, "all");
            else
                row_label(r, whole, sizeof whole);
            /* a label wider than its column is cut with the marker, like every cut */
            tui_cut_to(whole, lw, a->utf8, label, sizeof label);
            fmt_runs(r, q);
            double per_min = tui_metrics_per_min(r->finished, ans->from, ans->span, ans->now_ms);
            tui_fmt_rate(per_min / 60.0, rate, sizeof rate);
            unsigned long attr = i == M.cursor ? A_REVERSE
                                 : r->failed ? tui_pair_or(a, TUI_P_FAILED, A_NORMAL)
                                             : A_NORMAL;
            int pad = lw - tui_cols(label, strlen(label));
            tui_put(y++, 0, COLS, attr, "%c %s%*s %8llu %6llu %8s %7s %7s %7s",
                    i == M.cursor ? '>' : ' ', label, pad > 0 ? pad : 0, "",
                    (unsigned long long)r->finished, (unsigned long long)r->failed, rate, q[0], q[1],
                    q[2]);
        }
        if (ans->n_rows == 0 && y < y0 + h)
            tui_put(y, 2, COLS - 2, A_DIM,
                    COLS >= 100 ? "no job finished in the last %s (the engines write the history "
                                  "every 5 s; w: a longer window)"
                                : "no job finished in the last %s (written every 5 s; w: longer)",
                    win->name);
    }
    if (M.error[0]) {
        char when[48], line[600];
        tui_backoff_say(&M.retry, M.busy, tui_mono_ms(), when, sizeof when);
        snprintf(line, sizeof line, "%s: %s", when, M.error);
        tui_put_error_line(a, y0 + h - 1, 1, COLS - 1, line);
    }
}

/* The cursor's row as the selection (0: all): the charts are read again for it. */
static void select_cursor(tui_app *a)
{
    long n = M.ans ? (long)M.ans->n_rows + 1 : 1;
    if (M.cursor >= n)
        M.cursor = n - 1;
    if (M.cursor < 0)
        M.cursor = 0;
    bool sel = M.cursor > 0 && M.ans;
    const char *type = sel ? M.ans->rows[M.cursor - 1].type : "";
    const char *guest = sel ? M.ans->rows[M.cursor - 1].guest : "";
    if (sel == M.sel && !strcmp(type, M.sel_type) && !strcmp(guest, M.sel_guest))
        return;
    M.sel = sel;
    snprintf(M.sel_type, sizeof M.sel_type, "%s", type);
    snprintf(M.sel_guest, sizeof M.sel_guest, "%s", guest);
    start_read(a);
}

static void set_window(tui_app *a, const char *text)
{
    const tui_metrics_window *ws;
    size_t nw = tui_metrics_windows(&ws);
    while (text && *text == ' ')
        text++;
    if (!text || !*text) {
        M.window = (M.window + 1) % nw; /* the key: the next one, round */
    } else {
        size_t i = 0;
        while (i < nw && strcmp(ws[i].name, text) != 0)
            i++;
        if (i == nw) {
            const char *names[8];
            size_t k = 0;
            for (; k < nw && k < 8; k++)
                names[k] = ws[k].name;
            char msg[700];
            tui_choice_refusal("window", text, names, k, "windows", ", ", a->utf8, msg, sizeof msg);
            tui_set_status(a, true, "%s", msg);
            return;
        }
        M.window = i;
    }
    tui_set_status(a, false, "metrics over the last %s", ws[M.window].name);
    start_read(a);
}

static unsigned metrics_act(tui_app *a, tui_action act, int64_t arg, const char *text)
{
    (void)arg;
    long n = M.ans ? (long)M.ans->n_rows + 1 : 1;
    switch (act) {
    case TUI_A_UP: M.cursor--; break;
    case TUI_A_DOWN: M.cursor++; break;
    case TUI_A_TOP: case TUI_A_PGUP: M.cursor = 0; break;
    case TUI_A_BOTTOM: case TUI_A_PGDN: M.cursor = n - 1; break;
    case TUI_A_METRICS_WINDOW: set_window(a, text); return TUI_R_HANDLED;
    case TUI_A_REFRESH: M.read_at = 0; return 0; /* and the app's own refresh */
    case TUI_A_OPEN: {
        /* the selected row's jobs: the jobs pane's filter line with guest:NAME, or type:NAME for
         * an in-process type (its jobs name no guest) */
        if (M.cursor <= 0 || !M.ans || M.cursor > (long)M.ans->n_rows)
            return TUI_R_HANDLED;
        const metrics_row *r = &M.ans->rows[M.cursor - 1];
        char filter[200];
        if (r->guest[0])
            snprintf(filter, sizeof filter, "guest:%s", r->guest);
        else
            snprintf(filter, sizeof filter, "type:%s", r->type);
        tui_show_pane(a, TUI_PANE_JOBS);
        tui_open_prompt(a, TUI_PROMPT_FILTER, filter);
        return TUI_R_HANDLED;
    }
    default: return 0;
    }
    select_cursor(a);
    return TUI_R_HANDLED;
}

static unsigned metrics_needs(const tui_app *a)
{
    (void)a;
    return 0; /* read by the pane itself on the thread pool */
}

static void metrics_click(tui_app *a, int y, int x, bool again)
{
    (void)x;
    (void)again;
    if (!M.ans || !M.table_y)
        return;
    /* the table's rows as the last draw placed and scrolled them */
    long row = (long)(y - M.table_y) + M.table_first;
    long n = (long)M.ans->n_rows + 1;
    if (y >= M.table_y && row < n) {
        M.cursor = row;
        select_cursor(a);
    }
}

const tui_pane_ops tui_pane_metrics_ops = {
    .name = "Metrics", .cx = TUI_CX_METRICS, .draw = metrics_draw, .act = metrics_act,
    .needs = metrics_needs, .click = metrics_click,
};
