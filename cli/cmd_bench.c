/* cli/cmd_bench.c — `aspen bench vm`: what a job costs in a micro-VM, measured, printed as JSON.
 *
 * Benchmarks print numbers; they never pass or fail on time (machines here are noisy). Compare them
 * with ../shared/bench/kvm_floor.c run beside them (bench/run.sh does both and prints ratios).
 *   cold      create VM + start-up + one job + destroy (what `aspen run` does)
 *   warm      one job on a warm VM, restored from its snapshot: quiet echo, no host call
 *   hostcall  the cost of one host call (hl_get_time), from runs making 100 of them
 *   echo      echo-worker with its one hl_println;  data  data-processor on 20 records
 *   compute   a compute-bound kernel in the guest against the same C code compiled natively
 *   memory    host memory per idle warm VM against its guest memory
 */
#include "aspen_vm.h"
#include "cli.h"
#include "compute_kernel.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct dist {
    double p50, p99;
};

static int load(const char *name, aspen_vm_image **img)
{
    char path[4096], msg[1024];
    aspen_vm_error err = {0};
    if (cli_resolve_guest(name, path, sizeof path, msg, sizeof msg) != 0) {
        cli_error("%s", msg);
        return -1;
    }
    if (aspen_vm_image_load_file(path, img, &err) != 0) {
        cli_error("%s", err.msg);
        return -1;
    }
    return 0;
}

static struct dist summarize(double *t, size_t n)
{
    cli_sort(t, n);
    return (struct dist){cli_pct(t, n, 50), cli_pct(t, n, 99)};
}

/* Time n warm runs of input on vm; every run must succeed. */
static int warm_runs(aspen_vm *vm, const char *input, size_t n, double *t)
{
    aspen_vm_run_opts ro = {.input = input, .input_len = strlen(input)};
    for (size_t i = 0; i < n; i++) {
        aspen_vm_result r;
        aspen_vm_error err = {0};
        double a = cli_now_us();
        int rc = aspen_vm_run(vm, &ro, &r, &err);
        t[i] = cli_now_us() - a;
        if (rc != 0 || r.outcome != ASPEN_VM_SUCCESS) {
            cli_error("benchmark run failed: %s", rc ? err.msg : r.message);
            aspen_vm_result_free(&r);
            return -1;
        }
        aspen_vm_result_free(&r);
    }
    return 0;
}

/* Create a warm VM of img, time n runs of input on it, destroy it; summarize into *out if given. */
static int measure(aspen_vm_image *img, const aspen_vm_config *cfg, const char *input, size_t n,
                   double *t, struct dist *out)
{
    aspen_vm *vm = NULL;
    aspen_vm_error err = {0};
    if (aspen_vm_create(img, cfg, NULL, &vm, &err) != 0) {
        cli_error("%s", err.msg);
        return -1;
    }
    int rc = warm_runs(vm, input, n, t);
    aspen_vm_destroy(vm);
    if (rc == 0 && out)
        *out = summarize(t, n);
    return rc;
}

static size_t rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size = 0, res = 0;
    if (f) {
        if (fscanf(f, "%lu %lu", &size, &res) != 2)
            res = 0;
        fclose(f);
    }
    return res * (size_t)sysconf(_SC_PAGESIZE);
}

