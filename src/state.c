/* State file: JSON written atomically (temp file, fsync, rename) under a short lock. */
#include "common.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <wchar.h>

#include <jansson.h>

#include "state.h"
#include "fs.h"
#include "strbuf.h"
#include "xalloc.h"

/* A scheduled run later than this past its time makes the container unhealthy. */
#define OVERDUE_GRACE 300

int state_dir_create(const struct config *cfg, struct err *e)
{
	auto_free char *p = xstrdup(cfg->state_dir);

	for (char *s = p + 1;; s++) {
		bool last = !*s;
		if (*s && *s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, last ? 0700 : 0755) < 0 && errno != EEXIST)
			return err_set(e, LB_EXIT_CONFIG,
				       "BACKUP_STATE_DIR '%s': cannot create '%s': %s",
				       cfg->state_dir, p, strerror(errno));
		if (last)
			return 0;
		*s = '/';
	}
}

char *state_path(const struct config *cfg)
{
	return xasprintf("%s/%s.state.json", cfg->state_dir, cfg->name);
}

static void copy_str(char *dst, size_t len, json_t *v)
{
	snprintf(dst, len, "%s", json_is_string(v) ? json_string_value(v) : "");
}

static void record_from_json(struct run_record *r, json_t *o)
{
	memset(r, 0, sizeof(*r));
	if (!json_is_object(o))
		return;
	copy_str(r->status, sizeof(r->status), json_object_get(o, "status"));
	copy_str(r->trigger, sizeof(r->trigger), json_object_get(o, "trigger"));
	copy_str(r->file, sizeof(r->file), json_object_get(o, "file"));
	copy_str(r->error, sizeof(r->error), json_object_get(o, "error"));
	r->started = (time_t)json_integer_value(json_object_get(o, "started"));
	r->finished = (time_t)json_integer_value(json_object_get(o, "finished"));
	r->duration = json_number_value(json_object_get(o, "duration"));
	r->size = (uint64_t)json_integer_value(json_object_get(o, "size"));
}

/*
 * JSON needs UTF-8, and an error may name a file whose name is not (or be cut
 * inside a character): each byte that does not start a valid character becomes '?'.
 */
static void utf8_lossy(const char *s, char *out, size_t len)
{
	mbstate_t ps;
	size_t o = 0;

	memset(&ps, 0, sizeof(ps));
	while (*s && o + 1 < len) {
		wchar_t wc;
		size_t n = mbrtowc(&wc, s, MB_CUR_MAX, &ps);
		if (n == (size_t)-1 || n == (size_t)-2 || n == 0 ||
		    (wc >= 0xd800 && wc <= 0xdfff) || o + n >= len) {
			memset(&ps, 0, sizeof(ps));
			out[o++] = (unsigned char)*s >= 0x80 ? '?' : *s;
			s++;
			continue;
		}
		memcpy(out + o, s, n);
		o += n;
		s += n;
	}
	out[o] = '\0';
}

static json_t *record_to_json(const struct run_record *r)
{
	char error[sizeof(r->error)], file[sizeof(r->file)];

	utf8_lossy(r->error, error, sizeof(error));
	utf8_lossy(r->file, file, sizeof(file));
	return json_pack("{s:s, s:s, s:I, s:I, s:f, s:I, s:s, s:s}", "status", r->status, "trigger",
			 r->trigger, "started", (json_int_t)r->started, "finished",
			 (json_int_t)r->finished, "duration", r->duration, "size",
			 (json_int_t)r->size, "file", file, "error", error);
}

struct labelled_stat *state_label(struct labelled_stat *v, size_t *nr, size_t max,
				  const char *label)
{
	for (size_t i = 0; i < *nr; i++)
		if (!strcmp(v[i].label, label))
			return &v[i];
	if (*nr >= max)
		return NULL;
	memset(&v[*nr], 0, sizeof(v[*nr]));
	snprintf(v[*nr].label, sizeof(v[*nr].label), "%s", label);
	return &v[(*nr)++];
}

