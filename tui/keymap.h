/* tui/keymap.h — the console's one keymap: every key and `:command`, where it applies, its help
 * text and its footer hint, in one table (keymap.c). Key dispatch, the `:` command line (parse and
 * Tab completion), the `?` help screen and the footer hints are all generated from that table, so
 * they cannot drift apart. No curses here: tests/tui/test_keymap.c checks the table itself (every
 * key and command has help, no key bound twice where it applies, every command in the help).
 */
#ifndef ASPEN_TUI_KEYMAP_H
#define ASPEN_TUI_KEYMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Keys as the console sees them (app.c maps curses codes onto these; printable keys and control
 * characters are themselves: ^B is 2, ^Z is 26). */
enum {
    TUI_KEY_UP = 0x1000, TUI_KEY_DOWN, TUI_KEY_LEFT, TUI_KEY_RIGHT, TUI_KEY_PGUP, TUI_KEY_PGDN,
    TUI_KEY_HOME, TUI_KEY_END, TUI_KEY_ENTER, TUI_KEY_ESC, TUI_KEY_TAB, TUI_KEY_BTAB,
    TUI_KEY_BACKSPACE, TUI_KEY_DELETE, TUI_KEY_CTRL_S, TUI_KEY_CTRL_U, TUI_KEY_RESIZE,
    TUI_KEY_MOUSE,       /* a click or the wheel: app.c keeps where */
    TUI_KEY_PASTE_BEGIN, /* bracketed paste (ESC [200~ ... ESC [201~) */
    TUI_KEY_PASTE_END,
};
#define TUI_KEY_CTRL(c) ((c) & 0x1f)

/* Where a binding applies: the views (panes) and the overlays that take keys. */
enum {
    TUI_CX_JOBS = 1u << 0,
    TUI_CX_VMS = 1u << 1,
    TUI_CX_LOGS = 1u << 2,
    TUI_CX_DETAIL = 1u << 3,
    TUI_CX_HELP = 1u << 4,
    TUI_CX_FORM = 1u << 5,    /* the submit form */
    TUI_CX_PROMPT = 1u << 6,  /* the filter / search / command line */
    TUI_CX_CONFIRM = 1u << 7, /* a yes/no question */
    TUI_CX_EDIT = 1u << 8,    /* text editing in the form and the prompt (help only) */
    TUI_CX_ENGINES = 1u << 9, /* pane_engines.c */
    TUI_CX_SCHEDULES = 1u << 10, /* pane_schedules.c */
    TUI_CX_QUEUES = 1u << 11,    /* pane_queues.c */
    TUI_CX_METRICS = 1u << 12,   /* pane_metrics.c */
    TUI_CX_PANES = TUI_CX_JOBS | TUI_CX_VMS | TUI_CX_LOGS | TUI_CX_ENGINES | TUI_CX_SCHEDULES |
                   TUI_CX_QUEUES | TUI_CX_METRICS,
    TUI_CX_VIEWS = TUI_CX_PANES | TUI_CX_DETAIL | TUI_CX_HELP,
};

