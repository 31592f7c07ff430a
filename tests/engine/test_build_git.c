/* tests/engine/test_build_git.c — `--source REPO#REV[:SUBDIR]`, guests built from a commit of a
 * local git repository (engine/gitsrc.c), with hostile input kept as tests:
 *   - a commit builds and runs (a path and a file:// URL, a branch, a tag, a hash); the job is
 *     pinned to the commit at submit, so a later commit does not change what it builds; a second
 *     job of the commit is a cache hit; the job's source names the commit;
 *   - refused at submit, with what and why: a revision that is an option (--upload-pack=...:
 *     nothing runs), one with shell characters, a range, a missing revision, a SUBDIR with '..' or
 *     that is not a directory of the commit, a path that is not a repository;
 *   - refused at submit (the commit's tree is read then) and again by a build of the commit,
 *     with the reason: a symlink leaving the tree (absolute, climbing, or a chain of links that
 *     climbs), a submodule, a file over 8 MiB, more than 2000 files;
 *   - a repository whose own config would run commands (a smudge filter, fsmonitor) runs none.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "aspen_engine.h"

#define TEST_TMP_PREFIX "aspen-gitsrc-test"
#include "test_support.h"

static char g_repo[512];

static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sh(const char *fmt, ...)
{
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    if (system(cmd) != 0)
        fail_msg("command failed: %s", cmd);
}

#define GIT "git -c user.email=t@t -c user.name=t -c init.defaultBranch=main"

/* A repository with an echo guest in g/ (its log line says VERSION), committed. */
static void make_repo(const char *version)
{
    snprintf(g_repo, sizeof g_repo, "%s/repo", g_dir);
    sh("mkdir -p %s/g && cd %s && " GIT " init -q . && cp %s/guests/echo-worker/main.c g/ && "
       "sed -i 's/echo-worker: received/%s: received/' g/main.c && " GIT " add -A && " GIT
       " commit -qm one && " GIT " tag v1",
       g_repo, g_repo, SOURCE_DIR, version);
}

static aspen_engine *open_engine(void)
{
    aspen_engine_config cfg;
    aspen_engine_config_default(&cfg);
    cfg.db_path = g_db;
    cfg.workers = 1;
    cfg.guest_dir = GUEST_DIR;
    aspen_engine *eng = open_cfg(&cfg);
    start(eng);
    return eng;
}

static int submit_src(aspen_engine *eng, const char *src, int64_t *id, aspen_engine_error *err)
{
    aspen_engine_job_spec s = {.source_dir = src, .payload = "{\"message\":\"hi\"}",
                               .max_attempts = 1};
    return aspen_engine_submit(eng, &s, id, err);
}

static void run_all(aspen_engine *eng)
{
    aspen_engine_error err = {0};
    int64_t t0 = now_ms();
    assert_int_equal(aspen_engine_wait_idle(eng, 300000, true, &err), 0);
    assert_true(now_ms() - t0 < 300000);
}

/* The job's state, error and joined log lines. */
static aspen_store_state job_of(aspen_engine *eng, int64_t id, char *error, size_t ecap,
                                char *logs, size_t lcap)
{
    aspen_store_job j = {0};
    aspen_engine_error err = {0};
    assert_int_equal(aspen_engine_get(eng, id, &j, &err), 0);
    snprintf(error, ecap, "%s", j.error ? j.error : "");
    aspen_store_state st = j.state;
    aspen_store_job_clear(&j);
    aspen_store_log *l = NULL;
    size_t n = 0;
    assert_int_equal(aspen_engine_logs(eng, id, 0, 0, &l, &n, &err), 0);
    logs[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        size_t used = strlen(logs);
        snprintf(logs + used, lcap - used, "%s|", l[i].line);
    }
    aspen_store_logs_free(l, n);
    return st;
}

