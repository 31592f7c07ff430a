/* vm/gdb.h — the debugger's pieces inside vm/: the GDB remote serial protocol's packet layer
 * (vm/gdb_proto.c: framing, hex, the commands, breakpoints in guest memory — pure functions over a
 * target interface, no socket and no KVM, so they can be tested and fuzzed on their own), the VM
 * side (vm/gdb_vm.c: the socket, registers through KVM, stops from the fault path) and the ELF core
 * writer (vm/core.c). Not included outside vm/ except by their tests.
 *
 * Everything a client sends is hostile input: every length is bounded by GDB_PKT_MAX before it is
 * used and every address goes to the target's checked accessors. */
#ifndef ASPEN_VM_GDB_H
#define ASPEN_VM_GDB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The largest packet accepted and the size advertised to the client (PacketSize). */
#define GDB_PKT_MAX 16384
#define GDB_MAX_BP 64 /* software breakpoints */
#define GDB_MAX_HW 4  /* DR0-DR3 */

/* Registers in gdb's amd64 order, as the target description (gdb_target_xml) lays them out. */
struct gdb_regs {
    uint64_t gpr[16]; /* rax rbx rcx rdx rsi rdi rbp rsp r8 .. r15 */
    uint64_t rip;
    uint32_t eflags;
    uint32_t seg[6]; /* cs ss ds es fs gs */
    uint8_t st[8][10];
    uint32_t fpc[8]; /* fctrl fstat ftag fiseg fioff foseg fooff fop */
    uint8_t xmm[16][16];
    uint32_t mxcsr;
    uint64_t fs_base, gs_base;
};
#define GDB_NREGS 59 /* rax..r15 (16), rip, eflags, 6 segments, 8 st, 8 fpu control, 16 xmm, mxcsr,
                        fs_base, gs_base */

/* What the packet layer needs from the thing being debugged. Memory functions see only what the
 * target allows (guest memory): they return 0 or -1, never a partial success. */
struct gdb_target_ops {
    int (*read_mem)(void *t, uint64_t addr, uint64_t len, uint8_t *dst);
    int (*write_mem)(void *t, uint64_t addr, const uint8_t *src, uint64_t len);
    int (*get_regs)(void *t, struct gdb_regs *r);
    int (*set_regs)(void *t, const struct gdb_regs *r); /* -1: refused (message not needed) */
    /* Hardware breakpoint (type 1) or watchpoint (2 write, 3 read, 4 access) in DR0-3: 0, -1 when
     * it cannot be set, or NULL when the target has no hardware debug registers. */
    int (*hw_point)(void *t, bool insert, int type, uint64_t addr, uint64_t len);
};

/* What the client asked for when the packet layer hands control back. */
enum gdb_action {
    GDB_NONE,     /* a reply is queued; keep reading */
    GDB_CONTINUE, /* resume (signal: the signal to deliver, 0 none) */
    GDB_STEP,     /* one instruction */
    GDB_KILL,     /* end the job */
    GDB_DETACH,   /* breakpoints removed; let the job run on without the debugger */
};

struct gdb_bp {
    uint64_t addr;
    uint8_t orig;
    bool used;
};

struct gdb_session {
    const struct gdb_target_ops *ops;
    void *target;
    /* input framing */
    int in_state;
    char pkt[GDB_PKT_MAX + 1];
    size_t pkt_len;
    bool pkt_over; /* the packet did not fit: answered with an error, never parsed */
    uint8_t sum;
    uint8_t ck[2];
    bool no_ack;
    bool swbreak; /* the client understands the swbreak stop reason */
    bool hwbreak;
    /* output: bytes waiting to be sent */
    char out[2 * GDB_PKT_MAX + 64];
    size_t out_len;
    /* scratch for one command (memory and hex), kept here rather than on the caller's stack */
    uint8_t tmp[GDB_PKT_MAX];
    char tmp_hex[GDB_PKT_MAX];
    struct gdb_bp bp[GDB_MAX_BP];
    int signal;        /* resume signal of the last c/C/s/S/vCont */
    char stop[96];     /* the last stop reply, for '?' */
    bool exited;       /* a W/X was sent: the job is over */
};

enum gdb_feed_ev {
    GDB_FEED_MORE,      /* nothing complete yet (all of the input was used) */
    GDB_FEED_PACKET,    /* s->pkt holds a packet with a good checksum (acknowledged) */
    GDB_FEED_INTERRUPT, /* the client sent ^C */
};

void gdb_session_init(struct gdb_session *s, const struct gdb_target_ops *ops, void *target);
/* Consume bytes from the client up to the first event; *used says how many were consumed. */
enum gdb_feed_ev gdb_feed(struct gdb_session *s, const uint8_t *buf, size_t n, size_t *used);
/* Act on the packet in s->pkt: queue its reply, or say what to do (resume replies are queued by
 * gdb_stop_reply when the guest stops again). */
enum gdb_action gdb_handle(struct gdb_session *s);
/* Queue a stop reply: signal number (gdb's numbering, which is Linux's for these) and the reason:
 * "swbreak", "hwbreak", or NULL. */
void gdb_stop_reply(struct gdb_session *s, int signal, const char *reason);
/* Queue the end of the job: W (exited with code) or X (terminated by signal). */
void gdb_exit_reply(struct gdb_session *s, bool by_signal, int value);
/* Take the queued output (after sending it). */
static inline void gdb_out_clear(struct gdb_session *s) { s->out_len = 0; }
/* Is addr one of the session's software breakpoints (an int3 the session wrote)? */
bool gdb_is_bp(const struct gdb_session *s, uint64_t addr);
/* Put back every original byte (detach, kill, end of the job). */
void gdb_remove_all(struct gdb_session *s);

/* Helpers, exported for the tests. */
int gdb_hexval(int c);
/* Parse hex digits from *p up to a byte not a hex digit; fails on none or more than 16. */
int gdb_parse_hex(const char **p, const char *end, uint64_t *out);
const char *gdb_target_xml(size_t *len);

/* x86 exception vector -> the signal gdb is told (SIGSEGV for #PF/#GP, SIGILL for #UD, ...). */
int gdb_signal_of_vector(uint32_t vector);

#endif
