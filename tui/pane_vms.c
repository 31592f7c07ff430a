/* tui/pane_vms.c — the VMs pane: the warm pool's figures and one row per worker (state, job,
 * guest, memory, cold start, last run, exits); up/down select a worker, enter opens the job it
 * runs. Behind tui_pane_ops (app.h).
 */
#include "app.h"

#include <curses.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void vms_draw(tui_app *a, int y0, int h)
{
    const aspen_engine_throughput *t = &a->snap.throughput;
    char used[32], budget[32];
    tui_fmt_size(t->pool_bytes, used, sizeof used);
    tui_fmt_size(t->pool_budget, budget, sizeof budget);
    if (COLS >= 110)
        tui_put(y0, 1, COLS - 1, A_BOLD,
                "Warm pool: %zu VM%s, %s of %s | hit rate %.1f%% (%llu hits, %llu misses, %llu evicted) | "
                "images %zu | claimed, waiting %zu",
                t->pool_vms, t->pool_vms == 1 ? "" : "s", used, budget, t->pool_hit_rate * 100.0, (unsigned long long)t->pool_hits,
                (unsigned long long)t->pool_misses, (unsigned long long)t->pool_evictions, t->images,
                t->queue_depth);
    else /* the same figures, shorter words: nothing cut at 80 columns */
        tui_put(y0, 1, COLS - 1, A_BOLD,
                "Pool %zu VM%s %s/%s | hit %.0f%% %llu/%llu, evict %llu | images %zu | waiting %zu",
                t->pool_vms, t->pool_vms == 1 ? "" : "s", used, budget, t->pool_hit_rate * 100.0, (unsigned long long)t->pool_hits,
                (unsigned long long)(t->pool_hits + t->pool_misses),
                (unsigned long long)t->pool_evictions, t->images, t->queue_depth);
    bool wide = COLS >= 110;
    if (wide)
        tui_put(y0 + 1, 0, COLS, A_BOLD | A_UNDERLINE,
            "%-3s %-9s %8s %-18s %8s %8s %8s %8s %8s %6s %6s %7s", "W", "STATE", "JOB", "GUEST",
            "MEM", "TOUCHED", "DIRTIED", "COLD", "LASTRUN", "EXITS", "HCALLS", "DONE");
    else
        tui_put(y0 + 1, 0, COLS, A_BOLD | A_UNDERLINE, "%-3s %-8s %7s %-14s %6s %6s %6s %7s %7s %5s",
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
        attr_t attr = i == a->vm_cursor ? A_REVERSE
                      : running       ? tui_state_attr(a, ASPEN_STORE_RUNNING)
                                      : A_NORMAL;
        int y = y0 + 2 + i;
        if (wide)
            tui_put(y, 0, COLS, attr, "%-3d %-9s %8s %-18.18s %8s %8s %8s %8s %8s %6u %6u %7llu%s",
                w->index, w->state, w->job_id ? job : "-", w->guest[0] ? w->guest : "-", mem,
                touched, dirt, w->cold_start_ns ? cold : "-", w->last_run_ns ? last : "-", w->exits,
                w->host_calls, (unsigned long long)w->jobs_done, w->last_was_cold ? " cold" : "");
        else
            tui_put(y, 0, COLS, attr, "%-3d %-8.8s %7s %-14.14s %6s %6s %6s %7s %7s %5u", w->index,
                w->state, w->job_id ? job : "-", w->guest[0] ? w->guest : "-", mem, touched, dirt,
                w->cold_start_ns ? cold : "-", w->last_run_ns ? last : "-", w->exits);
    }
    if (a->snap.n_workers == 0)
        tui_put(y0 + 3, 2, COLS - 2, A_DIM, "no workers (started with --workers 0?)");
}

/* ---- logs ------------------------------------------------------------------------------------- */

static unsigned vms_act(tui_app *a, tui_action act, int64_t arg, const char *text)
{
    (void)arg;
    (void)text;
    long n = a->snap.n_workers;
    switch (act) {
    case TUI_A_UP: a->vm_cursor--; break;
    case TUI_A_DOWN: a->vm_cursor++; break;
    case TUI_A_PGUP: case TUI_A_TOP: a->vm_cursor = 0; break;
    case TUI_A_PGDN: case TUI_A_BOTTOM: a->vm_cursor = n - 1; break;
    case TUI_A_OPEN:
        if (a->vm_cursor >= 0 && a->vm_cursor < n && a->snap.workers[a->vm_cursor].job_id)
            tui_push(a, TUI_VIEW_DETAIL, a->snap.workers[a->vm_cursor].job_id);
        else
            tui_set_status(a, true, "worker %ld runs no job now", a->vm_cursor);
        break;
    default: return 0;
    }
    if (a->vm_cursor >= n)
        a->vm_cursor = n - 1;
    if (a->vm_cursor < 0)
        a->vm_cursor = 0;
    return TUI_R_HANDLED;
}

static unsigned vms_needs(const tui_app *a)
{
    (void)a;
    return 0; /* the workers come from memory (snap_live) */
}

static void vms_click(tui_app *a, int y, int x, bool again)
{
    (void)x;
    long row = y - (a->lay.body_y + 2);
    if (row < 0 || row >= a->snap.n_workers)
        return;
    bool same = row == a->vm_cursor;
    a->vm_cursor = row;
    if (same && again)
        vms_act(a, TUI_A_OPEN, 0, NULL);
}

const tui_pane_ops tui_pane_vms_ops = {
    .name = "VMs", .cx = TUI_CX_VMS, .draw = vms_draw, .act = vms_act, .needs = vms_needs,
    .click = vms_click,
};
