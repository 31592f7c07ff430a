/* fuzz/guest-hostcall — the guest that fuzz_hostcall drives: it reads its job input as a program
 * of host-call operations and performs them literally, with whatever hostile values the fuzzer
 * chose, so every host-call and DONE-path decoder of the monitor sees them (fuzz/README.md).
 *
 * The input is a sequence of records; every byte string is a valid program (an op byte is taken
 * modulo the op count, a truncated record ends the program). Values ("val") are a base selector
 * plus a signed 32-bit delta, so the fuzzer reaches the edges of each guest region without having
 * to guess absolute addresses:
 *   val    := sel:u8 delta:i32 [raw:u64 if sel%16 == 15]   -> base[sel%16] + delta (or raw)
 *   CALL   0 fn:u8 nargs:u8 val*nargs [port_value:val if nargs&0x80]
 *            fills call_fn and call_args[0..nargs%7), then OUTs the number to the CALL port
 *   ARG    1 i:u8 val                         call_args[i%6] = val
 *   FIELD  2 f:u8 val                         a call-block field (or any 8-byte slot of its page)
 *   PORT   3 port:u8 mode:u8 count:(u8, or val if mode&16) val
 *            on port 0xA0+(port%8): mode bits 0-1 size 1/2/4, bit 2 IN, bit 3 string (rep
 *            ins/outs of count items at val); val is an OUT's data
 *   DONE   4 status:val optr:val olen:val mptr:val mlen:val   then OUT DONE to the EXIT port
 *   POKE   5 addr:val n:u8 bytes[n]           copy bytes into guest memory (may fault)
 *   READY  6                                  OUT READY to the EXIT port (illegal during a job)
 *   RETURN 7                                  return from the handler (the SDK's normal DONE)
 * Running out of input returns from the handler with output "end".
 *
 * An empty input is the canary: the harness runs it after every fuzz input and compares the
 * answer with the first one, so state a job left behind (memory, the call block, a half-done
 * port access) shows up as a different answer. It reports the layout and a hash of the call
 * block page, the guest's writable data, the heap below the input and the unused stack.
 */
#include <aspen.h>
#include <stdio.h>
#include <string.h>

#define SCRATCH_SIZE 256

static uint8_t scratch[SCRATCH_SIZE];   /* .bss: a writable, guest-owned target for pointers */
static uint64_t jobs_seen;              /* restored to 0 by the host before every job */
static const char fn_name[] = "fuzz_copy"; /* rodata: a read-only name the host registered */
static char canary_out[512];

struct rd {
    const uint8_t *p;
    size_t n;
    bool ok;
};

static uint8_t rd_u8(struct rd *r)
{
    if (r->n < 1) {
        r->ok = false;
        return 0;
    }
    r->n--;
    return *r->p++;
}

static uint64_t rd_bytes(struct rd *r, unsigned k)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < k; i++)
        v |= (uint64_t)rd_u8(r) << (8 * i);
    return v;
}

struct layout {
    uint64_t blk, stack_low, stack_high, heap_start, heap_end, input_ptr, input_len;
};

static uint64_t rd_val(struct rd *r, const struct layout *l)
{
    uint8_t sel = rd_u8(r);
    int64_t delta = (int32_t)(uint32_t)rd_bytes(r, 4);
    uint64_t base;
    switch (sel % 16) {
    case 0: base = 0; break;
    case 1: base = l->blk; break;
    case 2: base = l->stack_low; break;
    case 3: base = l->stack_high; break;
    case 4: base = l->heap_start; break;
    case 5: base = l->heap_end; break;
    case 6: base = l->input_ptr; break;
    case 7: base = l->input_ptr + l->input_len; break;
    case 8: base = ASPEN_IMAGE_BASE; break;
    case 9: base = (uint64_t)(uintptr_t)fn_name; break; /* "fuzz_copy", 9 bytes */
    case 10: base = ASPEN_USER_MAX; break;
    case 11: base = 1ull << 63; break;
    case 12: base = UINT64_MAX; break;
    case 13: base = (uint64_t)(uintptr_t)scratch; break;
    case 14: base = l->input_len; break;
    default: return rd_bytes(r, 8);
    }
    return base + (uint64_t)delta;
}

static void out_port(uint16_t port, unsigned size, uint32_t v)
{
    if (size == 1)
        __asm__ volatile("outb %b0, %w1" : : "a"(v), "d"(port) : "memory");
    else if (size == 2)
        __asm__ volatile("outw %w0, %w1" : : "a"(v), "d"(port) : "memory");
    else
        __asm__ volatile("outl %0, %w1" : : "a"(v), "d"(port) : "memory");
}

