/* tests/vm/test_gdb_proto.c — the GDB remote protocol's packet layer (vm/gdb_proto.c) on its own:
 * no socket, no KVM, a fake target with 64 KiB of "guest memory". What a well-behaved gdb sends
 * works (registers in amd64 order, memory with breakpoints hidden, the target description in
 * pieces, vCont), and what a hostile client sends is answered with an error and never overruns
 * anything: bad checksums, packets longer than the buffer, lengths of 2^64-1, addresses at the top
 * of the address space, too many hex digits, truncated and oversized X data, 65 breakpoints, and
 * a long stream of random bytes (run under ASan/UBSan in the sanitizer build). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "gdb.h"

#define MEM_BASE 0x400000ull
#define MEM_SIZE (64u * 1024u)

struct fake {
    uint8_t mem[MEM_SIZE];
    struct gdb_regs regs;
    int set_regs_calls;
    bool refuse_regs;
    int hw_calls;
};

static int f_read(void *t, uint64_t addr, uint64_t len, uint8_t *dst)
{
    struct fake *f = t;
    uint64_t end;
    if (__builtin_add_overflow(addr, len, &end) || addr < MEM_BASE || end > MEM_BASE + MEM_SIZE)
        return -1;
    memcpy(dst, f->mem + (addr - MEM_BASE), len);
    return 0;
}

static int f_write(void *t, uint64_t addr, const uint8_t *src, uint64_t len)
{
    struct fake *f = t;
    uint64_t end;
    if (__builtin_add_overflow(addr, len, &end) || addr < MEM_BASE || end > MEM_BASE + MEM_SIZE)
        return -1;
    memcpy(f->mem + (addr - MEM_BASE), src, len);
    return 0;
}

static int f_get_regs(void *t, struct gdb_regs *r)
{
    *r = ((struct fake *)t)->regs;
    return 0;
}

static int f_set_regs(void *t, const struct gdb_regs *r)
{
    struct fake *f = t;
    if (f->refuse_regs)
        return -1;
    f->regs = *r;
    f->set_regs_calls++;
    return 0;
}

static int f_hw(void *t, bool insert, int type, uint64_t addr, uint64_t len)
{
    (void)insert, (void)type, (void)addr, (void)len;
    ((struct fake *)t)->hw_calls++;
    return 0;
}

static const struct gdb_target_ops ops_nohw = {f_read, f_write, f_get_regs, f_set_regs, NULL};
static const struct gdb_target_ops ops_hw = {f_read, f_write, f_get_regs, f_set_regs, f_hw};

static struct fake g_fake;
static struct gdb_session g_s;
static char g_reply[2 * GDB_PKT_MAX + 64];
static size_t g_reply_len;

static int setup(void **state)
{
    (void)state;
    memset(&g_fake, 0, sizeof g_fake);
    for (size_t i = 0; i < MEM_SIZE; i++)
        g_fake.mem[i] = (uint8_t)(i * 7 + 1);
    for (int i = 0; i < 16; i++)
        g_fake.regs.gpr[i] = 0x1111111111111111ull * (uint64_t)(i + 1);
    g_fake.regs.rip = 0x400123;
    g_fake.regs.eflags = 0x246;
    g_fake.regs.seg[0] = 0x1b;
    g_fake.regs.seg[1] = 0x23;
    gdb_session_init(&g_s, &ops_nohw, &g_fake);
    return 0;
}

/* The data of the last packet in the session's output (unescaped), after its acks. */
static void take_reply(void)
{
    g_reply_len = 0;
    const char *o = g_s.out, *end = g_s.out + g_s.out_len;
    const char *d = NULL;
    for (const char *p = o; p < end; p++)
        if (*p == '$')
            d = p + 1;
    if (!d) {
        g_reply[0] = '\0';
        gdb_out_clear(&g_s);
        return;
    }
    for (const char *p = d; p < end && *p != '#'; p++) {
        char c = *p;
        if (c == '}' && p + 1 < end)
            c = *++p ^ 0x20;
        g_reply[g_reply_len++] = c;
    }
    g_reply[g_reply_len] = '\0';
    gdb_out_clear(&g_s);
}

