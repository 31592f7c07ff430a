/* vm/include/aspen_vm.h — the micro-VM monitor's public API.
 *
 * Runs a static x86-64 guest (built with guests/sdk or to the contract in vm/include/abi.h) in its own KVM
 * VM: one vCPU in long mode, guest code at CPL 3, guest memory exactly the configured size, host
 * calls through I/O ports with every guest pointer checked. Knows nothing of jobs, SQLite or curses.
 *
 *   aspen_vm_image  a validated, immutable ELF image; shared read-only by every VM that runs it.
 *   aspen_vm_host   the registry of host functions a guest may call (hl_println, hl_get_time, ...).
 *   aspen_vm        one VM: created from an image, started up once, then runs jobs from a snapshot.
 *
 * Conventions: functions return 0 or a negative ASPEN_VM_E* code and fill an aspen_vm_error with a
 * message a user can act on. Images and hosts may be shared between threads; one aspen_vm is used by
 * one thread at a time, except aspen_vm_interrupt(), which any thread may call at any time.
 */
#ifndef ASPEN_VM_H
#define ASPEN_VM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Errors ------------------------------------------------------------------------------------ *
 * One table: name, value, what it means. The rooms' codes do not overlap (vm -1xx, store -2xx,
 * engine -3xx), so a code handed up unchanged still says which room it came from. */
#define ASPEN_VM_ERRNO_MAP(X)                                                                     \
    X(EKVM, -101, "KVM is not available, or a KVM call failed")                                   \
    X(EIMAGE, -102, "the guest binary was rejected")                                              \
    X(EINVAL, -103, "a bad argument or configuration")                                            \
    X(ENOMEM, -104, "out of host memory")                                                         \
    X(EIO, -105, "a file could not be read")                                                      \
    X(ESTARTUP, -106, "the guest failed before reaching its ready point")                         \
    X(EREGISTRY, -107, "the host-function registry was misused")

enum {
    ASPEN_VM_OK = 0,
#define ASPEN_VM_ERRNO_ENUM(name, value, text) ASPEN_VM_##name = value,
    ASPEN_VM_ERRNO_MAP(ASPEN_VM_ERRNO_ENUM)
#undef ASPEN_VM_ERRNO_ENUM
};

/* "ASPEN_VM_EKVM", ... ("ASPEN_VM_OK" for 0, NULL for a code that is not the monitor's), and what
 * the code means in general (the aspen_vm_error's message says what happened this time). Static
 * strings: safe from any thread. */
const char *aspen_vm_err_name(int code);
const char *aspen_vm_strerror(int code);

typedef struct aspen_vm_error {
    int code;
    char msg[512];
} aspen_vm_error;

/* Largest binary accepted, in the seed's words: "Binary too large: X bytes (max: 52428800 bytes)". */
#define ASPEN_VM_MAX_BINARY 52428800u

/* ---- Images ------------------------------------------------------------------------------------ */
typedef struct aspen_vm_image aspen_vm_image;

int aspen_vm_image_load_file(const char *path, aspen_vm_image **out, aspen_vm_error *err);
/* name is used in messages (may be NULL); bytes are copied. */
int aspen_vm_image_load_mem(const void *bytes, size_t len, const char *name, aspen_vm_image **out,
                            aspen_vm_error *err);
aspen_vm_image *aspen_vm_image_retain(aspen_vm_image *img);
void aspen_vm_image_release(aspen_vm_image *img);
const char *aspen_vm_image_name(const aspen_vm_image *img);
size_t aspen_vm_image_file_size(const aspen_vm_image *img);
/* True for a static Linux program (no Aspen ABI note; docs/ABI.md section 12): it runs main()
 * with stdin as the job's input, stdout as its output and stderr lines as log lines. */
bool aspen_vm_image_is_linux(const aspen_vm_image *img);
/* Bytes of guest memory the image itself occupies (its pages). */
size_t aspen_vm_image_mem_size(const aspen_vm_image *img);

