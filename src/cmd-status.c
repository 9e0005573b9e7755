/* lifeboat status: the last run and the next one, from the state file; the HEALTHCHECK. */
#include "common.h"

#include <time.h>

#include "cmd.h"
#include "parse.h"
#include "state.h"

static void print_time(const char *label, time_t t)
{
	char buf[64];
	struct tm tm;

	if (!t) {
		printf("%-14s -\n", label);
		return;
	}
	localtime_r(&t, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S %Z", &tm);
	printf("%-14s %s\n", label, buf);
}

static void print_run(const char *label, const struct run_record *r)
{
	char size[32];

	if (!r->status[0]) {
		printf("%-14s none\n", label);
		return;
	}
	printf("%-14s %s (%s)\n", label, r->status, r->trigger);
	print_time("  finished", r->finished);
	printf("  %-12s %.1f s\n", "duration", r->duration);
	if (r->file[0])
		printf("  %-12s %s, %s\n", "archive", r->file,
		       format_size(r->size, size, sizeof(size)));
	if (r->error[0])
		printf("  %-12s %s\n", "error", r->error);
}

static int run(int argc, char **argv)
{
	struct config cfg = CONFIG_INIT;
	struct state st;
	struct err e = ERR_INIT;
	char why[768];
	int rc;

	(void)argv;
	if (argc > 1) {
		fputs(cmd_status.usage, stderr);
		return LB_EXIT_USAGE;
	}
	rc = cmd_load_config(&cfg, 0);
	if (rc)
		goto out;
	if (state_load(&cfg, &st, &e) < 0) {
		rc = cmd_fail(&e);
		goto out;
	}
	printf("%-14s %s\n", "name", cfg.name);
	printf("%-14s %s\n", "schedule",
	       cfg.daemon.schedule ? cfg.daemon.schedule : "none (manual mode)");
	print_run("last run", &st.last);
	if (st.last_success.finished && strcmp(st.last.status, "success"))
		print_run("last success", &st.last_success);
	if (cfg.daemon.schedule)
		print_time("next run", st.next_run);
	if (st.running_pid) {
		printf("%-14s pid %d\n", "running", (int)st.running_pid);
		print_time("  since", st.running_since);
	}
	printf("%-14s %llu succeeded, %llu failed\n", "runs", (unsigned long long)st.runs_success,
	       (unsigned long long)st.runs_failure);
	if (cfg.daemon.verify_schedule || st.last_verify.status[0]) {
		print_run("last verify", &st.last_verify);
		for (size_t i = 0; i < st.nr_verify_stores; i++) {
			char label[160];
			snprintf(label, sizeof(label), "  %s", st.verify_stores[i].label);
			char t[64] = "never";
			struct tm tm;
			time_t ok = st.verify_stores[i].last_success;
			if (ok && localtime_r(&ok, &tm))
				strftime(t, sizeof(t), "%Y-%m-%d %H:%M:%S %Z", &tm);
			printf("%-14s last passed %s, %llu failed\n", label, t,
			       (unsigned long long)st.verify_stores[i].failures);
		}
		if (cfg.daemon.verify_schedule)
			print_time("next verify", st.next_verify);
		printf("%-14s %llu passed, %llu failed\n", "verifies",
		       (unsigned long long)st.verifies_success,
		       (unsigned long long)st.verifies_failure);
	}
	if (state_healthy(&cfg, &st, time(NULL), why, sizeof(why))) {
		printf("%-14s ok\n", "health");
	} else {
		printf("%-14s unhealthy: %s\n", "health", why);
		rc = 1;
	}
out:
	config_release(&cfg);
	return rc;
}

const struct command cmd_status = {
	.name = "status",
	.summary = "show the last and next backup; exit 1 when unhealthy",
	.usage = "usage: lifeboat status\n\n"
		 "Prints the last run's result, time and size and the next scheduled time,\n"
		 "from the state file in BACKUP_STATE_DIR. Exits 1 (unhealthy) when a schedule\n"
		 "is set and the last scheduled run failed, or a scheduled run is more than 5\n"
		 "minutes overdue with no run in progress; the image's HEALTHCHECK uses this.\n",
	.run = run,
};
