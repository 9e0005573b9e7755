/* Notification URLs into services, the level rule and templates: pure parsing, no I/O. */
#include "common.h"

#include <ctype.h>

#include "notify-url.h"
#include "parse.h"
#include "strbuf.h"
#include "strvec.h"
#include "xalloc.h"

static const char *const kind_names[] = {
	[NOTIFY_SMTP] = "smtp",	      [NOTIFY_NTFY] = "ntfy",	    [NOTIFY_GOTIFY] = "gotify",
	[NOTIFY_SLACK] = "slack",     [NOTIFY_DISCORD] = "discord", [NOTIFY_TELEGRAM] = "telegram",
	[NOTIFY_GENERIC] = "generic", [NOTIFY_MATRIX] = "matrix",
};

/* Every scheme a URL may start with, and its kind. */
static const struct {
	const char *scheme;
	enum notify_kind kind;
} schemes[] = {
	{ "smtp", NOTIFY_SMTP },
	{ "smtps", NOTIFY_SMTP },
	{ "ntfy", NOTIFY_NTFY },
	{ "gotify", NOTIFY_GOTIFY },
	{ "slack", NOTIFY_SLACK },
	{ "discord", NOTIFY_DISCORD },
	{ "telegram", NOTIFY_TELEGRAM },
	{ "generic+https", NOTIFY_GENERIC },
	{ "generic+http", NOTIFY_GENERIC },
	{ "matrix", NOTIFY_MATRIX },
};

const char *notify_kind_name(enum notify_kind kind)
{
	return (size_t)kind < ARRAY_SIZE(kind_names) ? kind_names[kind] : "?";
}

/* The URL cut into its parts (pointers into a copy; lengths, no NUL in between). */
struct parts {
	const char *scheme;
	size_t scheme_len;
	const char *userinfo; /* NULL: none */
	size_t userinfo_len;
	const char *host;
	size_t host_len;
	const char *port; /* NULL: none */
	size_t port_len;
	const char *path; /* "" or starting with '/' */
	size_t path_len;
	const char *query; /* NULL: none */
};

/* %XX decoding of `n` bytes; NULL when an escape is bad or a control byte results. */
static char *decode(const char *s, size_t n)
{
	char *out = xmalloc(n + 1);
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '%') {
			if (i + 2 >= n) {
				free(out);
				return NULL;
			}
			if (!isxdigit((unsigned char)s[i + 1]) ||
			    !isxdigit((unsigned char)s[i + 2])) {
				free(out);
				return NULL;
			}
			char hex[3] = { s[i + 1], s[i + 2], 0 };
			c = (unsigned char)strtoul(hex, NULL, 16);
			i += 2;
		}
		if (c < 0x20 || c == 0x7f) {
			free(out);
			return NULL;
		}
		out[o++] = (char)c;
	}
	out[o] = '\0';
	return out;
}

static bool host_valid(const char *h, size_t n)
{
	if (!n)
		return false;
	if (h[0] == '[')
		return n > 2 && h[n - 1] == ']' &&
		       strspn(h + 1, "0123456789abcdefABCDEF:.") == n - 2;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)h[i]) && !strchr(".-_", h[i]))
			return false;
	return true;
}

/* The redacted form: scheme, "***@" for any user part, host, port, and *** for any path. */
static void shown_base(struct strbuf *sb, const struct parts *p, bool keep_path)
{
	strbuf_add(sb, p->scheme, p->scheme_len);
	strbuf_addstr(sb, "://");
	if (p->userinfo)
		strbuf_addstr(sb, memchr(p->userinfo, ':', p->userinfo_len) ? "***:***@" : "***@");
	strbuf_add(sb, p->host, p->host_len);
	if (p->port) {
		strbuf_addch(sb, ':');
		strbuf_add(sb, p->port, p->port_len);
	}
	if (keep_path)
		strbuf_add(sb, p->path, p->path_len);
	else if (p->path_len > 1)
		strbuf_addstr(sb, "/***");
}

