/*
 * PostgreSQL sources: pg_dump (custom format) streamed into the archive, and
 * pg_restore fed from it. libpq answers the small questions (server version,
 * which databases exist, creating a missing one); the password reaches the
 * client programs through PGPASSWORD in their environment, never argv.
 *
 * Below postgres/NAME/ the archive holds DB.pgdump for each database (the
 * name percent-encoded where it is not [A-Za-z0-9._-]) and, for a URI that
 * names no database, globals.sql from pg_dumpall --globals-only (roles,
 * tablespaces).
 */
#include "common.h"

#include <ctype.h>
#include <libpq-fe.h>

#include "dburi.h"
#include "fault.h"
#include "journal.h"
#include "log.h"
#include "process.h"
#include "sources/source.h"
#include "stream/member-sink.h"
#include "stream/tar-reader.h"

#define GLOBALS_MEMBER "globals.sql"
#define DUMP_SUFFIX    ".pgdump"

/* The first line of a libpq error message (it never holds the password). */
static const char *pq_error_line(PGconn *c, char *buf, size_t len)
{
	const char *m = c ? PQerrorMessage(c) : "out of memory";
	size_t n = strcspn(m, "\n");

	snprintf(buf, len, "%.*s", (int)n, m);
	return buf;
}

static int pg_connect(const struct dburi *u, const char *db, const char *redacted, PGconn **ret,
		      struct err *e)
{
	char *dbname = dburi_build(u, false, db);
	const char *keys[] = { "connect_timeout", "application_name", "dbname", "password", NULL };
	const char *vals[] = { "15", "lifeboat", dbname, u->password, NULL };
	char msg[512];

	if (!u->password)
		keys[3] = NULL;
	PGconn *c = PQconnectdbParams(keys, vals, 1);
	free(dbname);
	if (!c || PQstatus(c) != CONNECTION_OK) {
		err_set(e, LB_EXIT_SOURCE, "PostgreSQL %s: cannot connect%s%s: %s", redacted,
			db ? " to database " : "", db ? db : "",
			pq_error_line(c, msg, sizeof(msg)));
		PQfinish(c);
		return -1;
	}
	*ret = c;
	return 0;
}

/* Connect for server-wide questions: the URI's database, else postgres, else template1. */
static int pg_connect_any(const struct dburi *u, const char *redacted, PGconn **ret, struct err *e)
{
	struct err first = ERR_INIT, scratch = ERR_INIT;

	if (u->database && pg_connect(u, NULL, redacted, ret, &first) == 0)
		return 0;
	if (u->database) /* the named database is what the user asked for */
		return err_set(e, first.code, "%s", first.msg);
	if (pg_connect(u, "postgres", redacted, ret, &first) == 0 ||
	    pg_connect(u, "template1", redacted, ret, &scratch) == 0)
		return 0;
	return err_set(e, first.code, "%s", first.msg);
}

/* Major version of a client program ("pg_dump (PostgreSQL) 15.10" -> 15). */
static int client_major(const char *prog, struct err *e)
{
	char *argv[] = { (char *)prog, "--version", NULL };
	const struct process_spec spec = { .argv = argv,
					   .want_stdout = true,
					   .fail_code = LB_EXIT_SOURCE };
	struct process pr = PROCESS_INIT;
	struct err scratch = ERR_INIT;
	char buf[256];
	ssize_t n = 0, r;
	int major = -1;

	if (process_start(&pr, &spec, e) < 0) {
		process_release(&pr);
		return -1;
	}
	while ((size_t)n < sizeof(buf) - 1 &&
	       (r = process_read(&pr, buf + n, sizeof(buf) - 1 - (size_t)n)) > 0)
		n += r;
	buf[n] = '\0';
	int status = process_finish(&pr, prog, &scratch);
	process_release(&pr);
	const char *p = strstr(buf, "PostgreSQL) ");
	if (status == 0 && p)
		major = (int)strtol(p + 12, NULL, 10);
	if (major <= 0)
		return err_set(e, LB_EXIT_SOURCE, "cannot tell the version of '%s'", prog);
	return major;
}

