/* tests/cli/test_cli_polish.c — what a new user meets first with the real `aspen` program and
 * scripts/build-guest.sh, run as separate processes: `aspen run` gives a guest's output byte for
 * byte into a file (no newline added, binary bytes kept), and the messages for the usual mistakes
 * say what is wrong and what to do; the complete C guest of docs/ABI.md section 9 and README.md,
 * taken from the documents' text, builds with scripts/build-guest.sh and runs; `aspen replay
 * --calls` lists what a record holds and an edited replay reports what the edit changed. They
 * need /dev/kvm and fail, never skip, without it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cli_support.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char g_dir[256];

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char *buf = malloc(1 << 20);
    assert_non_null(buf);
    *len = fread(buf, 1, 1 << 20, f);
    fclose(f);
    return buf;
}

/* ---- 1. aspen run: the exact bytes into a file -------------------------------------------------- */

/* test-quiet-echo outputs its input unchanged: what lands in the file must be the input. */
static void run_exact(const void *data, size_t len)
{
    char in[400], res[400];
    snprintf(in, sizeof in, "%s/in.bin", g_dir);
    snprintf(res, sizeof res, "%s/out.bin", g_dir);
    write_file(in, data, len);
    out o = run("%s run test-quiet-echo --input %s > %s", ASPEN_BIN, in, res);
    expect_out(&o, 0, NULL);
    free(o.buf);
    size_t got_len;
    char *got = read_all(res, &got_len);
    assert_int_equal(got_len, len);
    assert_memory_equal(got, data, len);
    free(got);
    /* from stdin into a pipe, too */
    o = run("%s run test-quiet-echo --input - < %s 2>/dev/null | cat > %s", ASPEN_BIN, in, res);
    expect_out(&o, 0, NULL);
    free(o.buf);
    got = read_all(res, &got_len);
    assert_int_equal(got_len, len);
    assert_memory_equal(got, data, len);
    free(got);
}

static void test_run_output_no_newline(void **state)
{
    (void)state;
    run_exact("abc", 3);
}

static void test_run_output_empty(void **state)
{
    (void)state;
    run_exact("", 0);
}

static void test_run_output_binary(void **state)
{
    (void)state;
    unsigned char b[300];
    for (size_t i = 0; i < sizeof b; i++)
        b[i] = (unsigned char)(i * 167 + 13); /* every byte value, ending on neither \n nor 0 */
    b[sizeof b - 1] = 0xff;
    run_exact(b, sizeof b);
    run_exact("line\n", 5); /* an output that ends on a newline keeps exactly one */
}

/* The echo-worker from the README: "Echo: " and the input, nothing after it. */
static void test_run_echo_worker_exact(void **state)
{
    (void)state;
    char res[400];
    snprintf(res, sizeof res, "%s/echo.out", g_dir);
    out o = run("printf 'abc' | %s run echo-worker --input - 2>/dev/null > %s", ASPEN_BIN, res);
    expect_out(&o, 0, NULL);
    free(o.buf);
    size_t n;
    char *got = read_all(res, &n);
    assert_int_equal(n, 9);
    assert_memory_equal(got, "Echo: abc", 9);
    free(got);
}

/* ---- 3 and 6. submit, run and jobs: messages that say what is wrong ------------------------------ */

