/* test_engine_pg_hosts.c — issue 8's many-hosts test: three engine processes (pg_host) on one
 * PostgreSQL database, each in a network namespace of its own that reaches the server only
 * through its veth pair (made here: A.B.N.2 in namespace N, A.B.N.1 on the host side, where a
 * small TCP relay forwards to the tests' private server on loopback). A.B.0.0/16 is a private
 * block that no address or route of this machine touches, picked at each run (pick_net) under a
 * lock file, so the test neither collides with the machine's own networks nor with another copy
 * of itself running at the same time (another worktree's suite). 2,000 jobs of 20–200 ms
 * (the built-in sleep handler). Mid-run host 1 is killed with SIGKILL, and host 2 is cut off (its
 * link taken down) for longer than its lease, then restored. Afterwards, in SQL: every job
 * succeeded, none completed twice (one succeeded attempt per job, no succeeded attempt of a job
 * after its first), host 2's late results were refused (no success recorded for its first
 * engine after the cut; it registered again), its and host 1's running jobs were recovered with
 * their attempts recorded, and host 1's within lease + 1 s of the kill.
 *
 * Needs root (namespaces, links) and the fixture "pg" of tests/store. The relay, not the server,
 * listens on the veth addresses, so the fixture's server stays loopback-only. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
#include <libpq-fe.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "aspen_store.h"

#define HOSTS 3
#define JOBS 2000
#define LEASE_MS 3000
#define RECOVER_MS 250
#define WORKERS 8
#define RELAY_PORT 15432

static char server[512], dbname[64], tag[8];
static int net_a, net_b; /* the run's private /16: A.B.0.0 (pick_net) */
static int pg_port;

static int64_t wall_ms(void) { return aspen_store_now_ms(); }

