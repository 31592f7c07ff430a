/* tests/cli/test_cli_kit.c — issue 11's trial of the guest kit (trial11 findings 3-6, 11, 12, 18),
 * with the real `aspen` program as a user runs it:
 *   - `--source REPO#REV[:SUBDIR]` is checked at submit: a commit whose root holds no C sources is
 *     refused naming the repository, revision, commit and the SUBDIR to give; a plain libc
 *     program, a Rust guest and a hostile guest.flags in the commit likewise; nothing is stored.
 *     A build that fails names the repository and commit, never the build's temporary directory;
 *   - `--source DIR`: a plain libc program (main(), no <aspen.h>) is refused with what to do
 *     (scripts/build-guest.sh, aspen submit the binary); guest.flags (-wrapper, -fplugin=, @file,
 *     -include) is refused at submit by name; sources in a subdirectory are pointed to;
 *   - `aspen show` of a --source job says "not built yet" before it runs and the built binary's
 *     sha256 after; of a failed job, which attempt kept a core (its size) and a replay record,
 *     with the commands, in text and --json;
 *   - `aspen core` of an attempt past the job's last says how many it has; the gdb line names the
 *     binary by a path that works from the user's directory only when it is the very ELF that ran.
 * They need /dev/kvm and fail, never skip, without it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cli_support.h"

#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define GIT "git -c user.name=t -c user.email=t@t -c init.defaultBranch=main"

static char g_dir[256];

static void write_text(const char *dir, const char *name, const char *text)
{
    char p[600];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sh(const char *fmt, ...)
{
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    out o = run("%s", cmd);
    if (o.status != 0)
        fail_msg("%s: exit %d: %s", cmd, o.status, o.buf);
    free(o.buf);
}

static void expect_nothing_stored(const char *db)
{
    out o = run("%s jobs --json --db %s", ASPEN_BIN, db);
    expect_out(&o, 0, "[]");
    free(o.buf);
}

static const char plain_program[] =
    "#include <stdio.h>\n#include <time.h>\n"
    "int main(void) { printf(\"%ld\\n\", (long)time(0)); return 0; }\n";

/* ---- 3: a commit checked at submit -------------------------------------------------------------- */

