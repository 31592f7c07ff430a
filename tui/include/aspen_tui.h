/* tui/include/aspen_tui.h — the one public header of tui/, Aspen's operations console.
 *
 * An ncurses screen on a libuv loop over a live engine (engine/include/aspen_engine.h): a header with the
 * queue's state and rates, a jobs table (filter, sort, marks, cancel, rerun, retry), the worker/VM
 * pane, a live log tail, job detail and a submit form. The UI thread never waits on the database or
 * a VM: queries and actions run on libuv's thread pool and come back through uv_async; engine
 * events arrive on engine threads and are queued for the UI thread the same way.
 */
#ifndef ASPEN_TUI_H
#define ASPEN_TUI_H

#include "aspen_engine.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct aspen_tui_options {
    const char *guest_dir;  /* guest binaries offered by the submit form; NULL: none */
    int stop_grace_ms;      /* at quit, running jobs may finish within this; <= 0 → 3000 */
    const char *stats_path; /* benchmarks: frame and key-to-screen times as JSON written here at
                               exit; NULL → $ASPEN_TUI_STATS, or nothing */
    const char *db_arg;     /* appended to the aspen commands the console prints (" --db '…'"),
                               so that pasted they open this database; NULL or "": none */
} aspen_tui_options;

/* Runs the console on the terminal (stdin/stdout must be a tty) until the user quits or SIGINT /
 * SIGTERM / SIGHUP. `eng` must be opened and NOT started: the console starts it (with terminal
 * signals blocked in engine threads) and stops it at quit (running jobs get the grace period, the
 * rest go back to the queue). The terminal is restored on every exit path, fatal signals included.
 * Returns 0, or a negative ASPEN_ENGINE_E* code with err filled. */
int aspen_tui_run(aspen_engine *eng, const aspen_tui_options *opts, aspen_engine_error *err);

#ifdef __cplusplus
}
#endif
#endif
