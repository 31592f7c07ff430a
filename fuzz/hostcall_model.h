/* fuzz/hostcall_model.h — what docs/ABI.md says a fuzz/guest-hostcall program must end with.
 *
 * fuzz_hostcall decodes each input exactly as the guest does and walks it against the documented
 * memory map (the image's PT_LOAD pages, the stack, the call block page, the heap; nothing else
 * mapped) and the documented rules for host calls, ports and DONE, predicting the outcome: success
 * (with the guest's literal output where it is fixed), job error, panic, fault or illegal host
 * call. Where a program does something the model does not follow — reads an argument slot it
 * never wrote, changes memory outside its scratch buffer, a string port access with a count of 0 — the
 * prediction is "unknown" and only the generic checks apply. The guest's scratch buffer is followed
 * byte by byte (it is .bss, zero at the start of every job), so 4-byte string OUTs of known
 * elements are predicted too. A known prediction that the VM does
 * not meet is a finding: the monitor and its contract disagree.
 */
#ifndef ASPEN_FUZZ_HOSTCALL_MODEL_H
#define ASPEN_FUZZ_HOSTCALL_MODEL_H

#include <elf.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "abi.h"
#include "aspen_vm.h"

enum { M_UNKNOWN = -1, MODEL_SCRATCH = 256 /* guest-hostcall's scratch[] */ };

struct model_region {
    uint64_t lo, hi;
    bool writable;
};

struct model {
    struct model_region reg[16];
    int nreg;
    uint64_t blk, stack_low, stack_high, heap_start, heap_end, scratch, name;
    uint64_t max_output;
};

struct model_pred {
    int outcome;            /* aspen_vm_outcome, or M_UNKNOWN */
    const char *output;     /* the exact output for SDK returns ("end", "return", ...), or NULL */
    uint32_t host_calls;    /* host calls the program makes before it ends */
    char why[160];          /* the op that decides the outcome, for the finding message */
};

static void model_add(struct model *m, uint64_t lo, uint64_t hi, bool w)
{
    if (m->nreg < (int)(sizeof m->reg / sizeof m->reg[0]))
        m->reg[m->nreg++] = (struct model_region){lo, hi, w};
}

/* The image's loadable pages, from the guest file itself (docs/ABI.md section 2). */
static int model_load_image(struct model *m, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    Elf64_Ehdr eh;
    int rc = -1;
    if (fread(&eh, sizeof eh, 1, f) == 1 && eh.e_phentsize == sizeof(Elf64_Phdr)) {
        rc = 0;
        for (unsigned i = 0; i < eh.e_phnum && rc == 0; i++) {
            Elf64_Phdr ph;
            if (fseek(f, (long)(eh.e_phoff + i * sizeof ph), SEEK_SET) != 0 ||
                fread(&ph, sizeof ph, 1, f) != 1)
                rc = -1;
            else if (ph.p_type == PT_LOAD && ph.p_memsz)
                model_add(m, ph.p_vaddr & ~4095ull, (ph.p_vaddr + ph.p_memsz + 4095) & ~4095ull,
                          ph.p_flags & PF_W);
        }
    }
    fclose(f);
    return rc;
}

/* The layout the guest reported in its canary answer. */
static int model_set_layout(struct model *m, const char *canary, uint64_t max_output)
{
    unsigned long long blk, sl, sh, hs, he, scr, name;
    if (sscanf(canary, "canary jobs=%*u blk=%llx stack=%llx-%llx heap=%llx-%llx scratch=%llx "
                       "name=%llx",
               &blk, &sl, &sh, &hs, &he, &scr, &name) != 7)
        return -1;
    m->blk = blk, m->stack_low = sl, m->stack_high = sh, m->heap_start = hs, m->heap_end = he;
    m->scratch = scr, m->name = name, m->max_output = max_output;
    model_add(m, sl, sh, true);
    model_add(m, blk, blk + ASPEN_PAGE_SIZE, true);
    model_add(m, hs, he, true);
    return 0;
}

/* Is every byte of [p, p+n) mapped (and writable, if asked)? n == 0 is always fine. */
static bool model_mapped(const struct model *m, uint64_t p, uint64_t n, bool write)
{
    uint64_t end;
    if (__builtin_add_overflow(p, n, &end))
        return false;
    while (p < end) {
        int i;
        for (i = 0; i < m->nreg; i++)
            if (p >= m->reg[i].lo && p < m->reg[i].hi && (!write || m->reg[i].writable))
                break;
        if (i == m->nreg)
            return false;
        p = m->reg[i].hi;
    }
    return true;
}

