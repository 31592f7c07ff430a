/* vm/image.c — load and validate a guest ELF image.
 *
 * A guest binary is hostile input: every offset, size and count in it is checked with overflow-safe
 * arithmetic before it is used, and each way a binary can be unusable gets its own message saying
 * what to do. A validated image is immutable: its read-only segments go into one sealed memfd that
 * every VM running the image maps read-only (so N VMs of one binary share one copy of its code), and
 * its writable segments are kept as page-rounded templates each VM copies into its own memory.
 */
#include "vm_internal.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

void vm_set_error(aspen_vm_error *err, int code, const char *fmt, ...)
{
    if (!err)
        return;
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
}

const char *aspen_vm_err_name(int code)
{
    switch (code) {
    case ASPEN_VM_OK:
        return "ASPEN_VM_OK";
#define NAME(name, value, text)                                                                    \
    case ASPEN_VM_##name:                                                                          \
        return "ASPEN_VM_" #name;
        ASPEN_VM_ERRNO_MAP(NAME)
#undef NAME
    default:
        return NULL;
    }
}

const char *aspen_vm_strerror(int code)
{
    switch (code) {
    case ASPEN_VM_OK:
        return "no error";
#define TEXT(name, value, text)                                                                    \
    case ASPEN_VM_##name:                                                                          \
        return text;
        ASPEN_VM_ERRNO_MAP(TEXT)
#undef TEXT
    default:
        return NULL;
    }
}

/* a + b without wrapping; false when it would. */
static bool add_ok(uint64_t a, uint64_t b, uint64_t *out)
{
    return !__builtin_add_overflow(a, b, out);
}

/* Is [off, off+len) inside a file of size n? */
static bool in_file(uint64_t off, uint64_t len, uint64_t n)
{
    uint64_t end;
    return add_ok(off, len, &end) && end <= n;
}

static const char *machine_name(unsigned m)
{
    switch (m) {
    case EM_386: return "i386";
    case EM_ARM: return "32-bit ARM";
    case EM_AARCH64: return "AArch64";
    case EM_RISCV: return "RISC-V";
    case EM_PPC64: return "PowerPC 64";
    case EM_S390: return "s390";
    default: return "another architecture";
    }
}

#define FAIL(...)                                                                                 \
    do {                                                                                          \
        vm_set_error(err, ASPEN_VM_EIMAGE, __VA_ARGS__);                                          \
        goto fail_free_image;                                                                     \
    } while (0)

static int seg_cmp(const void *a, const void *b)
{
    const struct image_seg *x = a, *y = b;
    return x->gva < y->gva ? -1 : x->gva > y->gva;
}

/* Find the Aspen ABI note in [off, off+len) of the file. Returns 1 found, 0 absent, -1 malformed. */
static int find_note(const uint8_t *f, uint64_t n, uint64_t off, uint64_t len,
                     struct aspen_abi_note *out)
{
    if (!in_file(off, len, n))
        return -1;
    uint64_t p = off, end = off + len;
    while (end - p >= sizeof(Elf64_Nhdr)) {
        Elf64_Nhdr nh;
        memcpy(&nh, f + p, sizeof nh);
        p += sizeof nh;
        uint64_t namesz = ((uint64_t)nh.n_namesz + 3) & ~3ull;
        uint64_t descsz = ((uint64_t)nh.n_descsz + 3) & ~3ull;
        if (namesz > end - p || descsz > end - p - namesz)
            return -1;
        const char *name = (const char *)f + p;
        if (nh.n_type == ASPEN_NOTE_TYPE && nh.n_namesz == sizeof ASPEN_NOTE_OWNER &&
            memcmp(name, ASPEN_NOTE_OWNER, sizeof ASPEN_NOTE_OWNER) == 0) {
            if (nh.n_descsz < sizeof *out)
                return -1;
            memcpy(out, f + p + namesz, sizeof *out);
            return 1;
        }
        p += namesz + descsz;
    }
    return 0;
}

static const struct image_seg *seg_at(const aspen_vm_image *img, uint64_t addr)
{
    for (int i = 0; i < img->nseg; i++)
        if (addr >= img->seg[i].gva && addr - img->seg[i].gva < img->seg[i].size)
            return &img->seg[i];
    return NULL;
}

