/* engine/replay.c — what a finished VM attempt keeps beside its row, and replaying it.
 *
 * Every VM job runs with a tape (vm/tape.c) that records its host calls. When the attempt is done
 * the worker makes its replay record: the binary's hash, the memory size, the input's hash, how it
 * ended (outcome, output's size and hash, the error, the number of log lines) and the tape. The
 * record is stored (attempt_data, kind replay) only when a replay needs more than the job row:
 * when the attempt did not succeed, when the host made up a value for it (a clock reading, random
 * bytes, a registered function's result), when its tape was cut, or when its binary was built from
 * source. A success of a deterministic guest (no values made up) stores nothing: the job row has
 * its input, binary and memory, and the stored result and log lines are its outcome. So the hot
 * path of successful jobs writes no more than before. A failed attempt (fault, panic, timeout)
 * also keeps its ELF core (vm/core.c). The record goes with the attempt's completion into the
 * group commit (one small row in its transaction); cores, up to megabytes, are written after it,
 * in one transaction per group (eng_store_attempt_data), so they never slow a group of successes.
 *
 * aspen_engine_replay runs the attempt again on a fresh VM (warm, from the snapshot, as workers do)
 * with the record's values fed back, and reports "identical" or the first difference: a host call
 * (named, with the last recorded value fed before it), then the outcome, the output, the error,
 * the number of log lines. A run that diverged at a host call goes on live to its end, so every
 * part of how it ended is compared too and reported under the verdict: the user who edited a
 * value (--set) sees what the edit changed, not only where. aspen_engine_replay_calls lists a
 * record's calls and values without running anything, and --set is checked against that list,
 * so a refusal names the call and the ones that do have values.
 *
 * Record (little-endian):
 *   "ASPR" u8 version=1 u8 flags(1: tape cut) u8 outcome u8 0
 *   u8[32] binary sha256, u64 memory, u8[32] input sha256,
 *   u64 output length, u8[32] output sha256, u32 log lines,
 *   u32 error length, error bytes (<= 1024), u32 tape length, tape bytes
 */
#include "engine_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REC_VERSION 1
#define REC_FIXED (8 + 32 + 8 + 32 + 8 + 32 + 4 + 4 + 4)

