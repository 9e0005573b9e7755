/*
 * MongoDB sources: a native dump and restore with libmongoc, in mongodump's
 * directory layout. This file: the connection, errors and names both sides
 * share, and the ops; the dump is mongodb-dump.c, the restore mongodb-restore.c.
 */
#include "config-vars.h"
#include "common.h"

#include <mongoc/mongoc.h>
#include <pthread.h>

#include "dburi.h"
#include "sources/mongodb.h"
#include "strbuf.h"

static pthread_once_t mongo_once = PTHREAD_ONCE_INIT;

/* libmongoc logs to stderr by default; an adapter module stays silent. */
static void mongo_log_quiet(mongoc_log_level_t level, const char *domain, const char *msg,
			    void *data)
{
	(void)level;
	(void)domain;
	(void)msg;
	(void)data;
}

static void mongo_cleanup(void)
{
	mongoc_cleanup();
}

static void mongo_init_once(void)
{
	mongoc_log_set_handler(mongo_log_quiet, NULL);
	mongoc_init();
	atexit(mongo_cleanup);
}

/*
 * A library message with any trace of the password replaced: libmongoc's
 * errors do not quote the URI, but a password given as a query parameter or
 * echoed by a server must not reach a log either way.
 */
static char *scrub(const char *msg, const char *secret_uri)
{
	struct dburi u = { 0 };
	struct err ignored = ERR_INIT;
	struct strbuf sb = STRBUF_INIT;

	strbuf_addstr(&sb, msg);
	if (dburi_parse(secret_uri, "uri", &u, &ignored) == 0 && u.password && *u.password) {
		size_t n = strlen(u.password);
		char *p;
		while ((p = strstr(sb.buf, u.password))) {
			struct strbuf out = STRBUF_INIT;
			strbuf_add(&out, sb.buf, (size_t)(p - sb.buf));
			strbuf_addstr(&out, "***");
			strbuf_addstr(&out, p + n);
			strbuf_release(&sb);
			sb = out;
		}
	}
	dburi_release(&u);
	return strbuf_detach(&sb, NULL);
}

