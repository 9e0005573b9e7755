/* One backup run: sources -> tar (libarchive) -> gzip/zstd -> gpg -> every store, as one stream. */
#ifndef LB_BACKUP_H
#define LB_BACKUP_H

#include "common.h"

#include "config.h"
#include "err.h"
#include "naming.h"

struct backup_result {
	struct backup_id id;
	char *file;
	uint64_t archive_bytes;
	uint64_t files;
	uint64_t content_bytes;
	char *kept_in; /* "local, s3": stores holding the archive */
	/* Per configured source (same order as cfg->sources): what it contributed. */
	uint64_t *source_files;
	uint64_t *source_bytes;
	size_t nr_sources;
};

/*
 * Called around the reading of the sources (services.c stops containers):
 * before_sources after the stores have begun and before the first source is
 * read (a failure fails the run); after_sources right after the last source
 * is in the archive, before the archive's end is written and uploaded.
 */
struct backup_hooks {
	int (*before_sources)(void *ctx, struct err *e);
	void (*after_sources)(void *ctx);
	void *ctx;
};

/* backup_run() with hooks (may be NULL). */
int backup_run_hooks(const struct config *cfg, const struct backup_hooks *hooks,
		     struct backup_result *ret, struct err *e);

/*
 * Back up to every store. When some stores fail but others committed the
 * archive, it returns -1 (LB_EXIT_STORE naming the failed store) with
 * ret->file and ret->kept_in set: that archive exists and is listed. The
 * caller holds the run lock: the temporaries earlier runs left are removed
 * first, and this run's are recorded (store_set_sweep_temps).
 */
int backup_run(const struct config *cfg, struct backup_result *ret, struct err *e);
void backup_result_release(struct backup_result *r);

#endif
