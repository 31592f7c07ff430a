/* tui/view.h — the console's view models: everything the screen shows that can be computed without a
 * terminal. Formatting of durations, ages and sizes; the sparkline; job rows copied out of the
 * store's rows, sorted and marked; key → action mapping per pane; layout math; the log ring with
 * search and wrap; a one-line text editor; job-detail text. No curses here (tui/app.c draws), so
 * tests/tui/test_view.c checks all of it with cmocka.
 */
#ifndef ASPEN_TUI_VIEW_H
#define ASPEN_TUI_VIEW_H

#include "aspen_engine.h"
#include "keymap.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- formatting ------------------------------------------------------------------------------- */
/* "0ms" "850ms" "1.2s" "12s" "3m05s" "2h03m" "4d02h"; negative → "-". */
void tui_fmt_ms(int64_t ms, char *out, size_t cap);
/* run times from microseconds: "85us" "1.3ms" "12ms" then as tui_fmt_ms */
void tui_fmt_us(int64_t us, char *out, size_t cap);
/* Run-time quantiles in microseconds, smallest first (p50, p95[, p99]), as the header and the
 * Metrics pane show them, with one rule for all of them: tui_fmt_us; a 0 (an in-process handler's
 * time, counted in whole ms: under 1 ms) reads "<1ms", or "<=X" when a later quantile X is itself
 * under 1 ms, so "p50 <1ms p95 431us" (p50 read as the larger) cannot happen; negative: "-". */
void tui_fmt_quantiles(const int64_t *us, size_t n, char (*out)[32]);
/* "512B" "4.0K" "1.0M" "2.5G" */
void tui_fmt_size(uint64_t bytes, char *out, size_t cap);
/* "999" "12.3k" "1.2M" */
void tui_fmt_count(int64_t n, char *out, size_t cap);
/* n whole, with thousands separators: "100,000" (a progress line's figures, as aspen's own
 * questions write counts). */
void tui_fmt_thousands(int64_t n, char *out, size_t cap);
/* The database as the header names it when its full name does not fit: for a PostgreSQL
 * conninfo (already redacted: aspen_store_name_shown) "HOST/DB" — a socket directory's last part
 * as the host, "localhost" when none is given, no "/DB" when no dbname is given — from a URI
 * (postgresql://user@host:port/db?...) or key=value words (host=... dbname=..., values quoted
 * with '...' too); for an SQLite path its file name. Never the password: the input has none. */
void tui_db_label(const char *shown, char *out, size_t cap);
/* HH:MM:SS.mmm in local time */
void tui_fmt_clock(int64_t ms, char *out, size_t cap);

/* The sparkline of the last `width` values (older ones dropped), scaled to the largest shown.
 * utf8: block characters ▁..█ (3 bytes each); else " .:-=+*#". Returns bytes written. */
size_t tui_sparkline(const double *v, size_t n, size_t width, bool utf8, char *out, size_t cap);

/* The p-th percentile (0..100) of n values (sorted in place); 0 when n == 0. */
double tui_percentile(double *v, size_t n, double p);

/* ---- job rows --------------------------------------------------------------------------------- */
typedef struct tui_row {
    int64_t id;
    char type[24];
    char guest[40];
    aspen_store_state state;
    int attempts, max_attempts, priority;
    int64_t created_ms, started_ms, finished_ms, run_at_ms;
    char error[120]; /* the head of the error, one line */
} tui_row;

void tui_row_from_job(const aspen_store_job *job, tui_row *row);
/* Run time of a row: finished − started, now − started while running, −1 when not started. */
int64_t tui_row_duration_ms(const tui_row *row, int64_t now_ms);

