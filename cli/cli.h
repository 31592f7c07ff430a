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

int cmd_run(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_demo(int argc, char **argv);

#endif