/* Frame data as gdb would ($data#xx), feed it, handle it: the action, the reply in g_reply. */
static enum gdb_action send_raw(const void *data, size_t len)
{
    size_t cap = len + 8;
    uint8_t *buf = malloc(cap);
    assert_non_null(buf);
    uint8_t sum = 0;
    buf[0] = '$';
    memcpy(buf + 1, data, len);
    for (size_t i = 0; i < len; i++)
        sum += ((const uint8_t *)data)[i];
    snprintf((char *)buf + 1 + len, 4, "#%02x", sum);
    size_t total = len + 4, off = 0, used;
    enum gdb_action a = GDB_NONE;
    bool got = false;
    while (off < total) {
        enum gdb_feed_ev ev = gdb_feed(&g_s, buf + off, total - off, &used);
        off += used;
        if (ev == GDB_FEED_PACKET) {
            a = gdb_handle(&g_s);
            got = true;
        }
    }
    free(buf);
    assert_true(got);
    take_reply();
    return a;
}

static enum gdb_action send(const char *pkt) { return send_raw(pkt, strlen(pkt)); }

static void test_framing(void **state)
{
    (void)state;
    size_t used;
    /* a good packet is acknowledged */
    const char *good = "$?#3f";
    assert_int_equal(gdb_feed(&g_s, (const uint8_t *)good, 5, &used), GDB_FEED_PACKET);
    assert_int_equal(used, 5);
    assert_int_equal(g_s.out_len, 1);
    assert_int_equal(g_s.out[0], '+');
    gdb_out_clear(&g_s);
    /* a bad checksum is refused with '-' and never handled */
    const char *bad = "$?#00";
    assert_int_equal(gdb_feed(&g_s, (const uint8_t *)bad, 5, &used), GDB_FEED_MORE);
    assert_int_equal(g_s.out_len, 1);
    assert_int_equal(g_s.out[0], '-');
    gdb_out_clear(&g_s);
    /* checksum digits that are not hex */
    const char *nothex = "$?#zz";
    assert_int_equal(gdb_feed(&g_s, (const uint8_t *)nothex, 5, &used), GDB_FEED_MORE);
    assert_int_equal(g_s.out[0], '-');
    gdb_out_clear(&g_s);
    /* noise and acks between packets, ^C */
    const char *noise = "+-xyz\x03";
    assert_int_equal(gdb_feed(&g_s, (const uint8_t *)noise, 6, &used), GDB_FEED_INTERRUPT);
    assert_int_equal(used, 6);
    /* a packet one byte at a time, and a '$' inside one starts it over */
    const char *split = "$garbage$?#3f";
    enum gdb_feed_ev ev = GDB_FEED_MORE;
    for (size_t i = 0; i < strlen(split); i++) {
        ev = gdb_feed(&g_s, (const uint8_t *)split + i, 1, &used);
        assert_int_equal(used, 1);
        if (i + 1 < strlen(split))
            assert_int_equal(ev, GDB_FEED_MORE);
    }
    assert_int_equal(ev, GDB_FEED_PACKET);
    assert_string_equal(g_s.pkt, "?");
    gdb_out_clear(&g_s);
    /* an empty packet gets an empty reply */
    assert_int_equal(send(""), GDB_NONE);
    assert_string_equal(g_reply, "");
}

static void test_oversized_packet(void **state)
{
    (void)state;
    size_t n = GDB_PKT_MAX * 3;
    char *big = malloc(n);
    assert_non_null(big);
    memset(big, 'm', n);
    assert_int_equal(send_raw(big, n), GDB_NONE);
    assert_string_equal(g_reply, "E16");
    /* exactly the buffer's size is still a packet (and a bad m command) */
    assert_int_equal(send_raw(big, GDB_PKT_MAX), GDB_NONE);
    assert_string_equal(g_reply, "E02");
    free(big);
    /* the session still works */
    send("?");
    assert_string_equal(g_reply, "S05");
}

