/* tz.c — IANA time zones for schedules, read by the store itself from the system's zoneinfo
 * files (TZif versions 1-4, RFC 8536), so local time is computed without the C library's TZ
 * state. Why not localtime_r: it reads the process-wide TZ; switching zones means setenv("TZ") +
 * tzset(), which races with every other thread of the engine that reads the environment or calls
 * localtime (undefined behaviour in glibc). Here a zone is an immutable value: loaded once,
 * shared freely between threads.
 *
 * A zone is its transition table plus the footer's POSIX TZ rule, which covers times past the
 * table's end (zic's "slim" files stop at the last rule change; fat ones at 2037). A name that is
 * not in the database gets the nearest one there is ("did you mean"), from its directory. */
#include "store_backend.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define TZ_FILE_MAX (1 << 20) /* a real zone file is a few KiB */
#define TZ_NAME_MAX 255

struct tz_type {
    int32_t off; /* local = utc + off */
    bool dst;
};

/* A POSIX TZ rule date: Jn (1-365, no Feb 29), n (0-365), or Mm.w.d; time in seconds. */
struct rule_date {
    char kind; /* 'J', 'D' or 'M' */
    int n, m, w, d;
    int32_t time;
};

struct posix_rule {
    bool valid, has_dst;
    int32_t std_off, dst_off; /* as UTC offsets (local = utc + off): POSIX's sign flipped */
    struct rule_date start, end;
};

struct aspen_store_tz {
    char name[TZ_NAME_MAX + 1];
    size_t n_trans;
    int64_t *trans;  /* ascending UTC seconds */
    uint8_t *idx;    /* type after each transition */
    size_t n_types;
    struct tz_type types[256];
    struct posix_rule rule;
};

/* ---- civil dates --------------------------------------------------------------------------- */

/* Days since 1970-01-01 of a proleptic Gregorian date (month 1-12). */
int64_t store_days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void store_civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

bool store_is_leap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

int store_days_in_month(int64_t y, int m)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && store_is_leap(y) ? 29 : days[m - 1];
}

static int64_t floor_div(int64_t a, int64_t b) { return a / b - (a % b != 0 && (a < 0) != (b < 0)); }

/* ---- the POSIX TZ rule (the file's footer) ----------------------------------------------------- */

