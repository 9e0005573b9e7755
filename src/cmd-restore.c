/* lifeboat restore TIMESTAMP [--yes] [--dry-run] and lifeboat verify TIMESTAMP. */
#include "common.h"

#include "cmd.h"
#include "job.h"
#include "log.h"
#include "parse.h"
#include "stores/store.h"
#include "restore.h"
#include "stores/store.h"
#include "strbuf.h"
#include "strvec.h"
#include "xalloc.h"

#define RESTORE_COUNTDOWN 10

/* --only NAME[,NAME...]: append each name (repeating --only adds more). */
static int parse_only(const char *list, struct strvec *only)
{
	const char *p = list;

	do {
		size_t n = strcspn(p, ",");
		char *name = xstrndup(p, n);
		if (!config_name_valid(name)) {
			fprintf(stderr,
				"lifeboat restore: --only '%s': '%s' is not a source name (names "
				"as in BACKUP_DIRS, BACKUP_FILES or a database's, comma "
				"separated)\n",
				list, name);
			free(name);
			return -1;
		}
		strvec_push(only, name);
		free(name);
		p += n;
	} while (*p++ == ',');
	return 0;
}

/* --dry-run's report: each change a restore would make, or that it would make none. */
static void print_preview(const struct restore_preview *p, const char *file)
{
	for (size_t i = 0; i < p->nr; i++)
		printf("%-8s %s\n", p->v[i].what, p->v[i].path);
	if (!p->nr)
		printf("no changes: the data already equals backup '%s'\n", file);
}

/* verify --latest and/or --drill: every store's pick (or `what`), recorded and reported. */
static int run_latest(const char *what, const char *from, const char *key_file, bool drill)
{
	struct config cfg = CONFIG_INIT;
	struct err e = ERR_INIT;
	struct job_verify_opts o = {
		.trigger = JOB_MANUAL, .what = what, .from = from, .drill = drill
	};
	int rc = cmd_load_config(&cfg, NEED_STORE);

	if (!rc && key_file)
		rc = cmd_key_file(&cfg, key_file, "verify");
	if (rc)
		goto out;
	if (job_verify(&cfg, &o, &e) < 0)
		rc = cmd_fail(&e);
	else
		printf("%s passed%s\n", drill ? "restore drill" : "verification",
		       from ? "" : " in every store");
out:
	config_release(&cfg);
	return rc;
}

