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
#ifndef LB_DBSOURCE_H
#define LB_DBSOURCE_H

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

/* What a restore of a database source is asked to do. */
struct db_restore_req {
	const struct config *cfg;
	const struct source_spec *target; /* from the current configuration */
	const char *name;		  /* the source's name in the archive */
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
	 * After the last member (ok) or on failure (!ok): finish or undo; frees ctx.
	 * Also called after a failed restore_begin, with whatever it left in *ctx.
	 */
	int (*restore_end)(void *ctx, bool ok, struct err *e);
};

extern const struct db_ops postgres_ops;
extern const struct db_ops mongodb_ops;

/* The ops of a database kind; NULL for files and directories. */
const struct db_ops *db_ops_for(enum source_kind kind);

#endif