static bool parse_abbr(const char **p)
{
    const char *s = *p;
    if (*s == '<') {
        s++;
        while (*s && *s != '>')
            s++;
        if (*s != '>')
            return false;
        *p = s + 1;
        return true;
    }
    const char *b = s;
    while ((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z'))
        s++;
    if (s - b < 3)
        return false;
    *p = s;
    return true;
}

/* [+-]hh[:mm[:ss]] with hh up to 167 (RFC 8536's extension), into seconds. */
static bool parse_hms(const char **p, int32_t *out)
{
    const char *s = *p;
    int sign = 1;
    if (*s == '+' || *s == '-')
        sign = *s++ == '-' ? -1 : 1;
    if (*s < '0' || *s > '9')
        return false;
    int32_t part[3] = {0, 0, 0};
    for (int i = 0; i < 3; i++) {
        if (i && *s != ':')
            break;
        if (i)
            s++;
        int digits = 0, v = 0;
        while (*s >= '0' && *s <= '9' && digits < 3)
            v = v * 10 + (*s++ - '0'), digits++;
        if (!digits || (i && v > 59) || (!i && v > 167))
            return false;
        part[i] = v;
    }
    *out = sign * (part[0] * 3600 + part[1] * 60 + part[2]);
    *p = s;
    return true;
}

static bool parse_num(const char **p, int lo, int hi, int *out)
{
    const char *s = *p;
    int v = 0, digits = 0;
    while (*s >= '0' && *s <= '9' && digits < 4)
        v = v * 10 + (*s++ - '0'), digits++;
    if (!digits || v < lo || v > hi)
        return false;
    *out = v;
    *p = s;
    return true;
}

static bool parse_rule_date(const char **p, struct rule_date *r)
{
    const char *s = *p;
    memset(r, 0, sizeof *r);
    r->time = 7200; /* 02:00 by default */
    if (*s == 'J') {
        s++;
        r->kind = 'J';
        if (!parse_num(&s, 1, 365, &r->n))
            return false;
    } else if (*s == 'M') {
        s++;
        r->kind = 'M';
        if (!parse_num(&s, 1, 12, &r->m) || *s++ != '.' || !parse_num(&s, 1, 5, &r->w) ||
            *s++ != '.' || !parse_num(&s, 0, 6, &r->d))
            return false;
    } else {
        r->kind = 'D';
        if (!parse_num(&s, 0, 365, &r->n))
            return false;
    }
    if (*s == '/') {
        s++;
        if (!parse_hms(&s, &r->time))
            return false;
    }
    *p = s;
    return true;
}

static bool parse_posix(const char *s, struct posix_rule *r)
{
    memset(r, 0, sizeof *r);
    int32_t off;
    if (!parse_abbr(&s) || !parse_hms(&s, &off))
        return false;
    r->std_off = -off;
    r->dst_off = r->std_off + 3600;
    if (*s == '\0') {
        r->valid = true;
        return true;
    }
    if (!parse_abbr(&s))
        return false;
    r->has_dst = true;
    if (*s != ',' && *s != '\0') {
        if (!parse_hms(&s, &off))
            return false;
        r->dst_off = -off;
    }
    if (*s != ',')
        return false; /* POSIX's implied US rules are not written by zic */
    s++;
    if (!parse_rule_date(&s, &r->start) || *s++ != ',' || !parse_rule_date(&s, &r->end) || *s)
        return false;
    r->valid = true;
    return true;
}

/* The UTC instant of a rule date in year y; local_off is the offset in force before it. */
static int64_t rule_instant(const struct rule_date *d, int64_t y, int32_t local_off)
{
    int64_t day;
    if (d->kind == 'J') {
        day = store_days_from_civil(y, 1, 1) + d->n - 1;
        if (store_is_leap(y) && d->n >= 60)
            day++;
    } else if (d->kind == 'D') {
        day = store_days_from_civil(y, 1, 1) + d->n;
    } else {
        int64_t first = store_days_from_civil(y, d->m, 1);
        int wd_first = (int)((first % 7 + 11) % 7); /* 1970-01-01 was a Thursday (4) */
        int64_t mday = 1 + (d->d - wd_first + 7) % 7 + (int64_t)(d->w - 1) * 7;
        if (d->w == 5)
            while (mday > store_days_in_month(y, d->m))
                mday -= 7;
        day = first + mday - 1;
    }
    return day * 86400 + d->time - local_off;
}

static void rule_year(const struct posix_rule *r, int64_t y, int64_t *start, int64_t *end)
{
    *start = rule_instant(&r->start, y, r->std_off);
    *end = rule_instant(&r->end, y, r->dst_off);
}

static struct tz_type rule_at(const struct posix_rule *r, int64_t t)
{
    struct tz_type std = {r->std_off, false}, dst = {r->dst_off, true};
    if (!r->has_dst)
        return std;
    int64_t y, s, e;
    int m, d;
    store_civil_from_days(floor_div(t + r->std_off, 86400), &y, &m, &d);
    rule_year(r, y, &s, &e);
    bool in = s < e ? (t >= s && t < e) : !(t >= e && t < s);
    return in ? dst : std;
}

/* The first rule change strictly after t (INT64_MAX when the rule has none). */
static int64_t rule_next(const struct posix_rule *r, int64_t t)
{
    if (!r->has_dst)
        return INT64_MAX;
    int64_t y, best = INT64_MAX;
    int m, d;
    store_civil_from_days(floor_div(t + r->std_off, 86400), &y, &m, &d);
    for (int64_t yy = y - 1; yy <= y + 1; yy++) {
        int64_t s, e;
        rule_year(r, yy, &s, &e);
        if (s > t && s < best)
            best = s;
        if (e > t && e < best)
            best = e;
    }
    return best;
}

/* ---- the zone ---------------------------------------------------------------------------------- */

static struct tz_type type_at(const aspen_store_tz *tz, int64_t t)
{
    if (tz->n_trans == 0 || t < tz->trans[0]) {
        if (tz->n_trans == 0 && tz->rule.valid)
            return rule_at(&tz->rule, t);
        return tz->types[0];
    }
    if (t >= tz->trans[tz->n_trans - 1] && tz->rule.valid)
        return rule_at(&tz->rule, t);
    size_t lo = 0, hi = tz->n_trans; /* the last transition <= t */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (tz->trans[mid] <= t)
            lo = mid;
        else
            hi = mid;
    }
    return tz->types[tz->idx[lo]];
}

/* The first instant strictly after t at which the offset may change (INT64_MAX: never). */
static int64_t next_change(const aspen_store_tz *tz, int64_t t)
{
    if (tz->n_trans && t < tz->trans[tz->n_trans - 1]) {
        size_t lo = 0, hi = tz->n_trans; /* the first transition > t */
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (tz->trans[mid] > t)
                hi = mid;
            else
                lo = mid + 1;
        }
        return tz->trans[lo];
    }
    return tz->rule.valid ? rule_next(&tz->rule, t) : INT64_MAX;
}

