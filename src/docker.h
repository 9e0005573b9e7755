/* A small Docker Engine API client: containers, Swarm services and exec, over libcurl. */
#ifndef LB_DOCKER_H
#define LB_DOCKER_H

#include "common.h"

#include <pthread.h>

#include <jansson.h>

#include "child.h"
#include "err.h"
#include "strbuf.h"

#define DOCKER_SOCKET_HINT                                                                       \
	"mount the socket into the container: '- /var/run/docker.sock:/var/run/docker.sock:ro' " \
	"(read-only is enough)"

/* The engine we talk to; opaque. */
struct docker;

/*
 * Connect to `host` (DOCKER_HOST syntax: unix:///path or tcp://host:port; NULL
 * or "" means unix:///var/run/docker.sock), ask GET /version and use the
 * announced API version, capped at the newest we know (1.45) and refused below
 * 1.41. Errors say how to mount the socket. Never logs above debug level.
 */
int docker_open(const char *host, struct docker **ret, struct err *e);
/* Is `host` a DOCKER_HOST docker_open() accepts? Connects to nothing; the same message. */
int docker_host_check(const char *host, struct err *e);
void docker_free(struct docker *d);
/* The API version in use, such as "1.41". */
const char *docker_api_version(const struct docker *d);

/*
 * One JSON request. `body` (may be NULL) is sent as application/json.
 * *ret_status gets the HTTP status; *ret_json (may be NULL) the parsed answer
 * when there is one (caller decrefs). Transport errors and answers over 4 MiB
 * fail; an HTTP error status does not (the caller judges it).
 */
int docker_request(struct docker *d, const char *method, const char *path, json_t *body,
		   long *ret_status, json_t **ret_json, struct err *e);

/* The engine's message of an error answer ({"message": ...}), or "". */
const char *docker_message(const json_t *answer);

/*
 * This process's own container, found by hostname (the container id's prefix)
 * or /proc/self/mountinfo; *ret_inspect is GET /containers/{id}/json.
 * Fails with a message when we are not in a container of this engine.
 */
int docker_self(struct docker *d, json_t **ret_inspect, struct err *e);

/* The Compose project of our own container (label com.docker.compose.project), or NULL. */
char *docker_self_project(struct docker *d, char **ret_self_id, struct err *e);

/*
 * Resolve `service_or_name`: first as a service of our own Compose project (a
 * running container of it when there are several), then as a container name
 * or id. *ret_id is the full container id (caller frees). LB_EXIT_NOT_FOUND
 * when nothing matches.
 */
int docker_find_container(struct docker *d, const char *service_or_name, char **ret_id,
			  struct err *e);

/* GET /containers/{name}/json; *ret_inspect is NULL when there is no such container. */
int docker_inspect(struct docker *d, const char *name, json_t **ret_inspect, struct err *e);

/*
 * Containers (GET /containers/json) carrying every label filter in `labels`
 * ("key=value" or "key", NULL-terminated); `all` includes stopped ones.
 */
int docker_list(struct docker *d, const char *const labels[], bool all, json_t **ret_array,
		struct err *e);

/* Graceful stop with the container's own timeout; stopping a stopped one is fine. */
int docker_stop(struct docker *d, const char *id, struct err *e);
/* Start; starting a running one is fine. Both fail with LB_EXIT_NOT_FOUND when it is gone. */
int docker_start(struct docker *d, const char *id, struct err *e);

/* A Swarm service's replica count (replicated mode only); LB_EXIT_NOT_FOUND when none. */
int docker_service_replicas(struct docker *d, const char *service, uint64_t *ret, struct err *e);
/* Set a replicated Swarm service's replica count (POST /services/{id}/update). */
int docker_service_scale(struct docker *d, const char *service, uint64_t replicas, struct err *e);
/* Wait up to `timeout` seconds until the service has no running container. */
int docker_service_wait_down(struct docker *d, const char *service, int timeout, struct err *e);