static void labels_from_json(struct labelled_stat *v, size_t *nr, size_t max, json_t *o)
{
	const char *key;
	json_t *val;

	if (!json_is_object(o))
		return;
	json_object_foreach (o, key, val) {
		struct labelled_stat *l = state_label(v, nr, max, key);
		if (!l)
			break;
		l->last_success = (time_t)json_integer_value(json_object_get(val, "last_success"));
		l->failures = (uint64_t)json_integer_value(json_object_get(val, "failures"));
		l->files = (uint64_t)json_integer_value(json_object_get(val, "files"));
		l->bytes = (uint64_t)json_integer_value(json_object_get(val, "bytes"));
	}
}

static json_t *labels_to_json(const struct labelled_stat *v, size_t nr)
{
	json_t *o = json_object();

	for (size_t i = 0; i < nr; i++)
		json_object_set_new(o, v[i].label,
				    json_pack("{s:I, s:I, s:I, s:I}", "last_success",
					      (json_int_t)v[i].last_success, "failures",
					      (json_int_t)v[i].failures, "files",
					      (json_int_t)v[i].files, "bytes",
					      (json_int_t)v[i].bytes));
	return o;
}

int state_load(const struct config *cfg, struct state *ret, struct err *e)
{
	auto_free char *path = state_path(cfg);
	struct strbuf buf = STRBUF_INIT;
	json_error_t jerr;
	json_t *root;
	int r;

	memset(ret, 0, sizeof(*ret));
	r = read_file_capped(path, 1 << 20, &buf);
	if (r == -ENOENT) {
		strbuf_release(&buf);
		return 0;
	}
	if (r < 0) {
		strbuf_release(&buf);
		return err_set(e, LB_EXIT_INTERNAL, "cannot read '%s': %s", path, strerror(-r));
	}
	root = json_loadb(buf.buf, buf.len, 0, &jerr);
	strbuf_release(&buf);
	if (!json_is_object(root)) {
		json_decref(root);
		return err_set(e, LB_EXIT_INTERNAL, "state file '%s' is damaged: %s", path,
			       jerr.text);
	}
	record_from_json(&ret->last, json_object_get(root, "last"));
	record_from_json(&ret->last_scheduled, json_object_get(root, "last_scheduled"));
	record_from_json(&ret->last_success, json_object_get(root, "last_success"));
	ret->runs_success = (uint64_t)json_integer_value(json_object_get(root, "runs_success"));
	ret->runs_failure = (uint64_t)json_integer_value(json_object_get(root, "runs_failure"));
	ret->next_run = (time_t)json_integer_value(json_object_get(root, "next_run"));
	ret->running_pid = (pid_t)json_integer_value(json_object_get(root, "running_pid"));
	ret->running_since = (time_t)json_integer_value(json_object_get(root, "running_since"));
	copy_str(ret->running_trigger, sizeof(ret->running_trigger),
		 json_object_get(root, "running_trigger"));
	labels_from_json(ret->stores, &ret->nr_stores, STATE_MAX_STORES,
			 json_object_get(root, "stores"));
	labels_from_json(ret->sources, &ret->nr_sources, STATE_MAX_SOURCES,
			 json_object_get(root, "sources"));
	json_t *v = json_object_get(root, "verify");
	record_from_json(&ret->last_verify, json_object_get(v, "last"));
	ret->verifies_success = (uint64_t)json_integer_value(json_object_get(v, "runs_success"));
	ret->verifies_failure = (uint64_t)json_integer_value(json_object_get(v, "runs_failure"));
	ret->next_verify = (time_t)json_integer_value(json_object_get(v, "next_run"));
	labels_from_json(ret->verify_stores, &ret->nr_verify_stores, STATE_MAX_STORES,
			 json_object_get(v, "stores"));
	json_decref(root);
	return 0;
}