typedef enum tui_sort {
    TUI_SORT_ID = 0, /* the store's order (newest first, or oldest first when reversed) */
    TUI_SORT_STATE,
    TUI_SORT_GUEST,
    TUI_SORT_PRIORITY,
    TUI_SORT_ATTEMPTS,
    TUI_SORT_AGE,
    TUI_SORT_DURATION,
    TUI_SORT_QUEUE, /* no column of its own in the table: the detail and the filter show it */
    TUI_SORT_COUNT
} tui_sort;
const char *tui_sort_name(tui_sort s);
/* The store's whole-store sort for the console's column: each column's natural direction (id:
 * newest first, or the order: term; state: queued first; guest: a to z; priority, attempts,
 * duration: the highest first; age: the oldest first), the other way when reverse (for id:
 * order_reverse). False when the list cannot page by key (order:queue under the id column): then
 * it pages by offset in the filter's order. */
bool tui_store_sort(tui_sort col, bool reverse, bool order_reverse, aspen_store_order order,
                    aspen_store_sort *sort, bool *desc);

/* Marked job ids: a sorted set. */
typedef struct tui_marks {
    int64_t *ids;
    size_t n, cap;
} tui_marks;
bool tui_marks_has(const tui_marks *m, int64_t id);
void tui_marks_toggle(tui_marks *m, int64_t id);
void tui_marks_clear(tui_marks *m);
void tui_marks_free(tui_marks *m);

/* The console's filter line: aspen_store_filter_parse, the one language of the console and the CLI
 * (bare words: a state, a job id, a guest name; guest:NAME). Strings in *out point into buf.
 * 0, or -1 with the store's message. */
int tui_filter_parse(const char *text, aspen_store_filter *out, char *buf, size_t bufsize,
                     char *msg, size_t msgcap);
/* `C` / :core [FILE] (core.c): the last core job_id kept, to FILE (default
 * ./aspen-core-JOB-ATTEMPT) and the guest ELF beside it under a name gdb matches to the core
 * (FILE.elf when that is at most 15 bytes, else job-JOB-ATTEMPT); msg: the gdb command, or why
 * not. */
int tui_core_write(aspen_engine *eng, int64_t job_id, const char *path, char *msg, size_t cap);
/* :export FILE: every job filter_text matches, one JSON object a line, into a new file at path
 * (an existing one is refused), read by id in pages of 500 from a key (so jobs submitted or
 * finishing meanwhile are neither missed nor written twice, and a page deep in millions costs
 * what the first does). *written counts as it goes (the console's progress, read from the UI
 * thread); *stop (set at quit) ends it after the page being written; at the end where
 * (where_cap bytes) gets the file's absolute path. 0, or -1 with msg. */
int tui_export_jsonl(aspen_engine *eng, const char *filter_text, const char *path,
                     _Atomic int64_t *written, const _Atomic bool *stop, char *where,
                     size_t where_cap, char *msg, size_t cap);
/* A refused choice and what would work, as every :command that takes one of a fixed set says it:
 * "unknown WHAT 'GIVEN', did you mean NEAR? (LABEL: a b c)" — the near miss from
 * aspen_store_nearest, left out when there is none; names joined by sep. An empty given reads
 * "WHAT needed (LABEL: ...)". GIVEN is quoted in at most 40 columns, a longer one cut between
 * characters with the cut marker (utf8: the terminal's, tui_cut_marker). */
void tui_choice_refusal(const char *what, const char *given, const char *const *names, size_t n,
                        const char *label, const char *sep, bool utf8, char *out, size_t cap);
/* True when the filter selects by state only (then counts by state give the total): no type,
 * guest, tag, payload field, id, rerun-of or queue term. */
bool tui_filter_states_only(const aspen_store_filter *f);

/* The read-only store handle a pane reads through on the thread pool, opened when *st is NULL: 0
 * with *st, or -1 with the reason in open_error. Every failure is tried again at the next call —
 * a PostgreSQL server restarting, an SQLite file another process holds locked, even a database
 * that is missing now may be there later — so the caller paces its calls with a tui_backoff. */
int tui_store_open_ro(const char *db, aspen_store **st, char *open_error, size_t cap);

/* The reconnect pacing every pane that reads the store on its own handle shares (Queues, Engines,
 * Metrics, the Engines pane's LISTEN waiter): after a failed read the handle is dropped and the
 * next try waits 1 s, then 2, 4 ... 30 s; a good read ends it. Times are tui_mono_ms. */
