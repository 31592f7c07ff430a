/* tests/engine/test_build.c — build from source is contained (issue 7, item 2). Hostile sources
 * are kept here as tests: a -wrapper in guest.flags that would create a marker file, every class
 * of forbidden compiler flag, `.incbin` and `#include` of host files by absolute and relative
 * path, symlinks leaving the tree, FIFOs and oversized trees, exponential include recursion and
 * its output; and the sandbox itself driven by a hostile stand-in program (sandbox_probe): who it
 * runs as, what it sees, the system calls it is refused, and each limit (processes, CPU, memory, file size, output, wall clock),
 * failing closed when a namespace cannot be made. A normal guest with guest.flags still builds and
 * runs in a VM, and the cache answers fast. Needs root or user namespaces, and /dev/kvm.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "aspen_engine.h"
#include "sandbox.h"

#include "../../bench/compute_kernel.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <linux/capability.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TEST_TMP_PREFIX "aspen-build-test"
#include "test_support.h"

static char g_cache[400], g_marker[128];

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static char *path_in(const char *rel)
{
    static char p[8][1024];
    static int k;
    char *s = p[k++ % 8];
    snprintf(s, 1024, "%s/%s", g_dir, rel);
    return s;
}

static void mkdir_in(const char *rel) { assert_int_equal(mkdir(path_in(rel), 0755), 0); }

/* A guest whose handler returns `text` (a C string literal body). */
static void write_guest(const char *dir, const char *extra)
{
    char p[600], text[4096];
    snprintf(p, sizeof p, "%s/main.c", dir);
    snprintf(text, sizeof text,
             "#include <aspen.h>\n"
             "static int run(const uint8_t *in, size_t len, aspen_buf *out)\n"
             "{ (void)in; (void)len; return aspen_buf_appendf(out, \"ran\"); }\n"
             "ASPEN_JOB_HANDLER(run);\n%s\n",
             extra);
    write_file(p, text);
}

static void use_tree(aspen_engine_config *c)
{
    static char script[600];
    snprintf(script, sizeof script, "%s/scripts/build-guest.sh", SOURCE_DIR);
    c->build_script = script;
    c->cache_dir = g_cache;
}

static aspen_engine *open_eng(int workers)
{
    snprintf(g_cache, sizeof g_cache, "%s/cache", g_dir);
    aspen_engine_config cfg;
    aspen_engine_config_default(&cfg);
    cfg.db_path = g_db;
    cfg.workers = workers;
    cfg.guest_dir = GUEST_DIR;
    use_tree(&cfg);
    aspen_engine *eng = NULL;
    aspen_engine_error err = {0};
    int rc = aspen_engine_open(&cfg, &eng, &err);
    if (rc)
        fprintf(stderr, "open: %s\n", err.msg);
    assert_int_equal(rc, 0);
    if (workers) {
        rc = aspen_engine_start(eng, &err);
        if (rc)
            fprintf(stderr, "start: %s\n", err.msg);
        assert_int_equal(rc, 0);
    }
    return eng;
}

/* Builds `dir` through the engine's API: 0 or the error code, with the message in msg. */
static int build(aspen_engine *eng, const char *dir, char *msg, size_t cap)
{
    char path[4096];
    bool cached = false;
    aspen_engine_error err = {0};
    int rc = aspen_engine_build(eng, dir, path, sizeof path, &cached, &err);
    snprintf(msg, cap, "%s", rc ? err.msg : path);
    return rc;
}

