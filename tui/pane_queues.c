/* tui/pane_queues.c — the Queues pane (key 6): every named queue on the database with its
 * figures and settings, as `aspen queues` shows them (docs/QUEUES.md): waiting, reserved, later,
 * running, the concurrency limit, the rate, paused, the oldest due job's wait and the jobs finished
 * in the last minute. Under the global pause (aspen pause, :pause; read with the list) the title
 * says every queue is held and how to end it, and PAUSED reads "all" for a queue held only by it.
 * Up/down select a queue; `p` pauses or resumes it (the global pause stays on
 * :pause), `l` edits its limit (`:limit N`, `:limit none`) and `r` its rate (`:rate 100/s`,
 * `:rate none`) through the command line, enter opens the jobs pane's filter line with
 * queue:NAME (enter again applies it). Behind tui_pane_ops (app.h).
 *
 * Every store call of the pane — the list, read at most once a second while the pane is shown,
 * and the writes (pause, limit, rate) — runs on libuv's thread pool through a handle of the
 * pane's own, as the Engines pane's reads do: counting a 20,000-job queue, a server far away or a
 * database another process holds locked never freezes the keyboard or the screen; the UI thread
 * only draws the last list. One request is in flight at a time (so the handle is only ever used by
 * one pool thread); a change asked for meanwhile waits in one slot and goes next, and a further
 * one is refused with a message rather than dropped unseen. A write is followed by a read in the
 * same request, so the list shown after it is the database's. The cursor follows the queue's name
 * across reads (a queue created meanwhile does not move it onto another queue, which `p` would
 * then pause). Queue names are checked by the store (letters, digits, _ - .), and still pass
 * tui_put's sanitiser like every cell.
 *
 * A database that cannot be opened (a PostgreSQL server restarting, a database that refuses
 * connections for a while) or a handle whose read fails is not the end: the handle is dropped and
 * opened again on the next read, after a backoff that doubles from 1 s to 30 s, and the pane says
 * "reconnecting in N s" with the reason until a read succeeds (the last list stays on screen).
 * The pane's handle never creates a database (no_create): the console's engine made it, and a
 * database removed meanwhile must not come back empty.
 *
 * The last line shows the database's retention settings (how long finished jobs of each final
 * state are kept, read with the list; `aspen retention set` changes them): the console is where
 * an operator looks first when jobs seem to vanish. */
#include "app.h"

#include <curses.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { OP_READ = 0, OP_PAUSE, OP_LIMIT, OP_RATE };

/* A change to one queue. */
typedef struct queue_op {
    int op;
    char name[ASPEN_STORE_QUEUE_NAME_MAX + 1];
    bool pause;
    int64_t limit, rate_n, rate_period_ms;
} queue_op;

/* The UI thread's side: what is drawn. */
static struct {
    char error[512];
    aspen_store_queue_info *list;
    size_t n;
    bool have_list;
    bool busy;          /* a request is on the thread pool */
    bool have_pending;  /* a change asked for while busy: goes next */
    queue_op pending;
    double read_at;     /* tui_mono_ms when the last read was started; 0: read at the next draw */
    long cursor;
    long first; /* the row the last draw showed first (scrolled): where a click lands */
    char cursor_name[ASPEN_STORE_QUEUE_NAME_MAX + 1]; /* the selected queue, kept across reads */
    tui_backoff retry;  /* the reconnect pacing after a failed read (view.h) */
    aspen_store_retention retention;
    bool have_retention;
    /* the global pause (aspen pause, :pause) as read with the list: it holds every queue, so the
     * title and each row's PAUSED say so, apart from a queue's own pause (which outlives it) */
    bool all_paused;
} Q;

/* The pool's side (one request at a time: Q.busy). Writable: pause, limit and rate write through
 * it. NULL until opened, and again after a failed read (the next request opens it anew). */
static struct {
    aspen_store *store;
} R;

typedef struct queues_req {
    uv_work_t w;
    tui_app *a;
    const char *db;
    queue_op op;
    /* out */
    int op_rc; /* the change: 0 done, -1 refused (op_msg) */
    char op_msg[512];
    int rc; /* the read */
    char error[512];
    aspen_store_queue_info *list;
    size_t n;
    aspen_store_retention retention;
    bool have_retention;
    bool all_paused;
} queues_req;