static void sleep_ms(int ms)
{
    struct timespec t = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    char cmd[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static PGconn *db(const char *name)
{
    char ci[700];
    snprintf(ci, sizeof ci, "%s dbname=%s", server, name);
    PGconn *c = PQconnectdb(ci);
    if (PQstatus(c) != CONNECTION_OK)
        fail_msg("connect: %s", PQerrorMessage(c));
    return c;
}

static int64_t sql_int(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int64_t sql_int(const char *fmt, ...)
{
    char sql[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof sql, fmt, ap);
    va_end(ap);
    PGconn *c = db(dbname);
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
        fail_msg("%s: %s", sql, PQerrorMessage(c));
    int64_t v = PQgetisnull(r, 0, 0) ? 0 : strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    PQfinish(c);
    return v;
}

static void admin(const char *sql)
{
    PGconn *c = db("postgres");
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        fail_msg("%s: %s", sql, PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
}

/* ---- the test's network: a private /16 nobody on this machine uses ----------------------------- */

/* Whether any IPv4 address or route of this machine (any table) overlaps a.b.0.0/16. Every
 * dotted quad in `ip` output counts, with its prefix length (/32 when none); the default route
 * does not (it overlaps everything and is not a network of its own). */
static bool net_in_use(int a, int b)
{
    FILE *p = popen("ip -4 -o addr show 2>/dev/null; ip -4 route show table all 2>/dev/null", "r");
    if (!p)
        return true;
    uint32_t mine = ((uint32_t)a << 24) | ((uint32_t)b << 16);
    char tok[80];
    bool used = false;
    while (!used && fscanf(p, "%79s", tok) == 1) {
        unsigned q[4];
        int len = 32;
        int k = sscanf(tok, "%u.%u.%u.%u/%d", &q[0], &q[1], &q[2], &q[3], &len);
        if (k < 4 || q[0] > 255 || q[1] > 255 || q[2] > 255 || q[3] > 255 || len < 1 || len > 32)
            continue;
        uint32_t addr = (q[0] << 24) | (q[1] << 16) | (q[2] << 8) | q[3];
        int l = len < 16 ? len : 16;
        uint32_t mask = 0xffffffffu << (32 - l);
        used = (addr & mask) == (mine & mask);
    }
    pclose(p);
    return used;
}

/* The candidates: 10.16.0.0/16 … 10.254.0.0/16, then 172.16.0.0/16 … 172.31.0.0/16, tried from
 * index `start` on (wrapping). 0 and the block into *a, *b; -1 when every one is in use. */
#define NET_CANDIDATES (239 + 16)
static int pick_net(unsigned start, int *a, int *b)
{
    for (unsigned i = 0; i < NET_CANDIDATES; i++) {
        unsigned c = (start + i) % NET_CANDIDATES;
        int ca = c < 239 ? 10 : 172, cb = c < 239 ? 16 + (int)c : 16 + (int)(c - 239);
        if (!net_in_use(ca, cb)) {
            *a = ca;
            *b = cb;
            return 0;
        }
    }
    return -1;
}

/* Held from picking the block until its addresses are on the links (then the next run's pick
 * sees them as in use), so two runs never pick the same block. */
static int net_lock(void)
{
    int fd = open("/tmp/aspen-hosts-net.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0 || flock(fd, LOCK_EX) != 0)
        fail_msg("cannot lock /tmp/aspen-hosts-net.lock: %s", strerror(errno));
    return fd;
}

/* ---- the relay: A.B.N.1:RELAY_PORT → 127.0.0.1:pg_port, in a child process ------------------ */

#define MAX_PAIRS 128

static int listen_on(const char *ip)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(RELAY_PORT)};
    inet_pton(AF_INET, ip, &a.sin_addr);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 64) != 0) {
        fprintf(stderr, "relay: listen on %s: %s\n", ip, strerror(errno));
        _exit(3);
    }
    return fd;
}

static int upstream(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)pg_port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void relay_main(void)
{
    int ls[HOSTS];
    for (int i = 0; i < HOSTS; i++) {
        char ip[32];
        snprintf(ip, sizeof ip, "%d.%d.%d.1", net_a, net_b, i + 1);
        ls[i] = listen_on(ip);
    }
    int a[MAX_PAIRS], b[MAX_PAIRS], n = 0; /* a: the host's side, b: the server's */
    printf("ready\n");
    fflush(stdout);
    for (;;) {
        struct pollfd p[HOSTS + 2 * MAX_PAIRS];
        int k = 0;
        for (int i = 0; i < HOSTS; i++)
            p[k++] = (struct pollfd){.fd = ls[i], .events = POLLIN};
        for (int i = 0; i < n; i++) {
            p[k++] = (struct pollfd){.fd = a[i], .events = POLLIN};
            p[k++] = (struct pollfd){.fd = b[i], .events = POLLIN};
        }
        if (poll(p, (nfds_t)k, -1) < 0)
            continue;
        for (int i = 0; i < HOSTS; i++)
            if (p[i].revents & POLLIN) {
                int c = accept4(ls[i], NULL, NULL, SOCK_CLOEXEC);
                int u = c >= 0 && n < MAX_PAIRS ? upstream() : -1;
                if (u < 0) {
                    if (c >= 0)
                        close(c);
                    continue;
                }
                a[n] = c;
                b[n] = u;
                n++;
            }
        for (int i = n - 1; i >= 0; i--) {
            struct pollfd *pa = &p[HOSTS + 2 * i], *pb = &p[HOSTS + 2 * i + 1];
            bool dead = false;
            char buf[65536];
            if (pa->revents & (POLLIN | POLLHUP | POLLERR)) {
                ssize_t r = read(a[i], buf, sizeof buf);
                dead = r <= 0 || write(b[i], buf, (size_t)r) != r;
            }
            if (!dead && (pb->revents & (POLLIN | POLLHUP | POLLERR))) {
                ssize_t r = read(b[i], buf, sizeof buf);
                dead = r <= 0 || write(a[i], buf, (size_t)r) != r;
            }
            if (dead) {
                close(a[i]);
                close(b[i]);
                a[i] = a[n - 1];
                b[i] = b[n - 1];
                n--;
            }
        }
    }
}

/* ---- hosts ------------------------------------------------------------------------------------ */

struct host {
    pid_t pid;
    int64_t engine; /* its first engine id */
    char log[300];
};

static void start_host(struct host *h, int n)
{
    char ci[400], ns[48];
    snprintf(ns, sizeof ns, "aspen%s-%d", tag, n);
    snprintf(ci, sizeof ci, "host=%d.%d.%d.1 port=%d user=aspen dbname=%s connect_timeout=2",
             net_a, net_b, n, RELAY_PORT, dbname);
    snprintf(h->log, sizeof h->log, "/tmp/aspen-hosts-%s-%d.log", tag, n);
    int out[2];
    assert_int_equal(pipe(out), 0);
    h->pid = fork();
    assert_true(h->pid >= 0);
    if (h->pid == 0) {
        dup2(out[1], 1);
        int err = open(h->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(err, 2);
        close(out[0]);
        char cache[64], workers[8], lease[16], rec[16];
        snprintf(cache, sizeof cache, "/tmp/aspen-hosts-%s-%d-cache", tag, n);
        snprintf(workers, sizeof workers, "%d", WORKERS);
        snprintf(lease, sizeof lease, "%d", LEASE_MS);
        snprintf(rec, sizeof rec, "%d", RECOVER_MS);
        execlp("ip", "ip", "netns", "exec", ns, PG_HOST, ci, workers, lease, rec, cache,
               (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    FILE *f = fdopen(out[0], "r");
    char line[128] = "";
    if (!fgets(line, sizeof line, f) || sscanf(line, "engine %lld", (long long *)&h->engine) != 1)
        fail_msg("host %d did not start (see %s)", n, h->log);
    fclose(f);
}

static void net_down(void)
{
    for (int n = 1; n <= HOSTS; n++) {
        sh("ip netns del aspen%s-%d 2>/dev/null", tag, n);
        sh("ip link del vh%s%d 2>/dev/null", tag, n);
    }
}

static void net_up(void)
{
    for (int n = 1; n <= HOSTS; n++) {
        char ns[48], vh[32], vn[32];
        snprintf(ns, sizeof ns, "aspen%s-%d", tag, n);
        snprintf(vh, sizeof vh, "vh%s%d", tag, n);
        snprintf(vn, sizeof vn, "vn%s%d", tag, n);
        if (sh("ip netns add %s", ns) || sh("ip link add %s type veth peer name %s", vh, vn) ||
            sh("ip link set %s netns %s", vn, ns) ||
            sh("ip addr add %d.%d.%d.1/24 dev %s && ip link set %s up", net_a, net_b, n, vh, vh) ||
            sh("ip netns exec %s ip addr add %d.%d.%d.2/24 dev %s", ns, net_a, net_b, n, vn) ||
            sh("ip netns exec %s ip link set %s up && ip netns exec %s ip link set lo up", ns, vn,
               ns))
            fail_msg("setting up network namespace %s failed (this test needs root)", ns);
    }
}

/* What a failed check leaves running is stopped here: processes, namespaces, links, files. */
static pid_t g_pids[HOSTS + 2];

static int cleanup(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof g_pids / sizeof g_pids[0]; i++)
        if (g_pids[i] > 0) {
            kill(g_pids[i], SIGKILL);
            waitpid(g_pids[i], NULL, 0);
            g_pids[i] = 0;
        }
    if (tag[0]) {
        net_down();
        sh("rm -rf /tmp/aspen-hosts-%s-*", tag);
    }
    if (dbname[0]) {
        char sql[128];
        snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", dbname);
        admin(sql);
    }
    return 0;
}

static void test_many_hosts(void **state)
{
    (void)state;
    assert_int_equal(geteuid(), 0);
    const char *dir = getenv("ASPEN_PG_DIR");
    char path[400];
    snprintf(path, sizeof path, "%s/conninfo", dir ? dir : ".");
    FILE *f = fopen(path, "r");
    if (!f || !fgets(server, sizeof server, f))
        fail_msg("no %s: run through ctest (the pg_server_start fixture)", path);
    fclose(f);
    server[strcspn(server, "\n")] = '\0';
    snprintf(path, sizeof path, "%s/port", dir);
    f = fopen(path, "r");
    assert_non_null(f);
    assert_int_equal(fscanf(f, "%d", &pg_port), 1);
    fclose(f);
    snprintf(tag, sizeof tag, "%04x", (unsigned)getpid() & 0xffff);
    snprintf(dbname, sizeof dbname, "aspen_many_%d", (int)getpid());
    char sql[128];
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", dbname);
    admin(sql);

    /* The jobs, submitted before any host runs (so the queue is the same for all). */
    char ci[700];
    snprintf(ci, sizeof ci, "%s dbname=%s", server, dbname);
    aspen_store *s = NULL;
    aspen_store_error e = {0};
    if (aspen_store_open(ci, NULL, &s, &e) != 0)
        fail_msg("open: %s", e.msg);
    static aspen_store_job_spec specs[JOBS];
    static char payloads[JOBS][32];
    uint64_t x = 88172645463325252ull;
    for (int i = 0; i < JOBS; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        snprintf(payloads[i], sizeof payloads[i], "{\"ms\":%d}", 20 + (int)(x % 181));
        specs[i] = (aspen_store_job_spec){.type = "sleep", .payload = payloads[i],
                                          .max_attempts = 5, .timeout_ms = 10000};
    }
    assert_int_equal(aspen_store_submit_batch(s, specs, JOBS, wall_ms(), NULL, &e), 0);

    net_down();
    int lock = net_lock();
    if (pick_net((unsigned)getpid() * 2654435761u % NET_CANDIDATES, &net_a, &net_b) != 0)
        fail_msg("every private /16 candidate (10.16-254, 172.16-31) overlaps an address or route "
                 "of this machine: nowhere to put the test's links");
    print_message("test network %d.%d.0.0/16\n", net_a, net_b);
    net_up();
    close(lock);
    int rp[2];
    assert_int_equal(pipe(rp), 0);
    pid_t relay = fork();
    assert_true(relay >= 0);
    if (relay == 0) {
        dup2(rp[1], 1);
        relay_main();
        _exit(0);
    }
    g_pids[0] = relay;
    close(rp[1]);
    char line[32] = "";
    FILE *rf = fdopen(rp[0], "r");
    assert_non_null(fgets(line, sizeof line, rf));
    fclose(rf);

    struct host h[HOSTS + 1];
    int64_t t_start = wall_ms();
    for (int n = 1; n <= HOSTS; n++) {
        start_host(&h[n], n);
        g_pids[n] = h[n].pid;
    }
    /* Mid-run: kill host 1, then cut host 2 off for twice its lease. */
    while (sql_int("SELECT count(*) FROM jobs WHERE state = 'succeeded'") < JOBS / 5)
        sleep_ms(20);
    int64_t running1 = sql_int("SELECT count(*) FROM jobs WHERE state = 'running' AND owner = %lld",
                               (long long)h[1].engine);
    kill(h[1].pid, SIGKILL);
    int64_t t_kill = wall_ms();
    waitpid(h[1].pid, NULL, 0);
    g_pids[1] = 0;
    sleep_ms(500);
    int64_t running2 = sql_int("SELECT count(*) FROM jobs WHERE state = 'running' AND owner = %lld",
                               (long long)h[2].engine);
    assert_int_equal(sh("ip link set vh%s2 down", tag), 0);
    int64_t t_cut = wall_ms();
    sleep_ms(2 * LEASE_MS);
    assert_int_equal(sh("ip link set vh%s2 up", tag), 0);
    int64_t t_restore = wall_ms();

    int64_t until = wall_ms() + 180000, done = 0;
    while ((done = sql_int("SELECT count(*) FROM jobs WHERE state = 'succeeded'")) < JOBS &&
           wall_ms() < until)
        sleep_ms(100);
    int64_t t_end = wall_ms();
    /* Host 2 comes back: it must learn it lost its lease and register again. */
    int64_t reregistered = 0;
    for (int i = 0; i < 100 && !reregistered; i++, sleep_ms(100))
        reregistered = sql_int("SELECT count(*) FROM engines WHERE pid = %d AND id <> %lld",
                               (int)h[2].pid, (long long)h[2].engine);
    for (int n = 2; n <= HOSTS; n++) {
        kill(h[n].pid, SIGTERM);
        waitpid(h[n].pid, NULL, 0);
        g_pids[n] = 0;
    }

    print_message("many hosts: %d jobs in %.1f s; host 1 killed with %lld running, host 2 cut off "
                  "%.1f s with %lld running\n",
                  JOBS, (double)(t_end - t_start) / 1000.0, (long long)running1,
                  (double)(t_restore - t_cut) / 1000.0, (long long)running2);
    assert_int_equal(done, JOBS);
    /* Every job finished once: one succeeded attempt each, none completed twice. */
    assert_int_equal(sql_int("SELECT count(*) FROM jobs WHERE state <> 'succeeded'"), 0);
    assert_int_equal(sql_int("SELECT count(*) FROM (SELECT job FROM attempts WHERE outcome ="
                             " 'succeeded' GROUP BY job HAVING count(*) <> 1) x"),
                     0);
    assert_int_equal(sql_int("SELECT count(DISTINCT job) FROM attempts WHERE outcome ="
                             " 'succeeded'"),
                     JOBS);
    /* Host 1's running jobs were rescued, their lost attempts recorded, within lease + 1 s. */
    int64_t rec1 = sql_int("SELECT count(*) FROM attempts WHERE recovered AND engine = %lld",
                           (long long)h[1].engine);
    int64_t rescue1 = sql_int("SELECT max(finished_at) FROM attempts WHERE recovered AND"
                              " engine = %lld",
                              (long long)h[1].engine) -
                      t_kill;
    print_message("host 1: %lld attempts recovered, the last %lld ms after the kill (lease %d)\n",
                  (long long)rec1, (long long)rescue1, LEASE_MS);
    assert_true(running1 > 0);
    assert_true(rec1 > 0 && rec1 <= WORKERS); /* what it had running when killed */
    assert_int_equal(sql_int("SELECT count(*) FROM jobs WHERE owner = %lld", (long long)h[1].engine),
                     0);
    assert_true(rescue1 <= LEASE_MS + 1000);
    /* Host 2's jobs were recovered while it was away; its late results refused: no success of
     * its first engine finished after the cut, and it registered again. */
    int64_t rec2 = sql_int("SELECT count(*) FROM attempts WHERE recovered AND engine = %lld",
                           (long long)h[2].engine);
    int64_t late2 = sql_int("SELECT count(*) FROM attempts WHERE engine = %lld AND outcome ="
                            " 'succeeded' AND finished_at > %lld",
                            (long long)h[2].engine, (long long)(t_cut + 200));
    print_message("host 2: %lld attempts recovered while cut off, %lld late results recorded, "
                  "registered again: %s\n",
                  (long long)rec2, (long long)late2, reregistered ? "yes" : "no");
    assert_true(rec2 > 0 && rec2 <= WORKERS);
    assert_int_equal(late2, 0);
    assert_true(reregistered > 0);
    char grep[400];
    snprintf(grep, sizeof grep, "grep -q 'lost its lease' %s", h[2].log);
    assert_int_equal(sh("%s", grep), 0);
    aspen_store_close(s);
}

/* The block picker steps over a /16 this machine uses: the first candidate is taken by a veth
 * link's address (as another network, or another run of this test, would), and the pick is the
 * next free one. */
static void test_pick_net_skips_used(void **state)
{
    (void)state;
    assert_int_equal(geteuid(), 0);
    int lock = net_lock();
    int a0 = 0, b0 = 0, a1 = 0, b1 = 0;
    assert_int_equal(pick_net(0, &a0, &b0), 0);
    char dev[32];
    snprintf(dev, sizeof dev, "aspd%04x", (unsigned)getpid() & 0xffff); /* its peer: …p */
    if (sh("ip link add %s type veth peer name %sp && ip addr add %d.%d.7.1/24 dev %s", dev, dev,
           a0, b0, dev)) {
        sh("ip link del %s 2>/dev/null", dev);
        fail_msg("cannot add a veth link (this test needs root)");
    }
    bool used = net_in_use(a0, b0);
    int rc = pick_net(0, &a1, &b1);
    sh("ip link del %s", dev);
    close(lock);
    assert_true(used);
    assert_int_equal(rc, 0);
    assert_false(a1 == a0 && b1 == b0);
    assert_false(net_in_use(a1, b1));
    /* a route's prefix counts, not only addresses: loopback's 127.0.0.0/8 covers 127.0.0.0/16 */
    assert_true(net_in_use(127, 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_pick_net_skips_used),
                                       cmocka_unit_test_teardown(test_many_hosts, cleanup)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
