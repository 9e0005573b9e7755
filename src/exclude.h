/*
 * BACKUP_EXCLUDE: glob patterns over paths relative to a BACKUP_DIRS directory.
 * A pure module (no file system): parsed once by the configuration, asked by the
 * walker (what not to read), the restore (what to leave on disk) and the dry-run.
 *
 * The rules (README.md, "Excluding paths"):
 *   - entries are separated by commas or newlines; spaces around them are dropped;
 *     `\,` is a comma inside a pattern;
 *   - `NAME:PATTERN` applies to the BACKUP_DIRS source NAME only (a prefix of name
 *     characters before the first `:`); otherwise a pattern applies to every one;
 *   - a trailing `/` matches directories only;
 *   - a pattern with no other `/` matches the entry's name at any depth (`*.tmp`,
 *     `cache/`); one with a `/` is anchored at the directory's root (`a/cache`,
 *     `/cache`: a leading `/` only anchors);
 *   - `*` matches any run of characters but `/`, `?` one, `[abc]` `[a-z]` `[!a]`
 *     one of a set; `\x` is x literally; `**` as a whole component matches zero or
 *     more components (examples in README.md);
 *   - `*`, `?` and sets also match a leading `.`;
 *   - an excluded directory is left out with everything below it.
 * Refused: an empty pattern, `!` at the start (negation is not supported), empty,
 * `.` or `..` components, `**` beside other characters, an unclosed `[`, a trailing `\`.
 */
#ifndef LB_EXCLUDE_H
#define LB_EXCLUDE_H

#include "common.h"

#include "err.h"

struct exclude_rule {
	char *text;   /* the entry as given (with its scope), for messages */
	char *source; /* the BACKUP_DIRS name it is scoped to, or NULL: every one */
	char **comp;  /* the pattern's components, `**` kept as is */
	size_t nr;
	bool dir_only; /* a trailing `/` */
};

struct exclude_list {
	struct exclude_rule *v;
	size_t nr;
};

/*
 * Parse `value` (the syntax only) into `l`, appending. `var` names the variable
 * in messages. 0, or -1 with `e` set (LB_EXIT_CONFIG).
 */
int exclude_parse(struct exclude_list *l, const char *var, const char *value, struct err *e);

/* Does a rule of `l` that applies to source `source` match entry `rel` ("a/b/c") itself? */
bool exclude_match(const struct exclude_list *l, const char *source, const char *rel, bool is_dir);

/* Is `rel` excluded, itself or by one of its parent directories? */
bool exclude_covers(const struct exclude_list *l, const char *source, const char *rel, bool is_dir);

/* Does any rule apply to `source`? */
bool exclude_any(const struct exclude_list *l, const char *source);

void exclude_release(struct exclude_list *l);

#endif
