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
 *     binary by a path that works from the user's directory only when it is the very ELF that ran;
 *   - the second trial: a guest with an in-process type refused; printed commands name a database
 *     that is not the default one (pasted elsewhere, they open it); core's -o and --binary naming
 *     one file refused before writing; an option taken as another's value; replay --set's
 *     negative values for unsigned ones; submit --help's lines, "2 MiB", an in-process job's core.
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
    /* not the default database: every command names it, so that pasted it opens this one */
    char want_kept[1200];
    snprintf(want_kept, sizeof want_kept,
             " and a replay record: aspen core 1 --attempt 1 -o FILE --db '%s'; aspen replay 1 "
             "--attempt 1 --db '%s'\n",
             db, db);
    if (!has(&o, want_kept))
        fail_msg("want \"%s\" in:\n%s", want_kept, o.buf);
    free(o.buf);
    o = run("%s show 1 --json --db %s", ASPEN_BIN, db);
    snprintf(want_kept, sizeof want_kept,
             "\"core_command\": \"aspen core 1 --attempt 1 -o FILE --db '%s'\"", db);
    expect_out(&o, 0, want_kept);
    assert_true(has(&o, "\"replay_record\": true"));
    snprintf(want_kept, sizeof want_kept,
             "\"replay_command\": \"aspen replay 1 --attempt 1 --db '%s'\"", db);
    assert_true(has(&o, want_kept));
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


/* ---- issue 11's second trial (trial2 F1-F4, F7, F10) ----------------------------------------- */

/* F1: a guest or --source with an in-process type would be stored and never run: refused at
 * submit (and cron add) saying what to drop, nothing stored; --isolation or the tag
 * requires_isolation runs the guest in a micro-VM, so those stay accepted. */
static void test_guest_with_in_process_type(void **state)
{
    (void)state;
    char db[400], src[400];
    snprintf(db, sizeof db, "%s/inproc.db", g_dir);
    snprintf(src, sizeof src, "%s/../../guests/echo-worker", GUEST_DIR);
    out o = run("%s submit --type echo --db %s --create", ASPEN_BIN, db);
    expect_out(&o, 0, "1\n");
    free(o.buf);
    o = run("%s submit echo-worker --type echo --db %s", ASPEN_BIN, db);
    expect_out(&o, 2, "error: --type echo runs in the worker with no guest: drop GUEST, or drop "
                      "--type to run the guest (or add --isolation if you meant to run the "
                      "guest in a micro-VM under the type echo)");
    free(o.buf);
    o = run("%s submit --source %s/guests/echo-worker --type sleep --db %s", ASPEN_BIN,
            ASPEN_SOURCE_DIR, db);
    expect_out(&o, 2, "error: --type sleep runs in the worker with no guest: drop --source");
    free(o.buf);
    o = run("%s submit %s/test-fault --type checksum --count 3 --db %s", ASPEN_BIN, GUEST_DIR, db);
    expect_out(&o, 2, "--type checksum runs in the worker with no guest");
    free(o.buf);
    o = run("%s cron add c '@every 1m' echo-worker --type echo --db %s", ASPEN_BIN, db);
    expect_out(&o, 2, "--type echo runs in the worker with no guest: drop the guest");
    free(o.buf);
    o = run("%s jobs --json --db %s", ASPEN_BIN, db);
    expect_out(&o, 0, "\"id\": 1");
    assert_false(has(&o, "\"id\": 2"));
    free(o.buf);
    /* a type that merely looks like one, and types in a micro-VM, are not this rule's */
    o = run("%s submit echo-worker --type ECHO --db %s", ASPEN_BIN, db);
    expect_out(&o, 1, "no handler for job type 'ECHO'");
    assert_false(has(&o, "with no guest"));
    free(o.buf);
    o = run("%s submit echo-worker --type echo --isolation --db %s", ASPEN_BIN, db);
    expect_out(&o, 0, "2\n");
    free(o.buf);
    o = run("%s submit echo-worker --type sleep --tag requires_isolation --db %s", ASPEN_BIN, db);
    expect_out(&o, 0, "3\n");
    free(o.buf);
    /* a tag that only contains the word is not isolation */
    o = run("%s submit echo-worker --type sleep --tag requires_isolation_not --db %s", ASPEN_BIN,
            db);
    expect_out(&o, 2, "--type sleep runs in the worker with no guest");
    free(o.buf);
}

