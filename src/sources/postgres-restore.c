/* PostgreSQL restore: pg_restore into a staged database, swapped in by renaming. */
#include "common.h"

#include "fault.h"
#include "journal.h"
#include "log.h"
#include "sources/postgres.h"
#include "strbuf.h"
#include "stream/tar-reader.h"
#include "strvec.h"
#include "xalloc.h"

/*
 * A database is restored like a directory: into a new database first, then
 * swapped in by renaming, so a failed pg_restore leaves the original as it
 * was and objects created after the backup do not survive the restore.
 */
struct staged {
	char *target; /* the database to replace */
	char *tmp;    /* where the backup was restored */
	char *owner;  /* the replaced database's owner, NULL if it did not exist */
};

#define PG_STAGE_PREFIX "lifeboat_restore_"
#define PG_OLD_PREFIX	"lifeboat_old_"

struct pg_restore_ctx {
	struct dburi u;
	struct runner r;
	char *redacted;
	char *name;
	PGconn *maint; /* server-wide work, never connected to a database being swapped */
	struct staged *staged;
	size_t nr_staged;
	int (*record)(void *record_ctx, const struct journal_db *d, struct err *e);
	void *record_ctx;
	char *drill; /* a drill: the scratch databases' prefix */
};

int postgres_restore_begin(const struct source_restore_req *req, void **ctx, struct err *e)
{
	struct pg_restore_ctx *c = xcalloc(1, sizeof(*c));
	struct err e1 = ERR_INIT, scratch = ERR_INIT;

	*ctx = c;
	c->redacted = xstrdup(req->target->path);
	c->name = xstrdup(req->name);
	c->record = req->record;
	c->record_ctx = req->record_ctx;
	c->drill = req->drill ? xstrdup(req->drill) : NULL;
	if (dburi_parse(req->target->uri, "BACKUP_POSTGRES", &c->u, e) < 0)
		return -1;
	/* template1 always exists and is never restored from a dump. */
	if (pg_connect(&c->u, "template1", c->redacted, &c->maint, &e1) < 0 &&
	    pg_connect(&c->u, "postgres", c->redacted, &c->maint, &scratch) < 0)
		return err_copy(e, &e1);
	c->r = (struct runner){ .u = &c->u, .redacted = c->redacted };
	return runner_pick(&c->r, req->cfg, server_major(c->maint), "pg_restore", e);
}

static PGresult *exec_params(PGconn *c, const char *sql, const char *p1)
{
	const char *params[] = { p1 };
	return PQexecParams(c, sql, p1 ? 1 : 0, NULL, params, NULL, NULL, 0);
}

/* Run "A id1 B id2" (identifiers quoted); id2 may be NULL. */
static int exec_cmd(struct pg_restore_ctx *c, const char *what, const char *a, const char *id1,
		    const char *b, const char *id2, struct err *e)
{
	char *q1 = PQescapeIdentifier(c->maint, id1, strlen(id1));
	char *q2 = id2 ? PQescapeIdentifier(c->maint, id2, strlen(id2)) : NULL;
	char *sql = xasprintf("%s%s%s%s", a, q1 ? q1 : "\"\"", b, q2 ? q2 : "");
	PGresult *r = PQexec(c->maint, sql);
	char msg[512];
	int ret = 0;

	if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
		ret = err_set(e, LB_EXIT_SOURCE, "PostgreSQL %s: cannot %s: %s", c->redacted, what,
			      pq_error_line(c->maint, msg, sizeof(msg)));
	PQclear(r);
	PQfreemem(q1);
	PQfreemem(q2);
	free(sql);
	return ret;
}

static void drop_quietly(struct pg_restore_ctx *c, const char *db)
{
	struct err e = ERR_INIT;
	if (exec_cmd(c, "drop a staging database", "DROP DATABASE IF EXISTS ", db, " WITH (FORCE)",
		     NULL, &e) < 0)
		log_warn("%s", e.msg);
}