static void queues_work(uv_work_t *w)
{
    queues_req *r = w->data;
    aspen_store_error se = {0};
    if (!R.store) {
        aspen_store_options so = {.no_create = true};
        if (aspen_store_open(r->db, &so, &R.store, &se) != 0) {
            R.store = NULL;
            r->rc = r->op_rc = -1;
            snprintf(r->error, sizeof r->error, "cannot open the database: %s",
                     se.msg[0] ? se.msg : "no reason given");
            snprintf(r->op_msg, sizeof r->op_msg, "not written: %s", r->error);
            return;
        }
    }
    const queue_op *o = &r->op;
    int64_t now = aspen_store_now_ms();
    if (o->op == OP_PAUSE)
        r->op_rc = aspen_store_queue_pause(R.store, o->name, o->pause, now, &se);
    else if (o->op == OP_LIMIT)
        r->op_rc = aspen_store_queue_set(R.store, o->name, ASPEN_STORE_QUEUE_SET_LIMIT, o->limit, 0,
                                         0, now, &se);
    else if (o->op == OP_RATE)
        r->op_rc = aspen_store_queue_set(R.store, o->name, ASPEN_STORE_QUEUE_SET_RATE, 0, o->rate_n,
                                         o->rate_period_ms, now, &se);
    if (r->op_rc)
        snprintf(r->op_msg, sizeof r->op_msg, "%s", se.msg[0] ? se.msg : "refused");
    se = (aspen_store_error){0};
    if (aspen_store_queues(R.store, aspen_store_now_ms(), &r->list, &r->n, &se) != 0) {
        r->rc = -1;
        snprintf(r->error, sizeof r->error, "%s", se.msg[0] ? se.msg : "cannot read the queues");
        /* a broken connection or a database replaced under it is not mended by asking the same
         * handle again: the next request opens a fresh one */
        aspen_store_close(R.store);
        R.store = NULL;
        return;
    }
    se = (aspen_store_error){0};
    /* read with the list, not taken from the header's snapshot: the pane says what the database
     * said in one read, as aspen queues does */
    if (aspen_store_paused(R.store, &r->all_paused, &se) != 0)
        r->all_paused = false; /* unknown: shown as the queues' own settings, the header has it */
    se = (aspen_store_error){0};
    /* the settings are small and change rarely, but read every time: another process may set them */
    r->have_retention = aspen_store_retention_get(R.store, &r->retention, &se) == 0;
}

static void start(tui_app *a, const queue_op *op);

/* The cursor onto row `at` (kept inside the list), remembering that queue's name. */
static void set_cursor(long at)
{
    Q.cursor = at >= (long)Q.n ? (long)Q.n - 1 : at;
    if (Q.cursor < 0)
        Q.cursor = 0;
    if (Q.n)
        snprintf(Q.cursor_name, sizeof Q.cursor_name, "%s", Q.list[Q.cursor].name);
}

/* What a change did, said on the status line. */
static void say_done(tui_app *a, const queues_req *r)
{
    const queue_op *o = &r->op;
    if (o->op == OP_READ)
        return;
    if (r->op_rc) {
        tui_set_status(a, true, "queue %s: %s", o->name, r->op_msg);
    } else if (o->op == OP_PAUSE) {
        /* a resume under the global pause starts nothing: say what still holds it (trial 22) */
        if (!o->pause && Q.all_paused)
            tui_set_status(a, false, "queue %s resumed, but all queues are still paused "
                           "(:resume)", o->name);
        else
            tui_set_status(a, false, "queue %s %s (every worker on this database)", o->name,
                           o->pause ? "paused" : "resumed");
    } else if (o->op == OP_LIMIT) {
        if (o->limit)
            tui_set_status(a, false, "queue %s: at most %lld running at once (every worker)",
                           o->name, (long long)o->limit);
        else
            tui_set_status(a, false, "queue %s: no limit", o->name);
    } else {
        char rate[32];
        aspen_store_rate_format(o->rate_n, o->rate_period_ms, rate, sizeof rate);
        if (o->rate_n)
            tui_set_status(a, false, "queue %s: at most %s started (every worker and host)",
                           o->name, rate);
        else
            tui_set_status(a, false, "queue %s: no rate limit", o->name);
    }
}