/* F2: the commands `aspen show`, `core` and `replay` print name the database when it is not the
 * default one, shell-quoted, so that pasted from any directory they open it; with the default
 * database they stay short. The path is hostile: a quote, spaces, a '$'. */
static void test_printed_commands_name_the_db(void **state)
{
    (void)state;
    char dir[400], db[500], home[400];
    snprintf(dir, sizeof dir, "%s/it's a $dir", g_dir);
    snprintf(db, sizeof db, "%s/q.db", dir);
    snprintf(home, sizeof home, "%s/home", g_dir);
    /* the shell sees the path only through $KITDB: no quoting of ours to get wrong */
    assert_int_equal(setenv("KITDB", db, 1), 0);
    assert_int_equal(setenv("KITDIR", dir, 1), 0);
    sh("mkdir -p \"$KITDIR\" '%s'", home);
    out o = run("%s submit test-clock --payload '\"x\"' --db \"$KITDB\" --create", ASPEN_BIN);
    expect_out(&o, 0, "1\n");
    free(o.buf);
    o = run("%s worker --until-idle --quiet --db \"$KITDB\"", ASPEN_BIN);
    free(o.buf);
    o = run("%s show 1 --db \"$KITDB\"", ASPEN_BIN);
    expect_out(&o, 0, "aspen replay 1 --attempt 1 --db '");
    /* the printed command, pasted into a shell elsewhere with another default database */
    const char *at = memmem(o.buf, o.len, "aspen replay 1 --attempt 1", 26);
    assert_non_null(at);
    size_t n = strcspn(at, "\n");
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "%.*s", (int)n, at);
    free(o.buf);
    o = run("cd / && HOME='%s' XDG_DATA_HOME= ASPEN_DB= %s%s", home, ASPEN_BIN,
            cmd + strlen("aspen"));
    expect_out(&o, 0, "job 1 attempt 1: identical");
    free(o.buf);
    struct stat st;
    assert_int_not_equal(stat(home, &st), -1);
    char def[600];
    snprintf(def, sizeof def, "%s/.local/share/aspen/aspen.db", home);
    assert_int_equal(stat(def, &st), -1); /* no default database was made by the paste */
    o = run("%s replay 1 --calls --db \"$KITDB\"", ASPEN_BIN);
    expect_out(&o, 0, "(edit one: aspen replay 1 --set CALL.I=VALUE --db '");
    assert_true(has(&o, "/it'\\''s a $dir/q.db')"));
    free(o.buf);
    /* an attempt the job never made: the engine's own messages name the database too (they said
     * "aspen show 1", which pasted opened the default one) */
    const char *never[] = {"core 1 --attempt 3 -o F", "replay 1 --attempt 3",
                           "replay 1 --attempt 3 --calls"};
    for (size_t i = 0; i < sizeof never / sizeof *never; i++) {
        o = run("cd \"$KITDIR\" && %s %s --db \"$KITDB\"", ASPEN_BIN, never[i]);
        if (i)
            expect_out(&o, 1, "job 1 has no finished attempt 3 (it has 1: aspen show 1 --db '");
        else
            expect_out(&o, 1, "job 1 has only 1 attempt: there is no attempt 3 (aspen show 1 --db '");
        assert_true(has(&o, "/it'\\''s a $dir/q.db' lists them)"));
        free(o.buf);
    }
    /* the default database: no --db in the commands */
    o = run("export HOME='%s' XDG_DATA_HOME= ASPEN_DB=; %s submit test-clock --payload '\"y\"' "
            "&& %s worker --until-idle --quiet && %s show 1",
            home, ASPEN_BIN, ASPEN_BIN, ASPEN_BIN);
    expect_out(&o, 0, "a replay record: aspen replay 1 --attempt 1\n");
    assert_true(has(&o, "(aspen logs 1)"));
    assert_false(has(&o, "--db"));
    free(o.buf);
    o = run("export HOME='%s' XDG_DATA_HOME= ASPEN_DB=; cd \"$HOME\" && %s core 1 --attempt 3 "
            "-o F",
            home, ASPEN_BIN);
    expect_out(&o, 1, "job 1 has only 1 attempt: there is no attempt 3 (aspen show 1 lists them)");
    free(o.buf);
}