/* Does any file under dir contain needle? */
static bool tree_contains(const char *dir, const char *needle)
{
    DIR *d = opendir(dir);
    if (!d)
        return false;
    bool found = false;
    struct dirent *e;
    while (!found && (e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char p[1024];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(p, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            found = tree_contains(p, needle);
        } else if (S_ISREG(st.st_mode)) {
            FILE *f = fopen(p, "rb");
            if (!f)
                continue;
            char *buf = malloc((size_t)st.st_size + 1);
            size_t n = fread(buf, 1, (size_t)st.st_size, f);
            buf[n] = '\0';
            found = memmem(buf, n, needle, strlen(needle)) != NULL;
            free(buf);
            fclose(f);
        }
    }
    closedir(d);
    return found;
}

static aspen_store_state wait_final(aspen_engine *eng, int64_t id, aspen_store_job *j)
{
    aspen_engine_error err = {0};
    int64_t t0 = now_ms();
    for (;;) {
        memset(j, 0, sizeof *j);
        assert_int_equal(aspen_engine_get(eng, id, j, &err), 0);
        if (j->state == ASPEN_STORE_SUCCEEDED || j->state == ASPEN_STORE_FAILED)
            return j->state;
        aspen_store_job_clear(j);
        assert_true(now_ms() - t0 < 120000);
        sleep_ms(5);
    }
}

/* The job's log lines and error, joined. */
static char *job_text(aspen_engine *eng, int64_t id, const aspen_store_job *j)
{
    aspen_store_log *logs = NULL;
    size_t n = 0;
    aspen_engine_error err = {0};
    assert_int_equal(aspen_engine_logs(eng, id, 0, 0, &logs, &n, &err), 0);
    size_t len = (j->error ? strlen(j->error) : 0) + j->result_size + 2;
    for (size_t i = 0; i < n; i++)
        len += strlen(logs[i].line) + 1;
    char *s = calloc(1, len + 1);
    if (j->error)
        strcat(s, j->error);
    strcat(s, "\n");
    if (j->result)
        memcpy(s + strlen(s), j->result, j->result_size);
    for (size_t i = 0; i < n; i++) {
        strcat(s, logs[i].line);
        strcat(s, "\n");
    }
    aspen_store_logs_free(logs, n);
    return s;
}

/* ---- guest.flags: the allow-list ---------------------------------------------------------------- */

static const char *allow_path(void)
{
    static char p[600];
    snprintf(p, sizeof p, "%s/guests/sdk/guest-flags.allow", SOURCE_DIR);
    return p;
}

static void test_flags_allowed(void **state)
{
    (void)state;
    char **f = NULL;
    size_t n = 0;
    char why[4096] = "";
    const char *text = "# a comment line\n-O2 -g\n-DFOO -DBAR=1.5 -D BAZ=x -UQUX\n"
                       "  -Wall -Wno-unused-parameter -Werror=format -Wframe-larger-than=4096\n"
                       "-std=c11 -fwrapv -fno-strict-aliasing -march=x86-64-v2 -mtune=generic -Os\n"
                       "-march=x86-64-v3 -march=x86-64\n";
    int rc = aspen_build_flags_check(allow_path(), text, &f, &n, why, sizeof why);
    if (rc)
        fprintf(stderr, "%s\n", why);
    assert_int_equal(rc, 0);
    assert_int_equal(n, 18);
    assert_string_equal(f[16], "-march=x86-64-v3"); /* AVX state is reset between jobs */
    assert_string_equal(f[4], "-DBAZ=x"); /* "-D BAZ=x" is one flag */
    aspen_build_flags_free(f, n);
    assert_int_equal(aspen_build_flags_check(allow_path(), "", &f, &n, why, sizeof why), 0);
    assert_int_equal(n, 0);
}

static void test_flags_refused(void **state)
{
    (void)state;
    /* One of each class: search paths, programs and plugins, files read or written, the assembler
     * and linker passed through, run-time support guests lack, CPUs beyond the contract. */
    static const char *const bad[] = {
        "-I/etc", "-I", "-iquote/x", "-isystem/x", "-idirafter/x", "-include/etc/passwd",
        "-imacros/etc/passwd", "-nostdinc", "--sysroot=/", "-L/x", "-lfoo", "-B/tmp",
        "-wrapper", "-specs=/tmp/x", "-fplugin=/tmp/x.so", "@/etc/passwd", "-Wl,-T,/etc/passwd",
        "-Wa,-adhln=/tmp/x", "-Wp,-MD,/tmp/x", "-Xassembler", "-Xlinker", "-Xpreprocessor",
        "-save-temps", "-fdump-tree-all", "-fstack-usage", "-fprofile-generate",
        "-fsanitize=address", "-fstack-protector-all", "-fpic", "-flto", "-pg", "-o",
        "-x", "-E", "-march=native", "-march=x86-64-v4", "-march=skylake-avx512", "-mavx2", "-DX=$(id)", "-DX=\"a\"",
        "-DX=a,b", "--param=x=1", "-Ofoo", "-std=gnu17/../x", "-Wl", "-Wa", "-MF", "-MD",
        "-fdiagnostics-format=json", "-frecord-gcc-switches", "-v", "-###", "--help",
        "-dumpdir", "-fmax-errors=100000", "-gsplit-dwarf", "-fcallgraph-info",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[256], why[4096] = "";
        snprintf(text, sizeof text, "-O2\n%s\n", bad[i]);
        char **f = NULL;
        size_t n = 0;
        int rc = aspen_build_flags_check(allow_path(), text, &f, &n, why, sizeof why);
        if (rc == 0)
            fprintf(stderr, "allowed, but must not be: %s\n", bad[i]);
        assert_int_equal(rc, -1);
        char quoted[200];
        snprintf(quoted, sizeof quoted, "'%s'", bad[i]);
        if (!strstr(why, quoted))
            fprintf(stderr, "%s: %s\n", bad[i], why);
        assert_non_null(strstr(why, quoted));
        /* the flag, why in a few words, and where the allow-list and its explanation are; not
         * the whole list on one line */
        snprintf(quoted, sizeof quoted, "guest.flags: the compiler flag '%s' is not allowed: ",
                 bad[i]);
        assert_non_null(strstr(why, quoted));
        assert_non_null(strstr(why, "(allowed: guests/sdk/guest-flags.allow; see "
                                    "docs/OPERATING.md, \"What a submitter can and cannot do\")"));
        assert_null(strstr(why, "-O0, -O1"));
        if (strlen(why) > 240)
            fail_msg("too long (%zu): %s", strlen(why), why);
        if (strncmp(bad[i], "-march=", 7) == 0)
            assert_non_null(strstr(why, "stops at -march=x86-64-v3"));
        if (strcmp(bad[i], "-wrapper") == 0 || strcmp(bad[i], "@/etc/passwd") == 0 ||
            strcmp(bad[i], "-I/etc") == 0)
            assert_non_null(strstr(why, "it names a host file, directory or program"));
        if (strcmp(bad[i], "-Wl,-T,/etc/passwd") == 0)
            assert_non_null(strstr(why, "it passes options to the assembler"));
        if (strcmp(bad[i], "-fsanitize=address") == 0)
            assert_non_null(strstr(why, "it needs run-time support guests do not have"));
        assert_null(f);
    }
    /* a control character is refused without being echoed */
    char why[4096] = "";
    char **f = NULL;
    size_t n = 0;
    assert_int_equal(aspen_build_flags_check(allow_path(), "-O2\x1b[31m", &f, &n, why, sizeof why),
                     -1);
    assert_non_null(strstr(why, "control or non-ASCII"));
    assert_null(strchr(why, '\x1b'));
}

/* scripts/build-guest.sh reads the same allow-list: a developer's guest.flags with -wrapper is
 * refused before gcc runs. */
static void test_script_uses_the_allow_list(void **state)
{
    (void)state;
    mkdir_in("g");
    write_guest(path_in("g"), "");
    char flags[600], cmd[2048];
    snprintf(flags, sizeof flags, "-O2\n-wrapper /bin/sh,-c,touch${IFS}%s\n", path_in("pwned"));
    write_file(path_in("g/guest.flags"), flags);
    snprintf(cmd, sizeof cmd, "ASPEN_GUEST_BUILD_DIR=%s bash %s/scripts/build-guest.sh -q %s -o %s > %s 2>&1",
             path_in("gb"), SOURCE_DIR, path_in("g"), path_in("out"), path_in("log"));
    int st = system(cmd);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) != 0);
    assert_int_equal(access(path_in("pwned"), F_OK), -1);
    assert_int_equal(access(path_in("out"), F_OK), -1);
    /* the script's words are the engine's */
    char engine_why[4096] = "";
    char **ef = NULL;
    size_t en = 0;
    assert_int_equal(aspen_build_flags_check(allow_path(), "-wrapper", &ef, &en, engine_why,
                                             sizeof engine_why),
                     -1);
    char line[4200];
    snprintf(line, sizeof line, "build-guest: error: %s", engine_why);
    assert_true(tree_contains(g_dir, line));
    /* -march=x86-64-v4 likewise */
    write_file(path_in("g/guest.flags"), "-march=x86-64-v4\n");
    st = system(cmd);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) != 0);
    assert_int_equal(aspen_build_flags_check(allow_path(), "-march=x86-64-v4", &ef, &en,
                                             engine_why, sizeof engine_why),
                     -1);
    snprintf(line, sizeof line, "build-guest: error: %s", engine_why);
    assert_true(tree_contains(g_dir, line));
    /* and the allowed flags build */
    write_file(path_in("g/guest.flags"), "# fast\n-O2 -D MODE=1 -march=x86-64-v3\n");
    st = system(cmd);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    assert_int_equal(access(path_in("out"), F_OK), 0);
}

/* ---- hostile sources through the engine --------------------------------------------------------- */

/* The job of the brief: -wrapper in guest.flags would run `touch MARKER` as root. The submit
 * refuses it at once (issue 11: the submitter hears it then, nothing is stored), and the build
 * refuses it again (the tree is read again there; a build need not come from a submit). */
