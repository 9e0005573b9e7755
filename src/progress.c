/* Progress lines: counters bumped by the data loops, read by a reporting thread. */
#include "common.h"

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "log.h"
#include "parse.h"
#include "progress.h"

static _Atomic uint64_t bytes_done, files_done;

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t thread;
	bool running, stop, tty;
	long interval_ms;
	char what[32];
	uint64_t expected;
	struct timespec t0;
} P = { .mu = PTHREAD_MUTEX_INITIALIZER };

void progress_add(uint64_t n)
{
	atomic_fetch_add_explicit(&bytes_done, n, memory_order_relaxed);
}

void progress_file(void)
{
	atomic_fetch_add_explicit(&files_done, 1, memory_order_relaxed);
}

static void clock_text(char *buf, size_t len, double s)
{
	long t = s < 0 ? 0 : (long)(s + 0.5);

	if (t >= 3600)
		snprintf(buf, len, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
	else
		snprintf(buf, len, "%ld:%02ld", t / 60, t % 60);
}

void progress_format(char *buf, size_t len, const char *what, uint64_t bytes, uint64_t files,
		     double elapsed, uint64_t expected)
{
	char done[32], total[32], rate[32], el[32], left[32];
	int n;

	format_size(bytes, done, sizeof(done));
	n = snprintf(buf, len, "%s: %s", what, done);
	if (expected && bytes <= expected)
		n += snprintf(buf + n, len > (size_t)n ? len - n : 0, " of ~%s",
			      format_size(expected, total, sizeof(total)));
	n += snprintf(buf + n, len > (size_t)n ? len - n : 0, ", %llu file%s",
		      (unsigned long long)files, files == 1 ? "" : "s");
	if (elapsed >= 1) {
		format_size((uint64_t)((double)bytes / elapsed), rate, sizeof(rate));
		n += snprintf(buf + n, len > (size_t)n ? len - n : 0, ", %s/s", rate);
	}
	clock_text(el, sizeof(el), elapsed);
	n += snprintf(buf + n, len > (size_t)n ? len - n : 0, ", %s elapsed", el);
	if (expected && bytes && bytes < expected && elapsed >= 1) {
		clock_text(left, sizeof(left),
			   elapsed * (double)(expected - bytes) / (double)bytes);
		snprintf(buf + n, len > (size_t)n ? len - n : 0, ", ~%s left", left);
	}
}

static double since(const struct timespec *t0)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t0->tv_sec) + (double)(now.tv_nsec - t0->tv_nsec) / 1e9;
}

static void report(void)
{
	char line[256];

	progress_format(
		line, sizeof(line), P.what, atomic_load_explicit(&bytes_done, memory_order_relaxed),
		atomic_load_explicit(&files_done, memory_order_relaxed), since(&P.t0), P.expected);
	if (P.tty)
		log_status(line);
	else
		log_info("%s", line);
}

static void *run(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&P.mu);
	while (!P.stop) {
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += P.interval_ms / 1000;
		until.tv_nsec += (P.interval_ms % 1000) * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		while (!P.stop && pthread_cond_timedwait(&P.cv, &P.mu, &until) == 0)
			;
		if (P.stop)
			break;
		pthread_mutex_unlock(&P.mu);
		report();
		pthread_mutex_lock(&P.mu);
	}
	pthread_mutex_unlock(&P.mu);
	return NULL;
}

void progress_start(const char *what, uint64_t expected)
{
	pthread_condattr_t ca;

	if (P.running)
		return;
	atomic_store(&bytes_done, 0);
	atomic_store(&files_done, 0);
	snprintf(P.what, sizeof(P.what), "%s", what);
	P.expected = expected;
	P.tty = isatty(STDERR_FILENO);
	P.interval_ms = P.tty ? 1000 : 30000;
	bool at_once = P.tty; /* the terminal shows what is going on before the first tick */
#ifdef LB_FAULT_POINTS
	/* Tests only: no test waits 30 s for a line, nor races the first tick. */
	const char *knob = getenv("LIFEBOAT_TEST_PROGRESS_INTERVAL_MS");
	uint64_t ms;
	if (knob && parse_decimal(knob, &ms, NULL) == 0 && ms > 0 && ms < 600000) {
		P.interval_ms = (long)ms;
		at_once = true;
	}
#endif
	P.stop = false;
	clock_gettime(CLOCK_MONOTONIC, &P.t0);
	pthread_condattr_init(&ca);
	pthread_cond_init(&P.cv, &ca);
	pthread_condattr_destroy(&ca);
	if (at_once)
		report();
	if (pthread_create(&P.thread, NULL, run, NULL) != 0) {
		pthread_cond_destroy(&P.cv);
		if (P.tty)
			log_status(NULL);
		return;
	}
	P.running = true;
}

void progress_stop(void)
{
	if (!P.running)
		return;
	pthread_mutex_lock(&P.mu);
	P.stop = true;
	pthread_cond_signal(&P.cv);
	pthread_mutex_unlock(&P.mu);
	pthread_join(P.thread, NULL);
	pthread_cond_destroy(&P.cv);
	P.running = false;
	if (P.tty)
		log_status(NULL);
}