static void test_submit_guest_and_source(void **state)
{
    (void)state;
    out o = run("%s submit echo-worker --source %s --db %s/both.db", ASPEN_BIN, g_dir, g_dir);
    /* what it got, what to drop for either meaning, and the other form --source takes */
    char want[1200];
    snprintf(want, sizeof want,
             "error: got both a guest (echo-worker) and --source %s: give one — drop echo-worker "
             "to build %s, or drop --source to run echo-worker (--source takes DIR or "
             "REPO#REV[:SUBDIR])\n",
             g_dir, g_dir);
    expect_out(&o, 2, want);
    assert_int_equal(o.len, strlen(want)); /* that line alone: no usage dump, nothing submitted */
    assert_false(has(&o, "not both"));
    free(o.buf);
    /* a git source is named as given */
    o = run("%s submit echo-worker --source '%s#main:guests/x' --db %s/both.db", ASPEN_BIN, g_dir,
            g_dir);
    expect_out(&o, 2, "#main:guests/x: give one");
    free(o.buf);

    /* Hostile names: a terminal escape is shown escaped, never raw; names of thousands of bytes are
     * cut so the advice still ends the line, and nothing is stored either way. */
    o = run("%s submit \"$(printf 'evil\033]0;pwned\007')\" --source \"$(printf 'src\033[2J')\" "
            "--db %s/both.db",
            ASPEN_BIN, g_dir);
    expect_out(&o, 2, "error: got both a guest (evil");
    assert_null(memchr(o.buf, '\033', o.len));
    assert_null(memchr(o.buf, '\007', o.len));
    assert_true(has(&o, "(--source takes DIR or REPO#REV[:SUBDIR])\n"));
    free(o.buf);
    o = run("%s submit \"$(printf 'g%%.0s' $(seq 3000))\" "
            "--source \"$(printf 's%%.0s' $(seq 3000))\" --db %s/both.db",
            ASPEN_BIN, g_dir);
    expect_out(&o, 2, "error: got both a guest (ggg");
    assert_true(has(&o, "...) and --source sss"));
    assert_true(has(&o, "(--source takes DIR or REPO#REV[:SUBDIR])\n"));
    assert_true(o.len < 1500);
    free(o.buf);
    struct stat st;
    char db[400];
    snprintf(db, sizeof db, "%s/both.db", g_dir);
    assert_int_not_equal(stat(db, &st), 0); /* refused before any database was opened */
}

static void test_submit_source_is_file(void **state)
{
    (void)state;
    char dir[400], file[420];
    snprintf(dir, sizeof dir, "%s/src", g_dir);
    mkdir(dir, 0700);
    snprintf(file, sizeof file, "%s/main.c", dir);
    write_file(file, "int x;\n", 7);
    out o = run("%s submit --source %s --db %s/jobs.db", ASPEN_BIN, file, g_dir);
    expect_out(&o, 1, "is a file, not a directory");
    assert_true(has(&o, file));
    assert_false(has(&o, "not found"));
    free(o.buf);
    o = run("%s submit --source %s/nowhere --db %s/jobs.db", ASPEN_BIN, g_dir, g_dir);
    expect_out(&o, 1, "not found");
    free(o.buf);
}

static void test_submit_source_empty(void **state)
{
    (void)state;
    char dir[400];
    snprintf(dir, sizeof dir, "%s/empty", g_dir);
    mkdir(dir, 0700);
    out o = run("%s submit --source %s --db %s/empty-src.db --create", ASPEN_BIN, dir, g_dir);
    expect_out(&o, 1, "no C sources (*.c or *.S) in");
    free(o.buf);
    /* nothing was stored */
    o = run("%s jobs --json --db %s/empty-src.db --create", ASPEN_BIN, g_dir);
    expect_out(&o, 0, "[]");
    free(o.buf);
    /* a directory with a source is accepted (it is built when it runs) */
    char file[420];
    snprintf(file, sizeof file, "%s/main.c", dir);
    write_file(file, "int x;\n", 7);
    o = run("%s submit --source %s --db %s/empty-src.db", ASPEN_BIN, dir, g_dir);
    expect_out(&o, 0, NULL);
    free(o.buf);
}

/* A --source build that fails (issue 11's trial): `aspen show` prints the compiler's first,
 * fatal line in the job's error, and show and logs print the compiler's output as lines under
 * the field, never a literal "\n"; `aspen replay` says the attempt never ran in a VM; a Rust
 * guest is refused at submit with what to do. */
