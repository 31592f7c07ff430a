/* tests/tui/test_text.c — cmocka tests of the terminal-safe text sanitiser (tui/include/aspen_text.h) that
 * the console and every `aspen` command print job fields through: each class of dangerous
 * character (C0, DEL, C1 raw and as UTF-8, bidi and line controls, invalid UTF-8 of every kind:
 * overlong, surrogates, beyond U+10FFFF, stray continuations, sequences cut at the end of the
 * buffer), what passes unchanged (ASCII, 2/3/4-byte UTF-8), cutting to a buffer, the flags, and
 * the UTF-8 check and repair used for JSON.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "aspen_text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* escapes s[0, len) with flags and compares with want */
static void check_n(const char *s, size_t len, unsigned flags, const char *want)
{
    char out[512];
    size_t need = aspen_text_escape(s, len, flags, out, sizeof out);
    assert_string_equal(out, want);
    assert_int_equal(need, strlen(want));
    char *dup = aspen_text_escape_dup(s, len, flags);
    assert_non_null(dup);
    assert_string_equal(dup, want);
    free(dup);
}
#define check(lit, flags, want) check_n(lit, sizeof(lit) - 1, flags, want)

/* no byte of out may be a C0 control (except what flags keep), DEL, or start a C1/bidi sequence */
static void assert_terminal_safe(const char *out, unsigned flags)
{
    const unsigned char *p = (const unsigned char *)out;
    size_t n = strlen(out);
    for (size_t i = 0; i < n;) {
        if (p[i] == '\t' && (flags & ASPEN_TEXT_KEEP_TAB)) {
            i++;
            continue;
        }
        if (p[i] == '\n' && (flags & ASPEN_TEXT_KEEP_NEWLINE)) {
            i++;
            continue;
        }
        assert_false(p[i] < 0x20 || p[i] == 0x7f);
        uint32_t cp = 0;
        size_t k = aspen_text_utf8_decode(p + i, n - i, &cp);
        assert_int_not_equal(k, 0); /* the output is always valid UTF-8 */
        assert_false(cp >= 0x80 && cp <= 0x9f);
        assert_false(cp == 0x061c || cp == 0x200e || cp == 0x200f || (cp >= 0x202a && cp <= 0x202e) ||
                     (cp >= 0x2066 && cp <= 0x2069) || cp == 0x2028 || cp == 0x2029);
        i += k;
    }
}

static void test_plain_passes(void **st)
{
    (void)st;
    check("hello, world {\"a\": [1, 2]} ~!@#$%^&*()", 0, "hello, world {\"a\": [1, 2]} ~!@#$%^&*()");
    check("", 0, "");
    /* 2-, 3- and 4-byte characters are shown as they are */
    check("caf\xc3\xa9 \xe2\x82\xac \xe4\xb8\xad \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf", 0,
          "caf\xc3\xa9 \xe2\x82\xac \xe4\xb8\xad \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf");
    /* U+00A0 (first after C1), U+2027 and U+202F (beside the bidi range), U+200D (ZWJ) pass */
    check("\xc2\xa0\xe2\x80\xa7\xe2\x80\xaf\xe2\x80\x8d", 0, "\xc2\xa0\xe2\x80\xa7\xe2\x80\xaf\xe2\x80\x8d");
    /* a backslash is left alone */
    check("C:\\path \\x41", 0, "C:\\path \\x41");
}

static void test_c0_and_del(void **st)
{
    (void)st;
    check("\x1b]0;pwned\x07", 0, "\\x1b]0;pwned\\x07");
    check("\x1b[2J\x1b[H", 0, "\\x1b[2J\\x1b[H");
    check("a\rb", 0, "a\\rb");
    check("a\nb\tc", 0, "a\\nb\\tc");
    check("\x01\x08\x0b\x0c\x1f\x7f", 0, "\\x01\\x08\\x0b\\x0c\\x1f\\x7f");
    check_n("a\0b", 3, 0, "a\\x00b");
    /* flags: tab and newline kept, or made spaces; CR is always escaped */
    check("a\tb\nc\rd", ASPEN_TEXT_KEEP_TAB, "a\tb\\nc\\rd");
    check("a\tb\nc\rd", ASPEN_TEXT_KEEP_NEWLINE, "a\\tb\nc\\rd");
    check("a\tb\nc\rd", ASPEN_TEXT_KEEP_TAB | ASPEN_TEXT_KEEP_NEWLINE, "a\tb\nc\\rd");
    check("a\tb\nc\rd", ASPEN_TEXT_SPACES, "a b c\\rd");
    check("a\tb\nc", ASPEN_TEXT_SPACES | ASPEN_TEXT_KEEP_TAB, "a\tb c");
}

