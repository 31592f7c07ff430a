/* engine/gitsrc.c — `--source REPO#REV[:SUBDIR]`: a guest built from a commit of a local git
 * repository (a path or a file:// URL; there is no network here), in the contained build of
 * build.c, cached by the commit and the SDK's version.
 *
 * Everything a submitter gives is hostile, and none of it ever reaches a shell: git runs through
 * execve with a fixed argument vector and a scrubbed environment (no system or global config, no
 * HOME, no prompts, no replace objects, PATH fixed), and only plumbing that reads objects —
 * rev-parse, ls-tree, cat-file — which run no hooks, filters, pagers or fsmonitor, whatever the
 * repository's own config says. A revision that looks like an option (`--upload-pack=...`) or
 * holds anything but the characters of names, hashes and ~^@{}/. is refused before git sees it,
 * and `--end-of-options` stands in front of it anyway. A SUBDIR is relative, without `..` or
 * empty parts. At submit the revision is resolved to its commit, so the job always builds that
 * commit: the job's source reads `git+file:///REPO#COMMIT[:SUBDIR]`; and the commit's tree is
 * exported (as below) into a private temporary directory and checked as a --source directory is
 * (build.c eng_source_refusal: C sources, not Rust, not a plain libc program, guest.flags), so a
 * job that could only fail is refused then, naming the repository, revision, commit and SUBDIR.
 *
 * At build time the tree is read with `ls-tree -r -l` first: submodules, more than 2000 entries,
 * a file over 8 MiB, more than 64 MiB in all or paths deeper than 16 are refused before any
 * content is read; then `cat-file --batch` streams the blobs into a private directory (files with
 * O_EXCL|O_NOFOLLOW, symlinks last and only when their target stays inside the tree), which
 * build.c then builds as any source directory (its own walk checks the tree again). The binary is
 * cached under CACHE/git-<H(commit, subdir, SDK and toolchain digest)>, so a second job of the
 * same commit builds nothing and reads no object. A build error names the job's source
 * (REPO#COMMIT[:SUBDIR]) where build.c wrote the temporary directory's path.
 */
#include "engine_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define GIT_PREFIX "git+file://"
#define GIT_MAX_ENTRIES 2000
#define GIT_MAX_FILE (8u << 20)
#define GIT_MAX_TOTAL (64u << 20)
#define GIT_MAX_DEPTH 16
#define GIT_MAX_REV 200
#define GIT_MAX_SUBDIR 256
#define GIT_LS_MAX (4u << 20) /* ls-tree output read at most */

bool eng_git_is_source(const char *s) { return s && strncmp(s, GIT_PREFIX, strlen(GIT_PREFIX)) == 0; }

static const char *git_program(void)
{
    static const char *const where[] = {"/usr/bin/git", "/bin/git", "/usr/local/bin/git"};
    for (size_t i = 0; i < sizeof where / sizeof where[0]; i++)
        if (access(where[i], X_OK) == 0)
            return where[i];
    return NULL;
}

/* Runs git with argv (after "git --git-dir=G -c ...") and stdin from in_fd (-1: /dev/null); stdout
 * into *out (malloc'd, NUL-terminated, at most cap bytes: more is *cut) or into out_fd when out is
 * NULL; stderr's first line into why. Returns git's exit status, or -1 when it could not run. */
