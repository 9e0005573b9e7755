/*
 * Sources: one interface for every kind (files, directories, SQLite files,
 * PostgreSQL, MongoDB), and the kind table that names each kind's facts.
 *
 * Backup: ops->backup writes the source into a member sink rooted at its
 * archive directory (KIND-DIR/NAME; stream/member-sink.h). Restore of a
 * database: restore_begin, restore_member for each logical member (parts
 * already joined, through a member reader), restore_end, then swap. Files and
 * directories are restored by restore.c's staging and recover.c's swap.
 */
#ifndef LB_SOURCES_SOURCE_H
#define LB_SOURCES_SOURCE_H

#include "common.h"

#include "config.h"
#include "err.h"

/* Backup side: the member sink (stream/member-sink.h). */
struct member_sink;

/* What a backup of one source is given. */
struct source_backup {
	const struct config *cfg;
	const struct source_spec *spec;
	bool sqlite; /* files: an SQLite database (decided once, as the manifest records) */
};

/* Restore side: the member reader (stream/tar-reader.h) joins a member's parts. */
struct member_reader;

struct journal_db;

/* What a restore of a database source is asked to do. */
struct db_restore_req {
	const struct config *cfg;
	const struct source_spec *target; /* from the current configuration */
	const char *name;		  /* the source's name in the archive */
	/*
	 * Before the module creates a staging object, it names it (and where the
	 * object it replaces will wait) here: the restore's journal records it
	 * durably, so a restore killed at any point can find it (see journal.h).
	 */
	int (*record)(void *record_ctx, const struct journal_db *d, struct err *e);
	void *record_ctx;
};

/* The steps of a database swap, as the journal drives them (see recover.h). */
enum db_swap_step {
	DB_SWAP_FORWARD, /* staged object into the target's place; the old one kept aside */
	DB_SWAP_FINISH,	 /* after every target swapped: drop the old object */
	DB_SWAP_BACK,	 /* the old object back in place; the staged one dropped */
};

struct source_ops {
	/* Everything the source names into the sink. */
	int (*backup)(const struct source_backup *src, struct member_sink *sink, struct err *e);
	/* Before the first member: connect, check the target. *ctx is the module's. */
	int (*restore_begin)(const struct db_restore_req *req, void **ctx, struct err *e);
	/* One logical member (parts already joined), in archive order. */
	int (*restore_member)(void *ctx, const char *rel, struct member_reader *r, struct err *e);
	/*
	 * After the last member (ok): finish staging, keeping every staged object
	 * for `swap`; on failure (!ok): drop the staged objects. Frees ctx.
	 * Also called after a failed restore_begin, with whatever it left in *ctx.
	 */
	int (*restore_end)(void *ctx, bool ok, struct err *e);
	/*
	 * One step of the swap of a recorded object, on the server `target`
	 * names. Each step looks at which of target, staged and old exist, so it
	 * completes whatever a killed process left half done; the restore runs its
	 * own swap with it too (after restore_end(ok) kept the staged objects).
	 */
	int (*swap)(const struct config *cfg, const struct source_spec *target,
		    const struct journal_db *d, enum db_swap_step step, struct err *e);
};

extern const struct source_ops files_ops;
extern const struct source_ops dirs_ops;
extern const struct source_ops postgres_ops;
extern const struct source_ops mongodb_ops;

/* One row of the kind table (sources/kinds.c), indexed by enum source_kind. */
struct source_kind_desc {
	const char *word;	    /* manifest.json, the journal, messages: "dir" */
	const char *dir;	    /* the archive's directory: "dirs" */
	const char *var;	    /* the variable that configures it: "BACKUP_DIRS" */
	const char *const *schemes; /* databases: URI schemes; NULL for paths */
	const struct source_ops *ops;
};
const struct source_kind_desc *source_kind_desc(enum source_kind kind);

/* The ops of a kind. */
const struct source_ops *source_ops_for(enum source_kind kind);

#endif