static void test_c1(void **st)
{
    (void)st;
    /* as UTF-8 (U+0080..U+009F) */
    check("\xc2\x80 \xc2\x9b" "31m \xc2\x9d" "0;x\xc2\x9c \xc2\x9f", 0,
          "\\u0080 \\u009b31m \\u009d0;x\\u009c \\u009f");
    /* as raw bytes (not UTF-8: escaped byte by byte) */
    check("\x9b" "31m\x9d\x80\x9f", 0, "\\x9b31m\\x9d\\x80\\x9f");
    /* a continuation byte 0x80..0x9F inside a valid sequence is not a C1 control */
    check("\xe2\x80\x94 \xe2\x80\x9c", 0, "\xe2\x80\x94 \xe2\x80\x9c"); /* em dash, left quote */
}

static void test_bidi_and_separators(void **st)
{
    (void)st;
    check("\xe2\x80\xaa\xe2\x80\xab\xe2\x80\xac\xe2\x80\xad\xe2\x80\xae", 0,
          "\\u202a\\u202b\\u202c\\u202d\\u202e");
    check("\xe2\x81\xa6\xe2\x81\xa7\xe2\x81\xa8\xe2\x81\xa9", 0, "\\u2066\\u2067\\u2068\\u2069");
    check("\xe2\x80\x8e\xe2\x80\x8f\xd8\x9c", 0, "\\u200e\\u200f\\u061c");
    check("a\xe2\x80\xa8" "b\xe2\x80\xa9" "c", 0, "a\\u2028b\\u2029c");
    check("invoice\xe2\x80\xaegnp.exe", 0, "invoice\\u202egnp.exe");
}

static void test_invalid_utf8(void **st)
{
    (void)st;
    check("\xff\xfe", 0, "\\xff\\xfe");
    check("\xf5\xf8\xfc\xfe", 0, "\\xf5\\xf8\\xfc\\xfe");
    /* overlong forms: of '/', of NUL, 3- and 4-byte overlongs */
    check("\xc0\xaf", 0, "\\xc0\\xaf");
    check("\xc1\xbf", 0, "\\xc1\\xbf");
    check("\xc0\x80", 0, "\\xc0\\x80");
    check("\xe0\x80\xaf", 0, "\\xe0\\x80\\xaf");
    check("\xe0\x9f\xbf", 0, "\\xe0\\x9f\\xbf");
    check("\xf0\x80\x80\xaf", 0, "\\xf0\\x80\\x80\\xaf");
    check("\xf0\x8f\xbf\xbf", 0, "\\xf0\\x8f\\xbf\\xbf");
    /* UTF-16 surrogates encoded as UTF-8 (CESU): high, low, a pair */
    check("\xed\xa0\x80", 0, "\\xed\\xa0\\x80");
    check("\xed\xbf\xbf", 0, "\\xed\\xbf\\xbf");
    check("\xed\xa0\xbd\xed\xb8\x80", 0, "\\xed\\xa0\\xbd\\xed\\xb8\\x80");
    check("\xed\x9f\xbf", 0, "\xed\x9f\xbf"); /* U+D7FF, just below: fine */
    /* beyond U+10FFFF */
    check("\xf4\x90\x80\x80", 0, "\\xf4\\x90\\x80\\x80");
    /* a stray continuation byte, a lead byte followed by ASCII */
    check("a\xbf" "b", 0, "a\\xbfb");
    check("\xc3(", 0, "\\xc3(");
    check("\xe2\x82(", 0, "\\xe2\\x82(");
    /* sequences cut short by the end of the buffer */
    check("ok\xc3", 0, "ok\\xc3");
    check("ok\xe2\x82", 0, "ok\\xe2\\x82");
    check("ok\xf0\x9f\x98", 0, "ok\\xf0\\x9f\\x98");
    check("ok\xf0", 0, "ok\\xf0");
    /* the length given is the end: a valid sequence that runs past it is cut, hence escaped */
    check_n("\xf0\x9f\x98\x80", 3, 0, "\\xf0\\x9f\\x98");
    check_n("\xe2\x80\xae", 2, 0, "\\xe2\\x80");
    /* a good character right after a bad byte is kept */
    check("\xff\xc3\xa9", 0, "\\xff\xc3\xa9");
}

