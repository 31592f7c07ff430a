/* cli/cli.h — shared helpers of the `aspen` program's subcommands (the cli/cmd_*.c files). */
#ifndef ASPEN_CLI_H
#define ASPEN_CLI_H

#include "aspen_text.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Resolve GUEST (a path, or a name in target/guest-binaries/) to a file path. Returns 0 and fills
 * out, or -1 with a message naming the places searched. */
int cli_resolve_guest(const char *guest, char *out, size_t cap, char *msg, size_t msgcap);
/* The guest-binaries directory in use (first that exists), or NULL. */
const char *cli_guest_dir(void);

/* Read a whole file (max bytes); returns malloc'd buffer or NULL with msg. */
uint8_t *cli_read_file(const char *path, size_t max, size_t *len, char *msg, size_t msgcap);

/* ---- output of job fields (cli/output.c) ---------------------------------------------------------
 * Text from jobs goes through the shared sanitiser (aspen_text.h) before it reaches a terminal. */
/* "error: MESSAGE" on stderr, the message escaped (it may quote a type, a name, a guest's words). */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* vsnprintf into out (cap > 0), returning the length written (cut to cap - 1; 0 on an error). */
size_t cli_vformat(char *out, size_t cap, const char *fmt, va_list ap);
/* Help text (printf format) to f, every line wider than 80 columns wrapped at a space, under the
 * text it continues. Every command's --help and usage goes through it. */