static int server_major(PGconn *c)
{
	int v = PQserverVersion(c);
	return v >= 100000 ? v / 10000 : v / 100; /* 9.6 -> 906 */
}

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

static void runner_release(struct runner *r)
{
	process_place_release(&r->where);
	*r = (struct runner){ 0 };
}

/* Find the container of the URI's host (a Compose service or a container name). */
static int runner_exec(struct runner *r, const struct config *cfg, struct err *e)
{
	struct err de = ERR_INIT;

	if (process_place_container(&r->where, cfg->docker_host, r->u->host, &de) < 0)
		return err_set(e, LB_EXIT_SOURCE,
			       "PostgreSQL %s: cannot run the client tools in the database's "
			       "container '%s': %s",
			       r->redacted, r->u->host, de.msg);
	log_info("PostgreSQL %s: running the client tools in container '%s'", r->redacted,
		 r->u->host);
	return 0;
}

/*
 * Choose where `prog` runs for this server. `mode` is BACKUP_POSTGRES_DUMP.
 * pg_dump cannot dump, and pg_restore cannot read the dumps of, a newer server.
 */
static int runner_pick(struct runner *r, const struct config *cfg, int server, const char *prog,
		       struct err *e)
{
	if (cfg->pg_dump_mode == PG_DUMP_EXEC)
		return runner_exec(r, cfg, e);
	int client = client_major(prog, e);
	if (client < 0)
		return -1;
	if (server <= client)
		return 0;
	if (cfg->pg_dump_mode == PG_DUMP_LOCAL)
		return err_set(
			e, LB_EXIT_SOURCE,
			"PostgreSQL %s runs version %d, but this %s is version %d and "
			"cannot handle a newer server: use a lifeboat image with PostgreSQL "
			"%d client tools (build argument PG_MAJOR), or BACKUP_POSTGRES_DUMP=exec "
			"to run it in the database's container",
			r->redacted, server, prog, client, server);
	struct err xe = ERR_INIT;
	if (runner_exec(r, cfg, &xe) == 0) {
		log_info("PostgreSQL %s runs version %d, newer than this %s (%d)", r->redacted,
			 server, prog, client);
		return 0;
	}
	return err_set(e, LB_EXIT_SOURCE,
		       "PostgreSQL %s runs version %d, but this %s is version %d and cannot "
		       "handle a newer server, and running it in the database's container failed "
		       "(%s): use a lifeboat image with PostgreSQL %d client tools (build argument "
		       "PG_MAJOR), or mount the Docker socket",
		       r->redacted, server, prog, client, xe.msg, server);
}

/* The URI the client programs get: no password; in the container, its own loopback. */
static char *runner_uri(const struct runner *r, const char *db)
{
	if (!process_place_is_container(&r->where))
		return dburi_build(r->u, false, db);
	struct dburi local = *r->u;
	char *hosts = xasprintf("127.0.0.1:%s", r->u->port ? r->u->port : "5432");
	local.hosts = hosts;
	char *uri = dburi_build(&local, false, db);
	free(hosts);
	return uri;
}

/* Start a client program (its password in PGPASSWORD, never argv); stdout and/or stdin piped. */
static int pg_start(struct process *p, const struct runner *r, struct strvec *args, bool out,
		    bool in, struct err *e)
{
	struct strvec env = STRVEC_INIT;

	if (r->u->password)
		strvec_pushf(&env, "PGPASSWORD=%s", r->u->password);
	strvec_push(&env, "PGCONNECT_TIMEOUT=15");
	const struct process_spec spec = { .argv = args->v,
					   .env = env.v,
					   .where = &r->where,
					   .want_stdin = in,
					   .want_stdout = out,
					   .fail_code = LB_EXIT_SOURCE };
	int ret = process_start(p, &spec, e);
	for (size_t i = 0; i < env.nr; i++)
		explicit_bzero(env.v[i], strlen(env.v[i]));
	strvec_release(&env);
	return ret;
}

