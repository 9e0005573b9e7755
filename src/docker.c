/* The Docker Engine API client (unix socket or TCP, JSON over http.c): containers, services. */
#include "common.h"

#include <limits.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

#include "docker-internal.h"
#include "docker.h"
#include "fs.h"
#include "http.h"
#include "parse.h"
#include "strbuf.h"
#include "xalloc.h"

#define ANSWER_MAX    (4u << 20)
#define API_MIN_MINOR 41
#define API_MAX_MINOR 45

/* One request to an absolute path (with or without the /vX.Y prefix). */
static int raw_request(struct docker *d, const char *method, const char *path, json_t *body,
		       long *ret_status, json_t **ret_json, struct err *e)
{
	struct strbuf answer = STRBUF_INIT, url = STRBUF_INIT;
	struct curl_slist *hdrs = NULL;
	char *text = NULL;
	int ret = -1;

	strbuf_addf(&url, "%s%s", d->base, path);
	struct http_req req = { .method = method,
				.url = url.buf,
				.unix_socket = d->unix_path,
				.protocols = "http",
				.connect_timeout_s = 10,
				/* A graceful stop may take the container's whole stop timeout. */
				.timeout_s = 900,
				.resp = &answer,
				.cap = ANSWER_MAX,
				.cap_stops = true };
	if (body) {
		text = json_dumps(body, JSON_COMPACT);
		if (!text) {
			err_set(e, LB_EXIT_INTERNAL, "cannot encode a Docker request");
			goto out;
		}
		hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
		req.body = text;
		req.body_len = strlen(text);
	}
	req.headers = hdrs;
	long status = 0;
	CURLcode cc = http_perform(d->h, &req, &status);
	if (cc != CURLE_OK) {
		if (answer.overflowed)
			err_set(e, LB_EXIT_INTERNAL,
				"the Docker engine's answer to %s %s is over %u bytes", method,
				path, ANSWER_MAX);
		else
			err_set(e, LB_EXIT_CONFIG,
				"cannot talk to the Docker engine at '%s': %s; %s", d->desc,
				http_error_text(cc, req.errbuf), DOCKER_SOCKET_HINT);
		goto out;
	}
	*ret_status = status;
	if (ret_json) {
		*ret_json = NULL;
		if (answer.len) {
			json_error_t je;
			*ret_json = json_loadb(answer.buf, answer.len, 0, &je);
			if (!*ret_json && status < 300) {
				err_set(e, LB_EXIT_INTERNAL,
					"the Docker engine answered %s %s with invalid JSON: %s",
					method, path, je.text);
				goto out;
			}
		}
	}
	ret = 0;
out:
	curl_slist_free_all(hdrs);
	free(text);
	strbuf_release(&answer);
	strbuf_release(&url);
	return ret;
}

int docker_request(struct docker *d, const char *method, const char *path, json_t *body,
		   long *ret_status, json_t **ret_json, struct err *e)
{
	auto_free char *full = xasprintf("/v%s%s", d->api, path);
	return raw_request(d, method, full, body, ret_status, ret_json, e);
}

const char *docker_message(const json_t *answer)
{
	const char *m = json_string_value(json_object_get(answer, "message"));
	return m ? m : "";
}

const char *docker_api_version(const struct docker *d)
{
	return d->api;
}

int docker_api_negotiate(const json_t *version, char *ret_api, size_t len)
{
	const char *api = json_string_value(json_object_get(version, "ApiVersion"));
	unsigned major = 0, minor = 0;

	if (!api || sscanf(api, "%u.%u", &major, &minor) != 2)
		return -EPROTO;
	if (major != 1 || minor < API_MIN_MINOR)
		return -ENOTSUP;
	snprintf(ret_api, len, "1.%u", minor > API_MAX_MINOR ? API_MAX_MINOR : minor);
	return 0;
}

