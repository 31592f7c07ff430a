/* tui/pane_logs.c — the logs pane: all jobs' log lines live (engine events) or one job's (read
 * from the store), follow, wrap, timestamps, and search over the lines as they are shown —
 * "[job N]" and the time included — with the match highlighted, not the whole line. Behind
 * tui_pane_ops (app.h). The same line drawing shows the live tail under the jobs table.
 */
#include "app.h"

#include <curses.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool show_job(const tui_app *a, bool remember) { return !a->logs_job || !remember; }

/* Draws text[off, end) at y from column x, the bytes inside [hit_lo, hit_hi) ranges highlighted. */
static int draw_span(tui_app *a, int y, int x, const char *text, size_t off, size_t end,
                     const size_t *hits, size_t n_hits, attr_t base, attr_t hit_attr)
{
    size_t p = off;
    while (p < end && x < COLS) {
        /* the next boundary: a hit starting or ending after p */
        size_t stop = end;
        bool in_hit = false;
        for (size_t h = 0; h < n_hits; h++) {
            size_t lo = hits[2 * h], hi = hits[2 * h + 1];
            if (p >= lo && p < hi) {
                in_hit = true;
                if (hi < stop)
                    stop = hi;
            } else if (lo > p && lo < stop) {
                stop = lo;
            }
        }
        int w = tui_cols(text + p, stop - p);
        tui_put(y, x, COLS - x, in_hit ? hit_attr : base, "%.*s", (int)(stop - p), text + p);
        x += w;
        p = stop;
    }
    return x;
}

