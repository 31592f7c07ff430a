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
#include <sys/stat.h>
#include <uv.h>

#define TUI_WINDOW 500      /* job rows loaded around the cursor */
#define TUI_SPARK 120       /* throughput samples kept (one a second) */
#define TUI_RATE_WINDOW 60  /* ticks (one a second) the header's jobs/s covers */
#define TUI_MAX_GUESTS 128

/* The overlay taking keys, if any (the views under it: the back stack below). */
typedef enum tui_mode {
    TUI_MODE_MAIN = 0,
    TUI_MODE_SUBMIT,
    TUI_MODE_PROMPT,
    TUI_MODE_CONFIRM,
} tui_mode;

/* What fills the body: the three panes the tabs switch between, and the views opened over them.
 * Each has its module (pane_*.c) behind tui_view_ops. */
typedef enum tui_view {
    TUI_VIEW_JOBS = 0, /* = TUI_PANE_JOBS ... */
    TUI_VIEW_VMS,
    TUI_VIEW_LOGS,
    TUI_VIEW_ENGINES, /* pane_engines.c: every host's engines */
    TUI_VIEW_SCHEDULES, /* pane_schedules.c: periodic jobs */
    TUI_VIEW_QUEUES,  /* pane_queues.c: every named queue */
    TUI_VIEW_METRICS, /* pane_metrics.c: the metrics history's charts */
    TUI_VIEW_DETAIL,
    TUI_VIEW_HELP,
    TUI_VIEW_COUNT
} tui_view;

/* One place on the back stack: a view and the job it shows (detail, one job's logs; 0: none),
 * with where it was scrolled to, so esc comes back to it as it was. */
typedef struct tui_place {
    tui_view view;
    int64_t job;
    long top;
} tui_place;
#define TUI_STACK 32

typedef enum tui_prompt_kind { TUI_PROMPT_FILTER, TUI_PROMPT_SEARCH, TUI_PROMPT_COMMAND } tui_prompt_kind;

/* What a confirmed action does. */
typedef enum tui_confirm_kind {
    TUI_CONFIRM_CANCEL,
    TUI_CONFIRM_RETRY_FAILED,
    TUI_CONFIRM_DELETE, /* confirm_ids: the jobs to delete */
    TUI_CONFIRM_QUIT,   /* q while this console's own workers run jobs */
    TUI_CONFIRM_CANCEL_MATCHING, /* X: every unfinished job matching confirm_filter */
} tui_confirm_kind;

enum { TUI_F_GUEST, TUI_F_PAYLOAD, TUI_F_TIMEOUT, TUI_F_PRIORITY, TUI_F_ATTEMPTS, TUI_F_COUNT,
       TUI_F_TAGS, TUI_F_QUEUE,
       TUI_F_UNIQUE, /* the uniqueness rule: [KEY | * | fields=a,b] [for=D] [states=S,...] */
       /* guest memory as aspen submit --memory takes it; empty: the engine's default. Last, so
        * the fields before it keep the places (tab counts) they had before it was added */
       TUI_F_MEMORY,
       TUI_F_SUBMIT, TUI_F_N };

typedef struct tui_guest {
    char *name;
    bool handler; /* an in-process handler type, not a guest binary */
    /* a test guest (test-*): not offered by left/right unless ASPEN_CONSOLE_TEST_GUESTS=1, but
     * found by typing its name into the field */
    bool hidden;
    char sha256[65]; /* a binary only the store has (seen in a job), submitted by its hash */
} tui_guest;

