/*
 * lifeboat-sched: the idle half of `lifeboat run`. `lifeboat run` checks the whole
 * configuration, then execs this small program (same pid: PID 1 stays PID 1), which
 * links only libc, jansson (the state file) and, with BACKUP_METRICS_ADDR, loads
 * libmicrohttpd. It waits for the cron times, records the next ones in the state file,
 * serves /metrics, reaps orphans, and runs each backup or restore drill as a child
 * `lifeboat run --job backup|drill` (the full program, with every library it needs).
 * Not meant to be started by hand: its arguments are what `lifeboat run` validated.
 */
#include "common.h"

#include <locale.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <time.h>

#include "cron.h"
#include "log.h"
#include "metrics.h"
#include "signals.h"
#include "state.h"

extern char **environ;

static const char usage[] =
	"usage: lifeboat-sched --lifeboat=PATH --name=NAME --state-dir=DIR [--log-file=FILE]\n"
	"       [--debug] [--schedule=CRON] [--verify-schedule=CRON]\n"
	"       [--metrics-addr=ADDR --metrics-fd=FD]\n"
	"  (started by 'lifeboat run' once it has checked the configuration)\n";

struct sched {
	const char *lifeboat; /* the full program, for the runs */
	struct config cfg;    /* only what the scheduler and /metrics read */
	pid_t job;	      /* the run in progress, or 0 */
	int job_status;
	bool job_done;
};

static volatile sig_atomic_t got_child;

static void on_child(int sig)
{
	(void)sig;
	got_child = 1;
}

/*
 * SIGINT, SIGTERM and SIGCHLD stay blocked except inside ppoll(), so one that comes
 * between a check and the wait wakes the wait at once; threads started later (the
 * metrics server) inherit the mask and never take them.
 */
static sigset_t waitmask;

static void signals_setup(void)
{
	struct sigaction sa = { .sa_handler = on_child, .sa_flags = SA_NOCLDSTOP };
	sigset_t block;

	signals_install();
	sigemptyset(&sa.sa_mask);
	sigaction(SIGCHLD, &sa, NULL);
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGCHLD);
	sigprocmask(SIG_BLOCK, &block, &waitmask);
	sigdelset(&waitmask, SIGINT);
	sigdelset(&waitmask, SIGTERM);
	sigdelset(&waitmask, SIGCHLD);
}

/* We may be PID 1: collect every exited child, including orphans such as gpg-agent. */
static void reap_children(struct sched *s)
{
	pid_t pid;
	int status;

	got_child = 0;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if (s->job && pid == s->job) {
			s->job_status = status;
			s->job_done = true;
			continue;
		}
		log_debug("reaped process %d", (int)pid);
	}
}

/* Up to `ms` milliseconds, less when a signal or a child's exit comes. */
static void nap(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000 };

	ppoll(NULL, 0, &ts, &waitmask);
}

/* Sleep until `until` (wall clock) or a signal; false when a signal came. */
static bool sleep_until(struct sched *s, time_t until)
{
	for (;;) {
		struct timespec now;
		reap_children(s);
		if (signals_pending())
			return false;
		/* time() (a coarse clock) names the archive: wait until it agrees too. */
		if (until && time(NULL) >= until)
			return true;
		clock_gettime(CLOCK_REALTIME, &now);
		long ms = until ? (long)(until - now.tv_sec) * 1000 - now.tv_nsec / 1000000 : 1000;
		/* At most a second: the wall clock may be set meanwhile. */
		nap(ms > 1000 ? 1000 : ms < 1 ? 1 : ms);
	}
}

/*
 * One scheduled run: `lifeboat run --job backup|drill` with our environment, stdio and
 * process group. A SIGTERM or SIGINT for us is passed on to it (`docker stop` signals
 * PID 1 only); it aborts the run as documented and exits 130. Its exit code, or -1.
 */
static int run_job(struct sched *s, bool verify)
{
	char *const argv[] = { "lifeboat", "run", "--job", verify ? "drill" : "backup", NULL };
	posix_spawnattr_t attr;
	sigset_t mask, dfl;
	int forwarded = 0, rc;

	/* Blocked until its main() has its handlers (main.c unblocks them): a signal
	 * passed on at once is pending, not fatal. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigemptyset(&dfl);
	sigaddset(&dfl, SIGCHLD);
	posix_spawnattr_init(&attr);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	posix_spawnattr_setsigmask(&attr, &mask);
	posix_spawnattr_setsigdefault(&attr, &dfl);
	s->job_done = false;
	rc = posix_spawn(&s->job, s->lifeboat, NULL, &attr, argv, environ);
	posix_spawnattr_destroy(&attr);
	if (rc) {
		s->job = 0;
		log_error("cannot run '%s': %s", s->lifeboat, strerror(rc));
		return -1;
	}
	log_debug("%s: process %d", verify ? "restore drill" : "backup", (int)s->job);
	for (;;) {
		reap_children(s);
		if (s->job_done)
			break;
		if (signals_pending() && !forwarded) {
			forwarded = signals_pending();
			kill(s->job, forwarded);
		}
		nap(1000);
	}
	s->job = 0;
	if (WIFEXITED(s->job_status))
		return WEXITSTATUS(s->job_status);
	/* Killed outright (the OOM killer): the next run reports it as interrupted. */
	log_error("the scheduled %s was killed by signal %d", verify ? "restore drill" : "backup",
		  WTERMSIG(s->job_status));
	return -1;
}

