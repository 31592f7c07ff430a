/* cli/cmd_demo.c — `aspen demo`, the seed's vm_job_demo: an echo job and a data-processing job in
 * micro-VMs, with their log lines and timings (a cold VM for the first job of each guest, then a
 * warm run from its snapshot to show what reuse buys). */
#include "aspen_vm.h"
#include "cli.h"

#include <stdio.h>
#include <string.h>

static void on_log(void *user, const char *line, size_t len)
{
    printf("    log  [%s] %.*s\n", (const char *)user, (int)len, line);
}

static int demo_job(const char *guest, const char *payload)
{
    char path[4096], msg[1024];
    aspen_vm_error err = {0};
    aspen_vm_image *img = NULL;
    aspen_vm *vm = NULL;
    int rc = 1;
    printf("\n== %s\n    payload %s\n", guest, payload);
    if (cli_resolve_guest(guest, path, sizeof path, msg, sizeof msg) != 0) {
        fprintf(stderr, "error: %s\n", msg);
        return 1;
    }
    double a = cli_now_us();
    if (aspen_vm_image_load_file(path, &img, &err) != 0 ||
        aspen_vm_create(img, NULL, NULL, &vm, &err) != 0) {
        fprintf(stderr, "error: %s\n", err.msg);
        goto done;
    }
    double b = cli_now_us();
    for (int i = 0; i < 2; i++) {
        aspen_vm_result r;
        aspen_vm_run_opts ro = {.input = payload, .input_len = strlen(payload),
                                .on_log = i == 0 ? on_log : NULL, .log_user = (void *)guest};
        double c = cli_now_us();
        if (aspen_vm_run(vm, &ro, &r, &err) != 0) {
            fprintf(stderr, "error: %s\n", err.msg);
            goto done;
        }
        double d = cli_now_us();
        if (i == 0) {
            if (r.outcome == ASPEN_VM_SUCCESS)
                printf("    out  %.*s\n", (int)r.output_len, (const char *)r.output);
            else
                printf("    err  %s\n", r.message);
            printf("    time image+VM start-up %.0f us, job %.0f us (%u exits, %u host calls, "
                   "%u pages restored)\n",
                   b - a, d - c, r.stats.exits, r.stats.host_calls, r.stats.pages_dirtied);
        } else {
            printf("    time same job again on the warm VM: %.0f us\n", d - c);
        }
        rc = r.outcome == ASPEN_VM_SUCCESS ? 0 : 1;
        aspen_vm_result_free(&r);
    }
done:
    aspen_vm_destroy(vm);
    aspen_vm_image_release(img);
    return rc;
}

int cmd_demo(int argc, char **argv)
{
    printf("Aspen demo: jobs in KVM micro-VMs (guest code at CPL 3, no kernel, 1 MiB of memory)\n");
    int rc = demo_job("echo-worker", "{\"message\":\"Hello\"}");
    rc |= demo_job("data-processor",
                   "{\"records\":[{\"name\":\"  Alice  Smith\",\"age\":30,\"city\":\"paris\"},"
                   "{\"name\":\"bob\",\"age\":25,\"city\":\"Paris \"},"
                   "{\"name\":\"Carol\",\"age\":41,\"city\":\"Berlin\"}]}");
    return rc;
}