static void test_git_tree_checked_at_submit(void **state)
{
    (void)state;
    char repo[400], db[400];
    snprintf(repo, sizeof repo, "%s/repo", g_dir);
    snprintf(db, sizeof db, "%s/git.db", g_dir);
    sh("mkdir -p %s/g %s/p %s/flags %s/rs && cd %s && " GIT " init -q . && "
       "cp %s/guests/echo-worker/main.c g/ && cp g/main.c flags/ && : > README",
       repo, repo, repo, repo, repo, ASPEN_SOURCE_DIR);
    write_text(repo, "p/main.c", plain_program);
    write_text(repo, "flags/guest.flags", "-O2\n-wrapper /bin/sh,-c,id\n");
    write_text(repo, "rs/Cargo.toml", "[package]\nname = \"rs\"\n");
    sh("cd %s && " GIT " add -A && " GIT " commit -qm one && " GIT " tag v1", repo);
    out o = run("cd %s && git rev-parse HEAD", repo);
    char commit[13];
    snprintf(commit, sizeof commit, "%.12s", o.buf);
    free(o.buf);
    sh("%s jobs --db %s --create >/dev/null", ASPEN_BIN, db);

    /* the commit's root has no C sources: which repository, revision, commit, and what to give */
    o = run("%s submit --source %s#v1 --db %s", ASPEN_BIN, repo, db);
    expect_out(&o, 1, "no C sources (*.c or *.S) in commit ");
    assert_true(has(&o, commit));
    assert_true(has(&o, repo));
    assert_true(has(&o, "(revision v1)"));
    char want[600];
    snprintf(want, sizeof want, "give --source %s#v1:", repo);
    assert_true(has(&o, want));
    assert_true(has(&o, "flags") && has(&o, "g") && has(&o, "p"));
    assert_false(has(&o, "aspen-gitcheck")); /* no temporary path */
    free(o.buf);

    /* a SUBDIR without sources points further down */
    sh("cd %s && mkdir -p deep/x/y && cp g/main.c deep/x/y/ && " GIT " add -A && " GIT
       " commit -qm deep", repo);
    o = run("%s submit --source %s#HEAD:deep --db %s", ASPEN_BIN, repo, db);
    expect_out(&o, 1, "no C sources (*.c or *.S) in directory deep of commit ");
    snprintf(want, sizeof want, "x/y holds some: give --source %s#HEAD:deep/x/y", repo);
    assert_true(has(&o, want));
    free(o.buf);

    /* a plain libc program, a Rust guest, a hostile guest.flags: refused now, by name */
    o = run("%s submit --source %s#v1:p --db %s", ASPEN_BIN, repo, db);
    expect_out(&o, 1, "holds a plain C program (main(), no #include <aspen.h>): --source builds "
                      "SDK guests only");
    snprintf(want, sizeof want, "scripts/build-guest.sh CHECKOUT/p (a checkout of %s at v1)",
             repo);
    assert_true(has(&o, want) && has(&o, "aspen submit"));
    free(o.buf);
    o = run("%s submit --source %s#v1:rs --db %s", ASPEN_BIN, repo, db);
    expect_out(&o, 1, "holds a Rust guest");
    free(o.buf);
    o = run("%s submit --source %s#v1:flags --db %s", ASPEN_BIN, repo, db);
    expect_out(&o, 1, "guest.flags: the compiler flag '-wrapper' is not allowed");
    assert_true(has(&o, "directory flags of commit "));
    free(o.buf);
    expect_nothing_stored(db);

    /* the good one is accepted and runs */
    o = run("%s submit --source %s#v1:g --payload '{\"message\":\"hi\"}' --db %s", ASPEN_BIN, repo,
            db);
    expect_out(&o, 0, NULL);
    free(o.buf);

    /* a build that fails names the repository and commit, never the build's temporary path */
    sh("cd %s && printf 'int f(void) { return 1 }\\n' > g/broken.c && " GIT " add -A && " GIT
       " commit -qm broken", repo);
    o = run("%s submit --source %s#HEAD:g --max-attempts 1 --db %s", ASPEN_BIN, repo, db);
    expect_out(&o, 0, NULL);
    free(o.buf);
    o = run("%s worker --until-idle --quiet --db %s", ASPEN_BIN, db);
    free(o.buf);
    o = run("%s show 1 --db %s", ASPEN_BIN, db);
    expect_out(&o, 0, "succeeded");
    free(o.buf);
    o = run("%s show 2 --db %s", ASPEN_BIN, db);
    expect_out(&o, 0, "failed");
    assert_true(has(&o, "broken.c"));
    assert_false(has(&o, "gitsrc-"));
    assert_false(has(&o, "build-cache"));
    snprintf(want, sizeof want, "building the guest in %s#", repo);
    assert_true(has(&o, want));
    free(o.buf);
}

/* ---- 4, 18: a source directory checked at submit ------------------------------------------------ */

