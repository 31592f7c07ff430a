/* tests/vm/guests/debuggee — the guest the debugger and core-dump tests drive with gdb. Built with
 * symbols and without optimisation (ASPEN_GUEST_DEBUG=1, -O0: tests/vm/CMakeLists.txt), so gdb
 * finds its functions, lines and variables by name. Inputs:
 *   (anything else)  add_scores(40, 2): outputs "84" (and logs it: a host call)
 *   (each word is also taken as a JSON string, "crash", as an engine job's payload)
 *   crash            crash_here() writes through a null pointer      #PF -> SIGSEGV
 *   ud2              bad_opcode() executes ud2                       #UD -> SIGILL
 *   spin             spin_forever() never returns                    timeout
 *   panic            aspen_panic from give_up()
 * The line numbers the tests look for are marked with "LINE:" comments. */
#include <aspen.h>

#include "../test_guest.h"

int g_total; /* a global for gdb to read */

__attribute__((noinline)) int add_scores(int base, int bonus)
{
    int total = base + bonus; /* LINE:add_scores */
    g_total += total;
    return total * 2;
}

__attribute__((noinline)) void crash_here(volatile int *where)
{
    *where = 42; /* LINE:crash_here */
}

__attribute__((noinline)) void bad_opcode(void)
{
    __asm__ volatile("ud2"); /* LINE:bad_opcode */
}

__attribute__((noinline)) void spin_forever(void)
{
    for (volatile unsigned long i = 0;; i++) /* LINE:spin_forever */
        ;
}

__attribute__((noinline)) void give_up(void)
{
    aspen_panic("debuggee gave up"); /* LINE:give_up */
}

/* The word, bare (aspen run --input) or as a JSON string (an engine job's payload). */
static bool is(const uint8_t *in, size_t len, const char *w)
{
    size_t n = strlen(w);
    return input_is(in, len, w) ||
           (len == n + 2 && in[0] == '"' && in[len - 1] == '"' && memcmp(in + 1, w, n) == 0);
}

static int debuggee(const uint8_t *in, size_t len, aspen_buf *out)
{
    if (is(in, len, "crash"))
        crash_here((volatile int *)0);
    else if (is(in, len, "ud2"))
        bad_opcode();
    else if (is(in, len, "spin"))
        spin_forever();
    else if (is(in, len, "panic"))
        give_up();
    int r = add_scores(40, 2);
    hl_println("scores %d", r); /* a host call to step over */
    char text[16];
    int n = 0;
    for (int v = r; v > 0 && n < 15; v /= 10)
        text[n++] = (char)('0' + v % 10);
    char dec[16];
    for (int i = 0; i < n; i++)
        dec[i] = text[n - 1 - i];
    dec[n] = '\0';
    return aspen_buf_puts(out, dec);
}

ASPEN_JOB_HANDLER(debuggee);
