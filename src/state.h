/* The small state file beside the lock: last runs, counters and the next scheduled time. */
#ifndef LB_STATE_H
#define LB_STATE_H

#include "common.h"

#include <time.h>

#include "config.h"
#include "err.h"

struct run_record {
	char status[16];  /* "success", "failure", or "" when there was none */
	char trigger[16]; /* "scheduled" or "manual" */
	time_t started;
	time_t finished;
	double duration; /* seconds */
	uint64_t size;	 /* archive bytes */
	char file[256];
	char error[512];
};

/* Per store or per source: when it last succeeded, and what it held. */
struct labelled_stat {
	char label[144]; /* a store's name, or a source's key (state_source_key) */
	time_t last_success;
	uint64_t failures; /* stores: runs whose copy in this store failed */
	uint64_t files;	   /* sources: files in the last successful backup */
	uint64_t bytes;	   /* sources: content bytes in the last successful backup */
};
#define STATE_MAX_STORES  8
#define STATE_MAX_SOURCES 64

struct state {
	struct run_record last;		  /* the last run, of either trigger */
	struct run_record last_scheduled; /* the daemon's last run */
	struct run_record last_success;
	uint64_t runs_success;
	uint64_t runs_failure;
	time_t next_run; /* 0: no schedule */
	/* The run holding the lock; the next holder that finds it set knows it was killed. */
	pid_t running_pid;
	time_t running_since;
	char running_trigger[16]; /* "scheduled" or "manual" */
	struct labelled_stat stores[STATE_MAX_STORES];
	size_t nr_stores;
	struct labelled_stat sources[STATE_MAX_SOURCES];
	size_t nr_sources;
	/* Verifications and restore drills (job_verify): the last one, counters, per store. */
	struct run_record last_verify; /* file: the archives checked ("local: F, s3: F") */
	uint64_t verifies_success;
	uint64_t verifies_failure;
	time_t next_verify; /* 0: no BACKUP_VERIFY_SCHEDULE */
	/* last_success: its copy there last passed; failures: drills of its copy that failed */
	struct labelled_stat verify_stores[STATE_MAX_STORES];
	size_t nr_verify_stores;
};

/*
 * A source's key among the per-source figures: its name for a directory or a file
 * (one namespace), "KIND/NAME" for a database ("mysql/wordpress"), so that a
 * directory and a database of one name keep apart.
 */
void state_source_key(const struct source_spec *s, char *buf, size_t len);

/* Find the entry for `label`, adding it if there is room; NULL when full. */
struct labelled_stat *state_label(struct labelled_stat *v, size_t *nr, size_t max,
				  const char *label);

/* Create BACKUP_STATE_DIR (and missing parents); errors name the variable. */
int state_dir_create(const struct config *cfg, struct err *e);

/* STATE_DIR/NAME.state.json; caller frees. */
char *state_path(const struct config *cfg);

/* Read the state; a missing file gives an empty state. */
int state_load(const struct config *cfg, struct state *ret, struct err *e);

/*
 * Read, let `fn` change, and write back atomically, holding a lock on
 * STATE_DIR/NAME.state.lock so that the daemon and manual runs never lose
 * each other's updates.
 */
int state_update(const struct config *cfg, void (*fn)(struct state *st, void *ctx), void *ctx,
		 struct err *e);

/* Healthy, or a one-line reason: the last scheduled run failed, or one is overdue. */
bool state_healthy(const struct config *cfg, const struct state *st, time_t now, char *why,
		   size_t len);

/*
 * state_healthy's verdict for a scheduled configuration, given whether the
 * recorded run (running_pid) is alive: unhealthy when the last scheduled run
 * failed, or when next_run is over 5 minutes past and no run is going on.
 * Times in `why` are in the current TZ. Pure, for tests.
 */
bool state_health_verdict(const struct state *st, bool running, time_t now, char *why, size_t len);

#endif
