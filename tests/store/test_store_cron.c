/* test_store_cron.c — the schedules' cron parser and time zones (store/cron.c, store/tz.c):
 * every syntax form, the documented errors naming the field, hostile input (random bytes,
 * huge numbers, long lists), next occurrences in UTC and across DST changes in real zones read
 * from the system's zoneinfo (Berlin, New York, Sydney, Lord Howe's 30-minute shift, Samoa's
 * skipped day, Kolkata's +5:30), dates past the zone table (the footer rule), and that zones are
 * read without the C library's TZ state (the process's TZ stays untouched). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "aspen_store.h"

/* Unix seconds of a UTC date (timegm is thread-unsafe-free and reads no TZ). */
static int64_t utc(int y, int mo, int d, int h, int mi)
{
    struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h,
                    .tm_min = mi};
    return (int64_t)timegm(&tm);
}

static void parse_ok(const char *expr, aspen_store_cron *c)
{
    aspen_store_error e = {0};
    int rc = aspen_store_cron_parse(expr, c, &e);
    if (rc)
        fail_msg("%s: %s", expr, e.msg);
}

static void parse_err(const char *expr, const char *want)
{
    aspen_store_cron c;
    aspen_store_error e = {0};
    int rc = aspen_store_cron_parse(expr, &c, &e);
    if (rc != ASPEN_STORE_EINVAL)
        fail_msg("\"%s\" was accepted (rc %d)", expr, rc);
    if (!strstr(e.msg, want))
        fail_msg("\"%s\": message \"%s\" lacks \"%s\"", expr, e.msg, want);
}

static aspen_store_tz *zone(const char *name)
{
    aspen_store_tz *tz = NULL;
    aspen_store_error e = {0};
    if (aspen_store_tz_open(name, &tz, &e))
        fail_msg("zone %s: %s", name, e.msg);
    return tz;
}

/* next occurrence after a UTC second, in seconds */
static int64_t next_s(const char *expr, aspen_store_tz *tz, int64_t after_s)
{
    aspen_store_cron c;
    parse_ok(expr, &c);
    int64_t next = 0;
    aspen_store_error e = {0};
    if (aspen_store_cron_next(&c, tz, after_s * 1000, &next, &e))
        fail_msg("%s: %s", expr, e.msg);
    assert_true(next > after_s * 1000);
    return next / 1000;
}

static void test_fields(void **state)
{
    (void)state;
    aspen_store_cron c;
    parse_ok("*/15 9-17 * * MON-FRI", &c);
    assert_true(c.minutes == (1ull | 1ull << 15 | 1ull << 30 | 1ull << 45));
    assert_int_equal(c.hours, 0x3fe00u);
    assert_int_equal(c.wdays, 0x3eu);
    assert_true(c.mday_star && !c.wday_star);
    parse_ok("0,30 0 1,15 jan,Jul sun", &c);
    assert_int_equal(c.months, (1u << 1) | (1u << 7));
    assert_int_equal(c.wdays, 1u);
    parse_ok("5/20 * * * 7", &c); /* N/S = N-59/S; 7 = Sunday */
    assert_true(c.minutes == (1ull << 5 | 1ull << 25 | 1ull << 45));
    assert_int_equal(c.wdays, 1u);
    parse_ok("0 0 * * FRI-SUN", &c);
    assert_int_equal(c.wdays, (1u << 5) | (1u << 6) | 1u);
    parse_ok("0 0 * * 5-7", &c);
    assert_int_equal(c.wdays, (1u << 5) | (1u << 6) | 1u);
    parse_ok("0 0 * * 7-7", &c); /* Sunday alone */
    assert_int_equal(c.wdays, 1u);
    parse_ok("0 0 * * 0-7", &c); /* every day, Sunday once */
    assert_int_equal(c.wdays, 0x7fu);
    parse_ok("  1-10/3   2   *   *   *  ", &c);
    assert_true(c.minutes == (1ull << 1 | 1ull << 4 | 1ull << 7 | 1ull << 10));
    parse_ok("@hourly", &c);
    assert_true(c.minutes == 1 && c.hours == 0xffffffu);
    parse_ok("@daily", &c);
    assert_true(c.minutes == 1 && c.hours == 1);
    parse_ok("@weekly", &c);
    assert_int_equal(c.wdays, 1u);
    parse_ok("@monthly", &c);
    assert_int_equal(c.mdays, 2u);
    parse_ok("@YEARLY", &c);
    assert_int_equal(c.months, 2u);
    parse_ok("@every 30s", &c);
    assert_int_equal(c.every_ms, 30000);
    parse_ok("@every 5m", &c);
    assert_int_equal(c.every_ms, 300000);
    parse_ok("@every 1h30m", &c);
    assert_int_equal(c.every_ms, 5400000);
    parse_ok("@every 2d", &c);
    assert_int_equal(c.every_ms, 2 * 86400000LL);
}

