/* engine/worker.c — a worker thread: takes claimed jobs from the ready queue, routes each to the
 * micro-VM executor or to an in-process handler by its type, and hands the finished attempt to the
 * committer.
 *
 * Routing: type "vm_execute", the tag "requires_isolation", or isolation on → the handler registered
 * as "vm_execute" (the built-in VM executor below unless replaced); any other type → the handler
 * registered for it, or a permanent failure naming the missing handler.
 *
 * The VM executor keeps the warm VM it used last (`sticky`): the next job of the same binary and
 * memory size runs on it with no lock taken; otherwise the VM goes back to the pool (vmpool.c) and
 * another is taken or created. Cancel and stop reach a running VM through w->cancel (the VM's
 * run_opts.cancel) and aspen_vm_interrupt, both under w->mu so the VM cannot be destroyed meanwhile.
 *
 * A job's log lines (the guest's hl_println, a handler's ctx_log) wait in a bounded buffer in its
 * eng_done and stream to the store thread (engine.c's live path) when it fills or the job runs long;
 * past the store's per-job cap they are counted, never copied, so what a job prints costs the
 * worker a fixed amount of memory however much it prints (issue 7).
 */
#include "engine_internal.h"

#include <jansson.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* strlcpy-like copy: the per-job status strings are copied on every job, and snprintf's format
 * parsing showed in profiles. */
static void copy_str(char *dst, size_t cap, const char *src)
{
    size_t n = src ? strnlen(src, cap - 1) : 0;
    if (n)
        memcpy(dst, src, n);
    dst[n] = '\0';
}

/* ---- the handler context ------------------------------------------------------------------------ */

const aspen_store_job *aspen_engine_ctx_job(const aspen_engine_ctx *ctx) { return ctx->job; }

/* ---- the job's log lines: a bounded buffer streamed to the store ------------------------------ */

void eng_signal_store(aspen_engine *eng)
{
    pthread_mutex_lock(&eng->d_mu);
    pthread_cond_signal(&eng->d_cond);
    pthread_mutex_unlock(&eng->d_mu);
}

bool eng_logs_to_live(aspen_engine *eng, struct eng_worker *w, struct eng_done *d,
                      bool with_count)
{
    struct eng_live *head = NULL, **tail = &head;
    size_t k = 0, bytes = 0;
    bool ok = true;
    for (; k < d->n_logs; k++) {
        struct eng_live *l = malloc(sizeof *l);
        if (!l) {
            ok = false;
            break;
        }
        /* the line itself changes hands: no copy */
        *l = (struct eng_live){.job_id = d->job_id, .attempt = d->attempt,
                               .time_ms = d->logs[k].time_ms, .line = d->logs[k].line,
                               .worker = w->index, .bytes = d->logs[k].bytes};
        bytes += d->logs[k].bytes;
        *tail = l;
        tail = &l->next;
    }
    if (k < d->n_logs)
        memmove(d->logs, d->logs + k, (d->n_logs - k) * sizeof *d->logs);
    d->n_logs -= k;
    d->log_bytes -= bytes;
    if (ok && with_count && d->log_dropped > 0) {
        struct eng_live *l = malloc(sizeof *l);
        if (l) {
            *l = (struct eng_live){.job_id = d->job_id, .attempt = d->attempt,
                                   .time_ms = aspen_store_now_ms(), .dropped = d->log_dropped,
                                   .worker = w->index};
            d->log_dropped = 0;
            *tail = l;
            tail = &l->next;
        } else {
            ok = false;
        }
    }
    if (head) {
        w->live_bytes += bytes;
        pthread_mutex_lock(&eng->live_mu);
        *eng->live_tail = head;
        eng->live_tail = tail;
        pthread_mutex_unlock(&eng->live_mu);
    }
    return ok;
}

static bool must_stop(const aspen_engine_ctx *ctx)
{
    return __atomic_load_n(&ctx->w->cancel, __ATOMIC_RELAXED) != CANCEL_NONE ||
           eng_mono_ms() >= ctx->deadline_mono_ms;
}

