/* vm/gdb_proto.c — the GDB remote serial protocol, the packet layer of `aspen run --gdb`: framing
 * ($data#checksum, acks, ^C), the commands gdb sends (registers, memory, breakpoints, resume,
 * detach, the target description) and software breakpoints kept as int3 bytes in guest memory.
 *
 * Pure functions over a target interface (struct gdb_target_ops): no socket, no KVM, no
 * allocation, so tests/vm/test_gdb_proto.c and fuzz/fuzz_gdb.c drive it with hostile input
 * directly. Every number a client sends is parsed with at most 16 hex digits, every length is cut
 * to what one reply can carry before anything is read, and addresses are only ever passed to the
 * target's checked accessors, which see guest memory and nothing else.
 */
#include "gdb.h"

#include <stdio.h>
#include <string.h>

enum { IN_IDLE, IN_DATA, IN_CK1, IN_CK2 };

/* The target description: gdb's amd64 register set (core, SSE, segment bases) in the order the
 * g packet sends it. Written for this stub; the feature and register names are the ones gdb's
 * i386/amd64 code looks for. */
static const char target_xml[] =
    "<?xml version=\"1.0\"?>\n"
    "<!DOCTYPE target SYSTEM \"gdb-target.dtd\">\n"
    "<target version=\"1.0\">\n"
    "<architecture>i386:x86-64</architecture>\n"
    "<feature name=\"org.gnu.gdb.i386.core\">\n"
    "<flags id=\"i386_eflags\" size=\"4\">\n"
    "<field name=\"CF\" start=\"0\" end=\"0\"/><field name=\"\" start=\"1\" end=\"1\"/>\n"
    "<field name=\"PF\" start=\"2\" end=\"2\"/><field name=\"AF\" start=\"4\" end=\"4\"/>\n"
    "<field name=\"ZF\" start=\"6\" end=\"6\"/><field name=\"SF\" start=\"7\" end=\"7\"/>\n"
    "<field name=\"TF\" start=\"8\" end=\"8\"/><field name=\"IF\" start=\"9\" end=\"9\"/>\n"
    "<field name=\"DF\" start=\"10\" end=\"10\"/><field name=\"OF\" start=\"11\" end=\"11\"/>\n"
    "<field name=\"AC\" start=\"18\" end=\"18\"/><field name=\"ID\" start=\"21\" end=\"21\"/>\n"
    "</flags>\n"
    "<reg name=\"rax\" bitsize=\"64\" type=\"int64\" regnum=\"0\"/>\n"
    "<reg name=\"rbx\" bitsize=\"64\" type=\"int64\"/>\n"
    "<reg name=\"rcx\" bitsize=\"64\" type=\"int64\"/>\n"
    "<reg name=\"rdx\" bitsize=\"64\" type=\"int64\"/>\n"
    "<reg name=\"rsi\" bitsize=\"64\" type=\"int64\"/>\n"
    "<reg name=\"rdi\" bitsize=\"64\" type=\"int64\"/>\n"
    "<reg name=\"rbp\" bitsize=\"64\" type=\"data_ptr\"/>\n"
    "<reg name=\"rsp\" bitsize=\"64\" type=\"data_ptr\"/>\n"
    "<reg name=\"r8\" bitsize=\"64\" type=\"int64\"/>\n"
    "<reg name=\"r9\" bitsize=\"64\" type=\"int64\"/>\n"
    "<reg name=\"r10\" bitsize=\"64\" type=\"int64\"/>\n"
    "<reg name=\"r11\" bitsize=\"64\" type=\"int64\"/>\n"
    "<reg name=\"r12\" bitsize=\"64\" type=\"int64\"/>\n"
    "<reg name=\"r13\" bitsize=\"64\" type=\"int64\"/>\n"
    "<reg name=\"r14\" bitsize=\"64\" type=\"int64\"/>\n"
    "<reg name=\"r15\" bitsize=\"64\" type=\"int64\"/>\n"
    "<reg name=\"rip\" bitsize=\"64\" type=\"code_ptr\"/>\n"
    "<reg name=\"eflags\" bitsize=\"32\" type=\"i386_eflags\"/>\n"
    "<reg name=\"cs\" bitsize=\"32\" type=\"int32\"/>\n"
    "<reg name=\"ss\" bitsize=\"32\" type=\"int32\"/>\n"
    "<reg name=\"ds\" bitsize=\"32\" type=\"int32\"/>\n"
    "<reg name=\"es\" bitsize=\"32\" type=\"int32\"/>\n"
    "<reg name=\"fs\" bitsize=\"32\" type=\"int32\"/>\n"
    "<reg name=\"gs\" bitsize=\"32\" type=\"int32\"/>\n"
    "<reg name=\"st0\" bitsize=\"80\" type=\"i387_ext\"/>\n"
    "<reg name=\"st1\" bitsize=\"80\" type=\"i387_ext\"/>\n"
    "<reg name=\"st2\" bitsize=\"80\" type=\"i387_ext\"/>\n"
    "<reg name=\"st3\" bitsize=\"80\" type=\"i387_ext\"/>\n"
    "<reg name=\"st4\" bitsize=\"80\" type=\"i387_ext\"/>\n"
    "<reg name=\"st5\" bitsize=\"80\" type=\"i387_ext\"/>\n"
    "<reg name=\"st6\" bitsize=\"80\" type=\"i387_ext\"/>\n"
    "<reg name=\"st7\" bitsize=\"80\" type=\"i387_ext\"/>\n"
    "<reg name=\"fctrl\" bitsize=\"32\" type=\"int\" group=\"float\"/>\n"
    "<reg name=\"fstat\" bitsize=\"32\" type=\"int\" group=\"float\"/>\n"
    "<reg name=\"ftag\" bitsize=\"32\" type=\"int\" group=\"float\"/>\n"
    "<reg name=\"fiseg\" bitsize=\"32\" type=\"int\" group=\"float\"/>\n"
    "<reg name=\"fioff\" bitsize=\"32\" type=\"int\" group=\"float\"/>\n"
    "<reg name=\"foseg\" bitsize=\"32\" type=\"int\" group=\"float\"/>\n"
    "<reg name=\"fooff\" bitsize=\"32\" type=\"int\" group=\"float\"/>\n"
    "<reg name=\"fop\" bitsize=\"32\" type=\"int\" group=\"float\"/>\n"
    "</feature>\n"
    "<feature name=\"org.gnu.gdb.i386.sse\">\n"
    "<vector id=\"v4f\" type=\"ieee_single\" count=\"4\"/>\n"
    "<vector id=\"v2d\" type=\"ieee_double\" count=\"2\"/>\n"
    "<vector id=\"v16i8\" type=\"int8\" count=\"16\"/>\n"
    "<vector id=\"v8i16\" type=\"int16\" count=\"8\"/>\n"
    "<vector id=\"v4i32\" type=\"int32\" count=\"4\"/>\n"
    "<vector id=\"v2i64\" type=\"int64\" count=\"2\"/>\n"
    "<union id=\"vec128\"><field name=\"v4_float\" type=\"v4f\"/>"
    "<field name=\"v2_double\" type=\"v2d\"/><field name=\"v16_int8\" type=\"v16i8\"/>"
    "<field name=\"v8_int16\" type=\"v8i16\"/><field name=\"v4_int32\" type=\"v4i32\"/>"
    "<field name=\"v2_int64\" type=\"v2i64\"/><field name=\"uint128\" type=\"uint128\"/>"
    "</union>\n"
    "<reg name=\"xmm0\" bitsize=\"128\" type=\"vec128\" regnum=\"40\"/>\n"
    "<reg name=\"xmm1\" bitsize=\"128\" type=\"vec128\"/>\n"
    "<reg name=\"xmm2\" bitsize=\"128\" type=\"vec128\"/>\n"
    "<reg name=\"xmm3\" bitsize=\"128\" type=\"vec128\"/>\n"
    "<reg name=\"xmm4\" bitsize=\"128\" type=\"vec128\"/>\n"
    "<reg name=\"xmm5\" bitsize=\"128\" type=\"vec128\"/>\n"
    "<reg name=\"xmm6\" bitsize=\"128\" type=\"vec128\"/>\n"
    "<reg name=\"xmm7\" bitsize=\"128\" type=\"vec128\"/>\n"
    "<reg name=\"xmm8\" bitsize=\"128\" type=\"vec128\"/>\n"
    "<reg name=\"xmm9\" bitsize=\"128\" type=\"vec128\"/>\n"
    "<reg name=\"xmm10\" bitsize=\"128\" type=\"vec128\"/>\n"
    "<reg name=\"xmm11\" bitsize=\"128\" type=\"vec128\"/>\n"
    "<reg name=\"xmm12\" bitsize=\"128\" type=\"vec128\"/>\n"
    "<reg name=\"xmm13\" bitsize=\"128\" type=\"vec128\"/>\n"
    "<reg name=\"xmm14\" bitsize=\"128\" type=\"vec128\"/>\n"
    "<reg name=\"xmm15\" bitsize=\"128\" type=\"vec128\"/>\n"
    "<reg name=\"mxcsr\" bitsize=\"32\" type=\"int\" group=\"vector\"/>\n"
    "</feature>\n"
    "<feature name=\"org.gnu.gdb.i386.segments\">\n"
    "<reg name=\"fs_base\" bitsize=\"64\" type=\"int\" regnum=\"57\"/>\n"
    "<reg name=\"gs_base\" bitsize=\"64\" type=\"int\"/>\n"
    "</feature>\n"
    "</target>\n";

