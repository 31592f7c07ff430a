/* bench/console_bench.c — `aspen-bench-console`: how fast the operations console answers with a big
 * store and a busy engine. Prints JSON. A benchmark, not a timed test.
 *
 *   aspen-bench-console [--jobs N] [--workers N] [--keys N] [--filters N] [--aspen PATH] [--db PATH]
 *                       [--seed-only] [--bottom ROWS [--watch S] [--sort COLUMN]]
 *
 * 1. Seeds N jobs (default 1,000,000) of the in-process "echo" type into a fresh database, queued.
 * 2. Starts the real `aspen console` on it in a pseudo-terminal (120x40) with ASPEN_TUI_STATS set,
 *    so its engine (--workers) starts working through the queue at full speed.
 * 3. While the engine runs, sends keys like a user: cursor moves (j/k, PgDn/PgUp: the table pages
 *    through the store), filter changes (state, type, none), and help toggles.
 * 4. Quits and reports: the console's own timings (key read → frame on the terminal for cursor moves;
 *    filter applied → rows of the new filter drawn; every frame's draw time) and, measured from
 *    outside, write(key) → the help screen's text arriving on the pty; plus the engine's jobs/s in
 *    the measuring window (from the store's counts).
 *
 * --bottom ROWS instead of 3: G (the last job), then ROWS times k (so the cursor sits ROWS rows
 * above the end, not at it), after `:sort COLUMN` if given, and then no key for --watch seconds
 * (default 20) while the engine finishes jobs: every refresh then finds the state counts changed
 * and re-reads the window around the cursor. The console's refresh_window_by_position and
 * refresh_window_by_key series time those reads (on its thread pool, from the read's start to its
 * rows), and the JSON says which of them ran.
 */
#include "aspen_engine.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int master = -1;
static char tail_buf[65536]; /* the last output read, for "has X arrived" checks */
static size_t tail_len;

/* Reads what the console wrote for up to ms; returns true once needle (if any) was seen in the
 * output read during this call. */
static bool pump(double ms, const char *needle)
{
    double end = now_ms() + ms;
    tail_len = 0;
    for (;;) {
        double left = end - now_ms();
        if (left <= 0)
            return false;
        struct pollfd p = {master, POLLIN, 0};
        int r = poll(&p, 1, (int)(left < 1 ? 1 : left));
        if (r <= 0)
            continue;
        char buf[16384];
        ssize_t n = read(master, buf, sizeof buf);
        if (n <= 0)
            return false;
        if (tail_len + (size_t)n >= sizeof tail_buf)
            tail_len = 0;
        memcpy(tail_buf + tail_len, buf, (size_t)n);
        tail_len += (size_t)n;
        tail_buf[tail_len] = '\0';
        if (needle && memmem(tail_buf, tail_len, needle, strlen(needle)))
            return true;
    }
}

