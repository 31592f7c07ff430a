/* tests/vm/guests/compute — runs bench/compute_kernel.h for the number of iterations given as
 * input and outputs the result in decimal. `aspen bench vm` runs the very same kernel natively, so
 * guest time / native time is what the micro-VM costs pure computation. Built with -O2
 * (guest.flags), like the native side. */
#include <aspen.h>

#include "../../../../bench/compute_kernel.h"
#include "../test_guest.h"

static int compute(const uint8_t *in, size_t len, aspen_buf *out)
{
    uint64_t n;
    if (!input_u64(in, len, &n))
        return aspen_error("test-compute: the input must be an iteration count");
    return aspen_buf_appendf(out, "%llu", (unsigned long long)aspen_compute_kernel(n));
}

ASPEN_JOB_HANDLER(compute);
