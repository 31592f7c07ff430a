/* vm/tape.c — the record of a run's host calls, for deterministic replay (docs/ABI.md,
 * "Deterministic replay").
 *
 * A guest's run is a function of its image, its memory size, its input and what the host told it.
 * The tape holds the last part: one event per host call (or system call of a Linux program) with
 * its number, a 32-bit digest of its arguments and of the guest memory the host read for it (a
 * log line's text, a write(2)'s bytes), and the values the host made up for it that a second run
 * would not reproduce — clock readings, random bytes, a registered function's return and the bytes
 * it wrote into the guest. Replaying feeds those values back instead of asking the clock, and
 * checks every call against the record: the first call whose number or digest differs, or that
 * asks for a value the record does not have, is the divergence, reported once with its name.
 * After it the run goes on live, so the caller can still compare how it ended. A record can also
 * be walked call by call (aspen_vm_tape_next_call), with names, for a listing of its values.
 *
 * Recording costs a few bytes per call appended to a buffer (capped: past the cap the tape says
 * it was cut and records nothing more) and a digest over bytes the host already copies; a run with
 * no host calls records nothing. Encoding (little-endian, varints LEB128):
 *   event  := varint code, u32 digest, varint nvals, value*
 *   code   := host function number, or LX_CODE | system call number
 *   value  := varint (0) varint u64          an integer
 *           | varint (len << 1 | 1) bytes     bytes
 */
#include "vm_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TAPE_DEFAULT_MAX (64u << 10)
#define TAPE_MAX_VALUES ASPEN_VM_TAPE_MAX_VALUES /* one call's: more is a divergence / a cut record */

struct aspen_vm_tape {
    uint8_t *buf;
    size_t len, cap, max;
    bool replay;
    bool truncated;
    uint32_t calls, values;
    /* the call in progress */
    bool in_call;
    bool live; /* replay: after the divergence (or past a cut record) calls run for real */
    uint32_t code;
    uint32_t digest;
    bool digest_reads;
    const char *name;
    uint8_t cur[4096 + 64]; /* recording: this call's values */
    size_t cur_len;
    uint32_t cur_vals;
    bool cur_overflow;
    /* replay: the recorded event of this call */
    size_t pos;           /* next event */
    size_t ev_vals;       /* its values start here */
    uint32_t ev_nvals, ev_used;
    uint32_t ev_digest;
    uint32_t at; /* calls made in this replay */
    bool diverged;
    uint32_t diverged_at;
    char why[640];
    /* the last call whose recorded value was fed, for the divergence message */
    uint32_t fed_at;
    char fed_name[ASPEN_MAX_NAME + 8];
    int64_t fed_values[3];
    uint32_t fed_n; /* values of that call fed (numbers kept up to 3) */
    uint32_t edited_call, edited_index; /* aspen_vm_tape_set_value's (call from 1; 0: none) */
};

static uint32_t fnv(uint32_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 16777619u;
    return h;
}

static size_t put_varint(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

/* Reads a varint at *pos below end; false when malformed or cut. */
static bool get_varint(const uint8_t *b, size_t end, size_t *pos, uint64_t *v)
{
    uint64_t x = 0;
    for (unsigned shift = 0; shift < 64 && *pos < end; shift += 7) {
        uint8_t c = b[(*pos)++];
        x |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            *v = x;
            return true;
        }
    }
    return false;
}

/* Reads one value at *pos into *out (bytes point into b); false when malformed or when its
 * length runs past end (never read beyond). */
static bool get_value(const uint8_t *b, size_t end, size_t *pos, aspen_vm_tape_value *out)
{
    uint64_t h, v = 0;
    if (!get_varint(b, end, pos, &h))
        return false;
    *out = (aspen_vm_tape_value){.is_bytes = h & 1};
    if (h & 1) {
        uint64_t n = h >> 1;
        if (n > end - *pos)
            return false;
        out->bytes = b + *pos;
        out->len = (size_t)n;
        *pos += (size_t)n;
        return true;
    }
    if (!get_varint(b, end, pos, &v))
        return false;
    out->number = v;
    return true;
}

/* Skips one value at *pos; false when malformed. */
static bool skip_value(const uint8_t *b, size_t end, size_t *pos)
{
    aspen_vm_tape_value v;
    return get_value(b, end, pos, &v);
}