/* ---- The guest's decoder, mirrored (fuzz/guest-hostcall/main.c). ---------------------------- */
struct mrd {
    const uint8_t *p;
    size_t n;
    bool ok;
};

static uint8_t mrd_u8(struct mrd *r)
{
    if (r->n < 1) {
        r->ok = false;
        return 0;
    }
    r->n--;
    return *r->p++;
}

static uint64_t mrd_bytes(struct mrd *r, unsigned k)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < k; i++)
        v |= (uint64_t)mrd_u8(r) << (8 * i);
    return v;
}

static uint64_t mrd_val(struct mrd *r, const struct model *m, uint64_t in_ptr, uint64_t in_len)
{
    uint8_t sel = mrd_u8(r);
    int64_t delta = (int32_t)(uint32_t)mrd_bytes(r, 4);
    uint64_t base;
    switch (sel % 16) {
    case 0: base = 0; break;
    case 1: base = m->blk; break;
    case 2: base = m->stack_low; break;
    case 3: base = m->stack_high; break;
    case 4: base = m->heap_start; break;
    case 5: base = m->heap_end; break;
    case 6: base = in_ptr; break;
    case 7: base = in_ptr + in_len; break;
    case 8: base = ASPEN_IMAGE_BASE; break;
    case 9: base = m->name; break;
    case 10: base = ASPEN_USER_MAX; break;
    case 11: base = 1ull << 63; break;
    case 12: base = UINT64_MAX; break;
    case 13: base = m->scratch; break;
    case 14: base = in_len; break;
    default: return mrd_bytes(r, 8);
    }
    return base + (uint64_t)delta;
}

/* What the guest's call block holds, as far as the program has set it. */
struct mblock {
    bool args_known[ASPEN_CALL_MAX_ARGS];
    uint64_t args[ASPEN_CALL_MAX_ARGS];
    bool st_known, olen_known, optr_known, mptr_known, mlen_known;
    uint64_t st, olen, optr, mptr, mlen;
    /* The guest's scratch buffer (.bss: zero at every job's start), byte by byte. */
    uint8_t sc[MODEL_SCRATCH];
    bool sc_known[MODEL_SCRATCH];
};

static bool in_scratch(const struct model *m, uint64_t p, uint64_t n)
{
    return p >= m->scratch && n <= MODEL_SCRATCH && p - m->scratch <= MODEL_SCRATCH - n;
}

/* A little-endian u32 the guest holds in scratch at p, if the model knows it. */
static bool scratch_u32(const struct model *m, const struct mblock *b, uint64_t p, uint32_t *v)
{
    if (!in_scratch(m, p, 4))
        return false;
    uint64_t o = p - m->scratch;
    *v = 0;
    for (unsigned i = 0; i < 4; i++) {
        if (!b->sc_known[o + i])
            return false;
        *v |= (uint32_t)b->sc[o + i] << (8 * i);
    }
    return true;
}

#define PRED(o, ...)                                                                              \
    do {                                                                                          \
        p->outcome = (o);                                                                         \
        snprintf(p->why, sizeof p->why, __VA_ARGS__);                                             \
        return;                                                                                   \
    } while (0)

enum { FN_COPY = ASPEN_FN_FIRST_EXTRA, FN_FAIL = ASPEN_FN_FIRST_EXTRA + 1 };

