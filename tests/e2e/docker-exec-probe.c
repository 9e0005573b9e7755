/* Test driver for the exec API: runs a command in a container, reports hash, size, exit code. */
#include "common.h"

#include <fcntl.h>
#include <signal.h>

#include "child.h"
#include "docker.h"
#include "fs.h"
#include "hash.h"
#include "strvec.h"

/*
 * usage: docker-exec-probe --find NAME
 *        docker-exec-probe CONTAINER [--stdin FILE] [--env K=V]... -- CMD [ARG]...
 * Prints one JSON object: {"bytes":N,"sha256":"...","exit":N,"stderr":"..."}.
 */

/* Pump: the file `data` points to into the exec's stdin `to`. */
static int feed(int to, void *data)
{
	int from = *(int *)data;
	char buf[65536];

	for (;;) {
		ssize_t n = read_retry(from, buf, sizeof(buf));
		if (n <= 0)
			return n < 0 ? -1 : 0;
		if (write_all(to, buf, (size_t)n) < 0)
			return -1;
	}
}

int main(int argc, char **argv)
{
	struct docker *d = NULL;
	struct err e = ERR_INIT;
	struct docker_exec x = DOCKER_EXEC_INIT;
	struct strvec env = STRVEC_INIT;
	const char *stdin_file = NULL;
	int i = 2, code = -1, rc = 1;

	signal(SIGPIPE, SIG_IGN);
	if (argc < 3) {
		fprintf(stderr, "usage: docker-exec-probe CONTAINER [--stdin FILE] [--env K=V]... "
				"-- CMD...\n");
		return 2;
	}
	if (docker_open(getenv("DOCKER_HOST"), &d, &e) < 0)
		goto fail;
	if (!strcmp(argv[1], "--find")) {
		char *id = NULL;
		if (docker_find_container(d, argv[2], &id, &e) < 0)
			goto fail;
		printf("%s\n", id);
		free(id);
		docker_free(d);
		return 0;
	}
	for (; i < argc && strcmp(argv[i], "--"); i++) {
		if (!strcmp(argv[i], "--stdin") && i + 1 < argc)
			stdin_file = argv[++i];
		else if (!strcmp(argv[i], "--env") && i + 1 < argc)
			strvec_push(&env, argv[++i]);
	}
	if (i >= argc - 1) {
		fprintf(stderr, "docker-exec-probe: no command after --\n");
		return 2;
	}
	if (docker_exec_start(d, argv[1], argv + i + 1, env.v, stdin_file != NULL, &x, &e) < 0)
		goto fail;
	int from = -1;
	struct async feeder = ASYNC_INIT;
	if (stdin_file) {
		from = open(stdin_file, O_RDONLY | O_CLOEXEC);
		if (from < 0) {
			perror(stdin_file);
			goto fail;
		}
		feeder = (struct async){ .proc = feed, .data = &from, .fd = x.in_fd };
		x.in_fd = -1; /* the feeder owns and closes it */
		if (async_start(&feeder, &e) < 0)
			goto fail;
	}
	struct sha256 h;
	char hex[SHA256_HEX_LEN + 1], buf[65536];
	unsigned long long bytes = 0;
	sha256_init(&h);
	for (;;) {
		ssize_t n = read_retry(x.out_fd, buf, sizeof(buf));
		if (n <= 0)
			break;
		sha256_update(&h, buf, (size_t)n);
		bytes += (unsigned long long)n;
	}
	sha256_final_hex(&h, hex);
	async_finish(&feeder);
	close_fd(&from);
	if (docker_exec_finish(&x, &code, &e) < 0)
		goto fail;
	printf("{\"bytes\": %llu, \"sha256\": \"%s\", \"exit\": %d, \"stderr\": \"", bytes, hex,
	       code);
	for (const char *p = docker_exec_stderr(&x); *p; p++) {
		if (*p == '"' || *p == '\\')
			printf("\\%c", *p);
		else if ((unsigned char)*p < 0x20)
			printf("\\u%04x", (unsigned char)*p);
		else
			putchar(*p);
	}
	printf("\"}\n");
	rc = 0;
	goto out;
fail:
	fprintf(stderr, "docker-exec-probe: %s\n", e.msg);
out:
	docker_exec_release(&x);
	docker_free(d);
	strvec_release(&env);
	return rc;
}
