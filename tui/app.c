/* tui/app.c — the console's engine room: the libuv loop on the UI thread, input, engine events and
 * the work it hands to libuv's thread pool.
 *
 * Threads and who does what (see FACTS §5):
 *   - the UI thread runs the loop: stdin through uv_poll_t drained with getch() in nodelay mode,
 *     SIGWINCH/SIGINT/SIGTERM/SIGHUP through uv_signal_t, a 1 s tick, and curses — only here;
 *   - engine threads call on_event(): it copies what it needs into a queue under a mutex and calls
 *     uv_async_send (calls coalesce), nothing else;
 *   - every database read or write (snapshot, job window, detail, logs, submit, cancel, rerun,
 *     retry, pause) is a uv_queue_work item; results come back in the after-work callback on the UI
 *     thread. So the UI never waits on SQLite or a VM.
 * Engine and pool threads are created with the terminal signals blocked, so SIGWINCH never
 * interrupts a vCPU. A fatal signal restores the terminal before the process dies.
 */
#include "app.h"

#include "aspen_text.h"

#include <curses.h>
#include <errno.h>
#include <langinfo.h>
#include <locale.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

long tui_jobs_total(const tui_app *a);

double tui_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* to_logs: a message wider than the screen also goes to the Logs pane; not a progress line that is
 * said again every second (the export's), which would fill it */
static void status_v(tui_app *a, bool error, bool to_logs, const char *fmt, va_list ap)
{
    /* formatted whole first: a message is not cut at a buffer's size ("could not reconnec") */
    va_list ap2;
    va_copy(ap2, ap);
    int need = vsnprintf(NULL, 0, fmt, ap);
    char *raw = need >= 0 ? malloc((size_t)need + 1) : NULL;
    if (raw)
        vsnprintf(raw, (size_t)need + 1, fmt, ap2);
    va_end(ap2);
    /* messages quote engine errors, guest names and types: escaped like every job field */
    char *esc = raw ? aspen_text_escape_dup(raw, strlen(raw), ASPEN_TEXT_SPACES) : NULL;
    free(raw);
    if (!esc) {
        snprintf(a->status, sizeof a->status, "out of memory showing a message");
        a->status_cut = false;
    } else {
        size_t len = strlen(esc);
        a->status_cut = len >= sizeof a->status;
        if (a->status_cut) {
            /* the line's buffer holds what the footer's rows can show anyway: cut between
             * characters and marked; the whole text goes to the Logs pane below */
            const char *mark = tui_cut_marker(a->utf8);
            size_t keep = sizeof a->status - 1 - strlen(mark);
            while (keep > 0 && ((unsigned char)esc[keep] & 0xc0) == 0x80)
                keep--;
            memcpy(a->status, esc, keep);
            snprintf(a->status + keep, sizeof a->status - keep, "%s", mark);
        } else {
            memcpy(a->status, esc, len + 1);
        }
        /* a message wider than the screen is wrapped over rows and, when they run out, cut: the
         * Logs pane (3) keeps it whole as a [console] line, to read (w wraps it) and search */
        if (to_logs && (a->status_cut || tui_cols(esc, len) > COLS))
            tui_logbuf_push_console(&a->logs_all, aspen_store_now_ms(), esc);
        free(esc);
    }
    a->status_error = error;
    a->status_until_ms = (uint64_t)aspen_store_now_ms() + (error ? 8000 : 5000);
}

void tui_set_status(tui_app *a, bool error, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    status_v(a, error, true, fmt, ap);
    va_end(ap);
}

/* A progress line, said again every tick: shown like a message, never kept in the Logs pane. */
static void set_progress(tui_app *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_progress(tui_app *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    status_v(a, false, false, fmt, ap);
    va_end(ap);
}

void tui_pane_error_seen(tui_app *a, const char *pane, const char *prev, const char *error)
{
    if (!error || !error[0] || (prev && strcmp(prev, error) == 0))
        return;
    char line[1024];
    snprintf(line, sizeof line, "%s: %s", pane, error);
    tui_logbuf_push_console(&a->logs_all, aspen_store_now_ms(), line);
}

/* ---- fatal signals: put the terminal back, then die as intended --------------------------------- */

static struct termios saved_termios;
static bool have_termios;

static void fatal_handler(int sig)
{
    static const char reset[] = "\033[0m\033[?25h\033[?2004l\033[?1000l\033[?1006l\033[?1049l\r\n";
    ssize_t r = write(STDOUT_FILENO, reset, sizeof reset - 1);
    (void)r;
    if (have_termios)
        tcsetattr(STDIN_FILENO, TCSANOW, &saved_termios);
    signal(sig, SIG_DFL);
    raise(sig);
}

static const int fatal_sigs[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGQUIT};

static void install_fatal_handlers(void)
{
    const int *sigs = fatal_sigs;
    for (size_t i = 0; i < sizeof fatal_sigs / sizeof fatal_sigs[0]; i++) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = fatal_handler;
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = SA_RESETHAND | SA_NODEFER;
        sigaction(sigs[i], &sa, NULL);
    }
}

/* After endwin: a later crash of the program must not write terminal resets into its output. */
static void remove_fatal_handlers(void)
{
    for (size_t i = 0; i < sizeof fatal_sigs / sizeof fatal_sigs[0]; i++)
        signal(fatal_sigs[i], SIG_DFL);
    have_termios = false;
}

/* ---- timing records (benchmarks) --------------------------------------------------------------- */

static void record(tui_app *a, double *arr, size_t *n, double v)
{
    if (arr && *n < a->cap_lat)
        arr[(*n)++] = v;
}

static int cmp_d(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

static void write_series(FILE *f, const char *name, double *v, size_t n, bool last)
{
    qsort(v, n, sizeof *v, cmp_d);
    double med = n ? v[n / 2] : 0, p95 = n ? v[(size_t)((double)(n - 1) * 0.95)] : 0;
    double max = n ? v[n - 1] : 0;
    fprintf(f, "  \"%s\": {\"n\": %zu, \"median_ms\": %.3f, \"p95_ms\": %.3f, \"max_ms\": %.3f}%s\n",
            name, n, med, p95, max, last ? "" : ",");
}

static void write_stats(tui_app *a)
{
    const char *path = a->opts.stats_path;
    if (!path || !*path)
        return;
    FILE *f = fopen(path, "w");
    if (!f)
        return;
    fprintf(f, "{\n");
    write_series(f, "frame", a->draw_ms, a->n_draw, false);
    write_series(f, "key_to_screen", a->lat_key, a->n_lat_key, false);
    write_series(f, "cursor_redraw", a->lat_cursor, a->n_lat_cursor, false);
    write_series(f, "filter_to_screen", a->lat_filter, a->n_lat_filter, false);
    write_series(f, "refresh_window_by_position", a->lat_win_pos, a->n_lat_win_pos, false);
    write_series(f, "refresh_window_by_key", a->lat_win_key, a->n_lat_win_key, true);
    fprintf(f, "}\n");
    fclose(f);
}

/* ---- drawing, rate limited -------------------------------------------------------------------- */

static void draw_now(tui_app *a)
{
    if (a->quitting)
        return;
    uv_timer_stop(&a->draw_timer);
    tui_draw(a);
    if (a->key_at_ms > 0) {
        double d = a->last_draw_ms - a->key_at_ms;
        record(a, a->lat_key, &a->n_lat_key, d);
        if (a->pending_cursor_lat)
            record(a, a->lat_cursor, &a->n_lat_cursor, d);
        a->key_at_ms = 0;
        a->pending_cursor_lat = false;
    }
}

static void on_draw_timer(uv_timer_t *t) { draw_now(t->data); }

/* Draws at once unless a frame went out in the last 15 ms; then a bit later (one frame). */
static void request_draw(tui_app *a)
{
    double since = tui_mono_ms() - a->last_draw_ms;
    if (since >= 15) {
        draw_now(a);
        return;
    }
    if (!uv_is_active((uv_handle_t *)&a->draw_timer))
        uv_timer_start(&a->draw_timer, on_draw_timer, (uint64_t)(16 - since), 0);
}

/* ---- refresh: snapshot + job window + detail + logs, on the thread pool ------------------------ */

/* How a refresh reads the job window. With a whole-store sort (every sort but the filter's
 * order:queue) it pages by key from a job already on screen (keyset: two index ranges however
 * deep the list), so scrolling 10 million jobs costs what the first page costs. */
typedef enum fetch_kind {
    FETCH_OFFSET,   /* rows [offset, offset + limit) of the order (order:queue; a lost anchor) */
    FETCH_TOP,      /* the first window */
    FETCH_AROUND,   /* half a window before the anchor (the cursor's job), half from it on */
    FETCH_FORWARD,  /* a window from the anchor (the last loaded row) on: the cursor ran past */
    FETCH_BACKWARD, /* a window ending at the anchor (the first loaded row) */
    FETCH_END,      /* the last window (G) */
} fetch_kind;

typedef struct fetch_req {
    uv_work_t w;
    tui_app *a;
    uint64_t gen;
    char filter_text[512];
    int64_t offset, limit;
    bool reverse, want_rows;
    fetch_kind kind;
    int64_t anchor;
    aspen_store_sort sort;
    bool sort_desc;
    long cursor_at, lo_at, hi_at, total_at; /* the window's place when asked */
    size_t n_before; /* FETCH_AROUND: rows before the anchor (out) */
    /* FETCH_AROUND: the anchor's row and the ids of the rows before it as loaded when asked,
     * to tell whether the list moved around the cursor since (see around_moved) */
    tui_row anchor_row;
    int64_t before_ids[TUI_WINDOW / 2];
    size_t n_before_ids;
    uint64_t counts_sig; /* the state counts when asked (counts_sig) */
    int64_t detail_id, logs_job, logs_after;
    /* out */
    double window_ms; /* how long the window's read took (ASPEN_TUI_STATS) */
    aspen_store_job *jobs;
    size_t n_jobs;
    int list_rc;
    char msg[1024];
    aspen_store_job detail;
    aspen_store_attempt *att;
    size_t n_att;
    aspen_store_log *dlogs;
    size_t n_dlogs;
    bool detail_ok;
    aspen_store_attempt_data *adata; /* cores and replay records the job keeps */
    aspen_store_job_rule rule;       /* its uniqueness rule (key NULL: none) */
    size_t n_adata;
    aspen_store_log *logs;
    size_t n_logs;
    bool logs_nojob; /* logs_job is no job of the store (:logs 999999) */
} fetch_req;

static void reverse_jobs(aspen_store_job *j, size_t n)
{
    for (size_t i = 0; i < n / 2; i++) {
        aspen_store_job t = j[i];
        j[i] = j[n - 1 - i];
        j[n - 1 - i] = t;
    }
}

/* A window of rows around the cursor's position, by offset: when the anchor of a keyset read is
 * gone, or its place in the list is no longer known (around_moved). */
static int fetch_by_position(fetch_req *r, aspen_engine *eng, const aspen_store_filter *f,
                             aspen_engine_error *err)
{
    aspen_store_filter o = *f;
    o.after_id = 0;
    o.after_inclusive = false;
    o.sort_desc = r->sort_desc;
    o.limit = TUI_WINDOW;
    o.offset = r->cursor_at > TUI_WINDOW / 2 ? r->cursor_at - TUI_WINDOW / 2 : 0;
    r->kind = FETCH_OFFSET;
    r->offset = o.offset;
    r->limit = TUI_WINDOW;
    return aspen_engine_list(eng, &o, &r->jobs, &r->n_jobs, err);
}

/* Whether the anchor's key in r's sort changed since it was loaded. Only the sort's own field
 * moves it: id, created and guest never change, so a job that finished under the default order
 * (by id) keeps its place. Re-reading by position there stepped every row above the cursor for
 * nothing: 0.24-0.9 s at 200,000 jobs while the oldest jobs at the bottom ran
 * (docs/BENCHMARKS.md). */
static bool anchor_key_changed(const fetch_req *r, const aspen_store_job *anchor)
{
    const tui_row *o = &r->anchor_row;
    switch (r->sort) {
    case ASPEN_STORE_SORT_ID:
    case ASPEN_STORE_SORT_CREATED:
    case ASPEN_STORE_SORT_GUEST: return false;
    case ASPEN_STORE_SORT_STATE: return anchor->state != o->state;
    case ASPEN_STORE_SORT_PRIORITY: return anchor->priority != o->priority;
    case ASPEN_STORE_SORT_ATTEMPTS: return anchor->attempts != o->attempts;
    case ASPEN_STORE_SORT_DURATION:
        return anchor->started_at_ms != o->started_ms || anchor->finished_at_ms != o->finished_ms;
    default: /* any other: every field a sort could use */
        return anchor->state != o->state || anchor->attempts != o->attempts ||
               anchor->priority != o->priority || anchor->started_at_ms != o->started_ms ||
               anchor->finished_at_ms != o->finished_ms;
    }
}

/* A read from an anchor (around the cursor's job, or on from the first or last row loaded)
 * places the window by the anchor's old position, which is only true while nothing moved there: the anchor itself changed its sort key (a job that finished under
 * :sort state or duration, a priority edit: anchor_key_changed) or the rows just before it are others than before
 * (jobs moved in or out), or it left the filter's matches. Then the counter would show the old
 * position beside the row the cursor is on, so the window is read again by position (an offset:
 * a scan of the rows before it, once per such move). Moves further up than the rows read are not
 * seen here (a count of the rows before the anchor would cost that scan on every refresh). */
static bool around_moved(const fetch_req *r, const aspen_store_job *before, size_t nb,
                         const aspen_store_job *anchor)
{
    const tui_row *o = &r->anchor_row;
    if (!anchor || anchor->id != o->id || anchor_key_changed(r, anchor))
        return true;
    /* before[] is nearest first; before_ids[] in display order, ending just above the anchor */
    size_t k = nb < r->n_before_ids ? nb : r->n_before_ids;
    for (size_t i = 0; i < k; i++)
        if (before[i].id != r->before_ids[r->n_before_ids - 1 - i])
            return true;
    return false;
}

/* The job window of r->kind into r->jobs, in display order (on the pool). */
static int fetch_window(fetch_req *r, aspen_engine *eng, aspen_store_filter *f,
                        aspen_engine_error *err)
{
    if (r->kind == FETCH_OFFSET) {
        f->limit = r->limit;
        f->offset = r->offset;
        if (r->sort != ASPEN_STORE_SORT_NONE) {
            f->sort = r->sort;
            f->sort_desc = r->sort_desc;
        } else if (f->order == ASPEN_STORE_ORDER_NEWEST && r->reverse) {
            f->order = ASPEN_STORE_ORDER_OLDEST;
        }
        return aspen_engine_list(eng, f, &r->jobs, &r->n_jobs, err);
    }
    f->sort = r->sort;
    f->sort_desc = r->sort_desc;
    f->offset = 0;
    int rc = 0;
    switch (r->kind) {
    case FETCH_TOP:
        f->limit = r->limit;
        return aspen_engine_list(eng, f, &r->jobs, &r->n_jobs, err);
    case FETCH_END:
        f->limit = r->limit;
        f->sort_desc = !r->sort_desc;
        rc = aspen_engine_list(eng, f, &r->jobs, &r->n_jobs, err);
        if (!rc)
            reverse_jobs(r->jobs, r->n_jobs);
        return rc;
    case FETCH_FORWARD:
        f->limit = r->limit;
        f->after_id = r->anchor;
        f->after_inclusive = true;
        rc = aspen_engine_list(eng, f, &r->jobs, &r->n_jobs, err);
        break;
    case FETCH_BACKWARD:
        f->limit = r->limit;
        f->after_id = r->anchor;
        f->after_inclusive = true;
        f->sort_desc = !r->sort_desc;
        rc = aspen_engine_list(eng, f, &r->jobs, &r->n_jobs, err);
        if (!rc)
            reverse_jobs(r->jobs, r->n_jobs);
        break;
    case FETCH_AROUND: {
        aspen_store_filter b = *f;
        b.limit = r->limit / 2;
        b.after_id = r->anchor;
        b.sort_desc = !r->sort_desc;
        aspen_store_job *before = NULL, *after = NULL;
        size_t nb = 0, na = 0;
        rc = aspen_engine_list(eng, &b, &before, &nb, err);
        if (!rc) {
            f->limit = r->limit - r->limit / 2;
            f->after_id = r->anchor;
            f->after_inclusive = true;
            rc = aspen_engine_list(eng, f, &after, &na, err);
        }
        if (!rc && nb == (size_t)(r->limit / 2) && around_moved(r, before, nb, na ? after : NULL)) {
            /* a full half before the anchor: its position was taken from before, and it moved */
            aspen_store_jobs_free(before, nb);
            aspen_store_jobs_free(after, na);
            return fetch_by_position(r, eng, f, err);
        }
        if (!rc) {
            aspen_store_job *all = nb + na ? calloc(nb + na, sizeof *all) : NULL;
            if (nb + na && !all) {
                aspen_store_jobs_free(before, nb);
                aspen_store_jobs_free(after, na);
                snprintf(err->msg, sizeof err->msg, "out of memory reading the jobs");
                return -1;
            }
            for (size_t i = 0; i < nb; i++)
                all[i] = before[nb - 1 - i];
            if (na)
                memcpy(all + nb, after, na * sizeof *all);
            free(before);
            free(after);
            r->jobs = all;
            r->n_jobs = nb + na;
            r->n_before = nb;
            r->limit = r->limit - r->limit / 2; /* has_more: the part after the anchor was full */
            return 0;
        }
        aspen_store_jobs_free(before, nb);
        break;
    }
    default: break;
    }
    if (!rc && (r->kind == FETCH_FORWARD || r->kind == FETCH_BACKWARD) &&
        around_moved(r, NULL, 0,
                     !r->n_jobs ? NULL
                     : r->kind == FETCH_FORWARD ? &r->jobs[0] : &r->jobs[r->n_jobs - 1])) {
        /* placed by the anchor's old position (the first or last row loaded), which moved */
        aspen_store_jobs_free(r->jobs, r->n_jobs);
        r->jobs = NULL;
        r->n_jobs = 0;
        return fetch_by_position(r, eng, f, err);
    }
    if (rc && (err->store_code == ASPEN_STORE_ENOTFOUND || err->code == ASPEN_ENGINE_ENOTFOUND)) {
        /* the anchor job was deleted meanwhile: read the window by position instead */
        return fetch_by_position(r, eng, f, err);
    }
    return rc;
}

static void fetch_work(uv_work_t *w)
{
    fetch_req *r = w->data;
    aspen_engine *eng = r->a->eng;
    aspen_engine_error err = {0};
    aspen_store_filter f;
    char buf[2048];
    if (!r->want_rows) {
        r->list_rc = 0;
    } else if (tui_filter_parse(r->filter_text, &f, buf, sizeof buf, r->msg, sizeof r->msg) != 0) {
        r->list_rc = -1;
    } else {
        double t0 = tui_mono_ms();
        r->list_rc = fetch_window(r, eng, &f, &err);
        r->window_ms = tui_mono_ms() - t0;
        if (r->list_rc)
            snprintf(r->msg, sizeof r->msg, "%s", err.msg);
    }
    if (r->detail_id) {
        r->detail_ok = aspen_engine_get(eng, r->detail_id, &r->detail, &err) == 0;
        if (r->detail_ok) {
            aspen_engine_attempts(eng, r->detail_id, &r->att, &r->n_att, &err);
            aspen_engine_logs(eng, r->detail_id, 0, 1000, &r->dlogs, &r->n_dlogs, &err);
            aspen_engine_list_attempt_data(eng, r->detail_id, &r->adata, &r->n_adata, &err);
            /* its uniqueness rule (extra: the detail shows without it, as aspen show does) */
            aspen_engine_error uerr = {0};
            if (aspen_engine_unique_rule(eng, r->detail_id, &r->rule, &uerr) != 0)
                r->rule = (aspen_store_job_rule){0};
        } else {
            snprintf(r->msg, sizeof r->msg, "%s", err.msg);
        }
    }
    if (r->logs_job) {
        aspen_engine_logs(eng, r->logs_job, r->logs_after, 2000, &r->logs, &r->n_logs, &err);
        /* no lines at all: a job that has none yet, or no such job (then the pane says so
         * rather than waiting for lines that cannot come) */
        if (!r->n_logs && !r->logs_after) {
            aspen_store_job j = {0};
            aspen_engine_error gerr = {0};
            if (aspen_engine_get(eng, r->logs_job, &j, &gerr) == 0)
                aspen_store_job_clear(&j);
            else
                r->logs_nojob = gerr.code == ASPEN_ENGINE_ENOTFOUND ||
                                gerr.store_code == ASPEN_STORE_ENOTFOUND;
        }
    }
}

static void start_fetch(tui_app *a);

static void cursor_follow_id(tui_app *a)
{
    /* keep the cursor on the same job when rows shift (new jobs on top); after G on the last
     * row, whichever job that is */
    if (a->at_end) {
        long total = tui_jobs_total(a);
        a->cursor = total > 0 ? total - 1 : 0;
        return;
    }
    if (!a->cursor_id || a->cursor == 0)
        return;
    for (size_t i = 0; i < a->n_rows; i++)
        if (a->rows[i].id == a->cursor_id) {
            a->cursor = a->win_offset + (long)i;
            return;
        }
}

/* The submit form also offers binaries only the store has (uploaded by another program, or from a
 * guest directory this console does not see): learnt from the jobs it loads. */
static void learn_binaries(tui_app *a, const aspen_store_job *jobs, size_t n)
{
    for (size_t i = 0; i < n && a->n_guests < TUI_MAX_GUESTS; i++) {
        const aspen_store_job *j = &jobs[i];
        if (!j->binary_sha256 || !j->binary_name || strlen(j->binary_sha256) != 64)
            continue;
        bool known = false;
        for (size_t g = 0; g < a->n_guests && !known; g++)
            known = strcmp(a->guests[g].name, j->binary_name) == 0 ||
                    strcmp(a->guests[g].sha256, j->binary_sha256) == 0;
        if (known)
            continue;
        tui_guest *g = &a->guests[a->n_guests];
        g->name = strdup(j->binary_name);
        if (!g->name)
            return;
        g->handler = false;
        snprintf(g->sha256, sizeof g->sha256, "%s", j->binary_sha256);
        a->n_guests++;
    }
}

/* Where the rows just read sit in the list, from how they were read. Paging by key knows a
 * window's place from the window it started at; when fewer rows came before the anchor than
 * asked, the anchor is that near the top and the positions are exact again. */
static void place_window(tui_app *a, const fetch_req *r)
{
    long n = (long)a->n_rows;
    switch (r->kind) {
    case FETCH_OFFSET:
        a->win_offset = (long)r->offset;
        a->has_more = (int64_t)r->n_jobs == r->limit;
        break;
    case FETCH_TOP:
        a->win_offset = 0;
        a->has_more = (int64_t)r->n_jobs == r->limit;
        break;
    case FETCH_AROUND: {
        long nb = (long)r->n_before;
        if (nb < TUI_WINDOW / 2) { /* the anchor is row nb: the cursor moves with it */
            a->win_offset = 0;
            a->cursor += nb - r->cursor_at;
        } else {
            a->win_offset = r->cursor_at - nb;
        }
        a->has_more = (int64_t)(r->n_jobs - r->n_before) == r->limit;
        break;
    }
    case FETCH_FORWARD:
        a->win_offset = r->hi_at - 1;
        a->has_more = (int64_t)r->n_jobs == r->limit;
        break;
    case FETCH_BACKWARD:
        a->win_offset = r->lo_at - (n - 1);
        if (a->win_offset < 0 || n < r->limit) { /* reached the top */
            a->cursor -= a->win_offset;
            a->win_offset = 0;
        }
        a->has_more = true;
        break;
    case FETCH_END:
        a->win_offset = r->total_at > n ? r->total_at - n : 0;
        a->has_more = false;
        if (n < r->limit) { /* the whole list: the count was ahead of the rows */
            a->win_offset = 0;
            if (a->cursor >= n)
                a->cursor = n ? n - 1 : 0;
        }
        break;
    }
    if (a->cursor < 0)
        a->cursor = 0;
}

static void fetch_done(uv_work_t *w, int status)
{
    fetch_req *r = w->data;
    tui_app *a = r->a;
    a->fetch_busy = false;
    if (status == 0 && !a->quitting) {
        if (r->gen == a->fetch_gen && r->want_rows) {
            if (r->list_rc == 0) {
                if (r->kind == FETCH_OFFSET && r->sort != ASPEN_STORE_SORT_NONE)
                    record(a, a->lat_win_pos, &a->n_lat_win_pos, r->window_ms);
                else
                    record(a, a->lat_win_key, &a->n_lat_win_key, r->window_ms);
                tui_row *rows = r->n_jobs ? calloc(r->n_jobs, sizeof *rows) : NULL;
                size_t n = 0;
                for (size_t i = 0; rows && i < r->n_jobs; i++)
                    tui_row_from_job(&r->jobs[i], &rows[n++]);
                learn_binaries(a, r->jobs, r->n_jobs);
                free(a->rows);
                a->rows = rows;
                a->n_rows = n;
                place_window(a, r);
                a->win_counts_sig = r->counts_sig;
                /* the cursor ran past what was read (keys pressed meanwhile): read on */
                if (a->cursor < a->win_offset || a->cursor >= a->win_offset + (long)a->n_rows)
                    a->fetch_again = a->n_rows > 0;
                a->rows_loaded = true;
                cursor_follow_id(a);
                if (a->open_pending && a->view == TUI_VIEW_JOBS && a->mode == TUI_MODE_MAIN &&
                    tui_selected_row(a)) {
                    a->open_pending = false;
                    tui_push(a, TUI_VIEW_DETAIL, tui_selected_row(a)->id);
                }
            } else {
                tui_set_status(a, true, "filter: %s", r->msg);
            }
            if (a->filter_applied_at > 0 && r->gen == a->filter_gen) {
                a->key_at_ms = 0;
                draw_now(a);
                record(a, a->lat_filter, &a->n_lat_filter, a->last_draw_ms - a->filter_applied_at);
                a->filter_applied_at = 0;
            }
        }
        if (r->detail_id && r->detail_id == a->detail_id && a->view == TUI_VIEW_DETAIL) {
            tui_text_free(&a->detail);
            free(a->detail_payload);
            free(a->detail_output);
            a->detail_payload = a->detail_output = NULL;
            a->detail_output_n = 0;
            if (r->detail_ok) {
                tui_detail_build(&a->detail, &r->detail, &r->rule, r->att, r->n_att, r->dlogs,
                                 r->n_dlogs, aspen_store_now_ms());
                tui_detail_add_data(&a->detail, r->detail_id, r->adata, r->n_adata,
                                    a->opts.db_arg);
                a->detail_payload = strdup(r->detail.payload ? r->detail.payload : "");
                if (r->detail.result && r->detail.result_size) {
                    a->detail_output = malloc(r->detail.result_size);
                    if (a->detail_output) {
                        memcpy(a->detail_output, r->detail.result, r->detail.result_size);
                        a->detail_output_n = r->detail.result_size;
                    }
                }
            }
            else
                tui_text_add(&a->detail, "%s", r->msg);
            a->detail_loaded = true;
        }
        if (r->logs_job && r->logs_job == a->logs_job && r->logs_nojob &&
            a->view == TUI_VIEW_LOGS) {
            int64_t id = r->logs_job;
            if (!tui_back(a))
                tui_show_pane(a, TUI_PANE_JOBS);
            tui_set_status(a, true, "no job %lld (deleted, or never submitted): :logs alone shows "
                           "every job's lines", (long long)id);
        } else if (r->logs_job && r->logs_job == a->logs_job) {
            for (size_t i = 0; i < r->n_logs; i++) {
                tui_logbuf_push(&a->logs_one, r->logs_job, r->logs[i].attempt, r->logs[i].time_ms,
                                r->logs[i].seq, r->logs[i].line);
                if (r->logs[i].seq > a->logs_after_seq)
                    a->logs_after_seq = r->logs[i].seq;
            }
        }
    }
    aspen_store_jobs_free(r->jobs, r->n_jobs);
    aspen_store_job_clear(&r->detail);
    aspen_store_attempts_free(r->att, r->n_att);
    free(r->adata);
    aspen_store_job_rule_clear(&r->rule);
    aspen_store_logs_free(r->dlogs, r->n_dlogs);
    aspen_store_logs_free(r->logs, r->n_logs);
    free(r);
    if (a->quitting)
        return;
    request_draw(a);
    if (a->fetch_again)
        start_fetch(a);
}

/* The jobs total is exact: the counts by state (a filter of states only) or a count of this
 * filter, not "more than loaded". */
static bool total_exact(const tui_app *a)
{
    return tui_filter_states_only(&a->filter) ? a->have_snap
                                              : a->count_known && a->count_gen == a->filter_gen;
}

/* A signature of the state counts: another value, jobs changed state, came or went. */
static uint64_t counts_sig(const tui_app *a)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a over the counts */
    for (int st = 0; st < ASPEN_STORE_STATE_COUNT; st++) {
        uint64_t v = (uint64_t)a->snap.counts[st];
        for (int b = 0; b < 8; b++) {
            h ^= (v >> (8 * b)) & 0xff;
            h *= 1099511628211ull;
        }
    }
    return h;
}

/* How deep in a sorted list a window is re-read by offset when jobs moved (the offset costs a
 * scan of the rows before it: a few ms here, far more at millions, where the anchor's place is
 * kept and only the moves near the cursor are seen: around_moved). */
#define TUI_REPLACE_MAX 100000

static void start_fetch(tui_app *a)
{
    if (a->quitting)
        return;
    if (a->fetch_busy) {
        a->fetch_again = true;
        return;
    }
    fetch_req *r = calloc(1, sizeof *r);
    if (!r)
        return;
    a->fetch_again = false;
    r->a = a;
    r->w.data = r;
    r->gen = a->fetch_gen;
    snprintf(r->filter_text, sizeof r->filter_text, "%s", a->filter_text);
    /* the window: around the cursor, kept when the cursor is well inside it */
    long off = a->win_offset;
    if (!a->rows_loaded || a->cursor < off + 50 || a->cursor >= off + TUI_WINDOW - 50)
        off = a->cursor - TUI_WINDOW / 2;
    if (off < 0 || a->cursor < TUI_WINDOW / 2)
        off = 0;
    r->offset = off;
    r->limit = TUI_WINDOW;
    r->reverse = a->order_reverse;
    r->sort = ASPEN_STORE_SORT_NONE;
    r->kind = FETCH_OFFSET;
    long lo = a->win_offset, hi = a->win_offset + (long)a->n_rows;
    r->cursor_at = a->cursor;
    r->lo_at = lo;
    r->hi_at = hi;
    r->total_at = tui_jobs_total(a);
    r->counts_sig = counts_sig(a);
    if (tui_store_sort(a->sort_col, a->sort_reverse, a->order_reverse, a->filter.order, &r->sort,
                       &r->sort_desc)) {
        bool exact = total_exact(a);
        if (a->at_end && exact && a->rows_loaded) {
            /* the end, however the rows moved: the anchor of a read around the cursor may have
             * moved up the list (a queued job that finished, under :sort duration), and a window
             * placed by it would call rows from the middle the last ones */
            r->kind = FETCH_END;
        } else if (!a->rows_loaded || a->cursor < TUI_WINDOW / 2 || !a->n_rows) {
            r->kind = FETCH_TOP;
        } else if (a->cursor >= lo && a->cursor < hi && a->have_snap &&
                   counts_sig(a) != a->win_counts_sig && a->cursor < TUI_REPLACE_MAX) {
            /* jobs changed state (or came, or went) since the window was placed: one of them
             * may have crossed the cursor's job from anywhere above it, so its old position
             * is not known to hold: the window by offset (r->offset, as computed above), and
             * the cursor follows its job inside it (cursor_follow_id) */
            r->kind = FETCH_OFFSET;
        } else if (a->cursor >= lo && a->cursor < hi) {
            r->kind = FETCH_AROUND;
            r->anchor = a->rows[a->cursor - lo].id;
            r->anchor_row = a->rows[a->cursor - lo];
            long from = a->cursor - lo - TUI_WINDOW / 2;
            if (from < 0)
                from = 0;
            for (long i = from; i < a->cursor - lo; i++)
                r->before_ids[r->n_before_ids++] = a->rows[i].id;
        } else if (exact && a->cursor >= r->total_at - TUI_WINDOW / 2) {
            r->kind = FETCH_END;
        } else if (a->cursor >= hi) {
            r->kind = FETCH_FORWARD;
            r->anchor = a->rows[a->n_rows - 1].id;
            r->anchor_row = a->rows[a->n_rows - 1];
        } else {
            r->kind = FETCH_BACKWARD;
            r->anchor = a->rows[0].id;
            r->anchor_row = a->rows[0];
        }
    }
    /* what the view on screen shows (its needs()); the jobs table also while nothing is loaded */
    unsigned needs = tui_view_ops(a->view)->needs(a);
    r->want_rows = (needs & TUI_NEED_ROWS) || !a->rows_loaded;
    r->detail_id = needs & TUI_NEED_DETAIL ? a->detail_id : 0;
    r->logs_job = needs & TUI_NEED_LOGS ? a->logs_job : 0;
    r->logs_after = a->logs_after_seq;
    a->last_refresh_ms = (uint64_t)tui_mono_ms();
    a->fetch_busy = true;
    if (uv_queue_work(a->loop, &r->w, fetch_work, fetch_done) != 0) {
        a->fetch_busy = false;
        free(r);
    }
}

static void on_refresh_timer(uv_timer_t *t) { start_fetch(t->data); }

/* Soon, not at once: many events in a burst make one refresh (at most one every 200 ms). */
static void refresh_soon(tui_app *a)
{
    uint64_t since = (uint64_t)tui_mono_ms() - a->last_refresh_ms;
    if (since >= 200) {
        start_fetch(a);
        return;
    }
    if (!uv_is_active((uv_handle_t *)&a->refresh_timer))
        uv_timer_start(&a->refresh_timer, on_refresh_timer, 200 - since, 0);
}

/* Re-reads the window when the cursor left (or nears the edge of) the loaded rows. */
static void ensure_window(tui_app *a)
{
    long lo = a->win_offset, hi = a->win_offset + (long)a->n_rows;
    bool near_lo = lo > 0 && a->cursor < lo + 50;
    bool near_hi = a->has_more && a->cursor >= hi - 50;
    if (a->cursor < lo || a->cursor >= hi || near_lo || near_hi)
        start_fetch(a);
}

/* ---- stats: counts by state, oldest waiting, paused --------------------------------------------
 * Through a second (client) engine handle: its own SQLite connection and lock, so the store's
 * slower whole-queue reads (the oldest waiting job) never hold up the job table's queries.
 * Workers and throughput come from memory (aspen_engine_snapshot_live). The header's p50/p95
 * come from the metrics history (pane_metrics.c), which covers every engine and a stated window,
 * not the newest 256 jobs this console happened to list. */

typedef struct stats_req {
    uv_work_t w;
    tui_app *a;
    aspen_engine_snapshot snap;
    int rc;
} stats_req;

static void stats_work(uv_work_t *w)
{
    stats_req *r = w->data;
    aspen_engine *eng = r->a->stats_eng ? r->a->stats_eng : r->a->eng;
    aspen_engine_error err = {0};
    r->rc = aspen_engine_snapshot_get(eng, &r->snap, &err);
}

static void snap_live(tui_app *a)
{
    aspen_engine_snapshot *live = malloc(sizeof *live);
    if (!live)
        return;
    aspen_engine_snapshot_live(a->eng, live);
    a->snap.engine_id = live->engine_id;
    a->snap.n_workers = live->n_workers;
    memcpy(a->snap.workers, live->workers, sizeof live->workers);
    a->snap.throughput = live->throughput;
    a->snap.reconnecting = live->reconnecting;
    a->snap.reconnecting_since_ms = live->reconnecting_since_ms;
    a->snap.reconnect_tries = live->reconnect_tries;
    free(live);
}

static void stats_done(uv_work_t *w, int status)
{
    stats_req *r = w->data;
    tui_app *a = r->a;
    a->stats_busy = false;
    if (status == 0 && !a->quitting) {
        if (r->rc == 0) {
            memcpy(a->snap.counts, r->snap.counts, sizeof a->snap.counts);
            a->snap.oldest_waiting_ms = r->snap.oldest_waiting_ms;
            a->snap.paused = r->snap.paused;
            a->have_snap = true;
        }
        a->stats_reconnecting = r->snap.reconnecting;
        a->stats_reconnecting_since_ms = r->snap.reconnecting_since_ms;
        snap_live(a);
        request_draw(a);
    }
    free(r);
}

/* ---- the exact count of a filter's matches ---------------------------------------------------- */

typedef struct count_req {
    uv_work_t w;
    tui_app *a;
    uint64_t gen, epoch;
    char filter_text[512];
    int rc;
    int64_t total;
} count_req;

static void count_work(uv_work_t *w)
{
    count_req *r = w->data;
    aspen_store_filter f;
    char buf[2048], msg[256];
    aspen_store_error se = {0};
    r->rc = tui_filter_parse(r->filter_text, &f, buf, sizeof buf, msg, sizeof msg);
    if (r->rc == 0)
        r->rc = aspen_store_count(r->a->count_store, &f, &r->total, &se);
}

static void start_count(tui_app *a);

static void count_done(uv_work_t *w, int status)
{
    count_req *r = w->data;
    tui_app *a = r->a;
    a->count_busy = false;
    if (status == 0 && !a->quitting && r->epoch != a->count_epoch) {
        /* counted before a delete or a retry changed what matches: a count of now instead */
        free(r);
        start_count(a);
        return;
    }
    if (status == 0 && !a->quitting && r->rc == 0 && r->gen == a->filter_gen) {
        bool changed = !a->count_known || a->count_total != r->total || a->count_gen != r->gen;
        a->count_known = true;
        a->count_gen = r->gen;
        a->count_total = r->total;
        if (changed)
            request_draw(a);
    }
    free(r);
}

/* Counts the current filter's matches when the state counts do not give them. */
static void start_count(tui_app *a)
{
    if (a->quitting || a->count_busy || !a->count_store || tui_filter_states_only(&a->filter))
        return;
    count_req *r = calloc(1, sizeof *r);
    if (!r)
        return;
    r->a = a;
    r->w.data = r;
    r->gen = a->filter_gen;
    r->epoch = a->count_epoch;
    snprintf(r->filter_text, sizeof r->filter_text, "%s", a->filter_text);
    a->count_busy = true;
    if (uv_queue_work(a->loop, &r->w, count_work, count_done) != 0) {
        a->count_busy = false;
        free(r);
    }
}

/* Jobs left the filter's matches (deleted, retried, cancelled): the count on screen is of
 * before, and the counter must not say "1/200" over rows that are gone (with '...' rows for
 * the difference until the next count, 5 s away) — the loaded rows give the total until a count
 * of now comes back. */
static void count_invalidate(tui_app *a)
{
    a->count_known = false;
    a->count_epoch++;
    start_count(a);
}

static void start_stats(tui_app *a)
{
    if (a->quitting || a->stats_busy)
        return;
    stats_req *r = calloc(1, sizeof *r);
    if (!r)
        return;
    r->a = a;
    r->w.data = r;
    a->stats_busy = true;
    if (uv_queue_work(a->loop, &r->w, stats_work, stats_done) != 0) {
        a->stats_busy = false;
        free(r);
    }
}

/* ---- actions on the thread pool ------------------------------------------------------------------ */

/* A job's values for the submit form (S: submit a copy). */
typedef struct tui_seed {
    char guest[256], sha256[65];
    bool handler, have;
    char *payload;
    long long timeout_ms, priority, attempts;
    long long memory_bytes; /* 0: the engine's default */
    char tags[1024];
    char queue[65]; /* its named queue ("default") */
} tui_seed;

static void open_form(tui_app *a, const tui_seed *s);
static size_t find_guest(tui_app *a, const tui_seed *s);

enum {
    ACT_SUBMIT, ACT_CANCEL, ACT_RERUN, ACT_RETRY_FAILED, ACT_PAUSE, ACT_GET_JOB,
    ACT_DELETE,         /* ids: each deleted (finished jobs only; the store refuses the others) */
    ACT_DELETE_COLLECT, /* the finished jobs matching filter_text → ids, then the question */
    ACT_EXPORT,         /* every job matching filter_text into a new file at path */
    ACT_CORE,           /* job first_id's last core to path (core.c) */
    ACT_PRIORITY,       /* ids: priority = r->priority, or their own + r->delta when delta != 0 */
    ACT_RUN_NOW,        /* ids: each scheduled one queued now */
    ACT_SNOOZE,         /* ids: each waiting one put off by r->delay_ms (z, :snooze DURATION) */
    ACT_QUEUE_CHECK,    /* the form's queue: does it exist (else the nearest name, for a hint) */
    ACT_CANCEL_COUNT,   /* X: how many unfinished jobs match filter_text, then the question */
    ACT_CANCEL_MATCHING, /* yes to it: aspen_engine_cancel_matching over filter_text */
};

#define FINAL_STATES                                                                               \
    ((1u << ASPEN_STORE_SUCCEEDED) | (1u << ASPEN_STORE_FAILED) | (1u << ASPEN_STORE_CANCELLED))

typedef struct act_req {
    uv_work_t w;
    tui_app *a;
    int kind;
    int64_t *ids;
    size_t n;
    char filter_text[512];
    char path[1024];
    bool pause;
    /* submit */
    /* guest: a name, a built-in type or (typed into the form) a guest file's path */
    char guest[4096], tags_json[1024], sha256[65], queue[65];
    char *payload; /* malloc'd */
    bool want_unique;          /* the form's Unique field: unique below is the rule */
    aspen_store_unique unique; /* its key and fields point into ukey / ufields */
    char ukey[ASPEN_STORE_UNIQUE_KEY_MAX + 1], ufields[1024];
    int n_dup;                 /* out: how many of the jobs were duplicates (nothing written) */
    int64_t new_first;         /* out: the first job really written, 0 when none */
    bool handler;
    int64_t timeout_ms, memory_bytes;
    int priority, attempts, count;
    int delta; /* ACT_PRIORITY: +1 / -1 from each job's own priority */
    int64_t delay_ms; /* ACT_SNOOZE */
    /* out */
    int rc, done, requested, failed;
    int64_t first_id, last_id;
    char msg[1024];
    struct tui_seed *seed; /* ACT_GET_JOB: the job's values for the form */
    /* ACT_QUEUE_CHECK: whether r->queue exists, else the nearest queue's name ("" none) */
    bool queue_exists;
    char near[ASPEN_STORE_QUEUE_NAME_MAX + 1];
    uint64_t queue_gen; /* a->form_queue_gen when asked: a later look-up's answer counts only */
    /* ACT_CANCEL_COUNT: unfinished matches (running ones among them); ACT_CANCEL_MATCHING:
     * cancelled and asked to stop */
    int64_t n_live, n_running;
    /* ACT_EXPORT: rows written so far (the pool writes, the tick reads), the matches when known
     * (-1: not counted), the file's absolute path at the end, a stop asked at quit */
    _Atomic int64_t written;
    int64_t total;
    char where[1100];
    _Atomic bool stop; /* the export's, and the submit's (esc, quit): no batch after this one */
    /* ACT_SUBMIT: jobs written so far (the pool writes, the tick reads), and whether a stop
     * ended it before all count were */
    _Atomic int64_t submitted;
    bool stopped;
} act_req;

/* A submit of many jobs goes in transactions of this many (each all or none): between them the
 * tick shows how far it is and esc can stop the rest; one of 100,000 held the API connection
 * for seconds with nothing on screen (trial 23). */
#define TUI_SUBMIT_BATCH 2000

/* A read-only store handle of its own for one action on the pool (the console's other handles
 * each belong to one reader: the jobs count, the panes). 0, or -1 with msg said. */
static int open_reader(const tui_app *a, aspen_store **st, char *msg, size_t cap)
{
    aspen_store_options so = {.read_only = true};
    aspen_store_error se = {0};
    *st = NULL;
    if (aspen_store_open(aspen_engine_db_path(a->eng), &so, st, &se) != 0) {
        snprintf(msg, cap, "cannot open the database to read it: %s", se.msg);
        return -1;
    }
    return 0;
}

/* ACT_QUEUE_CHECK: whether the form's queue exists; when it does not, the nearest existing name
 * (the store's "did you mean", as aspen submit's refusal of a --queue typo gives). */
static int queue_check_work(act_req *r)
{
    aspen_store *st;
    if (open_reader(r->a, &st, r->msg, sizeof r->msg) != 0)
        return -1;
    aspen_store_queue_info *qs = NULL;
    size_t n = 0;
    aspen_store_error se = {0};
    int rc = aspen_store_queues(st, aspen_store_now_ms(), &qs, &n, &se);
    aspen_store_close(st);
    if (rc != 0) {
        snprintf(r->msg, sizeof r->msg, "cannot list the queues: %s", se.msg);
        return -1;
    }
    const char **names = calloc(n ? n : 1, sizeof *names);
    if (!names) {
        aspen_store_queues_free(qs);
        snprintf(r->msg, sizeof r->msg, "out of memory listing the queues");
        return -1;
    }
    r->queue_exists = strcmp(r->queue, "default") == 0; /* always there, listed or not */
    for (size_t i = 0; i < n; i++) {
        names[i] = qs[i].name;
        r->queue_exists |= strcmp(qs[i].name, r->queue) == 0;
    }
    /* default is offered for a typo of it even on a database that lists no queue yet */
    const char *near = r->queue_exists ? NULL : aspen_store_nearest(r->queue, strlen(r->queue),
                                                                    names, n);
    static const char *const dflt[] = {"default"};
    if (!r->queue_exists && !near)
        near = aspen_store_nearest(r->queue, strlen(r->queue), dflt, 1);
    snprintf(r->near, sizeof r->near, "%s", near ? near : "");
    free(names);
    aspen_store_queues_free(qs);
    return 0;
}

/* ACT_CANCEL_COUNT: the unfinished jobs filter_text matches (what aspen_engine_cancel_matching
 * would cancel now) and how many of them run, for the question; the engine counts them as it does
 * for aspen cancel --filter's. */
static int cancel_count_work(act_req *r)
{
    aspen_store_filter f;
    char buf[2048];
    if (tui_filter_parse(r->filter_text, &f, buf, sizeof buf, r->msg, sizeof r->msg) != 0)
        return -1;
    aspen_engine_unfinished u;
    aspen_engine_error err = {0};
    if (aspen_engine_count_unfinished(r->a->eng, &f, 0, &u, &err) != 0) {
        snprintf(r->msg, sizeof r->msg, "%s", err.msg); /* "counting the matching jobs: ..." */
        return -1;
    }
    r->n_live = u.total;
    r->n_running = u.n[ASPEN_STORE_RUNNING];
    return 0;
}

static void act_work(uv_work_t *w)
{
    act_req *r = w->data;
    aspen_engine *eng = r->a->eng;
    aspen_engine_error err = {0};
    switch (r->kind) {
    case ACT_SUBMIT: {
        aspen_engine_job_spec *specs = calloc((size_t)r->count, sizeof *specs);
        int64_t *ids = calloc((size_t)r->count, sizeof *ids);
        aspen_store_submitted *done = calloc((size_t)r->count, sizeof *done);
        char *tagbuf = strdup(r->tags_json);
        const char *tags[16];
        size_t n_tags = 0;
        for (char *save = NULL, *t = strtok_r(tagbuf, ", ", &save); t && n_tags < 16;
             t = strtok_r(NULL, ", ", &save))
            tags[n_tags++] = t;
        if (!specs || !ids || !done || !tagbuf) {
            r->rc = -1;
            snprintf(r->msg, sizeof r->msg, "out of memory");
        } else {
            for (int i = 0; i < r->count; i++) {
                if (r->handler) {
                    specs[i].type = r->guest;
                } else if (r->sha256[0]) {
                    specs[i].binary_sha256 = r->sha256;
                    specs[i].binary_name = r->guest;
                } else {
                    specs[i].guest = r->guest;
                }
                specs[i].payload = r->payload;
                specs[i].timeout_ms = r->timeout_ms;
                specs[i].memory_bytes = r->memory_bytes;
                specs[i].priority = r->priority;
                specs[i].max_attempts = r->attempts;
                specs[i].tags = tags;
                specs[i].n_tags = n_tags;
                specs[i].queue = r->queue[0] ? r->queue : NULL;
                specs[i].unique = r->want_unique ? &r->unique : NULL;
            }
            /* submit_ex: a duplicate is said as such (its id is the existing job's); in batches
             * of TUI_SUBMIT_BATCH, a stop (esc, quit) honoured between them */
            int sent = 0;
            r->rc = 0;
            while (sent < r->count) {
                if (sent && atomic_load(&r->stop)) {
                    r->stopped = true;
                    break;
                }
                int n = r->count - sent < TUI_SUBMIT_BATCH ? r->count - sent : TUI_SUBMIT_BATCH;
                r->rc = aspen_engine_submit_ex(eng, specs + sent, (size_t)n, done + sent, &err);
                if (r->rc != 0)
                    break;
                sent += n;
                atomic_store(&r->submitted, sent);
            }
            r->done = sent; /* written (or found as duplicates) before a stop or a refusal */
            if (r->rc != 0)
                snprintf(r->msg, sizeof r->msg, "%s", err.msg);
            if (sent) {
                r->first_id = done[0].id;
                r->last_id = done[sent - 1].id;
                for (int i = 0; i < sent; i++) {
                    if (!done[i].duplicate) {
                        if (!r->new_first)
                            r->new_first = done[i].id;
                        continue;
                    }
                    if (r->n_dup++)
                        continue;
                    /* the first duplicate's wording, with the key stored with the job it found */
                    char *stored = NULL;
                    aspen_engine_unique_key(eng, done[i].id, &stored, NULL);
                    if (r->rc == 0) /* a refusal's text is the one to say */
                        aspen_store_duplicate_message(stored ? stored : "?", &done[i],
                                                      aspen_store_now_ms(), r->msg,
                                                      sizeof r->msg);
                    free(stored);
                }
            }
        }
        free(specs);
        free(done);
        free(ids);
        free(tagbuf);
        break;
    }
    case ACT_CANCEL:
        for (size_t i = 0; i < r->n; i++) {
            bool requested = false;
            if (aspen_engine_cancel(eng, r->ids[i], &requested, &err) == 0) {
                r->done++;
                r->requested += requested;
            } else {
                r->failed++;
                snprintf(r->msg, sizeof r->msg, "%s", err.msg);
            }
        }
        break;
    case ACT_PRIORITY:
        for (size_t i = 0; i < r->n; i++) {
            int prio = r->priority;
            if (r->delta) {
                aspen_store_job j;
                if (aspen_engine_get(eng, r->ids[i], &j, &err) != 0) {
                    r->failed++;
                    snprintf(r->msg, sizeof r->msg, "%s", err.msg);
                    continue;
                }
                long long p = (long long)j.priority + r->delta;
                aspen_store_job_clear(&j);
                prio = p > ASPEN_STORE_PRIORITY_MAX   ? ASPEN_STORE_PRIORITY_MAX
                       : p < ASPEN_STORE_PRIORITY_MIN ? ASPEN_STORE_PRIORITY_MIN
                                                      : (int)p;
            }
            if (aspen_engine_set_priority(eng, r->ids[i], prio, &err) == 0) {
                r->done++;
                r->last_id = prio; /* the priority set last, for the message */
            } else {
                r->failed++;
                snprintf(r->msg, sizeof r->msg, "%s", err.msg);
            }
        }
        break;
    case ACT_SNOOZE:
        for (size_t i = 0; i < r->n; i++) {
            if (aspen_engine_snooze(eng, r->ids[i], r->delay_ms, &err) == 0)
                r->done++;
            else {
                r->failed++;
                snprintf(r->msg, sizeof r->msg, "%s", err.msg);
            }
        }
        break;
    case ACT_RUN_NOW:
        for (size_t i = 0; i < r->n; i++) {
            if (aspen_engine_run_now(eng, r->ids[i], &err) == 0)
                r->done++;
            else {
                r->failed++;
                snprintf(r->msg, sizeof r->msg, "%s", err.msg);
            }
        }
        break;
    case ACT_RERUN:
        for (size_t i = 0; i < r->n; i++) {
            aspen_store_submitted out = {0};
            int rrc = aspen_engine_rerun_ex(eng, r->ids[i], 0, &out, &err);
            if (rrc == 0 && out.duplicate) {
                /* the rerun kept the job's uniqueness rule and another job holds the key: that
                 * job is the answer, as for a duplicate submit; nothing was made */
                r->n_dup++;
                char *key = NULL, dup[1024];
                aspen_engine_unique_key(eng, out.id, &key, NULL);
                aspen_store_duplicate_message(key ? key : "?", &out, aspen_store_now_ms(), dup,
                                              sizeof dup);
                free(key);
                char *tail = strstr(dup, "; not submitting another");
                if (tail)
                    *tail = '\0';
                snprintf(r->msg, sizeof r->msg,
                         "duplicate: %s; job %lld not rerun (aspen rerun %lld --no-unique makes "
                         "one anyway)",
                         dup, (long long)r->ids[i], (long long)r->ids[i]);
            } else if (rrc == 0) {
                int64_t nid = out.id;
                if (!r->first_id)
                    r->first_id = nid;
                r->last_id = nid;
                r->done++;
            } else {
                r->failed++;
                snprintf(r->msg, sizeof r->msg, "%s", err.msg);
            }
        }
        break;
    case ACT_RETRY_FAILED: {
        /* every failed job the filter matches, in one transaction */
        aspen_store_filter f;
        char buf[2048];
        if (tui_filter_parse(r->filter_text, &f, buf, sizeof buf, r->msg, sizeof r->msg) != 0) {
            r->rc = -1;
            break;
        }
        if (f.states && !(f.states & (1u << ASPEN_STORE_FAILED)))
            break; /* the filter excludes failed jobs: nothing to retry */
        int64_t retried = 0;
        aspen_store_retry_skip *skips = NULL; /* left failed: another job holds their key */
        size_t n_skips = 0;
        if (aspen_engine_retry_failed_ex(eng, &f, &retried, &skips, &n_skips, &err) != 0) {
            r->rc = -1;
            snprintf(r->msg, sizeof r->msg, "%s", err.msg);
        } else if (n_skips) {
            /* the first one's reason in full, the count of the others */
            char why[900];
            aspen_store_retry_skip_message(&skips[0], "", why, sizeof why);
            r->failed = (int)n_skips;
            if (n_skips == 1)
                snprintf(r->msg, sizeof r->msg, "%s", why);
            else
                snprintf(r->msg, sizeof r->msg, "%s (and %zu more held by other jobs)", why,
                         n_skips - 1);
        }
        free(skips);
        r->done = (int)retried;
        break;
    }
    case ACT_DELETE:
        /* 500 a transaction (aspen_engine_delete_jobs: a batch whole or not at all); when a batch
         * left some (not finished), each of those is asked alone for the store's reason */
        for (size_t i = 0; i < r->n; i += 500) {
            size_t k = r->n - i < 500 ? r->n - i : 500;
            int64_t gone = 0;
            if (aspen_engine_delete_jobs(eng, r->ids + i, k, &gone, &err) != 0) {
                r->failed += (int)k;
                snprintf(r->msg, sizeof r->msg, "%s", err.msg);
                continue;
            }
            r->done += (int)gone;
            for (size_t j = i; (size_t)gone < k && j < i + k; j++) {
                if (aspen_engine_delete(eng, r->ids[j], &err) == 0) {
                    r->done++;
                } else if (err.code != ASPEN_ENGINE_ENOTFOUND) {
                    r->failed++;
                    snprintf(r->msg, sizeof r->msg, "%s", err.msg);
                }
            }
        }
        break;
    case ACT_DELETE_COLLECT: {
        /* the ids now, so that what the question counts is exactly what yes deletes */
        aspen_store_filter f;
        char buf[2048];
        if (tui_filter_parse(r->filter_text, &f, buf, sizeof buf, r->msg, sizeof r->msg) != 0) {
            r->rc = -1;
            break;
        }
        f.states = (f.states ? f.states : ~0u) & FINAL_STATES;
        if (!f.states)
            break; /* the filter wants unfinished jobs only: nothing can be deleted */
        f.order = ASPEN_STORE_ORDER_OLDEST;
        f.limit = 1000;
        f.offset = 0;
        size_t cap = 0;
        for (;;) {
            aspen_store_job *jobs = NULL;
            size_t got = 0;
            if (aspen_engine_list(eng, &f, &jobs, &got, &err) != 0) {
                r->rc = -1;
                snprintf(r->msg, sizeof r->msg, "%s", err.msg);
                break;
            }
            if (r->n + got > cap) {
                size_t ncap = cap ? cap * 2 : 1024;
                while (ncap < r->n + got)
                    ncap *= 2;
                int64_t *p = realloc(r->ids, ncap * sizeof *p);
                if (!p) {
                    aspen_store_jobs_free(jobs, got);
                    r->rc = -1;
                    snprintf(r->msg, sizeof r->msg, "out of memory listing the jobs to delete");
                    break;
                }
                r->ids = p;
                cap = ncap;
            }
            for (size_t i = 0; i < got; i++)
                r->ids[r->n++] = jobs[i].id;
            aspen_store_jobs_free(jobs, got);
            if (got < (size_t)f.limit)
                break;
            f.offset += f.limit;
        }
        break;
    }
    case ACT_QUEUE_CHECK: r->rc = queue_check_work(r); break;
    case ACT_CANCEL_COUNT: r->rc = cancel_count_work(r); break;
    case ACT_CANCEL_MATCHING: {
        aspen_store_filter f;
        char buf[2048];
        if (tui_filter_parse(r->filter_text, &f, buf, sizeof buf, r->msg, sizeof r->msg) != 0) {
            r->rc = -1;
            break;
        }
        if (aspen_engine_cancel_matching(eng, &f, &r->n_live, &r->n_running, &err) != 0) {
            r->rc = -1;
            snprintf(r->msg, sizeof r->msg, "%s", err.msg);
        }
        break;
    }
    case ACT_CORE:
        r->rc = tui_core_write(eng, r->first_id, r->path, r->msg, sizeof r->msg);
        break;
    case ACT_EXPORT:
        r->rc = tui_export_jsonl(eng, r->filter_text, r->path, &r->written, &r->stop, r->where,
                                 sizeof r->where, r->msg, sizeof r->msg);
        r->first_id = atomic_load(&r->written);
        break;
    case ACT_PAUSE:
        r->rc = aspen_engine_set_paused(eng, r->pause, &err);
        if (r->rc)
            snprintf(r->msg, sizeof r->msg, "%s", err.msg);
        break;
    case ACT_GET_JOB: {
        aspen_store_job j;
        r->seed = calloc(1, sizeof *r->seed);
        if (!r->seed) {
            r->rc = -1;
            snprintf(r->msg, sizeof r->msg, "out of memory");
            break;
        }
        r->rc = aspen_engine_get(eng, r->ids[0], &j, &err);
        if (r->rc) {
            snprintf(r->msg, sizeof r->msg, "%s", err.msg);
            break;
        }
        tui_seed *s = r->seed;
        s->have = true;
        s->handler = !aspen_engine_job_needs_vm(&j);
        snprintf(s->guest, sizeof s->guest, "%s",
                 s->handler ? (j.type ? j.type : "") : (j.binary_name ? j.binary_name : ""));
        snprintf(s->sha256, sizeof s->sha256, "%s", !s->handler && j.binary_sha256 ? j.binary_sha256 : "");
        s->payload = strdup(j.payload ? j.payload : "{}");
        s->timeout_ms = j.timeout_ms > 0 ? j.timeout_ms : 30000;
        s->priority = j.priority;
        s->attempts = j.max_attempts > 0 ? j.max_attempts : 3;
        s->memory_bytes = j.memory_bytes > 0 ? j.memory_bytes : 0;
        tui_tags_from_json(j.tags, s->tags, sizeof s->tags);
        snprintf(s->queue, sizeof s->queue, "%s", j.queue);
        aspen_store_job_clear(&j);
        break;
    }
    default: break;
    }
}

static void confirm_ask(tui_app *a, tui_confirm_kind kind, int64_t *ids, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static bool run_action(tui_app *a, act_req *r);
static void export_progress(tui_app *a);
static void submit_progress(tui_app *a);
static bool submit_stop(tui_app *a);
static void form_queue_checked(tui_app *a, const act_req *r);

static void act_done(uv_work_t *w, int status)
{
    act_req *r = w->data;
    tui_app *a = r->a;
    if (r->kind == ACT_EXPORT && a->quitting) /* said on the terminal once the screen is gone */
        snprintf(a->quit_note, sizeof a->quit_note, "aspen console: export to %s: %s", r->where,
                 r->rc ? r->msg : "finished");
    if (r->kind == ACT_SUBMIT && a->submitting == r)
        a->submitting = NULL;
    if (r->kind == ACT_SUBMIT && a->quitting && r->count > 1 && (r->stopped || r->rc)) {
        /* stopped by the quit: how many went in (each batch whole), said after the screen */
        if (r->done)
            snprintf(a->quit_note, sizeof a->quit_note,
                     "aspen console: submit stopped at quit: %d of %d jobs submitted (%lld..%lld), "
                     "the other %d not", r->done, r->count, (long long)r->first_id,
                     (long long)r->last_id, r->count - r->done);
        else
            snprintf(a->quit_note, sizeof a->quit_note,
                     "aspen console: submit stopped at quit: none of the %d jobs submitted",
                     r->count);
    }
    if (status == 0 && !a->quitting) {
        switch (r->kind) {
        case ACT_SUBMIT:
            if (r->rc && r->done)
                tui_set_status(a, true, "submit refused after %d of the %d jobs were submitted "
                               "(%lld..%lld; the other %d not): %s", r->done, r->count,
                               (long long)r->first_id, (long long)r->last_id, r->count - r->done,
                               r->msg);
            else if (r->rc)
                tui_set_status(a, true, "submit refused: %s", r->msg);
            else if (r->stopped)
                tui_set_status(a, false, "submit stopped (esc): %d of the %d jobs submitted "
                               "(%lld..%lld), the other %d not", r->done, r->count,
                               (long long)r->first_id, (long long)r->last_id,
                               r->count - r->done);
            else if (r->n_dup && r->count == 1)
                tui_set_status(a, false, "not submitted: %s", r->msg); /* names the job's id */
            else if (r->n_dup && !r->new_first)
                tui_set_status(a, false, "none of the %d submitted: %s", r->count, r->msg);
            else if (r->n_dup)
                tui_set_status(a, false, "submitted job %lld (%s); %d of the %d were duplicates "
                               "(nothing written for them): %s", (long long)r->new_first,
                               r->guest, r->n_dup, r->count, r->msg);
            else if (r->count == 1)
                tui_set_status(a, false, "submitted job %lld (%s)", (long long)r->first_id, r->guest);
            else
                tui_set_status(a, false, "submitted %d jobs: %lld..%lld (%s)", r->count,
                               (long long)r->first_id, (long long)r->last_id, r->guest);
            break;
        case ACT_CANCEL:
            if (r->failed)
                tui_set_status(a, true, "cancelled %d, %d refused: %s", r->done, r->failed, r->msg);
            else
                tui_set_status(a, false, "cancelled %d job%s%s", r->done, r->done == 1 ? "" : "s",
                               r->requested ? " (running ones are being stopped)" : "");
            break;
        case ACT_RERUN:
            if (r->failed)
                tui_set_status(a, true, "rerun: %d queued, %d refused: %s", r->done, r->failed, r->msg);
            else if (r->n_dup && !r->done)
                tui_set_status(a, true, "rerun: %s", r->msg);
            else if (r->n_dup)
                tui_set_status(a, true, "rerun: %d queued, %d duplicate%s: %s", r->done, r->n_dup,
                               r->n_dup == 1 ? "" : "s", r->msg);
            else if (r->done == 1)
                tui_set_status(a, false, "rerun queued as job %lld", (long long)r->first_id);
            else
                tui_set_status(a, false, "rerun %d jobs as %lld..%lld", r->done,
                               (long long)r->first_id, (long long)r->last_id);
            break;
        case ACT_PRIORITY:
            if (r->delta)
                a->edit_busy = false;
            if (r->failed && !r->done)
                tui_set_status(a, true, "priority: %s", r->msg);
            else if (r->failed)
                tui_set_status(a, true, "priority changed for %d, %d refused: %s", r->done,
                               r->failed, r->msg);
            else if (r->n == 1)
                tui_set_status(a, false, "job %lld: priority %lld", (long long)r->ids[0],
                               (long long)r->last_id);
            else
                tui_set_status(a, false, "priority changed for %d job%s", r->done,
                               r->done == 1 ? "" : "s");
            break;
        case ACT_SNOOZE: {
            char by[32];
            aspen_store_duration_format(r->delay_ms, by, sizeof by);
            if (r->failed && !r->done)
                tui_set_status(a, true, "snooze: %s", r->msg);
            else if (r->failed)
                tui_set_status(a, true, "%d snoozed by %s, %d refused: %s", r->done, by,
                               r->failed, r->msg);
            else if (r->n == 1)
                tui_set_status(a, false, "job %lld snoozed by %s (n runs it now)",
                               (long long)r->ids[0], by);
            else
                tui_set_status(a, false, "%d job%s snoozed by %s", r->done,
                               r->done == 1 ? "" : "s", by);
            break;
        }
        case ACT_RUN_NOW:
            if (r->failed && !r->done)
                tui_set_status(a, true, "run now: %s", r->msg);
            else if (r->failed)
                tui_set_status(a, true, "%d queued to run now, %d refused: %s", r->done, r->failed,
                               r->msg);
            else if (r->n == 1)
                tui_set_status(a, false, "job %lld queued: it runs now", (long long)r->ids[0]);
            else
                tui_set_status(a, false, "%d job%s queued to run now", r->done,
                               r->done == 1 ? "" : "s");
            break;
        case ACT_RETRY_FAILED:
            if (r->rc || r->failed)
                tui_set_status(a, true, "retried %d, %d refused: %s", r->done, r->failed, r->msg);
            else
                tui_set_status(a, false, "retried %d failed job%s", r->done, r->done == 1 ? "" : "s");
            break;
        case ACT_DELETE:
            if (r->failed)
                tui_set_status(a, true, "deleted %d, %d refused: %s", r->done, r->failed, r->msg);
            else
                tui_set_status(a, false, "deleted %d job%s", r->done, r->done == 1 ? "" : "s");
            break;
        case ACT_DELETE_COLLECT:
            if (r->rc)
                tui_set_status(a, true, "cannot delete: %s", r->msg);
            else if (r->n == 0)
                tui_set_status(a, false, "no finished job matches '%s': nothing to delete",
                               r->filter_text[0] ? r->filter_text : "(no filter)");
            else if (a->mode == TUI_MODE_MAIN) {
                confirm_ask(a, TUI_CONFIRM_DELETE, r->ids, r->n,
                            "Delete %zu finished job%s matching '%.300s' (attempts, logs too)?",
                            r->n, r->n == 1 ? "" : "s",
                            r->filter_text[0] ? r->filter_text : "(no filter)");
                r->ids = NULL; /* the question owns them */
            }
            break;
        case ACT_QUEUE_CHECK: form_queue_checked(a, r); break;
        case ACT_CANCEL_COUNT: {
            const char *ft = r->filter_text;
            if (r->rc)
                tui_set_status(a, true, "cannot cancel: %s", r->msg);
            else if (strcmp(ft, a->filter_text) != 0)
                /* counted for a filter that is no longer the one shown: not asked over it */
                tui_set_status(a, true, "the filter changed while the jobs were counted: press X "
                               "again to cancel the jobs matching '%.300s'", a->filter_text);
            else if (r->n_live == 0)
                tui_set_status(a, false, "no unfinished job matches '%.300s': nothing to cancel",
                               ft);
            else if (a->mode == TUI_MODE_MAIN) {
                char running[96] = "";
                if (r->n_running)
                    snprintf(running, sizeof running, " (%lld running: asked to stop)",
                             (long long)r->n_running);
                snprintf(a->confirm_filter, sizeof a->confirm_filter, "%s", ft);
                confirm_ask(a, TUI_CONFIRM_CANCEL_MATCHING, NULL, 0,
                            "Cancel %lld unfinished job%s matching '%.300s'%s?",
                            (long long)r->n_live, r->n_live == 1 ? "" : "s", ft, running);
            }
            break;
        }
        case ACT_CANCEL_MATCHING:
            if (r->rc)
                tui_set_status(a, true, "cancel refused, nothing cancelled: %s", r->msg);
            else if (!r->n_live && !r->n_running)
                tui_set_status(a, false, "no unfinished job matched '%.300s' any more: nothing "
                               "cancelled", r->filter_text);
            else if (!r->n_running)
                tui_set_status(a, false, "cancelled %lld job%s matching '%.300s'",
                               (long long)r->n_live, r->n_live == 1 ? "" : "s", r->filter_text);
            else
                tui_set_status(a, false, "cancelled %lld job%s matching '%.300s'; %lld running: "
                               "asked to stop (their workers stop them)", (long long)r->n_live,
                               r->n_live == 1 ? "" : "s", r->filter_text,
                               (long long)r->n_running);
            break;
        case ACT_CORE:
            tui_set_status(a, r->rc != 0, "%s", r->msg);
            break;
        case ACT_EXPORT:
            a->exporting = NULL;
            if (r->rc)
                tui_set_status(a, true, "export: %s (%lld written to %s)", r->msg,
                               (long long)r->first_id, r->where);
            else
                tui_set_status(a, false, "exported %lld job%s matching '%s' to %s",
                               (long long)r->first_id, r->first_id == 1 ? "" : "s",
                               r->filter_text[0] ? r->filter_text : "(no filter)", r->where);
            break;
        case ACT_PAUSE:
            if (r->rc)
                tui_set_status(a, true, "%s", r->msg);
            else
                /* the global switch (aspen pause): every queue, said so ("queue paused" read as
                 * one queue's, trial 22), and a queue paused on its own stays paused */
                tui_set_status(a, false, "%s",
                               r->pause ? "all queues paused: running jobs finish, nothing new "
                                          "starts (:resume)"
                                        : "all queues resumed (a queue paused on its own stays "
                                          "paused: p in the Queues pane)");
            break;
        case ACT_GET_JOB:
            if (r->rc)
                tui_set_status(a, true, "cannot copy job %lld: %s", (long long)r->ids[0], r->msg);
            else {
                open_form(a, r->seed);
                if (find_guest(a, r->seed) == SIZE_MAX) {
                    snprintf(a->form_msg, sizeof a->form_msg, "job %lld's guest '%s' is not offered "
                             "here: pick one (left/right)", (long long)r->ids[0], r->seed->guest);
                    a->form_ok = false;
                } else {
                    snprintf(a->form_msg, sizeof a->form_msg, "a copy of job %lld: change what you "
                             "like, ^S submits", (long long)r->ids[0]);
                }
            }
            break;
        default: break;
        }
        if ((r->kind == ACT_DELETE || r->kind == ACT_RETRY_FAILED || r->kind == ACT_CANCEL) &&
            r->done > 0)
            count_invalidate(a);
        if (r->kind == ACT_CANCEL_MATCHING && r->n_live + r->n_running > 0)
            count_invalidate(a); /* cancelled jobs leave a filter of unfinished states */
        start_fetch(a);
        start_stats(a);
        request_draw(a);
    }
    if (r->seed)
        free(r->seed->payload);
    free(r->seed);
    free(r->payload);
    free(r->ids);
    bool next_edit = r->kind == ACT_PRIORITY && r->delta && !a->quitting && a->edit_pending &&
                     a->edit_ids;
    free(r);
    if (next_edit) { /* the steps pressed while the last was in flight, as one */
        act_req *n = calloc(1, sizeof *n);
        if (n) {
            n->kind = ACT_PRIORITY;
            n->delta = a->edit_pending;
            n->ids = a->edit_ids;
            n->n = a->edit_n;
            a->edit_ids = NULL;
            a->edit_pending = 0;
            a->edit_busy = true;
            run_action(a, n);
        }
    }
}

/* false: not queued (r is freed) */
static bool run_action(tui_app *a, act_req *r)
{
    r->a = a;
    r->w.data = r;
    if (uv_queue_work(a->loop, &r->w, act_work, act_done) != 0) {
        free(r->payload);
        free(r->ids);
        free(r);
        return false;
    }
    return true;
}

/* ---- engine events (engine threads) -------------------------------------------------------------- */

static void on_event(const aspen_engine_event *ev, void *user)
{
    tui_app *a = user;
    pthread_mutex_lock(&a->evq_mu);
    switch (ev->type) {
    case ASPEN_ENGINE_EV_LOG:
    case ASPEN_ENGINE_EV_ENGINE: { /* braces: the later cases must not jump past e */
        if (a->evq_n >= 20000) {
            a->evq_dropped++;
            break;
        }
        if (a->evq_n == a->evq_cap) {
            size_t nc = a->evq_cap ? a->evq_cap * 2 : 256;
            tui_log_entry *p = realloc(a->evq_logs, nc * sizeof *p);
            if (!p) {
                a->evq_dropped++;
                break;
            }
            a->evq_logs = p;
            a->evq_cap = nc;
        }
        tui_log_entry *e = &a->evq_logs[a->evq_n];
        e->line = strdup(ev->message ? ev->message : "");
        if (!e->line)
            break;
        e->job_id = ev->type == ASPEN_ENGINE_EV_LOG ? ev->job_id : 0;
        e->attempt = ev->attempt;
        e->time_ms = aspen_store_now_ms();
        e->seq = 0;
        a->evq_n++;
        if (ev->type == ASPEN_ENGINE_EV_ENGINE)
            /* kept whole when it fits, else cut between characters with the marker (a bare
             * snprintf cut a 300-byte message inside a UTF-8 character: trial 23) */
            tui_copy_cut(ev->message ? ev->message : "", a->utf8, a->evq_engine_msg,
                         sizeof a->evq_engine_msg);
        break;
    }
    case ASPEN_ENGINE_EV_JOB_STATE:
        a->evq_jobs_changed = true;
        break;
    case ASPEN_ENGINE_EV_THROUGHPUT:
        if (ev->throughput) {
            a->evq_tp = *ev->throughput;
            a->evq_have_tp = true;
        }
        break;
    default: break;
    }
    pthread_mutex_unlock(&a->evq_mu);
    uv_async_send(&a->async);
}

static void on_async(uv_async_t *h)
{
    tui_app *a = h->data;
    pthread_mutex_lock(&a->evq_mu);
    tui_log_entry *logs = a->evq_logs;
    size_t n = a->evq_n;
    a->evq_logs = NULL;
    a->evq_n = a->evq_cap = 0;
    bool changed = a->evq_jobs_changed;
    a->evq_jobs_changed = false;
    char engine_msg[sizeof a->evq_engine_msg];
    memcpy(engine_msg, a->evq_engine_msg, sizeof engine_msg);
    a->evq_engine_msg[0] = '\0';
    if (a->evq_have_tp) {
        a->snap.throughput = a->evq_tp;
        a->evq_have_tp = false;
    }
    pthread_mutex_unlock(&a->evq_mu);
    bool one_job = false;
    for (size_t i = 0; i < n; i++) {
        tui_logbuf_push(&a->logs_all, logs[i].job_id, logs[i].attempt, logs[i].time_ms, 0,
                        logs[i].line);
        if (a->logs_job && logs[i].job_id == a->logs_job)
            one_job = true;
        free(logs[i].line);
    }
    free(logs);
    /* A note that starts were refused because their jobs were cancelled follows the user's own
     * cancel: it goes to the Logs pane (above) and leaves that cancel's result on the status line
     * while it is shown ("cancelled 99,951 jobs" was replaced within 0.5 s: trial 24). */
    bool cancel_echo = strstr(engine_msg, "cancelled (or changed) in the store as") != NULL;
    bool result_shown = !a->status_error && a->status[0] &&
                        (uint64_t)aspen_store_now_ms() < a->status_until_ms;
    if (engine_msg[0] && !(cancel_echo && result_shown))
        tui_set_status(a, true, "engine: %s", engine_msg);
    if (changed || one_job) {
        refresh_soon(a);
        snap_live(a);
    }
    if (n || changed || engine_msg[0])
        request_draw(a);
}

/* ---- the 1 s tick: throughput sample, refresh, ages move ---------------------------------------- */

static void on_tick(uv_timer_t *t)
{
    tui_app *a = t->data;
    tui_engines_tick(a);
    tui_metrics_tick(a);
    if (a->have_snap) {
        /* jobs/s is finished runs: jobs that ended succeeded or failed. A cancel is no
         * throughput (X over 100,000 queued jobs read as 1,850 jobs/s for a minute: trial 23),
         * nor is a delete (the max below) */
        int64_t final = a->snap.counts[ASPEN_STORE_SUCCEEDED] + a->snap.counts[ASPEN_STORE_FAILED];
        int64_t now = (int64_t)tui_mono_ms();
        if (a->last_final_ms) {
            double dt = (double)(now - a->last_final_ms) / 1000.0;
            /* a delete or purge lowers the counts: that is no negative throughput */
            int64_t done = final > a->last_final_total ? final - a->last_final_total : 0;
            double rate = dt > 0 ? (double)done / dt : 0;
            /* the header: the last minute's ticks summed, so the figure stays up while jobs
             * finished in it (one second's delta is 0.0 right after a burst) */
            a->rate_done[a->rate_next] = done;
            a->rate_dt[a->rate_next] = dt > 0 ? dt : 0;
            a->rate_next = (a->rate_next + 1) % TUI_RATE_WINDOW;
            if (a->rate_n < TUI_RATE_WINDOW)
                a->rate_n++;
            int64_t sum = 0;
            double secs = 0;
            for (size_t i = 0; i < a->rate_n; i++) {
                sum += a->rate_done[i];
                secs += a->rate_dt[i];
            }
            a->jobs_per_s = secs > 0 ? (double)sum / secs : 0;
            a->jobs_per_s_window = secs;
            /* the sparkline's second: this engine's own rate is fresher than the counts when it
             * is the only runner */
            if (a->snap.throughput.jobs_per_s > rate)
                rate = a->snap.throughput.jobs_per_s;
            if (a->n_spark == TUI_SPARK) {
                memmove(a->spark, a->spark + 1, (TUI_SPARK - 1) * sizeof a->spark[0]);
                a->n_spark--;
            }
            a->spark[a->n_spark++] = rate;
        }
        a->last_final_total = final;
        a->last_final_ms = now;
    }
    snap_live(a);
    start_stats(a);
    start_fetch(a);
    export_progress(a);
    submit_progress(a);
    if (++a->count_round % 5 == 0) /* a count may scan the whole store: every 5 s is enough */
        start_count(a);
    request_draw(a);
}

/* ---- quitting ------------------------------------------------------------------------------------ */

static void begin_quit(tui_app *a);

static void on_signal(uv_signal_t *s, int signum)
{
    tui_app *a = s->data;
    if (signum == SIGWINCH) {
        struct winsize ws;
        if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0 && ws.ws_col > 0)
            resizeterm(ws.ws_row, ws.ws_col);
        else {
            endwin();
            refresh();
        }
        draw_now(a);
        return;
    }
    begin_quit(a);
}

/* ---- input --------------------------------------------------------------------------------------- */

static int map_key(int ch)
{
    switch (ch) {
    case KEY_UP: return TUI_KEY_UP;
    case KEY_DOWN: return TUI_KEY_DOWN;
    case KEY_LEFT: return TUI_KEY_LEFT;
    case KEY_RIGHT: return TUI_KEY_RIGHT;
    case KEY_PPAGE: return TUI_KEY_PGUP;
    case KEY_NPAGE: return TUI_KEY_PGDN;
    case KEY_HOME: return TUI_KEY_HOME;
    case KEY_END: return TUI_KEY_END;
    case KEY_ENTER: case '\n': case '\r': return TUI_KEY_ENTER;
    case 27: return TUI_KEY_ESC;
    case '\t': return TUI_KEY_TAB;
    case KEY_BTAB: return TUI_KEY_BTAB;
    case KEY_BACKSPACE: case 127: case 8: return TUI_KEY_BACKSPACE;
    case KEY_DC: return TUI_KEY_DELETE;
    case 19: return TUI_KEY_CTRL_S;
    case 21: return TUI_KEY_CTRL_U;
    case KEY_RESIZE: return TUI_KEY_RESIZE;
    default: return ch;
    }
}

const tui_row *tui_selected_row(const tui_app *a)
{
    long local = a->cursor - a->win_offset;
    if (local < 0 || local >= (long)a->n_rows)
        return NULL;
    return &a->rows[local];
}

void tui_clear_error(tui_app *a)
{
    if (a->status_error)
        a->status[0] = '\0';
    a->status_error = false;
}

/* The ids an action applies to: the marked jobs, else the selected one (the detail's job in detail). */
static int64_t *target_ids(tui_app *a, size_t *n)
{
    if (a->view != TUI_VIEW_DETAIL && a->marks.n) {
        int64_t *ids = malloc(a->marks.n * sizeof *ids);
        if (!ids)
            return NULL;
        memcpy(ids, a->marks.ids, a->marks.n * sizeof *ids);
        *n = a->marks.n;
        return ids;
    }
    int64_t id = 0;
    if (a->view == TUI_VIEW_DETAIL)
        id = a->detail_id;
    else if (a->view == TUI_VIEW_JOBS && tui_selected_row(a))
        id = tui_selected_row(a)->id;
    if (!id)
        return NULL;
    int64_t *ids = malloc(sizeof *ids);
    if (ids) {
        ids[0] = id;
        *n = 1;
    }
    return ids;
}

/* quiet: as you type (a half-typed filter that does not parse yet says so only on enter) */
static bool apply_filter(tui_app *a, const char *text, bool quiet)
{
    aspen_store_filter f;
    char buf[2048], msg[512];
    if (tui_filter_parse(text, &f, buf, sizeof buf, msg, sizeof msg) != 0) {
        if (!quiet)
            tui_set_status(a, true, "filter: %s", msg);
        else /* as you type: said above the prompt, the list left as it was */
            snprintf(a->prompt_error, sizeof a->prompt_error, "filter: %s", msg);
        return false;
    }
    a->prompt_error[0] = '\0';
    if (strcmp(a->filter_text, text) == 0 && a->rows_loaded)
        return true; /* nothing changed: keep the cursor */
    tui_clear_error(a);
    snprintf(a->filter_text, sizeof a->filter_text, "%s", text);
    tui_filter_parse(a->filter_text, &a->filter, a->filter_buf, sizeof a->filter_buf, msg, sizeof msg);
    a->fetch_gen++;
    a->filter_gen = a->fetch_gen;
    a->filter_applied_at = a->key_at_ms > 0 ? a->key_at_ms : tui_mono_ms();
    a->open_pending = false;
    a->count_known = false;
    a->at_end = false;
    a->cursor = a->top = 0;
    a->cursor_id = 0;
    a->win_offset = 0;
    a->n_rows = 0;
    a->has_more = false;
    a->rows_loaded = false;
    a->fetch_again = false;
    if (a->fetch_busy)
        a->fetch_again = true;
    else
        start_fetch(a);
    start_count(a);
    return true;
}

/* ---- the back stack ------------------------------------------------------------------------------- */

const tui_pane_ops *tui_view_ops(tui_view v)
{
    static const tui_pane_ops *const ops[TUI_VIEW_COUNT] = {
        [TUI_VIEW_JOBS] = &tui_pane_jobs_ops,     [TUI_VIEW_VMS] = &tui_pane_vms_ops,
        [TUI_VIEW_LOGS] = &tui_pane_logs_ops,     [TUI_VIEW_DETAIL] = &tui_pane_detail_ops,
        [TUI_VIEW_HELP] = &tui_pane_help_ops,     [TUI_VIEW_ENGINES] = &tui_pane_engines_ops,
        [TUI_VIEW_SCHEDULES] = &tui_pane_schedules_ops,
        [TUI_VIEW_QUEUES] = &tui_pane_queues_ops,
        [TUI_VIEW_METRICS] = &tui_pane_metrics_ops,
    };
    return v < TUI_VIEW_COUNT ? ops[v] : ops[TUI_VIEW_JOBS];
}

static long *view_top(tui_app *a, tui_view v)
{
    return v == TUI_VIEW_DETAIL ? &a->detail_top : v == TUI_VIEW_HELP ? &a->help_top : NULL;
}

/* Shows the place on top of the stack: its view, its job, where it was scrolled to. */
static void show_place(tui_app *a, bool fresh)
{
    tui_place *p = &a->stack[a->depth - 1];
    a->view = p->view;
    for (int i = a->depth - 1; i >= 0; i--)
        if (a->stack[i].view < TUI_VIEW_DETAIL) {
            a->pane = (tui_pane)a->stack[i].view;
            break;
        }
    switch (p->view) {
    case TUI_VIEW_DETAIL:
        if (fresh || a->detail_id != p->job) {
            a->detail_loaded = false;
            tui_text_free(&a->detail);
        }
        a->detail_id = p->job;
        a->detail_top = fresh ? 0 : p->top;
        a->detail_left = 0;
        break;
    case TUI_VIEW_HELP: a->help_top = fresh ? 0 : p->top; break;
    case TUI_VIEW_LOGS:
        if (a->logs_job != p->job) {
            a->logs_job = p->job;
            a->logs_after_seq = 0;
            tui_logbuf_clear(&a->logs_one);
        }
        if (fresh) {
            a->follow = true;
            a->search_hit = -1;
        }
        break;
    default: break;
    }
    start_fetch(a); /* what this view shows (its needs()), now */
}

void tui_push(tui_app *a, tui_view v, int64_t job)
{
    tui_place *cur = &a->stack[a->depth - 1];
    long *top = view_top(a, cur->view);
    if (top)
        cur->top = *top;
    if (cur->view == v && cur->job == job)
        return;
    if (a->depth == TUI_STACK) { /* the oldest places go: esc still walks back a long way */
        memmove(a->stack + 1, a->stack + 2, (TUI_STACK - 2) * sizeof a->stack[0]);
        a->depth--;
    }
    a->stack[a->depth++] = (tui_place){.view = v, .job = job};
    a->mode = TUI_MODE_MAIN;
    show_place(a, true);
}

bool tui_back(tui_app *a)
{
    if (a->depth <= 1)
        return false;
    a->depth--;
    show_place(a, false);
    return true;
}

void tui_show_pane(tui_app *a, tui_pane p)
{
    a->depth = 1;
    a->stack[0] = (tui_place){.view = (tui_view)p};
    a->mode = TUI_MODE_MAIN;
    show_place(a, false);
}

long tui_page(const tui_app *a) { return a->lay.body_h > 3 ? a->lay.body_h - 2 : 1; }

bool tui_text_scroll(tui_app *a, long *top, tui_action act)
{
    long page = tui_page(a);
    switch (act) {
    case TUI_A_UP: *top -= 1; break;
    case TUI_A_DOWN: *top += 1; break;
    case TUI_A_PGUP: *top -= page; break;
    case TUI_A_PGDN: *top += page; break;
    case TUI_A_TOP: *top = 0; break;
    case TUI_A_BOTTOM: *top = 1L << 30; break; /* the drawing clamps it */
    default: return false;
    }
    if (*top < 0)
        *top = 0;
    return true;
}

/* ---- the submit form -------------------------------------------------------------------------------
 * Every opening starts from the defaults, or from a job's values (S): nothing stale or invalid
 * carries over. A field just tabbed into is "fresh": the first key typed (or a paste) replaces its
 * value, as in a dialog where tab selects the field's text. */


static void form_check(tui_app *a);
static void form_find_guest(tui_app *a);
static size_t guest_step(const tui_app *a, size_t sel, int dir);

static void form_focus(tui_app *a, int field)
{
    a->field = (field + TUI_F_N) % TUI_F_N;
    a->field_fresh = true;
    if (a->mode == TUI_MODE_SUBMIT && a->form_bad)
        form_check(a); /* a long summary explains the field the cursor is on */
}

static size_t find_guest(tui_app *a, const tui_seed *s)
{
    for (size_t i = 0; i < a->n_guests; i++) {
        const tui_guest *g = &a->guests[i];
        if (g->handler != s->handler)
            continue;
        if (strcmp(g->name, s->guest) == 0 || (s->sha256[0] && strcmp(g->sha256, s->sha256) == 0))
            return i;
    }
    if (!s->handler && s->sha256[0] && a->n_guests < TUI_MAX_GUESTS) {
        /* a binary only the store has: offered by its hash */
        tui_guest *g = &a->guests[a->n_guests];
        g->name = strdup(s->guest);
        if (g->name) {
            g->handler = false;
            snprintf(g->sha256, sizeof g->sha256, "%s", s->sha256);
            return a->n_guests++;
        }
    }
    return SIZE_MAX; /* not offered here (a handler this console lacks, a guest without a hash) */
}

static void form_fill(tui_app *a, const tui_seed *s)
{
    size_t found = s && s->have ? find_guest(a, s) : SIZE_MAX;
    /* no job to copy (or its guest is not here): the first guest offered, never a test guest */
    if (found == SIZE_MAX && a->n_guests)
        found = a->guests[0].hidden ? guest_step(a, 0, 1) : 0;
    a->guest_sel = found == SIZE_MAX ? 0 : found;
    tui_line_set(&a->f[TUI_F_GUEST], "");
    a->guest_is_path = a->guest_nomatch = false;
    a->guest_why[0] = '\0';
    const char *name = a->n_guests ? a->guests[a->guest_sel].name : "";
    a->f[TUI_F_PAYLOAD].multiline = true;
    tui_line_set(&a->f[TUI_F_PAYLOAD], s && s->have && s->payload ? s->payload
                                                                  : tui_guest_example_payload(name));
    char n[32];
    /* as aspen submit --timeout takes it: a duration, or a bare number of milliseconds */
    aspen_store_duration_format(s && s->have ? s->timeout_ms : 30000, n, sizeof n);
    tui_line_set(&a->f[TUI_F_TIMEOUT], n);
    /* empty: the engine's default (the job's own size when copying one that gave one) */
    tui_memory_format(s && s->have ? s->memory_bytes : 0, n, sizeof n);
    tui_line_set(&a->f[TUI_F_MEMORY], n);
    snprintf(n, sizeof n, "%lld", s && s->have ? s->priority : 0);
    tui_line_set(&a->f[TUI_F_PRIORITY], n);
    snprintf(n, sizeof n, "%lld", s && s->have ? s->attempts : 3);
    tui_line_set(&a->f[TUI_F_ATTEMPTS], n);
    tui_line_set(&a->f[TUI_F_COUNT], "1");
    tui_line_set(&a->f[TUI_F_TAGS], s && s->have ? s->tags : "");
    tui_line_set(&a->f[TUI_F_QUEUE], s && s->have && s->queue[0] ? s->queue : "default");
    tui_line_set(&a->f[TUI_F_UNIQUE], ""); /* a copy is a new submit: no rule unless given */
    a->payload_touched = s && s->have;
    a->form_queue_checked[0] = a->form_queue_near[0] = '\0'; /* looked up again at submit */
    a->form_queue_missing = a->form_queue_checking = false;
    a->form_queue_gen++; /* a look-up still under way was for the form before: dropped */
    form_focus(a, TUI_F_GUEST);
    form_check(a);
}

static void load_guests(tui_app *a);

static void open_form(tui_app *a, const tui_seed *s)
{
    load_guests(a); /* what the guest directory holds now: a guest copied in since is offered */
    form_fill(a, s);
    a->mode = TUI_MODE_SUBMIT;
}

static bool parse_num(const char *s, long long lo, long long hi, long long *out)
{
    char *end;
    errno = 0;
    while (*s == ' ')
        s++;
    long long v = strtoll(s, &end, 10);
    while (*end == ' ')
        end++;
    if (!*s || *end || errno || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

/* The Unique field, as `aspen submit --unique...` takes its parts: words separated by blanks,
 * for=D (--unique-for) and states=S,... (--unique-states) anywhere, and the rest: "*" (--unique:
 * derived from type, guest and payload), fields=a,b.c (--unique-fields) or the key itself
 * (--unique-key; its words joined by one blank; a word "*" is never part of it). Empty: no rule. One field rather than four, so
 * the form still fits 24 rows with the payload's lines. 1 a rule into r, 0 none, -1 refused
 * (msg says which part and why). The key and fields are checked by the store's own
 * aspen_store_unique_key against the payload, so what it would refuse is said here. */
static int parse_unique(const char *text, const char *payload, act_req *r, char *msg, size_t cap)
{
    char buf[2048];
    if (strlen(text) >= sizeof buf) {
        snprintf(msg, cap, "unique: at most %zu bytes", sizeof buf - 1);
        return -1;
    }
    snprintf(buf, sizeof buf, "%s", text);
    aspen_store_unique *u = &r->unique;
    *u = (aspen_store_unique){0};
    char key[sizeof buf] = "";
    bool derived = false, any = false;
    aspen_store_error se = {0};
    for (char *save = NULL, *w = strtok_r(buf, " \t", &save); w;
         w = strtok_r(NULL, " \t", &save)) {
        any = true;
        if (!strncmp(w, "for=", 4)) {
            if (aspen_store_duration_parse(w + 4, &u->period_ms, &se) != 0) {
                snprintf(msg, cap, "unique for=: %s", se.msg);
                return -1;
            }
        } else if (!strncmp(w, "states=", 7)) {
            if (aspen_store_states_parse(w + 7, &u->states, &se) != 0) {
                snprintf(msg, cap, "unique states=: %s", se.msg);
                return -1;
            }
        } else if (!strncmp(w, "fields=", 7)) {
            if (r->ufields[0] || derived || key[0]) {
                snprintf(msg, cap, "unique: give the key one way: a key, *, or fields=a,b");
                return -1;
            }
            if (!w[7]) {
                snprintf(msg, cap, "unique fields=: name the payload fields (fields=user,order.id)");
                return -1;
            }
            if (strlen(w + 7) >= sizeof r->ufields) {
                snprintf(msg, cap, "unique fields=: at most %zu bytes", sizeof r->ufields - 1);
                return -1;
            }
            snprintf(r->ufields, sizeof r->ufields, "%s", w + 7);
        } else if (!strcmp(w, "*")) { /* a word of its own: never part of a key */
            if (r->ufields[0] || derived || key[0]) {
                snprintf(msg, cap, "unique: give the key one way: a key, *, or fields=a,b");
                return -1;
            }
            derived = true;
        } else {
            if (r->ufields[0] || derived) {
                snprintf(msg, cap, "unique: give the key one way: a key, *, or fields=a,b");
                return -1;
            }
            size_t l = strlen(key);
            snprintf(key + l, sizeof key - l, "%s%s", l ? " " : "", w);
        }
    }
    if (!any)
        return 0;
    if (!key[0] && !derived && !r->ufields[0]) {
        snprintf(msg, cap, "unique: for= and states= need a key: a key, * (from the guest and "
                           "payload) or fields=a,b");
        return -1;
    }
    if (strlen(key) > ASPEN_STORE_UNIQUE_KEY_MAX) {
        snprintf(msg, cap, "unique: the key is %zu bytes; at most %d", strlen(key),
                 ASPEN_STORE_UNIQUE_KEY_MAX);
        return -1;
    }
    snprintf(r->ukey, sizeof r->ukey, "%s", key);
    u->key = r->ukey[0] ? r->ukey : NULL;
    u->fields = r->ufields[0] ? r->ufields : NULL;
    if (!payload)
        return 1; /* the rule's own words only: the payload is not JSON (said on its own) */
    /* the store's checks of the key and the fields (against this payload), before sending */
    aspen_store_job_spec probe = {.type = "vm_execute", .payload = payload, .unique = u};
    char out[ASPEN_STORE_UNIQUE_KEY_MAX + 1];
    if (aspen_store_unique_key(&probe, out, sizeof out, &se) != 0) {
        snprintf(msg, cap, "unique: %s", se.msg);
        return -1;
    }
    return 1;
}

/* Every field checked at once, after each edit: a->form_bad marks the invalid ones and form_msg
 * says what is wrong with each on one line (a fix to one field does not hide the next one's
 * problem until the next submit). Into v[] (timeout, priority, attempts, count) and *qname
 * when given. Cheap: no store reads (the unique rule is checked against the payload only). */
/* the form's timeout, as aspen submit --timeout's bound (cli/cmd_jobs.c): a day */
#define TUI_TIMEOUT_MAX_MS 86400000LL

static const struct {
    int field;
    const char *name;
    long long lo, hi;
} form_nums[] = {{TUI_F_PRIORITY, "priority", ASPEN_STORE_PRIORITY_MIN, ASPEN_STORE_PRIORITY_MAX},
                 {TUI_F_ATTEMPTS, "attempts", 1, 100},
                 {TUI_F_COUNT, "count", 1, 100000}};

static void form_queue_name(const tui_app *a, char *qname, size_t cap, const char **raw)
{
    const char *queue = a->f[TUI_F_QUEUE].buf;
    while (*queue == ' ')
        queue++;
    snprintf(qname, cap, "%s", *queue ? queue : "default");
    for (size_t l = strlen(qname); l > 0 && qname[l - 1] == ' '; l--)
        qname[l - 1] = '\0'; /* trailing blanks are not part of the name */
    *raw = queue;
}

/* The unique field's problems in a few words, every bad part named ("bad for=10x, states=queud";
 * the summary puts "unique: " first), for the summary of several bad fields, where the store's
 * whole messages (or even "is not a duration") would not fit the rows under the form at 80
 * columns beside a JSON error; the field alone gets them in full. "" when the parts parse (the
 * problem is the key: the full message then). */
static void unique_brief(const char *text, char *out, size_t cap)
{
    char buf[2048];
    size_t w = 0;
    out[0] = '\0';
    snprintf(buf, sizeof buf, "%s", text);
    aspen_store_error se = {0};
    for (char *save = NULL, *word = strtok_r(buf, " \t", &save); word;
         word = strtok_r(NULL, " \t", &save)) {
        int64_t ms;
        unsigned states;
        bool bad = (!strncmp(word, "for=", 4) &&
                    aspen_store_duration_parse(word + 4, &ms, &se) != 0) ||
                   (!strncmp(word, "states=", 7) &&
                    aspen_store_states_parse(word + 7, &states, &se) != 0);
        if (!bad)
            continue;
        int k = snprintf(out + w, cap - w, "%s%.40s", w ? ", " : "bad ", word);
        if (k < 0 || (size_t)k >= cap - w)
            break;
        w += (size_t)k;
    }
}

/* The Memory field: empty is the engine's default (0), else a size as --memory takes it. */
static int form_memory(const tui_app *a, int64_t *bytes, aspen_engine_error *err)
{
    const char *m = a->f[TUI_F_MEMORY].buf;
    *bytes = 0;
    if (!m[strspn(m, " \t")])
        return 0;
    return aspen_engine_memory_parse(m, bytes, err);
}

/* The queue name was looked up at the last submit and is not in the store: the next submit of
 * that name creates it (the user was told, form_queue_note). */
static bool form_queue_new(const tui_app *a, const char *qname)
{
    return a->form_queue_missing && strcmp(a->form_queue_checked, qname) == 0;
}

/* What the form says of a queue that does not exist: the nearest one, and that a second submit
 * creates it (as aspen submit's --create-queue; never on the first, so a typo is seen). */
static void form_queue_note(tui_app *a, const char *qname)
{
    char near[ASPEN_STORE_QUEUE_NAME_MAX + 32] = "";
    if (a->form_queue_near[0])
        snprintf(near, sizeof near, " (did you mean '%s'?)", a->form_queue_near);
    snprintf(a->form_msg, sizeof a->form_msg, "no queue '%s'%s: ^S (or enter on [ Submit ]) "
             "again creates it and submits; or fix the Queue field", qname, near);
}

static void form_check(tui_app *a)
{
    /* why: the full reason, shown when one field is wrong; brief: the rule in a few words, when
     * several are (so all of them fit the rows under the form at 80 columns) */
    char why[TUI_F_N][256], brief[TUI_F_N][256];
    unsigned bad = 0;
    memset(why, 0, sizeof why);
    memset(brief, 0, sizeof brief);
    if (a->guest_is_path && a->guest_why[0]) {
        snprintf(why[TUI_F_GUEST], sizeof why[0], "%s", a->guest_why);
        bad |= 1u << TUI_F_GUEST;
    } else if (a->guest_nomatch) {
        /* drawn escaped (tui_put), as every message */
        const char *shown = a->f[TUI_F_GUEST].buf;
        /* a typo ("echo-wrkr") gets the nearest offered name, as aspen submit's refusal gives */
        const char *names[256];
        size_t nn = 0;
        for (size_t i = 0; i < a->n_guests && nn < sizeof names / sizeof names[0]; i++)
            if (!a->guests[i].hidden)
                names[nn++] = a->guests[i].name;
        const char *near = aspen_store_nearest(shown, strlen(shown), names, nn);
        char hint[96] = "", bhint[96] = "";
        if (near) {
            snprintf(hint, sizeof hint, " (did you mean '%.60s'?)", near);
            snprintf(bhint, sizeof bhint, " (%.40s?)", near);
        }
        snprintf(why[TUI_F_GUEST], sizeof why[0], "no guest or type offered here is or contains "
                 "'%.60s'%s: left/right to pick one, or type a guest file's path", shown, hint);
        snprintf(brief[TUI_F_GUEST], sizeof brief[0], "none is '%.20s'%s", shown, bhint);
        bad |= 1u << TUI_F_GUEST;
    } else if (!a->n_guests && !a->guest_is_path) {
        snprintf(why[TUI_F_GUEST], sizeof why[0], "none to run: build them with make build");
        bad |= 1u << TUI_F_GUEST;
    }
    aspen_engine_error err = {0};
    if (aspen_engine_check_payload(a->f[TUI_F_PAYLOAD].buf, &err) != 0) {
        /* where it went wrong first, then what was expected, the parser's token cut short: the
         * whole message (a long string's text after "near") ran past the rows under the form at
         * 80 columns and its end was cut */
        char place[256];
        bool at = tui_json_error_brief(err.msg, 24, place, sizeof place);
        snprintf(why[TUI_F_PAYLOAD], sizeof why[0], "%s%s", at ? "not JSON at " : "", place);
        at = tui_json_error_brief(err.msg, 12, place, sizeof place);
        snprintf(brief[TUI_F_PAYLOAD], sizeof brief[0], "%s%s", at ? "not JSON at " : "", place);
        bad |= 1u << TUI_F_PAYLOAD;
    }
    int64_t tmo = 0;
    aspen_store_error te = {0};
    if (aspen_store_ms_parse(a->f[TUI_F_TIMEOUT].buf, 1, TUI_TIMEOUT_MAX_MS, &tmo, &te) != 0) {
        snprintf(why[TUI_F_TIMEOUT], sizeof why[0], "%s", te.msg);
        snprintf(brief[TUI_F_TIMEOUT], sizeof brief[0], "30s, 5m, 1h or ms, to 24h");
        bad |= 1u << TUI_F_TIMEOUT;
    }
    int64_t mem = 0;
    aspen_engine_error me = {0};
    if (form_memory(a, &mem, &me) != 0) {
        snprintf(why[TUI_F_MEMORY], sizeof why[0], "%s", me.msg);
        snprintf(brief[TUI_F_MEMORY], sizeof brief[0], "64K to 1G, like 1M or 512K");
        bad |= 1u << TUI_F_MEMORY;
    }
    for (size_t i = 0; i < sizeof form_nums / sizeof form_nums[0]; i++) {
        long long v;
        if (!parse_num(a->f[form_nums[i].field].buf, form_nums[i].lo, form_nums[i].hi, &v)) {
            snprintf(why[form_nums[i].field], sizeof why[0], "want a whole number from %lld to %lld",
                     form_nums[i].lo, form_nums[i].hi);
            snprintf(brief[form_nums[i].field], sizeof brief[0], "%lld to %lld", form_nums[i].lo,
                     form_nums[i].hi);
            bad |= 1u << form_nums[i].field;
        }
    }
    /* the queue: a name the store takes, said here before anything is sent */
    char qname[ASPEN_STORE_QUEUE_NAME_MAX + 1];
    const char *raw;
    form_queue_name(a, qname, sizeof qname, &raw);
    aspen_store_error qe = {0};
    if (strlen(raw) > ASPEN_STORE_QUEUE_NAME_MAX || aspen_store_queue_name_check(qname, &qe) != 0) {
        snprintf(why[TUI_F_QUEUE], sizeof why[0], "%s",
                 qe.msg[0] ? qe.msg : "a queue name is at most 64 characters");
        snprintf(brief[TUI_F_QUEUE], sizeof brief[0], "1 to %d letters, digits, _ - .",
                 ASPEN_STORE_QUEUE_NAME_MAX);
        bad |= 1u << TUI_F_QUEUE;
    }
    /* the unique rule, against this payload; when the payload is not JSON its own words still
     * (a bad for= or states= was left out of the count and the marks while the payload was
     * wrong too) */
    act_req *probe = calloc(1, sizeof *probe);
    bool payload_ok = !(bad & (1u << TUI_F_PAYLOAD));
    if (probe && parse_unique(a->f[TUI_F_UNIQUE].buf, payload_ok ? a->f[TUI_F_PAYLOAD].buf : NULL,
                              probe, why[TUI_F_UNIQUE], sizeof why[0]) < 0) {
        bad |= 1u << TUI_F_UNIQUE; /* its words name the field and the part: "unique for=: ..." */
        unique_brief(a->f[TUI_F_UNIQUE].buf, brief[TUI_F_UNIQUE], sizeof brief[0]);
    }
    free(probe);
    static const char *names[] = {"guest", "payload", "timeout", "priority", "attempts", "count",
                                  "tags", "queue", "unique", "memory"};
    a->form_bad = bad;
    a->form_ok = !bad;
    int n_bad = 0;
    for (int f = 0; f < TUI_F_SUBMIT; f++)
        n_bad += (bad >> f) & 1;
    if (!bad) {
        /* a bare number is milliseconds, as aspen submit --timeout takes it: said, since the
         * form took seconds before (600 was ten minutes, now 600 ms) */
        const char *t = a->f[TUI_F_TIMEOUT].buf;
        while (*t == ' ')
            t++;
        size_t digits = strspn(t, "0123456789");
        bool bare = digits && !t[digits + strspn(t + digits, " ")];
        char d[32];
        aspen_store_duration_format(tmo, d, sizeof d);
        if (form_queue_new(a, qname)) {
            form_queue_note(a, qname);
            return;
        }
        snprintf(a->form_msg, sizeof a->form_msg, "payload is valid JSON%s%s%s",
                 bare ? "; timeout " : "", bare ? d : "",
                 bare ? " (a bare number is milliseconds: 30s, 5m, 1h)" : "");
        return;
    }
    /* Every bad field with its rule (tier 0). When that is more than the rows under the form
     * (six fields or more at 80 columns: the end, and the fields there, were cut with "..."),
     * the field the cursor is on and the payload keep theirs, the others are named (tier 1:
     * each says its rule when the cursor reaches it), then only named (tier 2). */
    for (int tier = 0; tier < 3; tier++) {
        size_t w = 0;
        if (n_bad > 1) {
            int k = snprintf(a->form_msg, sizeof a->form_msg, "%d fields to fix (marked !): ",
                             n_bad);
            w = k > 0 ? (size_t)k : 0;
        }
        bool first = true, named = false;
        for (int pass = 0; pass < 2; pass++) /* the explained fields, then the named ones */
            for (int f = 0; f < TUI_F_SUBMIT && w < sizeof a->form_msg; f++) {
                if (!(bad & (1u << f)))
                    continue;
                bool explain = tier == 0 || (tier == 1 && (f == a->field || f == TUI_F_PAYLOAD));
                if (explain != (pass == 0))
                    continue;
                int k;
                if (!explain)
                    k = snprintf(a->form_msg + w, sizeof a->form_msg - w, "%s%s",
                                 named ? ", " : first ? "also " : "; also ", names[f]);
                else if (f == TUI_F_UNIQUE && !(n_bad > 1 && brief[f][0]))
                    /* parse_unique's words start with the field's name */
                    k = snprintf(a->form_msg + w, sizeof a->form_msg - w, "%s%s",
                                 first ? "" : "; ", why[f]);
                else
                    k = snprintf(a->form_msg + w, sizeof a->form_msg - w, "%s%s: %s",
                                 first ? "" : "; ", names[f],
                                 n_bad > 1 && brief[f][0] ? brief[f] : why[f]);
                if (k < 0)
                    break;
                w += (size_t)k;
                first = false;
                named |= !explain;
            }
        if (n_bad < 2 || tui_form_msg_fits(a->form_msg))
            break;
    }
}

/* The Guest field's text as a shell would hand it to aspen submit: a leading "~/" (or a lone "~")
 * is $HOME, as a user typing a path expects; anything else as typed. Cut at cap (the caller's
 * length check then refuses it). Returns out. */
static const char *form_guest_text(const tui_app *a, char *out, size_t cap)
{
    const char *t = a->f[TUI_F_GUEST].buf, *home = getenv("HOME");
    if (t[0] == '~' && (t[1] == '/' || t[1] == '\0') && home && *home)
        snprintf(out, cap, "%s%s", home, t + 1);
    else
        snprintf(out, cap, "%s", t);
    return out;
}

static void form_submit(tui_app *a)
{
    if (a->submitting) {
        /* one at a time: a second would interleave its ids with the first's */
        snprintf(a->form_msg, sizeof a->form_msg, "a submit is under way (%lld of %d jobs): "
                 "wait for it, or esc the form and esc again to stop it",
                 (long long)atomic_load(&a->submitting->submitted), a->submitting->count);
        return;
    }
    if (a->guest_is_path)
        form_find_guest(a); /* checked again: the file may have changed since it was typed */
    form_check(a);
    if (a->form_bad) {
        /* to the first field to fix; its value selected unless it is text to correct */
        int f = 0;
        while (f < TUI_F_SUBMIT && !(a->form_bad & (1u << f)))
            f++;
        a->field = f;
        a->field_fresh = f != TUI_F_PAYLOAD && f != TUI_F_UNIQUE &&
                         !(f == TUI_F_GUEST && a->f[f].len); /* a typed path: to correct it */
        return;
    }
    long long v[3];
    for (int i = 0; i < 3; i++)
        parse_num(a->f[form_nums[i].field].buf, form_nums[i].lo, form_nums[i].hi, &v[i]);
    int64_t tmo = 0;
    (void)aspen_store_ms_parse(a->f[TUI_F_TIMEOUT].buf, 1, TUI_TIMEOUT_MAX_MS, &tmo, NULL);
    char qname[ASPEN_STORE_QUEUE_NAME_MAX + 1];
    const char *raw;
    form_queue_name(a, qname, sizeof qname, &raw);
    if (a->form_queue_checking)
        return; /* the look-up below is under way: its answer submits or says why not */
    if (strcmp(qname, "default") != 0 && strcmp(qname, a->form_queue_checked) != 0) {
        /* a queue other than default is looked up first, on the pool (the form stays open):
         * a typo used to make a new queue silently, whose jobs no worker --queues served */
        act_req *q = calloc(1, sizeof *q);
        if (!q)
            return;
        q->kind = ACT_QUEUE_CHECK;
        q->queue_gen = ++a->form_queue_gen;
        snprintf(q->queue, sizeof q->queue, "%s", qname);
        a->form_queue_checking = true;
        snprintf(a->form_msg, sizeof a->form_msg, "looking up queue '%s'...", qname);
        if (!run_action(a, q)) {
            a->form_queue_checking = false;
            snprintf(a->form_msg, sizeof a->form_msg, "could not look up queue '%s' (the "
                     "console's thread pool refused the work): ^S to try again", qname);
        }
        return;
    }
    act_req *r = calloc(1, sizeof *r);
    if (!r)
        return;
    int u = parse_unique(a->f[TUI_F_UNIQUE].buf, a->f[TUI_F_PAYLOAD].buf, r, a->form_msg,
                         sizeof a->form_msg);
    if (u < 0) {
        free(r);
        a->form_ok = false;
        a->field = TUI_F_UNIQUE;
        a->field_fresh = false; /* to fix the part that is wrong, not to type it all again */
        return;
    }
    r->want_unique = u > 0;
    snprintf(r->queue, sizeof r->queue, "%s", qname);
    r->payload = strdup(a->f[TUI_F_PAYLOAD].buf);
    if (!r->payload) {
        free(r);
        return;
    }
    r->kind = ACT_SUBMIT;
    if (a->guest_is_path) { /* the file typed, as aspen submit PATH takes it */
        char typed[8192];
        snprintf(r->guest, sizeof r->guest, "%s", form_guest_text(a, typed, sizeof typed));
    } else {
        const tui_guest *g = &a->guests[a->guest_sel];
        snprintf(r->guest, sizeof r->guest, "%s", g->name);
        r->handler = g->handler;
        snprintf(r->sha256, sizeof r->sha256, "%s", g->sha256);
    }
    aspen_engine_error me = {0};
    (void)form_memory(a, &r->memory_bytes, &me); /* form_check passed it */
    snprintf(r->tags_json, sizeof r->tags_json, "%s", a->f[TUI_F_TAGS].buf);
    r->timeout_ms = tmo;
    r->priority = (int)v[0];
    r->attempts = (int)v[1];
    r->count = (int)v[2];
    a->mode = TUI_MODE_MAIN;
    tui_show_pane(a, TUI_PANE_JOBS);
    if (r->count > TUI_SUBMIT_BATCH) {
        a->submitting = r; /* the tick shows its progress; esc stops it */
        tui_clear_error(a);
        if (!run_action(a, r)) { /* r is freed */
            a->submitting = NULL;
            tui_set_status(a, true, "submit: could not start it (the console's thread pool "
                           "refused the work): try again");
            return;
        }
        submit_progress(a);
        return;
    }
    tui_set_status(a, false, "submitting %d job%s...", r->count, r->count == 1 ? "" : "s");
    run_action(a, r);
}

/* The answer of the Queue field's look-up (ACT_QUEUE_CHECK). Only for the form still open on the
 * same queue name: closed meanwhile, nothing is sent; the name edited, the next submit looks the
 * new one up. A queue that exists is submitted to now; one that does not is said, with the
 * nearest name, and a second submit creates it. */
static void form_queue_checked(tui_app *a, const act_req *r)
{
    /* the answer to an older look-up (the form closed and opened again since, and a new one was
     * asked): only the newest may submit, or one ^S would send twice */
    if (r->queue_gen != a->form_queue_gen)
        return;
    a->form_queue_checking = false;
    char qname[ASPEN_STORE_QUEUE_NAME_MAX + 1];
    const char *raw;
    form_queue_name(a, qname, sizeof qname, &raw);
    if (a->mode != TUI_MODE_SUBMIT || strcmp(qname, r->queue) != 0) {
        if (a->mode == TUI_MODE_SUBMIT)
            form_check(a);
        return;
    }
    if (r->rc) {
        snprintf(a->form_msg, sizeof a->form_msg, "queue '%s': %s; nothing sent (^S tries "
                 "again)", qname, r->msg);
        a->form_ok = false;
        return;
    }
    snprintf(a->form_queue_checked, sizeof a->form_queue_checked, "%s", qname);
    snprintf(a->form_queue_near, sizeof a->form_queue_near, "%s", r->near);
    a->form_queue_missing = !r->queue_exists;
    if (r->queue_exists) {
        form_submit(a);
        return;
    }
    form_check(a); /* says so (form_queue_note), unless another field went bad meanwhile */
}

/* The next (dir 1) or previous (dir -1) guest left/right offers from sel: hidden ones skipped. */
static size_t guest_step(const tui_app *a, size_t sel, int dir)
{
    size_t n = a->n_guests, i = sel;
    for (size_t k = 0; k < n; k++) {
        i = (i + n + (size_t)(dir > 0 ? 1 : n - 1)) % n;
        if (!a->guests[i].hidden)
            return i;
    }
    return sel; /* every one hidden: stay */
}

static void form_set_guest(tui_app *a, size_t sel)
{
    const char *before = a->guests[a->guest_sel].name;
    a->guest_sel = sel;
    /* the example follows the guest until the payload is edited */
    if (!a->payload_touched || strcmp(a->f[TUI_F_PAYLOAD].buf, tui_guest_example_payload(before)) == 0) {
        tui_line_set(&a->f[TUI_F_PAYLOAD], tui_guest_example_payload(a->guests[sel].name));
        a->payload_touched = false;
        form_check(a);
    }
}

/* Whether want names the file form_find_guest checked last, unchanged since (st: its stat now). */
static bool form_guest_unchanged(const tui_app *a, const char *want, struct stat *st)
{
    if (!a->guest_checked || strcmp(a->guest_checked, want) != 0 || stat(want, st) != 0)
        return false;
    const struct stat *o = &a->guest_checked_st;
    return st->st_dev == o->st_dev && st->st_ino == o->st_ino && st->st_size == o->st_size &&
           st->st_mtim.tv_sec == o->st_mtim.tv_sec && st->st_mtim.tv_nsec == o->st_mtim.tv_nsec;
}

/* Keeps the verdict of a check of want (a->guest_why) for form_guest_unchanged; a path that does
 * not stat is not kept (checking it again costs only the stat). */
static void form_guest_remember(tui_app *a, const char *want)
{
    free(a->guest_checked);
    a->guest_checked = NULL;
    if (stat(want, &a->guest_checked_st) != 0 || !(a->guest_checked = strdup(want)))
        return;
    snprintf(a->guest_checked_why, sizeof a->guest_checked_why, "%s", a->guest_why);
}

/* What was typed into Guest/type, as aspen submit takes its GUEST: a path when it has a '/' or
 * names an existing file (and is no guest's or type's exact name), checked now as a submit would
 * check it; else the guest or type named so ("echo": the built-in type, not echo-worker), else the
 * first offered one whose name contains it, else a test guest's. Text that matches none is
 * marked invalid: the form never submits a guest other than the one shown. */
static void form_find_guest(tui_app *a)
{
    char typed[8192];
    const char *want = form_guest_text(a, typed, sizeof typed);
    a->guest_is_path = a->guest_nomatch = false;
    a->guest_why[0] = '\0';
    if (!a->f[TUI_F_GUEST].len)
        return;
    bool exact = false;
    for (size_t i = 0; i < a->n_guests && !exact; i++)
        exact = strcmp(a->guests[i].name, want) == 0;
    struct stat st;
    if (strchr(want, '/') || (!exact && stat(want, &st) == 0)) { /* as the engine resolves it */
        a->guest_is_path = true;
        aspen_engine_error err = {0};
        if (strlen(want) >= sizeof ((act_req *)0)->guest)
            snprintf(a->guest_why, sizeof a->guest_why, "a guest path is at most %zu bytes",
                     sizeof ((act_req *)0)->guest - 1);
        else if (form_guest_unchanged(a, want, &st))
            snprintf(a->guest_why, sizeof a->guest_why, "%s", a->guest_checked_why);
        else {
            if (aspen_engine_check_guest(want, NULL, &err) != 0)
                snprintf(a->guest_why, sizeof a->guest_why, "%s", err.msg);
            form_guest_remember(a, want);
        }
        return;
    }
    for (int pass = 0; pass < 3; pass++)
        for (size_t i = 0; i < a->n_guests; i++) {
            const tui_guest *g = &a->guests[i];
            bool hit = pass == 0   ? strcmp(g->name, want) == 0
                       : pass == 1 ? !g->hidden && strstr(g->name, want)
                                   : strstr(g->name, want) != NULL;
            if (hit) {
                form_set_guest(a, i);
                return;
            }
        }
    a->guest_nomatch = true;
}

/* Text into the focused field: typed keys and pastes both. */
static void form_text(tui_app *a, const char *text, size_t n)
{
    if (a->field == TUI_F_SUBMIT)
        return;
    tui_line *l = &a->f[a->field];
    if (a->field_fresh)
        tui_line_set(l, "");
    a->field_fresh = false;
    if (!tui_line_insert(l, text, n)) {
        snprintf(a->form_msg, sizeof a->form_msg, "too long: a field takes %d bytes", TUI_LINE_MAX - 1);
        a->form_ok = false;
        return;
    }
    if (a->field == TUI_F_GUEST)
        form_find_guest(a);
    else if (a->field == TUI_F_PAYLOAD)
        a->payload_touched = true;
    form_check(a); /* every field, so each invalid one stays marked while another is fixed */
}

static void form_key(tui_app *a, int key)
{
    tui_line *l = a->field == TUI_F_SUBMIT ? NULL : &a->f[a->field];
    switch (tui_key_action(key, TUI_CX_FORM)) {
    case TUI_A_FORM_CLOSE: a->mode = TUI_MODE_MAIN; return;
    case TUI_A_FORM_SEND: form_submit(a); return;
    case TUI_A_FORM_RESET:
        form_fill(a, NULL);
        snprintf(a->form_msg, sizeof a->form_msg, "reset to the defaults");
        return;
    case TUI_A_FORM_NEXT: form_focus(a, a->field + 1); return;
    case TUI_A_FORM_PREV: form_focus(a, a->field - 1); return;
    case TUI_A_FORM_DOWN: case TUI_A_FORM_UP:
        /* inside the payload up/down move between its lines and never leave it (at its first or
         * last line: to its start or end), so what is typed next lands in the payload; tab and
         * shift-tab leave it */
        if (l && l->multiline) {
            if (!tui_line_key(l, key))
                l->cur = key == TUI_KEY_DOWN ? l->len : 0;
            a->field_fresh = false;
            return;
        }
        form_focus(a, a->field + (key == TUI_KEY_DOWN ? 1 : -1));
        return;
    case TUI_A_FORM_ENTER:
        if (a->field == TUI_F_SUBMIT)
            form_submit(a);
        else if (l && l->multiline)
            form_text(a, "\n", 1);
        else
            form_focus(a, a->field + 1);
        return;
    default: break;
    }
    /* space picks the next guest, until something is typed (a path may have blanks) */
    if (a->field == TUI_F_GUEST &&
        (key == TUI_KEY_LEFT || key == TUI_KEY_RIGHT || (key == ' ' && !a->f[TUI_F_GUEST].len))) {
        /* from what was typed (a path, a name that matched none) back to the offered ones */
        tui_line_set(&a->f[TUI_F_GUEST], "");
        a->guest_is_path = a->guest_nomatch = false;
        a->guest_why[0] = '\0';
        if (a->n_guests)
            form_set_guest(a, guest_step(a, a->guest_sel, key == TUI_KEY_LEFT ? -1 : 1));
        form_check(a);
        return;
    }
    if (!l)
        return;
    if ((key >= 0x20 && key < 0x7f) || (key >= 0x80 && key <= 0xff)) {
        char c = (char)key;
        form_text(a, &c, 1);
        return;
    }
    if (a->field_fresh && (key == TUI_KEY_BACKSPACE || key == TUI_KEY_DELETE)) {
        tui_line_set(l, ""); /* the whole value was selected */
        a->field_fresh = false;
    } else if (tui_line_key(l, key)) {
        a->field_fresh = false;
    } else {
        return;
    }
    if (a->field == TUI_F_GUEST)
        form_find_guest(a);
    if (a->field == TUI_F_PAYLOAD)
        a->payload_touched = true;
    form_check(a);
}

void tui_submit_copy(tui_app *a, int64_t id)
{
    act_req *r = calloc(1, sizeof *r);
    if (!r)
        return;
    r->kind = ACT_GET_JOB;
    r->ids = malloc(sizeof *r->ids);
    if (!r->ids) {
        free(r);
        return;
    }
    r->ids[0] = id;
    r->n = 1;
    run_action(a, r);
}

/* ---- confirm ---------------------------------------------------------------------------------- */

static void confirm_ask(tui_app *a, tui_confirm_kind kind, int64_t *ids, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void confirm_ask(tui_app *a, tui_confirm_kind kind, int64_t *ids, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a->confirm_text, sizeof a->confirm_text, fmt, ap);
    va_end(ap);
    /* a message from before (a copy, a submit) is not about this question: it goes */
    a->status[0] = '\0';
    a->status_error = false;
    free(a->confirm_ids);
    a->confirm_ids = ids;
    a->confirm_n = n;
    a->confirm_kind = kind;
    a->mode = TUI_MODE_CONFIRM;
}

static void confirm_key(tui_app *a, int key)
{
    tui_action act = tui_key_action(key, TUI_CX_CONFIRM);
    if (act == TUI_A_YES && a->confirm_kind == TUI_CONFIRM_QUIT) {
        a->mode = TUI_MODE_MAIN;
        begin_quit(a);
        return;
    }
    if (act == TUI_A_YES && a->confirm_kind == TUI_CONFIRM_CANCEL_MATCHING) {
        act_req *r = calloc(1, sizeof *r);
        if (r) {
            r->kind = ACT_CANCEL_MATCHING;
            /* the filter the question named, whatever happened since */
            snprintf(r->filter_text, sizeof r->filter_text, "%s", a->confirm_filter);
            tui_set_status(a, false, "cancelling the jobs matching '%.300s'...", r->filter_text);
            run_action(a, r);
        }
        a->mode = TUI_MODE_MAIN;
        return;
    }
    if (act == TUI_A_YES) {
        act_req *r = calloc(1, sizeof *r);
        if (r) {
            r->kind = a->confirm_kind == TUI_CONFIRM_CANCEL   ? ACT_CANCEL
                      : a->confirm_kind == TUI_CONFIRM_DELETE ? ACT_DELETE
                                                              : ACT_RETRY_FAILED;
            r->ids = a->confirm_ids;
            r->n = a->confirm_n;
            a->confirm_ids = NULL;
            snprintf(r->filter_text, sizeof r->filter_text, "%s", a->filter_text);
            if ((r->kind == ACT_CANCEL || r->kind == ACT_DELETE) && a->marks.n &&
                a->view != TUI_VIEW_DETAIL)
                tui_marks_clear(&a->marks);
            run_action(a, r);
        }
        a->mode = TUI_MODE_MAIN;
    } else if (act == TUI_A_NO) {
        free(a->confirm_ids);
        a->confirm_ids = NULL;
        a->mode = TUI_MODE_MAIN;
    }
}

void tui_job_command(tui_app *a, tui_action act)
{
    size_t n = 0;
    int64_t *ids = target_ids(a, &n);
    if (!ids) {
        tui_set_status(a, true, "no job selected: pick one in the jobs pane or open its detail");
        return;
    }
    if (act == TUI_A_CANCEL) {
        if (n == 1)
            confirm_ask(a, TUI_CONFIRM_CANCEL, ids, n, "Cancel job %lld?", (long long)ids[0]);
        else
            confirm_ask(a, TUI_CONFIRM_CANCEL, ids, n, "Cancel %zu marked jobs?", n);
        return;
    }
    if (act == TUI_A_DELETE) {
        if (n == 1)
            confirm_ask(a, TUI_CONFIRM_DELETE, ids, n, "Delete job %lld (attempts, logs too)?",
                        (long long)ids[0]);
        else
            confirm_ask(a, TUI_CONFIRM_DELETE, ids, n, "Delete %zu marked jobs (attempts, logs too)?",
                        n);
        return;
    }
    act_req *r = calloc(1, sizeof *r);
    if (!r) {
        free(ids);
        return;
    }
    r->kind = ACT_RERUN;
    r->ids = ids;
    r->n = n;
    if (a->view != TUI_VIEW_DETAIL)
        tui_marks_clear(&a->marks);
    run_action(a, r);
}

/* z / :snooze [DURATION]: without one, the prompt line asks, the default filled in; a bare
 * number is refused as the CLI refuses it (seconds or milliseconds? it says neither). 0 and the
 * delay in *ms, or -1 (prompt opened or refusal shown). */
static int snooze_delay(tui_app *a, const char *text, int64_t *ms)
{
    while (text && *text == ' ')
        text++;
    if (!text || !*text) {
        tui_open_prompt(a, TUI_PROMPT_COMMAND, "snooze 10m");
        return -1;
    }
    aspen_store_error se = {0};
    size_t digits = strspn(text, "0123456789");
    if (digits && !text[digits] && strspn(text, "0") != digits) {
        tui_set_status(a, true, ":snooze '%s' has no unit: write %ss, %sm, %sh or %sd", text,
                       text, text, text, text); /* as the CLI's DURATION (trial 24) */
        return -1;
    }
    if (aspen_store_duration_parse(text, ms, &se) != 0) {
        tui_set_status(a, true, ":snooze: %s", se.msg);
        return -1;
    }
    if (*ms <= 0 || *ms > ASPEN_STORE_SNOOZE_MAX_MS) {
        tui_set_status(a, true, ":snooze '%s' is out of range: more than 0, at most 365d", text);
        return -1;
    }
    return 0;
}

/* +, -, :priority N, n / :run-now and z / :snooze on the marked jobs, else the selected one (or
 * the detail's). */
void tui_job_edit(tui_app *a, tui_action act, const char *text)
{
    long long prio = 0;
    int64_t delay_ms = 0;
    if (act == TUI_A_SNOOZE && snooze_delay(a, text, &delay_ms) != 0)
        return;
    if (act == TUI_A_PRIORITY_SET) {
        char *end = NULL;
        prio = text ? strtoll(text, &end, 10) : 0;
        while (end && *end == ' ')
            end++;
        if (!text || !*text || !end || *end || prio < ASPEN_STORE_PRIORITY_MIN ||
            prio > ASPEN_STORE_PRIORITY_MAX) {
            tui_set_status(a, true, ":priority wants a whole number from %d to %d, not '%s'",
                           ASPEN_STORE_PRIORITY_MIN, ASPEN_STORE_PRIORITY_MAX, text ? text : "");
            return;
        }
    }
    size_t n = 0;
    int64_t *ids = target_ids(a, &n);
    if (!ids) {
        tui_set_status(a, true, "no job selected: pick one in the jobs pane or open its detail");
        return;
    }
    act_req *r = calloc(1, sizeof *r);
    if (!r) {
        free(ids);
        return;
    }
    r->kind = act == TUI_A_RUN_NOW ? ACT_RUN_NOW : act == TUI_A_SNOOZE ? ACT_SNOOZE : ACT_PRIORITY;
    r->delay_ms = delay_ms;
    r->priority = (int)prio;
    r->delta = act == TUI_A_PRIORITY_UP ? 1 : act == TUI_A_PRIORITY_DOWN ? -1 : 0;
    if (r->delta && a->edit_busy) { /* one step is in flight: this one goes after it */
        free(a->edit_ids);
        a->edit_ids = ids;
        a->edit_n = n;
        a->edit_pending += r->delta;
        free(r);
        return;
    }
    if (r->delta)
        a->edit_busy = true;
    r->ids = ids;
    r->n = n;
    run_action(a, r);
}

/* ---- the prompt: filter / search / command, with history and completion -------------------------- */

static void global_action(tui_app *a, tui_action act, int64_t arg, const char *text);
static void do_action(tui_app *a, tui_action act, int64_t arg, const char *text);

static void on_filter_timer(uv_timer_t *t)
{
    tui_app *a = t->data;
    if (a->mode == TUI_MODE_PROMPT && a->prompt_kind == TUI_PROMPT_FILTER) {
        apply_filter(a, a->prompt.buf, true);
        request_draw(a);
    }
}

/* The prompt's text changed: filters apply as you type (debounced, so a burst of keys makes one
 * query), a search finds as you type. */
static void prompt_changed(tui_app *a)
{
    a->prompt_error[0] = '\0'; /* until the new text is parsed */
    if (a->prompt_kind == TUI_PROMPT_FILTER)
        uv_timer_start(&a->filter_timer, on_filter_timer, 120, 0);
    else if (a->prompt_kind == TUI_PROMPT_SEARCH)
        tui_logs_search_set(a, a->prompt.buf);
}

static void prompt_complete(tui_app *a)
{
    if (a->prompt_kind != TUI_PROMPT_COMMAND)
        return;
    const char *p = a->prompt.buf;
    while (*p == ' ' || *p == ':')
        p++;
    if (strchr(p, ' '))
        return; /* past the name: nothing to complete */
    const char *names[32];
    char common[64];
    size_t n = tui_command_complete(p, names, 32, common, sizeof common);
    if (n == 0) {
        tui_set_status(a, true, "no command starts with '%s' (:help lists them)", p);
        return;
    }
    char line[96];
    snprintf(line, sizeof line, "%s%s", n == 1 ? names[0] : common, n == 1 ? " " : "");
    tui_line_set(&a->prompt, line);
    if (n > 1) {
        char list[512];
        size_t w = 0;
        for (size_t i = 0; i < n && i < 32; i++) {
            int k = snprintf(list + w, sizeof list - w, "%s:%s", i ? " " : "", names[i]);
            if (k < 0 || (size_t)k >= sizeof list - w)
                break;
            w += (size_t)k;
        }
        tui_set_status(a, false, "%s", list);
    }
}

static void prompt_key(tui_app *a, int key)
{
    tui_history *h = &a->history[a->prompt_kind];
    switch (tui_key_action(key, TUI_CX_PROMPT)) {
    case TUI_A_PROMPT_CANCEL:
        uv_timer_stop(&a->filter_timer);
        a->mode = TUI_MODE_MAIN;
        if (a->prompt_kind == TUI_PROMPT_FILTER)
            apply_filter(a, "", false); /* esc in the filter prompt clears the filter */
        else if (a->prompt_kind == TUI_PROMPT_SEARCH)
            tui_logs_search_set(a, "");
        h->pos = -1;
        return;
    case TUI_A_PROMPT_APPLY:
        uv_timer_stop(&a->filter_timer);
        a->mode = TUI_MODE_MAIN;
        tui_history_add(h, a->prompt.buf);
        if (a->prompt_kind == TUI_PROMPT_FILTER) {
            apply_filter(a, a->prompt.buf, false);
        } else if (a->prompt_kind == TUI_PROMPT_SEARCH) {
            tui_logs_search_set(a, a->prompt.buf);
        } else {
            tui_action act;
            int64_t arg;
            const char *text;
            char msg[700];
            char cmd[sizeof a->prompt.buf];
            snprintf(cmd, sizeof cmd, "%s", a->prompt.buf);
            if (tui_command_parse(cmd, &act, &arg, &text, a->utf8, msg, sizeof msg) != 0)
                tui_set_status(a, true, "%s", msg);
            else
                do_action(a, act, arg, text);
        }
        return;
    case TUI_A_PROMPT_OLDER: case TUI_A_PROMPT_NEWER: {
        const char *t = key == TUI_KEY_UP ? tui_history_older(h, a->prompt.buf) : tui_history_newer(h);
        if (t) {
            tui_line_set(&a->prompt, t);
            prompt_changed(a);
        }
        return;
    }
    case TUI_A_PROMPT_COMPLETE: prompt_complete(a); return;
    default: break;
    }
    if (tui_line_key(&a->prompt, key))
        prompt_changed(a);
}

void tui_open_prompt(tui_app *a, tui_prompt_kind kind, const char *initial)
{
    a->mode = TUI_MODE_PROMPT;
    a->prompt_kind = kind;
    a->prompt_error[0] = '\0';
    a->prompt.multiline = false;
    a->history[kind].pos = -1;
    tui_line_set(&a->prompt, initial);
    if (kind == TUI_PROMPT_SEARCH)
        tui_logs_search_set(a, initial);
    /* a filter handed in (the Queues pane's enter: queue:NAME) applies at once, as typed text
     * does: the list kept the old filter's jobs until enter (trial 23) */
    if (kind == TUI_PROMPT_FILTER && strcmp(initial, a->filter_text) != 0)
        prompt_changed(a);
}

void tui_move_cursor(tui_app *a, long delta, bool absolute)
{
    a->open_pending = false;
    a->at_end = false;
    long total = tui_jobs_total(a);
    a->cursor = absolute ? delta : a->cursor + delta;
    tui_scroll(&a->cursor, &a->top, total, a->lay.body_h - 1);
    const tui_row *r = tui_selected_row(a);
    a->cursor_id = r ? r->id : 0;
    a->pending_cursor_lat = true;
    ensure_window(a);
}

void tui_fetch(tui_app *a) { start_fetch(a); }
void tui_request_draw(tui_app *a) { request_draw(a); }

/* ---- settings kept between runs -------------------------------------------------------------- */

static void load_settings(tui_app *a)
{
    tui_settings_default(&a->settings);
    if (!tui_settings_path(a->settings_path, sizeof a->settings_path)) {
        a->settings_path[0] = '\0';
        return;
    }
    FILE *f = fopen(a->settings_path, "r");
    if (!f)
        return; /* none yet: the defaults */
    char *text = calloc(1, 256 * 1024);
    size_t n = text ? fread(text, 1, 256 * 1024 - 1, f) : 0;
    fclose(f);
    if (!text)
        return;
    text[n] = '\0';
    char msg[256];
    if (tui_settings_parse(text, &a->settings, msg, sizeof msg) > 0)
        tui_set_status(a, true, "settings %s: %s", a->settings_path, msg);
    free(text);
    a->sort_col = a->settings.sort;
    a->sort_reverse = a->settings.sort_reverse;
    a->order_reverse = a->settings.order_reverse;
    a->wrap = a->settings.wrap;
    a->timestamps = a->settings.timestamps;
    a->detail_wrap = a->settings.detail_wrap;
}

/* mkdir -p of the file's directory (0700: it is the user's), then the file through a rename so a
 * crash never leaves half of it. 0, or -1 with a message. */
static int save_settings(tui_app *a, char *msg, size_t msgcap)
{
    if (!a->settings_path[0]) {
        snprintf(msg, msgcap, "no place for settings: neither XDG_CONFIG_HOME nor HOME is set");
        return -1;
    }
    a->settings.sort = a->sort_col;
    a->settings.sort_reverse = a->sort_reverse;
    a->settings.order_reverse = a->order_reverse;
    a->settings.wrap = a->wrap;
    a->settings.timestamps = a->timestamps;
    a->settings.detail_wrap = a->detail_wrap;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", a->settings_path);
    for (char *p = dir + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
            snprintf(msg, msgcap, "cannot create %s: %s", dir, strerror(errno));
            return -1;
        }
        *p = '/';
    }
    size_t cap = 64 * 1024;
    char *text = malloc(cap);
    size_t n = text ? tui_settings_format(&a->settings, text, cap) : 0;
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.%d.tmp", a->settings_path, (int)getpid());
    FILE *f = n ? fopen(tmp, "w") : NULL;
    bool ok = f && fwrite(text, 1, n, f) == n;
    if (f && fclose(f) != 0)
        ok = false;
    if (ok && rename(tmp, a->settings_path) != 0)
        ok = false;
    if (!ok) {
        snprintf(msg, msgcap, "cannot write %s: %s", a->settings_path, strerror(errno ? errno : EIO));
        unlink(tmp);
    }
    free(text);
    return ok ? 0 : -1;
}

static void filter_command(tui_app *a, tui_action act, const char *name)
{
    char msg[512];
    if (act == TUI_A_LIST_FILTERS) {
        if (!a->settings.n_saved) {
            tui_set_status(a, false, "no saved filters (:save NAME keeps the one set)");
            return;
        }
        char list[1024];
        size_t w = 0;
        for (size_t i = 0; i < a->settings.n_saved; i++) {
            int k = snprintf(list + w, sizeof list - w, "%s%s", i ? "  " : "", a->settings.saved[i].name);
            if (k < 0 || (size_t)k >= sizeof list - w)
                break;
            w += (size_t)k;
        }
        tui_set_status(a, false, "saved: %s (:load NAME)", list);
        return;
    }
    if (act == TUI_A_LOAD_FILTER) {
        const char *t = tui_settings_filter(&a->settings, name);
        if (!t) {
            if (!a->settings.n_saved) {
                tui_set_status(a, true, "no filter saved as '%.40s': none is saved yet (:save NAME "
                               "keeps the filter set)", name);
                return;
            }
            const char *names[TUI_SAVED_MAX];
            for (size_t i = 0; i < a->settings.n_saved; i++)
                names[i] = a->settings.saved[i].name;
            tui_choice_refusal("saved filter", name, names, a->settings.n_saved, "saved", " ",
                               a->utf8, msg, sizeof msg);
            tui_set_status(a, true, "%s", msg);
            return;
        }
        char text[512];
        snprintf(text, sizeof text, "%s", t);
        tui_show_pane(a, TUI_PANE_JOBS);
        apply_filter(a, text, false);
        return;
    }
    bool forget = !a->filter_text[0];
    if (tui_settings_save_filter(&a->settings, name, a->filter_text, msg, sizeof msg) != 0 ||
        save_settings(a, msg, sizeof msg) != 0) {
        tui_set_status(a, true, "%s", msg);
        return;
    }
    if (forget)
        tui_set_status(a, false, "forgot the filter '%s' (no filter was set)", name);
    else
        tui_set_status(a, false, "saved the filter as '%s' (:load %s)", name, name);
}

/* ---- actions: the view's own first, then these ------------------------------------------------- */

static void suspend(tui_app *a);

/* The export under way, once a second and as it starts: how far it is and where it goes (it
 * runs on the pool; every key works meanwhile). */
static void export_progress(tui_app *a)
{
    act_req *r = a->exporting;
    if (!r)
        return;
    /* an error said meanwhile stays its time (8 s) before the progress comes back over it */
    if (a->status_error && (uint64_t)aspen_store_now_ms() < a->status_until_ms)
        return;
    long long n = (long long)atomic_load(&r->written);
    char of[48] = "";
    if (r->total >= 0)
        snprintf(of, sizeof of, " of %lld", (long long)r->total);
    set_progress(a, "exporting the jobs matching '%s' to %s: %lld%s written "
                   "(keys work meanwhile)",
                   r->filter_text[0] ? r->filter_text : "(no filter)", r->path, n, of);
}

/* The submit under way, as it starts and once a second: "submitting 40,000/100,000 jobs" (each
 * batch of TUI_SUBMIT_BATCH is one transaction; keys work meanwhile, esc stops the rest). */
static void submit_progress(tui_app *a)
{
    act_req *r = a->submitting;
    if (!r)
        return;
    if (a->status_error && (uint64_t)aspen_store_now_ms() < a->status_until_ms)
        return; /* an error said meanwhile stays its time */
    char done[32], of[32];
    tui_fmt_thousands(atomic_load(&r->submitted), done, sizeof done);
    tui_fmt_thousands(r->count, of, sizeof of);
    if (atomic_load(&r->stop))
        set_progress(a, "stopping the submit after the batch under way: %s/%s jobs submitted",
                     done, of);
    else
        set_progress(a, "submitting %s/%s jobs (esc stops the rest; keys work meanwhile)", done,
                     of);
}

/* esc during a submit of many jobs: no batch after the one under way (act_done says how many
 * went in). False when there is none to stop. Elsewhere than the jobs table esc keeps its own
 * meaning first (closing the help, leaving the detail). */
static bool submit_stop(tui_app *a)
{
    if (!a->submitting || atomic_load(&a->submitting->stop))
        return false;
    atomic_store(&a->submitting->stop, true);
    tui_clear_error(a);
    submit_progress(a);
    request_draw(a);
    return true;
}

/* A pane's command typed in another pane (:limit in the Jobs pane): it did nothing and said
 * nothing; now it says where it applies and what it does there. */
static void not_here(tui_app *a, tui_action act)
{
    size_t n;
    const tui_binding *map = tui_keymap(&n);
    const tui_binding *b = NULL;
    for (size_t i = 0; i < n && !b; i++)
        if (map[i].action == act && map[i].command)
            b = &map[i];
    unsigned cx = tui_view_ops(a->view)->cx;
    if (!b || (b->where & cx))
        return;
    static const struct { unsigned cx; const char *name; } panes[] = {
        {TUI_CX_JOBS, "Jobs pane (1)"},       {TUI_CX_VMS, "VMs pane (2)"},
        {TUI_CX_LOGS, "Logs pane (3)"},       {TUI_CX_ENGINES, "Engines pane (4)"},
        {TUI_CX_SCHEDULES, "Schedules pane (5)"}, {TUI_CX_QUEUES, "Queues pane (6)"},
        {TUI_CX_METRICS, "Metrics pane (7)"}, {TUI_CX_DETAIL, "job detail"},
    };
    char where[200] = "";
    size_t w = 0, k = 0;
    for (size_t i = 0; i < sizeof panes / sizeof panes[0]; i++)
        if (b->where & panes[i].cx) {
            int len = snprintf(where + w, sizeof where - w, "%s%s", k++ ? " or the " : "the ",
                               panes[i].name);
            if (len < 0 || (size_t)len >= sizeof where - w)
                break;
            w += (size_t)len;
        }
    tui_set_status(a, true, ":%s works in %s, not here: %s", b->command, where, b->help);
}

static void global_action(tui_app *a, tui_action act, int64_t arg, const char *text)
{
    switch (act) {
    case TUI_A_BACK:
        if (tui_back(a))
            break;
        if (a->view == TUI_VIEW_JOBS && a->marks.n)
            tui_marks_clear(&a->marks);
        else
            submit_stop(a); /* nothing else for esc to do here: a submit under way stops */
        break;
    case TUI_A_BACK_OR_QUIT:
        if (tui_back(a))
            break;
        if (a->view == TUI_VIEW_JOBS && a->marks.n) {
            tui_marks_clear(&a->marks);
            break;
        }
        {
            /* jobs running in this console's own engine stop with it: asked first, saying what
             * becomes of them (Q and ^C quit without asking) */
            int busy = 0;
            for (int i = 0; i < a->snap.n_workers; i++)
                busy += strcmp(a->snap.workers[i].state, "running") == 0 ||
                        strcmp(a->snap.workers[i].state, "building") == 0;
            if (busy > 0) {
                confirm_ask(a, TUI_CONFIRM_QUIT, NULL, 0,
                            "Quit? %d job%s running here: %s a few seconds to finish, then "
                            "%s given back to the queue (another worker or the next console runs "
                            "%s).",
                            busy, busy == 1 ? " is" : "s are", busy == 1 ? "it gets" : "they get",
                            busy == 1 ? "it is" : "they are", busy == 1 ? "it" : "them");
                break;
            }
        }
        begin_quit(a);
        break;
    case TUI_A_QUIT: begin_quit(a); break;
    case TUI_A_NEXT_PANE: case TUI_A_PREV_PANE:
        tui_show_pane(a, (tui_pane)((a->pane + (act == TUI_A_NEXT_PANE ? 1 : TUI_PANE_COUNT - 1)) %
                                    TUI_PANE_COUNT));
        break;
    case TUI_A_PANE_JOBS: tui_show_pane(a, TUI_PANE_JOBS); break;
    case TUI_A_PANE_VMS: tui_show_pane(a, TUI_PANE_VMS); break;
    case TUI_A_PANE_LOGS: tui_show_pane(a, TUI_PANE_LOGS); break;
    case TUI_A_PANE_ENGINES: tui_show_pane(a, TUI_PANE_ENGINES); break;
    case TUI_A_PANE_SCHEDULES: tui_show_pane(a, TUI_PANE_SCHEDULES); break;
    case TUI_A_PANE_QUEUES: tui_show_pane(a, TUI_PANE_QUEUES); break;
    case TUI_A_PANE_METRICS: tui_show_pane(a, TUI_PANE_METRICS); break;
    case TUI_A_METRICS_WINDOW: /* :window from another pane: the Metrics pane, then its window */
        tui_show_pane(a, TUI_PANE_METRICS);
        if (a->view == TUI_VIEW_METRICS)
            do_action(a, act, arg, text);
        break;
    case TUI_A_LOGS_OF_JOB:
        if (arg)
            tui_push(a, TUI_VIEW_LOGS, arg);
        else
            tui_set_status(a, true, "l shows the logs of the selected job: pick one in the jobs pane");
        break;
    case TUI_A_OPEN_JOB: tui_push(a, TUI_VIEW_DETAIL, arg); break;
    case TUI_A_HELP:
        if (a->view != TUI_VIEW_HELP)
            tui_push(a, TUI_VIEW_HELP, 0);
        break;
    case TUI_A_COMMAND: tui_open_prompt(a, TUI_PROMPT_COMMAND, ""); break;
    case TUI_A_SUBMIT: open_form(a, NULL); break;
    case TUI_A_FILTER_SET:
        tui_show_pane(a, TUI_PANE_JOBS);
        apply_filter(a, text ? text : "", false);
        break;
    case TUI_A_PRIORITY_SET: case TUI_A_RUN_NOW: case TUI_A_SNOOZE:
        if (a->view == TUI_VIEW_JOBS || a->view == TUI_VIEW_DETAIL)
            tui_job_edit(a, act, text);
        else
            tui_set_status(a, true, "no job selected: pick one in the jobs pane or open its detail");
        break;
    case TUI_A_SORT_SET: case TUI_A_MARK_CLEAR: case TUI_A_CANCEL: case TUI_A_RERUN:
    case TUI_A_DELETE:
        /* commands for the jobs pane (:sort, :clear), or the selected job (:cancel, :rerun) */
        if (act == TUI_A_SORT_SET || act == TUI_A_MARK_CLEAR)
            tui_show_pane(a, TUI_PANE_JOBS);
        if (a->view == TUI_VIEW_JOBS)
            tui_pane_jobs_ops.act(a, act, arg, text);
        else
            tui_set_status(a, true, "no job selected: pick one in the jobs pane or open its detail");
        break;
    case TUI_A_CORE: {
        size_t n = 0;
        int64_t *ids = target_ids(a, &n);
        act_req *r = ids ? calloc(1, sizeof *r) : NULL;
        if (!r) {
            free(ids);
            tui_set_status(a, true, "no job selected: pick one in the jobs pane or open its detail");
            break;
        }
        r->kind = ACT_CORE;
        r->first_id = ids[0];
        free(ids);
        snprintf(r->path, sizeof r->path, "%s", text ? text : "");
        tui_set_status(a, false, "writing the core of job %lld...", (long long)r->first_id);
        run_action(a, r);
        break;
    }
    case TUI_A_EXPORT: {
        if (a->exporting) {
            tui_set_status(a, true, "an export to %s is under way (%lld written): wait for it to "
                           "finish", a->exporting->path,
                           (long long)atomic_load(&a->exporting->written));
            break;
        }
        act_req *r = calloc(1, sizeof *r);
        if (!r)
            break;
        r->kind = ACT_EXPORT;
        snprintf(r->filter_text, sizeof r->filter_text, "%s", a->filter_text);
        snprintf(r->path, sizeof r->path, "%s", text ? text : "");
        r->total = total_exact(a) ? tui_jobs_total(a) : -1;
        a->exporting = r;
        tui_clear_error(a); /* the progress replaces an old error at once */
        export_progress(a);
        if (!run_action(a, r)) {
            a->exporting = NULL;
            tui_set_status(a, true, "export: could not start it (the console's thread pool "
                           "refused the work): try again");
        }
        break;
    }
    case TUI_A_DELETE_MATCHING: {
        act_req *r = calloc(1, sizeof *r);
        if (!r)
            break;
        r->kind = ACT_DELETE_COLLECT;
        snprintf(r->filter_text, sizeof r->filter_text, "%s", a->filter_text);
        tui_set_status(a, false, "counting the finished jobs matching '%s'...",
                       a->filter_text[0] ? a->filter_text : "(no filter)");
        run_action(a, r);
        break;
    }
    case TUI_A_CANCEL_MATCHING: {
        /* never every job by one key: a filter must narrow them (the CLI's cancel --filter
         * refuses an empty one too); a filter of no term but order: matches every job */
        aspen_store_filter f;
        char buf[2048], msg[512];
        bool all = !a->filter_text[strspn(a->filter_text, " \t")] ||
                   (tui_filter_parse(a->filter_text, &f, buf, sizeof buf, msg, sizeof msg) == 0 &&
                    tui_filter_states_only(&f) && !f.states);
        if (all) {
            tui_set_status(a, true, "X cancels the jobs matching the filter, and no filter is "
                           "set: / sets one first (queue:NAME, state:queued, tag:T ...); it never "
                           "cancels every job at once");
            break;
        }
        act_req *r = calloc(1, sizeof *r);
        if (!r)
            break;
        r->kind = ACT_CANCEL_COUNT;
        snprintf(r->filter_text, sizeof r->filter_text, "%s", a->filter_text);
        tui_set_status(a, false, "counting the unfinished jobs matching '%.300s'...",
                       a->filter_text);
        run_action(a, r);
        break;
    }
    case TUI_A_RETRY_FAILED: {
        long failed = (long)a->snap.counts[ASPEN_STORE_FAILED];
        confirm_ask(a, TUI_CONFIRM_RETRY_FAILED, NULL, 0,
                    "Retry every failed job matching '%s' (%ld failed in all)?",
                    a->filter_text[0] ? a->filter_text : "(no filter)", failed);
        break;
    }
    case TUI_A_PAUSE_TOGGLE: case TUI_A_PAUSE: case TUI_A_RESUME: {
        act_req *r = calloc(1, sizeof *r);
        if (!r)
            break;
        r->kind = ACT_PAUSE;
        r->pause = act == TUI_A_PAUSE ? true : act == TUI_A_RESUME ? false : !a->snap.paused;
        run_action(a, r);
        break;
    }
    /* the logs pane's settings, from anywhere (:wrap, :ts, :follow) */
    case TUI_A_WRAP: a->wrap = !a->wrap; tui_set_status(a, false, "log wrap %s", a->wrap ? "on" : "off"); break;
    case TUI_A_TIMESTAMPS:
        a->timestamps = !a->timestamps;
        tui_set_status(a, false, "log timestamps %s", a->timestamps ? "on" : "off");
        break;
    case TUI_A_FOLLOW:
        tui_show_pane(a, TUI_PANE_LOGS);
        a->follow = true;
        a->search_hit = -1;
        break;
    case TUI_A_REFRESH:
        clearok(curscr, TRUE);
        start_fetch(a);
        break;
    case TUI_A_SUSPEND: suspend(a); break;
    case TUI_A_SAVE_FILTER: case TUI_A_LOAD_FILTER: case TUI_A_LIST_FILTERS:
        filter_command(a, act, text ? text : "");
        break;
    default: not_here(a, act); break;
    }
}

static void do_action(tui_app *a, tui_action act, int64_t arg, const char *text)
{
    if (act == TUI_A_NONE)
        return;
    const tui_pane_ops *ops = tui_view_ops(a->view);
    unsigned r = ops->act ? ops->act(a, act, arg, text) : 0;
    if (r & TUI_R_FETCH)
        start_fetch(a);
    if (!(r & TUI_R_HANDLED))
        global_action(a, act, arg, text);
}

static void handle_key(tui_app *a, int key)
{
    if (key == TUI_KEY_RESIZE)
        return;
    if (key == TUI_KEY_CTRL('c')) { /* raw mode reads it as a key: quits from anywhere */
        begin_quit(a);
        return;
    }
    switch (a->mode) {
    case TUI_MODE_SUBMIT: form_key(a, key); return;
    case TUI_MODE_PROMPT: prompt_key(a, key); return;
    case TUI_MODE_CONFIRM: confirm_key(a, key); return;
    default: break;
    }
    if (a->lay.too_small && (key == 'q' || key == 'Q' || key == TUI_KEY_ESC)) {
        begin_quit(a);
        return;
    }
    if (key == TUI_KEY_ESC && a->view == TUI_VIEW_JOBS && submit_stop(a))
        return; /* in the jobs table the submit form came back to, esc stops a submit first */
    tui_action act = tui_key_action(key, tui_view_ops(a->view)->cx);
    if (act != TUI_A_NONE && a->status_error)
        tui_clear_error(a); /* a stale error goes; a new one replaces it */
    do_action(a, act, 0, NULL);
}

/* ---- paste, mouse, suspend ---------------------------------------------------------------------- */

/* A bracketed paste, whole: into the field being edited, never run as keys. */
static void handle_paste(tui_app *a, const char *text, size_t n, bool too_long)
{
    if (too_long) {
        tui_set_status(a, true, "paste too long (over %d bytes): nothing inserted", TUI_LINE_MAX - 1);
        return;
    }
    switch (a->mode) {
    case TUI_MODE_SUBMIT: form_text(a, text, n); return;
    case TUI_MODE_PROMPT:
        if (!tui_line_insert(&a->prompt, text, n))
            tui_set_status(a, true, "paste too long for the prompt");
        prompt_changed(a);
        return;
    default:
        /* said, not an error: the next key must not wipe it before it is read */
        tui_set_status(a, false, "paste ignored (%zu bytes): never run as keys; / : s open a field", n);
        return;
    }
}

static void handle_mouse(tui_app *a)
{
    int y = a->mouse_y, x = a->mouse_x;
    if (a->mode != TUI_MODE_MAIN)
        return; /* the overlays are keyboard only */
    if (a->mouse_button == 4 || a->mouse_button == 5) {
        for (int i = 0; i < 3; i++)
            do_action(a, a->mouse_button == 4 ? TUI_A_UP : TUI_A_DOWN, 0, NULL);
        return;
    }
    if (a->mouse_button != 1)
        return;
    double now = tui_mono_ms();
    bool again = y == a->last_click_y && x / 4 == a->last_click_x / 4 && now - a->last_click_ms < 600;
    a->last_click_y = y;
    a->last_click_x = x;
    a->last_click_ms = again ? 0 : now;
    if (y == a->lay.tabs_y) {
        int tx = 0;
        for (int p = 0; p < TUI_PANE_COUNT; p++) {
            char label[32];
            tui_tab_label((tui_pane)p, COLS, label, sizeof label); /* as draw_tabs */
            int w = (int)strlen(label);
            if (x >= tx && x < tx + w) {
                tui_show_pane(a, (tui_pane)p);
                return;
            }
            tx += w + 1;
        }
        return;
    }
    const tui_pane_ops *ops = tui_view_ops(a->view);
    if (y >= a->lay.body_y && y < a->lay.body_y + a->lay.body_h && ops->click)
        ops->click(a, y, x, again);
}

static const char term_on[] = "\033[?2004h", term_off[] = "\033[?2004l";

static void term_write(const char *s)
{
    ssize_t r = write(STDOUT_FILENO, s, strlen(s));
    (void)r;
}

void tui_copy(tui_app *a, const char *what, const void *data, size_t n)
{
    enum { MAX = 256 * 1024 }; /* terminals cap the sequence; more is refused, not cut */
    if (n > MAX) {
        tui_set_status(a, true, "%s is %zu bytes: too large to copy (at most %d)", what, n, MAX);
        return;
    }
    size_t cap = (n + 2) / 3 * 4 + 32;
    char *seq = malloc(cap);
    if (!seq)
        return;
    size_t len = tui_osc52(data, n, seq, cap);
    if (len) {
        ssize_t w = write(STDOUT_FILENO, seq, len);
        (void)w;
        tui_set_status(a, false, "copied %s (%zu bytes) to the clipboard", what, n);
    }
    free(seq);
}

/* Ctrl-Z: the terminal back to the shell, the process stopped (the engine with it); fg resumes
 * and the screen comes back as it was. */
static bool tstp_ignored; /* SIGTSTP was ignored when we started: no job control above us */

static void suspend(tui_app *a)
{
    if (tstp_ignored) {
        tui_set_status(a, true, "ctrl-z: nothing here can resume the console (started with "
                                "SIGTSTP ignored, no job control); q quits");
        return;
    }
    term_write(term_off);
    mousemask(0, NULL);
    endwin();
    signal(SIGTSTP, SIG_DFL);
    kill(0, SIGTSTP); /* the whole job stops; returns once continued (fg) */
    reset_prog_mode();
    mousemask(BUTTON1_PRESSED | BUTTON4_PRESSED | BUTTON5_PRESSED, NULL);
    term_write(term_on);
    struct winsize ws;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0 && ws.ws_col > 0)
        resizeterm(ws.ws_row, ws.ws_col);
    clearok(curscr, TRUE);
    tui_set_status(a, false, "resumed");
    start_fetch(a);
}

/* Keys that ncurses reports as codes of our own (define_key in aspen_tui_run). */
#define NC_PASTE_BEGIN (KEY_MAX + 1)
#define NC_PASTE_END (KEY_MAX + 2)

static void paste_byte(tui_app *a, int ch)
{
    if (a->paste_n + 1 > TUI_LINE_MAX) {
        a->paste_too_long = true;
        return;
    }
    if (a->paste_n + 1 > a->paste_cap) {
        size_t nc = a->paste_cap ? a->paste_cap * 2 : 4096;
        char *p = realloc(a->paste, nc);
        if (!p) {
            a->paste_too_long = true;
            return;
        }
        a->paste = p;
        a->paste_cap = nc;
    }
    a->paste[a->paste_n++] = (char)ch;
}

static void on_stdin(uv_poll_t *p, int status, int events)
{
    tui_app *a = p->data;
    if (status < 0) {
        begin_quit(a);
        return;
    }
    int ch;
    bool any = false;
    while (!a->quitting && (ch = getch()) != ERR) {
        if (!any)
            a->key_at_ms = tui_mono_ms();
        any = true;
        /* a bracketed paste is text, whatever bytes it holds: collected whole, never keys. It may
         * span several reads; the end marker closes it. */
        if (ch == NC_PASTE_BEGIN) {
            a->pasting = true;
            a->paste_n = 0;
            a->paste_too_long = false;
            a->paste_began_ms = tui_mono_ms();
            continue;
        }
        if (a->pasting && tui_mono_ms() - a->paste_began_ms > 3000) {
            /* no end marker for 3 s (a terminal that lost it): what came is the paste, and this
             * key is a key again, so the console never stays deaf */
            a->pasting = false;
            handle_paste(a, a->paste ? a->paste : "", a->paste_n, a->paste_too_long);
        }
        if (a->pasting) {
            if (ch == NC_PASTE_END) {
                a->pasting = false;
                handle_paste(a, a->paste ? a->paste : "", a->paste_n, a->paste_too_long);
            } else if (ch == KEY_ENTER || ch == '\r' || ch == '\n') {
                paste_byte(a, '\n');
            } else if (ch == '\t' || (ch >= 0x20 && ch <= 0xff)) {
                paste_byte(a, ch);
            } /* keypad codes inside a paste (an escape sequence in the text) are dropped */
            continue;
        }
        if (ch == KEY_MOUSE) {
            MEVENT ev;
            if (getmouse(&ev) == OK) {
                a->mouse_y = ev.y;
                a->mouse_x = ev.x;
                a->mouse_button = ev.bstate & BUTTON4_PRESSED ? 4
                                  : ev.bstate & BUTTON5_PRESSED ? 5
                                  : ev.bstate & (BUTTON1_PRESSED | BUTTON1_CLICKED) ? 1 : 0;
                handle_mouse(a);
            }
            continue;
        }
        if (ch == NC_PASTE_END)
            continue;
        handle_key(a, map_key(ch));
    }
    if (any && !a->quitting)
        draw_now(a);
    (void)events;
}

/* ---- start and stop ------------------------------------------------------------------------------
 * The order matters (issue 7: the console crashed on 4 of 5 starts on a database with queued jobs,
 * because an engine thread called uv_async_send on a handle not yet initialised, and each crash
 * left the claimed jobs `running` and charged them an attempt):
 *   1. the app's state, the event queue and its mutex, the loop;
 *   2. with the terminal signals blocked: libuv's pool threads started (they inherit the mask), the
 *      async handle and the timers initialised, and only then the engine subscription and the engine
 *      start (its threads inherit the mask too). Events that come before the loop runs wait in the
 *      queue (bounded) behind an async handle that exists; on_async, which draws, only ever runs
 *      inside the loop, after curses is up;
 *   3. curses, stdin and the signal watchers; then the mask is lifted, so a ^C or SIGTERM that came
 *      in meanwhile reaches libuv's handler (a clean quit) instead of killing the process with the
 *      terminal raw and the claimed jobs stranded.
 * Quitting runs it backwards: unsubscribe first (aspen_engine_unsubscribe returns once no engine
 * thread is inside on_event, and none enters it again), then close the handles; the loop ends when
 * the thread-pool work in flight has come back; then the engine stops, with nobody subscribed, and
 * hands claimed and unfinished jobs back to the queue without charging an attempt. */

static void close_cb(uv_handle_t *h) { (void)h; }

static void close_handle(uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, close_cb);
}

