/* Test-only fault points (see fault.h); compiled to nothing without -Dfault_points=true. */
#include "common.h"

#include "fault.h"

#ifdef LB_FAULT_POINTS
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>

static pthread_mutex_t fault_lock = PTHREAD_MUTEX_INITIALIZER;

#define FAULT_MAX_POINTS 32
static struct {
	char name[64];
	unsigned long long passes;
} fault_counts[FAULT_MAX_POINTS];

/* How many times `name` has been passed, this pass included. */
static unsigned long long fault_count(const char *name)
{
	for (size_t i = 0; i < FAULT_MAX_POINTS; i++) {
		if (!fault_counts[i].name[0]) {
			snprintf(fault_counts[i].name, sizeof(fault_counts[i].name), "%s", name);
			return ++fault_counts[i].passes;
		}
		if (!strcmp(fault_counts[i].name, name))
			return ++fault_counts[i].passes;
	}
	return 0;
}

static void fault_trace(const char *name)
{
	const char *path = getenv("LIFEBOAT_FAULT_TRACE");
	if (!path || !*path)
		return;
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	char line[80];
	int n = snprintf(line, sizeof(line), "%s\n", name);
	if (n > 0 && write(fd, line, (size_t)n) < 0) {
		/* a trace that cannot be written only loses the count */
	}
	close(fd);
}

/* Does the spec "name[@N][:action]" (length len) arm this pass? 1 fail, 2 kill, 3 stop, 0 no. */
static int fault_match(const char *spec, size_t len, const char *name, unsigned long long pass)
{
	size_t nlen = strlen(name);
	if (len < nlen || memcmp(spec, name, nlen))
		return 0;
	const char *p = spec + nlen, *end = spec + len;
	unsigned long long want = 1;
	if (p < end && *p == '@') {
		char *q;
		want = strtoull(p + 1, &q, 10);
		p = q;
	}
	int action = 2;
	if (p < end && *p == ':') {
		p++;
		if ((size_t)(end - p) == 4 && !memcmp(p, "fail", 4))
			action = 1;
		else if ((size_t)(end - p) == 4 && !memcmp(p, "kill", 4))
			action = 2;
		else if ((size_t)(end - p) == 4 && !memcmp(p, "stop", 4))
			action = 3;
		else
			return 0;
		p = end;
	}
	return p == end && pass == want ? action : 0;
}

int fault_hit(const char *name)
{
	pthread_mutex_lock(&fault_lock);
	unsigned long long pass = fault_count(name);
	fault_trace(name);
	pthread_mutex_unlock(&fault_lock);
	const char *armed = getenv("LIFEBOAT_FAULT");
	if (!armed || !*armed)
		return 0;
	for (const char *s = armed; *s;) {
		size_t len = strcspn(s, ",");
		int action = fault_match(s, len, name, pass);
		if (action == 2) {
			raise(SIGKILL);
			_exit(137); /* not reached */
		}
		if (action == 1)
			return 1;
		if (action == 3)
			kill(getpid(), SIGSTOP); /* the whole process, until SIGCONT */
		s += len;
		if (*s == ',')
			s++;
	}
	return 0;
}
#endif
