/* bench/compute_kernel.h — a compute-bound kernel compiled twice: into the guest test-compute (by
 * the SDK) and natively into `aspen bench vm`, so guest time / native time measures what running in
 * a micro-VM costs pure computation. Integer-only (no FPU state involved), no memory traffic beyond
 * registers, and a result that depends on every iteration so no compiler can skip the work. */
#ifndef ASPEN_COMPUTE_KERNEL_H
#define ASPEN_COMPUTE_KERNEL_H

#include <stdint.h>

static inline uint64_t aspen_compute_kernel(uint64_t iterations)
{
    uint64_t x = 0x9e3779b97f4a7c15ull, acc = 0;
    for (uint64_t i = 0; i < iterations; i++) {
        /* xorshift64* step folded into an accumulator */
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        acc += x * 0x2545f4914f6cdd1dull;
    }
    return acc ^ x;
}

#endif