const char *gdb_target_xml(size_t *len)
{
    *len = sizeof target_xml - 1;
    return target_xml;
}

int gdb_signal_of_vector(uint32_t vector)
{
    switch (vector) {
    case 0: /* #DE */
    case 16: /* #MF */
    case 19: /* #XM */
        return 8; /* SIGFPE */
    case 1: /* #DB */
    case 3: /* #BP */
        return 5; /* SIGTRAP */
    case 6: /* #UD */
        return 4; /* SIGILL */
    case 17: /* #AC */
        return 7; /* SIGBUS */
    default: /* #PF, #GP, #SS, #NP and the rest */
        return 11; /* SIGSEGV */
    }
}

void gdb_session_init(struct gdb_session *s, const struct gdb_target_ops *ops, void *target)
{
    memset(s, 0, sizeof *s);
    s->ops = ops;
    s->target = target;
    snprintf(s->stop, sizeof s->stop, "S05");
}

int gdb_hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int gdb_parse_hex(const char **p, const char *end, uint64_t *out)
{
    uint64_t v = 0;
    int n = 0;
    const char *q = *p;
    while (q < end && gdb_hexval((unsigned char)*q) >= 0) {
        if (++n > 16)
            return -1;
        v = v << 4 | (uint64_t)gdb_hexval((unsigned char)*q);
        q++;
    }
    if (n == 0)
        return -1;
    *p = q;
    *out = v;
    return 0;
}