/* Reads one event header at *pos: false when malformed. */
static bool get_event(const uint8_t *b, size_t end, size_t *pos, uint32_t *code, uint32_t *digest,
                      uint32_t *nvals)
{
    uint64_t c, n;
    if (!get_varint(b, end, pos, &c) || c > UINT32_MAX || end - *pos < 4)
        return false;
    uint32_t d;
    memcpy(&d, b + *pos, 4);
    *pos += 4;
    if (!get_varint(b, end, pos, &n) || n > TAPE_MAX_VALUES)
        return false;
    *code = (uint32_t)c;
    *digest = d;
    *nvals = (uint32_t)n;
    return true;
}

aspen_vm_tape *aspen_vm_tape_new(size_t max_bytes)
{
    aspen_vm_tape *t = calloc(1, sizeof *t);
    if (t)
        t->max = max_bytes ? max_bytes : TAPE_DEFAULT_MAX;
    return t;
}

int aspen_vm_tape_open(const void *bytes, size_t len, aspen_vm_tape **out, aspen_vm_error *err)
{
    *out = NULL;
    const uint8_t *b = bytes;
    uint32_t calls = 0, values = 0;
    for (size_t pos = 0; pos < len;) {
        uint32_t code, digest, nvals;
        if (!get_event(b, len, &pos, &code, &digest, &nvals)) {
            vm_set_error(err, ASPEN_VM_EINVAL, "the replay record is damaged: host call %u does "
                         "not decode (at byte %zu of %zu)", calls + 1, pos, len);
            return ASPEN_VM_EINVAL;
        }
        for (uint32_t i = 0; i < nvals; i++)
            if (!skip_value(b, len, &pos)) {
                vm_set_error(err, ASPEN_VM_EINVAL, "the replay record is damaged: value %u of "
                             "host call %u does not decode", i + 1, calls + 1);
                return ASPEN_VM_EINVAL;
            }
        calls++;
        values += nvals;
    }
    aspen_vm_tape *t = calloc(1, sizeof *t);
    if (!t || !(t->buf = malloc(len ? len : 1))) {
        free(t);
        vm_set_error(err, ASPEN_VM_ENOMEM, "out of memory for a replay record of %zu bytes", len);
        return ASPEN_VM_ENOMEM;
    }
    if (len)
        memcpy(t->buf, bytes, len);
    t->len = t->cap = t->max = len;
    t->replay = true;
    t->calls = calls;
    t->values = values;
    *out = t;
    return 0;
}

void aspen_vm_tape_set_truncated(aspen_vm_tape *t, bool truncated) { t->truncated = truncated; }

void aspen_vm_tape_free(aspen_vm_tape *t)
{
    if (!t)
        return;
    free(t->buf);
    free(t);
}

void aspen_vm_tape_reset(aspen_vm_tape *t)
{
    if (t->replay) {
        t->pos = 0;
        t->at = 0;
        t->diverged = false;
        t->live = false;
        t->why[0] = '\0';
        t->fed_at = 0;
    } else {
        t->len = 0;
        t->calls = t->values = 0;
        t->truncated = false;
    }
    t->in_call = false;
}

const void *aspen_vm_tape_data(const aspen_vm_tape *t, size_t *len)
{
    *len = t->len;
    return t->buf;
}

void aspen_vm_tape_get_info(const aspen_vm_tape *t, aspen_vm_tape_info *out)
{
    /* Called after every job of the engine (engine/replay.c): the 640-byte explanation is copied
     * as long as it is, not cleared and printed whole (that was ~2 % of a worker's time). */
    *out = (aspen_vm_tape_info){.calls = t->calls, .values = t->values, .bytes = t->len,
                                .truncated = t->truncated, .replayed = t->at,
                                .diverged = t->diverged, .diverged_at = t->diverged_at};
    size_t n = strnlen(t->why, sizeof t->why - 1);
    memcpy(out->why, t->why, n);
    out->why[n] = '\0';
}

