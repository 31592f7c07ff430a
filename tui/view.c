/* tui/view.c — the console's view models (see view.h): pure functions over plain data, no curses,
 * no database. app.c feeds them rows and events and draws what they return; tests/tui/test_view.c
 * checks them.
 */
#include "view.h"

#include "aspen_text.h"
#include "chart.h"

#include <ctype.h>
#include <dirent.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <wchar.h>

/* ---- formatting ------------------------------------------------------------------------------- */

void tui_fmt_ms(int64_t ms, char *out, size_t cap)
{
    if (ms < 0) {
        snprintf(out, cap, "-");
        return;
    }
    int64_t s = ms / 1000;
    if (ms < 1000)
        snprintf(out, cap, "%lldms", (long long)ms);
    else if (ms < 10000)
        snprintf(out, cap, "%lld.%llds", (long long)s, (long long)(ms % 1000 / 100));
    else if (s < 60)
        snprintf(out, cap, "%llds", (long long)s);
    else if (s < 3600)
        snprintf(out, cap, "%lldm%02llds", (long long)(s / 60), (long long)(s % 60));
    else if (s < 86400)
        snprintf(out, cap, "%lldh%02lldm", (long long)(s / 3600), (long long)(s % 3600 / 60));
    else
        snprintf(out, cap, "%lldd%02lldh", (long long)(s / 86400), (long long)(s % 86400 / 3600));
}

void tui_fmt_quantiles(const int64_t *us, size_t n, char (*out)[32])
{
    for (size_t i = 0; i < n; i++) {
        if (us[i] != 0) {
            tui_fmt_us(us[i], out[i], sizeof out[i]);
            continue;
        }
        /* 0: under 1 ms, how far under unknown; the next larger quantile bounds it */
        int64_t bound = 0;
        for (size_t k = i + 1; k < n && !bound; k++)
            bound = us[k] > 0 ? us[k] : 0;
        if (bound > 0 && bound < 1000) {
            char b[32];
            tui_fmt_us(bound, b, sizeof b);
            snprintf(out[i], sizeof out[i], "<=%s", b);
        } else {
            snprintf(out[i], sizeof out[i], "<1ms");
        }
    }
}

void tui_fmt_us(int64_t us, char *out, size_t cap)
{
    if (us < 0)
        snprintf(out, cap, "-");
    else if (us < 1000)
        snprintf(out, cap, "%lldus", (long long)us);
    else if (us < 10000)
        snprintf(out, cap, "%lld.%lldms", (long long)(us / 1000), (long long)(us % 1000 / 100));
    else
        tui_fmt_ms(us / 1000, out, cap);
}

void tui_fmt_size(uint64_t bytes, char *out, size_t cap)
{
    static const char units[] = "KMGT";
    if (bytes < 1024) {
        snprintf(out, cap, "%lluB", (unsigned long long)bytes);
        return;
    }
    double v = (double)bytes;
    int u = -1;
    while (v >= 1024.0 && u < 3) {
        v /= 1024.0;
        u++;
    }
    snprintf(out, cap, v < 10.0 ? "%.1f%c" : "%.0f%c", v, units[u]);
}

void tui_fmt_count(int64_t n, char *out, size_t cap)
{
    if (n < 10000 && n > -10000)
        snprintf(out, cap, "%lld", (long long)n);
    else if (n < 1000000)
        snprintf(out, cap, "%.1fk", (double)n / 1e3);
    else
        snprintf(out, cap, "%.1fM", (double)n / 1e6);
}

void tui_fmt_thousands(int64_t n, char *out, size_t cap)
{
    char digits[32];
    unsigned long long u = n < 0 ? 0ull - (unsigned long long)n : (unsigned long long)n;
    int len = snprintf(digits, sizeof digits, "%llu", u);
    char buf[48];
    size_t w = 0;
    if (n < 0)
        buf[w++] = '-';
    for (int i = 0; i < len; i++) {
        if (i && (len - i) % 3 == 0)
            buf[w++] = ',';
        buf[w++] = digits[i];
    }
    buf[w] = '\0';
    snprintf(out, cap, "%s", buf);
}

/* The value of key= among libpq's key=value words (a '...' value may hold spaces and \' ); the
 * last one given, which is the one libpq uses ("host=... dbname=postgres dbname=jobs": jobs). */
static bool conninfo_value(const char *ci, const char *key, char *out, size_t cap)
{
    size_t kl = strlen(key);
    bool found = false;
    for (const char *p = ci; *p;) {
        while (*p == ' ' || *p == '\t')
            p++;
        const char *eq = p + strcspn(p, "= \t");
        bool match = *eq == '=' && (size_t)(eq - p) == kl && strncmp(p, key, kl) == 0;
        const char *v = *eq == '=' ? eq + 1 : eq;
        size_t w = 0;
        if (*v == '\'') {
            for (v++; *v && *v != '\''; v++) {
                if (*v == '\\' && v[1])
                    v++;
                if (match && w + 1 < cap)
                    out[w++] = *v;
            }
            if (*v)
                v++;
        } else {
            for (; *v && *v != ' ' && *v != '\t'; v++)
                if (match && w + 1 < cap)
                    out[w++] = *v;
        }
        if (match) { /* and on: a later key=value overrides an earlier one, as in libpq */
            if (cap)
                out[w] = '\0';
            found = true;
        }
        p = v;
    }
    return found;
}

void tui_db_label(const char *shown, char *out, size_t cap)
{
    if (!cap)
        return;
    const char *s = shown ? shown : "";
    char host[256] = "", db[256] = "";
    if (!aspen_store_name_is_postgres(s)) {
        const char *slash = strrchr(s, '/');
        snprintf(out, cap, "%s", slash && slash[1] ? slash + 1 : s);
        return;
    }
    const char *scheme = strstr(s, "://");
    if (scheme) {
        const char *auth = scheme + 3, *end = auth + strcspn(auth, "/?#");
        const char *h = auth;
        for (const char *q = auth; q < end; q++)
            if (*q == '@')
                h = q + 1; /* after user[:***]@ */
        size_t hl = (size_t)(end - h);
        if (*h == '[') { /* [::1]:5432 */
            const char *rb = memchr(h, ']', hl);
            hl = rb ? (size_t)(rb + 1 - h) : hl;
        } else {
            const char *colon = memchr(h, ':', hl);
            hl = colon ? (size_t)(colon - h) : hl;
        }
        snprintf(host, sizeof host, "%.*s", (int)(hl < sizeof host ? hl : sizeof host - 1), h);
        if (*end == '/') {
            size_t dl = strcspn(end + 1, "?#");
            snprintf(db, sizeof db, "%.*s", (int)(dl < sizeof db ? dl : sizeof db - 1), end + 1);
        }
        /* ?host=/run/postgresql&dbname=... overrides (a socket in a URI is given that way) */
        const char *q = strchr(end, '?');
        for (const char *p = q; p && *p; p = strchr(p + 1, '&')) {
            const char *k = p + 1, *v = strchr(k, '=');
            if (!v)
                break;
            size_t vl = strcspn(v + 1, "&#");
            if ((size_t)(v - k) == 4 && strncmp(k, "host", 4) == 0)
                snprintf(host, sizeof host, "%.*s", (int)(vl < sizeof host ? vl : sizeof host - 1), v + 1);
            else if ((size_t)(v - k) == 6 && strncmp(k, "dbname", 6) == 0)
                snprintf(db, sizeof db, "%.*s", (int)(vl < sizeof db ? vl : sizeof db - 1), v + 1);
        }
    } else {
        if (!conninfo_value(s, "host", host, sizeof host))
            conninfo_value(s, "hostaddr", host, sizeof host);
        conninfo_value(s, "dbname", db, sizeof db);
    }
    /* a socket directory (or several hosts: the first): its last part says which server */
    host[strcspn(host, ",")] = '\0';
    size_t hl = strlen(host);
    while (hl > 1 && host[hl - 1] == '/')
        host[--hl] = '\0';
    const char *hshow = host[0] == '/' && strrchr(host, '/')[1] ? strrchr(host, '/') + 1
                        : host[0]                               ? host
                                                                : "localhost";
    snprintf(out, cap, "%s%s%s", hshow, db[0] ? "/" : "", db);
}

