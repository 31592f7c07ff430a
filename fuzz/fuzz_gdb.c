/* fuzz/fuzz_gdb.c — libFuzzer target: the GDB remote protocol's packet layer (vm/gdb_proto.c),
 * what `aspen run --gdb` reads from a client, over a fake target with 64 KiB of "guest memory".
 *
 * The input is a byte stream from the client, fed in pieces whose sizes come from the input's
 * first byte (so packets split across reads are reached); every complete packet is handled.
 * Checks beyond the sanitizers: the target is only asked about addresses inside its memory or is
 * refused (it checks with overflow-safe arithmetic and counts refusals, never faults); everything
 * the layer queues is acks and well-framed packets with correct checksums; a read (m) of memory
 * shows each breakpoint's saved byte, never the int3 the session put there; and once every
 * breakpoint is removed each of their addresses holds its saved byte again.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gdb.h"

#define BASE 0x400000ull
#define SIZE (64u * 1024u)

__attribute__((noreturn, format(printf, 1, 2))) static void finding(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "fuzz_gdb: FINDING: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}

struct fake {
    uint8_t mem[SIZE];
    struct gdb_regs regs;
};

static int in_range(uint64_t addr, uint64_t len)
{
    uint64_t end;
    return !__builtin_add_overflow(addr, len, &end) && addr >= BASE && end <= BASE + SIZE;
}

static int f_read(void *t, uint64_t addr, uint64_t len, uint8_t *dst)
{
    if (!in_range(addr, len))
        return -1;
    memcpy(dst, ((struct fake *)t)->mem + (addr - BASE), len);
    return 0;
}

static int f_write(void *t, uint64_t addr, const uint8_t *src, uint64_t len)
{
    struct fake *f = t;
    if (!in_range(addr, len))
        return -1;
    memcpy(f->mem + (addr - BASE), src, len);
    return 0;
}

static int f_get(void *t, struct gdb_regs *r)
{
    *r = ((struct fake *)t)->regs;
    return 0;
}

static int f_set(void *t, const struct gdb_regs *r)
{
    struct fake *f = t;
    if (r->seg[0] != f->regs.seg[0])
        return -1; /* as the VM refuses a new cs */
    f->regs = *r;
    return 0;
}

static const struct gdb_target_ops ops = {f_read, f_write, f_get, f_set, NULL};

/* The queued output: '+', '-' and $data#xx packets with the right checksum, nothing else. */
static void check_output(const struct gdb_session *s)
{
    size_t i = 0;
    if (s->out_len > sizeof s->out)
        finding("output length %zu over the buffer", s->out_len);
    while (i < s->out_len) {
        char c = s->out[i];
        if (c == '+' || c == '-') {
            i++;
            continue;
        }
        if (c != '$')
            finding("output byte 0x%02x outside a packet", (unsigned char)c);
        uint8_t sum = 0;
        size_t j = i + 1;
        while (j < s->out_len && s->out[j] != '#') {
            if (s->out[j] == '$')
                finding("'$' inside a packet the layer sent");
            sum += (uint8_t)s->out[j++];
        }
        if (j + 2 >= s->out_len)
            finding("a packet without its checksum");
        char hex[3];
        snprintf(hex, sizeof hex, "%02x", sum);
        if (s->out[j + 1] != hex[0] || s->out[j + 2] != hex[1])
            finding("bad checksum on a packet the layer sent");
        i = j + 3;
    }
}

static struct fake g_f;
static struct gdb_session g_s;

/* A reply to "mADDR,LEN" (the last packet queued) shows each breakpoint's saved byte, not int3. */
static void check_read(uint64_t addr)
{
    const char *o = g_s.out, *end = g_s.out + g_s.out_len, *d = NULL;
    for (const char *q = o; q < end; q++)
        if (*q == '$')
            d = q + 1;
    if (!d || (end - d >= 3 && d[0] == 'E'))
        return;
    size_t n = 0;
    while (d + 2 * n + 1 < end && d[2 * n] != '#')
        n++;
    for (int b = 0; b < GDB_MAX_BP; b++) {
        if (!g_s.bp[b].used || g_s.bp[b].addr < addr || g_s.bp[b].addr - addr >= n)
            continue;
        size_t k = (size_t)(g_s.bp[b].addr - addr);
        int v = gdb_hexval((unsigned char)d[2 * k]) << 4 | gdb_hexval((unsigned char)d[2 * k + 1]);
        if (v != g_s.bp[b].orig)
            finding("m shows 0x%02x at the breakpoint at 0x%llx instead of its byte 0x%02x", v,
                    (unsigned long long)g_s.bp[b].addr, g_s.bp[b].orig);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t pattern[SIZE];
    if (!pattern[1])
        for (size_t i = 0; i < SIZE; i++)
            pattern[i] = (uint8_t)(i * 13 + 5);
    memcpy(g_f.mem, pattern, SIZE);
    memset(&g_f.regs, 0, sizeof g_f.regs);
    g_f.regs.seg[0] = 0x1b;
    gdb_session_init(&g_s, &ops, &g_f);
    size_t chunk = size ? (size_t)data[0] % 64 + 1 : 1;
    size_t off = size ? 1 : 0;
    while (off < size) {
        size_t n = size - off < chunk ? size - off : chunk, done = 0;
        while (done < n) {
            size_t used;
            enum gdb_feed_ev ev = gdb_feed(&g_s, data + off + done, n - done, &used);
            if (used == 0 || used > n - done)
                finding("gdb_feed consumed %zu of %zu bytes", used, n - done);
            done += used;
            if (ev == GDB_FEED_PACKET) {
                char cmd = g_s.pkt_len && !g_s.pkt_over ? g_s.pkt[0] : 0;
                const char *p = g_s.pkt + 1, *end = g_s.pkt + g_s.pkt_len;
                uint64_t addr = 0, len = 0;
                bool is_m = cmd == 'm' && gdb_parse_hex(&p, end, &addr) == 0 && p < end &&
                            *p++ == ',' && gdb_parse_hex(&p, end, &len) == 0 && p == end;
                gdb_handle(&g_s);
                check_output(&g_s);
                if (is_m)
                    check_read(addr);
            }
            check_output(&g_s);
            gdb_out_clear(&g_s);
        }
        off += n;
    }
    /* Every breakpoint out: each address holds its original byte again. */
    struct gdb_bp bps[GDB_MAX_BP];
    memcpy(bps, g_s.bp, sizeof bps);
    gdb_remove_all(&g_s);
    for (int b = 0; b < GDB_MAX_BP; b++) {
        if (!bps[b].used)
            continue;
        if (bps[b].addr < BASE || bps[b].addr >= BASE + SIZE)
            finding("a breakpoint at 0x%llx, outside memory", (unsigned long long)bps[b].addr);
        if (g_f.mem[bps[b].addr - BASE] != bps[b].orig || gdb_is_bp(&g_s, bps[b].addr))
            finding("the breakpoint at 0x%llx was not taken out",
                    (unsigned long long)bps[b].addr);
    }
    return 0;
}