int aspen_vm_tape_set_value(aspen_vm_tape *t, uint32_t call, uint32_t index, int64_t value,
                            aspen_vm_error *err)
{
    size_t pos = 0;
    for (uint32_t k = 1; pos < t->len; k++) {
        uint32_t code, digest, nvals;
        if (!get_event(t->buf, t->len, &pos, &code, &digest, &nvals))
            break;
        for (uint32_t i = 0; i < nvals; i++) {
            size_t at = pos;
            uint64_t h, v;
            if (!get_varint(t->buf, t->len, &pos, &h))
                goto bad;
            if (k == call && i == index) {
                if (h & 1) {
                    vm_set_error(err, ASPEN_VM_EINVAL, "value %u of host call %u is bytes, not "
                                 "a number", index + 1, call);
                    return ASPEN_VM_EINVAL;
                }
                size_t vstart = pos;
                if (!get_varint(t->buf, t->len, &pos, &v))
                    goto bad;
                uint8_t enc[10];
                size_t n = put_varint(enc, (uint64_t)value), old = pos - vstart;
                uint8_t *nb = malloc(t->len - old + n);
                if (!nb) {
                    vm_set_error(err, ASPEN_VM_ENOMEM, "out of memory editing a replay record");
                    return ASPEN_VM_ENOMEM;
                }
                memcpy(nb, t->buf, vstart);
                memcpy(nb + vstart, enc, n);
                memcpy(nb + vstart + n, t->buf + pos, t->len - pos);
                free(t->buf);
                t->buf = nb;
                t->len = t->cap = t->max = t->len - old + n;
                t->edited_call = call;
                t->edited_index = index;
                (void)at;
                return 0;
            }
            pos = at;
            if (!skip_value(t->buf, t->len, &pos))
                goto bad;
        }
        if (k == call) {
            vm_set_error(err, ASPEN_VM_EINVAL, "host call %u recorded %u value%s: there is no "
                         "value %u to set (only clock readings, random bytes and registered "
                         "functions' results are recorded)",
                         call, nvals, nvals == 1 ? "" : "s", index + 1);
            return ASPEN_VM_EINVAL;
        }
    }
    vm_set_error(err, ASPEN_VM_EINVAL, "the record has %u host calls: there is no call %u",
                 t->calls, call);
    return ASPEN_VM_EINVAL;
bad:
    vm_set_error(err, ASPEN_VM_EINVAL, "the replay record is damaged");
    return ASPEN_VM_EINVAL;
}

int aspen_vm_tape_first_value(const aspen_vm_tape *t, uint32_t *call, int64_t *value)
{
    size_t pos = 0;
    for (uint32_t k = 1; pos < t->len; k++) {
        uint32_t code, digest, nvals;
        if (!get_event(t->buf, t->len, &pos, &code, &digest, &nvals))
            return -1;
        for (uint32_t i = 0; i < nvals; i++) {
            size_t at = pos;
            uint64_t h, v;
            if (!get_varint(t->buf, t->len, &pos, &h))
                return -1;
            if (!(h & 1) && get_varint(t->buf, t->len, &pos, &v)) {
                *call = k;
                *value = (int64_t)v;
                return 0;
            }
            pos = at;
            if (!skip_value(t->buf, t->len, &pos))
                return -1;
        }
    }
    return -1;
}

int aspen_vm_tape_next_call(const aspen_vm_tape *t, const aspen_vm_host *host,
                            aspen_vm_tape_cursor *cur, aspen_vm_tape_call *out)
{
    if (cur->pos >= t->len)
        return 0;
    uint32_t code, digest, nvals;
    size_t pos = cur->pos;
    if (!get_event(t->buf, t->len, &pos, &code, &digest, &nvals))
        return -1;
    for (uint32_t i = 0; i < nvals; i++) /* nvals <= TAPE_MAX_VALUES: get_event checks */
        if (!get_value(t->buf, t->len, &pos, &out->values[i]))
            return -1;
    out->index = ++cur->calls;
    out->nvalues = nvals;
    out->syscall = (code & VM_TAPE_LX_CODE) != 0;
    out->number = code & ~VM_TAPE_LX_CODE;
    if (out->syscall) {
        out->name = vm_lx_sys_name(out->number);
    } else if (code == ASPEN_FN_LOOKUP) {
        out->name = "lookup";
    } else {
        const struct host_entry *e = host_find(host ? host : host_builtin(), code);
        out->name = e ? e->name : "unknown";
    }
    cur->pos = pos;
    return 1;
}

/* ---- the monitor's side ------------------------------------------------------------------------- */

