/* cron.c — the cron expressions of schedules: parsing (5 fields with lists, ranges, steps and
 * names; @hourly … @yearly; @every DURATION) with errors that name the field and say why, and the
 * next occurrence in a time zone (tz.c). Pure functions, safe from any thread.
 *
 * Matching follows Vixie cron, the behaviour most users know: when both day-of-month and
 * day-of-week are restricted a day matches either; a field written with a leading '*' ("*", "*2")
 * counts as unrestricted. Local times the clocks skip fire at the jump; times they repeat fire
 * once (aspen_store_schedule.h). */
#include "store_backend.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int64_t store_days_from_civil(int64_t y, int m, int d);
void store_civil_from_days(int64_t z, int64_t *y, int *m, int *d);
int store_days_in_month(int64_t y, int m);

struct field_def {
    const char *name;
    int lo, hi;
    const char *const *names; /* names[i] is value lo_names + i */
    int names_lo, n_names;
};

static const char *const month_names[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                          "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
static const char *const day_names[] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"};
static const char *const day_long[] = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                       "Thursday", "Friday", "Saturday", "Sunday"};

enum { F_MIN, F_HOUR, F_MDAY, F_MONTH, F_WDAY, F_COUNT };

static const struct field_def fields[F_COUNT] = {
    {"minute", 0, 59, NULL, 0, 0},
    {"hour", 0, 23, NULL, 0, 0},
    {"day-of-month", 1, 31, NULL, 0, 0},
    {"month", 1, 12, month_names, 1, 12},
    {"day-of-week", 0, 7, day_names, 0, 7},
};

struct perr {
    aspen_store_error *err;
    const char *expr; /* as a message quotes it (store_shown) */
};

#define PERR(pe, ...) perr_fill(pe, __VA_ARGS__)

