/* The archive's manifest.json (what a run contained) and SHA256SUMS (what each file hashed to). */
#ifndef LB_MANIFEST_H
#define LB_MANIFEST_H

#include "common.h"

#include "config.h"
#include "err.h"
#include "hash.h"
#include "strbuf.h"

#define MANIFEST_PATH		"manifest.json"
#define SUMS_PATH		"SHA256SUMS"
#define MANIFEST_FORMAT_VERSION 1

struct manifest_source {
	enum source_kind kind;
	char *name;
	char *path;
	bool sqlite;	      /* a file source holding an SQLite database ("format": "sqlite") */
	char *server_version; /* a database server's version ("server_version"), or NULL */
};

struct manifest {
	int format_version;
	char *lifeboat_version;
	char *name;
	char *timestamp;
	char *created; /* ISO 8601 with offset */
	char *host;
	char *compression; /* "gzip" */
	char *encryption;  /* "gpg" or "none" */
	struct manifest_source *sources;
	size_t nr_sources;
};
#define MANIFEST_INIT                                     \
	{                                                 \
		.format_version = MANIFEST_FORMAT_VERSION \
	}

void manifest_add_source(struct manifest *m, enum source_kind kind, const char *name,
			 const char *path);
void manifest_to_json(const struct manifest *m, struct strbuf *out);
/* Parse; LB_EXIT_INTEGRITY on malformed input or an unsupported format version. */
int manifest_from_json(const char *buf, size_t len, struct manifest *m, struct err *e);
void manifest_release(struct manifest *m);

/* Append one GNU sha256sum line for `path` (escaped as coreutils does). */
void sums_add(struct strbuf *sums, const char hex[SHA256_HEX_LEN + 1], const char *path);

/*
 * Compare the sums recorded in the archive with those computed while reading
 * it. Both list files in archive order, so they must be equal line for line.
 * On a difference returns -1 and describes the first one in `detail`.
 */
int sums_compare(const struct strbuf *recorded, const struct strbuf *computed,
		 struct strbuf *detail);

#endif
