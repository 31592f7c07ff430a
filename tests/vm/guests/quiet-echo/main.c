/* tests/vm/guests/quiet-echo — outputs its input unchanged with no host call at all, so a job
 * costs exactly one VM exit (the warm-run benchmark and the 10,000-run test). The output is a
 * zero-copy view of the input, so even an input larger than the free heap is echoed. */
#include <aspen.h>

static int quiet_echo(const uint8_t *in, size_t len, aspen_buf *out)
{
    aspen_buf_view(out, in, len);
    return 0;
}

ASPEN_JOB_HANDLER(quiet_echo);
