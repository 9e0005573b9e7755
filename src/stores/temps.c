/*
 * The record of hidden temporaries, STATE_DIR/NAME.temporaries: one "KIND NAME" line per
 * temporary a store is making or failed to remove. A run killed between its upload and
 * the rename leaves its line; the next run of this state directory (holding the run lock,
 * so that run is over) removes exactly what the lines name, and nothing else: not a
 * temporary of a run in progress, not one of another sidecar sharing the remote.
 */
#include "common.h"

#include <pthread.h>

#include "fs.h"
#include "log.h"
#include "stores/store.h"
#include "strbuf.h"
#include "xalloc.h"

#define TEMPS_MAX (1u << 20) /* the record is a few lines; a larger one is not ours */

/* The put_* of one run may come from several threads' stores: one writer at a time. */
static pthread_mutex_t temps_lock = PTHREAD_MUTEX_INITIALIZER;

static char *temps_path(const struct config *cfg)
{
	return xasprintf("%s/%s.temporaries", cfg->state_dir, cfg->name);
}

/* The record's text; a missing record is empty. 0 or -errno. */
static int temps_read(const char *path, struct strbuf *sb)
{
	int r = read_file_capped(path, TEMPS_MAX, sb);

	if (r == -ENOENT) {
		strbuf_reset(sb);
		return 0;
	}
	return r;
}

/* Replace the record whole (an empty one is removed). 0 or -errno. */
static int temps_write(const char *path, const struct strbuf *sb)
{
	if (!sb->len)
		return unlink(path) < 0 && errno != ENOENT ? -errno : 0;
	return write_file_atomic(path, sb->buf, sb->len, 0600);
}

/* Is line [p, p+n) "kind name"? */
static bool is_line(const char *p, size_t n, const char *kind, const char *name)
{
	size_t k = strlen(kind), m = strlen(name);

	return n == k + 1 + m && !memcmp(p, kind, k) && p[k] == ' ' && !memcmp(p + k + 1, name, m);
}

/* Add the line "kind name" to the record, or drop it. 0 or -errno. */
static int temps_edit(const struct config *cfg, const char *kind, const char *name, bool add)
{
	struct strbuf old = STRBUF_INIT, now = STRBUF_INIT;
	char *path = temps_path(cfg);
	int r;

	pthread_mutex_lock(&temps_lock);
	r = temps_read(path, &old);
	for (size_t i = 0; r == 0 && i < old.len;) {
		const char *line = old.buf + i;
		size_t n = strcspn(line, "\n");
		i += n + (i + n < old.len);
		if (n && !is_line(line, n, kind, name)) {
			strbuf_add(&now, line, n);
			strbuf_addch(&now, '\n');
		}
	}
	if (r == 0 && add)
		strbuf_addf(&now, "%s %s\n", kind, name);
	if (r == 0)
		r = temps_write(path, &now);
	pthread_mutex_unlock(&temps_lock);
	strbuf_release(&old);
	strbuf_release(&now);
	free(path);
	return r;
}

void store_temp_made(struct store *s, const char *name)
{
	if (!s->record_temps)
		return;
	/* One line per name: the names are ours and hold no space or newline. */
	if (strpbrk(name, " \n")) {
		store_report(s, LOG_WARN, "the temporary '%s' cannot be recorded", name);
		return;
	}
	int r = temps_edit(s->cfg, s->ops->kind, name, true);
	if (r < 0)
		store_report(
			s, LOG_WARN,
			"cannot record the temporary '%s' of the %s store in '%s/%s.temporaries': "
			"%s (should this run be killed, it stays in the store)",
			name, s->ops->kind, s->cfg->state_dir, s->cfg->name, strerror(-r));
}

void store_temp_gone(struct store *s, const char *name)
{
	if (!s->record_temps)
		return;
	int r = temps_edit(s->cfg, s->ops->kind, name, false);
	/* The next run then looks for a temporary that is gone: harmless. */
	if (r < 0)
		store_report(s, LOG_DEBUG, "cannot update '%s/%s.temporaries': %s",
			     s->cfg->state_dir, s->cfg->name, strerror(-r));
}

/* The store of this kind in `set`, or NULL. */
static struct store *find_kind(struct store_set *set, const char *kind, size_t n)
{
	for (size_t i = 0; i < set->nr; i++) {
		const char *k = set->v[i]->ops->kind;
		if (strlen(k) == n && !memcmp(k, kind, n))
			return set->v[i];
	}
	return NULL;
}

size_t store_set_sweep_temps(struct store_set *set)
{
	struct strbuf old = STRBUF_INIT, keep = STRBUF_INIT, name = STRBUF_INIT;
	size_t removed = 0;
	char *path;
	int r;

	if (!set->nr)
		return 0;
	const struct config *cfg = set->v[0]->cfg;
	path = temps_path(cfg);
	pthread_mutex_lock(&temps_lock);
	r = temps_read(path, &old);
	if (r < 0) {
		store_report(set->v[0], LOG_WARN, "cannot read '%s': %s", path, strerror(-r));
		goto out;
	}
	for (size_t i = 0; i < old.len;) {
		const char *line = old.buf + i;
		size_t n = strcspn(line, "\n");
		i += n + (i + n < old.len);
		const char *sp = memchr(line, ' ', n);
		if (!sp)
			continue; /* not a line of ours: dropped */
		struct store *s = find_kind(set, line, (size_t)(sp - line));
		strbuf_reset(&name);
		strbuf_add(&name, sp + 1, n - (size_t)(sp + 1 - line));
		struct err e = ERR_INIT;
		int got = !s ? -1 : s->ops->remove_temp ? s->ops->remove_temp(s, name.buf, &e) : 0;
		if (got > 0) {
			store_report(s, LOG_INFO,
				     "removed the unfinished upload '%s' an interrupted run left "
				     "in the %s store",
				     name.buf, s->ops->kind);
			removed++;
		} else if (got < 0 && s) {
			store_report(s, LOG_WARN,
				     "cannot remove the unfinished upload '%s' an interrupted run "
				     "left in the %s store (the next run tries again): %s",
				     name.buf, s->ops->kind, e.msg);
		}
		if (got < 0) { /* kept: its store failed, or is not configured in this run */
			strbuf_add(&keep, line, n);
			strbuf_addch(&keep, '\n');
		}
	}
	r = temps_write(path, &keep);
	if (r < 0)
		store_report(set->v[0], LOG_WARN, "cannot update '%s': %s", path, strerror(-r));
out:
	pthread_mutex_unlock(&temps_lock);
	strbuf_release(&old);
	strbuf_release(&keep);
	strbuf_release(&name);
	free(path);
	return removed;
}
