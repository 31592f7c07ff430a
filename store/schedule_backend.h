/* schedule_backend.h — the schedules' seam between the public API (schedule.c) and each backend
 * (sqlite/sqlite_schedule.c, postgres/pg_schedule.c), and what the backends share: the schema
 * columns read back, the plan of a tick (which occurrences to enqueue), the job a schedule's
 * template makes. Private to store/. */
#ifndef ASPEN_STORE_SCHEDULE_BACKEND_H
#define ASPEN_STORE_SCHEDULE_BACKEND_H

#include "store_backend.h"

/* Each entry has the contract of the public function of the same name; schedule.c has checked
 * the arguments and, for add and resume, computed next_run. */
struct store_schedule_ops {
    int (*add)(aspen_store *s, const aspen_store_schedule_spec *spec, const char *binary_sha256,
               const char *tags, int64_t now_ms, int64_t next_run, int64_t *id,
               aspen_store_error *err);
    int (*remove)(aspen_store *s, const char *name, aspen_store_error *err);
    /* next_run applies when resuming (0 otherwise) */
    int (*set_paused)(aspen_store *s, const char *name, bool paused, int64_t next_run,
                      aspen_store_error *err);
    /* *out: the job made, or (duplicate) the schedule's job that still waits or runs */
    int (*run_now)(aspen_store *s, const char *name, int64_t now_ms, aspen_store_submitted *out,
                   aspen_store_error *err);
    int (*get)(aspen_store *s, const char *name, aspen_store_schedule *out,
               aspen_store_error *err);
    int (*list)(aspen_store *s, aspen_store_schedule **out, size_t *n, aspen_store_error *err);
    int (*runs)(aspen_store *s, const char *name, size_t limit, aspen_store_schedule_run **out,
                size_t *n, aspen_store_error *err);
    int (*tick)(aspen_store *s, int64_t engine_id, int64_t lease_ms, int64_t now_ms,
                aspen_store_scheduler_report *report, aspen_store_error *err);
    int (*release)(aspen_store *s, int64_t engine_id, aspen_store_error *err);
    int (*holder)(aspen_store *s, int64_t *engine_id, int64_t *until_ms, aspen_store_error *err);
};

extern const struct store_schedule_ops store_sqlite_schedule_ops;
extern const struct store_schedule_ops store_pg_schedule_ops;

/* The columns every backend reads a schedule with (FROM schedules s LEFT JOIN jobs j ON j.id =
 * s.last_job), in the order store_schedule_from_texts takes them. */
#define STORE_SCHEDULE_COLUMNS                                                                   \
    "s.id, s.name, s.expr, s.tz, s.queue, s.missed, s.grace_ms, s.paused, s.type,"             \
    " s.binary_sha256, s.binary_name, s.payload, s.tags, s.source_dir, s.priority,"            \
    " s.max_attempts, s.timeout_ms, s.memory_bytes, s.isolation, s.created_at, s.next_run,"    \
    " s.last_run, s.last_enqueued_at, s.last_job, s.runs, s.missed_count, s.error, j.state"
#define STORE_SCHEDULE_NCOLUMNS 28

/* Fills out from one row's values as text (NULL = SQL NULL). ENOMEM when a copy fails. */
int store_schedule_from_texts(aspen_store_schedule *out, const char *const *v,
                              aspen_store_error *err);

/* Most occurrences one tick enqueues for one schedule; the rest wait for the next tick. */
#define STORE_SCHEDULE_BURST 64

/* What a tick does with one due schedule at now (both on the backend's timeline). */
struct store_schedule_plan {
    size_t n;
    int64_t occurrences[STORE_SCHEDULE_BURST]; /* keys to enqueue, ascending */
    bool missed;      /* occurrences older than the grace were found */
    int64_t next_run; /* the schedule's next run after this tick; 0 with error set: none */
    char error[512];  /* why no next run can be computed ("" when fine) */
};
void store_schedule_plan(const aspen_store_schedule *sc, int64_t now, struct store_schedule_plan *p);

/* The job an occurrence of sc enqueues: its template, tagged "cron:NAME". tags_buf receives the
 * tags text (malloc'd, caller frees). */
int store_schedule_job(const aspen_store_schedule *sc, aspen_store_job_spec *out, char **tags_buf,
                       aspen_store_error *err);

/* The next occurrence of expr/tz after after_ms; EINVAL with the reason otherwise. */
int store_schedule_next(const char *expr, const char *tz, int64_t after_ms, int64_t *next,
                        aspen_store_error *err);

/* ENOTFOUND for a schedule name, with "did you mean" among the names given. cmd (both): the
 * handle's store_cmd, after each command named. */
int store_schedule_notfound(const char *name, const char *const *names, size_t n, const char *cmd,
                            aspen_store_error *err);

/* ENOTFOUND for a schedule whose queue (require_queue) has no row inside the add's transaction:
 * removed since the caller looked (aspen cron add checks first, for its "did you mean"). The one
 * wording of both backends. */
int store_schedule_no_queue(const char *queue, const char *cmd, aspen_store_error *err);

#endif
