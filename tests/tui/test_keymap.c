/* tests/tui/test_keymap.c — cmocka tests of the console's one keymap (tui/keymap.c): every key and
 * command has help; no key is bound twice where it applies; every :command is in the help; the
 * footer is made from the table and fits; the command line completes and suggests from it; the
 * help at 80 columns has no line wider than the screen (issue 9: help and the footer had drifted
 * from the keys, :cancel, :rerun, :jobs, :vms were missing, and help was cut at 80x24).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "keymap.h"
#include "view.h"

#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const unsigned contexts[] = {TUI_CX_JOBS, TUI_CX_VMS, TUI_CX_LOGS, TUI_CX_DETAIL,
                                    TUI_CX_HELP, TUI_CX_FORM, TUI_CX_PROMPT, TUI_CX_CONFIRM};

static void test_every_binding_has_help(void **st)
{
    (void)st;
    size_t n;
    const tui_binding *m = tui_keymap(&n);
    assert_true(n > 40);
    for (size_t i = 0; i < n; i++) {
        assert_non_null(m[i].help);
        assert_true(strlen(m[i].help) > 2);
        assert_true(m[i].where != 0);
        /* a binding is reachable: by a key, a command, or it documents what the editor does */
        assert_true(m[i].keys[0] || m[i].command || m[i].action == TUI_A_DOC);
        if (m[i].action == TUI_A_DOC)
            assert_non_null(m[i].keys_label);
        if (m[i].hint)
            assert_true(m[i].keys[0] != 0); /* a footer hint names a key */
    }
}

static void test_no_key_bound_twice(void **st)
{
    (void)st;
    size_t n;
    const tui_binding *m = tui_keymap(&n);
    for (size_t c = 0; c < sizeof contexts / sizeof contexts[0]; c++)
        for (size_t i = 0; i < n; i++) {
            if (!(m[i].where & contexts[c]) || m[i].action == TUI_A_DOC)
                continue;
            for (int k = 0; k < 6 && m[i].keys[k]; k++) {
                for (size_t j = i + 1; j < n; j++) {
                    if (!(m[j].where & contexts[c]) || m[j].action == TUI_A_DOC)
                        continue;
                    for (int l = 0; l < 6 && m[j].keys[l]; l++)
                        if (m[j].keys[l] == m[i].keys[k]) {
                            char name[24];
                            tui_key_name(m[i].keys[k], name, sizeof name);
                            fail_msg("key %s is bound twice in context 0x%x: %s / %s", name,
                                     contexts[c], m[i].help, m[j].help);
                        }
                }
                /* and dispatch finds this binding for it */
                assert_int_equal(tui_key_action(m[i].keys[k], contexts[c]), m[i].action);
            }
        }
}

static void test_commands_unique_and_parse(void **st)
{
    (void)st;
    size_t n;
    const tui_binding *m = tui_keymap(&n);
    for (size_t i = 0; i < n; i++) {
        if (!m[i].command)
            continue;
        for (size_t j = i + 1; j < n; j++)
            if (m[j].command)
                assert_string_not_equal(m[i].command, m[j].command);
        /* each command parses to its action (with an argument when it needs one) */
        char cmd[64];
        snprintf(cmd, sizeof cmd, "%s%s", m[i].command,
                 !m[i].args_required ? "" : strcmp(m[i].args, "ID") == 0 ? " 7" : " duration");
        /* (a NAME or a COLUMN: any word parses; what it names is checked by the action) */
        tui_action act;
        int64_t arg;
        const char *text;
        char msg[256];
        assert_int_equal(tui_command_parse(cmd, &act, &arg, &text, msg, sizeof msg), 0);
        assert_int_equal(act, m[i].action);
    }
}

static bool text_has(const tui_text *t, const char *needle)
{
    for (size_t i = 0; i < t->n; i++)
        if (strstr(t->lines[i], needle))
            return true;
    return false;
}

static void test_help_lists_everything_and_fits(void **st)
{
    (void)st;
    size_t n;
    const tui_binding *m = tui_keymap(&n);
    static const int widths[] = {80, 100, 60, 132};
    for (size_t w = 0; w < sizeof widths / sizeof widths[0]; w++) {
        tui_text t = {0};
        tui_help_build(&t, widths[w] - 1);
        for (size_t i = 0; i < t.n; i++)
            if (tui_cols(t.lines[i], strlen(t.lines[i])) > widths[w] - 2)
                fail_msg("help line %zu is %d columns at width %d: '%s'", i,
                         tui_cols(t.lines[i], strlen(t.lines[i])), widths[w], t.lines[i]);
        for (size_t i = 0; i < n; i++) {
            if (m[i].command) {
                char c[48];
                snprintf(c, sizeof c, ":%s", m[i].command);
                if (!text_has(&t, c))
                    fail_msg("help at %d columns does not list %s", widths[w], c);
            }
            char keys[64];
            tui_binding_keys(&m[i], keys, sizeof keys);
            if (keys[0] && !text_has(&t, keys))
                fail_msg("help at %d columns does not list the keys %s", widths[w], keys);
            /* the help text itself, at least its first words */
            char head[16];
            snprintf(head, sizeof head, "%.12s", m[i].help);
            if (!text_has(&t, head))
                fail_msg("help at %d columns lacks '%s'", widths[w], m[i].help);
        }
        /* the missing ones */
        assert_true(text_has(&t, ":cancel"));
        assert_true(text_has(&t, ":rerun"));
        assert_true(text_has(&t, ":jobs"));
        assert_true(text_has(&t, ":vms"));
        tui_text_free(&t);
    }
}

static void test_footer(void **st)
{
    (void)st;
    char f[512];
    tui_footer(TUI_CX_JOBS, 79, f, sizeof f);
    assert_true(strncmp(f, "? help  s submit", 16) == 0);
    assert_true(strlen(f) <= 79);
    assert_non_null(strstr(f, "/ filter"));
    tui_footer(TUI_CX_LOGS, 79, f, sizeof f);
    assert_non_null(strstr(f, "/ search"));
    assert_non_null(strstr(f, "f follow"));
    assert_null(strstr(f, "/ filter"));
    tui_footer(TUI_CX_FORM, 79, f, sizeof f);
    assert_non_null(strstr(f, "^S submit"));
    assert_non_null(strstr(f, "^R reset"));
    tui_footer(TUI_CX_JOBS, 30, f, sizeof f);
    assert_true(strlen(f) <= 30);
    assert_true(strncmp(f, "? help", 6) == 0);
}

static void test_complete(void **st)
{
    (void)st;
    const char *names[16];
    char common[32];
    assert_int_equal(tui_command_complete("ret", names, 16, common, sizeof common), 1);
    assert_string_equal(names[0], "retry-failed");
    assert_string_equal(common, "retry-failed");
    size_t n = tui_command_complete("re", names, 16, common, sizeof common);
    assert_int_equal(n, 3); /* rerun resume retry-failed */
    assert_string_equal(names[0], "rerun");
    assert_string_equal(names[1], "resume");
    assert_string_equal(common, "re");
    assert_int_equal(tui_command_complete("zz", names, 16, common, sizeof common), 0);
    assert_true(tui_command_complete("", names, 16, common, sizeof common) > 15);
}

int main(void)
{
    setlocale(LC_ALL, "C.UTF-8");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_binding_has_help),
        cmocka_unit_test(test_no_key_bound_twice),
        cmocka_unit_test(test_commands_unique_and_parse),
        cmocka_unit_test(test_help_lists_everything_and_fits),
        cmocka_unit_test(test_footer),
        cmocka_unit_test(test_complete),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
