/* tests/engine/guests/flood — a hostile guest that floods its worker with log lines, to prove the
 * engine's per-job log buffer is bounded (issue 7: 16 KiB lines once grew a worker to 2.4 GB).
 *
 * Payload (JSON): {"len": N, "ms": T, "lines": L, "fail": false}
 *   len    bytes per line (1 .. 16384; the host cuts longer ones anyway)
 *   ms     print for this many milliseconds of host time (0: no time limit)
 *   lines  stop after this many lines (0: no line limit); at least one of ms/lines must be set
 *   fail   fail the job after printing (so a retry prints again: the cap spans attempts)
 *   every_ms  wait this long (host time) between lines: a slow, steady printer
 * Output: {"printed": N}, so a test knows exactly how many lines the engine had to drop. Every line
 * starts with its number, so a test can tell which lines were kept.
 * {"bad_utf8": true} instead prints one line with bytes that are not UTF-8 and ends. */
#include <aspen.h>
#include <stdio.h>
#include <string.h>

static char line[16384];

static aspen_json *flood(const aspen_json *payload, aspen_job_ctx *ctx)
{
    if (aspen_json_as_bool(aspen_json_get(payload, "bad_utf8"), false)) {
        static const char bad[] = "bad \xff\xfe utf8 \xc3\x28 end";
        hl_print(bad, sizeof bad - 1);
        return aspen_json_new_object();
    }
    int64_t len = aspen_json_as_int(aspen_json_get(payload, "len"), 0);
    int64_t ms = aspen_json_as_int(aspen_json_get(payload, "ms"), 0);
    int64_t lines = aspen_json_as_int(aspen_json_get(payload, "lines"), 0);
    int64_t every = aspen_json_as_int(aspen_json_get(payload, "every_ms"), 0);
    if (len < 1 || len > (int64_t)sizeof line || ms < 0 || lines < 0 || (ms == 0 && lines == 0) ||
        every < 0 || every > 60000)
        return aspen_fail(ctx, "test-flood: give {\"len\": 1..16384, \"ms\": T, \"lines\": L} with "
                               "ms or lines above 0 (and \"every_ms\" 0..60000)");
    memset(line, 'x', sizeof line);
    uint64_t until = ms ? hl_get_time_ns() + (uint64_t)ms * 1000000u : 0;
    int64_t n = 0;
    while ((lines == 0 || n < lines) && (until == 0 || hl_get_time_ns() < until)) {
        char head[24];
        int h = snprintf(head, sizeof head, "%lld ", (long long)n);
        size_t k = (size_t)h < (size_t)len ? (size_t)h : (size_t)len;
        memcpy(line, head, k);
        hl_print(line, (size_t)len);
        n++;
        if (every) {
            uint64_t next = hl_get_time_ns() + (uint64_t)every * 1000000u;
            while (hl_get_time_ns() < next) {
            }
        }
    }
    if (aspen_json_as_bool(aspen_json_get(payload, "fail"), false))
        return aspen_fail(ctx, "test-flood: failed on purpose after %lld lines", (long long)n);
    aspen_json *out = aspen_json_new_object();
    aspen_json_set_int(out, "printed", n);
    return out;
}

ASPEN_JSON_HANDLER(flood);
