/* tests/vm/guests/test_guest.h — helpers shared by the VM test guests (each guest directory is
 * built on its own by scripts/build-guest.sh and includes this by relative path).
 *
 * The test guests take short text inputs ("256", "div0"); these helpers compare and parse them
 * without assuming the input is NUL-terminated (it is not: it is raw bytes in guest memory). */
#ifndef ASPEN_TEST_GUEST_H
#define ASPEN_TEST_GUEST_H

#include <aspen.h>
#include <string.h>

/* Is the input exactly the word w? */
static inline bool input_is(const uint8_t *in, size_t len, const char *w)
{
    return len == strlen(w) && memcmp(in, w, len) == 0;
}

/* Parse the whole input as a decimal number (surrounding whitespace allowed). */
static inline bool input_u64(const uint8_t *in, size_t len, uint64_t *out)
{
    size_t i = 0;
    uint64_t v = 0;
    bool any = false;
    while (i < len && (in[i] == ' ' || in[i] == '\n' || in[i] == '\r' || in[i] == '\t'))
        i++;
    for (; i < len && in[i] >= '0' && in[i] <= '9'; i++) {
        if (v > (UINT64_MAX - (uint64_t)(in[i] - '0')) / 10)
            return false;
        v = v * 10 + (uint64_t)(in[i] - '0');
        any = true;
    }
    while (i < len && (in[i] == ' ' || in[i] == '\n' || in[i] == '\r' || in[i] == '\t'))
        i++;
    *out = v;
    return any && i == len;
}

/* End the job now with whatever the call block holds (hostile tests set it up themselves). */
__attribute__((noreturn)) static inline void raw_exit_done(void)
{
    for (;;)
        __asm__ volatile("outl %0, %w1" : : "a"((uint32_t)ASPEN_EXIT_DONE), "Nd"((uint16_t)ASPEN_PORT_EXIT) : "memory");
}

#endif