void tui_draw_log_lines(tui_app *a, tui_logbuf *b, int y0, int h, bool follow, bool remember)
{
    if (h <= 0)
        return;
    int width = COLS;
    char text[2048];
    long n = (long)b->n;
    long first;
    bool sj = show_job(a, remember);
    if (follow || !remember) {
        /* walk back from the end until the rows are used */
        int used = 0;
        first = n;
        while (first > 0) {
            tui_log_format(tui_logbuf_get(b, (size_t)first - 1), a->timestamps, sj, text, sizeof text);
            int r = tui_wrap_rows_text(text, width, a->wrap);
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
    const char *needle = remember && a->search[0] ? a->search : NULL;
    attr_t hit = tui_pair_or(a, TUI_P_HIT, A_REVERSE);
    for (long i = first; i < n && y < y0 + h; i++, shown++) {
        const tui_log_entry *e = tui_logbuf_get(b, (size_t)i);
        tui_log_format(e, a->timestamps, sj, text, sizeof text);
        attr_t attr = e->job_id == 0 ? A_DIM : A_NORMAL;
        bool current = remember && i == a->search_hit;
        if (current)
            attr = A_BOLD;
        size_t hits[32];
        size_t n_hits = needle ? tui_find_all(text, needle, hits, 16) : 0;
        size_t len = strlen(text);
        if (!a->wrap) {
            /* a line wider than the pane ends in the cut marker (w wraps it whole) */
            bool cut;
            size_t fit = tui_cols_fit_cut(text, len, width, &cut);
            int x = draw_span(a, y, 0, text, 0, fit, hits, n_hits, attr, current ? hit | A_BOLD : hit);
            if (cut)
                tui_put(y, x, 1, attr, "%s", tui_cut_marker(a->utf8));
            y++;
            continue;
        }
        for (size_t off = 0; off < len && y < y0 + h;) {
            /* rows break after a space, by display columns; a word cut only when wider */
            size_t next = off + tui_wrap_next(text + off, len - off, width);
            if (next == off)
                next = off + 1;
            draw_span(a, y++, 0, text, off, next, hits, n_hits, attr, current ? hit | A_BOLD : hit);
            off = next;
        }
        if (len == 0)
            y++;
    }
    if (remember) {
        a->log_first_shown = first;
        a->log_shown = shown;
    }
    if (n == 0)
        tui_put(y0, 1, COLS - 1, A_DIM, "%s",
                a->logs_job ? "no log lines for this job yet"
                            : "no log lines yet: guests' hl_println output appears here live");
}

static void logs_draw(tui_app *a, int y0, int h)
{
    tui_logbuf *b = tui_logs_current(a);
    char title[256];
    if (a->logs_job)
        snprintf(title, sizeof title, "Logs of job %lld (a: all jobs, esc: back)",
                 (long long)a->logs_job);
    else
        snprintf(title, sizeof title, "Logs of all jobs, live%s", b->dropped ? " (oldest dropped)" : "");
    tui_put(y0, 0, COLS, A_BOLD | A_UNDERLINE, "%-*s", COLS, title);
    if (!a->follow) {
        const char *p = COLS >= 100 ? " paused: f or G to follow again " : " paused (f: follow) ";
        int pw = (int)strlen(p);
        tui_put(y0, COLS - pw, pw, A_BOLD, "%s", p);
    }
    tui_draw_log_lines(a, b, y0 + 1, h - 1, a->follow, true);
}

static void logs_scroll(tui_app *a, long delta)
{
    tui_logbuf *b = tui_logs_current(a);
    long n = (long)b->n;
    if (a->follow)
        a->log_top = a->log_first_shown;
    a->follow = false;
    a->log_top += delta;
    if (a->log_top < 0)
        a->log_top = 0;
    /* back at the bottom: follow again */
    if (delta > 0 && a->log_top + a->log_shown >= n)
        a->follow = true;
    if (a->log_top > n - 1)
        a->log_top = n > 0 ? n - 1 : 0;
}

/* n / N: the next older or newer line whose text as shown contains the search. */
static void search_step(tui_app *a, int dir)
{
    tui_logbuf *b = tui_logs_current(a);
    long from = a->search_hit >= 0 ? a->search_hit : (long)b->n;
    long hit = tui_logbuf_search(b, from, dir, a->search, a->timestamps, show_job(a, true));
    if (hit < 0) {
        tui_set_status(a, true, "'%s': no %s match", a->search, dir < 0 ? "older" : "newer");
        return;
    }
    tui_clear_error(a);
    a->search_hit = hit;
    a->follow = false;
    a->log_top = hit - (a->lay.body_h - 2) / 2;
    if (a->log_top < 0)
        a->log_top = 0;
}

void tui_logs_search_set(tui_app *a, const char *needle)
{
    snprintf(a->search, sizeof a->search, "%s", needle);
    a->search_hit = -1;
    if (!a->search[0]) {
        a->follow = true;
        return;
    }
    search_step(a, -1); /* the newest match: the tail is where one starts */
}

static unsigned logs_act(tui_app *a, tui_action act, int64_t arg, const char *text)
{
    (void)arg;
    (void)text;
    long page = tui_page(a);
    switch (act) {
    case TUI_A_UP: logs_scroll(a, -1); break;
    case TUI_A_DOWN: logs_scroll(a, 1); break;
    case TUI_A_PGUP: logs_scroll(a, -page); break;
    case TUI_A_PGDN: logs_scroll(a, page); break;
    case TUI_A_TOP:
        a->follow = false;
        a->log_top = 0;
        break;
    case TUI_A_BOTTOM:
        a->follow = true;
        a->search_hit = -1;
        break;
    case TUI_A_OPEN: {
        tui_logbuf *b = tui_logs_current(a);
        long i = a->search_hit >= 0 && a->search_hit < (long)b->n ? a->search_hit
                 : a->follow                                        ? (long)b->n - 1
                                                                    : a->log_top;
        const tui_log_entry *e = i >= 0 ? tui_logbuf_get(b, (size_t)i) : NULL;
        if (e && e->job_id)
            tui_push(a, TUI_VIEW_DETAIL, e->job_id);
        break;
    }
    case TUI_A_SEARCH: tui_open_prompt(a, TUI_PROMPT_SEARCH, ""); break;
    case TUI_A_SEARCH_NEXT: case TUI_A_SEARCH_PREV:
        if (!a->search[0])
            tui_open_prompt(a, TUI_PROMPT_SEARCH, "");
        else
            search_step(a, act == TUI_A_SEARCH_NEXT ? -1 : 1);
        break;
    case TUI_A_FOLLOW:
        a->follow = !a->follow;
        if (!a->follow)
            a->log_top = a->log_first_shown;
        else
            a->search_hit = -1;
        break;
    case TUI_A_LOGS_ALL:
        a->logs_job = 0;
        a->stack[a->depth - 1].job = 0;
        a->follow = true;
        a->search_hit = -1;
        break;
    default: return 0;
    }
    return TUI_R_HANDLED;
}

static unsigned logs_needs(const tui_app *a)
{
    return a->logs_job ? TUI_NEED_LOGS : 0;
}

static void logs_click(tui_app *a, int y, int x, bool again)
{
    (void)x;
    (void)again;
    /* a click on a line stops following there (the line's job opens with enter) */
    long row = y - (a->lay.body_y + 1);
    if (row < 0 || row >= a->log_shown)
        return;
    a->follow = false;
    a->log_top = a->log_first_shown;
    a->search_hit = a->log_first_shown + row;
}

const tui_pane_ops tui_pane_logs_ops = {
    .name = "Logs", .cx = TUI_CX_LOGS, .draw = logs_draw, .act = logs_act, .needs = logs_needs,
    .click = logs_click,
};
