/* aspen_store_schedule.h — periodic jobs in the store: time zones, cron expressions and the
 * schedules table with its scheduler lease. Included by aspen_store.h (one public API for the
 * store); kept in a header of its own so the schedule part reads as one piece.
 *
 * - Time zones (aspen_store_tz_*): IANA zones read from the system's zoneinfo files (TZif, RFC
 *   8536) by the store itself, never through the C library's TZ/localtime machinery, so that a
 *   multithreaded engine computes local times without touching process-wide state (setenv("TZ")
 *   while other threads read the environment or call localtime is undefined behaviour).
 * - Cron expressions (aspen_store_cron_*): 5 fields (minute hour day-of-month month day-of-week)
 *   with lists, ranges, steps and month/day names; @hourly @daily @weekly @monthly @yearly; and
 *   @every DURATION (30s, 5m, 1h, 1h30m). Errors name the field and say why.
 * - Schedules (aspen_store_schedule_*): a name, an expression, a time zone, a missed-occurrence
 *   policy and a job template, stored in the database; the scheduler tick enqueues each
 *   occurrence exactly once however many engines run: one engine at a time holds the scheduler
 *   lease, and every enqueue inserts a unique (schedule, occurrence) key in the same transaction
 *   as the job (docs/SCHEDULES.md). */
#ifndef ASPEN_STORE_SCHEDULE_H
#define ASPEN_STORE_SCHEDULE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct aspen_store;
struct aspen_store_error;
struct aspen_store_job_spec;

/* ---- time zones -------------------------------------------------------------------------------- */

typedef struct aspen_store_tz aspen_store_tz;

/* Loads a zone by IANA name ("Europe/Berlin") from $TZDIR or /usr/share/zoneinfo; "UTC" (and
 * NULL or "") needs no file. EINVAL naming the zone and what to give instead when the name is not
 * a zone, the file is not a valid TZif file, or it counts leap seconds ("right/" zones). */
int aspen_store_tz_open(const char *name, aspen_store_tz **out, struct aspen_store_error *err);
void aspen_store_tz_close(aspen_store_tz *tz); /* NULL is fine */
const char *aspen_store_tz_name(const aspen_store_tz *tz);
/* The zone's offset from UTC (local = utc + offset) at utc_s, in seconds, and whether it is
 * daylight-saving time. */
int32_t aspen_store_tz_offset(const aspen_store_tz *tz, int64_t utc_s, bool *dst);
/* The UTC instant of the local wall-clock time local_s (seconds since 1970-01-01 00:00 counted on
 * the local clock). A time that happens twice (clocks going back) gives the first; a time that
 * never happens (clocks going forward) gives the instant the clocks jumped. */
int64_t aspen_store_tz_to_utc(const aspen_store_tz *tz, int64_t local_s);

/* ---- cron expressions -------------------------------------------------------------------------- */

#define ASPEN_STORE_CRON_MAX 256 /* longest expression accepted, in bytes */

typedef struct aspen_store_cron {
    uint64_t minutes;     /* bit m: minute m (0-59) */
    uint32_t hours;       /* bit h (0-23) */
    uint32_t mdays;       /* bit d (1-31) */
    uint32_t months;      /* bit m (1-12) */
    uint32_t wdays;       /* bit d (0 = Sunday .. 6) */
    bool mday_star, wday_star; /* the field began with '*': day matching is then "and", else "or" */
    int64_t every_ms;     /* @every: the interval (> 0); the fields are unused */
} aspen_store_cron;

/* Parses an expression. EINVAL with a message naming the field and why, e.g.
 * `cron expression "0 0 32 * *": day-of-month 32 is out of range 1-31`. */
int aspen_store_cron_parse(const char *expr, aspen_store_cron *out,
                           struct aspen_store_error *err);
/* The first occurrence strictly after after_ms (unix ms) in the zone (NULL = UTC). Fields are
 * matched against local wall-clock time: a matching time the clocks skip (spring forward) fires
 * at the jump, one they repeat (fall back) fires once, the first time. @every D fires at the
 * multiples of D since 1970-01-01 00:00 UTC whatever the zone, so every engine agrees. EINVAL
 * when nothing matches within 10 years. */
int aspen_store_cron_next(const aspen_store_cron *c, const aspen_store_tz *tz, int64_t after_ms,
                          int64_t *next_ms, struct aspen_store_error *err);

