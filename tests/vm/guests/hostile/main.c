/* tests/vm/guests/hostile — host calls and results that break the rules, one per input, so the VM
 * tests can check the host refuses each with a message (an illegal host call) and stays usable:
 *   bad-ptr      hl_println with a pointer outside guest memory
 *   huge-len     hl_println with a valid pointer and a 1 TiB length
 *   wrap         hl_println whose ptr + len overflows 2^64
 *   unknown-fn   a call to function number 999
 *   bad-lookup   a lookup whose name pointer is in unmapped page 0
 *   bad-output   DONE with status OK and an output pointer outside guest memory
 *   bad-message  DONE with status ERROR and a message pointer outside guest memory
 *   valid        a normal hl_println, output "ok" (for contrast)
 * and edges of the rules that are not errors (docs/ABI.md sections 5-7):
 *   huge-message DONE with status ERROR, a 5000-byte message and message_len 1 TiB: the host
 *                reads only the first ASPEN_MAX_MESSAGE bytes (the rest need not exist)
 *   lookup-nul   a lookup of "hl_println\0junk" with name_len 15: the name ends at the NUL,
 *                so it finds hl_println; output the number
 * Raw calls go through aspen_hostcall, which passes the arguments unchecked, as any guest could. */
#include <aspen.h>

#include "../test_guest.h"

#define OUTSIDE ((uint64_t)ASPEN_USER_MAX + 0x1000) /* beyond every guest address */

static int hostile(const uint8_t *in, size_t len, aspen_buf *out)
{
    static const char text[] = "hostile";
    struct aspen_abi_block *b = aspen_call_block();
    if (input_is(in, len, "bad-ptr")) {
        aspen_hostcall(ASPEN_FN_PRINTLN, 2, OUTSIDE, (uint64_t)16);
    } else if (input_is(in, len, "huge-len")) {
        aspen_hostcall(ASPEN_FN_PRINTLN, 2, (uint64_t)(uintptr_t)text, (uint64_t)1 << 40);
    } else if (input_is(in, len, "wrap")) {
        aspen_hostcall(ASPEN_FN_PRINTLN, 2, (uint64_t)0xfffffffffffff000ull, (uint64_t)0x2000);
    } else if (input_is(in, len, "unknown-fn")) {
        aspen_hostcall(999, 0);
    } else if (input_is(in, len, "bad-lookup")) {
        aspen_hostcall(ASPEN_FN_LOOKUP, 2, (uint64_t)8, (uint64_t)5);
    } else if (input_is(in, len, "bad-output")) {
        b->status = ASPEN_STATUS_OK;
        b->output_ptr = OUTSIDE;
        b->output_len = 16;
        b->message_len = 0;
        raw_exit_done();
    } else if (input_is(in, len, "bad-message")) {
        b->status = ASPEN_STATUS_ERROR;
        b->output_len = 0;
        b->message_ptr = OUTSIDE;
        b->message_len = 16;
        raw_exit_done();
    } else if (input_is(in, len, "huge-message")) {
        static char msg[5000];
        for (size_t i = 0; i < sizeof msg; i++)
            msg[i] = (char)('a' + i % 26);
        b->status = ASPEN_STATUS_ERROR;
        b->output_len = 0;
        b->message_ptr = (uint64_t)(uintptr_t)msg;
        b->message_len = (uint64_t)1 << 40;
        raw_exit_done();
    } else if (input_is(in, len, "lookup-nul")) {
        static const char name[] = "hl_println\0junk";
        int64_t r = aspen_hostcall(ASPEN_FN_LOOKUP, 2, (uint64_t)(uintptr_t)name,
                                   (uint64_t)(sizeof name - 1));
        return aspen_buf_appendf(out, "%lld", (long long)r);
    } else if (input_is(in, len, "valid")) {
        hl_println("test-hostile: a valid call");
        return aspen_buf_puts(out, "ok");
    } else {
        return aspen_error("test-hostile: unknown mode '%.*s'", (int)(len > 64 ? 64 : len), in);
    }
    /* Only reached if the host let an illegal call through. */
    return aspen_error("test-hostile: the host accepted an illegal call");
}

ASPEN_JOB_HANDLER(hostile);