static void queues_done(uv_work_t *w, int status)
{
    queues_req *r = w->data;
    tui_app *a = r->a;
    Q.busy = false;
    if (status == 0 && !a->quitting) {
        say_done(a, r);
        if (r->rc == 0) {
            aspen_store_queues_free(Q.list);
            Q.list = r->list;
            Q.n = r->n;
            r->list = NULL;
            Q.have_list = true;
            Q.all_paused = r->all_paused;
            Q.error[0] = 0;
            tui_backoff_ok(&Q.retry);
            if (r->have_retention) {
                Q.retention = r->retention;
                Q.have_retention = true;
            }
            long at = -1;
            for (size_t i = 0; i < Q.n && Q.cursor_name[0]; i++)
                if (!strcmp(Q.list[i].name, Q.cursor_name))
                    at = (long)i;
            if (at >= 0)
                Q.cursor = at;
            set_cursor(Q.cursor);
        } else {
            tui_pane_error_seen(a, "Queues pane", Q.error, r->error);
            snprintf(Q.error, sizeof Q.error, "%s", r->error); /* keep the last list on screen */
            tui_backoff_failed(&Q.retry, tui_mono_ms());
        }
        if (Q.have_pending) {
            Q.have_pending = false;
            start(a, &Q.pending);
        }
        tui_request_draw(a);
    }
    aspen_store_queues_free(r->list);
    free(r);
}

/* Starts a request (a change and a read, or a read) on the pool. While one is in flight a change
 * waits in the one slot (a read is not needed: the one in flight answers). */
static void start(tui_app *a, const queue_op *op)
{
    if (a->quitting)
        return;
    if (Q.busy) {
        if (op->op == OP_READ)
            return;
        if (Q.have_pending) {
            tui_set_status(a, true, "queue %s: the last change is still being written (the database "
                                    "is slow or locked); try again in a moment", op->name);
            return;
        }
        Q.pending = *op;
        Q.have_pending = true;
        return;
    }
    queues_req *r = calloc(1, sizeof *r);
    if (!r) {
        tui_set_status(a, true, "out of memory: the queues were not read");
        return;
    }
    r->a = a;
    r->w.data = r;
    r->db = aspen_engine_db_path(a->eng);
    r->op = *op;
    Q.busy = true;
    Q.read_at = tui_mono_ms();
    if (uv_queue_work(a->loop, &r->w, queues_work, queues_done) != 0) {
        Q.busy = false;
        free(r);
        tui_set_status(a, true, "the queues could not be read (the thread pool refused)");
    }
}

/* At exit, after the loop has drained its work (no request in flight). */
void tui_queues_close(void)
{
    aspen_store_queues_free(Q.list);
    aspen_store_close(R.store);
    memset(&Q, 0, sizeof Q);
    memset(&R, 0, sizeof R);
}

/* "succeeded 24h" or "failed off": one state's retention for the last line. */
static void retention_cell(aspen_store_state st, char *out, size_t cap)
{
    char age[32] = "off";
    if (Q.retention.keep_ms[st] > 0)
        aspen_store_duration_format(Q.retention.keep_ms[st], age, sizeof age);
    snprintf(out, cap, "%s %s", aspen_store_state_name(st), age);
}

/* The last line: the retention in effect, and where to change it when there is room. */
static void draw_retention(int y)
{
    if (!Q.have_retention)
        return;
    char s[48], f[48], c[48];
    retention_cell(ASPEN_STORE_SUCCEEDED, s, sizeof s);
    retention_cell(ASPEN_STORE_FAILED, f, sizeof f);
    retention_cell(ASPEN_STORE_CANCELLED, c, sizeof c);
    bool all_default = Q.retention.is_default[ASPEN_STORE_SUCCEEDED] &&
                       Q.retention.is_default[ASPEN_STORE_FAILED] &&
                       Q.retention.is_default[ASPEN_STORE_CANCELLED];
    char line[200];
    int len = snprintf(line, sizeof line, "Finished jobs kept: %s, %s, %s%s", s, f, c,
                       all_default ? " (defaults)" : "");
    /* where to change them, when it fits whole (a cut "| aspen" says nothing) */
    static const char hint[] = " | aspen retention set";
    bool room = len > 0 && len + (int)sizeof hint - 1 <= COLS - 2;
    tui_put(y, 1, COLS - 1, A_DIM, "%s%s", line, room ? hint : "");
}

/* The columns: the wide set from 100 columns up, a narrower one that fits 80 below. */
typedef struct cols {
    int name, queued, resv, sched, run, limit, rate, paused, oldest, done;
} cols;
static const cols WIDE = {20, 8, 6, 6, 8, 6, 10, 7, 8, 8};
static const cols NARROW = {15, 6, 5, 5, 5, 5, 8, 6, 7, 6};

