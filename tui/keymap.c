/* tui/keymap.c — the console's keymap table and everything generated from it (see keymap.h): key
 * dispatch, the `:` command line and its completion, the footer hints and the help screen. To add
 * a key or a command, add a row here; app.c handles its action.
 */
#include "keymap.h"

#include "view.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define K(...) {__VA_ARGS__, 0}
#define CX_ANY TUI_CX_VIEWS
#define CX_NAV TUI_CX_VIEWS

static const tui_binding map[] = {
    /* ---- everywhere ---- */
    {TUI_A_HELP, CX_ANY, K('?', 'h'), "help", NULL, NULL, false,
     "this help (every key and command)", "help", 1, NULL},
    {TUI_A_COMMAND, CX_ANY, K(':'), NULL, NULL, NULL, false,
     "command line: up/down history, tab completes a command", NULL, 0, NULL},
    {TUI_A_UP, CX_NAV, K('k', TUI_KEY_UP), NULL, NULL, NULL, false, "up a row / scroll up", NULL, 0,
     NULL},
    {TUI_A_DOWN, CX_NAV, K('j', TUI_KEY_DOWN), NULL, NULL, NULL, false, "down a row / scroll down",
     NULL, 0, NULL},
    {TUI_A_PGUP, CX_NAV, K(TUI_KEY_PGUP, TUI_KEY_CTRL('b')), NULL, NULL, NULL, false, "page up",
     NULL, 0, NULL},
    {TUI_A_PGDN, CX_NAV, K(TUI_KEY_PGDN, TUI_KEY_CTRL('f')), NULL, NULL, NULL, false, "page down",
     NULL, 0, NULL},
    {TUI_A_TOP, CX_NAV, K('g', TUI_KEY_HOME), NULL, NULL, NULL, false, "first row / top", NULL, 0,
     NULL},
    {TUI_A_BOTTOM, CX_NAV, K('G', TUI_KEY_END), NULL, NULL, NULL, false,
     "last row / bottom (logs: follow again)", NULL, 0, NULL},
    {TUI_A_NEXT_PANE, CX_ANY, K(TUI_KEY_TAB), NULL, NULL, NULL, false,
     "next pane (1 Jobs, 2 VMs, 3 Logs, 4 Engines, 5 Schedules, 6 Queues, 7 Metrics)", "pane", 8, NULL},
    {TUI_A_PREV_PANE, CX_ANY, K(TUI_KEY_BTAB), NULL, NULL, NULL, false, "previous pane", NULL, 0,
     NULL},
    {TUI_A_PANE_JOBS, CX_ANY, K('1'), "jobs", NULL, NULL, false, "the jobs pane", NULL, 0, NULL},
    {TUI_A_PANE_VMS, CX_ANY, K('2'), "vms", NULL, NULL, false, "the VMs pane (workers, warm pool)",
     NULL, 0, NULL},
    {TUI_A_PANE_ENGINES, CX_ANY, K('4'), "engines", NULL, NULL, false,
     "the Engines pane: every host's engines, their workers' jobs, stale hosts", NULL, 0, NULL},
    {TUI_A_PANE_SCHEDULES, CX_ANY, K('5'), "schedules", NULL, NULL, false,
     "the Schedules pane (tab Cron under 100 columns): periodic jobs, next and last run, enable/disable, run now", NULL, 0,
     NULL},
    {TUI_A_PANE_QUEUES, CX_ANY, K('6'), "queues", NULL, NULL, false,
     "the Queues pane: every named queue, its limit, rate and pause", NULL, 0, NULL},
    {TUI_A_QUEUE_PAUSE, TUI_CX_QUEUES, K('p'), NULL, NULL, NULL, false,
     "pause / resume the queue under the cursor (every worker on this database)", "pause queue",
     7, NULL},
    {TUI_A_QUEUE_LIMIT, TUI_CX_QUEUES, K('l'), "limit", NULL, "N|none", false,
     "the concurrency limit of the queue under the cursor (every worker and host)", "limit", 6,
     NULL},
    {TUI_A_QUEUE_RATE, TUI_CX_QUEUES, K('r'), "rate", NULL, "RATE|none", false,
     ("the rate limit of the queue under the cursor: N jobs started per period (every worker "
      "and host; 100/s, 5/10s)"), "rate", 6, NULL},
    {TUI_A_PANE_METRICS, CX_ANY, K('7'), "metrics", NULL, NULL, false,
     "the Metrics pane (tab Stats at 80 columns): throughput and failure charts, p50/p95/p99 per "
     "type and guest from every engine's history", NULL, 0, NULL},
    {TUI_A_METRICS_WINDOW, TUI_CX_METRICS, K('w'), "window", NULL, "[WIN]", false,
     "the Metrics pane's window: the next one (15m, 1h, 24h, 7d), or :window 24h", "window", 5,
     NULL},
    {TUI_A_PANE_LOGS, CX_ANY, K('3'), "logs", NULL, "[ID]", false,
     "the logs pane (:logs ID: one job's logs)", NULL, 0, NULL},
    {TUI_A_BACK, CX_ANY, K(TUI_KEY_ESC), NULL, NULL, NULL, false,
     "back to where you came from (clears marks on the first screen); never quits", "back", 9,
     NULL},
    {TUI_A_BACK_OR_QUIT, CX_ANY, K('q'), NULL, NULL, NULL, false,
     "back; on the first screen: quit (asks first while this console's workers run jobs)",
     "quit", 10, NULL},
    {TUI_A_QUIT, CX_ANY, K('Q', TUI_KEY_CTRL('c')), "quit", "q", NULL, false,
     "quit from anywhere (running jobs get a few seconds, the rest go back to the queue)", NULL, 0,
     NULL},
    {TUI_A_SUBMIT, CX_ANY, K('s'), "submit", NULL, NULL, false,
     "submit a job (a fresh form with the defaults)", "submit", 2, NULL},
    {TUI_A_SUBMIT_COPY, TUI_CX_JOBS | TUI_CX_DETAIL, K('S'), NULL, NULL, NULL, false,
     "submit a copy: the form starts from the selected job", NULL, 0, NULL},
    {TUI_A_PAUSE_TOGGLE, CX_ANY & ~TUI_CX_QUEUES, K('p'), NULL, NULL, NULL, false,
     "pause / resume every queue (every worker on this database)", "pause", 7, NULL},
    {TUI_A_PAUSE, CX_ANY, K(0), "pause", NULL, NULL, false, "pause every queue", NULL, 0, NULL},
    {TUI_A_RESUME, CX_ANY, K(0), "resume", NULL, NULL, false, "resume every queue", NULL, 0, NULL},
    {TUI_A_OPEN_JOB, CX_ANY, K(0), "job", NULL, "ID", true, "the detail of job ID", NULL, 0, NULL},
    {TUI_A_FILTER_SET, CX_ANY, K(0), "filter", NULL, "TEXT", false,
     "set the jobs filter (empty: none)", NULL, 0, NULL},
    {TUI_A_SORT_SET, CX_ANY, K(0), "sort", NULL, "COLUMN", true,
     "sort by id state guest priority attempts age duration", NULL, 0, NULL},
    {TUI_A_SAVE_FILTER, CX_ANY, K(0), "save", NULL, "NAME", true,
     "save the jobs filter under NAME (kept between runs; no filter set: forget NAME)", NULL, 0,
     NULL},
    {TUI_A_LOAD_FILTER, CX_ANY, K(0), "load", NULL, "NAME", true, "apply the filter saved as NAME",
     NULL, 0, NULL},
    {TUI_A_LIST_FILTERS, CX_ANY, K(0), "filters", NULL, NULL, false, "list the saved filters",
     NULL, 0, NULL},
    {TUI_A_REFRESH, CX_ANY, K(TUI_KEY_CTRL('l')), NULL, NULL, NULL, false,
     "redraw the screen and reload", NULL, 0, NULL},
    {TUI_A_SUSPEND, CX_ANY, K(TUI_KEY_CTRL('z')), NULL, NULL, NULL, false,
     "suspend to the shell (fg resumes; the engine stops meanwhile)", NULL, 0, NULL},

    /* ---- jobs ---- */
    /* enter does what the pane under it lists: one row per pane, so the help says what it does
     * there (the same action; each pane's module handles it) */
    {TUI_A_OPEN, TUI_CX_JOBS | TUI_CX_VMS | TUI_CX_LOGS, K(TUI_KEY_ENTER), NULL, NULL, NULL, false,
     "job detail (logs: the line's job; VMs: the worker's job)", "detail", 4, NULL},
    {TUI_A_OPEN, TUI_CX_ENGINES, K(TUI_KEY_ENTER), NULL, NULL, NULL, false,
     "the detail of the job the worker under the cursor runs", "detail", 4, NULL},
    {TUI_A_OPEN, TUI_CX_SCHEDULES, K(TUI_KEY_ENTER), NULL, NULL, NULL, false,
     "the detail of the job the schedule under the cursor enqueued last", "last job", 4, NULL},
    {TUI_A_OPEN, TUI_CX_QUEUES, K(TUI_KEY_ENTER), NULL, NULL, NULL, false,
     "the queue's jobs: the jobs pane with the filter queue:NAME (enter keeps it)", "jobs", 4,
     NULL},
    {TUI_A_OPEN, TUI_CX_METRICS, K(TUI_KEY_ENTER), NULL, NULL, NULL, false,
     "the row's jobs: the jobs pane with the filter guest:NAME or type:NAME (enter keeps it)",
     "jobs", 4, NULL},
    {TUI_A_DOC, TUI_CX_METRICS, K(0), NULL, NULL, NULL, false,
     ("choose a row of the table (a type or guest) for enter; the charts above are every "
      "type's"), NULL, 0, "up/down"},
    {TUI_A_DOC, TUI_CX_METRICS, K(0), NULL, NULL, NULL, false,
     ("p50/p95/p99 (here and in the header) are run times inside the VM (an in-process type's: "
      "its handler's, counted in whole ms, so <1ms); the Jobs pane's DUR is finished - started, "
      "the VM's start and the store's writes included, so it is longer"), NULL, 0, "run times"},
    {TUI_A_DOC, TUI_CX_QUEUES, K(0), NULL, NULL, NULL, false,
     ("how long finished jobs are kept (per final state): the Queues pane's last line shows it; "
      "set it with aspen retention set (aspen retention shows it, aspen purge deletes now)"),
     NULL, 0, "retention"},
    {TUI_A_FILTER, TUI_CX_JOBS, K('/'), NULL, NULL, NULL, false,
     "filter as you type: failed guest:NAME tag:T payload.user:alice (bare words: a state, a job "
     "id or a guest)", "filter", 3, NULL},
    {TUI_A_MARK, TUI_CX_JOBS, K(' '), NULL, NULL, NULL, false,
     "mark the row (c, r and d act on every marked job)", "mark", 7, NULL},
    {TUI_A_MARK_CLEAR, TUI_CX_JOBS, K('x'), "clear", NULL, NULL, false, "clear the marks", NULL, 0,
     NULL},
    {TUI_A_CANCEL, TUI_CX_JOBS | TUI_CX_DETAIL, K('c'), "cancel", NULL, NULL, false,
     "cancel (asks first)", "cancel", 5, NULL},
    {TUI_A_RERUN, TUI_CX_JOBS | TUI_CX_DETAIL, K('r'), "rerun", NULL, NULL, false,
     "rerun as a new job", "rerun", 6, NULL},
    {TUI_A_RETRY_FAILED, TUI_CX_JOBS, K('R'), "retry-failed", NULL, NULL, false,
     "retry every failed job matching the filter (asks first)", NULL, 0, NULL},
    {TUI_A_DELETE, TUI_CX_JOBS | TUI_CX_DETAIL, K('d'), "delete", NULL, NULL, false,
     "delete the selected (or marked) finished jobs, attempts and logs too (asks first)", NULL, 0,
     NULL},
    {TUI_A_DELETE_MATCHING, TUI_CX_JOBS, K('D'), "delete-match", NULL, NULL, false,
     "delete every finished job matching the filter (asks first, with the count)", NULL, 0, NULL},
    /* after delete-match: a bare ":match" still suggests :delete-match (the nearest name first in
     * the table wins a tie) */
    {TUI_A_CANCEL_MATCHING, TUI_CX_JOBS, K('X'), "cancel-match", NULL, NULL, false,
     "cancel every unfinished job matching the filter (asks first, with the count; refused "
     "without a filter, so no one key cancels every job)", "cancel all", 8, NULL},
    {TUI_A_PRIORITY_UP, TUI_CX_JOBS | TUI_CX_DETAIL, K('+', '='), NULL, NULL, NULL, false,
     "raise the priority of the selected (or marked) waiting jobs by 1", NULL, 0, NULL},
    {TUI_A_PRIORITY_DOWN, TUI_CX_JOBS | TUI_CX_DETAIL, K('-'), NULL, NULL, NULL, false,
     "lower the priority of the selected (or marked) waiting jobs by 1", NULL, 0, NULL},
    {TUI_A_PRIORITY_SET, CX_ANY, K(0), "priority", NULL, "N", true,
     "set the priority of the selected (or marked) waiting jobs to N (higher runs first)", NULL,
     0, NULL},
    {TUI_A_RUN_NOW, TUI_CX_JOBS | TUI_CX_DETAIL, K('n'), "run-now", NULL, NULL, false,
     "run the selected (or marked) scheduled jobs now (delayed or backing off)", NULL, 0, NULL},
    {TUI_A_SNOOZE, TUI_CX_JOBS | TUI_CX_DETAIL, K('z'), "snooze", NULL, "[TIME]", false,
     "put the selected (or marked) waiting jobs off by TIME: 30s, 10m, 1h30m (asked, 10m filled "
     "in; n undoes it)", NULL, 0, NULL},
    {TUI_A_EXPORT, CX_ANY, K(0), "export", NULL, "FILE", true,
     "write every job matching the filter to FILE (a new file), one JSON object a line", NULL, 0,
     NULL},
    {TUI_A_SORT_NEXT, TUI_CX_JOBS, K('o'), NULL, NULL, NULL, false, "sort by the next column",
     "sort", 8, NULL},
    {TUI_A_SORT_REVERSE, TUI_CX_JOBS, K('O'), NULL, NULL, NULL, false,
     "reverse the sort (the column's arrow: v descending, ^ ascending)", NULL, 0,
     NULL},
    {TUI_A_LOGS_OF_JOB, TUI_CX_JOBS | TUI_CX_DETAIL, K('l'), NULL, NULL, NULL, false,
     "logs of the selected job (esc comes back)", "logs", 6, NULL},

    {TUI_A_COPY, TUI_CX_JOBS | TUI_CX_DETAIL, K('y'), NULL, NULL, NULL, false,
     "copy to the clipboard: the selected job's id; in the detail, its payload", NULL, 0, NULL},
    {TUI_A_CORE, TUI_CX_JOBS | TUI_CX_DETAIL, K('C'), "core", NULL, "[FILE]", false,
     "write the ELF core of the job's last failed attempt (and the guest ELF beside it) and show "
     "the gdb command", NULL, 0, NULL},
    {TUI_A_COPY_OUTPUT, TUI_CX_DETAIL, K('Y'), NULL, NULL, NULL, false,
     "copy the job's output to the clipboard (the terminal's, through OSC 52)", NULL, 0, NULL},

    /* ---- schedules ---- */
    {TUI_A_SCHEDULE_TOGGLE, TUI_CX_SCHEDULES, K('e'), NULL, NULL, NULL, false,
     "enable / disable (pause) the schedule under the cursor", "enable", 5, NULL},
    {TUI_A_SCHEDULE_RUN, TUI_CX_SCHEDULES, K('n'), NULL, NULL, NULL, false,
     "run the schedule under the cursor now (one job from its template)", "run now", 6, NULL},

    /* ---- logs ---- */
    {TUI_A_SEARCH, TUI_CX_LOGS, K('/'), NULL, NULL, NULL, false,
     "search the lines as shown, [job N] included (starts empty)", "search", 3, NULL},
    {TUI_A_SEARCH_NEXT, TUI_CX_LOGS, K('n'), NULL, NULL, NULL, false, "next (older) match", "next",
     5, NULL},
    {TUI_A_SEARCH_PREV, TUI_CX_LOGS, K('N'), NULL, NULL, NULL, false, "previous (newer) match",
     NULL, 0, NULL},
    {TUI_A_FOLLOW, TUI_CX_LOGS, K('f'), "follow", NULL, NULL, false,
     "follow the tail (scrolling up stops it; G or f resumes)", "follow", 2, NULL},
    {TUI_A_WRAP, TUI_CX_LOGS | TUI_CX_DETAIL, K('w'), "wrap", NULL, NULL, false,
     "wrap long lines / scroll them sideways", "wrap", 6, NULL},
    {TUI_A_TIMESTAMPS, TUI_CX_LOGS, K('t'), "ts", NULL, NULL, false, "timestamps on / off", "time",
     7, NULL},
    {TUI_A_LOGS_ALL, TUI_CX_LOGS, K('a'), NULL, NULL, NULL, false, "all jobs' logs again", "all", 8,
     NULL},

    /* ---- detail ---- */
    {TUI_A_LEFT, TUI_CX_DETAIL, K(TUI_KEY_LEFT), NULL, NULL, NULL, false,
     "scroll left (when not wrapping)", NULL, 0, NULL},
    {TUI_A_RIGHT, TUI_CX_DETAIL, K(TUI_KEY_RIGHT), NULL, NULL, NULL, false,
     "scroll right (when not wrapping)", NULL, 0, NULL},

    /* ---- the submit form ---- */
    {TUI_A_FORM_NEXT, TUI_CX_FORM, K(TUI_KEY_TAB), NULL, NULL, NULL, false,
     "next field (typing then replaces its value)", "next", 2, NULL},
    {TUI_A_FORM_PREV, TUI_CX_FORM, K(TUI_KEY_BTAB), NULL, NULL, NULL, false, "previous field",
     NULL, 0, NULL},
    {TUI_A_FORM_DOWN, TUI_CX_FORM, K(TUI_KEY_DOWN), NULL, NULL, NULL, false,
     "next field; in the payload the next line (it stays in the payload: tab leaves it)", NULL,
     0, NULL},
    {TUI_A_FORM_UP, TUI_CX_FORM, K(TUI_KEY_UP), NULL, NULL, NULL, false,
     "previous field; in the payload the line above (shift-tab leaves it)", NULL, 0, NULL},
    {TUI_A_FORM_ENTER, TUI_CX_FORM, K(TUI_KEY_ENTER), NULL, NULL, NULL, false,
     "next field; a new line in the payload; sends on [Submit]", NULL, 0, NULL},
    {TUI_A_FORM_SEND, TUI_CX_FORM, K(TUI_KEY_CTRL_S), NULL, NULL, NULL, false, "submit", "submit",
     1, NULL},
    {TUI_A_FORM_RESET, TUI_CX_FORM, K(TUI_KEY_CTRL('r')), NULL, NULL, NULL, false,
     "reset every field to the defaults", "reset", 3, NULL},
    {TUI_A_FORM_CLOSE, TUI_CX_FORM, K(TUI_KEY_ESC), NULL, NULL, NULL, false, "close the form",
     "close", 4, NULL},

    /* ---- the prompt ---- */
    {TUI_A_PROMPT_APPLY, TUI_CX_PROMPT, K(TUI_KEY_ENTER), NULL, NULL, NULL, false,
     "run the command / keep the filter / find", "apply", 1, NULL},
    {TUI_A_PROMPT_CANCEL, TUI_CX_PROMPT, K(TUI_KEY_ESC), NULL, NULL, NULL, false,
     "close (the filter prompt: clears the filter)", "close", 2, NULL},
    {TUI_A_PROMPT_OLDER, TUI_CX_PROMPT, K(TUI_KEY_UP), NULL, NULL, NULL, false,
     "older entry from the history", "history", 3, NULL},
    {TUI_A_PROMPT_NEWER, TUI_CX_PROMPT, K(TUI_KEY_DOWN), NULL, NULL, NULL, false,
     "newer entry from the history", NULL, 0, NULL},
    {TUI_A_PROMPT_COMPLETE, TUI_CX_PROMPT, K(TUI_KEY_TAB), NULL, NULL, NULL, false,
     "complete the command name", "complete", 4, NULL},

    /* ---- questions ---- */
    {TUI_A_YES, TUI_CX_CONFIRM, K('y', 'Y'), NULL, NULL, NULL, false, "yes, do it", "yes", 1, NULL},
    {TUI_A_NO, TUI_CX_CONFIRM, K('n', 'N', TUI_KEY_ESC, 'q'), NULL, NULL, NULL, false, "no, leave it", "no", 2, NULL},

    /* ---- help-only: the line editor, the mouse, a paste ---- */
    {TUI_A_DOC, TUI_CX_EDIT, K(0), NULL, NULL, NULL, false,
     "move in the field being edited", NULL, 0, "left/right"},
    {TUI_A_DOC, TUI_CX_EDIT, K(0), NULL, NULL, NULL, false,
     "delete the character before / under the cursor", NULL, 0, "bksp/del"},
    {TUI_A_DOC, TUI_CX_EDIT, K(0), NULL, NULL, NULL, false, "start / end of the line", NULL, 0,
     "home/end/^A/^E"},
    {TUI_A_DOC, TUI_CX_EDIT, K(0), NULL, NULL, NULL, false, "delete to the start of the line",
     NULL, 0, "^U"},
    {TUI_A_DOC, TUI_CX_EDIT, K(0), NULL, NULL, NULL, false,
     "a paste goes into the field whole (multi-line JSON into the payload); on the main screen "
     "it is ignored, never run as keys", NULL, 0, "paste"},
    {TUI_A_DOC, TUI_CX_EDIT, K(0), NULL, NULL, NULL, false,
     "click a tab or a row (again: open it); the wheel scrolls", NULL, 0, "mouse"},
};