/* ---- schedules --------------------------------------------------------------------------------- */

typedef enum aspen_store_missed {
    ASPEN_STORE_MISSED_SKIP = 0, /* occurrences missed while no engine ran are dropped */
    ASPEN_STORE_MISSED_ONCE = 1, /* they are enqueued as one job, then the schedule goes on */
} aspen_store_missed;

/* An occurrence counts as missed once it is this late (no scheduler ran when it came); a later
 * one is enqueued as usual. Per schedule; this is the default. */
#define ASPEN_STORE_SCHEDULE_GRACE_MS 60000
#define ASPEN_STORE_SCHEDULE_NAME_MAX 64
/* Occurrences kept per schedule in schedule_runs (the newest); older keys are pruned. */
#define ASPEN_STORE_SCHEDULE_RUNS_KEPT 1000

typedef struct aspen_store_schedule_spec {
    const char *name;  /* 1-64 bytes of [A-Za-z0-9._-], starting with a letter or digit */
    const char *expr;  /* a cron expression (aspen_store_cron_parse) */
    const char *tz;    /* IANA zone; NULL → "UTC" */
    aspen_store_missed missed;
    int64_t grace_ms;  /* 0 → ASPEN_STORE_SCHEDULE_GRACE_MS */
    const char *queue; /* the named queue its jobs go to (aspen_store_queue_name_check); NULL →
                          the default queue */
    bool paused;
    bool replace;      /* a schedule of that name is updated (its runs kept), not refused */
    /* The named queue must exist already (ENOTFOUND otherwise): checked inside the transaction
     * that stores the schedule, which aspen_store_queue_remove's excludes, so a queue removed at
     * the same moment is either gone before the check or refused for this schedule after it
     * (aspen cron add without --create-queue). false: the first run makes the queue, as a
     * submit does. Ignored for the default queue. */
    bool require_queue;
    /* The job each occurrence enqueues: checked as a submit is; run_at_ms must be 0; a binary
     * given by bytes is stored once and referenced by hash (a later change of the guest file
     * needs --replace). source_dir jobs are built when they run, as submitted ones are. */
    const struct aspen_store_job_spec *job;
} aspen_store_schedule_spec;

typedef struct aspen_store_schedule {
    int64_t id;
    char *name, *expr, *tz, *queue; /* queue NULL = default */
    aspen_store_missed missed;
    int64_t grace_ms;
    bool paused;
    /* the template */
    char *type, *binary_sha256, *binary_name, *payload, *tags, *source_dir;
    int priority, max_attempts;
    int64_t timeout_ms, memory_bytes;
    bool isolation;
    int64_t created_at_ms;
    int64_t next_run_ms;        /* next occurrence (0: none, e.g. its zone can no longer load) */
    int64_t last_run_ms;        /* occurrence time of the last enqueue (a run-now: its time) */
    int64_t last_enqueued_at_ms;
    int64_t last_job_id;        /* 0 when never run */
    int last_job_state;         /* aspen_store_state of that job; -1 none or deleted */
    int64_t runs;               /* jobs enqueued in all */
    int64_t missed_count;       /* times occurrences were found missed (skipped or caught up) */
    char *error;                /* why the schedule cannot compute its next run, or NULL */
} aspen_store_schedule;

void aspen_store_schedule_clear(aspen_store_schedule *sc);
/* The next occurrence that will run, as every view shows it: 0 (none) while the schedule is
 * paused — its stored next_run_ms is skipped, not run, and resuming computes the next one from
 * then — else next_run_ms. One rule for aspen cron list, its --json and the console. */
int64_t aspen_store_schedule_next_due(const aspen_store_schedule *sc);
void aspen_store_schedules_free(aspen_store_schedule *list, size_t n);

/* Checks a name: 0 or EINVAL saying what a name may hold. */
int aspen_store_schedule_check_name(const char *name, struct aspen_store_error *err);

/* Adds a schedule (its next run computed from now_ms). EINVAL for a bad name, expression, zone,
 * template or a name already taken (unless replace). */
int aspen_store_schedule_add(struct aspen_store *s, const aspen_store_schedule_spec *spec,
                             int64_t now_ms, int64_t *id_out, struct aspen_store_error *err);
