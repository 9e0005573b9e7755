/*
 * Which archive a restore reads, and which of its sources it restores where:
 * --only, the sources configured now, the unconfigured ones reported.
 */
#include "common.h"

#include <sys/stat.h>

#include "log.h"
#include "restore-job.h"
#include "strbuf.h"
#include "strvec.h"
#include "xalloc.h"

int restore_find(struct store_set *set, const char *what, struct store_entry *ret,
		 struct store **ret_store, struct err *e)
{
	struct err list_err = ERR_INIT;

	if (!naming_timestamp_valid(what, NULL) || strlen(what) < TIMESTAMP_LEN)
		return err_set(
			e, LB_EXIT_USAGE,
			"'%s' is not a backup timestamp: expected YYYY-MM-DD-HHMMSS as shown by "
			"'lifeboat list'",
			what);
	/* Store by store, in order: a local copy is found even when S3 is unreachable. */
	for (size_t k = 0; k < set->nr; k++) {
		struct store_list l = { 0 };
		if (set->v[k]->ops->list(set->v[k], &l, &list_err) < 0) {
			store_list_release(&l);
			continue;
		}
		for (size_t i = 0; i < l.nr; i++) {
			if ((strlen(what) != TIMESTAMP_LEN || strcmp(l.v[i].id.timestamp, what)) &&
			    strcmp(l.v[i].file, what))
				continue;
			*ret_store = set->v[k];
			ret->file = xstrdup(l.v[i].file);
			ret->id = l.v[i].id;
			ret->size = l.v[i].size;
			ret->where = 1u << k;
			store_list_release(&l);
			return 0;
		}
		store_list_release(&l);
	}
	if (err_isset(&list_err))
		return err_copy(e, &list_err);
	return err_set(e, LB_EXIT_NOT_FOUND, "no backup '%s' of '%s' (see 'lifeboat list')", what,
		       set->nr ? set->v[0]->cfg->name : "?");
}

/* mkdir -p for a target's parents; 0 or -errno. */
int mkdir_parents(const char *path, mode_t mode)
{
	char *p = xstrdup(path);
	int r = 0;

	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, mode) < 0 && errno != EEXIST)
			r = -errno;
		*s = '/';
		if (r)
			break;
	}
	free(p);
	return r;
}

/* APPLY and DRY_RUN put sources back where they are configured now. */
static bool in_place(const struct rjob *j)
{
	return j->opts->mode == RESTORE_APPLY || j->opts->mode == RESTORE_DRY_RUN;
}

static bool only_has(const struct strvec *only, const char *name)
{
	for (size_t i = 0; i < only->nr; i++)
		if (!strcmp(only->v[i], name))
			return true;
	return false;
}

/* Is this source of the backup restored by this run? Never an unconfigured one in place. */
static bool source_selected(const struct rjob *j, const struct manifest_source *ms,
			    const struct source_spec *cs)
{
	if (j->opts->mode == RESTORE_VERIFY || j->opts->mode == RESTORE_LIST ||
	    j->opts->mode == RESTORE_DRILL)
		return true;
	if (in_place(j) && !cs)
		return false;
	return j->opts->only ? only_has(j->opts->only, ms->name) : true;
}

/* Every --only name is a source of the backup, and configured now to be restored in place. */
static int check_only(const struct rjob *j, struct err *e)
{
	const struct strvec *only = j->opts->only;

	for (size_t k = 0; only && k < only->nr; k++) {
		bool found = false;
		for (size_t i = 0; i < j->m.nr_sources; i++) {
			const struct manifest_source *ms = &j->m.sources[i];
			if (strcmp(ms->name, only->v[k]))
				continue;
			found = true;
			if (in_place(j) && !config_find_source(j->cfg, ms->kind, ms->name))
				return err_set(e, LB_EXIT_CONFIG,
					       "--only '%s': the backup's %s source '%s' (from "
					       "'%s') is not configured now: add it to %s to "
					       "restore it in place, or extract it with --to DIR",
					       only->v[k], source_kind_str(ms->kind), ms->name,
					       ms->path, source_var(ms->kind));
		}
		if (found)
			continue;
		struct strbuf names = STRBUF_INIT;
		for (size_t i = 0; i < j->m.nr_sources && i < 20; i++)
			strbuf_addf(&names, "%s'%s'", i ? ", " : "", j->m.sources[i].name);
		if (j->m.nr_sources > 20)
			strbuf_addstr(&names, ", ...");
		err_set(e, LB_EXIT_NOT_FOUND,
			"--only '%s': backup '%s' has no source of that name%s%s%s", only->v[k],
			j->file, j->m.nr_sources ? " (it has " : "", names.buf,
			j->m.nr_sources ? ")" : "");
		strbuf_release(&names);
		return -1;
	}
	return 0;
}

/* A source of the backup that is not configured now is never restored in place. */
static void report_unconfigured(const struct rjob *j, const struct manifest_source *ms)
{
	log_warn("the backup's %s source '%s' (from '%s') is not configured now: skipped (to get "
		 "it back: lifeboat restore %s --only %s --to DIR)",
		 source_kind_str(ms->kind), ms->name, ms->path, j->entry->id.timestamp, ms->name);
	if (j->opts->mode == RESTORE_DRY_RUN)
		printf("%-8s %s '%s' (from '%s'): not configured now, not restored\n", "skip",
		       source_kind_str(ms->kind), ms->name, ms->path);
}

static void rsource_init(struct rsource *s, const struct manifest_source *ms, char *target)
{
	s->kind = ms->kind;
	s->name = xstrdup(ms->name);
	s->target = target;
	s->prefix = source_archive_prefix(ms->kind, ms->name);
	s->sqlite = ms->sqlite;
	s->desc = source_kind_desc(ms->kind);
	s->seen = (struct strvec)STRVEC_INIT;
}

int select_sources(struct rjob *j, struct err *e)
{
	if (check_only(j, e) < 0)
		return -1;
	j->src = xcalloc(j->m.nr_sources ? j->m.nr_sources : 1, sizeof(*j->src));
	/* The sources this run restores first, then those it only verifies. */
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < j->m.nr_sources; i++) {
			const struct manifest_source *ms = &j->m.sources[i];
			const struct source_spec *cs =
				config_find_source(j->cfg, ms->kind, ms->name);
			bool sel = source_selected(j, ms, cs);
			if (sel != (pass == 0))
				continue;
			struct rsource *s = &j->src[j->nr_all++];
			char *prefix = source_archive_prefix(ms->kind, ms->name);
			rsource_init(s, ms,
				     j->opts->mode == RESTORE_EXTRACT
					     ? xasprintf("%s/%s", j->xto, prefix)
					     : xstrdup(cs ? cs->path : ms->path));
			free(prefix);
			s->cfgsrc = cs;
			if (!sel) {
				if (in_place(j) && !cs)
					report_unconfigured(j, ms);
				continue;
			}
			j->nr_src++;
			/* Sources configured by a path (not a URI) may have moved. */
			if (!in_place(j) || s->desc->schemes)
				continue;
			if (strcmp(cs->path, ms->path))
				log_info("%s '%s' was backed up from '%s'; restoring to '%s' as "
					 "configured now",
					 source_kind_str(s->kind), s->name, ms->path, cs->path);
		}
	}
	if (in_place(j) && !j->nr_src && j->nr_all)
		return err_set(
			e, LB_EXIT_CONFIG,
			"none of the sources of backup '%s' is configured now: nothing to "
			"restore (configure them under the same names, or extract the backup "
			"with --to DIR)",
			j->file);
	return 0;
}