static void test_wrapper_never_runs(void **state)
{
    (void)state;
    aspen_engine *eng = open_eng(1);
    mkdir_in("w");
    write_guest(path_in("w"), "");
    char flags[600];
    snprintf(flags, sizeof flags, "-O2\n-wrapper /usr/bin/touch,%s\n", path_in("pwned"));
    write_file(path_in("w/guest.flags"), flags);
    aspen_engine_job_spec s = {.source_dir = path_in("w"), .payload = "{}"};
    int64_t id = 0;
    aspen_engine_error err = {0};
    assert_int_equal(aspen_engine_submit(eng, &s, &id, &err), ASPEN_ENGINE_EBINARY);
    assert_non_null(strstr(err.msg, path_in("w")));
    assert_non_null(strstr(err.msg, "'-wrapper' is not allowed"));
    assert_non_null(strstr(err.msg, "it names a host file, directory or program"));
    assert_non_null(strstr(err.msg, "guests/sdk/guest-flags.allow"));
    char msg[8192];
    assert_int_equal(build(eng, path_in("w"), msg, sizeof msg), ASPEN_ENGINE_EBUILD);
    assert_non_null(strstr(msg, "'-wrapper' is not allowed"));
    assert_int_equal(access(path_in("pwned"), F_OK), -1);
    /* a response file names a host file: refused the same way */
    write_file(path_in("w/guest.flags"), "@/etc/passwd\n");
    assert_int_equal(aspen_engine_submit(eng, &s, &id, &err), ASPEN_ENGINE_EBINARY);
    assert_non_null(strstr(err.msg, "'@/etc/passwd' is not allowed"));
    assert_int_equal(build(eng, path_in("w"), msg, sizeof msg), ASPEN_ENGINE_EBUILD);
    assert_non_null(strstr(msg, "'@/etc/passwd' is not allowed"));
    /* allowed flags are submitted, and the job runs */
    write_file(path_in("w/guest.flags"), "-O2\n");
    assert_int_equal(aspen_engine_submit(eng, &s, &id, &err), 0);
    aspen_store_job j;
    assert_int_equal(wait_final(eng, id, &j), ASPEN_STORE_SUCCEEDED);
    aspen_store_job_clear(&j);
    aspen_engine_close(eng);
}

/* .incbin and #include of host files, absolute and relative, and a marker file just outside the
 * tree: every build fails (the files do not exist in the sandbox) and the marker appears nowhere —
 * not in the job's error, its log, its result, the build cache or the store. */
static void test_host_files_invisible(void **state)
{
    (void)state;
    snprintf(g_marker, sizeof g_marker, "ASPEN-SECRET-MARKER-%d-%lld", (int)getpid(),
             (long long)now_ms());
    write_file(path_in("secret"), g_marker); /* just outside every tree below */
    write_file(path_in("outside.txt"), g_marker);
    mkdir_in("t");
    char extra[1200];
    const char *cases[][2] = {
        {"incbin_passwd", "__asm__(\".section .rodata\\n.incbin \\\"/etc/passwd\\\"\\n.previous\");"},
        {"include_hostname", "#include \"/etc/hostname\""},
        {"include_up", "#include \"../../secret\""},
        {"incbin_marker", NULL},
        {"include_marker_sys", NULL},
    };
    aspen_engine *eng = open_eng(1);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char dir[600];
        snprintf(dir, sizeof dir, "t/%s", cases[i][0]);
        mkdir_in(dir);
        const char *x = cases[i][1];
        if (!strcmp(cases[i][0], "incbin_marker")) {
            snprintf(extra, sizeof extra,
                     "__asm__(\".section .rodata\\n.globl leak\\nleak: .incbin \\\"%s\\\"\\n"
                     ".previous\");",
                     path_in("outside.txt"));
            x = extra;
        } else if (!strcmp(cases[i][0], "include_marker_sys")) {
            snprintf(extra, sizeof extra, "#include <%s>", path_in("outside.txt"));
            x = extra;
        }
        write_guest(path_in(dir), x);
        aspen_engine_job_spec s = {.source_dir = path_in(dir), .payload = "{}"};
        int64_t id = 0;
        aspen_engine_error err = {0};
        assert_int_equal(aspen_engine_submit(eng, &s, &id, &err), 0);
        aspen_store_job j;
        aspen_store_state st = wait_final(eng, id, &j);
        char *all = job_text(eng, id, &j);
        if (st != ASPEN_STORE_FAILED)
            fprintf(stderr, "%s: %s\n", cases[i][0], all);
        assert_int_equal(st, ASPEN_STORE_FAILED);
        assert_non_null(strstr(all, "No such file") ? strstr(all, "No such file")
                                                    : strstr(all, "file not found"));
        assert_null(strstr(all, g_marker));
        assert_null(strstr(all, "root:x:0:0")); /* /etc/passwd's first line */
        free(all);
        aspen_store_job_clear(&j);
    }
    /* A build that succeeds cannot see the file either: __has_include is false in the sandbox. */
    mkdir_in("t/probe");
    snprintf(extra, sizeof extra,
             "#if __has_include(\"%s\") || __has_include(\"/etc/passwd\") || "
             "__has_include(\"../secret\")\n#error host files are visible\n#endif\n",
             path_in("outside.txt"));
    write_guest(path_in("t/probe"), extra);
    aspen_engine_job_spec s = {.source_dir = path_in("t/probe"), .payload = "{}"};
    int64_t id = 0;
    aspen_engine_error err = {0};
    assert_int_equal(aspen_engine_submit(eng, &s, &id, &err), 0);
    aspen_store_job j;
    aspen_store_state st = wait_final(eng, id, &j);
    char *all = job_text(eng, id, &j);
    if (st != ASPEN_STORE_SUCCEEDED)
        fprintf(stderr, "probe: %s\n", all);
    assert_int_equal(st, ASPEN_STORE_SUCCEEDED);
    free(all);
    aspen_store_job_clear(&j);
    aspen_engine_close(eng);
    /* nothing of the marker in the cache (binaries, logs) or the database (stored binaries) */
    assert_false(tree_contains(g_cache, g_marker));
    write_file(path_in("secret"), "");
    write_file(path_in("outside.txt"), "");
    assert_false(tree_contains(g_dir, g_marker));
}

static void test_symlinks_and_special_files(void **state)
{
    (void)state;
    aspen_engine *eng = open_eng(0);
    char msg[8192];
    write_file(path_in("secret"), "outside");
    /* absolute, and relative climbing out */
    mkdir_in("l1");
    write_guest(path_in("l1"), "#include \"pw.h\"");
    assert_int_equal(symlink("/etc/passwd", path_in("l1/pw.h")), 0);
    assert_int_equal(build(eng, path_in("l1"), msg, sizeof msg), ASPEN_ENGINE_EBUILD);
    assert_non_null(strstr(msg, "pw.h is a symlink to /etc/passwd, outside the source directory"));
    mkdir_in("l2");
    mkdir_in("l2/inc");
    write_guest(path_in("l2"), "#include \"inc/s.h\"");
    assert_int_equal(symlink("../../secret", path_in("l2/inc/s.h")), 0);
    assert_int_equal(build(eng, path_in("l2"), msg, sizeof msg), ASPEN_ENGINE_EBUILD);
    assert_non_null(strstr(msg, "inc/s.h is a symlink to ../../secret, outside"));
    /* a symlink that stays inside is copied as a link and builds */
    mkdir_in("l3");
    mkdir_in("l3/inc");
    write_guest(path_in("l3"), "#include \"inc/alias.h\"\nstatic const int from_real = REAL;");
    write_file(path_in("l3/inc/real.h"), "#define REAL 1\n");
    assert_int_equal(symlink("./../inc/real.h", path_in("l3/inc/alias.h")), 0);
    int rc = build(eng, path_in("l3"), msg, sizeof msg);
    if (rc)
        fprintf(stderr, "%s\n", msg);
    assert_int_equal(rc, 0);
    /* a FIFO is refused at once (reading it would hang the worker) */
    mkdir_in("f");
    write_guest(path_in("f"), "");
    assert_int_equal(mkfifo(path_in("f/pipe.h"), 0644), 0);
    /* a hang guard, not a speed check: reading the FIFO would block until the test's timeout */
    int64_t t0 = now_ms();
    assert_int_equal(build(eng, path_in("f"), msg, sizeof msg), ASPEN_ENGINE_EBUILD);
    assert_true(now_ms() - t0 < 60000);
    assert_non_null(strstr(msg, "pipe.h is a FIFO"));
    aspen_engine_close(eng);
}

