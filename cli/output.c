/* cli/output.c — how the `aspen` commands put job fields on a terminal and into JSON.
 *
 * Whatever a job carries (its type, tags, names, payload, result, error, log lines) was written
 * by whoever submitted or ran it, so the text output goes through the one sanitiser both front
 * ends share (tui/aspen_text.h): controls, C1, bidi overrides and invalid UTF-8 are shown escaped,
 * never sent raw and never dropped. Error messages too: they quote types, names and guests' words.
 *
 * --json output must be UTF-8 for jansson (json_string returns NULL on anything else, and the field
 * silently vanished): text that is not well-formed UTF-8 is given with one U+FFFD per bad byte,
 * and a result that is not UTF-8 also comes exactly as "result_base64". The JSON is printed with
 * every non-ASCII character as a \uXXXX escape, so it is lossless and terminal-safe at once.
 * docs/OPERATING.md states this convention.
 */
#include "cli.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void cli_error(const char *fmt, ...)
{
    char msg[4096];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    size_t len = (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1;
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

const char *cli_cell(const void *s, size_t len, size_t width, char *out, size_t cap)
{
    if (cap == 0)
        return out;
    size_t room = width + 1 < cap ? width + 1 : cap;
    size_t need = aspen_text_escape(s, len, ASPEN_TEXT_SPACES, out, room);
    if (need >= room && room >= 4) {
        /* cut: end on "..." at a whole escape or character */
        aspen_text_escape(s, len, ASPEN_TEXT_SPACES, out, room - 3);
        strcat(out, "...");
    }
    return out;
}

const char *cli_cell_str(const char *s, size_t width, char *out, size_t cap)
{
    return cli_cell(s ? s : "", s ? strlen(s) : 0, width, out, cap);
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

int cli_json_print(json_t *v, FILE *f, bool compact)
{
    size_t flags = JSON_ENSURE_ASCII | (compact ? JSON_COMPACT : JSON_INDENT(2));
    int rc = json_dumpf(v, f, flags);
    fputc('\n', f);
    return rc;
}