/* F3: -o and --binary naming one file (the same path, another spelling, a hard link) or a
 * symbolic link are refused before anything is written: the core is never lost. */
static void test_core_outputs_checked_first(void **state)
{
    (void)state;
    char db[400], w[400];
    snprintf(db, sizeof db, "%s/same.db", g_dir);
    snprintf(w, sizeof w, "%s/same", g_dir);
    sh("mkdir -p %s/sub", w);
    out o = run("%s submit %s/test-fault --payload null --max-attempts 1 --db %s --create",
                ASPEN_BIN, GUEST_DIR, db);
    expect_out(&o, 0, "1\n");
    free(o.buf);
    o = run("%s worker --until-idle --quiet --db %s", ASPEN_BIN, db);
    free(o.buf);
    const char *pairs[][2] = {{"F", "F"}, {"F", "./F"}, {"F", "sub/../F"}, {"./sub/x", "sub/x"}};
    for (size_t i = 0; i < sizeof pairs / sizeof *pairs; i++) {
        o = run("cd %s && %s core 1 -o %s --binary %s --db %s", w, ASPEN_BIN, pairs[i][0],
                pairs[i][1], db);
        expect_out(&o, 1, "are the same file: the guest ELF would overwrite the core");
        assert_true(has(&o, "nothing was written"));
        assert_false(has(&o, "wrote the core"));
        free(o.buf);
        o = run("cd %s && ls F sub/x", w);
        expect_out(&o, 2, NULL); /* neither was created */
        free(o.buf);
    }
    /* an existing core, then links to it */
    o = run("cd %s && %s core 1 -o F --db %s && cp F F.keep && ln -s F L && ln F H", w, ASPEN_BIN,
            db);
    expect_out(&o, 0, "wrote the core of job 1 attempt 1");
    free(o.buf);
    o = run("cd %s && %s core 1 -o F --binary H --db %s", w, ASPEN_BIN, db);
    expect_out(&o, 1, "-o F and --binary H are the same file");
    free(o.buf);
    o = run("cd %s && %s core 1 -o F --binary L --db %s", w, ASPEN_BIN, db);
    expect_out(&o, 1, "--binary L is a symbolic link: aspen core writes no file through a link");
    free(o.buf);
    o = run("cd %s && %s core 1 -o L --binary g.elf --db %s", w, ASPEN_BIN, db);
    expect_out(&o, 1, "-o L is a symbolic link");
    free(o.buf);
    o = run("cd %s && cmp F F.keep && ls g.elf", w);
    expect_out(&o, 2, NULL); /* F untouched, no g.elf */
    free(o.buf);
    /* two different files still work */
    o = run("cd %s && %s core 1 -o F --binary g.elf --db %s", w, ASPEN_BIN, db);
    expect_out(&o, 0, "open it with: gdb g.elf F\n");
    free(o.buf);
}

/* F4: an option whose value was left out takes the next option as its value: said so. */
static void test_option_as_value(void **state)
{
    (void)state;
    char db[400];
    snprintf(db, sizeof db, "%s/optval.db", g_dir);
    check_cmd(2, "error: --source needs a value (got the option --db)",
              "%s submit --source --db %s", ASPEN_BIN, db);
    check_cmd(2, "error: --db needs a value (got the option --create)", "%s submit --type echo "
              "--db --create", ASPEN_BIN);
    check_cmd(2, "error: --payload needs a value (got the option --type)", "%s submit --payload "
              "--type=echo", ASPEN_BIN);
    check_cmd(2, "error: -o needs a value (got the option --db)", "%s core 1 -o --db %s",
              ASPEN_BIN, db);
    /* attached, it is the value as given (here a directory that does not exist) */
    check_cmd(1, "guest source directory --db not found", "%s submit --source=--db --db %s "
              "--create", ASPEN_BIN, db);
}