/* Closes what init_loop_handles and init_ui_handles opened; the subscription must be gone. */
static void close_handles(tui_app *a)
{
    if (a->ui_handles_open) {
        uv_poll_stop(&a->stdin_poll);
        close_handle((uv_handle_t *)&a->stdin_poll);
        close_handle((uv_handle_t *)&a->sig_winch);
        close_handle((uv_handle_t *)&a->sig_int);
        close_handle((uv_handle_t *)&a->sig_term);
        close_handle((uv_handle_t *)&a->sig_hup);
        a->ui_handles_open = false;
    }
    tui_engines_quit(); /* the log waiter's thread and async handle (pane_engines.c) */
    if (a->loop_handles_open) {
        close_handle((uv_handle_t *)&a->async);
        close_handle((uv_handle_t *)&a->tick);
        close_handle((uv_handle_t *)&a->refresh_timer);
        close_handle((uv_handle_t *)&a->draw_timer);
        close_handle((uv_handle_t *)&a->filter_timer);
        a->loop_handles_open = false;
    }
}

static void unsubscribe(tui_app *a)
{
    if (a->sub_id > 0)
        aspen_engine_unsubscribe(a->eng, a->sub_id);
    a->sub_id = 0;
}

static void begin_quit(tui_app *a)
{
    if (a->quitting)
        return;
    /* A second SIGTERM/SIGINT/SIGHUP while the engine stops must not kill the process half-way:
     * that would strand the running jobs (charged an attempt at recovery). From here on they are
     * held (before the watchers close and the default actions come back) and dropped once the
     * engine has stopped: the quit is under way already. */
    pthread_sigmask(SIG_BLOCK, &a->quit_sigs, NULL);
    /* say what happens while the engine stops */
    int running = 0;
    for (int i = 0; i < a->snap.n_workers; i++)
        if (strcmp(a->snap.workers[i].state, "running") == 0)
            running++;
    erase();
    mvprintw(LINES / 2, 2, "Stopping: %d running job%s may finish within %.1f s, the rest go back "
                           "to the queue...", running, running == 1 ? "" : "s",
             a->opts.stop_grace_ms / 1000.0);
    wnoutrefresh(stdscr);
    doupdate();
    a->quitting = true;
    if (a->exporting)
        atomic_store(&a->exporting->stop, true);
    if (a->submitting) /* the batch under way finishes; the rest is said after the screen */
        atomic_store(&a->submitting->stop, true);
    unsubscribe(a); /* before the async handle goes: no uv_async_send on a closed handle */
    close_handles(a);
}

