/* The restore journal (journal.h): JSON in BACKUP_STATE_DIR, replaced atomically at each step. */
#include "common.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <jansson.h>

#include "fault.h"
#include "fs.h"
#include "journal.h"
#include "parse.h"
#include "state.h"
#include "strbuf.h"
#include "xalloc.h"

#define JOURNAL_MAX (4u * 1024 * 1024)

static const char *const state_names[] = { "staging", "swapping", "rolling-back" };
static const char *const phase_names[] = { "pending", "clearing", "filling", "keeping", "done" };

const char *journal_state_str(enum journal_state s)
{
	return state_names[s];
}

char *journal_path(const struct config *cfg)
{
	return xasprintf("%s/%s.restore.json", cfg->state_dir, cfg->name);
}

void journal_init(struct journal *j, const struct config *cfg, const char *archive)
{
	*j = (struct journal){ .path = journal_path(cfg),
			       .archive = xstrdup(archive),
			       .pid = (long)getpid(),
			       .since = time(NULL) };
}

static void target_release(struct journal_target *t)
{
	free(t->name);
	free(t->target);
	free(t->stage);
	free(t->old);
	strvec_release(&t->keep);
}

static void db_release(struct journal_db *d)
{
	free(d->source);
	free(d->db);
	free(d->target);
	free(d->staged);
	free(d->old);
	free(d->owner);
}

void journal_release(struct journal *j)
{
	for (size_t i = 0; i < j->nr_t; i++)
		target_release(&j->t[i]);
	for (size_t i = 0; i < j->nr_d; i++)
		db_release(&j->d[i]);
	free(j->t);
	free(j->d);
	free(j->path);
	free(j->archive);
	*j = (struct journal){ 0 };
}

static char *dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

struct journal_target *journal_add_target(struct journal *j, enum source_kind kind,
					  const char *name, const char *target, const char *stage)
{
	j->t = xrealloc(j->t, (j->nr_t + 1) * sizeof(*j->t));
	struct journal_target *t = &j->t[j->nr_t++];
	*t = (struct journal_target){ .kind = kind,
				      .name = xstrdup(name),
				      .target = xstrdup(target),
				      .stage = xstrdup(stage) };
	return t;
}

void journal_add_db(struct journal *j, const struct journal_db *d)
{
	j->d = xrealloc(j->d, (j->nr_d + 1) * sizeof(*j->d));
	j->d[j->nr_d++] = (struct journal_db){ .kind = d->kind,
					       .source = dup_or_null(d->source),
					       .db = dup_or_null(d->db),
					       .target = dup_or_null(d->target),
					       .staged = dup_or_null(d->staged),
					       .old = dup_or_null(d->old),
					       .owner = dup_or_null(d->owner),
					       .existed = d->existed };
}

/* Paths and names are bytes: a string when they are UTF-8, else {"hex": "..."}. */
static json_t *bytes_json(const char *s)
{
	if (!s)
		return json_null();
	if (utf8_valid(s))
		return json_string(s);
	struct strbuf hex = STRBUF_INIT;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		strbuf_addf(&hex, "%02x", *p);
	json_t *o = json_pack("{s:s}", "hex", hex.buf);
	strbuf_release(&hex);
	return o;
}

static char *bytes_from_json(json_t *v)
{
	if (json_is_string(v))
		return xstrdup(json_string_value(v));
	const char *hex = json_is_object(v) ? json_string_value(json_object_get(v, "hex")) : NULL;
	if (!hex)
		return NULL;
	size_t n = strlen(hex) / 2;
	char *s = xmalloc(n + 1);
	for (size_t i = 0; i < n; i++) {
		unsigned x;
		if (sscanf(hex + 2 * i, "%2x", &x) != 1 || !x) {
			free(s);
			return NULL;
		}
		s[i] = (char)x;
	}
	s[n] = '\0';
	return s;
}

static json_t *ts_json(struct timespec ts)
{
	return json_pack("[I, I]", (json_int_t)ts.tv_sec, (json_int_t)ts.tv_nsec);
}

static struct timespec ts_from_json(json_t *v)
{
	return (struct timespec){ .tv_sec = (time_t)json_integer_value(json_array_get(v, 0)),
				  .tv_nsec = (long)json_integer_value(json_array_get(v, 1)) };
}

