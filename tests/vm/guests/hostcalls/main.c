/* tests/vm/guests/hostcalls — makes N hl_get_time calls (N is the input) and outputs their sum in
 * decimal: exactly N host calls and nothing else, for host-call tests and the per-call cost
 * benchmark. */
#include <aspen.h>

#include "../test_guest.h"

static int hostcalls(const uint8_t *in, size_t len, aspen_buf *out)
{
    uint64_t n, sum = 0;
    if (!input_u64(in, len, &n))
        return aspen_error("test-hostcalls: the input must be a call count");
    for (uint64_t i = 0; i < n; i++)
        sum += hl_get_time();
    return aspen_buf_appendf(out, "%llu", (unsigned long long)sum);
}

ASPEN_JOB_HANDLER(hostcalls);
