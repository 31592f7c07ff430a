/* tests/cli/test_cli_jobs.c — the job commands of the real `aspen` program, run as separate
 * processes the way a user types them: the one filter language (the console's shorthands work in
 * `aspen jobs --filter`, errors name the term and suggest the key); a --db that does not exist is
 * an error in every command (the console too) unless --create; payloads from a file or stdin
 * (2 MB; a FIFO or /dev/zero read only up to the limit; a binary file refused); --count bounds;
 * --jsonl batches (a bad line named, its batch not submitted; a 10 MB line; a line over the
 * limit); "did you mean" for commands and options; --version; --json on every read command with
 * integer microseconds; one wording for invalid JSON in run and submit; durations in show; table
 * cells cut and padded by display columns (wide, combining, emoji), checked with the C library's
 * wcwidth; retry of a scheduled job refused with when it runs, a failed delayed one retried due now.
 * They need /dev/kvm (a worker runs guests) and fail, never skip, without it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cli_support.h"

#include <jansson.h>
#include <locale.h>
#include <poll.h>
#include <pty.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <wchar.h>

static char g_dir[256], g_db[300];

static json_t *json_of(const out *o)
{
    json_error_t je;
    json_t *v = json_loadb(o->buf, o->len, 0, &je);
    if (!v)
        fail_msg("not JSON (%s):\n%s", je.text, o->buf);
    return v;
}

/* ---- the one filter language -------------------------------------------------------------------- */

static void test_filter_shorthands(void **st)
{
    (void)st;
    char db[400];
    snprintf(db, sizeof db, "%s/filter.db", g_dir);
    /* two failed test-fail jobs, one succeeded echo-worker job */
    check_cmd(0, NULL, "'%s' submit test-fail --max-attempts 1 --count 2 --db '%s' --create", ASPEN_BIN,
          db);
    check_cmd(0, NULL, "'%s' submit echo-worker --payload '{\"a\":1}' --db '%s'", ASPEN_BIN, db);
    check_cmd(0, NULL, "'%s' worker --until-idle --quiet --db '%s'", ASPEN_BIN, db);

    const char *same[] = {"guest:test-fail failed", "binary:test-fail state:failed",
                          "test-fail failed", "failed guest:test-fail"};
    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
        out o = run("'%s' jobs --filter '%s' --json --db '%s' 2>/dev/null", ASPEN_BIN, same[i], db);
        expect_out(&o, 0, NULL);
        json_t *arr = json_of(&o);
        if (json_array_size(arr) != 2)
            fail_msg("--filter '%s': %zu jobs, want 2:\n%s", same[i], json_array_size(arr), o.buf);
        json_decref(arr);
        free(o.buf);
    }
    check_cmd(0, "succeeded", "'%s' jobs --filter 'echo-worker' --db '%s'", ASPEN_BIN, db);
    check_cmd(0, "(no jobs match)", "'%s' jobs --filter 'guest:echo-worker failed' --db '%s'",
          ASPEN_BIN, db);
    /* the console's #N */
    check_cmd(0, "echo-worker", "'%s' jobs --filter '#3' --db '%s'", ASPEN_BIN, db);
    /* errors: the term, the valid keys, the near miss; exit 2 (usage) */
    check_cmd(2, "did you mean 'state:'?", "'%s' jobs --filter 'stat:failed' --db '%s'", ASPEN_BIN, db);
    check_cmd(2, "Valid keys: state: type: guest:", "'%s' jobs --filter 'colour:red' --db '%s'",
          ASPEN_BIN, db);
    check_cmd(2, "did you mean 'failed'?", "'%s' jobs --state faild --db '%s'", ASPEN_BIN, db);
    check_cmd(2, "did you mean 'guest:'?", "'%s' retry --failed --filter 'gest:x' --db '%s'",
          ASPEN_BIN, db);
    /* retry --failed speaks the same language */
    check_cmd(0, "2 failed jobs queued again", "'%s' retry --failed --filter 'guest:test-fail' --db '%s'",
          ASPEN_BIN, db);
}

/* ---- --db must exist ------------------------------------------------------------------------------ */

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* aspen retry of a scheduled job (--delay, or backing off) used to queue it at once and say only
 * "queued again": now it changes nothing and says when it runs and that run-now runs it now. A
 * failed job that had a --delay is retried due now, and the line says so with its attempt. */
