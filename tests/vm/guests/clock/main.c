/* tests/vm/guests/clock — a guest whose run depends on the host's clock, for replay's tests: it
 * reads hl_get_time_ns, logs the reading and the input's size in one line, and outputs the reading.
 * Replayed with the recorded time it is identical; with another time its log line (host call 2)
 * differs. */
#include <aspen.h>

static int clock_job(const uint8_t *in, size_t len, aspen_buf *out)
{
    (void)in;
    uint64_t now = hl_get_time_ns();
    hl_println("clock: %llu ns, %zu input bytes", (unsigned long long)now, len);
    return aspen_buf_appendf(out, "%llu", (unsigned long long)now);
}

ASPEN_JOB_HANDLER(clock_job);