static void test_tree_caps(void **state)
{
    (void)state;
    aspen_engine *eng = open_eng(0);
    char msg[8192];
    /* one file over 8 MiB */
    mkdir_in("big");
    write_guest(path_in("big"), "");
    int fd = open(path_in("big/blob.bin"), O_WRONLY | O_CREAT, 0644);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, (9 << 20)), 0);
    close(fd);
    assert_int_equal(build(eng, path_in("big"), msg, sizeof msg), ASPEN_ENGINE_EBUILD);
    assert_non_null(strstr(msg, "blob.bin is larger than 8 MiB"));
    /* more than 64 MiB in all */
    mkdir_in("total");
    write_guest(path_in("total"), "");
    for (int i = 0; i < 9; i++) {
        char p[64];
        snprintf(p, sizeof p, "total/part%d.bin", i);
        fd = open(path_in(p), O_WRONLY | O_CREAT, 0644);
        assert_true(fd >= 0);
        assert_int_equal(ftruncate(fd, (8 << 20)), 0);
        close(fd);
    }
    assert_int_equal(build(eng, path_in("total"), msg, sizeof msg), ASPEN_ENGINE_EBUILD);
    assert_non_null(strstr(msg, "larger than 64 MiB in all"));
    /* too many files */
    mkdir_in("many");
    write_guest(path_in("many"), "");
    for (int i = 0; i < 2001; i++) {
        char p[64];
        snprintf(p, sizeof p, "many/f%04d.h", i);
        write_file(path_in(p), "");
    }
    assert_int_equal(build(eng, path_in("many"), msg, sizeof msg), ASPEN_ENGINE_EBUILD);
    assert_non_null(strstr(msg, "more than 2000 files"));
    /* too deep */
    char rel[600] = "deep";
    mkdir_in(rel);
    write_guest(path_in(rel), "");
    for (int i = 0; i < 18; i++) {
        strcat(rel, "/d");
        mkdir_in(rel);
    }
    assert_int_equal(build(eng, path_in("deep"), msg, sizeof msg), ASPEN_ENGINE_EBUILD);
    assert_non_null(strstr(msg, "deeper than 16 directories"));
    aspen_engine_close(eng);
}

/* Include bombs. A header that includes itself without end meets gcc's own depth limit (200) at
 * once. One that includes itself twice while __INCLUDE_LEVEL__ < 40 asks for 2^40 inclusions: the
 * CPU limit stops it. With a #warning at each, the output limit stops it first. Each with a
 * sentence saying which limit. */
static void test_include_bombs(void **state)
{
    (void)state;
    aspen_sandbox_limits saved = aspen_sandbox_build_limits;
    aspen_engine *eng = open_eng(0);
    char msg[8192];
    mkdir_in("ok"); /* the SDK is built with the normal limits first */
    write_guest(path_in("ok"), "");
    assert_int_equal(build(eng, path_in("ok"), msg, sizeof msg), 0);
    aspen_sandbox_build_limits.cpu_seconds = 2;
    aspen_sandbox_build_limits.wall_ms = 120000; /* only the CPU limit may end the bomb */

    mkdir_in("deep");
    write_guest(path_in("deep"), "#include \"self.h\"");
    write_file(path_in("deep/self.h"), "#include \"self.h\"\n");
    assert_int_equal(build(eng, path_in("deep"), msg, sizeof msg), ASPEN_ENGINE_EBUILD);
    assert_non_null(strstr(msg, "#include nested depth 200 exceeds maximum"));

    mkdir_in("rec");
    write_guest(path_in("rec"), "#include \"self.h\"");
    write_file(path_in("rec/self.h"),
               "#if __INCLUDE_LEVEL__ < 40\n#include \"self.h\"\n#include \"self.h\"\n#endif\n");
    int64_t t0 = now_ms();
    assert_int_equal(build(eng, path_in("rec"), msg, sizeof msg), ASPEN_ENGINE_EBUILD);
    int64_t took = now_ms() - t0;
    fprintf(stderr, "include recursion stopped after %lld ms: %.400s\n", (long long)took, msg);
    assert_true(took < 120000);
    assert_non_null(strstr(msg, "it used more than 2 s of CPU time (the build's CPU limit)"));

    aspen_sandbox_build_limits.cpu_seconds = 60;
    mkdir_in("loud");
    write_guest(path_in("loud"), "#include \"loud.h\"");
    write_file(path_in("loud/loud.h"),
               "#if __INCLUDE_LEVEL__ < 40\n#warning AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n"
               "#include \"loud.h\"\n#include \"loud.h\"\n#endif\n");
    t0 = now_ms();
    assert_int_equal(build(eng, path_in("loud"), msg, sizeof msg), ASPEN_ENGINE_EBUILD);
    took = now_ms() - t0;
    fprintf(stderr, "output flood stopped after %lld ms: %.200s\n", (long long)took, msg);
    assert_true(took < 120000); /* the output limit, long before the wall clock */
    assert_non_null(strstr(msg, "printed more than 1048576 bytes"));
    assert_true(strlen(msg) < 4096);
    aspen_engine_close(eng);
    aspen_sandbox_build_limits = saved;
}

/* ---- a normal guest ----------------------------------------------------------------------------- */

static void copy_with(const char *from, const char *to, const char *old, const char *new_text)
{
    FILE *f = fopen(from, "r");
    assert_non_null(f);
    char buf[65536];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    FILE *o = fopen(to, "w");
    assert_non_null(o);
    char *p = old ? strstr(buf, old) : NULL;
    if (p) {
        fwrite(buf, 1, (size_t)(p - buf), o);
        fputs(new_text, o);
        fputs(p + strlen(old), o);
    } else {
        fputs(buf, o);
    }
    fclose(o);
}

/* tests/vm/guests/compute with its guest.flags (-O2), its two headers copied in (its own tree
 * reaches ../../../../bench/, which a submitted tree cannot): it builds in the sandbox, runs in a
 * VM and answers what the same kernel computes natively; the second lookup is a cache hit. */