static void test_noack(void **state)
{
    (void)state;
    send("QStartNoAckMode");
    assert_string_equal(g_reply, "OK");
    assert_true(g_s.no_ack);
    size_t used;
    /* no acks now, and (as gdbserver does) the checksum is not held against the client */
    assert_int_equal(gdb_feed(&g_s, (const uint8_t *)"$?#00", 5, &used), GDB_FEED_PACKET);
    assert_int_equal(g_s.out_len, 0);
}

static void test_registers(void **state)
{
    (void)state;
    send("g");
    /* 16*8 + 8 + 4 + 6*4 + 8*10 + 8*4 + 16*16 + 4 + 8 + 8 bytes */
    assert_int_equal(g_reply_len, 2 * 552);
    assert_memory_equal(g_reply, "1111111111111111", 16);           /* rax, little-endian */
    assert_memory_equal(g_reply + 16 * 16, "2301400000000000", 16); /* rip */
    assert_memory_equal(g_reply + 17 * 16, "46020000", 8);          /* eflags */
    assert_memory_equal(g_reply + 17 * 16 + 8, "1b000000", 8);      /* cs */
    /* G with the same bytes, then with one changed register */
    char *regs = strdup(g_reply);
    memcpy(regs, "efbeadde00000000", 16);
    char *pkt = malloc(strlen(regs) + 2);
    pkt[0] = 'G';
    strcpy(pkt + 1, regs);
    send(pkt);
    assert_string_equal(g_reply, "OK");
    assert_int_equal(g_fake.regs.gpr[0], 0xdeadbeef);
    /* a truncated register, odd digits, garbage, too much */
    pkt[strlen(pkt) - 3] = '\0';
    send(pkt);
    assert_string_equal(g_reply, "E02");
    send("Gzz");
    assert_string_equal(g_reply, "E02");
    char *toolong = malloc(strlen(regs) + 8);
    sprintf(toolong, "G%s00", regs);
    send(toolong);
    assert_string_equal(g_reply, "E02");
    /* a refusal by the target (e.g. a segment selector change) */
    g_fake.refuse_regs = true;
    send(pkt);
    assert_string_equal(g_reply, "E02");
    sprintf(toolong, "G%s", regs);
    send(toolong);
    assert_string_equal(g_reply, "E01");
    g_fake.refuse_regs = false;
    free(regs);
    free(pkt);
    free(toolong);

    /* p and P */
    send("p10"); /* rip */
    assert_string_equal(g_reply, "2301400000000000");
    send("p18"); /* ss (24 is st0) */
    assert_string_equal(g_reply, "00000000000000000000");
    send("p13"); /* ss */
    assert_string_equal(g_reply, "23000000");
    send("p3a"); /* gs_base, the last */
    assert_string_equal(g_reply, "0000000000000000");
    send("p3b");
    assert_string_equal(g_reply, "E02");
    send("pffffffffffffffff");
    assert_string_equal(g_reply, "E02");
    send("p10000000000000000"); /* 17 digits */
    assert_string_equal(g_reply, "E02");
    send("p");
    assert_string_equal(g_reply, "E02");
    send("P10=0010400000000000");
    assert_string_equal(g_reply, "OK");
    assert_int_equal(g_fake.regs.rip, 0x401000);
    send("P10=00104000");
    assert_string_equal(g_reply, "E02");
    send("P10");
    assert_string_equal(g_reply, "E02");
    send("P3b=00");
    assert_string_equal(g_reply, "E02");
}