static void out_byte(struct gdb_session *s, char c)
{
    if (s->out_len < sizeof s->out)
        s->out[s->out_len++] = c;
}

/* Queue one packet: '$', the data with '#', '$', '}' and '*' escaped, '#', the checksum. */
static void put_packet(struct gdb_session *s, const char *data, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    if (s->out_len + 2 * len + 4 > sizeof s->out)
        return; /* cannot happen with replies bounded by GDB_PKT_MAX; never overrun */
    uint8_t sum = 0;
    out_byte(s, '$');
    for (size_t i = 0; i < len; i++) {
        char c = data[i];
        if (c == '#' || c == '$' || c == '}' || c == '*') {
            out_byte(s, '}');
            sum += '}';
            c ^= 0x20;
        }
        out_byte(s, c);
        sum += (uint8_t)c;
    }
    out_byte(s, '#');
    out_byte(s, hex[sum >> 4]);
    out_byte(s, hex[sum & 15]);
}

static void put_str(struct gdb_session *s, const char *str) { put_packet(s, str, strlen(str)); }

enum gdb_feed_ev gdb_feed(struct gdb_session *s, const uint8_t *buf, size_t n, size_t *used)
{
    size_t i = 0;
    enum gdb_feed_ev ev = GDB_FEED_MORE;
    while (i < n && ev == GDB_FEED_MORE) {
        uint8_t c = buf[i++];
        switch (s->in_state) {
        case IN_IDLE:
            if (c == '$') {
                s->in_state = IN_DATA;
                s->pkt_len = 0;
                s->pkt_over = false;
                s->sum = 0;
            } else if (c == 0x03) {
                ev = GDB_FEED_INTERRUPT;
            } /* acks and noise between packets are ignored */
            break;
        case IN_DATA:
            if (c == '#') {
                s->in_state = IN_CK1;
            } else if (c == '$') { /* a new packet before this one ended: resynchronise */
                s->pkt_len = 0;
                s->pkt_over = false;
                s->sum = 0;
            } else {
                s->sum += c;
                if (s->pkt_len < GDB_PKT_MAX)
                    s->pkt[s->pkt_len++] = (char)c;
                else
                    s->pkt_over = true;
            }
            break;
        case IN_CK1:
            s->ck[0] = c;
            s->in_state = IN_CK2;
            break;
        case IN_CK2: {
            s->ck[1] = c;
            s->in_state = IN_IDLE;
            int h = gdb_hexval(s->ck[0]), l = gdb_hexval(s->ck[1]);
            bool good = h >= 0 && l >= 0 && (uint8_t)(h << 4 | l) == s->sum;
            if (!s->no_ack) {
                if (!good) {
                    out_byte(s, '-'); /* ask for it again */
                    break;
                }
                out_byte(s, '+');
            }
            s->pkt[s->pkt_len] = '\0';
            ev = GDB_FEED_PACKET;
            break;
        }
        }
    }
    *used = i;
    return ev;
}

