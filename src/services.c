/* Stopping containers for a run, recording them, and starting them again on every path. */
#include "common.h"

#include <fcntl.h>
#include <poll.h>
#include <time.h>

#include <jansson.h>

#include "dburi.h"
#include "docker.h"
#include "fs.h"
#include "labels.h"
#include "log.h"
#include "services.h"
#include "signals.h"
#include "sources/source.h"
#include "state.h"
#include "strbuf.h"
#include "strvec.h"
#include "xalloc.h"

#define SWARM_DOWN_TIMEOUT 120

struct target {
	char *id;      /* container id, or Swarm service id */
	char *name;    /* for logs: container or service name */
	char *service; /* Compose service (dependency order), may be NULL */
	char *depends; /* com.docker.compose.depends_on, may be NULL */
	bool swarm;
	uint64_t replicas; /* Swarm: the count to restore */
	bool stopped;	   /* we may have stopped it: start it again */
};

struct services {
	const struct config *cfg;
	struct docker *d;
	struct target *v; /* in start order */
	size_t nr;
	char *self;    /* our own container id, never stopped */
	bool recorded; /* the state file lists them */
	time_t restarted;
};

struct services *services_new(const struct config *cfg)
{
	struct services *s = xcalloc(1, sizeof(*s));
	s->cfg = cfg;
	return s;
}

static char *stopped_path(const struct config *cfg)
{
	return xasprintf("%s/%s.stopped.json", cfg->state_dir, cfg->name);
}

static void target_release(struct target *t)
{
	free(t->id);
	free(t->name);
	free(t->service);
	free(t->depends);
}

static struct target *add_target(struct services *s, const char *id, const char *name)
{
	for (size_t i = 0; i < s->nr; i++)
		if (!strcmp(s->v[i].id, id))
			return NULL;
	s->v = xrealloc(s->v, (s->nr + 1) * sizeof(*s->v));
	struct target *t = &s->v[s->nr++];
	*t = (struct target){ .id = xstrdup(id), .name = xstrdup(name ? name : id) };
	return t;
}

/* Add a Swarm service (by id or name) with its current replica count. */
static int add_swarm(struct services *s, const char *service, const char *label, struct err *e)
{
	uint64_t replicas;

	if (docker_service_replicas(s->d, service, &replicas, e) < 0)
		return -1;
	if (!replicas) {
		log_info("Swarm service '%s' has 0 replicas: nothing to stop", label);
		return 0;
	}
	struct target *t = add_target(s, service, label);
	if (t) {
		t->swarm = true;
		t->replicas = replicas;
	}
	return 0;
}

/* Add a running container; one that belongs to a Swarm service is scaled instead. */
static int add_container(struct services *s, const json_t *c, struct err *e)
{
	const char *id = json_string_value(json_object_get(c, "Id"));
	const char *swarm = docker_label(c, "com.docker.swarm.service.id");
	const char *sname = docker_label(c, "com.docker.swarm.service.name");

	if (!id)
		return 0;
	if (s->self && !strcmp(id, s->self)) {
		log_warn("'%s' is lifeboat's own container: not stopping it",
			 docker_container_name(c));
		return 0;
	}
	if (swarm)
		return add_swarm(s, swarm, sname ? sname : swarm, e);
	struct target *t = add_target(s, id, docker_container_name(c));
	if (t) {
		const char *svc = docker_label(c, "com.docker.compose.service");
		const char *dep = docker_label(c, "com.docker.compose.depends_on");
		t->service = svc ? xstrdup(svc) : NULL;
		t->depends = dep ? xstrdup(dep) : NULL;
	}
	return 0;
}

/* Put the targets in start order: dependencies first. */
static void sort_targets(struct services *s)
{
	if (!s->nr)
		return; /* s->v may be NULL: memcpy(NULL, ..., 0) is undefined */
	const char **names = xcalloc(s->nr + 1, sizeof(*names));
	const char **deps = xcalloc(s->nr + 1, sizeof(*deps));
	size_t *order = xcalloc(s->nr + 1, sizeof(*order));
	struct target *v = xcalloc(s->nr + 1, sizeof(*v));

	for (size_t i = 0; i < s->nr; i++) {
		names[i] = s->v[i].service ? s->v[i].service : s->v[i].name;
		deps[i] = s->v[i].depends;
	}
	services_dependency_order(names, deps, s->nr, order);
	for (size_t i = 0; i < s->nr; i++)
		v[i] = s->v[order[i]];
	memcpy(s->v, v, s->nr * sizeof(*v));
	free(v);
	free(order);
	free(names);
	free(deps);
}