void tui_fmt_clock(int64_t ms, char *out, size_t cap)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    localtime_r(&t, &tm);
    snprintf(out, cap, "%02d:%02d:%02d.%03d", tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

size_t tui_sparkline(const double *v, size_t n, size_t width, bool utf8, char *out, size_t cap)
{
    static const char ascii[] = " .:-=+*#";
    size_t first = n > width ? n - width : 0, w = 0;
    double max = 0;
    for (size_t i = first; i < n; i++)
        if (v[i] > max)
            max = v[i];
    if (cap)
        out[0] = '\0';
    for (size_t i = first; i < n; i++) {
        int level = max > 0 ? (int)(v[i] / max * 7.0 + 0.5) : 0;
        if (level < 0)
            level = 0;
        if (level > 7)
            level = 7;
        if (!utf8 && v[i] > 0 && level == 0)
            level = 1; /* something happened: not a blank */
        const char *s = utf8 ? tui_blocks[level] : (char[2]){ascii[level], 0};
        size_t len = strlen(s);
        if (w + len + 1 > cap)
            break;
        memcpy(out + w, s, len);
        w += len;
        out[w] = '\0';
    }
    return w;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double tui_percentile(double *v, size_t n, double p)
{
    if (n == 0)
        return 0;
    qsort(v, n, sizeof *v, cmp_double);
    double rank = p / 100.0 * (double)(n - 1);
    size_t lo = (size_t)rank;
    if (lo + 1 >= n)
        return v[n - 1];
    double frac = rank - (double)lo;
    return v[lo] + (v[lo + 1] - v[lo]) * frac;
}

/* ---- job rows --------------------------------------------------------------------------------- */

/* A table cell from a job's text: escaped (aspen_text.h; tab and newline as spaces), cut to fit at
 * a whole character or escape. */
static void copy_trunc(char *dst, size_t cap, const char *src)
{
    aspen_text_escape_str(src, ASPEN_TEXT_SPACES, dst, cap);
}

void tui_row_from_job(const aspen_store_job *job, tui_row *row)
{
    memset(row, 0, sizeof *row);
    row->id = job->id;
    copy_trunc(row->type, sizeof row->type, job->type);
    copy_trunc(row->guest, sizeof row->guest, job->binary_name ? job->binary_name : "-");
    row->state = job->state;
    row->attempts = job->attempts;
    row->max_attempts = job->max_attempts;
    row->priority = job->priority;
    row->created_ms = job->created_at_ms;
    row->started_ms = job->started_at_ms;
    row->finished_ms = job->finished_at_ms;
    row->run_at_ms = job->run_at_ms;
    copy_trunc(row->error, sizeof row->error, job->error);
}

int64_t tui_row_duration_ms(const tui_row *row, int64_t now_ms)
{
    if (row->started_ms <= 0)
        return -1;
    if (row->state == ASPEN_STORE_RUNNING)
        return now_ms > row->started_ms ? now_ms - row->started_ms : 0;
    if (row->finished_ms >= row->started_ms)
        return row->finished_ms - row->started_ms;
    return -1;
}

const char *tui_sort_name(tui_sort s)
{
    static const char *names[] = {"id",       "state", "guest",    "priority",
                                  "attempts", "age",   "duration", "queue"};
    return s < TUI_SORT_COUNT ? names[s] : "?";
}

bool tui_store_sort(tui_sort col, bool reverse, bool order_reverse, aspen_store_order order,
                    aspen_store_sort *sort, bool *desc)
{
    switch (col) {
    case TUI_SORT_ID:
        if (order == ASPEN_STORE_ORDER_QUEUE)
            return false;
        *sort = ASPEN_STORE_SORT_ID;
        *desc = order == ASPEN_STORE_ORDER_NEWEST && !order_reverse;
        return true;
    case TUI_SORT_STATE: *sort = ASPEN_STORE_SORT_STATE; *desc = reverse; return true;
    case TUI_SORT_GUEST: *sort = ASPEN_STORE_SORT_GUEST; *desc = reverse; return true;
    case TUI_SORT_PRIORITY: *sort = ASPEN_STORE_SORT_PRIORITY; *desc = !reverse; return true;
    case TUI_SORT_ATTEMPTS: *sort = ASPEN_STORE_SORT_ATTEMPTS; *desc = !reverse; return true;
    case TUI_SORT_AGE: *sort = ASPEN_STORE_SORT_CREATED; *desc = reverse; return true;
    case TUI_SORT_DURATION: *sort = ASPEN_STORE_SORT_DURATION; *desc = !reverse; return true;
    case TUI_SORT_QUEUE: *sort = ASPEN_STORE_SORT_QUEUE; *desc = reverse; return true;
    default: return false;
    }
}

static size_t marks_find(const tui_marks *m, int64_t id, bool *found)
{
    size_t lo = 0, hi = m->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (m->ids[mid] < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < m->n && m->ids[lo] == id;
    return lo;
}

bool tui_marks_has(const tui_marks *m, int64_t id)
{
    bool found;
    marks_find(m, id, &found);
    return found;
}

void tui_marks_toggle(tui_marks *m, int64_t id)
{
    bool found;
    size_t at = marks_find(m, id, &found);
    if (found) {
        memmove(m->ids + at, m->ids + at + 1, (m->n - at - 1) * sizeof *m->ids);
        m->n--;
        return;
    }
    if (m->n == m->cap) {
        size_t nc = m->cap ? m->cap * 2 : 16;
        int64_t *p = realloc(m->ids, nc * sizeof *p);
        if (!p)
            return;
        m->ids = p;
        m->cap = nc;
    }
    memmove(m->ids + at + 1, m->ids + at, (m->n - at) * sizeof *m->ids);
    m->ids[at] = id;
    m->n++;
}

void tui_marks_clear(tui_marks *m) { m->n = 0; }

void tui_marks_free(tui_marks *m)
{
    free(m->ids);
    memset(m, 0, sizeof *m);
}

int tui_filter_parse(const char *text, aspen_store_filter *out, char *buf, size_t bufsize,
                     char *msg, size_t msgcap)
{
    /* the one filter language (store/filter.c), shorthands included: the same as the CLI's */
    aspen_store_error se = {0};
    if (aspen_store_filter_parse(text, out, buf, bufsize, &se) != 0) {
        snprintf(msg, msgcap, "%s", se.msg);
        return -1;
    }
    return 0;
}

void tui_choice_refusal(const char *what, const char *given, const char *const *names, size_t n,
                        const char *label, const char *sep, bool utf8, char *out, size_t cap)
{
    char list[512] = "";
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        if (!names[i])
            continue;
        int k = snprintf(list + w, sizeof list - w, "%s%s", w ? sep : "", names[i]);
        if (k < 0 || (size_t)k >= sizeof list - w)
            break;
        w += (size_t)k;
    }
    given = given ? given : "";
    if (!given[0]) {
        snprintf(out, cap, "%s needed (%s: %s)", what, label, list);
        return;
    }
    const char *near = aspen_store_nearest(given, strlen(given), names, n);
    /* a long word is cut with the marker, never bare ('%.40s' cut "durationnnn…" inside a
     * character and read as whole) */
    char shown[200];
    tui_cut_to(given, 40, utf8, shown, sizeof shown);
    snprintf(out, cap, "unknown %s '%s'%s%s%s (%s: %s)", what, shown,
             near ? ", did you mean " : "", near ? near : "", near ? "?" : "", label, list);
}

bool tui_filter_states_only(const aspen_store_filter *f)
{
    /* every term of the filter language that selects jobs other than by state is named here:
     * one left out (queue: was) made the jobs pane total the whole database's state counts for
     * it ("1/24" over 14 matches, and G on placeholder rows past the last job) and never count
     * its matches (start_count skips a filter of states only) */
    return !f->type && !f->binary_name && !f->tag && f->n_fields == 0 && f->id == 0 &&
           f->rerun_of == 0 && !f->queue;
}

void tui_scroll(long *cursor, long *top, long n, long height)
{
    if (height < 1)
        height = 1;
    if (*cursor >= n)
        *cursor = n - 1;
    if (*cursor < 0)
        *cursor = 0;
    if (*cursor < *top)
        *top = *cursor;
    if (*cursor >= *top + height)
        *top = *cursor - height + 1;
    if (*top > n - height)
        *top = n - height;
    if (*top < 0)
        *top = 0;
}

/* ---- keys and actions ------------------------------------------------------------------------- */

const char *tui_pane_name(tui_pane p)
{
    /* The wide tab row's names, as help and docs name the panes; under 100 columns
     * tui_pane_label's short ones ("Cron" for Schedules, "Stats" for Metrics) fit 80. */
    static const char *names[] = {"Jobs", "VMs", "Logs", "Engines", "Schedules", "Queues", "Metrics"};
    return p < TUI_PANE_COUNT ? names[p] : "?";
}

void tui_tab_label(tui_pane p, int cols, char *out, size_t cap)
{
    snprintf(out, cap, cols < 100 ? "%d%s" : " %d %s ", (int)p + 1, tui_pane_label(p, cols));
}

const char *tui_pane_label(tui_pane p, int cols)
{
    static const char *narrow[] = {"Jobs", "VMs", "Logs", "Eng", "Cron", "Queue", "Stats"};
    if (cols >= 100)
        return tui_pane_name(p);
    return p < TUI_PANE_COUNT ? narrow[p] : "?";
}

/* ---- layout ----------------------------------------------------------------------------------- */

void tui_layout_compute(int cols, int rows, tui_pane pane, tui_layout *l)
{
    memset(l, 0, sizeof *l);
    l->cols = cols;
    l->rows = rows;
    l->too_small = cols < 60 || rows < 12;
    l->header_y = 0;
    l->header_h = 3;
    l->tabs_y = 3;
    l->body_y = 4;
    l->foot_y = rows - 1;
    int avail = rows - l->body_y - 1;
    if (avail < 1)
        avail = 1;
    l->body_h = avail;
    /* Tall screens: the live log tail under the jobs table (a third of the space). */
    if (pane == TUI_PANE_JOBS && rows >= 36) {
        l->split_h = avail / 3;
        l->body_h = avail - l->split_h;
        l->split_y = l->body_y + l->body_h;
    }
}

const char *tui_col_title(int col)
{
    static const char *t[] = {" ", "ID", "TYPE", "GUEST", "STATE", "ATT", "PRI", "AGE", "DUR",
                              "ERROR"};
    return col >= 0 && col < TUI_COL_N ? t[col] : "";
}

int tui_job_columns(int width, int which[TUI_COL_N], int widths[TUI_COL_N])
{
    /* Columns by importance; the least important go first when narrow. */
    static const int base_w[TUI_COL_N] = {1, 8, 10, 16, 9, 5, 4, 6, 7, 0};
    static const int drop_order[] = {TUI_COL_TYPE, TUI_COL_PRIO, TUI_COL_AGE};
    bool on[TUI_COL_N];
    for (int i = 0; i < TUI_COL_N; i++) {
        on[i] = true;
        widths[i] = base_w[i];
    }
    if (width >= 110) {
        widths[TUI_COL_TYPE] = 12;
        widths[TUI_COL_GUEST] = 18;
    }
    int used;
    for (size_t d = 0;; d++) {
        used = 0;
        for (int i = 0; i < TUI_COL_N; i++)
            if (on[i] && i != TUI_COL_ERROR)
                used += widths[i] + 1;
        if (width - used >= 12 || d >= sizeof drop_order / sizeof drop_order[0])
            break;
        on[drop_order[d]] = false;
    }
    widths[TUI_COL_ERROR] = width - used > 0 ? width - used : 0;
    int n = 0;
    for (int i = 0; i < TUI_COL_N; i++)
        if (on[i] && (i != TUI_COL_ERROR || widths[i] > 0))
            which[n++] = i;
    return n;
}

/* ---- the log ring ----------------------------------------------------------------------------- */

void tui_logbuf_init(tui_logbuf *b, size_t cap)
{
    memset(b, 0, sizeof *b);
    b->e = calloc(cap ? cap : 1, sizeof *b->e);
    b->cap = b->e ? (cap ? cap : 1) : 0;
}

void tui_logbuf_clear(tui_logbuf *b)
{
    for (size_t i = 0; i < b->n; i++) {
        free(b->e[(b->start + i) % b->cap].line);
        free(b->e[(b->start + i) % b->cap].where);
    }
    b->start = b->n = 0;
    b->dropped = 0;
}

void tui_logbuf_free(tui_logbuf *b)
{
    if (b->e)
        tui_logbuf_clear(b);
    free(b->e);
    memset(b, 0, sizeof *b);
}

/* The ring's next slot (the oldest entry dropped when full), its strings freed. */
static tui_log_entry *logbuf_slot(tui_logbuf *b)
{
    tui_log_entry *e;
    if (b->n == b->cap) {
        e = &b->e[b->start];
        free(e->line);
        free(e->where);
        b->start = (b->start + 1) % b->cap;
        b->dropped++;
    } else {
        e = &b->e[(b->start + b->n) % b->cap];
        b->n++;
    }
    return e;
}

static void logbuf_add(tui_logbuf *b, int64_t job_id, int attempt, int64_t time_ms, int64_t seq,
                       const char *line, char *where)
{
    if (!b->cap) {
        free(where);
        return;
    }
    size_t len = strcspn(line ? line : "", "\n");
    /* kept escaped (aspen_text.h): what is searched, measured and drawn is what is shown */
    char *copy = aspen_text_escape_dup(line ? line : "", len, ASPEN_TEXT_SPACES);
    if (!copy) {
        free(where);
        return;
    }
    tui_log_entry *e = logbuf_slot(b);
    e->job_id = job_id;
    e->attempt = attempt;
    e->time_ms = time_ms;
    e->seq = seq;
    e->line = copy;
    e->where = where;
}

void tui_logbuf_push(tui_logbuf *b, int64_t job_id, int attempt, int64_t time_ms, int64_t seq,
                     const char *line)
{
    logbuf_add(b, job_id, attempt, time_ms, seq, line, NULL);
}

void tui_logbuf_push_from(tui_logbuf *b, int64_t job_id, int attempt, int64_t time_ms,
                          const char *line, const char *host, int64_t pid, int64_t engine_id)
{
    /* A host name is another machine's words: escaped like the line, then cut between
     * characters to TUI_LOG_HOST_MAX columns ("~" says it was), so a hostile name can neither
     * paint the terminal nor push the line off an 80-column screen. */
    char mark[4 * TUI_LOG_HOST_MAX + 48];
    size_t hl = host ? strnlen(host, 256) : 0;
    if (hl) {
        char *esc = aspen_text_escape_dup(host, hl, ASPEN_TEXT_SPACES);
        if (!esc)
            return;
        size_t el = strlen(esc), cut = tui_cols_fit(esc, el, TUI_LOG_HOST_MAX, NULL);
        snprintf(mark, sizeof mark, "%.*s%s:%lld", (int)cut, esc, cut < el ? "~" : "",
                 (long long)pid);
        free(esc);
    } else {
        snprintf(mark, sizeof mark, "engine %lld", (long long)engine_id);
    }
    char *where = strdup(mark);
    if (where)
        logbuf_add(b, job_id, attempt, time_ms, 0, line, where);
}

void tui_logbuf_push_console(tui_logbuf *b, int64_t time_ms, const char *line)
{
    char *where = strdup("console");
    if (where)
        logbuf_add(b, 0, 0, time_ms, 0, line, where);
}

const tui_log_entry *tui_logbuf_get(const tui_logbuf *b, size_t i)
{
    return i < b->n ? &b->e[(b->start + i) % b->cap] : NULL;
}

long tui_logbuf_search(const tui_logbuf *b, long from, int dir, const char *needle,
                       bool timestamps, bool show_job)
{
    if (!needle || !*needle || b->n == 0)
        return -1;
    char text[2048];
    for (long i = from + (dir > 0 ? 1 : -1); i >= 0 && i < (long)b->n; i += dir > 0 ? 1 : -1) {
        tui_log_format(tui_logbuf_get(b, (size_t)i), timestamps, show_job, text, sizeof text);
        if (strcasestr(text, needle))
            return i;
    }
    return -1;
}

size_t tui_find_all(const char *text, const char *needle, size_t *out, size_t max)
{
    size_t n = 0, nl = needle ? strlen(needle) : 0;
    if (!nl)
        return 0;
    for (const char *p = text; n < max && (p = strcasestr(p, needle)); p += nl) {
        out[2 * n] = (size_t)(p - text);
        out[2 * n + 1] = (size_t)(p - text) + nl;
        n++;
    }
    return n;
}

/* ---- display columns ---------------------------------------------------------------------------- */

/* One UTF-8 character at s (len > 0): its code point and length; a bad byte is one column, one
 * byte (the sanitiser has escaped those already; this only keeps the arithmetic safe). */
static size_t utf8_next(const unsigned char *s, size_t len, uint32_t *cp)
{
    unsigned c = s[0];
    size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || n > len) {
        *cp = 0xfffd;
        return 1;
    }
    uint32_t v = n == 1 ? c : n == 2 ? c & 0x1f : n == 3 ? c & 0x0f : c & 0x07;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80) {
            *cp = 0xfffd;
            return 1;
        }
        v = (v << 6) | (s[i] & 0x3f);
    }
    *cp = v;
    return n;
}

