/* lifeboat check: validate the configuration and print it with secrets redacted. */
#include "common.h"

#include "cmd.h"

static int run(int argc, char **argv)
{
	struct config cfg = CONFIG_INIT;
	struct strbuf out = STRBUF_INIT;
	int rc;

	(void)argv;
	if (argc > 1) {
		fputs(cmd_check.usage, stderr);
		return LB_EXIT_USAGE;
	}
	rc = cmd_load_config(&cfg, NEED_STORE | NEED_SOURCES | NEED_KEY);
	if (!rc) {
		config_describe(&cfg, &out);
		fputs(out.buf, stdout);
		printf("configuration is valid\n");
	}
	strbuf_release(&out);
	config_release(&cfg);
	return rc;
}

const struct command cmd_check = {
	.name = "check",
	.summary = "validate the configuration and show it (secrets redacted)",
	.usage = "usage: lifeboat check\n\n"
		 "Validates every BACKUP_* variable as 'lifeboat backup' would and prints the\n"
		 "result with secrets redacted. Exits 3 when the configuration is invalid.\n",
	.run = run,
};