static int run_mode(int argc, char **argv, const struct command *c, bool is_restore)
{
	struct restore_opts opts = { .mode = is_restore ? RESTORE_APPLY : RESTORE_VERIFY,
				     .countdown = RESTORE_COUNTDOWN };
	struct config cfg = CONFIG_INIT;
	struct err e = ERR_INIT;
	const char *what = NULL, *from = NULL, *key_file = NULL;
	struct job_restore_result res = { 0 };
	struct restore_preview preview = { 0 };
	struct strvec only = STRVEC_INIT;
	bool dry_run = false, latest = false, drill = false;
	char size[32];
	int rc;

	for (int i = 1; i < argc; i++) {
		if (is_restore && (!strcmp(argv[i], "--yes") || !strcmp(argv[i], "-y"))) {
			opts.countdown = 0;
		} else if (!is_restore && !strcmp(argv[i], "--latest")) {
			latest = true;
		} else if (!is_restore && !strcmp(argv[i], "--drill")) {
			drill = true;
		} else if (is_restore && !strcmp(argv[i], "--dry-run")) {
			dry_run = true;
		} else if (is_restore &&
			   (!strcmp(argv[i], "--only") || !strncmp(argv[i], "--only=", 7))) {
			const char *list = argv[i][6] == '=' ? argv[i] + 7
					   : i + 1 < argc    ? argv[++i]
							     : "";
			if (parse_only(list, &only) < 0) {
				strvec_release(&only);
				return LB_EXIT_USAGE;
			}
			opts.only = &only;
		} else if (is_restore &&
			   (!strcmp(argv[i], "--to") || !strncmp(argv[i], "--to=", 5))) {
			opts.to = argv[i][4] == '=' ? argv[i] + 5 : i + 1 < argc ? argv[++i] : "";
			if (!*opts.to) {
				fprintf(stderr, "lifeboat restore: --to takes a directory\n%s",
					c->usage);
				strvec_release(&only);
				return LB_EXIT_USAGE;
			}
		} else if (!strcmp(argv[i], "--from") || !strncmp(argv[i], "--from=", 7)) {
			from = argv[i][6] == '=' ? argv[i] + 7 : i + 1 < argc ? argv[++i] : "";
			if (!store_kind_find(from)) {
				struct strbuf names = STRBUF_INIT;
				store_kinds_list(&names, false, " or ");
				fprintf(stderr, "lifeboat %s: --from takes %s\n%s", c->name,
					names.buf, c->usage);
				strbuf_release(&names);
				strvec_release(&only);
				return LB_EXIT_USAGE;
			}
		} else if (!strcmp(argv[i], "--key-file") || !strncmp(argv[i], "--key-file=", 11)) {
			key_file = argv[i][10] == '=' ? argv[i] + 11
				   : i + 1 < argc     ? argv[++i]
						      : "";
			if (!*key_file) {
				fprintf(stderr, "lifeboat %s: --key-file takes a file\n%s", c->name,
					c->usage);
				strvec_release(&only);
				return LB_EXIT_USAGE;
			}
		} else if (argv[i][0] == '-' || what) {
			fprintf(stderr, "lifeboat %s: unexpected argument '%s'\n%s", c->name,
				argv[i], c->usage);
			strvec_release(&only);
			return LB_EXIT_USAGE;
		} else {
			what = argv[i];
		}
	}
	if (!is_restore && (latest || drill)) {
		if (latest == !!what) {
			fprintf(stderr, "lifeboat verify: give a TIMESTAMP or --latest, not %s\n%s",
				what ? "both" : "neither", c->usage);
			return LB_EXIT_USAGE;
		}
		return run_latest(what, from, key_file, drill);
	}
	if (!what || (dry_run && opts.to)) {
		fprintf(stderr,
			!what ? "lifeboat %s: which backup? give its TIMESTAMP\n%s"
			      : "lifeboat %s: --dry-run previews a restore in place; --to changes "
				"nothing but its directory: give one of them\n%s",
			c->name, c->usage);
		strvec_release(&only);
		return LB_EXIT_USAGE;
	}
	if (opts.to)
		opts.mode = RESTORE_EXTRACT;
	else if (dry_run)
		opts.mode = RESTORE_DRY_RUN;
	opts.preview = &preview;
	rc = cmd_load_config(&cfg, NEED_STORE | NEED_VERIFY_KEYS);
	if (!rc && key_file)
		rc = cmd_key_file(&cfg, key_file, c->name);
	if (rc)
		goto out;
	int r = job_restore(&cfg, what, from, &opts, &res, &e);
	const struct restore_stats *stats = &res.stats;
	if (r < 0) {
		rc = cmd_fail(&e);
		if (opts.mode == RESTORE_APPLY && !res.restored && rc != LB_EXIT_NOT_FOUND &&
		    rc != LB_EXIT_USAGE)
			log_error("restore failed; the existing data was left as it was");
		goto out;
	}
	format_size(stats->bytes, size, sizeof(size));
	if (opts.mode == RESTORE_VERIFY)
		printf("backup %s is intact: %llu files, %s verified\n", res.file,
		       (unsigned long long)stats->files, size);
	else if (opts.mode == RESTORE_APPLY)
		log_info("restore of '%s' done: %zu sources, %llu files, %s", res.file,
			 stats->sources, (unsigned long long)stats->files, size);
	else if (opts.mode == RESTORE_EXTRACT)
		log_info("extracted %zu sources of '%s' to '%s'", stats->sources, res.file,
			 opts.to);
	else if (opts.mode == RESTORE_DRY_RUN)
		print_preview(&preview, res.file);
out:
	restore_preview_release(&preview);
	strvec_release(&only);
	free(res.file);
	config_release(&cfg);
	return rc;
}

static int run_restore(int argc, char **argv)
{
	return run_mode(argc, argv, &cmd_restore, true);
}

static int run_verify(int argc, char **argv)
{
	return run_mode(argc, argv, &cmd_verify, false);
}

