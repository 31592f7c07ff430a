/* engine/vmpool.c — the warm VM pool and the image cache.
 *
 * Images are cached by the binary's sha256 and shared (retained) by every VM that runs them: a
 * binary is fetched from the store, checked against its sha256 (a damaged copy is refused, never
 * run) and validated once per process. VMs are keyed by (sha256, guest memory size, a Linux
 * program's arguments); a warm VM
 * restores itself after each run, so an idle one is ready for the next job of its key. The pool is
 * bounded by a budget on guest memory: creating a VM that would pass it evicts idle VMs, least
 * recently used first. VMs in use are never evicted (at most one per worker), so the pool may
 * exceed its budget by the VMs workers hold at that moment.
 *
 * Workers keep the VM they used last and only come here when the binary changes, so the lock below
 * is off the path of a stream of jobs of one binary.
 */
#include "engine_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void vm_pool_init(struct vm_pool *p, size_t budget)
{
    memset(p, 0, sizeof *p);
    pthread_mutex_init(&p->mu, NULL);
    p->budget = budget;
}

static void free_slot(struct vm_slot *s);

void vm_pool_destroy(struct vm_pool *p)
{
    struct vm_slot *s = p->head;
    while (s) {
        struct vm_slot *next = s->next;
        free_slot(s);
        s = next;
    }
    p->head = NULL;
    for (size_t i = 0; i < p->n_images; i++)
        aspen_vm_image_release(p->images[i].img);
    free(p->images);
    p->images = NULL;
    p->n_images = p->cap_images = 0;
    pthread_mutex_destroy(&p->mu);
}

static void unlink_slot(struct vm_pool *p, struct vm_slot *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        p->head = s->next;
    if (s->next)
        s->next->prev = s->prev;
    s->prev = s->next = NULL;
    p->total_bytes -= s->mem;
    p->n_vms--;
}

static void free_slot(struct vm_slot *s)
{
    aspen_vm_destroy(s->vm);
    aspen_vm_image_release(s->img);
    free(s->args);
    free(s);
}

/* Takes idle VMs out (LRU first) until `need` more bytes fit the budget; returns them as a list to
 * destroy outside the lock. */
static struct vm_slot *evict_for(struct vm_pool *p, size_t need)
{
    struct vm_slot *out = NULL;
    while (p->total_bytes + need > p->budget) {
        struct vm_slot *lru = NULL;
        for (struct vm_slot *s = p->head; s; s = s->next)
            if (!s->in_use && (!lru || s->last_used < lru->last_used))
                lru = s;
        if (!lru)
            break;
        unlink_slot(p, lru);
        lru->next = out;
        out = lru;
        atomic_fetch_add(&p->evictions, 1);
    }
    return out;
}

static void free_list(struct vm_slot *s)
{
    while (s) {
        struct vm_slot *next = s->next;
        free_slot(s);
        s = next;
    }
}

/* The image for sha: cached, or fetched from the store and validated. Returns a retained image. */
static aspen_vm_image *get_image(struct vm_pool *p, aspen_store *store, const char *sha,
                                 const char *name, char *msg, size_t msgcap, bool *permanent)
{
    pthread_mutex_lock(&p->mu);
    for (size_t i = 0; i < p->n_images; i++)
        if (strcmp(p->images[i].sha, sha) == 0) {
            aspen_vm_image *img = aspen_vm_image_retain(p->images[i].img);
            pthread_mutex_unlock(&p->mu);
            return img;
        }
    pthread_mutex_unlock(&p->mu);

    aspen_store_binary bin = {0};
    aspen_store_error se = {0};
    int rc = aspen_store_get_binary(store, sha, &bin, &se);
    if (rc) {
        *permanent = rc == ASPEN_STORE_ENOTFOUND;
        snprintf(msg, msgcap, "guest binary %s (%.12s…) is not in the store: %s", name, sha,
                 se.msg);
        return NULL;
    }
    /* The bytes are checked against the hash they are stored under before they become code: a
     * damaged database (or a hand edit) must not run something the submitter never sent. */
    char actual[65];
    aspen_store_sha256_hex(bin.bytes, bin.size, actual);
    if (strcmp(actual, sha) != 0) {
        *permanent = true;
        snprintf(msg, msgcap,
                 "stored binary %s does not match its sha256 %.16s… (its %zu bytes hash to "
                 "%.16s…): the database's copy is damaged, so it was not run; resubmit the job "
                 "with the guest file (that stores a good copy again)",
                 bin.name ? bin.name : name, sha, bin.size, actual);
        aspen_store_binary_clear(&bin);
        return NULL;
    }
    aspen_vm_image *img = NULL;
    aspen_vm_error ve = {0};
    rc = aspen_vm_image_load_mem(bin.bytes, bin.size, bin.name ? bin.name : name, &img, &ve);
    aspen_store_binary_clear(&bin);
    if (rc) {
        *permanent = rc == ASPEN_VM_EIMAGE;
        snprintf(msg, msgcap, "%s", ve.msg);
        return NULL;
    }
    pthread_mutex_lock(&p->mu);
    for (size_t i = 0; i < p->n_images; i++)
        if (strcmp(p->images[i].sha, sha) == 0) { /* another worker loaded it meanwhile */
            aspen_vm_image *mine = img;
            img = aspen_vm_image_retain(p->images[i].img);
            pthread_mutex_unlock(&p->mu);
            aspen_vm_image_release(mine);
            return img;
        }
    if (p->n_images == p->cap_images) {
        size_t cap = p->cap_images ? p->cap_images * 2 : 8;
        struct vm_image_entry *n = realloc(p->images, cap * sizeof *n);
        if (!n) {
            pthread_mutex_unlock(&p->mu);
            return img; /* works, just not cached */
        }
        p->images = n;
        p->cap_images = cap;
    }
    snprintf(p->images[p->n_images].sha, sizeof p->images[0].sha, "%s", sha);
    p->images[p->n_images++].img = aspen_vm_image_retain(img);
    pthread_mutex_unlock(&p->mu);
    return img;
}

