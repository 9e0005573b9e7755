/*
 * MongoDB restore: each collection staged under a new name, then swapped over
 * the original (the journal names every staged and old collection).
 */
#include "common.h"

#include <mongoc/mongoc.h>

#include "fault.h"
#include "journal.h"
#include "sources/mongodb.h"
#include "strbuf.h"
#include "strvec.h"
#include "stream/tar-reader.h"
#include "xalloc.h"

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

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
	/* A drill: the scratch databases' prefix; the archive's databases and their scratch one. */
	char *drill;
	struct strvec drill_src, drill_dst;
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

int mongodb_restore_begin(const struct source_restore_req *req, void **ctx, struct err *e)
{
	struct mongo_restore *m = xcalloc(1, sizeof(*m));

	*ctx = NULL;
	m->target = req->target;
	m->name = req->name;
	m->record = req->record;
	m->record_ctx = req->record_ctx;
	m->drill = req->drill ? xstrdup(req->drill) : NULL;
	m->drill_src = (struct strvec)STRVEC_INIT;
	m->drill_dst = (struct strvec)STRVEC_INIT;
	if (mongo_connect(req->name, req->target->path, req->target->uri, &m->client, &m->uri, e) <
	    0) {
		free(m->drill);
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
	/* A drill: each database of the archive into a new scratch database of its own. */
	if (m->drill) {
		for (size_t i = 0; i < m->drill_src.nr; i++)
			if (!strcmp(m->drill_src.v[i], db)) {
				*ret = m->drill_dst.v[i];
				return 0;
			}
		unsigned char rnd[4];
		if (getentropy(rnd, sizeof(rnd)) < 0)
			memset(rnd, 0, sizeof(rnd));
		strvec_push(&m->drill_src, db);
		strvec_pushf(&m->drill_dst, "%s%02x%02x%02x%02x", m->drill, rnd[0], rnd[1], rnd[2],
			     rnd[3]);
		*ret = m->drill_dst.v[m->drill_dst.nr - 1];
		return 0;
	}
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
			if (!strcmp(mongo_doc_utf8(&spec, "name", ""), "_id_"))
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
	/* A drill's scratch database is new: its collections get their own names. */
	char *tmp = m->drill ? xstrdup(final)
			     : xasprintf(MONGO_STAGE_PREFIX "%ld-%u", (long)getpid(), n);
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
	int rr = m->record && !m->drill ? m->record(m->record_ctx, &jd, e) : 0;
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
	ALLOC_GROW(m->staged, m->nr_staged + 1, m->alloc_staged);
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
	if (!strcmp(mongo_doc_utf8(&meta, "type", "collection"), "view")) {
		/* Views go last: what they read from must be restored first. */
		ALLOC_GROW(m->views, m->nr_views + 1, m->alloc_views);
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

int mongodb_restore_member(void *ctx, const struct restore_member *member, struct err *e)
{
	const char *rel = member->rel;
	struct member_reader *r = member->reader;
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
	coll = mongo_unescape_name(file, stem);
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
	/* A drill: the scratch databases, whole. */
	for (size_t i = 0; i < m->drill_dst.nr; i++) {
		mongoc_database_t *d = mongoc_client_get_database(m->client, m->drill_dst.v[i]);
		bson_error_t be = { 0 };
		mongoc_database_drop(d, &be);
		mongoc_database_destroy(d);
	}
	if (m->drill)
		return;
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

int mongodb_restore_end(void *ctx, bool ok, struct err *e)
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
	free(m->drill);
	strvec_release(&m->drill_src);
	strvec_release(&m->drill_dst);
	mongoc_client_destroy(m->client);
	mongoc_uri_destroy(m->uri);
	free(m);
	return ret;
}

/* One scratch database: a document count per collection. */
static int count_documents(struct mongo_restore *m, const char *src, const char *db,
			   struct strvec *report, struct err *e)
{
	mongoc_database_t *d = mongoc_client_get_database(m->client, db);
	bson_error_t be = { 0 };
	char **names = mongoc_database_get_collection_names_with_opts(d, NULL, &be);
	struct strbuf line = STRBUF_INIT, colls = STRBUF_INIT;
	unsigned long long total = 0;
	size_t n = 0;
	int ret = -1;

	if (!names) {
		restore_fail(m, e, &be, "drill: cannot list the collections of '%s'", db);
		goto out;
	}
	for (; names[n]; n++)
		;
	qsort(names, n, sizeof(*names), cmp_names);
	for (size_t i = 0; i < n; i++) {
		mongoc_collection_t *c = mongoc_database_get_collection(d, names[i]);
		bson_t filter = BSON_INITIALIZER;
		int64_t count =
			mongoc_collection_count_documents(c, &filter, NULL, NULL, NULL, &be);
		bson_destroy(&filter);
		mongoc_collection_destroy(c);
		if (count < 0) {
			restore_fail(m, e, &be, "drill: cannot count the documents of '%s.%s'", src,
				     names[i]);
			goto out;
		}
		total += (unsigned long long)count;
		strbuf_addf(&colls, "%s%s %lld", i ? ", " : "", names[i], (long long)count);
	}
	strbuf_addf(&line, "MongoDB '%s' database '%s': %zu collections, %llu documents", m->name,
		    src, n, total);
	if (n)
		strbuf_addf(&line, " (%s)", colls.buf);
	strvec_push(report, line.buf);
	ret = 0;
out:
	bson_strfreev(names);
	mongoc_database_destroy(d);
	strbuf_release(&line);
	strbuf_release(&colls);
	return ret;
}

int mongodb_drill_check(void *ctx, struct strvec *report, struct err *e)
{
	struct mongo_restore *m = ctx;

	if (flush_indexes(m, e) < 0 || create_views(m, e) < 0)
		return -1;
	for (size_t i = 0; i < m->drill_dst.nr; i++)
		if (count_documents(m, m->drill_src.v[i], m->drill_dst.v[i], report, e) < 0)
			return -1;
	return 0;
}

int mongodb_drill_sweep(const struct config *cfg, const struct source_spec *target,
			const char *prefix, struct strvec *dropped, struct err *e)
{
	struct mongo_restore m = { .target = target, .name = target->name };
	bson_error_t be = { 0 };
	char **names = NULL;
	int ret = -1;

	(void)cfg;
	if (mongo_connect(target->name, target->path, target->uri, &m.client, &m.uri, e) < 0)
		return -1;
	names = mongoc_client_get_database_names_with_opts(m.client, NULL, &be);
	if (!names) {
		restore_fail(&m, e, &be, "cannot list the databases");
		goto out;
	}
	for (size_t i = 0; names[i]; i++) {
		if (strncmp(names[i], prefix, strlen(prefix)))
			continue;
		mongoc_database_t *d = mongoc_client_get_database(m.client, names[i]);
		bool ok = mongoc_database_drop(d, &be);
		mongoc_database_destroy(d);
		if (!ok) {
			restore_fail(&m, e, &be, "cannot drop the leftover drill database '%s'",
				     names[i]);
			goto out;
		}
		strvec_push(dropped, names[i]);
	}
	ret = 0;
out:
	bson_strfreev(names);
	mongoc_client_destroy(m.client);
	mongoc_uri_destroy(m.uri);
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
int mongodb_swap(const struct config *cfg, const struct source_spec *target,
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