/*
 * A command running inside a container (Engine API exec). Between start and
 * finish the caller reads the command's stdout from `out_fd` until EOF and,
 * when it asked for stdin, writes to `in_fd` and closes it (the command then
 * sees EOF). stderr is kept as a tail for error messages. SIGPIPE must be
 * ignored (signals_install() does): a reader that closes early is seen as EPIPE.
 */
struct docker_exec {
	int out_fd;	   /* read end: the command's stdout; the caller may close it early */
	int in_fd;	   /* write end: the command's stdin; -1 without want_stdin */
	bool merge_stderr; /* set before the start: stderr into out_fd too (no tail) */
	/* Private. */
	struct docker *d;
	char *exec_id;
	int sock;
	struct async out_pump; /* the socket's stdout frames to out_fd's pipe, stderr to the tail */
	struct async in_pump;  /* in_fd's pipe to the socket */
	pthread_mutex_t lock;
	struct strbuf err_tail; /* last 4 KiB of stderr */
	struct err stream_err;	/* first error of the stream threads */
};
#define DOCKER_EXEC_INIT                                                                          \
	{                                                                                         \
		.out_fd = -1, .in_fd = -1, .sock = -1, .out_pump = ASYNC_INIT,                    \
		.in_pump = ASYNC_INIT, .err_tail = STRBUF_INIT, .lock = PTHREAD_MUTEX_INITIALIZER \
	}

/*
 * Run argv inside `container` (id or name, resolved as docker_find_container
 * does). `env` ("K=V", NULL-terminated, may be NULL) is where secrets go: it
 * travels in the exec's Env, never in the command line. On success x->out_fd
 * (and x->in_fd with want_stdin) are open; call docker_exec_finish in any case.
 */
int docker_exec_start(struct docker *d, const char *container, char *const argv[],
		      char *const env[], bool want_stdin, struct docker_exec *x, struct err *e);

/*
 * Wait for the output to end, release everything and report the exit code
 * (GET /exec/{id}/json). Closes out_fd and in_fd if the caller has not.
 * Fails only when the exit code cannot be known; a non-zero exit code is not
 * a failure here: the caller judges it, with docker_exec_stderr() for context.
 */
int docker_exec_finish(struct docker_exec *x, int *ret_exit_code, struct err *e);

/* The stderr tail (valid until docker_exec_release). */
const char *docker_exec_stderr(struct docker_exec *x);
void docker_exec_release(struct docker_exec *x);

/*
 * Pure parsers of the engine's JSON answers (any JSON, even of the wrong type: they never
 * fail on shape). Strings returned point into the json_t given.
 */

/*
 * The API version to use from a GET /version answer: its "ApiVersion" capped at
 * 1.45 into `ret_api`. -EPROTO when there is no "MAJOR.MINOR" ApiVersion (not an
 * engine), -ENOTSUP when it is older than 1.41 (ret_api untouched on failure).
 */
int docker_api_negotiate(const json_t *version, char *ret_api, size_t len);

/*
 * Our container id from the text of /proc/self/mountinfo: the engine bind-mounts
 * .../containers/<64 hex>/hostname on /etc/hostname. Only that mount point
 * counts: on a host, other containers' mounts appear too. ret_id is written
 * (NUL-terminated) only when found.
 */
bool docker_mountinfo_id(const char *mountinfo, char ret_id[65]);

/* A label of a container (inspect: Config.Labels; list entry: Labels), or NULL. */
const char *docker_label(const json_t *inspect_or_list, const char *key);
/* A container's name (inspect: Name; list entry: Names[0]) without the leading '/', or NULL. */
const char *docker_container_name(const json_t *inspect_or_list);
/* Is it running (list entry: State "running"; inspect: State.Running)? */
bool docker_container_running(const json_t *inspect_or_list);
/* From a container list: the last running one's Id, else the first Id; NULL when none. */
const char *docker_list_pick(const json_t *list);
/* A Swarm service's Spec.Mode.Replicated.Replicas; false when not in replicated mode. */
bool docker_swarm_replicas(const json_t *service, uint64_t *ret);
/* From GET /exec/{id}/json: true with the exit code once it no longer runs and has one. */
bool docker_exec_ended(const json_t *inspect, int *ret_exit_code);

#endif