typedef struct tui_backoff {
    int fails;       /* reads failed in a row; 0 after a good one */
    double retry_at; /* when the next try is due after a failure */
} tui_backoff;
void tui_backoff_failed(tui_backoff *b, double now);
void tui_backoff_ok(tui_backoff *b);
/* True while a failure's wait is still running (do not try yet). */
bool tui_backoff_waiting(const tui_backoff *b, double now);
/* "reconnecting in N s" (or "reconnecting now" while a try is in flight or due), for the pane's
 * error line: the state first, so at 80 columns a long reason is cut, not the state. */
void tui_backoff_say(const tui_backoff *b, bool busy, double now, char *out, size_t cap);

/* Keeps a cursor inside [0, n) and the first shown row such that the cursor is visible. */
void tui_scroll(long *cursor, long *top, long n, long height);

/* ---- panes ------------------------------------------------------------------------------------ */
/* The panes the tabs switch between (keys, actions and commands: keymap.h). */
typedef enum tui_pane {
    TUI_PANE_JOBS = 0, TUI_PANE_VMS, TUI_PANE_LOGS, TUI_PANE_ENGINES, TUI_PANE_SCHEDULES, TUI_PANE_QUEUES,
    TUI_PANE_METRICS, TUI_PANE_COUNT
} tui_pane;
const char *tui_pane_name(tui_pane p);
/* The tab's name at a width: under 100 columns the longer names are cut ("Eng", "Queue",
 * "Stats"). */
const char *tui_pane_label(tui_pane p, int cols);
/* The tab as drawn: " 1 Jobs " from 100 columns; under that "1Jobs" (the digit against the name,
 * as htop's footer does it), so seven tabs take 42 columns and leave the filter and sort in view
 * at 80. draw.c draws them one column apart, app.c finds a click with the same widths. */
void tui_tab_label(tui_pane p, int cols, char *out, size_t cap);

/* ---- layout ----------------------------------------------------------------------------------- */
typedef struct tui_layout {
    int cols, rows;
    int header_y, header_h; /* title + counts + rates */
    int tabs_y;             /* pane tabs and the filter */
    int body_y, body_h;     /* the current pane */
    int split_y, split_h;   /* logs under the jobs table on tall screens (0 when none) */
    int foot_y;             /* key hints / prompt / message */
    bool too_small;
} tui_layout;
void tui_layout_compute(int cols, int rows, tui_pane pane, tui_layout *l);

/* Job table columns that fit a width: fills which[] with column ids in order, returns how many;
 * the error column takes what is left (*error_w). */
enum { TUI_COL_MARK, TUI_COL_ID, TUI_COL_TYPE, TUI_COL_GUEST, TUI_COL_STATE, TUI_COL_ATTEMPTS,
       TUI_COL_PRIO, TUI_COL_AGE, TUI_COL_DUR, TUI_COL_ERROR, TUI_COL_N };
int tui_job_columns(int width, int which[TUI_COL_N], int widths[TUI_COL_N]);
const char *tui_col_title(int col);

/* ---- the log ring ----------------------------------------------------------------------------- */
typedef struct tui_log_entry {
    int64_t job_id;
    int attempt;
    int64_t time_ms;
    int64_t seq; /* store seq when read from the store, else 0 */
    char *line;
    /* Where a line from ANOTHER engine ran (issue 8): "host:pid" (the host cut to
     * TUI_LOG_HOST_MAX characters, escaped like the line), or "engine N" once that engine's row
     * is gone; NULL for the console's own engine's lines, which need no mark. */
    char *where;
} tui_log_entry;
/* The longest host name a mark shows: "[job N host:pid] " stays under a third of 80 columns. */
#define TUI_LOG_HOST_MAX 16