static int open_docker(struct services *s, struct err *e)
{
	if (s->d)
		return 0;
	return docker_open(s->cfg->docker.host, &s->d, e);
}

/* One BACKUP_STOP_SERVICES name: Compose service, container name, or Swarm service. */
static const struct source_spec *serves_database(const struct config *cfg, const json_t *c);

/* A database must run while it is dumped: stopping its container is a contradiction. */
static int check_not_database(struct services *s, const char *name, const json_t *c, struct err *e)
{
	const struct source_spec *db = serves_database(s->cfg, c);

	if (!db)
		return 0;
	return err_set(e, LB_EXIT_CONFIG,
		       "BACKUP_STOP_SERVICES names '%s', which serves %s source '%s' (%s): a "
		       "database must run while it is dumped; nothing was stopped",
		       name, source_var(db->kind), db->name, db->path);
}

static int resolve_one(struct services *s, const char *project, const char *name, struct err *e)
{
	json_t *list = NULL, *c = NULL;
	struct err se = ERR_INIT;

	if (project) {
		auto_free char *l1 = xasprintf("com.docker.compose.project=%s", project);
		auto_free char *l2 = xasprintf("com.docker.compose.service=%s", name);
		const char *labels[] = { l1, l2, NULL };
		if (docker_list(s->d, labels, true, &list, e) < 0)
			return -1;
		size_t i, running = 0;
		json_t *it;
		json_array_foreach (list, i, it) {
			if (!docker_container_running(it))
				continue;
			running++;
			if (check_not_database(s, name, it, e) < 0 || add_container(s, it, e) < 0) {
				json_decref(list);
				return -1;
			}
		}
		size_t found = json_array_size(list);
		json_decref(list);
		if (found) {
			if (!running)
				log_info("Compose service '%s' is not running: nothing to stop",
					 name);
			return 0;
		}
	}
	if (docker_inspect(s->d, name, &c, e) < 0)
		return -1;
	if (c) {
		int r = check_not_database(s, name, c, e);
		if (!r && docker_container_running(c))
			r = add_container(s, c, e);
		else
			log_info("container '%s' is not running: nothing to stop", name);
		json_decref(c);
		return r;
	}
	if (add_swarm(s, name, name, &se) == 0)
		return 0;
	if (se.code != LB_EXIT_NOT_FOUND)
		return err_copy(e, &se);
	return err_set(e, LB_EXIT_CONFIG,
		       "BACKUP_STOP_SERVICES: no service of Compose project '%s', container or "
		       "Swarm service is named '%s'; nothing was stopped",
		       project ? project : "(none)", name);
}

/* The running containers whose lifeboat.stop label selects them, as if named. */
static int resolve_labelled(struct services *s, const char *project, struct err *e)
{
	struct err le = ERR_INIT;
	json_t *list = NULL, *c;
	size_t i;

	if (labels_find(s->d, project, s->cfg->name, LABEL_STOP, &list, &le) < 0) {
		/* A socket proxy that will not list: the labels may not even be used. */
		log_warn("no " LABEL_STOP " labels looked up: %s", le.msg);
		return 0;
	}
	json_array_foreach (list, i, c) {
		const struct source_spec *db = serves_database(s->cfg, c);
		if (db) {
			err_set(e, LB_EXIT_CONFIG,
				"container '%s' is labelled " LABEL_STOP "=%s, but it serves %s "
				"source '%s' (%s): a database must run while it is dumped; nothing "
				"was stopped",
				docker_container_name(c), docker_label(c, LABEL_STOP),
				source_var(db->kind), db->name, db->path);
			json_decref(list);
			return -1;
		}
		if (add_container(s, c, e) < 0) {
			json_decref(list);
			return -1;
		}
	}
	json_decref(list);
	return 0;
}