static int cp_width(uint32_t cp)
{
    if (cp < 0x80)
        return cp >= 0x20 && cp != 0x7f ? 1 : 0;
    int w = wcwidth((wchar_t)cp);
    if (w >= 0)
        return w;
    /* not a UTF-8 locale (wcwidth knows nothing): the East Asian wide blocks by hand */
    if ((cp >= 0x1100 && cp <= 0x115f) || (cp >= 0x2e80 && cp <= 0xa4cf) ||
        (cp >= 0xac00 && cp <= 0xd7a3) || (cp >= 0xf900 && cp <= 0xfaff) ||
        (cp >= 0xfe30 && cp <= 0xfe4f) || (cp >= 0xff00 && cp <= 0xff60) ||
        (cp >= 0xffe0 && cp <= 0xffe6) || (cp >= 0x1f300 && cp <= 0x1faff) ||
        (cp >= 0x20000 && cp <= 0x3fffd))
        return 2;
    return 1;
}

int tui_cols(const char *s, size_t len)
{
    int cols = 0;
    for (size_t i = 0; i < len && s[i];) {
        uint32_t cp;
        i += utf8_next((const unsigned char *)s + i, len - i, &cp);
        cols += cp_width(cp);
    }
    return cols;
}

size_t tui_cols_fit(const char *s, size_t len, int cols, int *used)
{
    size_t i = 0;
    int w = 0;
    while (i < len && s[i]) {
        uint32_t cp;
        size_t n = utf8_next((const unsigned char *)s + i, len - i, &cp);
        int cw = cp_width(cp);
        if (w + cw > cols)
            break;
        w += cw;
        i += n;
    }
    if (used)
        *used = w;
    return i;
}