static void diverge(aspen_vm_tape *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void diverge(aspen_vm_tape *t, const char *fmt, ...)
{
    t->live = true;
    if (t->diverged)
        return;
    t->diverged = true;
    t->diverged_at = t->at;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(t->why, sizeof t->why, fmt, ap);
    va_end(ap);
    if (n > 0 && (size_t)n < sizeof t->why && t->fed_at && t->fed_at < t->at) {
        char vals[96] = "";
        size_t used = 0;
        for (uint32_t i = 0; i < t->fed_n && i < 3; i++) {
            int w = snprintf(vals + used, sizeof vals - used, "%s%lld", i ? ", " : " = ",
                             (long long)t->fed_values[i]);
            used += w > 0 ? (size_t)w : 0;
        }
        /* an edited value was not recorded: the note says which one came from the edit */
        if (t->edited_call == t->fed_at)
            snprintf(t->why + n, sizeof t->why - (size_t)n,
                     "; the last values fed to the guest before it were host call %u's (%s)%s "
                     "(value %u.%u edited for this replay, not recorded)",
                     t->fed_at, t->fed_name, vals, t->edited_call, t->edited_index + 1);
        else
            snprintf(t->why + n, sizeof t->why - (size_t)n,
                     "; the last recorded values fed to the guest before it were host call "
                     "%u's (%s)%s",
                     t->fed_at, t->fed_name, vals);
    }
}

bool vm_tape_begin(aspen_vm *vm, uint32_t code, const char *name, const uint64_t *args,
                   size_t nargs, bool digest_reads)
{
    aspen_vm_tape *t = vm->tape;
    t->in_call = true;
    t->code = code;
    t->name = name;
    t->digest_reads = digest_reads;
    t->digest = fnv(2166136261u, &code, sizeof code);
    t->digest = fnv(t->digest, args, nargs * sizeof *args);
    t->cur_len = 0;
    t->cur_vals = 0;
    t->cur_overflow = false;
    if (!t->replay)
        return false;
    t->at++;
    if (t->live)
        return false;
    if (t->pos >= t->len) {
        if (t->truncated)
            t->live = true; /* the record was cut here: the rest runs for real */
        else
            diverge(t, "host call %u (%s) was not made by the recorded run, which ended after %u "
                    "host calls", t->at, name, t->calls);
        return false;
    }
    uint32_t rc, rd, rn;
    if (!get_event(t->buf, t->len, &t->pos, &rc, &rd, &rn)) {
        diverge(t, "the record is damaged at host call %u", t->at);
        return false;
    }
    t->ev_vals = t->pos;
    t->ev_nvals = rn;
    t->ev_used = 0;
    t->ev_digest = rd;
    for (uint32_t i = 0; i < rn; i++)
        if (!skip_value(t->buf, t->len, &t->pos)) {
            diverge(t, "the record is damaged at host call %u", t->at);
            return false;
        }
    if (rc != code) {
        diverge(t, "host call %u is %s, where the recorded run made call number %u%s", t->at,
                name, rc & ~VM_TAPE_LX_CODE, rc & VM_TAPE_LX_CODE ? " (a system call)" : "");
        return false;
    }
    /* a registered function is not called again: its recorded result and writes are replayed */
    return code >= ASPEN_FN_FIRST_EXTRA && !(code & VM_TAPE_LX_CODE);
}

void vm_tape_read(const aspen_vm *vm, const void *bytes, size_t len)
{
    aspen_vm_tape *t = vm->tape;
    if (t->in_call && t->digest_reads && bytes)
        t->digest = fnv(t->digest, bytes, len);
}

static void rec_value(aspen_vm_tape *t, bool is_bytes, const void *p, size_t n, uint64_t v)
{
    if (t->cur_overflow)
        return;
    size_t need = 20 + (is_bytes ? n : 0);
    if (t->cur_vals >= TAPE_MAX_VALUES || t->cur_len + need > sizeof t->cur) {
        t->cur_overflow = true;
        return;
    }
    if (is_bytes) {
        t->cur_len += put_varint(t->cur + t->cur_len, (uint64_t)n << 1 | 1);
        memcpy(t->cur + t->cur_len, p, n);
        t->cur_len += n;
    } else {
        t->cur_len += put_varint(t->cur + t->cur_len, 0);
        t->cur_len += put_varint(t->cur + t->cur_len, v);
    }
    t->cur_vals++;
}

/* The next recorded value of this call (replay): false (and a divergence) when there is none of
 * that kind. */
static bool next_value(aspen_vm_tape *t, bool want_bytes, const uint8_t **p, size_t *n,
                       uint64_t *v)
{
    if (t->ev_used >= t->ev_nvals) {
        diverge(t, "host call %u (%s) asked the host for more values than the recorded run did "
                "(%u)", t->at, t->name, t->ev_nvals);
        return false;
    }
    uint64_t h = 0;
    size_t pos = t->ev_vals;
    get_varint(t->buf, t->len, &pos, &h); /* checked when the event was read */
    if ((h & 1) != want_bytes) {
        diverge(t, "host call %u (%s) asked for %s where the recorded run had %s", t->at,
                t->name, want_bytes ? "bytes" : "a number", want_bytes ? "a number" : "bytes");
        return false;
    }
    if (want_bytes) {
        *n = (size_t)(h >> 1);
        *p = t->buf + pos;
        pos += *n;
    } else {
        get_varint(t->buf, t->len, &pos, v);
    }
    t->ev_vals = pos;
    t->ev_used++;
    if (t->fed_at != t->at) {
        t->fed_at = t->at;
        t->fed_n = 0;
        snprintf(t->fed_name, sizeof t->fed_name, "%s", t->name);
    }
    if (!want_bytes && t->fed_n < 3)
        t->fed_values[t->fed_n++] = (int64_t)*v;
    return true;
}

int64_t vm_tape_int(aspen_vm *vm, int64_t live)
{
    aspen_vm_tape *t = vm->tape;
    if (!t || !t->in_call)
        return live;
    if (!t->replay) {
        rec_value(t, false, NULL, 0, (uint64_t)live);
        return live;
    }
    uint64_t v = 0;
    if (t->live || !next_value(t, false, NULL, NULL, &v))
        return live;
    return (int64_t)v;
}

void vm_tape_clock(aspen_vm *vm, clockid_t clk, struct timespec *ts)
{
    clock_gettime(clk, ts);
    if (!vm->tape || !vm->tape->in_call)
        return;
    ts->tv_sec = (time_t)vm_tape_int(vm, (int64_t)ts->tv_sec);
    ts->tv_nsec = (long)vm_tape_int(vm, (int64_t)ts->tv_nsec);
}

void vm_tape_bytes(aspen_vm *vm, void *buf, size_t n, bool *replayed)
{
    aspen_vm_tape *t = vm->tape;
    *replayed = false;
    if (!t || !t->in_call)
        return;
    if (!t->replay) {
        rec_value(t, true, buf, n, 0);
        return;
    }
    const uint8_t *p;
    size_t len;
    if (t->live || !next_value(t, true, &p, &len, NULL))
        return;
    if (len != n) {
        diverge(t, "host call %u (%s) asked for %zu bytes where the recorded run had %zu", t->at,
                t->name, n, len);
        return;
    }
    memcpy(buf, p, n);
    *replayed = true;
}

void vm_tape_end(aspen_vm *vm)
{
    aspen_vm_tape *t = vm->tape;
    if (!t->in_call)
        return;
    t->in_call = false;
    if (t->replay) {
        if (!t->live && t->digest != t->ev_digest)
            diverge(t, "host call %u (%s) differs from the recorded run: its arguments or the "
                    "guest memory it passed (e.g. a log line's text) are not the same",
                    t->at, t->name);
        else if (!t->live && t->ev_used != t->ev_nvals)
            diverge(t, "host call %u (%s) took %u of its %u recorded values", t->at, t->name,
                    t->ev_used, t->ev_nvals);
        return;
    }
    if (t->truncated)
        return;
    uint8_t head[24];
    size_t hn = put_varint(head, t->code);
    memcpy(head + hn, &t->digest, 4);
    hn += 4;
    hn += put_varint(head + hn, t->cur_vals);
    if (t->cur_overflow || t->len + hn + t->cur_len > t->max) {
        t->truncated = true; /* replay runs live from here */
        return;
    }
    if (t->len + hn + t->cur_len > t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 256;
        while (cap < t->len + hn + t->cur_len)
            cap *= 2;
        uint8_t *nb = realloc(t->buf, cap);
        if (!nb) {
            t->truncated = true;
            return;
        }
        t->buf = nb;
        t->cap = cap;
    }
    memcpy(t->buf + t->len, head, hn);
    memcpy(t->buf + t->len + hn, t->cur, t->cur_len);
    t->len += hn + t->cur_len;
    t->calls++;
    t->values += t->cur_vals;
}

void vm_tape_run_end(aspen_vm *vm)
{
    aspen_vm_tape *t = vm->tape;
    vm->tape = NULL;
    if (!t)
        return;
    t->in_call = false;
    if (t->replay && !t->live && t->at < t->calls)
        diverge(t, "the replay made %u host calls where the recorded run made %u (host call %u "
                "never came)", t->at, t->calls, t->at + 1);
}

int vm_tape_replay_extra(aspen_vm *vm, int64_t *ret)
{
    aspen_vm_tape *t = vm->tape;
    while (!t->live && t->ev_used + 1 < t->ev_nvals) {
        uint64_t gva = 0;
        const uint8_t *p;
        size_t n;
        if (!next_value(t, false, NULL, NULL, &gva) || !next_value(t, true, &p, &n, NULL))
            break;
        if (vm_guest_copy_in(vm, gva, p, n) != 0) {
            diverge(t, "host call %u (%s): the recorded write to 0x%llx + %zu bytes is outside "
                    "the guest's writable memory", t->at, t->name, (unsigned long long)gva, n);
            break;
        }
    }
    uint64_t v = 0;
    if (t->live || !next_value(t, false, NULL, NULL, &v))
        return -1;
    *ret = (int64_t)v;
    return 0;
}
