/* Notifications: a run's outcome as a title and body, delivered to each service. */
#include "common.h"

#include <ctype.h>

#include <time.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "notify.h"
#include "config-vars.h"
#include "http.h"
#include "log.h"
#include "parse.h"
#include "signals.h"
#include "strbuf.h"
#include "strvec.h"
#include "xalloc.h"

/* As the webhooks: 3 attempts, 1 then 2 s apart. */
static const struct http_retry policy = {
	.attempts = 3, .backoff_ms = 1000, .backoff_max_ms = 4000, .any_curl_error = true
};

/* Message size limits of the services (Discord's embed, Telegram's text). */
#define BODY_MAX 3800

static const char *event_word(const struct notify_event *ev)
{
	if (!strcmp(ev->status, "success"))
		return ev->recovered ? "works again" : "succeeded";
	if (!strcmp(ev->status, "start"))
		return "started";
	if (!strcmp(ev->status, "interrupted"))
		return "was interrupted";
	return "failed";
}

static void local_time(time_t t, char *buf, size_t len)
{
	struct tm tm;

	localtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%d %H:%M:%S %Z", &tm);
}

void notify_compose(const struct config *cfg, const struct notify_event *ev, const char *host,
		    const char *log, struct strbuf *title, struct strbuf *body)
{
	char started[64], dur[32] = "", size[32] = "";
	const char *trigger = ev->scheduled ? "scheduled" : "manual";
	const char *job = ev->job ? ev->job : "backup";
	struct strbuf t = STRBUF_INIT;

	local_time(ev->started, started, sizeof(started));
	if (ev->duration >= 0)
		snprintf(dur, sizeof(dur), "%.1f s", ev->duration);
	if (ev->file)
		format_size(ev->size, size, sizeof(size));
	if (ev->job)
		strbuf_addf(&t, "Lifeboat: %s of '%s' %s on %s", job, cfg->name, event_word(ev),
			    host);
	else
		strbuf_addf(&t, "Lifeboat: backup '%s' %s on %s", cfg->name, event_word(ev), host);
	if (cfg->notify.template) {
		const struct notify_field f[] = {
			{ "title", t.buf },
			{ "name", cfg->name },
			{ "status", ev->status },
			{ "job", job },
			{ "event", event_word(ev) },
			{ "trigger", trigger },
			{ "host", host },
			{ "started", started },
			{ "duration", dur },
			{ "file", ev->file ? ev->file : "" },
			{ "size", ev->file ? size : "" },
			{ "stores", ev->stores ? ev->stores : "" },
			{ "error", ev->error ? ev->error : "" },
			{ "log", log },
		};
		struct strbuf all = STRBUF_INIT;
		notify_render(&all, cfg->notify.template, f, ARRAY_SIZE(f));
		char *nl = strchr(all.buf, '\n');
		if (nl) {
			strbuf_add(title, all.buf, (size_t)(nl - all.buf));
			strbuf_addstr(body, nl + 1);
		} else {
			strbuf_addstr(title, t.buf);
			strbuf_addstr(body, all.buf);
		}
		strbuf_release(&all);
		strbuf_release(&t);
		return;
	}
	strbuf_addstr(title, t.buf);
	strbuf_release(&t);
	if (!strcmp(ev->status, "start")) {
		strbuf_addf(body, "The %s backup '%s' on %s started at %s.\n", trigger, cfg->name,
			    host, started);
		return;
	}
	if (ev->job && ev->duration >= 0)
		strbuf_addf(body, "The %s %s of '%s' on %s %s after %s (started %s).\n", trigger,
			    job, cfg->name, host, event_word(ev), dur, started);
	else if (ev->duration >= 0)
		strbuf_addf(body, "The %s backup '%s' on %s %s after %s (started %s).\n", trigger,
			    cfg->name, host, event_word(ev), dur, started);
	else
		strbuf_addf(body, "The backup '%s' on %s that started at %s %s.\n", cfg->name, host,
			    started, event_word(ev));
	if (ev->file && ev->job)
		strbuf_addf(body, "\nChecked: %s.\n", ev->file);
	else if (ev->file)
		strbuf_addf(body, "\nArchive: %s, %s, in %s.\n", ev->file, size,
			    ev->stores ? ev->stores : "?");
	else if (ev->job)
		;
	else if (strcmp(ev->status, "success"))
		strbuf_addstr(body, "\nNo archive was stored.\n");
	if (ev->recovered)
		strbuf_addstr(body, "The run before it had failed.\n");
	if (ev->error && ev->error[0])
		strbuf_addf(body, "\nWhat failed: %s\n", ev->error);
	if (log && *log && strcmp(ev->status, "success"))
		strbuf_addf(body, "\nLast log lines:\n%s", log);
	if (body->len > BODY_MAX) {
		body->len = BODY_MAX;
		while (body->len && ((unsigned char)body->buf[body->len] & 0xc0) == 0x80)
			body->len--;
		body->buf[body->len] = '\0';
		strbuf_addstr(body, "\n[...]\n");
	}
}

