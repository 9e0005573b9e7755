/* The end of the backup stream: the same bytes to every store, each committed on its own. */
#ifndef LB_STREAM_FANOUT_H
#define LB_STREAM_FANOUT_H

#include "common.h"

#include "err.h"
#include "stores/store.h"

struct fanout_dest {
	struct store *store;
	struct store_put put;
	bool open;   /* put_begin succeeded and neither commit nor abort ran */
	bool failed; /* skipped from then on; `err` says why */
	struct err err;
	char fault[32]; /* its fault point in fanout_write: "fanout.write.KIND" */
};

struct fanout {
	struct fanout_dest *v;
	size_t nr;
	/*
	 * Optional: a sidecar (the archive's signature) that fanout_commit writes in each
	 * store right after the archive; where it fails, that store's archive is deleted
	 * again and the store counts as failed.
	 */
	const char *sidecar;
	const void *sidecar_buf;
	size_t sidecar_len;
	/*
	 * Optional: the stores that already hold the archive ("local", when the others get
	 * the finished file after it): named first in fanout_commit's *ret_kept and in its
	 * failure messages, so a fanout whose stores all fail still reports per store.
	 */
	const char *kept_before;
};

/*
 * Start `file` in every store of `set` (borrowed; it must outlive the fanout).
 * A store that cannot start is only marked failed; fails when none started.
 * Returns STORE_TAKEN, with nothing left started, when a store says another run
 * is writing an archive of that timestamp: the caller chooses a later one.
 */
int fanout_begin(struct fanout *f, struct store_set *set, const char *file, struct err *e);

/*
 * Write to every store still healthy. A store that fails is marked and skipped;
 * fails only when none is left (with the first failed store's error). Called
 * by one thread at a time.
 */
int fanout_write(struct fanout *f, const void *buf, size_t len, struct err *e);

/*
 * Commit every healthy store, then abort the failed ones. Sets *ret_kept to
 * the kinds committed ("local, s3") and *ret_bytes to the archive's size.
 * Returns 0 when every store committed; -1 when none did (first store error),
 * or when some failed: then the archive is kept where it committed and `e`
 * says "the s3 copy failed (kept in local): ...", with *ret_kept set.
 */
int fanout_commit(struct fanout *f, char **ret_kept, uint64_t *ret_bytes, struct err *e);

/* The first failed store's error (or "no destination left"); always -1. */
int fanout_error(const struct fanout *f, struct err *e);

/* Abort every store still open and free the fanout. */
void fanout_release(struct fanout *f);

#endif
