/* filter.c — the filter language of `aspen list`, the console and the bulk actions
 * (`state:failed tag:x payload.user:alice order:oldest`), parsed once for every backend into an
 * aspen_store_filter. A backend turns the parsed filter into its own query, always binding the
 * values, never pasting them into SQL; payload field paths are restricted here to characters that
 * are safe in a JSON path of either backend. */
#include "store_backend.h"

#include <stdlib.h>
#include <string.h>

static const char filter_help[] =
    "use state:S[,S…] type:T binary:NAME tag:T id:N rerun-of:N payload.FIELD:VALUE "
    "order:newest|oldest|queue";

static bool path_ok(const char *p)
{
    if (!*p)
        return false;
    for (; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '-' || *p == '.' || *p == '[' || *p == ']' || *p == '$'))
            return false;
    return true;
}

static bool parse_i64(const char *v, int64_t *out)
{
    char *end = NULL;
    long long x = strtoll(v, &end, 10);
    if (!*v || *end || x <= 0)
        return false;
    *out = x;
    return true;
}

int aspen_store_filter_parse(const char *text, aspen_store_filter *out, char *buf, size_t bufsize,
                             aspen_store_error *err)
{
    memset(out, 0, sizeof *out);
    size_t used = 0;
    const char *p = text ? text : "";
    while (*p) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p)
            break;
        /* key up to ':' */
        const char *key = p;
        while (*p && *p != ':' && *p != ' ' && *p != '\t')
            p++;
        size_t keylen = (size_t)(p - key);
        if (*p != ':')
            return store_err(err, ASPEN_STORE_EINVAL, "filter term '%.*s' has no ':': %s",
                             (int)keylen, key, filter_help);
        p++;
        /* value: "quoted" or up to whitespace; copied into buf */
        char *val = buf + used;
        bool quoted = *p == '"';
        if (quoted)
            p++;
        while (*p && (quoted ? *p != '"' : (*p != ' ' && *p != '\t'))) {
            if (quoted && *p == '\\' && p[1])
                p++;
            if (used + 1 >= bufsize)
                return store_err(err, ASPEN_STORE_EINVAL, "filter too long");
            buf[used++] = *p++;
        }
        if (quoted) {
            if (*p != '"')
                return store_err(err, ASPEN_STORE_EINVAL,
                                 "filter: unterminated quote after %.*s:", (int)keylen, key);
            p++;
        }
        if (used + 1 >= bufsize)
            return store_err(err, ASPEN_STORE_EINVAL, "filter too long");
        buf[used++] = '\0';
        if (!*val)
            return store_err(err, ASPEN_STORE_EINVAL, "filter term '%.*s:' has no value",
                             (int)keylen, key);

#define KEY(k) (keylen == sizeof(k) - 1 && strncmp(key, k, keylen) == 0)
        if (KEY("state")) {
            for (char *s = val; s && *s;) {
                char *comma = strchr(s, ',');
                if (comma)
                    *comma = '\0';
                aspen_store_state st;
                if (aspen_store_state_parse(s, &st) != 0)
                    return store_err(err, ASPEN_STORE_EINVAL,
                                     "unknown state '%s': use queued, scheduled, running, "
                                     "succeeded, failed or cancelled",
                                     s);
                out->states |= 1u << st;
                s = comma ? comma + 1 : NULL;
            }
        } else if (KEY("type")) {
            out->type = val;
        } else if (KEY("binary")) {
            out->binary_name = val;
        } else if (KEY("tag")) {
            out->tag = val;
        } else if (KEY("id") || KEY("rerun-of")) {
            int64_t v;
            if (!parse_i64(val, &v))
                return store_err(err, ASPEN_STORE_EINVAL, "'%.*s:%s' needs a positive job id",
                                 (int)keylen, key, val);
            if (KEY("id"))
                out->id = v;
            else
                out->rerun_of = v;
        } else if (KEY("order")) {
            if (strcmp(val, "newest") == 0)
                out->order = ASPEN_STORE_ORDER_NEWEST;
            else if (strcmp(val, "oldest") == 0)
                out->order = ASPEN_STORE_ORDER_OLDEST;
            else if (strcmp(val, "queue") == 0)
                out->order = ASPEN_STORE_ORDER_QUEUE;
            else
                return store_err(err, ASPEN_STORE_EINVAL,
                                 "unknown order '%s': use newest, oldest or queue", val);
        } else if (keylen > 8 && strncmp(key, "payload.", 8) == 0) {
            if (out->n_fields == ASPEN_STORE_FILTER_MAX_FIELDS)
                return store_err(err, ASPEN_STORE_EINVAL, "at most %d payload.FIELD terms",
                                 ASPEN_STORE_FILTER_MAX_FIELDS);
            if (used + keylen - 8 + 1 > bufsize)
                return store_err(err, ASPEN_STORE_EINVAL, "filter too long");
            char *path = buf + used;
            memcpy(path, key + 8, keylen - 8);
            path[keylen - 8] = '\0';
            used += keylen - 8 + 1;
            if (!path_ok(path))
                return store_err(err, ASPEN_STORE_EINVAL,
                                 "bad payload field '%s': use letters, digits, _ - . and [n]",
                                 path);
            out->fields[out->n_fields].path = path;
            out->fields[out->n_fields].value = val;
            out->n_fields++;
        } else {
            return store_err(err, ASPEN_STORE_EINVAL, "unknown filter term '%.*s': %s", (int)keylen,
                             key, filter_help);
        }
#undef KEY
    }
    return 0;
}
