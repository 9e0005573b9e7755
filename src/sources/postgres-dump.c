/* PostgreSQL dump: pg_dump -Fc of each database (and pg_dumpall --globals-only) into the sink. */
#include "common.h"

#include "log.h"
#include "sources/postgres.h"
#include "strbuf.h"
#include "stream/member-sink.h"
#include "strvec.h"
#include "xalloc.h"

static int run_dump(const struct runner *r, struct strvec *args, struct member_sink *sink,
		    const char *rel, const char *what, struct err *e)
{
	struct process p = PROCESS_INIT;
	int ret = -1;

	if (pg_start(&p, r, args, true, false, e) == 0)
		ret = sink_from_process(sink, &p, rel, args->v[0], what, e);
	process_release(&p);
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

int postgres_backup(const struct source_backup *src, struct member_sink *sink, struct err *e)
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
