/* MongoDB sources: a native dump and restore with libmongoc, in mongodump's directory layout. */
#include "common.h"

#include <mongoc/mongoc.h>
#include <pthread.h>

#include "dburi.h"
#include "fault.h"
#include "journal.h"
#include "sources/source.h"
#include "stream/member-sink.h"
#include "stream/tar-reader.h"
#include "util.h"

/* The largest document a server stores is 16 MiB; internal documents may be a little larger. */
#define MONGO_MAX_DOC	   (16u * 1024 * 1024 + 16 * 1024)
#define MONGO_READ_CHUNK   (256u * 1024)
#define MONGO_BATCH_DOCS   1000
#define MONGO_BATCH_BYTES  (16u * 1024 * 1024)
#define MONGO_MAX_METADATA (16u * 1024 * 1024)
#define MONGO_NS_NOT_FOUND 26
/* A restore builds each collection under this prefix, then renames it over the original. */
#define MONGO_STAGE_PREFIX "lifeboat-restore-"
/* ... and keeps the original under this one until every target of the restore swapped. */
#define MONGO_OLD_PREFIX "lifeboat-old-"

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

/* Record a source error: "MongoDB source 'NAME' ('URI redacted'): WHAT: library message". */
static int mongo_fail(struct err *e, const char *name, const char *redacted, const char *secret_uri,
		      const bson_error_t *be, const char *fmt, ...) LB_PRINTF(6, 7);
