/* bench/musl_warm.c — aspen-bench-musl: the warm-run cost of a static Linux program (musl-gcc
 * -static, through vm/linux.c) beside the C SDK's, for docs/BENCHMARKS.md. One warm VM per guest;
 * runs alternate between the SDK's echo-worker, the same program written against libc
 * (musl-echo-worker) and zlib's unmodified minigzip compressing the payload, each timed around
 * aspen_vm_run with the restore from the snapshot included. Also one cold start of each.
 *
 *   aspen-bench-musl [GUEST_DIR] [ITERATIONS]   (default target/guest-binaries, 2000)
 * Prints one JSON object: p50/p99 in µs, exits per job, the cold start, per guest.
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

struct guest {
    const char *name;
    size_t mem;
    aspen_vm *vm;
    double cold_us;
    double *t;
    unsigned exits;
};

static void open_vm(const char *dir, struct guest *g)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, g->name);
    aspen_vm_image *img = NULL;
    aspen_vm_error err = {0};
    aspen_vm_config cfg;
    aspen_vm_config_default(&cfg);
    cfg.memory_bytes = g->mem;
    if (aspen_vm_image_load_file(path, &img, &err) != 0) {
        fprintf(stderr, "aspen-bench-musl: %s: %s\n", path, err.msg);
        exit(1);
    }
    double a = now_us();
    if (aspen_vm_create(img, &cfg, NULL, &g->vm, &err) != 0) {
        fprintf(stderr, "aspen-bench-musl: %s: %s\n", path, err.msg);
        exit(1);
    }
    g->cold_us = now_us() - a;
    aspen_vm_image_release(img);
}

static double run_once(struct guest *g, const char *input)
{
    aspen_vm_run_opts ro = {.input = input, .input_len = strlen(input)};
    aspen_vm_result r;
    aspen_vm_error err = {0};
    double a = now_us();
    int rc = aspen_vm_run(g->vm, &ro, &r, &err);
    double t = now_us() - a;
    if (rc != 0 || r.outcome != ASPEN_VM_SUCCESS) {
        fprintf(stderr, "aspen-bench-musl: %s: run failed: %s\n", g->name, rc ? err.msg : r.message);
        exit(1);
    }
    g->exits = r.stats.exits;
    aspen_vm_result_free(&r);
    return t;
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "target/guest-binaries";
    size_t n = argc > 2 ? (size_t)strtoul(argv[2], NULL, 10) : 2000;
    if (n < 10)
        n = 10;
    static const char payload[] = "{\"message\":\"Hello\"}"; /* the seed's, as aspen bench vm */
    struct guest g[] = {
        {"echo-worker", 1u << 20, NULL, 0, NULL, 0},
        {"musl-echo-worker", 1u << 20, NULL, 0, NULL, 0},
        {"minigzip", 8u << 20, NULL, 0, NULL, 0},
    };
    size_t ng = sizeof g / sizeof g[0];
    for (size_t k = 0; k < ng; k++) {
        open_vm(dir, &g[k]);
        g[k].t = calloc(n, sizeof *g[k].t);
        for (int w = 0; w < 50; w++)
            run_once(&g[k], payload);
    }
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < ng; k++)
            g[k].t[i] = run_once(&g[k], payload);
    printf("{\"iterations\": %zu", n);
    double sdk = 0;
    for (size_t k = 0; k < ng; k++) {
        qsort(g[k].t, n, sizeof *g[k].t, cmp);
        double p50 = g[k].t[n / 2], p99 = g[k].t[(n * 99) / 100];
        if (k == 0)
            sdk = p50;
        printf(", \"%s\": {\"p50_us\": %.1f, \"p99_us\": %.1f, \"exits\": %u, \"cold_us\": %.0f, "
               "\"vs_sdk\": %.2f}",
               g[k].name, p50, p99, g[k].exits, g[k].cold_us, p50 / sdk);
        aspen_vm_destroy(g[k].vm);
        free(g[k].t);
    }
    printf("}\n");
    return 0;
}
