/* engine/schedule.c — periodic jobs in the engine: the scheduler thread every engine with workers
 * runs, and the schedule calls of aspen_engine_schedule.h.
 *
 * The scheduler has its own store handle and ticks (aspen_store_scheduler_tick) about four times
 * a second, and at the moment the next schedule falls due: each tick takes or renews the
 * scheduler lease, and only the holder enqueues. So with N engines on a database one enqueues
 * and the others stand by; when the holder dies its lease (the engine's lease length) lapses and
 * the next tick of another engine takes over, enqueueing what came meanwhile (within each
 * schedule's grace) or following the missed policy. A clean stop gives the lease back at once.
 * The store makes every occurrence's enqueue unique, so even overlapping holders cannot enqueue
 * one twice. */
#include "engine_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Longest sleep between ticks: how soon a standby engine notices a dead holder's lapsed lease or
 * a new schedule added by another process. */
#define SCHED_TICK_MS 250

struct eng_scheduler {
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
    aspen_store *store;
};

static void say(aspen_engine *eng, const char *fmt, const char *detail)
{
    if (!eng_wants(eng, ASPEN_ENGINE_EV_ENGINE))
        return;
    char msg[800];
    snprintf(msg, sizeof msg, fmt, detail);
    aspen_engine_event ev = {.type = ASPEN_ENGINE_EV_ENGINE, .worker = -1, .outcome = -1,
                             .message = msg};
    eng_emit(eng, &ev);
}