static void test_normal_guest_builds_and_runs(void **state)
{
    (void)state;
    mkdir_in("compute");
    char from[600];
    snprintf(from, sizeof from, "%s/tests/vm/guests/compute/main.c", SOURCE_DIR);
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.1", path_in("compute/main.c"));
    copy_with(from, tmp, "../../../../bench/compute_kernel.h", "compute_kernel.h");
    copy_with(tmp, path_in("compute/main.c"), "../test_guest.h", "test_guest.h");
    unlink(tmp);
    snprintf(from, sizeof from, "%s/bench/compute_kernel.h", SOURCE_DIR);
    copy_with(from, path_in("compute/compute_kernel.h"), NULL, NULL);
    snprintf(from, sizeof from, "%s/tests/vm/guests/test_guest.h", SOURCE_DIR);
    copy_with(from, path_in("compute/test_guest.h"), NULL, NULL);
    snprintf(from, sizeof from, "%s/tests/vm/guests/compute/guest.flags", SOURCE_DIR);
    copy_with(from, path_in("compute/guest.flags"), NULL, NULL);

    aspen_engine *eng = open_eng(1);
    aspen_engine_job_spec s = {.source_dir = path_in("compute"), .payload = "1000"};
    int64_t id = 0;
    aspen_engine_error err = {0};
    assert_int_equal(aspen_engine_submit(eng, &s, &id, &err), 0);
    aspen_store_job j;
    aspen_store_state st = wait_final(eng, id, &j);
    char *all = job_text(eng, id, &j);
    if (st != ASPEN_STORE_SUCCEEDED)
        fprintf(stderr, "compute: %s\n", all);
    assert_int_equal(st, ASPEN_STORE_SUCCEEDED);
    char want[64];
    snprintf(want, sizeof want, "%llu", (unsigned long long)aspen_compute_kernel(1000));
    assert_int_equal(j.result_size, strlen(want));
    assert_memory_equal(j.result, want, strlen(want));
    free(all);
    aspen_store_job_clear(&j);

    /* cached: no compiler run (the build counter stays at 1); the time is printed, not asserted */
    char path[4096];
    bool cached = false;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    assert_int_equal(aspen_engine_build(eng, path_in("compute"), path, sizeof path, &cached, &err),
                     0);
    clock_gettime(CLOCK_MONOTONIC, &b);
    double ms = (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
    fprintf(stderr, "cached build lookup: %.3f ms\n", ms);
    assert_true(cached);
    aspen_engine_snapshot *snap = calloc(1, sizeof *snap);
    assert_int_equal(aspen_engine_snapshot_get(eng, snap, &err), 0);
    assert_int_equal(snap->throughput.builds, 1);
    assert_true(snap->throughput.build_cache_hits >= 1);
    free(snap);

    /* a broken source: the job fails once, with the compiler's message */
    write_file(path_in("compute/main.c"), "#include <aspen.h>\nint f(void) {\n  return 0\n}\n");
    assert_int_equal(aspen_engine_submit(eng, &s, &id, &err), 0);
    assert_int_equal(wait_final(eng, id, &j), ASPEN_STORE_FAILED);
    assert_int_equal(j.attempts, 1);
    assert_non_null(strstr(j.error, "expected ';'"));
    aspen_store_job_clear(&j);
    aspen_engine_close(eng);
}

/* A job runs what its source directory held at submit (issue 11's new-user trial): files added,
 * a guest.flags removed after the submit fail the job with what happened instead of being built
 * in; a directory put back as it was builds again. A failed build's error keeps the compiler's
 * first (fatal) line however long the log; replaying that attempt says it never ran in a VM. A
 * Rust guest is refused at submit with why and what to do. */
static void test_source_pinned_at_submit(void **state)
{
    (void)state;
    mkdir_in("pinned");
    write_guest(path_in("pinned"), "");
    write_file(path_in("pinned/guest.flags"), "-O2\n");
    aspen_engine *eng = open_eng(0); /* no workers yet: the jobs wait while the tree changes */
    aspen_engine_job_spec s = {.source_dir = path_in("pinned"), .payload = "1"};
    int64_t added = 0, removed = 0, same = 0;
    aspen_engine_error err = {0};
    assert_int_equal(aspen_engine_submit(eng, &s, &added, &err), 0);
    aspen_store_job j;
    assert_int_equal(aspen_engine_get(eng, added, &j, &err), 0);
    assert_non_null(strstr(j.source_dir, "#sha256=")); /* pinned */
    aspen_store_job_clear(&j);
    write_file(path_in("pinned/extra.c"), "int extra_symbol = 1;\n");
    assert_int_equal(aspen_engine_submit(eng, &s, &removed, &err), 0);
    unlink(path_in("pinned/guest.flags"));
    assert_int_equal(aspen_engine_submit(eng, &s, &same, &err), 0);
    aspen_engine_close(eng);

    eng = open_eng(1);
    assert_int_equal(wait_final(eng, added, &j), ASPEN_STORE_FAILED);
    assert_non_null(strstr(j.error, "the source changed since it was submitted"));
    assert_non_null(strstr(j.error, "a job runs what was there at submit"));
    assert_int_equal(j.attempts, 1); /* not retried: it would fail the same way */
    aspen_store_job_clear(&j);
    assert_int_equal(wait_final(eng, removed, &j), ASPEN_STORE_FAILED);
    assert_non_null(strstr(j.error, "the source changed since it was submitted"));
    aspen_store_job_clear(&j);
    assert_int_equal(wait_final(eng, same, &j), ASPEN_STORE_SUCCEEDED);
    assert_memory_equal(j.result, "ran", 3);
    aspen_store_job_clear(&j);
    /* the first job's tree put back (guest.flags again, extra.c away): it builds */
    write_file(path_in("pinned/guest.flags"), "-O2\n");
    unlink(path_in("pinned/extra.c"));
    aspen_engine_job_spec again = {.source_dir = path_in("pinned"), .payload = "1"};
    int64_t back = 0;
    assert_int_equal(aspen_engine_submit(eng, &again, &back, &err), 0);
    assert_int_equal(wait_final(eng, back, &j), ASPEN_STORE_SUCCEEDED);
    aspen_store_job_clear(&j);

    /* a fatal error first, then more output than the error keeps: the fatal line stays */
    mkdir_in("evil");
    char text[8192];
    int n = snprintf(text, sizeof text, "#include \"/etc/nothing-here.h\"\n");
    write_file(path_in("evil/evil.c"), text);
    mkdir_in("noisy");
    n = snprintf(text, sizeof text, "#include <aspen.h>\nint f(void) { return undeclared_thing; }\n");
    for (int i = 0; i < 60 && n < (int)sizeof text - 200; i++)
        n += snprintf(text + n, sizeof text - (size_t)n, "int g%d(int x) { return x +; }\n", i);
    write_file(path_in("noisy/noisy.c"), text);
    int64_t evil = 0, noisy = 0;
    aspen_engine_job_spec se = {.source_dir = path_in("evil"), .payload = "1"};
    aspen_engine_job_spec sn = {.source_dir = path_in("noisy"), .payload = "1"};
    assert_int_equal(aspen_engine_submit(eng, &se, &evil, &err), 0);
    assert_int_equal(aspen_engine_submit(eng, &sn, &noisy, &err), 0);
    assert_int_equal(wait_final(eng, evil, &j), ASPEN_STORE_FAILED);
    assert_non_null(strstr(j.error, "/src/evil.c:1:10: fatal error:"));
    aspen_store_job_clear(&j);
    assert_int_equal(wait_final(eng, noisy, &j), ASPEN_STORE_FAILED);
    if (!strstr(j.error, "'undeclared_thing' undeclared"))
        fail_msg("the first error is not in the job's error:\n%s", j.error);
    assert_non_null(strstr(j.error, "left out: aspen logs has the whole build log"));
    assert_true(strlen(j.error) < sizeof err.msg);
    aspen_store_job_clear(&j);

    /* replay of an attempt whose build failed: it never ran in a VM */
    aspen_engine_replay_report rep;
    assert_int_not_equal(aspen_engine_replay(eng, evil, NULL, &rep, &err), 0);
    if (!strstr(err.msg, "never ran in a micro-VM (its guest's build from source failed)"))
        fail_msg("replay said: %s", err.msg);
    assert_null(strstr(err.msg, "recorded host calls"));

    /* Rust: refused at submit, nothing stored */
    mkdir_in("rusty");
    write_file(path_in("rusty/Cargo.toml"), "[package]\nname = \"rusty\"\n");
    aspen_engine_job_spec sr = {.source_dir = path_in("rusty"), .payload = "1"};
    int64_t rid = 0;
    assert_int_not_equal(aspen_engine_submit(eng, &sr, &rid, &err), 0);
    assert_non_null(strstr(err.msg, "holds a Rust guest"));
    assert_non_null(strstr(err.msg, "scripts/build-guest.sh"));
    aspen_engine_close(eng);
}

/* ---- the sandbox itself, with a hostile program ------------------------------------------------- */

#define IN_PROBE "/probe"

static int probe(const char *const *args, aspen_sandbox_limits lim, aspen_sandbox_result *res,
                 bool with_out)
{
    static const char *const envp[] = {"PATH=/", NULL};
    aspen_sandbox_binds b = {0};
    char why[512];
    if (aspen_sandbox_add_program(&b, PROBE, why, sizeof why) != 0) {
        fprintf(stderr, "%s\n", why);
        fail();
    }
    mkdir(path_in("root"), 0700);
    if (with_out) {
        mkdir(path_in("out"), 0700);
        if (geteuid() == 0)
            assert_int_equal(chown(path_in("out"), ASPEN_SANDBOX_UID, ASPEN_SANDBOX_GID), 0);
        assert_int_equal(aspen_sandbox_bind_add(&b, path_in("out"), "/out", true), 0);
    }
    const char *argv[8] = {PROBE};
    for (int i = 0; args[i] && i < 6; i++)
        argv[i + 1] = args[i];
    aspen_sandbox_spec spec = {.argv = argv,
                               .envp = envp,
                               .cwd = "/",
                               .binds = &b,
                               .scratch_dir = path_in("root"),
                               .limits = lim};
    int rc = aspen_sandbox_run(&spec, res);
    aspen_sandbox_binds_free(&b);
    return rc;
}

static aspen_sandbox_limits test_limits(void)
{
    aspen_sandbox_limits l = aspen_sandbox_build_limits;
    l.cpu_seconds = 2;
    l.wall_ms = 4000;
    l.memory_bytes = 256u << 20;
    l.file_bytes = 4u << 20;
    l.processes = 32;
    return l;
}

/* Processes of the sandbox's uid anywhere on the machine (none may outlive a run). */
/* Processes of uid that run the probe (the first one's pid into first, when given): other test
 * programs may be running sandboxed builds (gcc, as, ld) under the same uid at the same time, and
 * those are neither this test's sandbox nor its leftovers. */
static int probe_procs(unsigned uid, char *first, size_t first_cap)
{
    DIR *d = opendir("/proc");
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        char p[300];
        snprintf(p, sizeof p, "/proc/%s", e->d_name);
        struct stat st;
        if (stat(p, &st) != 0 || st.st_uid != uid)
            continue;
        char comm_path[320], comm[64] = "";
        snprintf(comm_path, sizeof comm_path, "%s/comm", p);
        FILE *f = fopen(comm_path, "r");
        if (f) {
            if (!fgets(comm, sizeof comm, f))
                comm[0] = '\0';
            fclose(f);
        }
        if (strncmp(comm, "sandbox_probe", 13) != 0)
            continue;
        if (n++ == 0 && first)
            snprintf(first, first_cap, "%s", e->d_name);
    }
    if (d)
        closedir(d);
    return n;
}

