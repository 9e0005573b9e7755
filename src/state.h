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

struct state {
	struct run_record last;		  /* the last run, of either trigger */
	struct run_record last_scheduled; /* the daemon's last run */
	struct run_record last_success;
	uint64_t runs_success;
	uint64_t runs_failure;
	time_t next_run; /* 0: no schedule */
	pid_t running_pid;
	time_t running_since;
};

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

#endif
