/* tests/tui/test_chart.c — cmocka tests of the Metrics pane's arithmetic (tui/chart.c): the
 * windows `w` cycles through, the minutes one chart column covers at 80 and 160 columns (every
 * window fits, none wider than the terminal), rates over a window whose newest minute is still
 * running, minute names, and bar chart rows in block characters and ASCII — scaled to the
 * largest value, a single failure still visible, hostile input (no columns, a zero or negative
 * maximum, NaN-free overflow of the height, a buffer too small) never written past. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "chart.h"
#include "view.h"

#include <math.h>
#include <string.h>

static void test_windows(void **st)
{
    (void)st;
    const tui_metrics_window *w;
    size_t n = tui_metrics_windows(&w);
    assert_int_equal(n, 4);
    assert_string_equal(w[0].name, "15m");
    assert_int_equal(w[1].minutes, 60);
    assert_int_equal(w[2].minutes, 1440);
    assert_string_equal(w[3].name, "7d");
    assert_int_equal(w[3].minutes, 7 * 24 * 60); /* issue 9: 15 min / 1 h / 24 h / 7 d */
    for (size_t i = 1; i < n; i++)
        assert_true(w[i].minutes > w[i - 1].minutes); /* shortest first: w goes longer */
}

static void test_step(void **st)
{
    (void)st;
    /* 80 columns leave 72 for the chart, 160 leave 152 */
    assert_int_equal(tui_metrics_step(15, 72), 1);
    assert_int_equal(tui_metrics_step(60, 72), 1);
    assert_int_equal(tui_metrics_step(1440, 72), 20);
    assert_int_equal(tui_metrics_step(4320, 72), 60);
    assert_int_equal(tui_metrics_step(1440, 152), 10);  /* ceil(9.47) */
    assert_int_equal(tui_metrics_step(4320, 152), 29);  /* ceil(28.4) */
    static const int64_t spans[] = {1, 15, 60, 61, 1440, 4320, 10080, 527040};
    static const int widths[] = {1, 7, 72, 73, 152, 512};
    for (size_t i = 0; i < sizeof spans / sizeof spans[0]; i++)
        for (size_t k = 0; k < sizeof widths / sizeof widths[0]; k++) {
            int64_t s = tui_metrics_step(spans[i], widths[k]);
            int64_t cols = (spans[i] + s - 1) / s;
            assert_true(cols <= widths[k]);                          /* fits */
            assert_true(s == 1 || (spans[i] + s - 2) / (s - 1) > widths[k]); /* smallest */
        }
    /* nonsense never gives a step below a minute or a division by zero */
    assert_int_equal(tui_metrics_step(0, 72), 1);
    assert_int_equal(tui_metrics_step(-5, 72), 1);
    assert_int_equal(tui_metrics_step(60, 0), 60);
    assert_int_equal(tui_metrics_step(60, -3), 60);
}

static void test_per_min(void **st)
{
    (void)st;
    int64_t m0 = 29000000; /* a unix minute */
    /* a whole past hour: 120 jobs, 2 a minute */
    assert_true(tui_metrics_per_min(120, m0, 60, (m0 + 120) * 60000) == 2.0);
    /* the window's last minute is 30 s old: 59.5 minutes elapsed */
    double r = tui_metrics_per_min(119, m0, 60, (m0 + 59) * 60000 + 30000);
    assert_true(r > 1.999 && r < 2.001);
    /* a window not begun, or empty */
    assert_true(tui_metrics_per_min(5, m0, 60, m0 * 60000) == 0.0);
    assert_true(tui_metrics_per_min(5, m0, 0, (m0 + 1) * 60000) == 0.0);
    /* 3 ms into a window: counted as a second, not 20,000 a minute */
    assert_true(tui_metrics_per_min(1, m0, 1, m0 * 60000 + 3) == 60.0);
}

static void test_fmt_minutes(void **st)
{
    (void)st;
    char b[32];
    tui_fmt_minutes(1, b, sizeof b);
    assert_string_equal(b, "1m");
    tui_fmt_minutes(20, b, sizeof b);
    assert_string_equal(b, "20m");
    tui_fmt_minutes(60, b, sizeof b);
    assert_string_equal(b, "1h");
    tui_fmt_minutes(90, b, sizeof b);
    assert_string_equal(b, "1h30m");
    tui_fmt_minutes(4320, b, sizeof b);
    assert_string_equal(b, "3d");
    tui_fmt_minutes(0, b, sizeof b);
    assert_string_equal(b, "-");
}

static void test_bar_rows_ascii(void **st)
{
    (void)st;
    const double v[] = {0, 1, 2, 4, 8};
    char b[64];
    /* 2 rows tall, max 8: 8 fills both rows, 4 the bottom one, 2 half of it, 1 a quarter */
    assert_int_equal(tui_bar_row(v, 5, 8, 2, 0, false, b, sizeof b), 5);
    assert_string_equal(b, "    #");
    assert_int_equal(tui_bar_row(v, 5, 8, 2, 1, false, b, sizeof b), 5);
    assert_string_equal(b, " _+##");
    /* one failure among thousands still shows an eighth */
    const double f[] = {1, 5000};
    tui_bar_row(f, 2, 5000, 3, 2, false, b, sizeof b);
    assert_string_equal(b, "_#");
    /* values over the maximum are clipped, not drawn past the top row */
    const double big[] = {100};
    tui_bar_row(big, 1, 10, 2, 0, false, b, sizeof b);
    assert_string_equal(b, "#");
    /* nothing at all: blanks (no division by a zero maximum) */
    const double z[] = {0, 0, 0};
    tui_bar_row(z, 3, 0, 2, 1, false, b, sizeof b);
    assert_string_equal(b, "   ");
    const double neg[] = {-3, 2};
    tui_bar_row(neg, 2, -1, 1, 0, false, b, sizeof b);
    assert_string_equal(b, "  ");
}

