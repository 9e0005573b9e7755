/* Webhooks: one libcurl easy handle per attempt; the URL never appears in messages. */
#include "common.h"

#include <poll.h>

#include <curl/curl.h>

#include "log.h"
#include "signals.h"
#include "webhook.h"

#define ATTEMPTS 3

/* Responses are not read; discard them without buffering. */
static size_t discard(char *ptr, size_t size, size_t nmemb, void *ud)
{
	(void)ptr;
	(void)ud;
	return size * nmemb;
}

/* One attempt: 0 on a 2xx answer, else -1; the HTTP status and curl code come back. */
static int attempt(const char *url, const char *body, long *ret_status, CURLcode *ret_code)
{
	CURL *c = curl_easy_init();
	struct curl_slist *hdrs = NULL;
	CURLcode rc;
	long status = 0;

	if (!c) {
		*ret_code = CURLE_FAILED_INIT;
		return -1;
	}
	hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "lifeboat/" LB_VERSION);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 5L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	rc = curl_easy_perform(c);
	if (rc == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(c);
	*ret_status = status;
	*ret_code = rc;
	return rc == CURLE_OK && status >= 200 && status < 300 ? 0 : -1;
}

void webhook_init(void)
{
	static bool inited;

	if (!inited) {
		curl_global_init(CURL_GLOBAL_DEFAULT);
		inited = true;
	}
}

int webhook_post(const char *url, const char *var, const char *body, struct err *e)
{
	long status = 0;
	CURLcode code = CURLE_OK;

	webhook_init();
	for (int i = 1; i <= ATTEMPTS; i++) {
		if (attempt(url, body, &status, &code) == 0) {
			log_debug("%s: answered HTTP %ld", var, status);
			return 0;
		}
		bool retry = code != CURLE_OK || status == 429 || status >= 500;
		if (!retry || i == ATTEMPTS || signals_pending())
			break;
		log_debug("%s: attempt %d failed, retrying", var, i);
		poll(NULL, 0, 1000 * i);
	}
	if (code != CURLE_OK)
		return err_set(e, LB_EXIT_INTERNAL, "%s: %s", var, curl_easy_strerror(code));
	return err_set(e, LB_EXIT_INTERNAL, "%s: the server answered HTTP %ld", var, status);
}
