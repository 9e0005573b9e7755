/* lifeboat backup: one run now. */
#include "common.h"

#include "cmd.h"
#include "job.h"
#include "log.h"

static int run(int argc, char **argv)
{
	struct config cfg = CONFIG_INIT;
	struct backup_result res = { 0 };
	struct err e = ERR_INIT;
	int rc;

	if (argc > 1) {
		fprintf(stderr, "lifeboat backup: unexpected argument '%s'\n%s", argv[1],
			cmd_backup.usage);
		return LB_EXIT_USAGE;
	}
	rc = cmd_load_config(&cfg, NEED_STORE | NEED_SOURCES | NEED_KEY);
	if (rc)
		goto out;
	log_open_file(cfg.log_file);
	/* The job logs the outcome itself (and the cause first). */
	if (job_backup(&cfg, JOB_MANUAL, &res, &e) < 0) {
		rc = (int)e.code;
		/* One store failed, another holds the archive: it exists, say which. */
		if (res.file)
			printf("%s\n", res.id.timestamp);
		goto out;
	}
	printf("%s\n", res.id.timestamp);
out:
	backup_result_release(&res);
	config_release(&cfg);
	return rc;
}

const struct command cmd_backup = {
	.name = "backup",
	.summary = "back up every configured source now",
	.usage = "usage: lifeboat backup\n\n"
		 "Backs up BACKUP_DIRS and BACKUP_FILES into one archive,\n"
		 "BACKUP_NAME-YYYY-MM-DD-HHMMSS.tar.gz.gpg (time in TZ; .tar.zst.gpg or\n"
		 ".tar.gpg with BACKUP_COMPRESSION=zstd or none), streamed to every\n"
		 "store (BACKUP_LOCAL_PATH/BACKUP_NAME/, s3://BACKUP_S3_BUCKET/BACKUP_NAME/,\n"
		 "BACKUP_SFTP_URL's PATH/BACKUP_NAME/),\n"
		 "and prints its timestamp on stdout. A failed run leaves no archive behind;\n"
		 "when one store fails and another succeeds, the archive is kept where it\n"
		 "succeeded, its timestamp is printed and the run exits 5.\n\n"
		 "Waits for a run already in progress (the daemon's or another manual one) up\n"
		 "to BACKUP_LOCK_TIMEOUT, then exits 9. After a success, applies the retention\n"
		 "rules to every store; sends the webhooks and records the run for 'status'.\n\n"
		 "BACKUP_STOP_SERVICES containers (and those labelled lifeboat.stop=true) are\n"
		 "stopped while the sources are read and started again right after, whatever\n"
		 "happens to the run. BACKUP_PRE_COMMANDS (and lifeboat.pre-backup labels) run\n"
		 "before that, and a failing one fails the run before anything is read;\n"
		 "BACKUP_POST_COMMANDS (lifeboat.post-backup) run with the restart, on every\n"
		 "path.\n\n"
		 "A restore that was killed is first finished or undone (see 'lifeboat restore\n"
		 "--help'); if that fails, the backup exits 4 naming it and archives nothing.\n",
	.run = run,
};
