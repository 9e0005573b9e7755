/*
 * MySQL and MariaDB sources: mariadb-dump (or mysqldump) streamed into the
 * archive, and the mariadb (or mysql) client fed from it. libmariadb answers
 * the small questions (the server's version, its databases, users and grants)
 * and does the restore's swap; the client tools get the connection settings
 * and the password in an option file they read from fd 3 (a pipe), never in
 * argv or their environment. In a container (BACKUP_MYSQL_DUMP=exec) the
 * password is in the exec's environment there (MYSQL_PWD), as PostgreSQL's is.
 *
 * Below mysql/NAME/ the archive holds DB.sql for each database (the name
 * percent-encoded where it is not [A-Za-z0-9_-]) and, for a URI that names no
 * database, users.grants.sql (CREATE USER and GRANT statements).
 *
 * This file: the URI, connecting, where the tools run, names; the dump is
 * mysql-dump.c, the restore mysql-restore.c.
 */
#include "config-vars.h"
#include "common.h"

#include <ctype.h>
#include <errmsg.h>

#include "log.h"
#include "sources/mysql.h"
#include "strbuf.h"
#include "strvec.h"
#include "xalloc.h"

bool my_system_db(const char *db)
{
	static const char *const sys[] = { "mysql", "sys", "information_schema",
					   "performance_schema" };
	for (size_t i = 0; i < ARRAY_SIZE(sys); i++)
		if (!strcasecmp(db, sys[i]))
			return true;
	return false;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Percent-decode [s, s+n); NULL on a bad or NUL escape. */
static char *pct_decode(const char *s, size_t n)
{
	char *out = xmalloc(n + 1), *o = out;

	for (size_t i = 0; i < n; i++) {
		if (s[i] != '%') {
			*o++ = s[i] == '+' ? ' ' : s[i];
			continue;
		}
		int a = i + 2 < n + 1 ? hexval((unsigned char)s[i + 1]) : -1;
		int b = a >= 0 ? hexval((unsigned char)s[i + 2]) : -1;
		if (a < 0 || b < 0 || (a == 0 && b == 0)) {
			free(out);
			return NULL;
		}
		*o++ = (char)(a * 16 + b);
		i += 2;
	}
	*o = '\0';
	return out;
}

static int parse_ssl_mode(const char *v, enum my_ssl *ret)
{
	static const struct {
		const char *word;
		enum my_ssl ssl;
	} modes[] = {
		{ "disabled", MY_SSL_DISABLED },
		{ "preferred", MY_SSL_DEFAULT },
		{ "required", MY_SSL_REQUIRED },
		{ "verify_ca", MY_SSL_VERIFY_CA },
		{ "verify_identity", MY_SSL_VERIFY },
		{ "true", MY_SSL_REQUIRED },
		{ "1", MY_SSL_REQUIRED },
		{ "false", MY_SSL_DISABLED },
		{ "0", MY_SSL_DISABLED },
	};
	for (size_t i = 0; i < ARRAY_SIZE(modes); i++)
		if (!strcasecmp(v, modes[i].word)) {
			*ret = modes[i].ssl;
			return 0;
		}
	return -1;
}

/* The query: ssl=true|false, ssl-mode=DISABLED|PREFERRED|REQUIRED|VERIFY_CA|VERIFY_IDENTITY,
 * ssl-ca, ssl-capath, ssl-cert, ssl-key (paths). '_' may stand for '-'. */
static int parse_opts(struct my_conn *mc, struct err *e)
{
	const char *q = mc->u.query;

	while (q && *q) {
		size_t n = strcspn(q, "&");
		const char *eq = memchr(q, '=', n);
		char *key = xstrndup(q, eq ? (size_t)(eq - q) : n);
		char *val = eq ? pct_decode(eq + 1, n - (size_t)(eq + 1 - q)) : xstrdup("true");
		int bad = !val;
		for (char *k = key; *k; k++)
			*k = *k == '_' ? '-' : (char)tolower((unsigned char)*k);
		char **path = !strcmp(key, "ssl-ca")	   ? &mc->o.ca
			      : !strcmp(key, "ssl-capath") ? &mc->o.capath
			      : !strcmp(key, "ssl-cert")   ? &mc->o.cert
			      : !strcmp(key, "ssl-key")	   ? &mc->o.key
							   : NULL;
		if (!bad && path) {
			free(*path);
			*path = val;
			val = NULL;
		} else if (!bad && (!strcmp(key, "ssl") || !strcmp(key, "ssl-mode") ||
				    !strcmp(key, "sslmode"))) {
			bad = parse_ssl_mode(val, &mc->o.ssl) < 0;
		} else {
			bad = 2;
		}
		if (bad)
			err_set(e, LB_EXIT_CONFIG,
				bad == 2 ? "BACKUP_MYSQL %s: unknown option '%s' (expected ssl, "
					   "ssl-mode, ssl-ca, ssl-capath, ssl-cert or ssl-key)"
					 : "BACKUP_MYSQL %s: option '%s' has an invalid value",
				mc->redacted, key);
		free(key);
		free(val);
		if (bad)
			return -1;
		q += n;
		if (*q == '&')
			q++;
	}
	if (mc->o.ca || mc->o.capath || mc->o.cert || mc->o.key)
		if (mc->o.ssl == MY_SSL_DEFAULT)
			mc->o.ssl = MY_SSL_REQUIRED;
	return 0;
}

int my_conn_init(struct my_conn *mc, const char *uri, const char *redacted, struct err *e)
{
	*mc = (struct my_conn){ .redacted = redacted,
				.dump_tool = "mariadb-dump",
				.client_tool = "mariadb" };
	if (dburi_parse(uri, "BACKUP_MYSQL", &mc->u, e) < 0)
		return -1;
	if (!mc->u.host || !*mc->u.host || strchr(mc->u.hosts, ','))
		return err_set(e, LB_EXIT_CONFIG, "BACKUP_MYSQL %s: expected one host", redacted);
	mc->port = 3306;
	if (mc->u.port) {
		char *end;
		unsigned long p = strtoul(mc->u.port, &end, 10);
		if (*end || !p || p > 65535)
			return err_set(e, LB_EXIT_CONFIG, "BACKUP_MYSQL %s: invalid port",
				       redacted);
		mc->port = (unsigned)p;
	}
	if (mc->u.database && (strchr(mc->u.database, '/') || strchr(mc->u.database, '.')))
		return err_set(e, LB_EXIT_CONFIG,
			       "BACKUP_MYSQL %s: a database name cannot hold '/' or '.'", redacted);
	return parse_opts(mc, e);
}

void my_conn_release(struct my_conn *mc)
{
	process_place_release(&mc->where);
	dburi_release(&mc->u);
	free(mc->o.ca);
	free(mc->o.capath);
	free(mc->o.cert);
	free(mc->o.key);
	*mc = (struct my_conn){ 0 };
}

void my_scrub(const struct my_conn *mc, struct err *e)
{
	const char *pw = mc->u.password;
	char *at;

	if (!pw || !*pw)
		return;
	while ((at = strstr(e->msg, pw))) {
		size_t n = strlen(pw);
		memmove(at + 3, at + n, strlen(at + n) + 1);
		memcpy(at, "***", 3);
	}
}

int my_connect(const struct my_conn *mc, const char *db, MYSQL **ret, struct err *e)
{
	MYSQL *c = mysql_init(NULL);
	unsigned timeout = 15, proto = MYSQL_PROTOCOL_TCP;
	my_bool yes = 1;

	if (!c)
		return err_set(e, LB_EXIT_INTERNAL, "out of memory");
	mysql_options(c, MYSQL_OPT_CONNECT_TIMEOUT, &timeout);
	mysql_options(c, MYSQL_OPT_PROTOCOL, &proto);
	mysql_options(c, MYSQL_SET_CHARSET_NAME, "utf8mb4");
	if (mc->o.ssl >= MY_SSL_REQUIRED) {
		mysql_ssl_set(c, mc->o.key, mc->o.cert, mc->o.ca, mc->o.capath, NULL);
		mysql_options(c, MYSQL_OPT_SSL_ENFORCE, &yes);
		if (mc->o.ssl >= MY_SSL_VERIFY_CA)
			mysql_options(c, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &yes);
	}
	if (!mysql_real_connect(c, mc->u.host, mc->u.user ? mc->u.user : "root", mc->u.password, db,
				mc->port, NULL, 0)) {
		err_set(e, LB_EXIT_SOURCE, "MySQL %s: cannot connect%s%s: %s", mc->redacted,
			db ? " to database " : "", db ? db : "", mysql_error(c));
		my_scrub(mc, e);
		mysql_close(c);
		return -1;
	}
	*ret = c;
	return 0;
}

int my_exec(const struct my_conn *mc, MYSQL *c, const char *what, const char *sql, struct err *e)
{
	if (mysql_real_query(c, sql, strlen(sql))) {
		err_set(e, LB_EXIT_SOURCE, "MySQL %s: cannot %s: %s", mc->redacted, what,
			mysql_error(c));
		my_scrub(mc, e);
		return -1;
	}
	do {
		MYSQL_RES *r = mysql_store_result(c);
		mysql_free_result(r);
	} while (mysql_next_result(c) == 0);
	return 0;
}

MYSQL_RES *my_select(const struct my_conn *mc, MYSQL *c, const char *what, const char *sql,
		     struct err *e)
{
	MYSQL_RES *r = NULL;

	if (mysql_real_query(c, sql, strlen(sql)) || !(r = mysql_store_result(c))) {
		err_set(e, LB_EXIT_SOURCE, "MySQL %s: cannot %s: %s", mc->redacted, what,
			mysql_errno(c) ? mysql_error(c) : "no result");
		my_scrub(mc, e);
		return NULL;
	}
	return r;
}

void my_quote(struct strbuf *sb, const char *s)
{
	strbuf_addch(sb, '`');
	for (; *s; s++) {
		if (*s == '`')
			strbuf_addch(sb, '`');
		strbuf_addch(sb, *s);
	}
	strbuf_addch(sb, '`');
}

/* The first line a tool prints for --version, or NULL when it cannot run. */
static char *tool_version(const struct my_conn *mc, const char *prog)
{
	char *argv[] = { (char *)prog, "--version", NULL };
	const struct process_spec spec = {
		.argv = argv, .where = &mc->where, .want_stdout = true, .fail_code = LB_EXIT_SOURCE
	};
	struct process pr = PROCESS_INIT;
	struct err scratch = ERR_INIT;
	char buf[512];
	ssize_t n = 0, r;

	if (process_start(&pr, &spec, &scratch) < 0) {
		process_release(&pr);
		return NULL;
	}
	while ((size_t)n < sizeof(buf) - 1 &&
	       (r = process_read(&pr, buf + n, sizeof(buf) - 1 - (size_t)n)) > 0)
		n += r;
	buf[n] = '\0';
	int status = process_finish(&pr, prog, &scratch);
	process_release(&pr);
	buf[strcspn(buf, "\n")] = '\0';
	return status == 0 && n > 0 ? xstrdup(buf) : NULL;
}

/* An executable `prog` in one of PATH's directories (where execvpe looks). */
static bool in_path(const char *prog)
{
	const char *path = getenv("PATH");
	bool found = false;

	for (const char *p = path ? path : ""; *p && !found;) {
		size_t n = strcspn(p, ":");
		if (n) {
			char *f = xasprintf("%.*s/%s", (int)n, p, prog);
			found = access(f, X_OK) == 0;
			free(f);
		}
		p += n;
		if (*p)
			p++;
	}
	return found;
}

/* Which tools run where we chose: mariadb-dump and mariadb, else mysqldump and mysql. */
static int find_tools(struct my_conn *mc, struct err *e)
{
	mc->dump_tool = "mariadb-dump";
	mc->client_tool = "mariadb";
	/*
	 * Here, a mariadb-dump in PATH is MariaDB's (MySQL ships none): no `--version` run
	 * to learn it (a fork and exec per source). In a container, or without it, ask.
	 */
	if (!process_place_is_container(&mc->where) && in_path("mariadb-dump")) {
		mc->mysql_tools = false;
		return 0;
	}
	char *v = tool_version(mc, "mariadb-dump");
	if (!v) {
		v = tool_version(mc, "mysqldump");
		mc->dump_tool = "mysqldump";
		mc->client_tool = "mysql";
	}
	if (!v)
		return err_set(
			e, LB_EXIT_SOURCE,
			"MySQL %s: neither mariadb-dump nor mysqldump can run %s", mc->redacted,
			process_place_is_container(&mc->where) ? "in the database's container"
							       : "here");
	mc->mysql_tools = !strstr(v, "MariaDB");
	free(v);
	return 0;
}

static int use_container(struct my_conn *mc, const struct config *cfg, struct err *e)
{
	struct err de = ERR_INIT;

	if (process_place_container(&mc->where, cfg->docker.host, mc->u.host, &de) < 0)
		return err_set(e, LB_EXIT_SOURCE,
			       "MySQL %s: cannot run the client tools in the database's container "
			       "'%s': %s",
			       mc->redacted, mc->u.host, de.msg);
	log_info("MySQL %s: running the client tools in container '%s'", mc->redacted, mc->u.host);
	return 0;
}

/*
 * BACKUP_MYSQL_DUMP: exec always in the container; local always here; auto here,
 * unless the server is MySQL (not MariaDB, whose tools we carry) and its
 * container can be reached: then its own tools.
 */
int my_pick_tools(struct my_conn *mc, MYSQL *conn, const struct config *cfg, struct err *e)
{
	if (cfg->mysql.dump_mode == PG_DUMP_EXEC) {
		if (use_container(mc, cfg, e) < 0)
			return -1;
	} else if (cfg->mysql.dump_mode == PG_DUMP_AUTO) {
		MYSQL *c = conn;
		if (!c && my_connect(mc, NULL, &c, e) < 0)
			return -1;
		bool mariadb = strstr(mysql_get_server_info(c), "MariaDB") != NULL;
		if (c != conn)
			mysql_close(c);
		struct err xe = ERR_INIT;
		if (!mariadb && use_container(mc, cfg, &xe) < 0)
			log_info("MySQL %s: the server is MySQL, but its container cannot run the "
				 "dump (%s): using this image's tools",
				 mc->redacted, xe.msg);
	}
	return find_tools(mc, e);
}

/* An option file's value, quoted: \, newline, CR and tab escaped. */
static void opt_value(struct strbuf *sb, const char *key, const char *v)
{
	strbuf_addf(sb, "%s=\"", key);
	for (; *v; v++) {
		if (*v == '\\')
			strbuf_addstr(sb, "\\\\");
		else if (*v == '\n')
			strbuf_addstr(sb, "\\n");
		else if (*v == '\r')
			strbuf_addstr(sb, "\\r");
		else if (*v == '\t')
			strbuf_addstr(sb, "\\t");
		else
			strbuf_addch(sb, *v);
	}
	strbuf_addstr(sb, "\"\n");
}

/* The [client] group of the option file the tools read. */
static void option_file(const struct my_conn *mc, bool here, struct strbuf *sb)
{
	strbuf_addstr(sb, "[client]\nprotocol=TCP\n");
	opt_value(sb, "host", here ? mc->u.host : "127.0.0.1");
	strbuf_addf(sb, "port=%u\n", mc->port);
	opt_value(sb, "user", mc->u.user ? mc->u.user : "root");
	if (here && mc->u.password)
		opt_value(sb, "password", mc->u.password);
	if (mc->o.ssl == MY_SSL_DISABLED)
		strbuf_addstr(sb, mc->mysql_tools ? "ssl-mode=DISABLED\n" : "skip-ssl\n");
	else if (mc->o.ssl != MY_SSL_DEFAULT && mc->mysql_tools)
		strbuf_addstr(sb, mc->o.ssl == MY_SSL_REQUIRED	  ? "ssl-mode=REQUIRED\n"
				  : mc->o.ssl == MY_SSL_VERIFY_CA ? "ssl-mode=VERIFY_CA\n"
								  : "ssl-mode=VERIFY_IDENTITY\n");
	else if (mc->o.ssl != MY_SSL_DEFAULT)
		strbuf_addstr(sb, mc->o.ssl == MY_SSL_REQUIRED ? "ssl\n"
							       : "ssl\nssl-verify-server-cert\n");
	if (mc->o.ca)
		opt_value(sb, "ssl-ca", mc->o.ca);
	if (mc->o.capath)
		opt_value(sb, "ssl-capath", mc->o.capath);
	if (mc->o.cert)
		opt_value(sb, "ssl-cert", mc->o.cert);
	if (mc->o.key)
		opt_value(sb, "ssl-key", mc->o.key);
}

int my_start(struct process *p, const struct my_conn *mc, struct strvec *args, bool out, bool in,
	     struct err *e)
{
	bool here = !process_place_is_container(&mc->where);
	struct strbuf opts = STRBUF_INIT;
	struct strvec argv = STRVEC_INIT, env = STRVEC_INIT;

	option_file(mc, here, &opts);
	strvec_push(&argv, args->v[0]);
	if (here) {
		/* Must be the first option; read from the pipe on fd 3. */
		strvec_push(&argv, "--defaults-extra-file=/dev/fd/3");
	} else {
		/* No fd crosses the exec API: the settings as options, the password as MYSQL_PWD. */
		strvec_push(&argv, "--no-defaults");
		strvec_push(&argv, "--protocol=TCP");
		strvec_push(&argv, "--host=127.0.0.1");
		strvec_pushf(&argv, "--port=%u", mc->port);
		strvec_pushf(&argv, "--user=%s", mc->u.user ? mc->u.user : "root");
		if (mc->u.password)
			strvec_pushf(&env, "MYSQL_PWD=%s", mc->u.password);
	}
	for (size_t i = 1; i < args->nr; i++)
		strvec_push(&argv, args->v[i]);
	const struct process_spec spec = { .argv = argv.v,
					   .env = env.v,
					   .where = &mc->where,
					   .want_stdin = in,
					   .want_stdout = out,
					   .fail_code = LB_EXIT_SOURCE,
					   .fd3_data = here ? opts.buf : NULL };
	int ret = process_start(p, &spec, e);
	explicit_bzero(opts.buf, opts.len);
	strbuf_release(&opts);
	for (size_t i = 0; i < env.nr; i++)
		explicit_bzero(env.v[i], strlen(env.v[i]));
	strvec_release(&env);
	strvec_release(&argv);
	return ret;
}

void my_encode_name(struct strbuf *sb, const char *s)
{
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (isalnum(ch) || ch == '_' || ch == '-')
			strbuf_addch(sb, (char)ch);
		else
			strbuf_addf(sb, "%%%02X", ch);
	}
}