size_t tui_cols_fit_cut(const char *s, size_t len, int cols, bool *cut)
{
    *cut = false;
    if (cols <= 0)
        return 0;
    size_t fit = tui_cols_fit(s, len, cols, NULL);
    /* what is left over: only blanks (a padded cell, "%-*s") is not a cut anyone would miss */
    size_t rest = fit;
    while (rest < len && s[rest] == ' ')
        rest++;
    if (rest >= len || !s[rest])
        return fit;
    *cut = true;
    return tui_cols_fit(s, len, cols - 1, NULL); /* one column for the marker */
}

const char *tui_cut_marker(bool utf8) { return utf8 ? "\xe2\x80\xa6" : "~"; }

void tui_cut_to(const char *s, int cols, bool utf8, char *out, size_t cap)
{
    if (!cap)
        return;
    bool cut;
    size_t len = strlen(s), fit = tui_cols_fit_cut(s, len, cols, &cut);
    snprintf(out, cap, "%.*s%s", (int)fit, s, cut ? tui_cut_marker(utf8) : "");
}

void tui_copy_cut(const char *s, bool utf8, char *out, size_t cap)
{
    if (!cap)
        return;
    size_t len = strlen(s);
    if (len < cap) {
        memcpy(out, s, len + 1);
        return;
    }
    const char *mark = tui_cut_marker(utf8);
    size_t m = strlen(mark);
    if (cap <= m) {
        out[0] = '\0';
        return;
    }
    size_t keep = cap - 1 - m;
    /* back to the start of the character at keep: a continuation byte is 10xxxxxx */
    while (keep > 0 && ((unsigned char)s[keep] & 0xc0) == 0x80)
        keep--;
    memcpy(out, s, keep);
    memcpy(out + keep, mark, m + 1);
}

bool tui_json_error_brief(const char *msg, int near_cols, char *out, size_t cap)
{
    if (!cap)
        return false;
    out[0] = '\0';
    if (!msg)
        return false;
    static const char pre[] = "invalid JSON payload: ";
    const char *p = strncmp(msg, pre, sizeof pre - 1) == 0 ? msg + sizeof pre - 1 : msg;
    /* "line L, column C" up to ", position P: " (the byte offset: the column says it) */
    const char *pos = strstr(p, ", position ");
    const char *what = pos ? strstr(pos, ": ") : NULL;
    if (p == msg || strncmp(p, "line ", 5) != 0 || !pos || !what) {
        snprintf(out, cap, "%s", msg); /* not the engine's form: as it is */
        return false;
    }
    what += 2;
    const char *near = strstr(what, " near '");
    size_t wlen = near ? (size_t)(near - what) : strlen(what);
    int k = snprintf(out, cap, "%.*s: %.*s", (int)(pos - p), p, (int)wlen, what);
    if (!near || k < 0 || (size_t)k >= cap)
        return true;
    const char *tok = near + 7;
    size_t tlen = strlen(tok);
    if (tlen && tok[tlen - 1] == '\'')
        tlen--; /* the closing quote: put back after the cut */
    if (near_cols < 4)
        near_cols = 4;
    size_t fit = tui_cols_fit(tok, tlen, near_cols, NULL);
    bool cut = fit < tlen;
    if (cut)
        fit = tui_cols_fit(tok, tlen, near_cols - 3, NULL);
    snprintf(out + k, cap - (size_t)k, " near '%.*s%s'", (int)fit, tok, cut ? "..." : "");
    return true;
}

static bool is_cont_byte(char c) { return ((unsigned char)c & 0xc0) == 0x80; }