/* One host call: 0 it returns, 1 the run ended (p filled), -1 unknown from here on. */
static int model_call(const struct model *m, struct mblock *b, uint32_t fn,
                      struct model_pred *p, unsigned op)
{
    p->host_calls++;
    unsigned need = fn == ASPEN_FN_LOOKUP || fn == ASPEN_FN_PRINTLN ? 2 : fn == FN_COPY ? 3 : 0;
    for (unsigned i = 0; i < need; i++)
        if (!b->args_known[i])
            return -1;
    const uint64_t *a = b->args;
    switch (fn) {
    case ASPEN_FN_LOOKUP:
        if (a[1] == 0 || a[1] >= ASPEN_MAX_NAME) {
            p->outcome = ASPEN_VM_ILLEGAL_CALL;
            snprintf(p->why, sizeof p->why, "op %u: lookup with name length %llu", op,
                     (unsigned long long)a[1]);
            return 1;
        }
        if (!model_mapped(m, a[0], a[1], false)) {
            p->outcome = ASPEN_VM_ILLEGAL_CALL;
            snprintf(p->why, sizeof p->why, "op %u: lookup of a name at 0x%llx+%llu outside memory",
                     op, (unsigned long long)a[0], (unsigned long long)a[1]);
            return 1;
        }
        return 0;
    case ASPEN_FN_PRINTLN:
        if (!model_mapped(m, a[0], a[1], false) || a[1] > (1ull << 31)) {
            p->outcome = ASPEN_VM_ILLEGAL_CALL;
            snprintf(p->why, sizeof p->why, "op %u: hl_println of 0x%llx+%llu", op,
                     (unsigned long long)a[0], (unsigned long long)a[1]);
            return 1;
        }
        return 0;
    case ASPEN_FN_GET_TIME:
    case ASPEN_FN_GET_TIME_NS:
    case FN_FAIL:
        return 0;
    case FN_COPY:
        if (a[1] > (64u << 10))
            return 0; /* refused with EINVAL, nothing touched */
        if (!model_mapped(m, a[0], a[1], false) || !model_mapped(m, a[2], a[1], true)) {
            p->outcome = ASPEN_VM_ILLEGAL_CALL;
            snprintf(p->why, sizeof p->why, "op %u: fuzz_copy 0x%llx+%llu -> 0x%llx", op,
                     (unsigned long long)a[0], (unsigned long long)a[1],
                     (unsigned long long)a[2]);
            return 1;
        }
        /* It changed guest memory: followed only inside the scratch buffer. */
        if (a[1] == 0)
            return 0;
        if (!in_scratch(m, a[2], a[1]))
            return -1;
        {
            uint8_t tmp[MODEL_SCRATCH];
            bool known[MODEL_SCRATCH];
            for (uint64_t i = 0; i < a[1]; i++) {
                known[i] = in_scratch(m, a[0] + i, 1) && b->sc_known[a[0] + i - m->scratch];
                tmp[i] = known[i] ? b->sc[a[0] + i - m->scratch] : 0;
            }
            for (uint64_t i = 0; i < a[1]; i++) {
                b->sc[a[2] - m->scratch + i] = tmp[i];
                b->sc_known[a[2] - m->scratch + i] = known[i];
            }
        }
        return 0;
    default:
        p->outcome = ASPEN_VM_ILLEGAL_CALL;
        snprintf(p->why, sizeof p->why, "op %u: unknown host function %u", op, fn);
        return 1;
    }
}

/* DONE with the block's status, output and message. */
static void model_done(const struct model *m, const struct mblock *b, struct model_pred *p,
                       unsigned op)
{
    if (!b->st_known) {
        p->outcome = M_UNKNOWN;
        return;
    }
    uint32_t st = (uint32_t)b->st;
    if (st == ASPEN_STATUS_OK) {
        if (!b->olen_known || (b->olen && !b->optr_known)) {
            p->outcome = M_UNKNOWN;
            return;
        }
        if (b->olen > m->max_output)
            PRED(ASPEN_VM_OUTPUT_TOO_LARGE, "op %u: DONE with %llu bytes of output", op,
                 (unsigned long long)b->olen);
        if (!model_mapped(m, b->optr, b->olen, false))
            PRED(ASPEN_VM_ILLEGAL_CALL, "op %u: DONE with output 0x%llx+%llu", op,
                 (unsigned long long)b->optr, (unsigned long long)b->olen);
        PRED(ASPEN_VM_SUCCESS, "op %u: DONE with output 0x%llx+%llu", op,
             (unsigned long long)b->optr, (unsigned long long)b->olen);
    }
    if (st == ASPEN_STATUS_ERROR || st == ASPEN_STATUS_PANIC) {
        if (!b->mlen_known || (b->mlen && !b->mptr_known)) {
            p->outcome = M_UNKNOWN;
            return;
        }
        /* The host reads at most ASPEN_MAX_MESSAGE bytes of it (docs/ABI.md section 7). */
        uint64_t take = b->mlen < ASPEN_MAX_MESSAGE ? b->mlen : ASPEN_MAX_MESSAGE;
        if (!model_mapped(m, b->mptr, take, false))
            PRED(ASPEN_VM_ILLEGAL_CALL, "op %u: DONE with message 0x%llx+%llu", op,
                 (unsigned long long)b->mptr, (unsigned long long)b->mlen);
        PRED(st == ASPEN_STATUS_ERROR ? ASPEN_VM_JOB_ERROR : ASPEN_VM_PANIC,
             "op %u: DONE status %u, message 0x%llx+%llu", op, st, (unsigned long long)b->mptr,
             (unsigned long long)b->mlen);
    }
    PRED(ASPEN_VM_ILLEGAL_CALL, "op %u: DONE with status %u", op, st);
}