static void send_keys(const char *s)
{
    ssize_t r = write(master, s, strlen(s));
    (void)r;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int64_t finished(aspen_engine *eng)
{
    int64_t c[ASPEN_STORE_STATE_COUNT];
    aspen_engine_error err;
    if (aspen_engine_counts(eng, c, &err) != 0)
        return 0;
    return c[ASPEN_STORE_SUCCEEDED] + c[ASPEN_STORE_FAILED] + c[ASPEN_STORE_CANCELLED];
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"jobs", required_argument, 0, 'n'},  {"workers", required_argument, 0, 'w'},
        {"keys", required_argument, 0, 'k'},  {"filters", required_argument, 0, 'f'},
        {"aspen", required_argument, 0, 'a'}, {"db", required_argument, 0, 'd'},
        {"json", no_argument, 0, 'j'},        {"help", no_argument, 0, 'h'},
        {"seed-only", no_argument, 0, 's'}, {"bottom", required_argument, 0, 'b'},
        {"watch", required_argument, 0, 'W'}, {"sort", required_argument, 0, 'S'},
        {0, 0, 0, 0},
    };
    long jobs = 1000000, keys = 300, filters = 40, bottom = -1, watch_s = 20;
    const char *sort_col = NULL;
    int workers = 4, c;
    bool seed_only = false;
    char aspen[PATH_MAX] = "", dbdir[] = "/tmp/aspen-bench-console.XXXXXX", db[PATH_MAX] = "";
    while ((c = getopt_long(argc, argv, "n:w:k:f:a:d:jhsb:W:S:", opts, NULL)) != -1) {
        switch (c) {
        case 'n': jobs = atol(optarg); break;
        case 'w': workers = atoi(optarg); break;
        case 'k': keys = atol(optarg); break;
        case 'f': filters = atol(optarg); break;
        case 'a': snprintf(aspen, sizeof aspen, "%s", optarg); break;
        case 'd': snprintf(db, sizeof db, "%s", optarg); break;
        case 'j': break; /* JSON is the only output */
        case 's': seed_only = true; break;
        case 'b': bottom = atol(optarg); break;
        case 'W': watch_s = atol(optarg); break;
        case 'S': sort_col = optarg; break;
        default:
            fprintf(c == 'h' ? stdout : stderr,
                    "usage: aspen-bench-console [--jobs N] [--workers N] [--keys N] [--filters N] "
                    "[--aspen PATH] [--db PATH] [--seed-only] [--bottom ROWS [--watch S] "
                    "[--sort COLUMN]]\n");
            return c == 'h' ? 0 : 2;
        }
    }
    if (!aspen[0]) { /* next to this program */
        char self[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
        if (n > 0) {
            self[n] = '\0';
            char *slash = strrchr(self, '/');
            if (slash)
                *slash = '\0';
            snprintf(aspen, sizeof aspen, "%s/aspen", self);
        }
    }
    bool own_db = !db[0];
    if (own_db) {
        if (!mkdtemp(dbdir)) {
            perror("mkdtemp");
            return 1;
        }
        snprintf(db, sizeof db, "%s/bench.db", dbdir);
    }

    /* 1. seed */
    aspen_engine_config cfg;
    aspen_engine_config_default(&cfg);
    cfg.db_path = db;
    cfg.workers = 0;
    aspen_engine *eng;
    aspen_engine_error err = {0};
    if (aspen_engine_open(&cfg, &eng, &err) != 0) {
        fprintf(stderr, "error: %s\n", err.msg);
        return 1;
    }
    double t0 = now_ms();
    enum { BATCH = 10000 };
    aspen_engine_job_spec *specs = calloc(BATCH, sizeof *specs);
    static const char *payloads[] = {"{\"user\": \"alice\", \"n\": 1}", "{\"user\": \"bob\", \"n\": 2}",
                                     "{\"user\": \"carol\", \"n\": 3}"};
    for (long done = 0; done < jobs;) {
        size_t n = (size_t)(jobs - done < BATCH ? jobs - done : BATCH);
        for (size_t i = 0; i < n; i++) {
            specs[i] = (aspen_engine_job_spec){0};
            specs[i].type = "echo";
            specs[i].payload = payloads[(done + (long)i) % 3];
        }
        if (aspen_engine_submit_batch(eng, specs, n, NULL, &err) != 0) {
            fprintf(stderr, "error: seeding: %s\n", err.msg);
            return 1;
        }
        done += (long)n;
    }
    free(specs);
    double seed_s = (now_ms() - t0) / 1e3;
    if (seed_only) { /* for comparisons with a headless engine: aspen worker --db DB */
        aspen_engine_close(eng);
        printf("{\"benchmark\": \"console-seed\", \"jobs\": %ld, \"seed_s\": %.2f, \"db\": \"%s\"}\n",
               jobs, seed_s, db);
        return 0;
    }

    /* 2. the console in a pty */
    char stats[PATH_MAX];
    snprintf(stats, sizeof stats, "%s.stats.json", db);
    unlink(stats);
    struct winsize ws = {.ws_row = 40, .ws_col = 120};
    pid_t pid = forkpty(&master, NULL, NULL, &ws);
    if (pid < 0) {
        perror("forkpty");
        return 1;
    }
    if (pid == 0) {
        char w[16];
        snprintf(w, sizeof w, "%d", workers);
        setenv("TERM", "xterm-256color", 1);
        setenv("LANG", "C.UTF-8", 1);
        setenv("ASPEN_TUI_STATS", stats, 1);
        execl(aspen, aspen, "console", "--db", db, "--workers", w, "--grace", "1000", (char *)NULL);
        _exit(127);
    }
    if (!pump(15000, "Aspen console")) {
        fprintf(stderr, "error: the console did not start (%s)\n", aspen);
        kill(pid, SIGTERM);
        return 1;
    }
    pump(1500, NULL); /* first rows, engine under way */

    /* 3. measure while the engine runs */
    int64_t f0 = finished(eng);
    double m0 = now_ms();
    if (bottom >= 0) {
        char cmd[128];
        if (sort_col) {
            snprintf(cmd, sizeof cmd, ":sort %s\r", sort_col);
            send_keys(cmd);
            pump(1000, NULL);
        }
        send_keys("G");
        pump(1500, NULL);
        for (long i = 0; i < bottom; i++) {
            send_keys("k");
            pump(20, NULL);
        }
        m0 = now_ms(); /* the refreshes from here on are the ones around the cursor */
        f0 = finished(eng);
        pump((double)watch_s * 1000, NULL);
        keys = filters = 0;
    }
    for (long i = 0; i < keys; i++) {
        const char *k = (i % 50) < 20 ? "j" : (i % 50) < 25 ? "\033[6~" : (i % 50) < 45 ? "k" : "\033[5~";
        send_keys(k);
        pump(20, NULL);
    }
    static const char *filter_keys[] = {"/state:succeeded\r", "/state:queued\r", "/type:echo\r",
                                        "/payload.user:bob\r", "/\025\r"};
    for (long i = 0; i < filters; i++) {
        send_keys(filter_keys[i % 5]);
        pump(150, NULL);
    }
    double help_lat[64];
    size_t n_help = 0;
    for (int i = 0; i < (bottom >= 0 ? 0 : 30); i++) {
        double k0 = now_ms();
        send_keys("?");
        if (pump(2000, "- keys"))
            help_lat[n_help++] = now_ms() - k0;
        send_keys("\033");
        pump(100, NULL);
    }
    double m1 = now_ms();
    int64_t f1 = finished(eng);

    /* 4. quit and collect */
    send_keys("q");
    for (int i = 0; i < 200; i++) {
        pump(50, NULL);
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid)
            break;
    }
    aspen_engine_close(eng);
    qsort(help_lat, n_help, sizeof help_lat[0], cmp_d);
    char sbuf[4096] = "";
    FILE *sf = fopen(stats, "r");
    if (sf) {
        size_t n = fread(sbuf, 1, sizeof sbuf - 1, sf);
        sbuf[n] = '\0';
        fclose(sf);
    }
    /* strip the outer braces of the console's JSON to nest it */
    char *open = strchr(sbuf, '{'), *close = strrchr(sbuf, '}');
    if (open && close && close > open) {
        *close = '\0';
        open++;
    } else {
        open = (char *)"";
    }
    printf("{\n  \"benchmark\": \"%s\",\n  \"rows_above_end\": %ld,\n  \"sort\": \"%s\",\n"
           "  \"jobs_in_store\": %ld,\n  \"seed_s\": %.2f,\n"
           "  \"workers\": %d,\n  \"engine_jobs_per_s_while_measuring\": %.0f,\n"
           "  \"help_key_to_pty_ms\": {\"n\": %zu, \"median_ms\": %.3f, \"max_ms\": %.3f},\n"
           "  \"console\": {%s  }\n}\n",
           bottom >= 0 ? "console-refresh-near-bottom" : "console", bottom,
           sort_col ? sort_col : "id", jobs, seed_s, workers, (double)(f1 - f0) / ((m1 - m0) / 1e3), n_help,
           n_help ? help_lat[n_help / 2] : 0.0, n_help ? help_lat[n_help - 1] : 0.0, open);
    if (own_db) {
        char cmd[PATH_MAX + 16];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dbdir); /* the db, its WAL, stats, build cache */
        if (system(cmd) != 0)
            fprintf(stderr, "note: could not remove %s\n", dbdir);
    }
    return 0;
}
