/* tests/vm/guests/lx-debuggee — a plain libc program (musl-gcc -static -g -O0, no Aspen header)
 * for the debugger and core tests of static Linux programs: it reads its input from stdin, prints
 * the sum of add_up(40, 2), and for the input "crash" writes through a null pointer in crash_now.
 * The line numbers the tests look for are marked with "LINE:" comments. */
#include <stdio.h>
#include <string.h>

int add_up(int a, int b)
{
    int s = a + b; /* LINE:add_up */
    return s;
}

void crash_now(volatile int *p)
{
    *p = 1; /* LINE:crash_now */
}

int main(void)
{
    char buf[64];
    size_t n = fread(buf, 1, sizeof buf - 1, stdin);
    buf[n] = '\0';
    printf("sum %d\n", add_up(40, 2));
    if (strcmp(buf, "crash") == 0)
        crash_now(NULL);
    return 0;
}