static void test_errors(void **state)
{
    (void)state;
    parse_err("0 0 32 * *", "day-of-month 32 is out of range 1-31");
    parse_err("60 * * * *", "minute 60 is out of range 0-59");
    parse_err("* 24 * * *", "hour 24 is out of range 0-23");
    parse_err("* * 0 * *", "day-of-month 0 is out of range 1-31");
    parse_err("* * * 13 *", "month 13 is out of range 1-12");
    parse_err("* * * * 8", "day-of-week 8 is out of range 0-7 (0 and 7 are Sunday)");
    parse_err("* * * FOO *", "month FOO is not a month: give 1-12 or a name JAN-DEC");
    parse_err("* * * * FUN", "day-of-week FUN is not a day of the week");
    parse_err("* * * *", "expected 5 fields (minute hour day-of-month month day-of-week), got 4");
    parse_err("0 * * * * *", "got 6; there is no seconds or year field");
    parse_err("*/0 * * * *", "minute step 0 in */0: a step must be 1 or more");
    parse_err("10-5 * * * *", "minute range 10-5 goes backwards");
    /* trial 23: a day-of-week range ending in 0 was read as ending in 7 (5-0 = FRI-SUN) while
     * every other backwards range was refused; SUN by name still ends a range as 7 */
    parse_err("0 0 * * 5-0", "day-of-week range 5-0 goes backwards: write the smaller value "
                             "first (Sunday is 0 or 7: 5-7 runs Friday to Sunday)");
    parse_err("0 0 * * 5-0/2", "day-of-week range 5-0/2 goes backwards");
    parse_err("0 0 * * 7-1", "day-of-week range 7-1 goes backwards: 7 is Sunday at the week's "
                             "end; a range from Sunday starts at 0 (0-1)");
    parse_err("0 22-2 * * *", "hour range 22-2 goes backwards: write the smaller value first (a "
                              "range wraps round in no field: 22-23,0-2 for both ends)");
    parse_err("0 0 * 11-2 *", "month range 11-2 goes backwards");
    parse_err("0 0 * NOV-FEB *", "month range NOV-FEB goes backwards");
    parse_err("1,,2 * * * *", "minute has an empty list item");
    parse_err("1, * * * *", "minute has an empty list item");
    parse_err("a * * * *", "minute value a is not a number");
    parse_err("1-2-3 * * * *", "minute value 2-3 is not a number");
    parse_err("*/ * * * *", "minute item */ has no step after '/'");
    parse_err("*/x * * * *", "minute step in */x is not a number");
    parse_err("*/61 * * * *", "larger than the field's range");
    parse_err("* * ? * *", "'?' is not supported");
    parse_err("0 0 30 2 *", "day-of-month 30 never occurs in the months given");
    parse_err("0 0 31 4,6 *", "day-of-month 31 never occurs");
    parse_err("", "empty: give 5 fields");
    parse_err("   ", "empty: give 5 fields");
    parse_err("@reboot", "unknown @reboot: use @hourly");
    parse_err("@daily 5", "@daily takes nothing after it");
    parse_err("@every", "@every needs a duration");
    parse_err("@every 10", "needs a unit after 10");
    parse_err("@every 10x", "unknown unit 'x'");
    parse_err("@every 500ms", "no milliseconds: the shortest @every is 1s");
    parse_err("@every 0s", "at least 1s");
    parse_err("@every 367d", "longer than 366 days");
    parse_err("@every 99999999999999999999h", "longer than 366 days");
    parse_err("@every 30m1h", "largest down once each");
    parse_err("@every 1h 2m", "one duration");
    parse_err("0 0 * * *\n", "control character");
    parse_err("0 0 * * \xc3\xa9", "not ASCII");
    parse_err("99999999999999999999 * * * *", "minute 99999999999999999999 is out of range");
    /* 29 February exists: this runs once every four years */
    aspen_store_cron c;
    parse_ok("0 0 29 2 *", &c);
    parse_ok("0 0 30 2 1", &c); /* "or": Mondays of February */
    aspen_store_error e = {0};
    assert_int_equal(aspen_store_cron_parse(NULL, &c, &e), ASPEN_STORE_EINVAL);
    char longer[400];
    memset(longer, '1', sizeof longer - 1);
    longer[sizeof longer - 1] = '\0';
    parse_err(longer, "longer than 256 bytes");
}