static int bench_vm(int iters, bool as_json)
{
    int rc = 1;
    aspen_vm_image *quiet = NULL, *calls = NULL, *echo = NULL, *data = NULL, *comp = NULL;
    aspen_vm *vm = NULL;
    size_t n = (size_t)iters, ncold = n / 10 < 50 ? 50 : n / 10;
    double *t = calloc(n > ncold ? n : ncold, sizeof *t);
    aspen_vm_error err = {0};
    aspen_vm_config cfg;
    aspen_vm_config_default(&cfg);
    if (!t || load("test-quiet-echo", &quiet) || load("test-hostcalls", &calls) ||
        load("echo-worker", &echo) || load("data-processor", &data) || load("test-compute", &comp))
        goto done;

    /* cold: fresh VM per job */
    aspen_vm_config one = cfg;
    one.warm = false;
    for (size_t i = 0; i < ncold; i++) {
        aspen_vm_result r;
        double a = cli_now_us();
        if (aspen_vm_create(quiet, &one, NULL, &vm, &err) != 0 ||
            aspen_vm_run(vm, &(aspen_vm_run_opts){.input = "x", .input_len = 1}, &r, &err) != 0) {
            cli_error("%s", err.msg);
            goto done;
        }
        aspen_vm_result_free(&r);
        aspen_vm_destroy(vm);
        vm = NULL;
        t[i] = cli_now_us() - a;
    }
    struct dist cold = summarize(t, ncold);

    /* warm: quiet echo, one exit per job */
    struct dist warm, hostcall, echo_d, data_d;
    if (measure(quiet, &cfg, "{\"message\":\"Hello\"}", n, t, &warm))
        goto done;

    /* one host call: (run with 100 calls - warm run) / 100 */
    size_t nh = n / 4 < 50 ? 50 : n / 4;
    if (measure(calls, &cfg, "100", nh, t, NULL))
        goto done;
    for (size_t i = 0; i < nh; i++)
        t[i] = (t[i] - warm.p50) / 100.0;
    hostcall = summarize(t, nh);

    /* the seed's guests */
    if (measure(echo, &cfg, "{\"message\":\"Hello\"}", n, t, &echo_d))
        goto done;

    char payload[4096];
    size_t off = (size_t)snprintf(payload, sizeof payload, "{\"records\":[");
    for (int i = 0; i < 20; i++)
        off += (size_t)snprintf(payload + off, sizeof payload - off,
                                "%s{\"name\":\"  User %d \",\"age\":%d,\"city\":\"%s\","
                                "\"score\":%d.5}",
                                i ? "," : "", i, 20 + i, i % 2 ? "Paris" : "  berlin", i * 3);
    snprintf(payload + off, sizeof payload - off, "]}");
    size_t nd = n / 4 < 50 ? 50 : n / 4;
    if (measure(data, &cfg, payload, nd, t, &data_d))
        goto done;

    /* compute: same kernel, guest vs native; best of 5 each to damp noise */
    const uint64_t k = 100000000ull;
    char kin[32];
    snprintf(kin, sizeof kin, "%llu", (unsigned long long)k);
    aspen_vm_config ccfg = cfg;
    ccfg.timeout_ms = 60000;
    if (aspen_vm_create(comp, &ccfg, NULL, &vm, &err) != 0) {
        cli_error("%s", err.msg);
        goto done;
    }
    double guest_best = 1e18, native_best = 1e18;
    volatile uint64_t sink = 0;
    for (int i = 0; i < 5; i++) {
        double g;
        if (warm_runs(vm, kin, 1, &g))
            goto done;
        double a = cli_now_us();
        sink += aspen_compute_kernel(k);
        double nat = cli_now_us() - a;
        if (g < guest_best)
            guest_best = g;
        if (nat < native_best)
            native_best = nat;
    }
    (void)sink;
    aspen_vm_destroy(vm);
    vm = NULL;

    /* memory per idle warm VM */
    enum { NVM = 16 };
    aspen_vm *vms[NVM] = {0};
    size_t before = rss_bytes();
    for (int i = 0; i < NVM; i++) {
        if (aspen_vm_create(echo, &cfg, NULL, &vms[i], &err) != 0 ||
            warm_runs(vms[i], "{\"message\":\"Hello\"}", 1, t)) {
            cli_error("%s", err.msg);
            for (int j = 0; j < NVM; j++)
                aspen_vm_destroy(vms[j]);
            goto done;
        }
    }
    size_t per_vm = (rss_bytes() - before) / NVM;
    aspen_vm_stats st;
    aspen_vm_get_stats(vms[0], &st);
    for (int i = 0; i < NVM; i++)
        aspen_vm_destroy(vms[i]);

    if (!as_json) {
        printf("cold create+run+destroy  p50 %8.1f us  p99 %8.1f us\n", cold.p50, cold.p99);
        printf("warm job (no host call)  p50 %8.1f us  p99 %8.1f us\n", warm.p50, warm.p99);
        printf("one host call            p50 %8.2f us  p99 %8.2f us\n", hostcall.p50,
               hostcall.p99);
        printf("echo-worker job          p50 %8.1f us  p99 %8.1f us\n", echo_d.p50, echo_d.p99);
        printf("data-processor job       p50 %8.1f us  p99 %8.1f us\n", data_d.p50, data_d.p99);
        printf("compute %llu iterations  guest %.1f ms  native %.1f ms  ratio %.3f\n",
               (unsigned long long)k, guest_best / 1e3, native_best / 1e3,
               guest_best / native_best);
        printf("idle warm VM             host memory %zu KiB for %zu KiB of guest memory "
               "(touched %zu KiB)\n",
               per_vm >> 10, st.memory_bytes >> 10, st.memory_touched >> 10);
    }
    printf("{\"cold_p50_us\": %.1f, \"cold_p99_us\": %.1f, \"warm_p50_us\": %.1f, "
           "\"warm_p99_us\": %.1f, \"hostcall_p50_us\": %.2f, \"hostcall_p99_us\": %.2f, "
           "\"echo_p50_us\": %.1f, \"echo_p99_us\": %.1f, \"data_p50_us\": %.1f, "
           "\"data_p99_us\": %.1f, \"compute_guest_ms\": %.2f, \"compute_native_ms\": %.2f, "
           "\"compute_ratio\": %.4f, \"idle_vm_host_bytes\": %zu, \"guest_memory_bytes\": %zu, "
           "\"iterations\": %d}\n",
           cold.p50, cold.p99, warm.p50, warm.p99, hostcall.p50, hostcall.p99, echo_d.p50,
           echo_d.p99, data_d.p50, data_d.p99, guest_best / 1e3, native_best / 1e3,
           guest_best / native_best, per_vm, st.memory_bytes, iters);
    rc = 0;
done:
    aspen_vm_destroy(vm);
    aspen_vm_image_release(quiet);
    aspen_vm_image_release(calls);
    aspen_vm_image_release(echo);
    aspen_vm_image_release(data);
    aspen_vm_image_release(comp);
    free(t);
    return rc;
}

