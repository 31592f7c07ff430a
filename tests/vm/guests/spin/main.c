/* tests/vm/guests/spin — loops forever without a host call, so only the host's deadline or an
 * interrupt can stop it (timeout and cancel tests). */
#include <aspen.h>

static int spin(const uint8_t *in, size_t len, aspen_buf *out)
{
    (void)in, (void)len, (void)out;
    for (;;)
        __asm__ volatile(""); /* a loop gcc may not remove */
    __builtin_unreachable();
}

ASPEN_JOB_HANDLER(spin);