static void *scheduler_main(void *arg)
{
    aspen_engine *eng = arg;
    struct eng_scheduler *sc = eng->sched;
    pthread_setname_np(pthread_self(), "aspen-sched");
    bool complained = false;
    int64_t backoff = 0;
    pthread_mutex_lock(&sc->mu);
    while (!sc->stop) {
        pthread_mutex_unlock(&sc->mu);
        int64_t now = aspen_store_now_ms(), wait = SCHED_TICK_MS;
        int64_t id = atomic_load(&eng->engine_id);
        aspen_store_scheduler_report rep = {0};
        aspen_store_error se = {0};
        if (id && !atomic_load(&eng->fatal)) {
            if (aspen_store_scheduler_tick(sc->store, id, eng->cfg.lease_ms, now, &rep, &se) != 0) {
                bool lost = eng_outage(eng, "the scheduler", &se, backoff ? backoff * 2 : 100);
                if (!complained && !lost)
                    say(eng, "the scheduler could not enqueue periodic jobs (will retry): %s",
                        se.msg);
                complained = true;
                backoff = backoff ? (backoff * 2 > 5000 ? 5000 : backoff * 2) : 100;
                wait = backoff;
            } else {
                complained = false;
                backoff = 0;
                if (rep.enqueued)
                    eng_wake(eng); /* claim them now rather than at the next data-version look */
                int64_t after = aspen_store_now_ms();
                if (rep.held && rep.next_due_ms > after && rep.next_due_ms - after < wait)
                    wait = rep.next_due_ms - after;
                if (rep.held && rep.next_due_ms && rep.next_due_ms <= after)
                    wait = 1; /* more due than one tick enqueues */
            }
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += wait / 1000;
        ts.tv_nsec += (wait % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L)
            ts.tv_sec++, ts.tv_nsec -= 1000000000L;
        pthread_mutex_lock(&sc->mu);
        if (!sc->stop)
            pthread_cond_timedwait(&sc->cv, &sc->mu, &ts);
    }
    pthread_mutex_unlock(&sc->mu);
    return NULL;
}

void eng_scheduler_start(aspen_engine *eng)
{
    struct eng_scheduler *sc = calloc(1, sizeof *sc);
    if (!sc)
        return;
    aspen_store_error se = {0};
    if (aspen_store_open(eng->db_path, &eng->store_opts, &sc->store, &se) != 0) {
        say(eng, "the scheduler of periodic jobs did not start: %s", se.msg);
        free(sc);
        return;
    }
    pthread_mutex_init(&sc->mu, NULL);
    pthread_cond_init(&sc->cv, NULL);
    eng->sched = sc;
    if (pthread_create(&sc->th, NULL, scheduler_main, eng) != 0) {
        say(eng, "the scheduler of periodic jobs did not start: %s", "no thread");
        aspen_store_close(sc->store);
        pthread_mutex_destroy(&sc->mu);
        pthread_cond_destroy(&sc->cv);
        free(sc);
        eng->sched = NULL;
    }
}

void eng_scheduler_stop(aspen_engine *eng)
{
    struct eng_scheduler *sc = eng->sched;
    if (!sc)
        return;
    pthread_mutex_lock(&sc->mu);
    sc->stop = true;
    pthread_cond_broadcast(&sc->cv);
    pthread_mutex_unlock(&sc->mu);
    pthread_join(sc->th, NULL);
    int64_t id = atomic_load(&eng->engine_id);
    if (id)
        aspen_store_scheduler_release(sc->store, id, NULL);
    aspen_store_close(sc->store);
    pthread_mutex_destroy(&sc->mu);
    pthread_cond_destroy(&sc->cv);
    free(sc);
    eng->sched = NULL;
}

/* ---- the schedule calls ------------------------------------------------------------------------ */

struct add_args {
    const aspen_engine_schedule_def *def;
    int64_t id;
    aspen_engine_error *err;
};

static int add_with(aspen_engine *eng, const aspen_store_job_spec *job, void *arg)
{
    struct add_args *a = arg;
    aspen_store_schedule_spec sp = {.name = a->def->name, .expr = a->def->expr,
                                    .tz = a->def->tz, .queue = a->def->queue,
                                    .missed = a->def->missed, .grace_ms = a->def->grace_ms,
                                    .paused = a->def->paused, .replace = a->def->replace,
                                    .require_queue = a->def->require_queue, .job = job};
    aspen_store_error se = {0};
    if (aspen_store_schedule_add(eng->api_store, &sp, aspen_store_now_ms(), &a->id, &se) != 0)
        return eng_store_err(a->err, &se, NULL);
    return 0;
}

int aspen_engine_schedule_add(aspen_engine *eng, const aspen_engine_schedule_def *def,
                              const aspen_engine_job_spec *job, int64_t *id_out,
                              aspen_engine_error *err)
{
    if (!eng || !def || !job)
        return eng_err(err, ASPEN_ENGINE_EINVAL, "aspen_engine_schedule_add: NULL argument");
    if (job->run_at_ms)
        return eng_err(err, ASPEN_ENGINE_EINVAL,
                       "a schedule's job has no run time of its own: the schedule gives it");
    /* The expression and zone first: their errors matter more than the guest's. */
    aspen_store_cron c;
    aspen_store_error se = {0};
    aspen_store_tz *tz = NULL;
    if (aspen_store_cron_parse(def->expr, &c, &se) != 0 ||
        aspen_store_tz_open(def->tz, &tz, &se) != 0)
        return eng_store_err(err, &se, NULL);
    aspen_store_tz_close(tz);
    if (aspen_store_schedule_check_name(def->name, &se) != 0)
        return eng_store_err(err, &se, NULL);
    /* The template's queue is the schedule's when the definition names none (a job spec with a
     * queue otherwise silently went to the default queue); two different ones are refused. */
    aspen_engine_schedule_def d = *def;
    if (job->queue && *job->queue) {
        if (d.queue && *d.queue && strcmp(d.queue, job->queue) != 0)
            return eng_err(err, ASPEN_ENGINE_EINVAL,
                           "the schedule's queue \"%.64s\" and its job's queue \"%.64s\" differ: "
                           "give the queue once (the schedule's)", d.queue, job->queue);
        d.queue = job->queue;
    }
    struct add_args a = {.def = &d, .err = err};
    int rc = eng_with_store_spec(eng, job, add_with, &a, err);
    if (rc == 0 && id_out)
        *id_out = a.id;
    return rc;
}

/* Every call below takes the engine first: a NULL one is refused rather than dereferenced. */
#define LOCKED(call)                                                                              \
    do {                                                                                          \
        if (!eng)                                                                                 \
            return eng_err(err, ASPEN_ENGINE_EINVAL, "%s: no engine (NULL)", __func__);          \
        aspen_store_error se = {0};                                                               \
        pthread_mutex_lock(&eng->api_mu);                                                         \
        int rc_ = (call);                                                                         \
        pthread_mutex_unlock(&eng->api_mu);                                                       \
        return rc_ ? eng_store_err(err, &se, NULL) : 0;                                           \
    } while (0)

int aspen_engine_schedule_remove(aspen_engine *eng, const char *name, aspen_engine_error *err)
{
    LOCKED(aspen_store_schedule_remove(eng->api_store, name, &se));
}

int aspen_engine_schedule_set_paused(aspen_engine *eng, const char *name, bool paused,
                                     aspen_engine_error *err)
{
    LOCKED(aspen_store_schedule_set_paused(eng->api_store, name, paused, aspen_store_now_ms(), &se));
}

int aspen_engine_schedule_run_now_ex(aspen_engine *eng, const char *name,
                                     aspen_store_submitted *out, aspen_engine_error *err)
{
    if (!eng)
        return eng_err(err, ASPEN_ENGINE_EINVAL, "%s: no engine (NULL)", __func__);
    aspen_store_error se = {0};
    aspen_store_submitted got = {0};
    pthread_mutex_lock(&eng->api_mu);
    int rc = aspen_store_schedule_run_now_ex(eng->api_store, name, aspen_store_now_ms(), &got, &se);
    pthread_mutex_unlock(&eng->api_mu);
    if (rc)
        return eng_store_err(err, &se, NULL);
    if (out)
        *out = got;
    if (!got.duplicate) /* nothing new to run otherwise */
        eng_wake(eng);
    return 0;
}

int aspen_engine_schedule_run_now(aspen_engine *eng, const char *name, int64_t *job_id,
                                  aspen_engine_error *err)
{
    aspen_store_submitted got = {0};
    int rc = aspen_engine_schedule_run_now_ex(eng, name, &got, err);
    if (!rc && job_id)
        *job_id = got.id;
    return rc;
}

int aspen_engine_schedules(aspen_engine *eng, aspen_store_schedule **out, size_t *n,
                           aspen_engine_error *err)
{
    LOCKED(aspen_store_schedules(eng->api_store, out, n, &se));
}

int aspen_engine_scheduler_holder(aspen_engine *eng, int64_t *engine_id, int64_t *until_ms,
                                  aspen_engine_error *err)
{
    LOCKED(aspen_store_scheduler_holder(eng->api_store, engine_id, until_ms, &se));
}
