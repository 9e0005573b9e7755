/* One backup job around backup_run(): lock, webhooks, retention, state file. */
#ifndef LB_JOB_H
#define LB_JOB_H

#include "common.h"

#include "backup.h"
#include "config.h"
#include "err.h"
#include "restore.h"
#include "strvec.h"

enum job_trigger { JOB_MANUAL, JOB_SCHEDULED };

/*
 * Take the run lock (waiting up to cfg->daemon.lock_timeout), send the start
 * webhook, run the backup, prune every store after a success (never after a
 * failure), send the success or failure webhook and record the run in the
 * state file. Webhook and pruning problems are logged, never fatal. Used by
 * both `lifeboat backup` and the daemon.
 */
int job_backup(const struct config *cfg, enum job_trigger trigger, struct backup_result *ret,
	       struct err *e);

/*
 * A run refused before it started (`lifeboat backup` whose configuration check failed,
 * `why`): recorded in the state file as a failed run, and reported like one (the
 * failure webhook, notifications). `cfg` needs only the reporting variables
 * (config_load_reporting).
 */
void job_report_refused(const struct config *cfg, enum job_trigger trigger, const struct err *why);

/*
 * At startup: report a run that was killed outright (its running_pid still in the state
 * file), finish or undo the swap of a killed restore (recover.h), then,
 * if a killed run left containers stopped (services.c's state file), start
 * them again and log it. Skipped while another run holds the lock.
 */
void job_recover_services(const struct config *cfg);

/*
 * Apply the retention rules to every store, each on its own list (so each
 * store keeps its own newest archive). With `dry_run`, only print what would
 * go. Each deletion (or would-be deletion) is printed to `listing` when given.
 * Without `dry_run` the caller holds the run lock, and the temporaries killed
 * runs left are removed first (store_set_sweep_temps).
 * Returns the number of archives deleted, or -1.
 */
int job_prune(const struct config *cfg, bool dry_run, FILE *listing, struct err *e);

struct job_restore_result {
	char *file;    /* the archive read (caller frees), once it was found */
	bool restored; /* restore_run succeeded (a restart may still have failed) */
	struct restore_stats stats;
};

/*
 * Restore, verify, dry-run or extract backup `what` (a timestamp or file name)
 * from the configured stores, or only `from` ("local", "s3"). An APPLY takes
 * the run lock, finishes or undoes a killed restore first, brings back
 * containers a killed run left stopped, and stops the rest of the Compose
 * project after verification (opts->before_swap), starting it again on every
 * path. The other modes touch no data and take no lock.
 */
int job_restore(const struct config *cfg, const char *what, const char *from,
		struct restore_opts *opts, struct job_restore_result *ret, struct err *e);

struct job_verify_opts {
	enum job_trigger trigger;
	const char *what;      /* a timestamp or file name; NULL: each store's own pick */
	const char *from;      /* only this store ("local", "s3", ...), or NULL: every store */
	bool drill;	       /* RESTORE_DRILL: databases restored into scratch databases */
	bool random;	       /* without `what`: one of the `pick_last` newest, else the newest */
	unsigned pick_last;    /* BACKUP_VERIFY_PICK_LAST */
	struct strvec *report; /* the drill's lines (may be NULL) */
};

/*
 * `lifeboat verify --latest [--drill]` and the daemon's BACKUP_VERIFY_SCHEDULE: in
 * every store (or `from`), verify its pick (or `what`) and, for a drill, restore each
 * database dump into scratch databases (restore.h RESTORE_DRILL; the run lock held).
 * The outcome goes to the state file (last_verify, per store), the failure webhook
 * (body "job": "restore drill"; a pass pings no success webhook) and the notifications.
 * The first failure is `e` (exit code of its cause: 7 a damaged archive, 4 a dump that
 * does not restore).
 */
int job_verify(const struct config *cfg, const struct job_verify_opts *o, struct err *e);

/*
 * The run lock: flock() on STATE_DIR/NAME.lock, shared by the daemon and
 * manual runs. The kernel drops a flock when its holder dies, so a lock
 * left by a killed process is free at once.
 */
int job_lock(const struct config *cfg, int *ret_fd, struct err *e);
void job_unlock(int *fd);

#endif
