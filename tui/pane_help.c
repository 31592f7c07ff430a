/* tui/pane_help.c — the help view: the keymap's help (keymap.c: every key and command, generated
 * from the table the keys dispatch through), rebuilt for the terminal's width, scrolled like a
 * pager. Behind tui_pane_ops (app.h).
 */
#include "app.h"

#include <curses.h>

static void help_draw(tui_app *a, int y0, int h)
{
    if (a->help_width != COLS) {
        tui_text_free(&a->help);
        tui_help_build(&a->help, COLS - 1);
        a->help_width = COLS;
    }
    tui_draw_text(a, &a->help, &a->help_top, y0, h, "Help (up/down/PgDn scroll, esc back)", false,
                  NULL);
}

static unsigned help_act(tui_app *a, tui_action act, int64_t arg, const char *text)
{
    (void)arg;
    (void)text;
    return tui_text_scroll(a, &a->help_top, act) ? TUI_R_HANDLED : 0;
}

static unsigned help_needs(const tui_app *a)
{
    (void)a;
    return 0;
}

const tui_pane_ops tui_pane_help_ops = {
    .name = "Help", .cx = TUI_CX_HELP, .draw = help_draw, .act = help_act, .needs = help_needs,
};