static void queues_draw(tui_app *a, int y0, int h)
{
    double now = tui_mono_ms();
    /* once a second; after a failure at the backoff's time */
    if (!Q.read_at ||
        (Q.retry.fails ? !tui_backoff_waiting(&Q.retry, now) : now - Q.read_at >= 1000)) {
        queue_op rd = {.op = OP_READ};
        start(a, &rd);
    }
    size_t paused = 0, limited = 0;
    for (size_t i = 0; i < Q.n; i++) {
        paused += Q.list[i].paused;
        limited += Q.list[i].limit > 0 || Q.list[i].rate_n > 0;
    }
    bool wide = COLS >= 100;
    /* QUEUE takes what the terminal has left after the other columns, up to the longest name
     * (it stayed 15 at any width: trial 23) */
    cols cw = wide ? WIDE : NARROW;
    const cols *c = &cw;
    int others = 2 + 9 + cw.queued + cw.resv + cw.sched + cw.run + cw.limit + cw.rate + cw.paused +
                 cw.oldest + cw.done, longest = 0;
    for (size_t i = 0; i < Q.n; i++)
        if ((int)strlen(Q.list[i].name) > longest)
            longest = (int)strlen(Q.list[i].name);
    if (longest > COLS - others)
        longest = COLS - others;
    if (longest > cw.name)
        cw.name = longest;
    const char *keys_hint = wide ? "p pause/resume  l limit  r rate  enter its jobs" : "p pause  l limit  r rate";
    if (Q.all_paused) {
        /* the global pause holds every queue whatever its own setting: said first, with how to
         * end it (p here is a queue's own pause, so the command, not a key); the key hints only
         * when they fit whole after it */
        char title[256];
        int len = snprintf(title, sizeof title, "Queues: %zu, all paused by the global pause "
                           "(:resume or aspen resume)", Q.n);
        bool room = len > 0 && len + 3 + (int)strlen(keys_hint) <= COLS - 2;
        tui_put(y0, 1, COLS - 1, tui_pair_or(a, TUI_P_FAILED, A_BOLD) | A_BOLD, "%s%s%s", title,
                room ? " | " : "", room ? keys_hint : "");
    } else {
        tui_put(y0, 1, COLS - 1, A_BOLD, "Queues on this database: %zu (%zu paused, %zu limited) | %s",
                Q.n, paused, limited, keys_hint);
    }
    tui_put(y0 + 1, 0, COLS, A_BOLD | A_UNDERLINE, "  %-*s %*s %*s %*s %*s %*s %-*s %-*s %*s %*s",
            c->name, "QUEUE", c->queued, "QUEUED", c->resv, "RESV", c->sched, "SCHED", c->run,
            wide ? "RUNNING" : "RUN", c->limit, "LIMIT", c->rate, "RATE", c->paused, "PAUSED",
            c->oldest, "OLDEST", c->done, wide ? "DONE/MIN" : "DONE/m");
    /* rows between the header and the last two lines (an error, the retention) */
    int y = y0 + 2, rows = h - 4;
    long first = 0;
    if (Q.cursor >= rows)
        first = Q.cursor - rows + 1;
    Q.first = first;
    size_t names_cut = 0;
    for (size_t i = (size_t)first; i < Q.n && y < y0 + 2 + rows; i++) {
        const aspen_store_queue_info *q = &Q.list[i];
        char rate[32] = "-", limit[24] = "-", oldest[24] = "-", done[24];
        if (q->rate_n > 0)
            aspen_store_rate_format(q->rate_n, q->rate_period_ms, rate, sizeof rate);
        if (q->limit > 0)
            snprintf(limit, sizeof limit, "%lld", (long long)q->limit);
        if (q->oldest_waiting_ms)
            tui_fmt_ms(q->oldest_waiting_ms, oldest, sizeof oldest);
        /* as aspen queues shows it: "-" for none among the newest 100,000 when the count is
         * capped (">=0" said nothing: trial 23) */
        if (q->throughput_capped && !q->finished_last_min)
            snprintf(done, sizeof done, "-");
        else
            snprintf(done, sizeof done, "%s%lld", q->throughput_capped ? ">=" : "",
                     (long long)q->finished_last_min);
        attr_t attr = (long)i == Q.cursor ? A_REVERSE
                      : q->paused         ? tui_pair_or(a, TUI_P_FAILED, A_BOLD)
                      : Q.all_paused      ? A_DIM
                                          : A_NORMAL;
        /* "paused": the queue's own pause (p; stays after :resume); "all": held only by the
         * global pause (the word aspen queues uses); "-": neither */
        const char *pause_cell = q->paused ? "paused" : Q.all_paused ? "all" : "-";
        /* a name longer than its column keeps its start and its end around '~': names that
         * differ only at the end (reports.2026, reports.2027) stay apart (both read
         * very-long-queu~: trial 23); the line under the list shows the selected one whole */
        char name[ASPEN_STORE_QUEUE_NAME_MAX + 1];
        int nlen = (int)strlen(q->name);
        if (nlen > c->name) {
            int tail = (c->name - 1) / 2, head = c->name - 1 - tail;
            snprintf(name, sizeof name, "%.*s~%s", head, q->name, q->name + nlen - tail);
            names_cut++;
        } else {
            snprintf(name, sizeof name, "%s", q->name);
        }
        tui_put(y++, 0, COLS, attr, "  %-*s %*lld %*lld %*lld %*lld %*s %-*s %-*s %*s %*s", c->name,
                name, c->queued, (long long)q->queued, c->resv, (long long)q->reserved, c->sched,
                (long long)q->scheduled, c->run, (long long)q->running, c->limit, limit, c->rate,
                rate, c->paused, pause_cell, c->oldest, oldest, c->done, done);
    }
    if (!Q.have_list && !Q.error[0])
        tui_put(y0 + 3, 2, COLS - 2, A_DIM, "reading the queues from the database...");
    /* what the cut hides, on the error line's row while there is no error */
    if (names_cut && !Q.error[0] && Q.cursor >= 0 && (size_t)Q.cursor < Q.n)
        tui_put(y0 + h - 2, 1, COLS - 1, A_DIM, "%zu name%s cut to fit; selected: %s", names_cut,
                names_cut == 1 ? "" : "s", Q.list[Q.cursor].name);
    if (Q.error[0]) {
        char when[48], line[600];
        tui_backoff_say(&Q.retry, Q.busy, now, when, sizeof when);
        snprintf(line, sizeof line, "%s: %s", when, Q.error);
        tui_put_error_line(a, y0 + h - 2, 1, COLS - 1, line);
    }
    draw_retention(y0 + h - 1);
}

