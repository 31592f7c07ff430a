/* cli/cli.h — shared helpers of the `aspen` program's subcommands (the cli/cmd_*.c files). */
#ifndef ASPEN_CLI_H
#define ASPEN_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Resolve GUEST (a path, or a name in target/guest-binaries/) to a file path. Returns 0 and fills
 * out, or -1 with a message naming the places searched. */
int cli_resolve_guest(const char *guest, char *out, size_t cap, char *msg, size_t msgcap);
/* The guest-binaries directory in use (first that exists), or NULL. */
const char *cli_guest_dir(void);

/* Read a whole file (max bytes); returns malloc'd buffer or NULL with msg. */
uint8_t *cli_read_file(const char *path, size_t max, size_t *len, char *msg, size_t msgcap);

/* Validate JSON text with jansson: 0, or -1 with "line L column C: reason" in msg. */
int cli_check_json(const char *text, size_t len, char *msg, size_t msgcap);

double cli_now_us(void);
void cli_sort(double *v, size_t n);
double cli_pct(const double *sorted, size_t n, double p);

/* Job subcommands (cli/jobs_common.c, cmd_jobs.c, cmd_worker.c, bench_engine.c). */
#include "aspen_engine.h"
/* The database: given, else $ASPEN_DB, else the user's data dir (created). 0 or -1 (printed). */
int cli_db_path(const char *given, char *out, size_t cap);
/* Opens an engine on the database (workers = 0: a client). 0 or -1 (printed). */
int cli_open_engine(const char *db, int workers, aspen_engine **out);
int cli_parse_id(const char *s, int64_t *id);
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
int cmd_worker(int argc, char **argv);
int bench_engine(int argc, char **argv);

#endif