/* The handles engine events and thread-pool results need: before the subscription. */
static void init_loop_handles(tui_app *a)
{
    uv_async_init(a->loop, &a->async, on_async);
    a->async.data = a;
    uv_timer_init(a->loop, &a->tick);
    a->tick.data = a;
    uv_timer_init(a->loop, &a->refresh_timer);
    a->refresh_timer.data = a;
    uv_timer_init(a->loop, &a->draw_timer);
    a->draw_timer.data = a;
    uv_timer_init(a->loop, &a->filter_timer);
    a->filter_timer.data = a;
    a->loop_handles_open = true;
}

/* stdin and the terminal signals: after curses is up. */
static void init_ui_handles(tui_app *a)
{
    uv_poll_init(a->loop, &a->stdin_poll, STDIN_FILENO);
    a->stdin_poll.data = a;
    uv_poll_start(&a->stdin_poll, UV_READABLE, on_stdin);
    uv_signal_t *sigs[] = {&a->sig_winch, &a->sig_int, &a->sig_term, &a->sig_hup};
    int signums[] = {SIGWINCH, SIGINT, SIGTERM, SIGHUP};
    for (int i = 0; i < 4; i++) {
        uv_signal_init(a->loop, sigs[i]);
        sigs[i]->data = a;
        uv_signal_start(sigs[i], on_signal, signums[i]);
    }
    a->ui_handles_open = true;
}

