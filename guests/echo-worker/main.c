/* guests/echo-worker — the seed's minimal guest, in C: the output is "Echo: " followed by the input
 * bytes unchanged, and one log line goes to the host through hl_println.
 *
 * It shows the whole shape of a bytes guest: a handler that appends to the output buffer, and
 * ASPEN_JOB_HANDLER to register it. Built by scripts/build-guest.sh echo-worker into
 * target/guest-binaries/echo-worker.
 */
#include <aspen.h>

static int echo(const uint8_t *in, size_t len, aspen_buf *out)
{
    hl_println("echo-worker: received %zu bytes", len);
    static const char prefix[] = "Echo: ";
    /* One allocation of the exact size, then two copies. */
    if (aspen_buf_reserve(out, sizeof prefix - 1 + len) != 0)
        return aspen_error("echo-worker: out of memory for a %zu-byte reply", len);
    aspen_buf_append(out, prefix, sizeof prefix - 1);
    aspen_buf_append(out, in, len);
    return 0;
}

ASPEN_JOB_HANDLER(echo);
