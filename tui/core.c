/* tui/core.c — the console's `C` / `:core [FILE]` in a job's detail: the ELF core the job's last
 * failed attempt kept, written to a file with the exact guest ELF it ran beside it (FILE.elf), so
 * the status line can show the one gdb command that opens it at the faulting line. No curses: it
 * runs on the thread pool.
 */
#include "view.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int put_file(const char *path, const void *b, size_t n, char *msg, size_t cap)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(msg, cap, "cannot write %s: %s", path, strerror(errno));
        return -1;
    }
    const uint8_t *p = b;
    for (size_t done = 0; done < n;) {
        ssize_t w = write(fd, p + done, n - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            snprintf(msg, cap, "writing %s failed: %s", path, w < 0 ? strerror(errno) : "disk full?");
            close(fd);
            return -1;
        }
        done += (size_t)w;
    }
    if (close(fd) != 0) {
        snprintf(msg, cap, "writing %s failed: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

int tui_core_write(aspen_engine *eng, int64_t job_id, const char *path, char *msg, size_t cap)
{
    aspen_engine_error err = {0};
    void *core = NULL;
    size_t n = 0;
    int attempt = 0;
    if (aspen_engine_attempt_data(eng, job_id, 0, ASPEN_STORE_DATA_CORE, &core, &n, &attempt,
                                  &err) != 0) {
        snprintf(msg, cap, "%s", err.msg);
        return -1;
    }
    /* gdb ELF CORE warns "core file may not match" unless the ELF's base name is the program
     * name the core keeps, which is at most 15 bytes (the guest's name, cut): the ELF gets a name
     * that short (job-ID-ATTEMPT, "job-42-1") and the core is told it. FILE.elf, as before, only
     * when that is short enough itself. */
    char file[2048], elf[2200], dir[2048], base[64];
    if (path && *path) {
        snprintf(file, sizeof file, "%s", path);
    } else {
        char cwd[1024];
        if (!getcwd(cwd, sizeof cwd))
            snprintf(cwd, sizeof cwd, ".");
        snprintf(file, sizeof file, "%s/aspen-core-%lld-%d", cwd, (long long)job_id, attempt);
    }
    const char *slash = strrchr(file, '/');
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - file) : 1, slash ? file : ".");
    if (slash && slash == file)
        snprintf(dir, sizeof dir, "/");
    const char *fbase = slash ? slash + 1 : file;
    if (strlen(fbase) + 4 <= 15)
        snprintf(base, sizeof base, "%s.elf", fbase);
    else
        snprintf(base, sizeof base, "job-%lld-%d", (long long)job_id, attempt);
    snprintf(elf, sizeof elf, "%s%s%s", dir, strcmp(dir, "/") ? "/" : "", base);
    if (strcmp(elf, file) == 0) /* :core job-42-1: the core has that name, the ELF another */
        snprintf(elf, sizeof elf, "%s%sjob-%lld-%d.g", dir, strcmp(dir, "/") ? "/" : "",
                 (long long)job_id, attempt);
    aspen_store_job job = {0};
    aspen_store_binary bin = {0};
    bool have_bin = aspen_engine_get(eng, job_id, &job, &err) == 0 && job.binary_sha256 &&
                    aspen_engine_get_binary(eng, job.binary_sha256, &bin, &err) == 0;
    if (have_bin)
        (void)aspen_engine_core_set_program(core, n, elf); /* not such a core: written as it is */
    int rc = put_file(file, core, n, msg, cap);
    free(core);
    bool have_elf = false;
    if (!rc && have_bin)
        have_elf = put_file(elf, bin.bytes, bin.size, msg, cap) == 0;
    aspen_store_binary_clear(&bin);
    aspen_store_job_clear(&job);
    if (rc)
        return -1;
    if (have_elf)
        snprintf(msg, cap, "core of job %lld attempt %d (%zu KiB) written: gdb %s %s", (long long)job_id,
                 attempt, (n + 1023) / 1024, elf, file);
    else
        snprintf(msg, cap, "core of job %lld attempt %d (%zu KiB) written to %s: gdb GUEST %s",
                 (long long)job_id, attempt, (n + 1023) / 1024, file, file);
    return 0;
}

void tui_detail_add_data(tui_text *t, int64_t job_id, const aspen_store_attempt_data *d, size_t n,
                         const char *db_arg)
{
    if (!n)
        return;
    const char *dba = db_arg ? db_arg : ""; /* pasted, the command opens this database */
    /* C (tui_core_write) writes the last attempt's core only: that one says so, the others give
     * the command that writes each */
    int last = 0;
    size_t cores = 0;
    for (size_t i = 0; i < n; i++)
        if (d[i].kind == ASPEN_STORE_DATA_CORE) {
            cores++;
            if (d[i].attempt > last)
                last = d[i].attempt;
        }
    tui_text_add(t, "%s", "");
    tui_text_add(t, "%s", "Debugging");
    for (size_t i = 0; i < n; i++) {
        if (d[i].kind == ASPEN_STORE_DATA_CORE && d[i].attempt == last)
            tui_text_add(t, "  attempt %d kept an ELF core (%zu KiB): C writes it%s and shows the "
                         "gdb command (aspen core %lld --attempt %d -o FILE%s)",
                         d[i].attempt, (d[i].size + 1023) / 1024,
                         cores > 1 ? " (the last attempt's core)" : "", (long long)job_id,
                         d[i].attempt, dba);
        else if (d[i].kind == ASPEN_STORE_DATA_CORE)
            tui_text_add(t, "  attempt %d kept an ELF core (%zu KiB): C writes attempt %d's, not "
                         "this one; aspen core %lld --attempt %d -o FILE%s writes this one",
                         d[i].attempt, (d[i].size + 1023) / 1024, last, (long long)job_id,
                         d[i].attempt, dba);
        else if (d[i].kind == ASPEN_STORE_DATA_REPLAY)
            tui_text_add(t, "  attempt %d kept a replay record (%zu bytes): aspen replay %lld "
                         "--attempt %d%s runs it again (--calls lists its host calls)",
                         d[i].attempt, d[i].size, (long long)job_id, d[i].attempt, dba);
    }
}