static void test_memory_read(void **state)
{
    (void)state;
    send("m400000,4");
    assert_string_equal(g_reply, "01080f16");
    send("m400000,0");
    assert_string_equal(g_reply, "");
    /* outside memory, at the top of the address space, wrapping lengths */
    send("m0,1");
    assert_string_equal(g_reply, "E01");
    send("mffffffffffffffff,1");
    assert_string_equal(g_reply, "E01");
    send("mffffffffffffffff,ffffffffffffffff");
    assert_string_equal(g_reply, "E01");
    send("mfffffffffffffff0,20");
    assert_string_equal(g_reply, "E01");
    /* a huge length is cut to one reply's worth, not allocated */
    send("m400000,ffffffffffffffff");
    assert_true(g_reply_len > 0 && g_reply_len <= GDB_PKT_MAX);
    assert_memory_equal(g_reply, "01080f16", 8);
    /* a read running off the end of memory returns what there is */
    send("m40fffe,10");
    assert_int_equal(g_reply_len, 4);
    /* malformed */
    send("m");
    assert_string_equal(g_reply, "E02");
    send("m400000");
    assert_string_equal(g_reply, "E02");
    send("m400000,");
    assert_string_equal(g_reply, "E02");
    send("m,4");
    assert_string_equal(g_reply, "E02");
    send("m400000,4x");
    assert_string_equal(g_reply, "E02");
    send("m00000000000400000,4"); /* 17 digits */
    assert_string_equal(g_reply, "E02");
}

static void test_memory_write(void **state)
{
    (void)state;
    send("M400010,2:abcd");
    assert_string_equal(g_reply, "OK");
    assert_int_equal(g_fake.mem[0x10], 0xab);
    assert_int_equal(g_fake.mem[0x11], 0xcd);
    send("M400010,2:abc");
    assert_string_equal(g_reply, "E02");
    send("M400010,2:abcdef");
    assert_string_equal(g_reply, "E02");
    send("M400010,2:zzzz");
    assert_string_equal(g_reply, "E02");
    send("M400010,2");
    assert_string_equal(g_reply, "E02");
    send("M0,1:00");
    assert_string_equal(g_reply, "E01");
    send("Mffffffffffffffff,1:00");
    assert_string_equal(g_reply, "E01");
    send("M400000,ffffffffffffffff:00");
    assert_string_equal(g_reply, "E02");
    /* X: binary with escapes ('}' then byte ^ 0x20 for '#', '$', '}', '*') */
    const char x[] = {'X', '4', '0', '0', '0', '2', '0', ',', '3', ':', 0x00, '}', '#' ^ 0x20, 'A'};
    send_raw(x, sizeof x);
    assert_string_equal(g_reply, "OK");
    assert_int_equal(g_fake.mem[0x20], 0x00);
    assert_int_equal(g_fake.mem[0x21], '#');
    assert_int_equal(g_fake.mem[0x22], 'A');
    send("X400020,0:");
    assert_string_equal(g_reply, "OK");
    send("X400020,4:abc"); /* short */
    assert_string_equal(g_reply, "E02");
    send("X400020,2:abc"); /* long */
    assert_string_equal(g_reply, "E02");
    const char trailing[] = {'X', '4', '0', '0', '0', '2', '0', ',', '1', ':', '}'};
    send_raw(trailing, sizeof trailing); /* an escape with nothing after it */
    assert_string_equal(g_reply, "E02");
    send("X0,1:a");
    assert_string_equal(g_reply, "E01");
    send("Xffffffffffffffff,ffffffffffffffff:a");
    assert_string_equal(g_reply, "E02");
}