static json_t *target_json(const struct journal_target *t)
{
	json_t *o = json_pack("{s:s, s:o, s:o, s:o, s:o, s:s, s:b, s:I, s:I, s:[o, o]}", "kind",
			      source_kind_str(t->kind), "name", bytes_json(t->name), "target",
			      bytes_json(t->target), "stage", bytes_json(t->stage), "old",
			      bytes_json(t->old), "phase", phase_names[t->phase], "sqlite",
			      t->sqlite, "ino", (json_int_t)t->ino, "dev", (json_int_t)t->dev,
			      "times", ts_json(t->times[0]), ts_json(t->times[1]));
	if (o && t->root.set)
		json_object_set_new(
			o, "root",
			json_pack("{s:I, s:I, s:I, s:o, s:o}", "mode", (json_int_t)t->root.mode,
				  "uid", (json_int_t)t->root.uid, "gid", (json_int_t)t->root.gid,
				  "atime", ts_json(t->root.atime), "mtime",
				  ts_json(t->root.mtime)));
	if (o && t->keep.nr) {
		json_t *keep = json_array();
		for (size_t i = 0; i < t->keep.nr; i++)
			json_array_append_new(keep, bytes_json(t->keep.v[i]));
		json_object_set_new(o, "keep", keep);
	}
	return o;
}

static json_t *db_json(const struct journal_db *d)
{
	return json_pack("{s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:b}", "kind",
			 source_kind_str(d->kind), "source", bytes_json(d->source), "db",
			 bytes_json(d->db), "target", bytes_json(d->target), "staged",
			 bytes_json(d->staged), "old", bytes_json(d->old), "owner",
			 bytes_json(d->owner), "existed", d->existed);
}

static char *journal_json(const struct journal *j)
{
	json_t *targets = json_array(), *dbs = json_array();

	for (size_t i = 0; i < j->nr_t; i++)
		json_array_append_new(targets, target_json(&j->t[i]));
	for (size_t i = 0; i < j->nr_d; i++)
		json_array_append_new(dbs, db_json(&j->d[i]));
	json_t *root = json_pack("{s:i, s:o, s:I, s:I, s:s, s:o, s:o}", "version", 1, "archive",
				 bytes_json(j->archive), "pid", (json_int_t)j->pid, "since",
				 (json_int_t)j->since, "state", state_names[j->state], "targets",
				 targets, "databases", dbs);
	char *text = root ? json_dumps(root, JSON_INDENT(2)) : NULL;
	json_decref(root);
	return text;
}

int journal_write(struct journal *j, struct err *e)
{
	auto_free char *text = journal_json(j);

	if (!text)
		return err_set(e, LB_EXIT_INTERNAL, "cannot encode the restore journal '%s'",
			       j->path);
	/* Killed here, the previous journal (or none) is what the next command finds. */
	int r = FAULT("journal.write") ? -EIO
				       : write_file_atomic(j->path, text, strlen(text), 0600);
	if (r < 0)
		return err_set(e, LB_EXIT_SOURCE, "cannot write the restore journal '%s': %s",
			       j->path, strerror(-r));
	return 0;
}

static int index_of(const char *const *names, size_t n, const char *s)
{
	for (size_t i = 0; s && i < n; i++)
		if (!strcmp(names[i], s))
			return (int)i;
	return -1;
}

static int load_target(json_t *o, struct journal_target *t)
{
	const char *kind = json_string_value(json_object_get(o, "kind"));
	int phase = index_of(phase_names, ARRAY_SIZE(phase_names),
			     json_string_value(json_object_get(o, "phase")));

	if (!kind || source_kind_parse(kind, &t->kind) < 0 ||
	    (t->kind != SOURCE_DIR && t->kind != SOURCE_FILE) || phase < 0)
		return -1;
	t->phase = (enum journal_phase)phase;
	t->name = bytes_from_json(json_object_get(o, "name"));
	t->target = bytes_from_json(json_object_get(o, "target"));
	t->stage = bytes_from_json(json_object_get(o, "stage"));
	t->old = bytes_from_json(json_object_get(o, "old"));
	t->sqlite = json_is_true(json_object_get(o, "sqlite"));
	t->ino = (uint64_t)json_integer_value(json_object_get(o, "ino"));
	t->dev = (uint64_t)json_integer_value(json_object_get(o, "dev"));
	json_t *times = json_object_get(o, "times");
	t->times[0] = ts_from_json(json_array_get(times, 0));
	t->times[1] = ts_from_json(json_array_get(times, 1));
	json_t *root = json_object_get(o, "root");
	if (json_is_object(root)) {
		t->root.set = true;
		t->root.mode = (mode_t)json_integer_value(json_object_get(root, "mode"));
		t->root.uid = (uid_t)json_integer_value(json_object_get(root, "uid"));
		t->root.gid = (gid_t)json_integer_value(json_object_get(root, "gid"));
		t->root.atime = ts_from_json(json_object_get(root, "atime"));
		t->root.mtime = ts_from_json(json_object_get(root, "mtime"));
	}
	json_t *keep = json_object_get(o, "keep");
	for (size_t i = 0; i < json_array_size(keep); i++) {
		char *rel = bytes_from_json(json_array_get(keep, i));
		if (!rel || !*rel || rel[0] == '/' || path_has_dotdot(rel)) {
			free(rel);
			return -1;
		}
		strvec_push(&t->keep, rel);
		free(rel);
	}
	if (!t->name || !t->target || !t->stage || (t->kind == SOURCE_DIR && !t->old))
		return -1;
	return 0;
}

