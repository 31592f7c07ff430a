/* tui/pane_jobs.c — the jobs pane: the table of jobs (a window of rows around the cursor, loaded
 * by app.c), its header with the position, and what its keys do: move, open the detail, filter,
 * mark, cancel, rerun, delete, sort, the selected job's logs. Behind tui_pane_ops (app.h).
 */
#include "app.h"

#include <curses.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int sorted_col(const tui_app *a);

static void fill_line(int y, attr_t attr)
{
    attron(attr);
    mvhline(y, 0, ' ', COLS);
    attroff(attr);
}

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
    long loaded = a->win_offset + (long)a->n_rows;
    if (a->count_known && a->count_gen == a->filter_gen)
        return a->count_total > loaded ? (long)a->count_total : loaded; /* exact (counted) */
    return loaded + (a->has_more ? 1 : 0);
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
        case TUI_COL_GUEST: {
            /* narrow (80 columns) there is no TYPE column: an in-process job (no guest) says its
             * type here, as the filter names it, rather than a bare "-" */
            bool type_shown = false;
            for (int k = 0; k < n_cols; k++)
                type_shown |= which[k] == TUI_COL_TYPE;
            if (!type_shown && strcmp(r->guest, "-") == 0 && r->type[0] &&
                strcmp(r->type, "vm_execute") != 0)
                snprintf(buf, sizeof buf, "type:%s", r->type);
            else
                snprintf(buf, sizeof buf, "%s", r->guest);
            break;
        }
        case TUI_COL_STATE:
            snprintf(buf, sizeof buf, "%s", aspen_store_state_name(r->state));
            attr = selected ? A_REVERSE | A_BOLD : tui_state_attr(a, r->state);
            break;
        case TUI_COL_ATTEMPTS: snprintf(buf, sizeof buf, "%d/%d", r->attempts, r->max_attempts); break;
        case TUI_COL_PRIO: snprintf(buf, sizeof buf, "%4d", r->priority); break;
        case TUI_COL_AGE: tui_fmt_ms(now - r->created_ms, buf, sizeof buf); break;
        case TUI_COL_DUR: tui_fmt_ms(tui_row_duration_ms(r, now), buf, sizeof buf); break;
        case TUI_COL_ERROR:
            snprintf(buf, sizeof buf, "%s", r->error);
            if (!selected && r->error[0])
                attr = tui_pair_or(a, TUI_P_FAILED, A_NORMAL);
            break;
        default: break;
        }
        tui_put(y, x, w, attr, "%s", buf);
        x += w + 1;
    }
}


static void jobs_draw(tui_app *a, int y0, int h)
{
    if (h < 2)
        return;
    int which[TUI_COL_N], widths[TUI_COL_N];
    int n_cols = tui_job_columns(COLS, which, widths);
    int x = 0;
    for (int c = 0; c < n_cols; c++) {
        int col = which[c];
        /* the sorted column says so, and which way, one meaning everywhere: down (v) is the
         * column's values descending, up (^) ascending — from the order the store is asked
         * for, so GUEST a..z is up and ID newest first is down. AGE is shown but the store sorts
         * by creation time, whose descending order is the ages ascending. The queue order (no
         * store sort) keeps its marker as before: down unless reversed. */
        aspen_store_sort ss;
        bool desc;
        bool up = tui_store_sort(a->sort_col, a->sort_reverse, a->order_reverse, a->filter.order,
                                 &ss, &desc)
                      ? (a->sort_col == TUI_SORT_AGE ? desc : !desc)
                      : a->order_reverse;
        const char *mark = col != sorted_col(a) ? ""
                           : a->utf8 ? (up ? "\xe2\x96\xb2" : "\xe2\x96\xbc")
                                     : (up ? "^" : "v");
        tui_put(y0, x, widths[col], A_BOLD | A_UNDERLINE, "%s%s%*s", tui_col_title(col), mark,
                widths[col], "");
        x += widths[col] + 1;
    }
    long total = jobs_total(a);
    long rows_h = h - 1;
    if (a->at_end && total > 0) /* the count grew or shrank since the rows were read */
        a->cursor = total - 1;
    tui_scroll(&a->cursor, &a->top, total, rows_h);
    int64_t now = aspen_store_now_ms();
    if (total == 0) {
        tui_put(y0 + 2, 2, COLS - 4, A_DIM, "%s",
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
            tui_put(y, 0, COLS, A_DIM, "%*s  ...", widths[TUI_COL_ID] + 2, "");
            continue;
        }
        draw_job_row(a, y, &a->rows[local], idx == a->cursor, n_cols, which, widths, now);
    }
    /* position on the right of the header line */
    char pos[64];
    snprintf(pos, sizeof pos, " %ld/%ld%s ", total ? a->cursor + 1 : 0, total,
             tui_filter_states_only(&a->filter) || !a->has_more ||
                     (a->count_known && a->count_gen == a->filter_gen) ? "" : "+");
    int pw = (int)strlen(pos);
    tui_put(y0, COLS - pw, pw, A_BOLD, "%s", pos);
}

/* ---- VMs ------------------------------------------------------------------------------------- */

/* A sort column the table shows, for the marker on its title (-1: none). */
static int sorted_col(const tui_app *a)
{
    switch (a->sort_col) {
    case TUI_SORT_ID: return TUI_COL_ID;
    case TUI_SORT_STATE: return TUI_COL_STATE;
    case TUI_SORT_GUEST: return TUI_COL_GUEST;
    case TUI_SORT_PRIORITY: return TUI_COL_PRIO;
    case TUI_SORT_ATTEMPTS: return TUI_COL_ATTEMPTS;
    case TUI_SORT_AGE: return TUI_COL_AGE;
    case TUI_SORT_DURATION: return TUI_COL_DUR;
    default: return -1;
    }
}