static int fail(struct err *e, const char *var, const struct notify_service *s, const char *fmt,
		...) LB_PRINTF(4, 5);

static int fail(struct err *e, const char *var, const struct notify_service *s, const char *fmt,
		...)
{
	struct strbuf why = STRBUF_INIT;
	va_list ap;

	va_start(ap, fmt);
	strbuf_vaddf(&why, fmt, ap);
	va_end(ap);
	err_set(e, LB_EXIT_CONFIG, "%s: %s URL '%s' %s", var, notify_kind_name(s->kind),
		s->shown ? s->shown : "(not shown)", why.buf);
	strbuf_release(&why);
	return -1;
}

/* Split scheme://[userinfo@]host[:port][/path][?query]. */
static int split(const char *url, struct parts *p)
{
	const char *sep = strstr(url, "://");

	memset(p, 0, sizeof(*p));
	if (!sep)
		return -1;
	p->scheme = url;
	p->scheme_len = (size_t)(sep - url);
	const char *a = sep + 3;
	size_t alen = strcspn(a, "/?");
	const char *at = NULL;
	for (size_t i = 0; i < alen; i++)
		if (a[i] == '@')
			at = a + i;
	if (at) {
		p->userinfo = a;
		p->userinfo_len = (size_t)(at - a);
		alen -= p->userinfo_len + 1;
		a = at + 1;
	}
	p->host = a;
	p->host_len = alen;
	/* host:port, or [v6]:port */
	const char *close = a[0] == '[' ? memchr(a, ']', alen) : NULL;
	const char *colon = NULL;
	for (size_t i = close ? (size_t)(close - a) : 0; i < alen; i++)
		if (a[i] == ':')
			colon = a + i;
	if (colon) {
		p->host_len = (size_t)(colon - a);
		p->port = colon + 1;
		p->port_len = alen - p->host_len - 1;
	}
	const char *rest = a + alen;
	p->path = rest;
	p->path_len = strcspn(rest, "?");
	if (rest[p->path_len] == '?')
		p->query = rest + p->path_len + 1;
	return 0;
}

/* One query parameter, the next: key and decoded value. 1, 0 at the end, -1 when bad. */
static int next_param(const char **q, char **ret_key, char **ret_val)
{
	while (*q && **q == '&')
		(*q)++;
	if (!*q || !**q)
		return 0;
	size_t n = strcspn(*q, "&");
	const char *eq = memchr(*q, '=', n);
	size_t klen = eq ? (size_t)(eq - *q) : n;
	*ret_key = decode(*q, klen);
	*ret_val = eq ? decode(eq + 1, n - klen - 1) : xstrdup("");
	*q += n;
	if (!*ret_key || !*ret_val) {
		free(*ret_key);
		free(*ret_val);
		return -1;
	}
	return 1;
}

/* A list "a,b,c" of non-empty items appended to `v`; -1 when an item is empty. */
static int add_list(struct strvec *v, const char *s)
{
	for (const char *p = s;;) {
		size_t n = strcspn(p, ",");
		const char *t = p;
		size_t k = n;
		while (k && *t == ' ')
			t++, k--;
		while (k && t[k - 1] == ' ')
			k--;
		if (!k)
			return -1;
		char *one = xstrndup(t, k);
		strvec_push(v, one);
		free(one);
		if (!p[n])
			return 0;
		p += n + 1;
	}
}

/* A mail address we pass on: local@domain, printable, no spaces or angle brackets. */
static bool address_valid(const char *a)
{
	const char *at = strrchr(a, '@');

	if (!at || at == a || !at[1] || strlen(a) > 254)
		return false;
	for (const char *c = a; *c; c++)
		if ((unsigned char)*c <= ' ' || strchr("<>,;\"()[]\\", *c))
			return false;
	return true;
}

static bool only(const char *s, size_t n, const char *set)
{
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr(set, s[i]))
			return false;
	return n > 0;
}

static char *hostport(const struct parts *p)
{
	if (p->port)
		return xasprintf("%.*s:%.*s", (int)p->host_len, p->host, (int)p->port_len, p->port);
	return xstrndup(p->host, p->host_len);
}

