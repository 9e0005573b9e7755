/* Database connection URIs: a small, strict parser that never prints a password. */
#include "common.h"

#include <ctype.h>

#include "dburi.h"
#include "strbuf.h"
#include "xalloc.h"

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Percent-decode [s, s+n); NULL on a bad or NUL escape. */
static char *pct_decode(const char *s, size_t n)
{
	char *out = xmalloc(n + 1), *o = out;

	for (size_t i = 0; i < n; i++) {
		if (s[i] != '%') {
			*o++ = s[i];
			continue;
		}
		int a = i + 1 < n ? hexval((unsigned char)s[i + 1]) : -1;
		int b = i + 2 < n ? hexval((unsigned char)s[i + 2]) : -1;
		if (a < 0 || b < 0 || (a == 0 && b == 0)) {
			free(out);
			return NULL;
		}
		*o++ = (char)(a * 16 + b);
		i += 2;
	}
	*o = '\0';
	return out;
}

static void pct_encode(struct strbuf *sb, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (isalnum(c) || strchr("-._~", c))
			strbuf_addch(sb, (char)c);
		else
			strbuf_addf(sb, "%%%02X", c);
	}
}

/* Where the user-info's '@' is: the last one not inside the query. */
static const char *find_at(const char *auth_start)
{
	const char *at = strrchr(auth_start, '@');
	const char *q = strchr(auth_start, '?');

	if (!at || !q || q > at)
		return at;
	/* The last '@' lies in the query: look before the query only. */
	at = NULL;
	for (const char *p = auth_start; p < q; p++)
		if (*p == '@')
			at = p;
	return at;
}

static bool is_password_param(const char *p, size_t n)
{
	return n >= 9 && !strncasecmp(p, "password=", 9);
}

char *dburi_redact(const char *uri)
{
	struct strbuf sb = STRBUF_INIT;
	const char *sep = strstr(uri, "://");

	if (!sep)
		return xstrdup("(not a URI)");
	/*
	 * The last '@' anywhere: more than the user-info when a query holds an '@', but
	 * never less, even when the password holds an unencoded '?', '/' or '@'.
	 */
	const char *auth = sep + 3;
	const char *at = strrchr(auth, '@');
	const char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
	const char *rest = auth;

	strbuf_add(&sb, uri, (size_t)(auth - uri));
	if (colon) {
		strbuf_add(&sb, auth, (size_t)(colon - auth));
		strbuf_addstr(&sb, ":***");
		rest = at;
	}
	const char *q = strchr(rest, '?');
	if (!q) {
		strbuf_addstr(&sb, rest);
		return strbuf_detach(&sb, NULL);
	}
	strbuf_add(&sb, rest, (size_t)(q - rest) + 1);
	for (const char *p = q + 1; *p;) {
		size_t n = strcspn(p, "&");
		if (is_password_param(p, n))
			strbuf_addstr(&sb, "password=***");
		else
			strbuf_add(&sb, p, n);
		p += n;
		if (*p == '&')
			strbuf_addch(&sb, *p++);
	}
	return strbuf_detach(&sb, NULL);
}

/* Release what was parsed so far and report; the message shows the URI redacted. */
static int fail(struct dburi *u, struct err *e, const char *var, const char *uri, const char *why)
{
	char *r = dburi_redact(uri);

	dburi_release(u);
	for (char *p = r; *p; p++) /* one line, whatever the input held */
		if ((unsigned char)*p < ' ' || *p == 0x7f)
			*p = '?';
	err_set(e, LB_EXIT_CONFIG, "%s: '%s' %s", var, r, why);
	free(r);
	return -1;
}

