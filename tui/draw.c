/* tui/draw.c — the frame around the panes: header, pane tabs, footer (hints generated from the
 * keymap), the overlays (submit form, confirm, prompt), and the one text-drawing function; each
 * view's body is drawn by its module (pane_*.c). One frame is
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

/* The terminal's character set, for tui_put's cut marker (tui_put takes no app). */
static bool draw_utf8;

void tui_draw_init(tui_app *a)
{
    draw_utf8 = a->utf8;
    a->colors = has_colors() && !getenv("NO_COLOR");
    if (!a->colors)
        return;
    start_color();
    use_default_colors();
    init_pair(TUI_P_QUEUED, COLOR_CYAN, -1);
    init_pair(TUI_P_SCHED, COLOR_BLUE, -1);
    init_pair(TUI_P_RUNNING, COLOR_YELLOW, -1);
    init_pair(TUI_P_OK, COLOR_GREEN, -1);
    init_pair(TUI_P_FAILED, COLOR_RED, -1);
    init_pair(TUI_P_CANCELLED, COLOR_MAGENTA, -1);
    init_pair(TUI_P_TITLE, COLOR_BLACK, COLOR_CYAN);
    init_pair(TUI_P_DIM, COLOR_WHITE, -1);
    init_pair(TUI_P_ERRMSG, COLOR_WHITE, COLOR_RED);
    init_pair(TUI_P_HIT, COLOR_BLACK, COLOR_YELLOW);
}

/* Colour where there is colour; a distinct attribute where there is none. */
unsigned long tui_state_attr(const tui_app *a, aspen_store_state s)
{
    static const attr_t mono[] = {A_NORMAL, A_DIM, A_BOLD, A_NORMAL, A_BOLD | A_UNDERLINE, A_DIM};
    if (s < 0 || s >= ASPEN_STORE_STATE_COUNT)
        return A_NORMAL;
    if (!a->colors)
        return mono[s];
    attr_t extra = s == ASPEN_STORE_RUNNING || s == ASPEN_STORE_FAILED ? A_BOLD : A_NORMAL;
    return COLOR_PAIR(TUI_P_QUEUED + s) | extra;
}

unsigned long tui_pair_or(const tui_app *a, int pair, unsigned long mono)
{
    return a->colors ? COLOR_PAIR(pair) : mono;
}

/* Writes at most w display columns of text at y, x (cut between characters: a wide character
 * takes two). Every string drawn goes through here, and through the sanitiser (aspen_text.h) on
 * the way: the view models keep job text escaped already, so this is the last guard that nothing
 * raw (ESC, CR, C1, bidi, bad UTF-8) ever reaches the terminal. It is also the one place text is
 * cut: what does not fit ends in the cut marker (tui_cols_fit_cut: "…", or "~" without UTF-8),
 * so a cut error, cell or message never reads as if it were whole. */