const tui_binding *tui_keymap(size_t *n)
{
    *n = sizeof map / sizeof map[0];
    return map;
}

tui_action tui_key_action(int key, unsigned where)
{
    if (key == 0)
        return TUI_A_NONE;
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        if (!(map[i].where & where) || map[i].action == TUI_A_DOC)
            continue;
        for (int k = 0; k < 6 && map[i].keys[k]; k++)
            if (map[i].keys[k] == key)
                return map[i].action;
    }
    return TUI_A_NONE;
}

void tui_key_name(int key, char *out, size_t cap)
{
    static const struct {
        int key;
        const char *name;
    } names[] = {
        {TUI_KEY_UP, "up"}, {TUI_KEY_DOWN, "down"}, {TUI_KEY_LEFT, "left"},
        {TUI_KEY_RIGHT, "right"}, {TUI_KEY_PGUP, "PgUp"}, {TUI_KEY_PGDN, "PgDn"},
        {TUI_KEY_HOME, "home"}, {TUI_KEY_END, "end"}, {TUI_KEY_ENTER, "enter"},
        {TUI_KEY_ESC, "esc"}, {TUI_KEY_TAB, "tab"}, {TUI_KEY_BTAB, "shift-tab"},
        {TUI_KEY_BACKSPACE, "bksp"}, {TUI_KEY_DELETE, "del"}, {TUI_KEY_CTRL_S, "^S"},
        {TUI_KEY_CTRL_U, "^U"}, {' ', "space"},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (names[i].key == key) {
            snprintf(out, cap, "%s", names[i].name);
            return;
        }
    if (key > 0 && key < 0x20)
        snprintf(out, cap, "^%c", '@' + key);
    else if (key > 0x20 && key < 0x7f)
        snprintf(out, cap, "%c", key);
    else
        snprintf(out, cap, "key %d", key);
}

void tui_binding_keys(const tui_binding *b, char *out, size_t cap)
{
    if (b->keys_label) {
        snprintf(out, cap, "%s", b->keys_label);
        return;
    }
    size_t w = 0;
    if (cap)
        out[0] = '\0';
    for (int k = 0; k < 6 && b->keys[k]; k++) {
        char name[24];
        tui_key_name(b->keys[k], name, sizeof name);
        int n = snprintf(out + w, cap - w, "%s%s", k ? "/" : "", name);
        if (n < 0 || (size_t)n >= cap - w)
            return;
        w += (size_t)n;
    }
}

/* ---- the command line ---------------------------------------------------------------------------- */

int tui_command_parse(const char *cmd, tui_action *action, int64_t *arg, const char **text,
                      bool utf8, char *msg, size_t msgcap)
{
    *action = TUI_A_NONE;
    *arg = 0;
    *text = NULL;
    while (*cmd == ' ' || *cmd == ':')
        cmd++;
    size_t len = strcspn(cmd, " ");
    const char *rest = cmd + len;
    while (*rest == ' ')
        rest++;
    if (len == 0) {
        snprintf(msg, msgcap, "no command given (try :help)");
        return -1;
    }
    const tui_binding *b = NULL;
    for (size_t i = 0; i < sizeof map / sizeof map[0] && !b; i++) {
        const tui_binding *m = &map[i];
        if ((m->command && strlen(m->command) == len && strncmp(m->command, cmd, len) == 0) ||
            (m->alias && strlen(m->alias) == len && strncmp(m->alias, cmd, len) == 0))
            b = m;
    }
    if (!b) {
        const char *names[sizeof map / sizeof map[0]];
        for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
            names[i] = map[i].command;
        const char *best = aspen_store_nearest(cmd, len, names, sizeof map / sizeof map[0]);
        /* the word quoted in 40 columns, cut between characters with the marker: a long one
         * ran the message past its buffer, which cut it inside a UTF-8 character (trial 23) */
        char shown[200];
        char *word = strndup(cmd, len);
        tui_cut_to(word ? word : "", 40, utf8, shown, sizeof shown);
        free(word);
        if (best)
            snprintf(msg, msgcap, "unknown command ':%s': did you mean :%s? (:help lists them)",
                     shown, best);
        else
            snprintf(msg, msgcap, "unknown command ':%s' (try :help)", shown);
        return -1;
    }
    *action = b->action;
    char shown[200]; /* the argument, quoted as the word above is */
    tui_cut_to(rest, 40, utf8, shown, sizeof shown);
    if (!b->args) {
        if (*rest) {
            snprintf(msg, msgcap, ":%s takes no argument, not '%s' (type :%s alone)", b->command,
                     shown, b->command);
            return -1;
        }
        return 0;
    }
    if (!*rest && b->args_required) {
        snprintf(msg, msgcap, ":%s wants %s, e.g. :%s %s", b->command, b->args, b->command,
                 strcmp(b->args, "ID") == 0       ? "42"
                 : strcmp(b->args, "COLUMN") == 0 ? "duration"
                 : strcmp(b->args, "NAME") == 0   ? "mine"
                 : strcmp(b->args, "N") == 0      ? "5"
                                                  : "failed");
        return -1;
    }
    if (strstr(b->args, "ID")) {
        if (*rest) {
            char *end;
            long long id = strtoll(rest[0] == '#' ? rest + 1 : rest, &end, 10);
            while (*end == ' ')
                end++;
            if (id <= 0 || *end) {
                snprintf(msg, msgcap, "'%s' is not a job id: a whole number from 1 (e.g. :%s 42%s)",
                         shown, b->command,
                         b->action == TUI_A_PANE_LOGS ? "; :logs alone: every job's" : "");
                return -1;
            }
            *arg = id;
            if (*action == TUI_A_PANE_LOGS)
                *action = TUI_A_LOGS_OF_JOB;
        } else if (*action == TUI_A_PANE_LOGS) {
            *text = rest; /* :logs alone: all jobs */
        }
        return 0;
    }
    *text = rest;
    return 0;
}

static int cmp_cstr(const void *x, const void *y)
{
    return strcmp(*(const char *const *)x, *(const char *const *)y);
}

size_t tui_command_complete(const char *prefix, const char **names, size_t max, char *common,
                            size_t common_cap)
{
    const char *all[sizeof map / sizeof map[0]];
    size_t n = 0, plen = strlen(prefix);
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (map[i].command && strncmp(map[i].command, prefix, plen) == 0)
            all[n++] = map[i].command;
    qsort(all, n, sizeof *all, cmp_cstr);
    for (size_t i = 0; i < n && i < max; i++)
        names[i] = all[i];
    if (common_cap) {
        if (n == 0) {
            snprintf(common, common_cap, "%s", prefix);
        } else {
            size_t cl = strlen(all[0]);
            for (size_t i = 1; i < n; i++) {
                size_t j = 0;
                while (j < cl && all[i][j] == all[0][j])
                    j++;
                cl = j;
            }
            snprintf(common, common_cap, "%.*s", (int)cl, all[0]);
        }
    }
    return n;
}

/* ---- footer ------------------------------------------------------------------------------------- */

void tui_footer(unsigned where, int width, char *out, size_t cap)
{
    const tui_binding *pick[sizeof map / sizeof map[0]];
    size_t n = 0;
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if ((map[i].where & where) && map[i].hint && map[i].keys[0])
            pick[n++] = &map[i];
    /* by rank (a stable insertion sort: the table order breaks ties) */
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && pick[j]->hint_rank < pick[j - 1]->hint_rank; j--) {
            const tui_binding *t = pick[j];
            pick[j] = pick[j - 1];
            pick[j - 1] = t;
        }
    size_t w = 0;
    if (cap)
        out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        char key[24], item[64];
        tui_key_name(pick[i]->keys[0], key, sizeof key);
        int len = snprintf(item, sizeof item, "%s%s %s", w ? "  " : "", key, pick[i]->hint);
        if (len < 0 || (int)w + len > width || w + (size_t)len + 1 > cap)
            continue; /* a later, shorter one may still fit */
        memcpy(out + w, item, (size_t)len + 1);
        w += (size_t)len;
    }
}

