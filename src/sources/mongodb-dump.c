/* MongoDB dump: every database and collection into the sink, as mongodump lays them out. */
#include "common.h"

#include <mongoc/mongoc.h>

#include "sources/mongodb.h"
#include "strbuf.h"
#include "stream/member-sink.h"
#include "xalloc.h"

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
	mongo_escape_name(&sb, coll);
	strbuf_addstr(&sb, suffix);
	return strbuf_detach(&sb, NULL);
}

/* "<coll>.metadata.json": options, indexes, uuid, name and type, in canonical Extended JSON. */
static int dump_metadata(struct mongo_dump *d, mongoc_database_t *db, const char *dbname,
			 const bson_t *info, bool view, struct err *e)
{
	const char *name = mongo_doc_utf8(info, "name", "");
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
		const char *name = mongo_doc_utf8(infos[i], "name", NULL);
		const char *type = mongo_doc_utf8(infos[i], "type", "collection");
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

int mongodb_backup(const struct source_backup *src, struct member_sink *sink, struct err *e)
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