static int parse_host(struct docker *d, const char *host, struct err *e)
{
	if (!host || !*host)
		host = "unix:///var/run/docker.sock";
	d->desc = xstrdup(host);
	if (!strncmp(host, "unix://", 7) && host[7] == '/') {
		if (strlen(host + 7) >= sizeof(((struct sockaddr_un *)0)->sun_path))
			return err_set(e, LB_EXIT_CONFIG, "DOCKER_HOST '%s': the path is too long",
				       host);
		d->unix_path = xstrdup(host + 7);
		d->base = xstrdup("http://localhost");
		return 0;
	}
	if (!strncmp(host, "tcp://", 6) && host[6]) {
		const char *hp = host + 6;
		size_t n = strcspn(hp, "/");
		if (hp[n] && strcmp(hp + n, "/"))
			return err_set(e, LB_EXIT_CONFIG,
				       "DOCKER_HOST '%s' is invalid: expected tcp://HOST:PORT",
				       host);
		char *hostport = xstrndup(hp, n);
		char *colon = strrchr(hostport, ':');
		if (!colon || colon == hostport || strchr(colon, ']') ||
		    parse_port(colon + 1, strlen(colon + 1)) < 0) {
			free(hostport);
			return err_set(e, LB_EXIT_CONFIG,
				       "DOCKER_HOST '%s' is invalid: expected tcp://HOST:PORT",
				       host);
		}
		*colon = '\0';
		d->tcp_port = xstrdup(colon + 1);
		const char *h = hostport;
		size_t hl = strlen(h);
		if (h[0] == '[' && h[hl - 1] == ']')
			d->tcp_host = xstrndup(h + 1, hl - 2);
		else
			d->tcp_host = xstrdup(h);
		d->base = xasprintf("http://%s:%s", hostport, d->tcp_port);
		free(hostport);
		return 0;
	}
	return err_set(e, LB_EXIT_CONFIG,
		       "DOCKER_HOST '%s' is not supported: use unix:///PATH or tcp://HOST:PORT "
		       "(no TLS; put a socket proxy on a private network)",
		       host);
}

int docker_host_check(const char *host, struct err *e)
{
	struct docker *d = xcalloc(1, sizeof(*d));
	int r = parse_host(d, host, e);

	docker_free(d);
	return r;
}

int docker_open(const char *host, struct docker **ret, struct err *e)
{
	struct docker *d = xcalloc(1, sizeof(*d));
	json_t *v = NULL;
	long status = 0;

	if (parse_host(d, host, e) < 0)
		goto fail;
	if (d->unix_path && access(d->unix_path, F_OK) < 0) {
		err_set(e, LB_EXIT_CONFIG, "no Docker socket at '%s': %s; %s", d->unix_path,
			strerror(errno), DOCKER_SOCKET_HINT);
		goto fail;
	}
	d->h = http_handle();
	if (!d->h) {
		err_set(e, LB_EXIT_INTERNAL, "cannot initialise libcurl");
		goto fail;
	}
	if (raw_request(d, "GET", "/version", NULL, &status, &v, e) < 0)
		goto fail;
	int r = status == 200 ? docker_api_negotiate(v, d->api, sizeof(d->api)) : -EPROTO;
	if (r == -EPROTO) {
		err_set(e, LB_EXIT_CONFIG,
			"'%s' does not answer like a Docker engine (GET /version: HTTP %ld)",
			d->desc, status);
		goto fail;
	}
	if (r < 0) {
		err_set(e, LB_EXIT_CONFIG,
			"the Docker engine at '%s' speaks API %s; lifeboat needs 1.%d or newer",
			d->desc, json_string_value(json_object_get(v, "ApiVersion")),
			API_MIN_MINOR);
		goto fail;
	}
	json_decref(v);
	*ret = d;
	return 0;
fail:
	json_decref(v);
	docker_free(d);
	return -1;
}

void docker_free(struct docker *d)
{
	if (!d)
		return;
	if (d->h)
		curl_easy_cleanup(d->h);
	free(d->desc);
	free(d->unix_path);
	free(d->tcp_host);
	free(d->tcp_port);
	free(d->base);
	free(d);
}

/* GET prefix + `name` (URL-escaped) + suffix. */
static int get_named(struct docker *d, const char *prefix, const char *name, const char *suffix,
		     long *ret_status, json_t **ret_json, struct err *e)
{
	char *esc = curl_easy_escape(d->h, name, 0);
	auto_free char *path = xasprintf("%s%s%s", prefix, esc ? esc : "", suffix);

	curl_free(esc);
	return docker_request(d, "GET", path, NULL, ret_status, ret_json, e);
}