static void noop_work(uv_work_t *w) { (void)w; }
static void noop_done(uv_work_t *w, int s) { (void)w; (void)s; }

/* What the form's Guest / type field offers: the user's guest binaries (the seed's first), then
 * the engine's built-in in-process types (docs/CONSOLE.md). The project's test guests (test-*:
 * hostile, faulting, leaking on purpose) are in target/guest-binaries too, but a user never
 * means them: they are left out of left/right, found only by typing their name, and offered
 * like the others with ASPEN_CONSOLE_TEST_GUESTS=1. Read at start and again each time the form
 * opens (a directory listing), so a guest built or copied in while the console runs is offered;
 * the binaries learnt from jobs (only the store has them) are kept across a re-read. */
static void load_guests(tui_app *a)
{
    static const char *handlers[] = {"echo", "sleep", "checksum"};
    enum { N_HANDLERS = sizeof handlers / sizeof handlers[0] };
    tui_guest keep[TUI_MAX_GUESTS];
    size_t n_keep = 0;
    for (size_t i = 0; i < a->n_guests; i++) {
        if (a->guests[i].sha256[0])
            keep[n_keep++] = a->guests[i];
        else
            free(a->guests[i].name);
    }
    a->n_guests = a->guest_sel = 0;
    char *names[TUI_MAX_GUESTS];
    size_t n = tui_guest_list(a->opts.guest_dir, names, TUI_MAX_GUESTS - N_HANDLERS);
    const char *show = getenv("ASPEN_CONSOLE_TEST_GUESTS");
    bool show_tests = show && strcmp(show, "1") == 0;
    for (size_t i = 0; i < n; i++)
        a->guests[a->n_guests++] =
            (tui_guest){.name = names[i], .hidden = !show_tests && tui_guest_is_test(names[i])};
    for (size_t i = 0; i < N_HANDLERS; i++) {
        char *name = strdup(handlers[i]);
        if (name)
            a->guests[a->n_guests++] = (tui_guest){.name = name, .handler = true};
    }
    for (size_t k = 0; k < n_keep; k++) {
        bool dup = a->n_guests >= TUI_MAX_GUESTS;
        for (size_t i = 0; i < a->n_guests && !dup; i++)
            dup = !a->guests[i].handler && strcmp(a->guests[i].name, keep[k].name) == 0;
        if (dup) /* the directory has it now (by name), or no room */
            free(keep[k].name);
        else
            a->guests[a->n_guests++] = keep[k];
    }
}

