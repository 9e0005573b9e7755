/* Helpers shared by every store kind. */
#include "common.h"

#include "config-vars.h"
#include "stores/store.h"
#include "log.h"
#include "report.h"
#include "config-vars.h"
#include "strbuf.h"
#include "xalloc.h"

void store_report(struct store *s, enum log_level level, const char *fmt, ...)
{
	const struct reporter r = { .fn = s->report, .ud = s->report_ud };
	va_list ap;

	va_start(ap, fmt);
	report_v(&r, level, fmt, ap);
	va_end(ap);
}

static void set_add(struct store_set *set, struct store *s)
{
	s->report = report_log.fn; /* the sink of the stores a job opens: its log */
	set->v = xrealloc(set->v, (set->nr + 1) * sizeof(*set->v));
	set->v[set->nr++] = s;
}

static bool local_configured(const struct config *cfg)
{
	return cfg->local.path;
}

static bool s3_configured(const struct config *cfg)
{
	return cfg->s3.bucket;
}

static bool sftp_configured(const struct config *cfg)
{
	return cfg->sftp.url;
}

static bool webdav_configured(const struct config *cfg)
{
	return cfg->webdav.url;
}

static bool rclone_configured(const struct config *cfg)
{
	return cfg->rclone.remote;
}

static const struct store_kind store_kinds[] = {
	{ "local", &local_vars, local_configured, store_local_new },
	{ "s3", &s3_vars, s3_configured, store_s3_new },
	{ "sftp", &sftp_vars, sftp_configured, store_sftp_new },
	{ "webdav", &webdav_vars, webdav_configured, store_webdav_new },
	{ "rclone", &rclone_vars, rclone_configured, store_rclone_new },
};

const struct store_kind *store_kind_at(size_t i)
{
	return i < ARRAY_SIZE(store_kinds) ? &store_kinds[i] : NULL;
}

const struct store_kind *store_kind_find(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(store_kinds); i++)
		if (!strcmp(store_kinds[i].name, name))
			return &store_kinds[i];
	return NULL;
}

const char *store_kind_var(const struct store_kind *k)
{
	return k->vars->enabled_by ? k->vars->enabled_by : k->vars->v[0].name;
}

bool store_any_configured(const struct config *cfg)
{
	for (size_t i = 0; i < ARRAY_SIZE(store_kinds); i++)
		if (store_kinds[i].configured(cfg))
			return true;
	return false;
}

void store_kinds_list(struct strbuf *out, bool vars, const char *last)
{
	for (size_t i = 0; i < ARRAY_SIZE(store_kinds); i++) {
		const char *sep = !i ? "" : i + 1 == ARRAY_SIZE(store_kinds) ? last : ", ";
		strbuf_addf(out, vars ? "%s%s" : "%s'%s'", sep,
			    vars ? store_kind_var(&store_kinds[i]) : store_kinds[i].name);
	}
}

int store_none_configured(struct err *e)
{
	struct strbuf vars = STRBUF_INIT;
	int ret;

	store_kinds_list(&vars, true, " and/or ");
	ret = err_set(e, LB_EXIT_CONFIG, "no destination configured: set %s", vars.buf);
	strbuf_release(&vars);
	return ret;
}

int store_set_open(const struct config *cfg, struct store_set *ret, struct err *e)
{
	struct store_set set = { 0 };
	struct store *s;

	for (size_t i = 0; i < ARRAY_SIZE(store_kinds); i++) {
		if (!store_kinds[i].configured(cfg))
			continue;
		if (store_kinds[i].open(cfg, &s, e) < 0)
			goto fail;
		set_add(&set, s);
	}
	if (!set.nr) {
		store_none_configured(e);
		goto fail;
	}
	*ret = set;
	return 0;
fail:
	store_set_release(&set);
	return -1;
}

void store_set_release(struct store_set *set)
{
	for (size_t i = 0; i < set->nr; i++)
		store_free(set->v[i]);
	free(set->v);
	set->v = NULL;
	set->nr = 0;
}

static int newest_first(const void *a, const void *b)
{
	const struct store_entry *x = a, *y = b;
	int c = strcmp(y->id.timestamp, x->id.timestamp);
	return c ? c : strcmp(y->file, x->file);
}

