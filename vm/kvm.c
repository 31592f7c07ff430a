/* vm/kvm.c — the KVM device (opened once per process, its capabilities read once) and, for each
 * VM, the KVM objects: the VM itself, its memory slots, the dirty ring or bitmap, the vCPU and its
 * run page. Everything else about a VM is plain memory the host lays out (vm.c, cpu.c).
 */
#include "vm_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

struct vm_kvm vm_kvm = {.fd = -1, .cpl3 = -1};
static pthread_mutex_t g_kvm_lock = PTHREAD_MUTEX_INITIALIZER;
static struct kvm_sregs g_sregs_template; /* a fresh vCPU's sregs, read once per process */
static bool g_have_template;

int vm_ioctl(int fd, unsigned long req, void *arg)
{
    int r;
    do
        r = ioctl(fd, req, arg);
    while (r < 0 && errno == EINTR);
    return r;
}

static struct kvm_cpuid_entry2 *cpuid_find(struct kvm_cpuid2 *c, uint32_t fn, uint32_t idx)
{
    for (uint32_t i = 0; i < c->nent; i++)
        if (c->entries[i].function == fn && c->entries[i].index == idx)
            return &c->entries[i];
    return NULL;
}

/* The vCPU's CPUID is KVM's supported CPUID (so guest code that asks CPUID what it may use gets a
 * true answer on bare-metal KVM), and CR4/XCR0 switch on what it lists. On nested kvm_pvm the CPU
 * shows CPL-3 code the outer host's CPUID and CR4 whatever is set here; the trampoline's probe
 * (run.c) measures that. */
static int cpu_model_init(int fd, aspen_vm_error *err)
{
    for (uint32_t n = 128; n <= 4096; n *= 2) {
        struct kvm_cpuid2 *c = calloc(1, sizeof *c + n * sizeof(struct kvm_cpuid_entry2));
        if (!c) {
            vm_set_error(err, ASPEN_VM_ENOMEM, "out of host memory");
            return ASPEN_VM_ENOMEM;
        }
        c->nent = n;
        if (vm_ioctl(fd, KVM_GET_SUPPORTED_CPUID, c) == 0) {
            vm_kvm.cpuid = c;
            break;
        }
        int e = errno;
        free(c);
        if (e != E2BIG) {
            vm_set_error(err, ASPEN_VM_EKVM, "KVM_GET_SUPPORTED_CPUID failed: %s", strerror(e));
            return ASPEN_VM_EKVM;
        }
    }
    if (!vm_kvm.cpuid) {
        vm_set_error(err, ASPEN_VM_EKVM, "KVM_GET_SUPPORTED_CPUID lists more than 4096 leaves");
        return ASPEN_VM_EKVM;
    }
    struct kvm_cpuid_entry2 *l1 = cpuid_find(vm_kvm.cpuid, 1, 0);
    struct kvm_cpuid_entry2 *l7 = cpuid_find(vm_kvm.cpuid, 7, 0);
    struct kvm_cpuid_entry2 *ld = cpuid_find(vm_kvm.cpuid, 0xd, 0);
    if (l1 && (l1->ecx & (1u << 26)) && ld) { /* XSAVE */
        vm_kvm.cr4_extra |= X86_CR4_OSXSAVE;
        vm_kvm.xcr0 = ((uint64_t)ld->edx << 32 | ld->eax) & TRAMP_XRSTOR_MASK;
        l1->ecx |= 1u << 27; /* OSXSAVE, as the guest's CR4 will have it */
    }
    if (l7 && (l7->ebx & 1u)) /* FSGSBASE */
        vm_kvm.cr4_extra |= X86_CR4_FSGSBASE;
    if (l7 && (l7->ecx & (1u << 3))) { /* PKU */
        vm_kvm.cr4_extra |= X86_CR4_PKE;
        l7->ecx |= 1u << 4; /* OSPKE */
    }
    return 0;
}

