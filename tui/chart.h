/* tui/chart.h — the Metrics pane's arithmetic (tui/chart.c), kept free of curses and of the store
 * so tests/tui/test_chart.c checks it alone: the windows the pane cycles through, how many
 * minutes one chart column covers, a rate over the part of a window that has happened, and the
 * rows of a bar chart drawn in block characters (or ASCII on a terminal without UTF-8).
 */
#ifndef ASPEN_TUI_CHART_H
#define ASPEN_TUI_CHART_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The windows `w` cycles through, shortest first (the default rollup retention is 72 h). */
typedef struct tui_metrics_window {
    const char *name; /* "15m", "1h", "24h", "7d": as `aspen metrics --since` takes it */
    int64_t minutes;
} tui_metrics_window;
size_t tui_metrics_windows(const tui_metrics_window **out);

/* Minutes per chart column so a window of span minutes fits in cols columns: the smallest whole
 * number of minutes with ceil(span / step) <= cols (at least 1; cols < 1 counts as 1). */
int64_t tui_metrics_step(int64_t span_minutes, int cols);

/* Events per minute over a window [start_minute, start_minute + minutes) that has happened up to
 * now_ms only in part (its last minute may be running): count over the time elapsed (at least a
 * second), as `aspen metrics` divides its jobs/s, so a 1h window 30 s into its newest minute
 * does not read low. 0 for a window not begun. */
double tui_metrics_per_min(uint64_t count, int64_t start_minute, int64_t minutes, int64_t now_ms);

/* A rate or a chart's scale in at most 6 columns, as the header and `aspen metrics` print a
 * figure: "0", whole numbers as integers ("12", "340"), "5.7" under 100, "5.7k" "57k" "1.2M"
 * from a thousand, and small rates with two significant digits ("0.017", "0.33"); under 0.001:
 * "<0.001". Negative or not a number: "-". */
void tui_fmt_rate(double v, char *out, size_t cap);

/* The eighth blocks ▁ ▂ ▃ ▄ ▅ ▆ ▇ █ (UTF-8, 3 bytes each): [0] is one eighth, [7] a full cell; the
 * header's sparkline and the pane's charts draw with them. */
extern const char *const tui_blocks[8];

/* A number of minutes as a window or step is named: "1m" "20m" "1h" "1h30m" "3d"; < 1: "-". */
void tui_fmt_minutes(int64_t minutes, char *out, size_t cap);

/* Row `row` (0 = the top) of a bar chart `height` rows tall, one column per value, scaled so max
 * fills the height: each cell holds eighths of a row (utf8: ▁..█, 3 bytes each; else '_' for
 * under half, '+' for half or more, '#' full). A value above 0 shows at least an eighth, so one
 * failure among thousands is still seen. Writes at most cap - 1 bytes and a NUL (whole cells
 * only); returns the columns written. */
size_t tui_bar_row(const double *v, size_t n, double max, int height, int row, bool utf8,
                   char *out, size_t cap);

#endif
