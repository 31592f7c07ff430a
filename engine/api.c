/* engine/api.c — the engine's calls for programs: submit (with JSON and binary checks), cancel,
 * rerun, retry, pause, and the queries, all on the engine's API connection (`api_store`, one
 * SQLite handle shared under api_mu by whatever threads call in).
 *
 * Submit turns an aspen_engine_job_spec into the store's spec: the payload is parsed with jansson
 * (refused with its line, column and position), a guest named or given by path is read once per
 * call and stored by content hash, tags become a JSON array, a source directory is made absolute
 * (the worker that builds it may run elsewhere in the file system). What the job could never run
 * with is refused here rather than failing later: a memory size the VM would refuse (its own limits,
 * vm/include/aspen_vm.h, and the image's size), a tag that is not UTF-8.
 */
#include "engine_internal.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/stat.h>

/* Each room's table answers for its own range; 0 is the engine's OK. */
const char *aspen_engine_err_name(int code)
{
    switch (code) {
    case ASPEN_ENGINE_OK:
        return "ASPEN_ENGINE_OK";
#define NAME(name, value, text)                                                                    \
    case ASPEN_ENGINE_##name:                                                                      \
        return "ASPEN_ENGINE_" #name;
        ASPEN_ENGINE_ERRNO_MAP(NAME)
#undef NAME
    default: {
        const char *store = aspen_store_err_name(code);
        return store ? store : aspen_vm_err_name(code);
    }
    }
}

const char *aspen_engine_strerror(int code)
{
    switch (code) {
    case ASPEN_ENGINE_OK:
        return "no error";
#define TEXT(name, value, text)                                                                    \
    case ASPEN_ENGINE_##name:                                                                      \
        return text;
        ASPEN_ENGINE_ERRNO_MAP(TEXT)
#undef TEXT
    default: {
        const char *store = aspen_store_strerror(code);
        return store ? store : aspen_vm_strerror(code);
    }
    }
}

int aspen_engine_check_payload(const char *json, aspen_engine_error *err)
{
    size_t len = json ? strnlen(json, (size_t)ASPEN_ENGINE_MAX_PAYLOAD + 1) : 0;
    if (len > ASPEN_ENGINE_MAX_PAYLOAD) /* before parsing it: that alone would cost its size */
        return eng_err(err, ASPEN_ENGINE_EPAYLOAD,
                       "the payload is larger than the %u-byte limit (ASPEN_ENGINE_MAX_PAYLOAD): "
                       "a job's payload is held in memory by every worker that claims it; split "
                       "the work into smaller jobs",
                       ASPEN_ENGINE_MAX_PAYLOAD);
    json_error_t je;
    json_t *j = json_loads(json ? json : "{}", JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &je);
    if (!j)
        return eng_err(err, ASPEN_ENGINE_EPAYLOAD,
                       "invalid JSON payload: line %d, column %d, position %d: %s", je.line,
                       je.column, je.position, je.text);
    json_decref(j);
    return 0;
}

static const char *base_name(const char *p)
{
    const char *s = strrchr(p, '/');
    while (s && s[1] == '\0' && s > p) { /* trailing slash: "dir/" */
        const char *q = s - 1;
        while (q > p && *q != '/')
            q--;
        return *q == '/' ? q + 1 : q;
    }
    return s ? s + 1 : p;
}

/* "Did you mean": the guest in dir nearest to name (the store's one rule for every "did you mean"),
 * or "" — a mistyped guest (`echo-workr`) names the one meant. At most 512 entries are read, so
 * a huge directory costs a bounded time on this error path only. */
void aspen_engine_nearest_guest(const char *dir, const char *name, char *out, size_t cap)
{
    out[0] = '\0';
    DIR *d = dir ? opendir(dir) : NULL;
    if (!d)
        return;
    enum { MAX_NAMES = 512 };
    char *names[MAX_NAMES];
    size_t n = 0;
    for (struct dirent *e; n < MAX_NAMES && (e = readdir(d));) {
        if (e->d_name[0] == '.' || (e->d_type != DT_REG && e->d_type != DT_LNK &&
                                    e->d_type != DT_UNKNOWN))
            continue;
        if ((names[n] = strdup(e->d_name)))
            n++;
    }
    closedir(d);
    const char *near = aspen_store_nearest(name, strlen(name), (const char *const *)names, n);
    if (near)
        snprintf(out, cap, "%s", near);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
}

/* GUEST → a file: a path if it has a slash or exists, else NAME in the guest directory. */
static int resolve_guest(aspen_engine *eng, const char *guest, char *out, size_t cap,
                         aspen_engine_error *err)
{
    struct stat st;
    if (strchr(guest, '/') || stat(guest, &st) == 0) {
        if (stat(guest, &st) != 0 || !S_ISREG(st.st_mode))
            return eng_err(err, ASPEN_ENGINE_EBINARY, "guest binary %s not found (%s)", guest,
                           strerror(errno ? errno : ENOENT));
        snprintf(out, cap, "%s", guest);
        return 0;
    }
    snprintf(out, cap, "%s/%s", eng->guest_dir, guest);
    if (stat(out, &st) == 0 && S_ISREG(st.st_mode))
        return 0;
    char near[256];
    aspen_engine_nearest_guest(eng->guest_dir, guest, near, sizeof near);
    if (near[0])
        return eng_err(err, ASPEN_ENGINE_EBINARY,
                       "no guest named %s in %s: did you mean %s? (or build it with "
                       "scripts/build-guest.sh, or give a path)",
                       guest, eng->guest_dir, near);
    return eng_err(err, ASPEN_ENGINE_EBINARY,
                   "no guest named %s in %s: build it with scripts/build-guest.sh, or give a path",
                   guest, eng->guest_dir);
}