bool gdb_is_bp(const struct gdb_session *s, uint64_t addr)
{
    for (int i = 0; i < GDB_MAX_BP; i++)
        if (s->bp[i].used && s->bp[i].addr == addr)
            return true;
    return false;
}

void gdb_remove_all(struct gdb_session *s)
{
    for (int i = 0; i < GDB_MAX_BP; i++)
        if (s->bp[i].used) {
            s->ops->write_mem(s->target, s->bp[i].addr, &s->bp[i].orig, 1);
            s->bp[i].used = false;
        }
}

/* Register n of the g packet: where it is in struct gdb_regs and how many bytes it has. */
static uint8_t *reg_ptr(struct gdb_regs *r, unsigned n, size_t *size)
{
    if (n < 16) {
        *size = 8;
        return (uint8_t *)&r->gpr[n];
    }
    if (n == 16) {
        *size = 8;
        return (uint8_t *)&r->rip;
    }
    if (n == 17) {
        *size = 4;
        return (uint8_t *)&r->eflags;
    }
    if (n < 24) {
        *size = 4;
        return (uint8_t *)&r->seg[n - 18];
    }
    if (n < 32) {
        *size = 10;
        return r->st[n - 24];
    }
    if (n < 40) {
        *size = 4;
        return (uint8_t *)&r->fpc[n - 32];
    }
    if (n < 56) {
        *size = 16;
        return r->xmm[n - 40];
    }
    if (n == 56) {
        *size = 4;
        return (uint8_t *)&r->mxcsr;
    }
    if (n == 57) {
        *size = 8;
        return (uint8_t *)&r->fs_base;
    }
    if (n == 58) {
        *size = 8;
        return (uint8_t *)&r->gs_base;
    }
    *size = 0;
    return NULL;
}

static size_t put_hex(char *dst, const uint8_t *src, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        dst[2 * i] = hex[src[i] >> 4];
        dst[2 * i + 1] = hex[src[i] & 15];
    }
    return 2 * n;
}

/* Exactly 2*n hex digits from p into dst. */
static int get_hex(const char *p, size_t avail, uint8_t *dst, size_t n)
{
    if (avail != 2 * n)
        return -1;
    for (size_t i = 0; i < n; i++) {
        int h = gdb_hexval((unsigned char)p[2 * i]), l = gdb_hexval((unsigned char)p[2 * i + 1]);
        if (h < 0 || l < 0)
            return -1;
        dst[i] = (uint8_t)(h << 4 | l);
    }
    return 0;
}

/* "ADDR,LEN" at *p, followed by the byte `stop` (or the end when stop is 0). */
static int parse_addr_len(const char **p, const char *end, char stop, uint64_t *addr,
                          uint64_t *len)
{
    if (gdb_parse_hex(p, end, addr) != 0 || *p >= end || **p != ',')
        return -1;
    (*p)++;
    if (gdb_parse_hex(p, end, len) != 0)
        return -1;
    if (stop ? (*p >= end || **p != stop) : *p != end)
        return -1;
    if (stop)
        (*p)++;
    return 0;
}

