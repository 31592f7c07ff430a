/* fuzz/fuzz_hostcall.c — libFuzzer target: host-call and DONE-path decoding on a live, warm VM.
 *
 * Each fuzz input is a program for fuzz/guest-hostcall (its header has the encoding): host calls
 * with hostile numbers and arguments, raw port accesses of every size and direction, call-block
 * writes, and DONE with hostile status/output/message fields; two registered host functions take
 * hostile pointers through the checked accessors (fn_copy, fn_fail). One warm VM at minimal memory runs
 * every input, so the target also checks that the VM survives and stays isolated: after each
 * input it runs the guest's canary job and requires the very answer the first canary gave (the
 * canary hashes the call block, the guest's data, heap and unused stack). Any of these aborts
 * (a finding): aspen_vm_run failing, the VM becoming unusable, a CRASHED outcome (the guest must
 * not be able to cause one), a result that breaks aspen_vm.h's promises (output on failure, an
 * unterminated message, control bytes in a message or log line), a different canary, or an
 * outcome other than the one docs/ABI.md implies for the program (hostcall_model.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aspen_vm.h"
#include "hostcall_model.h"

#ifndef ASPEN_FUZZ_GUEST
#define ASPEN_FUZZ_GUEST "fuzz-hostcall-guest"
#endif

static aspen_vm *g_vm;
static aspen_vm_image *g_img;
static char g_canary[1024];
static size_t g_canary_len;
static size_t g_max_output;
static struct model g_model; /* the documented contract the outcome is predicted from */
static bool g_verbose; /* ASPEN_FUZZ_VERBOSE=1: print each input's outcome (for reading seeds) */

__attribute__((noreturn, format(printf, 1, 2))) static void finding(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "fuzz_hostcall: FINDING: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}

/* Text that reaches a terminal: no control bytes but tab (and newline in messages). */
static const char *bad_byte(const char *s, size_t n, bool newline_ok)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c < 0x20 && c != '\t' && !(newline_ok && c == '\n')) || c == 0x7f)
            return s + i;
    }
    return NULL;
}

static void on_log(void *user, const char *line, size_t len)
{
    (void)user;
    if (strlen(line) != len)
        finding("log line of %zu bytes has a NUL at %zu", len, strlen(line));
    if (len > 16384 + 32)
        finding("log line of %zu bytes is longer than ASPEN_MAX_LOG_LINE and its mark", len);
    const char *b = bad_byte(line, len, false);
    if (b)
        finding("log line has control byte 0x%02x at %zu", (unsigned char)*b, (size_t)(b - line));
}

/* Registered host functions, so lookups can succeed and the checked accessors aspen_vm_call_read
 * and aspen_vm_call_write meet hostile pointers: fuzz_copy(src, len, dst) copies guest memory
 * through the host; fuzz_fail() fails as a host function may. */
static int fn_copy(aspen_vm_call *call, void *user)
{
    (void)user;
    uint64_t src = aspen_vm_call_arg(call, 0), len = aspen_vm_call_arg(call, 1);
    uint64_t dst = aspen_vm_call_arg(call, 2);
    if (len > (64u << 10)) {
        aspen_vm_call_return(call, -22);
        return 0;
    }
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        return -1;
    int rc = aspen_vm_call_read(call, src, len, buf);
    if (rc == 0)
        rc = aspen_vm_call_write(call, dst, buf, len);
    free(buf);
    if (rc == 0)
        aspen_vm_call_return(call, (int64_t)len);
    return rc;
}

static int fn_fail(aspen_vm_call *call, void *user)
{
    (void)call;
    (void)user;
    return -1;
}

/* timeout_ms 0: the VM's 200 ms. Deadlines are wall-clock time, and on a loaded machine a thread
 * can lose that much, so a timeout is confirmed with a long deadline before it counts. */
static void run_one(const uint8_t *in, size_t len, uint32_t timeout_ms, aspen_vm_result *res)
{
    aspen_vm_error err = {0};
    aspen_vm_run_opts opts = {.input = in, .input_len = len, .on_log = on_log,
                              .timeout_ms = timeout_ms};
    int rc = aspen_vm_run(g_vm, &opts, res, &err);
    if (rc != 0)
        finding("aspen_vm_run returned %d: %s (outcome %s)", rc, err.msg,
                aspen_vm_outcome_name(res->outcome));
    if (memchr(res->message, '\0', sizeof res->message) == NULL)
        finding("result message is not NUL-terminated");
    const char *b = bad_byte(res->message, strlen(res->message), true);
    if (b)
        finding("result message has control byte 0x%02x: %s", (unsigned char)*b, res->message);
    if (res->outcome == ASPEN_VM_CRASHED)
        finding("the guest crashed the VM: %s", res->message);
    if ((unsigned)res->outcome > ASPEN_VM_CRASHED)
        finding("unknown outcome %u", (unsigned)res->outcome);
    if (!aspen_vm_usable(g_vm))
        finding("the VM is unusable after outcome %s: %s", aspen_vm_outcome_name(res->outcome),
                res->message);
    if (res->outcome == ASPEN_VM_SUCCESS) {
        if (!res->output || res->output[res->output_len] != '\0')
            finding("success without a NUL-terminated output");
        if (res->output_len > g_max_output)
            finding("output of %zu bytes beyond the %zu-byte maximum", res->output_len,
                    g_max_output);
        if (res->message[0])
            finding("success with a message: %s", res->message);
    } else {
        if (res->output || res->output_len)
            finding("outcome %s with %zu bytes of output", aspen_vm_outcome_name(res->outcome),
                    res->output_len);
        if (!res->message[0])
            finding("outcome %s without a message", aspen_vm_outcome_name(res->outcome));
    }
}