int services_resolve_named(struct services *s, struct err *e)
{
	const struct strvec *names = &s->cfg->stop.services;
	struct err pe = ERR_INIT, oe = ERR_INIT;

	if (open_docker(s, &oe) < 0) {
		if (!names->nr) {
			/* Labels need the engine; without BACKUP_STOP_SERVICES it is optional. */
			log_debug("no " LABEL_STOP " labels looked up: %s", oe.msg);
			return 0;
		}
		return err_wrap(e, &oe, "BACKUP_STOP_SERVICES needs the Docker engine: ");
	}
	char *project = docker_self_project(s->d, &s->self, &pe);
	if (err_isset(&pe)) {
		if (names->nr)
			return err_copy(e, &pe);
		log_warn("no " LABEL_STOP " labels looked up: %s", pe.msg);
		return 0;
	}
	int r = 0;
	for (size_t i = 0; i < names->nr && r == 0; i++)
		r = resolve_one(s, project, names->v[i], e);
	if (r == 0)
		r = resolve_labelled(s, project, e);
	free(project);
	if (r == 0)
		sort_targets(s);
	return r;
}

/* Does `host` (from a URI, maybe "name:port") name this container or its Compose service? */
static bool host_matches(const json_t *c, const char *host, size_t n)
{
	const char *svc = docker_label(c, "com.docker.compose.service");
	const char *name = docker_container_name(c);

	if (n && host[0] == '[')
		return false;
	size_t hn = strcspn(host, ":");
	if (hn > n)
		hn = n;
	return (svc && strlen(svc) == hn && !strncmp(svc, host, hn)) ||
	       (name && strlen(name) == hn && !strncmp(name, host, hn));
}

/* The database source a container serves (a restore needs it running), or NULL. */
static const struct source_spec *serves_database(const struct config *cfg, const json_t *c)
{
	for (size_t i = 0; i < cfg->nr_sources; i++) {
		const struct source_spec *src = &cfg->sources[i];
		struct dburi u;
		struct err e = ERR_INIT;
		bool hit = false;
		/* A kind restored with its server stopped is stopped like the application. */
		if (!source_is_db(src->kind) || source_ops_for(src->kind)->offline_restore ||
		    dburi_parse(src->uri, "", &u, &e) < 0)
			continue;
		for (const char *h = u.hosts; *h && !hit;) {
			size_t n = strcspn(h, ",");
			hit = host_matches(c, h, n);
			h += n;
			if (*h == ',')
				h++;
		}
		dburi_release(&u);
		if (hit)
			return src;
	}
	return NULL;
}

int services_resolve_project(struct services *s)
{
	struct err e = ERR_INIT;
	char *project = NULL, *label = NULL;
	json_t *list = NULL;
	int r = -1;

	if (open_docker(s, &e) < 0) {
		log_info("restoring without stopping containers: %s", e.msg);
		return 0;
	}
	project = docker_self_project(s->d, &s->self, &e);
	if (!project) {
		log_info("restoring without stopping containers: %s",
			 err_isset(&e) ? e.msg : "lifeboat does not run in a Compose project");
		return 0;
	}
	label = xasprintf("com.docker.compose.project=%s", project);
	const char *labels[] = { label, NULL };
	if (docker_list(s->d, labels, false, &list, &e) < 0)
		goto out;
	/*
	 * The engine lists the newest first: walk it backwards so that, without
	 * depends_on labels (Compose v1 sets none), containers start again in the
	 * order Compose created them, which follows depends_on.
	 */
	for (size_t i = json_array_size(list); i-- > 0;) {
		json_t *c = json_array_get(list, i);
		const char *id = json_string_value(json_object_get(c, "Id"));
		if (id && s->self && !strcmp(id, s->self))
			continue;
		const struct source_spec *db = serves_database(s->cfg, c);
		if (db && docker_container_running(c)) {
			log_info("keeping '%s' running: the restore of %s '%s' needs it",
				 docker_container_name(c), source_kind_str(db->kind), db->name);
			continue;
		}
		if (docker_container_running(c) && add_container(s, c, &e) < 0)
			goto out;
	}
	sort_targets(s);
	r = 0;
out:
	if (r < 0) {
		log_warn("restoring without stopping containers: %s", e.msg);
		for (size_t k = 0; k < s->nr; k++)
			target_release(&s->v[k]);
		s->nr = 0;
	}
	json_decref(list);
	free(label);
	free(project);
	return 0;
}