/* The fixed hosts of Slack, Discord and Telegram, moved to a local receiver by tests. */
static char *endpoint(const struct notify_service *s)
{
#ifdef LB_FAULT_POINTS
	static const char *const hosts[] = { "https://hooks.slack.com", "https://discord.com",
					     "https://api.telegram.org" };
	const char *base = getenv("LIFEBOAT_TEST_NOTIFY_BASE");

	for (size_t i = 0; base && *base && i < ARRAY_SIZE(hosts); i++)
		if (!strncmp(s->endpoint, hosts[i], strlen(hosts[i])))
			return xasprintf("%s%s", base, s->endpoint + strlen(hosts[i]));
#endif
	return xstrdup(s->endpoint);
}

/* RFC 2047 for a Subject that is not ASCII. */
static void subject(struct strbuf *out, const char *title)
{
	bool ascii = true;

	for (const char *p = title; *p; p++)
		ascii &= (unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f;
	if (ascii) {
		strbuf_addstr(out, title);
		return;
	}
	/* Encoded words of at most 45 input bytes, whole UTF-8 characters. */
	for (const char *p = title; *p;) {
		size_t n = strlen(p) > 45 ? 45 : strlen(p);
		while (n < strlen(p) && n && ((unsigned char)p[n] & 0xc0) == 0x80)
			n--;
		unsigned char enc[80];
		int k = EVP_EncodeBlock(enc, (const unsigned char *)p, (int)n);
		strbuf_addf(out, "%s=?UTF-8?B?%.*s?=", p == title ? "" : "\r\n ", k, enc);
		p += n;
	}
}

static void mail_text(const struct notify_service *s, const char *title, const char *body,
		      struct strbuf *out)
{
	char date[64], host[256] = "";
	time_t now = time(NULL);
	struct tm tm;

	localtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S %z", &tm);
	gethostname(host, sizeof(host) - 1);
	strbuf_addf(out, "Date: %s\r\nFrom: <%s>\r\nTo: ", date, s->from);
	for (size_t i = 0; i < s->to.nr; i++)
		strbuf_addf(out, "%s<%s>", i ? ", " : "", s->to.v[i]);
	strbuf_addstr(out, "\r\nSubject: ");
	subject(out, title);
	strbuf_addf(out,
		    "\r\nMessage-ID: <lifeboat.%lld.%d@%s>\r\nMIME-Version: 1.0\r\n"
		    "Content-Type: text/plain; charset=utf-8\r\n"
		    "Content-Transfer-Encoding: 8bit\r\nAuto-Submitted: auto-generated\r\n\r\n",
		    (long long)now, (int)getpid(), host[0] ? host : "localhost");
	for (const char *p = body; *p; p++) {
		if (*p == '\n')
			strbuf_addstr(out, "\r\n");
		else if (*p != '\r')
			strbuf_addch(out, *p);
	}
	if (out->len < 2 || strcmp(out->buf + out->len - 2, "\r\n"))
		strbuf_addstr(out, "\r\n");
}

static char *json_text(json_t *o)
{
	char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;

	json_decref(o);
	return s ? s : xstrdup("{}");
}

static bool failed_status(const char *status)
{
	return !strcmp(status, "failure") || !strcmp(status, "interrupted");
}

/* The JSON a service's API takes (Telegram: for one chat). */
static char *request_json(const struct notify_service *s, const char *title, const char *body,
			  const char *status, const char *json, const char *chat)
{
	bool bad = failed_status(status);
	struct strbuf both = STRBUF_INIT;

	switch (s->kind) {
	case NOTIFY_NTFY:
		return json_text(json_pack("{s:s, s:s, s:s, s:i, s:[s]}", "topic", s->topic,
					   "title", title, "message", body, "priority",
					   s->priority >= 0 ? s->priority
					   : bad	    ? 4
							    : 3,
					   "tags", bad ? "warning" : "white_check_mark"));
	case NOTIFY_GOTIFY:
		return json_text(json_pack("{s:s, s:s, s:i}", "title", title, "message", body,
					   "priority",
					   s->priority >= 0 ? s->priority
					   : bad	    ? 8
							    : 5));
	case NOTIFY_SLACK: {
		strbuf_addf(&both, "*%s*\n%s", title, body);
		char *t = json_text(json_pack("{s:s%}", "text", both.buf, both.len));
		strbuf_release(&both);
		return t;
	}
	case NOTIFY_DISCORD:
		return json_text(json_pack("{s:s, s:[{s:s, s:s, s:i}]}", "username", "Lifeboat",
					   "embeds", "title", title, "description", body, "color",
					   bad ? 0xd32f2f : 0x2e7d32));
	case NOTIFY_TELEGRAM: {
		strbuf_addf(&both, "%s\n\n%s", title, body);
		char *t = json_text(json_pack("{s:s, s:s%, s:b}", "chat_id", chat, "text", both.buf,
					      both.len, "disable_web_page_preview", 1));
		strbuf_release(&both);
		return t;
	}
	case NOTIFY_MATRIX: {
		/* m.room.message of msgtype m.notice (a bot's message: clients never answer it). */
		strbuf_addf(&both, "%s\n\n%s", title, body);
		char *t = json_text(json_pack("{s:s, s:s%}", "msgtype", "m.notice", "body",
					      both.buf, both.len));
		strbuf_release(&both);
		return t;
	}
	case NOTIFY_GENERIC: {
		json_t *o = json ? json_loads(json, 0, NULL) : NULL;
		if (!json_is_object(o)) {
			json_decref(o);
			o = json_object();
		}
		json_object_set_new(o, "title", json_string(title));
		json_object_set_new(o, "message", json_string(body));
		return json_text(o);
	}
	case NOTIFY_SMTP:
		break;
	}
	strbuf_release(&both);
	return xstrdup("{}");
}

/* Printable text of a service's answer, for the error (Telegram's "description"). */
static void answer_excerpt(const struct strbuf *resp, char *out, size_t len)
{
	size_t o = 0;

	for (size_t i = 0; i < resp->len && o + 1 < len && o < 200; i++) {
		unsigned char c = (unsigned char)resp->buf[i];
		out[o++] = c >= 0x20 && c < 0x7f ? (char)c : ' ';
	}
	out[o] = '\0';
}

/* One attempt. */
static CURLcode attempt(const struct notify_service *s, const char *url, const char *data,
			struct strbuf *resp, long *ret_status)
{
	CURL *c = http_handle();
	struct curl_slist *hdrs = NULL, *rcpt = NULL;
	auto_free char *key = NULL;

	if (!c)
		return CURLE_FAILED_INIT;
	struct http_req req = { .method = "POST",
				.url = url,
				.body = data,
				.body_len = strlen(data),
				.protocols = "http,https",
				.connect_timeout_s = 10,
				.timeout_s = 30,
				.resp = resp,
				.cap = 4096 };
	if (s->kind == NOTIFY_SMTP) {
		for (size_t i = 0; i < s->to.nr; i++)
			rcpt = curl_slist_append(rcpt, s->to.v[i]);
		req.method = "MAIL";
		req.protocols = "smtp,smtps";
		req.mail_from = s->from;
		req.mail_rcpt = rcpt;
		req.use_ssl = s->tls == NOTIFY_TLS_REQUIRED ? CURLUSESSL_ALL
			      : s->tls == NOTIFY_TLS_TRY    ? CURLUSESSL_TRY
							    : CURLUSESSL_NONE;
		req.ca_file = s->ca_file;
		req.resp = NULL;
	} else {
		hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
		if (s->kind == NOTIFY_MATRIX) {
			/* The client-server API: PUT with the access token as a bearer token. */
			req.method = "PUT";
			key = xasprintf("Authorization: Bearer %s", s->key);
			hdrs = curl_slist_append(hdrs, key);
			hdrs = curl_slist_append(hdrs, "Expect:");
		} else if (s->key) {
			key = xasprintf("X-Gotify-Key: %s", s->key);
			hdrs = curl_slist_append(hdrs, key);
		}
	}
	req.headers = hdrs;
	if (s->user) {
		req.username = s->user;
		req.password = s->password;
	}
	CURLcode rc = http_perform(c, &req, ret_status);
	if (key)
		explicit_bzero(key, strlen(key));
	curl_slist_free_all(hdrs);
	curl_slist_free_all(rcpt);
	curl_easy_cleanup(c);
	return rc;
}

static bool final_error(CURLcode cc)
{
	return cc == CURLE_LOGIN_DENIED || cc == CURLE_URL_MALFORMAT ||
	       cc == CURLE_UNSUPPORTED_PROTOCOL || cc == CURLE_USE_SSL_FAILED;
}

/* POST (or mail) `data` to `url` with the retry policy. */
static int send_one(const struct notify_service *s, const char *url, const char *data,
		    struct err *e)
{
	struct strbuf resp = STRBUF_INIT;
	long status = 0, backoff = policy.backoff_ms;
	CURLcode code = CURLE_OK;
	char text[256];

	for (int i = 1;; i++) {
		code = attempt(s, url, data, &resp, &status);
		if (code == CURLE_OK &&
		    (s->kind == NOTIFY_SMTP || (status >= 200 && status < 300))) {
			strbuf_release(&resp);
			return 0;
		}
		if (final_error(code) || !http_retryable(&policy, code, status) ||
		    !http_attempts_left(&policy, i) || signals_pending())
			break;
		http_sleep_ms(backoff);
		backoff = http_backoff_next(&policy, backoff);
	}
	answer_excerpt(&resp, text, sizeof(text));
	strbuf_release(&resp);
	/* Not curl's error buffer: it may name a token that is in the URL. */
	if (code != CURLE_OK)
		return err_set(e, LB_EXIT_INTERNAL, "%s: %s", s->shown,
			       http_error_text(code, NULL));
	return err_set(e, LB_EXIT_INTERNAL, "%s: the server answered HTTP %ld%s%s", s->shown,
		       status, text[0] ? ": " : "", text);
}

int notify_deliver(const struct notify_service *s, const char *title, const char *body,
		   const char *status, const char *json, struct err *e)
{
	auto_free char *url = endpoint(s);
	int r = 0;

	if (s->kind == NOTIFY_SMTP) {
		struct strbuf mail = STRBUF_INIT;
		mail_text(s, title, body, &mail);
		r = send_one(s, url, mail.buf, e);
		strbuf_release(&mail);
		return r;
	}
	/* Matrix: one event per room, each with its own transaction id (a retry reuses it). */
	if (s->kind == NOTIFY_MATRIX) {
		auto_free char *data = request_json(s, title, body, status, json, NULL);
		unsigned char rnd[8];
		if (getentropy(rnd, sizeof(rnd)) < 0)
			memset(rnd, 0, sizeof(rnd));
		for (size_t i = 0; i < s->to.nr; i++) {
			struct strbuf u = STRBUF_INIT;
			strbuf_addf(&u, "%s/_matrix/client/v3/rooms/", url);
			for (const char *c = s->to.v[i]; *c; c++)
				if (isalnum((unsigned char)*c) || strchr("-._~", *c))
					strbuf_addch(&u, *c);
				else
					strbuf_addf(&u, "%%%02X", (unsigned char)*c);
			strbuf_addf(&u, "/send/m.room.message/lifeboat.%ld.", (long)time(NULL));
			for (size_t k = 0; k < sizeof(rnd); k++)
				strbuf_addf(&u, "%02x", rnd[k]);
			strbuf_addf(&u, ".%zu", i);
			if (send_one(s, u.buf, data, e) < 0)
				r = -1;
			strbuf_release(&u);
		}
		return r;
	}
	/* Telegram: one message per chat; the first failure is the one reported. */
	for (size_t i = 0; i < (s->kind == NOTIFY_TELEGRAM ? s->to.nr : 1); i++) {
		auto_free char *data = request_json(s, title, body, status, json,
						    s->kind == NOTIFY_TELEGRAM ? s->to.v[i] : NULL);
		if (send_one(s, url, data, e) < 0)
			r = -1;
	}
	return r;
}

void notify_send(const struct config *cfg, const struct notify_event *ev)
{
	const struct config_notify *n = &cfg->notify;
	struct strbuf title = STRBUF_INIT, body = STRBUF_INIT, log = STRBUF_INIT;
	struct strvec tail = STRVEC_INIT;
	char host[256] = "";

	if (!n->services.nr || !notify_wanted(n->level, ev->status, ev->recovered))
		return;
	gethostname(host, sizeof(host) - 1);
	log_tail(&tail);
	/* The last lines: what a person needs to see first is the end. */
	for (size_t i = tail.nr > 10 ? tail.nr - 10 : 0; i < tail.nr; i++)
		strbuf_addf(&log, "%s\n", tail.v[i]);
	strvec_release(&tail);
	notify_compose(cfg, ev, host[0] ? host : "localhost", log.buf, &title, &body);
	for (size_t i = 0; i < n->services.nr; i++) {
		const struct notify_service *s = &n->services.v[i];
		struct err e = ERR_INIT;
		if (notify_deliver(s, title.buf, body.buf, ev->status, ev->json, &e) < 0)
			log_warn("notification not delivered (the backup result is unchanged): %s",
				 e.msg);
		else
			log_info("notified %s (%s)", s->shown, ev->status);
	}
	strbuf_release(&title);
	strbuf_release(&body);
	strbuf_release(&log);
}

/* ---- the configuration rows ---- */

static int var_urls(CONFIG_PARSE_ARGS)
{
	CONFIG_UNUSED_ARGS;
	if (!value)
		return 0;
	if (memchr(value, '\0', len))
		return err_set(e, LB_EXIT_CONFIG, "%s holds a NUL byte (value not shown)", origin);
	cfg->notify.origin = origin;
	return notify_urls_parse(origin, value, &cfg->notify.services, e);
}

static int var_level(CONFIG_PARSE_ARGS)
{
	CONFIG_UNUSED_ARGS;
	cfg->notify.level = NOTIFY_LEVEL_FAILURE;
	if (value && notify_level_parse(value, &cfg->notify.level) < 0)
		return err_set(e, LB_EXIT_CONFIG,
			       "BACKUP_NOTIFY_LEVEL '%s' is invalid: expected failure, success or "
			       "start",
			       SHOW(value));
	return 0;
}

static int var_template(CONFIG_PARSE_ARGS)
{
	char bad[48];
	CONFIG_UNUSED_ARGS;

	if (!value)
		return 0;
	if (notify_template_check(value, bad, sizeof(bad)) < 0)
		return err_set(e, LB_EXIT_CONFIG,
			       "BACKUP_NOTIFY_TEMPLATE: unknown field '{%s}' (see README.md's "
			       "Notifications for the fields; '{{' is a literal '{')",
			       SHOW(bad));
	cfg->notify.template = xstrdup(value);
	return 0;
}

static void describe_notify(const struct config *cfg, struct strbuf *out)
{
	const struct config_notify *n = &cfg->notify;
	static const char *const levels[] = { "failure (and the first success after one)",
					      "success and failure", "start, success and failure" };

	if (!n->services.nr) {
		strbuf_addstr(out, "notifications        (none: BACKUP_NOTIFY_URLS unset)\n");
		return;
	}
	strbuf_addf(out, "notifications        %s%s\n", levels[n->level],
		    n->template ? ", BACKUP_NOTIFY_TEMPLATE set" : "");
	for (size_t i = 0; i < n->services.nr; i++)
		strbuf_addf(out, "  %-8s           %s\n", notify_kind_name(n->services.v[i].kind),
			    n->services.v[i].shown);
}

static const struct config_var rows[] = {
	{ "BACKUP_NOTIFY_URLS", SECRET, var_urls, 0, 0, 0, NULL,
	  "Notification services, one URL per line or comma separated: `smtp://`, `smtps://`, "
	  "`ntfy://`, `gotify://`, `slack://`, `discord://`, `telegram://`, `matrix://`, "
	  "`generic+https://` "
	  "(never printed; `lifeboat check` shows them with `***`). See "
	  "[Notifications](#notifications).",
	  NULL },
	{ "BACKUP_NOTIFY_LEVEL", 0, var_level, 0, 0, 0, "failure",
	  "`failure` (default: failed runs, and the first success after one), `success` (every "
	  "run's end) or `start` (also when a run starts).",
	  NULL },
	{ "BACKUP_NOTIFY_TEMPLATE", 0, var_template, 0, 0, 0, NULL,
	  "The notification's text: first line the title, the rest the body; `{field}` "
	  "placeholders, `\\n` for a new line. Unset: the built-in text.",
	  describe_notify },
};
const struct config_var_group notify_vars = CONFIG_VAR_GROUP(rows);
