/* guests/musl/echo-worker — the seed's echo guest as an ordinary C program with libc: no Aspen SDK,
 * no Aspen header, built with `musl-gcc -static` (guests/musl/musl.cmake) into
 * target/guest-binaries/musl-echo-worker. It behaves like guests/echo-worker: the output is
 * "Echo: " followed by stdin, and one line goes to stderr, which the host logs. bench/musl_warm.c
 * times it beside the SDK's echo-worker (docs/BENCHMARKS.md). */
#include <stdio.h>
#include <stdlib.h>

int main(void)
{
    size_t cap = 4096, len = 0;
    char *in = malloc(cap);
    for (size_t n; in && (n = fread(in + len, 1, cap - len, stdin)) > 0;)
        if ((len += n) == cap)
            in = realloc(in, cap *= 2);
    if (!in) {
        fprintf(stderr, "echo-worker: out of memory\n");
        return 1;
    }
    fprintf(stderr, "echo-worker: received %zu bytes\n", len);
    fputs("Echo: ", stdout);
    fwrite(in, 1, len, stdout);
    return 0;
}
