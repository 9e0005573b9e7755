/* lifeboat backup: one run now. */
#include "common.h"

#include "cmd.h"
#include "job.h"
#include "log.h"

extern char **environ;

/*
 * A run refused by the configuration check is a failed run too: reported when the
 * notification settings themselves are valid, whatever else is wrong.
 */
static int refused(const struct err *why)
{
	struct config rep = CONFIG_INIT;
	struct err e = ERR_INIT;
	int rc = 0;

	/* Nobody to tell: nothing is written (no log, no state file), as before. */
	if (config_load_reporting(&rep, environ, &e) < 0 ||
	    (!rep.webhook.failure && !rep.notify.services.nr)) {
		config_release(&rep);
		return cmd_fail(why);
	}
	log_tail_reset();
	log_open_file(rep.log_file);
	rc = cmd_fail(why);
	job_report_refused(&rep, JOB_MANUAL, why);
	config_release(&rep);
	return rc;
}

static int run(int argc, char **argv)
{
	struct config cfg = CONFIG_INIT;
	struct backup_result res = { 0 };
	struct err e = ERR_INIT;
	int rc = 0;

	if (argc > 1) {
		fprintf(stderr, "lifeboat backup: unexpected argument '%s'\n%s", argv[1],
			cmd_backup.usage);
		return LB_EXIT_USAGE;
	}
	if (cmd_load_config_err(&cfg, NEED_STORE | NEED_SOURCES | NEED_KEY, &e) < 0) {
		rc = refused(&e);
		goto out;
	}
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
		 "rules to every store; sends the webhooks and notifications and records the\n"
		 "run for 'status'. A run refused by the configuration check (exit 3, e.g. a\n"
		 "BACKUP_DIRS directory that vanished) is reported as a failed run too, once\n"
		 "BACKUP_NOTIFY_URLS and the webhooks themselves are valid.\n\n"
		 "BACKUP_STOP_SERVICES containers (and those labelled lifeboat.stop=true) are\n"
		 "stopped while the sources are read and started again right after, whatever\n"
		 "happens to the run. BACKUP_PRE_COMMANDS (and lifeboat.pre-backup labels) run\n"
		 "before that, and a failing one fails the run before anything is read;\n"
		 "BACKUP_POST_COMMANDS (lifeboat.post-backup) run with the restart, on every\n"
		 "path. With BACKUP_UPLOAD=after-local the archive goes to the local store\n"
		 "alone, and the finished file is uploaded to the other stores after the\n"
		 "restart.\n\n"
		 "A restore that was killed is first finished or undone (see 'lifeboat restore\n"
		 "--help'); if that fails, the backup exits 4 naming it and archives nothing.\n",
	.run = run,
};