static void model_field(struct mblock *b, uint8_t f, uint64_t v)
{
    switch (f) {
    case 0: b->st = (uint32_t)v, b->st_known = true; break;
    case 1: b->optr = v, b->optr_known = true; break;
    case 2: b->olen = v, b->olen_known = true; break;
    case 3: b->mptr = v, b->mptr_known = true; break;
    case 4: b->mlen = v, b->mlen_known = true; break;
    default:
        if (f >= 16) { /* the 8-byte slot f of the block page */
            unsigned slot = f % (ASPEN_PAGE_SIZE / 8);
            if (slot >= 14 && slot < 14 + ASPEN_CALL_MAX_ARGS) {
                b->args[slot - 14] = v;
                b->args_known[slot - 14] = true;
            }
        }
        break; /* other fields are the host's, never read back by it */
    }
}

static void model_predict(const struct model *m, const uint8_t *in, size_t len,
                          struct model_pred *p)
{
    memset(p, 0, sizeof *p);
    p->outcome = M_UNKNOWN;
    uint64_t in_ptr = (m->heap_end - len) & ~15ull;
    /* The host clears status and the lengths before each job (aspen_vm_run). */
    struct mblock b = {.st_known = true, .olen_known = true, .mlen_known = true};
    memset(b.sc_known, 1, sizeof b.sc_known);
    struct mrd r = {in, len, true};
    for (unsigned op = 0; r.ok && r.n > 0; op++) {
        uint8_t code = mrd_u8(&r) % 8;
        switch (code) {
        case 0: { /* CALL */
            uint8_t fsel = mrd_u8(&r), na = mrd_u8(&r);
            uint32_t fn;
            switch (fsel % 8) {
            case 0: fn = ASPEN_FN_LOOKUP; break;
            case 1: fn = ASPEN_FN_PRINTLN; break;
            case 2: fn = ASPEN_FN_GET_TIME; break;
            case 3: fn = ASPEN_FN_GET_TIME_NS; break;
            case 4: fn = ASPEN_FN_FIRST_EXTRA + fsel / 8 % 4; break;
            case 5: fn = 4 + fsel / 8 % 12; break;
            case 6: fn = UINT32_MAX - fsel / 8; break;
            default: fn = (uint32_t)mrd_bytes(&r, 4); break;
            }
            unsigned nargs = (na & 0x7f) % 7;
            uint64_t args[ASPEN_CALL_MAX_ARGS];
            for (unsigned i = 0; i < nargs; i++)
                args[i] = mrd_val(&r, m, in_ptr, len);
            uint32_t port_value = (na & 0x80) ? (uint32_t)mrd_val(&r, m, in_ptr, len) : fn;
            if (!r.ok)
                break;
            for (unsigned i = 0; i < nargs; i++)
                b.args[i] = args[i], b.args_known[i] = true;
            /* The number that counts is the one written to the port. */
            int rc = model_call(m, &b, port_value, p, op);
            if (rc)
                return; /* ended (p set), or unknown */
            break;
        }
        case 1: { /* ARG */
            uint8_t i = mrd_u8(&r);
            uint64_t v = mrd_val(&r, m, in_ptr, len);
            if (r.ok)
                b.args[i % ASPEN_CALL_MAX_ARGS] = v, b.args_known[i % ASPEN_CALL_MAX_ARGS] = true;
            break;
        }
        case 2: { /* FIELD */
            uint8_t f = mrd_u8(&r);
            uint64_t v = mrd_val(&r, m, in_ptr, len);
            if (r.ok)
                model_field(&b, f, v);
            break;
        }
        case 3: { /* PORT */
            uint8_t pp = mrd_u8(&r), mode = mrd_u8(&r);
            uint64_t count = (mode & 16) ? mrd_val(&r, m, in_ptr, len) : mrd_u8(&r);
            (void)count; /* decoded to stay in step with the guest; string accesses are not followed */
            uint64_t v = mrd_val(&r, m, in_ptr, len);
            if (!r.ok)
                break;
            unsigned port = ASPEN_PORT_CALL + pp % 8, size = 1u << ((mode & 3) % 3);
            bool in_dir = mode & 4, string = mode & 8;
            /* The TSS bitmap opens 0xA0-0xA7: an access reaching 0xA8 is #GP, checked before
             * anything else (also for a rep ins/outs with a count of 0). */
            if (port + size > ASPEN_PORT_FAULT)
                PRED(ASPEN_VM_FAULT, "op %u: %u-byte %s%s on port 0x%x reaches 0xa8", op, size,
                     string ? "string " : "", in_dir ? "IN" : "OUT", port);
            if (string) {
                /* docs/ABI.md section 4. Not followed: a count of 0, an element the model does
                 * not know, or a first element the CPU may fault on before it exits. */
                if (count == 0 || !model_mapped(m, v, size, in_dir)) {
                    p->outcome = M_UNKNOWN;
                    return;
                }
                if (in_dir || size != 4 || (port != ASPEN_PORT_CALL && port != ASPEN_PORT_EXIT))
                    PRED(ASPEN_VM_ILLEGAL_CALL, "op %u: %u-byte string %s on port 0x%x", op, size,
                         in_dir ? "IN" : "OUT", port);
                /* A 4-byte outs reaches the host as one OUT per element, the element its value. */
                for (uint64_t i = 0; i < count; i++) {
                    uint32_t e;
                    if (!scratch_u32(m, &b, v + 4 * i, &e)) {
                        p->outcome = M_UNKNOWN;
                        return;
                    }
                    if (port == ASPEN_PORT_EXIT) {
                        if (e == ASPEN_EXIT_DONE) {
                            model_done(m, &b, p, op);
                            return;
                        }
                        PRED(ASPEN_VM_ILLEGAL_CALL, "op %u: outs element %llu (0x%x) to EXIT", op,
                             (unsigned long long)i, e);
                    }
                    if (model_call(m, &b, e, p, op))
                        return;
                }
                break;
            }
            if (in_dir || size != 4 || (port != ASPEN_PORT_CALL && port != ASPEN_PORT_EXIT))
                PRED(ASPEN_VM_ILLEGAL_CALL, "op %u: %u-byte %s on port 0x%x", op, size,
                     in_dir ? "IN" : "OUT", port);
            if (port == ASPEN_PORT_CALL) {
                if (model_call(m, &b, (uint32_t)v, p, op))
                    return;
                break;
            }
            if ((uint32_t)v == ASPEN_EXIT_DONE) {
                model_done(m, &b, p, op);
                return;
            }
            PRED(ASPEN_VM_ILLEGAL_CALL, "op %u: OUT 0x%x to the EXIT port", op, (uint32_t)v);
        }
        case 4: { /* DONE */
            uint64_t st = mrd_val(&r, m, in_ptr, len), optr = mrd_val(&r, m, in_ptr, len);
            uint64_t olen = mrd_val(&r, m, in_ptr, len), mptr = mrd_val(&r, m, in_ptr, len);
            uint64_t mlen = mrd_val(&r, m, in_ptr, len);
            if (!r.ok)
                break;
            b.st = (uint32_t)st, b.optr = optr, b.olen = olen, b.mptr = mptr, b.mlen = mlen;
            b.st_known = b.optr_known = b.olen_known = b.mptr_known = b.mlen_known = true;
            model_done(m, &b, p, op);
            return;
        }
        case 5: { /* POKE */
            uint64_t addr = mrd_val(&r, m, in_ptr, len);
            uint8_t n = mrd_u8(&r);
            if (!r.ok || n > r.n) {
                p->output = "short poke";
                PRED(ASPEN_VM_SUCCESS, "op %u: a short POKE returns", op);
            }
            if (n && !model_mapped(m, addr, n, true))
                PRED(ASPEN_VM_FAULT, "op %u: POKE of %u bytes at 0x%llx", op, n,
                     (unsigned long long)addr);
            if (n && !in_scratch(m, addr, n)) {
                p->outcome = M_UNKNOWN; /* it changed memory the model does not follow */
                return;
            }
            for (unsigned i = 0; i < n; i++) {
                b.sc[addr - m->scratch + i] = r.p[i];
                b.sc_known[addr - m->scratch + i] = true;
            }
            r.p += n;
            r.n -= n;
            break;
        }
        case 6:
            PRED(ASPEN_VM_ILLEGAL_CALL, "op %u: READY during a job", op);
        default:
            p->output = "return";
            PRED(ASPEN_VM_SUCCESS, "op %u: RETURN", op);
        }
    }
    p->output = "end";
    PRED(ASPEN_VM_SUCCESS, "the program ran to its end");
}

#undef PRED
#endif