/* Removes a schedule and its occurrence keys (its jobs stay). ENOTFOUND ("did you mean"). */
int aspen_store_schedule_remove(struct aspen_store *s, const char *name,
                                struct aspen_store_error *err);
/* Pauses, or resumes with the next run computed from now_ms (occurrences while paused are not
 * run). ENOTFOUND. */
int aspen_store_schedule_set_paused(struct aspen_store *s, const char *name, bool paused,
                                    int64_t now_ms, struct aspen_store_error *err);
/* Enqueues one job from the template now, paused or not; its key is a manual run at now_ms.
 * While a job of the schedule still waits or runs (queued, scheduled, running) nothing is
 * enqueued: *job_id is that job, as a duplicate submit answers with the job that holds its key
 * (two presses of run-now make one job; docs/SCHEDULES.md). The scheduler's own occurrences are
 * not held back so: they come on time whether the last one finished or not. */
int aspen_store_schedule_run_now(struct aspen_store *s, const char *name, int64_t now_ms,
                                 int64_t *job_id, struct aspen_store_error *err);
struct aspen_store_submitted;
/* The same, saying which: out->duplicate set (out->id, state, created_at_ms the job that still
 * waits or runs) or not (the new job, queued). */
int aspen_store_schedule_run_now_ex(struct aspen_store *s, const char *name, int64_t now_ms,
                                    struct aspen_store_submitted *out,
                                    struct aspen_store_error *err);
/* "schedule S: its job N (running, enqueued 5 s ago) has not finished; not running another
 * (aspen cancel N first to run it again now)" */
void aspen_store_schedule_duplicate_message(const char *name,
                                            const struct aspen_store_submitted *dup,
                                            int64_t now_ms, char *out, size_t size);
int aspen_store_schedule_get(struct aspen_store *s, const char *name, aspen_store_schedule *out,
                             struct aspen_store_error *err);
/* Every schedule, by name. */
int aspen_store_schedules(struct aspen_store *s, aspen_store_schedule **out, size_t *n,
                          struct aspen_store_error *err);

typedef struct aspen_store_schedule_run {
    int64_t occurrence_ms; /* the occurrence (a manual run: when it was asked) */
    bool manual;           /* aspen cron run */
    int64_t job_id;
    int64_t engine_id;     /* the scheduler that enqueued it (0: a manual run) */
    int64_t enqueued_at_ms;
} aspen_store_schedule_run;

/* The newest `limit` (0 → all kept) occurrence keys of a schedule, oldest first. */
int aspen_store_schedule_runs(struct aspen_store *s, const char *name, size_t limit,
                              aspen_store_schedule_run **out, size_t *n,
                              struct aspen_store_error *err);
void aspen_store_schedule_runs_free(aspen_store_schedule_run *runs);

typedef struct aspen_store_scheduler_report {
    bool held;             /* this engine holds the scheduler lease (after the tick) */
    int64_t holder;        /* the engine that holds it (0: nobody) */
    int64_t enqueued;      /* jobs enqueued by this tick */
    int64_t missed;        /* schedules found with missed occurrences (skipped or caught up) */
    int64_t next_due_ms;   /* earliest next run of an active schedule (0: none) */
} aspen_store_scheduler_report;

/* One scheduler step, in one transaction: takes or renews the scheduler lease for engine_id
 * (which must hold a live engine lease) until now + lease_ms — taken over when the holder's lease
 * lapsed or its engine is gone — and, if held, enqueues every due occurrence of every active
 * schedule: on time (no later than the schedule's grace) each is enqueued; older ones follow the
 * missed policy. Every enqueue inserts the key (schedule, occurrence) with its job, so an
 * occurrence is enqueued once even if two engines both believed they held the lease. */
int aspen_store_scheduler_tick(struct aspen_store *s, int64_t engine_id, int64_t lease_ms,
                               int64_t now_ms, aspen_store_scheduler_report *report,
                               struct aspen_store_error *err);
/* Gives the scheduler lease up (clean stop), so another engine takes it at its next tick. */
int aspen_store_scheduler_release(struct aspen_store *s, int64_t engine_id,
                                  struct aspen_store_error *err);
/* Who holds the scheduler lease: engine id (0 none) and until when. */
int aspen_store_scheduler_holder(struct aspen_store *s, int64_t *engine_id, int64_t *until_ms,
                                 struct aspen_store_error *err);

#ifdef __cplusplus
}
#endif
#endif