static int write_record(const struct config *cfg, const struct target *v, size_t nr, struct err *e)
{
	auto_free char *path = stopped_path(cfg);
	json_t *arr = json_array();

	for (size_t i = 0; i < nr; i++)
		json_array_append_new(arr, json_pack("{s:s, s:s, s:b, s:I}", "id", v[i].id, "name",
						     v[i].name, "swarm", v[i].swarm, "replicas",
						     (json_int_t)v[i].replicas));
	json_t *root = json_pack("{s:i, s:I, s:o}", "pid", (int)getpid(), "since",
				 (json_int_t)time(NULL), "targets", arr);
	auto_free char *text = root ? json_dumps(root, JSON_INDENT(2)) : NULL;
	json_decref(root);
	if (!text)
		return err_set(e, LB_EXIT_INTERNAL, "cannot encode '%s'", path);
	if (state_dir_create(cfg, e) < 0)
		return -1;
	/* Durably, or not at all: a record a power loss can lose would strand them. */
	int r = write_file_atomic(path, text, strlen(text), 0600);
	if (r < 0)
		return err_set(e, LB_EXIT_INTERNAL,
			       "cannot record the containers about to be stopped in '%s': %s; not "
			       "stopping them",
			       path, strerror(-r));
	return 0;
}

/* Sleep `seconds`, in short naps so a signal cuts it short. */
static void nap(unsigned seconds)
{
	struct timespec t0, now;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		if (signals_pending())
			return;
		clock_gettime(CLOCK_MONOTONIC, &now);
		double left = (double)seconds - (double)(now.tv_sec - t0.tv_sec) -
			      (double)(now.tv_nsec - t0.tv_nsec) / 1e9;
		if (left <= 0)
			return;
		poll(NULL, 0, left > 0.2 ? 200 : (int)(left * 1000) + 1);
	}
}

int services_stop(struct services *s, struct err *e)
{
	if (!s->nr)
		return 0;
	if (write_record(s->cfg, s->v, s->nr, e) < 0)
		return -1;
	s->recorded = true;
	/* Dependents first: the reverse of the start order. */
	for (size_t i = s->nr; i-- > 0;) {
		struct target *t = &s->v[i];
		if (signals_pending())
			return err_set(e, LB_EXIT_INTERRUPTED,
				       "interrupted by signal %d while stopping containers",
				       signals_pending());
		t->stopped = true;
		if (t->swarm) {
			log_info("scaling Swarm service '%s' from %llu to 0 replicas", t->name,
				 (unsigned long long)t->replicas);
			if (docker_service_scale(s->d, t->id, 0, e) < 0 ||
			    docker_service_wait_down(s->d, t->id, SWARM_DOWN_TIMEOUT, e) < 0)
				return -1;
		} else {
			log_info("stopping container '%s'", t->name);
			if (docker_stop(s->d, t->id, e) < 0)
				return -1;
		}
	}
	if (s->cfg->stop.stop_wait) {
		log_debug("waiting %u s (BACKUP_STOP_WAIT)", s->cfg->stop.stop_wait);
		nap(s->cfg->stop.stop_wait);
	}
	if (signals_pending())
		return err_set(e, LB_EXIT_INTERRUPTED, "interrupted by signal %d",
			       signals_pending());
	return 0;
}

/* Start each stopped target; the names of those that failed go to `failed`. */
static int start_all(struct services *s, struct strbuf *failed, struct err *e)
{
	int ret = 0;

	for (size_t i = 0; i < s->nr; i++) {
		struct target *t = &s->v[i];
		struct err te = ERR_INIT;
		if (!t->stopped)
			continue;
		int r = t->swarm ? docker_service_scale(s->d, t->id, t->replicas, &te)
				 : docker_start(s->d, t->id, &te);
		if (r < 0 && te.code == LB_EXIT_NOT_FOUND) {
			/* Removed meanwhile (docker compose down): nothing left to start. */
			log_warn("'%s' no longer exists: not starting it again", t->name);
			t->stopped = false;
			continue;
		}
		if (r < 0) {
			log_error("cannot start '%s' again: %s", t->name, te.msg);
			strbuf_addf(failed, "%s'%s'", failed->len ? ", " : "", t->name);
			if (!err_isset(e))
				err_set(e, LB_EXIT_INTERNAL, "%s", te.msg);
			ret = -1;
			continue;
		}
		if (t->swarm)
			log_info("scaled Swarm service '%s' back to %llu replicas", t->name,
				 (unsigned long long)t->replicas);
		else
			log_info("started container '%s' again", t->name);
		t->stopped = false;
	}
	return ret;
}