/* Random and mutated input never crashes, and whatever parses has a next occurrence. */
static void test_hostile(void **state)
{
    (void)state;
    static const char alphabet[] = "0123456789*/,-@ \tJANFEBSUNMONeveryhdms?L#W\x01\xff";
    static const char *const seeds[] = {"*/5 1-3 * JAN-MAR MON", "@every 1h30m", "0 0 29 2 *",
                                        "59 23 31 12 6"};
    uint64_t rnd = 0x9e3779b97f4a7c15ull;
    aspen_store_tz *berlin = zone("Europe/Berlin");
    for (int i = 0; i < 20000; i++) {
        char buf[64];
        size_t n;
        rnd ^= rnd << 13, rnd ^= rnd >> 7, rnd ^= rnd << 17;
        if (i % 2) {
            n = rnd % 40;
            for (size_t k = 0; k < n; k++) {
                rnd ^= rnd << 13, rnd ^= rnd >> 7, rnd ^= rnd << 17;
                buf[k] = alphabet[rnd % (sizeof alphabet - 1)];
            }
        } else {
            snprintf(buf, sizeof buf, "%s", seeds[rnd % 4]);
            n = strlen(buf);
            for (int k = 0; k < 3; k++) {
                rnd ^= rnd << 13, rnd ^= rnd >> 7, rnd ^= rnd << 17;
                buf[rnd % n] = alphabet[(rnd >> 16) % (sizeof alphabet - 1)];
            }
        }
        buf[n] = '\0';
        aspen_store_cron c;
        aspen_store_error e = {0};
        if (aspen_store_cron_parse(buf, &c, &e) == 0) {
            int64_t next = 0;
            int rc = aspen_store_cron_next(&c, berlin, 1700000000000LL, &next, &e);
            assert_true(rc == 0 || rc == ASPEN_STORE_EINVAL);
            if (rc == 0)
                assert_true(next > 1700000000000LL);
        } else {
            assert_true(e.msg[0] != '\0');
            assert_non_null(strstr(e.msg, "cron expression"));
        }
    }
    aspen_store_tz_close(berlin);
}