static void put_u32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put_u64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }
static uint32_t get_u32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}
static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static void sha_of(const void *p, size_t n, uint8_t out[32])
{
    aspen_store_sha256_ctx c;
    aspen_store_sha256_init(&c);
    aspen_store_sha256_update(&c, p, n);
    aspen_store_sha256_final(&c, out);
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static bool sha_from_hex(const char *hex, uint8_t out[32])
{
    if (!hex || strlen(hex) != 64)
        return false;
    for (int i = 0; i < 32; i++) {
        int a = hexval(hex[2 * i]), b = hexval(hex[2 * i + 1]);
        if (a < 0 || b < 0)
            return false;
        out[i] = (uint8_t)(a << 4 | b);
    }
    return true;
}

static void sha_to_hex(const uint8_t in[32], char hex[65])
{
    static const char d[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        hex[2 * i] = d[in[i] >> 4];
        hex[2 * i + 1] = d[in[i] & 15];
    }
    hex[64] = '\0';
}

uint8_t *eng_replay_record(const aspen_store_job *job, const char *sha, size_t memory,
                           const struct aspen_vm_result *res, struct aspen_vm_tape *tape,
                           size_t *len)
{
    *len = 0;
    if (!tape)
        return NULL;
    aspen_vm_tape_info ti;
    aspen_vm_tape_get_info(tape, &ti);
    bool needed = res->outcome != ASPEN_VM_SUCCESS || ti.values > 0 || ti.truncated ||
                  !job->binary_sha256;
    if (!needed)
        return NULL;
    size_t tlen = 0;
    const void *tb = aspen_vm_tape_data(tape, &tlen);
    size_t elen = strnlen(res->message, sizeof res->message);
    if (elen > 1024)
        elen = 1024;
    size_t n = REC_FIXED + elen + tlen;
    uint8_t *r = calloc(1, n);
    if (!r)
        return NULL; /* the attempt stands without a record; replay then says none was kept */
    uint8_t *p = r;
    memcpy(p, "ASPR", 4);
    p[4] = REC_VERSION;
    p[5] = ti.truncated ? 1 : 0;
    p[6] = (uint8_t)res->outcome;
    p += 8;
    if (!sha_from_hex(sha, p))
        memset(p, 0, 32);
    p += 32;
    put_u64(p, memory);
    p += 8;
    const char *in = job->payload ? job->payload : "";
    sha_of(in, strlen(in), p);
    p += 32;
    put_u64(p, res->output_len);
    p += 8;
    sha_of(res->output ? (const void *)res->output : "", res->output_len, p);
    p += 32;
    put_u32(p, res->stats.log_lines);
    p += 4;
    put_u32(p, (uint32_t)elen);
    p += 4;
    memcpy(p, res->message, elen);
    p += elen;
    put_u32(p, (uint32_t)tlen);
    p += 4;
    if (tlen)
        memcpy(p, tb, tlen);
    *len = n;
    return r;
}

void eng_store_attempt_data(aspen_engine *eng, struct eng_done *const *d, const int *status,
                            size_t n)
{
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (status[i] == 0)
            m += d[i]->core != NULL; /* replay records went with the commit */
    if (!m)
        return;
    aspen_store_attempt_data *items = calloc(m, sizeof *items);
    if (!items) {
        engine_message(eng, "out of memory keeping %zu cores: the attempts stand without them",
                       m);
        return;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (status[i] != 0)
            continue;
        if (d[i]->core)
            items[k++] = (aspen_store_attempt_data){d[i]->job_id, d[i]->attempt,
                                                    ASPEN_STORE_DATA_CORE, d[i]->core,
                                                    d[i]->core_len};
    }
    aspen_store_error se = {0};
    if (aspen_store_put_attempt_data(eng->commit_store, items, k, &se) != 0)
        engine_message(eng, "keeping %zu cores failed (the attempts stand without them): %s", k,
                       se.msg);
    free(items);
}

/* ---- reading them back --------------------------------------------------------------------------- */

int aspen_engine_get_binary(aspen_engine *eng, const char *sha256, aspen_store_binary *out,
                            aspen_engine_error *err)
{
    aspen_store_error se = {0};
    pthread_mutex_lock(&eng->api_mu);
    int rc = aspen_store_get_binary(eng->api_store, sha256, out, &se);
    pthread_mutex_unlock(&eng->api_mu);
    return rc ? eng_store_err(err, &se, "reading a guest binary") : 0;
}

int aspen_engine_core_set_program(void *core, size_t len, const char *exe)
{
    return aspen_vm_core_set_program(core, len, exe);
}

bool aspen_engine_source_pin(const char *source, char *dir, size_t cap, char hex[65])
{
    return eng_source_pin_split(source, dir, cap, hex);
}

int aspen_engine_list_attempt_data(aspen_engine *eng, int64_t job_id,
                                   aspen_store_attempt_data **out, size_t *n,
                                   aspen_engine_error *err)
{
    aspen_store_error se = {0};
    pthread_mutex_lock(&eng->api_mu);
    int rc = aspen_store_list_attempt_data(eng->api_store, job_id, out, n, &se);
    pthread_mutex_unlock(&eng->api_mu);
    return rc ? eng_store_err(err, &se, "listing cores and replay records") : 0;
}

int aspen_engine_attempt_data(aspen_engine *eng, int64_t job_id, int attempt,
                              aspen_store_data_kind kind, void **bytes, size_t *size,
                              int *attempt_out, aspen_engine_error *err)
{
    *bytes = NULL;
    *size = 0;
    aspen_store_job job = {0};
    aspen_store_error se = {0};
    pthread_mutex_lock(&eng->api_mu);
    int rc = aspen_store_get(eng->api_store, job_id, &job, &se);
    aspen_store_attempt_data *list = NULL;
    size_t n = 0;
    if (rc == 0)
        rc = aspen_store_list_attempt_data(eng->api_store, job_id, &list, &n, &se);
    int want = attempt;
    /* an attempt the job never made: say how many it has, not that "it" keeps nothing */
    bool beyond = rc == 0 && attempt > job.attempts;
    if (rc == 0 && want == 0)
        for (size_t i = 0; i < n; i++)
            if (list[i].kind == kind && list[i].attempt > want)
                want = list[i].attempt;
    if (rc == 0 && want > 0 && !beyond)
        rc = aspen_store_get_attempt_data(eng->api_store, job_id, want, kind, bytes, size, &se);
    /* none kept: how the last attempt ended says why (a job error or a success keeps none) */
    aspen_store_attempt *att = NULL;
    size_t n_att = 0;
    if (rc == 0 && want == 0 && kind == ASPEN_STORE_DATA_CORE &&
        aspen_store_attempts(eng->api_store, job_id, &att, &n_att, NULL) != 0) {
        att = NULL;
        n_att = 0;
    }
    pthread_mutex_unlock(&eng->api_mu);
    free(list);
    const char *k = aspen_store_data_kind_name(kind);
    if (rc) {
        aspen_store_job_clear(&job);
        return eng_store_err(err, &se, NULL);
    }
    if (beyond) {
        int code = eng_err(err, ASPEN_ENGINE_ENOTFOUND,
                           "job %lld has %s %d attempt%s: there is no attempt %d (aspen show %lld%s "
                           "lists them)",
                           (long long)job_id, job.attempts ? "only" : "made", job.attempts,
                           job.attempts == 1 ? "" : "s", attempt, (long long)job_id,
                           eng->cfg.cmd_args);
        aspen_store_job_clear(&job);
        return code;
    }
    if (want == 0) {
        int code;
        const aspen_store_attempt *last = n_att ? &att[n_att - 1] : NULL;
        const char *je = "job_error: "; /* the worker's words for a guest's own failure */
        if (kind == ASPEN_STORE_DATA_CORE && !aspen_engine_job_needs_vm(&job))
            /* "its attempt 1 succeeded" would suggest a VM ran and might have kept one */
            code = eng_err(err, ASPEN_ENGINE_ENOTFOUND,
                           "job %lld keeps no core: it ran in-process in a worker (type %s, no "
                           "micro-VM), so there is no guest memory to dump; cores are kept for "
                           "micro-VM jobs' faults, panics and timeouts",
                           (long long)job_id, job.type ? job.type : "?");
        else if (kind == ASPEN_STORE_DATA_CORE && last && last->error &&
            strncmp(last->error, je, strlen(je)) == 0)
            code = eng_err(err, ASPEN_ENGINE_ENOTFOUND,
                           "job %lld keeps no core: its %sattempt %d ended in a job error (the "
                           "guest's own failure, reported by it), which keeps no core; cores are "
                           "kept for faults, panics and timeouts",
                           (long long)job_id, n_att > 1 ? "last " : "", last->number);
        else if (kind == ASPEN_STORE_DATA_CORE && last && last->exits == 0 && !last->recovered &&
                 strcmp(last->outcome, "succeeded") != 0 && strcmp(last->outcome, "cancelled") != 0) {
            /* Failed before its VM entered the guest (load()'s test for replay): the build of a
             * --source guest, its fetch from a repository, loading the binary. The generic
             * "only a failed attempt keeps one" read as if a core had been lost. */
            const char *why = last->error ? last->error : "";
            int wl = (int)strcspn(why, "\n");
            if (strncmp(why, "building the guest", 18) == 0)
                code = eng_err(err, ASPEN_ENGINE_ENOTFOUND,
                               "job %lld keeps no core: its %sattempt %d failed building its guest "
                               "from source, so the guest never ran and there is no guest memory "
                               "to dump (aspen show %lld%s has the compiler's message)",
                               (long long)job_id, n_att > 1 ? "last " : "", last->number,
                               (long long)job_id, eng->cfg.cmd_args);
            else
                code = eng_err(err, ASPEN_ENGINE_ENOTFOUND,
                               "job %lld keeps no core: its %sattempt %d failed before its guest "
                               "ran the job, so there is no guest memory to dump%s%.*s",
                               (long long)job_id, n_att > 1 ? "last " : "", last->number,
                               wl ? ": " : "", wl > 400 ? 400 : wl, why);
        } else if (kind == ASPEN_STORE_DATA_CORE && last && !strcmp(last->outcome, "succeeded"))
            code = eng_err(err, ASPEN_ENGINE_ENOTFOUND,
                           "job %lld keeps no core: its %sattempt %d succeeded; cores are kept "
                           "for faults, panics and timeouts",
                           (long long)job_id, n_att > 1 ? "last " : "", last->number);
        else if (kind == ASPEN_STORE_DATA_CORE)
            code = eng_err(err, ASPEN_ENGINE_ENOTFOUND,
                           "job %lld keeps no core: only a failed attempt of a micro-VM job "
                           "(fault, panic, timeout) keeps one, under the engine's size cap "
                           "(job %lld is %s after %d attempt%s)",
                           (long long)job_id, (long long)job_id, aspen_store_state_name(job.state),
                           job.attempts, job.attempts == 1 ? "" : "s");
        else
            code = eng_err(err, ASPEN_ENGINE_ENOTFOUND, "job %lld keeps no %s", (long long)job_id,
                           k);
        aspen_store_attempts_free(att, n_att);
        aspen_store_job_clear(&job);
        return code;
    }
    aspen_store_job_clear(&job);
    if (attempt_out)
        *attempt_out = want;
    return 0;
}

/* ---- replay ---------------------------------------------------------------------------------------- */

struct rec {
    uint8_t version, flags, outcome;
    uint8_t sha[32], input[32], output[32];
    uint64_t memory, output_len;
    uint32_t log_lines;
    const char *error;
    size_t error_len;
    const uint8_t *tape;
    size_t tape_len;
};

static bool rec_parse(const uint8_t *b, size_t n, struct rec *r)
{
    if (n < REC_FIXED || memcmp(b, "ASPR", 4) != 0 || b[4] != REC_VERSION)
        return false;
    r->version = b[4];
    r->flags = b[5];
    r->outcome = b[6];
    size_t p = 8;
    memcpy(r->sha, b + p, 32);
    p += 32;
    r->memory = get_u64(b + p);
    p += 8;
    memcpy(r->input, b + p, 32);
    p += 32;
    r->output_len = get_u64(b + p);
    p += 8;
    memcpy(r->output, b + p, 32);
    p += 32;
    r->log_lines = get_u32(b + p);
    p += 4;
    r->error_len = get_u32(b + p);
    p += 4;
    if (r->error_len > 1024 || r->error_len > n - p)
        return false;
    r->error = (const char *)b + p;
    p += r->error_len;
    if (n - p < 4)
        return false;
    r->tape_len = get_u32(b + p);
    p += 4;
    if (r->tape_len != n - p)
        return false;
    r->tape = b + p;
    return true;
}

int aspen_engine_attempt_binary(aspen_engine *eng, int64_t job_id, int attempt, char hex[65],
                                aspen_engine_error *err)
{
    hex[0] = '\0';
    void *blob = NULL;
    size_t n = 0;
    aspen_store_error se = {0};
    pthread_mutex_lock(&eng->api_mu);
    int rc = aspen_store_get_attempt_data(eng->api_store, job_id, attempt, ASPEN_STORE_DATA_REPLAY,
                                          &blob, &n, &se);
    pthread_mutex_unlock(&eng->api_mu);
    if (rc)
        return eng_store_err(err, &se, "reading the replay record");
    struct rec r = {0};
    bool ok = rec_parse(blob, n, &r);
    if (ok)
        sha_to_hex(r.sha, hex);
    free(blob);
    return ok ? 0
              : eng_err(err, ASPEN_ENGINE_EINVAL,
                        "the replay record of job %lld attempt %d is damaged (%zu bytes)",
                        (long long)job_id, attempt, n);
}

struct lines {
    char **v;
    size_t n, cap;
    size_t total;
};

static void collect_line(void *user, const char *line, size_t len)
{
    struct lines *l = user;
    l->total++;
    if (l->n == l->cap) {
        if (l->cap >= 100000)
            return;
        size_t cap = l->cap ? l->cap * 2 : 64;
        char **nv = realloc(l->v, cap * sizeof *nv);
        if (!nv)
            return;
        l->v = nv;
        l->cap = cap;
    }
    char *s = malloc(len + 1);
    if (!s)
        return;
    memcpy(s, line, len);
    s[len] = '\0';
    l->v[l->n++] = s;
}

static void lines_free(struct lines *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
}

static const char *outcome_of_store(const char *o)
{
    return o && strcmp(o, "succeeded") == 0 ? "success" : o ? o : "?";
}

static void summary(aspen_engine_replay_report *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void summary(aspen_engine_replay_report *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->summary, sizeof r->summary, fmt, ap);
    va_end(ap);
}

/* Appends to a fixed buffer, cut at its end (used tracks what was written). */
struct text {
    char *buf;
    size_t cap, used;
};
static void add(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add(struct text *t, const char *fmt, ...)
{
    if (t->used + 1 >= t->cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(t->buf + t->used, t->cap - t->used, fmt, ap);
    va_end(ap);
    if (n > 0)
        t->used = (size_t)n < t->cap - t->used ? t->used + (size_t)n : t->cap - 1;
}

/* A guest's text, quoted, at most max of its n bytes ("..." when there are more), its newlines as
 * \n so it stays on its line, NULs as \0, quotes and backslashes after a backslash so the quote
 * that ends it is the only bare one (every other byte is left for the printer's escaping). */
static void add_quoted(struct text *t, const char *s, size_t n, size_t max)
{
    add(t, "\"");
    for (size_t i = 0; i < n && i < max; i++) {
        if (s[i] == '\n')
            add(t, "\\n");
        else if (s[i] == '"' || s[i] == '\\')
            add(t, "\\%c", s[i]);
        else if (!s[i])
            add(t, "\\0");
        else
            add(t, "%c", s[i]);
    }
    add(t, n > max ? "...\"" : "\"");
}

/* What replaying an attempt starts from: the job, the attempt, and its record or, for a
 * deterministic success that kept none, what the job's row says in its place. */
struct loaded {
    aspen_store_job job;
    aspen_store_attempt *att;
    size_t na;
    const aspen_store_attempt *a;
    int attempt;
    void *blob;
    size_t blob_len;
    struct rec r;
    bool recorded;
};

static void unload(struct loaded *L)
{
    free(L->blob);
    aspen_store_attempts_free(L->att, L->na);
    aspen_store_job_clear(&L->job);
}

/* The refusals of docs/ABI.md §14 (in-process job, no such attempt, recovered, cancelled, never
 * ran, a damaged record) for a replay and for a listing alike. */
static int load(aspen_engine *eng, int64_t job_id, int attempt, struct loaded *L,
                aspen_engine_error *err)
{
    memset(L, 0, sizeof *L);
    aspen_store_error se = {0};
    pthread_mutex_lock(&eng->api_mu);
    int rc = aspen_store_get(eng->api_store, job_id, &L->job, &se);
    if (rc == 0)
        rc = aspen_store_attempts(eng->api_store, job_id, &L->att, &L->na, &se);
    pthread_mutex_unlock(&eng->api_mu);
    if (rc)
        return eng_store_err(err, &se, NULL);
    aspen_store_job *job = &L->job;
    if (!aspen_engine_job_needs_vm(job))
        return eng_err(err, ASPEN_ENGINE_EINVAL,
                       "job %lld (type %s) ran in an in-process handler, not a micro-VM: only "
                       "micro-VM jobs are recorded and replayed",
                       (long long)job_id, job->type);
    if (!attempt)
        attempt = job->attempts;
    for (size_t i = 0; i < L->na; i++)
        if (L->att[i].number == attempt)
            L->a = &L->att[i];
    if (!L->a && L->na)
        return eng_err(err, ASPEN_ENGINE_ENOTFOUND,
                       "job %lld has no finished attempt %d (it has %zu: aspen show %lld%s lists "
                       "them)",
                       (long long)job_id, attempt, L->na, (long long)job_id, eng->cfg.cmd_args);
    if (!L->a)
        return eng_err(err, ASPEN_ENGINE_ENOTFOUND,
                       "job %lld has no finished attempt %d (it has none: it never ran to the "
                       "end)",
                       (long long)job_id, attempt);
    L->attempt = attempt;
    const aspen_store_attempt *a = L->a;
    if (a->recovered)
        return eng_err(err, ASPEN_ENGINE_EINVAL,
                       "attempt %d of job %lld was recovered (its engine died or lost its "
                       "lease while it ran): nothing of it was recorded",
                       attempt, (long long)job_id);
    if (strcmp(a->outcome, "cancelled") == 0)
        return eng_err(err, ASPEN_ENGINE_EINVAL,
                       "attempt %d of job %lld was cancelled: where a cancel stops a guest is "
                       "not part of its run, so there is nothing to replay",
                       attempt, (long long)job_id);

    /* The record, or what the job row says for a deterministic success. */
    struct rec *r = &L->r;
    pthread_mutex_lock(&eng->api_mu);
    rc = aspen_store_get_attempt_data(eng->api_store, job_id, attempt, ASPEN_STORE_DATA_REPLAY,
                                      &L->blob, &L->blob_len, &se);
    pthread_mutex_unlock(&eng->api_mu);
    if (rc == 0) {
        if (!rec_parse(L->blob, L->blob_len, r))
            return eng_err(err, ASPEN_ENGINE_EINVAL,
                           "the replay record of job %lld attempt %d is damaged (%zu bytes)",
                           (long long)job_id, attempt, L->blob_len);
        L->recorded = true;
        return 0;
    }
    if (se.code != ASPEN_STORE_ENOTFOUND)
        return eng_store_err(err, &se, "reading the replay record");
    if (a->exits == 0 && strcmp(a->outcome, "succeeded") != 0) {
        /* Failed before its VM entered the guest (no exit counted): the build of a --source
         * guest, its fetch from a repository, loading the binary. Nothing ran, nothing to replay;
         * the first line of why, bounded (the whole error is in aspen show). */
        const char *why = a->error ? a->error : "";
        bool build = strncmp(why, "building the guest", 18) == 0;
        int wl = (int)strcspn(why, "\n");
        return eng_err(err, ASPEN_ENGINE_EINVAL,
                       "attempt %d of job %lld never ran in a micro-VM (%s), so there is nothing "
                       "to replay%s%.*s",
                       attempt, (long long)job_id,
                       build ? "its guest's build from source failed"
                             : "it failed before its guest ran the job",
                       wl ? ": " : "", wl > 400 ? 400 : wl, why);
    }
    if (strcmp(a->outcome, "succeeded") != 0 || !job->binary_sha256)
        return eng_err(err, ASPEN_ENGINE_ENOTFOUND,
                       "attempt %d of job %lld (%s) kept no replay record: it ran before this "
                       "aspen recorded host calls, or storing the record failed",
                       attempt, (long long)job_id, a->outcome);
    sha_from_hex(job->binary_sha256, r->sha);
    r->memory = job->memory_bytes > 0 ? (uint64_t)job->memory_bytes : eng->cfg.default_memory;
    const char *in = job->payload ? job->payload : "";
    sha_of(in, strlen(in), r->input);
    r->outcome = ASPEN_VM_SUCCESS;
    r->output_len = job->result_size;
    sha_of(job->result ? job->result : "", job->result_size, r->output);
    return 0;
}

/* ---- the listing of a record's calls ------------------------------------------------------------ */

void aspen_engine_replay_call_list_free(aspen_engine_replay_call_list *c)
{
    if (!c)
        return;
    free(c->calls);
    free(c->values);
    memset(c, 0, sizeof *c);
}

/* Grows *p (of *cap elements of size sz) to hold need; false when it cannot (size overflow or out
 * of memory), *p untouched then. */
static bool grow(void **p, size_t *cap, size_t need, size_t sz)
{
    if (need <= *cap)
        return true;
    size_t c = *cap ? *cap : 16;
    while (c < need) {
        if (c > SIZE_MAX / 2)
            return false;
        c *= 2;
    }
    if (c > SIZE_MAX / sz)
        return false;
    void *np = realloc(*p, c * sz);
    if (!np)
        return false;
    *p = np;
    *cap = c;
    return true;
}

/* The calls of tape into out (emptied first). */
static int list_tape(const aspen_vm_tape *t, const aspen_vm_host *host,
                     aspen_engine_replay_call_list *out, aspen_engine_error *err)
{
    free(out->calls);
    free(out->values);
    out->calls = NULL;
    out->values = NULL;
    out->n = out->nvalues = out->with_values = 0;
    size_t ccap = 0, vcap = 0;
    aspen_vm_tape_cursor cur = {0};
    aspen_vm_tape_call *c = malloc(sizeof *c);
    if (!c)
        return eng_err(err, ASPEN_ENGINE_ENOMEM, "out of memory listing the recorded calls");
    int code = 0;
    for (;;) {
        int k = aspen_vm_tape_next_call(t, host, &cur, c);
        if (k == 0)
            break;
        if (k < 0) {
            code = eng_err(err, ASPEN_ENGINE_EINVAL,
                           "the replay record is damaged at host call %u", cur.calls + 1);
            break;
        }
        if (!grow((void **)&out->calls, &ccap, out->n + 1, sizeof *out->calls) ||
            !grow((void **)&out->values, &vcap, out->nvalues + c->nvalues, sizeof *out->values)) {
            code = eng_err(err, ASPEN_ENGINE_ENOMEM, "out of memory listing %zu recorded calls",
                           out->n + 1);
            break;
        }
        aspen_engine_replay_call *d = &out->calls[out->n++];
        *d = (aspen_engine_replay_call){.index = c->index, .syscall = c->syscall,
                                        .nvalues = c->nvalues, .first_value = out->nvalues};
        snprintf(d->name, sizeof d->name, "%s", c->name);
        out->with_values += c->nvalues > 0;
        for (uint32_t i = 0; i < c->nvalues; i++) {
            const aspen_vm_tape_value *v = &c->values[i];
            aspen_engine_replay_value *w = &out->values[out->nvalues++];
            *w = (aspen_engine_replay_value){.is_bytes = v->is_bytes,
                                             .number = (int64_t)v->number, .len = v->len};
            static const char hx[] = "0123456789abcdef";
            for (size_t j = 0; v->is_bytes && j < v->len && j < 32; j++) {
                w->hex[2 * j] = hx[v->bytes[j] >> 4];
                w->hex[2 * j + 1] = hx[v->bytes[j] & 15];
            }
        }
    }
    free(c);
    return code;
}

int aspen_engine_replay_calls(aspen_engine *eng, int64_t job_id, int attempt,
                              aspen_engine_replay_call_list *out, aspen_engine_error *err)
{
    memset(out, 0, sizeof *out);
    struct loaded L;
    int code = load(eng, job_id, attempt, &L, err);
    if (code == 0) {
        out->attempt = L.attempt;
        out->recorded = L.recorded;
        out->truncated = L.recorded && (L.r.flags & 1);
    }
    if (code == 0 && L.recorded) {
        aspen_vm_tape *t = NULL;
        aspen_vm_error ve = {0};
        if (aspen_vm_tape_open(L.r.tape, L.r.tape_len, &t, &ve) != 0)
            code = eng_err(err, ASPEN_ENGINE_EINVAL, "job %lld attempt %d: %s",
                           (long long)job_id, L.attempt, ve.msg);
        else
            code = list_tape(t, eng->host, out, err);
        aspen_vm_tape_free(t);
    }
    unload(&L);
    if (code)
        aspen_engine_replay_call_list_free(out);
    return code;
}

/* "host call 2 (clock_gettime) 2.1 = 1700000000, 2.2 = 5; ..." for the calls that have values,
 * the first few, as --set numbers them. */
static void add_calls_with_values(struct text *t, const aspen_engine_replay_call_list *c,
                                  int64_t job_id, const char *cmd_args)
{
    if (!c->with_values) {
        add(t, "no host call of this attempt recorded a value, so there is none to set");
        return;
    }
    add(t, "the calls with values: ");
    size_t shown = 0;
    for (size_t i = 0; i < c->n && shown < 6; i++) {
        const aspen_engine_replay_call *k = &c->calls[i];
        if (!k->nvalues)
            continue;
        add(t, "%shost call %u (%s)", shown++ ? "; " : "", k->index, k->name);
        for (uint32_t j = 0; j < k->nvalues && j < 4; j++) {
            const aspen_engine_replay_value *v = &c->values[k->first_value + j];
            if (v->is_bytes)
                add(t, "%s %u.%u = %zu bytes", j ? "," : "", k->index, j + 1, v->len);
            else
                add(t, "%s %u.%u = %lld", j ? "," : "", k->index, j + 1, (long long)v->number);
        }
        if (k->nvalues > 4)
            add(t, ", ... (%u values)", k->nvalues);
    }
    if (c->with_values > shown)
        add(t, "; and %zu more", c->with_values - shown);
    add(t, " (aspen replay %lld --calls%s lists every call)", (long long)job_id,
        cmd_args ? cmd_args : "");
}

/* --set CALL.I names a recorded number, or it is refused naming the call and the ones that do
 * have values (a user otherwise tries every call in turn). */
static int check_set(const aspen_engine_replay_call_list *c, const aspen_engine_replay_opts *o,
                     int64_t job_id, aspen_engine_error *err)
{
    char msg[sizeof err->msg];
    struct text t = {msg, sizeof msg, 0};
    uint32_t call = o->set_call, idx = o->set_index;
    const aspen_engine_replay_call *k = call >= 1 && call <= c->n ? &c->calls[call - 1] : NULL;
    if (!k)
        add(&t, "--set: attempt %d of job %lld recorded %zu host call%s%s: there is no call %u; ",
            c->attempt, (long long)job_id, c->n, c->n == 1 ? "" : "s",
            c->truncated ? " (its record was cut at its cap: later calls ran live)" : "", call);
    else if (!k->nvalues)
        add(&t, "--set: host call %u (%s) recorded no values (only clock readings, random "
            "bytes and registered functions' results are recorded); ", call, k->name);
    else if (idx >= k->nvalues)
        add(&t, "--set: host call %u (%s) recorded %u value%s: there is no value %u to set; ",
            call, k->name, k->nvalues, k->nvalues == 1 ? "" : "s", idx + 1);
    else if (c->values[k->first_value + idx].is_bytes)
        add(&t, "--set: value %u.%u of host call %u (%s) is %zu bytes, not a number: only "
            "numbers can be set; ", call, idx + 1, call, k->name,
            c->values[k->first_value + idx].len);
    else
        return 0;
    add_calls_with_values(&t, c, job_id, o->cmd_args);
    return eng_err(err, ASPEN_ENGINE_EINVAL, "%s", msg);
}

/* ---- replay ---------------------------------------------------------------------------------------- */

/* The attempt's stored log lines against the replayed ones: the first that differs (from 1), or
 * 0. A cold VM's start-up lines come first in the store and are not the job's: stored lines
 * beyond the replayed count are skipped from the front. A replay that printed more lines than
 * are stored differs at the first missing one when missing ones count (no record: the stored
 * lines are the verdict) and the job's cap dropped none. */
static size_t first_line_diff(const aspen_store_log *logs, size_t nlogs, int attempt,
                              const struct lines *got, bool missing_count, size_t *compared,
                              const char **stored_line)
{
    size_t mine = 0;
    for (size_t i = 0; i < nlogs; i++)
        mine += !logs[i].marker && logs[i].attempt == attempt;
    size_t skip = mine > got->n ? mine - got->n : 0, k = 0;
    *compared = mine - skip;
    *stored_line = NULL;
    for (size_t i = 0; i < nlogs; i++) {
        if (logs[i].marker || logs[i].attempt != attempt)
            continue;
        if (skip) {
            skip--;
            continue;
        }
        if (k < got->n && strcmp(logs[i].line, got->v[k]) != 0) {
            *stored_line = logs[i].line;
            return k + 1;
        }
        k++;
    }
    return mine < got->n && missing_count ? mine + 1 : 0;
}

/* How the replayed run ended against the recorded one, each part into the report. */
static void compare_ends(aspen_engine_replay_report *rep, const struct loaded *L,
                         const aspen_vm_result *res, const struct lines *got,
                         const aspen_store_log *logs, size_t nlogs)
{
    const struct rec *r = &L->r;
    snprintf(rep->recorded_outcome, sizeof rep->recorded_outcome, "%s",
             L->recorded ? aspen_vm_outcome_name((aspen_vm_outcome)r->outcome)
                         : outcome_of_store(L->a->outcome));
    rep->outcome_differs = (uint8_t)res->outcome != r->outcome;

    uint8_t out_sha[32];
    sha_of(res->output ? (const void *)res->output : "", res->output_len, out_sha);
    rep->output_len = res->output_len;
    rep->recorded_output_len = r->output_len;
    sha_to_hex(out_sha, rep->output_sha256);
    sha_to_hex(r->output, rep->recorded_output_sha256);
    rep->output_differs = res->output_len != r->output_len || memcmp(out_sha, r->output, 32) != 0;
    rep->output_head_len = res->output_len < sizeof rep->output_head - 1
                               ? res->output_len
                               : sizeof rep->output_head - 1;
    if (rep->output_head_len)
        memcpy(rep->output_head, res->output, rep->output_head_len);
    rep->output_diff_at = -1;
    /* The recorded bytes are known when the job's stored result is them (its hash is the
     * record's): the job's last attempt, or the row standing for a deterministic success. */
    const aspen_store_job *job = &L->job;
    uint8_t row_sha[32];
    sha_of(job->result ? job->result : "", job->result_size, row_sha);
    if (rep->output_differs && job->result_size == r->output_len &&
        memcmp(row_sha, r->output, 32) == 0) {
        const uint8_t *x = (const uint8_t *)job->result, *y = res->output;
        size_t m = job->result_size < res->output_len ? job->result_size : res->output_len, at = 0;
        while (at < m && x[at] == y[at])
            at++;
        rep->output_diff_at = (int64_t)at;
    }

    size_t elen = strnlen(res->message, sizeof res->message);
    if (elen > 1024)
        elen = 1024;
    snprintf(rep->error, sizeof rep->error, "%.*s", (int)elen, res->message);
    size_t rlen = L->recorded ? r->error_len : 0; /* a success the row stands for had none */
    if (rlen)
        memcpy(rep->recorded_error, r->error, rlen);
    rep->recorded_error[rlen] = '\0';
    rep->error_differs = elen != rlen || memcmp(res->message, rep->recorded_error, rlen) != 0;

    /* The number of log lines is the record's; without one, the stored lines are compared. Their
     * first differing line is shown either way, where they are stored. */
    rep->log_lines = res->stats.log_lines;
    size_t compared = 0;
    const char *stored = NULL;
    size_t at = first_line_diff(logs, nlogs, L->attempt, got,
                                !L->recorded && job->log_dropped == 0, &compared, &stored);
    rep->recorded_log_lines = L->recorded ? r->log_lines : (uint32_t)compared;
    rep->log_lines_differ = L->recorded ? res->stats.log_lines != r->log_lines : at != 0;
    rep->log_diff_at = (uint32_t)at;
    if (at) {
        snprintf(rep->log_recorded, sizeof rep->log_recorded, "%s", stored ? stored : "");
        snprintf(rep->log_replayed, sizeof rep->log_replayed, "%s",
                 at <= got->n ? got->v[at - 1] : "");
    }
}

/* The parts as lines under the verdict: what the replayed run did where it differs. */
static void write_details(aspen_engine_replay_report *rep, bool recorded)
{
    struct text t = {rep->details, sizeof rep->details, 0};
    if (rep->outcome_differs)
        add(&t, "  outcome: differs: recorded %s, replayed %s\n", rep->recorded_outcome,
            rep->outcome);
    else
        add(&t, "  outcome: %s, as recorded\n", rep->outcome);
    if (rep->output_differs) {
        add(&t, "  output: differs: recorded %llu bytes (sha256 %.12s...), replayed %llu bytes "
            "(sha256 %.12s...)", (unsigned long long)rep->recorded_output_len,
            rep->recorded_output_sha256, (unsigned long long)rep->output_len,
            rep->output_sha256);
        if (rep->output_diff_at >= 0)
            add(&t, ", first differing at byte %lld", (long long)rep->output_diff_at);
        add(&t, "; replayed ");
        /* one byte more than shown, when there are more, ends it in "..." */
        add_quoted(&t, rep->output_head,
                   rep->output_head_len + (rep->output_len > rep->output_head_len),
                   rep->output_head_len);
        add(&t, "\n");
    } else {
        add(&t, "  output: %llu bytes, as recorded\n", (unsigned long long)rep->output_len);
    }
    if (rep->error_differs) {
        add(&t, "  error: differs: recorded ");
        if (rep->recorded_error[0])
            add_quoted(&t, rep->recorded_error, strlen(rep->recorded_error), 300);
        else
            add(&t, "none");
        add(&t, ", replayed ");
        if (rep->error[0])
            add_quoted(&t, rep->error, strlen(rep->error), 300);
        else
            add(&t, "none");
        add(&t, "\n");
    } else if (rep->error[0]) {
        add(&t, "  error: ");
        add_quoted(&t, rep->error, strlen(rep->error), 300);
        add(&t, ", as recorded\n");
    } else {
        add(&t, "  error: none, as recorded\n");
    }
    if (rep->log_lines_differ && recorded)
        add(&t, "  log lines: differ: recorded %u, replayed %u", rep->recorded_log_lines,
            rep->log_lines);
    else if (rep->log_lines_differ)
        add(&t, "  log lines: %u, differ from the stored ones", rep->log_lines);
    else
        add(&t, "  log lines: %u (as many as recorded)", rep->log_lines);
    if (rep->log_diff_at) {
        add(&t, "; line %u differs: recorded ", rep->log_diff_at);
        if (rep->log_recorded[0] || rep->log_diff_at <= rep->recorded_log_lines)
            add_quoted(&t, rep->log_recorded, strlen(rep->log_recorded), 200);
        else
            add(&t, "(not stored)");
        add(&t, ", replayed ");
        add_quoted(&t, rep->log_replayed, strlen(rep->log_replayed), 200);
    }
    add(&t, "\n");
}

int aspen_engine_replay(aspen_engine *eng, int64_t job_id, const aspen_engine_replay_opts *opts,
                        aspen_engine_replay_report *report, aspen_engine_error *err)
{
    static const aspen_engine_replay_opts none;
    if (!opts)
        opts = &none;
    memset(report, 0, sizeof *report);
    struct loaded L;
    aspen_store_error se = {0};
    aspen_store_log *logs = NULL;
    size_t nlogs = 0;
    aspen_store_binary bin = {0};
    aspen_vm_image *img = NULL;
    aspen_vm *vm = NULL;
    aspen_vm_tape *tape = NULL;
    struct lines got = {0};
    aspen_vm_result res = {0};
    struct job_args args = {0};
    aspen_engine_replay_call_list own = {0};
    aspen_engine_replay_call_list *calls = opts->calls ? opts->calls : &own;
    memset(calls, 0, sizeof *calls);
    int rc;

    int code = load(eng, job_id, opts->attempt, &L, err);
    if (code)
        goto out;
    aspen_store_job *job = &L.job;
    int attempt = L.attempt;
    struct rec *r = &L.r;
    report->attempt = attempt;
    report->recorded = L.recorded;
    calls->attempt = attempt;
    calls->recorded = L.recorded;
    calls->truncated = L.recorded && (r->flags & 1);
    const char *in = job->payload ? job->payload : "";
    uint8_t in_sha[32];
    sha_of(in, strlen(in), in_sha);
    if (memcmp(in_sha, r->input, 32) != 0) {
        code = eng_err(err, ASPEN_ENGINE_EINVAL,
                       "job %lld's payload is not the input attempt %d ran with (its hash "
                       "differs from the recorded one): it cannot be replayed",
                       (long long)job_id, attempt);
        goto out;
    }

    /* The image, by the recorded hash. */
    char sha[65];
    sha_to_hex(r->sha, sha);
    pthread_mutex_lock(&eng->api_mu);
    rc = aspen_store_get_binary(eng->api_store, sha, &bin, &se);
    pthread_mutex_unlock(&eng->api_mu);
    if (rc) {
        code = eng_store_err(err, &se, "reading the guest binary the attempt ran");
        goto out;
    }
    aspen_vm_error ve = {0};
    if (aspen_vm_image_load_mem(bin.bytes, bin.size, job->binary_name ? job->binary_name : "guest",
                                &img, &ve) != 0) {
        code = eng_err(err, ASPEN_ENGINE_EBINARY, "%s", ve.msg);
        goto out;
    }
    if (job_args_get(job->tags, &args) != 0) {
        code = eng_err(err, ASPEN_ENGINE_ENOMEM, "out of memory reading the job's arguments");
        goto out;
    }
    if (L.recorded) {
        if (aspen_vm_tape_open(r->tape, r->tape_len, &tape, &ve) != 0) {
            code = eng_err(err, ASPEN_ENGINE_EINVAL, "job %lld attempt %d: %s", (long long)job_id,
                           attempt, ve.msg);
            goto out;
        }
        aspen_vm_tape_set_truncated(tape, r->flags & 1);
        if ((opts->calls || opts->set) && (code = list_tape(tape, eng->host, calls, err)) != 0)
            goto out;
    } else {
        tape = aspen_vm_tape_new(0); /* nothing to feed: records, to count the calls */
    }
    if (!tape) {
        code = eng_err(err, ASPEN_ENGINE_ENOMEM, "out of memory for the replay");
        goto out;
    }
    if (opts->set) {
        if (!L.recorded) {
            code = eng_err(err, ASPEN_ENGINE_EINVAL,
                           "attempt %d of job %lld recorded no values (its guest asked the host "
                           "for nothing it makes up): there is none to set",
                           attempt, (long long)job_id);
            goto out;
        }
        if ((code = check_set(calls, opts, job_id, err)) != 0)
            goto out;
        if (aspen_vm_tape_set_value(tape, opts->set_call, opts->set_index, opts->set_value,
                                    &ve) != 0) {
            code = eng_err(err, ASPEN_ENGINE_EINVAL, "--set: %s", ve.msg);
            goto out;
        }
    }
    aspen_vm_config cfg;
    aspen_vm_config_default(&cfg);
    cfg.memory_bytes = (size_t)r->memory;
    cfg.warm = true;
    cfg.argv = (const char *const *)args.argv;
    if (aspen_vm_create(img, &cfg, eng->host, &vm, &ve) != 0) {
        code = eng_err(err, ve.code == ASPEN_VM_EKVM ? ASPEN_ENGINE_EKVM : ASPEN_ENGINE_EBINARY,
                       "creating the replay's micro-VM: %s", ve.msg);
        goto out;
    }
    int64_t t = job->timeout_ms > 0 ? job->timeout_ms : 30000;
    aspen_vm_run_opts ro = {.input = in, .input_len = strlen(in),
                            .timeout_ms = t > UINT32_MAX ? UINT32_MAX : (uint32_t)t,
                            .on_log = collect_line, .log_user = &got, .tape = tape};
    if (aspen_vm_run(vm, &ro, &res, &ve) != 0) {
        code = eng_err(err, ASPEN_ENGINE_EKVM, "the replay's micro-VM failed: %s", ve.msg);
        goto out;
    }
    if (!L.recorded && opts->calls && (code = list_tape(tape, eng->host, calls, err)) != 0)
        goto out;
    snprintf(report->outcome, sizeof report->outcome, "%s", aspen_vm_outcome_name(res.outcome));
    aspen_vm_tape_info ti;
    aspen_vm_tape_get_info(tape, &ti);
    report->calls = ti.replayed ? ti.replayed : ti.calls;
    report->values = L.recorded ? ti.values : 0;
    bool host_call_differs = L.recorded && ti.diverged;

    /* The stored lines: the verdict of an attempt without a record; with one, they show which
     * line a diverging run changed. */
    pthread_mutex_lock(&eng->api_mu);
    rc = aspen_store_logs(eng->api_store, job_id, 0, 0, &logs, &nlogs, &se);
    pthread_mutex_unlock(&eng->api_mu);
    if (rc) {
        code = eng_store_err(err, &se, "reading the job's log lines");
        goto out;
    }
    compare_ends(report, &L, &res, &got, logs, nlogs);

    const char *timeout_note =
        r->outcome == ASPEN_VM_TIMEOUT
            ? " (the recorded attempt timed out: where a timeout stops a guest is not "
              "deterministic)"
            : "";
    /* The verdict names the first difference; the details below it give every part. */
    if (host_call_differs) {
        report->diverged_at = ti.diverged_at;
        summary(report, "diverged at host call %u: %s%s", ti.diverged_at, ti.why, timeout_note);
    } else if (report->outcome_differs) {
        summary(report, "diverged: the recorded attempt ended %s, the replay %s (%s)%s",
                report->recorded_outcome, report->outcome,
                res.message[0] ? res.message : "no message", timeout_note);
    } else if (report->output_differs) {
        if (report->output_diff_at >= 0)
            summary(report, "diverged: the output differs from the recorded one at byte %lld "
                    "(recorded %llu bytes, replayed %zu)", (long long)report->output_diff_at,
                    (unsigned long long)r->output_len, res.output_len);
        else
            summary(report, "diverged: the output differs from the recorded one (recorded %llu "
                    "bytes, replayed %zu, their hashes differ)",
                    (unsigned long long)r->output_len, res.output_len);
    } else if (L.recorded && report->error_differs) {
        summary(report, "diverged: the error differs: recorded \"%.*s\", replayed \"%s\"",
                (int)r->error_len, r->error, report->error);
    } else if (report->log_lines_differ && L.recorded) {
        summary(report, "diverged: the replay printed %u log lines, the recorded attempt %u",
                report->log_lines, report->recorded_log_lines);
    } else if (report->log_lines_differ) {
        summary(report, "diverged: log line %u differs from the stored one (replayed \"%s\")",
                report->log_diff_at, report->log_replayed);
    } else {
        report->identical = true;
        summary(report,
                "identical: outcome %s, output %zu bytes, %zu log line%s, %u host call%s "
                "(%u recorded value%s fed back)%s%s",
                aspen_vm_outcome_name(res.outcome), res.output_len, got.total,
                got.total == 1 ? "" : "s", report->calls, report->calls == 1 ? "" : "s",
                report->values, report->values == 1 ? "" : "s",
                (r->flags & 1) ? "; the record was cut at its cap: later calls ran live" : "",
                timeout_note);
    }
    if (!report->identical)
        write_details(report, L.recorded);
out:
    lines_free(&got);
    aspen_vm_result_free(&res);
    aspen_vm_tape_free(tape);
    if (vm)
        aspen_vm_destroy(vm);
    if (img)
        aspen_vm_image_release(img);
    aspen_store_binary_clear(&bin);
    job_args_free(&args);
    aspen_store_logs_free(logs, nlogs);
    aspen_engine_replay_call_list_free(&own); /* one asked for (opts->calls) is the caller's */
    unload(&L);
    return code;
}