static void test_every_byte_safe(void **st)
{
    (void)st;
    /* all 256 single bytes, all two-byte pairs: the output is always terminal-safe UTF-8 */
    char out[64];
    for (int a = 0; a < 256; a++) {
        unsigned char one[1] = {(unsigned char)a};
        aspen_text_escape(one, 1, 0, out, sizeof out);
        assert_true(out[0] != '\0');
        assert_terminal_safe(out, 0);
        for (int b = 0; b < 256; b++) {
            unsigned char two[3] = {(unsigned char)a, (unsigned char)b, 0x80};
            aspen_text_escape(two, 3, 0, out, sizeof out);
            assert_terminal_safe(out, 0);
        }
    }
    /* three-byte sequences led by E2 (where the bidi controls live), every second and third byte */
    for (int b = 0; b < 256; b++)
        for (int c = 0; c < 256; c++) {
            unsigned char three[3] = {0xe2, (unsigned char)b, (unsigned char)c};
            aspen_text_escape(three, 3, 0, out, sizeof out);
            assert_terminal_safe(out, 0);
        }
}

static void test_cut_to_buffer(void **st)
{
    (void)st;
    char out[8];
    /* "ab\x1b" = "ab\\x1b" (6): cap 5 keeps "ab" and not half of the escape */
    size_t need = aspen_text_escape("ab\x1b" "c", 4, 0, out, 5);
    assert_int_equal(need, 7);
    assert_string_equal(out, "ab");
    /* never half a UTF-8 character: "a€" with room for 3 bytes keeps "a" */
    need = aspen_text_escape("a\xe2\x82\xac" "b", 5, 0, out, 4);
    assert_int_equal(need, 5);
    assert_string_equal(out, "a");
    /* nothing after the first unit that did not fit, even a shorter one */
    need = aspen_text_escape("\x1b" "a", 2, 0, out, 3);
    assert_int_equal(need, 5);
    assert_string_equal(out, "");
    /* a run of plain ASCII cut in the middle; nothing after a cut, even a run that would fit */
    need = aspen_text_escape("abcdef", 6, 0, out, 4);
    assert_int_equal(need, 6);
    assert_string_equal(out, "abc");
    need = aspen_text_escape("abc\x1b" "d", 5, 0, out, 6);
    assert_int_equal(need, 8);
    assert_string_equal(out, "abc");
    need = aspen_text_escape("abcdefg", 7, 0, out, 8);
    assert_int_equal(need, 7);
    assert_string_equal(out, "abcdefg");
    /* cap 0: only the length */
    assert_int_equal(aspen_text_escape("\xe2\x80\xae", 3, 0, NULL, 0), 6);
    assert_int_equal(aspen_text_escape_str(NULL, 0, out, sizeof out), 0);
    assert_string_equal(out, "");
    assert_int_equal(aspen_text_escape_str("x\ry", 0, out, sizeof out), 4);
    assert_string_equal(out, "x\\ry");
}

static void test_fputs(void **st)
{
    (void)st;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    /* longer than the internal buffer, to cross its boundary */
    char big[3000];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = i % 3 == 0 ? '\x1b' : 'x';
    assert_int_equal(aspen_text_fputs(big, sizeof big, 0, f), 0);
    assert_int_equal(aspen_text_fputs("\tend\xc2\x9b", 6, ASPEN_TEXT_KEEP_TAB, f), 0);
    char plain[2500]; /* one long ASCII run, longer than the internal buffer */
    memset(plain, 'p', sizeof plain);
    assert_int_equal(aspen_text_fputs(plain, sizeof plain, 0, f), 0);
    fclose(f);
    char *want = aspen_text_escape_dup(big, sizeof big, 0);
    assert_non_null(want);
    size_t wl = strlen(want);
    size_t tl = strlen("\tend\\u009b");
    assert_int_equal(len, wl + tl + sizeof plain);
    assert_memory_equal(buf, want, wl);
    assert_memory_equal(buf + wl, "\tend\\u009b", tl);
    assert_memory_equal(buf + wl + tl, plain, sizeof plain);
    free(want);
    free(buf);
}