static void test_sandbox_identity(void **state)
{
    (void)state;
    aspen_sandbox_result r;
    const char *id[] = {"id", NULL};
    assert_int_equal(probe(id, test_limits(), &r, false), 0);
    fprintf(stderr, "probe: %s", r.output);
    assert_int_equal(r.end, ASPEN_SB_EXITED);
    assert_int_equal(r.code, 0);
    char want[128];
    if (geteuid() == 0) {
        snprintf(want, sizeof want, "uid=%u euid=%u gid=%u ", ASPEN_SANDBOX_UID, ASPEN_SANDBOX_UID,
                 ASPEN_SANDBOX_GID);
        assert_non_null(strstr(r.output, want));
    }
    assert_non_null(strstr(r.output, "capeff=0,0 capprm=0,0"));
    assert_non_null(strstr(r.output, "pid=2 "));     /* its own PID namespace, under init */
    assert_non_null(strstr(r.output, "host=aspen-build"));
    assert_null(strstr(r.output, "connect=ok"));     /* no sockets (seccomp), no network */
    free(r.output);

    /* the root holds only what was bound: the probe, its libraries, /tmp */
    const char *ls[] = {"ls", "/", NULL};
    assert_int_equal(probe(ls, test_limits(), &r, false), 0);
    assert_null(strstr(r.output, "etc"));
    assert_null(strstr(r.output, "proc"));
    assert_null(strstr(r.output, "root"));
    assert_non_null(strstr(r.output, "tmp"));
    free(r.output);
    const char *rd[] = {"read", "/etc/passwd", NULL};
    assert_int_equal(probe(rd, test_limits(), &r, false), 0);
    assert_non_null(strstr(r.output, "No such file"));
    free(r.output);
    const char *wr[] = {"write", "/x", NULL};
    assert_int_equal(probe(wr, test_limits(), &r, false), 0);
    assert_non_null(strstr(r.output, "Read-only file system"));
    free(r.output);
    /* the seccomp filter: no sockets, namespaces, ptrace, BPF or io_uring */
    const char *sc[] = {"syscalls", NULL};
    assert_int_equal(probe(sc, test_limits(), &r, false), 0);
    fprintf(stderr, "%s", r.output);
    assert_non_null(strstr(r.output, "socket: Operation not permitted"));
    assert_non_null(strstr(r.output, "unshare: Operation not permitted"));
    assert_non_null(strstr(r.output, "ptrace: Operation not permitted"));
    assert_non_null(strstr(r.output, "bpf: Operation not permitted"));
    assert_non_null(strstr(r.output, "io_uring_setup: Operation not permitted"));
    free(r.output);
    const char *wl[] = {"write", "/lib/x86_64-linux-gnu/evil", NULL};
    assert_int_equal(probe(wl, test_limits(), &r, false), 0);
    assert_non_null(strstr(r.output, "write /lib/x86_64-linux-gnu/evil: "));
    free(r.output);
}

