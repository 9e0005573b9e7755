/* Webhooks: one libcurl easy handle per attempt; the URL never appears in messages. */
#include "common.h"

#include "http.h"
#include "log.h"
#include "signals.h"
#include "webhook.h"

/* 3 attempts, 1 then 2 s apart; every transport failure is worth another try. */
static const struct http_retry policy = {
	.attempts = 3, .backoff_ms = 1000, .backoff_max_ms = 4000, .any_curl_error = true
};

/* One attempt: the curl code, and with CURLE_OK the HTTP status. Responses are not read. */
static CURLcode attempt(const char *url, const char *body, long *ret_status)
{
	CURL *c = http_handle();
	struct curl_slist *hdrs = NULL;

	if (!c)
		return CURLE_FAILED_INIT;
	hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
	struct http_req req = { .method = "POST",
				.url = url,
				.headers = hdrs,
				.body = body,
				.body_len = strlen(body),
				.protocols = "http,https",
				.connect_timeout_s = 5,
				.timeout_s = 10 };
	CURLcode rc = http_perform(c, &req, ret_status);
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(c);
	return rc;
}

int webhook_post(const char *url, const char *var, const char *body, struct err *e)
{
	long status = 0, backoff = policy.backoff_ms;
	CURLcode code = CURLE_OK;

	for (int i = 1;; i++) {
		code = attempt(url, body, &status);
		if (code == CURLE_OK && status >= 200 && status < 300) {
			log_debug("%s: answered HTTP %ld", var, status);
			return 0;
		}
		if (!http_retryable(&policy, code, status) || !http_attempts_left(&policy, i) ||
		    signals_pending())
			break;
		log_debug("%s: attempt %d failed, retrying", var, i);
		http_sleep_ms(backoff);
		backoff = http_backoff_next(&policy, backoff);
	}
	/* Not curl's error buffer: it may name the URL's host, and the URL is a secret. */
	if (code != CURLE_OK)
		return err_set(e, LB_EXIT_INTERNAL, "%s: %s", var, http_error_text(code, NULL));
	return err_set(e, LB_EXIT_INTERNAL, "%s: the server answered HTTP %ld", var, status);
}
