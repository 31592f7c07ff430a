/* tests/cli/cli_backend.h — one test database on either backend for a CLI test that runs the same
 * cases on SQLite and PostgreSQL: a scratch directory with t.db, or a database of its own on the
 * tests' private server (cli_pg_server), named after the program, a tag and the pid, dropped at
 * the end. The caller's first aspen command creates the schema (--create), as a user's would.
 * Include after cli_support.h; the program links libpq. */
#ifndef ASPEN_CLI_BACKEND_H
#define ASPEN_CLI_BACKEND_H

#include <libpq-fe.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

typedef struct cli_backend {
    bool pg;
    char dir[256];  /* SQLite: the scratch directory */
    char name[96];  /* PostgreSQL: the database made for the test */
    char server[512];
    char db[700];   /* what --db gets */
} cli_backend;

/* A statement on the server as its administrator (CREATE / DROP DATABASE). */
static inline void cli_pg_exec(const char *conninfo, const char *sql)
{
    PGconn *c = PQconnectdb(conninfo);
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
}

/* prefix: the program's ("snooze"), tag: the case's (may be ""). */
static inline void cli_backend_open(cli_backend *b, bool pg, const char *prefix, const char *tag)
{
    memset(b, 0, sizeof *b);
    b->pg = pg;
    if (!pg) {
        assert_int_equal(cli_scratch_dir(b->dir, sizeof b->dir, tag[0] ? tag : prefix), 0);
        snprintf(b->db, sizeof b->db, "%s/t.db", b->dir);
        return;
    }
    cli_pg_server(b->server, sizeof b->server);
    snprintf(b->name, sizeof b->name, "aspen_cli_%s_%s%s%d", prefix, tag, tag[0] ? "_" : "",
             (int)getpid());
    char sql[200];
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", b->name);
    cli_pg_exec(b->server, sql);
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", b->name);
    cli_pg_exec(b->server, sql);
    snprintf(b->db, sizeof b->db, "%s dbname=%s", b->server, b->name);
}

static inline void cli_backend_close(cli_backend *b)
{
    if (b->pg) {
        char sql[200];
        snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", b->name);
        cli_pg_exec(b->server, sql);
    } else {
        cli_remove_tree(b->dir);
    }
}

#endif