struct sleeper {
    aspen_sandbox_result r;
    int rc;
};

static void *run_sleeper(void *arg)
{
    struct sleeper *s = arg;
    const char *sl[] = {"sleep", NULL};
    aspen_sandbox_limits l = test_limits();
    l.wall_ms = 3000;
    s->rc = probe(sl, l, &s->r, false);
    return NULL;
}

/* Seen from outside, the program is in namespaces of its own: mount, network, PID, IPC, UTS and
 * cgroup (inside, seccomp stops it before it could look at the network). */
static void test_sandbox_namespaces(void **state)
{
    (void)state;
    if (geteuid() != 0) /* the uid is the worker's own then: test_sandbox_unprivileged */
        return;
    mkdir(path_in("root"), 0700);
    struct sleeper s = {0};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, run_sleeper, &s), 0);
    char found[300] = "";
    for (int i = 0; i < 250 && !found[0]; i++, sleep_ms(10))
        probe_procs(ASPEN_SANDBOX_UID, found, sizeof found);
    assert_true(found[0]);
    static const char *const ns[] = {"mnt", "net", "pid", "ipc", "uts", "cgroup"};
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
        char p[400], mine[128] = "", theirs[128] = "";
        snprintf(p, sizeof p, "/proc/self/ns/%s", ns[i]);
        assert_true(readlink(p, mine, sizeof mine - 1) > 0);
        snprintf(p, sizeof p, "/proc/%s/ns/%s", found, ns[i]);
        assert_true(readlink(p, theirs, sizeof theirs - 1) > 0);
        fprintf(stderr, "%s: test %s, sandbox %s\n", ns[i], mine, theirs);
        assert_string_not_equal(mine, theirs);
    }
    pthread_join(t, NULL);
    assert_int_equal(s.rc, 0);
    assert_int_equal(s.r.end, ASPEN_SB_TIMEOUT);
    free(s.r.output);
}

static void test_sandbox_limits(void **state)
{
    (void)state;
    aspen_sandbox_result r;
    /* fork bomb: processes capped, everything killed at the wall clock, nothing left behind */
    const char *fb[] = {"forkbomb", NULL};
    int64_t t0 = now_ms();
    assert_int_equal(probe(fb, test_limits(), &r, false), 0);
    fprintf(stderr, "fork bomb: %s after %lld ms: %s", r.why, (long long)(now_ms() - t0),
            r.output);
    assert_int_equal(r.end, ASPEN_SB_TIMEOUT);
    assert_non_null(strstr(r.why, "wall-clock limit"));
    assert_non_null(strstr(r.output, "fork failed after"));
    free(r.output);
    if (geteuid() == 0) {
        int left = -1;
        for (int i = 0; i < 200 && left != 0; i++, sleep_ms(10))
            left = probe_procs(ASPEN_SANDBOX_UID, NULL, 0);
        assert_int_equal(left, 0);
    }
    /* CPU: the wall clock is far away, so only the CPU limit can end it (on a loaded machine 2 s
     * of CPU may take several seconds of wall time) */
    const char *spin[] = {"spin", NULL};
    aspen_sandbox_limits lc = test_limits();
    lc.wall_ms = 120000;
    assert_int_equal(probe(spin, lc, &r, false), 0);
    fprintf(stderr, "spin: %s (%.0f ms)\n", r.why, r.ms);
    assert_int_equal(r.end, ASPEN_SB_SIGNALED);
    assert_int_equal(r.code, SIGXCPU);
    assert_non_null(strstr(r.why, "CPU time limit exceeded"));
    free(r.output);
    /* memory */
    const char *al[] = {"alloc", NULL};
    assert_int_equal(probe(al, test_limits(), &r, false), 0);
    assert_int_equal(r.end, ASPEN_SB_EXITED);
    assert_int_equal(r.code, 3);
    assert_non_null(strstr(r.output, "malloc failed"));
    free(r.output);
    /* file size */
    const char *bf[] = {"bigfile", "/out/big", NULL};
    assert_int_equal(probe(bf, test_limits(), &r, true), 0);
    assert_int_equal(r.code, 4);
    assert_non_null(strstr(r.output, "write failed after 4 MiB: File too large"));
    free(r.output);
    /* /tmp is small too */
    aspen_sandbox_limits l = test_limits();
    l.file_bytes = 1u << 30;
    l.tmp_bytes = 2u << 20;
    const char *bt[] = {"bigfile", "/tmp/big", NULL};
    assert_int_equal(probe(bt, l, &r, false), 0);
    assert_non_null(strstr(r.output, "No space left"));
    free(r.output);
    /* output */
    const char *fl[] = {"flood", NULL};
    assert_int_equal(probe(fl, test_limits(), &r, false), 0);
    assert_int_equal(r.end, ASPEN_SB_OUTPUT);
    assert_true(strlen(r.output) <= test_limits().output_keep);
    assert_non_null(strstr(r.why, "printed more than"));
    free(r.output);
    /* a program that ignores everything: the wall clock */
    const char *sl[] = {"sleep", NULL};
    l = test_limits();
    l.wall_ms = 300;
    assert_int_equal(probe(sl, l, &r, false), 0);
    assert_int_equal(r.end, ASPEN_SB_TIMEOUT);
    assert_true(r.ms < 60000); /* a hang guard: the program itself sleeps for ever */
    free(r.output);
}

/* A worker that is not root: the sandbox makes a user namespace (the uid mapped to itself), and
 * the program still has no capabilities, its own PID namespace and no network. */