static void test_breakpoints(void **state)
{
    (void)state;
    uint8_t before = g_fake.mem[0x100];
    send("Z0,400100,1");
    assert_string_equal(g_reply, "OK");
    assert_int_equal(g_fake.mem[0x100], 0xcc);
    assert_true(gdb_is_bp(&g_s, 0x400100));
    /* hidden from reads */
    send("m4000ff,3");
    char want[8];
    snprintf(want, sizeof want, "%02x%02x%02x", g_fake.mem[0xff], before, g_fake.mem[0x101]);
    assert_string_equal(g_reply, want);
    /* a write over it changes what is behind it; the int3 stays */
    send("M400100,1:5a");
    assert_string_equal(g_reply, "OK");
    assert_int_equal(g_fake.mem[0x100], 0xcc);
    send("m400100,1");
    assert_string_equal(g_reply, "5a");
    /* twice is fine; removing puts the byte back */
    send("Z0,400100,1");
    assert_string_equal(g_reply, "OK");
    send("z0,400100,1");
    assert_string_equal(g_reply, "OK");
    assert_int_equal(g_fake.mem[0x100], 0x5a);
    assert_false(gdb_is_bp(&g_s, 0x400100));
    send("z0,400100,1");
    assert_string_equal(g_reply, "OK");
    /* outside memory, wrong kind, malformed */
    send("Z0,0,1");
    assert_string_equal(g_reply, "E01");
    send("Z0,ffffffffffffffff,1");
    assert_string_equal(g_reply, "E01");
    send("Z0,400100,2");
    assert_string_equal(g_reply, "E02");
    send("Z0,400100");
    assert_string_equal(g_reply, "E02");
    send("Z0400100,1");
    assert_string_equal(g_reply, "E02");
    send("Z9,400100,1");
    assert_string_equal(g_reply, "");
    /* no hardware debug registers: Z1-Z4 unsupported (empty reply) */
    send("Z1,400100,1");
    assert_string_equal(g_reply, "");
    send("Z2,400100,4");
    assert_string_equal(g_reply, "");
    /* the table is full after GDB_MAX_BP */
    char pkt[64];
    for (int i = 0; i < GDB_MAX_BP; i++) {
        snprintf(pkt, sizeof pkt, "Z0,%llx,1", (unsigned long long)(MEM_BASE + 0x1000 + i));
        send(pkt);
        assert_string_equal(g_reply, "OK");
    }
    send("Z0,400200,1");
    assert_string_equal(g_reply, "E03");
    gdb_remove_all(&g_s);
    for (int i = 0; i < GDB_MAX_BP; i++)
        assert_int_equal(g_fake.mem[0x1000 + i], (uint8_t)((0x1000 + i) * 7 + 1));
}

static void test_hw_points(void **state)
{
    (void)state;
    gdb_session_init(&g_s, &ops_hw, &g_fake);
    send("Z1,400100,1");
    assert_string_equal(g_reply, "OK");
    send("z1,400100,1");
    assert_string_equal(g_reply, "OK");
    assert_int_equal(g_fake.hw_calls, 2);
}