char *my_decode_name(const char *s, size_t n)
{
	return pct_decode(s, n);
}

/* BACKUP_MYSQL_DUMP=auto or exec may run the client tools in the database's container. */
static bool mysql_uses_docker(const struct config *cfg)
{
	return cfg->mysql.dump_mode != PG_DUMP_LOCAL;
}

const struct source_ops mysql_ops = {
	.after_verify = true,
	.check_member = source_check_streamed,
	.backup = mysql_backup,
	.restore_begin = mysql_restore_begin,
	.restore_member = mysql_restore_member,
	.restore_end = mysql_restore_end,
	.drill_check = mysql_drill_check,
	.drill_sweep = mysql_drill_sweep,
	.swap = mysql_swap,
	.uses_docker = mysql_uses_docker,
};

/* ---- its variables: rows of the configuration table (config-vars.h) ---- */

static int var_my_dump(CONFIG_PARSE_ARGS)
{
	CONFIG_UNUSED_ARGS;
	if (!value || !strcasecmp(value, "auto"))
		cfg->mysql.dump_mode = PG_DUMP_AUTO;
	else if (!strcasecmp(value, "local"))
		cfg->mysql.dump_mode = PG_DUMP_LOCAL;
	else if (!strcasecmp(value, "exec"))
		cfg->mysql.dump_mode = PG_DUMP_EXEC;
	else
		return err_set(e, LB_EXIT_CONFIG,
			       "BACKUP_MYSQL_DUMP '%s' is invalid: expected auto, local or exec",
			       SHOW(value));
	return 0;
}

