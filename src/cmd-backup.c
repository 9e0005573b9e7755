/* lifeboat backup: one run now. */
#include "common.h"

#include "backup.h"
#include "cmd.h"
#include "log.h"

static int run(int argc, char **argv)
{
	struct config cfg = CONFIG_INIT;
	struct backup_result res = { 0 };
	struct err e = ERR_INIT;
	char size[32];
	int rc;

	if (argc > 1) {
		fprintf(stderr, "lifeboat backup: unexpected argument '%s'\n%s", argv[1],
			cmd_backup.usage);
		return LB_EXIT_USAGE;
	}
	rc = cmd_load_config(&cfg, NEED_STORE | NEED_SOURCES | NEED_KEY);
	if (rc)
		goto out;
	if (backup_run(&cfg, &res, &e) < 0) {
		rc = cmd_fail(&e);
		if (res.file) {
			log_warn("backup '%s' was stored in %s only", res.file, res.kept_in);
			printf("%s\n", res.id.timestamp);
		} else {
			log_error("backup failed; no archive was stored");
		}
		goto out;
	}
	log_info("backup '%s' done: %llu files, %s archive", res.file,
		 (unsigned long long)res.files, format_size(res.archive_bytes, size, sizeof(size)));
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
		 "BACKUP_NAME-YYYY-MM-DD-HHMMSS.tar.gz.gpg (time in TZ), streamed to every\n"
		 "store (BACKUP_LOCAL_PATH/BACKUP_NAME/, s3://BACKUP_S3_BUCKET/BACKUP_NAME/),\n"
		 "and prints its timestamp on stdout. A failed run leaves no archive behind;\n"
		 "when one store fails and another succeeds, the archive is kept where it\n"
		 "succeeded, its timestamp is printed and the run exits 5.\n",
	.run = run,
};
