/* Subcommands: one file each, registered in main.c's table. */
#ifndef LB_CMD_H
#define LB_CMD_H

#include "common.h"

#include "config.h"
#include "err.h"

struct command {
	const char *name;
	const char *summary;
	const char *usage; /* full help text */
	/* Returns an exit code; loads config itself through cmd_load_config(). */
	int (*run)(int argc, char **argv);
};

extern const struct command cmd_backup, cmd_list, cmd_restore, cmd_verify, cmd_check, cmd_version;
/* Looking inside a backup (issue 12). */
extern const struct command cmd_ls;
/* The daemon (issue 6). */
extern const struct command cmd_run, cmd_status, cmd_prune;

/* Load and validate the environment for a command; logs warnings. Exit code or 0. */
int cmd_load_config(struct config *cfg, unsigned need);

/* The same, leaving the error (in `e`, not logged) to the caller: 0 or -1. */
int cmd_load_config_err(struct config *cfg, unsigned need, struct err *e);
/*
 * `--key-file FILE` (restore, verify, ls): the private side for this run, an OpenPGP private
 * key or an age identity (the archive's kind decides), replacing BACKUP_GPG_PRIVATE_KEY_FILE
 * and BACKUP_AGE_IDENTITY_FILE. Exit code or 0.
 */
int cmd_key_file(struct config *cfg, const char *path, const char *cmd);

/* Log the error and return its exit code. */
int cmd_fail(const struct err *e);

/* Parse "--help" and the given long options; returns 0, 1 for --help shown, or -1. */
bool cmd_wants_help(int argc, char **argv, const struct command *c);

#endif
