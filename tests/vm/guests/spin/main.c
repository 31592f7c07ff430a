/* tests/vm/guests/spin — loops forever without a host call, so only the host's deadline or an
 * interrupt can stop it (timeout and cancel tests). */
#include <aspen.h>

static int spin(const uint8_t *in, size_t len, aspen_buf *out)
{
    (void)out;
    /* an input mentioning "log" prints one line first (live-log tests) */
    for (size_t i = 0; i + 3 <= len; i++)
        if (in[i] == 'l' && in[i + 1] == 'o' && in[i + 2] == 'g') {
            hl_println("spinning now");
            break;
        }
    for (;;)
        __asm__ volatile(""); /* a loop gcc may not remove */
    __builtin_unreachable();
}

ASPEN_JOB_HANDLER(spin);