void cli_help(FILE *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Escaped text to f (flags: ASPEN_TEXT_*). */
void cli_putn(FILE *f, const void *s, size_t len, unsigned flags);
void cli_puts(FILE *f, const char *s);
/* Multi-line text (a compiler's output in an error or a log line) as lines: each newline starts a
 * new line indented by `indent` columns (under the field it continues); every other control and
 * invalid byte is escaped as cli_putn does with flags. */
void cli_put_lines(FILE *f, const void *s, size_t len, unsigned flags, int indent); /* NULL → nothing */
/* A table cell: escaped, tab and newline as spaces, at most width display columns (a wide CJK
 * character is 2, a combining mark 0; cut ones end in "...", never in the middle of an escape or
 * a character). cli_col also pads it with spaces to exactly width columns, for a column that text
 * follows (printf's %-12s pads bytes, not columns). out needs about 6 bytes a column. */
const char *cli_cell(const void *s, size_t len, size_t width, char *out, size_t cap);
const char *cli_cell_str(const char *s, size_t width, char *out, size_t cap);
const char *cli_col(const void *s, size_t len, size_t width, char *out, size_t cap);
const char *cli_col_str(const char *s, size_t width, char *out, size_t cap);
/* cli_cell, also giving the columns and bytes written. */
void cli_cell_cols(const void *s, size_t len, size_t width, char *out, size_t cap, size_t *cols,
                   size_t *used);
/* JSON strings that never vanish: well-formed UTF-8 as it is, else one U+FFFD per bad byte.
 * Never NULL (json_null() when out of memory, or for a NULL string). */
json_t *cli_json_text(const void *s, size_t len);
json_t *cli_json_str(const char *s);
/* The text parsed as JSON when it is JSON, else as a string (cli_json_text). */
json_t *cli_json_parse_or_text(const void *s, size_t len);
/* obj[key] = the bytes (parsed as JSON when they are, else text); when they are not UTF-8,
 * obj[key + "_base64"] carries them exactly. */
void cli_json_set_bytes(json_t *obj, const char *key, const void *s, size_t len);
/* obj[key] = the bytes as text (one U+FFFD per byte that is not UTF-8: JSON strings must be); when
 * they are not UTF-8, obj[key + "_base64"] carries them exactly, the rule of results. NULL: null. */
void cli_json_set_text(json_t *obj, const char *key, const void *s, size_t len);
char *cli_base64(const void *data, size_t len); /* malloc'd */
/* Prints v and a newline: ASCII only (\uXXXX escapes), so lossless and terminal-safe; a real
 * number with at most 15 significant digits (546.886, not 546.88599999999997). */
int cli_json_print(json_t *v, FILE *f, bool compact);

/* ---- tables that fit the terminal (cli/table.c) --------------------------------------------------
 * Columns by priority: when the table is wider than the output, the columns of the highest prio
 * are dropped first (0: always shown; a line on stderr names what was hidden), then cuttable ones
 * (min > 0) are cut with "...", a column at a time, down to min: the one with the most columns
 * over its min (counted prio + 1 times) first. */
typedef struct cli_table_col {
    const char *head;
    int prio;   /* 0 = always shown; higher = dropped sooner */
    size_t min; /* 0: never cut; else cut to no fewer columns than this (and its header) */
    size_t max; /* widest a cell is shown (0: 200 columns); --wide: 1000 for every column */
    bool right; /* right-aligned (numbers) */
} cli_table_col;
typedef struct cli_table cli_table;
/* --wide: tables as wide as their cells, whatever the terminal. */
extern bool cli_wide;
#define CLI_WIDE_OPT {"wide", no_argument, 0, 'W'}
/* The width tables are laid out for: --wide: unlimited; $COLUMNS; the terminal's; 80 (a pipe). */
size_t cli_term_width(void);
cli_table *cli_table_new(const cli_table_col *cols, size_t n_cols); /* cols must outlive it */
/* Column col holds names (queues): a cut cell keeps its start and its end around "..."
 * (very-lon...ts.2026), so names that differ only at the end stay apart, and a line on stderr
 * says how many were cut and that --wide shows them whole (trial 23: two queues both read
 * very-long-queue-n...). */
void cli_table_names(cli_table *t, size_t col);
/* The next cell, row by row (n_cols cells a row): raw bytes, escaped when printed. */
void cli_table_cell(cli_table *t, const void *s, size_t len);
void cli_table_str(cli_table *t, const char *s); /* NULL: "" */
void cli_table_fmt(cli_table *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Header and rows laid out for cli_term_width(); 0, or -1 after an error line (out of memory). */
int cli_table_print(cli_table *t, FILE *f);
void cli_table_free(cli_table *t);

/* --payload ARG: JSON text, @FILE or - (stdin), read up to ASPEN_ENGINE_MAX_PAYLOAD bytes and
 * checked. Returns the malloc'd text (NUL-terminated) and its length, and in from where it came
 * ("" for inline text); or NULL with msg. */
char *cli_load_payload(const char *arg, size_t *len, char *from, size_t fromcap, char *msg,
                       size_t cap);
/* A payload checked as the engine checks it, NUL bytes refused: 0, or -1 with the engine's
 * "invalid JSON payload…" wording (with "from FROM" when given). The one wording of run and submit. */
int cli_check_payload(const char *text, size_t len, const char *from, char *msg, size_t cap);
/* --memory SIZE as run, submit and cron add take it (aspen_engine_memory_parse: 64 KiB to 1 GiB):
 * 0, or 2 (a usage error) after saying what is wrong. The one wording of the three commands. */
int cli_memory_opt(const char *text, int64_t *bytes);
/* A whole file, or stdin for "-", read with at most max + 1 bytes whatever it is (FIFO, device):
 * malloc'd and NUL-terminated, or NULL with msg ("larger than the N-byte limit", ...). */
char *cli_read_bounded(const char *path, size_t max, size_t *len, char *msg, size_t cap);

/* The nearest of names to word (within 2 edits, or a prefix of 3+ bytes), or NULL. */
const char *cli_nearest(const char *word, const char *const *names, size_t n);
/* getopt_long whose errors are one `error:` line naming the option, with "did you mean" for an
 * unknown long option; returns '?' after printing it (the caller prints its usage, exits 2). */
struct option;
int cli_getopt(int argc, char **argv, const char *shortopts, const struct option *longopts,
               const char *cmd);
/* --create was given: a --db (or $ASPEN_DB) that does not exist is created, not refused. */
extern bool cli_create;

/* A number option: 0, or -1 after "error: OPT wants a whole number from LO to HI, not 'S'" (the
 * one wording of every command). */
int cli_parse_num(const char *opt, const char *s, long long lo, long long hi, long long *out);
/* A time option (--timeout, --delay): a bare number is milliseconds, as these options always took;
 * with a unit it is a duration (500ms, 30s, 5m, 1h, 1h30m). Out of [lo, hi] ms or unparseable:
 * one error line naming the option and both forms, and -1. */
/* A period (--older-than, --unique-for, --since, --step, retention ages): a duration with a unit
 * (30s, 5m, 24h, 7d, 1h30m) or 0; a bare non-zero number is refused with the units to write.
 * Says the error itself (naming opt) and returns -1. */
int cli_parse_period(const char *opt, const char *s, int64_t *ms);
int cli_parse_ms(const char *opt, const char *s, long long lo, long long hi, long long *out);
/* 850 us, 12.3 ms, 4.56 s, 30 s, 2 min 3 s, 1 h 2 min. */
void cli_format_duration_us(int64_t us, char *out, size_t cap);
/* A count with thousands separators (12,345), as a person reads a large number in a question. */
void cli_format_count(int64_t n, char *out, size_t cap);
/* A yes/no question before a change that cannot be undone (delete, purge, cancel --filter): the
 * question on stderr with " [y/N] ", the answer one line of stdin — a pipe too, so a script can
 * answer (`echo y |`); --yes skips the question. Only y/yes (any case) says yes. End of input says
 * no, and why, naming what --yes would do ("add --yes to VERB without asking"). */
bool cli_confirm(const char *question, const char *verb);

double cli_now_us(void);
void cli_sort(double *v, size_t n);
double cli_pct(const double *sorted, size_t n, double p);

/* Job subcommands (cli/jobs_common.c, cmd_jobs.c, cmd_worker.c, bench_engine.c). */
#include "aspen_engine.h"
/* --db PATH and --create, in every command that opens the database (case 'D' and case 'C'). */
#define CLI_DB_OPTS {"db", required_argument, 0, 'D'}, {"create", no_argument, 0, 'C'}
/* The database: given, else $ASPEN_DB (either must exist unless cli_create), else the user's data
 * dir (created on first use). 0 or -1 (printed, naming the path). */
int cli_db_path(const char *given, char *out, size_t cap);
/* What a printed command (aspen show's "aspen core 3 …", the console's Debugging lines) must
 * add so that, pasted, it opens database db (the path or conninfo in use) and not the default:
 * "" for the default database, else " --db 'DB'", shell-quoted (an SQLite path made absolute, a
 * PostgreSQL conninfo as given but its password replaced by ***; " --db DB" when it does not fit
 * in cap). Returns out. */
const char *cli_db_arg(const char *db, char *out, size_t cap);
/* aspen_store_open, and the handle's messages then name their commands with this database's
 * --db (cli_db_arg), as the engine's do: every store the CLI opens goes through here. */
int cli_store_open(const char *path, const aspen_store_options *opts, aspen_store **out,
                   aspen_store_error *se);
/* Opens an engine on the database (workers = 0: a client). 0 or -1 (printed). */
int cli_open_engine(const char *db, int workers, aspen_engine **out);
/* The same for a command that only reads (jobs, show, logs): on a PostgreSQL database without
 * Aspen's schema it fails saying to add --create, instead of creating the schema. */
int cli_open_engine_reading(const char *db, aspen_engine **out);
/* aspen worker --lease MS / --recover MS for cli_open_engine (0: the engine's defaults, 5000 and
 * 5000): a shorter lease rescues a dead host's jobs sooner, at one heartbeat per lease / 5. */
extern int64_t cli_lease_ms;
extern int cli_recover_ms;
/* aspen worker --queues a,b for cli_open_engine: the named queues it serves (0: every queue). */
extern const char *cli_queues[16];
extern size_t cli_n_queues;
/* A job id (1 to INT64_MAX): 0, or -1 after one `error:` line saying how it is wrong (empty, not
 * a number, 0 or negative, too large). */
int cli_parse_id(const char *s, int64_t *id);
/* A submit's or a schedule's --queue (opt names the option, by what would make the queue: "this
 * submit", "this schedule"): 0 when it is "default" or exists on the database at db_path
 * (declared with aspen queue set, or holding jobs); else -1 after one `error:` line with the
 * store's "did you mean" and how to make it (--create-queue, aspen queue set). */
int cli_queue_known(const char *db_path, const char *queue, const char *opt, const char *by);
/* --create-queue where no job makes the queue yet (a schedule's): declares it with no settings
 * when it does not exist, so it is listed and the next --queue finds it. 0 or the store's code. */
int cli_queue_declare(const char *db_path, const char *queue, aspen_store_error *se);
/* The lookup under it: 0 (default, or exists), ASPEN_STORE_ENOTFOUND with "no queue named x (did
 * you mean y?)…" in se, or another store error. */
int cli_queue_lookup(const char *db_path, const char *queue, aspen_store_error *se);
/* A submit's (or a schedule's) --type: 0 when one of this engine's handlers runs it (the built-in
 * types), it runs in a micro-VM anyway (--isolation, the requires_isolation tag), or any_type
 * (--any-type: a program of the user's registers it through the C API); else -1 after one
 * `error:` line naming the types there are, a "did you mean" and --any-type. */
int cli_type_runnable(aspen_engine *eng, const aspen_engine_job_spec *spec, bool any_type);
/* The job runs in a micro-VM whatever its type: --isolation, or the tag requires_isolation. */
bool cli_spec_in_vm(const aspen_engine_job_spec *spec);
/* A guest (named guest_word in the message: "GUEST", "--guest") or --source with a built-in
 * in-process type (echo, checksum, sleep) and no isolation: the guest would never run. -1 after
 * saying what to drop (the engine refuses it too, in the C API's words), else 0. */
int cli_guest_with_in_process_type(const aspen_engine_job_spec *spec, const char *guest_word);
/* cli_parse_id, then on an error the usage line: 0 or 2 (the exit status of a usage error). */
int cli_id_arg(const char *s, int64_t *id, const char *usage);
/* A --filter's text into f (its strings in buf, cap bytes): 0, or 2 (a usage error's exit status)
 * after the store's message saying what is wrong with it. */
int cli_filter_arg(const char *text, aspen_store_filter *f, char *buf, size_t cap);
/* After a filter matched nothing: when its queue:NAME names no queue on the database at db_path,
 * one line on stderr with the store's "no queue named x (did you mean y?)"; else nothing. */
void cli_filter_queue_note(const char *db_path, const aspen_store_filter *f);
/* The positional arguments argv[first..argc): min to max of them (max < 0: any number), what
 * naming them ("a job ID"). 0, or 2 after one `error:` line saying what is missing or extra and
 * the usage line (the first line of usage). Every command's wording for a wrong argument count. */
int cli_args(int argc, char **argv, int first, int min, int max, const char *what,
             const char *usage);
/* "usage: ..." on stderr: the first line of usage ("usage: " added when missing). */
void cli_usage_line(const char *usage);
void cli_format_time(int64_t ms, char *out, size_t cap);

int cmd_console(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_demo(int argc, char **argv);
int cmd_submit(int argc, char **argv);
int cmd_jobs(int argc, char **argv);
int cmd_show(int argc, char **argv);
int cmd_logs(int argc, char **argv);
int cmd_cancel(int argc, char **argv);
int cmd_rerun(int argc, char **argv);
int cmd_retry(int argc, char **argv);
int cmd_pause(int argc, char **argv);
int cmd_resume(int argc, char **argv);
int cmd_engines(int argc, char **argv);
int cmd_cron(int argc, char **argv);
int cmd_metrics(int argc, char **argv); /* cmd_metrics.c */
int cmd_delete(int argc, char **argv);
int cmd_priority(int argc, char **argv); /* cmd_edit.c */
int cmd_run_now(int argc, char **argv);
int cmd_snooze(int argc, char **argv);
int cmd_purge(int argc, char **argv);
int cmd_retention(int argc, char **argv);
int cmd_worker(int argc, char **argv);
int cmd_queues(int argc, char **argv); /* cli/cmd_queues.c */
int cmd_queue(int argc, char **argv);
int cmd_core(int argc, char **argv);   /* cmd_guestkit.c */
int cmd_replay(int argc, char **argv); /* cmd_guestkit.c */
int bench_engine(int argc, char **argv);

#endif