/* Largest memory read one reply carries (hex doubles it). */
#define MEM_MAX ((GDB_PKT_MAX - 16) / 2)

/* Read up to len bytes at addr, as far as memory is readable (page by page): the count read, with
 * the session's breakpoints shown as the bytes they replaced. */
static size_t read_visible(struct gdb_session *s, uint64_t addr, uint64_t len, uint8_t *dst)
{
    size_t done = 0;
    while (done < len) {
        uint64_t a = addr + done; /* cannot wrap: len <= UINT64_MAX - addr + 1 checked below */
        uint64_t chunk = 4096 - (a & 4095);
        if (chunk > len - done)
            chunk = len - done;
        if (s->ops->read_mem(s->target, a, chunk, dst + done) != 0)
            break;
        done += chunk;
    }
    for (int i = 0; i < GDB_MAX_BP; i++)
        if (s->bp[i].used && s->bp[i].addr >= addr && s->bp[i].addr - addr < done)
            dst[s->bp[i].addr - addr] = s->bp[i].orig;
    return done;
}

/* Write guest memory for M and X: bytes under a breakpoint become its saved byte, the int3 stays. */
static int write_visible(struct gdb_session *s, uint64_t addr, uint8_t *data, uint64_t len)
{
    uint8_t saved[GDB_MAX_BP];
    for (int i = 0; i < GDB_MAX_BP; i++)
        if (s->bp[i].used && s->bp[i].addr >= addr && s->bp[i].addr - addr < len) {
            saved[i] = data[s->bp[i].addr - addr];
            data[s->bp[i].addr - addr] = 0xcc;
        }
    if (s->ops->write_mem(s->target, addr, data, len) != 0)
        return -1;
    for (int i = 0; i < GDB_MAX_BP; i++)
        if (s->bp[i].used && s->bp[i].addr >= addr && s->bp[i].addr - addr < len)
            s->bp[i].orig = saved[i];
    return 0;
}

static void do_read_mem(struct gdb_session *s, const char *p, const char *end)
{
    uint64_t addr, len;
    if (parse_addr_len(&p, end, 0, &addr, &len) != 0) {
        put_str(s, "E02");
        return;
    }
    if (len > MEM_MAX)
        len = MEM_MAX; /* a shorter reply is allowed; gdb asks for the rest */
    if (len && len - 1 > UINT64_MAX - addr)
        len = UINT64_MAX - addr + 1; /* never past the top of the address space */
    if (len == 0) {
        put_str(s, "");
        return;
    }
    _Static_assert(MEM_MAX <= sizeof s->tmp && 2 * MEM_MAX <= sizeof s->tmp_hex, "scratch");
    uint8_t *buf = s->tmp;
    char *hex = s->tmp_hex;
    size_t n = read_visible(s, addr, len, buf);
    if (n == 0) {
        put_str(s, "E01");
        return;
    }
    put_packet(s, hex, put_hex(hex, buf, n));
}

static void do_write_mem(struct gdb_session *s, const char *p, const char *end, bool binary)
{
    uint64_t addr, len;
    if (parse_addr_len(&p, end, ':', &addr, &len) != 0 || len > GDB_PKT_MAX) {
        put_str(s, "E02");
        return;
    }
    uint8_t *buf = s->tmp;
    if (binary) {
        uint64_t n = 0;
        while (p < end) {
            uint8_t c = (uint8_t)*p++;
            if (c == '}') {
                if (p >= end)
                    break;
                c = (uint8_t)*p++ ^ 0x20;
            }
            if (n == len) {
                n++; /* more data than the length says */
                break;
            }
            buf[n++] = c;
        }
        if (n != len) {
            put_str(s, "E02");
            return;
        }
    } else if (get_hex(p, (size_t)(end - p), buf, len) != 0) {
        put_str(s, "E02");
        return;
    }
    if (len == 0) { /* gdb probes X with an empty write */
        put_str(s, "OK");
        return;
    }
    put_str(s, write_visible(s, addr, buf, len) == 0 ? "OK" : "E01");
}