static int load_db(json_t *o, struct journal_db *d)
{
	const char *kind = json_string_value(json_object_get(o, "kind"));

	if (!kind || source_kind_parse(kind, &d->kind) < 0 || !source_is_db(d->kind))
		return -1;
	d->source = bytes_from_json(json_object_get(o, "source"));
	d->db = bytes_from_json(json_object_get(o, "db"));
	d->target = bytes_from_json(json_object_get(o, "target"));
	d->staged = bytes_from_json(json_object_get(o, "staged"));
	d->old = bytes_from_json(json_object_get(o, "old"));
	d->owner = bytes_from_json(json_object_get(o, "owner"));
	d->existed = json_is_true(json_object_get(o, "existed"));
	return d->source && d->target && d->staged ? 0 : -1;
}

int journal_load(const struct config *cfg, struct journal *ret, struct err *e)
{
	struct journal j = { .path = journal_path(cfg) };
	struct strbuf text = STRBUF_INIT;
	json_error_t jerr;
	json_t *root = NULL;
	int r = read_file_capped(j.path, JOURNAL_MAX, &text);

	if (r == -ENOENT) {
		journal_release(&j);
		strbuf_release(&text);
		return 0;
	}
	if (r < 0) {
		err_set(e, LB_EXIT_SOURCE, "cannot read the restore journal '%s': %s", j.path,
			strerror(-r));
		goto fail;
	}
	root = json_loadb(text.buf, text.len, 0, &jerr);
	int state = index_of(state_names, ARRAY_SIZE(state_names),
			     json_string_value(json_object_get(root, "state")));
	json_t *targets = json_object_get(root, "targets"),
	       *dbs = json_object_get(root, "databases");
	j.archive = bytes_from_json(json_object_get(root, "archive"));
	if (!root || state < 0 || !json_is_array(targets) || !json_is_array(dbs) || !j.archive)
		goto bad;
	j.state = (enum journal_state)state;
	j.pid = (long)json_integer_value(json_object_get(root, "pid"));
	j.since = (time_t)json_integer_value(json_object_get(root, "since"));
	j.t = xcalloc(json_array_size(targets) + 1, sizeof(*j.t));
	for (size_t i = 0; i < json_array_size(targets); i++)
		if (load_target(json_array_get(targets, i), &j.t[j.nr_t++]) < 0)
			goto bad;
	j.d = xcalloc(json_array_size(dbs) + 1, sizeof(*j.d));
	for (size_t i = 0; i < json_array_size(dbs); i++)
		if (load_db(json_array_get(dbs, i), &j.d[j.nr_d++]) < 0)
			goto bad;
	json_decref(root);
	strbuf_release(&text);
	*ret = j;
	return 1;
bad:
	err_set(e, LB_EXIT_SOURCE,
		"the restore journal '%s' is damaged: the interrupted restore it records "
		"cannot be recovered automatically",
		j.path);
fail:
	json_decref(root);
	strbuf_release(&text);
	journal_release(&j);
	return -1;
}

int journal_remove(struct journal *j, struct err *e)
{
	auto_free char *tmp = xasprintf("%s.tmp", j->path);
	auto_free char *dir = xstrdup(j->path);

	*strrchr(dir, '/') = '\0';
	unlink(tmp);
	if (unlink(j->path) < 0 && errno != ENOENT)
		return err_set(e, LB_EXIT_SOURCE, "cannot remove the restore journal '%s': %s",
			       j->path, strerror(errno));
	fsync_dir(dir);
	return 0;
}