int aspen_vm_image_load_mem(const void *bytes, size_t len, const char *name, aspen_vm_image **out,
                            aspen_vm_error *err)
{
    const uint8_t *f = bytes;
    uint64_t n = len;
    *out = NULL;
    if (!name)
        name = "guest";
    if (len > ASPEN_VM_MAX_BINARY) {
        vm_set_error(err, ASPEN_VM_EIMAGE, "Binary too large: %zu bytes (max: %u bytes)", len,
                     ASPEN_VM_MAX_BINARY);
        return ASPEN_VM_EIMAGE;
    }
    aspen_vm_image *img = calloc(1, sizeof *img);
    if (!img) {
        vm_set_error(err, ASPEN_VM_ENOMEM, "out of host memory loading %s", name);
        return ASPEN_VM_ENOMEM;
    }
    atomic_init(&img->refs, 1);
    img->ro_fd = -1;
    snprintf(img->name, sizeof img->name, "%s", name);
    img->file_size = len;

    if (n < EI_NIDENT || memcmp(f, ELFMAG, SELFMAG) != 0)
        FAIL("%s is not an ELF binary (no ELF magic): guests must be static x86-64 ELF executables "
             "built with scripts/build-guest.sh",
             name);
    if (f[EI_CLASS] != ELFCLASS64)
        FAIL("%s is a 32-bit ELF binary: Aspen runs 64-bit x86-64 guests", name);
    if (f[EI_DATA] != ELFDATA2LSB)
        FAIL("%s is a big-endian ELF binary: Aspen runs little-endian x86-64 guests", name);
    if (n < sizeof(Elf64_Ehdr))
        FAIL("%s is truncated: %zu bytes is shorter than an ELF header", name, len);
    Elf64_Ehdr eh;
    memcpy(&eh, f, sizeof eh);
    if (eh.e_ident[EI_VERSION] != EV_CURRENT)
        FAIL("%s has an unknown ELF version %u", name, eh.e_ident[EI_VERSION]);
    if (eh.e_machine != EM_X86_64)
        FAIL("%s is built for %s (ELF machine %u), not x86-64", name, machine_name(eh.e_machine),
             eh.e_machine);
    if (eh.e_type == ET_REL)
        FAIL("%s is an object file, not an executable: link it (scripts/build-guest.sh does)", name);
    if (eh.e_type != ET_EXEC && eh.e_type != ET_DYN)
        FAIL("%s is not an executable (ELF type %u)", name, eh.e_type);
    if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum == 0 || eh.e_phnum > 64 ||
        !in_file(eh.e_phoff, (uint64_t)eh.e_phnum * sizeof(Elf64_Phdr), n))
        FAIL("%s has a malformed program header table (offset %llu, %u entries of %u bytes)", name,
             (unsigned long long)eh.e_phoff, eh.e_phnum, eh.e_phentsize);
    if (eh.e_type == ET_DYN) {
        /* Most ET_DYN files people try are ordinary dynamically linked programs: say that. */
        for (unsigned i = 0; i < eh.e_phnum; i++) {
            Elf64_Phdr ph;
            memcpy(&ph, f + eh.e_phoff + (uint64_t)i * sizeof ph, sizeof ph);
            if (ph.p_type == PT_INTERP || ph.p_type == PT_DYNAMIC)
                FAIL("%s is dynamically linked (it needs a program interpreter and relocations "
                     "Aspen does not apply): link it statically (-static, e.g. musl-gcc or the "
                     "SDK's scripts/build-guest.sh)",
                     name);
        }
        FAIL("%s is position-independent (ET_DYN): link it statically as a fixed-address "
             "executable (-static -no-pie; the SDK's scripts/build-guest.sh does)",
             name);
    }

    struct aspen_abi_note note;
    int have_note = 0;
    bool have_tls = false;
    for (unsigned i = 0; i < eh.e_phnum; i++) {
        Elf64_Phdr ph;
        memcpy(&ph, f + eh.e_phoff + (uint64_t)i * sizeof ph, sizeof ph);
        switch (ph.p_type) {
        case PT_INTERP: {
            char interp[128] = "?";
            if (in_file(ph.p_offset, ph.p_filesz, n) && ph.p_filesz > 0)
                snprintf(interp, sizeof interp, "%.*s", (int)(ph.p_filesz < 100 ? ph.p_filesz : 100),
                         (const char *)f + ph.p_offset);
            FAIL("%s is dynamically linked (it asks for the interpreter %s): link it statically "
                 "(-static, e.g. musl-gcc or the SDK's scripts/build-guest.sh)",
                 name, interp);
        }
        case PT_DYNAMIC:
            FAIL("%s is dynamically linked (it has a dynamic section and needs relocations Aspen "
                 "does not apply): link it statically (-static, e.g. musl-gcc or the SDK)",
                 name);
        case PT_TLS:
            have_tls = true; /* fine for a Linux program (libc sets FS), refused below otherwise */
            break;
        case PT_PHDR:
            img->phdr = ph.p_vaddr;
            break;
        case PT_NOTE:
            if (!have_note) {
                int r = find_note(f, n, ph.p_offset, ph.p_filesz, &note);
                if (r < 0)
                    FAIL("%s has a malformed note segment at offset %llu", name,
                         (unsigned long long)ph.p_offset);
                have_note = r;
            }
            break;
        case PT_LOAD: {
            if (ph.p_memsz == 0)
                break;
            if (img->nseg == IMAGE_MAX_SEGS)
                FAIL("%s has more than %d loadable segments", name, IMAGE_MAX_SEGS);
            uint64_t vend;
            if (ph.p_filesz > ph.p_memsz)
                FAIL("%s: segment %u has more file bytes (%llu) than memory bytes (%llu)", name, i,
                     (unsigned long long)ph.p_filesz, (unsigned long long)ph.p_memsz);
            if (!in_file(ph.p_offset, ph.p_filesz, n))
                FAIL("%s: segment %u's file bytes (offset %llu, %llu bytes) run past the end of "
                     "the %zu-byte file: the binary is truncated or corrupt",
                     name, i, (unsigned long long)ph.p_offset, (unsigned long long)ph.p_filesz,
                     len);
            if (!add_ok(ph.p_vaddr, ph.p_memsz, &vend))
                FAIL("%s: segment %u's address range overflows (0x%llx + %llu)", name, i,
                     (unsigned long long)ph.p_vaddr, (unsigned long long)ph.p_memsz);
            if (ph.p_vaddr < ASPEN_USER_MIN || vend > ASPEN_USER_MAX)
                FAIL("%s: segment %u [0x%llx, 0x%llx) leaves guest memory: loadable segments must "
                     "lie in [0x%llx, 0x%llx) (link at 0x%llx as the SDK's aspen.ld does)",
                     name, i, (unsigned long long)ph.p_vaddr, (unsigned long long)vend,
                     (unsigned long long)ASPEN_USER_MIN, (unsigned long long)ASPEN_USER_MAX,
                     (unsigned long long)ASPEN_IMAGE_BASE);
            if ((ph.p_flags & PF_W) && (ph.p_flags & PF_X))
                FAIL("%s: segment %u at 0x%llx is both writable and executable, which Aspen "
                     "refuses: link with separate code and data pages (the SDK's aspen.ld does)",
                     name, i, (unsigned long long)ph.p_vaddr);
            struct image_seg *s = &img->seg[img->nseg++];
            s->gva = PAGE_DOWN(ph.p_vaddr);
            s->size = PAGE_UP(vend) - s->gva;
            s->prot = ((ph.p_flags & PF_R) ? SEG_R : 0) | ((ph.p_flags & PF_W) ? SEG_W : 0) |
                      ((ph.p_flags & PF_X) ? SEG_X : 0);
            s->file_off = ph.p_offset;
            s->file_len = ph.p_filesz;
            s->page_off = ph.p_vaddr - s->gva;
            /* Where the program headers are in memory (AT_PHDR, for a Linux program's libc). */
            if (!img->phdr && eh.e_phoff >= ph.p_offset && eh.e_phoff - ph.p_offset < ph.p_filesz &&
                (uint64_t)eh.e_phnum * sizeof(Elf64_Phdr) <= ph.p_filesz - (eh.e_phoff - ph.p_offset))
                img->phdr = ph.p_vaddr + (eh.e_phoff - ph.p_offset);
            break;
        }
        default:
            break;
        }
    }
    if (img->nseg == 0)
        FAIL("%s has no loadable segments", name);

    /* Sections: static executables may still carry relocations to be applied at start-up
     * (e.g. IRELATIVE for ifuncs in a static glibc); we apply none, so refuse them. */
    if (eh.e_shoff != 0 && eh.e_shnum != 0) {
        if (eh.e_shentsize != sizeof(Elf64_Shdr) ||
            !in_file(eh.e_shoff, (uint64_t)eh.e_shnum * sizeof(Elf64_Shdr), n))
            FAIL("%s has a malformed section header table", name);
        for (unsigned i = 0; i < eh.e_shnum; i++) {
            Elf64_Shdr sh;
            memcpy(&sh, f + eh.e_shoff + (uint64_t)i * sizeof sh, sizeof sh);
            if ((sh.sh_type == SHT_RELA || sh.sh_type == SHT_REL) && (sh.sh_flags & SHF_ALLOC) &&
                sh.sh_size > 0)
                FAIL("%s needs relocations Aspen does not apply (a %llu-byte relocation section "
                     "is loaded at run time): link it statically without ifuncs or PIE — the "
                     "SDK's scripts/build-guest.sh does",
                     name, (unsigned long long)sh.sh_size);
            if (!have_note && sh.sh_type == SHT_NOTE) {
                int r = find_note(f, n, sh.sh_offset, sh.sh_size, &note);
                if (r < 0)
                    FAIL("%s has a malformed note section", name);
                have_note = r;
            }
        }
    }

    qsort(img->seg, img->nseg, sizeof img->seg[0], seg_cmp);
    for (int i = 1; i < img->nseg; i++)
        if (img->seg[i].gva < img->seg[i - 1].gva + img->seg[i - 1].size)
            FAIL("%s: segments at 0x%llx and 0x%llx overlap or share a page; every loadable "
                 "segment needs pages of its own (the SDK's aspen.ld page-aligns them)",
                 name, (unsigned long long)img->seg[i - 1].gva, (unsigned long long)img->seg[i].gva);
    img->lo = img->seg[0].gva;
    img->hi = img->seg[img->nseg - 1].gva + img->seg[img->nseg - 1].size;

    const struct image_seg *es = seg_at(img, eh.e_entry);
    if (!es || !(es->prot & SEG_X))
        FAIL("%s: entry point 0x%llx is outside its code (not in an executable segment)", name,
             (unsigned long long)eh.e_entry);
    img->entry = eh.e_entry;

    img->phnum = eh.e_phnum;
    if (!have_note) {
        /* No Aspen ABI note: a static Linux program (e.g. built with musl-gcc -static), run
         * through the system-call layer of vm/linux.c. Its program headers must be mapped for
         * its libc to find its TLS template. */
        img->linux_abi = true;
        if (img->phdr && !seg_at(img, img->phdr))
            img->phdr = 0;
        if (have_tls && !img->phdr)
            FAIL("%s uses thread-local storage but its program headers are not in a loaded "
                 "segment, so its C library cannot find the TLS template: link it with the "
                 "default linker script (musl-gcc -static)",
                 name);
        goto build;
    }
    if (have_tls)
        FAIL("%s uses thread-local storage, which Aspen-ABI guests cannot have (there is no "
             "thread pointer): build it with the SDK (no __thread, no stack protector), or "
             "without the Aspen ABI note as a static Linux program (docs/ABI.md section 12)",
             name);
    if (note.abi_version != ASPEN_ABI_VERSION)
        FAIL("%s was built for Aspen ABI version %u, but this host speaks version %u: rebuild it "
             "with this SDK",
             name, note.abi_version, ASPEN_ABI_VERSION);
    es = seg_at(img, note.execute);
    if (note.execute == 0 || !es || !(es->prot & SEG_X))
        FAIL("%s: missing execute function export (the ABI note names no execute function in its "
             "code): define a handler with ASPEN_JOB_HANDLER or ASPEN_JSON_HANDLER",
             name);
    img->execute = note.execute;

