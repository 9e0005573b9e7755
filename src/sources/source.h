/*
 * Database sources (PostgreSQL, MongoDB): how a dump streams into the archive
 * and how a restore streams it back out.
 *
 * A database source writes members below its archive prefix ("postgres/NAME",
 * "mongodb/NAME") through a member sink owned by the backup pipeline. A member
 * whose size is unknown in advance is streamed: it is cut into parts of
 * DB_PART_SIZE bytes, each a tar member of its own, because a tar header must
 * state the size of its data. A member that fits in one part keeps its name;
 * a longer one becomes REL.000000, REL.000001, ... (concatenated in name order
 * they give the original bytes back). The restore side hides the parts again:
 * a member reader returns the bytes of all parts in order.
 */
#ifndef LB_SOURCES_SOURCE_H
#define LB_SOURCES_SOURCE_H

#include "common.h"

#include "config.h"
#include "err.h"

#define DB_PART_SIZE	   (16u * 1024 * 1024)
#define DB_PART_SUFFIX_LEN 7 /* ".000000" */

/* Backup side: implemented by backup.c. */
struct member_sink;

/* Start a member at PREFIX/rel (rel: relative path, '/' separated, no ".."). */
int sink_begin(struct member_sink *s, const char *rel, struct err *e);
/* Append bytes to the current member. */
int sink_write(struct member_sink *s, const void *buf, size_t len, struct err *e);
/* Finish the current member. */
int sink_end(struct member_sink *s, struct err *e);
/* A whole small member at once. */
int sink_add(struct member_sink *s, const char *rel, const void *buf, size_t len, struct err *e);

/* Restore side: implemented by restore.c. Reads the logical member's bytes. */
struct member_reader;
/* Up to `len` bytes; 0 at the end of the member; -1 with `e` set on error. */
ssize_t member_read(struct member_reader *r, void *buf, size_t len, struct err *e);

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

struct db_ops {
	enum source_kind kind;
	/* Dump everything the source names into the sink. */
	int (*backup)(const struct config *cfg, const struct source_spec *s,
		      struct member_sink *sink, struct err *e);
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

extern const struct db_ops postgres_ops;
extern const struct db_ops mongodb_ops;

/* One row of the kind table (sources/kinds.c), indexed by enum source_kind. */
struct source_kind_desc {
	const char *word;	    /* manifest.json, the journal, messages: "dir" */
	const char *dir;	    /* the archive's directory: "dirs" */
	const char *var;	    /* the variable that configures it: "BACKUP_DIRS" */
	const char *const *schemes; /* databases: URI schemes; NULL for paths */
	const struct db_ops *db;    /* databases: dump and restore */
};
const struct source_kind_desc *source_kind_desc(enum source_kind kind);

/* The ops of a database kind; NULL for files and directories. */
const struct db_ops *db_ops_for(enum source_kind kind);

#endif
