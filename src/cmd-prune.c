/* lifeboat prune: apply the retention rules now (or show what they would delete). */
#include "common.h"

#include "cmd.h"
#include "job.h"
#include "log.h"
#include "recover.h"

static int run(int argc, char **argv)
{
	struct config cfg = CONFIG_INIT;
	struct err e = ERR_INIT;
	bool dry_run = false;
	int lock_fd = -1, rc, n;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--dry-run") || !strcmp(argv[i], "-n")) {
			dry_run = true;
			continue;
		}
		fprintf(stderr, "lifeboat prune: unexpected argument '%s'\n%s", argv[i],
			cmd_prune.usage);
		return LB_EXIT_USAGE;
	}
	rc = cmd_load_config(&cfg, NEED_STORE);
	if (rc)
		goto out;
	if (!retention_enabled(&cfg.retention)) {
		log_info("no retention rule is set (BACKUP_RETENTION_DAYS, BACKUP_KEEP_*): "
			 "nothing to delete");
		goto out;
	}
	if (!dry_run) {
		log_open_file(cfg.log_file);
		/* A killed restore is finished or undone before anything else. */
		if (job_lock(&cfg, &lock_fd, &e) < 0 || recover_pending(&cfg, &e) < 0) {
			job_unlock(&lock_fd);
			rc = cmd_fail(&e);
			goto out;
		}
	}
	n = job_prune(&cfg, dry_run, stdout, &e);
	job_unlock(&lock_fd);
	if (n < 0) {
		rc = cmd_fail(&e);
		goto out;
	}
	log_info("retention: %d archive%s %s", n, n == 1 ? "" : "s",
		 dry_run ? "would be deleted (dry run)" : "deleted");
out:
	config_release(&cfg);
	return rc;
}

const struct command cmd_prune = {
	.name = "prune",
	.summary = "delete archives the retention rules no longer keep",
	.usage = "usage: lifeboat prune [--dry-run]\n\n"
		 "Applies BACKUP_RETENTION_DAYS and BACKUP_KEEP_LAST/DAILY/WEEKLY/MONTHLY to\n"
		 "every store (a backup is kept when any rule keeps it; each store's newest\n"
		 "archive is always kept; only this BACKUP_NAME's archives are considered).\n"
		 "Prints one line per archive deleted. With --dry-run (-n), deletes nothing and\n"
		 "prints what would go. Takes the run lock like 'lifeboat backup', and like it\n"
		 "first finishes or undoes a restore that was killed.\n",
	.run = run,
};
