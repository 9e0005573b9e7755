/* Inside the restore module: one read pass's state, shared by restore.c and its modes' files. */
#ifndef LB_RESTORE_JOB_H
#define LB_RESTORE_JOB_H

#include "common.h"

#include <archive.h>

#include "hash.h"
#include "journal.h"
#include "manifest.h"
#include "restore.h"
#include "sources/source.h"
#include "strbuf.h"
#include "stream/tar-reader.h"
#include "strvec.h"

struct rsource {
	enum source_kind kind;
	char *name;
	char *target;
	char *prefix; /* KIND-DIR/NAME */
	bool sqlite;
	const struct source_kind_desc *desc; /* the kind table's row */
	const struct source_spec *cfgsrc;    /* the configured target, or NULL */
	void *ctx;			     /* APPLY: the kind's restore state */
	bool begun;
	struct strvec seen; /* DRY_RUN: relative paths present in the archive */
};

struct rjob {
	const struct config *cfg;
	const struct restore_opts *opts;
	struct store *store;
	const struct store_entry *entry;
	const char *file;
	struct manifest m;
	/*
	 * src[0, nr_src) are the sources this run restores; src[nr_src, nr_all) are
	 * in the archive too but only verified (not selected, or not configured now).
	 */
	struct rsource *src;
	size_t nr_src, nr_all;
	struct archive *in;
	struct archive *disk;	  /* EXTRACT: the disk writer */
	ssize_t disk_src;	  /* EXTRACT: the source of the entry it writes */
	struct rsource *open_src; /* APPLY: the source of the last member staged */
	/*
	 * APPLY: the journal, written as soon as a database module stages an
	 * object during the pass (jr_set: initialised), and a header a database
	 * member's reader read past its last part, for the pass to handle next.
	 */
	struct journal jr;
	bool jr_set;
	bool applied; /* apply() ran: it finished or undid the swap itself */
	struct archive_entry *pending;
	bool archive_eof;
	int cwd_fd;
	struct strbuf recorded; /* SHA256SUMS from the archive */
	struct strbuf computed;
	bool sums_seen;
	struct restore_stats stats;
	struct restore_preview preview; /* DRY_RUN: opts->preview's once the archive verified */
	struct part_tracker parts;	/* LIST, EXTRACT: a database member cut in parts */
	/* EXTRACT: opts->to (absolute), its staging directory, the member being written. */
	char *xto;
	char *xstage;
	char *xname; /* the database file being written, below xstage and xto */
	int xto_fd, xstage_fd, xfd;
	bool xto_made;
	struct owner_loss xowners; /* not root: extracted entries whose owner cannot be set */
};

/* restore-select.c: the sources of the manifest into src[], those restored first. */
int select_sources(struct rjob *j, struct err *e);

/* restore-extract.c: ls (LIST) and --to (EXTRACT). */
void list_entry(struct rjob *j, struct rsource *s, const char *rel, const char *path,
		struct archive_entry *ent);
void list_sources(struct rjob *j);
int extract_prepare(struct rjob *j, struct err *e);
int extract_make_source_dir(struct rjob *j, struct rsource *s, struct err *e);
int extract_header(struct rjob *j, struct rsource *s, const char *path, struct archive_entry *ent,
		   struct err *e);
int extract_db_member(struct rjob *j, struct rsource *s, const char *rel, struct err *e);
int extract_write(struct rjob *j, const char *apath, const void *buf, size_t n, struct err *e);
int extract_commit(struct rjob *j, struct err *e);
void extract_release(struct rjob *j, bool ok);

/* restore-preview.c: --dry-run. */
void preview_entry(struct rjob *j, struct rsource *s, const char *rel, struct archive_entry *ent,
		   const char *hex);
void preview_finish(struct rjob *j);

#endif