static void encode_name(struct strbuf *sb, const char *s)
{
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (isalnum(ch) || ch == '_' || ch == '-' || (ch == '.' && sb->len))
			strbuf_addch(sb, (char)ch);
		else
			strbuf_addf(sb, "%%%02X", ch);
	}
}

static char *decode_name(const char *s, size_t n)
{
	char *out = xmalloc(n + 1), *o = out;

	for (size_t i = 0; i < n; i++) {
		unsigned a, b;
		if (s[i] == '%' && i + 2 < n + 1 && isxdigit((unsigned char)s[i + 1]) &&
		    isxdigit((unsigned char)s[i + 2])) {
			a = (unsigned)(isdigit((unsigned char)s[i + 1])
					       ? s[i + 1] - '0'
					       : (tolower(s[i + 1]) - 'a' + 10));
			b = (unsigned)(isdigit((unsigned char)s[i + 2])
					       ? s[i + 2] - '0'
					       : (tolower(s[i + 2]) - 'a' + 10));
			*o++ = (char)(a * 16 + b);
			i += 2;
		} else {
			*o++ = s[i];
		}
	}
	*o = '\0';
	return out;
}

/* Run a dump program and stream its stdout into the member `rel`. */
static int run_dump(const struct runner *r, struct strvec *args, struct member_sink *sink,
		    const char *rel, const char *what, struct err *e)
{
	unsigned char *buf = NULL;
	struct process p = PROCESS_INIT;
	int ret = -1;

	if (pg_start(&p, r, args, true, false, e) < 0)
		goto out;
	if (sink_begin(sink, rel, e) < 0)
		goto out;
	buf = xmalloc(256 * 1024);
	for (;;) {
		ssize_t n = process_read(&p, buf, 256 * 1024);
		if (n < 0) {
			err_set(e, LB_EXIT_SOURCE, "cannot read from %s: %s", args->v[0],
				strerror((int)-n));
			goto out;
		}
		if (n == 0)
			break;
		if (sink_write(sink, buf, (size_t)n, e) < 0)
			goto out;
	}
	if (process_finish(&p, what, e) < 0)
		goto done;
	ret = sink_end(sink, e);
	goto done;
out:
	process_kill(&p);
done:
	process_release(&p);
	free(buf);
	return ret;
}

static int dump_database(const struct runner *r, const char *db, struct member_sink *sink,
			 struct err *e)
{
	struct strvec args = STRVEC_INIT;
	struct strbuf rel = STRBUF_INIT;
	char *uri = runner_uri(r, db);
	char *what = xasprintf("pg_dump of database '%s' (%s)", db, r->redacted);

	strvec_push(&args, "pg_dump");
	strvec_push(&args, "--format=custom");
	strvec_push(&args, "--compress=0"); /* the archive is compressed as a whole */
	strvec_push(&args, "--no-password");
	strvec_pushf(&args, "--dbname=%s", uri);
	encode_name(&rel, db);
	strbuf_addstr(&rel, DUMP_SUFFIX);
	log_info("dumping PostgreSQL database '%s'", db);
	int ret = run_dump(r, &args, sink, rel.buf, what, e);
	strvec_release(&args);
	strbuf_release(&rel);
	free(uri);
	free(what);
	return ret;
}

static int dump_globals(const struct runner *r, struct member_sink *sink, struct err *e)
{
	struct strvec args = STRVEC_INIT;
	char *uri = runner_uri(r, "postgres");
	char *what = xasprintf("pg_dumpall --globals-only (%s)", r->redacted);

	strvec_push(&args, "pg_dumpall");
	strvec_push(&args, "--globals-only");
	strvec_push(&args, "--no-password");
	strvec_pushf(&args, "--dbname=%s", uri);
	int ret = run_dump(r, &args, sink, GLOBALS_MEMBER, what, e);
	strvec_release(&args);
	free(uri);
	free(what);
	return ret;
}