/* Create the staging database, with the encoding and locale of the one it replaces. */
static int create_stage(struct pg_restore_ctx *c, struct staged *st, struct err *e)
{
	PGresult *r = exec_params(c->maint,
				  "SELECT pg_encoding_to_char(encoding), datcollate, datctype, "
				  "pg_get_userbyid(datdba) FROM pg_catalog.pg_database "
				  "WHERE datname = $1",
				  st->target);
	char msg[512];
	unsigned char rnd[4];
	int ret = -1;

	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		err_set(e, LB_EXIT_SOURCE, "PostgreSQL %s: %s", c->redacted,
			pq_error_line(c->maint, msg, sizeof(msg)));
		goto out;
	}
	if (getentropy(rnd, sizeof(rnd)) < 0)
		memset(rnd, 0, sizeof(rnd));
	st->tmp = xasprintf("%s%02x%02x%02x%02x", c->drill ? c->drill : PG_STAGE_PREFIX, rnd[0],
			    rnd[1], rnd[2], rnd[3]);
	char *old = xasprintf(PG_OLD_PREFIX "%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2], rnd[3]);
	struct strbuf sql = STRBUF_INIT;
	char *q = PQescapeIdentifier(c->maint, st->tmp, strlen(st->tmp));
	strbuf_addf(&sql, "CREATE DATABASE %s TEMPLATE template0", q ? q : "\"\"");
	PQfreemem(q);
	if (PQntuples(r) == 1) {
		const char *vals[3] = { PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1),
					PQgetvalue(r, 0, 2) };
		const char *keys[3] = { "ENCODING", "LC_COLLATE", "LC_CTYPE" };
		for (int i = 0; i < 3; i++) {
			char *lit = PQescapeLiteral(c->maint, vals[i], strlen(vals[i]));
			strbuf_addf(&sql, " %s %s", keys[i], lit ? lit : "''");
			PQfreemem(lit);
		}
		st->owner = xstrdup(PQgetvalue(r, 0, 3));
	}
	/* Named in the journal before it exists, so a killed restore's copy is found. */
	struct journal_db jd = { .kind = SOURCE_POSTGRES,
				 .source = c->name,
				 .target = st->target,
				 .staged = st->tmp,
				 .old = old,
				 .owner = st->owner,
				 .existed = st->owner != NULL };
	/* A drill's scratch database is found by its prefix (postgres_drill_sweep). */
	int rr = c->record && !c->drill ? c->record(c->record_ctx, &jd, e) : 0;
	free(old);
	if (rr < 0) {
		strbuf_release(&sql);
		free(st->tmp);
		st->tmp = NULL;
		goto out;
	}
	PGresult *cr = PQexec(c->maint, sql.buf);
	if (PQresultStatus(cr) != PGRES_COMMAND_OK)
		err_set(e, LB_EXIT_SOURCE,
			"PostgreSQL %s: cannot create a database to restore "
			"'%s' into: %s",
			c->redacted, st->target, pq_error_line(c->maint, msg, sizeof(msg)));
	else
		ret = 0;
	PQclear(cr);
	strbuf_release(&sql);
out:
	PQclear(r);
	return ret;
}

/* Run a client program with the member's bytes on its stdin. */
static int feed(const struct runner *r, struct strvec *args, struct member_reader *rd,
		const char *what, struct err *e)
{
	unsigned char *buf = xmalloc(256 * 1024);
	bool broken = false;
	struct process p = PROCESS_INIT;
	int ret = -1;

	if (pg_start(&p, r, args, false, true, e) < 0)
		goto fail;
	for (;;) {
		ssize_t n = member_read(rd, buf, 256 * 1024, e);
		if (n < 0)
			goto fail;
		if (n == 0)
			break;
		/* A client that stopped early explains itself in its exit status. */
		if (!broken && process_write(&p, buf, (size_t)n) < 0)
			broken = true;
	}
	process_close_input(&p);
	ret = process_finish(&p, what, e);
	goto out;
fail:
	process_kill(&p);
out:
	process_release(&p);
	free(buf);
	return ret;
}

static int restore_globals(struct pg_restore_ctx *c, struct member_reader *rd, struct err *e)
{
	struct strvec args = STRVEC_INIT;
	char *uri = runner_uri(&c->r, PQdb(c->maint));

	/* Roles that exist already (the one we connect as, at least) fail harmlessly. */
	strvec_push(&args, "psql");
	strvec_push(&args, "--no-psqlrc");
	strvec_push(&args, "--quiet");
	strvec_push(&args, "--no-password");
	strvec_push(&args, "--set=ON_ERROR_STOP=0");
	strvec_pushf(&args, "--dbname=%s", uri);
	char *what = xasprintf("restoring roles with psql (%s)", c->redacted);
	int r = feed(&c->r, &args, rd, what, e);
	if (r == 0)
		log_info("roles and tablespaces restored (those that existed already were kept)");
	strvec_release(&args);
	free(what);
	free(uri);
	return r;
}

