/* tui/draw.c — everything the console puts on the terminal: header, pane tabs, jobs table, VMs
 * pane, logs pane, and the overlays (job detail, help, submit form, confirm, prompt). One frame is
 * werase + drawing into stdscr + wnoutrefresh + one doupdate, so ncurses sends only what changed
 * (no flicker). Reads tui_app on the UI thread only; all numbers come from view.c's formatters.
 */
#include "app.h"

#include "aspen_text.h"

#include <curses.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { P_QUEUED = 1, P_SCHED, P_RUNNING, P_OK, P_FAILED, P_CANCELLED, P_TITLE, P_DIM, P_ERRMSG,
       P_HIT };

void tui_draw_init(tui_app *a)
{
    a->colors = has_colors() && !getenv("NO_COLOR");
    if (!a->colors)
        return;
    start_color();
    use_default_colors();
    init_pair(P_QUEUED, COLOR_CYAN, -1);
    init_pair(P_SCHED, COLOR_BLUE, -1);
    init_pair(P_RUNNING, COLOR_YELLOW, -1);
    init_pair(P_OK, COLOR_GREEN, -1);
    init_pair(P_FAILED, COLOR_RED, -1);
    init_pair(P_CANCELLED, COLOR_MAGENTA, -1);
    init_pair(P_TITLE, COLOR_BLACK, COLOR_CYAN);
    init_pair(P_DIM, COLOR_WHITE, -1);
    init_pair(P_ERRMSG, COLOR_WHITE, COLOR_RED);
    init_pair(P_HIT, COLOR_BLACK, COLOR_YELLOW);
}

/* Colour where there is colour; a distinct attribute where there is none. */
static attr_t state_attr(const tui_app *a, aspen_store_state s)
{
    static const attr_t mono[] = {A_NORMAL, A_DIM, A_BOLD, A_NORMAL, A_BOLD | A_UNDERLINE, A_DIM};
    if (s < 0 || s >= ASPEN_STORE_STATE_COUNT)
        return A_NORMAL;
    if (!a->colors)
        return mono[s];
    attr_t extra = s == ASPEN_STORE_RUNNING || s == ASPEN_STORE_FAILED ? A_BOLD : A_NORMAL;
    return COLOR_PAIR(P_QUEUED + s) | extra;
}

static attr_t pair_or(const tui_app *a, int pair, attr_t mono)
{
    return a->colors ? COLOR_PAIR(pair) : mono;
}

/* Writes at most w bytes of text at y, x. Every string drawn goes through here, and through the
 * sanitiser (aspen_text.h) on the way: the view models keep job text escaped already, so this is
 * the last guard that nothing raw (ESC, CR, C1, bidi, bad UTF-8) ever reaches the terminal. */