static int state_save(const struct config *cfg, const struct state *st, struct err *e)
{
	auto_free char *path = state_path(cfg);
	json_t *root = json_pack(
		"{s:o, s:o, s:o, s:I, s:I, s:I, s:I, s:I}", "last", record_to_json(&st->last),
		"last_scheduled", record_to_json(&st->last_scheduled), "last_success",
		record_to_json(&st->last_success), "runs_success", (json_int_t)st->runs_success,
		"runs_failure", (json_int_t)st->runs_failure, "next_run", (json_int_t)st->next_run,
		"running_pid", (json_int_t)st->running_pid, "running_since",
		(json_int_t)st->running_since);
	if (root) {
		json_object_set_new(root, "stores", labels_to_json(st->stores, st->nr_stores));
		json_object_set_new(root, "sources", labels_to_json(st->sources, st->nr_sources));
		if (st->last_verify.status[0] || st->next_verify)
			json_object_set_new(
				root, "verify",
				json_pack("{s:o, s:I, s:I, s:I, s:o}", "last",
					  record_to_json(&st->last_verify), "runs_success",
					  (json_int_t)st->verifies_success, "runs_failure",
					  (json_int_t)st->verifies_failure, "next_run",
					  (json_int_t)st->next_verify, "stores",
					  labels_to_json(st->verify_stores, st->nr_verify_stores)));
		if (st->running_pid)
			json_object_set_new(root, "running_trigger",
					    json_string(st->running_trigger));
	}
	char *json = root ? json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;

	json_decref(root);
	if (!json)
		return err_set(e, LB_EXIT_INTERNAL, "cannot encode the state file");
	auto_free char *text = xasprintf("%s\n", json);
	free(json);
	int r = write_file_atomic(path, text, strlen(text), 0600);
	if (r < 0)
		return err_set(e, LB_EXIT_INTERNAL, "cannot write '%s': %s", path, strerror(-r));
	return 0;
}

int state_update(const struct config *cfg, void (*fn)(struct state *st, void *ctx), void *ctx,
		 struct err *e)
{
	auto_free char *lock = xasprintf("%s/%s.state.lock", cfg->state_dir, cfg->name);
	struct state st;
	int fd, ret = -1;

	if (state_dir_create(cfg, e) < 0)
		return -1;
	fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return err_set(e, LB_EXIT_CONFIG, "BACKUP_STATE_DIR: cannot open '%s': %s", lock,
			       strerror(errno));
	while (flock(fd, LOCK_EX) < 0 && errno == EINTR)
		;
	if (state_load(cfg, &st, e) == 0) {
		/* Loaded from zero (state_load's memset): memcmp sees only what fn changed. */
		struct state *before = xmalloc(sizeof(st));
		memcpy(before, &st, sizeof(st));
		fn(&st, ctx);
		/*
		 * Unchanged (a run start that found no killed run): no write, no fsync, unless
		 * there is no file yet (the daemon's first "no next run" creates it).
		 */
		auto_free char *path = state_path(cfg);
		bool changed = memcmp(before, &st, sizeof(st)) || access(path, F_OK) < 0;
		ret = changed ? state_save(cfg, &st, e) : 0;
		free(before);
	}
	close(fd); /* releases the flock */
	return ret;
}

struct next_ctx {
	time_t next, next_verify;
};

static void set_next(struct state *st, void *ctx)
{
	st->next_run = ((struct next_ctx *)ctx)->next;
	st->next_verify = ((struct next_ctx *)ctx)->next_verify;
}

int state_set_next(const struct config *cfg, time_t next, time_t next_verify, struct err *e)
{
	struct next_ctx c = { next, next_verify };

	return state_update(cfg, set_next, &c, e);
}

static void fmt_time(time_t t, char *buf, size_t len)
{
	struct tm tm;
	localtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%d %H:%M:%S %Z", &tm);
}

bool state_health_verdict(const struct state *st, bool running, time_t now, char *why, size_t len)
{
	char when[64];

	why[0] = '\0';
	if (!strcmp(st->last_scheduled.status, "failure")) {
		fmt_time(st->last_scheduled.finished, when, sizeof(when));
		snprintf(why, len, "the last scheduled backup failed at %s: %s", when,
			 st->last_scheduled.error);
		return false;
	}
	if (st->next_run && now > st->next_run + OVERDUE_GRACE && !running) {
		fmt_time(st->next_run, when, sizeof(when));
		snprintf(why, len,
			 "overdue: the backup scheduled for %s has not run (is 'lifeboat "
			 "run' running?)",
			 when);
		return false;
	}
	return true;
}

bool state_healthy(const struct config *cfg, const struct state *st, time_t now, char *why,
		   size_t len)
{
	why[0] = '\0';
	if (!cfg->daemon.schedule)
		return true;
	bool running = st->running_pid > 0 && (kill(st->running_pid, 0) == 0 || errno == EPERM);
	return state_health_verdict(st, running, now, why, len);
}