static const struct config_var mysql_rows[] = {
	{ "BACKUP_MYSQL", SECRET, config_var_sources, 0, 0, 0, NULL,
	  "MySQL and MariaDB URIs, one per line (or separated by commas): "
	  "`mysql://user:password@host:3306/db` (also `mariadb://`), with a percent-encoded "
	  "password and TLS options `?ssl=true`, `?ssl-mode=REQUIRED|VERIFY_CA|VERIFY_IDENTITY|"
	  "DISABLED`, `ssl-ca=`, `ssl-capath=`, `ssl-cert=`, `ssl-key=` (paths in this container). "
	  "Without a database every database except `mysql`, `sys`, `information_schema` and "
	  "`performance_schema` is backed up, plus users and grants. A secret: also "
	  "`BACKUP_MYSQL_FILE`; printed with the password as `***`. See "
	  "[MySQL and MariaDB](#mysql-and-mariadb).",
	  NULL },
	{ "BACKUP_MYSQL_DUMP", 0, var_my_dump, 0, 0, 0, "auto",
	  "Where `mariadb-dump`/`mariadb` run: `auto` (default: here, or in the database's "
	  "container when the server is MySQL rather than MariaDB and its container can be "
	  "reached), `local` or `exec` (always in the database's container, through the Docker "
	  "socket). See [MySQL and MariaDB](#mysql-and-mariadb).",
	  NULL },
};
const struct config_var_group mysql_vars = CONFIG_VAR_GROUP(mysql_rows);
