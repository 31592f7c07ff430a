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

static const unsigned contexts[] = {TUI_CX_JOBS,    TUI_CX_VMS,       TUI_CX_LOGS,
                                    TUI_CX_DETAIL,  TUI_CX_HELP,      TUI_CX_FORM,
                                    TUI_CX_PROMPT,  TUI_CX_CONFIRM,   TUI_CX_ENGINES,
                                    TUI_CX_SCHEDULES, TUI_CX_QUEUES, TUI_CX_METRICS};

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
        assert_int_equal(tui_command_parse(cmd, &act, &arg, &text, true, msg, sizeof msg), 0);
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

/* The help's rows: the section each is under, its first word (the keys), and its text with its
 * continuation lines joined. */
typedef struct help_row {
    char section[64], keys[64], text[1024];
} help_row;

static size_t help_rows(const tui_text *t, help_row *rows, size_t max)
{
    char section[64] = "";
    size_t n = 0;
    for (size_t i = 0; i < t->n; i++) {
        const char *l = t->lines[i];
        if (!l[0])
            continue;
        if (l[0] != ' ') { /* a section's title (or the text at the top and bottom) */
            snprintf(section, sizeof section, "%s", l);
            continue;
        }
        size_t lead = strspn(l, " ");
        if (lead == 2 && n < max) { /* a row: "  KEYS  :command  help" */
            help_row *r = &rows[n++];
            snprintf(r->section, sizeof r->section, "%s", section);
            snprintf(r->keys, sizeof r->keys, "%.*s", (int)strcspn(l + 2, " "), l + 2);
            snprintf(r->text, sizeof r->text, "%s", l);
        } else if (n) { /* its continuation */
            size_t len = strlen(rows[n - 1].text);
            snprintf(rows[n - 1].text + len, sizeof rows[n - 1].text - len, " %s", l + lead);
        }
    }
    return n;
}

/* Every key bound in a pane has help there: a row in the pane's own section, a row under
 * "Everywhere", or a row in another section that says it works in this pane too ("also in
 * Engines"). The trial found enter in the Engines, Queues, Schedules and Metrics panes with no
 * help (the one row for enter spoke of jobs, VMs and logs only), and p named no pane past help. */
static void test_every_pane_key_has_help(void **st)
{
    (void)st;
    static const struct {
        unsigned cx;
        const char *section, *name;
    } panes[] = {
        {TUI_CX_JOBS, "Jobs pane", "Jobs"},          {TUI_CX_VMS, "VMs pane", "VMs"},
        {TUI_CX_LOGS, "Logs pane", "Logs"},          {TUI_CX_ENGINES, "Engines pane", "Engines"},
        {TUI_CX_SCHEDULES, "Schedules pane", "Schedules"},
        {TUI_CX_QUEUES, "Queues pane", "Queues"},    {TUI_CX_METRICS, "Metrics pane", "Metrics"},
        {TUI_CX_DETAIL, "Job detail", "detail"},
    };
    size_t n;
    const tui_binding *m = tui_keymap(&n);
    tui_text t = {0};
    tui_help_build(&t, 79);
    static help_row rows[512];
    size_t nr = help_rows(&t, rows, 512);
    assert_true(nr > 40);
    for (size_t p = 0; p < sizeof panes / sizeof panes[0]; p++)
        for (size_t i = 0; i < n; i++) {
            const tui_binding *b = &m[i];
            if (!(b->where & panes[p].cx) || !b->keys[0])
                continue;
            /* the binding dispatch finds for its first key there */
            if (tui_key_action(b->keys[0], panes[p].cx) != b->action)
                continue;
            char keys[64], also[64];
            tui_binding_keys(b, keys, sizeof keys);
            snprintf(also, sizeof also, "%s", panes[p].name);
            bool everywhere = (b->where & TUI_CX_VIEWS) == TUI_CX_VIEWS, found = false;
            for (size_t r = 0; r < nr && !found; r++) {
                if (strcmp(rows[r].keys, keys) != 0)
                    continue;
                if (everywhere)
                    found = strcmp(rows[r].section, "Everywhere") == 0;
                else
                    found = strcmp(rows[r].section, panes[p].section) == 0 ||
                            (strstr(rows[r].text, "also in") && strstr(rows[r].text, also));
            }
            if (!found)
                fail_msg("the %s has %s bound ('%s') but no help says what it does there",
                         panes[p].section, keys, b->help);
        }
    /* the panes' enter, each in its own words */
    static const char *enters[][2] = {{"Engines pane", "the worker under the cursor"},
                                      {"Schedules pane", "enqueued last"},
                                      {"Queues pane", "queue:NAME"},
                                      {"Metrics pane", "guest:NAME or type:NAME"}};
    for (size_t e = 0; e < 4; e++) {
        bool found = false;
        for (size_t r = 0; r < nr && !found; r++)
            found = !strcmp(rows[r].section, enters[e][0]) && !strcmp(rows[r].keys, "enter") &&
                    strstr(rows[r].text, enters[e][1]);
        if (!found)
            fail_msg("no help for enter in the %s", enters[e][0]);
    }
    /* up/down in the Metrics pane, the run times it shows, and retention */
    bool metrics_updown = false, retention = false;
    for (size_t r = 0; r < nr; r++) {
        metrics_updown |= !strcmp(rows[r].section, "Metrics pane") && !strcmp(rows[r].keys, "up/down");
        retention |= !strcmp(rows[r].keys, "retention") && strstr(rows[r].text, "aspen retention set");
    }
    assert_true(metrics_updown);
    assert_true(retention);
    tui_text_free(&t);
}

/* Every row's command and help start in the same columns: the keys fit their column (the
 * trial's "left/right/bksp/del" pushed its row out of line). */
static void test_help_rows_line_up(void **st)
{
    (void)st;
    size_t n;
    const tui_binding *m = tui_keymap(&n);
    for (size_t i = 0; i < n; i++) {
        char keys[64];
        tui_binding_keys(&m[i], keys, sizeof keys);
        if (strlen(keys) > 14)
            fail_msg("the keys '%s' are wider than the help's keys column (14)", keys);
    }
    tui_text t = {0};
    tui_help_build(&t, 79);
    for (size_t i = 0; i < t.n; i++) {
        const char *l = t.lines[i];
        if (strncmp(l, "  ", 2) || l[2] == ' ')
            continue;
        /* "  KEYS<pad> COMMAND<pad> help": the keys end before column 16, the help starts at
         * column 33 */
        size_t len = strlen(l);
        if (len <= 33 || l[16] != ' ' || l[32] != ' ' || l[33] == ' ')
            fail_msg("help row out of line: '%s'", l);
    }
    tui_text_free(&t);
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
        cmocka_unit_test(test_every_pane_key_has_help),
        cmocka_unit_test(test_help_rows_line_up),
        cmocka_unit_test(test_footer),
        cmocka_unit_test(test_complete),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