static void do_regs(struct gdb_session *s)
{
    struct gdb_regs r;
    if (s->ops->get_regs(s->target, &r) != 0) {
        put_str(s, "E01");
        return;
    }
    char hex[2 * sizeof r];
    size_t n = 0;
    for (unsigned i = 0; i < GDB_NREGS; i++) {
        size_t sz;
        uint8_t *v = reg_ptr(&r, i, &sz);
        n += put_hex(hex + n, v, sz);
    }
    put_packet(s, hex, n);
}

static void do_set_regs(struct gdb_session *s, const char *p, const char *end)
{
    struct gdb_regs r;
    if (s->ops->get_regs(s->target, &r) != 0) {
        put_str(s, "E01");
        return;
    }
    /* gdb may send fewer registers than it knows of: set what is there, whole registers only. */
    for (unsigned i = 0; i < GDB_NREGS && p < end; i++) {
        size_t sz;
        uint8_t *v = reg_ptr(&r, i, &sz);
        if ((size_t)(end - p) < 2 * sz || get_hex(p, 2 * sz, v, sz) != 0) {
            put_str(s, "E02");
            return;
        }
        p += 2 * sz;
    }
    if (p != end) {
        put_str(s, "E02");
        return;
    }
    put_str(s, s->ops->set_regs(s->target, &r) == 0 ? "OK" : "E01");
}

static void do_reg(struct gdb_session *s, const char *p, const char *end, bool write)
{
    uint64_t n;
    struct gdb_regs r;
    if (gdb_parse_hex(&p, end, &n) != 0 || n >= GDB_NREGS || (write ? (p >= end || *p != '=')
                                                                    : p != end)) {
        put_str(s, "E02");
        return;
    }
    if (s->ops->get_regs(s->target, &r) != 0) {
        put_str(s, "E01");
        return;
    }
    size_t sz;
    uint8_t *v = reg_ptr(&r, (unsigned)n, &sz);
    if (!write) {
        char hex[32];
        put_packet(s, hex, put_hex(hex, v, sz));
        return;
    }
    p++;
    if (get_hex(p, (size_t)(end - p), v, sz) != 0) {
        put_str(s, "E02");
        return;
    }
    put_str(s, s->ops->set_regs(s->target, &r) == 0 ? "OK" : "E01");
}

static void do_point(struct gdb_session *s, const char *p, const char *end, bool insert)
{
    uint64_t type, addr, kind;
    if (gdb_parse_hex(&p, end, &type) != 0 || p >= end || *p++ != ',' ||
        gdb_parse_hex(&p, end, &addr) != 0 || p >= end || *p++ != ',' ||
        gdb_parse_hex(&p, end, &kind) != 0 || (p != end && *p != ';')) {
        put_str(s, "E02");
        return;
    }
    if (type >= 1 && type <= 4) {
        if (!s->ops->hw_point) {
            put_str(s, ""); /* not supported: gdb says so to the user */
            return;
        }
        put_str(s, s->ops->hw_point(s->target, insert, (int)type, addr, kind) == 0 ? "OK"
                                                                                    : "E03");
        return;
    }
    if (type != 0) {
        put_str(s, "");
        return;
    }
    if (kind != 1) { /* an x86 breakpoint is the one byte int3 */
        put_str(s, "E02");
        return;
    }
    int slot = -1;
    for (int i = 0; i < GDB_MAX_BP; i++) {
        if (s->bp[i].used && s->bp[i].addr == addr) {
            if (!insert) {
                if (s->ops->write_mem(s->target, addr, &s->bp[i].orig, 1) != 0) {
                    put_str(s, "E01");
                    return;
                }
                s->bp[i].used = false;
            }
            put_str(s, "OK");
            return;
        }
        if (!s->bp[i].used && slot < 0)
            slot = i;
    }
    if (!insert) {
        put_str(s, "OK"); /* not there: nothing to remove */
        return;
    }
    if (slot < 0) {
        put_str(s, "E03");
        return;
    }
    uint8_t orig, cc = 0xcc;
    if (s->ops->read_mem(s->target, addr, 1, &orig) != 0 ||
        s->ops->write_mem(s->target, addr, &cc, 1) != 0) {
        put_str(s, "E01");
        return;
    }
    s->bp[slot] = (struct gdb_bp){.addr = addr, .orig = orig, .used = true};
    put_str(s, "OK");
}

