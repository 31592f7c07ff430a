/* json_check.c — is this text one JSON value (RFC 8259)? Used by api.c to check a job's payload
 * and tags before any backend sees them, so every backend refuses the same inputs with the same
 * message. It only validates (no tree is built): strict grammar, no trailing text, strings without
 * raw control characters, nesting at most STORE_JSON_MAX_DEPTH deep (deeper is refused rather than
 * recursed into, so a hostile payload cannot exhaust the stack). Byte offsets are reported so the
 * message can point at the problem. */
#include "store_backend.h"

#include <string.h>

struct json_cursor {
    const char *p, *start;
    int depth;
    const char *why;
};

static void ws(struct json_cursor *c)
{
    while (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r')
        c->p++;
}

static bool fail(struct json_cursor *c, const char *why)
{
    c->why = why;
    return false;
}

static bool is_digit(char ch) { return ch >= '0' && ch <= '9'; }

static bool is_hex(char ch)
{
    return is_digit(ch) || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F');
}

static bool string(struct json_cursor *c)
{
    c->p++; /* the opening quote */
    for (;;) {
        unsigned char ch = (unsigned char)*c->p;
        if (ch == '"') {
            c->p++;
            return true;
        }
        if (ch == '\0')
            return fail(c, "unterminated string");
        if (ch < 0x20)
            return fail(c, "raw control character in a string (escape it)");
        if (ch == '\\') {
            c->p++;
            if (*c->p == 'u') {
                for (int i = 1; i <= 4; i++)
                    if (!is_hex(c->p[i]))
                        return fail(c, "bad \\u escape (four hex digits)");
                c->p += 5;
                continue;
            }
            if (!*c->p || !strchr("\"\\/bfnrt", *c->p))
                return fail(c, "bad escape in a string");
        }
        c->p++;
    }
}

static bool number(struct json_cursor *c)
{
    if (*c->p == '-')
        c->p++;
    if (*c->p == '0')
        c->p++;
    else if (is_digit(*c->p))
        while (is_digit(*c->p))
            c->p++;
    else
        return fail(c, "bad number");
    if (*c->p == '.') {
        c->p++;
        if (!is_digit(*c->p))
            return fail(c, "bad number (digits after '.')");
        while (is_digit(*c->p))
            c->p++;
    }
    if (*c->p == 'e' || *c->p == 'E') {
        c->p++;
        if (*c->p == '+' || *c->p == '-')
            c->p++;
        if (!is_digit(*c->p))
            return fail(c, "bad number (digits in the exponent)");
        while (is_digit(*c->p))
            c->p++;
    }
    return true;
}

static bool literal(struct json_cursor *c, const char *word)
{
    size_t n = strlen(word);
    if (strncmp(c->p, word, n) != 0)
        return fail(c, "unexpected character");
    c->p += n;
    return true;
}

static bool value(struct json_cursor *c);

/* An array or object: the opening bracket is at c->p. */
static bool container(struct json_cursor *c, char close)
{
    if (++c->depth > STORE_JSON_MAX_DEPTH)
        return fail(c, "nested too deeply");
    c->p++;
    ws(c);
    if (*c->p == close) {
        c->p++;
        c->depth--;
        return true;
    }
    for (;;) {
        if (close == '}') {
            if (*c->p != '"')
                return fail(c, "expected a string key");
            if (!string(c))
                return false;
            ws(c);
            if (*c->p != ':')
                return fail(c, "expected ':' after a key");
            c->p++;
            ws(c);
        }
        if (!value(c))
            return false;
        ws(c);
        if (*c->p == ',') {
            c->p++;
            ws(c);
            continue;
        }
        if (*c->p == close) {
            c->p++;
            c->depth--;
            return true;
        }
        return fail(c, close == '}' ? "expected ',' or '}'" : "expected ',' or ']'");
    }
}

static bool value(struct json_cursor *c)
{
    switch (*c->p) {
    case '{':
        return container(c, '}');
    case '[':
        return container(c, ']');
    case '"':
        return string(c);
    case 't':
        return literal(c, "true");
    case 'f':
        return literal(c, "false");
    case 'n':
        return literal(c, "null");
    case '\0':
        return fail(c, "no value");
    default:
        if (*c->p == '-' || is_digit(*c->p))
            return number(c);
        return fail(c, "unexpected character");
    }
}

bool store_json_check(const char *text, char kind, size_t *offset, const char **why)
{
    struct json_cursor c = {.p = text ? text : "", .start = text ? text : ""};
    ws(&c);
    bool ok = true;
    if (kind && *c.p != kind)
        ok = fail(&c, kind == '[' ? "not an array" : "not an object");
    ok = ok && value(&c);
    if (ok) {
        ws(&c);
        if (*c.p)
            ok = fail(&c, "text after the value");
    }
    if (offset)
        *offset = ok ? 0 : (size_t)(c.p - c.start);
    if (why)
        *why = ok ? NULL : c.why;
    return ok;
}
