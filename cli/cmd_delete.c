/* cli/cmd_delete.c — removing jobs from the database, through a client engine (no workers):
 *   aspen delete ID... | --filter F  [--yes]     finished jobs, with their attempts and logs
 *   aspen purge --older-than DURATION [--yes]    every finished job that finished that long ago
 * Deleting cannot be undone, so both ask first (a line read from stdin, "y" or "yes") unless
 * --yes is given; queued, scheduled and running jobs are never deleted (cancel them first).
 * Exit status: 0 done, 1 refused or failed (one `error: …` line), 2 usage.
 */
#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FINAL_STATES                                                                               \
    ((1u << ASPEN_STORE_SUCCEEDED) | (1u << ASPEN_STORE_FAILED) | (1u << ASPEN_STORE_CANCELLED))

/* The question on stderr, the answer one line of stdin (a pipe too, so scripts can answer): only
 * y/yes says yes; end of input says no. */
static bool confirm(const char *question)
{
    fprintf(stderr, "%s [y/N] ", question);
    fflush(stderr);
    char line[64];
    if (!fgets(line, sizeof line, stdin))
        return false;
    size_t n = strcspn(line, "\r\n");
    line[n] = '\0';
    for (char *p = line; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    return strcmp(line, "y") == 0 || strcmp(line, "yes") == 0;
}

/* The ids of every job f matches, oldest first, read a page at a time (never the whole rows at
 * once). malloc'd in *ids; 0 or -1 (printed). */
static int matching_ids(aspen_engine *eng, const aspen_store_filter *f0, int64_t **ids, size_t *n)
{
    enum { PAGE = 1000 };
    aspen_store_filter f = *f0;
    f.order = ASPEN_STORE_ORDER_OLDEST;
    f.limit = PAGE;
    f.offset = 0;
    size_t cap = 0;
    *ids = NULL;
    *n = 0;
    for (;;) {
        aspen_store_job *jobs = NULL;
        size_t got = 0;
        aspen_engine_error err = {0};
        if (aspen_engine_list(eng, &f, &jobs, &got, &err) != 0) {
            cli_error("%s", err.msg);
            free(*ids);
            *ids = NULL;
            return -1;
        }
        if (*n + got > cap) {
            size_t ncap = cap ? cap * 2 : PAGE;
            while (ncap < *n + got)
                ncap *= 2;
            int64_t *p = realloc(*ids, ncap * sizeof *p);
            if (!p) {
                aspen_store_jobs_free(jobs, got);
                cli_error("out of memory listing the jobs to delete");
                free(*ids);
                *ids = NULL;
                return -1;
            }
            *ids = p;
            cap = ncap;
        }
        for (size_t i = 0; i < got; i++)
            (*ids)[(*n)++] = jobs[i].id;
        aspen_store_jobs_free(jobs, got);
        if (got < PAGE)
            return 0;
        f.offset += PAGE;
    }
}

static void delete_usage(FILE *f)
{
    fprintf(f, "usage: aspen delete ID... | --filter F  [--yes] [--db PATH]\n"
               "  ID...       these jobs (finished ones only: cancel a queued or running job first)\n"
               "  --filter F  every finished job the filter matches (the language of aspen jobs\n"
               "              --filter); queued, scheduled and running matches are kept and counted\n"
               "  --yes       do not ask first (deleting cannot be undone)\n"
               "A job's attempts and logs go with it; prints how many were deleted.\n");
}

int cmd_delete(int argc, char **argv)
{
    static const struct option opts[] = {
        {"filter", required_argument, 0, 'f'}, {"yes", no_argument, 0, 'y'},
        {"help", no_argument, 0, 'h'},         CLI_DB_OPTS,
        {0, 0, 0, 0},
    };
    const char *db = NULL, *filter = NULL;
    bool yes = false;
    int c;
    optind = 1;
    while ((c = cli_getopt(argc, argv, "f:yhD:", opts, argv[0])) != -1) {
        switch (c) {
        case 'f': filter = optarg; break;
        case 'y': yes = true; break;
        case 'D': db = optarg; break;
        case 'C': cli_create = true; break;
        case 'h':
        default: delete_usage(c == 'h' ? stdout : stderr); return c == 'h' ? 0 : 2;
        }
    }
    size_t n_args = (size_t)(argc - optind);
    if ((filter != NULL) == (n_args > 0)) {
        cli_error(filter ? "give job ids or --filter, not both"
                         : "which jobs? give their ids or --filter F");
        delete_usage(stderr);
        return 2;
    }
    int64_t *ids = NULL;
    size_t n = 0;
    aspen_store_filter f;
    char buf[4096];
    if (filter) {
        aspen_store_error se = {0};
        if (aspen_store_filter_parse(filter, &f, buf, sizeof buf, &se) != 0) {
            cli_error("%s", se.msg);
            return 2;
        }
    } else {
        ids = calloc(n_args, sizeof *ids);
        if (!ids) {
            cli_error("out of memory");
            return 1;
        }
        for (size_t i = 0; i < n_args; i++)
            if (cli_parse_id(argv[optind + (int)i], &ids[n++]) != 0) {
                free(ids);
                return 2;
            }
    }
    aspen_engine *eng;
    if (cli_open_engine(db, 0, &eng)) {
        free(ids);
        return 1;
    }
    int64_t kept = 0; /* --filter: matches that are not finished */
    if (filter) {
        aspen_store_filter unfinished = f;
        unsigned want = f.states ? f.states : ~0u;
        f.states = want & FINAL_STATES;
        unfinished.states = want & ~FINAL_STATES & ((1u << ASPEN_STORE_STATE_COUNT) - 1);
        if (unfinished.states) {
            /* what is kept, counted exactly so the message can say it */
            int64_t *skip = NULL;
            size_t n_skip = 0;
            if (matching_ids(eng, &unfinished, &skip, &n_skip) != 0) {
                aspen_engine_close(eng);
                return 1;
            }
            kept = (int64_t)n_skip;
            free(skip);
        }
        if (f.states && matching_ids(eng, &f, &ids, &n) != 0) {
            aspen_engine_close(eng);
            return 1;
        }
        if (n == 0) {
            aspen_engine_close(eng);
            printf("no finished job matches '%s'%s\n", filter,
                   kept ? " (the matching jobs are queued, scheduled or running: cancel them "
                          "first)"
                        : "");
            return 0;
        }
    }
    if (!yes) {
        char q[700];
        if (filter)
            snprintf(q, sizeof q, "Delete %zu finished job%s matching '%.400s'%s?", n,
                     n == 1 ? "" : "s", filter, kept ? " (unfinished ones are kept)" : "");
        else if (n == 1)
            snprintf(q, sizeof q, "Delete job %lld?", (long long)ids[0]);
        else
            snprintf(q, sizeof q, "Delete %zu jobs?", n);
        if (!confirm(q)) {
            aspen_engine_close(eng);
            free(ids);
            fprintf(stderr, "nothing deleted\n");
            return 1;
        }
    }
    size_t deleted = 0, refused = 0;
    for (size_t i = 0; i < n; i++) {
        aspen_engine_error err = {0};
        if (aspen_engine_delete(eng, ids[i], &err) == 0) {
            deleted++;
        } else if (filter && err.code == ASPEN_ENGINE_ENOTFOUND) {
            continue; /* gone meanwhile (another process deleted it): nothing to do */
        } else {
            refused++;
            cli_error("%s", err.msg);
        }
    }
    aspen_engine_close(eng);
    free(ids);
    printf("deleted %zu job%s", deleted, deleted == 1 ? "" : "s");
    if (refused)
        printf(", %zu refused", refused);
    if (kept)
        printf(", %lld matching job%s not finished (kept)", (long long)kept, kept == 1 ? "" : "s");
    printf("\n");
    return refused ? 1 : 0;
}

/* ---- purge -------------------------------------------------------------------------------------- */

/* "30d", "12h", "15m", "90s", "2w", "500ms" → milliseconds; a bare number is seconds. 0 or -1. */
static int parse_duration_ms(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || errno || v < 0)
        return -1;
    static const struct {
        const char *unit;
        long long ms;
    } units[] = {{"", 1000},       {"ms", 1},          {"s", 1000},         {"m", 60000},
                 {"min", 60000},   {"h", 3600000},     {"d", 86400000},     {"w", 604800000}};
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (strcmp(end, units[i].unit) == 0) {
            if (v > INT64_MAX / units[i].ms)
                return -1;
            *out = v * units[i].ms;
            return 0;
        }
    return -1;
}