static int console_run(tui_app *a, aspen_engine *eng, aspen_engine_error *err);
static void app_free(tui_app *a);

int aspen_tui_run(aspen_engine *eng, const aspen_tui_options *opts, aspen_engine_error *err)
{
    if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)) {
        snprintf(err->msg, sizeof err->msg,
                 "the console needs a terminal (stdin and stdout are not both a tty); "
                 "use aspen jobs / aspen worker from scripts");
        err->code = ASPEN_ENGINE_EINVAL;
        return ASPEN_ENGINE_EINVAL;
    }
    tui_app *a = calloc(1, sizeof *a);
    if (!a) {
        err->code = ASPEN_ENGINE_ENOMEM;
        snprintf(err->msg, sizeof err->msg, "out of memory");
        return ASPEN_ENGINE_ENOMEM;
    }
    a->eng = eng;
    if (opts)
        a->opts = *opts;
    if (a->opts.stop_grace_ms <= 0)
        a->opts.stop_grace_ms = 3000;
    if (!a->opts.stats_path)
        a->opts.stats_path = getenv("ASPEN_TUI_STATS");
    a->cap_lat = a->opts.stats_path && *a->opts.stats_path ? 200000 : 0;
    if (a->cap_lat) {
        a->lat_key = calloc(a->cap_lat, sizeof(double));
        a->lat_cursor = calloc(a->cap_lat, sizeof(double));
        a->lat_filter = calloc(a->cap_lat, sizeof(double));
        a->draw_ms = calloc(a->cap_lat, sizeof(double));
        a->lat_win_pos = calloc(a->cap_lat, sizeof(double));
        a->lat_win_key = calloc(a->cap_lat, sizeof(double));
    }
    pthread_mutex_init(&a->evq_mu, NULL);
    sigemptyset(&a->quit_sigs);
    sigaddset(&a->quit_sigs, SIGINT);
    sigaddset(&a->quit_sigs, SIGTERM);
    sigaddset(&a->quit_sigs, SIGHUP);
    sigaddset(&a->quit_sigs, SIGWINCH);
    tui_logbuf_init(&a->logs_all, 5000);
    tui_logbuf_init(&a->logs_one, 5000);
    a->follow = true;
    a->search_hit = -1;
    a->depth = 1;
    a->stack[0] = (tui_place){.view = TUI_VIEW_JOBS};
    a->detail_wrap = true;
    for (int i = 0; i < 3; i++)
        a->history[i].pos = -1;
    load_guests(a);
    load_settings(a);
    tui_filter_parse("", &a->filter, a->filter_buf, sizeof a->filter_buf, a->status, sizeof a->status);
    int rc = console_run(a, eng, err);
    app_free(a);
    return rc;
}

