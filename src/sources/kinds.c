/*
 * The table of source kinds: every fact about a kind that is not its code
 * (its word in manifest.json, its directory in an archive, the variable it is
 * configured by, its URI schemes) in one row, with its ops.
 */
#include "common.h"

#include <archive_entry.h>

#include "sources/source.h"
#include "xalloc.h"

static const char *const postgres_schemes[] = { "postgresql", "postgres", NULL };
static const char *const mongodb_schemes[] = { "mongodb", "mongodb+srv", NULL };
static const char *const redis_schemes[] = { "redis", "rediss", NULL };

/* Indexed by enum source_kind. */
static const struct source_kind_desc kinds[] = {
	[SOURCE_DIR] = { .word = "dir",
			 .dir = "dirs",
			 .var = "BACKUP_DIRS",
			 .display = "directory",
			 .tree = true,
			 .replaces = "/ (whole directory)",
			 .into = "to",
			 .ops = &dirs_ops,
			 .vars = &dirs_vars },
	[SOURCE_FILE] = { .word = "file",
			  .dir = "files",
			  .var = "BACKUP_FILES",
			  .display = "file",
			  .replaces = "",
			  .into = "to",
			  .ops = &files_ops,
			  .vars = &files_vars },
	[SOURCE_POSTGRES] = { .word = "postgres",
			      .dir = "postgres",
			      .var = "BACKUP_POSTGRES",
			      .display = "PostgreSQL",
			      .schemes = postgres_schemes,
			      .host_in_query = true,
			      .replaces = " (the objects in the backup)",
			      .into = "into",
			      .ops = &postgres_ops,
			      .vars = &postgres_vars },
	[SOURCE_MONGODB] = { .word = "mongodb",
			     .dir = "mongodb",
			     .var = "BACKUP_MONGODB",
			     .display = "MongoDB",
			     .schemes = mongodb_schemes,
			     .replaces = " (the objects in the backup)",
			     .into = "into",
			     .ops = &mongodb_ops,
			     .vars = &mongodb_vars },
	[SOURCE_REDIS] = { .word = "redis",
			   .dir = "redis",
			   .var = "BACKUP_REDIS",
			   .display = "Redis",
			   .schemes = redis_schemes,
			   .name_from_host = true,
			   .replaces = " (the whole server: every database)",
			   .into = "into",
			   .ops = &redis_ops,
			   .vars = &redis_vars },
};

const struct source_kind_desc *source_kind_desc(enum source_kind kind)
{
	return (size_t)kind < ARRAY_SIZE(kinds) ? &kinds[kind] : NULL;
}

const char *source_kind_str(enum source_kind kind)
{
	return kinds[kind].word;
}

int source_kind_parse(const char *s, enum source_kind *ret)
{
	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++) {
		if (!strcmp(s, kinds[i].word)) {
			*ret = (enum source_kind)i;
			return 0;
		}
	}
	return -1;
}

char *source_archive_prefix(enum source_kind kind, const char *name)
{
	return xasprintf("%s/%s", kinds[kind].dir, name);
}

const char *source_var(enum source_kind kind)
{
	const struct source_kind_desc *d = source_kind_desc(kind);
	return d ? d->var : "?";
}

bool source_is_db(enum source_kind kind)
{
	const struct source_kind_desc *d = source_kind_desc(kind);
	return d && d->schemes;
}

const char *const *source_uri_schemes(enum source_kind kind)
{
	return kinds[kind].schemes;
}

const char *source_display_name(enum source_kind kind)
{
	return kinds[kind].display;
}

bool source_uri_host_in_query(enum source_kind kind)
{
	return kinds[kind].host_in_query;
}

bool source_name_from_host(enum source_kind kind)
{
	return kinds[kind].name_from_host;
}

bool source_uses_docker(const struct config *cfg, enum source_kind kind)
{
	return kinds[kind].ops->uses_docker && kinds[kind].ops->uses_docker(cfg);
}

char *source_member_target(const struct source_kind_desc *d, const char *target, const char *rel)
{
	return d->tree && *rel ? xasprintf("%s/%s", target, rel) : xstrdup(target);
}

const struct source_ops *source_ops_for(enum source_kind kind)
{
	return kinds[kind].ops;
}

int source_check_streamed(const char *path, const char *rel, struct archive_entry *ent,
			  const char *name, struct err *e)
{
	if (archive_entry_filetype(ent) != AE_IFREG || !*rel)
		return err_set(e, LB_EXIT_INTEGRITY,
			       "unexpected entry '%s' for database source '%s'", path, name);
	return 0;
}