typedef enum tui_action {
    TUI_A_NONE = 0,
    /* moving */
    TUI_A_UP, TUI_A_DOWN, TUI_A_TOP, TUI_A_BOTTOM, TUI_A_PGUP, TUI_A_PGDN, TUI_A_LEFT, TUI_A_RIGHT,
    /* views */
    TUI_A_OPEN,        /* enter: job detail */
    TUI_A_OPEN_JOB,    /* :job ID */
    TUI_A_BACK,        /* esc: back to where you came from; never quits */
    TUI_A_BACK_OR_QUIT, /* q: back; on the first screen, quit */
    TUI_A_QUIT,        /* Q, :quit */
    TUI_A_NEXT_PANE, TUI_A_PREV_PANE, TUI_A_PANE_JOBS, TUI_A_PANE_VMS, TUI_A_PANE_LOGS, TUI_A_PANE_ENGINES,
    TUI_A_PANE_SCHEDULES, TUI_A_SCHEDULE_TOGGLE, TUI_A_SCHEDULE_RUN, /* pane_schedules.c */
    TUI_A_PANE_QUEUES, TUI_A_QUEUE_PAUSE, TUI_A_QUEUE_LIMIT, TUI_A_QUEUE_RATE, /* pane_queues.c */
    TUI_A_PANE_METRICS, TUI_A_METRICS_WINDOW, /* pane_metrics.c */
    TUI_A_LOGS_OF_JOB, /* l, :logs ID */
    TUI_A_LOGS_ALL,    /* a in the logs pane */
    TUI_A_HELP, TUI_A_COMMAND, TUI_A_REFRESH, TUI_A_SUSPEND,
    /* jobs */
    TUI_A_FILTER,      /* / in the jobs pane: the filter line */
    TUI_A_FILTER_SET,  /* :filter TEXT */
    TUI_A_SUBMIT, TUI_A_SUBMIT_COPY, TUI_A_CANCEL, TUI_A_RERUN, TUI_A_RETRY_FAILED,
    TUI_A_PAUSE_TOGGLE, TUI_A_PAUSE, TUI_A_RESUME,
    TUI_A_MARK, TUI_A_MARK_CLEAR, TUI_A_SORT_NEXT, TUI_A_SORT_SET, TUI_A_SORT_REVERSE,
    TUI_A_COPY, TUI_A_COPY_OUTPUT, /* to the terminal's clipboard (OSC 52) */
    TUI_A_DELETE, TUI_A_DELETE_MATCHING, TUI_A_EXPORT, /* d, D, :export FILE */
    TUI_A_CANCEL_MATCHING, /* X, :cancel-match: every unfinished job the filter matches */
    TUI_A_CORE, /* C, :core [FILE]: a failed attempt's ELF core for gdb */
    TUI_A_PRIORITY_UP, TUI_A_PRIORITY_DOWN, TUI_A_PRIORITY_SET, /* +, -, :priority N */
    TUI_A_RUN_NOW,                                               /* n, :run-now */
    TUI_A_SNOOZE,                                  /* z, :snooze [DURATION]: run-now's inverse */
    TUI_A_SAVE_FILTER, TUI_A_LOAD_FILTER, TUI_A_LIST_FILTERS, /* :save NAME, :load NAME, :filters */
    /* logs */
    TUI_A_SEARCH, TUI_A_SEARCH_NEXT, TUI_A_SEARCH_PREV, TUI_A_FOLLOW, TUI_A_WRAP, TUI_A_TIMESTAMPS,
    /* the submit form */
    TUI_A_FORM_NEXT, TUI_A_FORM_PREV, TUI_A_FORM_DOWN, TUI_A_FORM_UP, TUI_A_FORM_ENTER,
    TUI_A_FORM_SEND, TUI_A_FORM_RESET, TUI_A_FORM_CLOSE,
    /* the prompt */
    TUI_A_PROMPT_APPLY, TUI_A_PROMPT_CANCEL, TUI_A_PROMPT_OLDER, TUI_A_PROMPT_NEWER,
    TUI_A_PROMPT_COMPLETE,
    /* a question */
    TUI_A_YES, TUI_A_NO,
    /* help-only entries: what the line editor, the mouse and a paste do */
    TUI_A_DOC,
    TUI_A_COUNT
} tui_action;

typedef struct tui_binding {
    tui_action action;
    unsigned where;          /* TUI_CX_* */
    int keys[6];             /* 0-terminated; none for a command only */
    const char *command;     /* the `:` command, or NULL */
    const char *alias;       /* a second name for it (`:q` for `:quit`), or NULL */
    const char *args;        /* what the command takes: "ID", "TEXT", "[ID]"; NULL: nothing */
    bool args_required;
    const char *help;        /* one line of the help screen */
    const char *hint;        /* the footer's word for it, or NULL */
    int hint_rank;           /* the footer shows hints by rank, lowest first, as many as fit */
    const char *keys_label;  /* help-only entries: the keys as the help names them */
} tui_binding;

const tui_binding *tui_keymap(size_t *n);

/* The action a key has where (TUI_CX_*, one bit), or TUI_A_NONE. */
tui_action tui_key_action(int key, unsigned where);
/* A key's name as help and footer show it: "j", "space", "enter", "^S", "shift-tab". */
void tui_key_name(int key, char *out, size_t cap);
/* "k/up" — a binding's keys joined by '/'. */
void tui_binding_keys(const tui_binding *b, char *out, size_t cap);

/* The `:` command line: a name from the table (or its alias) and its argument. Fills *action,
 * *arg (a job id for "job ID" / "logs ID"; 0 otherwise) and *text (what follows for commands
 * that take TEXT or COLUMN, pointing into cmd). 0, or -1 with a message (unknown command with a
 * "did you mean", missing or extra argument); a word the message quotes is cut to 40 columns
 * between characters, with the cut marker (utf8: the terminal's, tui_cut_marker). */
int tui_command_parse(const char *cmd, tui_action *action, int64_t *arg, const char **text,
                      bool utf8, char *msg, size_t msgcap);
/* Tab completion of a command name: the commands starting with prefix, sorted, into names[]
 * (at most max); returns how many match (possibly more than max). *common gets their longest
 * common prefix. */
size_t tui_command_complete(const char *prefix, const char **names, size_t max, char *common,
                            size_t common_cap);

/* The footer for where (one TUI_CX_* bit): "key hint" pairs by rank, separated by two spaces,
 * as many as fit in width columns. */
void tui_footer(unsigned where, int width, char *out, size_t cap);

#endif