/* Makes room in the job's buffer for a line of `need` bytes (caller holds w->mu): a full buffer
 * goes to the store thread; if this worker already has as much queued there as it may, the job
 * waits for the store to catch up — a guest printing faster than SQLite writes is slowed down, not
 * buffered. False (the line is dropped, and counted) only when the job must stop meanwhile or
 * memory ran out. *signal tells the caller to wake the store thread. */
static bool make_room(aspen_engine_ctx *ctx, size_t need, bool *signal)
{
    struct eng_worker *w = ctx->w;
    struct eng_done *d = ctx->done;
    while (d->n_logs > 0 &&
           (d->n_logs >= ENG_LOG_BUF_LINES || d->log_bytes + need > ENG_LOG_BUF_BYTES)) {
        if (w->live_bytes + d->log_bytes <= ENG_LOG_LIVE_BYTES) {
            if (!eng_logs_to_live(ctx->eng, w, d, false))
                return false; /* out of memory */
            *signal = true;
            continue;
        }
        if (must_stop(ctx))
            return false;
        if (*signal) { /* never wait for a store thread nobody woke */
            pthread_mutex_unlock(&w->mu);
            eng_signal_store(ctx->eng);
            pthread_mutex_lock(&w->mu);
            *signal = false;
            continue;
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 20 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&w->live_cond, &w->mu, &ts);
    }
    return true;
}

static void add_log(aspen_engine_ctx *ctx, const char *line, size_t len)
{
    struct eng_done *d = ctx->done;
    struct eng_worker *w = ctx->w;
    aspen_engine *eng = ctx->eng;
    /* Past the store's cap a line is only counted: it is never copied or kept. */
    pthread_mutex_lock(&w->mu);
    if (d->log_room <= 0) {
        d->log_dropped++;
        pthread_mutex_unlock(&w->mu);
        return;
    }
    /* The store writes its truncation marker in place of the first line past the cap: that line
     * is sent empty (its text would be thrown away). */
    bool marker = d->log_room == 1;
    d->log_room--;
    pthread_mutex_unlock(&w->mu);
    if (marker)
        len = 0;
    char *copy = malloc(len + 1);
    if (!copy) {
        pthread_mutex_lock(&w->mu);
        d->log_dropped++;
        pthread_mutex_unlock(&w->mu);
        return;
    }
    if (len)
        memcpy(copy, line, len);
    copy[len] = '\0';
    if (!eng->cfg.no_live_logs && eng_wants(eng, ASPEN_ENGINE_EV_LOG)) {
        char note[160];
        if (marker)
            snprintf(note, sizeof note,
                     "[aspen] log truncated: this job wrote more than %d lines; later lines are "
                     "not kept",
                     aspen_store_log_cap(eng->commit_store));
        aspen_engine_event ev = {.type = ASPEN_ENGINE_EV_LOG, .job_id = ctx->job->id,
                                 .attempt = ctx->job->attempts, .worker = w->index,
                                 .outcome = -1, .job_type = ctx->job->type,
                                 .message = marker ? note : copy};
        eng_emit(eng, &ev); /* before it is queued: the store thread may free it once it is */
    }
    bool signal = false;
    pthread_mutex_lock(&w->mu);
    bool ok = make_room(ctx, len + 1, &signal);
    if (ok && d->n_logs == d->cap_logs) {
        size_t cap = d->cap_logs ? d->cap_logs * 2 : 4;
        if (cap > ENG_LOG_BUF_LINES)
            cap = ENG_LOG_BUF_LINES;
        struct eng_log *n = cap > d->cap_logs ? realloc(d->logs, cap * sizeof *n) : NULL;
        if (n) {
            d->logs = n;
            d->cap_logs = cap;
        } else {
            ok = false;
        }
    }
    if (ok) {
        d->logs[d->n_logs++] = (struct eng_log){aspen_store_now_ms(), copy, len + 1};
        d->log_bytes += len + 1;
    } else {
        d->log_dropped++;
        free(copy);
    }
    pthread_mutex_unlock(&w->mu);
    if (signal)
        eng_signal_store(eng);
}

