/* tui/chart.c — the Metrics pane's arithmetic (chart.h): windows, the minutes a chart column
 * covers, rates over a partly elapsed window and bar chart rows. No curses: test_chart.c. */
#include "chart.h"

#include <stdio.h>
#include <string.h>

const char *const tui_blocks[8] = {"\xe2\x96\x81", "\xe2\x96\x82", "\xe2\x96\x83",
                                   "\xe2\x96\x84", "\xe2\x96\x85", "\xe2\x96\x86",
                                   "\xe2\x96\x87", "\xe2\x96\x88"};

size_t tui_metrics_windows(const tui_metrics_window **out)
{
    static const tui_metrics_window w[] = {
        {"15m", 15}, {"1h", 60}, {"24h", 24 * 60}, {"7d", 7 * 24 * 60},
    };
    *out = w;
    return sizeof w / sizeof w[0];
}

int64_t tui_metrics_step(int64_t span_minutes, int cols)
{
    if (span_minutes < 1)
        return 1;
    if (cols < 1)
        cols = 1;
    int64_t step = (span_minutes + cols - 1) / cols; /* ceil: span and cols are positive */
    return step < 1 ? 1 : step;
}

double tui_metrics_per_min(uint64_t count, int64_t start_minute, int64_t minutes, int64_t now_ms)
{
    if (minutes < 1)
        return 0;
    int64_t start_ms = start_minute * 60000, end_ms = (start_minute + minutes) * 60000;
    if (end_ms > now_ms)
        end_ms = now_ms;
    if (end_ms <= start_ms)
        return 0;
    int64_t ms = end_ms - start_ms;
    if (ms < 1000)
        ms = 1000; /* a window a few ms old would turn one job into thousands a minute */
    return (double)count * 60000.0 / (double)ms;
}

void tui_fmt_rate(double v, char *out, size_t cap)
{
    if (!(v >= 0)) /* NaN too */
        snprintf(out, cap, "-");
    else if (v == 0)
        snprintf(out, cap, "0");
    else if (v < 0.001)
        snprintf(out, cap, "<0.001");
    else if (v < 1)
        snprintf(out, cap, "%.2g", v);
    else if (v < 100 && v == (double)(long long)v)
        snprintf(out, cap, "%lld", (long long)v);
    else if (v < 99.95)
        snprintf(out, cap, "%.1f", v);
    else if (v < 999.5)
        snprintf(out, cap, "%.0f", v);
    else if (v < 9999.5)
        snprintf(out, cap, "%.1fk", v / 1e3);
    else if (v < 999499.5)
        snprintf(out, cap, "%.0fk", v / 1e3);
    else if (v < 9.9995e9)
        snprintf(out, cap, v < 9.9995e6 ? "%.1fM" : "%.0fM", v / 1e6);
    else
        snprintf(out, cap, "%.0fG", v / 1e9 < 99999 ? v / 1e9 : 99999.0);
}

void tui_fmt_minutes(int64_t minutes, char *out, size_t cap)
{
    if (minutes < 1)
        snprintf(out, cap, "-");
    else if (minutes % 1440 == 0)
        snprintf(out, cap, "%lldd", (long long)(minutes / 1440));
    else if (minutes % 60 == 0)
        snprintf(out, cap, "%lldh", (long long)(minutes / 60));
    else if (minutes > 60)
        snprintf(out, cap, "%lldh%02lldm", (long long)(minutes / 60), (long long)(minutes % 60));
    else
        snprintf(out, cap, "%lldm", (long long)minutes);
}

size_t tui_bar_row(const double *v, size_t n, double max, int height, int row, bool utf8,
                   char *out, size_t cap)
{
    size_t w = 0, cols = 0;
    if (cap)
        out[0] = '\0';
    if (height < 1 || row < 0 || row >= height)
        return 0;
    int from_bottom = height - 1 - row;
    for (size_t i = 0; i < n; i++) {
        long eighths = 0;
        if (max > 0 && v[i] > 0) {
            double units = v[i] / max * (double)height * 8.0;
            if (units > (double)height * 8.0)
                units = (double)height * 8.0;
            eighths = (long)(units + 0.5);
            if (eighths < 1)
                eighths = 1;
        }
        long fill = eighths - (long)from_bottom * 8;
        const char *cell;
        char ascii[2] = {0, 0};
        if (fill <= 0)
            cell = " ";
        else if (utf8)
            cell = tui_blocks[(fill > 8 ? 8 : fill) - 1];
        else {
            ascii[0] = fill >= 8 ? '#' : fill >= 4 ? '+' : '_';
            cell = ascii;
        }
        size_t len = strlen(cell);
        if (w + len + 1 > cap)
            break;
        memcpy(out + w, cell, len);
        w += len;
        out[w] = '\0';
        cols++;
    }
    return cols;
}