static int read_binary(const char *path, void **bytes, size_t *size, aspen_engine_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return eng_err(err, ASPEN_ENGINE_EBINARY, "cannot open guest binary %s: %s", path,
                       strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0) {
        fclose(f);
        return eng_err(err, ASPEN_ENGINE_EBINARY, "cannot stat %s", path);
    }
    if ((uint64_t)st.st_size > ASPEN_STORE_MAX_BINARY) {
        fclose(f);
        return eng_err(err, ASPEN_ENGINE_EBINARY, "Binary too large: %lld bytes (max: %u bytes)",
                       (long long)st.st_size, ASPEN_STORE_MAX_BINARY);
    }
    *size = (size_t)st.st_size;
    *bytes = malloc(*size ? *size : 1);
    if (!*bytes) {
        fclose(f);
        return eng_err(err, ASPEN_ENGINE_ENOMEM, "out of memory reading %s", path);
    }
    if (fread(*bytes, 1, *size, f) != *size) {
        fclose(f);
        free(*bytes);
        return eng_err(err, ASPEN_ENGINE_EBINARY, "cannot read %s", path);
    }
    fclose(f);
    return 0;
}

/* What one converted spec owns until the store has written it. */
struct owned {
    char sha[65];
    char *tags;
    char *source;
    char name[256];
    size_t image_mem; /* the guest image's pages (for the memory check), 0 when not known */
};

/* The offset of the first byte of s that is not valid UTF-8 (overlong forms, surrogates and code
 * points past U+10FFFF included, as jansson refuses them), or SIZE_MAX if it is all valid. */
static size_t utf8_invalid_at(const char *str)
{
    const unsigned char *s = (const unsigned char *)str;
    for (size_t i = 0; s[i];) {
        unsigned c = s[i];
        size_t n = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3
                                 : (c & 0xf8) == 0xf0 ? 4 : 0;
        if (n == 0)
            return i;
        uint32_t cp = n == 1 ? c : n == 2 ? (c & 0x1f) : n == 3 ? (c & 0x0f) : (c & 0x07);
        for (size_t k = 1; k < n; k++) {
            if ((s[i + k] & 0xc0) != 0x80) /* also stops at the NUL */
                return i;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
            cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return i;
        i += n;
    }
    return SIZE_MAX;
}

/* s for an error message: printable ASCII as is, every other byte as \xNN (at most ~60 bytes). */
static void escaped(const char *s, char *out, size_t cap)
{
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p && o + 8 < cap; p++) {
        if (o > 60) {
            o += (size_t)snprintf(out + o, cap - o, "...");
            break;
        }
        if (*p >= 0x20 && *p < 0x7f && *p != '\\')
            out[o++] = (char)*p;
        else
            o += (size_t)snprintf(out + o, cap - o, "\\x%02x", *p);
    }
    out[o < cap ? o : cap - 1] = '\0';
}

/* Pages the image in these bytes needs (aspen_vm_image_mem_size), or 0 when they do not load as an
 * image (the run reports why, as it always has). */
static size_t image_pages(const void *bytes, size_t size, const char *name)
{
    aspen_vm_image *img = NULL;
    aspen_vm_error ve = {0};
    if (aspen_vm_image_load_mem(bytes, size, name, &img, &ve) != 0)
        return 0;
    size_t mem = aspen_vm_image_mem_size(img);
    aspen_vm_image_release(img);
    return mem;
}

/* --memory against the VM's own limits (vm/include/aspen_vm.h), so a size the VM would refuse is refused
 * now, with the VM's reason, not when the job runs. image_mem 0: only the range is known. */
static int check_memory(int64_t mem, size_t image_mem, const char *name, aspen_engine_error *err)
{
    if (mem == 0)
        return 0; /* the worker's default */
    if (mem < (int64_t)ASPEN_VM_MIN_MEMORY || (uint64_t)mem > ASPEN_VM_MAX_MEMORY)
        return eng_err(err, ASPEN_ENGINE_EINVAL,
                       "guest memory must be between 64 KiB and 1 GiB (got %lld bytes): give a "
                       "size like 1M (--memory)",
                       (long long)mem);
    if (!image_mem)
        return 0;
    aspen_vm_config cfg;
    aspen_vm_config_default(&cfg);
    uint64_t have = ((uint64_t)mem + 4095) & ~(uint64_t)4095;
    uint64_t need = (uint64_t)image_mem + cfg.stack_bytes + ASPEN_VM_MEMORY_RESERVE;
    if (have < need)
        return eng_err(err, ASPEN_ENGINE_EINVAL,
                       "guest memory of %llu KiB is too small for %s: its image takes %zu KiB and "
                       "the stack %zu KiB; give it at least %llu KiB (--memory)",
                       (unsigned long long)(have >> 10), name, image_mem >> 10,
                       cfg.stack_bytes >> 10, (unsigned long long)((need + 1023) >> 10));
    return 0;
}