int docker_inspect(struct docker *d, const char *name, json_t **ret, struct err *e)
{
	json_t *j = NULL;
	long status = 0;

	*ret = NULL;
	if (get_named(d, "/containers/", name, "/json", &status, &j, e) < 0)
		return -1;
	if (status == 404) {
		json_decref(j);
		return 0;
	}
	if (status != 200 || !json_is_object(j)) {
		err_set(e, LB_EXIT_INTERNAL, "cannot inspect container '%s': HTTP %ld %s", name,
			status, docker_message(j));
		json_decref(j);
		return -1;
	}
	*ret = j;
	return 0;
}

bool docker_mountinfo_id(const char *mountinfo, char ret_id[65])
{
	struct strbuf line = STRBUF_INIT;
	bool found = false;

	for (const char *p = mountinfo; !found && *p;) {
		const char *nl = strchrnul(p, '\n');
		strbuf_reset(&line);
		strbuf_add(&line, p, (size_t)(nl - p));
		/* Fields: id parent major:minor root mount-point ... */
		char root[4096], point[4096];
		if (sscanf(line.buf, "%*s %*s %*s %4095s %4095s", root, point) == 2 &&
		    !strcmp(point, "/etc/hostname")) {
			const char *q = strstr(root, "/containers/");
			if (q) {
				q += 12;
				if (strspn(q, "0123456789abcdef") == 64 &&
				    !strcmp(q + 64, "/hostname")) {
					memcpy(ret_id, q, 64);
					ret_id[64] = '\0';
					found = true;
				}
			}
		}
		p = *nl ? nl + 1 : nl;
	}
	strbuf_release(&line);
	return found;
}

/* Our container id from /proc/self/mountinfo (see docker_mountinfo_id). */
static bool id_from_mountinfo(char id[65])
{
	struct strbuf sb = STRBUF_INIT;
	bool found = false;

	if (read_file_capped("/proc/self/mountinfo", 1u << 20, &sb) == 0)
		found = docker_mountinfo_id(sb.buf, id);
	strbuf_release(&sb);
	return found;
}

int docker_self(struct docker *d, json_t **ret_inspect, struct err *e)
{
	char host[256] = "", id[65];
	json_t *j = NULL;

	if (gethostname(host, sizeof(host) - 1) == 0 && host[0] &&
	    strspn(host, "0123456789abcdef") == strlen(host) && strlen(host) >= 12) {
		if (docker_inspect(d, host, &j, e) < 0)
			return -1;
		const char *full = json_string_value(json_object_get(j, "Id"));
		if (j && full && !strncmp(full, host, strlen(host))) {
			*ret_inspect = j;
			return 0;
		}
		json_decref(j);
		j = NULL;
	}
	if (id_from_mountinfo(id)) {
		if (docker_inspect(d, id, &j, e) < 0)
			return -1;
		if (j) {
			*ret_inspect = j;
			return 0;
		}
	}
	return err_set(e, LB_EXIT_NOT_FOUND,
		       "cannot find lifeboat's own container on the Docker engine at '%s' "
		       "(neither the hostname '%s' nor /proc/self/mountinfo name one)",
		       d->desc, host);
}

const char *docker_label(const json_t *inspect_or_list, const char *key)
{
	const json_t *labels = json_object_get(inspect_or_list, "Labels");
	if (!labels)
		labels = json_object_get(json_object_get(inspect_or_list, "Config"), "Labels");
	return json_string_value(json_object_get(labels, key));
}

const char *docker_container_name(const json_t *inspect_or_list)
{
	const char *n = json_string_value(json_object_get(inspect_or_list, "Name"));
	if (!n)
		n = json_string_value(json_array_get(json_object_get(inspect_or_list, "Names"), 0));
	return n && *n == '/' ? n + 1 : n;
}

bool docker_container_running(const json_t *inspect_or_list)
{
	const char *st = json_string_value(json_object_get(inspect_or_list, "State"));
	if (st)
		return !strcmp(st, "running");
	return json_is_true(json_object_get(json_object_get(inspect_or_list, "State"), "Running"));
}