/* ---- help --------------------------------------------------------------------------------------- */

/* Adds "  KEYS  COMMAND  help" with the help wrapped at width (continuations under the help). */
static void help_row(tui_text *t, const char *keys, const char *command, const char *help,
                     int width)
{
    const int kw = 14, cw = 15, indent = 2 + kw + 1 + cw + 1;
    int avail = width - indent - 1;
    if (avail < 20) {
        /* very narrow: keys and command on a line, the help under them */
        tui_text_add(t, "  %s%s%s", keys, *command ? "  " : "", command);
        avail = width - 7;
        if (avail < 10)
            avail = 10;
        const char *p = help;
        while (*p) {
            int take = (int)strlen(p) <= avail ? (int)strlen(p) : avail;
            if (take < (int)strlen(p))
                while (take > 1 && p[take] != ' ')
                    take--;
            tui_text_add(t, "      %.*s", take, p);
            p += take;
            while (*p == ' ')
                p++;
        }
        return;
    }
    const char *p = help;
    bool first = true;
    do {
        int take = (int)strlen(p) <= avail ? (int)strlen(p) : avail;
        if (take < (int)strlen(p))
            while (take > 1 && p[take] != ' ')
                take--;
        if (first)
            tui_text_add(t, "  %-*s %-*s %.*s", kw, keys, cw, command, take, p);
        else
            tui_text_add(t, "%*s%.*s", indent, "", take, p);
        first = false;
        p += take;
        while (*p == ' ')
            p++;
    } while (*p);
}