static void test_builds_a_commit(void **state)
{
    (void)state;
    make_repo("v-one");
    char head[64] = "";
    char path[700];
    snprintf(path, sizeof path, "%s/head", g_dir);
    sh("git -C %s rev-parse HEAD > %s", g_repo, path);
    FILE *f = fopen(path, "r");
    assert_non_null(fgets(head, sizeof head, f));
    fclose(f);
    head[strcspn(head, "\n")] = '\0';

    aspen_engine *eng = open_engine();
    aspen_engine_error err = {0};
    char src[1200];
    int64_t a = 0, b = 0, c = 0, d = 0;
    snprintf(src, sizeof src, "%s#main:g", g_repo);
    assert_int_equal(submit_src(eng, src, &a, &err), 0);
    /* a later commit: the job above stays pinned to the first */
    sh("cd %s && sed -i 's/v-one: received/v-two: received/' g/main.c && " GIT " commit -qam two",
       g_repo);
    snprintf(src, sizeof src, "file://%s#v1:g/", g_repo);
    assert_int_equal(submit_src(eng, src, &b, &err), 0);
    snprintf(src, sizeof src, "%s#HEAD:g", g_repo);
    assert_int_equal(submit_src(eng, src, &c, &err), 0);
    run_all(eng);
    snprintf(src, sizeof src, "%s#%s:g", g_repo, head);
    assert_int_equal(submit_src(eng, src, &d, &err), 0);
    run_all(eng);

    char e[1024], l[4096];
    assert_int_equal(job_of(eng, a, e, sizeof e, l, sizeof l), ASPEN_STORE_SUCCEEDED);
    assert_non_null(strstr(l, "v-one: received 16 bytes"));
    assert_int_equal(job_of(eng, b, e, sizeof e, l, sizeof l), ASPEN_STORE_SUCCEEDED);
    assert_non_null(strstr(l, "v-one: received"));
    assert_int_equal(job_of(eng, c, e, sizeof e, l, sizeof l), ASPEN_STORE_SUCCEEDED);
    assert_non_null(strstr(l, "v-two: received"));
    assert_int_equal(job_of(eng, d, e, sizeof e, l, sizeof l), ASPEN_STORE_SUCCEEDED);
    assert_non_null(strstr(l, "v-one: received"));
    assert_non_null(strstr(l, "(cached)")); /* the first commit was built already */

    aspen_store_job j = {0};
    assert_int_equal(aspen_engine_get(eng, a, &j, &err), 0);
    char want[1200];
    snprintf(want, sizeof want, "git+file://%s#%s:g", g_repo, head);
    assert_string_equal(j.source_dir, want);
    assert_string_equal(j.binary_name, "g");
    aspen_store_job_clear(&j);
    aspen_engine_stop(eng, 1000, &err);
    aspen_engine_close(eng);
}

static void test_refused_at_submit(void **state)
{
    (void)state;
    make_repo("v");
    aspen_engine *eng = open_engine();
    aspen_engine_error err = {0};
    char src[2048], pwned[700];
    snprintf(pwned, sizeof pwned, "%s/pwned", g_dir);
    struct {
        const char *rev;
        const char *why;
    } cases[] = {
        {"--upload-pack=touch PWNED", "looks like an option"},
        {"-c", "looks like an option"},
        {"$(touch PWNED)", "only letters, digits"},
        {"HEAD;touch PWNED", "only letters, digits"},
        {"main HEAD", "only letters, digits"},
        {"HEAD~1..HEAD", "is a range"},
        {"nope", "revision 'nope' is not a commit of"},
        {"", "no revision after '#'"},
        {"HEAD:../g", "holds an empty, '.' or '..' part"},
        {"HEAD:g/../..", "holds an empty, '.' or '..' part"},
        {"HEAD:/etc", "must be a relative path"},
        {"HEAD:nodir", "has no directory nodir"},
        {"HEAD:g/main.c", "has no directory g/main.c"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char rev[1024];
        const char *p = strstr(cases[i].rev, "PWNED");
        if (p)
            snprintf(rev, sizeof rev, "%.*s%s%s", (int)(p - cases[i].rev), cases[i].rev, pwned,
                     p + 5);
        else
            snprintf(rev, sizeof rev, "%s", cases[i].rev);
        snprintf(src, sizeof src, "%s#%s", g_repo, rev);
        int64_t id = 0;
        int rc = submit_src(eng, src, &id, &err);
        if (rc == 0 || !strstr(err.msg, cases[i].why))
            fail_msg("--source %s: rc %d, message '%s' (want '%s')", src, rc, err.msg,
                     cases[i].why);
    }
    /* not a repository, no repository at all */
    snprintf(src, sizeof src, "%s#HEAD", g_dir);
    int64_t id = 0;
    assert_int_not_equal(submit_src(eng, src, &id, &err), 0);
    assert_non_null(strstr(err.msg, "is not a git repository"));
    snprintf(src, sizeof src, "%s/missing#HEAD", g_dir);
    assert_int_not_equal(submit_src(eng, src, &id, &err), 0);
    assert_non_null(strstr(err.msg, "not found"));
    assert_int_equal(access(pwned, F_OK), -1); /* nothing ran */
    aspen_engine_stop(eng, 1000, &err);
    aspen_engine_close(eng);

    /* the CLI says the same, exit status 1 */
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s submit --source '%s#--upload-pack=touch %s' --db '%s' 2>&1",
             ASPEN_BIN, g_repo, pwned, g_db);
    FILE *p = popen(cmd, "r");
    char out[2048] = "";
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    assert_int_equal(WEXITSTATUS(st), 1);
    assert_non_null(strstr(out, "looks like an option"));
    assert_int_equal(access(pwned, F_OK), -1);
}