void aspen_engine_ctx_log(aspen_engine_ctx *ctx, const char *fmt, ...)
{
    char buf[4096];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    add_log(ctx, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

int aspen_engine_ctx_set_output(aspen_engine_ctx *ctx, const void *bytes, size_t len)
{
    if (len > ASPEN_ENGINE_MAX_OUTPUT) {
        aspen_engine_ctx_fail(ctx, true,
                              "the handler's result of %zu bytes is larger than the %u-byte limit "
                              "(ASPEN_ENGINE_MAX_OUTPUT): return less, or store it elsewhere",
                              len, ASPEN_ENGINE_MAX_OUTPUT);
        ctx->output_refused = true;
        return ASPEN_ENGINE_EINVAL;
    }
    uint8_t *copy = malloc(len + 1);
    if (!copy)
        return ASPEN_ENGINE_ENOMEM;
    if (len)
        memcpy(copy, bytes, len);
    copy[len] = '\0';
    free(ctx->done->output);
    ctx->done->output = copy;
    ctx->done->output_len = len;
    return 0;
}

bool aspen_engine_ctx_should_stop(const aspen_engine_ctx *ctx)
{
    return __atomic_load_n(&ctx->w->cancel, __ATOMIC_RELAXED) != CANCEL_NONE ||
           eng_mono_ms() >= ctx->deadline_mono_ms;
}

int64_t aspen_engine_ctx_remaining_ms(const aspen_engine_ctx *ctx)
{
    int64_t left = ctx->deadline_mono_ms - eng_mono_ms();
    return left > 0 ? left : 0;
}

int aspen_engine_ctx_fail(aspen_engine_ctx *ctx, bool permanent, const char *fmt, ...)
{
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    free(ctx->done->error);
    ctx->done->error = strdup(buf);
    ctx->permanent = permanent;
    return ASPEN_ENGINE_HANDLER_FAILED;
}

/* ---- routing ------------------------------------------------------------------------------------ */

/* Is one element of the tags array exactly the string "requires_isolation"? Tags are parsed, not
 * searched as text: a tag `x","requires_isolation` must not route a job into a VM, and an escaped
 * spelling of the real tag must. Text that names the tag but cannot be parsed routes into a VM
 * (isolation is the safe side of a doubt). */
static bool tags_require_isolation(const char *tags)
{
    static const char tag[] = "requires_isolation";
    if (!tags || (!strstr(tags, tag) && !strchr(tags, '\\')))
        return false; /* the common case, without a parse: the name cannot be in there */
    json_error_t je;
    json_t *arr = json_loads(tags, JSON_DECODE_ANY, &je);
    if (!arr)
        return true;
    bool found = false;
    if (json_is_array(arr)) {
        size_t i;
        json_t *v;
        json_array_foreach(arr, i, v)
        {
            if (json_is_string(v) && json_string_length(v) == sizeof tag - 1 &&
                memcmp(json_string_value(v), tag, sizeof tag - 1) == 0) {
                found = true;
                break;
            }
        }
    }
    json_decref(arr);
    return found;
}

/* A static Linux program's arguments (docs/ABI.md section 12) come from the job's tags: each tag
 * "arg:VALUE", in order, is one more argument. (A tag, not a column: the store's schema stays as
 * it is while its PostgreSQL backend is written.) *key is the arguments as a JSON array, which
 * keys the warm VM pool (start-up, which reads argv, is snapshotted once per VM); NULL and "[]"
 * when there are none. Returns 0, or -1 when out of memory. */
void job_args_free(struct job_args *a)
{
    if (a->argv)
        for (size_t i = 0; a->argv[i]; i++)
            free(a->argv[i]);
    free(a->argv);
    free(a->key_buf);
    memset(a, 0, sizeof *a);
}

int job_args_get(const char *tags, struct job_args *out)
{
    memset(out, 0, sizeof *out);
    if (!tags || !strstr(tags, "arg:")) {
        /* The common case, every job of a pooled guest: no arguments, so no JSON to build (this
         * ran jansson for every job: ~3 µs of a worker's ~40 in bench engine), and no copy of the
         * key to allocate and free either. */
        out->key = "[]";
        return 0;
    }
    json_t *arr = NULL, *args = json_array();
    if (!args)
        return -1;
    json_error_t je;
    arr = json_loads(tags, JSON_DECODE_ANY, &je);
    size_t n = 0, i;
    json_t *v;
    if (json_is_array(arr))
        json_array_foreach(arr, i, v)
        {
            const char *t = json_string_value(v);
            if (t && strncmp(t, "arg:", 4) == 0 && strlen(t) == json_string_length(v)) {
                json_array_append_new(args, json_string(t + 4));
                n++;
            }
        }
    json_decref(arr);
    out->key = out->key_buf = json_dumps(args, JSON_COMPACT);
    if (!out->key) {
        json_decref(args);
        return -1;
    }
    if (n) {
        out->argv = calloc(n + 1, sizeof *out->argv);
        for (i = 0; out->argv && i < n; i++)
            if (!(out->argv[i] = strdup(json_string_value(json_array_get(args, i)))))
                break;
        if (!out->argv || i < n) {
            json_decref(args);
            job_args_free(out);
            return -1;
        }
    }
    json_decref(args);
    return 0;
}

bool aspen_engine_job_needs_vm(const aspen_store_job *job)
{
    if (job->isolation || (job->type && strcmp(job->type, "vm_execute") == 0))
        return true;
    return tags_require_isolation(job->tags);
}

const struct eng_handler *eng_find_handler(aspen_engine *eng, const char *type)
{
    for (size_t i = 0; i < eng->n_handlers; i++)
        if (strcmp(eng->handlers[i].type, type) == 0)
            return &eng->handlers[i];
    return NULL;
}

/* ---- the VM executor ---------------------------------------------------------------------------- */

static void on_vm_log(void *user, const char *line, size_t len) { add_log(user, line, len); }

static void set_status(struct eng_worker *w, const char *state, const aspen_store_job *job)
{
    pthread_mutex_lock(&w->mu);
    copy_str(w->st.state, sizeof w->st.state, state);
    pthread_mutex_unlock(&w->mu);
    (void)job;
}

/* The built-in "vm_execute" handler. */
int eng_vm_execute(aspen_engine_ctx *ctx, void *user);
int eng_vm_execute(aspen_engine_ctx *ctx, void *user)
{
    (void)user;
    aspen_engine *eng = ctx->eng;
    struct eng_worker *w = ctx->w;
    const aspen_store_job *job = ctx->job;
    char msg[1024];
    char sha[65] = "";
    const char *name = job->binary_name ? job->binary_name : "guest";

    if (job->binary_sha256) {
        copy_str(sha, sizeof sha, job->binary_sha256);
    } else if (job->source_dir) {
        /* Build from source (cached by the hash of the sources), then load by path. */
        char path[4096];
        bool cached = false;
        char *log = NULL;
        aspen_engine_error e = {0};
        set_status(w, "building", job);
        int rc = eng_build(eng, job->source_dir, path, sizeof path, &cached, &log, &e);
        set_status(w, "running", job);
        if (log && *log && !cached) {
            size_t n = strlen(log);
            while (n && (log[n - 1] == '\n' || log[n - 1] == '\r'))
                log[--n] = '\0';
            aspen_engine_ctx_log(ctx, "[aspen] build of %s: %.3800s", job->source_dir, log);
        }
        free(log);
        if (rc)
            return aspen_engine_ctx_fail(ctx, true, "%s", e.msg);
        aspen_engine_ctx_log(ctx, "[aspen] guest built from %s (%s)", job->source_dir,
                             cached ? "cached" : "fresh build");
        /* The built binary is stored like any other so its image is cached by sha256. */
        if (!w->store) {
            aspen_store_error se = {0};
            if (aspen_store_open(eng->db_path, &eng->store_opts, &w->store, &se) != 0)
                return aspen_engine_ctx_fail(ctx, false, "opening the store: %s", se.msg);
        }
        FILE *f = fopen(path, "rb");
        if (!f)
            return aspen_engine_ctx_fail(ctx, false, "cannot open the built guest %s", path);
        fseek(f, 0, SEEK_END);
        long sz = ftell(f);
        fseek(f, 0, SEEK_SET);
        void *bytes = sz > 0 ? malloc((size_t)sz) : NULL;
        bool ok = bytes && fread(bytes, 1, (size_t)sz, f) == (size_t)sz;
        fclose(f);
        aspen_store_error se = {0};
        if (!ok || aspen_store_put_binary(w->store, bytes, (size_t)sz, name, aspen_store_now_ms(),
                                          sha, &se) != 0) {
            free(bytes);
            return aspen_engine_ctx_fail(ctx, false, "storing the built guest %s: %s", path,
                                         ok ? se.msg : "cannot read it");
        }
        free(bytes);
    } else {
        return aspen_engine_ctx_fail(ctx, true,
                                     "job %lld runs in a micro-VM but names no guest binary or "
                                     "source directory",
                                     (long long)job->id);
    }

    size_t mem = job->memory_bytes > 0 ? (size_t)job->memory_bytes : eng->cfg.default_memory;
    struct job_args args;
    if (job_args_get(job->tags, &args) != 0)
        return aspen_engine_ctx_fail(ctx, false, "out of memory reading the job's arguments");
    struct vm_slot *slot = w->sticky;
    bool cold = false;
    if (slot && (slot->mem != mem || strcmp(slot->sha, sha) != 0 ||
                 strcmp(slot->args, args.key) != 0)) {
        vm_pool_release(&eng->pool, slot);
        slot = w->sticky = NULL;
    }
    if (slot) {
        atomic_fetch_add_explicit(&eng->pool.hits, 1, memory_order_relaxed);
    } else {
        bool permanent = false;
        if (!w->store) {
            aspen_store_error se = {0};
            if (aspen_store_open(eng->db_path, &eng->store_opts, &w->store, &se) != 0)
                return aspen_engine_ctx_fail(ctx, false, "opening the store: %s", se.msg);
        }
        if (vm_pool_acquire(&eng->pool, eng, w->store, sha, name, mem,
                            (const char *const *)args.argv, args.key, on_vm_log, ctx, &slot,
                            &cold, msg, sizeof msg, &permanent) != 0) {
            job_args_free(&args);
            return aspen_engine_ctx_fail(ctx, permanent, "%s", msg);
        }
        w->sticky = slot;
    }
    job_args_free(&args);

    int64_t t = job->timeout_ms > 0 ? job->timeout_ms : 30000;
    aspen_vm_run_opts ro = {
        .input = job->payload,
        .input_len = job->payload ? strlen(job->payload) : 0,
        .timeout_ms = t > UINT32_MAX ? UINT32_MAX : (uint32_t)t,
        .on_log = on_vm_log,
        .log_user = ctx,
        .cancel = &w->cancel,
        /* a failed attempt keeps its core; every run's host calls are recorded for replay (a few
         * bytes per call; stored only when the host made something up or the attempt failed) */
        .core_max = eng->cfg.core_max,
    };
    if (!w->tape)
        w->tape = aspen_vm_tape_new(eng->cfg.replay_max);
    ro.tape = w->tape;
    pthread_mutex_lock(&w->mu);
    w->cur_vm = slot->vm;
    copy_str(w->st.guest, sizeof w->st.guest, name);
    pthread_mutex_unlock(&w->mu);

    aspen_vm_result res;
    aspen_vm_error ve = {0};
    int rc = aspen_vm_run(slot->vm, &ro, &res, &ve);

    pthread_mutex_lock(&w->mu);
    w->cur_vm = NULL;
    /* aspen_vm_get_stats walks guest memory (mincore): ~10% of a warm run if done every time, so
     * the memory figures are refreshed on a new VM and at most every 250 ms. */
    int64_t now_ms = eng_mono_ms();
    if (cold || w->st.memory_configured != slot->mem || now_ms - w->stats_ms >= 250) {
        aspen_vm_stats vs;
        aspen_vm_get_stats(slot->vm, &vs);
        w->st.memory_configured = vs.memory_bytes;
        w->st.memory_touched = vs.memory_touched;
        w->st.cold_start_ns = vs.cold_start_ns;
        w->stats_ms = now_ms;
    }
    w->st.last_was_cold = cold;
    if (rc == 0) {
        w->st.pages_dirtied = res.stats.pages_dirtied;
        w->st.last_run_ns = res.stats.wall_ns;
        w->st.exits = res.stats.exits;
        w->st.host_calls = res.stats.host_calls;
    }
    pthread_mutex_unlock(&w->mu);

    if (rc != 0 || !aspen_vm_usable(slot->vm)) {
        /* The VM is gone: destroy it; the job may go again on a fresh one. */
        w->sticky = NULL;
        vm_pool_release(&eng->pool, slot);
        if (rc != 0)
            return aspen_engine_ctx_fail(ctx, false, "the micro-VM failed: %s", ve.msg);
    }

    struct eng_done *d = ctx->done;
    if (rc == 0) {
        free(d->core);
        d->core = res.core; /* take ownership */
        d->core_len = res.core_len;
        res.core = NULL;
        res.core_len = 0;
        free(d->replay);
        d->replay = eng_replay_record(job, sha, mem, &res, w->tape, &d->replay_len);
    }
    d->stats.wall_us = (int64_t)(res.stats.wall_ns / 1000);
    d->stats.exits = res.stats.exits;
    d->stats.host_calls = res.stats.host_calls;
    d->stats.pages_dirtied = res.stats.pages_dirtied;
    d->stats.bytes_in = res.stats.bytes_in;
    d->stats.bytes_out = res.stats.bytes_out;
    int result;
    switch (res.outcome) {
    case ASPEN_VM_SUCCESS:
        d->output = res.output; /* take ownership */
        d->output_len = res.output_len;
        res.output = NULL;
        result = ASPEN_ENGINE_HANDLER_OK;
        break;
    case ASPEN_VM_TIMEOUT:
        ctx->timed_out = true;
        /* fall through */
    case ASPEN_VM_CANCELLED:
        free(d->error);
        d->error = strdup(res.message[0] ? res.message : aspen_vm_outcome_name(res.outcome));
        result = ASPEN_ENGINE_HANDLER_FAILED; /* the caller tells timeout and cancel apart */
        break;
    case ASPEN_VM_INPUT_TOO_LARGE:
        result = aspen_engine_ctx_fail(ctx, true, "%s", res.message);
        break;
    default:
        result = aspen_engine_ctx_fail(ctx, false, "%s: %s", aspen_vm_outcome_name(res.outcome),
                                       res.message);
        break;
    }
    aspen_vm_result_free(&res);
    return result;
}

/* ---- the worker loop ---------------------------------------------------------------------------- */

static struct eng_job *queue_pop(aspen_engine *eng)
{
    pthread_mutex_lock(&eng->q_mu);
    while (eng->q_len == 0 && !eng->q_closed)
        pthread_cond_wait(&eng->q_nonempty, &eng->q_mu);
    struct eng_job *j = NULL;
    if (eng->q_len) {
        j = eng->q[eng->q_head];
        eng->q_head = (eng->q_head + 1) % eng->q_cap;
        eng->q_len--;
        atomic_fetch_add(&eng->running_jobs, 1);
        atomic_store(&eng->q_ready, eng->q_len);
    }
    /* The next pop would wait (or this one did): not saturated, so the store thread stops
     * holding its group open (engine.c, eng_group_close_ms). */
    if (eng->q_len == 0)
        atomic_fetch_add(&eng->q_dry, 1);
    /* Crossing the low-water mark (or running dry): tell the store thread to claim now. */
    bool low = j && (eng->q_len + 1 == eng->cfg.claim_batch || eng->q_len == 0);
    pthread_mutex_unlock(&eng->q_mu);
    if (low)
        eng_want_claim(eng);
    return j;
}

/* What a completion holds until it is committed and freed. */
static size_t done_bytes(const struct eng_done *d)
{
    return sizeof *d + d->output_len + d->core_len + d->replay_len +
           (d->error ? strlen(d->error) + 1 : 0) + d->log_bytes +
           d->cap_logs * sizeof *d->logs;
}

static void hand_over(aspen_engine *eng, struct eng_done *d)
{
    d->held = done_bytes(d);
    pthread_mutex_lock(&eng->d_mu);
    /* Wait while the completions already waiting hold too much (never when none do, so one big
     * result always goes through); d_flushed is broadcast after each commit has freed its group.
     * Not once the engine stops: the committer may be failing (disk full) and only gives up after
     * the workers are joined. */
    for (;;) {
        size_t pending = atomic_load(&eng->d_bytes);
        if (pending == 0 || pending + d->held <= ENG_DONE_MAX_BYTES ||
            atomic_load(&eng->stopping) || atomic_load(&eng->fatal))
            break;
        pthread_cond_signal(&eng->d_cond); /* the committer should not wait for more */
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts); /* d_flushed runs on the monotonic clock */
        ts.tv_nsec += 50 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&eng->d_flushed, &eng->d_mu, &ts);
    }
    atomic_fetch_add(&eng->d_bytes, d->held);
    d->held_in = &eng->d_bytes;
    *eng->d_tail = d;
    eng->d_tail = &d->next;
    eng->d_len++;
    eng->d_enqueued++;
    if (eng->d_len == 1 || eng->d_len >= eng->cfg.commit_batch)
        pthread_cond_signal(&eng->d_cond);
    pthread_mutex_unlock(&eng->d_mu);
}