/* The user and password of userinfo, decoded (a password may be empty). */
static int userinfo(const struct parts *p, struct notify_service *s)
{
	const char *colon = memchr(p->userinfo, ':', p->userinfo_len);
	size_t ulen = colon ? (size_t)(colon - p->userinfo) : p->userinfo_len;

	s->user = decode(p->userinfo, ulen);
	s->password = colon ? decode(colon + 1, p->userinfo_len - ulen - 1) : xstrdup("");
	return s->user && s->password && s->user[0] ? 0 : -1;
}

/* What a service's parameter callback made of one KEY=VALUE. */
enum param_verdict {
	PARAM_TAKEN,   /* understood and valid */
	PARAM_BAD,     /* a parameter of the service with a bad value */
	PARAM_UNKNOWN, /* not a parameter of the service */
};

/*
 * One parameter for the service `s`; *val may be taken (TAKE_PTR). Returns a
 * verdict, or -1 with `e` set when the callback words the error itself.
 */
typedef int param_fn(struct notify_service *s, void *ctx, const char *key, char **val,
		     struct err *e);

/* Every parameter of the URL's query through fn; `known` lists them for the error. */
static int each_param(const char *var, const struct parts *p, struct notify_service *s,
		      const char *known, param_fn *fn, void *ctx, struct err *e)
{
	const char *q = p->query;
	char *k, *val;
	int r;

	while ((r = next_param(&q, &k, &val)) > 0) {
		int v = fn(s, ctx, k, &val, e);
		if (v == PARAM_UNKNOWN)
			fail(e, var, s, "has an unknown parameter '%.40s' (%s)", k, known);
		else if (v == PARAM_BAD)
			fail(e, var, s, "has a bad '%s' value", k);
		free(k);
		free(val);
		if (v != PARAM_TAKEN)
			return -1;
	}
	return r < 0 ? fail(e, var, s, "has a bad %%XX escape in its parameters") : 0;
}

static int smtp_param(struct notify_service *s, void *ctx, const char *k, char **val, struct err *e)
{
	(void)ctx, (void)e;
	if (!strcmp(k, "from")) {
		free(s->from);
		s->from = TAKE_PTR(*val);
		return address_valid(s->from) ? PARAM_TAKEN : PARAM_BAD;
	}
	if (!strcmp(k, "to"))
		return add_list(&s->to, *val) < 0 ? PARAM_BAD : PARAM_TAKEN;
	if (!strcmp(k, "starttls")) {
		bool b = false;
		int bad = parse_bool(*val, &b) < 0;
		s->tls = b ? NOTIFY_TLS_REQUIRED : NOTIFY_TLS_NONE;
		return bad ? PARAM_BAD : PARAM_TAKEN;
	}
	if (!strcmp(k, "cafile")) {
		int bad = (*val)[0] != '/' || path_has_dotdot(*val);
		free(s->ca_file);
		s->ca_file = TAKE_PTR(*val);
		return bad ? PARAM_BAD : PARAM_TAKEN;
	}
	return PARAM_UNKNOWN;
}

