/* Inside the PostgreSQL source: what its dump (postgres-dump.c) and restore (postgres-restore.c)
 * share. */
#ifndef LB_SOURCES_POSTGRES_H
#define LB_SOURCES_POSTGRES_H

#include "common.h"

#include <libpq-fe.h>

#include "dburi.h"
#include "process.h"
#include "sources/source.h"
#include "strbuf.h"
#include "strvec.h"

#define GLOBALS_MEMBER "globals.sql"
#define DUMP_SUFFIX    ".pgdump"

/*
 * Where the client programs run: here (fork/exec), or inside the database's own
 * container through the Docker Engine API's exec (BACKUP_POSTGRES_DUMP=exec, or
 * automatically when the server is newer than our client tools).
 */
struct runner {
	const struct dburi *u;
	const char *redacted;
	struct process_place where; /* here, or the container serving the URI's host */
};

/* The first line of a libpq error message (it never holds the password). */
const char *pq_error_line(PGconn *c, char *buf, size_t len);

int pg_connect(const struct dburi *u, const char *db, const char *redacted, PGconn **ret,
	       struct err *e);

/* Connect for server-wide questions: the URI's database, else postgres, else template1. */
int pg_connect_any(const struct dburi *u, const char *redacted, PGconn **ret, struct err *e);

int server_major(PGconn *c);

void runner_release(struct runner *r);

/*
 * Choose where `prog` runs for this server. `mode` is BACKUP_POSTGRES_DUMP.
 * pg_dump cannot dump, and pg_restore cannot read the dumps of, a newer server.
 */
int runner_pick(struct runner *r, const struct config *cfg, int server, const char *prog,
		struct err *e);

/* The URI the client programs get: no password; in the container, its own loopback. */
char *runner_uri(const struct runner *r, const char *db);

/* Start a client program (its password in PGPASSWORD, never argv); stdout and/or stdin piped. */
int pg_start(struct process *p, const struct runner *r, struct strvec *args, bool out, bool in,
	     struct err *e);

void encode_name(struct strbuf *sb, const char *s);

char *decode_name(const char *s, size_t n);

/* postgres-dump.c */
int postgres_backup(const struct source_backup *src, struct member_sink *sink, struct err *e);

/* postgres-restore.c */
int postgres_restore_begin(const struct source_restore_req *req, void **ctx, struct err *e);
int postgres_restore_member(void *ctx, const struct restore_member *m, struct err *e);
int postgres_restore_end(void *ctx, bool ok, struct err *e);
int postgres_drill_check(void *ctx, struct strvec *report, struct err *e);
int postgres_drill_sweep(const struct config *cfg, const struct source_spec *target,
			 const char *prefix, struct strvec *dropped, struct err *e);
int postgres_swap(const struct config *cfg, const struct source_spec *target,
		  const struct journal_db *d, enum db_swap_step step, struct err *e);

#endif