static void test_source_build_failure_shown(void **state)
{
    (void)state;
    char dir[400], file[450], db[420];
    snprintf(dir, sizeof dir, "%s/evil", g_dir);
    snprintf(db, sizeof db, "%s/evil.db", g_dir);
    mkdir(dir, 0700);
    snprintf(file, sizeof file, "%s/evil.c", dir);
    const char *src = "#include \"/etc/shadow-not-here.h\"\nint f(void) { return 1 }\n";
    write_file(file, src, strlen(src));
    out o = run("%s submit --source %s --db %s --create", ASPEN_BIN, dir, db);
    expect_out(&o, 0, NULL);
    free(o.buf);
    o = run("%s worker --until-idle --quiet --db %s", ASPEN_BIN, db);
    free(o.buf);
    o = run("%s show 1 --db %s", ASPEN_BIN, db);
    expect_out(&o, 0, "\n              /src/evil.c:1:10: fatal error: /etc/shadow-not-here.h");
    assert_false(has(&o, "\\n")); /* no literal backslash-n */
    assert_true(has(&o, "(built when it runs, from its files as they were at submit: sha256 "));
    free(o.buf);
    o = run("%s logs 1 --db %s", ASPEN_BIN, db);
    expect_out(&o, 0, "/src/evil.c:1:10: fatal error:");
    assert_false(has(&o, "\\n"));
    free(o.buf);
    o = run("%s replay 1 --db %s", ASPEN_BIN, db);
    expect_out(&o, 1, "attempt 1 of job 1 never ran in a micro-VM (its guest's build from source "
                      "failed), so there is nothing to replay");
    assert_false(has(&o, "recorded host calls"));
    free(o.buf);
    /* --set numbers host calls and their values from 1, in the option as in its errors */
    o = run("%s replay 1 --set 1.0=5 --db %s", ASPEN_BIN, db);
    expect_out(&o, 2, "--set wants CALL=VALUE or CALL.I=VALUE (host call and value I from 1");
    free(o.buf);

    char rust[400];
    snprintf(rust, sizeof rust, "%s/rusty", g_dir);
    mkdir(rust, 0700);
    snprintf(file, sizeof file, "%s/Cargo.toml", rust);
    write_file(file, "[package]\nname = \"rusty\"\n", 26);
    o = run("%s submit --source %s --db %s", ASPEN_BIN, rust, db);
    expect_out(&o, 1, "holds a Rust guest (a Cargo.toml, no *.c or *.S): --source builds C guests only");
    assert_true(has(&o, "scripts/build-guest.sh"));
    free(o.buf);
    o = run("%s jobs --json --db %s", ASPEN_BIN, db);
    expect_out(&o, 0, "\"id\": 1");
    assert_false(has(&o, "\"id\": 2")); /* nothing stored */
    free(o.buf);
}

static void test_run_payload_and_input(void **state)
{
    (void)state;
    out o = run("%s run echo-worker --payload '{}' --input /dev/null", ASPEN_BIN);
    expect_out(&o, 2, "error: --payload and --input exclude each other");
    free(o.buf);
}

static void test_run_directory(void **state)
{
    (void)state;
    out o = run("%s run %s", ASPEN_BIN, g_dir);
    expect_out(&o, 1, "is a directory, not a guest binary");
    assert_true(has(&o, "scripts/build-guest.sh"));
    assert_true(has(&o, "aspen submit --source"));
    assert_false(has(&o, "not found"));
    free(o.buf);
}

static void test_jobs_says_how_many_more(void **state)
{
    (void)state;
    out o = run("%s submit --type echo --count 57 --db %s/many.db --create", ASPEN_BIN, g_dir);
    expect_out(&o, 0, NULL);
    free(o.buf);
    o = run("%s jobs --db %s/many.db", ASPEN_BIN, g_dir);
    expect_out(&o, 0, "\n50 of 57 shown (--limit N or --all for more)\n");
    free(o.buf);
    o = run("%s jobs --limit 10 --db %s/many.db", ASPEN_BIN, g_dir);
    expect_out(&o, 0, "\n10 of 57 shown (--limit N or --all for more)\n");
    free(o.buf);
    o = run("%s jobs --all --db %s/many.db | grep -c ' echo '", ASPEN_BIN, g_dir);
    expect_out(&o, 0, "57\n");
    free(o.buf);
    o = run("%s jobs --all --db %s/many.db", ASPEN_BIN, g_dir);
    expect_out(&o, 0, NULL);
    assert_false(has(&o, "shown ("));
    free(o.buf);
    o = run("%s jobs --limit 57 --db %s/many.db", ASPEN_BIN, g_dir);
    expect_out(&o, 0, NULL);
    assert_false(has(&o, "shown ("));
    free(o.buf);
    /* --json: stdout is exactly the jobs; the note goes to stderr */
    o = run("%s jobs --json --db %s/many.db 2>/dev/null", ASPEN_BIN, g_dir);
    expect_out(&o, 0, NULL);
    assert_false(has(&o, "shown ("));
    free(o.buf);
    o = run("%s jobs --json --db %s/many.db 2>&1 >/dev/null", ASPEN_BIN, g_dir);
    expect_out(&o, 0, "50 of 57 shown (--limit N or --all for more)\n");
    free(o.buf);
    o = run("%s jobs --help", ASPEN_BIN);
    expect_out(&o, 0, "default 50");
    free(o.buf);
}

/* ---- 2. the documents' complete guest builds and runs ------------------------------------------ */