static int parse_smtp(const char *var, const struct parts *p, bool tls, struct notify_service *s,
		      struct err *e)
{
	if (p->userinfo && userinfo(p, s) < 0)
		return fail(e, var, s,
			    "has a bad user name or password (user:password, %%XX escapes)");
	if (p->path_len > 1)
		return fail(
			e, var, s,
			"has a path: expected smtp://[user:password@]host[:port]/?from=...&to=...");
	s->tls = NOTIFY_TLS_TRY;
	if (each_param(var, p, s, "from, to, starttls, cafile", smtp_param, NULL, e) < 0)
		return -1;
	if (!s->from)
		return fail(e, var, s, "has no sender: add ?from=ADDRESS");
	if (!s->to.nr)
		return fail(e, var, s, "has no recipient: add &to=ADDRESS[,ADDRESS...]");
	for (size_t i = 0; i < s->to.nr; i++)
		if (!address_valid(s->to.v[i]))
			return fail(e, var, s, "has a bad recipient '%.80s'", s->to.v[i]);
	auto_free char *hp = hostport(p);
	s->endpoint = p->port ? xasprintf("%s://%s", tls ? "smtps" : "smtp", hp)
			      : xasprintf("%s://%s:%d", tls ? "smtps" : "smtp", hp, tls ? 465 : 25);
	if (tls)
		s->tls = NOTIFY_TLS_REQUIRED;
	/* Sender and recipients are shown: they tell the services apart and are no secret. */
	struct strbuf sb = STRBUF_INIT;
	strbuf_addf(&sb, "%s?from=%s&to=", s->shown, s->from);
	for (size_t i = 0; i < s->to.nr; i++)
		strbuf_addf(&sb, "%s%s", i ? "," : "", s->to.v[i]);
	free(s->shown);
	s->shown = strbuf_detach(&sb, NULL);
	return 0;
}

struct http_param_ctx {
	int max_prio;
	const char *scheme;
};

static int http_param(struct notify_service *s, void *ctx, const char *k, char **val, struct err *e)
{
	struct http_param_ctx *c = ctx;
	uint64_t n;

	(void)e;
	if (!strcmp(k, "scheme")) {
		c->scheme = !strcmp(*val, "http") ? "http" : "https";
		return strcmp(*val, "http") && strcmp(*val, "https") ? PARAM_BAD : PARAM_TAKEN;
	}
	if (!strcmp(k, "priority")) {
		int bad = parse_decimal(*val, &n, NULL) < 0 || n > (uint64_t)c->max_prio ||
			  (c->max_prio == 5 && n < 1);
		s->priority = bad ? -1 : (int)n;
		return bad ? PARAM_BAD : PARAM_TAKEN;
	}
	return PARAM_UNKNOWN;
}

/* ntfy and gotify: ?scheme=http|https, ?priority=N. */
static int http_params(const char *var, const struct parts *p, int max_prio,
		       struct notify_service *s, const char **ret_scheme, struct err *e)
{
	struct http_param_ctx c = { .max_prio = max_prio, .scheme = "https" };
	int r = each_param(var, p, s, "scheme, priority", http_param, &c, e);

	*ret_scheme = c.scheme;
	return r;
}

static int parse_ntfy(const char *var, const struct parts *p, struct notify_service *s,
		      struct err *e)
{
	const char *scheme;
	const char *slash = p->path_len ? p->path + p->path_len - 1 : NULL;

	while (slash && slash > p->path && *slash != '/')
		slash--;
	size_t tlen = slash ? (size_t)(p->path + p->path_len - slash - 1) : 0;
	if (!tlen || tlen > 64 || !only(slash + 1, tlen, "-_"))
		return fail(e, var, s,
			    "needs a topic: ntfy://[user:password@]host[:port]/TOPIC (letters, "
			    "digits, '-', '_')");
	if (p->userinfo && userinfo(p, s) < 0)
		return fail(e, var, s, "has a bad user name or password");
	if (http_params(var, p, 5, s, &scheme, e) < 0)
		return -1;
	auto_free char *hp = hostport(p);
	s->topic = xstrndup(slash + 1, tlen);
	s->endpoint = xasprintf("%s://%s%.*s/", scheme, hp, (int)(slash - p->path), p->path);
	return 0;
}

static int parse_gotify(const char *var, const struct parts *p, struct notify_service *s,
			struct err *e)
{
	const char *scheme;
	const char *slash = p->path_len ? p->path + p->path_len - 1 : NULL;

	while (slash && slash > p->path && *slash != '/')
		slash--;
	size_t tlen = slash ? (size_t)(p->path + p->path_len - slash - 1) : 0;
	if (!tlen || !only(slash + 1, tlen, "-_."))
		return fail(e, var, s,
			    "needs an application token: gotify://host[:port][/path]/TOKEN");
	if (p->userinfo)
		return fail(e, var, s, "has a user part: the token goes in the path");
	if (http_params(var, p, 10, s, &scheme, e) < 0)
		return -1;
	auto_free char *hp = hostport(p);
	s->key = xstrndup(slash + 1, tlen);
	s->endpoint = xasprintf("%s://%s%.*s/message", scheme, hp, (int)(slash - p->path), p->path);
	return 0;
}

