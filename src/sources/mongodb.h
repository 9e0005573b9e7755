/* Inside the MongoDB source: what its dump (mongodb-dump.c) and restore (mongodb-restore.c) share. */
#ifndef LB_SOURCES_MONGODB_H
#define LB_SOURCES_MONGODB_H

#include "common.h"

#include <mongoc/mongoc.h>

#include "sources/source.h"
#include "strvec.h"
#include "strbuf.h"

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

/* Record a source error: "MongoDB source 'NAME' ('URI redacted'): WHAT: library message". */
int mongo_fail(struct err *e, const char *name, const char *redacted, const char *secret_uri,
	       const bson_error_t *be, const char *fmt, ...) LB_PRINTF(6, 7);
/* Connect to `secret_uri` and ping the server, so that bad targets fail before any work. */
int mongo_connect(const char *name, const char *redacted, const char *secret_uri,
		  mongoc_client_t **ret_client, mongoc_uri_t **ret_uri, struct err *e);
/* Collection names in file names, escaped as mongodump does (Go's url.QueryEscape). */
void mongo_escape_name(struct strbuf *sb, const char *name);
/* The inverse of mongo_escape_name(); NULL for a malformed or empty name. */
char *mongo_unescape_name(const char *s, size_t len);
/* The string `key` of `doc`, or dflt. */
const char *mongo_doc_utf8(const bson_t *doc, const char *key, const char *dflt);

/* mongodb-dump.c */
int mongodb_backup(const struct source_backup *src, struct member_sink *sink, struct err *e);

/* mongodb-restore.c */
int mongodb_restore_begin(const struct source_restore_req *req, void **ctx, struct err *e);
int mongodb_restore_member(void *ctx, const struct restore_member *member, struct err *e);
int mongodb_restore_end(void *ctx, bool ok, struct err *e);
int mongodb_drill_check(void *ctx, struct strvec *report, struct err *e);
int mongodb_drill_sweep(const struct config *cfg, const struct source_spec *target,
			const char *prefix, struct strvec *dropped, struct err *e);
int mongodb_swap(const struct config *cfg, const struct source_spec *target,
		 const struct journal_db *d, enum db_swap_step step, struct err *e);

#endif
