/* tui/app.h — the console's internal state, shared by app.c (the libuv loop, engine events, work
 * on the thread pool, input) and draw.c (curses drawing). Only the UI thread touches `tui_app`
 * except the event queue (evq_*), which engine threads fill under its mutex.
 */
#ifndef ASPEN_TUI_APP_H
#define ASPEN_TUI_APP_H

#include "aspen_tui.h"
#include "view.h"

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#define TUI_WINDOW 500      /* job rows loaded around the cursor */
#define TUI_SPARK 120       /* throughput samples kept (one a second) */
#define TUI_MAX_GUESTS 128

typedef enum tui_mode {
    TUI_MODE_MAIN = 0,
    TUI_MODE_DETAIL,
    TUI_MODE_HELP,
    TUI_MODE_SUBMIT,
    TUI_MODE_PROMPT,
    TUI_MODE_CONFIRM,
} tui_mode;

typedef enum tui_prompt_kind { TUI_PROMPT_FILTER, TUI_PROMPT_SEARCH, TUI_PROMPT_COMMAND } tui_prompt_kind;

/* What a confirmed action does. */
typedef enum tui_confirm_kind { TUI_CONFIRM_CANCEL, TUI_CONFIRM_RETRY_FAILED } tui_confirm_kind;

enum { TUI_F_GUEST, TUI_F_PAYLOAD, TUI_F_TIMEOUT, TUI_F_PRIORITY, TUI_F_ATTEMPTS, TUI_F_COUNT,
       TUI_F_TAGS, TUI_F_SUBMIT, TUI_F_N };

typedef struct tui_guest {
    char *name;
    bool handler; /* an in-process handler type, not a guest binary */
    char sha256[65]; /* a binary only the store has (seen in a job), submitted by its hash */
} tui_guest;

typedef struct tui_app {
    aspen_engine *eng;
    aspen_engine *stats_eng; /* a client handle on the same database for the slower stats reads */
    bool stats_busy;
    unsigned stats_round;
    aspen_tui_options opts;
    uv_loop_t *loop;
    uv_poll_t stdin_poll;
    uv_signal_t sig_winch, sig_int, sig_term, sig_hup;
    uv_async_t async;
    uv_timer_t tick, refresh_timer, draw_timer;
    bool loop_handles_open; /* async + timers: initialised before the engine subscription */
    bool ui_handles_open;   /* stdin + signal watchers: after curses */
    int sub_id;             /* the engine subscription, 0 when none */
    sigset_t quit_sigs;     /* held from begin_quit until the engine has stopped */
    bool quitting;
    bool utf8, colors;

    /* ---- event queue (engine threads → UI thread) ---- */
    pthread_mutex_t evq_mu;
    tui_log_entry *evq_logs;
    size_t evq_n, evq_cap;
    uint64_t evq_dropped;
    bool evq_jobs_changed;
    bool evq_have_tp;
    aspen_engine_throughput evq_tp;
    char evq_engine_msg[256];

    /* ---- data from the last refresh ---- */
    aspen_engine_snapshot snap;
    bool have_snap;
    double spark[TUI_SPARK];
    size_t n_spark;
    int64_t last_final_total, last_final_ms; /* for jobs/s from the counts */
    double jobs_per_s;
    double p50_ms, p95_ms;
    size_t n_recent;

    /* ---- jobs table ---- */
    tui_row *rows;
    size_t n_rows;
    long win_offset; /* store offset of rows[0] */
    bool has_more;
    long cursor, top;
    int64_t cursor_id;
    char filter_text[512];
    aspen_store_filter filter;
    char filter_buf[2048];
    bool order_reverse;     /* oldest first */
    tui_sort sort_col;
    bool sort_reverse;
    tui_marks marks;
    bool rows_loaded;

    /* ---- fetch bookkeeping ---- */
    bool fetch_busy, fetch_again;
    uint64_t fetch_gen;     /* bumped when the filter changes: older results are stale */
    uint64_t last_refresh_ms;
    double filter_applied_at; /* monotonic ms when a filter was applied; 0 when none pending */
    uint64_t filter_gen;

    /* ---- panes and overlays ---- */
    tui_pane pane;
    tui_mode mode;
    tui_layout lay;

    /* detail */
    int64_t detail_id;
    tui_text detail;
    long detail_top;
    bool detail_loaded;

    /* help */
    tui_text help;
    long help_top;

    /* prompt */
    tui_prompt_kind prompt_kind;
    tui_line prompt;

    /* confirm */
    tui_confirm_kind confirm_kind;
    char confirm_text[256];
    int64_t *confirm_ids;
    size_t confirm_n;

    /* submit form */
    tui_guest guests[TUI_MAX_GUESTS];
    size_t n_guests, guest_sel;
    tui_line f[TUI_F_N];
    int field;
    char form_msg[512];
    bool form_ok;
    bool payload_touched;

    /* logs */
    tui_logbuf logs_all;
    tui_logbuf logs_one;
    int64_t logs_job;      /* 0: all jobs (live events) */
    int64_t logs_after_seq;
    bool follow, wrap, timestamps;
    long log_top;          /* first entry shown when not following */
    long log_first_shown;  /* what the last draw showed first */
    long log_shown;        /* entries the last draw showed */
    char search[256];
    long search_hit;

    /* messages */
    char status[512];
    bool status_error;
    uint64_t status_until_ms;

    /* ---- timing (benchmarks) ---- */
    double last_draw_ms;
    double key_at_ms;       /* when the key being handled was read; 0 when none */
    double *lat_key, *lat_cursor, *lat_filter, *draw_ms;
    size_t n_lat_key, n_lat_cursor, n_lat_filter, n_draw, cap_lat;
    bool pending_cursor_lat;
} tui_app;

double tui_mono_ms(void);
void tui_set_status(tui_app *a, bool error, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* draw.c */
void tui_draw_init(tui_app *a);
void tui_draw(tui_app *a);
/* Which logs buffer the logs pane shows. */
tui_logbuf *tui_logs_current(tui_app *a);

#endif