static void test_source_dir_checked_at_submit(void **state)
{
    (void)state;
    char dir[400], db[400];
    snprintf(db, sizeof db, "%s/dir.db", g_dir);
    sh("%s jobs --db %s --create >/dev/null", ASPEN_BIN, db);

    /* a plain libc program: what to do instead, not a compiler error */
    snprintf(dir, sizeof dir, "%s/plain", g_dir);
    mkdir(dir, 0700);
    write_text(dir, "main.c", plain_program);
    out o = run("%s submit --source %s --db %s", ASPEN_BIN, dir, db);
    expect_out(&o, 1, "holds a plain C program (main(), no #include <aspen.h>): --source builds "
                      "SDK guests only");
    char want[600];
    snprintf(want, sizeof want, "scripts/build-guest.sh %s", dir);
    assert_true(has(&o, want));
    assert_true(has(&o, "aspen submit target/guest-binaries/"));
    assert_false(has(&o, "time.h"));
    free(o.buf);
    /* main( in a comment of an SDK guest (it includes aspen.h) is no plain program */
    snprintf(dir, sizeof dir, "%s/sdk", g_dir);
    sh("mkdir -p %s && cp %s/guests/echo-worker/main.c %s/ && printf '/* not main() */\\n' > "
       "%s/note.c",
       dir, ASPEN_SOURCE_DIR, dir, dir);
    o = run("%s submit --source %s --db %s", ASPEN_BIN, dir, db);
    expect_out(&o, 0, NULL);
    free(o.buf);
    o = run("%s jobs --json --db %s", ASPEN_BIN, db);
    expect_out(&o, 0, "\"id\": 1");
    free(o.buf);

    /* guest.flags off the allow-list: refused at submit, naming the flag */
    static const char *const hostile[][2] = {
        {"-wrapper /bin/sh,-c,id\n", "'-wrapper'"},
        {"-fplugin=/tmp/evil.so\n", "'-fplugin=/tmp/evil.so'"},
        {"@/etc/passwd\n", "'@/etc/passwd'"},
        {"-include /etc/passwd\n", "'-include'"},
        {"-O2 -Wl,-T,/etc/shadow\n", "'-Wl,-T,/etc/shadow'"},
    };
    for (size_t i = 0; i < sizeof hostile / sizeof hostile[0]; i++) {
        snprintf(dir, sizeof dir, "%s/flags%zu", g_dir, i);
        sh("mkdir -p %s && cp %s/guests/echo-worker/main.c %s/", dir, ASPEN_SOURCE_DIR, dir);
        write_text(dir, "guest.flags", hostile[i][0]);
        o = run("%s submit --source %s --db %s", ASPEN_BIN, dir, db);
        snprintf(want, sizeof want, "guest.flags: the compiler flag %s is not allowed",
                 hostile[i][1]);
        expect_out(&o, 1, want);
        assert_true(has(&o, dir));
        free(o.buf);
    }
    /* a guest.flags that is not a file (a FIFO: reading it would block) */
    snprintf(dir, sizeof dir, "%s/fifo", g_dir);
    sh("mkdir -p %s && cp %s/guests/echo-worker/main.c %s/ && mkfifo %s/guest.flags", dir,
       ASPEN_SOURCE_DIR, dir, dir);
    o = run("timeout 20 %s submit --source %s --db %s", ASPEN_BIN, dir, db);
    expect_out(&o, 1, "guest.flags");
    free(o.buf);

    /* sources only in a subdirectory: which one to give */
    snprintf(dir, sizeof dir, "%s/top", g_dir);
    sh("mkdir -p %s/src %s/.hidden && cp %s/guests/echo-worker/main.c %s/src/ && cp %s/src/main.c "
       "%s/.hidden/",
       dir, dir, ASPEN_SOURCE_DIR, dir, dir, dir);
    o = run("%s submit --source %s --db %s", ASPEN_BIN, dir, db);
    snprintf(want, sizeof want, "src holds some: give --source %s/src", dir);
    expect_out(&o, 1, want);
    assert_false(has(&o, ".hidden"));
    free(o.buf);
    o = run("%s jobs --json --db %s", ASPEN_BIN, db);
    expect_out(&o, 0, NULL);
    assert_false(has(&o, "\"id\": 2"));
    free(o.buf);
}

/* ---- 6: the built binary of a --source job ------------------------------------------------------ */

static void test_show_built_binary(void **state)
{
    (void)state;
    char dir[400], db[400];
    snprintf(db, sizeof db, "%s/built.db", g_dir);
    snprintf(dir, sizeof dir, "%s/echo-src", g_dir);
    sh("mkdir -p %s && cp %s/guests/echo-worker/main.c %s/", dir, ASPEN_SOURCE_DIR, dir);
    out o = run("%s submit --source %s --payload '{\"message\":\"hi\"}' --db %s --create",
                ASPEN_BIN, dir, db);
    expect_out(&o, 0, NULL);
    free(o.buf);
    o = run("%s show 1 --db %s", ASPEN_BIN, db);
    expect_out(&o, 0, "guest       echo-src  not built yet (built when it runs)");
    assert_false(has(&o, "sha256 -"));
    free(o.buf);
    o = run("%s show 1 --json --db %s", ASPEN_BIN, db);
    expect_out(&o, 0, "\"built_sha256\": null");
    free(o.buf);
    o = run("%s worker --until-idle --quiet --db %s", ASPEN_BIN, db);
    free(o.buf);
    o = run("%s show 1 --db %s", ASPEN_BIN, db);
    expect_out(&o, 0, "succeeded");
    assert_true(has(&o, "(built from the source for attempt 1)"));
    assert_true(has(&o, " (built, from its files as they were at submit"));
    assert_false(has(&o, "not built yet"));
    assert_false(has(&o, "sha256 -"));
    const char *p = strstr(o.buf, "echo-src  sha256 ");
    assert_non_null(p);
    p += strlen("echo-src  sha256 ");
    assert_int_equal(strspn(p, "0123456789abcdef"), 16);
    char prefix[17];
    snprintf(prefix, sizeof prefix, "%.16s", p);
    free(o.buf);
    o = run("%s show 1 --json --db %s", ASPEN_BIN, db);
    expect_out(&o, 0, "\"built_sha256\": \"");
    assert_true(has(&o, prefix));
    free(o.buf);
}

/* ---- 5, 11, 12: a failed attempt's core ---------------------------------------------------------- */