/* Every benchmark there is: `aspen bench` lists them all, not only the one parsed here. */
static void bench_usage(FILE *f)
{
    cli_help(f,
            "usage: aspen bench vm [--json] [--iterations N]\n"
            "       aspen bench engine [--jobs N] [--workers N] [--guest NAME] [--db PATH]\n"
            "                          [--live] [--json]   (aspen bench engine --help)\n"
            "  vm      what a job costs in a micro-VM: cold start, a warm job, one host call, the\n"
            "          seed's guests, guest compute against native, host memory per warm VM\n"
            "          (--iterations N runs per figure, default 2000, at least 10)\n"
            "  engine  the whole job engine's throughput: N jobs submitted, run in warm VMs and\n"
            "          committed to the store (jobs/s, submit-to-finish p50/p99)\n"
            "  --json  one JSON line instead of text\n"
            "make bench runs vm and engine beside the KVM floor of this machine, and the console\n"
            "benchmark. More programs are built beside aspen: aspen-bench-console (the console on\n"
            "1,000,000 jobs), aspen-bench-sort (the whole-store sort on 10,000,000 jobs),\n"
            "aspen-bench-guests (C and Rust guests warm), aspen-bench-musl (a static Linux\n"
            "program), tests/store/store_bench (the store alone); docs/BENCHMARKS.md has results.\n");
}

int cmd_bench(int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, 0, 'j'},
        {"iterations", required_argument, 0, 'n'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    if (argc > 1 && strcmp(argv[1], "engine") == 0) /* its own options: cli/bench_engine.c */
        return bench_engine(argc - 1, argv + 1);
    bool as_json = false;
    int iters = 2000, c;
    optind = 1;
    while ((c = cli_getopt(argc, argv, "jn:h", opts, argv[0])) != -1) {
        switch (c) {
        case 'j': as_json = true; break;
        case 'n': {
            long long v;
            if (cli_parse_num("--iterations", optarg, 10, 100000000, &v))
                return 2;
            iters = (int)v;
            break;
        }
        case 'h':
        default:
            bench_usage(c == 'h' ? stdout : stderr);
            return c == 'h' ? 0 : 2;
        }
    }
    int urc = cli_args(argc, argv, optind, 1, 1, "a benchmark: vm or engine",
                       "aspen bench vm|engine [--json] (aspen bench --help)");
    if (urc)
        return urc;
    if (iters < 10) {
        bench_usage(stderr);
        return 2;
    }
    if (strcmp(argv[optind], "vm") == 0)
        return bench_vm(iters, as_json);
    const char *names[] = {"vm", "engine"};
    const char *near = cli_nearest(argv[optind], names, 2);
    cli_error("unknown benchmark '%s'%s%s%s (the benchmarks: vm, engine)", argv[optind],
              near ? ": did you mean '" : "", near ? near : "", near ? "'?" : "");
    return 2;
}
