/*
 * lifeboat run: the container's entrypoint. Checks the configuration, then becomes
 * lifeboat-sched (src/sched.c), which waits idle and starts each scheduled run as
 * `lifeboat run --job backup|drill` (scheduled_job below).
 */
#include "common.h"

#include <fcntl.h>
#include <sys/stat.h>

#include "cmd.h"
#include "fault.h"
#include "job.h"
#include "log.h"
#include "metrics.h"
#include "signals.h"
#include "state.h"
#include "strvec.h"
#include "xalloc.h"

extern char **environ;

/*
 * `lifeboat run --job backup|drill`: one scheduled run, started by lifeboat-sched
 * (src/sched.c) at its cron time, with the environment `lifeboat run` checked at start.
 * The warnings were logged then, and the paths checked: as when the daemon ran its runs
 * in-process, a source or store that vanished since fails in the run itself (exit 4 or 5,
 * recorded and reported), not in a check. Only the keys are read again.
 */
static int scheduled_job(const char *what)
{
	struct config cfg = CONFIG_INIT;
	struct err e = ERR_INIT;
	bool drill = !strcmp(what, "drill");
	int rc = 0;

	if (!drill && strcmp(what, "backup")) {
		fputs(cmd_run.usage, stderr);
		return LB_EXIT_USAGE;
	}
	if (config_load(&cfg, environ, &e) < 0) {
		rc = cmd_fail(&e);
		goto out;
	}
	log_set_debug(cfg.debug);
	tzset();
	/* One that cannot be written was warned about at start, not at each run (one removed
	 * since is created again). */
	if (access(cfg.log_file, W_OK) == 0 || errno == ENOENT)
		log_open_file(cfg.log_file);
	if (config_require(&cfg, NEED_KEY, &e) < 0) {
		/* A key file removed since the start: a failed run, reported like one. */
		rc = cmd_fail(&e);
		if (!drill)
			job_report_refused(&cfg, JOB_SCHEDULED, &e);
		goto out;
	}
	if (drill) {
		struct job_verify_opts vo = { .trigger = JOB_SCHEDULED,
					      .drill = true,
					      .random = cfg.daemon.verify_random,
					      .pick_last = cfg.daemon.verify_pick_last };
		if (job_verify(&cfg, &vo, &e) < 0)
			rc = (int)e.code;
	} else {
		struct backup_result res = { 0 };
		if (job_backup(&cfg, JOB_SCHEDULED, &res, &e) < 0)
			rc = (int)e.code;
		backup_result_release(&res);
	}
out:
	config_release(&cfg);
	return rc;
}

/*
 * Become lifeboat-sched (beside this program): same pid, so PID 1 stays PID 1, without
 * the libraries only the runs need. Returns only when it cannot be run.
 */
static int exec_scheduler(const struct config *cfg, int metrics_fd, struct err *e)
{
	char self[4096];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	struct strvec args = STRVEC_INIT;

	if (n < 0)
		return err_set(e, LB_EXIT_INTERNAL, "cannot find this program: %s",
			       strerror(errno));
	self[n] = '\0';
	const char *slash = strrchr(self, '/');
	auto_free char *sched = xasprintf("%.*s/lifeboat-sched", slash ? (int)(slash - self) : 1,
					  slash ? self : ".");
	strvec_push(&args, "lifeboat-sched");
	strvec_pushf(&args, "--lifeboat=%s", self);
	strvec_pushf(&args, "--name=%s", cfg->name);
	strvec_pushf(&args, "--state-dir=%s", cfg->state_dir);
	/* A log file that could not be opened was warned about once, here. */
	if (cfg->log_file && access(cfg->log_file, W_OK) == 0)
		strvec_pushf(&args, "--log-file=%s", cfg->log_file);
	if (cfg->debug)
		strvec_push(&args, "--debug");
	if (cfg->daemon.schedule)
		strvec_pushf(&args, "--schedule=%s", cfg->daemon.schedule);
	if (cfg->daemon.verify_schedule)
		strvec_pushf(&args, "--verify-schedule=%s", cfg->daemon.verify_schedule);
	if (metrics_fd >= 0) {
		/* The listening socket crosses the exec: the port is ours from the start. */
		fcntl(metrics_fd, F_SETFD, 0);
		strvec_pushf(&args, "--metrics-addr=%s", cfg->daemon.metrics_addr);
		strvec_pushf(&args, "--metrics-fd=%d", metrics_fd);
	}
	fflush(stdout);
	fflush(stderr);
	execv(sched, args.v);
	err_set(e, LB_EXIT_INTERNAL, "cannot run '%s': %s", sched, strerror(errno));
	strvec_release(&args);
	return -1;
}

