/* queues.c — named queues, the part every backend shares: queue names and rates (checked and
 * parsed once, so every front end refuses the same input with the same words), the public queue
 * functions (checked here, then the ops table), the schema of version 8 (the same DDL runs on
 * SQLite and PostgreSQL), and the one rule that turns a queue's settings and figures into how many
 * of its jobs a claim may reserve now (store_queue_plan_decide). The backends only read the
 * figures inside their claim transaction and write the reservations.
 *
 * Why the rule counts what it counts: a concurrency limit must hold across every engine on the
 * database, so it counts the queue's running jobs AND its reservations (a reserved job is about to
 * run; counting only running ones would let N engines each reserve `limit` jobs). A rate limit
 * must hold for starts in any window of its period, while reservations start a little after they
 * are made: a job holds its share of the rate from its reservation until one period after its
 * start (the claims row, then a queue_starts row), so at any moment at most N shares are held and
 * no window of the period sees more than N starts. */
#include "store_backend.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- schema version 8 -------------------------------------------------------------------------- */

/* Types that read the same in SQLite and PostgreSQL. jobs_queue_named holds only queued jobs of
 * named queues: a job of the default queue costs it nothing, so the default queue's claim path
 * writes exactly what it wrote before queues existed. */
const char *const store_queues_v8_sql[] = {
    "ALTER TABLE jobs ADD COLUMN queue TEXT NOT NULL DEFAULT 'default'",
    "CREATE TABLE queues ("
    "  name TEXT PRIMARY KEY,"
    "  concurrency BIGINT CONSTRAINT queue_limit_positive CHECK (concurrency > 0),"
    "  rate_n BIGINT CONSTRAINT queue_rate_positive CHECK (rate_n > 0),"
    "  rate_period_ms BIGINT CONSTRAINT queue_period_positive CHECK (rate_period_ms > 0),"
    "  paused INTEGER NOT NULL DEFAULT 0,"
    "  created_at BIGINT NOT NULL)",
    "CREATE TABLE queue_starts (queue TEXT NOT NULL, at BIGINT NOT NULL)",
    "CREATE INDEX queue_starts_queue ON queue_starts (queue, at)",
    ("CREATE INDEX jobs_queue_named ON jobs (queue, priority DESC, run_at, id)"
     " WHERE state = 'queued' AND queue <> 'default'"),
};
const size_t store_queues_v8_nsql = sizeof store_queues_v8_sql / sizeof store_queues_v8_sql[0];

/* ---- names and rates ---------------------------------------------------------------------------- */

static bool name_char(char c, bool first)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return !first && (c == '_' || c == '-' || c == '.');
}

int aspen_store_queue_name_check(const char *name, aspen_store_error *err)
{
    if (!name || !*name)
        return store_err(err, ASPEN_STORE_EINVAL,
                         "a queue name is empty: give one (letters, digits, '_', '-', '.'), or "
                         "leave the queue out for \"default\"");
    size_t len = strlen(name);
    bool ok = len <= ASPEN_STORE_QUEUE_NAME_MAX;
    for (size_t i = 0; ok && i < len; i++)
        ok = name_char(name[i], i == 0);
    if (!ok) {
        char shown[80];
        return store_err(err, ASPEN_STORE_EINVAL,
                         "queue name \"%s\" is not valid: use 1 to %d letters, digits, '_', '-' "
                         "or '.', starting with a letter or digit",
                         store_shown(name, len, 64, shown, sizeof shown),
                         ASPEN_STORE_QUEUE_NAME_MAX);
    }
    return 0;
}

const char *store_queue_of(const aspen_store_job_spec *spec)
{
    return spec->queue && *spec->queue ? spec->queue : ASPEN_STORE_QUEUE_DEFAULT;
}

static bool parse_count(const char *p, const char *end, int64_t *out)
{
    if (p == end || *p < '0' || *p > '9')
        return false;
    int64_t v = 0;
    for (; p < end; p++) {
        if (*p < '0' || *p > '9' || v > (INT64_MAX - 9) / 10)
            return false;
        v = v * 10 + (*p - '0');
    }
    *out = v;
    return true;
}

/* The most jobs a rate may allow a period: far past any engine's speed, and short enough to show. */
#define RATE_COUNT_MAX 1000000000LL

