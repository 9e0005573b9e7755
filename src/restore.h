/* Reading an archive back: verify it, preview a restore, or restore it with stage-verify-swap. */
#ifndef LB_RESTORE_H
#define LB_RESTORE_H

#include "common.h"

#include "config.h"
#include "err.h"
#include "stores/store.h"

enum restore_mode {
	RESTORE_VERIFY,	 /* decrypt and check every checksum; touch nothing */
	RESTORE_DRY_RUN, /* print what a restore would change; touch nothing */
	RESTORE_APPLY,	 /* stage next to each target, verify, then swap in */
};

struct restore_opts {
	enum restore_mode mode;
	int countdown; /* seconds of warning before the swap (APPLY) */
	/* APPLY: called after verification and the countdown, before the swap (may be NULL). */
	int (*before_swap)(void *ctx, struct err *e);
	void *ctx;
};

struct restore_stats {
	uint64_t files;
	uint64_t bytes;
	size_t sources;
};

/*
 * Find the archive with this timestamp (or file name) in the first store of
 * `set` that holds it (local before remote); *ret_store is that store.
 */
int restore_find(struct store_set *set, const char *what, struct store_entry *ret,
		 struct store **ret_store, struct err *e);

int restore_run(const struct config *cfg, struct store *store, const struct store_entry *entry,
		const struct restore_opts *opts, struct restore_stats *ret, struct err *e);

#endif