static void test_retry_scheduled_and_delayed(void **st)
{
    (void)st;
    char db[300];
    snprintf(db, sizeof db, "%s/retry.db", g_dir);
    check_cmd(0, "1\n", "'%s' submit --type echo --delay 1h --db '%s' --create", ASPEN_BIN, db);
    check_cmd(1, "error: job 1 is scheduled, not failed: it runs at ", "'%s' retry 1 --db '%s'",
              ASPEN_BIN, db);
    check_cmd(1, "it was submitted with a delay); nothing changed. To run it now: aspen run-now 1",
              "'%s' retry 1 --db '%s'", ASPEN_BIN, db);
    check_cmd(0, "scheduled", "'%s' show 1 --db '%s'", ASPEN_BIN, db);
    /* a job that fails for good after its delay (times out: 1 attempt) */
    check_cmd(0, "2\n",
              "'%s' submit --type sleep --payload '{\"ms\":5000}' --timeout 100ms --max-attempts 1 "
              "--delay 500ms --db '%s'",
              ASPEN_BIN, db);
    check_cmd(1, "job 2 is scheduled, not failed", "'%s' retry 2 --db '%s'", ASPEN_BIN, db);
    usleep(600 * 1000);
    check_cmd(0, NULL, "'%s' cancel 1 --db '%s'", ASPEN_BIN, db);
    check_cmd(0, NULL, "'%s' worker --until-idle --quiet --db '%s'", ASPEN_BIN, db);
    check_cmd(0, "failed", "'%s' show 2 --db '%s'", ASPEN_BIN, db);
    check_cmd(0, "job 2 queued again: it runs now, as soon as a worker is free (attempt 2 of 2)",
              "'%s' retry 2 --db '%s'", ASPEN_BIN, db);
    check_cmd(1, "error: job 2 is already queued", "'%s' retry 2 --db '%s'", ASPEN_BIN, db);
    check_cmd(1, "no job 99", "'%s' retry 99 --db '%s'", ASPEN_BIN, db);
    /* due now, not after another delay: the worker takes it at once */
    check_cmd(0, NULL, "'%s' worker --until-idle --quiet --db '%s'", ASPEN_BIN, db);
    check_cmd(0, "attempts    2 of 2", "'%s' show 2 --db '%s'", ASPEN_BIN, db);
}

static void test_db_must_exist(void **st)
{
    (void)st;
    char typo[400], nodir[400], msg[600];
    snprintf(typo, sizeof typo, "%s/typo.db", g_dir);
    snprintf(nodir, sizeof nodir, "%s/no/such/dir/x.db", g_dir);
    /* every command that opens the database, the console included */
    const char *cmds[] = {"submit --type echo", "jobs", "show 1", "logs 1", "cancel 1", "rerun 1",
                          "retry 1", "retry --failed", "pause", "resume",
                          "worker --until-idle --quiet", "console"};
    snprintf(msg, sizeof msg, "error: the database %s (--db) does not exist: check the path, or "
             "add --create to make a new database there", typo);
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        check_cmd(1, msg, "'%s' %s --db '%s' </dev/null", ASPEN_BIN, cmds[i], typo);
        if (exists(typo))
            fail_msg("aspen %s created %s", cmds[i], typo);
        check_cmd(1, "does not exist, nor its directory", "'%s' %s --db '%s' </dev/null", ASPEN_BIN,
              cmds[i], nodir);
    }
    /* $ASPEN_DB is a path the user gave, too */
    check_cmd(1, "($ASPEN_DB) does not exist", "ASPEN_DB='%s' '%s' jobs", typo, ASPEN_BIN);
    /* --create makes it, but not its directory */
    check_cmd(1, "its directory", "'%s' submit --type echo --db '%s' --create", ASPEN_BIN, nodir);
    assert_false(exists(nodir));
    check_cmd(0, "1\n", "'%s' submit --type echo --db '%s' --create", ASPEN_BIN, typo);
    check_cmd(0, "echo", "'%s' jobs --db '%s'", ASPEN_BIN, typo);
    /* a directory given as the database */
    check_cmd(1, "is a directory", "'%s' jobs --db '%s'", ASPEN_BIN, g_dir);
    check_cmd(1, "--db needs a path", "'%s' jobs --db ''", ASPEN_BIN);
    /* the default database is created on first use */
    char xdg[400], def[450];
    snprintf(xdg, sizeof xdg, "%s/xdg", g_dir);
    snprintf(def, sizeof def, "%s/aspen/aspen.db", xdg);
    check_cmd(0, "(no jobs match)", "env -u ASPEN_DB XDG_DATA_HOME='%s' '%s' jobs", xdg, ASPEN_BIN);
    assert_true(exists(def));
    /* aspen demo writes jobs of its own: a new --db is created for it (in a directory that exists) */
    check_cmd(1, "its directory", "'%s' demo --db '%s'", ASPEN_BIN, nodir);
}