static uint64_t next_random(struct eng_worker *w)
{
    uint64_t x = w->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return w->rng = x;
}

static void run_one(struct eng_worker *w, struct eng_job *j)
{
    aspen_engine *eng = w->eng;
    aspen_store_job *job = &j->row;
    struct eng_done *d = calloc(1, sizeof *d);
    if (!d) {
        /* Nothing to report with: leave the job running; recovery requeues it after we stop. */
        atomic_fetch_sub(&eng->running_jobs, 1);
        return;
    }
    d->job_id = job->id;
    d->engine_id = j->engine_id;
    d->attempt = job->attempts;
    copy_str(d->type, sizeof d->type, job->type);
    /* The store keeps `cap` lines per job over all its attempts, then one marker line. */
    int cap = aspen_store_log_cap(eng->commit_store);
    if (cap <= 0)
        cap = 1000;
    d->log_room = job->log_count <= cap ? (int64_t)cap + 1 - job->log_count : 0;
    int64_t started = aspen_store_now_ms();
    eng_job_started(eng, j, started); /* the attempt counts from here, not from the claim */
    copy_str(d->guest, sizeof d->guest, job->binary_name);
    d->wait_ms = job->run_at_ms > 0 && started > job->run_at_ms ? started - job->run_at_ms : 0;

    pthread_mutex_lock(&w->mu);
    w->cur_job_id = job->id;
    w->cur_done = d;
    w->cur_started_mono = eng_mono_ms();
    __atomic_store_n(&w->cancel, atomic_load(&j->cancel), __ATOMIC_SEQ_CST);
    copy_str(w->st.state, sizeof w->st.state, "running");
    w->st.job_id = job->id;
    copy_str(w->st.job_type, sizeof w->st.job_type, d->type);
    /* The guest is this job's, set when its VM runs: a job of an in-process type has none, and must
     * not be shown (VMs pane, heartbeats, aspen engines) as the previous job's guest. */
    w->st.guest[0] = '\0';
    pthread_mutex_unlock(&w->mu);

    aspen_engine_ctx ctx = {.eng = eng, .w = w, .job = job, .done = d,
                            .deadline_mono_ms = eng_mono_ms() +
                                                (job->timeout_ms > 0 ? job->timeout_ms : 30000)};
    int result;
    bool in_vm = aspen_engine_job_needs_vm(job);
    const struct eng_handler *h = eng_find_handler(eng, in_vm ? "vm_execute" : job->type);
    if (__atomic_load_n(&w->cancel, __ATOMIC_SEQ_CST) != CANCEL_NONE)
        result = ASPEN_ENGINE_HANDLER_FAILED; /* cancelled while it waited in the queue */
    else if (!h)
        result = aspen_engine_ctx_fail(&ctx, true,
                                       "no handler registered for job type '%s' in this worker "
                                       "(register one with aspen_engine_register_handler)",
                                       job->type);
    else
        result = h->fn(&ctx, h->user);
    if (ctx.output_refused) /* the handler may have ignored set_output's error */
        result = ASPEN_ENGINE_HANDLER_FAILED;

    pthread_mutex_lock(&w->mu);
    int reason = w->cancel;
    /* Lines past the cap were only counted: the count goes to the store like a live line, ahead
     * of the completion (which carries the lines still buffered). */
    bool count_sent = reason != CANCEL_LEASE && d->log_dropped > 0 &&
                      eng_logs_to_live(eng, w, d, true);
    w->cur_job_id = 0;
    w->cur_done = NULL;
    w->cancel = CANCEL_NONE;
    copy_str(w->st.state, sizeof w->st.state, "idle");
    w->st.job_id = 0;
    w->st.jobs_done++;
    pthread_mutex_unlock(&w->mu);
    if (count_sent)
        eng_signal_store(eng);

    d->stats.started_at_ms = started;
    d->stats.finished_at_ms = aspen_store_now_ms();
    if (!d->stats.wall_us)
        d->stats.wall_us = (d->stats.finished_at_ms - started) * 1000;
    if (result == ASPEN_ENGINE_HANDLER_OK && reason == CANCEL_NONE) {
        d->outcome = ASPEN_STORE_OUTCOME_SUCCESS;
    } else if (reason == CANCEL_USER) {
        d->outcome = ASPEN_STORE_OUTCOME_CANCELLED;
        free(d->error);
        d->error = strdup("cancelled by request");
    } else if (reason == CANCEL_SHUTDOWN) {
        d->release = true; /* goes back to the queue, attempt not counted */
    } else if (reason == CANCEL_LEASE) {
        eng_done_free(d); /* another engine owns it now */
        d = NULL;
    } else {
        bool timed_out = ctx.timed_out || (!in_vm && eng_mono_ms() >= ctx.deadline_mono_ms);
        d->outcome = timed_out ? ASPEN_STORE_OUTCOME_TIMEOUT : ASPEN_STORE_OUTCOME_FAILURE;
        if (timed_out && (!d->error || !strstr(d->error, "timed out"))) {
            free(d->error);
            char buf[128];
            snprintf(buf, sizeof buf, "timed out after %lld ms", (long long)job->timeout_ms);
            d->error = strdup(buf);
        }
        if (!ctx.permanent)
            d->retry_at_ms = d->stats.finished_at_ms +
                             aspen_store_backoff_ms(job->attempts, eng->cfg.backoff_base_ms,
                                                    eng->cfg.backoff_cap_ms,
                                                    eng->cfg.backoff_jitter, next_random(w));
        if (d->retry_at_ms <= 0 && !ctx.permanent)
            d->retry_at_ms = d->stats.finished_at_ms + 1;
    }
    if (d) {
        if (eng_wants(eng, ASPEN_ENGINE_EV_VM)) {
            aspen_engine_worker_status st;
            pthread_mutex_lock(&w->mu);
            st = w->st;
            pthread_mutex_unlock(&w->mu);
            aspen_engine_event ev = {.type = ASPEN_ENGINE_EV_VM, .job_id = job->id,
                                     .attempt = job->attempts, .worker = w->index, .outcome = -1,
                                     .job_type = d->type, .vm = &st};
            eng_emit(eng, &ev);
        }
        hand_over(eng, d);
    }
    atomic_fetch_sub(&eng->running_jobs, 1);
}

void *eng_worker_main(void *arg)
{
    struct eng_worker *w = arg;
    aspen_engine *eng = w->eng;
    char name[16];
    snprintf(name, sizeof name, "aspen-worker%d", w->index);
    pthread_setname_np(pthread_self(), name);
    struct eng_job *j;
    while ((j = queue_pop(eng)) != NULL) {
        run_one(w, j);
        aspen_store_job_clear(&j->row);
        free(j);
    }
    pthread_mutex_lock(&w->mu);
    snprintf(w->st.state, sizeof w->st.state, "stopped");
    pthread_mutex_unlock(&w->mu);
    return NULL;
}