const char *docker_list_pick(const json_t *list)
{
	const char *pick = NULL;
	size_t i;
	json_t *c;

	json_array_foreach (list, i, c) {
		const char *id = json_string_value(json_object_get(c, "Id"));
		const char *st = json_string_value(json_object_get(c, "State"));
		if (id && (!pick || (st && !strcmp(st, "running"))))
			pick = id;
	}
	return pick;
}

char *docker_self_project(struct docker *d, char **ret_self_id, struct err *e)
{
	json_t *self = NULL;
	struct err se = ERR_INIT;

	if (docker_self(d, &self, &se) < 0) {
		if (se.code != LB_EXIT_NOT_FOUND)
			err_copy(e, &se);
		return NULL;
	}
	const char *p = docker_label(self, "com.docker.compose.project");
	char *project = p && *p ? xstrdup(p) : NULL;
	const char *id = json_string_value(json_object_get(self, "Id"));
	if (ret_self_id)
		*ret_self_id = id ? xstrdup(id) : NULL;
	json_decref(self);
	return project;
}

int docker_list(struct docker *d, const char *const labels[], bool all, json_t **ret_array,
		struct err *e)
{
	json_t *f = json_pack("{s:[]}", "label"), *j = NULL;
	long status = 0;

	for (size_t i = 0; labels && labels[i]; i++)
		json_array_append_new(json_object_get(f, "label"), json_string(labels[i]));
	char *ftext = json_dumps(f, JSON_COMPACT);
	char *esc = curl_easy_escape(d->h, ftext ? ftext : "{}", 0);
	auto_free char *path =
		xasprintf("/containers/json?all=%d&filters=%s", all ? 1 : 0, esc ? esc : "");
	curl_free(esc);
	free(ftext);
	json_decref(f);
	if (docker_request(d, "GET", path, NULL, &status, &j, e) < 0)
		return -1;
	if (status != 200 || !json_is_array(j)) {
		err_set(e, LB_EXIT_INTERNAL, "cannot list containers: HTTP %ld %s", status,
			docker_message(j));
		json_decref(j);
		return -1;
	}
	*ret_array = j;
	return 0;
}

int docker_find_container(struct docker *d, const char *service_or_name, char **ret_id,
			  struct err *e)
{
	struct err pe = ERR_INIT;
	json_t *list = NULL, *j = NULL;
	char *project = docker_self_project(d, NULL, &pe);

	if (err_isset(&pe))
		return err_copy(e, &pe);
	if (project) {
		auto_free char *l1 = xasprintf("com.docker.compose.project=%s", project);
		auto_free char *l2 = xasprintf("com.docker.compose.service=%s", service_or_name);
		const char *labels[] = { l1, l2, NULL };
		free(project);
		if (docker_list(d, labels, true, &list, e) < 0)
			return -1;
		const char *pick = docker_list_pick(list);
		if (pick) {
			*ret_id = xstrdup(pick);
			json_decref(list);
			return 0;
		}
		json_decref(list);
	}
	if (docker_inspect(d, service_or_name, &j, e) < 0)
		return -1;
	const char *id = json_string_value(json_object_get(j, "Id"));
	if (!id) {
		json_decref(j);
		return err_set(e, LB_EXIT_NOT_FOUND,
			       "no Compose service or container named '%s' on the Docker engine",
			       service_or_name);
	}
	*ret_id = xstrdup(id);
	json_decref(j);
	return 0;
}

/* POST /containers/{id}/ACTION: 204 done, 304 already so. */
static int container_action(struct docker *d, const char *id, const char *action, struct err *e)
{
	auto_free char *path = xasprintf("/containers/%s/%s", id, action);
	json_t *j = NULL;
	long status = 0;

	if (docker_request(d, "POST", path, NULL, &status, &j, e) < 0)
		return -1;
	if (status != 204 && status != 304) {
		err_set(e, status == 404 ? LB_EXIT_NOT_FOUND : LB_EXIT_INTERNAL,
			"cannot %s container %.12s: HTTP %ld %s", action, id, status,
			docker_message(j));
		json_decref(j);
		return -1;
	}
	json_decref(j);
	return 0;
}