static int parse_slack(const char *var, const struct parts *p, struct notify_service *s,
		       struct err *e)
{
	const char *t = p->path_len ? p->path + 1 : p->path;
	size_t n1 = 0, n2 = 0, n3 = 0;

	if (p->path_len > 1) {
		n1 = strcspn(t, "/?");
		n2 = t[n1] == '/' ? strcspn(t + n1 + 1, "/?") : 0;
		n3 = n2 && t[n1 + 1 + n2] == '/' ? strcspn(t + n1 + n2 + 2, "/?") : 0;
	}
	free(s->shown);
	s->shown = xstrdup("slack://hook/***");
	if (p->userinfo || p->port || p->host_len != 4 || strncmp(p->host, "hook", 4) || p->query ||
	    !n1 || !n2 || !n3 || n1 + n2 + n3 + 3 != p->path_len || !only(t, n1, "") ||
	    !only(t + n1 + 1, n2, "") || !only(t + n1 + n2 + 2, n3, ""))
		return fail(e, var, s,
			    "is not of the form slack://hook/T.../B.../TOKEN (the parts of the "
			    "incoming webhook's URL after /services/)");
	s->endpoint = xasprintf("https://hooks.slack.com/services/%.*s", (int)(p->path_len - 1), t);
	return 0;
}

static int parse_discord(const char *var, const struct parts *p, struct notify_service *s,
			 struct err *e)
{
	if (!p->userinfo || !only(p->userinfo, p->userinfo_len, "-_") || p->port ||
	    !only(p->host, p->host_len, "") || strspn(p->host, "0123456789") < p->host_len ||
	    p->path_len > 1 || p->query)
		return fail(e, var, s,
			    "is not of the form discord://TOKEN@WEBHOOK_ID (from the webhook URL "
			    ".../api/webhooks/WEBHOOK_ID/TOKEN)");
	s->endpoint = xasprintf("https://discord.com/api/webhooks/%.*s/%.*s", (int)p->host_len,
				p->host, (int)p->userinfo_len, p->userinfo);
	return 0;
}

struct telegram_param_ctx {
	const char *var;
};

static int telegram_param(struct notify_service *s, void *ctx, const char *k, char **val,
			  struct err *e)
{
	const struct telegram_param_ctx *c = ctx;

	if (strcmp(k, "chats"))
		return PARAM_UNKNOWN;
	if (add_list(&s->to, *val) < 0)
		return fail(e, c->var, s, "has an empty chat in 'chats'");
	return PARAM_TAKEN;
}

static int parse_telegram(const char *var, const struct parts *p, struct notify_service *s,
			  struct err *e)
{
	const char *colon = p->userinfo ? memchr(p->userinfo, ':', p->userinfo_len) : NULL;

	if (!colon || colon == p->userinfo ||
	    strspn(p->userinfo, "0123456789") != (size_t)(colon - p->userinfo) ||
	    !only(colon + 1, p->userinfo_len - (size_t)(colon - p->userinfo) - 1, "-_") ||
	    p->host_len != 8 || strncmp(p->host, "telegram", 8) || p->port || p->path_len > 1)
		return fail(e, var, s,
			    "is not of the form telegram://BOT_TOKEN@telegram?chats=CHAT[,CHAT...] "
			    "(the token as @BotFather gives it, digits:letters)");
	struct telegram_param_ctx tctx = { .var = var };
	if (each_param(var, p, s, "chats", telegram_param, &tctx, e) < 0)
		return -1;
	if (!s->to.nr)
		return fail(e, var, s, "has no chat: add ?chats=@CHANNEL or a chat id");
	for (size_t i = 0; i < s->to.nr; i++) {
		const char *c = s->to.v[i];
		bool ok = c[0] == '@' ? only(c + 1, strlen(c + 1), "_")
				      : strspn(c + (c[0] == '-'), "0123456789") ==
							strlen(c + (c[0] == '-')) &&
						c[c[0] == '-'];
		if (!ok)
			return fail(e, var, s, "has a bad chat '%.80s' (@channel or a number)", c);
	}
	struct strbuf sb = STRBUF_INIT;
	strbuf_addstr(&sb, "telegram://***@telegram?chats=");
	for (size_t i = 0; i < s->to.nr; i++)
		strbuf_addf(&sb, "%s%s", i ? "," : "", s->to.v[i]);
	free(s->shown);
	s->shown = strbuf_detach(&sb, NULL);
	s->endpoint = xasprintf("https://api.telegram.org/bot%.*s/sendMessage",
				(int)p->userinfo_len, p->userinfo);
	return 0;
}