int aspen_engine_memory_parse(const char *text, int64_t *bytes, aspen_engine_error *err)
{
    char buf[64];
    while (text && (*text == ' ' || *text == '\t'))
        text++;
    size_t len = text ? strlen(text) : 0;
    while (len && (text[len - 1] == ' ' || text[len - 1] == '\t'))
        len--;
    size_t sz = 0;
    if (!len || len >= sizeof buf)
        return eng_err(err, ASPEN_ENGINE_EINVAL, "guest memory wants a size like 1M, 512K or 64MiB");
    memcpy(buf, text, len);
    buf[len] = '\0';
    if (aspen_vm_parse_size(buf, &sz) != 0) {
        char shown[80];
        escaped(buf, shown, sizeof shown);
        return eng_err(err, ASPEN_ENGINE_EINVAL,
                       "guest memory wants a size like 1M, 512K or 64MiB, not '%s'", shown);
    }
    if ((uint64_t)sz > (uint64_t)INT64_MAX)
        sz = (size_t)INT64_MAX; /* still over the VM's limit, said as such below */
    int rc = check_memory((int64_t)sz, 0, NULL, err);
    if (rc)
        return rc;
    *bytes = (int64_t)sz;
    return 0;
}

int aspen_engine_check_guest(const char *path, size_t *image_mem, aspen_engine_error *err)
{
    /* O_NONBLOCK: a FIFO put where the guest was must not hang the caller (the console checks
     * as the path is typed); the type is then read from the open file, not a stat before it */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return eng_err(err, ASPEN_ENGINE_EBINARY, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        bool dir = S_ISDIR(st.st_mode);
        close(fd);
        return eng_err(err, ASPEN_ENGINE_EBINARY, "%s is not a file (%s)", path,
                       dir ? "a directory" : "a device, FIFO or socket");
    }
    if ((uint64_t)st.st_size > ASPEN_STORE_MAX_BINARY) {
        close(fd);
        return eng_err(err, ASPEN_ENGINE_EBINARY, "Binary too large: %lld bytes (max: %u bytes)",
                       (long long)st.st_size, ASPEN_STORE_MAX_BINARY);
    }
    size_t size = (size_t)st.st_size, got = 0;
    uint8_t *bytes = malloc(size ? size : 1);
    if (!bytes) {
        close(fd);
        return eng_err(err, ASPEN_ENGINE_ENOMEM, "out of memory reading %s", path);
    }
    while (got < size) {
        ssize_t r = read(fd, bytes + got, size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break; /* shorter than it was: checked as read */
        got += (size_t)r;
    }
    close(fd);
    aspen_vm_image *img = NULL;
    aspen_vm_error ve = {0};
    int rc = aspen_vm_image_load_mem(bytes, got, base_name(path), &img, &ve);
    free(bytes);
    if (rc != 0)
        return eng_err(err, ASPEN_ENGINE_EBINARY, "%s is not an Aspen guest: %s", path,
                       ve.msg[0] ? ve.msg : "it does not load as a guest image");
    if (image_mem)
        *image_mem = aspen_vm_image_mem_size(img);
    aspen_vm_image_release(img);
    return 0;
}

/* Stores the binary of `guest` (caller holds api_mu) and fills sha; *image_mem (if not NULL) gets
 * the image's pages. */
static int store_guest(aspen_engine *eng, const char *guest, char sha[65], char *name,
                       size_t namecap, size_t *image_mem, aspen_engine_error *err)
{
    char path[PATH_MAX];
    int rc = resolve_guest(eng, guest, path, sizeof path, err);
    if (rc)
        return rc;
    void *bytes = NULL;
    size_t size = 0;
    if ((rc = read_binary(path, &bytes, &size, err)) != 0)
        return rc;
    if (!name[0])
        snprintf(name, namecap, "%s", base_name(guest));
    if (image_mem)
        *image_mem = image_pages(bytes, size, name);
    aspen_store_error se = {0};
    rc = aspen_store_put_binary(eng->api_store, bytes, size, name, aspen_store_now_ms(), sha, &se);
    free(bytes);
    return rc ? eng_store_err(err, &se, "storing the guest binary") : 0;
}

/* pin: a --source directory is pinned to its content now (a submitted job); a schedule's template
 * is not (each occurrence builds what the directory holds when it is enqueued, as cron runs a
 * script). */
/* The job runs in a micro-VM whatever its type: isolation, or the tag requires_isolation. */
static bool spec_in_vm(const aspen_engine_job_spec *in)
{
    if (in->isolation)
        return true;
    for (size_t i = 0; i < in->n_tags; i++)
        if (in->tags[i] && strcmp(in->tags[i], "requires_isolation") == 0)
            return true;
    return false;
}

static int convert(aspen_engine *eng, const aspen_engine_job_spec *in, size_t index,
                   aspen_store_job_spec *out, struct owned *own, const aspen_engine_job_spec *prev,
                   const struct owned *prev_own, bool pin, aspen_engine_error *err)
{
    int rc = aspen_engine_check_payload(in->payload, err);
    if (rc) {
        if (index) {
            char m[sizeof err->msg];
            snprintf(m, sizeof m, "job %zu of the batch: %s", index + 1, err->msg);
            snprintf(err->msg, sizeof err->msg, "%s", m);
        }
        return rc;
    }
    int sources = (in->binary != NULL) + (in->guest != NULL) + (in->binary_sha256 != NULL) +
                  (in->source_dir != NULL);
    if (sources > 1)
        return eng_err(err, ASPEN_ENGINE_EINVAL,
                       "give the guest one way only: bytes, a name or path, a sha256, or a "
                       "source directory");
    /* A guest with a built-in in-process type (echo, checksum, sleep) would be stored and never
     * run: the worker runs the type's C function and the job succeeds as if the guest had. Refused
     * before anything is stored, unless the job runs in a micro-VM anyway (isolation). */
    if (sources && in->type && aspen_engine_type_in_process(in->type) && !spec_in_vm(in))
        return eng_err(err, ASPEN_ENGINE_EINVAL,
                       "type %s runs in-process in a worker with no guest, so the job's guest "
                       "(%s) would never run: leave the guest out, leave the type out (vm_execute "
                       "runs the guest), or set isolation to run the guest in a micro-VM",
                       in->type, in->source_dir ? "source directory" : "binary");
    memset(out, 0, sizeof *out);
    if (in->binary_name)
        snprintf(own->name, sizeof own->name, "%s", in->binary_name);
    if (in->guest) {
        if (prev && prev->guest && strcmp(prev->guest, in->guest) == 0 &&
            (!in->memory_bytes || prev_own->image_mem)) {
            memcpy(own->sha, prev_own->sha, sizeof own->sha); /* same file as the job before */
            own->image_mem = prev_own->image_mem;
            if (!own->name[0])
                snprintf(own->name, sizeof own->name, "%s", prev_own->name);
        } else if ((rc = store_guest(eng, in->guest, own->sha, own->name, sizeof own->name,
                                     in->memory_bytes ? &own->image_mem : NULL, err)) != 0) {
            return rc;
        }
        out->binary_sha256 = own->sha;
    } else if (in->binary) {
        if (in->binary_size > ASPEN_STORE_MAX_BINARY)
            return eng_err(err, ASPEN_ENGINE_EBINARY,
                           "Binary too large: %zu bytes (max: %u bytes)", in->binary_size,
                           ASPEN_STORE_MAX_BINARY);
        out->binary = in->binary;
        out->binary_size = in->binary_size;
        if (in->memory_bytes)
            own->image_mem = image_pages(in->binary, in->binary_size,
                                         in->binary_name ? in->binary_name : "the guest");
    } else if (in->binary_sha256) {
        out->binary_sha256 = in->binary_sha256;
        aspen_store_binary bin = {0};
        if (in->memory_bytes && aspen_store_get_binary(eng->api_store, in->binary_sha256, &bin,
                                                       NULL) == 0) {
            if (!own->name[0] && bin.name)
                snprintf(own->name, sizeof own->name, "%s", bin.name);
            own->image_mem =
                image_pages(bin.bytes, bin.size, own->name[0] ? own->name : "the guest");
            aspen_store_binary_clear(&bin);
        } /* not stored: the store's submit says so below */
    } else if (in->source_dir && eng_git_source_syntax(in->source_dir)) {
        /* REPO#REV[:SUBDIR]: pinned to its commit now (gitsrc.c) */
        if ((rc = eng_git_resolve(eng, in->source_dir, &own->source,
                                  own->name[0] ? NULL : own->name,
                                  own->name[0] ? 0 : sizeof own->name, err)) != 0)
            return rc;
        out->source_dir = own->source;
    } else if (in->source_dir) {
        char real[PATH_MAX];
        struct stat st;
        if (!realpath(in->source_dir, real) || stat(real, &st) != 0 || !S_ISDIR(st.st_mode))
            return eng_err(err, ASPEN_ENGINE_EBINARY,
                           "guest source directory %s not found (it must be a directory with the "
                           "guest's sources)",
                           in->source_dir);
        /* checked (C sources, not a Rust guest, a tree that can be built) either way */
        if ((rc = eng_source_pin(eng, real, &own->source, err)) != 0)
            return rc;
        if (!pin)
            own->source[strlen(real)] = '\0';
        out->source_dir = own->source;
        if (!own->name[0])
            snprintf(own->name, sizeof own->name, "%s", base_name(real));
    }
    out->binary_name = own->name[0] ? own->name : NULL;
    out->type = in->type ? in->type : (sources ? "vm_execute" : NULL);
    if (!out->type || !*out->type)
        return eng_err(err, ASPEN_ENGINE_EINVAL,
                       "a job needs a type, or a guest binary to run (type vm_execute)");
    bool vm = spec_in_vm(in) || strcmp(out->type, "vm_execute") == 0;
    if (vm && !sources)
        return eng_err(err, ASPEN_ENGINE_EBINARY,
                       "this job runs in a micro-VM (type vm_execute, isolation or the tag "
                       "requires_isolation) but names no guest binary or source directory");
    if ((rc = check_memory(in->memory_bytes, own->image_mem,
                           own->name[0] ? own->name : "the guest", err)) != 0)
        return rc;
    if (in->n_tags) {
        /* A tag that is not UTF-8 is refused, never dropped or mangled: tags are what filters and
         * routing match exactly, so a changed tag would silently match nothing. */
        for (size_t i = 0; i < in->n_tags; i++) {
            size_t at = in->tags[i] ? utf8_invalid_at(in->tags[i]) : SIZE_MAX;
            if (at != SIZE_MAX) {
                char shown[128];
                escaped(in->tags[i], shown, sizeof shown);
                return eng_err(err, ASPEN_ENGINE_EINVAL,
                               "tag %zu (\"%s\") is not valid UTF-8 (byte 0x%02x at offset %zu): "
                               "tags must be UTF-8 text",
                               i + 1, shown, (unsigned char)in->tags[i][at], at);
            }
        }
        json_t *arr = json_array();
        bool ok = arr != NULL;
        for (size_t i = 0; ok && i < in->n_tags; i++)
            ok = json_array_append_new(arr, json_string(in->tags[i] ? in->tags[i] : "")) == 0;
        own->tags = ok ? json_dumps(arr, JSON_COMPACT) : NULL;
        json_decref(arr);
        if (!own->tags)
            return eng_err(err, ASPEN_ENGINE_ENOMEM, "out of memory for the job's tags");
        out->tags = own->tags;
    }
    out->payload = in->payload ? in->payload : "{}";
    out->priority = in->priority;
    out->run_at_ms = in->run_at_ms;
    out->max_attempts = in->max_attempts;
    out->timeout_ms = in->timeout_ms;
    out->memory_bytes = in->memory_bytes;
    out->isolation = in->isolation;
    out->queue = in->queue;
    out->unique = in->unique;
    return 0;
}

static int submit(aspen_engine *eng, const aspen_engine_job_spec *specs, size_t n,
                  int64_t *ids_out, aspen_store_submitted *info, aspen_engine_error *err)
{
    if (!specs || n == 0)
        return eng_err(err, ASPEN_ENGINE_EINVAL, "no jobs given");
    aspen_store_job_spec *ss = calloc(n, sizeof *ss);
    struct owned *own = calloc(n, sizeof *own);
    int rc = 0;
    if (!ss || !own) {
        rc = eng_err(err, ASPEN_ENGINE_ENOMEM, "out of memory submitting %zu jobs", n);
        goto free_arrays;
    }
    pthread_mutex_lock(&eng->api_mu);
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = convert(eng, &specs[i], i, &ss[i], &own[i], i ? &specs[i - 1] : NULL,
                     i ? &own[i - 1] : NULL, true, err);
    if (rc == 0) {
        aspen_store_error se = {0};
        int code = info ? aspen_store_submit_ex(eng->api_store, ss, n, aspen_store_now_ms(),
                                                info, &se)
                        : aspen_store_submit_batch(eng->api_store, ss, n, aspen_store_now_ms(),
                                                   ids_out, &se);
        if (code)
            rc = eng_store_err(err, &se, "submitting");
    }
    pthread_mutex_unlock(&eng->api_mu);
    if (rc == 0)
        eng_wake(eng);
free_arrays:
    for (size_t i = 0; own && i < n; i++) {
        free(own[i].tags);
        free(own[i].source);
    }
    free(own);
    free(ss);
    return rc;
}

int aspen_engine_submit_batch(aspen_engine *eng, const aspen_engine_job_spec *specs, size_t n,
                              int64_t *ids_out, aspen_engine_error *err)
{
    return submit(eng, specs, n, ids_out, NULL, err);
}

int aspen_engine_submit_ex(aspen_engine *eng, const aspen_engine_job_spec *specs, size_t n,
                           aspen_store_submitted *out, aspen_engine_error *err)
{
    if (out)
        return submit(eng, specs, n, NULL, out, err);
    return submit(eng, specs, n, NULL, NULL, err);
}

int aspen_engine_submit(aspen_engine *eng, const aspen_engine_job_spec *spec, int64_t *id_out,
                        aspen_engine_error *err)
{
    return aspen_engine_submit_batch(eng, spec, 1, id_out, err);
}

/* ---- operator actions --------------------------------------------------------------------------- */

int aspen_engine_cancel(aspen_engine *eng, int64_t id, bool *requested, aspen_engine_error *err)
{
    aspen_store_cancel_result r = ASPEN_STORE_CANCEL_DONE;
    aspen_store_error se = {0};
    pthread_mutex_lock(&eng->api_mu);
    int rc = aspen_store_cancel(eng->api_store, id, aspen_store_now_ms(), &r, &se);
    pthread_mutex_unlock(&eng->api_mu);
    if (rc)
        return eng_store_err(err, &se, NULL);
    if (requested)
        *requested = r == ASPEN_STORE_CANCEL_REQUESTED;
    if (r == ASPEN_STORE_CANCEL_REQUESTED)
        eng_cancel_local(eng, id); /* ours? stop it now rather than at the next poll */
    return 0;
}

int aspen_engine_rerun(aspen_engine *eng, int64_t id, int64_t *new_id, aspen_engine_error *err)
{
    aspen_store_submitted out = {0};
    int rc = aspen_engine_rerun_ex(eng, id, 0, &out, err);
    if (!rc && new_id)
        *new_id = out.id;
    return rc;
}

int aspen_engine_rerun_ex(aspen_engine *eng, int64_t id, unsigned flags, aspen_store_submitted *out,
                          aspen_engine_error *err)
{
    aspen_store_error se = {0};
    aspen_store_submitted done = {0};
    pthread_mutex_lock(&eng->api_mu);
    int rc = aspen_store_rerun_ex(eng->api_store, id, aspen_store_now_ms(), flags, &done, &se);
    pthread_mutex_unlock(&eng->api_mu);
    if (rc)
        return eng_store_err(err, &se, NULL);
    if (out)
        *out = done;
    if (!done.duplicate)
        eng_wake(eng);
    return 0;
}

int aspen_engine_retry(aspen_engine *eng, int64_t id, aspen_engine_error *err)
{
    aspen_store_error se = {0};
    pthread_mutex_lock(&eng->api_mu);
    int rc = aspen_store_retry(eng->api_store, id, aspen_store_now_ms(), &se);
    pthread_mutex_unlock(&eng->api_mu);
    if (rc)
        return eng_store_err(err, &se, NULL);
    eng_wake(eng);
    return 0;
}

int aspen_engine_set_priority(aspen_engine *eng, int64_t id, int priority, aspen_engine_error *err)
{
    aspen_store_error se = {0};
    pthread_mutex_lock(&eng->api_mu);
    int rc = aspen_store_set_priority(eng->api_store, id, priority, &se);
    pthread_mutex_unlock(&eng->api_mu);
    if (rc)
        return eng_store_err(err, &se, NULL);
    eng_wake(eng); /* a job moved up the queue: the next claim should see it */
    return 0;
}

int aspen_engine_run_now(aspen_engine *eng, int64_t id, aspen_engine_error *err)
{
    aspen_store_error se = {0};
    pthread_mutex_lock(&eng->api_mu);
    int rc = aspen_store_run_now(eng->api_store, id, aspen_store_now_ms(), &se);
    pthread_mutex_unlock(&eng->api_mu);
    if (rc)
        return eng_store_err(err, &se, NULL);
    eng_wake(eng);
    return 0;
}

/* No wake: a snoozed job is not due, so no engine has anything new to claim. */
int aspen_engine_snooze(aspen_engine *eng, int64_t id, int64_t delay_ms, aspen_engine_error *err)
{
    aspen_store_error se = {0};
    pthread_mutex_lock(&eng->api_mu);
    int rc = aspen_store_snooze(eng->api_store, id, delay_ms, aspen_store_now_ms(), &se);
    pthread_mutex_unlock(&eng->api_mu);
    return rc ? eng_store_err(err, &se, NULL) : 0;
}

int aspen_engine_snooze_matching(aspen_engine *eng, const aspen_store_filter *filter,
                                 int64_t delay_ms, int64_t *snoozed, int64_t *reserved,
                                 aspen_engine_error *err)
{
    aspen_store_error se = {0};
    int64_t n = 0, held = 0;
    pthread_mutex_lock(&eng->api_mu);
    int rc = aspen_store_snooze_matching(eng->api_store, filter, delay_ms, aspen_store_now_ms(), &n,
                                         &held, &se);
    pthread_mutex_unlock(&eng->api_mu);
    if (rc)
        return eng_store_err(err, &se, NULL);
    if (snoozed)
        *snoozed = n;
    if (reserved)
        *reserved = held;
    return 0;
}

int aspen_engine_retry_failed(aspen_engine *eng, const aspen_store_filter *filter,
                              int64_t *retried, aspen_engine_error *err)
{
    return aspen_engine_retry_failed_ex(eng, filter, retried, NULL, NULL, err);
}

int aspen_engine_retry_failed_ex(aspen_engine *eng, const aspen_store_filter *filter,
                                 int64_t *retried, aspen_store_retry_skip **skipped,
                                 size_t *n_skipped, aspen_engine_error *err)
{
    aspen_store_error se = {0};
    int64_t n = 0;
    if (skipped)
        *skipped = NULL;
    if (n_skipped)
        *n_skipped = 0;
    pthread_mutex_lock(&eng->api_mu);
    int rc = aspen_store_retry_failed_ex(eng->api_store, filter, aspen_store_now_ms(), &n, skipped,
                                         n_skipped, &se);
    pthread_mutex_unlock(&eng->api_mu);
    if (rc)
        return eng_store_err(err, &se, NULL);
    if (retried)
        *retried = n;
    if (n)
        eng_wake(eng);
    return 0;
}

int aspen_engine_cancel_matching(aspen_engine *eng, const aspen_store_filter *filter,
                                 int64_t *cancelled, int64_t *requested, aspen_engine_error *err)
{
    aspen_store_error se = {0};
    int64_t c = 0, r = 0;
    pthread_mutex_lock(&eng->api_mu);
    int rc = aspen_store_cancel_matching(eng->api_store, filter, aspen_store_now_ms(), &c, &r, &se);
    pthread_mutex_unlock(&eng->api_mu);
    if (rc)
        return eng_store_err(err, &se, NULL);
    if (cancelled)
        *cancelled = c;
    if (requested)
        *requested = r;
    if (r)
        eng_wake(eng); /* the dispatcher's next look at cancel requests stops ours */
    return 0;
}

/* One count per unfinished state the filter allows (the store counts a filter in one state from
 * its state index), then the oldest ids; on the API connection, as the other reads, so a
 * --dry-run or the console's question opens nothing of its own and writes nothing. */
int aspen_engine_count_unfinished(aspen_engine *eng, const aspen_store_filter *filter,
                                  size_t max_ids, aspen_engine_unfinished *out,
                                  aspen_engine_error *err)
{
    memset(out, 0, sizeof *out);
    const unsigned unfinished = (1u << ASPEN_STORE_QUEUED) | (1u << ASPEN_STORE_SCHEDULED) |
                                (1u << ASPEN_STORE_RUNNING);
    aspen_store_filter f = {0};
    if (filter)
        f = *filter;
    unsigned live = (f.states ? f.states : ~0u) & unfinished;
    if (!live)
        return 0; /* finished states only: nothing a cancel would touch */
    if (max_ids > ASPEN_ENGINE_UNFINISHED_IDS)
        max_ids = ASPEN_ENGINE_UNFINISHED_IDS;
    aspen_store_error se = {0};
    int rc = 0;
    pthread_mutex_lock(&eng->api_mu);
    for (int s = 0; s < ASPEN_STORE_STATE_COUNT && rc == 0; s++) {
        if (!(live & (1u << s)))
            continue;
        f.states = 1u << s;
        rc = aspen_store_count(eng->api_store, &f, &out->n[s], &se);
        out->total += out->n[s];
    }
    const char *what = "counting the matching jobs";
    aspen_store_job *jobs = NULL;
    size_t got = 0;
    if (rc == 0 && out->total && max_ids) {
        f.states = live;
        f.order = ASPEN_STORE_ORDER_OLDEST;
        f.limit = (int64_t)max_ids;
        f.offset = 0;
        what = "listing the matching jobs";
        rc = aspen_store_list(eng->api_store, &f, &jobs, &got, &se);
    }
    pthread_mutex_unlock(&eng->api_mu);
    if (rc) {
        memset(out, 0, sizeof *out);
        return eng_store_err(err, &se, what);
    }
    for (size_t i = 0; i < got && out->n_ids < max_ids; i++)
        out->ids[out->n_ids++] = jobs[i].id;
    aspen_store_jobs_free(jobs, got);
    return 0;
}

int aspen_engine_unique_key(aspen_engine *eng, int64_t id, char **key, aspen_engine_error *err)
{
    aspen_store_error se = {0};
    pthread_mutex_lock(&eng->api_mu);
    int rc = aspen_store_job_unique_key(eng->api_store, id, key, &se);
    pthread_mutex_unlock(&eng->api_mu);
    return rc ? eng_store_err(err, &se, NULL) : 0;
}

int aspen_engine_unique_rule(aspen_engine *eng, int64_t id, aspen_store_job_rule *out,
                             aspen_engine_error *err)
{
    aspen_store_error se = {0};
    pthread_mutex_lock(&eng->api_mu);
    int rc = aspen_store_job_unique_rule(eng->api_store, id, out, &se);
    pthread_mutex_unlock(&eng->api_mu);
    return rc ? eng_store_err(err, &se, NULL) : 0;
}

int aspen_engine_retention_get(aspen_engine *eng, aspen_store_retention *out,
                               aspen_engine_error *err)
{
    aspen_store_error se = {0};
    pthread_mutex_lock(&eng->api_mu);
    int rc = aspen_store_retention_get(eng->api_store, out, &se);
    pthread_mutex_unlock(&eng->api_mu);
    return rc ? eng_store_err(err, &se, NULL) : 0;
}

int aspen_engine_retention_set(aspen_engine *eng, aspen_store_state state, int64_t keep_ms,
                               aspen_engine_error *err)
{
    aspen_store_error se = {0};
    pthread_mutex_lock(&eng->api_mu);
    int rc = aspen_store_retention_set(eng->api_store, state, keep_ms, &se);
    pthread_mutex_unlock(&eng->api_mu);
    return rc ? eng_store_err(err, &se, NULL) : 0;
}

int aspen_engine_prune(aspen_engine *eng, aspen_store_state state, int64_t finished_before_ms,
                       size_t max, int64_t *deleted, aspen_engine_error *err)
{
    aspen_store_error se = {0};
    pthread_mutex_lock(&eng->api_mu);
    int rc = aspen_store_prune(eng->api_store, state, finished_before_ms, max, deleted, &se);
    pthread_mutex_unlock(&eng->api_mu);
    return rc ? eng_store_err(err, &se, NULL) : 0;
}

int aspen_engine_prune_count(aspen_engine *eng, aspen_store_state state, int64_t finished_before_ms,
                             int64_t *count, aspen_engine_error *err)
{
    aspen_store_error se = {0};
    pthread_mutex_lock(&eng->api_mu);
    int rc = aspen_store_prune_count(eng->api_store, state, finished_before_ms, count, &se);
    pthread_mutex_unlock(&eng->api_mu);
    return rc ? eng_store_err(err, &se, NULL) : 0;
}

int aspen_engine_delete_jobs(aspen_engine *eng, const int64_t *ids, size_t n, int64_t *deleted,
                             aspen_engine_error *err)
{
    aspen_store_error se = {0};
    pthread_mutex_lock(&eng->api_mu);
    int rc = aspen_store_delete_jobs(eng->api_store, ids, n, deleted, &se);
    pthread_mutex_unlock(&eng->api_mu);
    return rc ? eng_store_err(err, &se, NULL) : 0;
}

int aspen_engine_delete(aspen_engine *eng, int64_t id, aspen_engine_error *err)
{
    aspen_store_error se = {0};
    pthread_mutex_lock(&eng->api_mu);
    int rc = aspen_store_delete(eng->api_store, id, &se);
    pthread_mutex_unlock(&eng->api_mu);
    return rc ? eng_store_err(err, &se, NULL) : 0;
}

int aspen_engine_purge(aspen_engine *eng, int64_t finished_before_ms, int64_t *deleted,
                       aspen_engine_error *err)
{
    aspen_store_error se = {0};
    int64_t n = 0;
    pthread_mutex_lock(&eng->api_mu);
    int rc = aspen_store_purge(eng->api_store, finished_before_ms, &n, &se);
    pthread_mutex_unlock(&eng->api_mu);
    if (rc)
        return eng_store_err(err, &se, NULL);
    if (deleted)
        *deleted = n;
    return 0;
}

int aspen_engine_set_paused(aspen_engine *eng, bool paused, aspen_engine_error *err)
{
    aspen_store_error se = {0};
    pthread_mutex_lock(&eng->api_mu);
    int rc = aspen_store_set_paused(eng->api_store, paused, &se);
    pthread_mutex_unlock(&eng->api_mu);
    if (rc)
        return eng_store_err(err, &se, NULL);
    eng_wake(eng);
    return 0;
}

int aspen_engine_paused(aspen_engine *eng, bool *paused, aspen_engine_error *err)
{
    aspen_store_error se = {0};
    pthread_mutex_lock(&eng->api_mu);
    int rc = aspen_store_paused(eng->api_store, paused, &se);
    pthread_mutex_unlock(&eng->api_mu);
    return rc ? eng_store_err(err, &se, NULL) : 0;
}

/* ---- queries ------------------------------------------------------------------------------------ */

#define API_CALL(expr, what)                                                                       \
    do {                                                                                           \
        aspen_store_error se = {0};                                                                \
        pthread_mutex_lock(&eng->api_mu);                                                          \
        int rc_ = (expr);                                                                          \
        pthread_mutex_unlock(&eng->api_mu);                                                        \
        return rc_ ? eng_store_err(err, &se, what) : 0;                                            \
    } while (0)

int aspen_engine_get(aspen_engine *eng, int64_t id, aspen_store_job *out, aspen_engine_error *err)
{
    API_CALL(aspen_store_get(eng->api_store, id, out, &se), NULL);
}

int aspen_engine_list(aspen_engine *eng, const aspen_store_filter *filter, aspen_store_job **jobs,
                      size_t *n, aspen_engine_error *err)
{
    API_CALL(aspen_store_list(eng->api_store, filter, jobs, n, &se), "listing jobs");
}

int aspen_engine_attempts(aspen_engine *eng, int64_t id, aspen_store_attempt **out, size_t *n,
                          aspen_engine_error *err)
{
    API_CALL(aspen_store_attempts(eng->api_store, id, out, n, &se), "reading attempts");
}

int aspen_engine_logs(aspen_engine *eng, int64_t id, int64_t after_seq, size_t limit,
                      aspen_store_log **out, size_t *n, aspen_engine_error *err)
{
    API_CALL(aspen_store_logs(eng->api_store, id, after_seq, limit, out, n, &se), "reading logs");
}

int aspen_engine_counts(aspen_engine *eng, int64_t counts[ASPEN_STORE_STATE_COUNT],
                        aspen_engine_error *err)
{
    API_CALL(aspen_store_counts(eng->api_store, counts, &se), "counting jobs");
}

int aspen_engine_data_version(aspen_engine *eng, uint64_t *version, aspen_engine_error *err)
{
    API_CALL(aspen_store_data_version(eng->api_store, version, &se), NULL);
}

int aspen_engine_build(aspen_engine *eng, const char *source_dir, char *path_out, size_t cap,
                       bool *cached, aspen_engine_error *err)
{
    char *log = NULL;
    int rc = eng_build(eng, source_dir, path_out, cap, cached, &log, err);
    free(log);
    return rc;
}

/* ---- a schedule's job template (engine/schedule.c) ---------------------------------------------- */

int eng_with_store_spec(aspen_engine *eng, const aspen_engine_job_spec *in,
                        int (*with)(aspen_engine *, const aspen_store_job_spec *, void *),
                        void *arg, aspen_engine_error *err)
{
    aspen_store_job_spec ss;
    struct owned own = {0};
    pthread_mutex_lock(&eng->api_mu);
    int rc = convert(eng, in, 0, &ss, &own, NULL, NULL, false, err);
    if (rc == 0)
        rc = with(eng, &ss, arg);
    pthread_mutex_unlock(&eng->api_mu);
    free(own.tags);
    free(own.source);
    return rc;
}
