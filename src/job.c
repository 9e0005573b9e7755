/* The job runner: the only place besides the CLI that logs a run's outcome. */
#include "common.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/file.h>
#include <time.h>

#include <jansson.h>

#include "job.h"
#include "fs.h"
#include "hooks.h"
#include "log.h"
#include "naming.h"
#include "notify.h"
#include "parse.h"
#include "progress.h"
#include "recover.h"
#include "restore.h"
#include "retention.h"
#include "services.h"
#include "signals.h"
#include "state.h"
#include "stores/store.h"
#include "strvec.h"
#include "webhook.h"
#include "xalloc.h"

static double now_mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int job_lock(const struct config *cfg, int *ret_fd, struct err *e)
{
	auto_free char *path = xasprintf("%s/%s.lock", cfg->state_dir, cfg->name);
	double deadline = now_mono() + cfg->daemon.lock_timeout;
	char holder[32] = "";

	if (state_dir_create(cfg, e) < 0)
		return -1;
	auto_close int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600);
	if (fd < 0)
		return err_set(e, LB_EXIT_CONFIG, "cannot open the lock file '%s': %s", path,
			       strerror(errno));
	for (bool logged = false;; logged = true) {
		if (flock(fd, LOCK_EX | LOCK_NB) == 0)
			break;
		if (errno != EWOULDBLOCK && errno != EINTR)
			return err_set(e, LB_EXIT_INTERNAL, "cannot lock '%s': %s", path,
				       strerror(errno));
		if (!logged) {
			ssize_t n = pread(fd, holder, sizeof(holder) - 1, 0);
			holder[n > 0 ? n : 0] = '\0';
			holder[strcspn(holder, "\n")] = '\0';
			log_info("another backup run (pid %s) is in progress; waiting up to %u s "
				 "for "
				 "it (BACKUP_LOCK_TIMEOUT)",
				 holder[0] ? holder : "unknown", cfg->daemon.lock_timeout);
		}
		if (signals_pending())
			return err_set(e, LB_EXIT_INTERRUPTED,
				       "interrupted by signal %d while waiting for the lock",
				       signals_pending());
		if (now_mono() >= deadline)
			return err_set(
				e, LB_EXIT_BUSY,
				"another backup run (pid %s) still holds the lock '%s' after "
				"%u s (BACKUP_LOCK_TIMEOUT); not starting a second one",
				holder[0] ? holder : "unknown", path, cfg->daemon.lock_timeout);
		poll(NULL, 0, 200);
	}
	char pid[32];
	int n = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
	if (ftruncate(fd, 0) == 0)
		(void)!pwrite(fd, pid, (size_t)n, 0);
	*ret_fd = fd;
	fd = -1;
	return 0;
}

void job_unlock(int *fd)
{
	if (*fd >= 0 && ftruncate(*fd, 0) < 0)
		log_debug("cannot truncate the lock file: %s", strerror(errno));
	close_fd(fd); /* releases the flock */
}