int mongo_fail(struct err *e, const char *name, const char *redacted, const char *secret_uri,
	       const bson_error_t *be, const char *fmt, ...)
{
	va_list ap;
	struct strbuf what = STRBUF_INIT;

	va_start(ap, fmt);
	strbuf_vaddf(&what, fmt, ap);
	va_end(ap);
	char *lib = be && be->message[0] ? scrub(be->message, secret_uri) : NULL;
	for (char *p = lib; p && *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	err_set(e, LB_EXIT_SOURCE, "MongoDB source '%s' (%s): %s%s%s", name, redacted, what.buf,
		lib ? ": " : "", lib ? lib : "");
	free(lib);
	strbuf_release(&what);
	return -1;
}

/* Connect to `secret_uri` and ping the server, so that bad targets fail before any work. */
int mongo_connect(const char *name, const char *redacted, const char *secret_uri,
		  mongoc_client_t **ret_client, mongoc_uri_t **ret_uri, struct err *e)
{
	bson_error_t be = { 0 };
	bson_t ping = BSON_INITIALIZER, reply;

	pthread_once(&mongo_once, mongo_init_once);
	mongoc_uri_t *uri = mongoc_uri_new_with_error(secret_uri, &be);
	if (!uri)
		return mongo_fail(e, name, redacted, secret_uri, &be, "invalid URI");
	/* Fail fast on an unreachable server unless the URI says otherwise. */
	if (!mongoc_uri_has_option(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS))
		mongoc_uri_set_option_as_int32(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, 10000);
	if (!mongoc_uri_has_option(uri, MONGOC_URI_CONNECTTIMEOUTMS))
		mongoc_uri_set_option_as_int32(uri, MONGOC_URI_CONNECTTIMEOUTMS, 10000);
	if (!mongoc_uri_has_option(uri, MONGOC_URI_APPNAME))
		mongoc_uri_set_appname(uri, "lifeboat");
	mongoc_client_t *client = mongoc_client_new_from_uri_with_error(uri, &be);
	if (!client) {
		mongoc_uri_destroy(uri);
		return mongo_fail(e, name, redacted, secret_uri, &be, "cannot create a client");
	}
	mongoc_client_set_error_api(client, MONGOC_ERROR_API_VERSION_2);
	BSON_APPEND_INT32(&ping, "ping", 1);
	bool ok = mongoc_client_command_simple(client, "admin", &ping, NULL, &reply, &be);
	bson_destroy(&ping);
	bson_destroy(&reply);
	if (!ok) {
		mongoc_client_destroy(client);
		mongoc_uri_destroy(uri);
		return mongo_fail(e, name, redacted, secret_uri, &be, "cannot connect");
	}
	*ret_client = client;
	*ret_uri = uri;
	return 0;
}

/* Collection names in file names, escaped as mongodump does (Go's url.QueryEscape). */
void mongo_escape_name(struct strbuf *sb, const char *name)
{
	for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		    (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.' || *p == '~')
			strbuf_addch(sb, (char)*p);
		else if (*p == ' ')
			strbuf_addch(sb, '+');
		else
			strbuf_addf(sb, "%%%02X", *p);
	}
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* The inverse of mongo_escape_name(); NULL for a malformed or empty name. */
char *mongo_unescape_name(const char *s, size_t len)
{
	struct strbuf sb = STRBUF_INIT;

	for (size_t i = 0; i < len; i++) {
		if (s[i] == '+') {
			strbuf_addch(&sb, ' ');
		} else if (s[i] == '%') {
			int hi = i + 2 < len ? hexval(s[i + 1]) : -1;
			int lo = hi >= 0 ? hexval(s[i + 2]) : -1;
			if (lo < 0 || (hi == 0 && lo == 0)) {
				strbuf_release(&sb);
				return NULL;
			}
			strbuf_addch(&sb, (char)(hi * 16 + lo));
			i += 2;
		} else {
			strbuf_addch(&sb, s[i]);
		}
	}
	if (!sb.len) {
		strbuf_release(&sb);
		return NULL;
	}
	return strbuf_detach(&sb, NULL);
}

const char *mongo_doc_utf8(const bson_t *doc, const char *key, const char *dflt)
{
	bson_iter_t it;

	if (bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_UTF8(&it))
		return bson_iter_utf8(&it, NULL);
	return dflt;
}

const struct source_ops mongodb_ops = {
	.after_verify = true,
	.check_member = source_check_streamed,
	.backup = mongodb_backup,
	.restore_begin = mongodb_restore_begin,
	.restore_member = mongodb_restore_member,
	.restore_end = mongodb_restore_end,
	.drill_check = mongodb_drill_check,
	.drill_sweep = mongodb_drill_sweep,
	.swap = mongodb_swap,
};

/* ---- its variables: rows of the configuration table (config-vars.h) ---- */

static const struct config_var mongodb_rows[] = {
	{ "BACKUP_MONGODB", SECRET, config_var_sources, 0, 0, 0, NULL,
	  "MongoDB databases: `mongodb://` (or `mongodb+srv://`) URIs, one per line or separated "
	  "by commas, with any libmongoc option (`authSource`, `tls=true`/`ssl=true`, "
	  "`replicaSet`, ...) and a percent-encoded password (a secret: also as `_FILE`; printed "
	  "with `***`). With a database in the path, that database; without one, every database "
	  "except `admin`, `local` and `config`. Each is named after its database (or its host "
	  "when none); a database name has at most 63 bytes (MongoDB's: fewer than 64). See "
	  "[MongoDB databases](#mongodb-databases).",
	  NULL },
};
const struct config_var_group mongodb_vars = CONFIG_VAR_GROUP(mongodb_rows);