static int restore_database(struct pg_restore_ctx *c, const char *db, struct member_reader *rd,
			    struct err *e)
{
	struct strvec args = STRVEC_INIT;

	for (size_t i = 0; i < c->nr_staged; i++)
		if (!strcmp(c->staged[i].target, db))
			return err_set(e, LB_EXIT_INTEGRITY,
				       "PostgreSQL '%s' holds database '%s' twice", c->name, db);
	c->staged = xrealloc(c->staged, (c->nr_staged + 1) * sizeof(*c->staged));
	struct staged *st = &c->staged[c->nr_staged++];
	*st = (struct staged){ .target = xstrdup(db) };
	if (create_stage(c, st, e) < 0)
		return -1;

	char *uri = runner_uri(&c->r, st->tmp);
	strvec_push(&args, "pg_restore");
	strvec_push(&args, "--single-transaction");
	strvec_push(&args, "--exit-on-error");
	strvec_push(&args, "--no-password");
	strvec_pushf(&args, "--dbname=%s", uri);
	char *what = xasprintf("pg_restore of database '%s' (%s)", db, c->redacted);
	if (c->drill)
		log_info("drill: restoring PostgreSQL database '%s' into scratch database '%s'", db,
			 st->tmp);
	else
		log_info("restoring PostgreSQL database '%s'", db);
	int r = feed(&c->r, &args, rd, what, e);
	strvec_release(&args);
	free(what);
	free(uri);
	return r;
}

int postgres_restore_member(void *ctx, const struct restore_member *m, struct err *e)
{
	const char *rel = m->rel;
	struct member_reader *rd = m->reader;
	struct pg_restore_ctx *c = ctx;
	size_t n = strlen(rel), sn = strlen(DUMP_SUFFIX);

	if (!strcmp(rel, GLOBALS_MEMBER)) {
		/* Roles are the live server's: a drill only reads them (the verification did). */
		if (c->drill)
			return 0;
		if (c->u.database) {
			log_warn("PostgreSQL '%s': roles in the backup are not restored, because "
				 "%s names one database",
				 c->name, c->redacted);
			return 0;
		}
		return restore_globals(c, rd, e);
	}
	if (n <= sn || strcmp(rel + n - sn, DUMP_SUFFIX) || strchr(rel, '/'))
		return err_set(e, LB_EXIT_INTEGRITY,
			       "unexpected member '%s' in PostgreSQL source '%s'", rel, c->name);
	if (c->u.database) {
		if (c->nr_staged)
			return err_set(e, LB_EXIT_SOURCE,
				       "PostgreSQL '%s' holds several databases, but %s names one: "
				       "restore with a URI that names no database",
				       c->name, c->redacted);
		return restore_database(c, c->u.database, rd, e);
	}
	char *db = decode_name(rel, n - sn);
	int r = restore_database(c, db, rd, e);
	free(db);
	return r;
}

int postgres_restore_end(void *ctx, bool ok, struct err *e)
{
	struct pg_restore_ctx *c = ctx;
	int ret = 0;

	if (!c)
		return 0;
	(void)e;
	for (size_t i = 0; i < c->nr_staged; i++) {
		struct staged *st = &c->staged[i];
		/* ok: the journal's swap takes the staged database from here. */
		if (!ok && st->tmp && c->maint)
			drop_quietly(c, st->tmp);
		free(st->target);
		free(st->tmp);
		free(st->owner);
	}
	free(c->staged);
	runner_release(&c->r);
	PQfinish(c->maint);
	dburi_release(&c->u);
	free(c->redacted);
	free(c->name);
	free(c->drill);
	free(c);
	return ret;
}

/* A drill: the rows of every table of one scratch database, into `report`. */
static int count_rows(struct pg_restore_ctx *c, const struct staged *st, struct strvec *report,
		      struct err *e)
{
	PGconn *db = NULL;
	PGresult *r = NULL;
	struct strbuf line = STRBUF_INIT, tables = STRBUF_INIT;
	unsigned long long total = 0;
	char msg[512];
	int ret = -1;