static const aspen_store_queue_info *selected(void)
{
    return Q.cursor >= 0 && (size_t)Q.cursor < Q.n ? &Q.list[Q.cursor] : NULL;
}

static const char *skip_blanks(const char *t)
{
    while (t && *t == ' ')
        t++;
    return t;
}

static bool is_none(const char *t)
{
    return !strcmp(t, "none") || !strcmp(t, "off") || !strcmp(t, "-");
}

/* `:limit N` / `:limit none` → op, or false with the rule on the status line. */
static bool parse_limit(tui_app *a, const char *text, queue_op *op)
{
    text = skip_blanks(text);
    if (text && is_none(text)) {
        op->limit = 0;
        return true;
    }
    char *end = NULL;
    errno = 0;
    long long v = text ? strtoll(text, &end, 10) : -1;
    while (end && *end == ' ')
        end++;
    if (!text || !*text || (end && *end) || errno || v < 1 || v > 1000000) {
        tui_set_status(a, true, "limit: want a whole number from 1 to 1000000, or none "
                                "(e.g. :limit 4)");
        return false;
    }
    op->limit = v;
    return true;
}

/* `:rate N/PERIOD` / `:rate none` → op, or false with the store's reason. */
static bool parse_rate(tui_app *a, const char *text, queue_op *op)
{
    text = skip_blanks(text);
    char buf[64];
    snprintf(buf, sizeof buf, "%s", text ? text : "");
    for (size_t l = strlen(buf); l > 0 && buf[l - 1] == ' '; l--)
        buf[l - 1] = '\0';
    if (is_none(buf)) {
        op->rate_n = op->rate_period_ms = 0;
        return true;
    }
    aspen_store_error se = {0};
    if (!buf[0] || strlen(text) >= sizeof buf ||
        aspen_store_rate_parse(buf, &op->rate_n, &op->rate_period_ms, &se) != 0) {
        /* the store's reason already shows the forms it takes */
        tui_set_status(a, true, "rate: %s; or none",
                       se.msg[0] ? se.msg : "want N/PERIOD (e.g. :rate 100/s, :rate 5/10s)");
        return false;
    }
    return true;
}