int store_set_list(struct store_set *set, struct store_list *out, struct err *e)
{
	size_t failed = 0;

	for (size_t i = 0; i < set->nr; i++) {
		struct store_list l = { 0 };
		/* One unreachable store must not hide the others' archives. */
		if (set->v[i]->ops->list(set->v[i], &l, e) < 0) {
			failed++;
			continue;
		}
		for (size_t k = 0; k < l.nr; k++) {
			size_t m = 0;
			while (m < out->nr && strcmp(out->v[m].file, l.v[k].file))
				m++;
			if (m == out->nr)
				store_list_add(out, l.v[k].file, &l.v[k].id, l.v[k].size);
			out->v[m].where |= 1u << i;
		}
		store_list_release(&l);
	}
	if (failed == set->nr && failed) {
		store_list_release(out);
		return -1;
	}
	if (out->nr)
		qsort(out->v, out->nr, sizeof(*out->v), newest_first);
	return failed ? 1 : 0;
}

void store_set_where(const struct store_set *set, unsigned where, char *buf, size_t len)
{
	size_t n = 0, used = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < set->nr; i++)
		n += (where >> i) & 1;
	if (n == 2 && set->nr == 2) {
		snprintf(buf, len, "both");
		return;
	}
	for (size_t i = 0; i < set->nr; i++) {
		if (!((where >> i) & 1))
			continue;
		int w = snprintf(buf + used, len - used, "%s%s", used ? "," : "",
				 set->v[i]->ops->kind);
		if (w < 0 || (size_t)w >= len - used)
			break;
		used += (size_t)w;
	}
}

int store_set_only(struct store_set *set, const char *kind, struct err *e)
{
	struct store *keep = NULL;

	for (size_t i = 0; i < set->nr; i++) {
		if (!keep && !strcmp(set->v[i]->ops->kind, kind))
			keep = set->v[i];
		else
			store_free(set->v[i]);
	}
	set->nr = 0;
	if (!keep) {
		const struct store_kind *k = store_kind_find(kind);
		return err_set(e, LB_EXIT_CONFIG, "--from %s: no %s store is configured (set %s)",
			       kind, kind, k ? store_kind_var(k) : "it");
	}
	set->v[0] = keep;
	set->nr = 1;
	return 0;
}

bool store_file_ours(const struct config *cfg, const char *file)
{
	struct backup_id id;
	size_t n = strlen(file), k = strlen(STORE_SIG_SUFFIX);

	if (naming_parse(cfg->name, file, &id))
		return true;
	if (n <= k || strcmp(file + n - k, STORE_SIG_SUFFIX))
		return false;
	char *archive = xstrndup(file, n - k);
	bool ours = naming_parse(cfg->name, archive, &id);
	free(archive);
	return ours;
}

bool store_temp_ours(const struct config *cfg, const char *name)
{
	size_t len = strlen(name), nlen = strlen(cfg->name);
	char ts[TIMESTAMP_LEN + 1];

	if (name[0] != '.' || strncmp(name + 1, cfg->name, nlen) || name[1 + nlen] != '-' ||
	    len < 2 + nlen + TIMESTAMP_LEN + 8 || strcmp(name + len - 8, ".partial") ||
	    strchr(name, '/'))
		return false;
	memcpy(ts, name + 2 + nlen, TIMESTAMP_LEN);
	ts[TIMESTAMP_LEN] = '\0';
	return naming_timestamp_valid(ts, NULL);
}

int store_put_small_streamed(struct store *s, const char *file, const void *buf, size_t len,
			     struct err *e)
{
	struct store_put p = { 0 };

	if (!store_file_ours(s->cfg, file))
		return err_set(e, LB_EXIT_INTERNAL, "refusing to write '%s': not a file of '%s'",
			       file, s->cfg->name);
	int rc = s->ops->put_begin(s, file, &p, e);
	if (rc == STORE_TAKEN)
		return err_set(e, LB_EXIT_STORE,
			       "cannot write '%s' to the %s store: it exists already", file,
			       s->ops->kind);
	if (rc < 0)
		return -1;
	if (s->ops->put_write(&p, buf, len, e) < 0 || s->ops->put_commit(&p, e) < 0) {
		s->ops->put_abort(&p); /* removes the temporary */
		return -1;
	}
	return 0;
}

void store_free(struct store *s)
{
	if (s)
		s->ops->free(s);
}

void store_list_add(struct store_list *l, const char *file, const struct backup_id *id,
		    uint64_t size)
{
	ALLOC_GROW(l->v, l->nr + 1, l->alloc);
	l->v[l->nr++] = (struct store_entry){ .file = xstrdup(file), .id = *id, .size = size };
	l->v[l->nr - 1].where = 0;
}

void store_list_release(struct store_list *l)
{
	for (size_t i = 0; i < l->nr; i++)
		free(l->v[i].file);
	free(l->v);
	l->v = NULL;
	l->nr = l->alloc = 0;
}