/* A new order: the store sorts every matching job (its index for the column), and the list
 * starts again from the top. */
static void resort(tui_app *a)
{
    a->fetch_gen++;
    a->at_end = false;
    a->cursor = a->top = 0;
    a->cursor_id = 0;
    a->win_offset = 0;
    a->open_pending = false;
    tui_fetch(a);
}

static void set_sort(tui_app *a, tui_sort col)
{
    a->sort_col = col;
    a->sort_reverse = false;
    resort(a);
    aspen_store_sort s;
    bool desc;
    if (tui_store_sort(a->sort_col, a->sort_reverse, a->order_reverse, a->filter.order, &s, &desc))
        tui_set_status(a, false, "sorted by %s over every matching job", tui_sort_name(a->sort_col));
    else
        tui_set_status(a, false, "sorted by id (order:queue in the filter: the claim order)");
}

static unsigned jobs_act(tui_app *a, tui_action act, int64_t arg, const char *text)
{
    const tui_row *sel = tui_selected_row(a);
    long page = tui_page(a);
    switch (act) {
    case TUI_A_UP: tui_move_cursor(a, -1, false); break;
    case TUI_A_DOWN: tui_move_cursor(a, 1, false); break;
    case TUI_A_PGUP: tui_move_cursor(a, -page, false); break;
    case TUI_A_PGDN: tui_move_cursor(a, page, false); break;
    case TUI_A_TOP: tui_move_cursor(a, 0, true); break;
    case TUI_A_BOTTOM:
        tui_move_cursor(a, tui_jobs_total(a) - 1, true);
        a->at_end = true; /* and stays there as jobs move (see app.h) */
        a->cursor_id = 0;
        tui_fetch(a); /* the true end now, even when the rows loaded look like it */
        break;
    case TUI_A_OPEN:
        if (sel)
            tui_push(a, TUI_VIEW_DETAIL, sel->id);
        else
            a->open_pending = true; /* the row is being loaded (g, G, a page): opens when it is */
        break;
    case TUI_A_FILTER: tui_open_prompt(a, TUI_PROMPT_FILTER, a->filter_text); break;
    case TUI_A_MARK:
        if (sel) {
            tui_marks_toggle(&a->marks, sel->id);
            tui_move_cursor(a, 1, false);
        }
        break;
    case TUI_A_MARK_CLEAR: tui_marks_clear(&a->marks); break;
    case TUI_A_CANCEL: case TUI_A_RERUN: case TUI_A_DELETE: tui_job_command(a, act); break;
    case TUI_A_PRIORITY_UP: case TUI_A_PRIORITY_DOWN: case TUI_A_PRIORITY_SET: case TUI_A_RUN_NOW:
    case TUI_A_SNOOZE:
        tui_job_edit(a, act, text);
        break;
    case TUI_A_COPY:
        if (sel) {
            char id[32], what[48];
            snprintf(id, sizeof id, "%lld", (long long)sel->id);
            snprintf(what, sizeof what, "the id of job %s", id);
            tui_copy(a, what, id, strlen(id));
        }
        break;
    case TUI_A_SUBMIT_COPY:
        if (sel)
            tui_submit_copy(a, sel->id);
        else
            tui_set_status(a, true, "no job selected: move to one first");
        break;
    case TUI_A_LOGS_OF_JOB:
        if (arg || sel)
            tui_push(a, TUI_VIEW_LOGS, arg ? arg : sel->id);
        break;
    case TUI_A_SORT_NEXT: set_sort(a, (tui_sort)((a->sort_col + 1) % TUI_SORT_COUNT)); break;
    case TUI_A_SORT_SET: {
        int found = -1;
        for (int s = 0; s < TUI_SORT_COUNT && text; s++)
            if (strcmp(tui_sort_name((tui_sort)s), text) == 0)
                found = s;
        if (found < 0) {
            /* say what was refused and what would work: a bare list read as if nothing happened */
            const char *names[TUI_SORT_COUNT];
            for (int s = 0; s < TUI_SORT_COUNT; s++)
                names[s] = tui_sort_name((tui_sort)s);
            char msg[700];
            tui_choice_refusal("sort column", text, names, TUI_SORT_COUNT, "columns", " ", a->utf8,
                               msg, sizeof msg);
            tui_set_status(a, true, "%s", msg);
            break;
        }
        set_sort(a, (tui_sort)found);
        break;
    }
    case TUI_A_SORT_REVERSE:
        if (a->sort_col == TUI_SORT_ID)
            a->order_reverse = !a->order_reverse;
        else
            a->sort_reverse = !a->sort_reverse;
        resort(a);
        break;
    default: return 0;
    }
    return TUI_R_HANDLED;
}

static unsigned jobs_needs(const tui_app *a)
{
    (void)a;
    return TUI_NEED_ROWS;
}

static void jobs_click(tui_app *a, int y, int x, bool again)
{
    (void)x;
    long row = y - (a->lay.body_y + 1); /* under the column titles */
    if (row < 0 || row >= a->lay.body_h - 1)
        return;
    long idx = a->top + row;
    if (idx >= tui_jobs_total(a))
        return;
    bool same = idx == a->cursor;
    tui_move_cursor(a, idx, true);
    if (same && again && tui_selected_row(a))
        tui_push(a, TUI_VIEW_DETAIL, tui_selected_row(a)->id);
}

const tui_pane_ops tui_pane_jobs_ops = {
    .name = "Jobs", .cx = TUI_CX_JOBS, .draw = jobs_draw, .act = jobs_act, .needs = jobs_needs,
    .click = jobs_click,
};