int dburi_parse(const char *uri, const char *var, struct dburi *u, struct err *e)
{
	const char *sep = strstr(uri, "://");

	*u = (struct dburi){ 0 };
	if (!sep || sep == uri)
		return fail(u, e, var, uri,
			    "is not a URI (expected scheme://user:password@host/db)");
	for (const char *p = uri; p < sep; p++)
		if (!isalnum((unsigned char)*p) && *p != '+' && *p != '-' && *p != '.')
			return fail(u, e, var, uri, "has an invalid scheme");
	for (const char *p = uri; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == '#')
			return fail(u, e, var, uri,
				    "contains a space, control character or '#' (percent-encode "
				    "them: %20, %23)");
	u->scheme = xstrndup(uri, (size_t)(sep - uri));

	const char *auth = sep + 3;
	const char *at = find_at(auth);
	if (at) {
		const char *colon = memchr(auth, ':', (size_t)(at - auth));
		const char *uend = colon ? colon : at;
		if (uend > auth && !(u->user = pct_decode(auth, (size_t)(uend - auth))))
			goto bad_escape;
		if (colon && !(u->password = pct_decode(colon + 1, (size_t)(at - colon - 1))))
			goto bad_escape;
		auth = at + 1;
	}
	size_t hn = strcspn(auth, "/?");
	u->hosts = xstrndup(auth, hn);
	const char *p = auth + hn;

	/* The first host: "name", "name:port", "[v6]", "[v6]:port". */
	size_t fn = strcspn(u->hosts, ",");
	const char *h = u->hosts, *hend = h + fn, *port = NULL;
	if (*h == '[') {
		const char *rb = memchr(h, ']', fn);
		if (!rb)
			goto bad_host;
		u->host = xstrndup(h + 1, (size_t)(rb - h - 1));
		if (rb + 1 < hend) {
			if (rb[1] != ':')
				goto bad_host;
			port = rb + 2;
		}
	} else {
		const char *colon = memchr(h, ':', fn);
		const char *end = colon ? colon : hend;
		if (!(u->host = pct_decode(h, (size_t)(end - h))))
			goto bad_escape;
		if (colon)
			port = colon + 1;
	}
	if (port) {
		size_t pn = (size_t)(hend - port);
		unsigned long pv = pn <= 5 ? strtoul(port, NULL, 10) : 0;
		if (!pn || pn > 5 || strspn(port, "0123456789") < pn || pv < 1 || pv > 65535)
			return fail(u, e, var, uri,
				    "has an invalid port (special characters in the password must "
				    "be percent-encoded, e.g. %40 for @, %3A for :, %2F for /)");
		u->port = xstrndup(port, pn);
	}
	if (strchr(u->host, '/') || strchr(u->host, '@'))
		goto bad_host;

	if (*p == '/') {
		p++;
		size_t dn = strcspn(p, "?");
		if (dn && !(u->database = pct_decode(p, dn)))
			goto bad_escape;
		if (u->database && strchr(u->database, '/'))
			return fail(u, e, var, uri, "has a '/' in its database name");
		p += dn;
	}
	if (*p == '?') {
		struct strbuf q = STRBUF_INIT;
		for (p++; *p;) {
			size_t n = strcspn(p, "&");
			if (is_password_param(p, n)) {
				char *pw = pct_decode(p + 9, n - 9);
				if (!pw) {
					strbuf_release(&q);
					goto bad_escape;
				}
				if (u->password)
					free(u->password);
				u->password = pw;
			} else if (n) {
				if (q.len)
					strbuf_addch(&q, '&');
				strbuf_add(&q, p, n);
			}
			p += n;
			if (*p == '&')
				p++;
		}
		if (q.len)
			u->query = strbuf_detach(&q, NULL);
		strbuf_release(&q);
	}
	return 0;

bad_escape:
	return fail(u, e, var, uri, "has a malformed percent-encoding (expected %XX, not %00)");
bad_host:
	return fail(u, e, var, uri,
		    "has an invalid host (special characters in the password must be "
		    "percent-encoded, e.g. %40 for @, %2F for /)");
}

char *dburi_build(const struct dburi *u, bool with_password, const char *database)
{
	struct strbuf sb = STRBUF_INIT;
	const char *db = database ? database : u->database;

	strbuf_addf(&sb, "%s://", u->scheme);
	if (u->user || (with_password && u->password)) {
		if (u->user)
			pct_encode(&sb, u->user);
		if (with_password && u->password) {
			strbuf_addch(&sb, ':');
			pct_encode(&sb, u->password);
		}
		strbuf_addch(&sb, '@');
	}
	strbuf_addstr(&sb, u->hosts);
	if (db && *db) {
		strbuf_addch(&sb, '/');
		pct_encode(&sb, db);
	} else if (u->query) {
		strbuf_addch(&sb, '/');
	}
	if (u->query)
		strbuf_addf(&sb, "?%s", u->query);
	return strbuf_detach(&sb, NULL);
}

char *dburi_default_name(const struct dburi *u)
{
	const char *src = u->database ? u->database : (u->host && *u->host ? u->host : "localhost");
	char *name = xstrdup(src);

	for (char *p = name; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr("._-", *p))
			*p = '_';
	if (!strcmp(name, ".") || !strcmp(name, "..")) {
		free(name);
		name = xstrdup("_");
	}
	return name;
}

static void free_secret(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

void dburi_release(struct dburi *u)
{
	free(u->scheme);
	free(u->user);
	free_secret(u->password);
	free(u->hosts);
	free(u->host);
	free(u->port);
	free(u->database);
	free(u->query);
	*u = (struct dburi){ 0 };
}