void tui_help_build(tui_text *t, int width)
{
    static const struct {
        unsigned bit;
        const char *title;
    } sections[] = {
        {TUI_CX_VIEWS, "Everywhere"},
        {TUI_CX_JOBS, "Jobs pane"},
        {TUI_CX_LOGS, "Logs pane"},
        {TUI_CX_VMS, "VMs pane"},
        {TUI_CX_ENGINES, "Engines pane"},
        {TUI_CX_QUEUES, "Queues pane"},
        {TUI_CX_METRICS, "Metrics pane"},
        {TUI_CX_DETAIL, "Job detail"},
        {TUI_CX_SCHEDULES, "Schedules pane"},
        {TUI_CX_FORM, "Submit form"},
        {TUI_CX_PROMPT, "Prompt (/ filter, / search, : command)"},
        {TUI_CX_CONFIRM, "Questions"},
        {TUI_CX_EDIT, "Editing text, paste, mouse"},
    };
    /* by TUI_CX_* bit: the views a binding's "(also in ...)" names (NULL: not a view) */
    static const char *names[] = {"Jobs", "VMs", "Logs", "detail", "help", NULL, NULL, NULL,
                                  NULL, "Engines", "Schedules", "Queues", "Metrics"};
    if (width < 40)
        width = 40;
    tui_text_add(t, "Aspen console - keys");
    tui_text_add(t, "Every key and :command (up/down scroll, esc back).");
    for (size_t s = 0; s < sizeof sections / sizeof sections[0]; s++) {
        bool any = false;
        for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
            const tui_binding *b = &map[i];
            /* a binding is listed once: under Everywhere when it applies in every view, else
             * under its first view, saying where else it works */
            bool everywhere = (b->where & TUI_CX_VIEWS) == TUI_CX_VIEWS;
            unsigned home = b->where & (~b->where + 1); /* the lowest bit: its first view */
            bool here = sections[s].bit == TUI_CX_VIEWS ? everywhere
                                                         : !everywhere && home == sections[s].bit;
            if (!here)
                continue;
            if (!any) {
                tui_text_add(t, "%s", "");
                tui_text_add(t, "%s", sections[s].title);
                any = true;
            }
            char keys[64], command[48] = "", help[512];
            tui_binding_keys(b, keys, sizeof keys);
            if (b->command)
                snprintf(command, sizeof command, ":%s%s%s%s%s", b->command, b->alias ? " :" : "",
                         b->alias ? b->alias : "", b->args ? " " : "", b->args ? b->args : "");
            snprintf(help, sizeof help, "%s", b->help);
            if (!everywhere && (sections[s].bit & TUI_CX_VIEWS)) {
                /* every other view it works in is named, so each pane's section (or a row it
                 * points to) covers every key bound there: tests/tui/test_keymap.c checks it */
                char also[160] = "";
                size_t w = 0;
                for (int v = 0; v < (int)(sizeof names / sizeof names[0]); v++) {
                    unsigned bit = 1u << v;
                    if (names[v] && bit > sections[s].bit && (b->where & bit)) {
                        int n = snprintf(also + w, sizeof also - w, "%s%s", w ? ", " : "", names[v]);
                        if (n > 0 && (size_t)n < sizeof also - w)
                            w += (size_t)n;
                    }
                }
                if (w) {
                    size_t hl = strlen(help);
                    snprintf(help + hl, sizeof help - hl, " (also in %s)", also);
                }
            }
            help_row(t, keys, command, help, width);
        }
    }
    tui_text_add(t, "%s", "");
    const char *p = "States: queued (waiting), scheduled (later or backoff), running, succeeded, "
                    "failed (out of attempts), cancelled (stopped on purpose). Quitting lets "
                    "running jobs finish for a few seconds, then hands the rest back to the queue.";
    int avail = width - 1;
    while (*p) {
        int take = (int)strlen(p) <= avail ? (int)strlen(p) : avail;
        if (take < (int)strlen(p))
            while (take > 1 && p[take] != ' ')
                take--;
        tui_text_add(t, "%.*s", take, p);
        p += take;
        while (*p == ' ')
            p++;
    }
}