typedef struct tui_app {
    aspen_engine *eng;
    aspen_engine *stats_eng; /* a client handle on the same database for the slower stats reads */
    bool stats_busy;
    aspen_tui_options opts;
    uv_loop_t *loop;
    uv_poll_t stdin_poll;
    uv_signal_t sig_winch, sig_int, sig_term, sig_hup;
    uv_async_t async;
    uv_timer_t tick, refresh_timer, draw_timer, filter_timer;
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
    char evq_engine_msg[1024]; /* the newest engine message (cut with the marker past it) */

    /* ---- data from the last refresh ---- */
    aspen_engine_snapshot snap;
    bool have_snap;
    /* The stats handle's last read found the database unreachable (a restart): the header says
     * "reconnecting" (so does a->snap.reconnecting, this console's own engine's view). */
    bool stats_reconnecting;
    int64_t stats_reconnecting_since_ms;
    double spark[TUI_SPARK];
    size_t n_spark;
    int64_t last_final_total, last_final_ms; /* for jobs/s from the counts */
    /* the header's jobs/s: jobs that finished a run (succeeded or failed; cancelled ones are
     * not throughput) over the last TUI_RATE_WINDOW ticks
     * (about a minute; less just after the console opened, and the header says how long), so it
     * does not read 0.0 the second after a burst finished */
    int64_t rate_done[TUI_RATE_WINDOW];
    double rate_dt[TUI_RATE_WINDOW];
    size_t rate_n, rate_next;
    double jobs_per_s, jobs_per_s_window; /* window: seconds covered */
    /* the header's p50/p95 run time (ms; < 0: nothing finished) and attempts finished over the
     * last 5 minutes of the metrics history (pane_metrics.c reads it); known once read */
    double p50_ms, p95_ms;
    size_t n_recent;
    bool metrics_known;

    /* ---- jobs table ---- */
    tui_row *rows;
    size_t n_rows;
    long win_offset; /* store offset of rows[0] */
    bool has_more;
    long cursor, top;
    int64_t cursor_id;
    /* G: the cursor stays on the last row while the list changes under it (jobs finishing move
     * under :sort duration), until a key moves it; the window is then read from the end */
    bool at_end;
    /* the state counts when the window was last read (a signature): when they changed since,
     * jobs moved somewhere in the list, and a window placed from an anchor's old position could
     * be off (app.c, start_fetch) */
    uint64_t win_counts_sig;
    char filter_text[512];
    aspen_store_filter filter;
    char filter_buf[2048];
    bool order_reverse;     /* oldest first */
    tui_sort sort_col;
    bool sort_reverse;
    tui_marks marks;
    bool rows_loaded;
    bool open_pending; /* enter on a row still loading */
    /* the exact number of jobs a filter matches (not by state only), counted on the pool through
     * a read-only store handle of its own; known for filter_gen == count_gen */
    aspen_store *count_store;
    bool count_busy, count_known;
    uint64_t count_gen;
    unsigned count_round;
    uint64_t count_epoch; /* bumped when jobs leave the matches: a count begun before is stale */
    int64_t count_total;

    /* ---- fetch bookkeeping ---- */
    bool fetch_busy, fetch_again;
    uint64_t fetch_gen;     /* bumped when the filter changes: older results are stale */
    uint64_t last_refresh_ms;
    double filter_applied_at; /* monotonic ms when a filter was applied; 0 when none pending */
    uint64_t filter_gen;

    /* ---- panes and overlays ---- */
    tui_place stack[TUI_STACK]; /* the back stack: stack[depth - 1] is on screen */
    int depth;
    tui_view view;  /* = stack[depth - 1].view */
    tui_pane pane;  /* the pane the tabs show as current: the topmost pane on the stack */
    tui_mode mode;
    long vm_cursor; /* the selected worker in the VMs pane */
    tui_layout lay;

    /* detail */
    int64_t detail_id;
    tui_text detail;
    long detail_top;
    bool detail_loaded;

    /* help */
    tui_text help;
    long help_top;
    int help_width; /* what the help was built for */
    bool detail_wrap;
    char *detail_payload, *detail_output; /* as stored, for y / Y (copy) */
    size_t detail_output_n;
    long detail_left; /* columns scrolled right when not wrapping */

    /* prompt */
    /* + / - while one is in flight: read-modify-writes of one priority must not overlap (two at
     * once would both read the old value), so later steps wait and go as one */
    bool edit_busy;
    int edit_pending; /* steps pressed meanwhile, for edit_ids */
    int64_t *edit_ids;
    size_t edit_n;
    char prompt_error[512]; /* the filter being typed does not parse: why (shown above the line) */
    tui_prompt_kind prompt_kind;
    tui_line prompt;
    tui_history history[3]; /* by tui_prompt_kind */

    /* input: a bracketed paste being read, the last mouse event */
    bool pasting;
    char *paste;
    size_t paste_n, paste_cap;
    bool paste_too_long;
    double paste_began_ms;
    int mouse_y, mouse_x, mouse_button; /* button: 1 click, 4 wheel up, 5 wheel down */
    int last_click_y, last_click_x;
    double last_click_ms;

    /* confirm */
    tui_confirm_kind confirm_kind;
    char confirm_text[512];
    int64_t *confirm_ids;
    size_t confirm_n;
    /* TUI_CONFIRM_CANCEL_MATCHING: the filter the question counted, which yes cancels (not
     * whatever the filter is by then) */
    char confirm_filter[512];

    /* submit form */
    tui_guest guests[TUI_MAX_GUESTS];
    size_t n_guests, guest_sel;
    tui_line f[TUI_F_N];
    int field;
    bool field_fresh; /* just tabbed into: typing replaces the value */
    char form_msg[512]; /* one line (wrapped): what is wrong with every invalid field, or ok */
    bool form_ok;
    unsigned form_bad;  /* a bit per invalid field (1u << TUI_F_*): each is marked '!' */
    bool payload_touched;
    /* The Queue field's name as last looked up in the store on a submit (every queue but
     * default is): form_queue_missing when it was not there, and then the form says so, with a
     * "did you mean" (form_queue_near), and only a second submit of the same name creates it —
     * a typo never makes a queue silently, as aspen submit's --create-queue. form_queue_checking
     * while the look-up runs on the pool (the form stays open and sends nothing meanwhile). */
    char form_queue_checked[ASPEN_STORE_QUEUE_NAME_MAX + 1];
    char form_queue_near[ASPEN_STORE_QUEUE_NAME_MAX + 1];
    bool form_queue_missing, form_queue_checking;
    uint64_t form_queue_gen; /* bumped by each look-up; an answer to an older one is dropped */
    /* What the Guest field's typed text means (form_find_guest): a path (it has a '/' or names an
     * existing file) is the guest itself, checked as typed (guest_why: why it is not one); text
     * that matches no guest or type offered is never the highlighted one (guest_nomatch). */
    bool guest_is_path, guest_nomatch;
    char guest_why[512];
    /* The last path checked and the file it named (device, inode, size, mtime): each keystroke
     * re-runs form_find_guest, and a guest may be up to the engine's size cap, so the file is read
     * again only when the path or the file changed. */
    char *guest_checked;
    struct stat guest_checked_st;
    char guest_checked_why[512];

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

    /* the :export under way (app.c's act_req: its progress for the status line), NULL */
    struct act_req *exporting;
    struct act_req *submitting; /* a submit of many jobs under way (its progress, esc stops it) */
    char quit_note[1400]; /* said on stderr after the screen is gone (an export stopped at quit) */

    /* messages */
    char status[512];
    bool status_error;
    uint64_t status_until_ms;
    bool status_cut; /* the message was longer than status[] (ends in the cut marker) */

    /* ---- kept between runs (view.h, tui_settings) ---- */
    tui_settings settings;
    char settings_path[4096];

    /* ---- timing (benchmarks) ---- */
    double last_draw_ms;
    double key_at_ms;       /* when the key being handled was read; 0 when none */
    double *lat_key, *lat_cursor, *lat_filter, *draw_ms;
    size_t n_lat_key, n_lat_cursor, n_lat_filter, n_draw, cap_lat;
    /* a refresh's job-window read on the pool: by position (the list moved around the cursor)
     * or by key (every other read) */
    double *lat_win_pos, *lat_win_key;
    size_t n_lat_win_pos, n_lat_win_key;
    bool pending_cursor_lat;
} tui_app;