static void canary(const char *after)
{
    aspen_vm_result res;
    run_one(NULL, 0, 10000, &res); /* the canary never loops */
    if (res.outcome != ASPEN_VM_SUCCESS)
        finding("the canary job after %s ended %s: %s", after, aspen_vm_outcome_name(res.outcome),
                res.message);
    if (!g_canary_len) {
        if (res.output_len >= sizeof g_canary)
            finding("canary answer too long");
        memcpy(g_canary, res.output, res.output_len);
        g_canary_len = res.output_len;
    } else if (res.output_len != g_canary_len || memcmp(res.output, g_canary, g_canary_len) != 0) {
        finding("state leaked from one job to the next: the canary job after %s answered\n  %.*s\n"
                "instead of\n  %.*s",
                after, (int)res.output_len, (const char *)res.output, (int)g_canary_len,
                g_canary);
    }
    aspen_vm_result_free(&res);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *v = getenv("ASPEN_FUZZ_VERBOSE");
    g_verbose = v && strcmp(v, "1") == 0;
    const char *path = getenv("ASPEN_FUZZ_GUEST");
    if (!path)
        path = ASPEN_FUZZ_GUEST;
    aspen_vm_error err = {0};
    if (aspen_vm_image_load_file(path, &g_img, &err) != 0) {
        fprintf(stderr, "fuzz_hostcall: %s\n", err.msg);
        exit(2);
    }
    aspen_vm_host *host = aspen_vm_host_new();
    if (!host || aspen_vm_host_register(host, "fuzz_copy", "(u64 src, u64 len, u64 dst) -> len",
                                        fn_copy, NULL, &err) != 0 ||
        aspen_vm_host_register(host, "fuzz_fail", "() -> fails", fn_fail, NULL, &err) != 0) {
        fprintf(stderr, "fuzz_hostcall: cannot register host functions: %s\n", err.msg);
        exit(2);
    }
    /* The smallest VM the guest fits in: fewer pages to map and restore per iteration. */
    aspen_vm_config cfg;
    aspen_vm_config_default(&cfg);
    cfg.stack_bytes = 16u << 10;
    cfg.timeout_ms = 200;
    cfg.memory_bytes = 64u << 10;
    while (aspen_vm_create(g_img, &cfg, host, &g_vm, &err) == ASPEN_VM_EINVAL &&
           cfg.memory_bytes < (1u << 20))
        cfg.memory_bytes *= 2;
    if (!g_vm) {
        fprintf(stderr, "fuzz_hostcall: cannot create the VM: %s\n", err.msg);
        exit(2);
    }
    g_max_output = cfg.max_output < cfg.memory_bytes ? cfg.max_output : cfg.memory_bytes;
    canary("start-up");
    canary("the first canary");
    g_canary[g_canary_len] = '\0';
    if (model_load_image(&g_model, path) != 0 ||
        model_set_layout(&g_model, g_canary, cfg.max_output) != 0) {
        fprintf(stderr, "fuzz_hostcall: cannot read the guest's layout (%s)\n", g_canary);
        exit(2);
    }
    fprintf(stderr, "fuzz_hostcall: %zu KiB VM, canary: %.*s\n", cfg.memory_bytes >> 10,
            (int)g_canary_len, g_canary);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    aspen_vm_result res;
    run_one(data, size, 0, &res);
    if (res.outcome == ASPEN_VM_TIMEOUT) {
        aspen_vm_result_free(&res);
        run_one(data, size, 2000, &res);
    }
    if (g_verbose)
        fprintf(stderr, "fuzz_hostcall: %zu bytes: %s, %u host calls, %u log lines: %.80s%s\n",
                size, aspen_vm_outcome_name(res.outcome), res.stats.host_calls,
                res.stats.log_lines,
                res.outcome == ASPEN_VM_SUCCESS ? (const char *)res.output : res.message,
                res.outcome == ASPEN_VM_SUCCESS ? "" : "");
    struct model_pred pred;
    model_predict(&g_model, data, size, &pred);
    if (pred.outcome != M_UNKNOWN) {
        if ((int)res.outcome != pred.outcome)
            finding("the ABI says %s (%s), the VM says %s: %s", aspen_vm_outcome_name(pred.outcome),
                    pred.why, aspen_vm_outcome_name(res.outcome), res.message);
        if (pred.output && (res.output_len != strlen(pred.output) ||
                            memcmp(res.output, pred.output, res.output_len) != 0))
            finding("output \"%.*s\", the guest returned \"%s\" (%s)", (int)res.output_len,
                    (const char *)res.output, pred.output, pred.why);
        if (res.stats.host_calls != pred.host_calls)
            finding("%u host calls counted, the program made %u (%s)", res.stats.host_calls,
                    pred.host_calls, pred.why);
    }
    if (g_verbose)
        fprintf(stderr, "fuzz_hostcall:   model: %s (%s)\n",
                pred.outcome == M_UNKNOWN ? "unknown" : aspen_vm_outcome_name(pred.outcome),
                pred.why);
    aspen_vm_result_free(&res);
    char what[96];
    snprintf(what, sizeof what, "a %zu-byte input (outcome %s)", size,
             aspen_vm_outcome_name(res.outcome));
    canary(what);
    return 0;
}