	if (pg_connect(&c->u, st->tmp, c->redacted, &db, e) < 0)
		goto out;
	r = PQexec(db, "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) "
		       "FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n "
		       "ON n.oid = c.relnamespace WHERE c.relkind = 'r' AND n.nspname NOT IN "
		       "('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%' "
		       "ORDER BY 1");
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		err_set(e, LB_EXIT_SOURCE, "PostgreSQL %s: drill of database '%s': %s", c->redacted,
			st->target, pq_error_line(db, msg, sizeof(msg)));
		goto out;
	}
	int n = PQntuples(r);
	for (int i = 0; i < n; i++) {
		const char *t = PQgetvalue(r, i, 0);
		char *sql = xasprintf("SELECT count(*) FROM %s", t);
		PGresult *cr = PQexec(db, sql);
		free(sql);
		if (PQresultStatus(cr) != PGRES_TUPLES_OK) {
			err_set(e, LB_EXIT_SOURCE,
				"PostgreSQL %s: drill of database '%s': cannot "
				"count the rows of %s: %s",
				c->redacted, st->target, t, pq_error_line(db, msg, sizeof(msg)));
			PQclear(cr);
			goto out;
		}
		unsigned long long rows = strtoull(PQgetvalue(cr, 0, 0), NULL, 10);
		PQclear(cr);
		total += rows;
		strbuf_addf(&tables, "%s%s %llu", i ? ", " : "", t, rows);
	}
	strbuf_addf(&line, "PostgreSQL '%s' database '%s': %d tables, %llu rows", c->name,
		    st->target, n, total);
	if (n)
		strbuf_addf(&line, " (%s)", tables.buf);
	strvec_push(report, line.buf);
	ret = 0;
out:
	PQclear(r);
	PQfinish(db);
	strbuf_release(&line);
	strbuf_release(&tables);
	return ret;
}

int postgres_drill_check(void *ctx, struct strvec *report, struct err *e)
{
	struct pg_restore_ctx *c = ctx;

	for (size_t i = 0; i < c->nr_staged; i++)
		if (c->staged[i].tmp && count_rows(c, &c->staged[i], report, e) < 0)
			return -1;
	return 0;
}

int postgres_drill_sweep(const struct config *cfg, const struct source_spec *target,
			 const char *prefix, struct strvec *dropped, struct err *e)
{
	struct pg_restore_ctx c = { .redacted = target->path };
	struct err e1 = ERR_INIT, scratch = ERR_INIT;
	PGresult *r = NULL;
	char msg[512];
	int ret = -1;

	(void)cfg;
	if (dburi_parse(target->uri, "BACKUP_POSTGRES", &c.u, e) < 0)
		return -1;
	if (pg_connect(&c.u, "template1", c.redacted, &c.maint, &e1) < 0 &&
	    pg_connect(&c.u, "postgres", c.redacted, &c.maint, &scratch) < 0) {
		err_copy(e, &e1);
		goto out;
	}
	/* The prefix is ours: only names it starts exactly (LIKE would take '_' as any). */
	r = exec_params(c.maint,
			"SELECT datname FROM pg_catalog.pg_database WHERE "
			"left(datname, length($1)) = $1 ORDER BY 1",
			prefix);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		err_set(e, LB_EXIT_SOURCE, "PostgreSQL %s: %s", c.redacted,
			pq_error_line(c.maint, msg, sizeof(msg)));
		goto out;
	}
	for (int i = 0; i < PQntuples(r); i++) {
		const char *db = PQgetvalue(r, i, 0);
		if (exec_cmd(&c, "drop a leftover drill database", "DROP DATABASE IF EXISTS ", db,
			     " WITH (FORCE)", NULL, e) < 0)
			goto out;
		strvec_push(dropped, db);
	}
	ret = 0;
out:
	PQclear(r);
	PQfinish(c.maint);
	dburi_release(&c.u);
	return ret;
}