/* The first ```c block after `anchor` in SOURCE_DIR/doc, written to dir/main.c. */
static void extract_example(const char *doc, const char *anchor, const char *dir)
{
    char path[600];
    snprintf(path, sizeof path, "%s/%s", ASPEN_SOURCE_DIR, doc);
    size_t n;
    char *text = read_all(path, &n);
    text[n < (1 << 20) ? n : (1 << 20) - 1] = '\0';
    char *a = strstr(text, anchor);
    if (!a)
        fail_msg("%s: no \"%s\"", doc, anchor);
    char *start = strstr(a, "```c\n");
    assert_non_null(start);
    start += 5;
    char *end = strstr(start, "\n```");
    assert_non_null(end);
    mkdir(dir, 0700);
    snprintf(path, sizeof path, "%s/main.c", dir);
    write_file(path, start, (size_t)(end - start) + 1);
    free(text);
}

static void build_and_run_example(const char *doc, const char *anchor)
{
    char dir[400], bin[420], res[420];
    snprintf(dir, sizeof dir, "%s/upper", g_dir);
    snprintf(bin, sizeof bin, "%s/upper.bin", g_dir);
    snprintf(res, sizeof res, "%s/upper.out", g_dir);
    extract_example(doc, anchor, dir);
    out o = run("ASPEN_GUEST_WERROR=1 bash %s/scripts/build-guest.sh -q %s -o %s", ASPEN_SOURCE_DIR,
                dir, bin);
    expect_out(&o, 0, NULL);
    free(o.buf);
    o = run("printf 'hello, world' | %s run %s --input - > %s", ASPEN_BIN, bin, res);
    expect_out(&o, 0, "[upper.bin] upper: got 12 bytes");
    free(o.buf);
    size_t n;
    char *got = read_all(res, &n);
    assert_int_equal(n, 12);
    assert_memory_equal(got, "HELLO, WORLD", 12);
    free(got);
}

static void test_abi_example_guest(void **state)
{
    (void)state;
    build_and_run_example("docs/ABI.md", "<!-- tests/cli/test_cli_polish.c builds and runs");
}

static void test_readme_example_guest(void **state)
{
    (void)state;
    build_and_run_example("README.md", "A complete C guest");
}

/* docs/ABI.md section 13's guest (crashy) and its commands, as a user runs them from where the
 * guest's directory is: built with ASPEN_GUEST_DEBUG=1 and -O0, a debugger session through
 * --gdb, a core from `aspen run --core` and the engine's cores through `aspen core`, each read by
 * gdb. What the document pastes as output is checked here, less the addresses and paths. */
