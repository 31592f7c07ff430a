/* cli/output.c — how the `aspen` commands put job fields on a terminal and into JSON.
 *
 * Whatever a job carries (its type, tags, names, payload, result, error, log lines) was written
 * by whoever submitted or ran it, so the text output goes through the one sanitiser both front
 * ends share (tui/include/aspen_text.h): controls, C1, bidi overrides and invalid UTF-8 are shown escaped,
 * never sent raw and never dropped. Error messages too: they quote types, names and guests' words.
 *
 * --json output must be UTF-8 for jansson (json_string returns NULL on anything else, and the field
 * silently vanished): text that is not well-formed UTF-8 is given with one U+FFFD per bad byte,
 * and a result, an error or a log line that is not UTF-8 also comes exactly as "result_base64",
 * "error_base64", "line_base64" (cli_json_set_bytes, cli_json_set_text). The JSON is printed with
 * every non-ASCII character as a \uXXXX escape, so it is lossless and terminal-safe at once.
 * docs/OPERATING.md states this convention.
 */
#include "cli.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

size_t cli_vformat(char *out, size_t cap, const char *fmt, va_list ap)
{
    int n = vsnprintf(out, cap, fmt, ap);
    if (n < 0) {
        out[0] = '\0';
        return 0;
    }
    return (size_t)n < cap ? (size_t)n : cap - 1;
}