size_t tui_wrap_next(const char *s, size_t len, int cols)
{
    size_t fit = tui_cols_fit(s, len, cols, NULL);
    if (fit >= len)
        return len;
    if (fit == 0) { /* a character wider than the row: it goes alone */
        size_t n = 1;
        while (n < len && is_cont_byte(s[n]))
            n++;
        return n;
    }
    /* the row ends at a space: break after the last one that fits, or before the first
     * character that does not fit if that is a space */
    if (s[fit] == ' ')
        return fit + 1;
    for (size_t i = fit; i > 0; i--)
        if (s[i - 1] == ' ') {
            /* the word that does not fit goes to the next row, unless it is wider than a row:
             * it is cut either way, so it starts here and no row is left half empty */
            size_t word = strcspn(s + i, " ");
            if (word > len - i)
                word = len - i;
            if (tui_cols(s + i, word) > cols)
                return fit;
            return i;
        }
    return fit; /* one word longer than the row: cut it */
}

int tui_wrap_rows_text(const char *text, int width, bool wrap)
{
    size_t len = strlen(text);
    if (!wrap || width <= 0)
        return 1;
    int rows = 0;
    size_t off = 0;
    do {
        off += tui_wrap_next(text + off, len - off, width);
        rows++;
    } while (off < len);
    return rows;
}

int tui_wrap_hang(const char *text, int width)
{
    size_t lead = strspn(text, " ");
    if (!lead || !text[lead])
        return 0; /* a title (or a blank line): its rows start at the margin */
    int hang = (int)(lead < 64 ? lead : 64) + 2;
    return hang * 2 <= width ? hang : 0; /* a narrow screen keeps its columns for the text */
}

int tui_wrap_rows_hang(const char *text, int width)
{
    size_t len = strlen(text), off = 0;
    if (width <= 0)
        return 1;
    int hang = tui_wrap_hang(text, width), rows = 0;
    do {
        size_t n = tui_wrap_next(text + off, len - off, rows ? width - hang : width);
        off += n ? n : 1;
        rows++;
    } while (off < len);
    return rows;
}

int tui_wrap_rows(size_t len, int width, bool wrap)
{
    if (!wrap || width <= 0 || len <= (size_t)width)
        return 1;
    return (int)((len + (size_t)width - 1) / (size_t)width);
}

void tui_log_format(const tui_log_entry *e, bool timestamps, bool show_job, char *out, size_t cap)
{
    char ts[32] = "";
    if (timestamps) {
        tui_fmt_clock(e->time_ms, ts, sizeof ts);
        strcat(ts, " ");
    }
    char job[4 * TUI_LOG_HOST_MAX + 96] = "";
    if (show_job && e->job_id > 0 && e->where)
        snprintf(job, sizeof job, "[job %lld %s] ", (long long)e->job_id, e->where);
    else if (show_job && e->job_id > 0)
        snprintf(job, sizeof job, "[job %lld] ", (long long)e->job_id);
    else if (show_job && e->job_id == 0 && e->where && !strcmp(e->where, "console"))
        snprintf(job, sizeof job, "[console] "); /* the console's own messages (never host:pid) */
    else if (show_job)
        snprintf(job, sizeof job, "[engine] ");
    snprintf(out, cap, "%s%s%s", ts, job, e->line);
}

/* ---- one-line text editor ------------------------------------------------------------------------ */

void tui_line_set(tui_line *l, const char *text)
{
    snprintf(l->buf, sizeof l->buf, "%s", text ? text : "");
    l->len = strlen(l->buf);
    l->cur = l->len;
}

static bool is_cont(char c) { return ((unsigned char)c & 0xc0) == 0x80; }

static size_t line_start(const tui_line *l, size_t at)
{
    while (at > 0 && l->buf[at - 1] != '\n')
        at--;
    return at;
}

static size_t line_end(const tui_line *l, size_t at)
{
    while (at < l->len && l->buf[at] != '\n')
        at++;
    return at;
}

static void line_delete(tui_line *l, size_t from, size_t to)
{
    memmove(l->buf + from, l->buf + to, l->len - to + 1);
    l->len -= to - from;
    if (l->cur > to)
        l->cur -= to - from;
    else if (l->cur > from)
        l->cur = from;
}

/* The cursor to the same display column on the line starting at `start`. */
static void line_goto_col(tui_line *l, size_t start, int col)
{
    size_t end = line_end(l, start);
    l->cur = start + tui_cols_fit(l->buf + start, end - start, col, NULL);
}

bool tui_line_key(tui_line *l, int key)
{
    switch (key) {
    case TUI_KEY_LEFT:
        if (l->cur > 0)
            do
                l->cur--;
            while (l->cur > 0 && is_cont(l->buf[l->cur]));
        return true;
    case TUI_KEY_RIGHT:
        if (l->cur < l->len)
            do
                l->cur++;
            while (l->cur < l->len && is_cont(l->buf[l->cur]));
        return true;
    case TUI_KEY_HOME: case 1 /* ^A */:
        l->cur = l->multiline ? line_start(l, l->cur) : 0;
        return true;
    case TUI_KEY_END: case 5 /* ^E */:
        l->cur = l->multiline ? line_end(l, l->cur) : l->len;
        return true;
    case TUI_KEY_BACKSPACE: {
        if (l->cur == 0)
            return true;
        size_t from = l->cur - 1;
        while (from > 0 && is_cont(l->buf[from]))
            from--;
        line_delete(l, from, l->cur);
        return true;
    }
    case TUI_KEY_DELETE: case 4 /* ^D */: {
        if (l->cur == l->len)
            return true;
        size_t to = l->cur + 1;
        while (to < l->len && is_cont(l->buf[to]))
            to++;
        line_delete(l, l->cur, to);
        return true;
    }
    case TUI_KEY_CTRL_U:
        line_delete(l, l->multiline ? line_start(l, l->cur) : 0, l->cur);
        return true;
    case TUI_KEY_ENTER:
        return l->multiline && tui_line_insert(l, "\n", 1);
    case TUI_KEY_UP: case TUI_KEY_DOWN: {
        if (!l->multiline)
            return false;
        size_t start = line_start(l, l->cur);
        int col = tui_cols(l->buf + start, l->cur - start);
        if (key == TUI_KEY_UP) {
            if (start == 0)
                return false;
            line_goto_col(l, line_start(l, start - 1), col);
        } else {
            size_t end = line_end(l, l->cur);
            if (end >= l->len)
                return false;
            line_goto_col(l, end + 1, col);
        }
        return true;
    }
    default:
        break;
    }
    if ((key >= 0x20 && key < 0x7f) || (key >= 0x80 && key <= 0xff)) {
        char c = (char)key;
        tui_line_insert(l, &c, 1);
        return true;
    }
    return false;
}

bool tui_line_insert(tui_line *l, const char *text, size_t n)
{
    /* what goes in, first: the size must be known before anything moves */
    size_t need = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c == '\r' && i + 1 < n && text[i + 1] == '\n')
            continue;
        if (c >= 0x20 || c == '\n' || c == '\r' || c == '\t')
            need++;
    }
    if (l->len + need + 1 > sizeof l->buf)
        return false;
    memmove(l->buf + l->cur + need, l->buf + l->cur, l->len - l->cur + 1);
    size_t w = l->cur;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c == '\r' && i + 1 < n && text[i + 1] == '\n')
            continue;
        if (c == '\r' || c == '\n')
            l->buf[w++] = l->multiline ? '\n' : ' ';
        else if (c == '\t')
            l->buf[w++] = l->multiline ? '\t' : ' ';
        else if (c >= 0x20 && c != 0x7f)
            l->buf[w++] = (char)c;
        else if (c == 0x7f)
            l->buf[w++] = ' ';
    }
    l->len += need;
    l->cur += need;
    return true;
}