int aspen_store_rate_parse(const char *text, int64_t *n, int64_t *period_ms, aspen_store_error *err)
{
    static const char how[] = "write N/PERIOD: a positive count of jobs, then the period as a unit "
                              "(s, m, h, d) or a duration as --timeout takes it (10s, 250ms, "
                              "1h30m), at most 7d: 100/s, 5/10s, 1000/m, 50/1h30m, 2000/d";
    if (!text || !*text)
        return store_err(err, ASPEN_STORE_EINVAL, "a rate is empty: %s", how);
    char shown[48];
    store_shown(text, strlen(text), 40, shown, sizeof shown);
    const char *slash = strchr(text, '/');
    int64_t count = 0;
    /* A count of digits only that does not fit, or past RATE_COUNT_MAX, is too large, not "not
     * a positive number" (trial 22: 9223372036854775807/s said that, 10^17/s was taken and
     * pushed the Queues pane's row past 80 columns). */
    bool digits = slash && slash > text && strspn(text, "0123456789") == (size_t)(slash - text);
    bool fits = slash && parse_count(text, slash, &count);
    if (digits && (!fits || count > RATE_COUNT_MAX))
        return store_err(err, ASPEN_STORE_EINVAL, "rate \"%s\": the count before '/' is too "
                         "large: at most 1,000,000,000 jobs a period: %s", shown, how);
    if (!fits || count <= 0)
        return store_err(err, ASPEN_STORE_EINVAL, "rate \"%s\": the count before '/' is not a "
                         "positive number: %s", shown, how);
    const char *u = slash + 1;
    /* The period is the one duration grammar of the CLI (aspen_store_duration_parse: 500ms,
     * 90s, 10m, 12h, 7d, 1h30m), not a copy of its own that lacked d and 1h30m (trial 10); a
     * unit alone (s, m, h, d) means one of it. A bare number is refused: the duration parser
     * reads it as seconds, --timeout as milliseconds, so 5/10 would mean different things. */
    char period[40];
    int64_t ms = 0;
    size_t ulen = strlen(u);
    bool bare = ulen > 0 && strspn(u, "0123456789") == ulen;
    bool ok = !bare && ulen > 0 && ulen + 2 <= sizeof period;
    if (ok) {
        bool unit_only = strspn(u, "abcdefghijklmnopqrstuvwxyz") == ulen;
        snprintf(period, sizeof period, "%s%s", unit_only ? "1" : "", u);
        ok = aspen_store_duration_parse(period, &ms, NULL) == 0;
    }
    if (!ok) {
        char period_shown[sizeof shown];
        store_shown(u, strlen(u), 40, period_shown, sizeof period_shown);
        return store_err(err, ASPEN_STORE_EINVAL, "rate \"%s\": the period \"%s\" is not %s: %s",
                         shown, period_shown, bare ? "a duration (it has no unit)" : "a duration",
                         how);
    }
    if (ms <= 0 || ms > 7 * 24 * 3600000LL)
        return store_err(err, ASPEN_STORE_EINVAL, "rate \"%s\": the period must be more than 0 "
                         "and at most 7 days: %s", shown, how);
    *n = count;
    *period_ms = ms;
    return 0;
}

void aspen_store_rate_format(int64_t n, int64_t period_ms, char *buf, size_t size)
{
    static const struct { int64_t ms; const char *unit; } units[] = {
        {86400000, "d"}, {3600000, "h"}, {60000, "m"}, {1000, "s"}, {1, "ms"}};
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (period_ms % units[i].ms)
            continue;
        int64_t k = period_ms / units[i].ms;
        if (k == 1)
            snprintf(buf, size, "%lld/%s", (long long)n, units[i].unit);
        else
            snprintf(buf, size, "%lld/%lld%s", (long long)n, (long long)k, units[i].unit);
        return;
    }
    snprintf(buf, size, "%lld/%lldms", (long long)n, (long long)period_ms);
}

/* ---- the claim's rule ---------------------------------------------------------------------------- */

static bool served(const aspen_store *s, const char *name)
{
    if (!s->n_serve)
        return true;
    for (size_t i = 0; i < s->n_serve; i++)
        if (!strcmp(s->serve[i], name))
            return true;
    return false;
}

void store_queue_plan_decide(const aspen_store *s, struct store_queue_plan *plan)
{
    for (size_t i = 0; i < plan->n; i++) {
        struct store_queue_row *q = &plan->q[i];
        int64_t allow = INT64_MAX;
        if (q->paused || !served(s, q->name))
            allow = 0;
        if (q->limit > 0) {
            int64_t left = q->limit - q->running - q->reserved;
            if (left < allow)
                allow = left;
        }
        if (q->rate_n > 0) {
            int64_t left = q->rate_n - q->reserved - q->recent_starts;
            if (left < allow)
                allow = left;
        }
        q->allow = allow < 0 ? 0 : allow;
    }
}