int docker_stop(struct docker *d, const char *id, struct err *e)
{
	return container_action(d, id, "stop", e);
}

int docker_start(struct docker *d, const char *id, struct err *e)
{
	return container_action(d, id, "start", e);
}

static int service_get(struct docker *d, const char *service, json_t **ret, struct err *e)
{
	json_t *j = NULL;
	long status = 0;

	if (get_named(d, "/services/", service, "", &status, &j, e) < 0)
		return -1;
	if (status != 200 || !json_is_object(j)) {
		/* 503: this engine is not a Swarm manager, so there is no such service. */
		err_set(e, status == 404 || status == 503 ? LB_EXIT_NOT_FOUND : LB_EXIT_INTERNAL,
			"cannot inspect Swarm service '%s': HTTP %ld %s", service, status,
			docker_message(j));
		json_decref(j);
		return -1;
	}
	*ret = j;
	return 0;
}

bool docker_swarm_replicas(const json_t *svc, uint64_t *ret)
{
	const json_t *r = json_object_get(
		json_object_get(json_object_get(json_object_get(svc, "Spec"), "Mode"),
				"Replicated"),
		"Replicas");

	if (!json_is_integer(r))
		return false;
	*ret = (uint64_t)json_integer_value(r);
	return true;
}

int docker_service_replicas(struct docker *d, const char *service, uint64_t *ret, struct err *e)
{
	json_t *svc = NULL;

	if (service_get(d, service, &svc, e) < 0)
		return -1;
	if (!docker_swarm_replicas(svc, ret)) {
		json_decref(svc);
		return err_set(e, LB_EXIT_CONFIG,
			       "Swarm service '%s' is not in replicated mode: it cannot be scaled "
			       "down for the backup",
			       service);
	}
	json_decref(svc);
	return 0;
}

int docker_service_scale(struct docker *d, const char *service, uint64_t replicas, struct err *e)
{
	json_t *svc = NULL, *ans = NULL;
	char *path = NULL;
	long status = 0;
	int ret = -1;

	if (service_get(d, service, &svc, e) < 0)
		return -1;
	json_t *spec = json_object_get(svc, "Spec");
	json_int_t version =
		json_integer_value(json_object_get(json_object_get(svc, "Version"), "Index"));
	const char *id = json_string_value(json_object_get(svc, "ID"));
	json_t *mode = json_object_get(json_object_get(spec, "Mode"), "Replicated");
	if (!id || !json_is_object(mode)) {
		err_set(e, LB_EXIT_CONFIG, "Swarm service '%s' is not in replicated mode", service);
		goto out;
	}
	json_object_set_new(mode, "Replicas", json_integer((json_int_t)replicas));
	path = xasprintf("/services/%s/update?version=%lld", id, (long long)version);
	if (docker_request(d, "POST", path, spec, &status, &ans, e) < 0)
		goto out;
	if (status != 200) {
		err_set(e, LB_EXIT_INTERNAL, "cannot scale Swarm service '%s' to %llu: HTTP %ld %s",
			service, (unsigned long long)replicas, status, docker_message(ans));
		goto out;
	}
	ret = 0;
out:
	free(path);
	json_decref(ans);
	json_decref(svc);
	return ret;
}

int docker_service_wait_down(struct docker *d, const char *service, int timeout, struct err *e)
{
	json_t *svc = NULL;

	if (service_get(d, service, &svc, e) < 0)
		return -1;
	auto_free char *label = xasprintf("com.docker.swarm.service.id=%s",
					  json_string_value(json_object_get(svc, "ID")));
	json_decref(svc);
	const char *labels[] = { label, NULL };
	for (int waited = 0;; waited++) {
		json_t *list = NULL;
		if (docker_list(d, labels, false, &list, e) < 0)
			return -1;
		size_t n = json_array_size(list);
		json_decref(list);
		if (!n)
			return 0;
		if (waited >= timeout * 4)
			return err_set(e, LB_EXIT_INTERNAL,
				       "Swarm service '%s' still has %zu running container%s after "
				       "%d s",
				       service, n, n == 1 ? "" : "s", timeout);
		poll(NULL, 0, 250);
	}
}