size_t tui_line_scroll(const tui_line *l, int width)
{
    if (width <= 1)
        return 0;
    size_t off = 0;
    /* the cursor's column from off must be < width */
    while (off < l->cur && tui_cols(l->buf + off, l->cur - off) >= width) {
        off++;
        while (off < l->cur && is_cont(l->buf[off]))
            off++;
    }
    return off;
}

size_t tui_line_row(const tui_line *l, size_t *n_rows)
{
    size_t row = 0, rows = 1;
    for (size_t i = 0; i < l->len; i++)
        if (l->buf[i] == '\n') {
            rows++;
            if (i < l->cur)
                row++;
        }
    if (n_rows)
        *n_rows = rows;
    return row;
}

/* ---- prompt history ------------------------------------------------------------------------------ */

void tui_history_add(tui_history *h, const char *text)
{
    h->pos = -1;
    if (!text || !*text || (h->n && strcmp(h->items[h->n - 1], text) == 0))
        return;
    char *copy = strdup(text);
    if (!copy)
        return;
    if (h->n == TUI_HISTORY) {
        free(h->items[0]);
        memmove(h->items, h->items + 1, (TUI_HISTORY - 1) * sizeof h->items[0]);
        h->n--;
    }
    h->items[h->n++] = copy;
}

const char *tui_history_older(tui_history *h, const char *current)
{
    if (h->n == 0)
        return NULL;
    if (h->pos < 0) {
        snprintf(h->draft, sizeof h->draft, "%s", current ? current : "");
        h->pos = (long)h->n - 1;
    } else if (h->pos > 0) {
        h->pos--;
    } else {
        return NULL;
    }
    return h->items[h->pos];
}

const char *tui_history_newer(tui_history *h)
{
    if (h->pos < 0)
        return NULL;
    if (h->pos + 1 < (long)h->n)
        return h->items[++h->pos];
    h->pos = -1;
    return h->draft;
}

void tui_history_free(tui_history *h)
{
    for (size_t i = 0; i < h->n; i++)
        free(h->items[i]);
    memset(h, 0, sizeof *h);
    h->pos = -1;
}

size_t tui_osc52(const void *data, size_t n, char *out, size_t cap)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    static const char head[] = "\033]52;c;";
    if (n > (SIZE_MAX - 16) / 4 * 3)
        return 0;
    size_t need = sizeof head - 1 + (n + 2) / 3 * 4 + 1; /* + BEL */
    if (need + 1 > cap)
        return 0;
    const unsigned char *d = data;
    size_t w = sizeof head - 1;
    memcpy(out, head, w);
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)d[i] << 16 | (i + 1 < n ? (uint32_t)d[i + 1] << 8 : 0) |
                     (i + 2 < n ? d[i + 2] : 0);
        out[w++] = b64[v >> 18 & 63];
        out[w++] = b64[v >> 12 & 63];
        out[w++] = i + 1 < n ? b64[v >> 6 & 63] : '=';
        out[w++] = i + 2 < n ? b64[v & 63] : '=';
    }
    out[w++] = '\a';
    out[w] = '\0';
    return w;
}

void tui_tags_from_json(const char *json, char *out, size_t cap)
{
    if (cap)
        out[0] = '\0';
    json_error_t e;
    json_t *v = json ? json_loads(json, 0, &e) : NULL;
    if (!json_is_array(v)) {
        json_decref(v);
        return;
    }
    size_t w = 0;
    for (size_t i = 0; i < json_array_size(v); i++) {
        const char *t = json_string_value(json_array_get(v, i));
        if (!t)
            continue;
        int n = snprintf(out + w, cap - w, "%s%s", w ? ", " : "", t);
        if (n < 0 || (size_t)n >= cap - w)
            break;
        w += (size_t)n;
    }
    json_decref(v);
}

/* ---- text blocks -------------------------------------------------------------------------------- */

/* Adds prefix + raw[0, len) as one line, escaped (aspen_text.h): whatever job field a line shows,
 * the text block holds only what is safe to draw. */
static void text_push(tui_text *t, const char *prefix, const char *raw, size_t len)
{
    size_t plen = strlen(prefix), need = aspen_text_escape(raw, len, ASPEN_TEXT_SPACES, NULL, 0);
    char *s = malloc(plen + need + 1);
    if (!s)
        return;
    memcpy(s, prefix, plen);
    aspen_text_escape(raw, len, ASPEN_TEXT_SPACES, s + plen, need + 1);
    if (t->n == t->cap) {
        size_t nc = t->cap ? t->cap * 2 : 64;
        char **p = realloc(t->lines, nc * sizeof *p);
        if (!p) {
            free(s);
            return;
        }
        t->lines = p;
        t->cap = nc;
    }
    t->lines[t->n++] = s;
}

void tui_text_add(tui_text *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    text_push(t, "", s, (size_t)n);
    free(s);
}

void tui_text_add_block(tui_text *t, const char *indent, const char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        const char *nl = memchr(s + i, '\n', len - i); /* NUL bytes are text here, not the end */
        size_t j = nl ? (size_t)(nl - s) : len;
        text_push(t, indent, s + i, j - i);
        i = j + 1;
    }
}

void tui_text_free(tui_text *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->lines[i]);
    free(t->lines);
    memset(t, 0, sizeof *t);
}

char *tui_json_pretty(const char *text)
{
    json_error_t e;
    json_t *v = json_loads(text ? text : "", JSON_DECODE_ANY, &e);
    if (!v)
        return strdup(text ? text : "");
    char *s = json_dumps(v, JSON_INDENT(2) | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER);
    json_decref(v);
    return s ? s : strdup(text);
}