int vm_kvm_open(aspen_vm_error *err)
{
    pthread_mutex_lock(&g_kvm_lock);
    if (vm_kvm.fd >= 0) {
        pthread_mutex_unlock(&g_kvm_lock);
        return 0;
    }
    const char *path = getenv("ASPEN_KVM_DEVICE");
    if (!path || !*path)
        path = "/dev/kvm";
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        if (e == ENOENT || e == ENODEV || e == ENXIO)
            vm_set_error(err, ASPEN_VM_EKVM,
                         "KVM not available: %s does not exist (%s). Load the kvm modules "
                         "(sudo modprobe kvm; sudo modprobe kvm_intel, or kvm_amd) and make sure "
                         "virtualization (VT-x/AMD-V) is enabled in the BIOS",
                         path, strerror(e));
        else if (e == EACCES || e == EPERM)
            vm_set_error(err, ASPEN_VM_EKVM,
                         "KVM not available: no permission to open %s. Add your user to the kvm "
                         "group (sudo usermod -aG kvm $USER) and log in again",
                         path);
        else
            vm_set_error(err, ASPEN_VM_EKVM, "KVM not available: cannot open %s: %s", path,
                         strerror(e));
        pthread_mutex_unlock(&g_kvm_lock);
        return ASPEN_VM_EKVM;
    }
    int api = ioctl(fd, KVM_GET_API_VERSION, 0);
    int run_size = ioctl(fd, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (api != KVM_API_VERSION || run_size < (int)sizeof(struct kvm_run) ||
        ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_IMMEDIATE_EXIT) <= 0) {
        vm_set_error(err, ASPEN_VM_EKVM,
                     "KVM not available: %s speaks API %d (want %d) or lacks immediate exit; "
                     "use a Linux kernel of 4.11 or later",
                     path, api, KVM_API_VERSION);
        close(fd);
        pthread_mutex_unlock(&g_kvm_lock);
        return ASPEN_VM_EKVM;
    }
    vm_kvm.readonly_mem = ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_READONLY_MEM) > 0;
    int sync = ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_SYNC_REGS);
    vm_kvm.sync_regs = sync > 0 && (sync & KVM_SYNC_X86_REGS);
    vm_kvm.sync_sregs = sync > 0 && (sync & KVM_SYNC_X86_SREGS);
    int ring = ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_DIRTY_LOG_RING);
    vm_kvm.ring_max = ring > 0 && !getenv("ASPEN_NO_DIRTY_RING") ? ring : 0;
    vm_kvm.sync_events = sync > 0 && (sync & KVM_SYNC_X86_EVENTS);
    int rc = cpu_model_init(fd, err);
    if (rc) {
        close(fd);
        pthread_mutex_unlock(&g_kvm_lock);
        return rc;
    }
    vm_kvm.run_size = run_size;
    vm_kvm.fd = fd;
    pthread_mutex_unlock(&g_kvm_lock);
    return 0;
}

int aspen_vm_check_kvm(aspen_vm_error *err) { return vm_kvm_open(err); }

static int set_slot(aspen_vm *vm, uint32_t slot, uint64_t gpa, void *host, uint64_t size,
                    uint32_t flags, aspen_vm_error *err)
{
    struct kvm_userspace_memory_region r = {.slot = slot, .flags = flags, .guest_phys_addr = gpa,
                                            .memory_size = size,
                                            .userspace_addr = (uint64_t)(uintptr_t)host};
    if (vm_ioctl(vm->vmfd, KVM_SET_USER_MEMORY_REGION, &r) != 0) {
        vm_set_error(err, ASPEN_VM_EKVM, "KVM refused guest memory slot %u (%llu bytes): %s", slot,
                     (unsigned long long)size, strerror(errno));
        return ASPEN_VM_EKVM;
    }
    return 0;
}

