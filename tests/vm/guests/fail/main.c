/* tests/vm/guests/fail — a JSON handler that always fails with "bad input: ...", for the job
 * error path (status ERROR with the handler's message). */
#include <aspen.h>

static aspen_json *fail_handler(const aspen_json *payload, aspen_job_ctx *ctx)
{
    return aspen_fail(ctx, "bad input: test-fail rejects every payload (got %s with %zu members)",
                      aspen_json_type_name(aspen_json_typeof(payload)), aspen_json_len(payload));
}

ASPEN_JSON_HANDLER(fail_handler);