build:
    /* Build the page-rounded contents: read-only segments into one memfd, writable ones into
     * private templates. */
    for (int i = 0; i < img->nseg; i++) {
        struct image_seg *s = &img->seg[i];
        if (s->prot & SEG_W)
            img->rw_size += s->size;
        else
            img->ro_size += s->size;
    }
    if (img->ro_size + img->rw_size > (1ull << 30))
        FAIL("%s needs %zu bytes of guest memory for its image alone (max 1 GiB)", name,
             img->ro_size + img->rw_size);
    uint8_t *ro = NULL;
    if (img->ro_size) {
        img->ro_fd = memfd_create("aspen-image", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (img->ro_fd < 0 || ftruncate(img->ro_fd, (off_t)img->ro_size) != 0) {
            vm_set_error(err, ASPEN_VM_ENOMEM, "cannot create the shared image of %s: %s", name,
                         strerror(errno));
            goto fail_free_image;
        }
        ro = mmap(NULL, img->ro_size, PROT_READ | PROT_WRITE, MAP_SHARED, img->ro_fd, 0);
        if (ro == MAP_FAILED) {
            vm_set_error(err, ASPEN_VM_ENOMEM, "cannot map the shared image of %s: %s", name,
                         strerror(errno));
            goto fail_free_image;
        }
    }
    uint64_t ro_off = 0;
    for (int i = 0; i < img->nseg; i++) {
        struct image_seg *s = &img->seg[i];
        uint8_t *dst;
        if (s->prot & SEG_W) {
            s->data = calloc(1, s->size);
            if (!s->data) {
                vm_set_error(err, ASPEN_VM_ENOMEM, "out of host memory loading %s", name);
                goto fail_unmap_ro;
            }
            dst = s->data;
            s->ro_offset = 0;
        } else {
            dst = ro + ro_off;
            s->ro_offset = ro_off;
            ro_off += s->size;
        }
        memcpy(dst + s->page_off, f + s->file_off, s->file_len);
    }
    if (ro) {
        munmap(ro, img->ro_size);
        /* Nobody may change the shared code from now on. */
        fcntl(img->ro_fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL);
        void *view = mmap(NULL, img->ro_size, PROT_READ, MAP_SHARED, img->ro_fd, 0);
        if (view == MAP_FAILED) {
            vm_set_error(err, ASPEN_VM_ENOMEM, "cannot map the shared image of %s: %s", name,
                         strerror(errno));
            goto fail_free_image;
        }
        img->ro_map = view;
    }
    *out = img;
    return 0;

fail_unmap_ro:
    if (ro)
        munmap(ro, img->ro_size);
fail_free_image:
    for (int i = 0; i < img->nseg; i++)
        free(img->seg[i].data);
    if (img->ro_fd >= 0)
        close(img->ro_fd);
    free(img);
    return err ? err->code : ASPEN_VM_EIMAGE;
}