static uint32_t in_port(uint16_t port, unsigned size)
{
    uint32_t v = 0;
    if (size == 1)
        __asm__ volatile("inb %w1, %b0" : "+a"(v) : "d"(port) : "memory");
    else if (size == 2)
        __asm__ volatile("inw %w1, %w0" : "+a"(v) : "d"(port) : "memory");
    else
        __asm__ volatile("inl %w1, %0" : "=a"(v) : "d"(port) : "memory");
    return v;
}

static void string_port(uint16_t port, unsigned size, bool in, uint64_t ptr, uint64_t count)
{
    if (in) {
        if (size == 1)
            __asm__ volatile("rep insb" : "+D"(ptr), "+c"(count) : "d"(port) : "memory");
        else if (size == 2)
            __asm__ volatile("rep insw" : "+D"(ptr), "+c"(count) : "d"(port) : "memory");
        else
            __asm__ volatile("rep insl" : "+D"(ptr), "+c"(count) : "d"(port) : "memory");
    } else {
        if (size == 1)
            __asm__ volatile("rep outsb" : "+S"(ptr), "+c"(count) : "d"(port) : "memory");
        else if (size == 2)
            __asm__ volatile("rep outsw" : "+S"(ptr), "+c"(count) : "d"(port) : "memory");
        else
            __asm__ volatile("rep outsl" : "+S"(ptr), "+c"(count) : "d"(port) : "memory");
    }
}

/* The call block's fields, by number; larger numbers name any 8-byte slot of the block's page. */
static void write_field(volatile struct aspen_abi_block *b, uint8_t f, uint64_t v)
{
    switch (f) {
    case 0: b->status = (uint32_t)v; break;
    case 1: b->output_ptr = v; break;
    case 2: b->output_len = v; break;
    case 3: b->message_ptr = v; break;
    case 4: b->message_len = v; break;
    case 5: b->call_fn = (uint32_t)v; break;
    case 6: b->call_ret = (int64_t)v; break;
    case 7: b->input_ptr = v; break;
    case 8: b->input_len = v; break;
    case 9: b->heap_start = v; break;
    case 10: b->heap_end = v; break;
    case 11: b->stack_low = v; break;
    case 12: b->stack_high = v; break;
    case 13: b->mem_size = v; break;
    case 14: b->magic = (uint32_t)v; b->abi_version = (uint32_t)(v >> 32); break;
    case 15: b->reserved0 = (uint32_t)v; b->reserved1 = (uint32_t)(v >> 32); break;
    default: {
        volatile uint64_t *slot = (volatile uint64_t *)b + (f % (ASPEN_PAGE_SIZE / 8));
        *slot = v;
    }
    }
}

__attribute__((noreturn)) static void exit_port(uint32_t v)
{
    for (;;)
        __asm__ volatile("outl %0, %w1" : : "a"(v), "Nd"((uint16_t)ASPEN_PORT_EXIT) : "memory");
}