static void test_abi_core_example(void **state)
{
    (void)state;
    char dir[400], bin[420], core[420], db[420], elf[420];
    snprintf(dir, sizeof dir, "%s/crashy", g_dir);
    snprintf(bin, sizeof bin, "%s/crashy.bin", g_dir);
    snprintf(core, sizeof core, "%s/crashy.core", g_dir);
    snprintf(db, sizeof db, "%s/crashy.db", g_dir);
    snprintf(elf, sizeof elf, "%s/crashy.elf", g_dir);
    extract_example("docs/ABI.md", "<!-- tests/cli/test_cli_polish.c builds this guest", dir);
    /* by its bare name, from the directory that holds it, as the document does */
    out o = run("cd %s && ASPEN_GUEST_DEBUG=1 ASPEN_GUEST_OPT=-O0 ASPEN_GUEST_WERROR=1 bash "
                "%s/scripts/build-guest.sh crashy -o %s",
                g_dir, ASPEN_SOURCE_DIR, bin);
    expect_out(&o, 0, "built crashy.bin (");
    free(o.buf);

    /* the debugger: break on the handler, read an argument, let it finish */
    o = run("cd %s && rm -f gdb.out gdb.err && "
            "(printf fine | timeout 60 %s run %s --input - --gdb 127.0.0.1:0 "
            ">gdb.out 2>gdb.err &) && "
            "for i in $(seq 200); do grep -q 'waiting for gdb' gdb.err && break; sleep 0.1; "
            "done && "
            "port=$(sed -n 's/.*waiting for gdb on 127\\.0\\.0\\.1:\\([0-9]*\\).*/\\1/p' "
            "gdb.err) && "
            "timeout 60 gdb -nx -batch %s -ex \"target remote 127.0.0.1:$port\" -ex 'break crashy' "
            "-ex continue -ex 'print len' -ex continue && "
            "for i in $(seq 200); do [ -s gdb.out ] && break; sleep 0.1; done; cat gdb.out",
            g_dir, ASPEN_BIN, bin, bin);
    expect_out(&o, 0, "Breakpoint 1, crashy (in=");
    assert_true(has(&o, "\"fine\", len=4, out="));
    assert_true(has(&o, "crashy/main.c:9\n"));
    assert_true(has(&o, "$1 = 4\n"));
    assert_true(has(&o, "[Inferior 1 (Remote target) exited normally]"));
    assert_true(has(&o, "\nfine")); /* aspen run's own output, after the session */
    free(o.buf);

    /* aspen run --core, and gdb on it */
    o = run("printf crash | %s run %s --input - --core %s", ASPEN_BIN, bin, core);
    expect_out(&o, 1, "[aspen] core of the failed run written to ");
    assert_true(has(&o, "error: guest CPU fault: page fault (#PF) (vector 14, error code 0x6)"));
    assert_true(has(&o, "writing address 0x0 — a null pointer dereference"));
    free(o.buf);
    o = run("gdb -nx -batch -ex bt %s %s", bin, core);
    expect_out(&o, 0, "Program terminated with signal SIGSEGV, Segmentation fault.");
    assert_true(has(&o, " in crash_here (where=0x0) at "));
    assert_true(has(&o, "crashy/main.c:5\n"));
    assert_true(has(&o, " in crashy (in="));
    assert_true(has(&o, "\"crash\", len=5, out="));
    assert_true(has(&o, " in aspen__run_bytes ("));
    free(o.buf);
    /* a run that succeeds writes no core */
    unlink(core);
    o = run("printf fine | %s run %s --input - --core %s", ASPEN_BIN, bin, core);
    expect_out(&o, 0, "fine");
    free(o.buf);
    struct stat st;
    assert_int_not_equal(stat(core, &st), 0);

    /* through the engine: two attempts, two cores; the last one with the ELF it ran */
    o = run("%s submit %s --payload '\"crash\"' --max-attempts 2 --db %s --create", ASPEN_BIN,
            bin, db);
    expect_out(&o, 0, "1\n");
    free(o.buf);
    o = run("%s worker --until-idle --quiet --db %s", ASPEN_BIN, db);
    expect_out(&o, 0, "done: 2 finished (0 succeeded, 1 failed, 1 retried, 0 cancelled)");
    free(o.buf);
    o = run("%s core 1 -o %s --binary %s --db %s", ASPEN_BIN, core, elf, db);
    expect_out(&o, 0, "wrote the core of job 1 attempt 2 (");
    assert_true(has(&o, "open it with: gdb "));
    free(o.buf);
    o = run("gdb -nx -batch -ex bt %s %s", elf, core);
    expect_out(&o, 0, "Core was generated by `crashy.elf'.");
    assert_true(has(&o, " in crash_here (where=0x0) at "));
    assert_true(has(&o, "\"\\\"crash\\\"\", len=7, out=")); /* the payload, quotes and all */
    free(o.buf);
    o = run("%s core 1 --attempt 1 -o %s --db %s", ASPEN_BIN, core, db);
    expect_out(&o, 0, "wrote the core of job 1 attempt 1 (");
    free(o.buf);
}

/* The handler macros as docs/ABI.md writes them: with the ';' (the form that compiles). */
static void test_abi_handler_macros_have_semicolon(void **state)
{
    (void)state;
    char path[600];
    snprintf(path, sizeof path, "%s/docs/ABI.md", ASPEN_SOURCE_DIR);
    size_t n;
    char *text = read_all(path, &n);
    text[n < (1 << 20) ? n : (1 << 20) - 1] = '\0';
    assert_non_null(strstr(text, "`ASPEN_JOB_HANDLER(fn);`"));
    assert_non_null(strstr(text, "`ASPEN_JSON_HANDLER(fn);`"));
    assert_null(strstr(text, "`ASPEN_JOB_HANDLER(fn)` "));
    free(text);
}

/* ---- 4. aspen show gives a failed job's error once ---------------------------------------------- */