typedef struct tui_logbuf {
    tui_log_entry *e;
    size_t cap, start, n; /* ring */
    uint64_t dropped;     /* pushed out of the ring */
} tui_logbuf;
void tui_logbuf_init(tui_logbuf *b, size_t cap);
void tui_logbuf_free(tui_logbuf *b);
void tui_logbuf_clear(tui_logbuf *b);
/* Copies line (and cuts it at the first newline). */
void tui_logbuf_push(tui_logbuf *b, int64_t job_id, int attempt, int64_t time_ms, int64_t seq,
                     const char *line);
/* The same for a line another engine wrote (the store's log feed): host and pid of that engine
 * (host "" when its row is gone: then engine_id names it) become the entry's mark. */
void tui_logbuf_push_from(tui_logbuf *b, int64_t job_id, int attempt, int64_t time_ms,
                          const char *line, const char *host, int64_t pid, int64_t engine_id);
/* A message of the console's own (a status message too long for the screen), kept whole: shown
 * "[console] line" in the all-jobs view. */
void tui_logbuf_push_console(tui_logbuf *b, int64_t time_ms, const char *line);
const tui_log_entry *tui_logbuf_get(const tui_logbuf *b, size_t i); /* 0 = oldest */
/* Index of the next (dir > 0) or previous entry from `from` (exclusive) whose text as shown
 * (tui_log_format with the same timestamps and show_job: "[job N]" and the time are searched
 * too) contains needle (case-insensitive), or -1. */
long tui_logbuf_search(const tui_logbuf *b, long from, int dir, const char *needle,
                       bool timestamps, bool show_job);
/* Screen rows a line of len characters takes at width (1 unless wrapping). */
int tui_wrap_rows(size_t len, int width, bool wrap);
/* Screen rows a line of UTF-8 text takes at width display columns (1 unless wrapping). */
int tui_wrap_rows_text(const char *text, int width, bool wrap);
/* Where needle occurs in text, case-insensitive, not overlapping: byte ranges [lo, hi) as pairs in
 * out[2 * i], out[2 * i + 1], at most max of them. Returns how many. */
size_t tui_find_all(const char *text, const char *needle, size_t *out, size_t max);

/* The engine's JSON error ("invalid JSON payload: line L, column C, position P: WHAT near 'TOK'")
 * with its place first and nothing else ahead of it: "line L, column C: WHAT near 'TOK'", the token
 * (the parser's text so far, as long as a whole string) cut to near_cols display columns with
 * "..." — the submit form's summary at 80 columns, where the whole message ran past its rows and
 * the end got cut. Another text is copied as it is (false). Always terminated (cap > 0). */
bool tui_json_error_brief(const char *msg, int near_cols, char *out, size_t cap);

/* ---- display columns (UTF-8) ------------------------------------------------------------------ */
/* Display columns of s[0, len): wide characters (CJK, emoji) take 2, combining marks 0. */
int tui_cols(const char *s, size_t len);
/* The bytes of the longest prefix of s[0, len) that fits in cols display columns, cut between
 * characters, never inside one; *used (when not NULL) gets its columns. */
size_t tui_cols_fit(const char *s, size_t len, int cols, int *used);
/* The one rule for text cut to fit (tui_put draws every string through it, the pagers' unwrapped
 * lines too): the bytes of s[0, len) to show in cols display columns. When more than blanks is
 * left over, *cut is set and the bytes returned leave the last column for tui_cut_marker, so cut
 * text never reads as whole ("job_error: bad i" was a whole word to a reader). */
size_t tui_cols_fit_cut(const char *s, size_t len, int cols, bool *cut);
/* The marker a cut ends with, one column: U+2026 on a UTF-8 terminal, else "~". */
const char *tui_cut_marker(bool utf8);
/* s cut to cols display columns by that rule, the marker included: for a cell formatted before it
 * is drawn (a column inside a row). Always terminated (cap > 0). */
void tui_cut_to(const char *s, int cols, bool utf8, char *out, size_t cap);
/* s copied into out[cap] whole when it fits, else cut to fit by bytes — between characters, never
 * inside a UTF-8 sequence — and ending in the cut marker: for a message kept in a fixed buffer
 * (an engine event's text) before it is shown. Always terminated (cap > 0). */
