/* sort.c — the whole-store sort, written once for every backend: the sort keys' names, parsing
 * "COL[,desc]", the SQL expression of each key (the same text in the index that serves it and in
 * the queries, so the planner matches them), and the index definitions of schema version 9.
 *
 * Why keys are expressions and not only columns: the console sorts by what it shows. A state
 * sorts in the order of the state enum (queued first), not alphabetically; a job without a guest
 * name sorts as "" rather than as NULL (a NULL key cannot be compared for keyset paging); a
 * duration is finished - started, and -1 for a job with no finished run, like the console's -1.
 */
#include "store_backend.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

static const char *const sort_names[ASPEN_STORE_SORT_COUNT] = {
    [ASPEN_STORE_SORT_NONE] = "none",         [ASPEN_STORE_SORT_ID] = "id",
    [ASPEN_STORE_SORT_STATE] = "state",       [ASPEN_STORE_SORT_GUEST] = "guest",
    [ASPEN_STORE_SORT_PRIORITY] = "priority", [ASPEN_STORE_SORT_ATTEMPTS] = "attempts",
    [ASPEN_STORE_SORT_CREATED] = "created",   [ASPEN_STORE_SORT_DURATION] = "duration",
    [ASPEN_STORE_SORT_QUEUE] = "queue",
};

const char *aspen_store_sort_name(aspen_store_sort sort)
{
    return (unsigned)sort < ASPEN_STORE_SORT_COUNT ? sort_names[sort] : "?";
}

int aspen_store_sort_parse(const char *text, aspen_store_sort *sort, bool *desc,
                           aspen_store_error *err)
{
    if (!text || !sort || !desc)
        return store_err(err, ASPEN_STORE_EINVAL, "no sort column given");
    const char *comma = strchr(text, ',');
    size_t len = comma ? (size_t)(comma - text) : strlen(text);
    bool d = false;
    if (comma) {
        const char *dir = comma + 1;
        if (strcasecmp(dir, "desc") == 0)
            d = true;
        else if (strcasecmp(dir, "asc") != 0)
            return store_err(err, ASPEN_STORE_EINVAL,
                             "bad sort direction '%.40s': write COL,desc or COL,asc", dir);
    }
    for (int i = ASPEN_STORE_SORT_ID; i < ASPEN_STORE_SORT_COUNT; i++)
        if (strlen(sort_names[i]) == len && strncasecmp(text, sort_names[i], len) == 0) {
            *sort = (aspen_store_sort)i;
            *desc = d;
            return 0;
        }
    if (len == 3 && strncasecmp(text, "age", 3) == 0) { /* the console's name for created */
        *sort = ASPEN_STORE_SORT_CREATED;
        *desc = d;
        return 0;
    }
    const char *near = aspen_store_nearest(text, len, sort_names + 1, ASPEN_STORE_SORT_COUNT - 1);
    return store_err(err, ASPEN_STORE_EINVAL,
                     "cannot sort by '%.*s'%s%s%s: the columns are id, state, guest, priority, "
                     "attempts, created (or age), duration, queue, each optionally followed by "
                     ",desc",
                     (int)(len > 40 ? 40 : len), text, near ? " (did you mean " : "",
                     near ? near : "", near ? "?)" : "");
}

/* The key of each sort as SQL. PostgreSQL compares the guest's and the queue's text bytewise
 * (COLLATE "C") so that both backends order names alike, whatever the database's locale (a
 * locale's collation puts "q_1" before "q-1" and "Zed" after "alpha"). jobs.queue is never NULL
 * (version 8: NOT NULL DEFAULT 'default'), so the queue key is the column itself. */
const char *store_sort_key_sql(aspen_store_sort sort, bool pg)
{
    switch (sort) {
    case ASPEN_STORE_SORT_STATE:
        return "(CASE state WHEN 'queued' THEN 0 WHEN 'scheduled' THEN 1 WHEN 'running' THEN 2"
               " WHEN 'succeeded' THEN 3 WHEN 'failed' THEN 4 ELSE 5 END)";
    case ASPEN_STORE_SORT_GUEST:
        return pg ? "(COALESCE(binary_name, '') COLLATE \"C\")" : "(COALESCE(binary_name, ''))";
    case ASPEN_STORE_SORT_PRIORITY: return "priority";
    case ASPEN_STORE_SORT_ATTEMPTS: return "attempts";
    case ASPEN_STORE_SORT_CREATED: return "created_at";
    case ASPEN_STORE_SORT_DURATION: return STORE_DURATION_KEY;
    case ASPEN_STORE_SORT_QUEUE:
        return pg ? "(queue COLLATE \"C\")" : "queue";
    case ASPEN_STORE_SORT_ID:
    default: return "id";
    }
}

bool store_sort_key_is_text(aspen_store_sort sort)
{
    return sort == ASPEN_STORE_SORT_GUEST || sort == ASPEN_STORE_SORT_QUEUE;
}

bool store_sort_key_range(const aspen_store_filter *f, int *lo, int *hi)
{
    unsigned all = (1u << ASPEN_STORE_STATE_COUNT) - 1;
    if (f->sort != ASPEN_STORE_SORT_STATE || !(f->states & all) || (f->states & all) == all)
        return false;
    *lo = -1;
    for (int i = 0; i < ASPEN_STORE_STATE_COUNT; i++)
        if (f->states & (1u << i)) {
            if (*lo < 0)
                *lo = i;
            *hi = i;
        }
    return true;
}

/* Schema version 9: an index (key, id) for the sorts that have one, so a sorted page is an index
 * range whatever the table's size. SQLite rewrites an index entry whenever its row is written with
 * the column in the UPDATE's SET list, changed or not, and every job write sets state, attempts,
 * started_at and finished_at: an index on one of those costs each job write an index update.
 * Measured (docs/STORE.md "Sorting"): the guest, priority and created indexes cost the submit
 * only; duration's costs every job write and is kept, for the question the sort is for (which
 * job is the slowest); state, attempts and queue have none, and sort with a scan of the matches
 * (queue: a job's queue never changes after its submit, so its index would cost the submit only
 * as guest's does — but on PostgreSQL every index costs every completion's UPDATE, since a state
 * change is never a HOT update; a sort by queue is asked for rarely, a completion always). */
static const char *const index_names[ASPEN_STORE_SORT_COUNT] = {
    [ASPEN_STORE_SORT_GUEST] = "jobs_sort_guest",
    [ASPEN_STORE_SORT_PRIORITY] = "jobs_sort_priority",
    [ASPEN_STORE_SORT_CREATED] = "jobs_sort_created",
    [ASPEN_STORE_SORT_DURATION] = "jobs_sort_duration",
};

const char *store_sort_index_name(aspen_store_sort sort)
{
    return (unsigned)sort < ASPEN_STORE_SORT_COUNT ? index_names[sort] : NULL;
}

int store_sort_index_sql(aspen_store_sort sort, bool pg, char *out, size_t cap)
{
    const char *name = store_sort_index_name(sort);
    if (!name)
        return -1;
    int n = snprintf(out, cap, "CREATE INDEX IF NOT EXISTS %s ON jobs (%s, id)", name,
                     store_sort_key_sql(sort, pg));
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}
