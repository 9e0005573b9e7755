/* Metrics endpoint: every scrape reads the state file, so manual runs show up too. */
#include "common.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>

#include <microhttpd.h>

#include "log.h"
#include "metrics.h"
#include "state.h"
#include "strbuf.h"
#include "xalloc.h"

struct metrics {
	struct MHD_Daemon *d;
	const struct config *cfg;
};

enum stat_field { STAT_LAST_SUCCESS, STAT_FAILURES, STAT_FILES, STAT_BYTES };

static long long stat_value(const struct labelled_stat *l, enum stat_field f)
{
	switch (f) {
	case STAT_LAST_SUCCESS:
		return (long long)l->last_success;
	case STAT_FAILURES:
		return (long long)l->failures;
	case STAT_FILES:
		return (long long)l->files;
	case STAT_BYTES:
		return (long long)l->bytes;
	}
	return 0;
}

/* One metric with a series per store or per source (label `key`). */
static void labelled_series(struct strbuf *out, const char *name, const char *metric,
			    const char *help, const char *type, const char *key,
			    const struct labelled_stat *v, size_t nr, enum stat_field f)
{
	strbuf_addf(out, "# HELP %s %s\n# TYPE %s %s\n", metric, help, metric, type);
	for (size_t i = 0; i < nr; i++) {
		/* A database source's key is KIND/NAME (state_source_key): two labels. */
		const char *slash = strchr(v[i].label, '/');
		if (slash)
			strbuf_addf(out, "%s{name=\"%s\",%s=\"%s\",kind=\"%.*s\"} %lld\n", metric,
				    name, key, slash + 1, (int)(slash - v[i].label), v[i].label,
				    stat_value(&v[i], f));
		else
			strbuf_addf(out, "%s{name=\"%s\",%s=\"%s\"} %lld\n", metric, name, key,
				    v[i].label, stat_value(&v[i], f));
	}
}

void metrics_render(const struct config *cfg, struct strbuf *out)
{
	struct state st;
	struct err e = ERR_INIT;
	const char *const outcomes[] = { "success", "failure" };

	if (state_load(cfg, &st, &e) < 0)
		memset(&st, 0, sizeof(st));
	const uint64_t runs[] = { st.runs_success, st.runs_failure };
	strbuf_addf(out, "# HELP lifeboat_runs_total Backup runs by outcome.\n"
			 "# TYPE lifeboat_runs_total counter\n");
	for (size_t i = 0; i < ARRAY_SIZE(outcomes); i++)
		strbuf_addf(out, "lifeboat_runs_total{name=\"%s\",outcome=\"%s\"} %llu\n",
			    cfg->name, outcomes[i], (unsigned long long)runs[i]);
	strbuf_addf(out,
		    "# HELP lifeboat_failures_total Failed backup runs.\n"
		    "# TYPE lifeboat_failures_total counter\n"
		    "lifeboat_failures_total{name=\"%s\"} %llu\n",
		    cfg->name, (unsigned long long)st.runs_failure);
	strbuf_addf(out,
		    "# HELP lifeboat_last_success_timestamp_seconds End of the last successful "
		    "backup (0: none).\n"
		    "# TYPE lifeboat_last_success_timestamp_seconds gauge\n"
		    "lifeboat_last_success_timestamp_seconds{name=\"%s\"} %lld\n",
		    cfg->name, (long long)st.last_success.finished);
	strbuf_addf(out,
		    "# HELP lifeboat_last_duration_seconds Duration of the last run.\n"
		    "# TYPE lifeboat_last_duration_seconds gauge\n"
		    "lifeboat_last_duration_seconds{name=\"%s\"} %.3f\n",
		    cfg->name, st.last.duration);
	strbuf_addf(out,
		    "# HELP lifeboat_last_size_bytes Archive size of the last successful backup.\n"
		    "# TYPE lifeboat_last_size_bytes gauge\n"
		    "lifeboat_last_size_bytes{name=\"%s\"} %llu\n",
		    cfg->name, (unsigned long long)st.last_success.size);
	strbuf_addf(out,
		    "# HELP lifeboat_last_run_success 1 if the last run succeeded, 0 if it "
		    "failed or none ran.\n"
		    "# TYPE lifeboat_last_run_success gauge\n"
		    "lifeboat_last_run_success{name=\"%s\"} %d\n",
		    cfg->name, !strcmp(st.last.status, "success"));
	strbuf_addf(out,
		    "# HELP lifeboat_next_run_timestamp_seconds Next scheduled run (0: manual "
		    "mode).\n"
		    "# TYPE lifeboat_next_run_timestamp_seconds gauge\n"
		    "lifeboat_next_run_timestamp_seconds{name=\"%s\"} %lld\n",
		    cfg->name, (long long)st.next_run);
	labelled_series(out, cfg->name, "lifeboat_store_last_success_timestamp_seconds",
			"When an archive was last stored in this store (0: never).", "gauge",
			"store", st.stores, st.nr_stores, STAT_LAST_SUCCESS);
	labelled_series(out, cfg->name, "lifeboat_store_failures_total",
			"Runs whose copy in this store failed.", "counter", "store", st.stores,
			st.nr_stores, STAT_FAILURES);
	labelled_series(out, cfg->name, "lifeboat_source_files",
			"Files of this source in the last successful backup.", "gauge", "source",
			st.sources, st.nr_sources, STAT_FILES);
	labelled_series(out, cfg->name, "lifeboat_source_bytes",
			"Content bytes of this source in the last successful backup.", "gauge",
			"source", st.sources, st.nr_sources, STAT_BYTES);
	const uint64_t verifies[] = { st.verifies_success, st.verifies_failure };
	strbuf_addf(out, "# HELP lifeboat_verify_runs_total Verifications and restore drills by "
			 "outcome.\n"
			 "# TYPE lifeboat_verify_runs_total counter\n");
	for (size_t i = 0; i < ARRAY_SIZE(outcomes); i++)
		strbuf_addf(out, "lifeboat_verify_runs_total{name=\"%s\",outcome=\"%s\"} %llu\n",
			    cfg->name, outcomes[i], (unsigned long long)verifies[i]);
	strbuf_addf(out,
		    "# HELP lifeboat_verify_last_run_success 1 if the last verification or "
		    "restore drill passed, 0 if it failed or none ran.\n"
		    "# TYPE lifeboat_verify_last_run_success gauge\n"
		    "lifeboat_verify_last_run_success{name=\"%s\"} %d\n",
		    cfg->name, !strcmp(st.last_verify.status, "success"));
	strbuf_addf(out,
		    "# HELP lifeboat_next_verify_timestamp_seconds Next scheduled restore drill "
		    "(0: none).\n"
		    "# TYPE lifeboat_next_verify_timestamp_seconds gauge\n"
		    "lifeboat_next_verify_timestamp_seconds{name=\"%s\"} %lld\n",
		    cfg->name, (long long)st.next_verify);
	labelled_series(out, cfg->name, "lifeboat_verify_last_success_timestamp_seconds",
			"When this store's copy last passed a verification or restore drill (0: "
			"never).",
			"gauge", "store", st.verify_stores, st.nr_verify_stores, STAT_LAST_SUCCESS);
	labelled_series(out, cfg->name, "lifeboat_verify_failures_total",
			"Verifications or restore drills of this store's copy that failed.",
			"counter", "store", st.verify_stores, st.nr_verify_stores, STAT_FAILURES);
	labelled_series(out, cfg->name, "lifeboat_source_last_success_timestamp_seconds",
			"When this source was last backed up successfully.", "gauge", "source",
			st.sources, st.nr_sources, STAT_LAST_SUCCESS);
}

