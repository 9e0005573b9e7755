/* lifeboat: command table, shared config loading, exit codes. */
#include "common.h"

#include <locale.h>
#include <time.h>

#include "cmd.h"
#include "log.h"
#include "signals.h"
#include "xalloc.h"

extern char **environ;

static const struct command *const commands[] = {
	&cmd_backup, &cmd_list,	   &cmd_ls,  &cmd_restore, &cmd_verify,
	&cmd_check,  &cmd_version, &cmd_run, &cmd_status,  &cmd_prune,
};

static void usage(FILE *out)
{
	fprintf(out, "usage: lifeboat <command> [options]\n\n"
		     "Backs up directories and files into one encrypted archive per run and\n"
		     "restores them. Configuration comes from BACKUP_* environment variables.\n\n"
		     "commands:\n");
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		fprintf(out, "  %-9s %s\n", commands[i]->name, commands[i]->summary);
	fprintf(out, "\nRun 'lifeboat <command> --help' for a command's options.\n"
		     "Exit codes: 0 ok, 1 internal error, 2 usage, 3 configuration, 4 source,\n"
		     "5 store, 6 encryption key or gpg, 7 damaged archive, 8 backup not found,\n"
		     "9 another run held the lock too long, 130 interrupted.\n"
		     "'lifeboat status' exits 1 when unhealthy.\n");
}

int cmd_fail(const struct err *e)
{
	if (e->code == LB_OK)
		return 0;
	log_error("%s", e->msg[0] ? e->msg : "failed");
	return (int)e->code;
}

bool cmd_wants_help(int argc, char **argv, const struct command *c)
{
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--"))
			break;
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			fputs(c->usage, stdout);
			return true;
		}
	}
	return false;
}

int cmd_load_config_err(struct config *cfg, unsigned need, struct err *e)
{
	if (config_load(cfg, environ, e) < 0) {
		for (size_t i = 0; i < cfg->warnings.nr; i++)
			log_warn("%s", cfg->warnings.v[i]);
		return -1;
	}
	log_set_debug(cfg->debug);
	tzset();
	for (size_t i = 0; i < cfg->warnings.nr; i++)
		log_warn("%s", cfg->warnings.v[i]);
	return config_require(cfg, need, e);
}

int cmd_load_config(struct config *cfg, unsigned need)
{
	struct err e = ERR_INIT;

	return cmd_load_config_err(cfg, need, &e) < 0 ? cmd_fail(&e) : 0;
}

int cmd_key_file(struct config *cfg, const char *path, const char *cmd)
{
	/* Absolute now: a restore changes directory before a second pass reads it again. */
	char *abs = realpath(path, NULL);

	if (!abs) {
		fprintf(stderr, "lifeboat %s: --key-file '%s': %s\n", cmd, path, strerror(errno));
		return LB_EXIT_CONFIG;
	}
	free(cfg->crypt.gpg_private_file);
	free(cfg->crypt.age_identity_file);
	cfg->crypt.gpg_private_file = abs;
	cfg->crypt.age_identity_file = xstrdup(abs);
	cfg->crypt.key_file_arg = true;
	return 0;
}

int main(int argc, char **argv)
{
	signals_install();
	/*
	 * lifeboat-sched starts a scheduled run with SIGINT and SIGTERM blocked, so one it
	 * passes on before the handlers exist is not lost: taken here, by the handler.
	 */
	signals_defer(false);
	/*
	 * libarchive converts file names between the locale and the UTF-8 of pax
	 * headers; containers usually run in the "C" locale, where any non-ASCII
	 * name would fail. Names are bytes to us: use the UTF-8 identity.
	 */
	if (!setlocale(LC_CTYPE, "C.UTF-8"))
		setlocale(LC_CTYPE, "");
	if (argc < 2) {
		usage(stderr);
		return LB_EXIT_USAGE;
	}
	const char *name = argv[1];
	if (!strcmp(name, "--help") || !strcmp(name, "-h") || !strcmp(name, "help")) {
		if (argc > 2)
			for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
				if (!strcmp(argv[2], commands[i]->name)) {
					fputs(commands[i]->usage, stdout);
					return 0;
				}
		usage(stdout);
		return 0;
	}
	if (!strcmp(name, "--version"))
		name = "version";
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++) {
		if (strcmp(name, commands[i]->name))
			continue;
		if (cmd_wants_help(argc - 1, argv + 1, commands[i]))
			return 0;
		return commands[i]->run(argc - 1, argv + 1);
	}
	fprintf(stderr, "lifeboat: unknown command '%s'\n\n", name);
	usage(stderr);
	return LB_EXIT_USAGE;
}