int job_prune(const struct config *cfg, bool dry_run, FILE *listing, struct err *e)
{
	struct store_set set = { 0 };
	int deleted = 0, failed = 0;

	if (!retention_enabled(&cfg->retention))
		return 0;
	if (store_set_open(cfg, &set, e) < 0)
		return -1;
	/* Under the run lock (a dry run has none): what killed runs left goes too. */
	if (!dry_run)
		store_set_sweep_temps(&set);
	for (size_t s = 0; s < set.nr; s++) {
		struct store *st = set.v[s];
		struct store_list l = { 0 };
		struct err le = ERR_INIT;

		if (st->ops->list(st, &l, &le) < 0) {
			log_error("retention: cannot list the %s store: %s", st->ops->kind, le.msg);
			failed++;
			continue;
		}
		time_t *times = xcalloc(l.nr ? l.nr : 1, sizeof(*times));
		bool *del = xcalloc(l.nr ? l.nr : 1, sizeof(*del));
		for (size_t i = 0; i < l.nr; i++)
			times[i] = l.v[i].id.time;
		size_t n = retention_decide(&cfg->retention, times, l.nr, time(NULL), del);
		log_debug("retention: %zu of %zu archives in the %s store to delete", n, l.nr,
			  st->ops->kind);
		for (size_t i = 0; i < l.nr; i++) {
			struct err re = ERR_INIT;
			if (!del[i])
				continue;
			if (dry_run) {
				if (listing)
					fprintf(listing, "would delete %s (%s)\n", l.v[i].file,
						st->ops->kind);
				deleted++;
				continue;
			}
			if (st->ops->remove(st, l.v[i].file, &re) < 0) {
				log_error("retention: cannot delete '%s' from the %s store: %s",
					  l.v[i].file, st->ops->kind, re.msg);
				failed++;
				continue;
			}
			log_info("retention: deleted '%s' from the %s store", l.v[i].file,
				 st->ops->kind);
			/* Its signature goes with it (none there is no error). */
			char *sig = xasprintf("%s%s", l.v[i].file, STORE_SIG_SUFFIX);
			struct err se = ERR_INIT;
			if (st->ops->remove(st, sig, &se) < 0)
				log_warn("retention: cannot delete '%s' from the %s store: %s", sig,
					 st->ops->kind, se.msg);
			free(sig);
			if (listing)
				fprintf(listing, "deleted %s (%s)\n", l.v[i].file, st->ops->kind);
			deleted++;
		}
		free(times);
		free(del);
		store_list_release(&l);
	}
	store_set_release(&set);
	if (failed)
		return err_set(e, LB_EXIT_STORE,
			       "retention: %d archive%s or store%s could not be "
			       "handled (see above)",
			       failed, failed == 1 ? "" : "s", failed == 1 ? "" : "s");
	return deleted;
}

struct event {
	const char *status; /* start, success, failure, interrupted */
	enum job_trigger trigger;
	time_t started;
	double duration;
	uint64_t size;
	const char *file;
	const char *kept_in; /* at the end: stores holding the archive ("local, s3") */
	bool final;
	const char *error;
	json_t *commands; /* the commands' outcomes (hooks.c), borrowed; NULL: none */
	bool killed;	  /* found at the next start: it never reported */
	const char *job;  /* NULL: a backup; "restore drill", "verification" */
};

