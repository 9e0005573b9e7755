/* lifeboat version. */
#include "common.h"

#include <archive.h>
#include <jansson.h>
#include <openssl/opensslv.h>

#include "cmd.h"

static int run(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	printf("lifeboat %s (%s, jansson %s, %s)\n", LB_VERSION, archive_version_string(),
	       JANSSON_VERSION, OPENSSL_VERSION_TEXT);
	return 0;
}

const struct command cmd_version = {
	.name = "version",
	.summary = "print the version",
	.usage = "usage: lifeboat version\n",
	.run = run,
};