int32_t aspen_store_tz_offset(const aspen_store_tz *tz, int64_t utc_s, bool *dst)
{
    struct tz_type ty = tz ? type_at(tz, utc_s) : (struct tz_type){0, false};
    if (dst)
        *dst = ty.dst;
    return ty.off;
}

int64_t aspen_store_tz_to_utc(const aspen_store_tz *tz, int64_t local_s)
{
    if (!tz)
        return local_s;
    /* Walk the intervals of constant offset from an instant before any reading of local_s
     * (offsets stay within ±26 h): the first interval holding local_s - off is the earliest
     * instance; a jump over local_s (a gap) gives the jump's instant. */
    int64_t t = local_s - 27 * 3600;
    int32_t off = type_at(tz, t).off;
    for (int guard = 0; guard < 64; guard++) {
        int64_t nt = next_change(tz, t);
        int64_t cand = local_s - off;
        if (cand >= t && cand < nt)
            return cand;
        if (nt == INT64_MAX)
            return cand;
        int32_t off2 = type_at(tz, nt).off;
        if (local_s >= (int64_t)nt + off && local_s < (int64_t)nt + off2)
            return nt;
        t = nt;
        off = off2;
    }
    return local_s - off; /* a zone changing its offset 64 times in two days: not a real one */
}

const char *aspen_store_tz_name(const aspen_store_tz *tz) { return tz ? tz->name : "UTC"; }

void aspen_store_tz_close(aspen_store_tz *tz)
{
    if (!tz)
        return;
    free(tz->trans);
    free(tz->idx);
    free(tz);
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const unsigned char *p)
{
    return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

/* Parses a TZif image into tz. Returns NULL or what is wrong with it. */
static const char *parse_tzif(aspen_store_tz *tz, const unsigned char *b, size_t n)
{
    if (n < 44 || memcmp(b, "TZif", 4) != 0)
        return "not a TZif file";
    int version = b[4] ? b[4] - '0' : 1;
    size_t pos = 0;
    int width = 4;
    for (int pass = 0; pass < 2; pass++) {
        if (n - pos < 44 || memcmp(b + pos, "TZif", 4) != 0)
            return "a TZif header is missing or cut short";
        uint32_t isut = be32(b + pos + 20), isstd = be32(b + pos + 24), leap = be32(b + pos + 28),
                 timecnt = be32(b + pos + 32), typecnt = be32(b + pos + 36),
                 charcnt = be32(b + pos + 40);
        pos += 44;
        if (typecnt == 0 || typecnt > 256 || timecnt > 100000 || charcnt > 100000 ||
            leap > 100000 || (isut && isut != typecnt) || (isstd && isstd != typecnt))
            return "its header's counts are impossible";
        uint64_t size = (uint64_t)timecnt * (width + 1) + (uint64_t)typecnt * 6 + charcnt +
                        (uint64_t)leap * (width + 4) + isstd + isut;
        if (size > n - pos)
            return "it is cut short";
        if (version >= 2 && pass == 0) { /* skip the 32-bit block: the 64-bit one follows */
            pos += (size_t)size;
            width = 8;
            continue;
        }
        if (leap)
            return "it counts leap seconds (a \"right/\" zone): use the zone without the right/ "
                   "prefix";
        const unsigned char *tp = b + pos, *ip = tp + (size_t)timecnt * width,
                            *ty = ip + timecnt;
        tz->trans = timecnt ? malloc(timecnt * sizeof *tz->trans) : NULL;
        tz->idx = timecnt ? malloc(timecnt) : NULL;
        if (timecnt && (!tz->trans || !tz->idx))
            return "out of memory";
        for (uint32_t i = 0; i < timecnt; i++) {
            tz->trans[i] = width == 8 ? be64(tp + (size_t)i * 8) : (int32_t)be32(tp + (size_t)i * 4);
            tz->idx[i] = ip[i];
            if (ip[i] >= typecnt)
                return "a transition names a time type that does not exist";
            if (i && tz->trans[i] <= tz->trans[i - 1])
                return "its transitions are not in order";
        }
        tz->n_trans = timecnt;
        tz->n_types = typecnt;
        for (uint32_t i = 0; i < typecnt; i++) {
            int32_t off = (int32_t)be32(ty + (size_t)i * 6);
            if (off < -26 * 3600 || off > 26 * 3600)
                return "a UTC offset is beyond ±26 hours";
            tz->types[i].off = off;
            tz->types[i].dst = ty[(size_t)i * 6 + 4] != 0;
        }
        pos += (size_t)size;
        break;
    }
    if (version >= 2 && pos < n && b[pos] == '\n') {
        const unsigned char *end = memchr(b + pos + 1, '\n', n - pos - 1);
        if (!end)
            return "its footer is not terminated";
        size_t len = (size_t)(end - (b + pos + 1));
        char footer[128];
        if (len >= sizeof footer)
            return "its footer is too long";
        memcpy(footer, b + pos + 1, len);
        footer[len] = '\0';
        if (len && !parse_posix(footer, &tz->rule))
            return "its footer is not a TZ rule this reader understands";
    }
    return NULL;
}

static bool name_ok(const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len > TZ_NAME_MAX || name[0] == '/' || name[0] == '.')
        return false;
    for (const char *p = name; *p; p++) {
        char c = *p;
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '/' || c == '_' || c == '-' || c == '+' || c == '.'))
            return false;
        if (c == '/' && (p[1] == '/' || p[1] == '.' || p[1] == '\0'))
            return false; /* no empty, hidden, "." or ".." components */
    }
    return true;
}