static void purge_usage(FILE *f)
{
    fprintf(f,
            "usage: aspen purge --older-than DURATION [--yes] [--db PATH]\n"
            "  --older-than D  delete every finished job (succeeded, failed, cancelled) that\n"
            "                  finished more than D ago: 90s, 15m, 12h, 30d, 2w (a bare number\n"
            "                  is seconds), with its attempts and logs, in one transaction\n"
            "  --yes           do not ask first\n"
            "Queued, scheduled and running jobs are never purged. The store purges every final\n"
            "state at once; for one state use aspen delete --filter 'state:failed'.\n");
}

int cmd_purge(int argc, char **argv)
{
    static const struct option opts[] = {
        {"older-than", required_argument, 0, 'o'}, {"yes", no_argument, 0, 'y'},
        {"state", required_argument, 0, 's'},      {"help", no_argument, 0, 'h'},
        CLI_DB_OPTS,                               {0, 0, 0, 0},
    };
    const char *db = NULL, *older = NULL;
    bool yes = false;
    int c;
    optind = 1;
    while ((c = cli_getopt(argc, argv, "o:ys:hD:", opts, argv[0])) != -1) {
        switch (c) {
        case 'o': older = optarg; break;
        case 'y': yes = true; break;
        case 's':
            /* the store's purge takes no state: say so rather than purge more than asked */
            cli_error("purge covers every finished state at once (the store has no per-state "
                      "purge); for one state: aspen delete --filter 'state:%s'",
                      optarg);
            return 2;
        case 'D': db = optarg; break;
        case 'C': cli_create = true; break;
        case 'h':
        default: purge_usage(c == 'h' ? stdout : stderr); return c == 'h' ? 0 : 2;
        }
    }
    int64_t age_ms = 0;
    if (!older || optind != argc) {
        cli_error(older ? "purge takes no other arguments" : "purge needs --older-than DURATION");
        purge_usage(stderr);
        return 2;
    }
    if (parse_duration_ms(older, &age_ms) != 0) {
        cli_error("--older-than wants a duration such as 90s, 15m, 12h, 30d or 2w, not '%s'",
                  older);
        return 2;
    }
    if (!yes) {
        char q[200];
        snprintf(q, sizeof q, "Delete every finished job that finished more than %s ago?", older);
        if (!confirm(q)) {
            fprintf(stderr, "nothing deleted\n");
            return 1;
        }
    }
    aspen_engine *eng;
    if (cli_open_engine(db, 0, &eng))
        return 1;
    int64_t deleted = 0;
    aspen_engine_error err = {0};
    int rc = aspen_engine_purge(eng, aspen_store_now_ms() - age_ms, &deleted, &err);
    aspen_engine_close(eng);
    if (rc) {
        cli_error("%s", err.msg);
        return 1;
    }
    printf("purged %lld finished job%s older than %s\n", (long long)deleted,
           deleted == 1 ? "" : "s", older);
    return 0;
}