int vm_pool_acquire(struct vm_pool *p, aspen_engine *eng, aspen_store *store, const char *sha,
                    const char *name, size_t mem, const char *const *args, const char *args_key,
                    aspen_vm_log_fn startup_log, void *log_user,
                    struct vm_slot **out, bool *cold, char *msg, size_t msgcap, bool *permanent)
{
    *out = NULL;
    *cold = false;
    *permanent = false;
    pthread_mutex_lock(&p->mu);
    struct vm_slot *best = NULL;
    for (struct vm_slot *s = p->head; s; s = s->next)
        if (!s->in_use && s->mem == mem && strcmp(s->sha, sha) == 0 &&
            strcmp(s->args, args_key) == 0 &&
            (!best || s->last_used > best->last_used))
            best = s;
    if (best) {
        best->in_use = true;
        pthread_mutex_unlock(&p->mu);
        atomic_fetch_add(&p->hits, 1);
        *out = best;
        return 0;
    }
    /* Make room and reserve the memory before creating outside the lock. */
    struct vm_slot *evicted = evict_for(p, mem);
    struct vm_slot *s = calloc(1, sizeof *s);
    if (s && !(s->args = strdup(args_key))) {
        free(s);
        s = NULL;
    }
    if (s) {
        s->in_use = true;
        s->mem = mem;
        snprintf(s->sha, sizeof s->sha, "%s", sha);
        s->next = p->head;
        if (p->head)
            p->head->prev = s;
        p->head = s;
        p->total_bytes += mem;
        p->n_vms++;
    }
    pthread_mutex_unlock(&p->mu);
    free_list(evicted);
    if (!s) {
        snprintf(msg, msgcap, "out of memory creating a VM slot");
        return -1;
    }
    atomic_fetch_add(&p->misses, 1);
    *cold = true;

    s->img = get_image(p, store, sha, name, msg, msgcap, permanent);
    if (!s->img)
        goto drop_slot;
    aspen_vm_config cfg;
    aspen_vm_config_default(&cfg);
    cfg.memory_bytes = mem;
    cfg.warm = true;
    cfg.startup_log = startup_log; /* the guest's init lines go to the job that started it */
    cfg.startup_log_user = log_user;
    cfg.argv = args;
    aspen_vm_error ve = {0};
    if (aspen_vm_create(s->img, &cfg, eng->host, &s->vm, &ve) != 0) {
        *permanent = ve.code == ASPEN_VM_EINVAL || ve.code == ASPEN_VM_ESTARTUP ||
                     ve.code == ASPEN_VM_EIMAGE;
        snprintf(msg, msgcap, "%s", ve.msg);
        goto drop_slot;
    }
    *out = s;
    return 0;

drop_slot:
    pthread_mutex_lock(&p->mu);
    unlink_slot(p, s);
    pthread_mutex_unlock(&p->mu);
    free_slot(s);
    return -1;
}

void vm_pool_release(struct vm_pool *p, struct vm_slot *slot)
{
    if (!slot)
        return;
    pthread_mutex_lock(&p->mu);
    struct vm_slot *evicted = NULL;
    if (!aspen_vm_usable(slot->vm)) {
        unlink_slot(p, slot);
        slot->next = NULL;
        evicted = slot;
    } else {
        slot->in_use = false;
        slot->last_used = ++p->tick;
        evicted = evict_for(p, 0);
    }
    pthread_mutex_unlock(&p->mu);
    free_list(evicted);
}

void vm_pool_stats(struct vm_pool *p, aspen_engine_throughput *t)
{
    pthread_mutex_lock(&p->mu);
    t->pool_vms = p->n_vms;
    t->pool_bytes = p->total_bytes;
    t->pool_budget = p->budget;
    t->images = p->n_images;
    pthread_mutex_unlock(&p->mu);
    t->pool_hits = atomic_load(&p->hits);
    t->pool_misses = atomic_load(&p->misses);
    t->pool_evictions = atomic_load(&p->evictions);
    uint64_t all = t->pool_hits + t->pool_misses;
    t->pool_hit_rate = all ? (double)t->pool_hits / (double)all : 0;
}
