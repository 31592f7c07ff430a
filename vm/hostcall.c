/* vm/hostcall.c — host-call dispatch: a guest's OUT to ASPEN_PORT_CALL with the function number,
 * arguments in the call block. Built-in lookup by name here; every other function through the
 * registry (host.c), which sees guest memory only through checked accessors. A call that breaks the
 * rules ends the run as an illegal host call.
 */
#include "vm_internal.h"

#include <string.h>

static int hostcall(aspen_vm *vm, uint32_t fn, struct run_ctx *c);

/* With a tape (tape.c), every call is recorded or checked against the record; a registered
 * function being replayed is not called: its recorded writes and result stand in for it. */
int vm_hostcall(aspen_vm *vm, uint32_t fn, struct run_ctx *c)
{
    if (!vm->tape)
        return hostcall(vm, fn, c);
    const struct host_entry *e = fn == ASPEN_FN_LOOKUP ? NULL : host_find(vm->host, fn);
    const char *name = fn == ASPEN_FN_LOOKUP ? "lookup" : e ? e->name : "unknown";
    uint64_t args[ASPEN_CALL_MAX_ARGS];
    memcpy(args, (const void *)vm->blk->call_args, sizeof args);
    bool extra = fn >= ASPEN_FN_FIRST_EXTRA;
    if (vm_tape_begin(vm, fn, name, args, ASPEN_CALL_MAX_ARGS, !extra) && e) {
        int64_t ret;
        if (vm_tape_replay_extra(vm, &ret) == 0) {
            c->res->stats.host_calls++;
            vm->blk->call_ret = ret;
            vm_tape_end(vm);
            return 0;
        }
    }
    int rc = hostcall(vm, fn, c);
    if (rc == 0 && extra)
        vm_tape_int(vm, vm->blk->call_ret);
    vm_tape_end(vm);
    return rc;
}

static int hostcall(aspen_vm *vm, uint32_t fn, struct run_ctx *c)
{
    aspen_vm_result *res = c->res;
    aspen_vm_call call;
    memset(&call, 0, sizeof call);
    call.vm = vm;
    call.illegal_msg = res->message;
    call.illegal_cap = sizeof res->message;
    call.on_log = c->on_log;
    call.log_user = c->log_user;
    call.log_lines = &res->stats.log_lines;
    memcpy(call.args, (const void *)vm->blk->call_args, sizeof call.args);
    res->stats.host_calls++;
    if (fn == ASPEN_FN_LOOKUP) {
        static const struct host_entry lookup = {.name = "lookup"};
        char name[ASPEN_MAX_NAME];
        uint64_t len = call.args[1];
        call.entry = &lookup;
        if (len == 0 || len >= sizeof name)
            return aspen_vm_call_illegal(&call, "host function lookup: name length %llu is not "
                                                "in 1..%u",
                                         (unsigned long long)len, ASPEN_MAX_NAME - 1);
        if (aspen_vm_call_read(&call, call.args[0], len, name) != 0)
            return -1;
        name[len] = '\0';
        int64_t ret = ASPEN_CALL_ENOENT;
        for (size_t i = 0; i < aspen_vm_host_count(vm->host); i++)
            if (strcmp(vm->host->e[i].name, name) == 0)
                ret = vm->host->e[i].number;
        vm->blk->call_ret = ret;
        return 0;
    }
    const struct host_entry *e = host_find(vm->host, fn);
    if (!e)
        return aspen_vm_call_illegal(&call, "unknown host function number %u (registered: "
                                            "%zu functions; look names up with "
                                            "aspen_host_lookup)",
                                     fn, aspen_vm_host_count(vm->host));
    call.entry = e;
    int rc = e->fn(&call, e->user);
    if (call.illegal)
        return -1;
    if (rc != 0 && call.ret == 0)
        call.ret = ASPEN_CALL_EFAIL;
    vm->blk->call_ret = call.ret;
    return 0;
}
