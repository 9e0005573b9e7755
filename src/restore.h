/* Reading an archive back: verify it, preview a restore, or restore it with stage-verify-swap. */
#ifndef LB_RESTORE_H
#define LB_RESTORE_H

#include "common.h"

#include <time.h>

#include "config.h"
#include "err.h"
#include "manifest.h"
#include "stores/store.h"
#include "strvec.h"

enum restore_mode {
	RESTORE_VERIFY,	 /* decrypt and check every checksum; touch nothing */
	RESTORE_DRY_RUN, /* say what a restore would change (opts->preview); touch nothing */
	RESTORE_APPLY,	 /* stage next to each target, verify, then swap in */
	RESTORE_EXTRACT, /* verify, then move the selected sources under opts->to: no swap */
	RESTORE_LIST,	 /* verify, and hand every entry back in opts->listing (lifeboat ls) */
	/*
	 * VERIFY, then restore each database source (configured now, of a kind with
	 * drill_check) into scratch databases on its server, count what they hold
	 * (opts->drill_report) and drop them: a restore drill. Live data untouched.
	 */
	RESTORE_DRILL,
};

/* One entry of a backup, as `lifeboat ls` shows it. */
struct restore_item {
	char *path;    /* KIND/NAME[/REL] as in the archive; a database's parts joined */
	size_t source; /* index into restore_listing.sources */
	mode_t mode;   /* type and permission bits */
	uint64_t size; /* regular files */
	int64_t uid, gid;
	struct timespec mtime;
	char *link; /* symlinks: the target */
};

struct restore_listing {
	struct manifest_source *sources; /* copies of the manifest's sources */
	size_t nr_sources;
	struct restore_item *v;
	size_t nr, alloc;
};
void restore_listing_release(struct restore_listing *l);

/* DRY_RUN: one change a restore would make, in the order found. */
struct restore_change {
	const char *what; /* "create", "replace", "update", "metadata", "remove", "restore" */
	char *path;	  /* what it changes (a database: its target, and how) */
};

struct restore_preview {
	struct restore_change *v;
	size_t nr, alloc;
};
void restore_preview_release(struct restore_preview *p);

struct restore_opts {
	enum restore_mode mode;
	int countdown; /* seconds of warning before the swap (APPLY) */
	/* APPLY: called after verification and the countdown, before the swap (may be NULL). */
	int (*before_swap)(void *ctx, struct err *e);
	void *ctx;
	/*
	 * Which sources, by name (NULL: APPLY and DRY_RUN take the sources configured
	 * now, EXTRACT every source of the backup). Every name must be in the backup
	 * (else LB_EXIT_NOT_FOUND); APPLY and DRY_RUN also need it configured now
	 * (else LB_EXIT_CONFIG). All checked before anything changes.
	 */
	const struct strvec *only;
	const char *to;			 /* EXTRACT: an empty or new directory */
	struct restore_listing *listing; /* LIST: filled after verification */
	struct restore_preview *preview; /* DRY_RUN: filled after verification */
	struct strvec *drill_report;	 /* DRILL: one line per database restored (may be NULL) */
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

/* The prefix of this BACKUP_NAME's scratch databases: "lifeboat_drill_<8 hex>_". */
void restore_drill_prefix(const struct config *cfg, char buf[32]);

/* mkdir -p for a target's parents; 0 or -errno. */
int mkdir_parents(const char *path, mode_t mode);

int restore_run(const struct config *cfg, struct store *store, const struct store_entry *entry,
		const struct restore_opts *opts, struct restore_stats *ret, struct err *e);

#endif