__attribute__((format(printf, 2, 3))) static int perr_fill(struct perr *pe, const char *fmt, ...)
{
    char why[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    return store_err(pe->err, ASPEN_STORE_EINVAL, "cron expression \"%s\": %s", pe->expr, why);
}

/* A token as a message quotes it (at most 24 bytes, store_shown). */
static void token_shown(const char *b, size_t len, char *out, size_t size)
{
    store_shown(b, len, 24, out, size);
}

/* One value of a field: a number or, for month and day-of-week, a name. */
static int parse_value(struct perr *pe, const struct field_def *f, const char *b, size_t len,
                       int *out)
{
    char tok[40];
    token_shown(b, len, tok, sizeof tok);
    if (len == 0)
        return PERR(pe, "%s has an empty value (a list item, range end or step is missing)",
                    f->name);
    if (isdigit((unsigned char)b[0])) {
        int64_t v = 0;
        for (size_t i = 0; i < len; i++) {
            if (!isdigit((unsigned char)b[i]))
                return PERR(pe, "%s value %s is not a number", f->name, tok);
            if (v < 1000000)
                v = v * 10 + (b[i] - '0');
        }
        /* day-of-week takes 7 for Sunday as Vixie cron does (docs/SCHEDULES.md), so its
         * range says 0-7 and why: "0-6" refused 8 while 7 was taken (trial 10) */
        if (v < f->lo || v > f->hi)
            return PERR(pe, "%s %s is out of range %d-%d%s", f->name, tok, f->lo, f->hi,
                        f == &fields[F_WDAY] ? " (0 and 7 are Sunday)" : "");
        *out = (int)v;
        return 0;
    }
    if (f->names && len == 3) {
        for (int i = 0; i < f->n_names; i++)
            if (strncasecmp(b, f->names[i], 3) == 0) {
                *out = f->names_lo + i;
                return 0;
            }
    }
    if (f->names)
        return PERR(pe, "%s %s is not a %s: give %d-%d%s or a name %s-%s", f->name, tok,
                    f == &fields[F_MONTH] ? "month" : "day of the week", f->lo, f->hi,
                    f == &fields[F_WDAY] ? " (0 and 7 are Sunday)" : "", f->names[0],
                    f->names[f->n_names - 1]);
    if (len == 1 && (b[0] == '?' || b[0] == 'L'))
        return PERR(pe, "%s '%c' is not supported (no Quartz extensions): use * or numbers",
                    f->name, b[0]);
    return PERR(pe, "%s value %s is not a number (%d-%d)", f->name, tok, f->lo, f->hi);
}

static int parse_field(struct perr *pe, int which, const char *b, size_t len, uint64_t *bits,
                       bool *star)
{
    const struct field_def *f = &fields[which];
    *bits = 0;
    *star = len > 0 && b[0] == '*';
    size_t i = 0;
    while (i <= len) {
        size_t j = i;
        while (j < len && b[j] != ',')
            j++;
        const char *item = b + i;
        size_t ilen = j - i;
        char tok[40];
        token_shown(item, ilen, tok, sizeof tok);
        if (ilen == 0)
            return PERR(pe, "%s has an empty list item (two commas, or a comma at an end)",
                        f->name);
        const char *slash = memchr(item, '/', ilen);
        size_t rlen = slash ? (size_t)(slash - item) : ilen;
        int lo, hi, step = 1;
        if (slash) {
            const char *sb = slash + 1;
            size_t slen = ilen - rlen - 1;
            int64_t v = 0;
            if (slen == 0)
                return PERR(pe, "%s item %s has no step after '/'", f->name, tok);
            for (size_t k = 0; k < slen; k++) {
                if (!isdigit((unsigned char)sb[k]))
                    return PERR(pe, "%s step in %s is not a number", f->name, tok);
                if (v < 1000000)
                    v = v * 10 + (sb[k] - '0');
            }
            if (v < 1)
                return PERR(pe, "%s step 0 in %s: a step must be 1 or more", f->name, tok);
            if (v > f->hi)
                return PERR(pe, "%s step in %s is larger than the field's range %d-%d", f->name,
                            tok, f->lo, f->hi);
            step = (int)v;
        }
        if (rlen == 1 && item[0] == '*') {
            lo = f->lo;
            hi = which == F_WDAY ? 6 : f->hi;
        } else {
            const char *dash = memchr(item, '-', rlen);
            if (memchr(item, '*', rlen))
                return PERR(pe, "%s item %s: '*' stands alone (write * or */STEP)", f->name, tok);
            if (dash) {
                int code = parse_value(pe, f, item, (size_t)(dash - item), &lo);
                if (code)
                    return code;
                code = parse_value(pe, f, dash + 1, rlen - (size_t)(dash - item) - 1, &hi);
                if (code)
                    return code;
                /* SUN ending a range is 7 (FRI-SUN: Friday to Sunday); a 0 is not: 5-0 was read
                 * as 5-7 while every other field refuses a range that goes backwards (trial 23) */
                if (which == F_WDAY && hi == 0 && lo > 0 && !isdigit((unsigned char)dash[1]))
                    hi = 7;
                if (hi < lo && which == F_WDAY && lo == 7)
                    return PERR(pe, "%s range %s goes backwards: 7 is Sunday at the week's end; "
                                    "a range from Sunday starts at 0 (0-%d)",
                                f->name, tok, hi);
                if (hi < lo && which == F_WDAY && hi == 0)
                    return PERR(pe, "%s range %s goes backwards: write the smaller value first "
                                    "(Sunday is 0 or 7: %d-7 runs %s to Sunday)",
                                f->name, tok, lo, day_long[lo]);
                if (hi < lo)
                    return PERR(pe, "%s range %s goes backwards: write the smaller value first "
                                    "(a range wraps round in no field: %d-%d,%d-%d for both "
                                    "ends)",
                                f->name, tok, lo, which == F_WDAY ? 7 : f->hi, f->lo, hi);
            } else {
                int code = parse_value(pe, f, item, rlen, &lo);
                if (code)
                    return code;
                /* N/S is N-MAX/S, as cronie and most cron implementations read it */
                hi = slash ? (which == F_WDAY ? 6 : f->hi) : lo;
                if (slash && which == F_WDAY && lo == 7)
                    hi = 7;
            }
        }
        for (int v = lo; v <= hi; v += step)
            *bits |= 1ull << (which == F_WDAY && v == 7 ? 0 : v);
        i = j + 1;
    }
    return 0;
}

static const struct {
    const char *word, *expands;
} macros[] = {
    {"@yearly", "0 0 1 1 *"},  {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
    {"@weekly", "0 0 * * 0"},  {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
    {"@hourly", "0 * * * *"},
};

/* "30s", "5m", "1h30m", "2d": into ms, 1 s to 366 d. */
static int parse_every(struct perr *pe, const char *p, int64_t *out)
{
    while (*p == ' ' || *p == '\t')
        p++;
    if (!*p)
        return PERR(pe, "@every needs a duration: @every 30s, @every 5m, @every 1h30m");
    int64_t total = 0;
    char last = 0;
    while (*p && *p != ' ' && *p != '\t') {
        if (!isdigit((unsigned char)*p))
            return PERR(pe, "@every duration: expected a number before '%c' (write 30s, 5m, 1h or "
                            "1h30m)",
                        isprint((unsigned char)*p) ? *p : '?');
        int64_t v = 0;
        while (isdigit((unsigned char)*p)) {
            if (v < 100000000)
                v = v * 10 + (*p - '0');
            p++;
        }
        int64_t unit;
        switch (*p) {
        case 's': unit = 1000; break;
        case 'm': unit = 60000; break;
        case 'h': unit = 3600000; break;
        case 'd': unit = 86400000; break;
        case '\0':
        case ' ':
        case '\t':
            return PERR(pe, "@every duration needs a unit after %lld: s, m, h or d (30s, 5m, 1h)",
                        (long long)v);
        default:
            return PERR(pe, "@every duration has an unknown unit '%c': use s, m, h or d",
                        isprint((unsigned char)*p) ? *p : '?');
        }
        if (last && unit >= (last == 's' ? 1000 : last == 'm' ? 60000 : last == 'h' ? 3600000
                                                                                      : 86400000))
            return PERR(pe, "@every duration: give units from the largest down once each (1h30m)");
        if (*p == 'm' && p[1] == 's')
            return PERR(pe, "@every takes no milliseconds: the shortest @every is 1s");
        last = *p++;
        if (v > 366LL * 86400000 / unit)
            return PERR(pe, "@every duration is longer than 366 days");
        total += v * unit;
    }
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p)
        return PERR(pe, "@every takes one duration; unexpected text after it");
    if (total < 1000)
        return PERR(pe, "@every duration must be at least 1s");
    if (total > 366LL * 86400000)
        return PERR(pe, "@every duration is longer than 366 days");
    *out = total;
    return 0;
}

/* Days that exist in some allowed month: a day-of-month set that never meets one (30 2 *) can
 * never match when day-of-week does not widen it. */
static int check_possible(struct perr *pe, const aspen_store_cron *c)
{
    if (!c->wday_star || c->mday_star)
        return 0; /* the weekdays decide, or widen it ("or") */
    static const int max_days[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int first = 0;
    for (int d = 1; d <= 31 && !first; d++)
        if (c->mdays >> d & 1)
            first = d;
    for (int m = 1; m <= 12; m++)
        if ((c->months >> m & 1) && first <= max_days[m - 1])
            return 0;
    return PERR(pe, "day-of-month %d never occurs in the months given, so this never runs", first);
}

int aspen_store_cron_parse(const char *expr, aspen_store_cron *out, aspen_store_error *err)
{
    if (!out)
        return store_err(err, ASPEN_STORE_EINVAL, "aspen_store_cron_parse: out is NULL");
    memset(out, 0, sizeof *out);
    if (!expr)
        return store_err(err, ASPEN_STORE_EINVAL, "no cron expression given");
    char shown[64];
    store_shown(expr, strlen(expr), 48, shown, sizeof shown);
    struct perr pe = {err, shown};
    size_t len = strlen(expr);
    if (len > ASPEN_STORE_CRON_MAX)
        return PERR(&pe, "longer than %d bytes", ASPEN_STORE_CRON_MAX);
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)expr[i] < 0x20 && expr[i] != '\t')
            return PERR(&pe, "holds a control character (byte %zu)", i);
        else if ((unsigned char)expr[i] >= 0x7f)
            return PERR(&pe, "holds a byte that is not ASCII (byte %zu)", i);
    const char *p = expr;
    while (*p == ' ' || *p == '\t')
        p++;
    if (!*p)
        return PERR(&pe, "empty: give 5 fields (minute hour day-of-month month day-of-week), e.g. "
                         "\"*/5 * * * *\", or @hourly, @daily, @every 30s");
    if (*p == '@') {
        size_t wl = strcspn(p, " \t");
        if (wl == 6 && strncasecmp(p, "@every", 6) == 0) {
            return parse_every(&pe, p + 6, &out->every_ms);
        }
        for (size_t i = 0; i < sizeof macros / sizeof macros[0]; i++)
            if (wl == strlen(macros[i].word) && strncasecmp(p, macros[i].word, wl) == 0) {
                const char *rest = p + wl;
                while (*rest == ' ' || *rest == '\t')
                    rest++;
                if (*rest)
                    return PERR(&pe, "%s takes nothing after it", macros[i].word);
                return aspen_store_cron_parse(macros[i].expands, out, err);
            }
        char word[40];
        token_shown(p, wl, word, sizeof word);
        return PERR(&pe, "unknown %s: use @hourly, @daily, @weekly, @monthly, @yearly or @every "
                         "DURATION (30s, 5m, 1h)",
                    word);
    }
    const char *tok[8];
    size_t tlen[8], n = 0;
    while (*p) {
        if (n == 8)
            break;
        tok[n] = p;
        while (*p && *p != ' ' && *p != '\t')
            p++;
        tlen[n] = (size_t)(p - tok[n]);
        n++;
        while (*p == ' ' || *p == '\t')
            p++;
    }
    if (n != F_COUNT || *p) {
        if (n >= 6)
            return PERR(&pe, "expected 5 fields (minute hour day-of-month month day-of-week), got "
                             "%s%zu; there is no seconds or year field (for intervals under a "
                             "minute use @every 30s)",
                        *p ? "more than " : "", n);
        return PERR(&pe, "expected 5 fields (minute hour day-of-month month day-of-week), got %zu",
                    n);
    }
    uint64_t bits[F_COUNT];
    bool star[F_COUNT];
    for (int i = 0; i < F_COUNT; i++) {
        int code = parse_field(&pe, i, tok[i], tlen[i], &bits[i], &star[i]);
        if (code)
            return code;
    }
    out->minutes = bits[F_MIN];
    out->hours = (uint32_t)bits[F_HOUR];
    out->mdays = (uint32_t)bits[F_MDAY];
    out->months = (uint32_t)bits[F_MONTH];
    out->wdays = (uint32_t)bits[F_WDAY];
    out->mday_star = star[F_MDAY];
    out->wday_star = star[F_WDAY];
    return check_possible(&pe, out);
}

static bool day_matches(const aspen_store_cron *c, int64_t y, int m, int d)
{
    int wd = (int)((store_days_from_civil(y, m, d) % 7 + 11) % 7);
    bool md = c->mdays >> d & 1, w = c->wdays >> wd & 1;
    if (c->mday_star || c->wday_star)
        return md && w;
    return md || w;
}

static int64_t fdiv(int64_t a, int64_t b) { return a / b - (a % b != 0 && (a < 0) != (b < 0)); }

int aspen_store_cron_next(const aspen_store_cron *c, const aspen_store_tz *tz, int64_t after_ms,
                          int64_t *next_ms, aspen_store_error *err)
{
    if (!c || !next_ms)
        return store_err(err, ASPEN_STORE_EINVAL, "aspen_store_cron_next: NULL argument");
    if (c->every_ms > 0) {
        int64_t k = fdiv(after_ms, c->every_ms) + 1;
        *next_ms = k * c->every_ms;
        return 0;
    }
    int64_t after_s = fdiv(after_ms, 1000);
    /* The local minute after the local reading of after: every earlier local time either came
     * before after or is a repeat of one that did (see aspen_store_tz_to_utc). */
    int64_t local = fdiv(after_s + aspen_store_tz_offset(tz, after_s, NULL), 60) * 60 + 60;
    int64_t day = fdiv(local, 86400), y;
    int mo, d;
    store_civil_from_days(day, &y, &mo, &d);
    int h = (int)(fdiv(local, 3600) - day * 24), mi = (int)(fdiv(local, 60) - fdiv(local, 3600) * 60);
    int64_t limit_year = y + 10;
    for (int guard = 0; guard < 1000000; guard++) {
        if (y > limit_year)
            break;
        if (!(c->months >> mo & 1)) {
            if (++mo > 12)
                mo = 1, y++;
            d = 1, h = 0, mi = 0;
            continue;
        }
        if (d > store_days_in_month(y, mo)) {
            if (++mo > 12)
                mo = 1, y++;
            d = 1, h = 0, mi = 0;
            continue;
        }
        if (!day_matches(c, y, mo, d)) {
            d++, h = 0, mi = 0;
            continue;
        }
        if (h > 23 || !(c->hours >> h & 1)) {
            if (h > 23) {
                d++, h = 0, mi = 0;
                continue;
            }
            h++, mi = 0;
            continue;
        }
        if (mi > 59 || !(c->minutes >> mi & 1)) {
            if (mi > 59) {
                h++, mi = 0;
                continue;
            }
            mi++;
            continue;
        }
        int64_t lt = store_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60;
        int64_t t = aspen_store_tz_to_utc(tz, lt);
        if (t * 1000 > after_ms) {
            *next_ms = t * 1000;
            return 0;
        }
        mi++; /* a repeated local time that already fired */
    }
    return store_err(err, ASPEN_STORE_EINVAL,
                     "cron expression never matches a time within 10 years");
}