/* The databases of a server-wide source: every one that accepts connections. */
static int list_databases(PGconn *c, const char *redacted, struct strvec *dbs, struct err *e)
{
	char msg[512];
	PGresult *r = PQexec(c, "SELECT datname FROM pg_catalog.pg_database "
				"WHERE datallowconn AND NOT datistemplate ORDER BY datname");

	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		err_set(e, LB_EXIT_SOURCE, "PostgreSQL %s: cannot list databases: %s", redacted,
			pq_error_line(c, msg, sizeof(msg)));
		PQclear(r);
		return -1;
	}
	for (int i = 0; i < PQntuples(r); i++)
		strvec_push(dbs, PQgetvalue(r, i, 0));
	PQclear(r);
	return 0;
}

static int postgres_backup(const struct source_backup *src, struct member_sink *sink, struct err *e)
{
	const struct config *cfg = src->cfg;
	const struct source_spec *s = src->spec;
	struct dburi u;
	struct strvec dbs = STRVEC_INIT;
	PGconn *conn = NULL;
	int ret = -1;

	if (dburi_parse(s->uri, "BACKUP_POSTGRES", &u, e) < 0)
		return -1;
	struct runner r = { .u = &u, .redacted = s->path };
	if (pg_connect_any(&u, s->path, &conn, e) < 0)
		goto out;
	if (runner_pick(&r, cfg, server_major(conn), "pg_dump", e) < 0)
		goto out;
	if (u.database) {
		strvec_push(&dbs, u.database);
	} else {
		if (list_databases(conn, s->path, &dbs, e) < 0)
			goto out;
		if (dump_globals(&r, sink, e) < 0)
			goto out;
	}
	PQfinish(conn);
	conn = NULL;
	for (size_t i = 0; i < dbs.nr; i++) {
		if (dump_database(&r, dbs.v[i], sink, e) < 0)
			goto out;
	}
	ret = 0;
out:
	PQfinish(conn);
	runner_release(&r);
	strvec_release(&dbs);
	dburi_release(&u);
	return ret;
}

/* ---- restore ---- */

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
};

static int postgres_restore_begin(const struct db_restore_req *req, void **ctx, struct err *e)
{
	struct pg_restore_ctx *c = xcalloc(1, sizeof(*c));
	struct err e1 = ERR_INIT, scratch = ERR_INIT;

	*ctx = c;
	c->redacted = xstrdup(req->target->path);
	c->name = xstrdup(req->name);
	c->record = req->record;
	c->record_ctx = req->record_ctx;
	if (dburi_parse(req->target->uri, "BACKUP_POSTGRES", &c->u, e) < 0)
		return -1;
	/* template1 always exists and is never restored from a dump. */
	if (pg_connect(&c->u, "template1", c->redacted, &c->maint, &e1) < 0 &&
	    pg_connect(&c->u, "postgres", c->redacted, &c->maint, &scratch) < 0)
		return err_set(e, e1.code, "%s", e1.msg);
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
	st->tmp = xasprintf(PG_STAGE_PREFIX "%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2], rnd[3]);
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
	int rr = c->record ? c->record(c->record_ctx, &jd, e) : 0;
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
	log_info("restoring PostgreSQL database '%s'", db);
	int r = feed(&c->r, &args, rd, what, e);
	strvec_release(&args);
	free(what);
	free(uri);
	return r;
}

static int postgres_restore_member(void *ctx, const char *rel, struct member_reader *rd,
				   struct err *e)
{
	struct pg_restore_ctx *c = ctx;
	size_t n = strlen(rel), sn = strlen(DUMP_SUFFIX);

	if (!strcmp(rel, GLOBALS_MEMBER)) {
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

static int postgres_restore_end(void *ctx, bool ok, struct err *e)
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
	free(c);
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

static int postgres_swap(const struct config *cfg, const struct source_spec *target,
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
		err_set(e, e1.code, "%s", e1.msg);
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

const struct source_ops postgres_ops = {
	.backup = postgres_backup,
	.restore_begin = postgres_restore_begin,
	.restore_member = postgres_restore_member,
	.restore_end = postgres_restore_end,
	.swap = postgres_swap,
};
