/*
 * The commands of BACKUP_*_COMMANDS and of the lifeboat.* labels: each line split into
 * argv by shell-like quoting, never handed to a shell. Pure, for tests.
 */
#ifndef LB_CMDLINE_H
#define LB_CMDLINE_H

#include "common.h"

#include "strvec.h"

/*
 * Split `len` bytes of `s` into words, appended to `argv`:
 * - spaces, tabs and carriage returns separate words;
 * - '...' keeps everything up to the next ' as it is;
 * - "..." keeps everything up to the next unescaped ", where \\, \" and \$ stand for
 *   \, " and $ (any other backslash stays a backslash);
 * - outside quotes a backslash makes the next byte ordinary;
 * - quoted and unquoted parts next to each other make one word ('' is an empty one);
 * - nothing else is special: no variables, no globbing, no redirection or pipes
 *   ('>' and '|' are ordinary words or bytes).
 * 0, or -EINVAL with *ret_why saying what is wrong (argv then holds what came before).
 */
int cmdline_split(const char *s, size_t len, struct strvec *argv, const char **ret_why);

/* One command: where it runs and its words. */
struct hook_cmd {
	char *where; /* a Compose service or container name; NULL: the sidecar */
	char *text;  /* the command as written (after "SERVICE:"), for logs */
	struct strvec argv;
	unsigned line; /* its line in the variable or label, from 1 */
};

struct hook_list {
	struct hook_cmd *v;
	size_t nr, alloc;
};
#define HOOK_LIST_INIT \
	{              \
		0      \
	}

/*
 * Every line of `value` (newline separated; blank lines and lines starting with '#'
 * skipped) appended to `list`. With `placed`, each line is `SERVICE: command` (run in
 * that service's or container's container) or `: command` (in the sidecar); without, a
 * command alone (a label's, run in the labelled container). 0, or -EINVAL with
 * *ret_line and *ret_why saying which line and what is wrong.
 */
int cmdline_parse_list(const char *value, bool placed, struct hook_list *list, unsigned *ret_line,
		       const char **ret_why);

void hook_list_release(struct hook_list *list);

#endif
