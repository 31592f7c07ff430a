/* cli/table.c — tables that fit the terminal, for every `aspen` command that prints one.
 *
 * The tables used to be printf rows of fixed widths, 120 to 150 columns, which a terminal of 80
 * wraps into an unreadable staircase. Here a table knows its columns' priorities: it is laid out
 * for the width of the output (cli_term_width: $COLUMNS, else the terminal's, else 80 when stdout
 * is a pipe or a file), by first dropping the least important columns until the rest can fit, then
 * cutting the cells of the cuttable columns with the most to spare, one column at a time (with
 * "...", through cli_cell, so by display columns and never inside an escape; a column of names
 * keeps both ends of a cut name instead, and says that it cut). --wide (cli_wide) lays it out with no limit,
 * every column at its natural width; --json is never affected.
 */
#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

bool cli_wide = false;

size_t cli_term_width(void)
{
    if (cli_wide)
        return SIZE_MAX;
    /* $COLUMNS first: it is what a user sets to ask for a width (and a test, on a pipe) */
    const char *env = getenv("COLUMNS");
    if (env && *env) {
        char *end;
        errno = 0;
        long v = strtol(env, &end, 10);
        if (!*end && !errno && v >= 20 && v <= 100000)
            return (size_t)v;
    }
    struct winsize ws;
    if (isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20)
        return ws.ws_col;
    return 80;
}

struct cli_table {
    const cli_table_col *cols;
    size_t n_cols;
    char **cell;   /* n_rows * n_cols raw bytes (escaped when printed), NUL-terminated copies */
    size_t *len;   /* their lengths (a result may hold NUL bytes) */
    size_t *cols_w; /* their display widths, up to the column's max */
    size_t n_cells, cap_cells;
    uint64_t names_cols; /* bit c: column c holds names (cli_table_names) */
    bool oom;
};

cli_table *cli_table_new(const cli_table_col *cols, size_t n_cols)
{
    cli_table *t = n_cols ? calloc(1, sizeof *t) : NULL;
    if (!t)
        return NULL; /* the cell and print calls take NULL: print says out of memory */
    t->cols = cols;
    t->n_cols = n_cols;
    return t;
}

void cli_table_names(cli_table *t, size_t col)
{
    if (t && col < 64)
        t->names_cols |= (uint64_t)1 << col;
}

/* The display width of s cut at limit columns: what cli_cell would print. */
static size_t cell_width(const void *s, size_t len, size_t limit)
{
    size_t cap = limit * 6 + 16, cols = 0, used = 0;
    char *buf = malloc(cap);
    if (!buf)
        return limit;
    cli_cell_cols(s, len, limit, buf, cap, &cols, &used);
    free(buf);
    return cols;
}

/* A column's widest cell: its max, or 200 columns when it has none; with --wide every cell up to
 * 1000 columns, so that a 16 MiB result does not make a 16-million-column line (aspen show ID
 * and --json have it whole). */
#define CLI_TABLE_MAX 200
#define CLI_TABLE_WIDE_MAX 1000

static size_t col_max(const cli_table_col *c)
{
    if (cli_wide)
        return CLI_TABLE_WIDE_MAX;
    return c->max ? c->max : CLI_TABLE_MAX;
}

void cli_table_cell(cli_table *t, const void *s, size_t len)
{
    if (!t || t->oom)
        return;
    if (t->n_cells == t->cap_cells) {
        size_t nc = t->cap_cells ? t->cap_cells * 2 : 64;
        char **c = realloc(t->cell, nc * sizeof *c);
        if (c)
            t->cell = c;
        size_t *l = c ? realloc(t->len, nc * sizeof *l) : NULL;
        if (l)
            t->len = l;
        size_t *w = l ? realloc(t->cols_w, nc * sizeof *w) : NULL;
        if (!w) {
            t->oom = true;
            return;
        }
        t->cols_w = w;
        t->cap_cells = nc;
    }
    if (!s) {
        s = "";
        len = 0;
    }
    /* keep only what can be shown: a column is never wider than col_max, and every unit takes
     * at most 4 bytes a column (an escape fewer), so 16 bytes a column is plenty but for text of
     * mostly zero-width characters (whose cut then lacks its "..."). Copying whole 16 MiB results
     * of aspen jobs --all would take gigabytes. */
    size_t keep = col_max(&t->cols[t->n_cells % t->n_cols]) * 16 + 64;
    if (len > keep)
        len = keep;
    char *copy = malloc(len + 1);
    if (!copy) {
        t->oom = true;
        return;
    }
    memcpy(copy, s, len);
    copy[len] = '\0';
    const cli_table_col *c = &t->cols[t->n_cells % t->n_cols];
    t->cell[t->n_cells] = copy;
    t->len[t->n_cells] = len;
    t->cols_w[t->n_cells] = cell_width(copy, len, col_max(c));
    t->n_cells++;
}