/* Commits what `setup` (shell, in the repository) makes and checks the submit of REPO#HEAD[:sub]
 * is refused saying `why` (the tree is read at submit, issue 11), and that a build of the
 * commit, as a job queued before that check would run it, is refused saying it too. */
static void build_refused(const char *make, const char *sub, const char *why)
{
    make_repo("v");
    sh("cd %s && %s && " GIT " add -A && " GIT " commit -qm hostile", g_repo, make);
    aspen_engine *eng = open_engine();
    aspen_engine_error err = {0};
    char src[1200];
    snprintf(src, sizeof src, "%s#HEAD%s%s", g_repo, sub ? ":" : "", sub ? sub : "");
    int64_t id = 0;
    assert_int_equal(submit_src(eng, src, &id, &err), ASPEN_ENGINE_EBINARY);
    if (!strstr(err.msg, why))
        fail_msg("submit's refusal '%s' lacks '%s'", err.msg, why);
    /* the build of the commit (the job's canonical source) */
    char cmd[1400], commit[80] = "", real[600];
    snprintf(cmd, sizeof cmd, "git -C %s rev-parse HEAD", g_repo);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    assert_non_null(fgets(commit, sizeof commit, p));
    pclose(p);
    commit[strspn(commit, "0123456789abcdef")] = '\0';
    assert_non_null(realpath(g_repo, real));
    snprintf(src, sizeof src, "git+file://%s#%s%s%s", real, commit, sub ? ":" : "",
             sub ? sub : "");
    char path[4096];
    bool cached = false;
    assert_int_equal(aspen_engine_build(eng, src, path, sizeof path, &cached, &err),
                     ASPEN_ENGINE_EBUILD);
    if (!strstr(err.msg, why))
        fail_msg("build's refusal '%s' lacks '%s'", err.msg, why);
    aspen_engine_stop(eng, 1000, &err);
    aspen_engine_close(eng);
    teardown(NULL); /* a fresh directory and database for the next case */
    sleep_ms(1);
    assert_int_equal(setup(NULL), 0);
}

static void test_refused_at_build(void **state)
{
    (void)state;
    build_refused("ln -s /etc/passwd g/passwd.c", "g", "symlink passwd.c -> /etc/passwd");
    build_refused("ln -s ../../../etc/passwd g/up.c", "g", "leaves the source tree");
    /* each link stays inside by itself; together they climb out */
    build_refused("mkdir -p g/d && ln -s .. g/d/l && ln -s d/l/.. g/m", "g",
                  "symlink m -> d/l/.. in commit");
    build_refused("head -c 9437184 /dev/zero > g/big.c", "g", "more than a source file may be");
    build_refused("mkdir g/many && for i in $(seq 2001); do : > g/many/f$i.h; done", "g",
                  "holds more than 2000 files");
    build_refused("mkdir -p g/sub && (cd g/sub && " GIT " init -q . && : > x && " GIT
                  " add x && " GIT " commit -qm s) && " GIT " add g/sub 2>/dev/null",
                  "g", "is a submodule");
}

static void test_hostile_repo_config(void **state)
{
    (void)state;
    make_repo("v");
    char pwned[700];
    snprintf(pwned, sizeof pwned, "%s/pwned", g_dir);
    /* a smudge filter on every file, an fsmonitor hook, a pager, hooks: none may run */
    sh("cd %s && printf '* filter=evil\\n' > g/.gitattributes && " GIT " add -A && " GIT
       " commit -qm attrs && git config filter.evil.smudge 'touch %s' && "
       "git config core.fsmonitor 'touch %s' && git config core.pager 'touch %s' && "
       "mkdir -p .git/hooks && printf '#!/bin/sh\\ntouch %s\\n' > .git/hooks/post-checkout && "
       "chmod +x .git/hooks/post-checkout",
       g_repo, pwned, pwned, pwned, pwned);
    aspen_engine *eng = open_engine();
    aspen_engine_error err = {0};
    char src[1200];
    snprintf(src, sizeof src, "%s#HEAD:g", g_repo);
    int64_t id = 0;
    assert_int_equal(submit_src(eng, src, &id, &err), 0);
    run_all(eng);
    char e[1024], l[4096];
    assert_int_equal(job_of(eng, id, e, sizeof e, l, sizeof l), ASPEN_STORE_SUCCEEDED);
    assert_int_equal(access(pwned, F_OK), -1);
    aspen_engine_stop(eng, 1000, &err);
    aspen_engine_close(eng);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_builds_a_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_at_submit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_at_build, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_repo_config, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