void tui_detail_build(tui_text *t, const aspen_store_job *j, const aspen_store_job_rule *rule,
                      const aspen_store_attempt *att, size_t n_att, const aspen_store_log *logs,
                      size_t n_logs, int64_t now_ms)
{
    char a[32], b[32], c[32];
    tui_text_add(t, "Job %lld  %s  (%s)", (long long)j->id, aspen_store_state_name(j->state),
                 aspen_engine_job_needs_vm(j) ? "micro-VM" : "in-process handler");
    tui_text_add(t, "%s", "");
    tui_text_add(t, "Spec");
    tui_text_add(t, "  type        %s", j->type ? j->type : "-");
    tui_text_add(t, "  guest       %s%s%.12s", j->binary_name ? j->binary_name : "-",
                 j->binary_sha256 ? "  sha256 " : "", j->binary_sha256 ? j->binary_sha256 : "");
    if (j->source_dir) {
        /* pinned at submit ("DIR#sha256=HEX"): the directory, and the digest short, as aspen job
         * shows it, not 70 characters of hex glued to the path */
        char dir[4096], hex[65];
        if (aspen_engine_source_pin(j->source_dir, dir, sizeof dir, hex))
            tui_text_add(t, "  source      %s (as at submit: sha256 %.12s)", dir, hex);
        else
            tui_text_add(t, "  source      %s", j->source_dir);
    }
    /* the queue it waits in, as aspen show says it: a job that never runs because its queue is
     * paused or limited is explained by this line */
    tui_text_add(t, "  queue       %s", j->queue[0] ? j->queue : "default");
    tui_text_add(t, "  priority    %d", j->priority);
    tui_text_add(t, "  attempts    %d of %d", j->attempts, j->max_attempts);
    tui_fmt_ms(j->timeout_ms, a, sizeof a);
    tui_text_add(t, "  timeout     %s", a);
    tui_fmt_size((uint64_t)j->memory_bytes, b, sizeof b);
    tui_text_add(t, "  memory      %s", j->memory_bytes ? b : "default");
    tui_text_add(t, "  tags        %s", j->tags ? j->tags : "[]");
    if (j->rerun_of)
        tui_text_add(t, "  rerun of    job %lld", (long long)j->rerun_of);
    if (rule && rule->key) {
        /* the rule retry and rerun apply, in aspen show's words and the store's formats of a
         * period and a state set: why a submit of the same key answers with this job */
        char period[40], states[128];
        aspen_store_duration_format(rule->period_ms, period, sizeof period);
        aspen_store_states_format(rule->states, states, sizeof states);
        tui_text_add(t, "  unique      key %s   for %s   counts %s", rule->key,
                     rule->period_ms > 0 ? period : "any age", states);
    }
    tui_fmt_ms(now_ms - j->created_at_ms, a, sizeof a);
    tui_text_add(t, "  created     %s ago", a);
    if (j->state == ASPEN_STORE_SCHEDULED) {
        tui_fmt_ms(j->run_at_ms - now_ms, a, sizeof a);
        tui_text_add(t, "  next run    in %s", a);
    }
    if (j->started_at_ms) {
        tui_fmt_ms(now_ms - j->started_at_ms, a, sizeof a);
        tui_text_add(t, "  started     %s ago", a);
    }
    if (j->finished_at_ms && j->started_at_ms) {
        tui_fmt_ms(j->finished_at_ms - j->started_at_ms, a, sizeof a);
        tui_text_add(t, "  ran for     %s", a);
    }
    if (j->cancel_requested)
        tui_text_add(t, "  cancel      requested");
    tui_text_add(t, "%s", "");
    tui_text_add(t, "Payload");
    char *pretty = tui_json_pretty(j->payload);
    if (pretty) {
        tui_text_add_block(t, "  ", pretty, strlen(pretty));
        free(pretty);
    }
    tui_text_add(t, "%s", "");
    tui_text_add(t, "Output (%zu bytes)", j->result_size);
    if (j->result && j->result_size) {
        /* JSON pretty-printed; anything else as text, controls and bad bytes escaped (not hidden) */
        /* the detail is a pager (wrap, scroll both ways): a large output is shown, up to 1 MiB */
        size_t n = j->result_size > (1u << 20) ? (1u << 20) : j->result_size;
        json_error_t je;
        json_t *v = json_loadb(j->result, n, JSON_DECODE_ANY, &je);
        char *p = v ? json_dumps(v, JSON_INDENT(2) | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER) : NULL;
        json_decref(v);
        if (p)
            tui_text_add_block(t, "  ", p, strlen(p));
        else
            tui_text_add_block(t, "  ", j->result, n);
        free(p);
        if (!p && !aspen_text_utf8_valid(j->result, n))
            tui_text_add(t, "  (not UTF-8 text: bytes shown as \\xNN)");
        if (n < j->result_size)
            tui_text_add(t, "  ... (%zu more bytes)", j->result_size - n);
    } else {
        tui_text_add(t, "  -");
    }
    tui_text_add(t, "%s", "");
    tui_text_add(t, "Error");
    if (j->error)
        tui_text_add_block(t, "  ", j->error, strlen(j->error));
    else
        tui_text_add(t, "  -");
    tui_text_add(t, "%s", "");
    tui_text_add(t, "Attempts (%zu)", n_att);
    for (size_t i = 0; i < n_att; i++) {
        const aspen_store_attempt *x = &att[i];
        char when[32];
        tui_fmt_clock(x->started_at_ms, when, sizeof when);
        tui_fmt_us(x->wall_us, a, sizeof a);
        tui_fmt_ms(x->finished_at_ms > x->started_at_ms ? x->finished_at_ms - x->started_at_ms : -1,
                   c, sizeof c);
        tui_fmt_size(x->pages_dirtied * 4096u, b, sizeof b);
        tui_text_add(t, "  #%d %-10s at %s  run %s (stored after %s)  exits %llu  host calls %llu  "
                        "dirtied %s  in %lluB out %lluB%s",
                     x->number, x->outcome, when, a, c, (unsigned long long)x->exits,
                     (unsigned long long)x->host_calls, b, (unsigned long long)x->bytes_in,
                     (unsigned long long)x->bytes_out, x->recovered ? "  (recovered)" : "");
        if (x->error)
            tui_text_add(t, "     %.*s", (int)strcspn(x->error, "\n"), x->error);
    }
    if (n_att == 0)
        tui_text_add(t, "  none yet");
    tui_text_add(t, "%s", "");
    tui_text_add(t, "Logs (%zu line%s%s)", n_logs, n_logs == 1 ? "" : "s",
                 j->log_dropped ? ", some dropped by the cap" : "");
    for (size_t i = 0; i < n_logs; i++) {
        char when[32];
        tui_fmt_clock(logs[i].time_ms, when, sizeof when);
        tui_text_add(t, "  %s #%d %s", when, logs[i].attempt, logs[i].line ? logs[i].line : "");
    }
}

/* ---- settings ------------------------------------------------------------------------------------ */

void tui_settings_default(tui_settings *s)
{
    memset(s, 0, sizeof *s);
    s->sort = TUI_SORT_ID;
    s->detail_wrap = true;
}