/* The loop, the engine and the terminal, from set-up to quit. A failure returns at once: what was
 * set up is undone here, the app itself by app_free (no goto past an initialisation: one was a
 * segfault). */
static int console_run(tui_app *a, aspen_engine *eng, aspen_engine_error *err)
{
    int rc = 0;
    a->loop = calloc(1, sizeof *a->loop);
    if (!a->loop || uv_loop_init(a->loop) != 0) {
        free(a->loop);
        a->loop = NULL;
        err->code = ASPEN_ENGINE_ENOMEM;
        snprintf(err->msg, sizeof err->msg, "cannot set up the console's event loop");
        return ASPEN_ENGINE_ENOMEM;
    }
    aspen_engine_config scfg;
    aspen_engine_config_default(&scfg);
    scfg.db_path = aspen_engine_db_path(eng);
    scfg.workers = 0;
    aspen_engine_error serr0 = {0};
    if (aspen_engine_open(&scfg, &a->stats_eng, &serr0) != 0)
        a->stats_eng = NULL; /* then the stats share the main handle */
    aspen_store_options cso = {.read_only = true};
    aspen_store_error cse = {0};
    if (aspen_store_open(scfg.db_path, &cso, &a->count_store, &cse) != 0)
        a->count_store = NULL; /* then totals stay "more than loaded" (+) */

    /* Engine threads and libuv's pool threads inherit this mask: terminal signals only ever reach
     * the UI thread (libuv's signal pipe), never a vCPU in KVM_RUN. The UI thread keeps them
     * blocked until its own watchers are installed. */
    sigset_t ui_sigs, old;
    sigemptyset(&ui_sigs);
    int blocked[] = {SIGWINCH, SIGINT, SIGTERM, SIGHUP, SIGTSTP, SIGCONT, SIGQUIT};
    for (size_t i = 0; i < sizeof blocked / sizeof blocked[0]; i++)
        sigaddset(&ui_sigs, blocked[i]);
    pthread_sigmask(SIG_BLOCK, &ui_sigs, &old);
    uv_work_t warm = {0};
    uv_queue_work(a->loop, &warm, noop_work, noop_done); /* starts the pool threads now */
    uv_run(a->loop, UV_RUN_DEFAULT);                     /* no handles yet: returns when it ran */

    init_loop_handles(a);
    tui_engines_begin(a);
    /* Only now may the engine talk to us: the queue, its mutex and the async handle exist. */
    a->sub_id = aspen_engine_subscribe(eng, ASPEN_ENGINE_EV_ALL, on_event, a);
    if (a->sub_id <= 0) {
        rc = a->sub_id < 0 ? a->sub_id : ASPEN_ENGINE_ENOMEM;
        err->code = rc;
        snprintf(err->msg, sizeof err->msg, "cannot subscribe to the engine's events");
        a->sub_id = 0;
    } else {
        rc = aspen_engine_start(eng, err);
    }
    if (rc != 0) {
        unsubscribe(a);
        close_handles(a);
        uv_run(a->loop, UV_RUN_DEFAULT); /* the close callbacks */
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        uv_loop_close(a->loop);
        free(a->loop);
        a->loop = NULL;
        return rc;
    }

    struct sigaction tstp;
    tstp_ignored = sigaction(SIGTSTP, NULL, &tstp) == 0 && tstp.sa_handler == SIG_IGN;
    setlocale(LC_ALL, "");
    a->utf8 = strcmp(nl_langinfo(CODESET), "UTF-8") == 0;
    have_termios = tcgetattr(STDIN_FILENO, &saved_termios) == 0;
    set_escdelay(25);
    initscr();
    install_fatal_handlers();
    raw(); /* ^S reaches the form (no XON/XOFF); ^C is read as a key and quits */
    noecho();
    nonl();
    keypad(stdscr, TRUE);
    nodelay(stdscr, TRUE);
    curs_set(0);
    /* a paste arrives whole between these (bracketed paste, turned on below), never as keys */
    define_key("\033[200~", NC_PASTE_BEGIN);
    define_key("\033[201~", NC_PASTE_END);
    mousemask(BUTTON1_PRESSED | BUTTON4_PRESSED | BUTTON5_PRESSED, NULL);
    mouseinterval(0);
    term_write(term_on);
    tui_draw_init(a);
    init_ui_handles(a);
    uv_timer_start(&a->tick, on_tick, 1000, 1000);
    pthread_sigmask(SIG_SETMASK, &old, NULL); /* our watchers are in place */

    snap_live(a);
    tui_draw(a);
    start_stats(a);
    start_fetch(a);
    uv_run(a->loop, UV_RUN_DEFAULT); /* until begin_quit closed the handles and work drained */

    aspen_engine_error serr = {0};
    if (aspen_engine_stop(eng, a->opts.stop_grace_ms, &serr) != 0) {
        *err = serr;
        rc = serr.code ? serr.code : ASPEN_ENGINE_EINVAL;
    }
    term_write(term_off);
    mousemask(0, NULL);
    endwin();
    remove_fatal_handlers();
    struct timespec zero = {0, 0};
    while (sigtimedwait(&a->quit_sigs, NULL, &zero) > 0)
        ; /* the signals that came during the stop (see begin_quit) */
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    uv_loop_close(a->loop);
    free(a->loop);
    a->loop = NULL;
    write_stats(a);
    if (a->quit_note[0])
        fprintf(stderr, "%s\n", a->quit_note);
    {
        char smsg[512];
        if (a->settings_path[0] && save_settings(a, smsg, sizeof smsg) != 0)
            fprintf(stderr, "aspen console: settings not saved: %s\n", smsg);
    }
    return rc;
}