void tui_copy_cut(const char *s, bool utf8, char *out, size_t cap);
/* Where a wrapped line's next row ends: the bytes of s[0, len) that go on a row of cols display
 * columns, broken after the last space that fits (words are not cut), or between characters when
 * a word is wider than a row (it starts where it is, not on a row of its own; a space that ends a
 * row goes with it, unseen). Always at least
 * one character when len > 0. The detail, the help and the logs pane wrap with it, and
 * tui_wrap_rows_text counts with it. */
size_t tui_wrap_next(const char *s, size_t len, int cols);
/* Wrapped with a hanging indent (the job detail): a line that starts with blanks (an item) has
 * its later rows indented under its text, by tui_wrap_hang columns (its blanks + 2; 0 for a
 * title, or when that would take over half the width); tui_wrap_rows_hang counts its rows. */
int tui_wrap_hang(const char *text, int width);
int tui_wrap_rows_hang(const char *text, int width);
/* The text of a log entry as shown: "[job N] line", "[job N host:pid] line" for another engine's
 * (show_job: the all-jobs view), or with "HH:MM:SS.mmm " in front. */
void tui_log_format(const tui_log_entry *e, bool timestamps, bool show_job, char *out, size_t cap);

/* ---- the text editor (fields and the prompt) ----------------------------------------------------
 * One line, or several for the form's payload (multiline: enter inserts a newline, up/down move
 * between lines). UTF-8: the cursor moves by characters, typed bytes >= 0x80 are kept. */
#define TUI_LINE_MAX 65536
typedef struct tui_line {
    char buf[TUI_LINE_MAX];
    size_t len, cur;
    bool multiline;
} tui_line;
void tui_line_set(tui_line *l, const char *text);
/* Applies a key: printable inserts, backspace/delete/left/right/home/end/^A/^E/^D/^U edit, and
 * in a multiline editor enter (a newline) and up/down. Returns true when the key was used (up on
 * the first line or down on the last is not). */
bool tui_line_key(tui_line *l, int key);
/* Inserts text at the cursor, whole or not at all (false: it does not fit). A one-line editor
 * takes newlines and tabs as spaces; a multiline one keeps newlines (CR LF and CR become LF).
 * Other control characters are dropped. */
bool tui_line_insert(tui_line *l, const char *text, size_t n);
/* First byte to show so the cursor stays visible in width columns (one-line editors). */
size_t tui_line_scroll(const tui_line *l, int width);
/* Multiline: the line the cursor is on (0-based) and how many lines there are. */
size_t tui_line_row(const tui_line *l, size_t *n_rows);

/* ---- prompt history ------------------------------------------------------------------------------ */
#define TUI_HISTORY 64
typedef struct tui_history {
    char *items[TUI_HISTORY]; /* oldest first */
    size_t n;
    long pos;                 /* -1: not browsing; else the item shown */
    char draft[1024];         /* what was typed before browsing */
} tui_history;
/* Adds an entry (not an empty one, not the same as the newest); stops browsing. */
void tui_history_add(tui_history *h, const char *text);
/* Up: the next older entry (saving the draft first), or NULL at the oldest. */
const char *tui_history_older(tui_history *h, const char *current);
/* Down: the next newer entry, the draft after the newest, or NULL when not browsing. */
const char *tui_history_newer(tui_history *h);
void tui_history_free(tui_history *h);

/* The terminal escape that puts data on the clipboard (OSC 52: ESC ] 52 ; c ; BASE64 BEL).
 * Returns its length, or 0 when it does not fit in cap (nothing written then). */
size_t tui_osc52(const void *data, size_t n, char *out, size_t cap);

/* A job's tags as the form's field shows them: ["a","b"] → "a, b". */
void tui_tags_from_json(const char *json, char *out, size_t cap);