static void test_show_error_once(void **state)
{
    (void)state;
    out o = run("%s submit --type sleep --payload '{\"ms\":1,\"fail\":true}' --max-attempts 1 "
                "--db %s/show.db --create",
                ASPEN_BIN, g_dir);
    expect_out(&o, 0, NULL);
    long long id = atoll(o.buf);
    free(o.buf);
    assert_true(id > 0);
    o = run("%s worker --until-idle --quiet --db %s/show.db", ASPEN_BIN, g_dir);
    expect_out(&o, 0, NULL);
    free(o.buf);
    o = run("%s show %lld --db %s/show.db", ASPEN_BIN, id, g_dir);
    expect_out(&o, 0, "(the error above)");
    /* the error line itself is there, once */
    const char *e = strstr(o.buf, "  error       ");
    assert_non_null(e);
    const char *eol = strchr(e, '\n');
    assert_non_null(eol);
    char msg[512];
    size_t len = (size_t)(eol - e) - 14;
    assert_true(len > 0 && len < sizeof msg);
    memcpy(msg, e + 14, len);
    msg[len] = '\0';
    const char *again = strstr(eol, msg);
    if (again)
        fail_msg("the error \"%s\" is shown twice:\n%s", msg, o.buf);
    free(o.buf);
}

/* ---- 6. scripts/build-guest.sh names a missing path as given ------------------------------------ */

/* The help a new user reads: `aspen bench --help` names every benchmark, `aspen worker --help`
 * explains every option it takes; a mistyped benchmark is named with the list. */
static void test_bench_and_worker_help(void **state)
{
    (void)state;
    out o = run("%s bench --help", ASPEN_BIN);
    expect_out(&o, 0, "aspen bench vm");
    static const char *const bench_words[] = {"aspen bench engine", "  vm ", "  engine ", "--json",
                                              "--iterations", "aspen-bench-sort",
                                              "aspen-bench-console"};
    for (size_t i = 0; i < sizeof bench_words / sizeof bench_words[0]; i++)
        if (!has(&o, bench_words[i]))
            fail_msg("aspen bench --help does not mention '%s':\n%s", bench_words[i], o.buf);
    free(o.buf);
    o = run("%s bench engin", ASPEN_BIN);
    expect_out(&o, 2, "unknown benchmark 'engin': did you mean 'engine'? (the benchmarks: vm, engine)");
    free(o.buf);
    o = run("%s worker --help", ASPEN_BIN);
    expect_out(&o, 0, "usage: aspen worker");
    static const char *const worker_opts[] = {"--workers N", "--until-idle", "--quiet",
                                              "--grace MS", "--lease MS", "--recover MS",
                                              "--db PATH", "--create", "--queues A,B", "default 2",
                                              "default 5000"};
    for (size_t i = 0; i < sizeof worker_opts / sizeof worker_opts[0]; i++)
        if (!has(&o, worker_opts[i]))
            fail_msg("aspen worker --help does not explain '%s':\n%s", worker_opts[i], o.buf);
    free(o.buf);
}

/* One log line is "1 line", not "1 lines" (aspen show); a worker of one is "1 worker". */
static void test_singular_counts(void **state)
{
    (void)state;
    out o = run("%s submit echo-worker --payload '{\"message\":\"one\"}' --db %s/one.db --create",
                ASPEN_BIN, g_dir);
    expect_out(&o, 0, NULL);
    free(o.buf);
    o = run("%s worker --until-idle --quiet --workers 1 --db %s/one.db", ASPEN_BIN, g_dir);
    expect_out(&o, 0, "with 1 worker serving every queue (until idle)");
    free(o.buf);
    o = run("%s show 1 --db %s/one.db", ASPEN_BIN, g_dir);
    char want[600]; /* not the default database: the command names it */
    snprintf(want, sizeof want, "logs        1 line (aspen logs 1 --db '%s/one.db')", g_dir);
    expect_out(&o, 0, want);
    free(o.buf);
}

static void test_build_guest_missing_path(void **state)
{
    (void)state;
    out o = run("bash %s/scripts/build-guest.sh %s/does-not-exist", ASPEN_SOURCE_DIR, g_dir);
    char want[600];
    snprintf(want, sizeof want, "there is no directory %s/does-not-exist\n", g_dir);
    expect_out(&o, 1, want);
    assert_false(has(&o, "guests//"));
    free(o.buf);
    o = run("bash %s/scripts/build-guest.sh no-such-guest", ASPEN_SOURCE_DIR);
    expect_out(&o, 1, "unknown guest 'no-such-guest': there is no directory guests/no-such-guest");
    free(o.buf);
    char file[420];
    snprintf(file, sizeof file, "%s/plain-file.c", g_dir);
    write_file(file, "int x;\n", 7);
    o = run("bash %s/scripts/build-guest.sh %s", ASPEN_SOURCE_DIR, file);
    expect_out(&o, 1, "(it is a file: give the directory that holds the guest's sources)");
    free(o.buf);
}