static void put(int y, int x, int w, attr_t attr, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void put(int y, int x, int w, attr_t attr, const char *fmt, ...)
{
    if (w <= 0 || y < 0 || y >= LINES || x >= COLS)
        return;
    char buf[4096], safe[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    aspen_text_escape_str(buf, ASPEN_TEXT_SPACES, safe, sizeof safe);
    attron(attr);
    mvaddnstr(y, x, safe, w);
    attroff(attr);
}

static void fill_line(int y, attr_t attr)
{
    attron(attr);
    mvhline(y, 0, ' ', COLS);
    attroff(attr);
}

tui_logbuf *tui_logs_current(tui_app *a)
{
    return a->logs_job ? &a->logs_one : &a->logs_all;
}

/* ---- header ----------------------------------------------------------------------------------- */

static void draw_header(tui_app *a)
{
    const aspen_engine_snapshot *s = &a->snap;
    attr_t title = pair_or(a, P_TITLE, A_REVERSE);
    fill_line(0, title);
    int busy = 0;
    for (int i = 0; i < s->n_workers; i++)
        if (strcmp(s->workers[i].state, "running") == 0 || strcmp(s->workers[i].state, "building") == 0)
            busy++;
    char left[256];
    snprintf(left, sizeof left, " Aspen console | %s | workers %d/%d busy | engine %lld",
             !a->have_snap ? "starting" : s->paused ? "PAUSED" : "running", busy, s->n_workers,
             (long long)s->engine_id);
    put(0, 0, COLS, title | A_BOLD, "%s", left);
    const char *db = aspen_engine_db_path(a->eng);
    int dbw = (int)strlen(db) + 4;
    if ((int)strlen(left) + dbw + 2 < COLS)
        put(0, COLS - dbw, dbw, title, " db %s", db);

    /* counts by state */
    static const char *short_names[] = {"queued", "sched", "running", "ok", "failed", "cancel"};
    bool wide = COLS >= 100;
    int x = 1;
    for (int st = 0; st < ASPEN_STORE_STATE_COUNT; st++) {
        char n[32];
        tui_fmt_count(s->counts[st], n, sizeof n);
        const char *name = wide ? aspen_store_state_name(st) : short_names[st];
        put(1, x, COLS - x, state_attr(a, st), "%s", name);
        x += (int)strlen(name) + 1;
        put(1, x, COLS - x, A_BOLD, "%s", n);
        x += (int)strlen(n) + 2;
    }

    /* rates */
    char rate[32], p50[32], p95[32], oldest[32], spark[TUI_SPARK * 3 + 1];
    snprintf(rate, sizeof rate, "%.1f", a->jobs_per_s);
    tui_fmt_ms((int64_t)(a->p50_ms + 0.5), p50, sizeof p50);
    tui_fmt_ms((int64_t)(a->p95_ms + 0.5), p95, sizeof p95);
    tui_fmt_ms(s->oldest_waiting_ms, oldest, sizeof oldest);
    int spark_w = COLS >= 120 ? 30 : COLS >= 100 ? 20 : 12;
    tui_sparkline(a->spark, a->n_spark, (size_t)spark_w, a->utf8, spark, sizeof spark);
    x = 1;
    put(2, x, COLS - x, A_NORMAL, "jobs/s ");
    x += 7;
    put(2, x, COLS - x, A_BOLD, "%-7s", rate);
    x += 8;
    put(2, x, COLS - x, pair_or(a, P_OK, A_NORMAL), "%s", spark);
    x += spark_w + 1;
    char rest[256];
    const aspen_engine_throughput *t = &s->throughput;
    snprintf(rest, sizeof rest, " p50 %s p95 %s | oldest queued %s | warm VMs %zu, hit %.0f%%", p50,
             p95, s->oldest_waiting_ms > 0 ? oldest : "-", t->pool_vms, t->pool_hit_rate * 100.0);
    put(2, x, COLS - x, A_NORMAL, "%s", rest);
}

static void draw_tabs(tui_app *a)
{
    int x = 0;
    for (int p = 0; p < TUI_PANE_COUNT; p++) {
        bool on = (int)a->pane == p && a->mode != TUI_MODE_DETAIL && a->mode != TUI_MODE_HELP;
        char label[32];
        snprintf(label, sizeof label, " %d %s ", p + 1, tui_pane_name(p));
        put(3, x, COLS - x, on ? A_REVERSE | A_BOLD : A_NORMAL, "%s", label);
        x += (int)strlen(label) + 1;
    }
    char info[700];
    if (a->pane == TUI_PANE_LOGS)
        snprintf(info, sizeof info, "%s | follow %s | wrap %s | time %s%s%s%s",
                 a->logs_job ? "one job" : "all jobs, live", a->follow ? "ON" : "off",
                 a->wrap ? "on" : "off", a->timestamps ? "on" : "off", a->search[0] ? " | /" : "",
                 a->search, "");
    else if (a->pane == TUI_PANE_JOBS)
        snprintf(info, sizeof info, "filter: %s | sort %s%s%s%s",
                 a->filter_text[0] ? a->filter_text : "(none, / to set)", tui_sort_name(a->sort_col),
                 (a->sort_reverse ^ (a->sort_col == TUI_SORT_ID && a->order_reverse)) ? " (rev)" : "",
                 a->marks.n ? " | marked " : "", a->marks.n ? "" : "");
    else
        snprintf(info, sizeof info, "%d workers, %zu warm VMs", a->snap.n_workers,
                 a->snap.throughput.pool_vms);
    if (a->pane == TUI_PANE_JOBS && a->marks.n) {
        size_t len = strlen(info);
        snprintf(info + len, sizeof info - len, "%zu", a->marks.n);
    }
    put(3, x + 1, COLS - x - 1, A_DIM, "%s", info);
}

/* ---- jobs ------------------------------------------------------------------------------------- */

static long jobs_total(const tui_app *a)
{
    if (tui_filter_states_only(&a->filter) && a->have_snap) {
        long total = 0;
        for (int st = 0; st < ASPEN_STORE_STATE_COUNT; st++)
            if (!a->filter.states || (a->filter.states & (1u << st)))
                total += (long)a->snap.counts[st];
        /* the counts and the rows come from two reads: never show fewer rows than are loaded */
        if (total < a->win_offset + (long)a->n_rows)
            total = a->win_offset + (long)a->n_rows;
        return total;
    }
    return a->win_offset + (long)a->n_rows + (a->has_more ? 1 : 0);
}

long tui_jobs_total(const tui_app *a) { return jobs_total(a); }

static void draw_job_row(tui_app *a, int y, const tui_row *r, bool selected, int n_cols,
                         const int *which, const int *widths, int64_t now)
{
    attr_t base = selected ? A_REVERSE : A_NORMAL;
    if (selected)
        fill_line(y, A_REVERSE);
    int x = 0;
    for (int c = 0; c < n_cols; c++) {
        int col = which[c], w = widths[col];
        char buf[160] = "";
        attr_t attr = base;
        switch (col) {
        case TUI_COL_MARK: snprintf(buf, sizeof buf, "%s", tui_marks_has(&a->marks, r->id) ? "*" : " ");
            attr |= A_BOLD;
            break;
        case TUI_COL_ID: snprintf(buf, sizeof buf, "%*lld", w, (long long)r->id); break;
        case TUI_COL_TYPE: snprintf(buf, sizeof buf, "%s", r->type); break;
        case TUI_COL_GUEST: snprintf(buf, sizeof buf, "%s", r->guest); break;
        case TUI_COL_STATE:
            snprintf(buf, sizeof buf, "%s", aspen_store_state_name(r->state));
            attr = selected ? A_REVERSE | A_BOLD : state_attr(a, r->state);
            break;
        case TUI_COL_ATTEMPTS: snprintf(buf, sizeof buf, "%d/%d", r->attempts, r->max_attempts); break;
        case TUI_COL_PRIO: snprintf(buf, sizeof buf, "%4d", r->priority); break;
        case TUI_COL_AGE: tui_fmt_ms(now - r->created_ms, buf, sizeof buf); break;
        case TUI_COL_DUR: tui_fmt_ms(tui_row_duration_ms(r, now), buf, sizeof buf); break;
        case TUI_COL_ERROR:
            snprintf(buf, sizeof buf, "%s", r->error);
            if (!selected && r->error[0])
                attr = pair_or(a, P_FAILED, A_NORMAL);
            break;
        default: break;
        }
        put(y, x, w, attr, "%s", buf);
        x += w + 1;
    }
}

static void draw_jobs(tui_app *a, int y0, int h)
{
    if (h < 2)
        return;
    int which[TUI_COL_N], widths[TUI_COL_N];
    int n_cols = tui_job_columns(COLS, which, widths);
    int x = 0;
    for (int c = 0; c < n_cols; c++) {
        int col = which[c];
        put(y0, x, widths[col], A_BOLD | A_UNDERLINE, "%-*s", widths[col], tui_col_title(col));
        x += widths[col] + 1;
    }
    long total = jobs_total(a);
    long rows_h = h - 1;
    tui_scroll(&a->cursor, &a->top, total, rows_h);
    int64_t now = aspen_store_now_ms();
    if (total == 0) {
        put(y0 + 2, 2, COLS - 4, A_DIM, "%s",
            !a->rows_loaded ? "loading..." :
            a->filter_text[0] ? "No job matches the filter (/ to change it, esc in the prompt clears)."
                              : "No jobs yet. Press s to submit one (echo-worker is ready), ? for help.");
        return;
    }
    for (long i = 0; i < rows_h && a->top + i < total; i++) {
        long idx = a->top + i;
        long local = idx - a->win_offset;
        int y = y0 + 1 + (int)i;
        if (local < 0 || local >= (long)a->n_rows) {
            put(y, 0, COLS, A_DIM, "%*s  ...", widths[TUI_COL_ID] + 2, "");
            continue;
        }
        draw_job_row(a, y, &a->rows[local], idx == a->cursor, n_cols, which, widths, now);
    }
    /* position on the right of the header line */
    char pos[64];
    snprintf(pos, sizeof pos, " %ld/%ld%s ", total ? a->cursor + 1 : 0, total,
             tui_filter_states_only(&a->filter) || !a->has_more ? "" : "+");
    int pw = (int)strlen(pos);
    put(y0, COLS - pw, pw, A_BOLD, "%s", pos);
}

/* ---- VMs ------------------------------------------------------------------------------------- */

static void draw_vms(tui_app *a, int y0, int h)
{
    const aspen_engine_throughput *t = &a->snap.throughput;
    char used[32], budget[32];
    tui_fmt_size(t->pool_bytes, used, sizeof used);
    tui_fmt_size(t->pool_budget, budget, sizeof budget);
    put(y0, 1, COLS - 1, A_BOLD,
        "Warm pool: %zu VMs, %s of %s | hit rate %.1f%% (%llu hits, %llu misses, %llu evicted) | "
        "images %zu | claimed, waiting %zu",
        t->pool_vms, used, budget, t->pool_hit_rate * 100.0, (unsigned long long)t->pool_hits,
        (unsigned long long)t->pool_misses, (unsigned long long)t->pool_evictions, t->images,
        t->queue_depth);
    bool wide = COLS >= 110;
    if (wide)
        put(y0 + 1, 0, COLS, A_BOLD | A_UNDERLINE,
            "%-3s %-9s %8s %-18s %8s %8s %8s %8s %8s %6s %6s %7s", "W", "STATE", "JOB", "GUEST",
            "MEM", "TOUCHED", "DIRTIED", "COLD", "LASTRUN", "EXITS", "HCALLS", "DONE");
    else
        put(y0 + 1, 0, COLS, A_BOLD | A_UNDERLINE, "%-3s %-8s %7s %-14s %6s %6s %6s %7s %7s %5s",
            "W", "STATE", "JOB", "GUEST", "MEM", "TOUCH", "DIRTY", "COLD", "LAST", "EXITS");
    for (int i = 0; i < a->snap.n_workers && i < h - 2; i++) {
        const aspen_engine_worker_status *w = &a->snap.workers[i];
        char mem[16], touched[16], dirt[16], cold[16], last[16], job[24];
        tui_fmt_size(w->memory_configured, mem, sizeof mem);
        tui_fmt_size(w->memory_touched, touched, sizeof touched);
        tui_fmt_size((uint64_t)w->pages_dirtied * 4096u, dirt, sizeof dirt);
        tui_fmt_us((int64_t)(w->cold_start_ns / 1000), cold, sizeof cold);
        tui_fmt_us((int64_t)(w->last_run_ns / 1000), last, sizeof last);
        snprintf(job, sizeof job, "%lld", (long long)w->job_id);
        bool running = strcmp(w->state, "running") == 0;
        attr_t attr = running ? state_attr(a, ASPEN_STORE_RUNNING) : A_NORMAL;
        int y = y0 + 2 + i;
        if (wide)
            put(y, 0, COLS, attr, "%-3d %-9s %8s %-18.18s %8s %8s %8s %8s %8s %6u %6u %7llu%s",
                w->index, w->state, w->job_id ? job : "-", w->guest[0] ? w->guest : "-", mem,
                touched, dirt, w->cold_start_ns ? cold : "-", w->last_run_ns ? last : "-", w->exits,
                w->host_calls, (unsigned long long)w->jobs_done, w->last_was_cold ? " cold" : "");
        else
            put(y, 0, COLS, attr, "%-3d %-8.8s %7s %-14.14s %6s %6s %6s %7s %7s %5u", w->index,
                w->state, w->job_id ? job : "-", w->guest[0] ? w->guest : "-", mem, touched, dirt,
                w->cold_start_ns ? cold : "-", w->last_run_ns ? last : "-", w->exits);
    }
    if (a->snap.n_workers == 0)
        put(y0 + 3, 2, COLS - 2, A_DIM, "no workers (started with --workers 0?)");
}

/* ---- logs ------------------------------------------------------------------------------------- */

static void draw_log_lines(tui_app *a, tui_logbuf *b, int y0, int h, bool follow, bool remember)
{
    if (h <= 0)
        return;
    int width = COLS;
    char text[2048];
    long n = (long)b->n;
    long first;
    if (follow || !remember) {
        /* walk back from the end until the rows are used */
        int used = 0;
        first = n;
        while (first > 0) {
            tui_log_format(tui_logbuf_get(b, (size_t)first - 1), a->timestamps, !a->logs_job || !remember,
                           text, sizeof text);
            int r = tui_wrap_rows(strlen(text), width, a->wrap);
            if (used + r > h)
                break;
            used += r;
            first--;
        }
    } else {
        first = a->log_top < 0 ? 0 : a->log_top >= n ? (n > 0 ? n - 1 : 0) : a->log_top;
    }
    int y = y0;
    long shown = 0;
    for (long i = first; i < n && y < y0 + h; i++, shown++) {
        const tui_log_entry *e = tui_logbuf_get(b, (size_t)i);
        tui_log_format(e, a->timestamps, !a->logs_job || !remember, text, sizeof text);
        attr_t attr = A_NORMAL;
        if (remember && i == a->search_hit)
            attr = pair_or(a, P_HIT, A_REVERSE);
        else if (e->job_id == 0)
            attr = A_DIM;
        size_t len = strlen(text);
        if (!a->wrap || (int)len <= width) {
            put(y++, 0, width, attr, "%s", text);
            continue;
        }
        for (size_t off = 0, next; off < len && y < y0 + h; off = next) {
            /* rows break between characters, not inside one (the text is UTF-8) */
            next = off + (size_t)width < len ? off + (size_t)width : len;
            while (next > off + 1 && next < len && ((unsigned char)text[next] & 0xc0) == 0x80)
                next--;
            put(y++, 0, (int)(next - off), attr, "%.*s", (int)(next - off), text + off);
        }
    }
    if (remember) {
        a->log_first_shown = first;
        a->log_shown = shown;
    }
    if (n == 0)
        put(y0, 1, COLS - 1, A_DIM, "%s",
            a->logs_job ? "no log lines for this job yet" : "no log lines yet: guests' hl_println output appears here live");
}

static void draw_logs(tui_app *a, int y0, int h)
{
    tui_logbuf *b = tui_logs_current(a);
    char title[256];
    if (a->logs_job)
        snprintf(title, sizeof title, "Logs of job %lld (a: all jobs)", (long long)a->logs_job);
    else
        snprintf(title, sizeof title, "Logs of all jobs, live%s", b->dropped ? " (oldest dropped)" : "");
    put(y0, 0, COLS, A_BOLD | A_UNDERLINE, "%-*s", COLS, title);
    if (!a->follow)
        put(y0, COLS - 34, 34, A_BOLD, "%s", " paused: f or G to follow again ");
    draw_log_lines(a, b, y0 + 1, h - 1, a->follow, true);
}

/* ---- overlays --------------------------------------------------------------------------------- */

static void draw_text_view(tui_app *a, const tui_text *t, long *top, int y0, int h, const char *title)
{
    put(y0, 0, COLS, A_BOLD | A_REVERSE, " %-*s", COLS - 1, title);
    long rows = h - 1;
    long maxtop = (long)t->n - rows;
    if (*top > maxtop)
        *top = maxtop;
    if (*top < 0)
        *top = 0;
    for (long i = 0; i < rows && *top + i < (long)t->n; i++) {
        const char *line = t->lines[*top + i];
        attr_t attr = A_NORMAL;
        if (line[0] && line[0] != ' ')
            attr = A_BOLD; /* section titles */
        put(y0 + 1 + (int)i, 1, COLS - 1, attr, "%s", line);
    }
    if ((long)t->n > rows) {
        char pos[48];
        snprintf(pos, sizeof pos, " %ld-%ld of %zu ", *top + 1,
                 *top + rows < (long)t->n ? *top + rows : (long)t->n, t->n);
        put(y0, COLS - (int)strlen(pos), (int)strlen(pos), A_BOLD | A_REVERSE, "%s", pos);
    }
    (void)a;
}

static void box_at(int y, int x, int h, int w)
{
    for (int i = 0; i < h; i++)
        mvhline(y + i, x, ' ', w);
    mvhline(y, x + 1, ACS_HLINE, w - 2);
    mvhline(y + h - 1, x + 1, ACS_HLINE, w - 2);
    mvvline(y + 1, x, ACS_VLINE, h - 2);
    mvvline(y + 1, x + w - 1, ACS_VLINE, h - 2);
    mvaddch(y, x, ACS_ULCORNER);
    mvaddch(y, x + w - 1, ACS_URCORNER);
    mvaddch(y + h - 1, x, ACS_LLCORNER);
    mvaddch(y + h - 1, x + w - 1, ACS_LRCORNER);
}

static int cursor_y = -1, cursor_x = -1;

static void draw_form(tui_app *a)
{
    int w = COLS - 4 < 96 ? COLS - 4 : 96, h = 17;
    if (h > LINES - 2)
        h = LINES - 2;
    int y0 = (LINES - h) / 2, x0 = (COLS - w) / 2;
    box_at(y0, x0, h, w);
    put(y0, x0 + 2, w - 4, A_BOLD, " Submit a job ");
    static const char *labels[] = {"Guest", "Payload", "Timeout s", "Priority", "Attempts",
                                   "Count", "Tags"};
    int lx = x0 + 2, fx = x0 + 14, fw = w - 16;
    for (int f = 0; f < TUI_F_SUBMIT; f++) {
        int y = y0 + 2 + f;
        bool on = a->field == f;
        put(y, lx, 11, on ? A_BOLD : A_NORMAL, "%s", labels[f]);
        if (f == TUI_F_GUEST) {
            const tui_guest *g = a->n_guests ? &a->guests[a->guest_sel] : NULL;
            put(y, fx, fw, on ? A_REVERSE : A_UNDERLINE, "< %s%s >", g ? g->name : "(no guests found)",
                !g ? "" : g->handler ? " (in-process handler)" : g->sha256[0] ? " (stored binary)" : "");
            if (on && a->f[TUI_F_GUEST].len)
                put(y, fx + fw - 20, 20, A_DIM, " find: %.12s", a->f[TUI_F_GUEST].buf);
            continue;
        }
        const tui_line *l = &a->f[f];
        size_t off = tui_line_scroll(l, fw);
        attron(on ? A_REVERSE : A_UNDERLINE);
        mvhline(y, fx, ' ', fw);
        mvaddnstr(y, fx, l->buf + off, fw);
        attroff(on ? A_REVERSE : A_UNDERLINE);
        if (on) {
            cursor_y = y;
            cursor_x = fx + (int)(l->cur - off);
        }
    }
    int y = y0 + 2 + TUI_F_SUBMIT;
    put(y + 1, fx, fw, a->field == TUI_F_SUBMIT ? A_REVERSE | A_BOLD : A_BOLD, "[ Submit ]");
    put(y + 3, lx, w - 4, a->form_ok ? pair_or(a, P_OK, A_NORMAL) : pair_or(a, P_FAILED, A_BOLD),
        "%s", a->form_msg);
    if (h >= 16)
        put(y0 + h - 2, lx, w - 4, A_DIM, "%s",
            "tab/down next field, up back, left/right or type to pick a guest, ctrl-s or enter on "
            "Submit sends, esc closes");
}

static void draw_confirm(tui_app *a)
{
    int w = COLS - 4 < 70 ? COLS - 4 : 70, h = 6;
    int y0 = (LINES - h) / 2, x0 = (COLS - w) / 2;
    box_at(y0, x0, h, w);
    put(y0, x0 + 2, w - 4, A_BOLD, " Confirm ");
    put(y0 + 2, x0 + 2, w - 4, A_BOLD, "%s", a->confirm_text);
    put(y0 + 3, x0 + 2, w - 4, A_NORMAL, "y: yes   n / esc: no");
}

static void draw_foot(tui_app *a)
{
    int y = a->lay.foot_y;
    move(y, 0);
    clrtoeol();
    if (a->mode == TUI_MODE_PROMPT) {
        const char *lead = a->prompt_kind == TUI_PROMPT_FILTER   ? "filter> "
                           : a->prompt_kind == TUI_PROMPT_SEARCH ? "search> "
                                                                 : ":";
        int lw = (int)strlen(lead);
        put(y, 0, lw, A_BOLD, "%s", lead);
        size_t off = tui_line_scroll(&a->prompt, COLS - lw);
        put(y, lw, COLS - lw, A_NORMAL, "%s", a->prompt.buf + off);
        cursor_y = y;
        cursor_x = lw + (int)(a->prompt.cur - off);
        return;
    }
    uint64_t now = (uint64_t)aspen_store_now_ms();
    if (a->status[0] && now < a->status_until_ms) {
        put(y, 0, COLS, a->status_error ? pair_or(a, P_ERRMSG, A_REVERSE | A_BOLD) : A_BOLD, "%s",
            a->status);
        return;
    }
    const char *hint;
    switch (a->mode) {
    case TUI_MODE_DETAIL: hint = "esc back  up/down scroll  c cancel  r rerun  l logs  ? help"; break;
    case TUI_MODE_HELP: hint = "esc back  up/down scroll"; break;
    case TUI_MODE_SUBMIT: hint = "ctrl-s submit  esc close"; break;
    default:
        if (a->pane == TUI_PANE_LOGS)
            hint = "? help  f follow  / search  n/N next/prev  w wrap  t time  a all  tab pane  q quit";
        else
            hint = "? help  s submit  / filter  enter detail  c cancel  r rerun  space mark  p pause  "
                   "tab pane  q quit";
    }
    put(y, 0, COLS, A_DIM, "%s", hint);
}

void tui_draw(tui_app *a)
{
    double t0 = tui_mono_ms();
    cursor_y = cursor_x = -1;
    tui_layout_compute(COLS, LINES, a->pane, &a->lay);
    erase();
    if (a->lay.too_small) {
        put(0, 0, COLS, A_BOLD, "Aspen console: the terminal is %dx%d;", COLS, LINES);
        put(1, 0, COLS, A_NORMAL, "it needs at least 60x12 (80x24 is good). q quits.");
    } else {
        draw_header(a);
        draw_tabs(a);
        int y0 = a->lay.body_y, h = a->lay.body_h;
        if (a->mode == TUI_MODE_DETAIL) {
            char title[64];
            snprintf(title, sizeof title, "Job %lld%s", (long long)a->detail_id,
                     a->detail_loaded ? "" : " (loading...)");
            draw_text_view(a, &a->detail, &a->detail_top, y0, h + a->lay.split_h, title);
        } else if (a->mode == TUI_MODE_HELP) {
            draw_text_view(a, &a->help, &a->help_top, y0, h + a->lay.split_h, "Help");
        } else {
            if (a->pane == TUI_PANE_JOBS) {
                draw_jobs(a, y0, h);
                if (a->lay.split_h > 1) {
                    put(a->lay.split_y, 0, COLS, A_BOLD | A_UNDERLINE, "%-*s", COLS,
                        "Live logs (3 or tab: the logs pane)");
                    draw_log_lines(a, &a->logs_all, a->lay.split_y + 1, a->lay.split_h - 1, true, false);
                }
            } else if (a->pane == TUI_PANE_VMS) {
                draw_vms(a, y0, h);
            } else {
                draw_logs(a, y0, h);
            }
            if (a->mode == TUI_MODE_SUBMIT)
                draw_form(a);
            else if (a->mode == TUI_MODE_CONFIRM)
                draw_confirm(a);
        }
        draw_foot(a);
    }
    if (cursor_y >= 0) {
        curs_set(1);
        move(cursor_y, cursor_x);
    } else {
        curs_set(0);
    }
    wnoutrefresh(stdscr);
    doupdate();
    double t1 = tui_mono_ms();
    a->last_draw_ms = t1;
    if (a->n_draw < a->cap_lat)
        a->draw_ms[a->n_draw++] = t1 - t0;
}