void store_queue_plan_hint(aspen_store *s, const struct store_queue_plan *plan)
{
    s->claim_held = false;
    s->claim_retry_in_ms = 0;
    for (size_t i = 0; i < plan->n; i++) {
        const struct store_queue_row *q = &plan->q[i];
        if (q->limit > 0 || q->rate_n > 0)
            s->claim_held = true;
        if (q->rate_n > 0 && q->allow == 0 && !q->paused) {
            /* about one share's worth of the period; never a busy loop */
            int64_t every = q->rate_period_ms / q->rate_n;
            if (every < 5)
                every = 5;
            if (!s->claim_retry_in_ms || every < s->claim_retry_in_ms)
                s->claim_retry_in_ms = every;
        }
    }
}

void aspen_store_claim_held(const aspen_store *s, bool *held, int64_t *retry_in_ms)
{
    if (held)
        *held = s && s->claim_held;
    if (retry_in_ms)
        *retry_in_ms = s ? s->claim_retry_in_ms : 0;
}

struct store_queue_row *store_queue_plan_row(struct store_queue_plan *plan, const char *name)
{
    for (size_t i = 0; i < plan->n; i++)
        if (!strcmp(plan->q[i].name, name))
            return &plan->q[i];
    struct store_queue_row *grown = store_grow(plan->q, &plan->cap, plan->n, sizeof *plan->q);
    if (!grown)
        return NULL;
    plan->q = grown;
    struct store_queue_row *q = &plan->q[plan->n++];
    memset(q, 0, sizeof *q);
    snprintf(q->name, sizeof q->name, "%s", name);
    return q;
}

void store_queue_plan_free(struct store_queue_plan *plan)
{
    free(plan->q);
    memset(plan, 0, sizeof *plan);
}