/* ---- the panes' interface (pane_*.c) ---------------------------------------------------------
 * Each view draws its body, handles the actions it has (the keymap says which keys produce them
 * where), says what a refresh must read for it, and may take mouse clicks. An action a view does
 * not handle falls through to app.c's global ones. */
enum { TUI_R_HANDLED = 1, TUI_R_FETCH = 2 /* re-read what the view shows */ };
enum { TUI_NEED_ROWS = 1, TUI_NEED_DETAIL = 2, TUI_NEED_LOGS = 4 };

typedef struct tui_pane_ops {
    const char *name;
    unsigned cx; /* its TUI_CX_* bit: which bindings apply */
    void (*draw)(tui_app *a, int y, int h);
    unsigned (*act)(tui_app *a, tui_action act, int64_t arg, const char *text);
    unsigned (*needs)(const tui_app *a);
    void (*click)(tui_app *a, int y, int x, bool again); /* again: the same place a second time */
} tui_pane_ops;

extern const tui_pane_ops tui_pane_jobs_ops, tui_pane_vms_ops, tui_pane_logs_ops,
    tui_pane_detail_ops, tui_pane_help_ops, tui_pane_engines_ops, tui_pane_schedules_ops,
    tui_pane_queues_ops, tui_pane_metrics_ops;
const tui_pane_ops *tui_view_ops(tui_view v);

/* app.c, for the panes */
double tui_mono_ms(void);
void tui_fetch(tui_app *a);          /* re-read the job window, the detail and the logs now */
void tui_request_draw(tui_app *a);
void tui_push(tui_app *a, tui_view v, int64_t job); /* open a view; esc comes back */
bool tui_back(tui_app *a);                          /* false at the bottom of the stack */
/* The submit form's message fits the rows under [ Submit ] on this screen (draw.c): else the
 * summary is made shorter (form_check) rather than cut at its end. */