static void fmt_local(time_t t, char *buf, size_t len)
{
	struct tm tm;
	localtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%d %H:%M:%S %Z", &tm);
}

static void record_next(const struct config *cfg, time_t next, time_t next_verify)
{
	struct err e = ERR_INIT;

	if (state_set_next(cfg, next, next_verify, &e) < 0)
		log_warn("cannot record the next run in the state file: %s", e.msg);
}

static int schedule_loop(struct sched *s)
{
	const struct config *cfg = &s->cfg;
	time_t after = time(NULL), vafter = after;
	char when[64];

	for (;;) {
		time_t next = 0, vnext = 0;
		if (cfg->daemon.schedule && cron_next(&cfg->daemon.cron, after, &next) < 0) {
			log_error("BACKUP_SCHEDULE '%s' never fires again", cfg->daemon.schedule);
			return LB_EXIT_CONFIG;
		}
		if (cfg->daemon.verify_schedule &&
		    cron_next(&cfg->daemon.verify_cron, vafter, &vnext) < 0) {
			log_error("BACKUP_VERIFY_SCHEDULE '%s' never fires again",
				  cfg->daemon.verify_schedule);
			return LB_EXIT_CONFIG;
		}
		record_next(cfg, next, vnext);
		/* The earlier of the two; a backup first when both fall on the same second. */
		bool verify = vnext && (!next || vnext < next);
		fmt_local(verify ? vnext : next, when, sizeof(when));
		log_info("next %s at %s", verify ? "restore drill" : "backup", when);
		if (!sleep_until(s, verify ? vnext : next)) {
			log_info("stopping (signal %d)", signals_pending());
			return 0;
		}
		int rc = run_job(s, verify);
		if (verify)
			vafter = time(NULL) > vnext ? time(NULL) : vnext;
		else
			after = time(NULL) > next ? time(NULL) : next;
		reap_children(s);
		if (signals_pending()) {
			log_info("stopping (signal %d): the %s in progress was aborted and "
				 "left nothing behind",
				 signals_pending(), verify ? "restore drill" : "backup");
			return rc == LB_EXIT_INTERRUPTED ? LB_EXIT_INTERRUPTED : 0;
		}
	}
}

static int parse_cron(const char *var, const char *expr, struct cron *ret)
{
	struct err e = ERR_INIT;

	if (cron_parse(expr, ret, &e) < 0) {
		log_error("%s '%s': %s", var, expr, e.msg);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct sched s = { .cfg = CONFIG_INIT };
	struct config *cfg = &s.cfg;
	struct metrics *metrics = NULL;
	const char *log_file = NULL;
	int metrics_fd = -1, rc;

	signals_setup();
	/* As in lifeboat: the state file's strings are UTF-8 (state.c's utf8_lossy). */
	if (!setlocale(LC_CTYPE, "C.UTF-8"))
		setlocale(LC_CTYPE, "");
	for (int i = 1; i < argc; i++) {
		const char *opt = argv[i], *eq = strchr(opt, '=');
		if (!strcmp(opt, "--debug")) {
			cfg->debug = true;
			continue;
		}
		if (!eq)
			goto bad;
		size_t len = (size_t)(eq - opt);
		char *val = (char *)eq + 1;
#define IS(name) (len == strlen(name) && !strncmp(opt, name, len))
		if (IS("--lifeboat"))
			s.lifeboat = val;
		else if (IS("--name"))
			cfg->name = val;
		else if (IS("--state-dir"))
			cfg->state_dir = val;
		else if (IS("--log-file"))
			log_file = val;
		else if (IS("--schedule"))
			cfg->daemon.schedule = val;
		else if (IS("--verify-schedule"))
			cfg->daemon.verify_schedule = val;
		else if (IS("--metrics-addr"))
			cfg->daemon.metrics_addr = val;
		else if (IS("--metrics-fd"))
			metrics_fd = (int)strtol(val, NULL, 10);
		else
			goto bad;
#undef IS
	}
	if (!s.lifeboat || !cfg->name || !cfg->state_dir ||
	    (metrics_fd >= 0) != !!cfg->daemon.metrics_addr)
		goto bad;
	log_set_debug(cfg->debug);
	tzset();
	if (log_file)
		log_open_file(log_file);
	/* Checked by `lifeboat run` already: a failure here is a bug, not a typo. */
	if ((cfg->daemon.schedule &&
	     parse_cron("BACKUP_SCHEDULE", cfg->daemon.schedule, &cfg->daemon.cron) < 0) ||
	    (cfg->daemon.verify_schedule &&
	     parse_cron("BACKUP_VERIFY_SCHEDULE", cfg->daemon.verify_schedule,
			&cfg->daemon.verify_cron) < 0))
		return LB_EXIT_INTERNAL;
	if (metrics_fd >= 0) {
		struct err e = ERR_INIT;
		if (metrics_start(cfg, metrics_fd, &metrics, &e) < 0) {
			log_error("%s", e.msg);
			return (int)e.code;
		}
	}
	if (!cfg->daemon.schedule && !cfg->daemon.verify_schedule) {
		/* Manual mode: `lifeboat run` recorded "no next run" and said so. */
		sleep_until(&s, 0);
		log_info("stopping (signal %d)", signals_pending());
		rc = 0;
	} else {
		rc = schedule_loop(&s);
	}
	metrics_stop(metrics);
	return rc;
bad:
	fputs(usage, stderr);
	return LB_EXIT_USAGE;
}