/* c [ADDR], s [ADDR], C SIG[;ADDR], S SIG[;ADDR]: resuming at ADDR sets rip first. */
static enum gdb_action do_resume(struct gdb_session *s, const char *p, const char *end, bool step,
                                 bool with_sig)
{
    uint64_t sig = 0, addr;
    if (with_sig) {
        if (gdb_parse_hex(&p, end, &sig) != 0 || sig > 255)
            goto bad;
        if (p < end && *p++ != ';')
            goto bad;
    }
    if (p < end) {
        struct gdb_regs r;
        if (gdb_parse_hex(&p, end, &addr) != 0 || p != end)
            goto bad;
        if (s->ops->get_regs(s->target, &r) != 0)
            goto fail;
        r.rip = addr;
        if (s->ops->set_regs(s->target, &r) != 0)
            goto fail;
    }
    s->signal = (int)sig;
    return step ? GDB_STEP : GDB_CONTINUE;
bad:
    put_str(s, "E02");
    return GDB_NONE;
fail:
    put_str(s, "E01");
    return GDB_NONE;
}

/* vCont;ACTION[:THREAD][;ACTION[:THREAD]]...: one thread, so the first action that names it (1),
 * every thread (-1) or no thread decides. */
static enum gdb_action do_vcont(struct gdb_session *s, const char *p, const char *end)
{
    while (p < end && *p == ';') {
        p++;
        const char *a = p;
        while (p < end && *p != ';')
            p++;
        const char *colon = memchr(a, ':', (size_t)(p - a));
        const char *aend = colon ? colon : p;
        if (colon) {
            const char *t = colon + 1;
            uint64_t tid;
            bool all = p - t == 2 && t[0] == '-' && t[1] == '1';
            if (!all && (gdb_parse_hex(&t, p, &tid) != 0 || t != p || (tid != 1 && tid != 0)))
                continue; /* another thread: there is none */
        }
        if (aend - a < 1)
            break;
        switch (a[0]) {
        case 'c':
        case 's':
            if (aend - a != 1)
                goto bad;
            s->signal = 0;
            return a[0] == 's' ? GDB_STEP : GDB_CONTINUE;
        case 'C':
        case 'S': {
            const char *q = a + 1;
            uint64_t sig;
            if (gdb_parse_hex(&q, aend, &sig) != 0 || q != aend || sig > 255)
                goto bad;
            s->signal = (int)sig;
            return a[0] == 'S' ? GDB_STEP : GDB_CONTINUE;
        }
        default:
            goto bad; /* t (stop) and r (range step) are not offered */
        }
    }
bad:
    put_str(s, "E02");
    return GDB_NONE;
}

static bool starts(const char *p, const char *end, const char *lit)
{
    size_t n = strlen(lit);
    return (size_t)(end - p) >= n && memcmp(p, lit, n) == 0;
}

static void do_xfer(struct gdb_session *s, const char *p, const char *end)
{
    static const char annex[] = "target.xml:";
    if (!starts(p, end, annex)) {
        put_str(s, "E00");
        return;
    }
    p += sizeof annex - 1;
    uint64_t off, len;
    if (parse_addr_len(&p, end, 0, &off, &len) != 0) {
        put_str(s, "E02");
        return;
    }
    size_t xlen;
    const char *xml = gdb_target_xml(&xlen);
    if (len > GDB_PKT_MAX / 2)
        len = GDB_PKT_MAX / 2;
    char *buf = s->tmp_hex; /* GDB_PKT_MAX / 2 + 1 bytes at most */
    if (off >= xlen) {
        put_str(s, "l");
        return;
    }
    size_t n = xlen - (size_t)off < len ? xlen - (size_t)off : (size_t)len;
    buf[0] = off + n < xlen ? 'm' : 'l';
    memcpy(buf + 1, xml + off, n);
    put_packet(s, buf, n + 1);
}