static bool valid_name(const char *n)
{
    size_t len = strlen(n);
    if (len == 0 || len > 63)
        return false;
    for (const char *p = n; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_' && *p != '.')
            return false;
    return true;
}

int tui_settings_save_filter(tui_settings *s, const char *name, const char *text, char *msg,
                             size_t msgcap)
{
    if (!valid_name(name)) {
        snprintf(msg, msgcap, "'%.40s' cannot name a filter: letters, digits, - _ . (at most 63)", name);
        return -1;
    }
    if (strlen(text) >= sizeof s->saved[0].text || strchr(text, '\n')) {
        snprintf(msg, msgcap, "the filter is too long to save (%zu bytes; at most %zu, one line)",
                 strlen(text), sizeof s->saved[0].text - 1);
        return -1;
    }
    for (size_t i = 0; i < s->n_saved; i++)
        if (strcmp(s->saved[i].name, name) == 0) {
            if (!*text) {
                memmove(&s->saved[i], &s->saved[i + 1], (s->n_saved - i - 1) * sizeof s->saved[0]);
                s->n_saved--;
            } else {
                snprintf(s->saved[i].text, sizeof s->saved[i].text, "%s", text);
            }
            return 0;
        }
    if (!*text)
        return 0;
    if (s->n_saved == TUI_SAVED_MAX) {
        snprintf(msg, msgcap, "%d filters are saved already: forget one first (:save NAME with no "
                 "filter set)", TUI_SAVED_MAX);
        return -1;
    }
    snprintf(s->saved[s->n_saved].name, sizeof s->saved[0].name, "%s", name);
    snprintf(s->saved[s->n_saved].text, sizeof s->saved[0].text, "%s", text);
    s->n_saved++;
    return 0;
}

const char *tui_settings_filter(const tui_settings *s, const char *name)
{
    for (size_t i = 0; i < s->n_saved; i++)
        if (strcmp(s->saved[i].name, name) == 0)
            return s->saved[i].text;
    return NULL;
}

static bool parse_bool(const char *v, bool *out)
{
    if (!strcmp(v, "yes") || !strcmp(v, "on") || !strcmp(v, "true") || !strcmp(v, "1"))
        *out = true;
    else if (!strcmp(v, "no") || !strcmp(v, "off") || !strcmp(v, "false") || !strcmp(v, "0"))
        *out = false;
    else
        return false;
    return true;
}

int tui_settings_parse(const char *text, tui_settings *s, char *msg, size_t msgcap)
{
    int bad = 0, lineno = 0;
    if (msgcap)
        msg[0] = '\0';
    for (const char *p = text; *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        lineno++;
        char line[1024];
        bool too_long = len >= sizeof line;
        snprintf(line, sizeof line, "%.*s", (int)(too_long ? sizeof line - 1 : len), p);
        p += len + (nl ? 1 : 0);
        char *l = line;
        while (*l == ' ' || *l == '\t')
            l++;
        size_t n = strlen(l);
        while (n && (l[n - 1] == ' ' || l[n - 1] == '\t' || l[n - 1] == '\r'))
            l[--n] = '\0';
        if (!*l || *l == '#')
            continue;
        char *eq = strchr(l, '=');
        const char *why = NULL;
        if (too_long)
            why = "too long";
        else if (!eq)
            why = "no '='";
        else {
            char *k = l, *v = eq + 1;
            char *ke = eq;
            while (ke > k && (ke[-1] == ' ' || ke[-1] == '\t'))
                ke--;
            *ke = '\0';
            while (*v == ' ' || *v == '\t')
                v++;
            bool b;
            if (!strcmp(k, "sort")) {
                int found = -1;
                for (int i = 0; i < TUI_SORT_COUNT; i++)
                    if (!strcmp(tui_sort_name((tui_sort)i), v))
                        found = i;
                if (found < 0)
                    why = "not a sort column";
                else
                    s->sort = (tui_sort)found;
            } else if (!strcmp(k, "sort-reverse") || !strcmp(k, "order-reverse") ||
                       !strcmp(k, "wrap") || !strcmp(k, "timestamps") || !strcmp(k, "detail-wrap")) {
                if (!parse_bool(v, &b))
                    why = "want yes or no";
                else if (!strcmp(k, "sort-reverse"))
                    s->sort_reverse = b;
                else if (!strcmp(k, "order-reverse"))
                    s->order_reverse = b;
                else if (!strcmp(k, "wrap"))
                    s->wrap = b;
                else if (!strcmp(k, "timestamps"))
                    s->timestamps = b;
                else
                    s->detail_wrap = b;
            } else if (!strncmp(k, "saved-filter ", 13)) {
                char m[160];
                if (tui_settings_save_filter(s, k + 13, v, m, sizeof m) != 0)
                    why = "a bad saved filter";
            } else {
                why = "unknown key";
            }
        }
        if (why) {
            if (bad++ == 0)
                snprintf(msg, msgcap, "line %d skipped (%s)", lineno, why);
        }
    }
    return bad;
}

size_t tui_settings_format(const tui_settings *s, char *out, size_t cap)
{
    size_t w = 0;
    int n = snprintf(out, cap,
                     "# Aspen console settings: written when the console quits and on :save.\n"
                     "# Edit while no console runs. Saved filters: saved-filter NAME = FILTER.\n"
                     "sort = %s\nsort-reverse = %s\norder-reverse = %s\nwrap = %s\n"
                     "timestamps = %s\ndetail-wrap = %s\n",
                     tui_sort_name(s->sort), s->sort_reverse ? "yes" : "no",
                     s->order_reverse ? "yes" : "no", s->wrap ? "yes" : "no",
                     s->timestamps ? "yes" : "no", s->detail_wrap ? "yes" : "no");
    if (n < 0 || (size_t)n >= cap)
        return 0;
    w = (size_t)n;
    for (size_t i = 0; i < s->n_saved; i++) {
        n = snprintf(out + w, cap - w, "saved-filter %s = %s\n", s->saved[i].name, s->saved[i].text);
        if (n < 0 || (size_t)n >= cap - w)
            return 0;
        w += (size_t)n;
    }
    return w;
}

bool tui_settings_path(char *out, size_t cap)
{
    const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
    int n;
    if (xdg && *xdg == '/')
        n = snprintf(out, cap, "%s/aspen/console.conf", xdg);
    else if (home && *home)
        n = snprintf(out, cap, "%s/.config/aspen/console.conf", home);
    else
        return false;
    return n > 0 && (size_t)n < cap;
}

/* ---- guests ----------------------------------------------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

size_t tui_guest_list(const char *dir, char **names, size_t max)
{
    size_t n = 0;
    DIR *d = dir ? opendir(dir) : NULL;
    if (!d)
        return 0;
    struct dirent *de;
    while ((de = readdir(d)) && n < max) {
        if (de->d_name[0] == '.')
            continue;
        char path[4096];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        names[n] = strdup(de->d_name);
        if (names[n])
            n++;
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_str);
    /* the seed's guests first */
    static const char *seed[] = {"data-processor", "echo-worker"};
    for (size_t s = 0; s < 2; s++)
        for (size_t i = 0; i < n; i++)
            if (strcmp(names[i], seed[s]) == 0) {
                char *keep = names[i];
                memmove(names + 1, names, i * sizeof *names);
                names[0] = keep;
                break;
            }
    return n;
}

bool tui_guest_is_test(const char *name)
{
    return name && strncmp(name, "test-", 5) == 0;
}

void tui_memory_format(int64_t bytes, char *out, size_t cap)
{
    if (bytes <= 0)
        snprintf(out, cap, "%s", "");
    else if (bytes % (1 << 20) == 0)
        snprintf(out, cap, "%lldM", (long long)(bytes >> 20));
    else if (bytes % (1 << 10) == 0)
        snprintf(out, cap, "%lldK", (long long)(bytes >> 10));
    else
        snprintf(out, cap, "%lld", (long long)bytes);
}

const char *tui_guest_example_payload(const char *guest)
{
    /* the Rust and musl builds of a seed guest take the same payloads as the C one */
    if (guest && (strncmp(guest, "rust-", 5) == 0 || strncmp(guest, "musl-", 5) == 0))
        guest += 5;
    if (guest && strcmp(guest, "sleep") == 0)
        return "{\"ms\": 1000}";
    if (guest && (strcmp(guest, "echo") == 0 || strcmp(guest, "checksum") == 0))
        return "{\"message\": \"hello from the console\"}";
    if (guest && strcmp(guest, "echo-worker") == 0)
        return "{\"message\": \"hello from the console\"}";
    if (guest && strcmp(guest, "data-processor") == 0)
        return "{\"records\": [{\"city\": \"paris\", \"age\": 31}, {\"city\": \"oslo\", \"age\": "
               "45}, {\"city\": \"paris\", \"age\": 27}]}";
    return "{}";
}

int tui_store_open_ro(const char *db, aspen_store **st, char *open_error, size_t cap)
{
    if (!*st) {
        aspen_store_options o = {.read_only = true};
        aspen_store_error se = {0};
        if (aspen_store_open(db, &o, st, &se) != 0) {
            *st = NULL;
            snprintf(open_error, cap, "%s", se.msg[0] ? se.msg : "cannot open the database");
        }
    }
    return *st ? 0 : -1;
}

/* 1 s, 2 s, 4 s ... at most 30 s: a server that is down for minutes is asked twice a minute, not
 * hammered, and one that is back is found within 30 s. */
void tui_backoff_failed(tui_backoff *b, double now)
{
    double ms = 1000;
    for (int i = 1; i < b->fails + 1 && ms < 30000; i++)
        ms *= 2;
    if (b->fails < 1000) /* the exponent stops growing long before an int could overflow */
        b->fails++;
    b->retry_at = now + (ms < 30000 ? ms : 30000);
}

void tui_backoff_ok(tui_backoff *b)
{
    b->fails = 0;
    b->retry_at = 0;
}

bool tui_backoff_waiting(const tui_backoff *b, double now)
{
    return b->fails > 0 && now < b->retry_at;
}

void tui_backoff_say(const tui_backoff *b, bool busy, double now, char *out, size_t cap)
{
    if (b->fails && !busy && b->retry_at > now)
        snprintf(out, cap, "reconnecting in %.0f s", (b->retry_at - now + 999) / 1000);
    else
        snprintf(out, cap, "reconnecting now");
}
