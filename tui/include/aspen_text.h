/* tui/include/aspen_text.h — terminal-safe text: the one sanitiser for everything Aspen shows a person.
 *
 * Job fields (a guest's result, log lines, errors, a submitted type, tags, names, payloads) are
 * written by whoever submitted or ran the job; printed raw they reach the terminal as OSC/CSI
 * escapes, carriage returns, C1 controls (which some terminals act on) and bidi overrides (which
 * reorder what the reader sees). Both front ends — the console (tui/) and the `aspen` commands
 * (cli/) — pass such text through aspen_text_escape before it reaches a terminal.
 *
 * It lives in tui/ as its own tiny library (aspen_text, no dependencies) because tui/ is the lowest
 * room both front ends may use (cli -> tui); the engine and the store keep bytes as they were given.
 *
 * What is escaped (everything else, valid printable UTF-8 included, passes unchanged):
 *   C0 controls   \t \n \r as such (tab and newline may be kept or made spaces, see flags), the
 *                 others as \xNN (ESC is \x1b)
 *   DEL           \x7f
 *   C1 controls   U+0080..U+009F (UTF-8 C2 80..C2 9F) as \u0080..\u009f
 *   bidi and line controls  U+061C U+200E U+200F U+202A..U+202E U+2066..U+2069 U+2028 U+2029
 *                 as \uNNNN
 *   invalid UTF-8 every byte that is not part of a well-formed sequence (stray continuation or
 *                 raw C1 bytes, overlong forms, surrogates, beyond U+10FFFF, a sequence cut short)
 *                 as \xNN: shown, never dropped
 * Backslashes are not doubled: the escapes are for reading; `--json` output is the exact form.
 */
#ifndef ASPEN_TEXT_H
#define ASPEN_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

enum {
    ASPEN_TEXT_KEEP_TAB = 1u << 0,     /* a tab stays a tab (the last field of a line) */
    ASPEN_TEXT_KEEP_NEWLINE = 1u << 1, /* a newline stays (multi-line blocks) */
    ASPEN_TEXT_SPACES = 1u << 2,       /* tab and newline become one space (table cells) */
};

/* Writes the escaped form of s[0, len) into out, NUL-terminated when cap > 0, cut before the first
 * character or escape that does not fit (never in the middle of one). Returns the length the whole
 * escaped text needs, like snprintf: a result >= cap means it was cut. s may be NULL when len is 0. */
size_t aspen_text_escape(const void *s, size_t len, unsigned flags, char *out, size_t cap);
/* The same for a NUL-terminated string (NULL → ""). */
size_t aspen_text_escape_str(const char *s, unsigned flags, char *out, size_t cap);
/* A malloc'd escaped copy; NULL only when out of memory. */
char *aspen_text_escape_dup(const void *s, size_t len, unsigned flags);
/* Writes the escaped text to f; returns 0, or EOF on a write error. */
int aspen_text_fputs(const void *s, size_t len, unsigned flags, FILE *f);

/* The well-formed UTF-8 sequence at p[0, n): its length (1..4) and code point, or 0 when p does
 * not start one (n == 0, a stray or missing continuation, overlong, surrogate, > U+10FFFF). */
size_t aspen_text_utf8_decode(const void *p, size_t n, uint32_t *cp);
/* True when all of s[0, len) is well-formed UTF-8. */
bool aspen_text_utf8_valid(const void *s, size_t len);
/* A malloc'd, NUL-terminated copy in which every byte that is not part of well-formed UTF-8 is
 * replaced by U+FFFD (one per byte); *out_len (may be NULL) gets its length. NULL only when out of
 * memory. For JSON, whose strings must be UTF-8. */
char *aspen_text_utf8_repair(const void *s, size_t len, size_t *out_len);

#ifdef __cplusplus
}
#endif
#endif