/* Issue 11's replay findings as the trial met them: which host calls were recorded (--calls),
 * a --set of a call without values names it and points at the ones with values, and an edited
 * value's replay says what it changed after the first differing call (the output, log line 1),
 * and what it did not (outcome, error). */
static void test_replay_calls_and_effects(void **state)
{
    (void)state;
    char db[420];
    snprintf(db, sizeof db, "%s/replay.db", g_dir);
    out o = run("%s submit test-clock --payload '\"x\"' --db %s --create", ASPEN_BIN, db);
    expect_out(&o, 0, NULL);
    free(o.buf);
    o = run("%s worker --until-idle --quiet --db %s", ASPEN_BIN, db);
    free(o.buf);
    o = run("%s replay 1 --calls --db %s", ASPEN_BIN, db);
    char want[600]; /* not the default database: the command names it */
    snprintf(want, sizeof want, "job 1 attempt 1 recorded 2 host calls, 1 with values (edit one: "
             "aspen replay 1 --set CALL.I=VALUE --db '%s')\n", db);
    expect_out(&o, 0, want);
    assert_true(has(&o, "\n     1  hl_get_time_ns    1.1="));
    assert_true(has(&o, "  1.2="));
    assert_true(has(&o, "\n     2  hl_println        -\n"));
    free(o.buf);
    o = run("%s replay 1 --set 2=5 --db %s", ASPEN_BIN, db);
    expect_out(&o, 1, "error: --set: host call 2 (hl_println) recorded no values");
    assert_true(has(&o, "the calls with values: host call 1 (hl_get_time_ns) 1.1 = "));
    snprintf(want, sizeof want, "(aspen replay 1 --calls --db '%s' lists every call)", db);
    assert_true(has(&o, want));
    free(o.buf);
    o = run("%s replay 1 --set 1=42 --db %s", ASPEN_BIN, db);
    expect_out(&o, 1, "job 1 attempt 1: diverged at host call 2: host call 2 (hl_println)");
    assert_true(has(&o, "\n  outcome: success, as recorded\n"));
    assert_true(has(&o, "\n  output: differs: recorded 19 bytes (sha256 "));
    assert_true(has(&o, ", first differing at byte 0; replayed \"42"));
    assert_true(has(&o, "\n  error: none, as recorded\n"));
    assert_true(has(&o, "\n  log lines: 1 (as many as recorded); line 1 differs: recorded "
                       "\"clock: "));
    assert_true(has(&o, ", replayed \"clock: 42"));
    free(o.buf);
}

int main(void)
{
    if (access("/dev/kvm", R_OK | W_OK) != 0) {
        fprintf(stderr, "test_cli_polish: /dev/kvm is not usable; these tests need KVM\n");
        return 1;
    }
    snprintf(g_dir, sizeof g_dir, "/tmp/aspen-cli-polish-XXXXXX");
    if (!mkdtemp(g_dir))
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_run_output_no_newline),
        cmocka_unit_test(test_run_output_empty),
        cmocka_unit_test(test_run_output_binary),
        cmocka_unit_test(test_run_echo_worker_exact),
        cmocka_unit_test(test_submit_guest_and_source),
        cmocka_unit_test(test_abi_core_example),
        cmocka_unit_test(test_submit_source_is_file),
        cmocka_unit_test(test_submit_source_empty),
        cmocka_unit_test(test_source_build_failure_shown),
        cmocka_unit_test(test_run_payload_and_input),
        cmocka_unit_test(test_run_directory),
        cmocka_unit_test(test_jobs_says_how_many_more),
        cmocka_unit_test(test_show_error_once),
        cmocka_unit_test(test_build_guest_missing_path),
        cmocka_unit_test(test_bench_and_worker_help),
        cmocka_unit_test(test_singular_counts),
        cmocka_unit_test(test_abi_example_guest),
        cmocka_unit_test(test_readme_example_guest),
        cmocka_unit_test(test_abi_handler_macros_have_semicolon),
        cmocka_unit_test(test_replay_calls_and_effects),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", g_dir);
    return rc;
}
