/* tests/vm/guests/init-panic — panics in its ASPEN_INIT function, before the ready point, so the
 * host's start-up error must carry the guest's own message. */
#include <aspen.h>

static void init(void) { aspen_panic("config missing: %s", "API_KEY"); }
ASPEN_INIT(init);

static int echo(const uint8_t *in, size_t len, aspen_buf *out) { return aspen_buf_append(out, in, len); }
ASPEN_JOB_HANDLER(echo);