/* Everything the app holds, however far console_run got (each part is safe to free unset). */
static void app_free(tui_app *a)
{
    /* events that came after the last drain (or before a start that failed) */
    for (size_t i = 0; i < a->evq_n; i++)
        free(a->evq_logs[i].line);
    free(a->evq_logs);
    aspen_engine_close(a->stats_eng);
    aspen_store_close(a->count_store);
    tui_logbuf_free(&a->logs_all);
    tui_engines_close();
    tui_schedules_close();
    tui_queues_close();
    tui_metrics_close();
    tui_logbuf_free(&a->logs_one);
    free(a->guest_checked);
    tui_text_free(&a->help);
    for (int i = 0; i < 3; i++)
        tui_history_free(&a->history[i]);
    free(a->paste);
    tui_text_free(&a->detail);
    free(a->detail_payload);
    free(a->detail_output);
    tui_marks_free(&a->marks);
    free(a->edit_ids);
    for (size_t i = 0; i < a->n_guests; i++)
        free(a->guests[i].name);
    free(a->rows);
    free(a->confirm_ids);
    free(a->lat_key);
    free(a->lat_cursor);
    free(a->lat_filter);
    free(a->draw_ms);
    free(a->lat_win_pos);
    free(a->lat_win_key);
    pthread_mutex_destroy(&a->evq_mu);
    free(a);
}