static void do_query(struct gdb_session *s, const char *p, const char *end)
{
    if (starts(p, end, "qSupported")) {
        /* what the client supports: swbreak+ / hwbreak+ change the stop replies */
        for (const char *q = p; q < end; q++) {
            if (starts(q, end, "swbreak+"))
                s->swbreak = true;
            if (starts(q, end, "hwbreak+"))
                s->hwbreak = true;
        }
        char r[160];
        snprintf(r, sizeof r,
                 "PacketSize=%x;qXfer:features:read+;swbreak+;hwbreak+;QStartNoAckMode+;"
                 "vContSupported+",
                 GDB_PKT_MAX);
        put_str(s, r);
    } else if (starts(p, end, "qXfer:features:read:")) {
        do_xfer(s, p + strlen("qXfer:features:read:"), end);
    } else if (end - p == 9 && starts(p, end, "qAttached")) {
        put_str(s, "1");
    } else if (starts(p, end, "qAttached:")) {
        put_str(s, "1");
    } else if (end - p == 2 && starts(p, end, "qC")) {
        put_str(s, "QC1");
    } else if (starts(p, end, "qfThreadInfo")) {
        put_str(s, "m1");
    } else if (starts(p, end, "qsThreadInfo")) {
        put_str(s, "l");
    } else if (starts(p, end, "qSymbol")) {
        put_str(s, "OK");
    } else {
        put_str(s, ""); /* qOffsets, qTStatus, ...: not supported */
    }
}

enum gdb_action gdb_handle(struct gdb_session *s)
{
    if (s->pkt_over) {
        put_str(s, "E16"); /* longer than the PacketSize this stub announced */
        return GDB_NONE;
    }
    const char *p = s->pkt, *end = s->pkt + s->pkt_len;
    if (p == end) {
        put_str(s, "");
        return GDB_NONE;
    }
    char cmd = *p++;
    switch (cmd) {
    case '?':
        put_str(s, s->stop);
        break;
    case 'g':
        if (p != end)
            put_str(s, "E02");
        else
            do_regs(s);
        break;
    case 'G':
        do_set_regs(s, p, end);
        break;
    case 'p':
        do_reg(s, p, end, false);
        break;
    case 'P':
        do_reg(s, p, end, true);
        break;
    case 'm':
        do_read_mem(s, p, end);
        break;
    case 'M':
        do_write_mem(s, p, end, false);
        break;
    case 'X':
        do_write_mem(s, p, end, true);
        break;
    case 'Z':
    case 'z':
        do_point(s, p, end, cmd == 'Z');
        break;
    case 'c':
    case 's':
        return do_resume(s, p, end, cmd == 's', false);
    case 'C':
    case 'S':
        return do_resume(s, p, end, cmd == 'S', true);
    case 'k':
        return GDB_KILL;
    case 'D':
        put_str(s, "OK");
        return GDB_DETACH;
    case 'H':
    case 'T':
        put_str(s, "OK"); /* one thread: every thread id names it */
        break;
    case 'q':
        do_query(s, p - 1, end);
        break;
    case 'Q':
        if (s->pkt_len == 15 && starts(p - 1, end, "QStartNoAckMode")) {
            put_str(s, "OK");
            s->no_ack = true; /* after the OK, which is still acknowledged */
        } else {
            put_str(s, "");
        }
        break;
    case 'v':
        if (starts(p - 1, end, "vCont?")) {
            put_str(s, "vCont;c;C;s;S");
        } else if (starts(p - 1, end, "vCont;")) {
            return do_vcont(s, p + 4, end);
        } else if (starts(p - 1, end, "vKill")) {
            put_str(s, "OK");
            return GDB_KILL;
        } else {
            put_str(s, ""); /* vMustReplyEmpty and everything else */
        }
        break;
    default:
        put_str(s, "");
    }
    return GDB_NONE;
}

void gdb_stop_reply(struct gdb_session *s, int signal, const char *reason)
{
    bool say = reason && ((strcmp(reason, "swbreak") == 0 && s->swbreak) ||
                          (strcmp(reason, "hwbreak") == 0 && s->hwbreak));
    snprintf(s->stop, sizeof s->stop, "T%02xthread:1;%s%s", signal & 0xff, say ? reason : "",
             say ? ":;" : "");
    put_str(s, s->stop);
}

void gdb_exit_reply(struct gdb_session *s, bool by_signal, int value)
{
    snprintf(s->stop, sizeof s->stop, "%c%02x", by_signal ? 'X' : 'W', value & 0xff);
    s->exited = true;
    put_str(s, s->stop);
}