/* A room id as the client-server API names rooms: !opaque:server (an alias needs a lookup). */
static bool room_id_valid(const char *r)
{
	const char *colon = strchr(r, ':');

	if (r[0] != '!' || !colon || colon == r + 1 || !colon[1] || strlen(r) > 255)
		return false;
	for (const char *c = r + 1; *c; c++)
		if ((unsigned char)*c <= ' ' || (unsigned char)*c >= 0x7f || strchr("/?#%", *c))
			return false;
	return true;
}

/* matrix://ACCESS_TOKEN@HOMESERVER[:PORT][/PATH]/?rooms=!ROOM:SERVER[,...][&scheme=http] */
static int matrix_param(struct notify_service *s, void *ctx, const char *k, char **val,
			struct err *e)
{
	const char **scheme = ctx;

	(void)e;
	if (!strcmp(k, "rooms"))
		return add_list(&s->to, *val) < 0 ? PARAM_BAD : PARAM_TAKEN;
	if (!strcmp(k, "scheme")) {
		*scheme = !strcmp(*val, "http") ? "http" : "https";
		return strcmp(*val, "http") && strcmp(*val, "https") ? PARAM_BAD : PARAM_TAKEN;
	}
	return PARAM_UNKNOWN;
}

static int parse_matrix(const char *var, const struct parts *p, struct notify_service *s,
			struct err *e)
{
	const char *scheme = "https";

	if (p->userinfo)
		s->key = decode(p->userinfo, p->userinfo_len);
	if (!s->key || !s->key[0] || strchr(s->key, ':') ||
	    !only(s->key, strlen(s->key), "-_.~+/="))
		return fail(
			e, var, s,
			"is not of the form matrix://ACCESS_TOKEN@HOMESERVER[:PORT]/?rooms=!ROOM:"
			"SERVER (the token of the account that posts)");
	if (each_param(var, p, s, "rooms, scheme", matrix_param, &scheme, e) < 0)
		return -1;
	if (!s->to.nr)
		return fail(e, var, s, "has no room: add ?rooms=!ROOM_ID:SERVER");
	for (size_t i = 0; i < s->to.nr; i++)
		if (!room_id_valid(s->to.v[i]))
			return fail(e, var, s,
				    "has a bad room '%.80s' (a room id: !opaque:server, as the "
				    "room's settings show it; not a #alias)",
				    s->to.v[i]);
	auto_free char *hp = hostport(p);
	size_t plen = p->path_len;
	while (plen && p->path[plen - 1] == '/')
		plen--;
	s->endpoint = xasprintf("%s://%s%.*s", scheme, hp, (int)plen, p->path);
	free(s->shown);
	struct strbuf sb = STRBUF_INIT;
	strbuf_addf(&sb, "matrix://***@%s%.*s?rooms=", hp, (int)plen, p->path);
	for (size_t i = 0; i < s->to.nr; i++)
		strbuf_addf(&sb, "%s%s", i ? "," : "", s->to.v[i]);
	s->shown = strbuf_detach(&sb, NULL);
	return 0;
}