static void test_next_utc(void **state)
{
    (void)state;
    int64_t t = utc(2026, 3, 14, 10, 7); /* a Saturday */
    assert_int_equal(next_s("*/15 * * * *", NULL, t), utc(2026, 3, 14, 10, 15));
    assert_int_equal(next_s("0 9 * * MON-FRI", NULL, t), utc(2026, 3, 16, 9, 0));
    assert_int_equal(next_s("@hourly", NULL, t), utc(2026, 3, 14, 11, 0));
    assert_int_equal(next_s("@daily", NULL, t), utc(2026, 3, 15, 0, 0));
    assert_int_equal(next_s("@weekly", NULL, t), utc(2026, 3, 15, 0, 0));
    assert_int_equal(next_s("@monthly", NULL, t), utc(2026, 4, 1, 0, 0));
    assert_int_equal(next_s("@yearly", NULL, t), utc(2027, 1, 1, 0, 0));
    assert_int_equal(next_s("0 0 29 2 *", NULL, t), utc(2028, 2, 29, 0, 0));
    assert_int_equal(next_s("0 0 31 * *", NULL, t), utc(2026, 3, 31, 0, 0));
    assert_int_equal(next_s("0 0 31 * *", NULL, utc(2026, 3, 31, 0, 0)), utc(2026, 5, 31, 0, 0));
    /* day-of-month or day-of-week when both are given: the 13th or a Friday */
    assert_int_equal(next_s("0 0 13 * 5", NULL, t), utc(2026, 3, 20, 0, 0));
    assert_int_equal(next_s("0 0 13 * 5", NULL, utc(2026, 4, 10, 0, 0)), utc(2026, 4, 13, 0, 0));
    /* a leading star makes it "and": odd days that are Fridays */
    assert_int_equal(next_s("0 0 */2 * 5", NULL, t), utc(2026, 3, 27, 0, 0));
    /* strictly after: an occurrence exactly at after is not the next one */
    assert_int_equal(next_s("*/15 * * * *", NULL, utc(2026, 3, 14, 10, 15)),
                     utc(2026, 3, 14, 10, 30));
    assert_int_equal(next_s("59 23 31 12 *", NULL, t), utc(2026, 12, 31, 23, 59));
    /* @every: multiples since the epoch, in ms */
    aspen_store_cron c;
    parse_ok("@every 30s", &c);
    int64_t next = 0;
    assert_int_equal(aspen_store_cron_next(&c, NULL, 1700000000001LL, &next, NULL), 0);
    assert_int_equal(next, 1700000010000LL);
    assert_int_equal(aspen_store_cron_next(&c, NULL, 1700000010000LL, &next, NULL), 0);
    assert_int_equal(next, 1700000040000LL);
    parse_ok("@every 1s", &c);
    assert_int_equal(aspen_store_cron_next(&c, NULL, 999, &next, NULL), 0);
    assert_int_equal(next, 1000);
}

static void test_dst_europe(void **state)
{
    (void)state;
    aspen_store_tz *b = zone("Europe/Berlin");
    bool dst;
    assert_int_equal(aspen_store_tz_offset(b, utc(2026, 1, 10, 12, 0), &dst), 3600);
    assert_false(dst);
    assert_int_equal(aspen_store_tz_offset(b, utc(2026, 7, 10, 12, 0), &dst), 7200);
    assert_true(dst);
    /* 2026-03-29: 02:00 CET -> 03:00 CEST (01:00 UTC). 02:30 does not exist: it fires at the
     * jump, 03:00 CEST; the day after, 02:30 CEST as usual. */
    int64_t before = utc(2026, 3, 28, 12, 0);
    assert_int_equal(next_s("30 2 * * *", b, before), utc(2026, 3, 29, 1, 0));
    assert_int_equal(next_s("30 2 * * *", b, utc(2026, 3, 29, 1, 0)), utc(2026, 3, 30, 0, 30));
    /* every quarter hour across the gap: 01:45 CET, then 03:00 CEST once, then 03:15 */
    int64_t t = next_s("*/15 * * * *", b, utc(2026, 3, 29, 0, 30)); /* 01:30 CET */
    assert_int_equal(t, utc(2026, 3, 29, 0, 45));
    t = next_s("*/15 * * * *", b, t);
    assert_int_equal(t, utc(2026, 3, 29, 1, 0));
    t = next_s("*/15 * * * *", b, t);
    assert_int_equal(t, utc(2026, 3, 29, 1, 15));
    /* 9:00 local every day: 08:00 UTC before the change, 07:00 UTC after */
    assert_int_equal(next_s("0 9 * * *", b, utc(2026, 3, 28, 9, 0)), utc(2026, 3, 29, 7, 0));
    /* 2026-10-25: 03:00 CEST -> 02:00 CET (01:00 UTC). 02:30 happens twice: it fires once, the
     * first time (00:30 UTC), and the next is the day after. */
    assert_int_equal(next_s("30 2 * * *", b, utc(2026, 10, 24, 12, 0)), utc(2026, 10, 25, 0, 30));
    assert_int_equal(next_s("30 2 * * *", b, utc(2026, 10, 25, 0, 30)), utc(2026, 10, 26, 1, 30));
    /* hourly at :30 through the repeated hour: 02:30 CEST, then 03:30 CET (02:30 UTC) */
    assert_int_equal(next_s("30 * * * *", b, utc(2026, 10, 25, 0, 30)), utc(2026, 10, 25, 2, 30));
    /* asked from inside the second 02:xx: 02:30 already ran, the next is 03:30 CET */
    assert_int_equal(next_s("30 * * * *", b, utc(2026, 10, 25, 1, 10)), utc(2026, 10, 25, 2, 30));
    /* local midnight on a DST day */
    assert_int_equal(next_s("@daily", b, utc(2026, 3, 28, 12, 0)), utc(2026, 3, 28, 23, 0));
    assert_int_equal(next_s("@daily", b, utc(2026, 3, 28, 23, 0)), utc(2026, 3, 29, 22, 0));
    /* far past the table: the footer's rule (last Sunday of March, 2100) */
    assert_int_equal(next_s("30 2 * * *", b, utc(2100, 3, 27, 12, 0)), utc(2100, 3, 28, 1, 0));
    assert_int_equal(aspen_store_tz_offset(b, utc(2100, 7, 1, 0, 0), NULL), 7200);
    assert_int_equal(aspen_store_tz_offset(b, utc(2100, 12, 1, 0, 0), NULL), 3600);
    aspen_store_tz_close(b);
}

