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
 *
 * This file: connecting, where the client programs run, names; the dump is
 * postgres-dump.c, the restore postgres-restore.c.
 */
#include "config-vars.h"
#include "common.h"

#include <ctype.h>

#include "log.h"
#include "sources/postgres.h"
#include "strbuf.h"
#include "strvec.h"
#include "xalloc.h"

/* The first line of a libpq error message (it never holds the password). */
const char *pq_error_line(PGconn *c, char *buf, size_t len)
{
	const char *m = c ? PQerrorMessage(c) : "out of memory";
	size_t n = strcspn(m, "\n");

	snprintf(buf, len, "%.*s", (int)n, m);
	return buf;
}

int pg_connect(const struct dburi *u, const char *db, const char *redacted, PGconn **ret,
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
int pg_connect_any(const struct dburi *u, const char *redacted, PGconn **ret, struct err *e)
{
	struct err first = ERR_INIT, scratch = ERR_INIT;

	if (u->database && pg_connect(u, NULL, redacted, ret, &first) == 0)
		return 0;
	if (u->database) /* the named database is what the user asked for */
		return err_copy(e, &first);
	if (pg_connect(u, "postgres", redacted, ret, &first) == 0 ||
	    pg_connect(u, "template1", redacted, ret, &scratch) == 0)
		return 0;
	return err_copy(e, &first);
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

int server_major(PGconn *c)
{
	int v = PQserverVersion(c);
	return v >= 100000 ? v / 10000 : v / 100; /* 9.6 -> 906 */
}

void runner_release(struct runner *r)
{
	process_place_release(&r->where);
	*r = (struct runner){ 0 };
}

/* Find the container of the URI's host (a Compose service or a container name). */
static int runner_exec(struct runner *r, const struct config *cfg, struct err *e)
{
	struct err de = ERR_INIT;

	if (process_place_container(&r->where, cfg->docker.host, r->u->host, &de) < 0)
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
int runner_pick(struct runner *r, const struct config *cfg, int server, const char *prog,
		struct err *e)
{
	if (cfg->postgres.dump_mode == PG_DUMP_EXEC)
		return runner_exec(r, cfg, e);
	int client = client_major(prog, e);
	if (client < 0)
		return -1;
	if (server <= client)
		return 0;
	if (cfg->postgres.dump_mode == PG_DUMP_LOCAL)
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
char *runner_uri(const struct runner *r, const char *db)
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
int pg_start(struct process *p, const struct runner *r, struct strvec *args, bool out, bool in,
	     struct err *e)
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

void encode_name(struct strbuf *sb, const char *s)
{
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (isalnum(ch) || ch == '_' || ch == '-' || (ch == '.' && sb->len))
			strbuf_addch(sb, (char)ch);
		else
			strbuf_addf(sb, "%%%02X", ch);
	}
}

char *decode_name(const char *s, size_t n)
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

/* BACKUP_POSTGRES_DUMP=auto or exec may run the client tools in the database's container. */
static bool postgres_uses_docker(const struct config *cfg)
{
	return cfg->postgres.dump_mode != PG_DUMP_LOCAL;
}

const struct source_ops postgres_ops = {
	.after_verify = true,
	.check_member = source_check_streamed,
	.backup = postgres_backup,
	.restore_begin = postgres_restore_begin,
	.restore_member = postgres_restore_member,
	.restore_end = postgres_restore_end,
	.drill_check = postgres_drill_check,
	.drill_sweep = postgres_drill_sweep,
	.swap = postgres_swap,
	.uses_docker = postgres_uses_docker,
};

/* ---- its variables: rows of the configuration table (config-vars.h) ---- */

static int var_pg_dump(CONFIG_PARSE_ARGS)
{
	CONFIG_UNUSED_ARGS;
	if (!value || !strcasecmp(value, "auto"))
		cfg->postgres.dump_mode = PG_DUMP_AUTO;
	else if (!strcasecmp(value, "local"))
		cfg->postgres.dump_mode = PG_DUMP_LOCAL;
	else if (!strcasecmp(value, "exec"))
		cfg->postgres.dump_mode = PG_DUMP_EXEC;
	else
		return err_set(e, LB_EXIT_CONFIG,
			       "BACKUP_POSTGRES_DUMP '%s' is invalid: expected auto, local or exec",
			       SHOW(value));
	return 0;
}

static const struct config_var postgres_rows[] = {
	{ "BACKUP_POSTGRES", SECRET, config_var_sources, 0, 0, 0, NULL,
	  "PostgreSQL URIs, one per line (or separated by commas): "
	  "`postgresql://user:password@host:5432/db?sslmode=require`. Percent-encode special "
	  "characters in the password (`@` → `%40`, `:` → `%3A`, `/` → `%2F`). Without a database "
	  "(`postgresql://user:pw@db:5432`) every database on the server is backed up, plus roles. "
	  "A host is required (or a socket directory as `?host=/run/postgresql`); a database name "
	  "has at most 63 bytes, PostgreSQL's limit. A secret: also `BACKUP_POSTGRES_FILE`; "
	  "printed with the password as `***`. See [PostgreSQL](#postgresql).",
	  NULL },
	{ "BACKUP_POSTGRES_DUMP", 0, var_pg_dump, 0, 0, 0, "auto",
	  "Where `pg_dump`/`pg_restore` run: `auto` (default: here, or in the database's container "
	  "when the server is newer than this image's client tools), `local` or `exec` (always in "
	  "the database's container, through the Docker socket). See [PostgreSQL](#postgresql).",
	  NULL },
};
const struct config_var_group postgres_vars = CONFIG_VAR_GROUP(postgres_rows);