static int run_git(const char *gitdir, const char *const *args, int in_fd, char **out, size_t cap,
                   bool *cut, char *why, size_t whycap)
{
    const char *git = git_program();
    if (!git) {
        snprintf(why, whycap, "git is not installed (apt-get install git)");
        return -1;
    }
    char gd[PATH_MAX + 16];
    snprintf(gd, sizeof gd, "--git-dir=%s", gitdir);
    const char *argv[32];
    size_t n = 0;
    argv[n++] = "git";
    argv[n++] = gd;
    /* the repository's owner may be anyone: only reading objects is asked of it */
    argv[n++] = "-c";
    argv[n++] = "safe.directory=*";
    argv[n++] = "-c";
    argv[n++] = "core.fsmonitor=false";
    for (size_t i = 0; args[i] && n < sizeof argv / sizeof argv[0] - 1; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    static const char *const envp[] = {"PATH=/usr/bin:/bin", "HOME=/nonexistent", "LC_ALL=C",
                                       "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null",
                                       "GIT_TERMINAL_PROMPT=0", "GIT_NO_REPLACE_OBJECTS=1",
                                       "GIT_OPTIONAL_LOCKS=0", "GIT_NO_LAZY_FETCH=1", NULL};
    int op[2], ep[2];
    if (pipe2(op, O_CLOEXEC) != 0)
        return snprintf(why, whycap, "pipe: %s", strerror(errno)), -1;
    if (pipe2(ep, O_CLOEXEC) != 0) {
        close(op[0]);
        close(op[1]);
        return snprintf(why, whycap, "pipe: %s", strerror(errno)), -1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        close(op[0]);
        close(op[1]);
        close(ep[0]);
        close(ep[1]);
        return snprintf(why, whycap, "fork: %s", strerror(errno)), -1;
    }
    if (pid == 0) {
        int in = in_fd >= 0 ? in_fd : open("/dev/null", O_RDONLY);
        if (in < 0 || dup2(in, 0) < 0 || dup2(op[1], 1) < 0 || dup2(ep[1], 2) < 0)
            _exit(127);
        execve(git, (char *const *)argv, (char *const *)envp);
        _exit(127);
    }
    close(op[1]);
    close(ep[1]);
    char *buf = NULL;
    size_t len = 0, bcap = 0;
    if (cut)
        *cut = false;
    if (out) {
        bcap = 65536;
        buf = malloc(bcap + 1);
    }
    char tmp[65536];
    ssize_t r;
    while ((r = read(op[0], tmp, sizeof tmp)) != 0) {
        if (r < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (!out)
            continue;
        if (!buf || len + (size_t)r > cap) {
            if (cut)
                *cut = true;
            continue; /* drain, so git is not blocked */
        }
        if (len + (size_t)r > bcap) {
            size_t nc = bcap;
            while (nc < len + (size_t)r)
                nc *= 2;
            char *nb = realloc(buf, nc + 1);
            if (!nb) {
                if (cut)
                    *cut = true;
                continue;
            }
            buf = nb;
            bcap = nc;
        }
        memcpy(buf + len, tmp, (size_t)r);
        len += (size_t)r;
    }
    close(op[0]);
    char eb[1024];
    size_t el = 0;
    while ((r = read(ep[0], eb + el, sizeof eb - 1 - el)) > 0 && el < sizeof eb - 1)
        el += (size_t)r;
    while (r > 0) /* drain the rest */
        r = read(ep[0], tmp, sizeof tmp);
    close(ep[0]);
    eb[el] = '\0';
    eb[strcspn(eb, "\n")] = '\0';
    snprintf(why, whycap, "%s", eb);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (out) {
        if (buf)
            buf[len] = '\0';
        *out = buf;
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The repository's git directory: REPO/.git (a directory, or a worktree's gitfile), or REPO
 * itself when it is bare. */
static int git_dir_of(const char *repo, char *out, size_t cap, char *why, size_t whycap)
{
    char real[PATH_MAX];
    struct stat st;
    if (!realpath(repo, real) || stat(real, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(why, whycap, "repository %s not found (give a local git repository's path or a "
                 "file:// URL)", repo);
        return -1;
    }
    char p[PATH_MAX + 16];
    snprintf(p, sizeof p, "%s/.git", real);
    if (lstat(p, &st) == 0 && (S_ISDIR(st.st_mode) || S_ISREG(st.st_mode))) {
        snprintf(out, cap, "%s", p);
        return 0;
    }
    char head[PATH_MAX + 16], objects[PATH_MAX + 16];
    snprintf(head, sizeof head, "%s/HEAD", real);
    snprintf(objects, sizeof objects, "%s/objects", real);
    if (stat(head, &st) == 0 && S_ISREG(st.st_mode) && stat(objects, &st) == 0 &&
        S_ISDIR(st.st_mode)) {
        snprintf(out, cap, "%s", real);
        return 0;
    }
    snprintf(why, whycap, "%s is not a git repository (no .git in it, and not a bare repository)",
             real);
    return -1;
}

static bool rev_ok(const char *rev, char *why, size_t cap)
{
    size_t n = strlen(rev);
    if (n == 0) {
        snprintf(why, cap, "no revision after '#': give REPO#REV (a branch, tag or commit)");
        return false;
    }
    if (rev[0] == '-') {
        snprintf(why, cap, "revision '%.80s' looks like an option: a revision cannot start with "
                 "'-'", rev);
        return false;
    }
    if (n > GIT_MAX_REV) {
        snprintf(why, cap, "revision is %zu bytes long (at most %d)", n, GIT_MAX_REV);
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)rev[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  strchr("._/~^@{}-+", c);
        if (!ok) {
            snprintf(why, cap, "revision '%.80s' holds '%s%c': only letters, digits and "
                     "._/~^@{}-+ may name a branch, tag or commit", rev,
                     c < 0x20 || c >= 0x7f ? "\\x" : "", c < 0x20 || c >= 0x7f ? '?' : c);
            return false;
        }
    }
    if (strstr(rev, "..") || strstr(rev, "@{-")) {
        snprintf(why, cap, "revision '%.80s' is a range or a reflog lookup: name one commit",
                 rev);
        return false;
    }
    return true;
}

static bool subdir_ok(const char *sub, char *why, size_t cap)
{
    size_t n = strlen(sub);
    if (n == 0 || n > GIT_MAX_SUBDIR || sub[0] == '/') {
        snprintf(why, cap, "SUBDIR '%.80s' must be a relative path of 1 to %d bytes inside the "
                 "repository", sub, GIT_MAX_SUBDIR);
        return false;
    }
    const char *p = sub;
    while (*p) {
        const char *e = strchr(p, '/');
        size_t k = e ? (size_t)(e - p) : strlen(p);
        if (k == 0 || (k == 1 && p[0] == '.') || (k == 2 && p[0] == '.' && p[1] == '.')) {
            snprintf(why, cap, "SUBDIR '%.80s' holds an empty, '.' or '..' part: name a directory "
                     "inside the repository", sub);
            return false;
        }
        for (size_t i = 0; i < k; i++)
            if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f || p[i] == '\\') {
                snprintf(why, cap, "SUBDIR '%.80s' holds a control character or a backslash",
                         sub);
                return false;
            }
        p += k;
        if (*p == '/')
            p++;
    }
    return true;
}

/* Splits "REPO#REV[:SUBDIR]" (REPO a path or file:// URL) or the canonical
 * "git+file://REPO#COMMIT[:SUBDIR]". */
static int split_spec(const char *spec, char *repo, size_t rcap, char *rev, size_t vcap,
                      char *sub, size_t scap, char *why, size_t wcap)
{
    const char *s = spec;
    if (strncmp(s, GIT_PREFIX, strlen(GIT_PREFIX)) == 0)
        s += strlen(GIT_PREFIX);
    else if (strncmp(s, "file://", 7) == 0)
        s += 7;
    const char *hash = strrchr(s, '#');
    if (!hash) {
        snprintf(why, wcap, "%s names no revision: give REPO#REV[:SUBDIR]", spec);
        return -1;
    }
    size_t rl = (size_t)(hash - s);
    if (rl == 0 || rl >= rcap) {
        snprintf(why, wcap, "no repository before '#' in %.200s", spec);
        return -1;
    }
    memcpy(repo, s, rl);
    repo[rl] = '\0';
    const char *r = hash + 1, *colon = strchr(r, ':');
    size_t vl = colon ? (size_t)(colon - r) : strlen(r);
    if (vl >= vcap) {
        snprintf(why, wcap, "revision is %zu bytes long (at most %d)", vl, GIT_MAX_REV);
        return -1;
    }
    memcpy(rev, r, vl);
    rev[vl] = '\0';
    sub[0] = '\0';
    if (colon) {
        if (strlen(colon + 1) >= scap) {
            snprintf(why, wcap, "SUBDIR is longer than %d bytes", GIT_MAX_SUBDIR);
            return -1;
        }
        snprintf(sub, scap, "%s", colon + 1);
        while (strlen(sub) > 1 && sub[strlen(sub) - 1] == '/')
            sub[strlen(sub) - 1] = '\0';
        if (!subdir_ok(sub, why, wcap))
            return -1;
    }
    return rev_ok(rev, why, wcap) ? 0 : -1;
}

bool eng_git_source_syntax(const char *s)
{
    struct stat st;
    if (!s || !strchr(s, '#'))
        return false;
    if (stat(s, &st) == 0) /* an existing directory whose name holds '#' stays a directory */
        return false;
    return true;
}

/* The tree of the commit (and SUBDIR) exported to a private temporary directory and checked as a
 * source directory is (build.c: C sources, not Rust, not a plain libc program, guest.flags),
 * naming the repository as given, the revision, its commit and the SUBDIR. */
static int check_tree(aspen_engine *eng, const char *canonical, const char *repo, const char *rev,
                      const char *commit, const char *sub, aspen_engine_error *err)
{
    const char *tmpdir = getenv("TMPDIR");
    char tmp[PATH_MAX], dest[PATH_MAX + 8], got[80], why[1024], what[PATH_MAX + 600],
        again[PATH_MAX + 600], checkout[PATH_MAX + 600];
    snprintf(tmp, sizeof tmp, "%s/aspen-gitcheck-XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
    if (!mkdtemp(tmp))
        return eng_err(err, ASPEN_ENGINE_EBINARY, "--source %.300s#%s: cannot create a directory "
                       "to check its tree in (%s): %s", repo, rev, tmp, strerror(errno));
    snprintf(dest, sizeof dest, "%s/src", tmp);
    snprintf(what, sizeof what, "%s%s%scommit %.12s of %.300s (revision %s)",
             sub[0] ? "directory " : "", sub, sub[0] ? " of " : "", commit, repo, rev);
    snprintf(again, sizeof again, "%.300s#%s:%s%s", repo, rev, sub, sub[0] ? "/" : "");
    snprintf(checkout, sizeof checkout, "CHECKOUT%s%s (a checkout of %.300s at %s)",
             sub[0] ? "/" : "", sub, repo, rev);
    int rc;
    if (mkdir(dest, 0700) != 0)
        rc = eng_err(err, ASPEN_ENGINE_EBINARY, "--source %.300s#%s: cannot create %s: %s", repo,
                     rev, dest, strerror(errno));
    else if (eng_git_export(canonical, dest, got, sizeof got, why, sizeof why) != 0)
        rc = eng_err(err, ASPEN_ENGINE_EBINARY, "--source %.300s#%s%s%s: %s", repo, rev,
                     sub[0] ? ":" : "", sub, why);
    else
        rc = eng_source_refusal(eng, dest, what, again, checkout, ASPEN_ENGINE_EBINARY, NULL,
                                NULL, err);
    eng_rm_tree(tmp);
    return rc;
}

/* A build error of an exported tree names the temporary directory (build.c knows no better):
 * every mention of it becomes what the job's source is, "REPO#COMMIT[:SUBDIR]". */
static void name_the_source(aspen_engine_error *err, const char *tmp_src, const char *canonical)
{
    const char *shown = canonical + strlen(GIT_PREFIX);
    char real[PATH_MAX], out[sizeof err->msg];
    const char *names[2] = {tmp_src, realpath(tmp_src, real) ? real : NULL};
    for (int k = 0; k < 2; k++) {
        if (!names[k] || !*names[k])
            continue;
        size_t nl = strlen(names[k]), o = 0;
        for (const char *p = err->msg; *p && o + 1 < sizeof out;) {
            if (strncmp(p, names[k], nl) == 0) {
                o += (size_t)snprintf(out + o, sizeof out - o, "%s", shown);
                if (o >= sizeof out)
                    o = sizeof out - 1;
                p += nl;
            } else {
                out[o++] = *p++;
            }
        }
        out[o] = '\0';
        snprintf(err->msg, sizeof err->msg, "%s", out);
    }
}

int eng_git_resolve(aspen_engine *eng, const char *spec, char **canonical, char *name,
                    size_t name_cap, aspen_engine_error *err)
{
    *canonical = NULL;
    char repo[PATH_MAX], rev[GIT_MAX_REV + 2], sub[GIT_MAX_SUBDIR + 2], why[1024], gitdir[PATH_MAX];
    if (split_spec(spec, repo, sizeof repo, rev, sizeof rev, sub, sizeof sub, why, sizeof why))
        return eng_err(err, ASPEN_ENGINE_EINVAL, "--source %.300s: %s", spec, why);
    if (git_dir_of(repo, gitdir, sizeof gitdir, why, sizeof why))
        return eng_err(err, ASPEN_ENGINE_EINVAL, "--source %.300s: %s", spec, why);
    char want[GIT_MAX_REV + 16];
    snprintf(want, sizeof want, "%s^{commit}", rev);
    const char *args[] = {"rev-parse", "--verify", "--quiet", "--end-of-options", want, NULL};
    char *out = NULL;
    int st = run_git(gitdir, args, -1, &out, 4096, NULL, why, sizeof why);
    char commit[65] = "";
    if (st == 0 && out) {
        size_t n = strspn(out, "0123456789abcdef");
        if (n == 40 || n == 64)
            memcpy(commit, out, n), commit[n] = '\0';
    }
    free(out);
    if (!commit[0])
        return eng_err(err, ASPEN_ENGINE_EINVAL,
                       "--source %.300s: revision '%s' is not a commit of %s%s%s%s", spec, rev,
                       repo, why[0] ? " (git: " : "", why, why[0] ? ")" : "");
    char real[PATH_MAX];
    if (!realpath(repo, real))
        snprintf(real, sizeof real, "%s", repo);
    if (sub[0]) {
        /* the subdirectory must be a directory of that commit */
        char obj[sizeof commit + GIT_MAX_SUBDIR + 4];
        snprintf(obj, sizeof obj, "%s:%s", commit, sub);
        const char *targs[] = {"cat-file", "-t", "--end-of-options", obj, NULL};
        st = run_git(gitdir, targs, -1, &out, 256, NULL, why, sizeof why);
        bool tree = st == 0 && out && strncmp(out, "tree", 4) == 0;
        free(out);
        if (!tree)
            return eng_err(err, ASPEN_ENGINE_EINVAL,
                           "--source %.300s: commit %.12s of %s has no directory %s", spec,
                           commit, real, sub);
    }
    size_t n = strlen(GIT_PREFIX) + strlen(real) + 1 + strlen(commit) + 1 + strlen(sub) + 1;
    char *c = malloc(n);
    if (!c)
        return eng_err(err, ASPEN_ENGINE_ENOMEM, "out of memory");
    snprintf(c, n, "%s%s#%s%s%s", GIT_PREFIX, real, commit, sub[0] ? ":" : "", sub);
    /* and the tree is what a build can take, checked now (the build checks it again), so the
     * submitter hears at once what is wrong, in the repository's words, not a temporary path */
    int rc = check_tree(eng, c, repo, rev, commit, sub, err);
    if (rc) {
        free(c);
        return rc;
    }
    *canonical = c;
    const char *base = sub[0] ? strrchr(sub, '/') : strrchr(real, '/');
    base = base ? base + 1 : sub[0] ? sub : real;
    snprintf(name, name_cap, "%s", base);
    return 0;
}

/* ---- the export ------------------------------------------------------------------------------- */

struct entry {
    char *path;
    char *target; /* a symlink's */
    char oid[65];
    uint64_t size;
    bool link, exec;
};

static void entries_free(struct entry *e, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(e[i].path);
        free(e[i].target);
    }
    free(e);
}

static struct entry *grow(struct entry *e, size_t *cap, size_t n)
{
    if (n < *cap)
        return e;
    size_t c = *cap ? *cap * 2 : 64;
    struct entry *g = realloc(e, c * sizeof *g);
    if (g)
        *cap = c;
    return g;
}

/* Does a symlink at rel with target stay inside the tree (lexically)? */
static bool link_stays(const char *rel, const char *target)
{
    if (!target[0] || target[0] == '/')
        return false;
    int depth = 0;
    for (const char *p = rel; *p; p++)
        depth += *p == '/';
    for (const char *p = target; *p;) {
        const char *e = strchr(p, '/');
        size_t k = e ? (size_t)(e - p) : strlen(p);
        if (k == 2 && p[0] == '.' && p[1] == '.') {
            if (--depth < 0)
                return false;
        } else if (k && !(k == 1 && p[0] == '.')) {
            depth++;
        }
        p += k;
        if (*p == '/')
            p++;
    }
    return true;
}

static bool path_ok(const char *p)
{
    if (!*p || p[0] == '/')
        return false;
    int depth = 0;
    for (const char *s = p; *s;) {
        const char *e = strchr(s, '/');
        size_t k = e ? (size_t)(e - s) : strlen(s);
        if (k == 0 || (k == 1 && s[0] == '.') || (k == 2 && s[0] == '.' && s[1] == '.') ||
            (k == 4 && strncasecmp(s, ".git", 4) == 0))
            return false;
        if (++depth > GIT_MAX_DEPTH)
            return false;
        s += k;
        if (*s == '/')
            s++;
    }
    return true;
}

/* mkdir -p of the parents of rel under root (root exists; we made every part, none is a link). */
static int make_parents(const char *root, const char *rel)
{
    char p[PATH_MAX];
    int n = snprintf(p, sizeof p, "%s/%s", root, rel);
    if (n < 0 || (size_t)n >= sizeof p)
        return -1;
    char *last = strrchr(p, '/');
    if (!last)
        return -1;
    *last = '\0';
    for (char *s = p + strlen(root) + 1; *s; s++)
        if (*s == '/') {
            *s = '\0';
            if (mkdir(p, 0755) != 0 && errno != EEXIST)
                return -1;
            *s = '/';
        }
    if (mkdir(p, 0755) != 0 && errno != EEXIST)
        return -1;
    struct stat st;
    return lstat(p, &st) == 0 && S_ISDIR(st.st_mode) ? 0 : -1;
}

int eng_git_export(const char *canonical, const char *dest, char *commit_out, size_t ccap,
                   char *why, size_t wcap)
{
    char repo[PATH_MAX], commit[GIT_MAX_REV + 2], sub[GIT_MAX_SUBDIR + 2], gitdir[PATH_MAX];
    if (split_spec(canonical, repo, sizeof repo, commit, sizeof commit, sub, sizeof sub, why,
                   wcap) ||
        git_dir_of(repo, gitdir, sizeof gitdir, why, wcap))
        return -1;
    snprintf(commit_out, ccap, "%s", commit);
    char tree[GIT_MAX_REV + GIT_MAX_SUBDIR + 8];
    snprintf(tree, sizeof tree, "%s%s%s", commit, sub[0] ? ":" : "", sub);
    const char *args[] = {"ls-tree", "-r", "-z", "-l", "--full-tree", "--end-of-options", tree,
                          NULL};
    char *out = NULL, gwhy[512];
    bool cut = false;
    int st = run_git(gitdir, args, -1, &out, GIT_LS_MAX, &cut, gwhy, sizeof gwhy);
    if (st != 0 || !out) {
        free(out);
        snprintf(why, wcap, "cannot list commit %.12s of %s (git: %s): was it removed from the "
                 "repository since the job was submitted?", commit, repo, gwhy);
        return -1;
    }
    if (cut) {
        free(out);
        snprintf(why, wcap, "the tree of commit %.12s%s%s is too large to build: its listing "
                 "passes %u bytes (at most %d entries)", commit, sub[0] ? ":" : "", sub,
                 GIT_LS_MAX, GIT_MAX_ENTRIES);
        return -1;
    }
    struct entry *e = NULL;
    size_t n = 0, cap = 0;
    uint64_t total = 0;
    int rc = -1;
    for (char *p = out; *p;) {
        char *end = p + strlen(p);
        /* "<mode> SP <type> SP <oid> SP+ <size>\t<path>" */
        char *tab = strchr(p, '\t');
        char mode[16] = "", type[16] = "", oid[80] = "", size[32] = "";
        if (!tab || sscanf(p, "%15s %15s %79s %31s", mode, type, oid, size) != 4) {
            snprintf(why, wcap, "git ls-tree said something unexpected for commit %.12s", commit);
            goto done;
        }
        const char *path = tab + 1;
        if (strcmp(type, "commit") == 0) {
            snprintf(why, wcap, "%.200s in commit %.12s is a submodule: submodules are not built "
                     "(vendor its files instead)", path, commit);
            goto done;
        }
        if (strcmp(type, "blob") != 0 ||
            (strcmp(mode, "100644") && strcmp(mode, "100755") && strcmp(mode, "120000"))) {
            snprintf(why, wcap, "%.200s in commit %.12s is a %s of mode %s: only files and "
                     "symlinks are built", path, commit, type, mode);
            goto done;
        }
        if (!path_ok(path)) {
            snprintf(why, wcap, "path '%.200s' in commit %.12s is refused (empty, '.', '..' or "
                     ".git parts, or deeper than %d)", path, commit, GIT_MAX_DEPTH);
            goto done;
        }
        if (n == GIT_MAX_ENTRIES) {
            snprintf(why, wcap, "commit %.12s%s%s holds more than %d files: a guest's sources "
                     "must be fewer (name a SUBDIR)", commit, sub[0] ? ":" : "", sub,
                     GIT_MAX_ENTRIES);
            goto done;
        }
        uint64_t sz = strtoull(size, NULL, 10);
        if (sz > GIT_MAX_FILE) {
            snprintf(why, wcap, "%.200s in commit %.12s is %llu bytes, more than a source file "
                     "may be (%u)", path, commit, (unsigned long long)sz, GIT_MAX_FILE);
            goto done;
        }
        total += sz;
        if (total > GIT_MAX_TOTAL) {
            snprintf(why, wcap, "commit %.12s%s%s holds more than %u bytes: too large to build "
                     "(name a SUBDIR)", commit, sub[0] ? ":" : "", sub, GIT_MAX_TOTAL);
            goto done;
        }
        struct entry *g = grow(e, &cap, n);
        if (!g) {
            snprintf(why, wcap, "out of memory");
            goto done;
        }
        e = g;
        e[n] = (struct entry){.path = strdup(path), .size = sz,
                              .link = strcmp(mode, "120000") == 0,
                              .exec = strcmp(mode, "100755") == 0};
        snprintf(e[n].oid, sizeof e[n].oid, "%s", oid);
        if (!e[n].path) {
            snprintf(why, wcap, "out of memory");
            goto done;
        }
        n++;
        p = end + 1;
    }
    if (n == 0) {
        snprintf(why, wcap, "commit %.12s%s%s holds no files", commit, sub[0] ? ":" : "", sub);
        goto done;
    }
    /* The blobs through one cat-file --batch, its stdin a file of object ids (no pipe deadlock). */
    char list[PATH_MAX];
    snprintf(list, sizeof list, "%s.oids", dest);
    int lf = open(list, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (lf < 0) {
        snprintf(why, wcap, "cannot write %s: %s", list, strerror(errno));
        goto done;
    }
    unlink(list);
    for (size_t i = 0; i < n; i++)
        if (dprintf(lf, "%s\n", e[i].oid) < 0) {
            close(lf);
            snprintf(why, wcap, "cannot write the object list: %s", strerror(errno));
            goto done;
        }
    lseek(lf, 0, SEEK_SET);
    int op[2];
    if (pipe2(op, O_CLOEXEC) != 0) {
        close(lf);
        snprintf(why, wcap, "pipe: %s", strerror(errno));
        goto done;
    }
    const char *git = git_program();
    pid_t pid = git ? fork() : -1;
    if (pid == 0) {
        char gd[PATH_MAX + 16];
        snprintf(gd, sizeof gd, "--git-dir=%s", gitdir);
        const char *const argv[] = {"git", gd, "-c", "safe.directory=*", "cat-file", "--batch",
                                    NULL};
        static const char *const envp[] = {"PATH=/usr/bin:/bin", "HOME=/nonexistent", "LC_ALL=C",
                                           "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null",
                                           "GIT_TERMINAL_PROMPT=0", "GIT_NO_REPLACE_OBJECTS=1",
                                           "GIT_NO_LAZY_FETCH=1", NULL};
        int null = open("/dev/null", O_WRONLY);
        if (dup2(lf, 0) < 0 || dup2(op[1], 1) < 0 || (null >= 0 && dup2(null, 2) < 0))
            _exit(127);
        execve(git, (char *const *)argv, (char *const *)envp);
        _exit(127);
    }
    close(lf);
    close(op[1]);
    if (pid < 0) {
        close(op[0]);
        snprintf(why, wcap, "%s", git ? "fork failed" : "git is not installed (apt-get install git)");
        goto done;
    }
    FILE *in = fdopen(op[0], "r");
    char *blob = NULL;
    bool ok = in != NULL;
    for (size_t i = 0; ok && i < n; i++) {
        char head[256];
        char hoid[80], htype[16];
        unsigned long long hsize = 0;
        if (!fgets(head, sizeof head, in) ||
            sscanf(head, "%79s %15s %llu", hoid, htype, &hsize) != 3 ||
            strcmp(hoid, e[i].oid) != 0 || strcmp(htype, "blob") != 0 || hsize != e[i].size) {
            snprintf(why, wcap, "reading %.200s of commit %.12s failed (git cat-file said: %.100s)",
                     e[i].path, commit, head);
            ok = false;
            break;
        }
        free(blob);
        blob = malloc(hsize + 1);
        if (!blob || (hsize && fread(blob, 1, hsize, in) != hsize) || fgetc(in) != '\n') {
            snprintf(why, wcap, "reading %.200s of commit %.12s failed", e[i].path, commit);
            ok = false;
            break;
        }
        blob[hsize] = '\0';
        if (e[i].link) {
            if (memchr(blob, '\0', hsize) || !link_stays(e[i].path, blob)) {
                snprintf(why, wcap, "symlink %.200s -> %.200s in commit %.12s leaves the source "
                         "tree: only links to files inside it are built",
                         e[i].path, blob, commit);
                ok = false;
                break;
            }
            e[i].target = blob; /* made last, below */
            blob = NULL;
            continue;
        }
        char full[PATH_MAX];
        int fl = snprintf(full, sizeof full, "%s/%s", dest, e[i].path);
        int fd = -1;
        if (fl < 0 || (size_t)fl >= sizeof full || make_parents(dest, e[i].path) != 0 ||
            (fd = open(full, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                       e[i].exec ? 0755 : 0644)) < 0 ||
            (hsize && write(fd, blob, hsize) != (ssize_t)hsize)) {
            snprintf(why, wcap, "writing %.200s of commit %.12s failed: %s", e[i].path, commit,
                     strerror(errno));
            if (fd >= 0)
                close(fd);
            ok = false;
            break;
        }
        close(fd);
    }
    /* symlinks last, so no file above was written through one */
    if (ok) {
        if (in)
            fclose(in);
        in = NULL;
        for (size_t i = 0; ok && i < n; i++) {
            if (!e[i].link)
                continue;
            const char *target = e[i].target;
            char full[PATH_MAX];
            int fl = snprintf(full, sizeof full, "%s/%s", dest, e[i].path);
            if (!link_stays(e[i].path, target) || fl < 0 || (size_t)fl >= sizeof full ||
                make_parents(dest, e[i].path) != 0 || symlink(target, full) != 0) {
                snprintf(why, wcap, "symlink %.200s -> %.200s of commit %.12s could not be made "
                         "inside the tree", e[i].path, target, commit);
                ok = false;
            }
        }
    }
    /* and, all made, where each really leads (a chain of links may climb where one does not) */
    char root[PATH_MAX];
    if (ok && !realpath(dest, root)) {
        snprintf(why, wcap, "cannot resolve %s: %s", dest, strerror(errno));
        ok = false;
    }
    for (size_t i = 0; ok && i < n; i++) {
        if (!e[i].link)
            continue;
        char full[PATH_MAX], real[PATH_MAX];
        snprintf(full, sizeof full, "%s/%s", dest, e[i].path);
        size_t rl = strlen(root);
        if (!realpath(full, real) || strncmp(real, root, rl) != 0 ||
            (real[rl] != '/' && real[rl] != '\0')) {
            snprintf(why, wcap, "symlink %.200s -> %.200s in commit %.12s leaves the source tree "
                     "(or leads nowhere): only links to files inside it are built",
                     e[i].path, e[i].target, commit);
            ok = false;
        }
    }
    free(blob);
    if (in)
        fclose(in);
    int wst = 0;
    kill(pid, SIGKILL); /* done with it (a no-op when it already ended) */
    while (waitpid(pid, &wst, 0) < 0 && errno == EINTR)
        ;
    rc = ok ? 0 : -1;
done:
    free(out);
    entries_free(e, n);
    return rc;
}

/* ---- the build, cached by commit ---------------------------------------------------------------- */

int eng_git_build(aspen_engine *eng, const char *canonical, char *path_out, size_t cap,
                  bool *cached, char **log_out, aspen_engine_error *err)
{
    uint8_t env[32];
    if (eng_build_env_digest(eng, env, err) != 0)
        return err->code ? err->code : ASPEN_ENGINE_EBUILD;
    aspen_store_sha256_ctx c;
    aspen_store_sha256_init(&c);
    aspen_store_sha256_update(&c, "aspen-git-build-1", 18);
    aspen_store_sha256_update(&c, env, sizeof env);
    aspen_store_sha256_update(&c, canonical, strlen(canonical)); /* repository, commit, subdir */
    uint8_t d[32];
    aspen_store_sha256_final(&c, d);
    char key[65];
    for (int i = 0; i < 32; i++)
        snprintf(key + 2 * i, 3, "%02x", d[i]);
    char dir[PATH_MAX], bin[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/git-%s", eng->cache_dir, key);
    snprintf(bin, sizeof bin, "%s/guest", dir);
    struct stat st;
    if (stat(bin, &st) == 0 && S_ISREG(st.st_mode)) {
        if (cached)
            *cached = true;
        atomic_fetch_add(&eng->build_hits, 1);
        snprintf(path_out, cap, "%s", bin);
        return 0;
    }
    if (aspen_engine_mkdirs(eng->cache_dir) != 0)
        return eng_err(err, ASPEN_ENGINE_EBUILD, "cannot create the build cache %s: %s",
                       eng->cache_dir, strerror(errno));
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s/gitsrc-XXXXXX", eng->cache_dir);
    if (!mkdtemp(tmp))
        return eng_err(err, ASPEN_ENGINE_EBUILD, "cannot create a directory in %s: %s",
                       eng->cache_dir, strerror(errno));
    char src[PATH_MAX + 8], commit[80], why[1024];
    snprintf(src, sizeof src, "%s/src", tmp);
    int code = 0;
    if (mkdir(src, 0755) != 0) {
        code = eng_err(err, ASPEN_ENGINE_EBUILD, "cannot create %s: %s", src, strerror(errno));
        goto out;
    }
    if (eng_git_export(canonical, src, commit, sizeof commit, why, sizeof why) != 0) {
        code = eng_err(err, ASPEN_ENGINE_EBUILD, "building the guest from %.300s: %s", canonical,
                       why);
        goto out;
    }
    char built[PATH_MAX];
    bool inner_cached = false;
    code = eng_build(eng, src, built, sizeof built, &inner_cached, log_out, err);
    if (code) {
        name_the_source(err, src, canonical);
        goto out;
    }
    /* keep the binary under the commit's key: the next job of this commit reads no object */
    char part[PATH_MAX + 16];
    snprintf(part, sizeof part, "%s/guest", tmp);
    int in = open(built, O_RDONLY | O_CLOEXEC), out = -1;
    bool copied = false;
    if (in >= 0 && (out = open(part, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644)) >= 0) {
        char buf[65536];
        ssize_t r;
        copied = true;
        while ((r = read(in, buf, sizeof buf)) > 0)
            if (write(out, buf, (size_t)r) != r)
                copied = false;
        copied = copied && r == 0;
    }
    if (in >= 0)
        close(in);
    if (out >= 0 && close(out) != 0)
        copied = false;
    if (copied && mkdir(dir, 0755) == 0) {
        char final_bin[PATH_MAX + 8];
        snprintf(final_bin, sizeof final_bin, "%s/guest", dir);
        if (rename(part, final_bin) == 0) {
            snprintf(path_out, cap, "%s", final_bin);
            goto out;
        }
    }
    snprintf(path_out, cap, "%s", built); /* another builder won, or no room: the build stands */
out:
    eng_rm_tree(tmp);
    return code;
}