/* l / r: the command line with the current value to edit; :limit X / :rate X: the change. */
static unsigned edit(tui_app *a, const aspen_store_queue_info *q, tui_action act, const char *text)
{
    if (!q) {
        tui_set_status(a, true, "no queue selected");
        return TUI_R_HANDLED;
    }
    bool rate = act == TUI_A_QUEUE_RATE;
    if (!text || !*text) {
        char line[64], cur[32] = "";
        if (rate && q->rate_n)
            aspen_store_rate_format(q->rate_n, q->rate_period_ms, cur, sizeof cur);
        else if (!rate && q->limit)
            snprintf(cur, sizeof cur, "%lld", (long long)q->limit);
        snprintf(line, sizeof line, "%s %s", rate ? "rate" : "limit", cur);
        tui_open_prompt(a, TUI_PROMPT_COMMAND, line);
        tui_set_status(a, false, rate ? "rate of queue %s: N/PERIOD (100/s, 5/10s), or none"
                                      : "limit of queue %s: a number, or none", q->name);
        return TUI_R_HANDLED;
    }
    queue_op op = {.op = rate ? OP_RATE : OP_LIMIT};
    snprintf(op.name, sizeof op.name, "%s", q->name);
    if (rate ? parse_rate(a, text, &op) : parse_limit(a, text, &op)) {
        tui_set_status(a, false, "queue %s: writing...", op.name);
        start(a, &op);
    }
    return TUI_R_HANDLED;
}

static unsigned queues_act(tui_app *a, tui_action act, int64_t arg, const char *text)
{
    (void)arg;
    const aspen_store_queue_info *q = selected();
    switch (act) {
    case TUI_A_UP: Q.cursor--; break;
    case TUI_A_DOWN: Q.cursor++; break;
    case TUI_A_PGUP: case TUI_A_TOP: Q.cursor = 0; break;
    case TUI_A_PGDN: case TUI_A_BOTTOM: Q.cursor = (long)Q.n - 1; break;
    case TUI_A_REFRESH: Q.read_at = 0; return 0; /* and the app's own refresh */
    case TUI_A_QUEUE_PAUSE: {
        if (!q) {
            tui_set_status(a, true, "no queue selected");
            return TUI_R_HANDLED;
        }
        /* what the list shows is what p toggles: a change still waiting for this queue counts */
        bool paused = q->paused;
        if (Q.have_pending && Q.pending.op == OP_PAUSE && !strcmp(Q.pending.name, q->name))
            paused = Q.pending.pause;
        queue_op op = {.op = OP_PAUSE, .pause = !paused};
        snprintf(op.name, sizeof op.name, "%s", q->name);
        tui_set_status(a, false, "queue %s: %s...", op.name, op.pause ? "pausing" : "resuming");
        start(a, &op);
        return TUI_R_HANDLED;
    }
    case TUI_A_QUEUE_LIMIT: case TUI_A_QUEUE_RATE: return edit(a, q, act, text);
    case TUI_A_OPEN: {
        /* its jobs: the jobs pane's filter line with queue:NAME (enter applies it) */
        if (!q)
            return TUI_R_HANDLED;
        char filter[96];
        snprintf(filter, sizeof filter, "queue:%s", q->name);
        tui_show_pane(a, TUI_PANE_JOBS);
        tui_open_prompt(a, TUI_PROMPT_FILTER, filter);
        return TUI_R_HANDLED;
    }
    default: return 0;
    }
    set_cursor(Q.cursor);
    return TUI_R_HANDLED;
}

static unsigned queues_needs(const tui_app *a)
{
    (void)a;
    return 0; /* read by the pane itself on the thread pool, at most once a second */
}

static void queues_click(tui_app *a, int y, int x, bool again)
{
    (void)x;
    (void)again;
    /* rows start two lines below the pane's top (the title and the header) */
    long row = (long)y - 2 - a->lay.body_y + Q.first;
    if (row >= 0 && row < (long)Q.n)
        set_cursor(row);
}

const tui_pane_ops tui_pane_queues_ops = {
    .name = "Queues", .cx = TUI_CX_QUEUES, .draw = queues_draw, .act = queues_act,
    .needs = queues_needs, .click = queues_click,
};