/* ---- payloads from files and stdin ------------------------------------------------------------ */

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

/* The payload of job id, as `aspen show --json` gives it, compact. */
static char *payload_of(long long id)
{
    out o = run("'%s' show %lld --json --db '%s' 2>/dev/null", ASPEN_BIN, id, g_db);
    expect_out(&o, 0, NULL);
    json_t *j = json_of(&o);
    char *p = json_dumps(json_object_get(j, "payload"), JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(j);
    free(o.buf);
    return p;
}

static long long submit_id(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static long long submit_id(const char *fmt, ...)
{
    char args[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    out o = run("'%s' submit --type echo --db '%s' %s 2>&1", ASPEN_BIN, g_db, args);
    expect_out(&o, 0, NULL);
    long long id = atoll(o.buf);
    assert_true(id > 0);
    free(o.buf);
    return id;
}

/* A JSON document of about n bytes: {"s":"xxxx…"}. */
static char *big_json(size_t n)
{
    char *b = malloc(n + 16);
    assert_non_null(b);
    memcpy(b, "{\"s\":\"", 6);
    memset(b + 6, 'x', n);
    memcpy(b + 6 + n, "\"}", 3);
    return b;
}

/* A PostgreSQL name is a server, not a file: never "does not exist" or "--create"; the store's
 * message about the server it tried, with the password hidden. */
static void test_postgres_name_is_not_a_file(void **st)
{
    (void)st;
    const char *names[] = {"postgresql://aspen:s3cr3t@127.0.0.1:1/aspen",
                           "host=127.0.0.1 port=1 password=s3cr3t dbname=aspen"};
    const char *cmds[] = {"jobs", "submit --type echo", "worker --until-idle --quiet"};
    for (size_t i = 0; i < 2; i++)
        for (size_t c = 0; c < sizeof cmds / sizeof cmds[0]; c++) {
            out o = run("'%s' %s --db '%s' </dev/null", ASPEN_BIN, cmds[c], names[i]);
            expect_out(&o, 1, "cannot reach the PostgreSQL server");
            if (has(&o, "s3cr3t") || !has(&o, "***") || has(&o, "does not exist"))
                fail_msg("aspen %s --db '%s':\n%s", cmds[c], names[i], o.buf);
            free(o.buf);
        }
    check_cmd(1, "cannot reach the PostgreSQL server", "ASPEN_DB='%s' '%s' jobs", names[0], ASPEN_BIN);
}

static void test_payload_file_and_stdin(void **st)
{
    (void)st;
    char file[400];
    snprintf(file, sizeof file, "%s/p.json", g_dir);
    write_file(file, "{\"from\": \"file\"}\n", 17);
    long long id = submit_id("--payload @'%s'", file);
    char *p = payload_of(id);
    assert_string_equal(p, "{\"from\":\"file\"}");
    free(p);
    id = submit_id("--payload - <<'EOF'\n{\"from\": \"stdin\"}\nEOF\n");
    p = payload_of(id);
    assert_string_equal(p, "{\"from\":\"stdin\"}");
    free(p);
    /* 2 MB: too big for an argument (E2BIG), fine from a file and from stdin */
    size_t n = 2u << 20;
    char *b = big_json(n);
    char big[400];
    snprintf(big, sizeof big, "%s/big.json", g_dir);
    write_file(big, b, strlen(b));
    free(b);
    long long a = submit_id("--payload @'%s'", big);
    long long c = submit_id("--payload - < '%s'", big);
    for (long long x = a; x <= c; x += c - a) {
        p = payload_of(x);
        assert_int_equal(strlen(p), n + 8);
        free(p);
    }
    /* what is not a payload file: each a clear error, nothing submitted */
    char bin[400], dir[400], fifo[400], empty[400];
    snprintf(bin, sizeof bin, "%s/bin.dat", g_dir);
    write_file(bin, "\x7f" "ELF\x02\x01\x01\x00\x00\xff", 10);
    check_cmd(1, "a NUL byte at position 7 (a payload is JSON text; is this a binary file?)",
          "'%s' submit --type echo --payload @'%s' --db '%s'", ASPEN_BIN, bin, g_db);
    write_file(bin, "\xff\xfe{}", 4);
    check_cmd(1, "invalid JSON payload from", "'%s' submit --type echo --payload @'%s' --db '%s'",
          ASPEN_BIN, bin, g_db);
    check_cmd(1, "larger than the 16777216-byte limit",
          "'%s' submit --type echo --payload @/dev/zero --db '%s'", ASPEN_BIN, g_db);
    snprintf(fifo, sizeof fifo, "%s/fifo", g_dir);
    check_cmd(0, NULL, "mkfifo '%s'", fifo);
    /* a FIFO that never ends: read up to the limit, then refused (the writer gets SIGPIPE) */
    check_cmd(1, "larger than the 16777216-byte limit",
          "(yes > '%s' &) ; '%s' submit --type echo --payload @'%s' --db '%s'", fifo, ASPEN_BIN,
          fifo, g_db);
    /* a FIFO that brings a payload works like a file */
    check_cmd(0, NULL, "(printf '{\"via\":\"fifo\"}' > '%s' &) ; '%s' submit --type echo --payload "
          "@'%s' --db '%s'", fifo, ASPEN_BIN, fifo, g_db);
    snprintf(dir, sizeof dir, "%s", g_dir);
    check_cmd(1, "is a directory, not a file", "'%s' submit --type echo --payload @'%s' --db '%s'",
          ASPEN_BIN, dir, g_db);
    check_cmd(1, "cannot open /nonexistent/p.json: No such file or directory",
          "'%s' submit --type echo --payload @/nonexistent/p.json --db '%s'", ASPEN_BIN, g_db);
    snprintf(empty, sizeof empty, "%s/empty.json", g_dir);
    write_file(empty, "", 0);
    check_cmd(1, "invalid JSON payload from", "'%s' submit --type echo --payload @'%s' --db '%s'",
          ASPEN_BIN, empty, g_db);
    check_cmd(1, "--payload @ needs a file name", "'%s' submit --type echo --payload @ --db '%s'",
          ASPEN_BIN, g_db);
    /* aspen run takes the same forms */
    check_cmd(0, "\"from\": \"file\"", "'%s' run echo-worker --payload @'%s'", ASPEN_BIN, file);
    check_cmd(1, "larger than the 16777216-byte limit", "'%s' run echo-worker --payload - </dev/zero",
          ASPEN_BIN);
    /* --input (raw bytes) has the same limit and wording: /dev/zero once grew to 1.8 GB */
    check_cmd(1, "/dev/zero is larger than the 16777216-byte limit",
          "'%s' run echo-worker --input /dev/zero", ASPEN_BIN);
    check_cmd(1, "standard input is larger than the 16777216-byte limit",
          "'%s' run echo-worker --input - </dev/zero", ASPEN_BIN);
    check_cmd(1, "is a directory, not a file", "'%s' run echo-worker --input '%s'", ASPEN_BIN, dir);
    /* exactly the limit is still taken: the guest runs (its echo, 6 bytes more, is what is then
     * over the output limit). Its 16 MiB copy took over the default 1 s under a Sanitize build at
     * load 5-8 (CI): the deadline is not what this checks, so it is a long one. */
    check_cmd(1, "output too large: 16777222 bytes",
          "head -c 16777216 /dev/zero | '%s' run echo-worker --input - --memory 64M --timeout 60s",
          ASPEN_BIN);
}

/* On a terminal, `--payload -` says it is reading (a user who forgot to pipe would see nothing);
 * Ctrl-D ends the payload. Driven through a pseudo-terminal. */
static void test_payload_from_a_terminal(void **st)
{
    (void)st;
    int fd;
    pid_t pid = forkpty(&fd, NULL, NULL, NULL);
    assert_true(pid >= 0);
    if (pid == 0) {
        execl(ASPEN_BIN, ASPEN_BIN, "submit", "--type", "echo", "--payload", "-", "--db", g_db,
              (char *)NULL);
        _exit(127);
    }
    char buf[4096];
    size_t len = 0;
    bool asked = false, sent = false;
    for (int i = 0; i < 200 && len < sizeof buf - 1; i++) {
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        if (poll(&pf, 1, 100) > 0) {
            ssize_t n = read(fd, buf + len, sizeof buf - 1 - len);
            if (n <= 0)
                break;
            len += (size_t)n;
            buf[len] = '\0';
        }
        asked = asked || strstr(buf, "reading standard input (end it with Ctrl-D)");
        if (asked && !sent) {
            /* a line, then Ctrl-D at the start of the next: end of input */
            assert_int_equal(write(fd, "{\"tty\":1}\n\x04", 11), 11);
            sent = true;
        }
    }
    int status = 0;
    waitpid(pid, &status, 0);
    close(fd);
    if (!asked || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("exit %d, output:\n%s", WIFEXITED(status) ? WEXITSTATUS(status) : -1, buf);
    long long id = 0;
    for (char *l = strtok(buf, "\r\n"); l; l = strtok(NULL, "\r\n"))
        if (*l >= '1' && *l <= '9')
            id = atoll(l);
    assert_true(id > 0);
    char *p = payload_of(id);
    assert_string_equal(p, "{\"tty\":1}");
    free(p);
}

/* run and submit word the same mistake the same way */
static void test_one_wording(void **st)
{
    (void)st;
    out r = run("'%s' run echo-worker --payload '{\"a\":' 2>&1", ASPEN_BIN);
    out s = run("'%s' submit echo-worker --payload '{\"a\":' --db '%s' 2>&1", ASPEN_BIN, g_db);
    expect_out(&r, 1, "error: invalid JSON payload: line 1, column 5");
    expect_out(&s, 1, NULL);
    if (strcmp(r.buf, s.buf) != 0)
        fail_msg("run says:\n%s\nsubmit says:\n%s", r.buf, s.buf);
    free(r.buf);
    free(s.buf);
    /* the same option in two commands, the same words */
    const char *pairs[][2] = {
        {"run echo-worker --timeout 0", "submit echo-worker --timeout 0"},
        {"run echo-worker --memory lots", "submit echo-worker --memory lots"},
        {"worker --grace x", "console --grace x"},
        {"retry x", "show x"},
    };
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        out a = run("'%s' %s --db '%s' 2>&1 | head -1", ASPEN_BIN, pairs[i][0], g_db);
        out b = run("'%s' %s --db '%s' 2>&1 | head -1", ASPEN_BIN, pairs[i][1], g_db);
        if (strncmp(a.buf, "error: ", 7) != 0 || strcmp(a.buf, b.buf) != 0)
            fail_msg("aspen %s says:\n%s\naspen %s says:\n%s", pairs[i][0], a.buf, pairs[i][1],
                     b.buf);
        free(a.buf);
        free(b.buf);
    }
}

static void test_count(void **st)
{
    (void)st;
    const char *bad[] = {"0", "-1", "99999999999", "99999999999999999999999", "abc", "3x", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char want[200];
        snprintf(want, sizeof want, "error: --count wants a whole number from 1 to 100000, not '%s'",
                 bad[i]);
        check_cmd(2, want, "'%s' submit --type echo --count '%s' --db '%s'", ASPEN_BIN, bad[i], g_db);
    }
    out o = run("'%s' submit --type echo --count 3 --db '%s'", ASPEN_BIN, g_db);
    expect_out(&o, 0, NULL);
    long long a = 0, b = 0, c = 0;
    assert_int_equal(sscanf(o.buf, "%lld\n%lld\n%lld\n", &a, &b, &c), 3);
    assert_true(b == a + 1 && c == b + 1);
    free(o.buf);
}

/* ---- --jsonl ------------------------------------------------------------------------------------ */

static long long n_jobs(const char *db)
{
    out o = run("'%s' jobs --all --json --db '%s' 2>/dev/null", ASPEN_BIN, db);
    expect_out(&o, 0, NULL);
    json_t *j = json_of(&o);
    long long n = (long long)json_array_size(j);
    json_decref(j);
    free(o.buf);
    return n;
}

static void test_jsonl(void **st)
{
    (void)st;
    char db[400], f[400];
    snprintf(db, sizeof db, "%s/jsonl.db", g_dir);
    snprintf(f, sizeof f, "%s/jobs.jsonl", g_dir);
    check_cmd(0, NULL, "'%s' jobs --db '%s' --create", ASPEN_BIN, db);
    const char ok[] = "{\"n\":1}\n{\"n\":2}\r\n\n   \n[3]\n\"four\"";
    write_file(f, ok, sizeof ok - 1);
    check_cmd(0, NULL, "'%s' submit --type echo --jsonl '%s' --db '%s'", ASPEN_BIN, f, db);
    assert_int_equal(n_jobs(db), 4);
    /* a bad line: named by number, nothing of its batch submitted */
    const char bad[] = "{\"n\":1}\n{\"n\":2}\n{\"n\":\n{\"n\":4}\n";
    write_file(f, bad, sizeof bad - 1);
    check_cmd(1, "line 3: invalid JSON payload: line 1, column 5", "'%s' submit --type echo --jsonl "
          "'%s' --db '%s'", ASPEN_BIN, f, db);
    check_cmd(1, "nothing of lines 1-3 was submitted", "'%s' submit --type echo --jsonl '%s' --db '%s'",
          ASPEN_BIN, f, db);
    assert_int_equal(n_jobs(db), 4);
    /* batches of 2: the first batch went in, the bad line's batch did not */
    out o = run("'%s' submit --type echo --jsonl '%s' --batch 2 --db '%s'", ASPEN_BIN, f, db);
    expect_out(&o, 1, "line 3: invalid JSON payload");
    assert_true(has(&o, "nothing of lines 3-3 was submitted (the 2 jobs of the lines before were"));
    free(o.buf);
    assert_int_equal(n_jobs(db), 6);
    /* stdin */
    check_cmd(0, NULL, "printf '{\"s\":1}\\n{\"s\":2}\\n' | '%s' submit --type echo --jsonl - --db '%s'",
          ASPEN_BIN, db);
    assert_int_equal(n_jobs(db), 8);
    /* a 10 MB line is a payload like any other; a line over the 16 MiB limit is refused, named */
    size_t ten = 10u << 20;
    char *b = big_json(ten);
    FILE *fp = fopen(f, "wb");
    assert_non_null(fp);
    fprintf(fp, "{\"first\":true}\n%s\n", b);
    fclose(fp);
    check_cmd(0, NULL, "'%s' submit --type echo --jsonl '%s' --db '%s'", ASPEN_BIN, f, db);
    assert_int_equal(n_jobs(db), 10);
    free(b);
    b = big_json(17u << 20);
    fp = fopen(f, "wb");
    assert_non_null(fp);
    fprintf(fp, "{\"first\":true}\n%s\n{}\n", b);
    fclose(fp);
    free(b);
    check_cmd(1, "line 2: the line is longer than the 16777216-byte payload limit",
          "'%s' submit --type echo --jsonl '%s' --db '%s'", ASPEN_BIN, f, db);
    assert_int_equal(n_jobs(db), 10);
    /* binary and empty input, and option mistakes */
    write_file(f, "{}\n\x00\x01\x02\n", 7);
    check_cmd(1, "line 2: invalid JSON payload: a NUL byte at position 0",
          "'%s' submit --type echo --jsonl '%s' --db '%s'", ASPEN_BIN, f, db);
    write_file(f, "\n\n", 2);
    check_cmd(1, "has no jobs", "'%s' submit --type echo --jsonl '%s' --db '%s'", ASPEN_BIN, f, db);
    check_cmd(1, "cannot open --jsonl /nonexistent.jsonl", "'%s' submit --type echo --jsonl "
          "/nonexistent.jsonl --db '%s'", ASPEN_BIN, db);
    check_cmd(2, "leave out --payload", "'%s' submit --type echo --jsonl '%s' --payload '{}' --db '%s'",
          ASPEN_BIN, f, db);
    check_cmd(2, "it needs --jsonl FILE", "'%s' submit --type echo --batch 5 --db '%s'", ASPEN_BIN, db);
    assert_int_equal(n_jobs(db), 10);
}

/* ---- did you mean, --version, --json everywhere, durations --------------------------------------- */

static void test_did_you_mean(void **st)
{
    (void)st;
    check_cmd(2, "error: unknown command 'sumbit': did you mean 'submit'?", "'%s' sumbit", ASPEN_BIN);
    check_cmd(2, "did you mean 'jobs'?", "'%s' jbos", ASPEN_BIN);
    check_cmd(2, "error: unknown command 'xyzzy'\n", "'%s' xyzzy", ASPEN_BIN);
    check_cmd(2, "error: unknown option '--limt' for aspen jobs: did you mean '--limit'?",
          "'%s' jobs --limt 5 --db '%s'", ASPEN_BIN, g_db);
    check_cmd(2, "did you mean '--payload'?", "'%s' submit --type echo --paylaod '{}' --db '%s'",
          ASPEN_BIN, g_db);
    check_cmd(2, "did you mean '--follow'?", "'%s' logs 1 --folow --db '%s'", ASPEN_BIN, g_db);
    check_cmd(2, "did you mean '--workers'?", "'%s' console --wrokers 2 --db '%s'", ASPEN_BIN, g_db);
    check_cmd(2, "error: --payload needs a value", "'%s' submit --type echo --payload", ASPEN_BIN);
    check_cmd(2, "error: unknown option '-z' for aspen show", "'%s' show -z 1", ASPEN_BIN);
    check_cmd(2, "options go after the command", "'%s' --json", ASPEN_BIN);
    check_cmd(0, "aspen 0.1.0 (database schema ", "'%s' --version", ASPEN_BIN);
}

static void test_json_on_every_read(void **st)
{
    (void)st;
    char db[400];
    snprintf(db, sizeof db, "%s/read.db", g_dir);
    check_cmd(0, NULL, "'%s' submit echo-worker --payload '{\"hello\":1}' --db '%s' --create",
          ASPEN_BIN, db);
    check_cmd(0, NULL, "'%s' worker --until-idle --quiet --db '%s'", ASPEN_BIN, db);
    /* logs --json: one object a line */
    out o = run("'%s' logs 1 --json --db '%s' 2>/dev/null", ASPEN_BIN, db);
    expect_out(&o, 0, NULL);
    size_t lines = 0;
    for (char *line = strtok(o.buf, "\n"); line; line = strtok(NULL, "\n"), lines++) {
        json_error_t je;
        json_t *j = json_loads(line, 0, &je);
        if (!j)
            fail_msg("not a JSON line: %s", line);
        assert_int_equal(json_integer_value(json_object_get(j, "job")), 1);
        assert_true(json_is_integer(json_object_get(j, "seq")));
        assert_true(json_is_integer(json_object_get(j, "time_ms")));
        assert_true(json_is_string(json_object_get(j, "line")));
        json_decref(j);
    }
    assert_true(lines > 0);
    free(o.buf);
    /* show --json and jobs --json parse */
    o = run("'%s' show 1 --json --db '%s' 2>/dev/null", ASPEN_BIN, db);
    expect_out(&o, 0, NULL);
    json_decref(json_of(&o));
    free(o.buf);
    /* run --json: times are whole microseconds */
    o = run("'%s' run echo-worker --payload '{}' --json 2>/dev/null", ASPEN_BIN);
    expect_out(&o, 0, NULL);
    json_t *j = json_of(&o);
    json_t *stats = json_object_get(j, "stats");
    const char *keys[] = {"cold_start_us", "run_us", "total_us"};
    for (size_t i = 0; i < 3; i++)
        if (!json_is_integer(json_object_get(stats, keys[i])))
            fail_msg("stats.%s is not an integer:\n%s", keys[i], o.buf);
    json_decref(j);
    free(o.buf);
    /* show: durations for people */
    o = run("'%s' show 1 --db '%s'", ASPEN_BIN, db);
    expect_out(&o, 0, "timeout 30 s");
    const char *att = strstr(o.buf, "attempt 1");
    assert_non_null(att);
    const char *eol = strchr(att, '\n');
    if (!(memmem(att, (size_t)(eol - att), " us ", 4) || memmem(att, (size_t)(eol - att), " ms ", 4)))
        fail_msg("attempt line without a duration:\n%s", o.buf);
    free(o.buf);
}

/* Times a person reads are durations (184 us, 12.3 ms, 10.3 s), never a raw count of 4 or more
 * digits of us or ms: aspen demo prints several; and its "all jobs done" comes after every job. */
static void test_demo_durations(void **st)
{
    (void)st;
    char db[400];
    snprintf(db, sizeof db, "%s/demo.db", g_dir);
    out o = run("'%s' demo --db '%s' 2>&1", ASPEN_BIN, db);
    expect_out(&o, 0, "all jobs done: the first 10 in ");
    /* the last job's lines come before "all jobs done" (trial 10: the rerun's came after it) */
    const char *rerun = strstr(o.buf, ": the echo job rerun: a warm VM");
    const char *done = strstr(o.buf, "\nall jobs done");
    if (!rerun || !done || rerun > done || strstr(done, "    log  [job ") ||
        strstr(done, "\n== job "))
        fail_msg("a job's lines after \"all jobs done\":\n%s", o.buf);
    for (const char *p = o.buf; *p; p++) {
        size_t d = strspn(p, "0123456789");
        if (d >= 4 && (strncmp(p + d, " us", 3) == 0 || strncmp(p + d, " ms", 3) == 0))
            fail_msg("a raw %.*s in the demo's output:\n%s", (int)(d + 3), p, o.buf);
        if (d)
            p += d - 1;
    }
    assert_true(has(&o, " from start to stored"));
    free(o.buf);
}

/* ---- table columns in display columns ---------------------------------------------------------- */

/* Display columns of UTF-8 text, by the C library's wcwidth in C.UTF-8 (an oracle independent of
 * the CLI's own table). */
static int columns(const char *s, size_t n)
{
    mbstate_t ms = {0};
    int cols = 0;
    for (size_t i = 0; i < n;) {
        wchar_t wc;
        size_t l = mbrtowc(&wc, s + i, n - i, &ms);
        if (l == (size_t)-1 || l == (size_t)-2)
            fail_msg("not UTF-8 at byte %zu of %.*s", i, (int)n, s);
        int w = wcwidth(wc);
        cols += w < 0 ? 0 : w;
        i += l ? l : 1;
    }
    return cols;
}

static void test_table_columns(void **st)
{
    (void)st;
    char db[400], guest[500];
    snprintf(db, sizeof db, "%s/cols.db", g_dir);
    snprintf(guest, sizeof guest, "%s/\xe3\x82\xb2\xe3\x82\xb9\xe3\x83\x88\xe6\x97\xa5\xe6\x9c\xac"
             "\xe8\xaa\x9e\xe3\x81\xae\xe5\x90\x8d\xe5\x89\x8d-e\xcc\x81-worker", g_dir); /* ゲスト日本語の名前-é-worker */
    check_cmd(0, NULL, "cp '%s/echo-worker' '%s'", GUEST_DIR, guest);
    const char *types[] = {
        "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xae\xe3\x81\xa8\xe3\x81\xa6\xe3\x82\x82", /* 日本語のとても: 14 columns */
        "e\xcc\x81" "e\xcc\x81" "e\xcc\x81", /* three é with combining accents: 3 columns */
        "caf\xc3\xa9-\xc3\xa9t\xc3\xa9-\xc3\xa0-la-carte", /* precomposed, over 12 columns */
        "\xf0\x9f\x9a\x80\xf0\x9f\x9a\x80\xf0\x9f\x9a\x80\xf0\x9f\x9a\x80\xf0\x9f\x9a\x80\xf0\x9f\x9a\x80\xf0\x9f\x9a\x80", /* 🚀 x7 */
        "ab\xe3\x81\x82", /* ab + one wide: 4 columns, not cut */
        "echo",
    };
    check_cmd(0, NULL, "'%s' submit '%s' --db '%s' --create", ASPEN_BIN, guest, db);
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        check_cmd(0, NULL, "'%s' submit --type '%s' --any-type --db '%s'", ASPEN_BIN, types[i], db);
    out o = run("'%s' jobs --db '%s' 2>&1", ASPEN_BIN, db);
    expect_out(&o, 0, NULL);
    /* every row's TRIES column ("0/3") starts at the column the header's TRIES does */
    int want = -1, rows = 0;
    for (char *line = strtok(o.buf, "\n"); line; line = strtok(NULL, "\n")) {
        const char *at = strstr(line, want < 0 ? "TRIES" : "0/3");
        assert_non_null(at);
        int c = columns(line, (size_t)(at - line));
        if (want < 0)
            want = c;
        else if (c != want)
            fail_msg("row at column %d, header at %d:\n%s", c, want, line);
        rows++;
    }
    assert_int_equal(rows, 8);
    free(o.buf);
    o = run("'%s' jobs --db '%s' 2>&1", ASPEN_BIN, db);
    /* cut ones end in "...", whole characters before it; short ones are whole */
    assert_true(has(&o, "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xae... ")); /* 日本語の... */
    assert_true(has(&o, " e\xcc\x81" "e\xcc\x81" "e\xcc\x81 "));
    assert_true(has(&o, " ab\xe3\x81\x82 "));
    assert_true(has(&o, "\xf0\x9f\x9a\x80\xf0\x9f\x9a\x80\xf0\x9f\x9a\x80\xf0\x9f\x9a\x80... "));
    free(o.buf);
}

static int setup_all(void **state)
{
    (void)state;
    if (cli_scratch_dir(g_dir, sizeof g_dir, "jobs") != 0)
        return -1;
    snprintf(g_db, sizeof g_db, "%s/jobs.db", g_dir);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "'%s' jobs --db '%s' --create >/dev/null", ASPEN_BIN, g_db);
    return system(cmd) == 0 ? 0 : -1;
}

static int teardown_all(void **state)
{
    (void)state;
    return cli_remove_tree(g_dir);
}

int main(void)
{
    if (!setlocale(LC_CTYPE, "C.UTF-8")) {
        fprintf(stderr, "the C.UTF-8 locale is missing\n");
        return 1;
    }
    setenv("ASPEN_GUEST_DIR", GUEST_DIR, 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_filter_shorthands),
        cmocka_unit_test(test_db_must_exist),
        cmocka_unit_test(test_retry_scheduled_and_delayed),
        cmocka_unit_test(test_postgres_name_is_not_a_file),
        cmocka_unit_test(test_payload_file_and_stdin),
        cmocka_unit_test(test_payload_from_a_terminal),
        cmocka_unit_test(test_one_wording),
        cmocka_unit_test(test_count),
        cmocka_unit_test(test_jsonl),
        cmocka_unit_test(test_did_you_mean),
        cmocka_unit_test(test_json_on_every_read),
        cmocka_unit_test(test_table_columns),
        cmocka_unit_test(test_demo_durations),
    };
    return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