void cli_error(const char *fmt, ...)
{
    char msg[4096];
    va_list ap;
    va_start(ap, fmt);
    size_t len = cli_vformat(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fputs("error: ", stderr);
    aspen_text_fputs(msg, len, 0, stderr);
    fputc('\n', stderr);
}

void cli_putn(FILE *f, const void *s, size_t len, unsigned flags)
{
    aspen_text_fputs(s, len, flags, f);
}

void cli_puts(FILE *f, const char *s)
{
    cli_putn(f, s ? s : "", s ? strlen(s) : 0, 0);
}

void cli_put_lines(FILE *f, const void *s, size_t len, unsigned flags, int indent)
{
    const char *p = s ? s : "";
    while (len && (p[len - 1] == '\n')) /* a final newline ends the text, it is not a line */
        len--;
    for (;;) {
        const char *nl = memchr(p, '\n', len);
        size_t n = nl ? (size_t)(nl - p) : len;
        cli_putn(f, p, n, flags & ~(unsigned)ASPEN_TEXT_KEEP_NEWLINE);
        if (!nl)
            break;
        fprintf(f, "\n%*s", indent, "");
        p = nl + 1;
        len -= n + 1;
    }
}

/* ---- table cells in display columns -------------------------------------------------------------
 * A cell is cut and padded by the columns a terminal gives its characters, not by bytes: "é" is
 * 2 bytes and 1 column, "日" 3 bytes and 2 columns, a combining accent 0 columns. The widths are
 * the usual ones (East Asian wide and fullwidth: 2; combining marks and zero-width characters: 0),
 * computed here so they do not depend on the user's locale. */

/* Bytes of the unit at s: a well-formed UTF-8 character, else one byte (which the sanitiser shows
 * as \xNN). */
static size_t unit_len(const unsigned char *s, size_t n)
{
    size_t l = s[0] < 0x80 ? 1 : s[0] >= 0xC2 && s[0] <= 0xDF ? 2 : s[0] >= 0xE0 && s[0] <= 0xEF ? 3
               : s[0] >= 0xF0 && s[0] <= 0xF4 ? 4 : 1;
    if (l > n || (l > 1 && !aspen_text_utf8_valid(s, l)))
        return 1;
    return l;
}

static uint32_t decode(const unsigned char *s, size_t l)
{
    if (l == 1)
        return s[0];
    uint32_t c = s[0] & (0x7F >> l);
    for (size_t i = 1; i < l; i++)
        c = c << 6 | (s[i] & 0x3F);
    return c;
}

static size_t cp_width(uint32_t c)
{
    static const uint32_t zero[][2] = {
        {0x0300, 0x036F}, {0x0483, 0x0489}, {0x0591, 0x05BD}, {0x0610, 0x061A},
        {0x064B, 0x065F}, {0x0E31, 0x0E31}, {0x0E34, 0x0E3A}, {0x1AB0, 0x1AFF},
        {0x1DC0, 0x1DFF}, {0x200B, 0x200F}, {0x202A, 0x202E}, {0x2060, 0x2064},
        {0x20D0, 0x20FF}, {0xFE00, 0xFE0F}, {0xFE20, 0xFE2F}, {0xFEFF, 0xFEFF},
        {0xE0100, 0xE01EF},
    };
    static const uint32_t wide[][2] = {
        {0x1100, 0x115F},   {0x231A, 0x231B},   {0x2329, 0x232A},   {0x23E9, 0x23EC},
        {0x25FD, 0x25FE},   {0x2614, 0x2615},   {0x2648, 0x2653},   {0x26A1, 0x26A1},
        {0x26AA, 0x26AB},   {0x26BD, 0x26BE},   {0x26C4, 0x26C5},   {0x26D4, 0x26D4},
        {0x26EA, 0x26EA},   {0x26F5, 0x26F5},   {0x26FA, 0x26FA},   {0x26FD, 0x26FD},
        {0x2705, 0x2705},   {0x270A, 0x270B},   {0x2728, 0x2728},   {0x274C, 0x274C},
        {0x2753, 0x2755},   {0x2757, 0x2757},   {0x2795, 0x2797},   {0x27B0, 0x27B0},
        {0x27BF, 0x27BF},   {0x2B1B, 0x2B1C},   {0x2B50, 0x2B50},   {0x2B55, 0x2B55},
        {0x2E80, 0x303E},   {0x3041, 0x33FF},   {0x3400, 0x4DBF},   {0x4E00, 0x9FFF},
        {0xA000, 0xA4CF},   {0xA960, 0xA97F},   {0xAC00, 0xD7A3},   {0xF900, 0xFAFF},
        {0xFE10, 0xFE19},   {0xFE30, 0xFE6F},   {0xFF00, 0xFF60},   {0xFFE0, 0xFFE6},
        {0x16FE0, 0x16FE4}, {0x17000, 0x18CFF}, {0x1B000, 0x1B2FF}, {0x1F004, 0x1F004},
        {0x1F0CF, 0x1F0CF}, {0x1F18E, 0x1F18E}, {0x1F191, 0x1F19A}, {0x1F200, 0x1F251},
        {0x1F300, 0x1F64F}, {0x1F680, 0x1F6FF}, {0x1F7E0, 0x1F7EB}, {0x1F90C, 0x1F9FF},
        {0x1FA70, 0x1FAFF}, {0x20000, 0x3FFFD},
    };
    for (size_t i = 0; i < sizeof zero / sizeof zero[0]; i++)
        if (c >= zero[i][0] && c <= zero[i][1])
            return 0;
    for (size_t i = 0; i < sizeof wide / sizeof wide[0]; i++)
        if (c >= wide[i][0] && c <= wide[i][1])
            return 2;
    return 1;
}

/* Escapes s unit by unit into out while the units fit in width columns (and cap bytes); returns
 * the columns used, *all when every unit fit. A unit the sanitiser escapes (\x1b, \u202e) is
 * ASCII, one column a byte, and is never cut in the middle. */
static size_t fit(const unsigned char *s, size_t len, size_t width, char *out, size_t cap,
                  size_t *used, bool *all)
{
    size_t cols = 0, w = 0;
    *all = false;
    for (size_t i = 0; i < len;) {
        size_t l = unit_len(s + i, len - i);
        char esc[64];
        size_t n = aspen_text_escape(s + i, l, ASPEN_TEXT_SPACES, esc, sizeof esc);
        if (n >= sizeof esc)
            n = sizeof esc - 1;
        bool escaped = n != l || memcmp(esc, s + i, l) != 0;
        size_t cw = escaped ? n : l == 1 ? 1 : cp_width(decode(s + i, l));
        if (cols + cw > width || w + n + 1 > cap) {
            *used = w;
            out[w] = '\0';
            return cols;
        }
        memcpy(out + w, esc, n);
        w += n;
        cols += cw;
        i += l;
    }
    *all = true;
    *used = w;
    out[w] = '\0';
    return cols;
}

const char *cli_cell(const void *s, size_t len, size_t width, char *out, size_t cap)
{
    size_t cols, used;
    cli_cell_cols(s, len, width, out, cap, &cols, &used);
    return out;
}

void cli_cell_cols(const void *s, size_t len, size_t width, char *out, size_t cap, size_t *cols,
                   size_t *used)
{
    *cols = *used = 0;
    if (cap == 0)
        return;
    if (!s)
        s = "";
    bool all;
    *cols = fit(s, len, width, out, cap, used, &all);
    if (!all && width >= 4 && cap >= 4) {
        /* cut: whole characters and escapes, then "..." */
        *cols = fit(s, len, width - 3, out, cap - 3, used, &all);
        memcpy(out + *used, "...", 4);
        *used += 3;
        *cols += 3;
    }
}

const char *cli_col(const void *s, size_t len, size_t width, char *out, size_t cap)
{
    size_t cols, used;
    cli_cell_cols(s, len, width, out, cap, &cols, &used);
    while (cols < width && used + 1 < cap) {
        out[used++] = ' ';
        cols++;
    }
    if (cap)
        out[used] = '\0';
    return out;
}

const char *cli_cell_str(const char *s, size_t width, char *out, size_t cap)
{
    return cli_cell(s ? s : "", s ? strlen(s) : 0, width, out, cap);
}

const char *cli_col_str(const char *s, size_t width, char *out, size_t cap)
{
    return cli_col(s ? s : "", s ? strlen(s) : 0, width, out, cap);
}

json_t *cli_json_text(const void *s, size_t len)
{
    json_t *v = NULL;
    if (!s)
        s = "";
    if (aspen_text_utf8_valid(s, len)) {
        v = json_stringn(s, len);
    } else {
        size_t n = 0;
        char *fixed = aspen_text_utf8_repair(s, len, &n);
        if (fixed)
            v = json_stringn(fixed, n);
        free(fixed);
    }
    return v ? v : json_null();
}

json_t *cli_json_str(const char *s)
{
    return s ? cli_json_text(s, strlen(s)) : json_null();
}

json_t *cli_json_parse_or_text(const void *s, size_t len)
{
    if (!s)
        return json_null();
    json_error_t je;
    json_t *v = json_loadb(s, len, JSON_DECODE_ANY, &je);
    return v ? v : cli_json_text(s, len);
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *cli_base64(const void *data, size_t len)
{
    const unsigned char *p = data;
    if (len > (SIZE_MAX / 4) * 3 - 3)
        return NULL;
    size_t n = (len + 2) / 3 * 4;
    char *out = malloc(n + 1);
    if (!out)
        return NULL;
    size_t w = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < len)
            v |= p[i + 2];
        out[w++] = b64[v >> 18 & 63];
        out[w++] = b64[v >> 12 & 63];
        out[w++] = i + 1 < len ? b64[v >> 6 & 63] : '=';
        out[w++] = i + 2 < len ? b64[v & 63] : '=';
    }
    out[w] = '\0';
    return out;
}

