/* tests/vm/guests/stateful — proves every job starts from the clean start-up snapshot.
 *
 * It reports the state it finds — a global counter (.data), a static buffer (.bss), a block the
 * start-up hook allocated and filled, a fresh heap allocation, and the heap's usage — and only then
 * changes all of them. If the host restored memory properly, every run prints the same line. */
#include <aspen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t g_counter = 7;   /* .data */
static char g_buffer[64];        /* .bss */
static char *g_init_block;       /* heap, allocated before the snapshot */

static void init(void)
{
    g_init_block = malloc(64);
    if (g_init_block)
        strcpy(g_init_block, "from-init");
}
ASPEN_INIT(init);

static int stateful(const uint8_t *in, size_t len, aspen_buf *out)
{
    (void)in, (void)len;
    aspen_heap_stats st;
    aspen_heap_get_stats(&st);
    unsigned char *fresh = malloc(4096);
    if (!fresh || !g_init_block)
        return aspen_error("test-stateful: out of memory");
    int r = aspen_buf_appendf(out, "counter=%llu buffer='%s' init='%s' fresh=%02x%02x in_use=%zu",
                              (unsigned long long)g_counter, g_buffer, g_init_block, fresh[0],
                              fresh[4095], st.in_use);
    /* Now dirty everything for the next job to (not) see. */
    g_counter++;
    strcpy(g_buffer, "dirty");
    strcpy(g_init_block, "dirty");
    memset(fresh, 0xAB, 4096);
    return r;
}

ASPEN_JOB_HANDLER(stateful);