/* F7: an edited value is not called recorded; a negative one for an unsigned value is refused,
 * the largest unsigned one is taken. */
static void test_replay_set_values(void **state)
{
    (void)state;
    char db[400];
    snprintf(db, sizeof db, "%s/set.db", g_dir);
    out o = run("%s submit test-clock --payload '\"x\"' --db %s --create && %s worker --until-idle "
                "--quiet --db %s",
                ASPEN_BIN, db, ASPEN_BIN, db);
    expect_out(&o, 0, NULL);
    free(o.buf);
    o = run("%s replay 1 --set 1=-5 --db %s", ASPEN_BIN, db);
    expect_out(&o, 2, "error: --set 1=-5: value 1.1 of host call 1 (hl_get_time_ns) is unsigned");
    assert_true(has(&o, "from 0 to 18446744073709551615"));
    free(o.buf);
    o = run("%s replay 1 --set 1.1=-9223372036854775808 --db %s", ASPEN_BIN, db);
    expect_out(&o, 2, "is unsigned");
    free(o.buf);
    check_cmd(2, "--set wants CALL=VALUE", "%s replay 1 --set 1=18446744073709551616 --db %s",
              ASPEN_BIN, db);
    check_cmd(2, "--set wants CALL=VALUE", "%s replay 1 --set 1=+5 --db %s", ASPEN_BIN, db);
    o = run("%s replay 1 --set 1=18446744073709551615 --db %s", ASPEN_BIN, db);
    expect_out(&o, 1, "diverged at host call 2");
    free(o.buf);
    o = run("%s replay 1 --set 1=42 --db %s", ASPEN_BIN, db);
    expect_out(&o, 1, "; the last values fed to the guest before it were host call 1's "
                      "(hl_get_time_ns) = 42, ");
    assert_true(has(&o, " (value 1.1 edited for this replay, not recorded)"));
    assert_false(has(&o, "last recorded values"));
    free(o.buf);
}

/* F10: submit --help gives each option its own line; aspen core of an in-process job says why
 * it has no core; show gives whole MiB as MiB. */
static void test_help_core_memory_words(void **state)
{
    (void)state;
    out o = run("%s submit --help", ASPEN_BIN);
    expect_out(&o, 0, "\n  --create-queue  take a --queue Q that does not exist yet");
    assert_false(has(&o, "--create-queue  is given"));
    assert_true(has(&o, "\n  --unique-states S,...   the states that count"));
    assert_true(has(&o, "\n                          running; add succeeded"));
    free(o.buf);
    o = run("%s submit", ASPEN_BIN);
    expect_out(&o, 2, "usage: aspen submit GUEST | --source SRC | --type T");
    assert_false(has(&o, "--source DIR |"));
    free(o.buf);
    char db[400];
    snprintf(db, sizeof db, "%s/words.db", g_dir);
    o = run("%s submit --type echo --memory 2M --db %s --create && %s submit --type echo "
            "--memory 1536K --db %s && %s worker --until-idle --quiet --db %s",
            ASPEN_BIN, db, ASPEN_BIN, db, ASPEN_BIN, db);
    expect_out(&o, 0, NULL);
    free(o.buf);
    check_cmd(0, "memory 2 MiB\n", "%s show 1 --db %s", ASPEN_BIN, db);
    check_cmd(0, "memory 1536 KiB\n", "%s show 2 --db %s", ASPEN_BIN, db);
    o = run("%s core 1 -o %s/never --db %s", ASPEN_BIN, g_dir, db);
    expect_out(&o, 1, "job 1 keeps no core: it ran in-process in a worker (type echo, no "
                      "micro-VM)");
    assert_false(has(&o, "succeeded"));
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
        cmocka_unit_test(test_guest_with_in_process_type),
        cmocka_unit_test(test_printed_commands_name_the_db),
        cmocka_unit_test(test_core_outputs_checked_first),
        cmocka_unit_test(test_option_as_value),
        cmocka_unit_test(test_replay_set_values),
        cmocka_unit_test(test_help_core_memory_words),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
