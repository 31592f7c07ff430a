/* engine/include/aspen_engine_schedule.h — periodic jobs through the engine (included by aspen_engine.h):
 * defining a schedule from an engine job spec (the guest resolved and stored as a submit does),
 * and the operator actions on schedules. The engine's scheduler itself runs inside every engine
 * with workers (engine/schedule.c): no call is needed to start it. */
#ifndef ASPEN_ENGINE_SCHEDULE_H
#define ASPEN_ENGINE_SCHEDULE_H

#ifdef __cplusplus
extern "C" {
#endif

typedef struct aspen_engine_schedule_def {
    const char *name;  /* 1-64 of [A-Za-z0-9._-] */
    const char *expr;  /* cron: 5 fields, @hourly/@daily/@weekly/@monthly/@yearly, @every 30s */
    const char *tz;    /* IANA zone; NULL → UTC */
    const char *queue; /* kept as text; NULL → default */
    aspen_store_missed missed;
    int64_t grace_ms;  /* 0 → 60 s */
    bool paused;
    bool replace;      /* update a schedule of that name */
    bool require_queue; /* the queue must exist (aspen_store_schedule_spec.require_queue) */
} aspen_engine_schedule_def;

/* Stores the schedule; the job is checked as a submit (run_at must be 0). */
int aspen_engine_schedule_add(aspen_engine *eng, const aspen_engine_schedule_def *def,
                              const aspen_engine_job_spec *job, int64_t *id_out,
                              aspen_engine_error *err);
int aspen_engine_schedule_remove(aspen_engine *eng, const char *name, aspen_engine_error *err);
int aspen_engine_schedule_set_paused(aspen_engine *eng, const char *name, bool paused,
                                     aspen_engine_error *err);
/* Enqueues one job from the schedule's template now (paused or not); while a job of the
 * schedule still waits or runs, *job_id is that job and nothing is enqueued
 * (aspen_store_schedule_run_now). */
int aspen_engine_schedule_run_now(aspen_engine *eng, const char *name, int64_t *job_id,
                                  aspen_engine_error *err);
/* The same, saying which (out->duplicate: the schedule's unfinished job; the message from
 * aspen_store_schedule_duplicate_message). */
int aspen_engine_schedule_run_now_ex(aspen_engine *eng, const char *name,
                                     aspen_store_submitted *out, aspen_engine_error *err);
int aspen_engine_schedules(aspen_engine *eng, aspen_store_schedule **out, size_t *n,
                           aspen_engine_error *err);
/* Which engine holds the scheduler lease (0: none) and until when. */
int aspen_engine_scheduler_holder(aspen_engine *eng, int64_t *engine_id, int64_t *until_ms,
                                  aspen_engine_error *err);

#ifdef __cplusplus
}
#endif
#endif