static enum MHD_Result answer(struct MHD_Connection *conn, unsigned status, struct strbuf *body,
			      const char *type)
{
	size_t len;
	char *text = strbuf_detach(body, &len);
	struct MHD_Response *r = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
	enum MHD_Result ret;

	if (!r) {
		free(text);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", type);
	ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *conn, const char *url,
			       const char *method, const char *version, const char *upload_data,
			       size_t *upload_data_size, void **con_cls)
{
	static int first_call_marker;
	struct metrics *m = cls;
	struct strbuf body = STRBUF_INIT;

	(void)version;
	(void)upload_data;
	/* libmicrohttpd 0.9.75: answer on the second call, or the connection is closed. */
	if (*con_cls != &first_call_marker) {
		*con_cls = &first_call_marker;
		return MHD_YES;
	}
	if (*upload_data_size) {
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (strcmp(method, "GET") && strcmp(method, "HEAD")) {
		strbuf_addstr(&body, "method not allowed\n");
		return answer(conn, MHD_HTTP_METHOD_NOT_ALLOWED, &body, "text/plain");
	}
	if (!strcmp(url, "/metrics")) {
		metrics_render(m->cfg, &body);
		return answer(conn, MHD_HTTP_OK, &body, "text/plain; version=0.0.4; charset=utf-8");
	}
	if (!strcmp(url, "/healthz")) {
		struct state st;
		struct err e = ERR_INIT;
		char why[768];
		bool ok = state_load(m->cfg, &st, &e) == 0 &&
			  state_healthy(m->cfg, &st, time(NULL), why, sizeof(why));
		if (ok)
			strbuf_addstr(&body, "ok\n");
		else
			strbuf_addf(&body, "unhealthy: %s\n", err_isset(&e) ? e.msg : why);
		return answer(conn, ok ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, &body,
			      "text/plain");
	}
	strbuf_addstr(&body, "not found: try /metrics or /healthz\n");
	return answer(conn, MHD_HTTP_NOT_FOUND, &body, "text/plain");
}

int metrics_start(const struct config *cfg, struct metrics **ret, struct err *e)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	const char *colon = strrchr(cfg->daemon.metrics_addr, ':');
	const char *port = colon ? colon + 1 : cfg->daemon.metrics_addr;
	struct metrics *m;

	sa.sin_port = htons((uint16_t)strtol(port, NULL, 10));
	if (colon && colon != cfg->daemon.metrics_addr) {
		char host[64];
		snprintf(host, sizeof(host), "%.*s", (int)(colon - cfg->daemon.metrics_addr),
			 cfg->daemon.metrics_addr);
		if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
			return err_set(e, LB_EXIT_CONFIG, "BACKUP_METRICS_ADDR '%s': bad address",
				       cfg->daemon.metrics_addr);
	} else {
		sa.sin_addr.s_addr = htonl(INADDR_ANY);
	}
	m = xcalloc(1, sizeof(*m));
	m->cfg = cfg;
	m->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO, 0, NULL, NULL,
				handler, m, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
				MHD_OPTION_CONNECTION_LIMIT, (unsigned)16,
				MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10, MHD_OPTION_END);
	if (!m->d) {
		int saved = errno;
		free(m);
		return err_set(e, LB_EXIT_CONFIG,
			       "BACKUP_METRICS_ADDR '%s': cannot listen there: %s",
			       cfg->daemon.metrics_addr, strerror(saved));
	}
	*ret = m;
	return 0;
}

void metrics_stop(struct metrics *m)
{
	if (!m)
		return;
	MHD_stop_daemon(m->d);
	free(m);
}