/* ---- "did you mean" for a zone name ------------------------------------------------------------ */

#define TZ_NEAR_MAX 4096 /* names collected at most: tzdata has about 600 */
#define TZ_NEAR_LEN 48   /* the longest real name is about 32 bytes */

struct tz_names {
    char (*name)[TZ_NEAR_LEN];
    size_t n;
};

/* The zone files under dir/rel, depth levels down (America/Argentina/Buenos_Aires is three).
 * posix/ and right/ repeat the whole tree, and a zone name starts with a capital letter and has
 * no '.' (zone.tab, tzdata.zi, leapseconds and posixrules are no zones). */
static void tz_collect(const char *dir, const char *rel, int depth, struct tz_names *out)
{
    char path[4096];
    snprintf(path, sizeof path, "%s%s%s", dir, *rel ? "/" : "", rel);
    DIR *d = opendir(path);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && out->n < TZ_NEAR_MAX) {
        const char *n = e->d_name;
        if (n[0] < 'A' || n[0] > 'Z' || strchr(n, '.') || !strcmp(n, "posix") ||
            !strcmp(n, "right"))
            continue;
        char sub[TZ_NEAR_LEN];
        if (snprintf(sub, sizeof sub, "%s%s%s", rel, *rel ? "/" : "", n) >= (int)sizeof sub)
            continue;
        struct stat st;
        char full[4096 + TZ_NEAR_LEN];
        snprintf(full, sizeof full, "%s/%s", dir, sub);
        if (stat(full, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            if (depth > 1)
                tz_collect(dir, sub, depth - 1, out);
        } else if (S_ISREG(st.st_mode)) {
            memcpy(out->name[out->n++], sub, sizeof sub);
        }
    }
    closedir(d);
}

static int tz_name_cmp(const void *a, const void *b) { return strcmp(a, b); }

/* The zone under dir nearest to name (aspen_store_nearest's rule: a typo or two, a prefix), into
 * near; "" when none is near or the directory cannot be read. Sorted first, so the answer does
 * not depend on the directory's order. */
static void tz_nearest(const char *dir, const char *name, char *near, size_t size)
{
    near[0] = '\0';
    struct tz_names names = {calloc(TZ_NEAR_MAX, TZ_NEAR_LEN), 0};
    const char **list = calloc(TZ_NEAR_MAX, sizeof *list);
    if (names.name && list) {
        tz_collect(dir, "", 3, &names);
        qsort(names.name, names.n, TZ_NEAR_LEN, tz_name_cmp);
        for (size_t i = 0; i < names.n; i++)
            list[i] = names.name[i];
        const char *hit = aspen_store_nearest(name, strlen(name), list, names.n);
        if (hit)
            snprintf(near, size, "%s", hit);
    }
    free(list);
    free(names.name);
}

/* The zoneinfo directory: $TZDIR, else the system's. Its listing is the zone names, which is
 * what the errors point to (timedatectl, suggested before, is not on every host: trial 23). */
static const char *tz_dir(void)
{
    const char *dir = getenv("TZDIR");
    return dir && *dir ? dir : "/usr/share/zoneinfo";
}

