/* lifeboat check: validate the configuration and print it with secrets redacted. */
#include "common.h"

#include "cmd.h"
#include "hooks.h"
#include "strbuf.h"

static int run(int argc, char **argv)
{
	struct config cfg = CONFIG_INIT;
	struct strbuf out = STRBUF_INIT;
	int rc;

	if (argc == 2 && !strcmp(argv[1], "--variables")) {
		config_variables_markdown(&out);
		fputs(out.buf, stdout);
		strbuf_release(&out);
		return 0;
	}
	if (argc > 1) {
		fputs(cmd_check.usage, stderr);
		return LB_EXIT_USAGE;
	}
	rc = cmd_load_config(&cfg, NEED_STORE | NEED_SOURCES | NEED_KEY | NEED_VERIFY_KEYS);
	if (!rc) {
		config_describe(&cfg, &out);
		hooks_describe_labels(&cfg, &out);
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
	.usage = "usage: lifeboat check [--variables]\n\n"
		 "Validates every BACKUP_* variable as 'lifeboat backup' would and prints the\n"
		 "result with secrets redacted, and what the containers' lifeboat.* labels\n"
		 "select when the Docker engine answers. Exits 3 when the configuration is\n"
		 "invalid.\n"
		 "--variables prints every variable Lifeboat reads as a Markdown table\n"
		 "(README.md's) and exits.\n",
	.run = run,
};