static int run(int argc, char **argv)
{
	struct config cfg = CONFIG_INIT;
	struct err e = ERR_INIT;
	int metrics_fd = -1;
	int rc;

	if (argc == 3 && !strcmp(argv[1], "--job"))
		return scheduled_job(argv[2]);
	if (argc > 1) {
		fputs(cmd_run.usage, stderr);
		return LB_EXIT_USAGE;
	}
	/* The whole configuration, now: a typo must not wait for 2 AM. */
	rc = cmd_load_config(&cfg, NEED_STORE | NEED_SOURCES_AT_START | NEED_KEY);
	if (rc)
		goto out;
	for (size_t i = 0; i < cfg.nr_sources; i++) {
		struct stat st;
		if (cfg.sources[i].kind == SOURCE_FILE && stat(cfg.sources[i].path, &st) < 0)
			log_warn(
				"BACKUP_FILES: '%s' (%s) does not exist yet; backups fail until it "
				"does",
				cfg.sources[i].path, cfg.sources[i].name);
	}
	log_open_file(cfg.log_file);
	if (cfg.daemon.metrics_addr) {
		if (metrics_listen(&cfg, &metrics_fd, &e) < 0) {
			rc = cmd_fail(&e);
			goto out;
		}
		log_info("metrics on http://%s/metrics", cfg.daemon.metrics_addr);
	}
	/* A killed restore is finished or undone, and containers a killed run left stopped come
	 * back. */
	job_recover_services(&cfg);

	if (!cfg.daemon.schedule && !cfg.daemon.verify_schedule) {
		if (state_set_next(&cfg, 0, 0, &e) < 0)
			log_warn("cannot record the next run in the state file: %s", e.msg);
		err_clear(&e);
		log_info("no BACKUP_SCHEDULE: manual mode; run 'lifeboat backup' to back up now");
	} else {
		log_info("lifeboat %s started: schedule '%s', restore drills '%s' (TZ %s)",
			 LB_VERSION,
			 cfg.daemon.schedule ? cfg.daemon.schedule : "none (manual backups)",
			 cfg.daemon.verify_schedule ? cfg.daemon.verify_schedule : "none",
			 cfg.tz ? cfg.tz : "UTC");
	}
	/*
	 * A SIGTERM from here on stays pending across the exec (blocked signals do), and
	 * lifeboat-sched takes it at once; one that came during the start-up is seen now.
	 */
	signals_defer(true);
	if (signals_pending()) {
		log_info("stopping (signal %d)", signals_pending());
		goto out;
	}
	/* Test builds: stop here so a test can signal exactly between the check and exec. */
	FAULT("run.exec");
	exec_scheduler(&cfg, metrics_fd, &e);
	signals_defer(false);
	rc = cmd_fail(&e);
	if (metrics_fd >= 0)
		close(metrics_fd);
out:
	config_release(&cfg);
	return rc;
}

const struct command cmd_run = {
	.name = "run",
	.summary = "the daemon: back up on BACKUP_SCHEDULE (or wait idle for manual runs)",
	.usage = "usage: lifeboat run\n\n"
		 "The container's entrypoint. Validates the whole configuration (exit 3 if\n"
		 "anything is wrong), then runs a backup at each BACKUP_SCHEDULE time (cron, in\n"
		 "TZ) and logs the next run time. Without BACKUP_SCHEDULE it stays idle, so\n"
		 "'lifeboat backup' can be run by hand in the container. SIGTERM or SIGINT stop\n"
		 "it: at once when idle; a backup in progress is aborted and leaves no archive\n"
		 "(exit 130). With BACKUP_METRICS_ADDR it serves /metrics and /healthz.\n"
		 "At startup, a restore that was killed is finished or undone (see 'lifeboat\n"
		 "restore --help'), and containers that a killed run left stopped\n"
		 "(BACKUP_STOP_SERVICES) are started again.\n"
		 "With BACKUP_VERIFY_SCHEDULE it also runs a restore drill at each of its times\n"
		 "(as 'lifeboat verify --latest --drill', or BACKUP_VERIFY_PICK=random).\n"
		 "Once started it becomes the small lifeboat-sched program (same pid), which\n"
		 "starts each scheduled run as a child 'lifeboat run --job backup' (or\n"
		 "'--job drill'; internal, not for use by hand).\n",
	.run = run,
};