void cli_json_set_bytes(json_t *obj, const char *key, const void *s, size_t len)
{
    if (!s) {
        json_object_set_new(obj, key, json_null());
        return;
    }
    json_object_set_new(obj, key, cli_json_parse_or_text(s, len));
    if (!aspen_text_utf8_valid(s, len)) {
        char k[64];
        snprintf(k, sizeof k, "%s_base64", key);
        char *enc = cli_base64(s, len);
        json_object_set_new(obj, k, enc ? json_string(enc) : json_null());
        free(enc);
    }
}

void cli_json_set_text(json_t *obj, const char *key, const void *s, size_t len)
{
    json_object_set_new(obj, key, s ? cli_json_text(s, len) : json_null());
    if (s && !aspen_text_utf8_valid(s, len)) {
        char k[64];
        snprintf(k, sizeof k, "%s_base64", key);
        char *enc = cli_base64(s, len);
        json_object_set_new(obj, k, enc ? json_string(enc) : json_null());
        free(enc);
    }
}

int cli_json_print(json_t *v, FILE *f, bool compact)
{
    size_t flags = JSON_ENSURE_ASCII | JSON_REAL_PRECISION(15) |
                   (compact ? JSON_COMPACT : JSON_INDENT(2));
    int rc = json_dumpf(v, f, flags);
    fputc('\n', f);
    return rc;
}

/* ---- help text ----------------------------------------------------------------------------------
 * Every command's --help goes through cli_help, which wraps a line wider than 80 columns at a
 * space, its continuation indented under where the line's text starts: under an option's
 * description ("  --flag X    description", two or more spaces after the option), under the
 * usage's own continuation lines ("usage: aspen submit GUEST ..." then "         [--count N]"),
 * else under the line's own indent. What is cut off joins the next line when that line continues
 * the same text (indented where the continuation goes), so a paragraph is reflowed rather than
 * left with one-word lines. No help line is wider than a default terminal, and text added later
 * cannot make one. */
#define CLI_HELP_WIDTH 80

static size_t lead_of(const char *s, size_t len)
{
    size_t n = 0;
    while (n < len && s[n] == ' ')
        n++;
    return n;
}