static void test_sandbox_unprivileged(void **state)
{
    (void)state;
    if (geteuid() != 0) {
        aspen_sandbox_result r;
        const char *id[] = {"id", NULL};
        assert_int_equal(probe(id, test_limits(), &r, false), 0);
        assert_non_null(strstr(r.output, "capeff=0,0 capprm=0,0 pid=2 "));
        free(r.output);
        return;
    }
    /* as root: become uid 1000 in a child, with a copy of the probe it can read */
    assert_int_equal(chmod(g_dir, 0755), 0);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "cp '%s' '%s' && chmod 755 '%s'", PROBE, path_in("probe"),
             path_in("probe"));
    assert_int_equal(system(cmd), 0);
    mkdir(path_in("uroot"), 0700);
    assert_int_equal(chown(path_in("uroot"), 1000, 1000), 0);
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(pfd[0]);
        if (setgroups(0, NULL) != 0 || setresgid(1000, 1000, 1000) != 0 ||
            setresuid(1000, 1000, 1000) != 0)
            _exit(90);
        aspen_sandbox_binds b = {0};
        char why[512];
        if (aspen_sandbox_add_program(&b, path_in("probe"), why, sizeof why) != 0)
            _exit(91);
        static const char *const envp[] = {NULL};
        const char *av[] = {path_in("probe"), "id", NULL};
        aspen_sandbox_spec s = {.argv = av, .envp = envp, .binds = &b,
                                .scratch_dir = path_in("uroot"), .limits = test_limits()};
        aspen_sandbox_result r;
        int rc = aspen_sandbox_run(&s, &r);
        dprintf(pfd[1], "rc=%d end=%d code=%d %s %s", rc, (int)r.end, r.code, r.why,
                r.output ? r.output : "");
        _exit(0);
    }
    close(pfd[1]);
    char out[2048] = "";
    size_t len = 0;
    ssize_t k;
    while ((k = read(pfd[0], out + len, sizeof out - 1 - len)) > 0)
        len += (size_t)k;
    out[len] = '\0';
    close(pfd[0]);
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    fprintf(stderr, "as uid 1000: %s", out);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    assert_non_null(strstr(out, "rc=0 end=0 code=0"));
    assert_non_null(strstr(out, "uid=1000 euid=1000 gid=1000 capeff=0,0 capprm=0,0 pid=2 "));
    assert_non_null(strstr(out, "connect=Operation not permitted")); /* seccomp: no sockets */
}

/* Fail closed: without the right to make namespaces, nothing runs and the error says why. */
static void test_sandbox_fails_closed(void **state)
{
    (void)state;
    char marker[600];
    snprintf(marker, sizeof marker, "%s/out/ran", g_dir);
    /* a bind that does not exist */
    aspen_sandbox_binds b = {0};
    assert_int_equal(aspen_sandbox_bind_add(&b, "/nonexistent/aspen", "/x", false), 0);
    aspen_sandbox_result r;
    static const char *const envp[] = {NULL};
    const char *argv[] = {PROBE, "id", NULL};
    mkdir(path_in("root"), 0700);
    aspen_sandbox_spec spec = {.argv = argv, .envp = envp, .binds = &b,
                               .scratch_dir = path_in("root"), .limits = test_limits()};
    assert_int_equal(aspen_sandbox_run(&spec, &r), -1);
    assert_int_equal(r.end, ASPEN_SB_SETUP);
    assert_non_null(strstr(r.why, "/nonexistent/aspen"));
    aspen_sandbox_binds_free(&b);
    free(r.output);

    /* a process that may not create namespaces (CAP_SYS_ADMIN dropped, no user namespaces) */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (geteuid() == 0) {
            prctl(PR_CAPBSET_DROP, CAP_SYS_ADMIN, 0, 0, 0);
            struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
            struct __user_cap_data_struct d[2];
            syscall(SYS_capget, &h, d);
            d[0].effective &= ~(1u << CAP_SYS_ADMIN);
            d[0].permitted &= ~(1u << CAP_SYS_ADMIN);
            d[0].inheritable &= ~(1u << CAP_SYS_ADMIN);
            if (syscall(SYS_capset, &h, d) != 0)
                _exit(90);
        } else {
            _exit(91); /* nothing to drop: covered when run as root */
        }
        aspen_sandbox_binds b2 = {0};
        char why[512];
        if (aspen_sandbox_add_program(&b2, PROBE, why, sizeof why) != 0)
            _exit(92);
        mkdir(path_in("out"), 0777);
        aspen_sandbox_bind_add(&b2, path_in("out"), "/out", true);
        const char *av[] = {PROBE, "touch", "/out/ran", NULL};
        aspen_sandbox_spec s2 = {.argv = av, .envp = envp, .binds = &b2,
                                 .scratch_dir = path_in("root"), .limits = test_limits()};
        aspen_sandbox_result r2;
        int rc = aspen_sandbox_run(&s2, &r2);
        fprintf(stderr, "without CAP_SYS_ADMIN: %s\n", r2.why);
        _exit(rc == -1 && r2.end == ASPEN_SB_SETUP && strstr(r2.why, "could not be set up") &&
                      strstr(r2.why, "namespace")
                  ? 0
                  : 93);
    }
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    if (geteuid() == 0)
        assert_int_equal(WEXITSTATUS(st), 0);
    assert_int_equal(access(marker, F_OK), -1);
}

/* The cost of the sandbox: one compile-and-link of a small guest, unconfined and confined. */
static void test_sandbox_overhead(void **state)
{
    (void)state;
    aspen_engine *eng = open_eng(0);
    char msg[8192];
    mkdir_in("ov");
    write_guest(path_in("ov"), "");
    assert_int_equal(build(eng, path_in("ov"), msg, sizeof msg), 0); /* SDK built once */
    aspen_engine_close(eng);
    /* the sandbox's own cost: a program that exits at once, confined, against fork+exec */
    double conf = 1e9, bare = 1e9;
    for (int i = 0; i < 5; i++) {
        aspen_sandbox_result r;
        const char *id[] = {"id", NULL};
        assert_int_equal(probe(id, test_limits(), &r, false), 0);
        free(r.output);
        if (r.ms < conf)
            conf = r.ms;
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        pid_t pid = fork();
        if (pid == 0) {
            int dn = open("/dev/null", O_WRONLY);
            dup2(dn, 1);
            execl(PROBE, PROBE, "id", (char *)NULL);
            _exit(127);
        }
        int st = 0;
        assert_int_equal(waitpid(pid, &st, 0), pid);
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        clock_gettime(CLOCK_MONOTONIC, &b);
        double ms = (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
        if (ms < bare)
            bare = ms;
    }
    fprintf(stderr,
            "sandbox overhead: a trivial program %.2f ms confined, %.2f ms by fork+exec: %.2f ms "
            "per sandboxed run\n",
            conf, bare, conf - bare);
    /* a whole guest build: sandboxed (fresh key each time) */
    double build_ms = 1e9;
    eng = open_eng(0);
    for (int i = 0; i < 3; i++) {
        char extra[64];
        snprintf(extra, sizeof extra, "static const int v%d = %d;", i, i);
        write_guest(path_in("ov"), extra);
        int64_t t0 = now_ms();
        assert_int_equal(build(eng, path_in("ov"), msg, sizeof msg), 0);
        if ((double)(now_ms() - t0) < build_ms)
            build_ms = (double)(now_ms() - t0);
    }
    aspen_engine_close(eng);
    fprintf(stderr, "sandboxed guest build (compile + link, uncached): %.0f ms\n", build_ms);
    assert_true(conf < 1000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flags_allowed),
        cmocka_unit_test(test_flags_refused),
        cmocka_unit_test_setup_teardown(test_script_uses_the_allow_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sandbox_identity, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sandbox_namespaces, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sandbox_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sandbox_unprivileged, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sandbox_fails_closed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrapper_never_runs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_host_files_invisible, setup, teardown),
        cmocka_unit_test_setup_teardown(test_symlinks_and_special_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tree_caps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_include_bombs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_normal_guest_builds_and_runs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_source_pinned_at_submit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sandbox_overhead, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
