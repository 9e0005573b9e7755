/* The Engine API's exec: a command in a container, its streams over a raw upgraded socket. */
#include "common.h"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "docker-internal.h"
#include "docker.h"
#include "fs.h"
#include "strbuf.h"
#include "xalloc.h"

#define ERR_TAIL 4096
#define CHUNK	 (64 * 1024)

static int connect_engine(struct docker *d, struct err *e)
{
	int fd = -1;

	if (d->unix_path) {
		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", d->unix_path);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
			err_set(e, LB_EXIT_CONFIG,
				"cannot connect to the Docker socket '%s': %s; %s", d->unix_path,
				strerror(errno), DOCKER_SOCKET_HINT);
			close_fd(&fd);
			return -1;
		}
		return fd;
	}
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res = NULL;
	int r = getaddrinfo(d->tcp_host, d->tcp_port, &hints, &res);
	if (r)
		return err_set(e, LB_EXIT_CONFIG, "cannot resolve DOCKER_HOST '%s': %s", d->desc,
			       gai_strerror(r));
	int cerr = 0;
	for (struct addrinfo *a = res; a; a = a->ai_next) {
		fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
		if (fd >= 0 && connect(fd, a->ai_addr, a->ai_addrlen) == 0)
			break;
		cerr = errno;
		close_fd(&fd);
	}
	freeaddrinfo(res);
	if (fd < 0)
		return err_set(e, LB_EXIT_CONFIG, "cannot connect to DOCKER_HOST '%s': %s", d->desc,
			       strerror(cerr));
	return fd;
}

static int send_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Read exactly len bytes: 1 done, 0 clean EOF before any byte, -errno or -EPIPE (short). */
static int read_exact(int fd, void *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = read_retry(fd, (char *)buf + got, len - got);
		if (n < 0)
			return (int)n;
		if (n == 0)
			return got ? -EPIPE : 0;
		got += (size_t)n;
	}
	return 1;
}

static void stream_fail(struct docker_exec *x, const char *what, int errnum)
{
	pthread_mutex_lock(&x->lock);
	err_set(&x->stream_err, LB_EXIT_SOURCE, "%s: %s", what, strerror(errnum));
	pthread_mutex_unlock(&x->lock);
}

/* Pump: the multiplexed stream (8-byte headers: type, 0, 0, 0, size BE32) to `out` and tail. */
static int out_pump(int out, void *data)
{
	struct docker_exec *x = data;
	unsigned char *buf = xmalloc(CHUNK);
	bool discard = false;
	int ret = -1;

	for (;;) {
		unsigned char hdr[8];
		int r = read_exact(x->sock, hdr, sizeof(hdr));
		if (r == 0)
			break;
		if (r < 0) {
			stream_fail(x, "the exec output stream broke", -r);
			goto out;
		}
		size_t left =
			(size_t)hdr[4] << 24 | (size_t)hdr[5] << 16 | (size_t)hdr[6] << 8 | hdr[7];
		while (left) {
			size_t want = left < CHUNK ? left : CHUNK;
			r = read_exact(x->sock, buf, want);
			if (r <= 0) {
				stream_fail(x, "the exec output stream broke", r ? -r : EPIPE);
				goto out;
			}
			left -= want;
			if ((hdr[0] == 1 || (hdr[0] == 2 && x->merge_stderr)) && !discard) {
				/* The reader went away (closed early): keep draining. */
				if (write_all(out, buf, want) < 0)
					discard = true;
			} else if (hdr[0] == 2 && !x->merge_stderr) {
				pthread_mutex_lock(&x->lock);
				strbuf_add(&x->err_tail, buf, want);
				strbuf_keep_tail(&x->err_tail, ERR_TAIL);
				pthread_mutex_unlock(&x->lock);
			}
		}
	}
	ret = 0;
out:
	free(buf);
	return ret;
}

/* Pump: the caller's stdin pipe `in` to the socket; EOF half-closes, which ends the command's
 * stdin. */