int services_restart(struct services *s, struct err *e)
{
	struct strbuf failed = STRBUF_INIT;
	struct err se = ERR_INIT;
	bool any = false;

	for (size_t i = 0; i < s->nr; i++)
		any |= s->v[i].stopped;
	if (!any) {
		if (s->recorded) {
			auto_free char *path = stopped_path(s->cfg);
			unlink(path);
			s->recorded = false;
		}
		return 0;
	}
	if (start_all(s, &failed, &se) < 0) {
		err_set(e, LB_EXIT_INTERNAL,
			"could not start %s again (lifeboat retries at its next start): %s",
			failed.buf, se.msg);
		strbuf_release(&failed);
		return -1;
	}
	strbuf_release(&failed);
	s->restarted = time(NULL);
	auto_free char *path = stopped_path(s->cfg);
	if (unlink(path) < 0 && errno != ENOENT)
		log_warn("cannot remove '%s': %s", path, strerror(errno));
	s->recorded = false;
	return 0;
}

void services_finish(struct services *s)
{
	if (!s)
		return;
	if (s->restarted && s->cfg->stop.start_wait) {
		time_t passed = time(NULL) - s->restarted;
		if (passed < (time_t)s->cfg->stop.start_wait) {
			log_debug("waiting %u s (BACKUP_START_WAIT)", s->cfg->stop.start_wait);
			nap(s->cfg->stop.start_wait - (unsigned)passed);
		}
	}
	for (size_t i = 0; i < s->nr; i++)
		target_release(&s->v[i]);
	free(s->v);
	free(s->self);
	docker_free(s->d);
	free(s);
}

int services_recover(const struct config *cfg)
{
	auto_free char *path = stopped_path(cfg);
	struct strbuf text = STRBUF_INIT;
	struct err e = ERR_INIT;
	json_error_t je;
	int r = read_file_capped(path, 1u << 20, &text);

	if (r == -ENOENT) {
		strbuf_release(&text);
		return 0;
	}
	json_t *root = r < 0 ? NULL : json_loadb(text.buf, text.len, 0, &je);
	strbuf_release(&text);
	if (!root) {
		log_error("cannot read '%s' (containers a killed run left stopped): %s", path,
			  r < 0 ? strerror(-r) : je.text);
		return -1;
	}
	struct services *s = services_new(cfg);
	size_t i;
	json_t *t;
	json_array_foreach (json_object_get(root, "targets"), i, t) {
		const char *id = json_string_value(json_object_get(t, "id"));
		const char *name = json_string_value(json_object_get(t, "name"));
		struct target *nt = id ? add_target(s, id, name) : NULL;
		if (!nt)
			continue;
		nt->swarm = json_is_true(json_object_get(t, "swarm"));
		nt->replicas = (uint64_t)json_integer_value(json_object_get(t, "replicas"));
		nt->stopped = true;
	}
	log_warn("a run (pid %d) was killed while containers were stopped: starting them again",
		 (int)json_integer_value(json_object_get(root, "pid")));
	json_decref(root);
	s->recorded = true;
	r = open_docker(s, &e) < 0 ? -1 : services_restart(s, &e);
	if (r < 0)
		log_error("%s", e.msg);
	s->restarted = 0; /* no BACKUP_START_WAIT here: nothing waits for them */
	services_finish(s);
	return r;
}

/* Does the depends_on label `deps` name `name` ("a:cond:restart,b" or "a,b")? */
static bool depends_on(const char *deps, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = deps; p && *p;) {
		size_t len = strcspn(p, ",");
		size_t nlen = strcspn(p, ":,");
		if (nlen == n && !strncmp(p, name, n))
			return true;
		p += len;
		p += *p == ',';
	}
	return false;
}

void services_dependency_order(const char *const *names, const char *const *depends_on_v, size_t nr,
			       size_t *order)
{
	bool *placed = xcalloc(nr + 1, sizeof(*placed));

	for (size_t k = 0; k < nr; k++) {
		size_t pick = nr;
		for (size_t i = 0; i < nr && pick == nr; i++) {
			if (placed[i])
				continue;
			bool ready = true;
			for (size_t j = 0; j < nr && ready; j++)
				if (!placed[j] && j != i && strcmp(names[j], names[i]) &&
				    depends_on(depends_on_v[i], names[j]))
					ready = false;
			if (ready)
				pick = i;
		}
		if (pick == nr) /* a cycle: take the first one left */
			for (pick = 0; placed[pick]; pick++)
				;
		placed[pick] = true;
		order[k] = pick;
	}
	free(placed);
}