static int parse_generic(const char *var, const char *url, const struct parts *p,
			 struct notify_service *s, struct err *e)
{
	bool https = p->scheme_len == strlen("generic+https");

	s->endpoint = xasprintf("%s%s", https ? "https" : "http", url + p->scheme_len);
	int r = parse_url_check(s->endpoint);
	if (r < 0)
		return fail(e, var, s, "%s",
			    r == -ERANGE ? "has an invalid port: expected 1 to 65535"
					 : "has no host");
	return 0;
}

int notify_url_parse(const char *var, const char *url, struct notify_service *ret, struct err *e)
{
	struct notify_service s = { .priority = -1, .to = STRVEC_INIT };
	struct parts p;
	struct strbuf sb = STRBUF_INIT;
	bool known = false, tls = false;
	int r = -1;

	memset(ret, 0, sizeof(*ret));
	if (split(url, &p) == 0)
		for (size_t i = 0; i < ARRAY_SIZE(schemes); i++)
			if (strlen(schemes[i].scheme) == p.scheme_len &&
			    !strncasecmp(url, schemes[i].scheme, p.scheme_len)) {
				s.kind = schemes[i].kind;
				tls = !strcasecmp(schemes[i].scheme, "smtps");
				known = true;
			}
	if (!known)
		return err_set(
			e, LB_EXIT_CONFIG,
			"%s: an entry is not a notification URL (expected smtp://, smtps://, "
			"ntfy://, gotify://, slack://, discord://, telegram://, matrix://, "
			"generic+https:// or generic+http://; value not shown: it may hold a "
			"secret)",
			var);
	for (const char *c = url; *c; c++)
		if ((unsigned char)*c <= ' ' || *c == 0x7f)
			return err_set(
				e, LB_EXIT_CONFIG,
				"%s: a %s URL contains spaces or control characters (value not "
				"shown)",
				var, notify_kind_name(s.kind));
	if (!host_valid(p.host, p.host_len) || (p.port && parse_port(p.port, p.port_len) < 0)) {
		r = err_set(e, LB_EXIT_CONFIG, "%s: a %s URL has %s (value not shown)", var,
			    notify_kind_name(s.kind),
			    !host_valid(p.host, p.host_len)
				    ? "no valid host"
				    : "an invalid port: expected 1 to 65535");
		goto out;
	}
	shown_base(&sb, &p, false);
	s.shown = strbuf_detach(&sb, NULL);
	switch (s.kind) {
	case NOTIFY_SMTP:
		r = parse_smtp(var, &p, tls, &s, e);
		break;
	case NOTIFY_NTFY:
		r = parse_ntfy(var, &p, &s, e);
		break;
	case NOTIFY_GOTIFY:
		r = parse_gotify(var, &p, &s, e);
		break;
	case NOTIFY_SLACK:
		r = parse_slack(var, &p, &s, e);
		break;
	case NOTIFY_DISCORD:
		r = parse_discord(var, &p, &s, e);
		break;
	case NOTIFY_TELEGRAM:
		r = parse_telegram(var, &p, &s, e);
		break;
	case NOTIFY_GENERIC:
		r = parse_generic(var, url, &p, &s, e);
		break;
	case NOTIFY_MATRIX:
		r = parse_matrix(var, &p, &s, e);
		break;
	}
out:
	if (r < 0) {
		notify_service_release(&s);
		return -1;
	}
	*ret = s;
	return 0;
}

/* Does a new URL start at `p` (after a comma)? */
static bool url_starts(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	for (size_t i = 0; i < ARRAY_SIZE(schemes); i++) {
		size_t n = strlen(schemes[i].scheme);
		if (!strncasecmp(p, schemes[i].scheme, n) && !strncmp(p + n, "://", 3))
			return true;
	}
	return false;
}