static void test_dst_elsewhere(void **state)
{
    (void)state;
    /* New York 2026-03-08 02:00 EST -> 03:00 EDT (07:00 UTC); 2026-11-01 02:00 EDT -> 01:00 EST */
    aspen_store_tz *ny = zone("America/New_York");
    assert_int_equal(next_s("0 2 * * *", ny, utc(2026, 3, 7, 12, 0)), utc(2026, 3, 8, 7, 0));
    assert_int_equal(next_s("30 1 * * *", ny, utc(2026, 10, 31, 12, 0)), utc(2026, 11, 1, 5, 30));
    assert_int_equal(next_s("30 1 * * *", ny, utc(2026, 11, 1, 5, 30)), utc(2026, 11, 2, 6, 30));
    aspen_store_tz_close(ny);
    /* Sydney, southern hemisphere: DST from the first Sunday of October (02:00 AEST -> 03:00) to
     * the first Sunday of April (03:00 AEDT -> 02:00) */
    aspen_store_tz *syd = zone("Australia/Sydney");
    assert_int_equal(aspen_store_tz_offset(syd, utc(2026, 1, 15, 0, 0), NULL), 11 * 3600);
    assert_int_equal(aspen_store_tz_offset(syd, utc(2026, 6, 15, 0, 0), NULL), 10 * 3600);
    assert_int_equal(next_s("30 2 * * *", syd, utc(2026, 10, 3, 0, 0)), utc(2026, 10, 3, 16, 0));
    assert_int_equal(aspen_store_tz_offset(syd, utc(2099, 1, 15, 0, 0), NULL), 11 * 3600);
    aspen_store_tz_close(syd);
    /* Lord Howe shifts by 30 minutes: +10:30 standard, +11 summer */
    aspen_store_tz *lh = zone("Australia/Lord_Howe");
    assert_int_equal(aspen_store_tz_offset(lh, utc(2026, 6, 15, 0, 0), NULL), 10 * 3600 + 1800);
    assert_int_equal(aspen_store_tz_offset(lh, utc(2026, 1, 15, 0, 0), NULL), 11 * 3600);
    aspen_store_tz_close(lh);
    /* Kolkata: +5:30, no DST */
    aspen_store_tz *in = zone("Asia/Kolkata");
    assert_int_equal(next_s("0 9 * * *", in, utc(2026, 3, 14, 0, 0)), utc(2026, 3, 14, 3, 30));
    aspen_store_tz_close(in);
    /* Samoa skipped 2011-12-30 entirely (-10 -> +14, at 10:00 UTC): a daily noon job ran on the
     * 29th, at the jump for the day that never was, then on the 31st */
    aspen_store_tz *apia = zone("Pacific/Apia");
    int64_t jump = utc(2011, 12, 30, 10, 0);
    int64_t t = next_s("0 12 * * *", apia, utc(2011, 12, 29, 0, 0));
    assert_int_equal(t, utc(2011, 12, 29, 22, 0)); /* 12:00 on the 29th at -10 */
    t = next_s("0 12 * * *", apia, t);
    assert_int_equal(t, jump);
    t = next_s("0 12 * * *", apia, t);
    assert_int_equal(t, utc(2011, 12, 30, 22, 0)); /* 12:00 on the 31st at +14 */
    assert_int_equal(next_s("0 12 30 12 *", apia, utc(2011, 12, 29, 0, 0)), jump);
    aspen_store_tz_close(apia);
    /* a fixed-offset zone with no transitions */
    aspen_store_tz *gmt5 = zone("Etc/GMT+5");
    assert_int_equal(aspen_store_tz_offset(gmt5, utc(2026, 1, 1, 0, 0), NULL), -5 * 3600);
    aspen_store_tz_close(gmt5);
}