static uint64_t fnv(uint64_t h, const volatile uint8_t *p, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

/* Everything a previous job could have changed and the host must have put back. */
__attribute__((noinline)) static uint64_t state_hash(const struct layout *l)
{
    uint64_t sp;
    __asm__ volatile("movq %%rsp, %0" : "=r"(sp));
    uint64_t h = 0xcbf29ce484222325ull;
    h = fnv(h, (const volatile uint8_t *)(uintptr_t)l->blk, ASPEN_PAGE_SIZE);
    h = fnv(h, scratch, sizeof scratch);
    h = fnv(h, (const volatile uint8_t *)&jobs_seen, sizeof jobs_seen);
    h = fnv(h, (const volatile uint8_t *)(uintptr_t)l->heap_start, l->input_ptr - l->heap_start);
    uint64_t deep = sp - 512; /* below this function's frame and red zone */
    if (deep > l->stack_low)
        h = fnv(h, (const volatile uint8_t *)(uintptr_t)l->stack_low, deep - l->stack_low);
    return h;
}

static int run(const uint8_t *in, size_t len, aspen_buf *out)
{
    volatile struct aspen_abi_block *b = aspen_call_block();
    struct layout l = {(uint64_t)(uintptr_t)b, b->stack_low, b->stack_high, b->heap_start,
                       b->heap_end, b->input_ptr, b->input_len};
    if (len == 0) {
        uint64_t h = state_hash(&l);
        int n = snprintf(canary_out, sizeof canary_out,
                         "canary jobs=%llu blk=%llx stack=%llx-%llx heap=%llx-%llx scratch=%llx "
                         "name=%llx hash=%016llx",
                         (unsigned long long)jobs_seen, (unsigned long long)l.blk,
                         (unsigned long long)l.stack_low, (unsigned long long)l.stack_high,
                         (unsigned long long)l.heap_start, (unsigned long long)l.heap_end,
                         (unsigned long long)(uintptr_t)scratch,
                         (unsigned long long)(uintptr_t)fn_name, (unsigned long long)h);
        jobs_seen++;
        aspen_buf_view(out, canary_out, (size_t)n);
        return 0;
    }
    jobs_seen++;
    struct rd r = {in, len, true};
    while (r.ok && r.n > 0) {
        uint8_t op = rd_u8(&r) % 8;
        switch (op) {
        case 0: { /* CALL */
            uint8_t fsel = rd_u8(&r);
            uint8_t na = rd_u8(&r);
            uint32_t fn;
            switch (fsel % 8) {
            case 0: fn = ASPEN_FN_LOOKUP; break;
            case 1: fn = ASPEN_FN_PRINTLN; break;
            case 2: fn = ASPEN_FN_GET_TIME; break;
            case 3: fn = ASPEN_FN_GET_TIME_NS; break;
            case 4: fn = ASPEN_FN_FIRST_EXTRA + fsel / 8 % 4; break;
            case 5: fn = 4 + fsel / 8 % 12; break;
            case 6: fn = UINT32_MAX - fsel / 8; break;
            default: fn = (uint32_t)rd_bytes(&r, 4); break;
            }
            unsigned nargs = (na & 0x7f) % 7;
            uint64_t args[ASPEN_CALL_MAX_ARGS];
            for (unsigned i = 0; i < nargs; i++)
                args[i] = rd_val(&r, &l);
            uint32_t port_value = (na & 0x80) ? (uint32_t)rd_val(&r, &l) : fn;
            if (!r.ok)
                break;
            b->call_fn = fn;
            for (unsigned i = 0; i < nargs; i++)
                b->call_args[i] = args[i];
            out_port(ASPEN_PORT_CALL, 4, port_value);
            break;
        }
        case 1: { /* ARG */
            uint8_t i = rd_u8(&r);
            uint64_t v = rd_val(&r, &l);
            if (r.ok)
                b->call_args[i % ASPEN_CALL_MAX_ARGS] = v;
            break;
        }
        case 2: { /* FIELD */
            uint8_t f = rd_u8(&r);
            uint64_t v = rd_val(&r, &l);
            if (r.ok)
                write_field(b, f, v);
            break;
        }
        case 3: { /* PORT */
            uint8_t p = rd_u8(&r), mode = rd_u8(&r);
            uint64_t count = (mode & 16) ? rd_val(&r, &l) : rd_u8(&r);
            uint64_t v = rd_val(&r, &l);
            if (!r.ok)
                break;
            uint16_t port = (uint16_t)(ASPEN_PORT_CALL + p % 8);
            unsigned size = 1u << ((mode & 3) % 3);
            bool in_dir = mode & 4, string = mode & 8;
            if (string)
                string_port(port, size, in_dir, v, count);
            else if (in_dir)
                scratch[0] = (uint8_t)in_port(port, size);
            else
                out_port(port, size, (uint32_t)v);
            break;
        }
        case 4: { /* DONE */
            uint64_t st = rd_val(&r, &l), optr = rd_val(&r, &l), olen = rd_val(&r, &l);
            uint64_t mptr = rd_val(&r, &l), mlen = rd_val(&r, &l);
            if (!r.ok)
                break;
            b->status = (uint32_t)st;
            b->output_ptr = optr;
            b->output_len = olen;
            b->message_ptr = mptr;
            b->message_len = mlen;
            exit_port(ASPEN_EXIT_DONE);
        }
        case 5: { /* POKE */
            uint64_t addr = rd_val(&r, &l);
            uint8_t n = rd_u8(&r);
            if (!r.ok || n > r.n)
                return aspen_buf_puts(out, "short poke");
            volatile uint8_t *dst = (volatile uint8_t *)(uintptr_t)addr;
            for (unsigned i = 0; i < n; i++)
                dst[i] = r.p[i];
            r.p += n;
            r.n -= n;
            break;
        }
        case 6: /* READY */
            exit_port(ASPEN_EXIT_READY);
        default: /* RETURN */
            return aspen_buf_puts(out, "return");
        }
    }
    return aspen_buf_puts(out, "end");
}

ASPEN_JOB_HANDLER(run);