const struct command cmd_restore = {
	.name = "restore",
	.summary = "restore a backup over the configured paths, or extract it",
	.usage = "usage: lifeboat restore TIMESTAMP [--only NAME[,NAME...]] [--yes] [--dry-run]\n"
		 "                        [--from STORE] [--key-file FILE]\n"
		 "       lifeboat restore TIMESTAMP --to DIR [--only NAME[,NAME...]] [--from "
		 "STORE]\n\n"
		 "Decrypts backup TIMESTAMP (YYYY-MM-DD-HHMMSS, see 'lifeboat list'), extracts\n"
		 "each source next to its target, checks every checksum, and only then\n"
		 "replaces the target's content: a directory ends up equal to the backup\n"
		 "(files created since are removed). A failed restore changes nothing.\n\n"
		 "Sources are restored to the paths configured now under the same name. A\n"
		 "source of the backup that is not configured now is skipped with a warning:\n"
		 "an archive never chooses where a restore writes (extract it with --to).\n\n"
		 "The swap is recorded first in BACKUP_STATE_DIR/NAME.restore.json: if the\n"
		 "restore is killed (SIGKILL, power loss), the next 'run', 'backup', 'restore'\n"
		 "or 'prune' finishes it when every staged copy was complete, else undoes it,\n"
		 "so every target is wholly old or wholly new.\n\n"
		 "With the Docker socket mounted and the sidecar in a Compose project, the\n"
		 "project's other running containers are stopped for the swap (after the\n"
		 "checks) and started again afterwards, on every path.\n"
		 "BACKUP_PRE_RESTORE_COMMANDS (and lifeboat.pre-restore labels) run after the\n"
		 "checks, before the stop: a failing one fails the restore with nothing\n"
		 "replaced; BACKUP_POST_RESTORE_COMMANDS (lifeboat.post-restore) run after the\n"
		 "restart, on every path.\n\n"
		 "The local copy is used when there is one, else the S3 copy, else the SFTP\n"
		 "copy (streamed, never downloaded to disk first).\n\n"
		 "  --only NAMES  restore only these sources (comma separated, or --only again):\n"
		 "                directories, files or databases by their name; the whole\n"
		 "                backup is still verified. A name the backup lacks exits 8;\n"
		 "                one not configured now exits 3 (extract it with --to)\n"
		 "  --to DIR      extract the sources (all of the backup's, or --only's) under\n"
		 "                DIR/<dirs|files|postgres|mongodb|mysql>/NAME/ instead: after\n"
		 "                full verification, nothing swapped, no container stopped.\n"
		 "                DIR must be empty or new (else exit 2). Database dumps come\n"
		 "                out as the"
		 " files pg_restore, mongorestore and mariadb read (parts\n"
		 "                joined)\n"
		 "  --yes         skip the 10 second warning\n"
		 "  --dry-run     print what would be created, updated or removed; change nothing\n"
		 "  --from STORE  read the backup from this store only: local, s3, sftp, webdav\n"
		 "                or rclone\n"
		 "  --key-file F  the private side for this run: an OpenPGP private key (for\n"
		 "                .gpg archives encrypted to public keys) or an age identity\n"
		 "                (.age archives); replaces BACKUP_GPG_PRIVATE_KEY_FILE and\n"
		 "                BACKUP_AGE_IDENTITY_FILE\n",
	.run = run_restore,
};

const struct command cmd_verify = {
	.name = "verify",
	.summary = "check that a backup decrypts and every checksum matches",
	.usage = "usage: lifeboat verify TIMESTAMP [--from STORE] [--key-file FILE]\n"
		 "       lifeboat verify --latest|TIMESTAMP --drill [--from STORE] [--key-file "
		 "FILE]\n"
		 "       lifeboat verify --latest [--from STORE] [--key-file FILE]\n\n"
		 "Decrypts backup TIMESTAMP and checks the SHA-256 of every entry against the\n"
		 "archive's SHA256SUMS, without touching any data. Exits 0 when it is intact.\n"
		 "--from reads it from one store only (local, s3, sftp, webdav or rclone);\n"
		 "--key-file gives the OpenPGP private key or age identity that opens it (as for\n"
		 "restore).\n\n"
		 "  --latest  verify the newest archive of each store (each its own copy)\n"
		 "  --drill   a restore drill: also restore every PostgreSQL, MongoDB and MySQL\n"
		 "            dump into a scratch database lifeboat_drill_* on its own server,\n"
		 "            count its rows or documents, and drop it; the live databases are\n"
		 "            never touched. Takes the run lock.\n"
		 "With --latest or --drill the outcome is recorded (status, /metrics) and sent to\n"
		 "BACKUP_NOTIFY_URLS, a failure also to BACKUP_FAILURE_WEBHOOK. Exits 7\n"
		 "for a damaged archive, 4 when a dump does not restore, 8 when a store holds no\n"
		 "backup.\n",
	.run = run_verify,
};
