/* engine/handlers.c — the handler registry and the built-in in-process handlers.
 *
 * Job types that do not need isolation run as plain C functions in a worker thread. The built-ins
 * make routing real and visible (in tests, the CLI and the console):
 *   echo      the payload back as the result, one log line
 *   checksum  {"sha256": "<hex of the payload text>", "bytes": N}
 *   sleep     payload {"ms": N}: waits N ms in small steps, stopping early on cancel or timeout
 *             ({"fail": true} makes it fail, for retry tests)
 * In-process handlers cannot be stopped by force like a VM: they are asked to (ctx_should_stop).
 */
#include "engine_internal.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

int eng_vm_execute(aspen_engine_ctx *ctx, void *user);

int aspen_engine_register_handler(aspen_engine *eng, const char *type, aspen_engine_handler_fn fn,
                                  void *user, aspen_engine_error *err)
{
    if (!type || !*type || strlen(type) >= sizeof eng->handlers[0].type || !fn)
        return eng_err(err, ASPEN_ENGINE_EINVAL,
                       "a handler needs a type name (1..31 characters) and a function");
    if (eng->started)
        return eng_err(err, ASPEN_ENGINE_EINVAL, "register handlers before starting the engine");
    for (size_t i = 0; i < eng->n_handlers; i++)
        if (strcmp(eng->handlers[i].type, type) == 0) {
            if (strcmp(type, "vm_execute") != 0)
                return eng_err(err, ASPEN_ENGINE_EINVAL,
                               "a handler for job type '%s' is already registered", type);
            eng->handlers[i].fn = fn;
            eng->handlers[i].user = user;
            return 0;
        }
    if (eng->n_handlers == ENG_MAX_HANDLERS)
        return eng_err(err, ASPEN_ENGINE_EINVAL, "too many handlers (max %d)", ENG_MAX_HANDLERS);
    struct eng_handler *h = &eng->handlers[eng->n_handlers++];
    snprintf(h->type, sizeof h->type, "%s", type);
    h->fn = fn;
    h->user = user;
    return 0;
}

size_t aspen_engine_handler_types(const aspen_engine *eng, const char **names, size_t cap)
{
    for (size_t i = 0; i < eng->n_handlers && i < cap; i++)
        names[i] = eng->handlers[i].type;
    return eng->n_handlers;
}

/* The result, or the attempt's failure: out of memory is retried, a result over the limit is not
 * (set_output recorded why). */
static int reply(aspen_engine_ctx *ctx, const void *bytes, size_t len)
{
    int rc = aspen_engine_ctx_set_output(ctx, bytes, len);
    if (rc == 0)
        return ASPEN_ENGINE_HANDLER_OK;
    if (rc == ASPEN_ENGINE_ENOMEM)
        return aspen_engine_ctx_fail(ctx, false, "out of memory for a %zu-byte result", len);
    return ASPEN_ENGINE_HANDLER_FAILED;
}

static int h_echo(aspen_engine_ctx *ctx, void *user)
{
    (void)user;
    const aspen_store_job *job = aspen_engine_ctx_job(ctx);
    size_t len = job->payload ? strlen(job->payload) : 0;
    aspen_engine_ctx_log(ctx, "echo: %zu bytes, in-process (no VM)", len);
    return reply(ctx, job->payload ? job->payload : "", len);
}

static int h_checksum(aspen_engine_ctx *ctx, void *user)
{
    (void)user;
    const aspen_store_job *job = aspen_engine_ctx_job(ctx);
    const char *p = job->payload ? job->payload : "";
    char hex[65], out[128];
    aspen_store_sha256_hex(p, strlen(p), hex);
    int n = snprintf(out, sizeof out, "{\"sha256\":\"%s\",\"bytes\":%zu}", hex, strlen(p));
    return reply(ctx, out, (size_t)n);
}

static int h_sleep(aspen_engine_ctx *ctx, void *user)
{
    (void)user;
    const aspen_store_job *job = aspen_engine_ctx_job(ctx);
    json_error_t je;
    json_t *j = json_loads(job->payload ? job->payload : "{}", JSON_DECODE_ANY, &je);
    json_int_t ms = 0;
    bool fail = false;
    if (json_is_object(j)) {
        ms = json_integer_value(json_object_get(j, "ms"));
        fail = json_is_true(json_object_get(j, "fail"));
    }
    json_decref(j);
    aspen_engine_ctx_log(ctx, "sleep: %lld ms", (long long)ms);
    /* Time on the monotonic clock, polled in steps of at most 5 ms for a stop request: counting
     * steps instead made a 5 s sleep take 19.6 s on a loaded machine (each nanosleep oversleeps). */
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        int64_t waited = (int64_t)(now.tv_sec - t0.tv_sec) * 1000 +
                         (now.tv_nsec - t0.tv_nsec) / 1000000;
        if (waited >= ms)
            break;
        if (aspen_engine_ctx_should_stop(ctx))
            return aspen_engine_ctx_fail(ctx, false, "stopped after %lld ms", (long long)waited);
        int64_t left = ms - waited;
        struct timespec step = {0, (long)(left < 5 ? left : 5) * 1000000L};
        nanosleep(&step, NULL);
    }
    if (fail)
        return aspen_engine_ctx_fail(ctx, false, "failed on purpose (payload \"fail\": true)");
    char out[64];
    int n = snprintf(out, sizeof out, "{\"slept_ms\":%lld}", (long long)ms);
    return reply(ctx, out, (size_t)n);
}

bool aspen_engine_type_in_process(const char *type)
{
    /* the built-ins registered below, that never look at a guest */
    static const char *const names[] = {"echo", "checksum", "sleep"};
    for (size_t i = 0; type && i < sizeof names / sizeof *names; i++)
        if (strcmp(type, names[i]) == 0)
            return true;
    return false;
}

int eng_register_builtins(aspen_engine *eng, bool all, aspen_engine_error *err)
{
    int rc;
    if ((rc = aspen_engine_register_handler(eng, "vm_execute", eng_vm_execute, NULL, err)) || !all)
        return rc;
    if ((rc = aspen_engine_register_handler(eng, "echo", h_echo, NULL, err)) ||
        (rc = aspen_engine_register_handler(eng, "checksum", h_checksum, NULL, err)) ||
        (rc = aspen_engine_register_handler(eng, "sleep", h_sleep, NULL, err)))
        return rc;
    return 0;
}