static int in_pump(int in, void *data)
{
	struct docker_exec *x = data;
	unsigned char *buf = xmalloc(CHUNK);
	int ret = -1;

	for (;;) {
		ssize_t n = read_retry(in, buf, CHUNK);
		if (n <= 0) {
			if (n < 0)
				stream_fail(x, "cannot read the exec input", (int)-n);
			ret = n < 0 ? -1 : 0;
			break;
		}
		int r = send_all(x->sock, buf, (size_t)n);
		if (r < 0) {
			stream_fail(x, "cannot send the exec input", -r);
			break;
		}
	}
	shutdown(x->sock, SHUT_WR);
	free(buf);
	return ret;
}

/* Read the HTTP answer head byte by byte (so no stream byte is consumed); its status. */
static int read_head(int fd, struct strbuf *head, struct err *e)
{
	char c;

	while (head->len < 16384) {
		ssize_t n = read_retry(fd, &c, 1);
		if (n <= 0)
			return err_set(e, LB_EXIT_INTERNAL,
				       "the Docker engine closed the exec connection: %s",
				       n < 0 ? strerror((int)-n) : "end of stream");
		strbuf_addch(head, c);
		if (head->len >= 4 && !memcmp(head->buf + head->len - 4, "\r\n\r\n", 4))
			break;
	}
	int status = 0;
	if (sscanf(head->buf, "HTTP/1.%*d %d", &status) != 1)
		return err_set(e, LB_EXIT_INTERNAL, "the Docker engine's exec answer is not HTTP");
	return status;
}

int docker_exec_start(struct docker *d, const char *container, char *const argv[],
		      char *const env[], bool want_stdin, struct docker_exec *x, struct err *e)
{
	auto_free char *id = NULL;
	json_t *ans = NULL;
	long status = 0;
	int pout[2] = { -1, -1 }, pin[2] = { -1, -1 };
	struct strbuf req = STRBUF_INIT, head = STRBUF_INIT;
	int ret = -1;

	x->d = d;
	if (!argv || !argv[0])
		return err_set(e, LB_EXIT_INTERNAL, "docker_exec_start: empty command");
	if (docker_find_container(d, container, &id, e) < 0)
		return -1;
	json_t *cmd = json_array(), *jenv = json_array();
	for (size_t i = 0; argv[i]; i++)
		json_array_append_new(cmd, json_string(argv[i]));
	for (size_t i = 0; env && env[i]; i++)
		json_array_append_new(jenv, json_string(env[i]));
	json_t *body =
		json_pack("{s:b, s:b, s:b, s:b, s:o, s:o}", "AttachStdin", want_stdin,
			  "AttachStdout", 1, "AttachStderr", 1, "Tty", 0, "Cmd", cmd, "Env", jenv);
	auto_free char *path = xasprintf("/containers/%s/exec", id);
	int r = body ? docker_request(d, "POST", path, body, &status, &ans, e)
		     : err_set(e, LB_EXIT_INTERNAL, "cannot encode the exec request");
	json_decref(body); /* Env may hold secrets: jansson frees, we cannot zero it. */
	if (r < 0)
		goto out;
	const char *eid = json_string_value(json_object_get(ans, "Id"));
	if (status != 201 || !eid) {
		err_set(e, LB_EXIT_SOURCE, "cannot create an exec in container '%s': HTTP %ld %s",
			container, status, docker_message(ans));
		goto out;
	}
	x->exec_id = xstrdup(eid);

	x->sock = connect_engine(d, e);
	if (x->sock < 0)
		goto out;
	const char *sbody = "{\"Detach\":false,\"Tty\":false}";
	strbuf_addf(&req,
		    "POST /v%s/exec/%s/start HTTP/1.1\r\nHost: docker\r\n"
		    "User-Agent: lifeboat/" LB_VERSION "\r\nContent-Type: application/json\r\n"
		    "Connection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: %zu\r\n\r\n%s",
		    d->api, x->exec_id, strlen(sbody), sbody);
	r = send_all(x->sock, req.buf, req.len);
	if (r < 0) {
		err_set(e, LB_EXIT_INTERNAL, "cannot start the exec: %s", strerror(-r));
		goto out;
	}
	int hs = read_head(x->sock, &head, e);
	if (hs < 0)
		goto out;
	if (hs != 101 && hs != 200) {
		err_set(e, LB_EXIT_SOURCE, "cannot start the exec in container '%s': HTTP %d",
			container, hs);
		goto out;
	}
	if (pipe2(pout, O_CLOEXEC) < 0 || (want_stdin && pipe2(pin, O_CLOEXEC) < 0)) {
		err_set(e, LB_EXIT_INTERNAL, "cannot create a pipe: %s", strerror(errno));
		goto out;
	}
	x->out_fd = pout[0];
	x->out_pump = (struct async){ .proc = out_pump, .data = x, .fd = pout[1] };
	pout[0] = pout[1] = -1;
	if (async_start(&x->out_pump, e) < 0)
		goto out;
	if (want_stdin) {
		x->in_fd = pin[1];
		x->in_pump = (struct async){ .proc = in_pump, .data = x, .fd = pin[0] };
		pin[0] = pin[1] = -1;
		if (async_start(&x->in_pump, e) < 0)
			goto out;
	}
	ret = 0;
out:
	for (int i = 0; i < 2; i++) {
		close_fd(&pout[i]);
		close_fd(&pin[i]);
	}
	json_decref(ans);
	strbuf_release(&req);
	strbuf_release(&head);
	return ret;
}