int notify_urls_parse(const char *var, const char *value, struct notify_services *ret,
		      struct err *e)
{
	for (const char *p = value; *p;) {
		const char *end = p;
		for (;;) {
			end += strcspn(end, ",\n");
			if (*end != ',' || url_starts(end + 1))
				break;
			end++;
		}
		const char *s = p, *t = end;
		p = *end ? end + 1 : end;
		while (s < t && strchr(" \t\r", *s))
			s++;
		while (t > s && strchr(" \t\r", t[-1]))
			t--;
		if (s == t)
			continue;
		char *one = xstrndup(s, (size_t)(t - s));
		struct notify_service svc;
		int r = notify_url_parse(var, one, &svc, e);
		explicit_bzero(one, strlen(one));
		free(one);
		if (r < 0)
			return -1;
		ALLOC_GROW(ret->v, ret->nr + 1, ret->alloc);
		ret->v[ret->nr++] = svc;
	}
	return 0;
}

static void free_secret(char *s)
{
	if (s)
		explicit_bzero(s, strlen(s));
	free(s);
}

void notify_service_release(struct notify_service *s)
{
	free_secret(s->endpoint);
	free_secret(s->user);
	free_secret(s->password);
	free_secret(s->key);
	free_secret(s->topic);
	free(s->from);
	strvec_release(&s->to);
	free(s->ca_file);
	free(s->shown);
	memset(s, 0, sizeof(*s));
}

void notify_services_release(struct notify_services *v)
{
	for (size_t i = 0; i < v->nr; i++)
		notify_service_release(&v->v[i]);
	free(v->v);
	memset(v, 0, sizeof(*v));
}

int notify_level_parse(const char *s, enum notify_level *ret)
{
	static const char *const words[] = { "failure", "success", "start" };

	for (size_t i = 0; i < ARRAY_SIZE(words); i++)
		if (!strcasecmp(s, words[i])) {
			*ret = (enum notify_level)i;
			return 0;
		}
	return -EINVAL;
}

bool notify_wanted(enum notify_level level, const char *status, bool recovered)
{
	if (!strcmp(status, "failure") || !strcmp(status, "interrupted"))
		return true;
	if (!strcmp(status, "success"))
		return recovered || level >= NOTIFY_LEVEL_SUCCESS;
	if (!strcmp(status, "start"))
		return level >= NOTIFY_LEVEL_START;
	return false;
}

const char *const notify_template_fields[] = {
	"title", "name", "status", "event", "trigger", "host", "started", "duration",
	"file",	 "size", "stores", "error", "log",     "job",  NULL,
};

static bool field_known(const char *name, size_t n)
{
	for (const char *const *f = notify_template_fields; *f; f++)
		if (strlen(*f) == n && !strncmp(*f, name, n))
			return true;
	return false;
}

int notify_template_check(const char *tpl, char *bad, size_t len)
{
	for (const char *p = tpl; *p; p++) {
		if (*p != '{')
			continue;
		if (p[1] == '{') {
			p++;
			continue;
		}
		const char *close = strchr(p + 1, '}');
		size_t n = close ? (size_t)(close - p - 1) : strlen(p + 1);
		if (!close || !field_known(p + 1, n)) {
			snprintf(bad, len, "%.*s", (int)(n > 40 ? 40 : n), p + 1);
			return -1;
		}
		p = close;
	}
	return 0;
}

void notify_render(struct strbuf *out, const char *tpl, const struct notify_field *fields,
		   size_t nr)
{
	for (const char *p = tpl; *p; p++) {
		if (p[0] == '\\' && p[1] == 'n') {
			strbuf_addch(out, '\n');
			p++;
			continue;
		}
		if (*p != '{') {
			strbuf_addch(out, *p);
			continue;
		}
		if (p[1] == '{') {
			strbuf_addch(out, '{');
			p++;
			continue;
		}
		const char *close = strchr(p + 1, '}');
		if (!close) {
			strbuf_addstr(out, p);
			return;
		}
		size_t n = (size_t)(close - p - 1);
		for (size_t i = 0; i < nr; i++)
			if (strlen(fields[i].name) == n && !strncmp(fields[i].name, p + 1, n)) {
				strbuf_addstr(out, fields[i].value ? fields[i].value : "");
				break;
			}
		p = close;
	}
}
