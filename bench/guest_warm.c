/* bench/guest_warm.c — aspen-bench-guests: the warm-run cost of the seed's guests in C (the SDK) and
 * in Rust (guests/rust/) side by side, for docs/BENCHMARKS.md. Each guest gets one warm VM; runs of
 * the C and the Rust guest alternate (so both see the same machine load) and each is timed around
 * aspen_vm_run, restore from the snapshot included, as `aspen bench vm` does.
 *
 *   aspen-bench-guests [GUEST_DIR] [ITERATIONS]   (default target/guest-binaries, 2000)
 * Prints one JSON object: p50/p99 in µs per guest, and the Rust/C ratio of the p50s.
 */
#include <aspen_vm.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double pct(double *t, size_t n, int p)
{
    size_t i = (n * (size_t)p) / 100;
    return t[i < n ? i : n - 1];
}

static aspen_vm *open_vm(const char *dir, const char *name)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    aspen_vm_image *img = NULL;
    aspen_vm *vm = NULL;
    aspen_vm_error err = {0};
    if (aspen_vm_image_load_file(path, &img, &err) != 0 ||
        aspen_vm_create(img, NULL, NULL, &vm, &err) != 0) {
        fprintf(stderr, "aspen-bench-guests: %s: %s\n", path, err.msg);
        exit(1);
    }
    aspen_vm_image_release(img);
    return vm;
}

static double run_once(aspen_vm *vm, const char *input)
{
    aspen_vm_run_opts ro = {.input = input, .input_len = strlen(input)};
    aspen_vm_result r;
    aspen_vm_error err = {0};
    double a = now_us();
    int rc = aspen_vm_run(vm, &ro, &r, &err);
    double t = now_us() - a;
    if (rc != 0 || r.outcome != ASPEN_VM_SUCCESS) {
        fprintf(stderr, "aspen-bench-guests: run failed: %s\n", rc ? err.msg : r.message);
        exit(1);
    }
    aspen_vm_result_free(&r);
    return t;
}

/* Alternating warm runs of the C and the Rust build of one guest; prints their JSON members. */
static void pair(const char *dir, const char *c_name, const char *rust_name, const char *input,
                 size_t n, const char *key, int last)
{
    aspen_vm *c = open_vm(dir, c_name), *r = open_vm(dir, rust_name);
    double *tc = calloc(n, sizeof *tc), *tr = calloc(n, sizeof *tr);
    if (!tc || !tr)
        exit(1);
    for (size_t i = 0; i < 20; i++) { /* warm the caches and the dirty-page state */
        run_once(c, input);
        run_once(r, input);
    }
    for (size_t i = 0; i < n; i++) {
        tc[i] = run_once(c, input);
        tr[i] = run_once(r, input);
    }
    qsort(tc, n, sizeof *tc, cmp);
    qsort(tr, n, sizeof *tr, cmp);
    printf("  \"%s_c_p50_us\": %.1f, \"%s_c_p99_us\": %.1f, \"%s_rust_p50_us\": %.1f, "
           "\"%s_rust_p99_us\": %.1f, \"%s_rust_over_c\": %.2f%s\n",
           key, pct(tc, n, 50), key, pct(tc, n, 99), key, pct(tr, n, 50), key, pct(tr, n, 99), key,
           pct(tr, n, 50) / pct(tc, n, 50), last ? "" : ",");
    free(tc);
    free(tr);
    aspen_vm_destroy(c);
    aspen_vm_destroy(r);
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "target/guest-binaries";
    size_t n = argc > 2 ? strtoul(argv[2], NULL, 10) : 2000;
    if (n < 10)
        n = 10;
    /* the payloads of `aspen bench vm`: the seed's echo message, 20 records for the data processor */
    char payload[4096];
    size_t off = (size_t)snprintf(payload, sizeof payload, "{\"records\":[");
    for (int i = 0; i < 20; i++)
        off += (size_t)snprintf(payload + off, sizeof payload - off,
                                "%s{\"name\":\"  User %d \",\"age\":%d,\"city\":\"%s\","
                                "\"score\":%d.5}",
                                i ? "," : "", i, 20 + i, i % 2 ? "Paris" : "  berlin", i * 3);
    snprintf(payload + off, sizeof payload - off, "]}");
    printf("{\n  \"iterations\": %zu,\n", n);
    pair(dir, "echo-worker", "rust-echo-worker", "{\"message\":\"Hello\"}", n, "echo", 0);
    pair(dir, "data-processor", "rust-data-processor", payload, n / 4 < 50 ? 50 : n / 4, "data", 1);
    printf("}\n");
    return 0;
}