/* ---- text blocks (job detail, help) ------------------------------------------------------------ */
typedef struct tui_text {
    char **lines;
    size_t n, cap;
} tui_text;
void tui_text_add(tui_text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Adds a multi-line string, each line prefixed by indent. */
void tui_text_add_block(tui_text *t, const char *indent, const char *s, size_t len);
void tui_text_free(tui_text *t);

/* Pretty JSON with two-space indent (jansson), or the text as given when it is not JSON. malloc'd. */
char *tui_json_pretty(const char *text);

/* The job detail: spec, payload indented, output, error, attempts with timings and stats, logs. */
/* The detail's "Debugging" section (core.c): which attempts kept a core (C writes the last
 * attempt's; aspen core ID --attempt N -o FILE any of them) or a replay record (aspen replay).
 * Nothing when the job keeps none. */
void tui_detail_add_data(tui_text *t, int64_t job_id, const aspen_store_attempt_data *d, size_t n,
                         const char *db_arg);
/* rule: the job's uniqueness rule (aspen_engine_unique_rule), NULL or a NULL key when it has
 * none: a "unique" line worded as aspen show's. */
void tui_detail_build(tui_text *t, const aspen_store_job *job, const aspen_store_job_rule *rule,
                      const aspen_store_attempt *att, size_t n_att, const aspen_store_log *logs,
                      size_t n_logs, int64_t now_ms);
/* The help screen at width columns, generated from the keymap (keymap.c): every key and command,
 * the help wrapped so no line is wider than width - 1. */
void tui_help_build(tui_text *t, int width);

/* ---- settings kept between runs -------------------------------------------------------------------
 * $XDG_CONFIG_HOME/aspen/console.conf (else ~/.config/aspen/console.conf): "key = value" lines,
 * '#' comments; written at quit and on :save. Unknown keys and bad lines are skipped (the first
 * one is reported), so a newer console's file never stops an older one. */
#define TUI_SAVED_MAX 32
typedef struct tui_settings {
    tui_sort sort;
    bool sort_reverse, order_reverse, wrap, timestamps, detail_wrap;
    struct {
        char name[64];
        char text[512];
    } saved[TUI_SAVED_MAX]; /* :save NAME, :load NAME */
    size_t n_saved;
} tui_settings;
void tui_settings_default(tui_settings *s);
/* Parses text (NUL-terminated) over *s. Returns how many lines were skipped; the first one is
 * described in msg. */
int tui_settings_parse(const char *text, tui_settings *s, char *msg, size_t msgcap);
/* The file's text. Returns its length, or 0 when cap is too small. */
size_t tui_settings_format(const tui_settings *s, char *out, size_t cap);
/* The file's path from the environment; false when neither XDG_CONFIG_HOME nor HOME is set. */
bool tui_settings_path(char *out, size_t cap);
/* Saves (or with an empty text, forgets) a named filter. A name is letters, digits, '-', '_',
 * '.', at most 63 bytes. 0, or -1 with a message. */
int tui_settings_save_filter(tui_settings *s, const char *name, const char *text, char *msg,
                             size_t msgcap);
const char *tui_settings_filter(const tui_settings *s, const char *name); /* NULL: none */

/* ---- guests for the submit form ------------------------------------------------------------------ */
/* Names of the guest binaries in dir (regular files), seed guests (echo-worker, data-processor)
 * first, then the others sorted. Returns how many (at most max); names are malloc'd. */
size_t tui_guest_list(const char *dir, char **names, size_t max);
/* The project's own test guests (test-hostile, test-fault, test-leak, ...: the test suite's
 * misbehaving guests, named test-*), which the submit form does not offer to a user unless asked. */
bool tui_guest_is_test(const char *name);
/* A starting payload for a guest or built-in type: the seed's examples for echo-worker and
 * data-processor (and their rust-/musl- builds, which take the same shapes), {"ms": 1000} for
 * sleep, a message for echo and checksum. */
const char *tui_guest_example_payload(const char *guest);
/* A guest memory size for the form's Memory field, as --memory takes it back: "1M", "512K" or
 * bytes; "" for 0 (the engine's default). */
void tui_memory_format(int64_t bytes, char *out, size_t cap);

#endif