void cli_table_str(cli_table *t, const char *s)
{
    cli_table_cell(t, s ? s : "", s ? strlen(s) : 0);
}

void cli_table_fmt(cli_table *t, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    size_t n = cli_vformat(buf, sizeof buf, fmt, ap);
    va_end(ap);
    cli_table_cell(t, buf, n);
}

static size_t text_width(const char *s)
{
    return cell_width(s, strlen(s), 1000);
}

/* A name of printable ASCII cut to width columns keeping its start and its end: the end holds
 * what tells similar names apart (.2026 / .2027), the start what they are. false for other text
 * (cut at the end by cli_cell as any cell) or a width too narrow for both ends. */
static bool middle_cut(const char *s, size_t len, size_t width, char *out, size_t cap)
{
    if (width < 7 || width >= cap || len <= width)
        return false;
    for (size_t i = 0; i < len; i++)
        if (s[i] < 0x21 || s[i] > 0x7e)
            return false;
    size_t tail = (width - 3) / 2, head = width - 3 - tail;
    memcpy(out, s, head);
    memcpy(out + head, "...", 3);
    memcpy(out + head + 3, s + len - tail, tail);
    out[width] = '\0';
    return true;
}

int cli_table_print(cli_table *t, FILE *f)
{
    if (!t || t->oom) {
        cli_error("out of memory laying out the table (--json prints the same data)");
        return -1;
    }
    size_t nc = t->n_cols, rows = t->n_cells / nc;
    size_t want = cli_term_width();
    size_t min[64], width[64];
    bool shown[64];
    if (nc > 64)
        nc = 64;
    for (size_t c = 0; c < nc; c++) {
        const cli_table_col *col = &t->cols[c];
        size_t w = text_width(col->head);
        for (size_t r = 0; r < rows; r++)
            if (t->cols_w[r * t->n_cols + c] > w)
                w = t->cols_w[r * t->n_cols + c];
        /* a column that is not cut keeps its natural width; a cut one keeps at least its
         * header and its min (a cell cut shorter than 4 columns would be only "...") */
        size_t m = col->min ? col->min : w;
        size_t hw = text_width(col->head);
        if (m < hw)
            m = hw;
        if (m < 4 && col->min)
            m = 4;
        min[c] = m < w ? m : w;
        width[c] = w;
        shown[c] = true;
    }
    /* 1. drop the least important columns (highest prio, the rightmost of equals) until the
     *    narrowest layout of the others fits */
    for (;;) {
        size_t need = 0, k = 0;
        for (size_t c = 0; c < nc; c++)
            if (shown[c]) {
                need += min[c] + (k ? 1 : 0);
                k++;
            }
        if (need <= want)
            break;
        size_t drop = nc;
        for (size_t c = 0; c < nc; c++)
            if (shown[c] && t->cols[c].prio > 0 &&
                (drop == nc || t->cols[c].prio >= t->cols[drop].prio))
                drop = c;
        if (drop == nc)
            break; /* only the columns that are always shown: print them, wider than asked */
        shown[drop] = false;
    }
    /* 2. cut a shown cuttable column by one, again and again, down to their mins: the one with
     *    the most columns above its min, counted prio + 1 times, so a long result or error gives
     *    way first but a short, less needed column (a type: its columns count more) is not cut
     *    to nothing while the result keeps its dozens (at 80 columns: a 23-column result and an
     *    11-column type, not both cut to 17) */
    size_t total = 0, k = 0;
    for (size_t c = 0; c < nc; c++)
        if (shown[c]) {
            total += width[c] + (k ? 1 : 0);
            k++;
        }
    while (total > want) {
        size_t cut = nc, best = 0;
        for (size_t c = 0; c < nc; c++) {
            if (!shown[c] || width[c] <= min[c])
                continue;
            size_t score = (width[c] - min[c]) * (size_t)(t->cols[c].prio + 1);
            if (cut == nc || score > best ||
                (score == best && t->cols[c].prio >= t->cols[cut].prio)) {
                cut = c;
                best = score;
            }
        }
        if (cut == nc)
            break;
        width[cut]--;
        total--;
    }
    /* the last shown column is not padded: no trailing spaces */
    size_t last = nc;
    for (size_t c = 0; c < nc; c++)
        if (shown[c])
            last = c;
    size_t bufcap = 0;
    for (size_t c = 0; c < nc; c++)
        if (width[c] * 6 + 16 > bufcap)
            bufcap = width[c] * 6 + 16;
    char *buf = malloc(bufcap);
    if (!buf) {
        cli_error("out of memory laying out the table (--json prints the same data)");
        return -1;
    }
    size_t names_cut = 0;
    const char *names_head = NULL;
    for (size_t r = 0; r <= rows; r++) {
        bool first = true;
        for (size_t c = 0; c < nc; c++) {
            if (!shown[c])
                continue;
            const char *s = r == 0 ? t->cols[c].head : t->cell[(r - 1) * t->n_cols + c];
            size_t len = r == 0 ? strlen(s) : t->len[(r - 1) * t->n_cols + c];
            size_t cols = 0, used = 0;
            char mid[256];
            if (r > 0 && (t->names_cols >> c & 1) && t->cols_w[(r - 1) * t->n_cols + c] > width[c]) {
                names_cut++;
                names_head = t->cols[c].head;
                if (middle_cut(s, len, width[c], mid, sizeof mid)) {
                    s = mid;
                    len = strlen(mid);
                }
            }
            cli_cell_cols(s, len, width[c], buf, bufcap, &cols, &used);
            size_t pad = width[c] > cols ? width[c] - cols : 0;
            if (!first)
                fputc(' ', f);
            first = false;
            if (t->cols[c].right)
                fprintf(f, "%*s%s", (int)pad, "", buf);
            else
                fprintf(f, "%s%*s", buf, c == last ? 0 : (int)pad, "");
        }
        fputc('\n', f);
    }
    free(buf);
    /* say what is not shown, so a narrow terminal never hides data silently */
    char hidden[512] = "";
    size_t hl = 0, nh = 0;
    for (size_t c = 0; c < nc; c++)
        if (!shown[c] && hl < sizeof hidden) {
            int w = snprintf(hidden + hl, sizeof hidden - hl, "%s%s", nh ? ", " : "",
                             t->cols[c].head);
            if (w > 0)
                hl += (size_t)w;
            nh++;
        }
    if (nh)
        fprintf(stderr, "(%s hidden to fit %zu columns: --wide shows every column)\n", hidden,
                want);
    if (names_cut) {
        char head[32]; /* lower-case: "2 QUEUE names" reads as a shout */
        size_t i = 0;
        for (; names_head[i] && i + 1 < sizeof head; i++)
            head[i] = (char)tolower((unsigned char)names_head[i]);
        head[i] = '\0';
        if (i > 1 && head[i - 1] == 's')
            head[i - 1] = '\0'; /* QUEUES (a list per row): "2 queue names", not "queues names" */
        fflush(f); /* after the table, also when both go to one file */
        fprintf(stderr, "(%zu %s name%s cut to fit %zu columns, keeping both ends: --wide shows "
                "them whole)\n", names_cut, head, names_cut == 1 ? "" : "s", want);
    }
    return 0;
}

void cli_table_free(cli_table *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n_cells; i++)
        free(t->cell[i]);
    free(t->cell);
    free(t->len);
    free(t->cols_w);
    free(t);
}