/* Does database `db` exist? 1, 0, or -1 with `e` set. */
static int db_exists(struct pg_restore_ctx *c, const char *db, struct err *e)
{
	PGresult *r = exec_params(c->maint,
				  "SELECT 1 FROM pg_catalog.pg_database WHERE datname = $1", db);
	char msg[512];
	int ret = PQresultStatus(r) != PGRES_TUPLES_OK
			  ? err_set(e, LB_EXIT_SOURCE, "PostgreSQL %s: %s", c->redacted,
				    pq_error_line(c->maint, msg, sizeof(msg)))
			  : PQntuples(r) > 0;
	PQclear(r);
	return ret;
}

/* Rename a database, ending the sessions that would block it. */
static int rename_db(struct pg_restore_ctx *c, const char *what, const char *from, const char *to,
		     struct err *e)
{
	PGresult *r = exec_params(c->maint,
				  "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
				  "WHERE datname = $1 AND pid <> pg_backend_pid()",
				  from);
	PQclear(r);
	/* fail: as if the server had refused the rename */
	if (FAULT("pg.swap"))
		return err_set(e, LB_EXIT_SOURCE, "PostgreSQL %s: cannot %s: (fault injected)",
			       c->redacted, what);
	return exec_cmd(c, what, "ALTER DATABASE ", from, " RENAME TO ", to, e);
}

int postgres_swap(const struct config *cfg, const struct source_spec *target,
		  const struct journal_db *d, enum db_swap_step step, struct err *e)
{
	struct pg_restore_ctx c = { .redacted = target->path };
	struct err e1 = ERR_INIT, scratch = ERR_INIT;
	int ret = -1;

	(void)cfg;
	if (dburi_parse(target->uri, "BACKUP_POSTGRES", &c.u, e) < 0)
		return -1;
	if (pg_connect(&c.u, "template1", c.redacted, &c.maint, &e1) < 0 &&
	    pg_connect(&c.u, "postgres", c.redacted, &c.maint, &scratch) < 0) {
		err_copy(e, &e1);
		goto out;
	}
	int has_staged = db_exists(&c, d->staged, e);
	int has_target = has_staged < 0 ? -1 : db_exists(&c, d->target, e);
	int has_old = has_target < 0 ? -1 : d->old ? db_exists(&c, d->old, e) : 0;
	if (has_old < 0)
		goto out;
	switch (step) {
	case DB_SWAP_FORWARD:
		if (!has_staged) {
			/* Already renamed in: the target is the restored database. */
			if (!has_target) {
				err_set(e, LB_EXIT_SOURCE,
					"PostgreSQL %s: neither '%s' nor its restored copy '%s' "
					"exists",
					c.redacted, d->target, d->staged);
				goto out;
			}
			break;
		}
		if (d->owner &&
		    exec_cmd(&c, "set the owner of the restored database", "ALTER DATABASE ",
			     d->staged, " OWNER TO ", d->owner, e) < 0)
			goto out;
		if (has_target && (has_old || !d->old)) {
			err_set(e, LB_EXIT_SOURCE,
				"PostgreSQL %s: cannot move '%s' aside: '%s' exists already",
				c.redacted, d->target, d->old ? d->old : "?");
			goto out;
		}
		if (has_target &&
		    rename_db(&c, "move the old database aside", d->target, d->old, e) < 0)
			goto out;
		if (rename_db(&c, "rename the restored database", d->staged, d->target, e) < 0)
			goto out;
		break;
	case DB_SWAP_FINISH:
		if (has_old &&
		    exec_cmd(&c, "drop the replaced database", "DROP DATABASE IF EXISTS ", d->old,
			     " WITH (FORCE)", NULL, e) < 0)
			goto out;
		break;
	case DB_SWAP_BACK:
		/* The staged copy gone and the old one aside (or none before): it is in place. */
		if (!has_staged && has_target && (has_old || !d->existed) &&
		    rename_db(&c, "move the restored database out", d->target, d->staged, e) < 0)
			goto out;
		if (has_old && rename_db(&c, "put the old database back", d->old, d->target, e) < 0)
			goto out;
		if (exec_cmd(&c, "drop a staging database", "DROP DATABASE IF EXISTS ", d->staged,
			     " WITH (FORCE)", NULL, e) < 0)
			goto out;
		break;
	}
	ret = 0;
out:
	PQfinish(c.maint);
	dburi_release(&c.u);
	return ret;
}