static void test_resume(void **state)
{
    (void)state;
    assert_int_equal(send("c"), GDB_CONTINUE);
    assert_int_equal(g_s.signal, 0);
    assert_int_equal(send("s"), GDB_STEP);
    assert_int_equal(send("C0b"), GDB_CONTINUE);
    assert_int_equal(g_s.signal, 11);
    assert_int_equal(send("S05"), GDB_STEP);
    assert_int_equal(g_s.signal, 5);
    assert_int_equal(send("c400200"), GDB_CONTINUE);
    assert_int_equal(g_fake.regs.rip, 0x400200);
    assert_int_equal(send("C05;400300"), GDB_CONTINUE);
    assert_int_equal(g_fake.regs.rip, 0x400300);
    assert_int_equal(send("Czz"), GDB_NONE);
    assert_string_equal(g_reply, "E02");
    assert_int_equal(send("C100"), GDB_NONE); /* not a signal */
    assert_string_equal(g_reply, "E02");
    assert_int_equal(send("c4002zz"), GDB_NONE);
    assert_string_equal(g_reply, "E02");
    send("vCont?");
    assert_string_equal(g_reply, "vCont;c;C;s;S");
    assert_int_equal(send("vCont;c"), GDB_CONTINUE);
    assert_int_equal(send("vCont;s:1;c"), GDB_STEP);
    assert_int_equal(send("vCont;s:-1"), GDB_STEP);
    assert_int_equal(send("vCont;C0b:1"), GDB_CONTINUE);
    assert_int_equal(g_s.signal, 11);
    assert_int_equal(send("vCont;s:2;c"), GDB_CONTINUE); /* thread 2 does not exist */
    assert_int_equal(send("vCont;t"), GDB_NONE);
    assert_string_equal(g_reply, "E02");
    assert_int_equal(send("vCont;"), GDB_NONE);
    assert_int_equal(send("vCont;Cxyz"), GDB_NONE);
    assert_int_equal(send("vCont;cc"), GDB_NONE);
    assert_int_equal(send("vCont;s:ffffffffffffffffff"), GDB_NONE);
    assert_int_equal(send("k"), GDB_KILL);
    assert_int_equal(send("vKill;1"), GDB_KILL);
    assert_int_equal(send("D"), GDB_DETACH);
    assert_string_equal(g_reply, "OK");
    assert_int_equal(send("D;1"), GDB_DETACH);
}

static void test_queries(void **state)
{
    (void)state;
    send("qSupported:multiprocess+;swbreak+;hwbreak+;xmlRegisters=i386");
    assert_non_null(strstr(g_reply, "PacketSize=4000"));
    assert_non_null(strstr(g_reply, "qXfer:features:read+"));
    assert_true(g_s.swbreak);
    send("qAttached");
    assert_string_equal(g_reply, "1");
    send("qC");
    assert_string_equal(g_reply, "QC1");
    send("qfThreadInfo");
    assert_string_equal(g_reply, "m1");
    send("qsThreadInfo");
    assert_string_equal(g_reply, "l");
    send("qOffsets");
    assert_string_equal(g_reply, "");
    send("vMustReplyEmpty");
    assert_string_equal(g_reply, "");
    send("Hg0");
    assert_string_equal(g_reply, "OK");
    /* the target description, read in small pieces, is the whole document */
    size_t xlen;
    const char *xml = gdb_target_xml(&xlen);
    char *got = calloc(1, xlen + 1);
    size_t off = 0;
    char pkt[96];
    for (;;) {
        snprintf(pkt, sizeof pkt, "qXfer:features:read:target.xml:%zx,100", off);
        send(pkt);
        assert_true(g_reply_len >= 1);
        assert_true(g_reply[0] == 'm' || g_reply[0] == 'l');
        assert_true(off + g_reply_len - 1 <= xlen);
        memcpy(got + off, g_reply + 1, g_reply_len - 1);
        off += g_reply_len - 1;
        if (g_reply[0] == 'l')
            break;
    }
    assert_int_equal(off, xlen);
    assert_memory_equal(got, xml, xlen);
    free(got);
    assert_non_null(strstr(xml, "org.gnu.gdb.i386.core"));
    send("qXfer:features:read:target.xml:ffffffffffffffff,ffffffffffffffff");
    assert_string_equal(g_reply, "l");
    send("qXfer:features:read:other.xml:0,100");
    assert_string_equal(g_reply, "E00");
    send("qXfer:features:read:target.xml:0");
    assert_string_equal(g_reply, "E02");
}

