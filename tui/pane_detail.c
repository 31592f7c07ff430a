/* tui/pane_detail.c — the job detail view (spec, payload, output, error, attempts, logs): a pager
 * that wraps long lines or scrolls them sideways, and the keys that act on the job shown (cancel,
 * rerun, a copy into the submit form, its logs). Also the text drawing the help view shares.
 * Behind tui_pane_ops (app.h).
 */
#include "app.h"

#include <curses.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void tui_draw_text(tui_app *a, const tui_text *t, long *top, int y0, int h, const char *title,
                   bool wrap, long *left)
{
    (void)a;
    tui_put(y0, 0, COLS, A_BOLD | A_REVERSE, " %-*s", COLS - 1, title);
    long rows = h - 1;
    int width = COLS - 1; /* column 0 is a margin */
    if (width < 1 || rows < 1 || t->n == 0)
        return; /* nothing yet (loading): keep the place to come back to */
    /* rows each line takes, and in all (lines wrap by display columns) */
    long total = 0;
    for (size_t i = 0; i < t->n; i++)
        total += wrap ? tui_wrap_rows_hang(t->lines[i], width) : 1;
    if (*top > total - rows)
        *top = total - rows;
    if (*top < 0)
        *top = 0;
    long row = 0, y = 0;
    for (size_t i = 0; i < t->n && y < rows; i++) {
        const char *line = t->lines[i];
        size_t len = strlen(line);
        attr_t attr = line[0] && line[0] != ' ' ? A_BOLD : A_NORMAL; /* section titles */
        if (!wrap) {
            if (row++ < *top)
                continue;
            size_t skip = left && *left > 0 ? tui_cols_fit(line, len, (int)*left, NULL) : 0;
            /* a line running past the edge ends in the cut marker (right scrolls, w wraps) */
            bool cut;
            size_t fit = tui_cols_fit_cut(line + skip, len - skip, width, &cut);
            tui_put(y0 + 1 + (int)y++, 1, width, attr, "%.*s%s", (int)fit, line + skip,
                    cut ? tui_cut_marker(a->utf8) : "");
            continue;
        }
        size_t off = 0;
        /* an item's later rows are indented under its text, not back at the margin */
        int hang = tui_wrap_hang(line, width);
        do { /* rows break after a space, a word cut only when wider than the row */
            int x = off ? 1 + hang : 1, w = off ? width - hang : width;
            size_t next = off + tui_wrap_next(line + off, len - off, w);
            if (next == off && off < len)
                next = off + 1;
            if (row++ >= *top && y < rows)
                tui_put(y0 + 1 + (int)y++, x, w, attr, "%.*s", (int)(next - off), line + off);
            off = next;
        } while (off < len);
    }
    char pos[64];
    int pl = 0;
    if (total > rows)
        pl = snprintf(pos, sizeof pos, " %ld-%ld of %ld%s ", *top + 1,
                      *top + rows < total ? *top + rows : total, total, wrap ? "" : " lines");
    if (!wrap && left && *left > 0) {
        int n = snprintf(pos + pl, sizeof pos - (size_t)pl, " >%ld ", *left);
        if (n > 0)
            pl += n;
    }
    if (pl > 0)
        tui_put(y0, COLS - pl, pl, A_BOLD | A_REVERSE, "%s", pos);
}

static void detail_draw(tui_app *a, int y0, int h)
{
    char title[96];
    snprintf(title, sizeof title, "Job %lld%s  (esc back, w %s)", (long long)a->detail_id,
             a->detail_loaded ? "" : " (loading...)", a->detail_wrap ? "no wrap" : "wrap");
    tui_draw_text(a, &a->detail, &a->detail_top, y0, h, title, a->detail_wrap, &a->detail_left);
}

static unsigned detail_act(tui_app *a, tui_action act, int64_t arg, const char *text)
{
    (void)arg;
    (void)text;
    if (tui_text_scroll(a, &a->detail_top, act))
        return TUI_R_HANDLED;
    switch (act) {
    case TUI_A_LEFT:
        a->detail_left = a->detail_left > 8 ? a->detail_left - 8 : 0;
        break;
    case TUI_A_RIGHT:
        if (!a->detail_wrap)
            a->detail_left += 8;
        break;
    case TUI_A_WRAP:
        a->detail_wrap = !a->detail_wrap;
        a->detail_left = 0;
        break;
    case TUI_A_CANCEL: case TUI_A_RERUN: case TUI_A_DELETE: tui_job_command(a, act); break;
    case TUI_A_PRIORITY_UP: case TUI_A_PRIORITY_DOWN: case TUI_A_PRIORITY_SET: case TUI_A_RUN_NOW:
    case TUI_A_SNOOZE:
        tui_job_edit(a, act, text);
        break;
    case TUI_A_COPY: case TUI_A_COPY_OUTPUT: {
        char what[64];
        bool out = act == TUI_A_COPY_OUTPUT;
        snprintf(what, sizeof what, "the %s of job %lld", out ? "output" : "payload",
                 (long long)a->detail_id);
        if (!a->detail_loaded || (out ? !a->detail_output : !a->detail_payload))
            tui_set_status(a, true, "%s: %s", what, a->detail_loaded ? "there is none" : "still loading");
        else
            tui_copy(a, what, out ? a->detail_output : a->detail_payload,
                     out ? a->detail_output_n : strlen(a->detail_payload));
        break;
    }
    case TUI_A_LOGS_OF_JOB: tui_push(a, TUI_VIEW_LOGS, arg ? arg : a->detail_id); break;
    case TUI_A_SUBMIT_COPY: tui_submit_copy(a, a->detail_id); break;
    default: return 0;
    }
    return TUI_R_HANDLED;
}

static unsigned detail_needs(const tui_app *a)
{
    (void)a;
    return TUI_NEED_DETAIL;
}

const tui_pane_ops tui_pane_detail_ops = {
    .name = "Detail", .cx = TUI_CX_DETAIL, .draw = detail_draw, .act = detail_act,
    .needs = detail_needs,
};