bool docker_exec_ended(const json_t *inspect, int *ret_exit_code)
{
	const json_t *code = json_object_get(inspect, "ExitCode");

	if (json_is_true(json_object_get(inspect, "Running")) || !json_is_integer(code))
		return false;
	*ret_exit_code = (int)json_integer_value(code);
	return true;
}

int docker_exec_finish(struct docker_exec *x, int *ret_exit_code, struct err *e)
{
	int ret = -1;

	close_fd(&x->in_fd);
	async_finish(&x->in_pump);
	close_fd(&x->out_fd);
	async_finish(&x->out_pump);
	close_fd(&x->sock);
	if (!x->exec_id)
		return err_set(e, LB_EXIT_INTERNAL, "the exec never started");
	if (err_isset(&x->stream_err))
		return err_copy(e, &x->stream_err);
	auto_free char *path = xasprintf("/exec/%s/json", x->exec_id);
	/* The engine records the exit code just after the stream ends. */
	for (int tries = 0; tries < 100; tries++) {
		json_t *j = NULL;
		long status = 0;
		if (docker_request(x->d, "GET", path, NULL, &status, &j, e) < 0)
			return -1;
		if (status != 200) {
			err_set(e, LB_EXIT_INTERNAL, "cannot inspect the exec: HTTP %ld %s", status,
				docker_message(j));
			json_decref(j);
			return -1;
		}
		if (docker_exec_ended(j, ret_exit_code)) {
			json_decref(j);
			ret = 0;
			break;
		}
		json_decref(j);
		poll(NULL, 0, 100);
	}
	if (ret < 0)
		err_set(e, LB_EXIT_SOURCE,
			"the command in the container still runs after its "
			"output ended");
	return ret;
}

const char *docker_exec_stderr(struct docker_exec *x)
{
	strbuf_rtrim(&x->err_tail);
	return x->err_tail.buf;
}

void docker_exec_release(struct docker_exec *x)
{
	struct err ignored = ERR_INIT;
	int code;

	if (async_running(&x->in_pump) || async_running(&x->out_pump)) {
		/* Never finished: end the streams so the threads stop. */
		shutdown(x->sock, SHUT_RDWR);
		docker_exec_finish(x, &code, &ignored);
	}
	close_fd(&x->sock);
	close_fd(&x->in_fd);
	close_fd(&x->out_fd);
	free(x->exec_id);
	x->exec_id = NULL;
	strbuf_release(&x->err_tail);
}