static void test_stop_replies(void **state)
{
    (void)state;
    gdb_stop_reply(&g_s, 5, "swbreak");
    take_reply();
    assert_string_equal(g_reply, "T05thread:1;"); /* the client did not say swbreak+ */
    send("qSupported:swbreak+");
    gdb_stop_reply(&g_s, 5, "swbreak");
    take_reply();
    assert_string_equal(g_reply, "T05thread:1;swbreak:;");
    send("?");
    assert_string_equal(g_reply, "T05thread:1;swbreak:;");
    gdb_stop_reply(&g_s, 11, NULL);
    take_reply();
    assert_string_equal(g_reply, "T0bthread:1;");
    gdb_exit_reply(&g_s, false, 0);
    take_reply();
    assert_string_equal(g_reply, "W00");
    gdb_exit_reply(&g_s, true, 11);
    take_reply();
    assert_string_equal(g_reply, "X0b");
    assert_int_equal(gdb_signal_of_vector(14), 11);
    assert_int_equal(gdb_signal_of_vector(13), 11);
    assert_int_equal(gdb_signal_of_vector(6), 4);
    assert_int_equal(gdb_signal_of_vector(3), 5);
    assert_int_equal(gdb_signal_of_vector(1), 5);
    assert_int_equal(gdb_signal_of_vector(0), 8);
}

static void test_hex_parse(void **state)
{
    (void)state;
    const char *s = "ffffffffffffffff,", *p = s;
    uint64_t v;
    assert_int_equal(gdb_parse_hex(&p, s + strlen(s), &v), 0);
    assert_true(v == UINT64_MAX);
    assert_int_equal(*p, ',');
    s = "1ffffffffffffffff";
    p = s;
    assert_int_equal(gdb_parse_hex(&p, s + strlen(s), &v), -1);
    s = ",";
    p = s;
    assert_int_equal(gdb_parse_hex(&p, s + 1, &v), -1);
}

/* Random bytes, and random packets built from the command letters, never crash the layer or
 * write outside guest memory (the fake target checks every access; ASan watches the rest). */
static void test_random_input(void **state)
{
    (void)state;
    uint64_t x = 0x9e3779b97f4a7c15ull;
    uint8_t buf[512];
    static const char letters[] = "?gGpPmMXZzcsCSkDHTqQv,:;#$}*0123456789abcdefxyz-";
    for (int round = 0; round < 20000; round++) {
        size_t n = 1 + (x >> 33) % sizeof buf;
        for (size_t i = 0; i < n; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            buf[i] = (round & 1) ? (uint8_t)x : (uint8_t)letters[(x >> 20) % (sizeof letters - 1)];
        }
        uint8_t framed[sizeof buf + 8];
        const uint8_t *in = buf;
        size_t len = n;
        if (round % 3 == 0) { /* as a packet with a good checksum (it may hold '$' or '#') */
            uint8_t sum = 0;
            framed[0] = '$';
            memcpy(framed + 1, buf, n);
            for (size_t i = 0; i < n; i++)
                sum += buf[i];
            snprintf((char *)framed + 1 + n, 4, "#%02x", sum);
            in = framed;
            len = n + 4;
        }
        size_t off = 0, used;
        while (off < len) {
            if (gdb_feed(&g_s, in + off, len - off, &used) == GDB_FEED_PACKET)
                gdb_handle(&g_s);
            assert_true(used > 0 && used <= len - off);
            off += used;
            assert_true(g_s.out_len <= sizeof g_s.out);
            gdb_out_clear(&g_s);
        }
    }
    gdb_remove_all(&g_s);
    send("?");
    assert_true(g_reply_len > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_framing, setup),
        cmocka_unit_test_setup(test_oversized_packet, setup),
        cmocka_unit_test_setup(test_noack, setup),
        cmocka_unit_test_setup(test_registers, setup),
        cmocka_unit_test_setup(test_memory_read, setup),
        cmocka_unit_test_setup(test_memory_write, setup),
        cmocka_unit_test_setup(test_breakpoints, setup),
        cmocka_unit_test_setup(test_hw_points, setup),
        cmocka_unit_test_setup(test_resume, setup),
        cmocka_unit_test_setup(test_queries, setup),
        cmocka_unit_test_setup(test_stop_replies, setup),
        cmocka_unit_test_setup(test_hex_parse, setup),
        cmocka_unit_test_setup(test_random_input, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