static void test_zone_errors(void **state)
{
    (void)state;
    aspen_store_tz *tz = NULL;
    aspen_store_error e = {0};
    assert_int_equal(aspen_store_tz_open("Europe/Berln", &tz, &e), ASPEN_STORE_EINVAL);
    assert_null(tz);
    assert_non_null(strstr(e.msg, "time zone \"Europe/Berln\" is not in the time zone database"));
    /* a typo gets the zone meant, from the zoneinfo files (trial 10); a name near none gets the
     * examples, and no zone is made up */
    assert_non_null(strstr(e.msg, "did you mean Europe/Berlin?"));
    e = (aspen_store_error){0};
    assert_int_equal(aspen_store_tz_open("America/Argentina/Buenos_Aire", &tz, &e),
                     ASPEN_STORE_EINVAL);
    assert_non_null(strstr(e.msg, "did you mean America/Argentina/Buenos_Aires?"));
    e = (aspen_store_error){0};
    assert_int_equal(aspen_store_tz_open("Mars/Olympus_Mons", &tz, &e), ASPEN_STORE_EINVAL);
    assert_null(strstr(e.msg, "did you mean"));
    assert_non_null(strstr(e.msg, "give an IANA name such as Europe/Berlin"));
    /* a zone means one thing on every host: "localtime" (each host's own setting, a file in
     * zoneinfo, so it opened) and "" (taken as UTC) are refused; NULL is the default, UTC */
    e = (aspen_store_error){0};
    assert_int_equal(aspen_store_tz_open("localtime", &tz, &e), ASPEN_STORE_EINVAL);
    assert_null(tz);
    assert_non_null(strstr(e.msg, "is this host's own setting, not a zone"));
    e = (aspen_store_error){0};
    assert_int_equal(aspen_store_tz_open("", &tz, &e), ASPEN_STORE_EINVAL);
    assert_null(tz);
    assert_non_null(strstr(e.msg, "time zone \"\" is empty"));
    assert_int_equal(aspen_store_tz_open(NULL, &tz, &e), 0);
    assert_string_equal(aspen_store_tz_name(tz), "UTC");
    aspen_store_tz_close(tz);
    tz = NULL;
    static const char *const bad[] = {"../../etc/passwd", "/etc/passwd", "Europe/../../etc",
                                      "Europe//Berlin", "Europe/", "Europe", ".hidden",
                                      "a b", "Europe/Berlin\n", "\xc3\xa9t\xc3\xa9"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        e = (aspen_store_error){0};
        assert_int_equal(aspen_store_tz_open(bad[i], &tz, &e), ASPEN_STORE_EINVAL);
        assert_null(tz);
        assert_true(strstr(e.msg, "not a zone name") || strstr(e.msg, "not in the time zone"));
    }
    /* a file that is not TZif, and a cut-short one, in a TZDIR of our own */
    char dir[] = "/tmp/aspen-tz-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/Bad", dir);
    FILE *fp = fopen(path, "w");
    fputs("not a zone", fp);
    fclose(fp);
    snprintf(path, sizeof path, "%s/Cut", dir);
    fp = fopen(path, "w");
    FILE *in = fopen("/usr/share/zoneinfo/Europe/Berlin", "rb");
    char buf[300];
    size_t n = fread(buf, 1, sizeof buf, in);
    fclose(in);
    fwrite(buf, 1, n, fp);
    fclose(fp);
    setenv("TZDIR", dir, 1); /* this test is single-threaded */
    assert_int_equal(aspen_store_tz_open("Bad", &tz, &e), ASPEN_STORE_EINVAL);
    assert_non_null(strstr(e.msg, "not a TZif file"));
    assert_int_equal(aspen_store_tz_open("Cut", &tz, &e), ASPEN_STORE_EINVAL);
    assert_non_null(strstr(e.msg, "cannot be used"));
    unsetenv("TZDIR");
    snprintf(path, sizeof path, "%s/Bad", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/Cut", dir);
    unlink(path);
    rmdir(dir);
    /* a UTC offset is no zone: refused saying so, with the Etc/ zone of a whole hour (its sign
     * inverted) — "UTC+5" got "did you mean UTC?" (trial 23); GMT+0, a tzdata file, opens */
    static const struct {
        const char *name, *says;
    } offsets[] = {
        {"UTC+5", "or Etc/GMT-5 for a fixed UTC+05:00 all year (the Etc/ names invert the sign: "
                  "Etc/GMT-5 is 5 hours ahead of UTC)"},
        {"GMT-3", "Etc/GMT+3 for a fixed UTC-03:00"},
        {"utc+10", "Etc/GMT-10"},
        {"UTC5", "Etc/GMT-5"},
        {"+05:00", "Etc/GMT-5"},
        {"UTC+0530", "whose clock is UTC+05:30 (Asia/Kolkata is +05:30"},
        {"UTC-03:30", "whose clock is UTC-03:30"},
        {"UTC+0", "give UTC"},
        {"UTC+15", "no zone's clock is UTC+15:00"},
    };
    for (size_t i = 0; i < sizeof offsets / sizeof offsets[0]; i++) {
        e = (aspen_store_error){0};
        assert_int_equal(aspen_store_tz_open(offsets[i].name, &tz, &e), ASPEN_STORE_EINVAL);
        assert_null(tz);
        if (!strstr(e.msg, "is a UTC offset, not an IANA zone name: offsets are not accepted") ||
            !strstr(e.msg, offsets[i].says) || strstr(e.msg, "did you mean"))
            fail_msg("%s: %s", offsets[i].name, e.msg);
    }
    assert_int_equal(aspen_store_tz_open("GMT+0", &tz, &e), 0);
    aspen_store_tz_close(tz);
    assert_int_equal(aspen_store_tz_open("Etc/GMT-5", &tz, &e), 0);
    assert_int_equal(aspen_store_tz_offset(tz, 12345, NULL), 5 * 3600);
    aspen_store_tz_close(tz);
    /* UTC needs no file */
    assert_int_equal(aspen_store_tz_open("UTC", &tz, &e), 0);
    assert_string_equal(aspen_store_tz_name(tz), "UTC");
    assert_int_equal(aspen_store_tz_offset(tz, 12345, NULL), 0);
    aspen_store_tz_close(tz);
}

/* The C library's zone is never consulted or changed. */
static void test_no_tz_state(void **state)
{
    (void)state;
    setenv("TZ", "America/Los_Angeles", 1);
    tzset();
    aspen_store_tz *b = zone("Europe/Berlin");
    assert_int_equal(next_s("0 9 * * *", b, utc(2026, 7, 1, 0, 0)), utc(2026, 7, 1, 7, 0));
    assert_string_equal(getenv("TZ"), "America/Los_Angeles");
    aspen_store_tz_close(b);
    unsetenv("TZ");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fields),         cmocka_unit_test(test_errors),
        cmocka_unit_test(test_hostile),        cmocka_unit_test(test_next_utc),
        cmocka_unit_test(test_dst_europe),     cmocka_unit_test(test_dst_elsewhere),
        cmocka_unit_test(test_zone_errors),    cmocka_unit_test(test_no_tz_state),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
