/* store_bench.c — throughput of the job store alone, the way the engine uses it: N jobs submitted in
 * bulk (batches of 1000), then claimed (reserved) in batches of 256, each batch completed in one
 * group commit (which also marks the jobs started; each with an attempt row with stats and one log
 * line), batch after batch. Prints one JSON line:
 *   {"jobs":N,"submit_per_s":…,"claim_per_s":…,"complete_per_s":…,"end_to_end_per_s":…}
 * Usage: store_bench [--jobs N] [--db PATH] [--claim N] [--group N] [--logs N]
 *   (default: 50000 jobs, a fresh database in /tmp, claims of 256, each claim completed in groups
 *   of up to 256, one log line per job; the engine's bench is closer to --claim 128 --group 64
 *   --logs 0). Run under callgrind (--toggle-collect=aspen_store_claim
 *   --toggle-collect=aspen_store_complete) for instructions per job.
 * Not a test: numbers depend on the machine. */
#include "aspen_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SUBMIT_BATCH 1000

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int die(const char *what, const aspen_store_error *e)
{
    fprintf(stderr, "store_bench: %s: %s\n", what, e->msg);
    return 1;
}

int main(int argc, char **argv)
{
    long jobs = 50000;
    long claim_batch = 256, group = 256, n_logs = 1;
    const char *db = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--jobs") == 0 && i + 1 < argc)
            jobs = strtol(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--db") == 0 && i + 1 < argc)
            db = argv[++i];
        else if (strcmp(argv[i], "--claim") == 0 && i + 1 < argc)
            claim_batch = strtol(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--group") == 0 && i + 1 < argc)
            group = strtol(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--logs") == 0 && i + 1 < argc)
            n_logs = strtol(argv[++i], NULL, 10);
        else {
            fprintf(stderr, "usage: store_bench [--jobs N] [--db PATH] [--claim N] [--group N] "
                            "[--logs 0|1]\n");
            return 2;
        }
    }
    if (jobs <= 0)
        jobs = 1;
    if (claim_batch <= 0)
        claim_batch = 1;
    if (group <= 0 || group > claim_batch)
        group = claim_batch;
    n_logs = n_logs > 0;
    char dir[] = "/tmp/aspen-store-bench-XXXXXX", path[128];
    if (!db) {
        if (!mkdtemp(dir)) {
            perror("store_bench: mkdtemp");
            return 1;
        }
        snprintf(path, sizeof path, "%s/bench.db", dir);
        db = path;
    }

    aspen_store *s = NULL;
    aspen_store_error e = {0};
    if (aspen_store_open(db, NULL, &s, &e))
        return die("open", &e);
    int64_t engine = 0;
    /* An hour's lease: under callgrind a run is ~50 times slower and never renews. */
    if (aspen_store_engine_register(s, getpid(), "bench", 3600000, aspen_store_now_ms(), &engine,
                                    &e))
        return die("register", &e);
    static const char guest[] = "\x7f" "ELF echo-worker stand-in";
    char sha[65];
    if (aspen_store_put_binary(s, guest, sizeof guest, "echo-worker", aspen_store_now_ms(), sha, &e))
        return die("put binary", &e);

    /* submit */
    aspen_store_job_spec *specs = calloc(SUBMIT_BATCH, sizeof *specs);
    int64_t *ids = calloc((size_t)jobs, sizeof *ids);
    if (!specs || !ids)
        return 1;
    for (int i = 0; i < SUBMIT_BATCH; i++)
        specs[i] = (aspen_store_job_spec){.type = "vm_execute",
                                          .binary_sha256 = sha,
                                          .binary_name = "echo-worker",
                                          .payload = "{\"message\":\"Hello\"}",
                                          .tags = "[\"bench\"]"};
    double t0 = now_s();
    for (long done = 0; done < jobs;) {
        size_t n = (size_t)(jobs - done < SUBMIT_BATCH ? jobs - done : SUBMIT_BATCH);
        if (aspen_store_submit_batch(s, specs, n, aspen_store_now_ms(), ids + done, &e))
            return die("submit", &e);
        done += (long)n;
    }
    double t1 = now_s();

    /* claim a batch, complete it, again: the way an engine's store thread alternates (a
     * reservation is only held until its job starts, so the queue never holds more than a
     * batch of them) */
    aspen_store_completion *c = calloc((size_t)claim_batch, sizeof *c);
    aspen_store_log_line *lines = calloc((size_t)claim_batch, sizeof *lines);
    int *status = calloc((size_t)claim_batch, sizeof *status);
    if (!c || !lines || !status)
        return 1;
    long claimed = 0;
    double t_claim = 0, t_complete = 0;
    while (claimed < jobs) {
        aspen_store_job *batch = NULL;
        size_t n = 0;
        double ta = now_s();
        if (aspen_store_claim(s, engine, (size_t)claim_batch, aspen_store_now_ms(), &batch, &n, NULL,
                              &e))
            return die("claim", &e);
        double tb = now_s();
        t_claim += tb - ta;
        if (n == 0)
            break;
        int64_t now = aspen_store_now_ms();
        for (size_t i = 0; i < n; i++) {
            lines[i] = (aspen_store_log_line){.time_ms = now, .line = "echo: Hello"};
            c[i] = (aspen_store_completion){
                .job_id = batch[i].id,
                .outcome = ASPEN_STORE_OUTCOME_SUCCESS,
                .output = "{\"echo\":\"Hello\"}",
                .output_size = 16,
                .logs = n_logs ? &lines[i] : NULL,
                .n_logs = (size_t)n_logs,
                .stats = {.started_at_ms = now, .wall_us = 40, .exits = 2, .host_calls = 1,
                          .pages_dirtied = 3, .bytes_in = 19, .bytes_out = 16},
            };
        }
        aspen_store_jobs_free(batch, n);
        ta = now_s();
        for (size_t g = 0; g < n; g += (size_t)group) {
            size_t k = n - g < (size_t)group ? n - g : (size_t)group;
            if (aspen_store_complete(s, engine, c + g, k, now, status + g, NULL, &e))
                return die("complete", &e);
        }
        t_complete += now_s() - ta;
        for (size_t i = 0; i < n; i++)
            if (status[i])
                return die("complete (item)", &e);
        claimed += (long)n;
    }
    double t3 = now_s();

    int64_t counts[ASPEN_STORE_STATE_COUNT];
    if (aspen_store_counts(s, counts, &e))
        return die("counts", &e);
    printf("{\"jobs\":%ld,\"submit_per_s\":%.0f,\"claim_per_s\":%.0f,\"complete_per_s\":%.0f,"
           "\"end_to_end_per_s\":%.0f,\"succeeded\":%lld}\n",
           jobs, (double)jobs / (t1 - t0), (double)claimed / t_claim,
           (double)claimed / t_complete, (double)claimed / (t3 - t0),
           (long long)counts[ASPEN_STORE_SUCCEEDED]);

    free(c);
    free(lines);
    free(status);
    free(specs);
    free(ids);
    aspen_store_close(s);
    if (db == path) {
        char cmd[200];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0)
            fprintf(stderr, "store_bench: could not remove %s\n", dir);
    }
    return counts[ASPEN_STORE_SUCCEEDED] == jobs ? 0 : 1;
}