int store_claim_order(const void *a, const void *b)
{
    const aspen_store_job *x = a, *y = b;
    if (x->priority != y->priority)
        return x->priority > y->priority ? -1 : 1;
    if (x->run_at_ms != y->run_at_ms)
        return x->run_at_ms < y->run_at_ms ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

/* ---- public functions ----------------------------------------------------------------------------- */

int aspen_store_queue_set(aspen_store *s, const char *name, unsigned what, int64_t limit,
                          int64_t rate_n, int64_t rate_period_ms, int64_t now_ms,
                          aspen_store_error *err)
{
    if (!s)
        return store_err(err, ASPEN_STORE_EINVAL, "aspen_store_queue_set: no store handle (NULL)");
    int code = aspen_store_queue_name_check(name, err);
    if (code)
        return code;
    if (what & ~(unsigned)(ASPEN_STORE_QUEUE_SET_LIMIT | ASPEN_STORE_QUEUE_SET_RATE))
        return store_err(err, ASPEN_STORE_EINVAL, "aspen_store_queue_set: unknown settings 0x%x",
                         what);
    if ((what & ASPEN_STORE_QUEUE_SET_LIMIT) && limit < 0)
        return store_err(err, ASPEN_STORE_EINVAL, "queue %s: a concurrency limit must be a "
                         "positive number (%lld given; remove it with --no-limit)", name,
                         (long long)limit);
    if ((what & ASPEN_STORE_QUEUE_SET_RATE) && (rate_n < 0 || (rate_n > 0 && rate_period_ms <= 0)))
        return store_err(err, ASPEN_STORE_EINVAL, "queue %s: a rate limit needs a positive count "
                         "and a positive period (%lld per %lld ms given)", name,
                         (long long)rate_n, (long long)rate_period_ms);
    return s->ops->queue_set(s, name, what, limit, rate_n, rate_period_ms, false, now_ms, err);
}

int aspen_store_queues(aspen_store *s, int64_t now_ms, aspen_store_queue_info **out, size_t *n,
                       aspen_store_error *err)
{
    if (!out || !n)
        return store_err(err, ASPEN_STORE_EINVAL, "aspen_store_queues: out or n is NULL");
    *out = NULL;
    *n = 0;
    if (!s)
        return store_err(err, ASPEN_STORE_EINVAL, "aspen_store_queues: no store handle (NULL)");
    return s->ops->queues(s, now_ms, out, n, err);
}

void aspen_store_queues_free(aspen_store_queue_info *q) { free(q); }

int aspen_store_queue_exists(aspen_store *s, const char *name, aspen_store_error *err)
{
    int code = aspen_store_queue_name_check(name, err);
    if (code)
        return code;
    aspen_store_queue_info *qs = NULL;
    size_t n = 0;
    code = aspen_store_queues(s, aspen_store_now_ms(), &qs, &n, err);
    if (code)
        return code;
    const char **names = calloc(n ? n : 1, sizeof *names);
    if (!names) {
        aspen_store_queues_free(qs);
        return store_err(err, ASPEN_STORE_ENOMEM, "out of memory listing queues");
    }
    bool found = false;
    for (size_t i = 0; i < n; i++) {
        names[i] = qs[i].name;
        found = found || !strcmp(qs[i].name, name);
    }
    if (!found) {
        const char *near = aspen_store_nearest(name, strlen(name), names, n);
        if (near)
            code = store_err(err, ASPEN_STORE_ENOTFOUND, "no queue named %s (did you mean %s?): "
                             "aspen queues%s lists them, aspen queue set %s%s declares it",
                             name, near, store_cmd(s), name, store_cmd(s));
        else
            code = store_err(err, ASPEN_STORE_ENOTFOUND,
                             "no queue named %s: aspen queues%s lists them, aspen queue set %s%s "
                             "declares it",
                             name, store_cmd(s), name, store_cmd(s));
    }
    free(names);
    aspen_store_queues_free(qs);
    return code;
}

int aspen_store_queue_pause(aspen_store *s, const char *name, bool paused, int64_t now_ms,
                            aspen_store_error *err)
{
    if (!s)
        return store_err(err, ASPEN_STORE_EINVAL, "aspen_store_queue_pause: no store handle (NULL)");
    int code = aspen_store_queue_exists(s, name, err);
    if (code)
        return code;
    return s->ops->queue_set(s, name, STORE_QUEUE_SET_PAUSE, 0, 0, 0, paused, now_ms, err);
}

int aspen_store_serve_queues(aspen_store *s, const char *const *names, size_t n,
                             aspen_store_error *err)
{
    if (!s)
        return store_err(err, ASPEN_STORE_EINVAL, "aspen_store_serve_queues: no store handle (NULL)");
    if (n > STORE_SERVE_MAX)
        return store_err(err, ASPEN_STORE_EINVAL, "%zu queues to serve: at most %d", n,
                         STORE_SERVE_MAX);
    if (n && !names)
        return store_err(err, ASPEN_STORE_EINVAL, "aspen_store_serve_queues: names is NULL");
    for (size_t i = 0; i < n; i++) {
        int code = aspen_store_queue_name_check(names[i], err);
        if (code)
            return code;
    }
    for (size_t i = 0; i < n; i++)
        snprintf(s->serve[i], sizeof s->serve[i], "%s", names[i]);
    s->n_serve = n;
    return 0;
}

/* ---- removing a queue --------------------------------------------------------------------------- */

void store_queue_rm_add_name(char *names, size_t cap, const char *name)
{
    size_t used = strlen(names);
    if (used < cap)
        snprintf(names + used, cap - used, "%s%s", used ? ", " : "", name ? name : "?");
}

/* One message for what keeps a queue: its unfinished jobs (which cannot move), its schedules
 * (whose next run would make it again), or both, each with what to do. At most
 * STORE_QUEUE_RM_NAMES schedules are named, so it fits an error's 512 bytes but for names near
 * their 64-byte limits, where the tail of the advice is cut. Each command it names carries cmd
 * (the handle's --db); when that would not fit, the commands go bare and one sentence at the end
 * gives cmd once, so that a command is never cut in the middle of its database's name. */
static int held_err(const char *name, const aspen_store_queue_held *h, const char *schedules,
                    const char *cmd, aspen_store_error *err);

int store_queue_held_err(const char *name, const aspen_store_queue_held *h, const char *schedules,
                         const char *cmd, aspen_store_error *err)
{
    aspen_store_error full = {0};
    int code = held_err(name, h, schedules, cmd, &full);
    if (!*cmd || strlen(full.msg) + 1 < sizeof full.msg) {
        if (err)
            *err = full;
        return code;
    }
    code = held_err(name, h, schedules, "", &full);
    if (err) {
        *err = full;
        size_t used = strlen(err->msg);
        int n = snprintf(err->msg + used, sizeof err->msg - used, " (each command with%s)", cmd);
        if (n < 0 || (size_t)n >= sizeof err->msg - used)
            err->msg[used] = '\0'; /* not even that fits: the bare commands alone */
    }
    return code;
}

static int held_err(const char *name, const aspen_store_queue_held *h, const char *schedules,
                    const char *cmd, aspen_store_error *err)
{
    char jobs[160] = "";
    size_t used = 0;
    const struct { int64_t n; const char *state; } parts[] = {
        {h->queued, "queued"}, {h->scheduled, "scheduled"}, {h->running, "running"}};
    size_t k = 0, total = 0;
    for (size_t i = 0; i < 3; i++)
        total += parts[i].n > 0;
    for (size_t i = 0; i < 3 && used < sizeof jobs; i++) {
        if (parts[i].n <= 0)
            continue;
        k++;
        used += (size_t)snprintf(jobs + used, sizeof jobs - used, "%s%lld %s",
                                 k == 1 ? "" : k == total ? " and " : ", ", (long long)parts[i].n,
                                 parts[i].state);
    }
    int64_t all = h->queued + h->scheduled + h->running;
    const char *names = schedules && *schedules ? schedules : "?";
    int64_t more = h->schedules - STORE_QUEUE_RM_NAMES;
    char sched[480] = "";
    if (h->schedules == 1)
        snprintf(sched, sizeof sched, "schedule %s", names);
    else if (more > 0)
        snprintf(sched, sizeof sched, "%lld schedules (%s and %lld more: aspen cron list%s)",
                 (long long)h->schedules, names, (long long)more, cmd);
    else if (h->schedules > 1)
        snprintf(sched, sizeof sched, "%lld schedules (%s)", (long long)h->schedules, names);
    /* the command for the schedules names the one there is, so that it can be pasted */
    const char *one = h->schedules == 1 ? names : "NAME";
    char what_jobs[600] = "", what_sched[600] = "";
    if (all)
        snprintf(what_jobs, sizeof what_jobs,
                 "Jobs cannot move to another queue: let them run (a worker serving %s), or "
                 "cancel them all: aspen cancel --filter 'queue:%s state:queued,scheduled,running'%s "
                 "(aspen jobs with that --filter lists them)",
                 name, name, cmd);
    if (h->schedules > 0)
        snprintf(what_sched, sizeof what_sched,
                 "%s next run would make it again: aspen cron rm %s%s, or give %s another queue "
                 "(aspen cron add %s ... --queue OTHER --replace%s)",
                 h->schedules == 1 ? "Its" : "Their", one, cmd, h->schedules == 1 ? "it" : "each",
                 one, cmd);
    if (all && h->schedules > 0)
        return store_err(err, ASPEN_STORE_ESTATE,
                         "queue %s still holds %s job%s and is the queue of %s: nothing removed. "
                         "%s. %s. Then remove it again",
                         name, jobs, all == 1 ? "" : "s", sched, what_jobs, what_sched);
    if (all)
        return store_err(err, ASPEN_STORE_ESTATE,
                         "queue %s still holds %s job%s: nothing removed. %s, then remove it again",
                         name, jobs, all == 1 ? "" : "s", what_jobs);
    return store_err(err, ASPEN_STORE_ESTATE,
                     "queue %s is the queue of %s: nothing removed. %s, then remove it again",
                     name, sched, what_sched);
}

int aspen_store_queue_remove(aspen_store *s, const char *name, aspen_store_queue_held *held,
                             aspen_store_error *err)
{
    if (held)
        *held = (aspen_store_queue_held){0};
    if (!s)
        return store_err(err, ASPEN_STORE_EINVAL, "aspen_store_queue_remove: no store handle (NULL)");
    int code = aspen_store_queue_name_check(name, err);
    if (code)
        return code;
    if (!strcmp(name, ASPEN_STORE_QUEUE_DEFAULT))
        return store_err(err, ASPEN_STORE_EINVAL,
                         "the default queue cannot be removed: every job without --queue goes to "
                         "it (its settings go with aspen queue set default --no-limit --no-rate%s, "
                         "aspen queue resume default%s)",
                         store_cmd(s), store_cmd(s));
    code = aspen_store_queue_exists(s, name, err);
    if (code)
        return code;
    aspen_store_queue_held h = {0};
    code = s->ops->queue_remove(s, name, &h, err);
    if (held)
        *held = h;
    return code;
}