static void test_utf8_decode(void **st)
{
    (void)st;
    uint32_t cp = 0;
    assert_int_equal(aspen_text_utf8_decode("A", 1, &cp), 1);
    assert_int_equal(cp, 'A');
    assert_int_equal(aspen_text_utf8_decode("\xc2\x80", 2, &cp), 2);
    assert_int_equal(cp, 0x80);
    assert_int_equal(aspen_text_utf8_decode("\xdf\xbf", 2, &cp), 2);
    assert_int_equal(cp, 0x7ff);
    assert_int_equal(aspen_text_utf8_decode("\xe0\xa0\x80", 3, &cp), 3);
    assert_int_equal(cp, 0x800);
    assert_int_equal(aspen_text_utf8_decode("\xef\xbf\xbf", 3, &cp), 3);
    assert_int_equal(cp, 0xffff);
    assert_int_equal(aspen_text_utf8_decode("\xf0\x90\x80\x80", 4, &cp), 4);
    assert_int_equal(cp, 0x10000);
    assert_int_equal(aspen_text_utf8_decode("\xf4\x8f\xbf\xbf", 4, &cp), 4);
    assert_int_equal(cp, 0x10ffff);
    assert_int_equal(aspen_text_utf8_decode("", 0, &cp), 0);
    assert_int_equal(aspen_text_utf8_decode("\xc2", 1, &cp), 0);
    assert_int_equal(aspen_text_utf8_decode("\xed\xa0\x80", 3, &cp), 0);
    assert_int_equal(aspen_text_utf8_decode("\xf4\x90\x80\x80", 4, &cp), 0);
    assert_int_equal(aspen_text_utf8_decode("\xe0\x9f\xbf", 3, &cp), 0);
}

static void test_utf8_valid_and_repair(void **st)
{
    (void)st;
    assert_true(aspen_text_utf8_valid("", 0));
    assert_true(aspen_text_utf8_valid("caf\xc3\xa9 \xf0\x9f\x98\x80 \x1b[2J", 15));
    assert_true(aspen_text_utf8_valid("a\0b", 3));
    assert_false(aspen_text_utf8_valid("\xff\xfe", 2));
    assert_false(aspen_text_utf8_valid("ok\xe2\x82", 4));
    assert_false(aspen_text_utf8_valid("\xed\xa0\x80", 3));
    assert_false(aspen_text_utf8_valid("\xc0\xaf", 2));
    size_t n = 0;
    char *r = aspen_text_utf8_repair("\xff\xfe", 2, &n);
    assert_non_null(r);
    assert_int_equal(n, 6);
    assert_string_equal(r, "\xef\xbf\xbd\xef\xbf\xbd");
    free(r);
    /* one U+FFFD per bad byte; good text around it kept, NUL included */
    r = aspen_text_utf8_repair("a\xc3(\xc3\xa9\0z\xe2\x82", 9, &n);
    assert_non_null(r);
    assert_int_equal(n, 15);
    assert_memory_equal(r, "a\xef\xbf\xbd(\xc3\xa9\0z\xef\xbf\xbd\xef\xbf\xbd", 15);
    assert_true(aspen_text_utf8_valid(r, n));
    free(r);
    r = aspen_text_utf8_repair(NULL, 0, &n);
    assert_non_null(r);
    assert_int_equal(n, 0);
    free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_passes),
        cmocka_unit_test(test_c0_and_del),
        cmocka_unit_test(test_c1),
        cmocka_unit_test(test_bidi_and_separators),
        cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_every_byte_safe),
        cmocka_unit_test(test_cut_to_buffer),
        cmocka_unit_test(test_fputs),
        cmocka_unit_test(test_utf8_decode),
        cmocka_unit_test(test_utf8_valid_and_repair),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