/* A regular file (or a link to one) of that name in the zoneinfo directory. */
static bool tz_file_exists(const char *name)
{
    const char *dir = tz_dir();
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* A UTC offset written as a zone: "UTC+5", "GMT-03:30", "UT+0530", "+05:00", "UTC5" (optional
 * UTC/GMT/UT, a sign, 1-2 digits of hours, optional [:]MM minutes). True with the offset east of
 * UTC in minutes as a person reads it (UTC+5 is five hours ahead; POSIX TZ strings read the sign
 * the other way, which is why neither form is taken). */
static bool utc_offset_form(const char *name, int *east_min)
{
    const char *p = name;
    if (strncasecmp(p, "UTC", 3) == 0 || strncasecmp(p, "GMT", 3) == 0)
        p += 3;
    else if (strncasecmp(p, "UT", 2) == 0)
        p += 2;
    bool prefixed = p != name;
    int sign = 1;
    if (*p == '+' || *p == '-')
        sign = *p++ == '-' ? -1 : 1;
    else if (!prefixed)
        return false; /* "5" or "0530" alone is no zone of any kind */
    if (!isdigit((unsigned char)p[0]))
        return false;
    int h = p[0] - '0';
    p++;
    if (isdigit((unsigned char)p[0]) && !(p[1] && isdigit((unsigned char)p[1]) && !p[2]))
        h = h * 10 + (*p++ - '0');
    int m = 0;
    if (*p == ':')
        p++;
    if (*p) {
        if (!isdigit((unsigned char)p[0]) || !isdigit((unsigned char)p[1]) || p[2])
            return false;
        m = (p[0] - '0') * 10 + (p[1] - '0');
    }
    if (h > 23 || m > 59)
        return false;
    *east_min = sign * (h * 60 + m);
    return true;
}

/* The refusal of a UTC offset (trial 23: --tz UTC+5 got "did you mean UTC?", which would have
 * run the schedule five hours off): offsets are not zones here, and a whole-hour one has a
 * fixed zone of its own, Etc/GMT-N, whose sign is the POSIX one, the other way round. */
static int offset_refused(const char *shown, int east, aspen_store_error *err)
{
    int h = (east < 0 ? -east : east) / 60, m = (east < 0 ? -east : east) % 60;
    char off[16];
    snprintf(off, sizeof off, "%c%02d:%02d", east < 0 ? '-' : '+', h, m);
    if (east == 0)
        return store_err(err, ASPEN_STORE_EINVAL,
                         "time zone \"%s\" is a UTC offset, not an IANA zone name: offsets are not "
                         "accepted; give UTC (or leave --tz out: a schedule runs in UTC)",
                         shown);
    if (east > 14 * 60 || east < -12 * 60)
        return store_err(err, ASPEN_STORE_EINVAL,
                         "time zone \"%s\" is a UTC offset, not an IANA zone name: offsets are not "
                         "accepted, and no zone's clock is UTC%s (they run from -12:00 to "
                         "+14:00); give an IANA name such as Europe/Berlin, America/New_York or "
                         "UTC",
                         shown, off);
    if (m == 0)
        return store_err(err, ASPEN_STORE_EINVAL,
                         "time zone \"%s\" is a UTC offset, not an IANA zone name: offsets are not "
                         "accepted; give the IANA zone of the place whose clock you mean "
                         "(Europe/Berlin, America/New_York: it follows daylight-saving time), or "
                         "Etc/GMT%c%d "
                         "for a fixed UTC%s all year (the Etc/ names invert the sign: Etc/GMT%c%d "
                         "is %d hour%s %s UTC)",
                         shown, east > 0 ? '-' : '+', h, off, east > 0 ? '-' : '+', h, h,
                         h == 1 ? "" : "s", east > 0 ? "ahead of" : "behind");
    return store_err(err, ASPEN_STORE_EINVAL,
                     "time zone \"%s\" is a UTC offset, not an IANA zone name: offsets are not "
                     "accepted; give the city zone whose clock is UTC%s (Asia/Kolkata is "
                     "+05:30, America/St_Johns -03:30; ls %s lists them)",
                     shown, off, tz_dir());
}

int aspen_store_tz_open(const char *name, aspen_store_tz **out, aspen_store_error *err)
{
    if (!out)
        return store_err(err, ASPEN_STORE_EINVAL, "aspen_store_tz_open: out is NULL");
    *out = NULL;
    aspen_store_tz *tz = calloc(1, sizeof *tz);
    if (!tz)
        return store_err(err, ASPEN_STORE_ENOMEM, "out of memory loading a time zone");
    if (!name || strcmp(name, "UTC") == 0) { /* NULL: no zone given, the default */
        snprintf(tz->name, sizeof tz->name, "UTC");
        tz->n_types = 1;
        *out = tz;
        return 0;
    }
    /* An empty name was taken as UTC, silently: a --tz "$ZONE" whose variable was unset looked
     * accepted (trial 10). Give it as UTC, or leave it out. */
    if (!*name) {
        free(tz);
        return store_err(err, ASPEN_STORE_EINVAL,
                         "time zone \"\" is empty: give an IANA name such as Europe/Berlin, "
                         "America/New_York or UTC (without a zone a schedule runs in UTC)");
    }
    char shown[80];
    store_shown(name, strlen(name), 64, shown, sizeof shown);
    /* "localtime" is a file in the zoneinfo directory (a link to /etc/localtime), so it opened:
     * each host then read its own clock's zone, and engines on hosts set to different zones
     * disagreed on a schedule's occurrences. A schedule's zone must mean one thing everywhere. */
    if (strcasecmp(name, "localtime") == 0) {
        free(tz);
        return store_err(err, ASPEN_STORE_EINVAL,
                         "time zone \"%s\" is this host's own setting, not a zone: engines on "
                         "hosts set differently would disagree on when the schedule runs; give "
                         "an IANA name such as Europe/Berlin, America/New_York or UTC",
                         shown);
    }
    /* a real file of that name (GMT+0, GMT-0, GMT0 are links to UTC in tzdata) is taken below:
     * only an offset that no zone file is named after is refused as one */
    int east = 0;
    if (utc_offset_form(name, &east) && (!name_ok(name) || !tz_file_exists(name))) {
        free(tz);
        return offset_refused(shown, east, err);
    }
    if (!name_ok(name)) {
        free(tz);
        return store_err(err, ASPEN_STORE_EINVAL,
                         "time zone \"%s\" is not a zone name: give an IANA name such as "
                         "Europe/Berlin, America/New_York or UTC",
                         shown);
    }
    snprintf(tz->name, sizeof tz->name, "%s", name);
    const char *dir = tz_dir();
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0 && errno == ELOOP)
        fd = open(path, O_RDONLY | O_CLOEXEC); /* Debian links some names to others */
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        int e = fd < 0 ? errno : EISDIR;
        if (fd >= 0)
            close(fd);
        free(tz);
        /* the directory is read for a "did you mean" only when a message is asked for: a
         * caller without one (a pane drawing a schedule's times) may ask again every frame */
        char near[TZ_NEAR_LEN] = "";
        if (err && (e == ENOENT || e == ENOTDIR))
            tz_nearest(dir, name, near, sizeof near);
        if (near[0]) /* a typo of a real zone (trial 10: Europe/Pari got no hint) */
            return store_err(err, ASPEN_STORE_EINVAL,
                             "time zone \"%s\" is not in the time zone database (%s): did you "
                             "mean %s? (ls %s lists them)",
                             shown, dir, near, dir);
        if (e == ENOENT || e == EISDIR || e == ENOTDIR)
            return store_err(err, ASPEN_STORE_EINVAL,
                             "time zone \"%s\" is not in the time zone database (%s): give an "
                             "IANA name such as Europe/Berlin, America/New_York or UTC "
                             "(ls %s lists them; install tzdata if it is empty)",
                             shown, dir, dir);
        return store_err(err, ASPEN_STORE_EINVAL, "cannot read time zone file %s: %s", path,
                         strerror(e));
    }
    if (st.st_size > TZ_FILE_MAX) {
        close(fd);
        free(tz);
        return store_err(err, ASPEN_STORE_EINVAL, "time zone file %s is too large to be one",
                         path);
    }
    size_t size = (size_t)st.st_size, got = 0;
    unsigned char *buf = malloc(size ? size : 1);
    if (!buf) {
        close(fd);
        free(tz);
        return store_err(err, ASPEN_STORE_ENOMEM, "out of memory loading a time zone");
    }
    while (got < size) {
        ssize_t k = read(fd, buf + got, size - got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    close(fd);
    const char *why = parse_tzif(tz, buf, got);
    free(buf);
    if (why) {
        aspen_store_tz_close(tz);
        return store_err(err, ASPEN_STORE_EINVAL, "time zone file %s cannot be used: %s", path,
                         why);
    }
    *out = tz;
    return 0;
}
