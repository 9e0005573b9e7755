/*
 * Notification service URLs (BACKUP_NOTIFY_URLS, in shoutrrr's style) parsed into what
 * a sender needs, the level rule and the message template. Pure: no I/O, no logging.
 */
#ifndef LB_NOTIFY_URL_H
#define LB_NOTIFY_URL_H

#include "common.h"

#include "err.h"
#include "strbuf.h"
#include "strvec.h"

enum notify_kind {
	NOTIFY_SMTP,
	NOTIFY_NTFY,
	NOTIFY_GOTIFY,
	NOTIFY_SLACK,
	NOTIFY_DISCORD,
	NOTIFY_TELEGRAM,
	NOTIFY_GENERIC,
	NOTIFY_MATRIX,
};

/* SMTP's TLS: STARTTLS when offered (default), required, never; smtps:// is TLS from the start. */
enum notify_tls { NOTIFY_TLS_TRY, NOTIFY_TLS_REQUIRED, NOTIFY_TLS_NONE };

/* One service. Every string is owned; `endpoint`, `user`, `password`, `key` are secrets. */
struct notify_service {
	enum notify_kind kind;
	char *endpoint;	       /* http(s) URL to POST, or smtp(s)://host:port (curl's form) */
	char *user, *password; /* SMTP AUTH, ntfy basic auth; NULL: none */
	char *key;   /* gotify: the application token (X-Gotify-Key); matrix: the access token */
	char *topic; /* ntfy */
	char *from;  /* SMTP */
	struct strvec to; /* SMTP recipients; Telegram chat ids; Matrix room ids */
	enum notify_tls tls;
	char *ca_file; /* SMTP ?cafile=: trust this CA (a private server's) */
	int priority;  /* ntfy 1-5, gotify 0-10; -1: the service's default */
	char *shown;   /* the URL with every secret as *** (for `lifeboat check`, errors) */
};

struct notify_services {
	struct notify_service *v;
	size_t nr, alloc;
};

/* "smtp", "ntfy", ...: the kind's name in messages. */
const char *notify_kind_name(enum notify_kind kind);

/*
 * Parse one URL. Errors are LB_EXIT_CONFIG, start with `var` and name the service, never
 * showing a secret. 0 or -1.
 */
int notify_url_parse(const char *var, const char *url, struct notify_service *ret, struct err *e);

/*
 * Parse a list: one URL per line, or comma separated (a comma starts a new URL only when a
 * scheme follows it, so `to=a@b,c@d` stays in its URL). Appends to `ret`; 0 or -1.
 */
int notify_urls_parse(const char *var, const char *value, struct notify_services *ret,
		      struct err *e);

void notify_service_release(struct notify_service *s);
void notify_services_release(struct notify_services *v);

/* BACKUP_NOTIFY_LEVEL: each level includes the ones before it. */
enum notify_level { NOTIFY_LEVEL_FAILURE, NOTIFY_LEVEL_SUCCESS, NOTIFY_LEVEL_START };
int notify_level_parse(const char *s, enum notify_level *ret);

/*
 * Is a run's `status` ("start", "success", "failure", "interrupted") worth a
 * notification at `level`? `recovered`: a success whose previous run failed, told at
 * every level ("it works again").
 */
bool notify_wanted(enum notify_level level, const char *status, bool recovered);

/* A template's fields: `{name}` is replaced by `value`. */
struct notify_field {
	const char *name;
	const char *value;
};

/* The names a template may use, NULL-terminated (README lists them). */
extern const char *const notify_template_fields[];

/*
 * Check a template: every `{...}` names a field of notify_template_fields ("{{" is a
 * literal "{"). 0, or -1 with the first bad name (at most `len` bytes) in `bad`.
 */
int notify_template_check(const char *tpl, char *bad, size_t len);

/*
 * Render `tpl` with `fields` (`nr` of them) into `out`: `{name}` by its value (a field not
 * given: empty), "{{" as "{", and the two characters "\n" as a newline (environment
 * values are one line).
 */
void notify_render(struct strbuf *out, const char *tpl, const struct notify_field *fields,
		   size_t nr);

#endif
