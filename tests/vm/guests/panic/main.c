/* tests/vm/guests/panic — always panics (status PANIC with a message), for the panic path. */
#include <aspen.h>

static int panic_handler(const uint8_t *in, size_t len, aspen_buf *out)
{
    (void)in, (void)out;
    aspen_panic("test-panic: deliberate panic after reading %zu input bytes", len);
}

ASPEN_JOB_HANDLER(panic_handler);
