/* lifeboat run: the container's entrypoint; scheduled backups in-process, or idle. */
#include "common.h"

#include <sys/stat.h>

#include <poll.h>
#include <sys/wait.h>
#include <time.h>

#include "cmd.h"
#include "http.h"
#include "job.h"
#include "log.h"
#include "metrics.h"
#include "signals.h"
#include "state.h"

/* We may be PID 1: collect every exited child, including orphans such as gpg-agent. */
static void reap_children(void)
{
	pid_t pid;
	int status;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
		log_debug("reaped process %d", (int)pid);
}

/* Sleep until `until` (wall clock) or a signal; false when a signal came. */
static bool sleep_until(time_t until)
{
	for (;;) {
		struct timespec now;
		reap_children();
		if (signals_pending())
			return false;
		/* time() (a coarse clock) names the archive: wait until it agrees too. */
		if (until && time(NULL) >= until)
			return true;
		clock_gettime(CLOCK_REALTIME, &now);
		long ms = until ? (long)(until - now.tv_sec) * 1000 - now.tv_nsec / 1000000 : 1000;
		/* Short naps: a signal arriving just before poll() is seen within a second. */
		poll(NULL, 0, (int)(ms > 1000 ? 1000 : ms < 1 ? 1 : ms));
	}
}

static void fmt_local(time_t t, char *buf, size_t len)
{
	struct tm tm;
	localtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%d %H:%M:%S %Z", &tm);
}

struct next_ctx {
	time_t next, next_verify;
};

static void set_next(struct state *st, void *ctx)
{
	st->next_run = ((struct next_ctx *)ctx)->next;
	st->next_verify = ((struct next_ctx *)ctx)->next_verify;
}

static void record_next(const struct config *cfg, time_t next, time_t next_verify)
{
	struct next_ctx c = { next, next_verify };
	struct err e = ERR_INIT;

	if (state_update(cfg, set_next, &c, &e) < 0)
		log_warn("cannot record the next run in the state file: %s", e.msg);
}

static int run(int argc, char **argv)
{
	struct config cfg = CONFIG_INIT;
	struct metrics *metrics = NULL;
	struct err e = ERR_INIT;
	char when[64];
	int rc;

	(void)argv;
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
	/* curl_global_init before the metrics thread exists; a failure shows at first use. */
	struct err curl_e = ERR_INIT;
	http_init(&curl_e);
	if (cfg.daemon.metrics_addr) {
		if (metrics_start(&cfg, &metrics, &e) < 0) {
			rc = cmd_fail(&e);
			goto out;
		}
		log_info("metrics on http://%s/metrics", cfg.daemon.metrics_addr);
	}
	/* A killed restore is finished or undone, and containers a killed run left stopped come
	 * back. */
	job_recover_services(&cfg);

	if (!cfg.daemon.schedule && !cfg.daemon.verify_schedule) {
		record_next(&cfg, 0, 0);
		log_info("no BACKUP_SCHEDULE: manual mode; run 'lifeboat backup' to back up now");
		sleep_until(0);
		log_info("stopping (signal %d)", signals_pending());
		goto out;
	}
	log_info("lifeboat %s started: schedule '%s', restore drills '%s' (TZ %s)", LB_VERSION,
		 cfg.daemon.schedule ? cfg.daemon.schedule : "none (manual backups)",
		 cfg.daemon.verify_schedule ? cfg.daemon.verify_schedule : "none",
		 cfg.tz ? cfg.tz : "UTC");
	time_t after = time(NULL), vafter = after;
	for (;;) {
		time_t next = 0, vnext = 0;
		if (cfg.daemon.schedule && cron_next(&cfg.daemon.cron, after, &next) < 0) {
			err_set(&e, LB_EXIT_CONFIG, "BACKUP_SCHEDULE '%s' never fires again",
				cfg.daemon.schedule);
			rc = cmd_fail(&e);
			break;
		}
		if (cfg.daemon.verify_schedule &&
		    cron_next(&cfg.daemon.verify_cron, vafter, &vnext) < 0) {
			err_set(&e, LB_EXIT_CONFIG, "BACKUP_VERIFY_SCHEDULE '%s' never fires again",
				cfg.daemon.verify_schedule);
			rc = cmd_fail(&e);
			break;
		}
		record_next(&cfg, next, vnext);
		/* The earlier of the two; a backup first when both fall on the same second. */
		bool verify = vnext && (!next || vnext < next);
		fmt_local(verify ? vnext : next, when, sizeof(when));
		log_info("next %s at %s", verify ? "restore drill" : "backup", when);
		if (!sleep_until(verify ? vnext : next)) {
			log_info("stopping (signal %d)", signals_pending());
			break;
		}
		err_clear(&e);
		if (verify) {
			struct job_verify_opts vo = { .trigger = JOB_SCHEDULED,
						      .drill = true,
						      .random = cfg.daemon.verify_random,
						      .pick_last = cfg.daemon.verify_pick_last };
			job_verify(&cfg, &vo, &e);
			vafter = time(NULL) > vnext ? time(NULL) : vnext;
		} else {
			struct backup_result res = { 0 };
			job_backup(&cfg, JOB_SCHEDULED, &res, &e);
			backup_result_release(&res);
			after = time(NULL) > next ? time(NULL) : next;
		}
		reap_children();
		if (signals_pending()) {
			log_info("stopping (signal %d): the %s in progress was aborted and "
				 "left nothing behind",
				 signals_pending(), verify ? "restore drill" : "backup");
			rc = e.code == LB_EXIT_INTERRUPTED ? LB_EXIT_INTERRUPTED : 0;
			break;
		}
	}
out:
	metrics_stop(metrics);
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
		 "(as 'lifeboat verify --latest --drill', or BACKUP_VERIFY_PICK=random).\n",
	.run = run,
};