bool tui_form_msg_fits(const char *msg);
void tui_show_pane(tui_app *a, tui_pane p);         /* a tab: the stack starts again there */
void tui_open_prompt(tui_app *a, tui_prompt_kind kind, const char *initial);
const tui_row *tui_selected_row(const tui_app *a);
long tui_jobs_total(const tui_app *a);
void tui_move_cursor(tui_app *a, long delta, bool absolute);
void tui_job_command(tui_app *a, tui_action act); /* cancel (asks) / rerun the target jobs */
/* +/- (priority by one), :priority N, n / :run-now, z / :snooze [DURATION] on the target jobs
 * (text: :priority's N or :snooze's DURATION; z without one opens the prompt, 10m filled in). */
void tui_job_edit(tui_app *a, tui_action act, const char *text);
void tui_submit_copy(tui_app *a, int64_t id);     /* the form from job id's values */
/* Puts data on the terminal's clipboard (OSC 52) and says so: "copied WHAT (N bytes)". */
void tui_copy(tui_app *a, const char *what, const void *data, size_t n);
/* Scrolls a text view (detail, help) for a moving action; false for other actions. */
bool tui_text_scroll(tui_app *a, long *top, tui_action act);
long tui_page(const tui_app *a);
void tui_set_status(tui_app *a, bool error, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* An error on screen goes when a later action succeeds. */
void tui_clear_error(tui_app *a);
/* pane_logs.c: the search set (prompt, as you type): the newest match found, "" none. */
void tui_logs_search_set(tui_app *a, const char *needle);
/* pane_engines.c, once a second: the engines list, and other hosts' jobs' log lines into the logs
 * pane (they reach this console only through the store). */
void tui_engines_tick(tui_app *a);
/* Once, as the console opens (before its engine starts, the loop not yet running): where the
 * other engines' log lines start — everything written from now on reaches the logs pane. */
void tui_engines_begin(tui_app *a);
/* At quit, before the loop's handles close: the log announcements' waiter thread stops and its
 * async handle closes (pane_engines.c). */
void tui_engines_quit(void);
void tui_engines_close(void); /* at exit: its store handle and list */
void tui_schedules_close(void); /* pane_schedules.c, at exit */
void tui_queues_close(void);  /* pane_queues.c, at exit: its store handle and list */
/* pane_metrics.c, once a second: the metrics history (the pane's charts, the header's p50/p95) */
void tui_metrics_tick(tui_app *a);
void tui_metrics_close(void); /* at exit: its store handle and last answer */

/* draw.c */
void tui_draw_init(tui_app *a);
void tui_draw(tui_app *a);
/* Which logs buffer the logs pane shows. */
tui_logbuf *tui_logs_current(tui_app *a);
/* Text at y, x, at most w display columns, through the sanitiser (aspen_text.h). */
void tui_put(int y, int x, int w, unsigned long attr, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* A pane's error line (a read that failed: "reconnecting in 4 s: cannot reach the PostgreSQL
 * server ..."): at most w columns; when it does not fit, cut with the marker and ended by where
 * it is whole, "(all of it: 3, Logs)" (tui_pane_error_seen put it there). */
void tui_put_error_line(tui_app *a, int y, int x, int w, const char *text);
/* A pane's read failed with error, the pane's last error being prev: a new text goes to the Logs
 * pane once, whole, as "[console] PANE: error" (the same error each retry is not repeated). */
void tui_pane_error_seen(tui_app *a, const char *pane, const char *prev, const char *error);
unsigned long tui_state_attr(const tui_app *a, aspen_store_state s);
unsigned long tui_pair_or(const tui_app *a, int pair, unsigned long mono);
enum { TUI_P_QUEUED = 1, TUI_P_SCHED, TUI_P_RUNNING, TUI_P_OK, TUI_P_FAILED, TUI_P_CANCELLED,
       TUI_P_TITLE, TUI_P_DIM, TUI_P_ERRMSG, TUI_P_HIT };
/* pane_logs.c: log lines (also under the jobs table on tall screens) */
void tui_draw_log_lines(tui_app *a, tui_logbuf *b, int y0, int h, bool follow, bool remember);
/* a text block (detail, help) with a title bar; wrap or scroll sideways by *left columns */
void tui_draw_text(tui_app *a, const tui_text *t, long *top, int y0, int h, const char *title,
                   bool wrap, long *left);

#endif
