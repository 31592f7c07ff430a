/* json_runner.c — runs an ASPEN_JSON_HANDLER job: parse the input, call the handler, write the
 * result as compact JSON into the output.
 *
 * Kept apart from runtime.c so that only JSON guests link the JSON parser, writer and strtod:
 * ASPEN_JSON_HANDLER names aspen__run_json, ASPEN_JOB_HANDLER does not.
 * Nothing is freed here: the payload and result live in the job's heap, which the host resets
 * before the next job (freeing would only cost time).
 */
#include <aspen.h>
#include <string.h>

#include "sdk_internal.h"

void aspen__run_json(const aspen_handler_def *h, aspen_job_ctx *ctx, aspen_buf *out)
{
    size_t len;
    const uint8_t *in = aspen_job_input(ctx, &len);
    aspen_json_error jerr;
    aspen_json *payload = aspen_json_parse((const char *)in, len, &jerr);
    if (!payload) {
        if (strcmp(jerr.message, "out of memory") == 0)
            aspen__set_message(true, "out of memory parsing the input (%zu bytes)", len);
        else
            aspen__set_message(true, "input is not valid JSON: %s at line %zu, column %zu (byte %zu)",
                               jerr.message, jerr.line, jerr.column, jerr.offset);
        aspen__finish(ASPEN_STATUS_ERROR, NULL, 0);
        return;
    }
    aspen_json *result = h->json ? h->json(payload, ctx) : NULL;
    if (!result) {
        aspen__set_message(false, "out of memory (the handler returned no result)");
        aspen__finish(ASPEN_STATUS_ERROR, NULL, 0);
    } else if (aspen_json_write_buf(result, 0, out) != 0) {
        aspen__set_message(true, "out of memory writing the result as JSON");
        aspen__finish(ASPEN_STATUS_ERROR, NULL, 0);
    } else {
        aspen__finish(ASPEN_STATUS_OK, out->data, out->len);
    }
}