/* ---- Host functions ---------------------------------------------------------------------------- */
typedef struct aspen_vm_host aspen_vm_host;
typedef struct aspen_vm_call aspen_vm_call;

/* A host function: read arguments with aspen_vm_call_arg, guest memory only through the checked
 * accessors below; set the guest-visible result with aspen_vm_call_return. Return 0, or
 * aspen_vm_call_illegal(...) to end the run with an "illegal host call" error. */
typedef int (*aspen_vm_hostfn)(aspen_vm_call *call, void *user);

/* Log lines from hl_println: one callback per line, without the newline, control bytes replaced. */
typedef void (*aspen_vm_log_fn)(void *user, const char *line, size_t len);

/* A registry holding the built-ins hl_println, hl_get_time and hl_get_time_ns. */
aspen_vm_host *aspen_vm_host_new(void);
void aspen_vm_host_free(aspen_vm_host *host);
/* Register before the first VM is created with this host. signature is free text for audits,
 * e.g. "(u64 a, u64 b) -> u64". Names: [A-Za-z0-9_], at most ASPEN_MAX_NAME-1 bytes, unique. */
int aspen_vm_host_register(aspen_vm_host *host, const char *name, const char *signature,
                           aspen_vm_hostfn fn, void *user, aspen_vm_error *err);
size_t aspen_vm_host_count(const aspen_vm_host *host);
/* Entry i (0..count-1): its guest-visible number, name and signature. */
int aspen_vm_host_entry(const aspen_vm_host *host, size_t i, uint32_t *number, const char **name,
                        const char **signature);

uint64_t aspen_vm_call_arg(const aspen_vm_call *call, unsigned i);
void aspen_vm_call_return(aspen_vm_call *call, int64_t value);
/* Copy len bytes from guest address gva: fails (and makes the call illegal) unless the whole range
 * is mapped guest memory. */