void tui_put(int y, int x, int w, unsigned long attr, const char *fmt, ...)
{
    if (w <= 0 || y < 0 || y >= LINES || x >= COLS || x < 0)
        return;
    if (w > COLS - x)
        w = COLS - x;
    char buf[4096], safe[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    aspen_text_escape_str(buf, ASPEN_TEXT_SPACES, safe, sizeof safe);
    bool cut;
    size_t fit = tui_cols_fit_cut(safe, strlen(safe), w, &cut);
    int used = tui_cols(safe, fit);
    attron((attr_t)attr);
    mvaddnstr(y, x, safe, (int)fit);
    if (cut)
        mvaddstr(y, x + used, tui_cut_marker(draw_utf8));
    attroff((attr_t)attr);
}

void tui_put_error_line(tui_app *a, int y, int x, int w, const char *text)
{
    attr_t attr = tui_pair_or(a, TUI_P_ERRMSG, A_BOLD);
    static const char whole[] = " (all of it: 3, Logs)";
    int hw = (int)sizeof whole - 1;
    if (tui_cols(text, strlen(text)) <= w || w <= hw + 10) {
        tui_put(y, x, w, attr, "%s", text);
        return;
    }
    tui_put(y, x, w - hw, attr, "%s", text); /* cut here, with the marker */
    tui_put(y, x + w - hw, hw, attr, "%s", whole);
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

/* ---- header: it adapts to the width (short names, a shorter sparkline), never cut ------------- */

static int text_cols(const char *s) { return tui_cols(s, strlen(s)); }

static void draw_header(tui_app *a)
{
    const aspen_engine_snapshot *s = &a->snap;
    attr_t title = tui_pair_or(a, TUI_P_TITLE, A_REVERSE);
    fill_line(0, title);
    int busy = 0;
    for (int i = 0; i < s->n_workers; i++)
        if (strcmp(s->workers[i].state, "running") == 0 || strcmp(s->workers[i].state, "building") == 0)
            busy++;
    /* The database away (a server restart): said first, with for how long, so nobody takes the
     * last counts on screen for live ones. */
    char state[48];
    int64_t since = s->reconnecting ? s->reconnecting_since_ms
                    : a->stats_reconnecting ? a->stats_reconnecting_since_ms : 0;
    if (s->reconnecting || a->stats_reconnecting)
        snprintf(state, sizeof state, "reconnecting %llds",
                 (long long)(since > 0 ? (aspen_store_now_ms() - since) / 1000 : 0));
    else
        snprintf(state, sizeof state, "%s",
                 !a->have_snap ? "starting" : s->paused ? "PAUSED" : "running");
    char left[256];
    snprintf(left, sizeof left, " Aspen console | %s | workers %d/%d busy | engine %lld", state,
             busy, s->n_workers, (long long)s->engine_id);
    tui_put(0, 0, COLS, title | A_BOLD, "%s", left);
    char db[512]; /* a PostgreSQL conninfo may hold a password */
    aspen_store_name_shown(aspen_engine_db_path(a->eng), db, sizeof db);
    /* the whole name when it fits; else the file name (SQLite) or host/db (PostgreSQL: a
     * conninfo is long, and at 80 columns the header showed no database at all), else the
     * database's name alone; else that cut, its end marked '~', so which database this is never
     * goes from the screen */
    char label[512];
    tui_db_label(db, label, sizeof label);
    const char *dbname = aspen_store_name_is_postgres(db) && strchr(label, '/')
                             ? strchr(label, '/') + 1
                             : label;
    const char *shown = text_cols(db) <= COLS - text_cols(left) - 6 ? db
                       : text_cols(label) <= COLS - text_cols(left) - 6 ? label
                                                                       : dbname;
    int lw = text_cols(left), room = COLS - lw - 6;
    if (text_cols(shown) <= room)
        tui_put(0, COLS - text_cols(shown) - 4, text_cols(shown) + 4, title, " db %s", shown);
    else if (room >= 8) {
        size_t fit = tui_cols_fit(shown, strlen(shown), room - 1, NULL);
        tui_put(0, COLS - room - 4, room + 4, title, " db %.*s~", (int)fit, shown);
    }

    /* counts by state, exact when they fit (20031, not 20.0k: a count that moves by one is
     * seen to move), with full names, else short names; only when exact counts do not fit
     * even with short names and one space between are they abbreviated */
    static const char *short_names[] = {"queued", "sched", "running", "ok", "failed", "cancel"};
    char counts[ASPEN_STORE_STATE_COUNT][32];
    const char *names[ASPEN_STORE_STATE_COUNT];
    int gap = 2;
    for (int form = 0; form < 6; form++) {
        bool exact = form < 3, longn = form % 3 == 0;
        gap = form % 3 == 2 ? 1 : 2;
        int need = 1;
        for (int st = 0; st < ASPEN_STORE_STATE_COUNT; st++) {
            if (exact)
                snprintf(counts[st], sizeof counts[st], "%lld", (long long)s->counts[st]);
            else
                tui_fmt_count(s->counts[st], counts[st], sizeof counts[st]);
            names[st] = longn ? aspen_store_state_name(st) : short_names[st];
            need += (int)(strlen(names[st]) + strlen(counts[st])) + 1 + gap;
        }
        if (need - gap <= COLS)
            break;
    }
    int x = 1;
    for (int st = 0; st < ASPEN_STORE_STATE_COUNT; st++) {
        tui_put(1, x, COLS - x, tui_state_attr(a, st), "%s", names[st]);
        x += (int)strlen(names[st]) + 1;
        tui_put(1, x, COLS - x, A_BOLD, "%s", counts[st]);
        x += (int)strlen(counts[st]) + gap;
    }

    /* rates: the long wording with a long sparkline when there is room, shorter ones when not */
    char rate[32], p50[32], p95[32], oldest[32], spark[TUI_SPARK * 3 + 1], rate_label[32];
    snprintf(rate, sizeof rate, "%.1f", a->jobs_per_s);
    /* jobs/s over the last minute of ticks; until the console has been open that long, over
     * the seconds it has (said, so a young figure is not read as a minute's); after a suspend
     * (ctrl-z) one tick spans the pause, and the window says that too */
    double win_s = a->jobs_per_s_window;
    if (win_s >= TUI_RATE_WINDOW - 1.5 && win_s <= TUI_RATE_WINDOW + 1.5)
        snprintf(rate_label, sizeof rate_label, "jobs/s (1m) ");
    else if (win_s < 99.5)
        snprintf(rate_label, sizeof rate_label, "jobs/s (%.0fs) ", win_s);
    else
        snprintf(rate_label, sizeof rate_label, "jobs/s (%.0fm) ", win_s / 60.0);
    int rl = (int)strlen(rate_label);
    /* p50/p95 of the last 5 minutes of every engine's history (pane_metrics.c), so they say
     * their window and survive a restart; "-" before the first read or when nothing finished */
    if (a->metrics_known && a->p50_ms >= 0) {
        /* one rule for both, the Metrics pane's (0: an in-process handler's whole ms, "<1ms" or
         * "<=" a p95 under 1 ms), so p50 never reads larger than p95 */
        int64_t us[2] = {(int64_t)(a->p50_ms * 1000.0 + 0.5), (int64_t)(a->p95_ms * 1000.0 + 0.5)};
        char q[2][32];
        tui_fmt_quantiles(us, 2, q);
        snprintf(p50, sizeof p50, "%s", q[0]);
        snprintf(p95, sizeof p95, "%s", q[1]);
    } else {
        snprintf(p50, sizeof p50, "-");
        snprintf(p95, sizeof p95, "-");
    }
    tui_fmt_ms(s->oldest_waiting_ms, oldest, sizeof oldest);
    const aspen_engine_throughput *t = &s->throughput;
    const char *old = s->oldest_waiting_ms > 0 ? oldest : "-";
    char forms[3][256];
    snprintf(forms[0], sizeof forms[0], "p50 %s p95 %s (last 5m, %zu runs) | oldest queued %s | warm VMs %zu, hit %.0f%%",
             p50, p95, a->n_recent, old, t->pool_vms, t->pool_hit_rate * 100.0);
    snprintf(forms[1], sizeof forms[1], "p50 %s p95 %s (5m) | oldest %s | warm %zu, %.0f%% hit", p50,
             p95, old, t->pool_vms, t->pool_hit_rate * 100.0);
    snprintf(forms[2], sizeof forms[2], "p50 %s p95 %s (5m) | oldest %s | warm %zu", p50, p95, old,
             t->pool_vms);
    static const int sparks[] = {30, 20, 12, 8, 0};
    int pick = 2, spark_w = 0;
    for (int f = 0; f < 3; f++) {
        for (size_t k = 0; k < sizeof sparks / sizeof sparks[0]; k++) {
            if (sparks[k] > (COLS >= 120 ? 30 : COLS >= 100 ? 20 : 12))
                continue;
            int need = 1 + rl + 7 + sparks[k] + (sparks[k] ? 1 : 0) + text_cols(forms[f]);
            if (need <= COLS && (f < 2 ? sparks[k] >= 8 : true)) {
                pick = f;
                spark_w = sparks[k];
                goto chosen;
            }
        }
    }
chosen:
    tui_sparkline(a->spark, a->n_spark, (size_t)spark_w, a->utf8, spark, sizeof spark);
    x = 1;
    tui_put(2, x, COLS - x, A_NORMAL, "%s", rate_label);
    x += rl;
    tui_put(2, x, COLS - x, A_BOLD, "%-6s", rate);
    x += 7;
    if (spark_w) {
        tui_put(2, x, spark_w, tui_pair_or(a, TUI_P_OK, A_NORMAL), "%s", spark);
        x += spark_w + 1;
    }
    tui_put(2, x, COLS - x, A_NORMAL, "%s", forms[pick]);
}

static void draw_tabs(tui_app *a)
{
    int x = 0;
    bool on_pane = a->view < TUI_VIEW_DETAIL;
    for (int p = 0; p < TUI_PANE_COUNT; p++) {
        bool on = (int)a->pane == p && on_pane;
        char label[32];
        tui_tab_label((tui_pane)p, COLS, label, sizeof label); /* narrower under 100 columns */
        tui_put(3, x, COLS - x, on ? A_REVERSE | A_BOLD : A_NORMAL, "%s", label);
        x += (int)strlen(label) + 1;
    }
    char info[900];
    bool narrow = COLS < 100;
    if (a->view == TUI_VIEW_DETAIL)
        snprintf(info, sizeof info, "job %lld", (long long)a->detail_id);
    else if (a->view == TUI_VIEW_HELP)
        snprintf(info, sizeof info, "help");
    else if (a->pane == TUI_PANE_LOGS)
        /* under 100 columns seven tabs leave 37: "ts" for the timestamps, so the three
         * settings are whole; only a search after them is cut */
        snprintf(info, sizeof info, narrow ? "%s | follow %s wrap %s ts %s%s%s"
                                           : "%s | follow %s | wrap %s | time %s%s%s",
                 a->logs_job ? "one job" : narrow ? "all jobs" : "all jobs, live",
                 a->follow ? "ON" : "off", a->wrap ? "on" : "off", a->timestamps ? "on" : "off",
                 a->search[0] ? " | /" : "", a->search);
    else if (a->pane == TUI_PANE_JOBS) {
        char marked[48] = "";
        if (a->marks.n)
            snprintf(marked, sizeof marked, " | marked %zu", a->marks.n);
        bool rev = a->sort_reverse ^ (a->sort_col == TUI_SORT_ID && a->order_reverse);
        snprintf(info, sizeof info, "filter: %s | sort %s%s%s",
                 a->filter_text[0] ? a->filter_text : narrow ? "(none: /)" : "(none, / to set)",
                 tui_sort_name(a->sort_col), rev ? " (rev)" : "", marked);
        /* seven tabs leave 37 columns at 80: a longer sort (duration, reversed, marks) goes
         * without the word "filter:" first, before anything is cut */
        if (text_cols(info) > COLS - x - 1)
            snprintf(info, sizeof info, "%s | sort %s%s%s",
                     a->filter_text[0] ? a->filter_text : "no filter", tui_sort_name(a->sort_col),
                     rev ? " (rev)" : "", marked);
    } else
        snprintf(info, sizeof info, "%d worker%s, %zu warm VM%s", a->snap.n_workers,
                 a->snap.n_workers == 1 ? "" : "s", a->snap.throughput.pool_vms,
                 a->snap.throughput.pool_vms == 1 ? "" : "s");
    int avail = COLS - x - 1;
    int iw = text_cols(info);
    if (iw > avail && avail > 4) {
        /* a long filter: its end is cut, marked, never the sort and the marks after it */
        size_t fit = tui_cols_fit(info, strlen(info), avail - 3, NULL);
        tui_put(3, x + 1, avail, A_DIM, "%.*s...", (int)fit, info);
    } else {
        tui_put(3, x + 1, avail, A_DIM, "%s", info);
    }
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

/* One line of a field: the text from byte off, at most w columns, on a blank of w. */
static void field_line(int y, int x, int w, attr_t attr, const char *text, size_t len)
{
    attron(attr);
    mvhline(y, x, ' ', w);
    attroff(attr);
    size_t fit = tui_cols_fit(text, len, w, NULL);
    if (fit)
        tui_put(y, x, w, attr, "%.*s", (int)fit, text);
}

/* The payload: several lines, the one with the cursor scrolled sideways to keep it in view. */
static void draw_payload(tui_app *a, int y, int x, int w, int rows, bool on, attr_t attr)
{
    const tui_line *l = &a->f[TUI_F_PAYLOAD];
    size_t n_rows, row = tui_line_row(l, &n_rows);
    size_t first = row >= (size_t)rows ? row - (size_t)rows + 1 : 0;
    size_t i = 0, start = 0;
    while (i < first) { /* the start of the first line shown */
        if (l->buf[start] == '\n')
            i++;
        start++;
    }
    for (int r = 0; r < rows; r++) {
        if (first + (size_t)r >= n_rows) {
            field_line(y + r, x, w, attr, "", 0);
            continue;
        }
        size_t end = start;
        while (end < l->len && l->buf[end] != '\n')
            end++;
        size_t off = 0;
        bool cursor_here = on && l->cur >= start && l->cur <= end;
        if (cursor_here) {
            while (off < l->cur - start && tui_cols(l->buf + start + off, l->cur - start - off) >= w)
                off++;
            cursor_y = y + r;
            cursor_x = x + tui_cols(l->buf + start + off, l->cur - start - off);
        }
        field_line(y + r, x, w, attr, l->buf + start + off, end - start - off);
        start = end + 1;
    }
    if (n_rows > (size_t)rows)
        tui_put(y + rows - 1, x + w - 14, 14, A_DIM, " lines %zu-%zu/%zu", first + 1,
                first + (size_t)rows, n_rows);
}

/* The submit form's box on this screen: its width, the payload editor's rows, its height. */
static void form_geometry(int *w, int *prow, int *h)
{
    *w = COLS - 4 < 96 ? COLS - 4 : 96;
    /* the payload editor takes the rows the screen can give (up to 10; 4 at 24 rows) */
    *prow = LINES - 2 - 18;
    if (*prow > 10)
        *prow = 10;
    if (*prow < 1)
        *prow = 1;
    *h = *prow + 18;
    if (*h > LINES)
        *h = LINES;
}

bool tui_form_msg_fits(const char *msg)
{
    int w, prow, h;
    form_geometry(&w, &prow, &h);
    /* the rows between [ Submit ] and the hint, as draw_form places the message: three at most
     * (the box grows with the payload editor, the rows under it stay) */
    int y0 = (LINES - h) / 2, y = y0 + 2 + (TUI_F_SUBMIT - 1) + prow, last = y0 + h - 3;
    int room = last - (y + 2) + 1;
    return tui_wrap_rows_text(msg, w - 4, true) <= (room > 0 ? room : 1);
}

static void draw_form(tui_app *a)
{
    int w, prow, h;
    form_geometry(&w, &prow, &h);
    int y0 = (LINES - h) / 2, x0 = (COLS - w) / 2;
    /* the form owns the rows it spans, margins too: a cut-off piece of the table beside it (the
     * counter's last digits at 80 columns) would read as part of the form */
    for (int r = y0; r < y0 + h; r++) {
        move(r, 0);
        clrtoeol();
    }
    box_at(y0, x0, h, w);
    tui_put(y0, x0 + 2, w - 4, A_BOLD, " Submit a job ");
    attr_t bad_attr = tui_pair_or(a, TUI_P_FAILED, A_BOLD);
    static const char *labels[] = {"Guest/type", "Payload", "Timeout", "Priority", "Attempts",
                                   "Count", "Tags", "Queue", "Unique", "Memory"};
    int lx = x0 + 2, fx = x0 + 14, fw = w - 16;
    int y = y0 + 2;
    for (int f = 0; f < TUI_F_SUBMIT; f++) {
        bool on = a->field == f;
        /* a fresh field shows its value selected: typing replaces it */
        attr_t attr = on ? (a->field_fresh ? A_REVERSE | A_BOLD : A_REVERSE) : A_UNDERLINE;
        bool bad = a->form_bad & (1u << f);
        if (bad) /* each invalid field is marked, whichever the message names first */
            tui_put(y, lx - 1, 1, bad_attr, "!");
        tui_put(y, lx, 11, bad ? bad_attr : on ? A_BOLD : A_NORMAL, "%s", labels[f]);
        if (f == TUI_F_GUEST && (a->guest_is_path || a->guest_nomatch)) {
            /* what was typed is the guest (a path) or matches none: shown as typed, never a
             * highlighted guest the submit would not send */
            const tui_line *l = &a->f[f];
            const char *what = a->guest_nomatch ? "  (no such guest or type)"
                               : bad            ? "  (not a guest)"
                                                : "  guest file (VM)";
            int ww = (int)strlen(what), tw = fw - ww > 8 ? fw - ww : fw;
            size_t off = tui_line_scroll(l, tw);
            field_line(y, fx, fw, on ? A_REVERSE : A_UNDERLINE, "", 0);
            field_line(y, fx, tw, on ? A_REVERSE : A_UNDERLINE, l->buf + off, l->len - off);
            if (tw < fw)
                tui_put(y, fx + tw, ww, (on ? A_REVERSE : A_UNDERLINE) | (bad ? bad_attr : 0),
                        "%s", what);
            if (on) {
                cursor_y = y;
                cursor_x = fx + tui_cols(l->buf + off, l->cur - off);
            }
            y++;
            continue;
        }
        if (f == TUI_F_GUEST) {
            const tui_guest *g = a->n_guests ? &a->guests[a->guest_sel] : NULL;
            /* what the choice is, after it: a guest runs in a VM, a built-in type in-process */
            tui_put(y, fx, fw, on ? A_REVERSE : A_UNDERLINE, "< %s > %s",
                    g ? g->name : "(no guests found)",
                    !g             ? ""
                    : g->handler   ? "built-in type (in-process)"
                    : g->hidden    ? "test guest (VM)"
                    : g->sha256[0] ? "stored binary (VM)"
                                   : "guest (VM)");
            if (on && a->f[TUI_F_GUEST].len)
                tui_put(y, fx + fw - 20, 20, A_DIM, " find: %.12s", a->f[TUI_F_GUEST].buf);
            y++;
            continue;
        }
        if (f == TUI_F_PAYLOAD) {
            draw_payload(a, y, fx, fw, prow, on, attr);
            y += prow;
            continue;
        }
        const tui_line *l = &a->f[f];
        size_t off = tui_line_scroll(l, fw);
        field_line(y, fx, fw, attr, l->buf + off, l->len - off);
        if (f == TUI_F_MEMORY && !l->len)
            tui_put(y, fx + 1, fw - 1, attr | A_DIM, "(default) 1M, 512K, 64MiB ...");
        if (f == TUI_F_UNIQUE && !l->len) /* what it takes, until something is typed */
            tui_put(y, fx + 1, fw - 1, attr | A_DIM, "(none) KEY or * or fields=a,b, then for=10m "
                    "states=...");
        if (on) {
            cursor_y = y;
            cursor_x = fx + tui_cols(l->buf + off, l->cur - off);
        }
        y++;
    }
    tui_put(y + 1, fx, fw, a->field == TUI_F_SUBMIT ? A_REVERSE | A_BOLD : A_BOLD, "[ Submit ]");
    /* the message wraps at word boundaries over the free rows between [ Submit ] and the hint
     * (two, a third above them when it needs it), so a long JSON error or several invalid
     * fields are read whole, not cut at the box's edge */
    const char *msg = a->form_msg;
    size_t len = strlen(msg), off = 0;
    int mw = w - 4, last = y0 + h - 3, rows = tui_wrap_rows_text(msg, mw, true);
    int my = rows > 2 && y + 2 <= last - 2 ? y + 2 : y + 3;
    attr_t mattr = a->form_ok ? tui_pair_or(a, TUI_P_OK, A_NORMAL) : bad_attr;
    for (; my <= last && off < len; my++) {
        size_t n = tui_wrap_next(msg + off, len - off, mw);
        bool cut = my == last && off + n < len; /* out of rows: say so rather than stop mid-word */
        if (cut)
            n = tui_cols_fit(msg + off, len - off, mw - 3, NULL);
        tui_put(my, lx, mw, mattr, "%.*s%s", (int)n, msg + off, cut ? "..." : "");
        off += n;
    }
    /* in the payload up/down move between its lines: the hint says how to leave it */
    char hint[256];
    const char *lead = a->field == TUI_F_PAYLOAD ? "up/down lines  tab/shift-tab leave  " : "";
    int lw = (int)strlen(lead);
    tui_footer(TUI_CX_FORM, w - 4 - lw, hint, sizeof hint);
    tui_put(y0 + h - 2, lx, w - 4, A_DIM, "%s%s", lead, hint);
}

static void draw_confirm(tui_app *a)
{
    int w = COLS - 4 < 70 ? COLS - 4 : 70;
    /* the question wraps (a long filter in it was cut at the box's edge), at most 4 rows */
    const char *q = a->confirm_text;
    size_t len = strlen(q), off = 0;
    int rows = tui_wrap_rows_text(q, w - 4, true);
    if (rows > 4)
        rows = 4;
    if (rows < 1)
        rows = 1;
    int h = rows + 5;
    int y0 = (LINES - h) / 2, x0 = (COLS - w) / 2;
    /* the popup owns the rows it spans, margins too, as the form does: a wide character of the
     * table cut by the box's edge, or the tail of a row beside it, read as part of the question
     * and could stay on the terminal after the popup closed */
    for (int r = y0; r < y0 + h; r++) {
        move(r, 0);
        clrtoeol();
    }
    box_at(y0, x0, h, w);
    tui_put(y0, x0 + 2, w - 4, A_BOLD, " Confirm ");
    for (int r = 0; r < rows && off < len; r++) {
        size_t n = tui_wrap_next(q + off, len - off, w - 4);
        bool cut = r == rows - 1 && off + n < len;
        if (cut)
            n = tui_cols_fit(q + off, len - off, w - 7, NULL);
        tui_put(y0 + 2 + r, x0 + 2, w - 4, A_BOLD, "%.*s%s", (int)n, q + off, cut ? "..." : "");
        off += n;
    }
    char hint[128];
    tui_footer(TUI_CX_CONFIRM, w - 4, hint, sizeof hint);
    tui_put(y0 + h - 2, x0 + 2, w - 4, A_NORMAL, "%s", hint);
}

/* A message whose last row is at y: wrapped at word boundaries onto the rows above it when it is
 * wider than the screen (over the bottom of the body), so nothing of it is cut; at most 8 rows. */
static void draw_message(tui_app *a, int y, const char *msg, bool error)
{
    attr_t attr = error ? tui_pair_or(a, TUI_P_ERRMSG, A_REVERSE | A_BOLD) : A_BOLD;
    int rows = tui_wrap_rows_text(msg, COLS, true);
    if (rows > 8)
        rows = 8;
    if (rows > y - a->lay.body_y)
        rows = y - a->lay.body_y > 1 ? y - a->lay.body_y : 1;
    size_t len = strlen(msg), off = 0;
    /* out of rows: the last one shows what it can of the rest, cut with the marker, and where
     * the whole message is (app.c keeps every message wider than the screen in the Logs pane) */
    static const char whole[] = " (all of it: 3, Logs)";
    for (int r = 0; r < rows && off < len; r++) {
        size_t n = tui_wrap_next(msg + off, len - off, COLS);
        int row = y - (rows - 1) + r;
        move(row, 0);
        clrtoeol();
        if ((r == rows - 1 && off + n < len) || (off + n >= len && a->status_cut && msg == a->status)) {
            int hw = (int)sizeof whole - 1, tw = COLS - hw;
            tui_put(row, 0, tw, attr, "%s", msg + off); /* cut here with the marker */
            tui_put(row, tw, hw, attr, "%s", whole);
            break;
        }
        tui_put(row, 0, COLS, attr, "%.*s", (int)n, msg + off);
        off += n;
    }
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
        tui_put(y, 0, lw, A_BOLD, "%s", lead);
        size_t off = tui_line_scroll(&a->prompt, COLS - lw);
        tui_put(y, lw, COLS - lw, A_NORMAL, "%s", a->prompt.buf + off);
        cursor_y = y;
        cursor_x = lw + (int)(a->prompt.cur - off);
        if (a->prompt_kind == TUI_PROMPT_FILTER && a->prompt_error[0])
            draw_message(a, y - 1, a->prompt_error, true);
        return;
    }
    uint64_t now = (uint64_t)aspen_store_now_ms();
    if (a->status[0] && now < a->status_until_ms) {
        draw_message(a, y, a->status, a->status_error);
        return;
    }
    /* the form and the question show their keys in their own box: once is enough */
    if (a->mode == TUI_MODE_SUBMIT || a->mode == TUI_MODE_CONFIRM)
        return;
    unsigned cx = tui_view_ops(a->view)->cx;
    char hint[512];
    tui_footer(cx, COLS - 1, hint, sizeof hint);
    tui_put(y, 0, COLS, A_DIM, "%s", hint);
}

void tui_draw(tui_app *a)
{
    double t0 = tui_mono_ms();
    cursor_y = cursor_x = -1;
    tui_layout_compute(COLS, LINES, a->view == TUI_VIEW_JOBS ? TUI_PANE_JOBS : TUI_PANE_LOGS, &a->lay);
    erase();
    if (a->lay.too_small) {
        tui_put(0, 0, COLS, A_BOLD, "Aspen console: the terminal is %dx%d;", COLS, LINES);
        tui_put(1, 0, COLS, A_NORMAL, "it needs at least 60x12 (80x24 is good). q quits.");
    } else {
        draw_header(a);
        draw_tabs(a);
        int y0 = a->lay.body_y, h = a->lay.body_h;
        const tui_pane_ops *ops = tui_view_ops(a->view);
        bool split = a->view == TUI_VIEW_JOBS && a->lay.split_h > 1;
        ops->draw(a, y0, split ? h : h + a->lay.split_h);
        if (split) {
            tui_put(a->lay.split_y, 0, COLS, A_BOLD | A_UNDERLINE, "%-*s", COLS,
                    "Live logs (3 or tab: the logs pane)");
            tui_draw_log_lines(a, &a->logs_all, a->lay.split_y + 1, a->lay.split_h - 1, true, false);
        }
        {
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