static int mongo_fail(struct err *e, const char *name, const char *redacted, const char *secret_uri,
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
static int mongo_connect(const char *name, const char *redacted, const char *secret_uri,
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
static void escape_name(struct strbuf *sb, const char *name)
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

/* The inverse of escape_name(); NULL for a malformed or empty name. */
static char *unescape_name(const char *s, size_t len)
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

/* ---- backup ---------------------------------------------------------------------------- */

struct mongo_dump {
	const struct source_spec *s;
	mongoc_client_t *client;
	struct member_sink *sink;
};

static int dump_fail(struct mongo_dump *d, struct err *e, const bson_error_t *be, const char *fmt,
		     ...) LB_PRINTF(4, 5);
static int dump_fail(struct mongo_dump *d, struct err *e, const bson_error_t *be, const char *fmt,
		     ...)
{
	va_list ap;
	struct strbuf what = STRBUF_INIT;

	va_start(ap, fmt);
	strbuf_vaddf(&what, fmt, ap);
	va_end(ap);
	mongo_fail(e, d->s->name, d->s->path, d->s->uri, be, "%s", what.buf);
	strbuf_release(&what);
	return -1;
}

static int cmp_bson_name(const void *a, const void *b)
{
	bson_iter_t ia, ib;
	const char *na = "", *nb = "";

	if (bson_iter_init_find(&ia, *(bson_t *const *)a, "name") && BSON_ITER_HOLDS_UTF8(&ia))
		na = bson_iter_utf8(&ia, NULL);
	if (bson_iter_init_find(&ib, *(bson_t *const *)b, "name") && BSON_ITER_HOLDS_UTF8(&ib))
		nb = bson_iter_utf8(&ib, NULL);
	return strcmp(na, nb);
}

static const char *doc_utf8(const bson_t *doc, const char *key, const char *dflt)
{
	bson_iter_t it;

	if (bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_UTF8(&it))
		return bson_iter_utf8(&it, NULL);
	return dflt;
}

/* Append sub-document `key` of `doc` to `out` as `as` unless it is missing or empty (as mongodump).
 */
static void append_subdoc(bson_t *out, const char *as, const bson_t *doc, const char *key)
{
	bson_iter_t it;
	bson_t sub;
	uint32_t len;
	const uint8_t *data;

	if (!bson_iter_init_find(&it, doc, key) || !BSON_ITER_HOLDS_DOCUMENT(&it))
		return;
	bson_iter_document(&it, &len, &data);
	if (bson_init_static(&sub, data, len) && !bson_empty(&sub))
		bson_append_document(out, as, -1, &sub);
}

/* The collection's UUID as mongodump writes it: 32 lower-case hex digits. */
static void append_uuid(bson_t *out, const bson_t *info)
{
	bson_iter_t it, sub;
	bson_subtype_t st;
	uint32_t len;
	const uint8_t *bin;

	if (!bson_iter_init_find(&it, info, "info") || !BSON_ITER_HOLDS_DOCUMENT(&it) ||
	    !bson_iter_recurse(&it, &sub) || !bson_iter_find(&sub, "uuid") ||
	    !BSON_ITER_HOLDS_BINARY(&sub))
		return;
	bson_iter_binary(&sub, &st, &len, &bin);
	if (st != BSON_SUBTYPE_UUID || len != 16)
		return;
	char hex[33];
	for (unsigned i = 0; i < 16; i++)
		snprintf(hex + 2 * i, 3, "%02x", bin[i]);
	BSON_APPEND_UTF8(out, "uuid", hex);
}

/* Write "<db>/<coll>.<suffix>" as the member name. */
static char *member_name(const char *db, const char *coll, const char *suffix)
{
	struct strbuf sb = STRBUF_INIT;

	strbuf_addstr(&sb, db);
	strbuf_addch(&sb, '/');
	escape_name(&sb, coll);
	strbuf_addstr(&sb, suffix);
	return strbuf_detach(&sb, NULL);
}

/* "<coll>.metadata.json": options, indexes, uuid, name and type, in canonical Extended JSON. */
static int dump_metadata(struct mongo_dump *d, mongoc_database_t *db, const char *dbname,
			 const bson_t *info, bool view, struct err *e)
{
	const char *name = doc_utf8(info, "name", "");
	bson_t meta = BSON_INITIALIZER, indexes;
	bson_error_t be = { 0 };
	int ret = -1;

	append_subdoc(&meta, "options", info, "options");
	bson_append_array_begin(&meta, "indexes", -1, &indexes);
	if (!view) {
		mongoc_collection_t *coll = mongoc_database_get_collection(db, name);
		mongoc_cursor_t *cur = mongoc_collection_find_indexes_with_opts(coll, NULL);
		const bson_t *ix;
		unsigned i = 0;
		while (mongoc_cursor_next(cur, &ix)) {
			/* Copy the spec without "ns", which older servers add and newer reject. */
			bson_t spec;
			char key[16];
			const char *k;
			bson_uint32_to_string(i++, &k, key, sizeof(key));
			bson_append_document_begin(&indexes, k, -1, &spec);
			bson_copy_to_excluding_noinit(ix, &spec, "ns", NULL);
			bson_append_document_end(&indexes, &spec);
		}
		bool failed = mongoc_cursor_error(cur, &be);
		mongoc_cursor_destroy(cur);
		mongoc_collection_destroy(coll);
		if (failed) {
			bson_append_array_end(&meta, &indexes);
			dump_fail(d, e, &be, "cannot list the indexes of '%s.%s'", dbname, name);
			goto out;
		}
	}
	bson_append_array_end(&meta, &indexes);
	append_uuid(&meta, info);
	BSON_APPEND_UTF8(&meta, "collectionName", name);
	BSON_APPEND_UTF8(&meta, "type", view ? "view" : "collection");

	size_t len;
	char *json = bson_as_canonical_extended_json(&meta, &len);
	if (!json) {
		dump_fail(d, e, NULL, "cannot encode the metadata of '%s.%s'", dbname, name);
		goto out;
	}
	char *rel = member_name(dbname, name, ".metadata.json");
	ret = sink_add(d->sink, rel, json, len, e);
	free(rel);
	bson_free(json);
out:
	bson_destroy(&meta);
	return ret;
}

/* "<coll>.bson": every document, back to back, in natural order; the sink cuts the parts. */
static int dump_documents(struct mongo_dump *d, mongoc_database_t *db, const char *dbname,
			  const char *name, struct err *e)
{
	mongoc_collection_t *coll = mongoc_database_get_collection(db, name);
	bson_t filter = BSON_INITIALIZER;
	bson_error_t be = { 0 };
	const bson_t *doc;
	char *rel = member_name(dbname, name, ".bson");
	int ret = -1;

	mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, &filter, NULL, NULL);
	if (sink_begin(d->sink, rel, e) < 0)
		goto out;
	while (mongoc_cursor_next(cur, &doc)) {
		if (sink_write(d->sink, bson_get_data(doc), doc->len, e) < 0)
			goto out;
	}
	if (mongoc_cursor_error(cur, &be)) {
		dump_fail(d, e, &be, "cannot read '%s.%s'", dbname, name);
		goto out;
	}
	ret = sink_end(d->sink, e);
out:
	mongoc_cursor_destroy(cur);
	bson_destroy(&filter);
	mongoc_collection_destroy(coll);
	free(rel);
	return ret;
}

static int dump_database(struct mongo_dump *d, const char *dbname, struct err *e)
{
	mongoc_database_t *db = mongoc_client_get_database(d->client, dbname);
	mongoc_cursor_t *cur = mongoc_database_find_collections_with_opts(db, NULL);
	bson_t **infos = NULL;
	size_t nr = 0, alloc = 0;
	bson_error_t be = { 0 };
	const bson_t *info;
	int ret = -1;

	/* Collect the (small) descriptions first: sorted, the archive is deterministic. */
	while (mongoc_cursor_next(cur, &info)) {
		if (nr == alloc) {
			alloc = alloc ? 2 * alloc : 16;
			infos = xrealloc(infos, alloc * sizeof(*infos));
		}
		infos[nr++] = bson_copy(info);
	}
	if (mongoc_cursor_error(cur, &be)) {
		dump_fail(d, e, &be, "cannot list the collections of '%s'", dbname);
		goto out;
	}
	if (nr)
		qsort(infos, nr, sizeof(*infos), cmp_bson_name);
	for (size_t i = 0; i < nr; i++) {
		const char *name = doc_utf8(infos[i], "name", NULL);
		const char *type = doc_utf8(infos[i], "type", "collection");
		if (!name || !*name) {
			dump_fail(d, e, NULL, "a collection of '%s' has no name", dbname);
			goto out;
		}
		/* The server's own collections (system.views, system.profile, ...), and what
		 * a restore that was killed outright left behind. */
		if (!strncmp(name, "system.", 7) ||
		    !strncmp(name, MONGO_STAGE_PREFIX, strlen(MONGO_STAGE_PREFIX)) ||
		    !strncmp(name, MONGO_OLD_PREFIX, strlen(MONGO_OLD_PREFIX)))
			continue;
		bool view = !strcmp(type, "view");
		if (!view && strcmp(type, "collection")) {
			dump_fail(d, e, NULL, "'%s.%s': collections of type '%s' are not supported",
				  dbname, name, type);
			goto out;
		}
		if (dump_metadata(d, db, dbname, infos[i], view, e) < 0)
			goto out;
		if (!view && dump_documents(d, db, dbname, name, e) < 0)
			goto out;
	}
	ret = 0;
out:
	for (size_t i = 0; i < nr; i++)
		bson_destroy(infos[i]);
	free(infos);
	mongoc_cursor_destroy(cur);
	mongoc_database_destroy(db);
	return ret;
}

static bool system_database(const char *name)
{
	return !strcmp(name, "admin") || !strcmp(name, "local") || !strcmp(name, "config");
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int mongodb_backup(const struct source_backup *src, struct member_sink *sink, struct err *e)
{
	const struct config *cfg = src->cfg;
	const struct source_spec *s = src->spec;
	struct mongo_dump d = { .s = s, .sink = sink };
	mongoc_uri_t *uri = NULL;
	bson_error_t be = { 0 };
	char **names = NULL;
	int ret = -1;

	(void)cfg;
	if (mongo_connect(s->name, s->path, s->uri, &d.client, &uri, e) < 0)
		return -1;
	names = mongoc_client_get_database_names_with_opts(d.client, NULL, &be);
	if (!names) {
		dump_fail(&d, e, &be, "cannot list the databases");
		goto out;
	}
	const char *want = mongoc_uri_get_database(uri);
	if (want && *want) {
		bool found = false;
		for (char **n = names; *n && !found; n++)
			found = !strcmp(*n, want);
		if (!found) {
			dump_fail(&d, e, NULL, "database '%s' does not exist", want);
			goto out;
		}
		ret = dump_database(&d, want, e);
		goto out;
	}
	size_t nr = 0;
	while (names[nr])
		nr++;
	qsort(names, nr, sizeof(*names), cmp_str);
	for (size_t i = 0; i < nr; i++)
		if (!system_database(names[i]) && dump_database(&d, names[i], e) < 0)
			goto out;
	ret = 0;
out:
	if (names)
		bson_strfreev(names);
	mongoc_client_destroy(d.client);
	mongoc_uri_destroy(uri);
	return ret;
}

/* ---- restore --------------------------------------------------------------------------- */

struct mongo_view {
	char *db, *name;
	bson_t *options;
};

/* A collection restored under a staging name, to be renamed over `final` at the end. */
struct mongo_staged {
	char *db, *tmp, *final; /* tmp: NULL once renamed (or kept after a failed rename) */
};

struct mongo_restore {
	const struct source_spec *target;
	const char *name; /* the source's name in the archive */
	mongoc_client_t *client;
	mongoc_uri_t *uri;
	char *target_db; /* the database the target URI names, or NULL */
	char *first_db;	 /* the first database of the archive (with target_db) */
	/* The collection being restored: created (staged), its indexes still to build. */
	char *cur_db, *cur_coll, *cur_final;
	bson_t *cur_indexes; /* an array, NULL when none are pending */
	bool cur_has_data;
	struct mongo_staged *staged;
	size_t nr_staged, alloc_staged;
	unsigned next_stage;
	struct mongo_view *views;
	size_t nr_views, alloc_views;
	unsigned char *buf; /* documents being reassembled, MONGO_MAX_DOC + MONGO_READ_CHUNK */
	int (*record)(void *record_ctx, const struct journal_db *d, struct err *e);
	void *record_ctx;
};

static int restore_fail(struct mongo_restore *m, struct err *e, const bson_error_t *be,
			const char *fmt, ...) LB_PRINTF(4, 5);
static int restore_fail(struct mongo_restore *m, struct err *e, const bson_error_t *be,
			const char *fmt, ...)
{
	va_list ap;
	struct strbuf what = STRBUF_INIT;

	va_start(ap, fmt);
	strbuf_vaddf(&what, fmt, ap);
	va_end(ap);
	mongo_fail(e, m->name, m->target->path, m->target->uri, be, "%s", what.buf);
	strbuf_release(&what);
	return -1;
}

static int mongodb_restore_begin(const struct db_restore_req *req, void **ctx, struct err *e)
{
	struct mongo_restore *m = xcalloc(1, sizeof(*m));

	*ctx = NULL;
	m->target = req->target;
	m->name = req->name;
	m->record = req->record;
	m->record_ctx = req->record_ctx;
	if (mongo_connect(req->name, req->target->path, req->target->uri, &m->client, &m->uri, e) <
	    0) {
		free(m);
		return -1;
	}
	const char *db = mongoc_uri_get_database(m->uri);
	if (db && *db)
		m->target_db = xstrdup(db);
	*ctx = m;
	return 0;
}

/* Which database the archive's directory `db` is restored into. */
static int target_database(struct mongo_restore *m, const char *db, const char **ret, struct err *e)
{
	if (!m->target_db) {
		*ret = db;
		return 0;
	}
	if (!m->first_db)
		m->first_db = xstrdup(db);
	else if (strcmp(m->first_db, db))
		return restore_fail(m, e, NULL,
				    "the backup holds databases '%s' and '%s' but the target "
				    "names the one database '%s'",
				    m->first_db, db, m->target_db);
	*ret = m->target_db;
	return 0;
}

static int drop_collection(struct mongo_restore *m, const char *db, const char *name, struct err *e)
{
	mongoc_collection_t *coll = mongoc_client_get_collection(m->client, db, name);
	bson_error_t be = { 0 };
	bool ok = mongoc_collection_drop_with_opts(coll, NULL, &be);

	mongoc_collection_destroy(coll);
	if (!ok && be.code != MONGO_NS_NOT_FOUND)
		return restore_fail(m, e, &be, "cannot drop '%s.%s'", db, name);
	return 0;
}

/* Build the indexes of the current collection (all but _id's, which comes with it). */
static int flush_indexes(struct mongo_restore *m, struct err *e)
{
	bson_t cmd = BSON_INITIALIZER, arr, reply;
	bson_iter_t it;
	bson_error_t be = { 0 };
	unsigned n = 0;
	int ret = 0;

	if (!m->cur_indexes)
		goto out;
	BSON_APPEND_UTF8(&cmd, "createIndexes", m->cur_coll);
	bson_append_array_begin(&cmd, "indexes", -1, &arr);
	if (bson_iter_init(&it, m->cur_indexes)) {
		while (bson_iter_next(&it)) {
			uint32_t len;
			const uint8_t *data;
			bson_t spec;
			if (!BSON_ITER_HOLDS_DOCUMENT(&it))
				continue;
			bson_iter_document(&it, &len, &data);
			if (!bson_init_static(&spec, data, len))
				continue;
			if (!strcmp(doc_utf8(&spec, "name", ""), "_id_"))
				continue;
			char key[16];
			const char *k;
			bson_uint32_to_string(n++, &k, key, sizeof(key));
			bson_t copy;
			/* As mongorestore: the server picks the index version ("v"). */
			bson_append_document_begin(&arr, k, -1, &copy);
			bson_copy_to_excluding_noinit(&spec, &copy, "ns", "v", NULL);
			bson_append_document_end(&arr, &copy);
		}
	}
	bson_append_array_end(&cmd, &arr);
	if (n) {
		mongoc_database_t *db = mongoc_client_get_database(m->client, m->cur_db);
		bool ok = mongoc_database_write_command_with_opts(db, &cmd, NULL, &reply, &be);
		bson_destroy(&reply);
		mongoc_database_destroy(db);
		if (!ok)
			ret = restore_fail(m, e, &be, "cannot create the indexes of '%s.%s'",
					   m->cur_db, m->cur_final);
	}
out:
	bson_destroy(&cmd);
	if (m->cur_indexes)
		bson_destroy(m->cur_indexes);
	m->cur_indexes = NULL;
	free(m->cur_db);
	free(m->cur_coll);
	free(m->cur_final);
	m->cur_db = m->cur_coll = m->cur_final = NULL;
	m->cur_has_data = false;
	return ret;
}

/* Read a whole small member (metadata). */
static int read_small(struct mongo_restore *m, struct member_reader *r, const char *rel,
		      struct strbuf *sb, struct err *e)
{
	char chunk[16384];
	ssize_t n;

	while ((n = member_read(r, chunk, sizeof(chunk), e)) > 0) {
		if (sb->len + (size_t)n > MONGO_MAX_METADATA)
			return restore_fail(m, e, NULL, "'%s' is too large", rel);
		strbuf_add(sb, chunk, (size_t)n);
	}
	return n < 0 ? -1 : 0;
}

static bson_t *subdoc_copy(const bson_t *doc, const char *key, bool array)
{
	bson_iter_t it;
	uint32_t len;
	const uint8_t *data;

	if (!bson_iter_init_find(&it, doc, key))
		return NULL;
	if (array ? !BSON_ITER_HOLDS_ARRAY(&it) : !BSON_ITER_HOLDS_DOCUMENT(&it))
		return NULL;
	if (array)
		bson_iter_array(&it, &len, &data);
	else
		bson_iter_document(&it, &len, &data);
	return bson_new_from_data(data, len);
}

/*
 * Create the staging collection for `db.final` with `options` (may be NULL) and make it
 * the current one, with `indexes` (taken over, may be NULL) to build after its data.
 */
static int stage_collection(struct mongo_restore *m, const char *db, const char *final,
			    const bson_t *options, bson_t *indexes, struct err *e)
{
	unsigned n = m->next_stage++;
	char *tmp = xasprintf(MONGO_STAGE_PREFIX "%ld-%u", (long)getpid(), n);
	char *old = xasprintf(MONGO_OLD_PREFIX "%ld-%u", (long)getpid(), n);
	bson_error_t be = { 0 };

	mongoc_database_t *d = mongoc_client_get_database(m->client, db);
	bool existed = mongoc_database_has_collection(d, final, &be);
	/* Named in the journal before it exists, so a killed restore's copy is found. */
	struct journal_db jd = { .kind = SOURCE_MONGODB,
				 .source = (char *)m->name,
				 .db = (char *)db,
				 .target = (char *) final,
				 .staged = tmp,
				 .old = old,
				 .existed = existed };
	int rr = m->record ? m->record(m->record_ctx, &jd, e) : 0;
	free(old);
	if (rr < 0 || drop_collection(m, db, tmp, e) < 0) {
		mongoc_database_destroy(d);
		goto fail;
	}
	mongoc_collection_t *c = mongoc_database_create_collection(d, tmp, options, &be);
	mongoc_database_destroy(d);
	if (!c) {
		restore_fail(m, e, &be, "cannot create '%s.%s'", db, final);
		goto fail;
	}
	mongoc_collection_destroy(c);
	if (m->nr_staged == m->alloc_staged) {
		m->alloc_staged = m->alloc_staged ? 2 * m->alloc_staged : 16;
		m->staged = xrealloc(m->staged, m->alloc_staged * sizeof(*m->staged));
	}
	m->staged[m->nr_staged++] = (struct mongo_staged){ .db = xstrdup(db),
							   .tmp = xstrdup(tmp),
							   .final = xstrdup(final) };
	m->cur_db = xstrdup(db);
	m->cur_coll = tmp;
	m->cur_final = xstrdup(final);
	m->cur_indexes = indexes;
	return 0;
fail:
	free(tmp);
	if (indexes)
		bson_destroy(indexes);
	return -1;
}

static int restore_metadata(struct mongo_restore *m, const char *rel, const char *db,
			    const char *coll, struct member_reader *r, struct err *e)
{
	struct strbuf sb = STRBUF_INIT;
	bson_error_t be = { 0 };
	bson_t meta = BSON_INITIALIZER;
	bson_t *options = NULL;
	int ret = -1;

	if (read_small(m, r, rel, &sb, e) < 0)
		goto out;
	bson_destroy(&meta);
	if (!bson_init_from_json(&meta, sb.buf, (ssize_t)sb.len, &be)) {
		bson_init(&meta);
		restore_fail(m, e, &be, "'%s' is not valid metadata", rel);
		goto out;
	}
	options = subdoc_copy(&meta, "options", false);
	if (!options)
		options = bson_new();
	if (!strcmp(doc_utf8(&meta, "type", "collection"), "view")) {
		/* Views go last: what they read from must be restored first. */
		if (m->nr_views == m->alloc_views) {
			m->alloc_views = m->alloc_views ? 2 * m->alloc_views : 8;
			m->views = xrealloc(m->views, m->alloc_views * sizeof(*m->views));
		}
		m->views[m->nr_views++] = (struct mongo_view){ .db = xstrdup(db),
							       .name = xstrdup(coll),
							       .options = TAKE_PTR(options) };
		ret = 0;
		goto out;
	}
	ret = stage_collection(m, db, coll, options, subdoc_copy(&meta, "indexes", true), e);
out:
	if (options)
		bson_destroy(options);
	bson_destroy(&meta);
	strbuf_release(&sb);
	return ret;
}

struct insert_batch {
	bson_t *docs[MONGO_BATCH_DOCS];
	size_t nr, bytes;
	uint64_t total;
};

static int batch_flush(struct mongo_restore *m, mongoc_collection_t *coll, struct insert_batch *b,
		       const char *db, const char *name, struct err *e)
{
	bson_error_t be = { 0 };
	bson_t reply;
	bool ok = true;

	if (b->nr)
		ok = mongoc_collection_insert_many(coll, (const bson_t **)b->docs, b->nr, NULL,
						   &reply, &be);
	if (b->nr)
		bson_destroy(&reply);
	for (size_t i = 0; i < b->nr; i++)
		bson_destroy(b->docs[i]);
	b->total += b->nr;
	b->nr = 0;
	b->bytes = 0;
	if (!ok)
		return restore_fail(m, e, &be, "cannot insert into '%s.%s'", db, name);
	return 0;
}

/* "<coll>.bson": documents back to back, each led by its int32 length; parts already joined. */
static int restore_documents(struct mongo_restore *m, const char *rel, const char *db,
			     const char *name, struct member_reader *r, struct err *e)
{
	const size_t cap = MONGO_MAX_DOC + MONGO_READ_CHUNK;
	struct insert_batch *b = xcalloc(1, sizeof(*b));
	mongoc_collection_t *coll = NULL;
	size_t have = 0;
	uint64_t offset = 0; /* of buf[0] in the member, for messages */
	int ret = -1;

	/* Data without its metadata (or of another collection) gets a plain collection. */
	if (!m->cur_coll || strcmp(m->cur_db, db) || strcmp(m->cur_final, name) ||
	    m->cur_has_data) {
		if (flush_indexes(m, e) < 0 || stage_collection(m, db, name, NULL, NULL, e) < 0)
			goto out;
	}
	m->cur_has_data = true;
	if (!m->buf)
		m->buf = xmalloc(cap);
	coll = mongoc_client_get_collection(m->client, db, m->cur_coll);
	for (;;) {
		ssize_t n = member_read(r, m->buf + have, cap - have, e);
		if (n < 0)
			goto out;
		if (n == 0) {
			if (have) {
				restore_fail(m, e, NULL, "'%s' ends inside a document at byte %llu",
					     rel, (unsigned long long)offset);
				goto out;
			}
			break;
		}
		have += (size_t)n;
		size_t off = 0;
		while (have - off >= 4) {
			const unsigned char *p = m->buf + off;
			uint32_t len = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
				       (uint32_t)p[3] << 24;
			if (len < 5 || len > MONGO_MAX_DOC) {
				restore_fail(m, e, NULL,
					     "'%s': bad document length %u at byte %llu", rel, len,
					     (unsigned long long)(offset + off));
				goto out;
			}
			if (have - off < len)
				break;
			bson_t *doc = bson_new_from_data(p, len);
			if (!doc || !bson_validate(doc, BSON_VALIDATE_NONE, NULL)) {
				if (doc)
					bson_destroy(doc);
				restore_fail(m, e, NULL, "'%s': invalid document at byte %llu", rel,
					     (unsigned long long)(offset + off));
				goto out;
			}
			if (b->nr == MONGO_BATCH_DOCS || b->bytes + len > MONGO_BATCH_BYTES)
				if (batch_flush(m, coll, b, db, name, e) < 0) {
					bson_destroy(doc);
					goto out;
				}
			b->docs[b->nr++] = doc;
			b->bytes += len;
			off += len;
		}
		memmove(m->buf, m->buf + off, have - off);
		have -= off;
		offset += off;
	}
	ret = batch_flush(m, coll, b, db, name, e);
	/* The indexes once the data is in: one build instead of one update per insert. */
	if (!ret)
		ret = flush_indexes(m, e);
out:
	for (size_t i = 0; i < b->nr; i++)
		bson_destroy(b->docs[i]);
	free(b);
	if (coll)
		mongoc_collection_destroy(coll);
	return ret;
}

static bool ends_with(const char *s, size_t len, const char *suffix, size_t *ret_stem)
{
	size_t n = strlen(suffix);

	if (len <= n || memcmp(s + len - n, suffix, n))
		return false;
	*ret_stem = len - n;
	return true;
}

static int mongodb_restore_member(void *ctx, const char *rel, struct member_reader *r,
				  struct err *e)
{
	struct mongo_restore *m = ctx;
	const char *slash = strchr(rel, '/');
	char *dbdir = NULL, *coll = NULL;
	const char *db = NULL;
	size_t stem;
	int ret = -1;

	if (!slash || slash == rel || strchr(slash + 1, '/'))
		return restore_fail(m, e, NULL, "unexpected member '%s'", rel);
	const char *file = slash + 1;
	size_t flen = strlen(file);
	bool meta = ends_with(file, flen, ".metadata.json", &stem);
	if (!meta && !ends_with(file, flen, ".bson", &stem))
		return restore_fail(m, e, NULL, "unexpected member '%s'", rel);
	dbdir = xstrndup(rel, (size_t)(slash - rel));
	coll = unescape_name(file, stem);
	if (!coll) {
		restore_fail(m, e, NULL, "bad collection name in '%s'", rel);
		goto out;
	}
	if (target_database(m, dbdir, &db, e) < 0)
		goto out;
	if (meta) {
		if (flush_indexes(m, e) < 0)
			goto out;
		ret = restore_metadata(m, rel, db, coll, r, e);
	} else {
		ret = restore_documents(m, rel, db, coll, r, e);
	}
out:
	free(dbdir);
	free(coll);
	return ret;
}

/* After a failure: the staging collections go, the originals were not touched. */
static void drop_staged(struct mongo_restore *m)
{
	for (size_t i = 0; i < m->nr_staged; i++) {
		struct err ignored = ERR_INIT;
		if (m->staged[i].tmp)
			drop_collection(m, m->staged[i].db, m->staged[i].tmp, &ignored);
	}
}

static int create_views(struct mongo_restore *m, struct err *e)
{
	for (size_t i = 0; i < m->nr_views; i++) {
		struct mongo_view *v = &m->views[i];
		bson_error_t be = { 0 };
		if (drop_collection(m, v->db, v->name, e) < 0)
			return -1;
		mongoc_database_t *d = mongoc_client_get_database(m->client, v->db);
		mongoc_collection_t *c =
			mongoc_database_create_collection(d, v->name, v->options, &be);
		mongoc_database_destroy(d);
		if (!c)
			return restore_fail(m, e, &be, "cannot create the view '%s.%s'", v->db,
					    v->name);
		mongoc_collection_destroy(c);
	}
	return 0;
}

static int mongodb_restore_end(void *ctx, bool ok, struct err *e)
{
	struct mongo_restore *m = ctx;
	int ret = 0;

	if (!m)
		return 0;
	/* ok: the journal's swap renames the staged collections in (mongodb_swap). */
	if (ok && (flush_indexes(m, e) < 0 || create_views(m, e) < 0))
		ret = -1;
	if (!ok)
		drop_staged(m);
	if (m->cur_indexes)
		bson_destroy(m->cur_indexes);
	free(m->cur_db);
	free(m->cur_coll);
	free(m->cur_final);
	for (size_t i = 0; i < m->nr_staged; i++) {
		free(m->staged[i].db);
		free(m->staged[i].tmp);
		free(m->staged[i].final);
	}
	free(m->staged);
	for (size_t i = 0; i < m->nr_views; i++) {
		free(m->views[i].db);
		free(m->views[i].name);
		bson_destroy(m->views[i].options);
	}
	free(m->views);
	free(m->buf);
	free(m->target_db);
	free(m->first_db);
	mongoc_client_destroy(m->client);
	mongoc_uri_destroy(m->uri);
	free(m);
	return ret;
}

static int has_collection(struct mongo_restore *m, const char *db, const char *name, struct err *e)
{
	mongoc_database_t *d = mongoc_client_get_database(m->client, db);
	bson_error_t be = { 0 };
	bool yes = mongoc_database_has_collection(d, name, &be);

	mongoc_database_destroy(d);
	if (!yes && be.code)
		return restore_fail(m, e, &be, "cannot look for '%s.%s'", db, name);
	return yes;
}

static int rename_collection(struct mongo_restore *m, const char *db, const char *from,
			     const char *to, struct err *e)
{
	mongoc_collection_t *c = mongoc_client_get_collection(m->client, db, from);
	bson_error_t be = { 0 };
	/* fail: as if the server had refused the rename */
	bool ok = !FAULT("mongo.swap") &&
		  mongoc_collection_rename_with_opts(c, db, to, false, NULL, &be);

	mongoc_collection_destroy(c);
	return ok ? 0 : restore_fail(m, e, &be, "cannot rename '%s.%s' to '%s'", db, from, to);
}

/* The same steps as PostgreSQL's (dbsource.h), with collections. */
static int mongodb_swap(const struct config *cfg, const struct source_spec *target,
			const struct journal_db *d, enum db_swap_step step, struct err *e)
{
	struct mongo_restore m = { .target = target, .name = d->source };
	int ret = -1;

	(void)cfg;
	if (!d->db || !d->old)
		return err_set(e, LB_EXIT_SOURCE,
			       "MongoDB source '%s': the journal names no database", d->source);
	if (mongo_connect(d->source, target->path, target->uri, &m.client, &m.uri, e) < 0)
		return -1;
	int has_staged = has_collection(&m, d->db, d->staged, e);
	int has_target = has_staged < 0 ? -1 : has_collection(&m, d->db, d->target, e);
	int has_old = has_target < 0 ? -1 : has_collection(&m, d->db, d->old, e);
	if (has_old < 0)
		goto out;
	switch (step) {
	case DB_SWAP_FORWARD:
		if (!has_staged)
			break; /* renamed in already */
		if (has_target && has_old) {
			restore_fail(&m, e, NULL, "cannot move '%s.%s' aside: '%s' exists already",
				     d->db, d->target, d->old);
			goto out;
		}
		if (has_target && rename_collection(&m, d->db, d->target, d->old, e) < 0)
			goto out;
		if (rename_collection(&m, d->db, d->staged, d->target, e) < 0)
			goto out;
		break;
	case DB_SWAP_FINISH:
		if (has_old && drop_collection(&m, d->db, d->old, e) < 0)
			goto out;
		break;
	case DB_SWAP_BACK:
		if (!has_staged && has_target && (has_old || !d->existed) &&
		    rename_collection(&m, d->db, d->target, d->staged, e) < 0)
			goto out;
		if (has_old && rename_collection(&m, d->db, d->old, d->target, e) < 0)
			goto out;
		if (drop_collection(&m, d->db, d->staged, e) < 0)
			goto out;
		break;
	}
	ret = 0;
out:
	mongoc_client_destroy(m.client);
	mongoc_uri_destroy(m.uri);
	return ret;
}

const struct source_ops mongodb_ops = {
	.backup = mongodb_backup,
	.restore_begin = mongodb_restore_begin,
	.restore_member = mongodb_restore_member,
	.restore_end = mongodb_restore_end,
	.swap = mongodb_swap,
};