int aspen_vm_call_read(aspen_vm_call *call, uint64_t gva, uint64_t len, void *dst);
/* Copy into guest memory: the range must be mapped and writable by the guest. */
int aspen_vm_call_write(aspen_vm_call *call, uint64_t gva, const void *src, uint64_t len);
/* Mark the call illegal with a message (printf-style); returns a negative value to return. */
int aspen_vm_call_illegal(aspen_vm_call *call, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Send a log line to the run's log callback (as hl_println does). */
void aspen_vm_call_log(aspen_vm_call *call, const char *line, size_t len);

/* ---- VMs --------------------------------------------------------------------------------------- */
typedef struct aspen_vm aspen_vm;

typedef struct aspen_vm_gdb aspen_vm_gdb; /* a GDB remote-protocol server (see "Debugging") */

typedef struct aspen_vm_config {
    size_t memory_bytes;  /* all guest memory; default 1 MiB; 64 KiB .. 1 GiB */
    size_t stack_bytes;   /* default 64 KiB */
    uint32_t timeout_ms;  /* default deadline per run; default 1000 */
    size_t max_output;    /* default 16 MiB (and never more than guest memory) */
    bool warm;            /* snapshot after start-up so runs can be repeated; default true */
    aspen_vm_log_fn startup_log; /* lines the guest prints during start-up (ASPEN_INIT); may be NULL */
    void *startup_log_user;
    /* A static Linux program's arguments after argv[0] (which is the image's name): a
     * NULL-terminated array read only during aspen_vm_create, or NULL for none. Ignored for
     * Aspen-ABI guests. Start-up, which sees them, runs once per VM: VMs made with different
     * arguments are different VMs. */
    const char *const *argv;
    /* Debug this VM with gdb (aspen_vm_gdb_accept'ed): it stops at the guest's entry and is
     * driven by the client from then on. Needs warm = false. NULL: no debugger. */
    aspen_vm_gdb *gdb;
} aspen_vm_config;

void aspen_vm_config_default(aspen_vm_config *cfg);
/* The guest-memory sizes aspen_vm_create accepts, for callers that check a size before creating a
 * VM (the engine, at submit): memory_bytes between ASPEN_VM_MIN_MEMORY and ASPEN_VM_MAX_MEMORY, and
 * (rounded up to pages) at least the image's pages (aspen_vm_image_mem_size) + the stack +
 * ASPEN_VM_MEMORY_RESERVE (the call block page and the smallest heap). */
#define ASPEN_VM_MIN_MEMORY (64u << 10)
#define ASPEN_VM_MAX_MEMORY (1ull << 30)
#define ASPEN_VM_MEMORY_RESERVE (5u * 4096u)
/* Parse "1M", "512K", "256MiB", "1048576" into bytes (not 0); 0 on success, -1 otherwise. */
int aspen_vm_parse_size(const char *s, size_t *out);

/* Create the VM and run the guest's start-up to its ready point. host may be NULL (built-ins only). */
int aspen_vm_create(aspen_vm_image *img, const aspen_vm_config *cfg, aspen_vm_host *host,
                    aspen_vm **out, aspen_vm_error *err);
void aspen_vm_destroy(aspen_vm *vm);

typedef enum aspen_vm_outcome {
    ASPEN_VM_SUCCESS = 0,
    ASPEN_VM_JOB_ERROR,       /* the handler reported failure: message */
    ASPEN_VM_PANIC,           /* the guest panicked: message */
    ASPEN_VM_FAULT,           /* CPU exception in guest code: fault.* */
    ASPEN_VM_ILLEGAL_CALL,    /* a host call broke the rules (bad pointer, unknown function) */
    ASPEN_VM_OUTPUT_TOO_LARGE,
    ASPEN_VM_INPUT_TOO_LARGE, /* input does not fit in guest memory */
    ASPEN_VM_TIMEOUT,
    ASPEN_VM_CANCELLED,
    ASPEN_VM_CRASHED,         /* the VM stopped in a way the guest cannot cause on purpose */
} aspen_vm_outcome;

const char *aspen_vm_outcome_name(aspen_vm_outcome o); /* "success", "timeout", ... */

typedef struct aspen_vm_fault {
    uint32_t vector;     /* exception number: 14 = #PF, 13 = #GP, 0 = #DE, 6 = #UD, ... */
    uint64_t error_code;
    uint64_t rip;        /* guest instruction address */
    uint64_t address;    /* #PF: the address touched (CR2) */
    uint64_t rsp;
} aspen_vm_fault;

typedef struct aspen_vm_run_stats {
    uint64_t wall_ns;       /* from entering the guest to the result, restore excluded */
    uint64_t restore_ns;    /* putting the VM back to its snapshot afterwards */
    uint32_t exits;         /* VM exits to user space */
    uint32_t host_calls;
    uint32_t pages_dirtied; /* pages restored after the run */
    uint64_t bytes_in;
    uint64_t bytes_out;
    uint32_t log_lines;
} aspen_vm_run_stats;

typedef struct aspen_vm_result {
    aspen_vm_outcome outcome;
    uint8_t *output;   /* malloc'd, NUL-terminated for convenience (not counted); free with _result_free */
    size_t output_len;
    char message[1024]; /* empty on success; otherwise what happened, for a user */
    aspen_vm_fault fault;
    aspen_vm_run_stats stats;
    uint8_t *core; /* an ELF core file when opts.core_max asked for one (malloc'd; _result_free) */
    size_t core_len;
} aspen_vm_result;

typedef struct aspen_vm_run_opts {
    const void *input;
    size_t input_len;
    uint32_t timeout_ms;    /* 0 = the VM's configured default */
    aspen_vm_log_fn on_log; /* may be NULL */
    void *log_user;
    /* Optional cancel flag owned by the caller: when *cancel is non-zero (read atomically) the run
     * stops, also if it was set before the run began. Set it, then call aspen_vm_interrupt(). */
    const int *cancel;
    /* > 0: when the job faults, panics, times out or crashes, keep an ELF core of the guest (its
     * registers and the guest memory it used, never the host's pages) of at most this many bytes
     * in res->core, for `gdb GUEST CORE`. 0: none. */
    size_t core_max;
    /* Optional: a tape made by aspen_vm_tape_new records this run's host calls; one made by
     * aspen_vm_tape_open replays a recorded run (see "Deterministic replay" below). */
    struct aspen_vm_tape *tape;
} aspen_vm_run_opts;
#define ASPEN_VM_CORE_MAX (64u << 20) /* a sensible core_max */
/* Names the program an ELF core (aspen_vm_result.core) is of, in its NT_PRPSINFO, after the base
 * name of `exe`, the file the core will be opened with: gdb compares the two and warns "core file
 * may not match specified executable file" when they differ (a core is taken naming the guest as it
 * was submitted; `aspen core --binary FILE` writes the ELF under another name). 0, or -1 when
 * `core` is not such a core (it is then left as it was). */
int aspen_vm_core_set_program(uint8_t *core, size_t len, const char *exe);

/* Run one job from the ready snapshot. Returns 0 when the job ran (res->outcome tells how it ended,
 * the VM is restored and ready for the next run), or a negative code when the VM itself is unusable
 * (err says why; destroy it). A non-warm VM runs once; a second run is ASPEN_VM_EINVAL. */
int aspen_vm_run(aspen_vm *vm, const aspen_vm_run_opts *opts, aspen_vm_result *res,
                 aspen_vm_error *err);
void aspen_vm_result_free(aspen_vm_result *res);

/* Stop the run in progress on vm within milliseconds (outcome ASPEN_VM_CANCELLED), even a guest
 * spinning without host calls. Safe from any thread. With no run in progress it does nothing: to
 * cancel a run that may be about to start, use aspen_vm_run_opts.cancel. */
void aspen_vm_interrupt(aspen_vm *vm);
/* False once the VM crashed (ASPEN_VM_CRASHED) or failed: destroy it and create another. */
bool aspen_vm_usable(const aspen_vm *vm);

typedef struct aspen_vm_stats {
    size_t memory_bytes;       /* configured guest memory */
    size_t memory_touched;     /* guest pages backed by host memory now */
    size_t host_overhead;      /* host memory beyond guest memory: snapshot, page tables, ... */
    uint64_t cold_start_ns;    /* create to ready */
    uint64_t runs;
    uint32_t last_pages_dirtied;
} aspen_vm_stats;

void aspen_vm_get_stats(const aspen_vm *vm, aspen_vm_stats *st);
const aspen_vm_image *aspen_vm_get_image(const aspen_vm *vm);

/* ---- Deterministic replay ------------------------------------------------------------------ */
/* A tape records, per host call (or system call of a Linux program), its number, a digest of its
 * arguments and of the guest memory the host read for it, and the values the host made up that a
 * second run would not reproduce: clock readings (hl_get_time, hl_get_time_ns, clock_gettime,
 * gettimeofday, time), random bytes (getrandom), a registered function's return and what it wrote
 * into the guest. Replaying a tape (same image, memory size and input) feeds those values back
 * and reports the first call that differs (docs/ABI.md, "Deterministic replay"). */
typedef struct aspen_vm_tape aspen_vm_tape;
/* An empty tape to record into, at most max_bytes (0: 64 KiB); past it the tape is cut. */
aspen_vm_tape *aspen_vm_tape_new(size_t max_bytes);
/* A recorded tape to replay (bytes copied and checked: EINVAL when damaged). */
int aspen_vm_tape_open(const void *bytes, size_t len, aspen_vm_tape **out, aspen_vm_error *err);
void aspen_vm_tape_free(aspen_vm_tape *t);
/* Recording: empties it; replay: back to the first call. */
void aspen_vm_tape_reset(aspen_vm_tape *t);
const void *aspen_vm_tape_data(const aspen_vm_tape *t, size_t *len);
/* A replayed tape whose recording was cut: calls past its end run live, not as a divergence. */
void aspen_vm_tape_set_truncated(aspen_vm_tape *t, bool truncated);
typedef struct aspen_vm_tape_info {
    uint32_t calls;       /* host calls recorded */
    uint32_t values;      /* values the host made up among them */
    size_t bytes;
    bool truncated;       /* the recording reached its cap: later calls are not in it */
    uint32_t replayed;    /* replay: host calls the replayed run made */
    bool diverged;        /* replay: a call differed from the record */
    uint32_t diverged_at; /* its number (1-based) */
    char why[640];        /* which call, its name, and what differed */
} aspen_vm_tape_info;
void aspen_vm_tape_get_info(const aspen_vm_tape *t, aspen_vm_tape_info *out);
/* Replaces value `index` (0-based) of host call `call` (1-based), a number, with `value`: what
 * the run would have done had the host answered that (e.g. another time). */
int aspen_vm_tape_set_value(aspen_vm_tape *t, uint32_t call, uint32_t index, int64_t value,
                            aspen_vm_error *err);
/* The first recorded number and its call; -1 when there is none. */
int aspen_vm_tape_first_value(const aspen_vm_tape *t, uint32_t *call, int64_t *value);
/* The recorded calls one by one, for a listing of what a record holds and which values
 * aspen_vm_tape_set_value can edit (aspen replay --calls). */
#define ASPEN_VM_TAPE_MAX_VALUES 64 /* values one call records at most */
typedef struct aspen_vm_tape_value {
    bool is_bytes;
    uint64_t number;      /* a number: a clock reading, a registered function's result, or the
                           * guest address of a write of its (the bytes that follow) */
    const uint8_t *bytes; /* bytes (getrandom's, a registered function's write into the guest):
                           * they point into the tape, valid until it is edited or freed */
    size_t len;
} aspen_vm_tape_value;
typedef struct aspen_vm_tape_call {
    uint32_t index;   /* from 1, as aspen_vm_tape_set_value and a divergence number calls */
    uint32_t number;  /* the host function's number, or the system call's */
    bool syscall;     /* a system call of a Linux program (docs/ABI.md section 12) */
    const char *name; /* "hl_get_time_ns", "clock_gettime", a registered function's; "unknown" */
    uint32_t nvalues;
    aspen_vm_tape_value values[ASPEN_VM_TAPE_MAX_VALUES];
} aspen_vm_tape_call;
typedef struct aspen_vm_tape_cursor {
    size_t pos;     /* zero it to start from the first call */
    uint32_t calls; /* calls read so far */
} aspen_vm_tape_cursor;
/* The next recorded call into *out: 1, or 0 after the last, or -1 when the record is damaged
 * there. Names come from host's registry (NULL: the built-in functions only). */
int aspen_vm_tape_next_call(const aspen_vm_tape *t, const aspen_vm_host *host,
                            aspen_vm_tape_cursor *cur, aspen_vm_tape_call *out);

/* ---- Debugging ------------------------------------------------------------------------------ */
/* A GDB remote serial protocol server for one one-shot VM (docs/ABI.md, "Debugging and core
 * dumps"). spec: "HOST:PORT", ":PORT" or "PORT" (host 127.0.0.1; port 0 picks a free one); '*' is
 * refused. *loopback says whether the address is a loopback one: anyone who can connect controls
 * the guest. */
int aspen_vm_gdb_listen(const char *spec, aspen_vm_gdb **out, bool *loopback,
                        aspen_vm_error *err);
const char *aspen_vm_gdb_address(const aspen_vm_gdb *g); /* what it listens on, "127.0.0.1:1234" */
/* Wait for the client (blocking). Then give it to a VM in aspen_vm_config.gdb. */
int aspen_vm_gdb_accept(aspen_vm_gdb *g, aspen_vm_error *err);
/* Tell the client how the job ended (W/X; NULL: it never ran) unless it killed or left it. */
void aspen_vm_gdb_finish(aspen_vm_gdb *g, const aspen_vm_result *res);
void aspen_vm_gdb_close(aspen_vm_gdb *g);

/* Is KVM usable here? 0, or ASPEN_VM_EKVM with the seed's "KVM not available" and the fix. */
int aspen_vm_check_kvm(aspen_vm_error *err);

#ifdef __cplusplus
}
#endif
#endif /* ASPEN_VM_H */