/* The column the continuation lines of s start at (next: the line after it, or NULL). */
static size_t hang(const char *s, size_t len, const char *next, size_t next_len)
{
    size_t lead = lead_of(s, len);
    if (lead >= len)
        return 0;
    if ((len - lead >= 6 && strncmp(s + lead, "usage:", 6) == 0) ||
        (len - lead >= 6 && strncmp(s + lead, "aspen ", 6) == 0)) {
        size_t nl = next ? lead_of(next, next_len) : 0;
        if (next && nl > lead && nl < next_len && next[nl] == '[' && nl < CLI_HELP_WIDTH - 30)
            return nl; /* where the usage's own continuation lines start */
    }
    /* "  --flag ARG   text" or "  NAME     text": the text after the first run of 2+ spaces */
    for (size_t i = lead; i + 1 < len; i++)
        if (s[i] == ' ' && s[i + 1] == ' ') {
            size_t t = i;
            while (t < len && s[t] == ' ')
                t++;
            if (t < len && t < CLI_HELP_WIDTH - 30)
                return t;
            break;
        }
    if (len - lead >= 6 && (strncmp(s + lead, "usage:", 6) == 0 || strncmp(s + lead, "aspen ", 6) == 0))
        return lead + 8; /* a usage line's options, under its command */
    return lead;
}

/* Prints s (len bytes, no newline) wrapped; returns in *carry the text cut off its last line when
 * the caller may join it to the next line (malloc'd, or NULL), with *carry_at its column. */
static void help_line(FILE *f, const char *s, size_t len, size_t h, char **carry)
{
    size_t indent = 0;
    *carry = NULL;
    while (indent + len > CLI_HELP_WIDTH) {
        size_t room = CLI_HELP_WIDTH - indent, cut = room;
        while (cut > 0 && s[cut] != ' ')
            cut--;
        size_t keep = cut;
        while (keep > 0 && s[keep - 1] == ' ')
            keep--;
        size_t skip;
        /* no space to break at after the text starts (a long path): break at the width */
        if (keep == 0 || (indent == 0 && keep <= h)) {
            keep = room;
            skip = room;
        } else {
            skip = cut + 1;
        }
        fprintf(f, "%*s%.*s\n", (int)indent, "", (int)keep, s);
        s += skip;
        len -= skip;
        while (len && *s == ' ') {
            s++;
            len--;
        }
        indent = h;
        if (len && indent + len <= CLI_HELP_WIDTH) {
            /* the rest: to be joined to the next line when it continues this text */
            *carry = malloc(len + 1);
            if (*carry) {
                memcpy(*carry, s, len);
                (*carry)[len] = '\0';
                return;
            }
        }
    }
    fprintf(f, "%*s%.*s\n", (int)indent, "", (int)len, s);
}

void cli_help(FILE *f, const char *fmt, ...)
{
    char buf[16384];
    va_list ap;
    va_start(ap, fmt);
    size_t len = cli_vformat(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (len && buf[len - 1] == '\n')
        len--;
    else if (!len)
        return;
    char *carry = NULL;
    size_t carry_h = 0;
    const char *p = buf;
    for (;;) {
        const char *nl = memchr(p, '\n', len);
        size_t l = nl ? (size_t)(nl - p) : len;
        const char *next = nl ? nl + 1 : NULL;
        size_t next_len = 0;
        if (next) {
            const char *nn = memchr(next, '\n', len - l - 1);
            next_len = nn ? (size_t)(nn - next) : len - l - 1;
        }
        char *joined = NULL;
        const char *line = p;
        size_t line_len = l, lead = lead_of(p, l);
        /* not when the line starts an item of its own (an option), nor a new sentence of a
         * paragraph at the same indent that the cut text ended */
        size_t cl0 = carry ? strlen(carry) : 0;
        bool ends = cl0 && strchr(".):;", carry[cl0 - 1]) != NULL;
        if (carry && lead == carry_h && lead < l && p[lead] != '-' &&
            !(ends && hang(p, l, NULL, 0) == lead)) {
            /* this line continues the text cut off the previous one: join them */
            size_t cl = strlen(carry);
            joined = malloc(lead + cl + 1 + (l - lead) + 1);
            if (joined) {
                memset(joined, ' ', lead);
                memcpy(joined + lead, carry, cl);
                joined[lead + cl] = ' ';
                memcpy(joined + lead + cl + 1, p + lead, l - lead);
                line = joined;
                line_len = lead + cl + 1 + (l - lead);
            }
        }
        if (carry && !joined)
            fprintf(f, "%*s%s\n", (int)carry_h, "", carry);
        free(carry);
        carry = NULL;
        size_t h = hang(line, line_len, next, next_len);
        help_line(f, line, line_len, h, &carry);
        carry_h = h;
        free(joined);
        if (!next)
            break;
        p = next;
        len -= l + 1;
    }
    if (carry)
        fprintf(f, "%*s%s\n", (int)carry_h, "", carry);
    free(carry);
}