static void iso_utc(time_t t, char *buf, size_t len)
{
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static char *event_json(const struct config *cfg, const struct event *ev)
{
	struct store_set set = { 0 };
	struct strvec tail = STRVEC_INIT;
	struct err e = ERR_INIT;
	char now[32], started[32], host[256] = "";
	json_t *stores = json_array(), *lines = json_array();

	iso_utc(time(NULL), now, sizeof(now));
	iso_utc(ev->started, started, sizeof(started));
	gethostname(host, sizeof(host) - 1);
	if (ev->final) {
		/* Where the archive actually is: none after a failure, some after a partial one. */
		for (const char *p = ev->kept_in; p && *p;) {
			size_t n = strcspn(p, ", ");
			if (n)
				json_array_append_new(stores, json_stringn(p, n));
			p += n;
			p += strspn(p, ", ");
		}
	} else if (store_set_open(cfg, &set, &e) == 0) {
		for (size_t i = 0; i < set.nr; i++)
			json_array_append_new(stores, json_string(set.v[i]->ops->kind));
	}
	store_set_release(&set);
	log_tail(&tail);
	for (size_t i = 0; i < tail.nr; i++)
		json_array_append_new(lines, json_string(tail.v[i]));
	strvec_release(&tail);
	json_t *o = json_pack(
		"{s:s, s:s, s:s, s:s, s:s, s:s, s:f, s:I, s:o, s:o, s:o, s:o}", "name", cfg->name,
		"status", ev->status, "trigger",
		ev->trigger == JOB_SCHEDULED ? "scheduled" : "manual", "timestamp", now, "started",
		started, "host", host, "duration", ev->duration, "size", (json_int_t)ev->size,
		"file", ev->file ? json_string(ev->file) : json_null(), "stores", stores, "error",
		ev->error ? json_string(ev->error) : json_null(), "log", lines);
	if (o) {
		json_object_set_new(o, "commands",
				    ev->commands ? json_copy(ev->commands) : json_array());
		json_object_set_new(o, "job", json_string(ev->job ? ev->job : "backup"));
	}
	char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	return text;
}

static bool failed_status(const char *status)
{
	return !strcmp(status, "failure") || !strcmp(status, "interrupted");
}

/*
 * The webhook `url` (when set) and the notifications (when BACKUP_NOTIFY_LEVEL wants
 * this event; `recovered`: a success after a failed run). Never fails.
 */
static void tell(const struct config *cfg, const char *url, const char *var, const struct event *ev,
		 bool recovered)
{
	struct err e = ERR_INIT;
	char *body = NULL;

	if (!url && !cfg->notify.services.nr)
		return;
	body = event_json(cfg, ev);
	if (!body)
		log_warn("%s: cannot build the JSON body", url ? var : "BACKUP_NOTIFY_URLS");
	else if (url && webhook_post(url, var, body, &e) < 0)
		log_warn("webhook not delivered (the backup result is unchanged): %s", e.msg);
	else if (url)
		log_info("%s notified (%s)", var, ev->status);
	struct notify_event n = { .status = ev->status,
				  .scheduled = ev->trigger == JOB_SCHEDULED,
				  .started = ev->started,
				  .duration = ev->killed ? -1 : ev->duration,
				  .size = ev->size,
				  .file = ev->file,
				  .stores = ev->kept_in,
				  .error = ev->error,
				  .recovered = recovered,
				  .json = body,
				  .job = ev->job };
	notify_send(cfg, &n);
	free(body);
}

struct record_ctx {
	const struct event *ev;
	const struct config *cfg;
	const struct backup_result *res; /* at the end of a run */
	enum lb_exit code;		 /* at the end of a run */
	time_t finished;
	bool begin;
	bool locked;	  /* we held the run lock, so running_pid was ours */
	bool prev_failed; /* begin: the run before this one failed */
};

static void fill_record(struct run_record *r, const struct event *ev, time_t finished)
{
	memset(r, 0, sizeof(*r));
	snprintf(r->status, sizeof(r->status), "%s", ev->status);
	snprintf(r->trigger, sizeof(r->trigger), "%s",
		 ev->trigger == JOB_SCHEDULED ? "scheduled" : "manual");
	r->started = ev->started;
	r->finished = finished;
	r->duration = ev->duration;
	r->size = ev->size;
	snprintf(r->file, sizeof(r->file), "%s", ev->file ? ev->file : "");
	snprintf(r->error, sizeof(r->error), "%s", ev->error ? ev->error : "");
}

/* Is `kind` one of the comma-separated stores in `list`? */
static bool listed(const char *list, const char *kind)
{
	size_t n = strlen(kind);

	for (const char *p = list; p && (p = strstr(p, kind)); p += n)
		if ((p == list || p[-1] == ' ' || p[-1] == ',') && (p[n] == '\0' || p[n] == ','))
			return true;
	return false;
}

/* Per store: when its copy last succeeded, how often it failed; per source: what it held. */
static void record_stores_sources(struct state *st, const struct record_ctx *c)
{
	const char *kept = c->res && c->res->file ? c->res->kept_in : NULL;
	const struct store_kind *k;

	for (size_t i = 0; (k = store_kind_at(i)); i++) {
		if (!k->configured(c->cfg))
			continue;
		struct labelled_stat *l =
			state_label(st->stores, &st->nr_stores, STATE_MAX_STORES, k->name);
		if (!l)
			continue;
		if (kept && listed(kept, k->name))
			l->last_success = c->finished;
		else if (c->code == LB_EXIT_STORE)
			l->failures++;
	}
	if (!kept || !c->res->source_files)
		return;
	for (size_t i = 0; i < c->res->nr_sources && i < c->cfg->nr_sources; i++) {
		char key[sizeof(st->sources[0].label)];
		state_source_key(&c->cfg->sources[i], key, sizeof(key));
		struct labelled_stat *l =
			state_label(st->sources, &st->nr_sources, STATE_MAX_SOURCES, key);
		if (!l)
			continue;
		l->last_success = c->finished;
		l->files = c->res->source_files[i];
		l->bytes = c->res->source_bytes[i];
	}
}

static void apply_record(struct state *st, void *ctx)
{
	struct record_ctx *c = ctx;

	if (c->begin) {
		c->prev_failed = failed_status(st->last.status);
		st->running_pid = getpid();
		st->running_since = c->ev->started;
		snprintf(st->running_trigger, sizeof(st->running_trigger), "%s",
			 c->ev->trigger == JOB_SCHEDULED ? "scheduled" : "manual");
		return;
	}
	if (c->locked) {
		st->running_pid = 0;
		st->running_since = 0;
		st->running_trigger[0] = '\0';
	}
	fill_record(&st->last, c->ev, c->finished);
	if (c->ev->trigger == JOB_SCHEDULED)
		fill_record(&st->last_scheduled, c->ev, c->finished);
	record_stores_sources(st, c);
	if (!strcmp(c->ev->status, "success")) {
		fill_record(&st->last_success, c->ev, c->finished);
		st->runs_success++;
	} else {
		st->runs_failure++;
	}
}

struct killed_ctx {
	bool found;
	enum job_trigger trigger;
	time_t since;
	char msg[300];
};

/*
 * With the run lock held, a recorded running_pid is a run that was killed outright
 * (its lock died with it): record it as interrupted and clear it.
 */
static void take_killed(struct state *st, void *ctx)
{
	struct killed_ctx *k = ctx;
	char when[64];
	struct tm tm;

	if (!st->running_pid)
		return;
	k->found = true;
	k->since = st->running_since;
	k->trigger = strcmp(st->running_trigger, "scheduled") ? JOB_MANUAL : JOB_SCHEDULED;
	localtime_r(&k->since, &tm);
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S %Z", &tm);
	snprintf(k->msg, sizeof(k->msg),
		 "the %s run at %s was interrupted: it was killed before it finished (pid %d); "
		 "no archive was stored",
		 k->trigger == JOB_SCHEDULED ? "scheduled" : "manual", when, (int)st->running_pid);
	struct event ev = {
		.status = "interrupted", .trigger = k->trigger, .started = k->since, .error = k->msg
	};
	fill_record(&st->last, &ev, time(NULL));
	if (k->trigger == JOB_SCHEDULED)
		fill_record(&st->last_scheduled, &ev, time(NULL));
	st->runs_failure++;
	st->running_pid = 0;
	st->running_since = 0;
	st->running_trigger[0] = '\0';
}

/* A run killed outright never told anyone: the next one that holds the lock does. */
static void report_killed(const struct config *cfg)
{
	struct killed_ctx k = { 0 };
	struct err e = ERR_INIT;

	if (state_update(cfg, take_killed, &k, &e) < 0) {
		log_warn("cannot read the state file: %s", e.msg);
		return;
	}
	if (!k.found)
		return;
	log_error("%s", k.msg);
	struct event ev = { .status = "interrupted",
			    .trigger = k.trigger,
			    .started = k.since,
			    .final = true,
			    .error = k.msg,
			    .killed = true };
	tell(cfg, cfg->webhook.failure, "BACKUP_FAILURE_WEBHOOK", &ev, false);
}

static void record_refused(struct state *st, void *ctx)
{
	const struct event *ev = ctx;

	fill_record(&st->last, ev, ev->started);
	if (ev->trigger == JOB_SCHEDULED)
		fill_record(&st->last_scheduled, ev, ev->started);
	st->runs_failure++;
}

void job_report_refused(const struct config *cfg, enum job_trigger trigger, const struct err *why)
{
	struct event ev = { .status = "failure",
			    .trigger = trigger,
			    .started = time(NULL),
			    .final = true,
			    .error = why->msg };
	struct err e = ERR_INIT;

	if (state_update(cfg, record_refused, &ev, &e) < 0)
		log_warn("cannot record the run in the state file: %s", e.msg);
	tell(cfg, cfg->webhook.failure, "BACKUP_FAILURE_WEBHOOK", &ev, false);
}

/* The content bytes of the last successful backup of the sources configured now: the estimate. */
static uint64_t expected_bytes(const struct config *cfg)
{
	struct state st;
	struct err e = ERR_INIT;
	uint64_t sum = 0;

	if (state_load(cfg, &st, &e) < 0)
		return 0;
	for (size_t k = 0; k < cfg->nr_sources; k++) {
		char key[sizeof(st.sources[0].label)];
		state_source_key(&cfg->sources[k], key, sizeof(key));
		for (size_t i = 0; i < st.nr_sources; i++)
			if (!strcmp(st.sources[i].label, key))
				sum += st.sources[i].bytes;
	}
	return sum;
}

/* What a run does around the data: commands, and containers stopped and started. */
struct around {
	struct services *svc;
	struct hooks *hk;
};

/* The pre commands, then the stop: a failing command stops nothing. */
static int stop_hook(void *ctx, struct err *e)
{
	struct around *a = ctx;

	if (hooks_pre(a->hk, e) < 0)
		return -1;
	return services_stop(a->svc, e);
}

/* Right after the last source was read: the containers need not wait for the upload. */
static void restart_hook(void *ctx)
{
	struct around *a = ctx;
	struct err e = ERR_INIT;

	if (services_restart(a->svc, &e) < 0)
		log_error("%s", e.msg);
	err_clear(&e);
	hooks_post(a->hk, &e); /* its verdict is job_backup's, at the end */
}

void job_recover_services(const struct config *cfg)
{
	struct config now = *cfg; /* shallow: only lock_timeout differs, never released */
	struct err e = ERR_INIT;
	int fd = -1;

	now.daemon.lock_timeout = 0;
	if (job_lock(&now, &fd, &e) < 0) {
		/* The run holding the lock owns the stopped containers. */
		log_debug("not checking for stopped containers now: %s", e.msg);
		return;
	}
	report_killed(cfg);
	/* A killed restore's data first, then the containers that must see it. */
	if (recover_pending(cfg, &e) < 0)
		log_error("%s", e.msg);
	services_recover(cfg);
	job_unlock(&fd);
}

int job_backup(const struct config *cfg, enum job_trigger trigger, struct backup_result *ret,
	       struct err *e)
{
	struct services *svc = services_new(cfg);
	struct around around = { svc, hooks_new(cfg, false) };
	struct backup_hooks hooks = { stop_hook, restart_hook, &around };
	struct event ev = { .status = "start",
			    .trigger = trigger,
			    .started = time(NULL),
			    .commands = hooks_outcomes(around.hk) };
	struct record_ctx rc = { .ev = &ev, .begin = true };
	struct err se = ERR_INIT;
	double t0 = now_mono();
	int lock_fd = -1, r = -1;
	char size[32];

	log_tail_reset();
	if (job_lock(cfg, &lock_fd, e) < 0)
		goto done;
	rc.locked = true;
	report_killed(cfg);
	ev.started = time(NULL);
	t0 = now_mono();
	if (state_update(cfg, apply_record, &rc, &se) < 0)
		log_warn("cannot record the run in the state file: %s", se.msg);
	tell(cfg, cfg->webhook.start, "BACKUP_START_WEBHOOK", &ev, false);
	/* Never archive a half-swapped target: a killed restore is finished or undone first. */
	r = recover_pending(cfg, e);
	services_recover(cfg);
	if (r == 0)
		r = services_resolve_named(svc, e);
	if (r == 0) {
		progress_start("backup", expected_bytes(cfg));
		r = backup_run_hooks(cfg, &hooks, ret, e);
		progress_stop();
	}
	/* Every path: a failed source or store, a signal. A no-op when the hook did it. */
	err_clear(&se);
	if (services_restart(svc, &se) < 0) {
		if (r == 0)
			r = err_wrap(e, &se, "the backup succeeded, but ");
		else
			log_error("%s", se.msg);
	}
	/* Every path too, once the pre commands ran (each failure is logged as it happens). */
	err_clear(&se);
	if (hooks_post(around.hk, &se) < 0 && r == 0)
		r = err_wrap(e, &se, "the backup succeeded, but ");
	services_finish(svc);
	svc = NULL;
	if (r == 0) {
		log_info("backup '%s' done: %llu files, %s archive", ret->file,
			 (unsigned long long)ret->files,
			 format_size(ret->archive_bytes, size, sizeof(size)));
		struct err pe = ERR_INIT;
		if (job_prune(cfg, false, NULL, &pe) < 0)
			log_warn("%s; the backup itself succeeded", pe.msg);
	}
done:
	services_finish(svc);
	ev.duration = now_mono() - t0;
	ev.final = true;
	if (ret->file) {
		ev.size = ret->archive_bytes;
		ev.file = ret->file;
		ev.kept_in = ret->kept_in;
	}
	if (r == 0) {
		ev.status = "success";
	} else {
		ev.status = e->code == LB_EXIT_INTERRUPTED ? "interrupted" : "failure";
		ev.error = e->msg;
		log_error("%s", e->msg[0] ? e->msg : "failed");
		if (ret->file)
			log_warn("backup '%s' was stored in %s only", ret->file, ret->kept_in);
		else
			log_error("backup failed; no archive was stored");
	}
	rc.begin = false;
	rc.finished = time(NULL);
	rc.cfg = cfg;
	rc.res = ret;
	rc.code = r == 0 ? LB_OK : e->code;
	err_clear(&se);
	if (state_update(cfg, apply_record, &rc, &se) < 0)
		log_warn("cannot record the run in the state file: %s", se.msg);
	if (r == 0)
		tell(cfg, cfg->webhook.success, "BACKUP_SUCCESS_WEBHOOK", &ev, rc.prev_failed);
	else if (e->code != LB_EXIT_INTERRUPTED)
		tell(cfg, cfg->webhook.failure, "BACKUP_FAILURE_WEBHOOK", &ev, false);
	else /* a signal: no failure webhook, as always; the people are told */
		tell(cfg, NULL, NULL, &ev, false);
	job_unlock(&lock_fd);
	hooks_free(around.hk);
	return r;
}

/* After verification: the pre-restore commands, then stop the rest of the Compose project. */
static int stop_project(void *ctx, struct err *e)
{
	struct around *a = ctx;

	if (services_resolve_project(a->svc) < 0 || hooks_pre(a->hk, e) < 0)
		return -1;
	return services_stop(a->svc, e);
}

int job_restore(const struct config *cfg, const char *what, const char *from,
		struct restore_opts *opts, struct job_restore_result *ret, struct err *e)
{
	struct store_set set = { 0 };
	struct store_entry entry = { 0 };
	struct store *store = NULL;
	struct services *svc = NULL;
	struct around around = { 0 };
	struct err se = ERR_INIT;
	int lock_fd = -1, r = -1;

	if (opts->mode == RESTORE_APPLY) {
		/* No backup runs meanwhile, and containers a killed run left stopped come back. */
		if (job_lock(cfg, &lock_fd, e) < 0 || recover_pending(cfg, e) < 0)
			goto out;
		services_recover(cfg);
		svc = services_new(cfg);
		around = (struct around){ svc, hooks_new(cfg, true) };
		opts->before_swap = stop_project;
		opts->ctx = &around;
	}
	if (store_set_open(cfg, &set, e) < 0 || (from && store_set_only(&set, from, e) < 0) ||
	    restore_find(&set, what, &entry, &store, e) < 0)
		goto restart;
	log_info("reading backup '%s' from the %s store", entry.file, store->ops->kind);
	/* Not for `ls` (which may print JSON): it reads only what it lists. */
	if (opts->mode != RESTORE_LIST)
		progress_start(opts->mode == RESTORE_VERIFY ? "verify" : "restore",
			       expected_bytes(cfg));
	if (restore_run(cfg, store, &entry, opts, &ret->stats, e) == 0) {
		ret->restored = true;
		r = 0;
	}
	progress_stop();
restart:
	/* Every path, a signal included: what was stopped starts again. */
	if (svc && services_restart(svc, &se) < 0) {
		if (r == 0)
			err_wrap(e, &se, "the data was restored, but ");
		else
			log_error("%s", se.msg);
		r = -1;
	}
	err_clear(&se);
	if (hooks_post(around.hk, &se) < 0) { /* once the pre-restore commands ran */
		if (r == 0)
			err_wrap(e, &se, "the data was restored, but ");
		r = -1;
	}
	services_finish(svc);
	ret->file = TAKE_PTR(entry.file);
out:
	hooks_free(around.hk);
	job_unlock(&lock_fd);
	free(entry.file);
	store_set_release(&set);
	return r;
}

/* ---- verify --latest, restore drills ---- */

static int cmp_newest_first(const void *a, const void *b)
{
	const struct store_entry *x = a, *y = b;

	return strcmp(y->id.timestamp, x->id.timestamp);
}

/* The archive a verification takes in `store`: `what`, the newest, or one of the N newest. */
static int pick_entry(struct store *store, const struct job_verify_opts *o, struct store_entry *ret,
		      struct err *e)
{
	struct store_list l = { 0 };
	size_t pick = 0;

	if (store->ops->list(store, &l, e) < 0) {
		store_list_release(&l);
		return -1;
	}
	qsort(l.v, l.nr, sizeof(*l.v), cmp_newest_first);
	if (o->what) {
		for (pick = 0; pick < l.nr; pick++)
			if ((strlen(o->what) == TIMESTAMP_LEN &&
			     !strcmp(l.v[pick].id.timestamp, o->what)) ||
			    !strcmp(l.v[pick].file, o->what))
				break;
	} else if (o->random && l.nr) {
		size_t n = l.nr < o->pick_last ? l.nr : o->pick_last;
		uint32_t r = 0;
		if (getentropy(&r, sizeof(r)) < 0)
			r = (uint32_t)time(NULL);
		pick = r % n;
	}
	if (pick >= l.nr) {
		store_list_release(&l);
		return err_set(e, LB_EXIT_NOT_FOUND,
			       o->what ? "the %s store holds no backup '%s'"
				       : "the %s store holds no backup%s",
			       store->ops->kind, o->what ? o->what : "");
	}
	*ret = l.v[pick];
	ret->file = xstrdup(l.v[pick].file);
	ret->where = 0;
	store_list_release(&l);
	return 0;
}

struct verify_record {
	const struct event *ev;
	time_t finished;
	const struct store_set *set;
	const bool *passed; /* per store of set */
	const bool *tried;
};

static void apply_verify(struct state *st, void *ctx)
{
	struct verify_record *c = ctx;

	fill_record(&st->last_verify, c->ev, c->finished);
	if (!strcmp(c->ev->status, "success"))
		st->verifies_success++;
	else
		st->verifies_failure++;
	for (size_t i = 0; c->tried && i < c->set->nr; i++) {
		if (!c->tried[i])
			continue;
		struct labelled_stat *l = state_label(st->verify_stores, &st->nr_verify_stores,
						      STATE_MAX_STORES, c->set->v[i]->ops->kind);
		if (!l)
			continue;
		if (c->passed[i])
			l->last_success = c->finished;
		else
			l->failures++;
	}
}

int job_verify(const struct config *cfg, const struct job_verify_opts *o, struct err *e)
{
	struct store_set set = { 0 };
	struct event ev = { .status = "start",
			    .trigger = o->trigger,
			    .started = time(NULL),
			    .job = o->drill ? "restore drill" : "verification" };
	struct strbuf checked = STRBUF_INIT;
	bool *passed = NULL, *tried = NULL, found = false;
	struct err se = ERR_INIT;
	double t0 = now_mono();
	int lock_fd = -1, r = -1;
	char size[32];

	log_tail_reset();
	/* A drill creates and sweeps scratch databases: one at a time, never during a backup. */
	if (o->drill && job_lock(cfg, &lock_fd, e) < 0)
		goto done;
	if (store_set_open(cfg, &set, e) < 0 || (o->from && store_set_only(&set, o->from, e) < 0))
		goto done;
	passed = xcalloc(set.nr ? set.nr : 1, sizeof(*passed));
	tried = xcalloc(set.nr ? set.nr : 1, sizeof(*tried));
	r = 0;
	for (size_t i = 0; i < set.nr && !signals_pending(); i++) {
		struct store *store = set.v[i];
		struct store_entry entry = { 0 };
		struct restore_opts opts = { .mode = o->drill ? RESTORE_DRILL : RESTORE_VERIFY,
					     .drill_report = o->report };
		struct restore_stats stats = { 0 };
		struct err pe = ERR_INIT;

		if (pick_entry(store, o, &entry, &pe) < 0) {
			/* Naming one backup: the stores without it are not asked about it. */
			if (o->what && pe.code == LB_EXIT_NOT_FOUND)
				continue;
			tried[i] = true;
			log_error("%s", pe.msg);
			if (!err_isset(e))
				err_copy(e, &pe);
			r = -1;
			continue;
		}
		found = true;
		tried[i] = true;
		log_info("%s of backup '%s' from the %s store",
			 o->drill ? "restore drill" : "verify", entry.file, store->ops->kind);
		progress_start("verify", expected_bytes(cfg));
		int rr = restore_run(cfg, store, &entry, &opts, &stats, &pe);
		progress_stop();
		strbuf_addf(&checked, "%s%s: %s", checked.len ? ", " : "", store->ops->kind,
			    entry.file);
		if (rr == 0) {
			passed[i] = true;
			log_info(
				"%s of backup '%s' in the %s store passed: %llu files, %s verified",
				o->drill ? "restore drill" : "verification", entry.file,
				store->ops->kind, (unsigned long long)stats.files,
				format_size(stats.bytes, size, sizeof(size)));
		} else {
			struct err we = ERR_INIT;
			err_wrap(&we, &pe, "%s of backup '%s' in the %s store failed: ",
				 o->drill ? "the restore drill" : "the verification", entry.file,
				 store->ops->kind);
			log_error("%s", we.msg);
			if (!err_isset(e))
				err_copy(e, &we);
			r = -1;
		}
		free(entry.file);
	}
	if (r == 0 && signals_pending()) {
		err_set(e, LB_EXIT_INTERRUPTED, "interrupted by signal %d", signals_pending());
		r = -1;
	}
	if (r == 0 && !found) {
		if (o->what)
			err_set(e, LB_EXIT_NOT_FOUND,
				"no backup '%s' of '%s' (see 'lifeboat list')", o->what, cfg->name);
		else
			err_set(e, LB_EXIT_NOT_FOUND, "no backup of '%s' to verify", cfg->name);
		r = -1;
	}
done:
	ev.duration = now_mono() - t0;
	ev.final = true;
	ev.file = checked.len ? checked.buf : NULL;
	ev.status = r == 0 ? "success" : e->code == LB_EXIT_INTERRUPTED ? "interrupted" : "failure";
	ev.error = r == 0 ? NULL : e->msg;
	struct verify_record vr = {
		.ev = &ev, .finished = time(NULL), .set = &set, .passed = passed, .tried = tried
	};
	bool prev_failed = false;
	struct state before;
	if (state_load(cfg, &before, &se) == 0)
		prev_failed = failed_status(before.last_verify.status);
	err_clear(&se);
	if (state_update(cfg, apply_verify, &vr, &se) < 0)
		log_warn("cannot record the verification in the state file: %s", se.msg);
	/*
	 * A passed drill pings no success webhook: a dead man's switch (healthchecks.io) fed
	 * by drills would miss a backup schedule that stopped. A failed one pings the failure
	 * webhook; the notifications follow BACKUP_NOTIFY_LEVEL either way.
	 */
	if (r == 0)
		tell(cfg, NULL, NULL, &ev, prev_failed);
	else if (e->code != LB_EXIT_INTERRUPTED)
		tell(cfg, cfg->webhook.failure, "BACKUP_FAILURE_WEBHOOK", &ev, false);
	else
		tell(cfg, NULL, NULL, &ev, false);
	job_unlock(&lock_fd);
	free(passed);
	free(tried);
	strbuf_release(&checked);
	store_set_release(&set);
	return r;
}