int vm_kvm_setup(aspen_vm *vm, aspen_vm_error *err)
{
    int rc = ASPEN_VM_EKVM;
    vm->vmfd = vm_ioctl(vm_kvm.fd, KVM_CREATE_VM, 0);
    if (vm->vmfd < 0) {
        vm_set_error(err, ASPEN_VM_EKVM, "KVM_CREATE_VM failed: %s%s", strerror(errno),
                     errno == ENOMEM || errno == EMFILE ? " (too many VMs or open files?)" : "");
        return rc;
    }
    /* The dirty ring must be switched on before the vCPU exists. Its size: every cold page once
     * plus KVM's reserve, a power of two between one page and 64 KiB; a job dirtying more fills
     * it, and the run loop harvests it and goes on. */
    if (vm->warm && vm->cold_size && vm_kvm.ring_max) {
        uint64_t want = (vm->cold_size / PAGE + 128) * sizeof(struct kvm_dirty_gfn), bytes = PAGE;
        while (bytes < want && bytes < (64u << 10) && bytes * 2 <= (uint64_t)vm_kvm.ring_max)
            bytes *= 2;
        struct kvm_enable_cap cap = {.cap = KVM_CAP_DIRTY_LOG_RING, .args = {bytes}};
        if (vm_ioctl(vm->vmfd, KVM_ENABLE_CAP, &cap) == 0)
            vm->ring_n = (uint32_t)(bytes / sizeof(struct kvm_dirty_gfn));
    }
    if (!vm->warm)
        rc = set_slot(vm, 0, GPA_SYS, vm->arena, vm->arena_size, 0, err);
    else if (!(rc = set_slot(vm, 0, GPA_SYS, vm->arena, vm->sys_size + vm->hot_size, 0, err)) &&
             !(rc = set_slot(vm, 1, vm->gpa_code, vm->code, vm->img->ro_size,
                             vm_kvm.readonly_mem ? KVM_MEM_READONLY : 0, err)) &&
             vm->cold_size)
        rc = set_slot(vm, 3, vm->gpa_cold, vm->umem + vm->hot_size, vm->cold_size,
                      KVM_MEM_LOG_DIRTY_PAGES, err);
    if (rc)
        return rc;
    rc = ASPEN_VM_EKVM;
    vm->cpufd = vm_ioctl(vm->vmfd, KVM_CREATE_VCPU, 0);
    if (vm->cpufd < 0) {
        vm_set_error(err, ASPEN_VM_EKVM, "KVM_CREATE_VCPU failed: %s", strerror(errno));
        return rc;
    }
    vm->run_size = (size_t)vm_kvm.run_size;
    vm->run = mmap(NULL, vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vm->cpufd, 0);
    if (vm->run == MAP_FAILED) {
        vm->run = NULL;
        vm_set_error(err, ASPEN_VM_EKVM, "cannot map the vCPU run page: %s", strerror(errno));
        return rc;
    }
    /* Every fresh vCPU starts with the same special registers: read them once per process. */
    pthread_mutex_lock(&g_kvm_lock);
    if (!g_have_template && vm_ioctl(vm->cpufd, KVM_GET_SREGS, &g_sregs_template) == 0)
        g_have_template = true;
    vm->sregs = g_sregs_template;
    pthread_mutex_unlock(&g_kvm_lock);
    if (!g_have_template) {
        vm_set_error(err, ASPEN_VM_EKVM, "KVM_GET_SREGS failed: %s", strerror(errno));
        return rc;
    }
    vm_init_sregs(vm, &vm->sregs);
    if (vm_ioctl(vm->cpufd, KVM_SET_CPUID2, vm_kvm.cpuid) != 0) {
        vm_set_error(err, ASPEN_VM_EKVM, "KVM_SET_CPUID2 failed: %s", strerror(errno));
        return rc;
    }
    if (vm_kvm.xcr0) {
        struct kvm_xcrs xcrs = {.nr_xcrs = 1, .xcrs = {{.xcr = 0, .value = vm_kvm.xcr0}}};
        if (vm_ioctl(vm->cpufd, KVM_SET_XCRS, &xcrs) != 0) {
            vm_set_error(err, ASPEN_VM_EKVM, "KVM_SET_XCRS (XCR0 0x%llx) failed: %s",
                         (unsigned long long)vm_kvm.xcr0, strerror(errno));
            return rc;
        }
    }
    if (vm->img->linux_abi) {
        /* `syscall` lands on the trampoline's syscall entry (vm/linux.c); the selectors in STAR
         * are the host's (sysret is never used: the host resumes the guest itself). */
        uint64_t lstar = SYS_GVA + SYS_TRAMP_OFF + (uint64_t)(aspen_tramp_syscall - aspen_tramp_start);
        if (vm_set_msr(vm, MSR_LSTAR, lstar) != 0 ||
            vm_set_msr(vm, MSR_STAR, (uint64_t)SEL_KCODE << 32 | (uint64_t)SEL_KDATA << 48) != 0 ||
            vm_set_msr(vm, MSR_SFMASK, 0x47700) != 0) { /* TF, IF, DF, IOPL, NT, AC cleared */
            vm_set_error(err, ASPEN_VM_EKVM, "KVM_SET_MSRS (the system-call entry) failed: %s",
                         strerror(errno));
            return rc;
        }
        vm->lx_entry_rip =
            SYS_GVA + SYS_TRAMP_OFF + (uint64_t)(aspen_tramp_syscall_out - aspen_tramp_start);
        vm->sregs.efer |= X86_EFER_SCE;
    }
    if (vm->ring_n) {
        void *ring = mmap(NULL, (size_t)vm->ring_n * sizeof(struct kvm_dirty_gfn),
                          PROT_READ | PROT_WRITE, MAP_SHARED, vm->cpufd,
                          (off_t)KVM_DIRTY_LOG_PAGE_OFFSET * (off_t)PAGE);
        if (ring == MAP_FAILED) {
            vm_set_error(err, ASPEN_VM_EKVM, "cannot map the dirty ring: %s", strerror(errno));
            return rc;
        }
        vm->ring = ring;
    } else if (vm->cold_size && vm->warm) {
        vm->bitmap_words = (vm->cold_size / PAGE + 63) / 64;
        vm->bitmap = calloc(vm->bitmap_words, 8);
        if (!vm->bitmap) {
            vm_set_error(err, ASPEN_VM_ENOMEM, "out of host memory");
            rc = ASPEN_VM_ENOMEM;
            return rc;
        }
    }
    return 0;
}

int vm_set_msr(aspen_vm *vm, uint32_t index, uint64_t value)
{
    /* struct kvm_msrs ends in a flexible array: room for one entry behind it, in a union so the
     * storage is aligned for both (a struct member after it is a GNU extension clang refuses). */
    union {
        struct kvm_msrs h;
        unsigned char bytes[sizeof(struct kvm_msrs) + sizeof(struct kvm_msr_entry)];
    } m;
    memset(&m, 0, sizeof m);
    m.h.nmsrs = 1;
    m.h.entries[0].index = index;
    m.h.entries[0].data = value;
    int r = vm_ioctl(vm->cpufd, KVM_SET_MSRS, &m);
    if (r == 1)
        return 0;
    if (r >= 0)
        errno = EINVAL;
    return -1;
}