int aspen_vm_image_load_file(const char *path, aspen_vm_image **out, aspen_vm_error *err)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        vm_set_error(err, ASPEN_VM_EIO, "cannot open guest binary %s: %s%s", path, strerror(errno),
                     errno == ENOENT ? " (build guests with scripts/build-guest.sh NAME; they land "
                                       "in target/guest-binaries/)"
                                     : "");
        return ASPEN_VM_EIO;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        vm_set_error(err, ASPEN_VM_EIO, "guest binary %s is not a regular file", path);
        close(fd);
        return ASPEN_VM_EIO;
    }
    if ((uint64_t)st.st_size > ASPEN_VM_MAX_BINARY) {
        vm_set_error(err, ASPEN_VM_EIMAGE, "Binary too large: %lld bytes (max: %u bytes)",
                     (long long)st.st_size, ASPEN_VM_MAX_BINARY);
        close(fd);
        return ASPEN_VM_EIMAGE;
    }
    size_t len = (size_t)st.st_size;
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf) {
        close(fd);
        vm_set_error(err, ASPEN_VM_ENOMEM, "out of host memory reading %s", path);
        return ASPEN_VM_ENOMEM;
    }
    size_t got = 0;
    while (got < len) {
        ssize_t r = read(fd, buf + got, len - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            vm_set_error(err, ASPEN_VM_EIO, "cannot read guest binary %s: %s", path,
                         r < 0 ? strerror(errno) : "file shrank while reading");
            free(buf);
            close(fd);
            return ASPEN_VM_EIO;
        }
        got += (size_t)r;
    }
    close(fd);
    const char *base = strrchr(path, '/');
    int rc = aspen_vm_image_load_mem(buf, len, base ? base + 1 : path, out, err);
    free(buf);
    return rc;
}

aspen_vm_image *aspen_vm_image_retain(aspen_vm_image *img)
{
    atomic_fetch_add(&img->refs, 1);
    return img;
}

void aspen_vm_image_release(aspen_vm_image *img)
{
    if (!img || atomic_fetch_sub(&img->refs, 1) != 1)
        return;
    for (int i = 0; i < img->nseg; i++)
        free(img->seg[i].data);
    if (img->ro_map)
        munmap((void *)img->ro_map, img->ro_size);
    if (img->ro_fd >= 0)
        close(img->ro_fd);
    free(img);
}

const char *aspen_vm_image_name(const aspen_vm_image *img) { return img->name; }
size_t aspen_vm_image_file_size(const aspen_vm_image *img) { return img->file_size; }
size_t aspen_vm_image_mem_size(const aspen_vm_image *img) { return img->ro_size + img->rw_size; }
bool aspen_vm_image_is_linux(const aspen_vm_image *img) { return img->linux_abi; }