static void test_bar_rows_utf8(void **st)
{
    (void)st;
    const double v[] = {1, 8};
    char b[64];
    assert_int_equal(tui_bar_row(v, 2, 8, 1, 0, true, b, sizeof b), 2);
    assert_string_equal(b, "\xe2\x96\x81\xe2\x96\x88"); /* ▁█ */
    tui_bar_row(v, 2, 8, 2, 1, true, b, sizeof b);
    assert_string_equal(b, "\xe2\x96\x82\xe2\x96\x88"); /* 1/8 of 2 rows: 2 eighths, ▂ */
}

static void test_bar_rows_bounds(void **st)
{
    (void)st;
    const double v[] = {8, 8, 8, 8};
    char b[8];
    memset(b, 'X', sizeof b);
    /* 3 bytes a cell: 7 bytes of room hold 2 cells and the NUL, never a cut character */
    assert_int_equal(tui_bar_row(v, 4, 8, 1, 0, true, b, 7), 2);
    assert_int_equal(strlen(b), 6);
    assert_int_equal(b[7], 'X');
    assert_int_equal(tui_bar_row(v, 4, 8, 1, 0, false, b, 3), 2);
    assert_string_equal(b, "##");
    /* a row outside the chart, no height, no room: nothing */
    assert_int_equal(tui_bar_row(v, 4, 8, 2, 2, false, b, sizeof b), 0);
    assert_string_equal(b, "");
    assert_int_equal(tui_bar_row(v, 4, 8, 0, 0, false, b, sizeof b), 0);
    assert_int_equal(tui_bar_row(v, 4, 8, 2, -1, false, b, sizeof b), 0);
    assert_int_equal(tui_bar_row(v, 4, 8, 1, 0, false, b, 0), 0);
    assert_int_equal(tui_bar_row(v, 0, 8, 1, 0, false, b, sizeof b), 0);
    assert_string_equal(b, "");
}

/* The tab row with the Metrics tab: at 80 columns the seven tabs (one column apart) leave the
 * jobs pane's "filter: state:failed | sort guest" and more in view; from 100 the padded names. */
static void test_tabs_fit(void **st)
{
    (void)st;
    char b[32];
    int x = 0;
    for (int p = 0; p < TUI_PANE_COUNT; p++) {
        tui_tab_label((tui_pane)p, 80, b, sizeof b);
        x += (int)strlen(b) + 1;
    }
    assert_true(80 - x - 1 >= 37);
    tui_tab_label(TUI_PANE_METRICS, 80, b, sizeof b);
    assert_string_equal(b, "7Stats");
    tui_tab_label(TUI_PANE_METRICS, 100, b, sizeof b);
    assert_string_equal(b, " 7 Metrics ");
    tui_tab_label(TUI_PANE_ENGINES, 99, b, sizeof b);
    assert_string_equal(b, "4Eng");
}

/* The Metrics pane's scales and rates (the trial read "5743.0" on a chart's scale). */
static void test_fmt_rate(void **st)
{
    (void)st;
    static const struct {
        double v;
        const char *want;
    } cases[] = {
        {0, "0"},          {5743.0, "5.7k"},   {12, "12"},       {5.74, "5.7"},
        {340, "340"},      {99.96, "100"},     {999.6, "1.0k"},  {57430, "57k"},
        {1234567, "1.2M"}, {1.0 / 60, "0.017"}, {0.33, "0.33"}, {0.0004, "<0.001"},
        {-1, "-"},         {1e15, "99999G"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[16];
        tui_fmt_rate(cases[i].v, out, sizeof out);
        if (strcmp(out, cases[i].want) != 0)
            fail_msg("tui_fmt_rate(%g) = '%s', want '%s'", cases[i].v, out, cases[i].want);
    }
    char out[16];
    tui_fmt_rate((double)NAN, out, sizeof out);
    assert_string_equal(out, "-");
    for (double v = 0.0005; v < 1e13; v *= 1.37) { /* never wider than the chart's gutter */
        tui_fmt_rate(v, out, sizeof out);
        if (strlen(out) > 6)
            fail_msg("tui_fmt_rate(%g) = '%s': wider than 6 columns", v, out);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_windows),       cmocka_unit_test(test_step),
        cmocka_unit_test(test_fmt_rate),
        cmocka_unit_test(test_per_min),       cmocka_unit_test(test_fmt_minutes),
        cmocka_unit_test(test_bar_rows_ascii), cmocka_unit_test(test_bar_rows_utf8),
        cmocka_unit_test(test_bar_rows_bounds), cmocka_unit_test(test_tabs_fit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
