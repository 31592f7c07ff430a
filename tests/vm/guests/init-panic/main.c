/* tests/vm/guests/init-panic — logs a line, then panics, in its ASPEN_INIT function, before the ready
 * point: the host's start-up error must carry the guest's own message, and the line must reach the
 * start-up log callback. */
#include <aspen.h>

static void init(void)
{
    hl_println("init: reading config");
    aspen_panic("config missing: %s", "API_KEY");
}
ASPEN_INIT(init);

static int echo(const uint8_t *in, size_t len, aspen_buf *out) { return aspen_buf_append(out, in, len); }
ASPEN_JOB_HANDLER(echo);