static void test_core_kept_shown(void **state)
{
    (void)state;
    char db[400], work[400], elsewhere[400];
    snprintf(db, sizeof db, "%s/core.db", g_dir);
    snprintf(work, sizeof work, "%s/t11", g_dir);
    snprintf(elsewhere, sizeof elsewhere, "%s/elsewhere", g_dir);
    sh("mkdir -p %s %s && cp %s/test-fault %s/crash.elf", work, elsewhere, GUEST_DIR, work);
    out o = run("cd %s && %s submit ./crash.elf --payload null --max-attempts 1 --db %s --create",
                work, ASPEN_BIN, db);
    expect_out(&o, 0, NULL);
    free(o.buf);
    o = run("%s worker --until-idle --quiet --db %s", ASPEN_BIN, db);
    free(o.buf);

    /* 5: show says what the attempt kept and how to get it */
    o = run("%s show 1 --db %s", ASPEN_BIN, db);
    expect_out(&o, 0, "failed");
    assert_true(has(&o, "  kept        attempt 1: a core ("));
    assert_true(has(&o, " and a replay record: aspen core 1 --attempt 1 -o FILE;  aspen replay "
                        "1 --attempt 1") ||
                has(&o, " and a replay record: aspen core 1 --attempt 1 -o FILE; aspen replay 1 "
                        "--attempt 1"));
    free(o.buf);
    o = run("%s show 1 --json --db %s", ASPEN_BIN, db);
    expect_out(&o, 0, "\"core_command\": \"aspen core 1 --attempt 1 -o FILE\"");
    assert_true(has(&o, "\"replay_record\": true"));
    assert_true(has(&o, "\"replay_command\": \"aspen replay 1 --attempt 1\""));
    assert_false(has(&o, "\"core_bytes\": null"));
    free(o.buf);

    /* 11: an attempt the job never made */
    o = run("%s core 1 --attempt 3 -o %s/c3 --db %s", ASPEN_BIN, work, db);
    expect_out(&o, 1, "job 1 has only 1 attempt: there is no attempt 3");
    assert_false(has(&o, "keeps no core"));
    free(o.buf);
    o = run("%s core 1 --attempt 1000000 -o %s/c3 --db %s", ASPEN_BIN, work, db);
    expect_out(&o, 1, "there is no attempt 1000000");
    free(o.buf);

    /* 12: from the directory it was submitted from, the binary's full path */
    o = run("cd %s && %s core 1 -o F --db %s", work, ASPEN_BIN, db);
    char want[700];
    snprintf(want, sizeof want, "open it with: gdb %s/crash.elf F\n", work);
    char real[PATH_MAX];
    assert_non_null(realpath(work, real));
    char want_real[PATH_MAX + 40];
    snprintf(want_real, sizeof want_real, "open it with: gdb %s/crash.elf F\n", real);
    expect_out(&o, 0, "wrote the core of job 1 attempt 1");
    assert_true(has(&o, want) || has(&o, want_real));
    free(o.buf);
    /* elsewhere: no bare name that would not open, but what to pass and --binary */
    o = run("cd %s && %s core 1 -o F --db %s", elsewhere, ASPEN_BIN, db);
    expect_out(&o, 0, "open it with: gdb GUEST F\n");
    assert_true(has(&o, "ASPEN_GUEST_DEBUG=1"));
    assert_true(has(&o, "--binary FILE"));
    assert_false(has(&o, "gdb crash.elf"));
    free(o.buf);
    /* a different file of the same name there is not claimed to be it */
    write_text(elsewhere, "crash.elf", "not the guest\n");
    o = run("cd %s && %s core 1 -o F --db %s", elsewhere, ASPEN_BIN, db);
    expect_out(&o, 0, "open it with: gdb GUEST F\n");
    free(o.buf);
    /* --binary writes the very ELF and names it */
    o = run("cd %s && %s core 1 -o F --binary g.elf --db %s", elsewhere, ASPEN_BIN, db);
    expect_out(&o, 0, "open it with: gdb g.elf F\n");
    free(o.buf);
    o = run("cmp %s/g.elf %s/crash.elf", elsewhere, work);
    expect_out(&o, 0, NULL);
    free(o.buf);
}

static int setup(void **state)
{
    (void)state;
    return cli_scratch_dir(g_dir, sizeof g_dir, "kit");
}

static int teardown(void **state)
{
    (void)state;
    return cli_remove_tree(g_dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_git_tree_checked_at_submit),
        cmocka_unit_test(test_source_dir_checked_at_submit),
        cmocka_unit_test(test_show_built_binary),
        cmocka_unit_test(test_core_kept_shown),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
