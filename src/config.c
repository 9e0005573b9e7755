/* Configuration from the environment: parsing, validation and redacted description. */
#include "common.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <sys/stat.h>

#include "compress.h"
#include "config.h"
#include "dburi.h"
#include "docker.h"

#define SECRET_FILE_MAX (64 * 1024)
#define NAME_MAX_LEN	128 /* BACKUP_NAME and every source name */
#define KEY_MAX_LEN	4096
#define DB_NAME_MAX	63  /* PostgreSQL: NAMEDATALEN - 1; MongoDB: fewer than 64 */
#define SHOWN_MAX	200 /* bytes of a value echoed in a message */

/*
 * A value for a message: itself when short, else its first SHOWN_MAX bytes (whole UTF-8
 * characters) and its length, so a 128 KiB value makes a one-line error. Control
 * characters become '?'.
 */
static const char *shown(const char *v, char buf[SHOWN_MAX + 32])
{
	size_t n = strlen(v), k = n;
	bool clean = true;

	for (size_t i = 0; i < n && clean; i++)
		clean = (unsigned char)v[i] >= ' ' && v[i] != 0x7f;
	if (n <= SHOWN_MAX && clean)
		return v;
	if (k > SHOWN_MAX) {
		k = SHOWN_MAX;
		while (k && ((unsigned char)v[k] & 0xc0) == 0x80)
			k--;
	}
	memcpy(buf, v, k);
	for (size_t i = 0; i < k; i++)
		if ((unsigned char)buf[i] < ' ' || buf[i] == 0x7f)
			buf[i] = '?';
	if (k < n)
		snprintf(buf + k, 32, "... (%zu bytes)", n);
	else
		buf[k] = '\0';
	return buf;
}
#define SHOW(v) shown((v), (char[SHOWN_MAX + 32]){ 0 })

enum var_status {
	VAR_SUPPORTED,
	VAR_IGNORED,	 /* recognised, not implemented yet: warn and go on */
	VAR_UNSUPPORTED, /* recognised, not implemented yet, and ignoring it would lose data */
};

struct var_def {
	const char *name;
	enum var_status status;
	bool secret; /* never printed; also accepted as NAME_FILE */
	const char *why;
};

static const struct var_def vars[] = {
	{ "BACKUP_NAME", VAR_SUPPORTED, false, NULL },
	{ "BACKUP_LOCAL_PATH", VAR_SUPPORTED, false, NULL },
	{ "BACKUP_ENCRYPTION_KEY", VAR_SUPPORTED, true, NULL },
	{ "BACKUP_ENCRYPTION", VAR_SUPPORTED, false, NULL },
	{ "BACKUP_COMPRESSION", VAR_SUPPORTED, false, NULL },
	{ "BACKUP_COMPRESSION_LEVEL", VAR_SUPPORTED, false, NULL },
	{ "BACKUP_COMPRESSION_THREADS", VAR_SUPPORTED, false, NULL },
	{ "BACKUP_DIRS", VAR_SUPPORTED, false, NULL },
	{ "BACKUP_FILES", VAR_SUPPORTED, false, NULL },
	{ "BACKUP_DEBUG", VAR_SUPPORTED, false, NULL },
	{ "BACKUP_POSTGRES", VAR_SUPPORTED, true, NULL },
	{ "BACKUP_MONGODB", VAR_SUPPORTED, true, NULL },
	{ "BACKUP_POSTGRES_DUMP", VAR_SUPPORTED, false, NULL },
	{ "BACKUP_S3_BUCKET", VAR_SUPPORTED, false, NULL },
	{ "BACKUP_S3_ENDPOINT", VAR_SUPPORTED, false, NULL },
	{ "BACKUP_S3_REGION", VAR_SUPPORTED, false, NULL },
	{ "BACKUP_S3_ACCESS_KEY", VAR_SUPPORTED, true, NULL },
	{ "BACKUP_S3_SECRET_KEY", VAR_SUPPORTED, true, NULL },
	{ "BACKUP_S3_PATH_STYLE", VAR_SUPPORTED, false, NULL },
	{ "BACKUP_S3_CA_FILE", VAR_SUPPORTED, false, NULL },
	{ "BACKUP_S3_STORAGE_CLASS", VAR_SUPPORTED, false, NULL },
	{ "BACKUP_S3_PART_SIZE", VAR_SUPPORTED, false, NULL },
	{ "BACKUP_S3_TIMEOUT", VAR_SUPPORTED, false, NULL },
	{ "BACKUP_STOP_SERVICES", VAR_SUPPORTED, false, NULL },
	{ "BACKUP_STOP_WAIT", VAR_SUPPORTED, false, NULL },
	{ "BACKUP_START_WAIT", VAR_SUPPORTED, false, NULL },
	{ "BACKUP_SCHEDULE", VAR_SUPPORTED, false, NULL },
	{ "BACKUP_RETENTION_DAYS", VAR_SUPPORTED, false, NULL },
	{ "BACKUP_KEEP_LAST", VAR_SUPPORTED, false, NULL },
	{ "BACKUP_KEEP_DAILY", VAR_SUPPORTED, false, NULL },
	{ "BACKUP_KEEP_WEEKLY", VAR_SUPPORTED, false, NULL },
	{ "BACKUP_KEEP_MONTHLY", VAR_SUPPORTED, false, NULL },
	{ "BACKUP_START_WEBHOOK", VAR_SUPPORTED, true, NULL },
	{ "BACKUP_SUCCESS_WEBHOOK", VAR_SUPPORTED, true, NULL },
	{ "BACKUP_FAILURE_WEBHOOK", VAR_SUPPORTED, true, NULL },
	{ "BACKUP_LOCK_TIMEOUT", VAR_SUPPORTED, false, NULL },
	{ "BACKUP_METRICS_ADDR", VAR_SUPPORTED, false, NULL },
	{ "BACKUP_LOG_FILE", VAR_SUPPORTED, false, NULL },
	{ "BACKUP_STATE_DIR", VAR_SUPPORTED, false, NULL },
};

static const char *env_lookup(char *const *envp, const char *name, size_t len)
{
	for (char *const *p = envp; *p; p++)
		if (!strncmp(*p, name, len) && (*p)[len] == '=')
			return *p + len + 1;
	return NULL;
}

static const char *env_get(char *const *envp, const char *name)
{
	const char *v = env_lookup(envp, name, strlen(name));
	return v && *v ? v : NULL;
}

static const struct var_def *var_find(const char *name, size_t len, bool *ret_is_file)
{
	*ret_is_file = false;
	for (size_t i = 0; i < ARRAY_SIZE(vars); i++) {
		size_t n = strlen(vars[i].name);
		if (n == len && !strncmp(vars[i].name, name, len))
			return &vars[i];
		if (vars[i].secret && len == n + 5 && !strncmp(vars[i].name, name, n) &&
		    !strncmp(name + n, "_FILE", 5)) {
			*ret_is_file = true;
			return &vars[i];
		}
	}
	return NULL;
}

/*
 * Fetch a variable, or the content of the file named by NAME_FILE for
 * secrets. Sets *ret_origin to the variable used; an unset variable leaves
 * `out` empty and *ret_origin NULL.
 */
static int get_value(char *const *envp, const struct var_def *v, struct strbuf *out,
		     const char **ret_origin, struct err *e)
{
	static char file_names[ARRAY_SIZE(vars)][48];
	const char *direct = env_get(envp, v->name);
	const char *file = NULL;
	size_t idx = (size_t)(v - vars);

	*ret_origin = NULL;
	if (v->secret) {
		snprintf(file_names[idx], sizeof(file_names[idx]), "%s_FILE", v->name);
		file = env_get(envp, file_names[idx]);
	}
	if (direct && file)
		return err_set(e, LB_EXIT_CONFIG, "%s and %s are both set: use only one", v->name,
			       file_names[idx]);
	if (direct) {
		strbuf_addstr(out, direct);
		*ret_origin = v->name;
		return 0;
	}
	if (!file)
		return 0;
	int r = read_file_capped(file, SECRET_FILE_MAX, out);
	if (r < 0) {
		strbuf_release_secret(out);
		/* Someone may have pasted the secret itself here: show only path-like values. */
		bool pathlike = file[0] == '/' && strlen(file) < 256 && !strpbrk(file, " \t");
		return err_set(e, LB_EXIT_CONFIG, "%s: cannot read '%s': %s", file_names[idx],
			       pathlike ? file : "(value redacted: expected a file path)",
			       r == -EFBIG ? "file is larger than 64 KiB" : strerror(-r));
	}
	/* Secret files usually end with one newline that is not part of the secret. */
	if (out->len && out->buf[out->len - 1] == '\n')
		out->buf[--out->len] = '\0';
	if (out->len && out->buf[out->len - 1] == '\r')
		out->buf[--out->len] = '\0';
	if (!out->len)
		return err_set(e, LB_EXIT_CONFIG, "%s: file '%s' is empty", file_names[idx], file);
	*ret_origin = file_names[idx];
	return 0;
}

static const struct var_def *var_def(const char *name)
{
	bool is_file;
	return var_find(name, strlen(name), &is_file);
}

bool config_name_valid(const char *s)
{
	if (!*s || !strcmp(s, ".") || !strcmp(s, ".."))
		return false;
	for (const char *p = s; *p; p++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-",
			    *p))
			return false;
	return true;
}

static bool path_has_dotdot(const char *p)
{
	for (const char *s = p; (s = strstr(s, "..")); s += 2) {
		bool start = s == p || s[-1] == '/';
		bool end = s[2] == '\0' || s[2] == '/';
		if (start && end)
			return true;
	}
	return false;
}

/* Is `path` equal to `dir` or below it? Both absolute, without trailing slash. */
static bool path_within(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	if (!strcmp(dir, "/"))
		return true;
	return !strncmp(path, dir, n) && (path[n] == '/' || path[n] == '\0');
}

/* Collapse "//" and "/./" and drop a trailing slash, in place ("/" stays "/"). */
static void normalize_path(char *p)
{
	char *w = p;

	for (const char *r = p; *r;) {
		if (r[0] == '/' && (r[1] == '/' || r[1] == '\0')) {
			r++;
			continue;
		}
		if (r[0] == '/' && r[1] == '.' && (r[2] == '/' || r[2] == '\0')) {
			r += 2;
			continue;
		}
		*w++ = *r++;
	}
	if (w == p)
		*w++ = '/';
	*w = '\0';
}

static void trim(const char **start, const char **end)
{
	while (*start < *end && strchr(" \t\r\n", **start))
		(*start)++;
	while (*end > *start && strchr(" \t\r\n", (*end)[-1]))
		(*end)--;
}

static void push_source(struct config *cfg, struct source_spec src)
{
	cfg->sources = xrealloc(cfg->sources, (cfg->nr_sources + 1) * sizeof(*cfg->sources));
	cfg->sources[cfg->nr_sources++] = src;
}

/* Parse "/path:name,/path2:name2" (commas or newlines) into cfg->sources. */
static int parse_sources(struct config *cfg, const char *var, const char *value,
			 enum source_kind kind, struct err *e)
{
	const char *p = value;

	while (*p) {
		const char *end = p + strcspn(p, ",\n");
		const char *s = p, *t = end;
		p = *end ? end + 1 : end;
		trim(&s, &t);
		if (s == t)
			continue;

		char *item = xstrndup(s, (size_t)(t - s));
		char *colon = strrchr(item, ':');
		if (!colon || colon == item || !colon[1]) {
			err_set(e, LB_EXIT_CONFIG, "%s: entry '%s' is not of the form /path:name",
				var, SHOW(item));
			free(item);
			return -1;
		}
		*colon = '\0';
		const char *name = colon + 1;
		if (!utf8_valid(item)) {
			err_set(e, LB_EXIT_CONFIG, "%s: path for '%s' is not valid UTF-8", var,
				SHOW(name));
			free(item);
			return -1;
		}
		if (item[0] == '/')
			normalize_path(item);
		if (item[0] != '/' || path_has_dotdot(item)) {
			err_set(e, LB_EXIT_CONFIG,
				"%s: path '%s' must be absolute and must not contain '..'", var,
				SHOW(item));
			free(item);
			return -1;
		}
		if (!config_name_valid(name)) {
			err_set(e, LB_EXIT_CONFIG,
				"%s: name '%s' for '%s' is invalid: use letters, digits, '.', '_' "
				"and '-' only",
				var, SHOW(name), SHOW(item));
			free(item);
			return -1;
		}
		if (strlen(name) > NAME_MAX_LEN) {
			err_set(e, LB_EXIT_CONFIG,
				"%s: name '%s' for '%s' is too long: at most %d characters, as for "
				"BACKUP_NAME",
				var, SHOW(name), SHOW(item), NAME_MAX_LEN);
			free(item);
			return -1;
		}
		for (size_t i = 0; i < cfg->nr_sources; i++) {
			if (!strcmp(cfg->sources[i].name, name)) {
				err_set(e, LB_EXIT_CONFIG,
					"%s: name '%s' is used twice (names must be unique across "
					"BACKUP_DIRS and BACKUP_FILES)",
					var, SHOW(name));
				free(item);
				return -1;
			}
		}
		push_source(cfg, (struct source_spec){
					 .kind = kind, .path = item, .name = xstrdup(name) });
	}
	return 0;
}

/* source_kind_str() and the other facts of a kind: the kind table, sources/kinds.c. */

static bool db_name_taken(const struct config *cfg, enum source_kind kind, const char *name)
{
	for (size_t i = 0; i < cfg->nr_sources; i++)
		if (cfg->sources[i].kind == kind && !strcmp(cfg->sources[i].name, name))
			return true;
	return false;
}

/* libpq also takes the host from "?host=/run/postgresql" (a socket directory) or "?hostaddr=". */
static bool query_has_host(const char *query)
{
	for (const char *p = query; p && *p;) {
		size_t n = strcspn(p, "&");
		if ((n > 5 && !strncasecmp(p, "host=", 5)) ||
		    (n > 9 && !strncasecmp(p, "hostaddr=", 9)))
			return true;
		p += n;
		if (*p == '&')
			p++;
	}
	return false;
}

/* Does a new URI start at `p` (after a comma)? Commas also separate a URI's hosts. */
static bool uri_starts(const char *p, const char *const *schemes)
{
	while (*p == ' ' || *p == '\t')
		p++;
	for (; *schemes; schemes++) {
		size_t n = strlen(*schemes);
		if (!strncasecmp(p, *schemes, n) && !strncmp(p + n, "://", 3))
			return true;
	}
	return false;
}

/*
 * Parse database URIs, one per line or separated by commas, into sources.
 * Each is named after its database (or host); a clash with an earlier one
 * adds the host, then the port, then a number.
 */
static int parse_db_sources(struct config *cfg, const char *var, const char *value,
			    enum source_kind kind, struct err *e)
{
	const char *const *schemes = source_uri_schemes(kind);
	const char *p = value;

	while (*p) {
		const char *end = p;
		for (;;) {
			end += strcspn(end, ",\n");
			if (*end != ',' || uri_starts(end + 1, schemes))
				break;
			end++;
		}
		const char *s = p, *t = end;
		p = *end ? end + 1 : end;
		trim(&s, &t);
		if (s == t)
			continue;

		char *item = xstrndup(s, (size_t)(t - s));
		struct dburi u;
		if (dburi_parse(item, var, &u, e) < 0) {
			explicit_bzero(item, strlen(item));
			free(item);
			return -1;
		}
		bool scheme_ok = false;
		for (const char *const *sc = schemes; *sc; sc++)
			scheme_ok |= !strcasecmp(u.scheme, *sc);
		char *redacted = dburi_redact(item);
		int ret = 0;
		if (!scheme_ok) {
			ret = err_set(e, LB_EXIT_CONFIG, "%s: '%s' is not a %s:// URI", var,
				      SHOW(redacted), schemes[0]);
		} else if (!u.host[0] && (kind == SOURCE_MONGODB || !query_has_host(u.query))) {
			ret = err_set(e, LB_EXIT_CONFIG, "%s: '%s' has no host", var,
				      SHOW(redacted));
		} else if (u.database && !utf8_valid(u.database)) {
			ret = err_set(e, LB_EXIT_CONFIG,
				      "%s: the database name in '%s' is not UTF-8", var,
				      SHOW(redacted));
		} else if (u.database && strlen(u.database) > DB_NAME_MAX) {
			ret = err_set(e, LB_EXIT_CONFIG,
				      "%s: the database name in '%s' is longer than %d bytes, the "
				      "most %s allows",
				      var, SHOW(redacted), DB_NAME_MAX,
				      kind == SOURCE_POSTGRES ? "PostgreSQL" : "MongoDB");
		}
		/* Names stay within what BACKUP_NAME allows, with room for a "-N". */
		char *name = ret ? NULL : dburi_default_name(&u);
		if (name && strlen(name) > NAME_MAX_LEN - 8)
			name[NAME_MAX_LEN - 8] = '\0';
		if (name && db_name_taken(cfg, kind, name)) {
			char *alt = xasprintf("%s-%s", u.host[0] ? u.host : "localhost", name);
			for (char *c = alt; *c; c++)
				if (!isalnum((unsigned char)*c) && !strchr("._-", *c))
					*c = '_';
			if (strlen(alt) > NAME_MAX_LEN - 8)
				alt[NAME_MAX_LEN - 8] = '\0';
			for (int n = 2; db_name_taken(cfg, kind, alt); n++) {
				free(alt);
				alt = xasprintf("%s-%d", name, n);
			}
			free(name);
			name = alt;
		}

		dburi_release(&u);
		if (ret) {
			free(redacted);
			explicit_bzero(item, strlen(item));
			free(item);
			return -1;
		}
		push_source(cfg,
			    (struct source_spec){
				    .kind = kind, .path = redacted, .name = name, .uri = item });
	}
	return 0;
}

/* A compiled time zone file starts with the magic "TZif". */
static bool is_tzif(const char *path)
{
	struct strbuf head = STRBUF_INIT;
	struct stat st;
	bool ok = stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
		  read_file_capped(path, 1 << 20, &head) == 0 && head.len >= 4 &&
		  !memcmp(head.buf, "TZif", 4);

	strbuf_release(&head);
	return ok;
}

static int check_tz(const char *tz, struct err *e)
{
	const char *name = tz[0] == ':' ? tz + 1 : tz;
	const char *dir = getenv("TZDIR");

	if (!*name)
		return 0;
	if (name[0] == '/') {
		if (is_tzif(name))
			return 0;
	} else if (!path_has_dotdot(name)) {
		char *path = xasprintf("%s/%s", dir && *dir ? dir : "/usr/share/zoneinfo", name);
		bool ok = is_tzif(path);
		free(path);
		if (ok)
			return 0;
		/* A POSIX TZ string such as "EST5EDT" or "UTC0" carries an offset digit. */
		if (tz[0] != ':' && strpbrk(name, "0123456789") && !strchr(name, '/'))
			return 0;
	}
	return err_set(e, LB_EXIT_CONFIG,
		       "TZ: unknown time zone '%s' (expected a name such as 'Europe/Berlin' from "
		       "/usr/share/zoneinfo)",
		       SHOW(tz));
}

/*
 * The authority of an http(s):// URL: a host (a name, IPv4, or [IPv6]) and an optional
 * port from 1 to 65535, after any user-info. 0, -ENOENT without a scheme or a host,
 * -ERANGE for a bad port.
 */
int config_url_check(const char *url)
{
	const char *a = !strncasecmp(url, "https://", 8)  ? url + 8
			: !strncasecmp(url, "http://", 7) ? url + 7
							  : NULL;
	if (!a)
		return -ENOENT;
	size_t n = strcspn(a, "/?#");
	const char *at = NULL;
	for (const char *p = a; p < a + n; p++)
		if (*p == '@')
			at = p;
	if (at) {
		n -= (size_t)(at + 1 - a);
		a = at + 1;
	}
	const char *end = a + n, *port = NULL;
	if (*a == '[') {
		const char *rb = memchr(a, ']', n);
		if (!rb || rb == a + 1 || (rb + 1 < end && rb[1] != ':'))
			return -ENOENT;
		if (rb + 1 < end)
			port = rb + 2;
	} else {
		const char *colon = memchr(a, ':', n);
		if (colon == a || !n)
			return -ENOENT;
		if (colon)
			port = colon + 1;
	}
	if (port && parse_port(port, (size_t)(end - port)) < 0)
		return -ERANGE;
	return 0;
}

/* Is `s` an endpoint URL we accept: http(s)://host[:port] with nothing after but '/'? */
static bool endpoint_valid(const char *s)
{
	const char *h = !strncmp(s, "https://", 8)  ? s + 8
			: !strncmp(s, "http://", 7) ? s + 7
						    : NULL;
	if (!h || !*h)
		return false;
	for (const char *p = h; *p; p++) {
		if (*p == '/' && !p[1])
			break;
		if (!isalnum((unsigned char)*p) && !strchr(".-:[]_", *p))
			return false;
	}
	return *h != ':' && *h != '/';
}

bool config_bucket_valid(const char *b)
{
	static const char *const prefixes[] = { "xn--", "sthree-" };
	static const char *const suffixes[] = { "-s3alias", "--ol-s3" };
	size_t n = strlen(b);
	struct in_addr ip;

	if (n < 3 || n > 63 || !isalnum((unsigned char)b[0]) || !isalnum((unsigned char)b[n - 1]) ||
	    strstr(b, ".."))
		return false;
	for (const char *p = b; *p; p++)
		if (!islower((unsigned char)*p) && !isdigit((unsigned char)*p) && !strchr(".-", *p))
			return false;
	for (size_t i = 0; i < ARRAY_SIZE(prefixes); i++)
		if (!strncmp(b, prefixes[i], strlen(prefixes[i])))
			return false;
	for (size_t i = 0; i < ARRAY_SIZE(suffixes); i++) {
		size_t k = strlen(suffixes[i]);
		if (n > k && !strcmp(b + n - k, suffixes[i]))
			return false;
	}
	return inet_pton(AF_INET, b, &ip) != 1;
}

/* Parse a size such as 16M, 16MiB, 5242880 into bytes; 0 or -EINVAL. */
static int parse_size(const char *s, uint64_t *ret)
{
	const char *end;
	uint64_t v;
	if (parse_decimal(s, &v, &end) < 0)
		return -EINVAL;
	uint64_t mult = 1;
	if (!strcasecmp(end, "k") || !strcasecmp(end, "kib"))
		mult = 1024;
	else if (!strcasecmp(end, "m") || !strcasecmp(end, "mib"))
		mult = 1024 * 1024;
	else if (!strcasecmp(end, "g") || !strcasecmp(end, "gib"))
		mult = 1024 * 1024 * 1024;
	else if (*end)
		return -EINVAL;
	if (v > UINT64_MAX / mult)
		return -EINVAL;
	*ret = v * mult;
	return 0;
}

/* "90", "90s", "30m", "2h" into seconds, from `min` to 7 days. */
static int parse_duration(const char *var, const char *v, unsigned min, unsigned *ret,
			  struct err *e)
{
	const char *end;
	uint64_t n, mult = 1;

	if (!parse_decimal(v, &n, &end)) {
		if (!strcmp(end, "m"))
			mult = 60;
		else if (!strcmp(end, "h"))
			mult = 3600;
		else if (strcmp(end, "s") && *end)
			mult = 0;
		if (mult && n <= 7 * 86400 / mult && n * mult >= min) {
			*ret = (unsigned)(n * mult);
			return 0;
		}
	}
	return err_set(e, LB_EXIT_CONFIG,
		       "%s '%s' is invalid: expected seconds, or a number with s, m or h (%u s to "
		       "7 days)",
		       var, SHOW(v), min);
}

static int parse_s3(struct config *cfg, char *const *envp, struct err *e)
{
	const char *bucket = env_get(envp, "BACKUP_S3_BUCKET");
	static const char *const others[] = { "BACKUP_S3_ENDPOINT",	 "BACKUP_S3_REGION",
					      "BACKUP_S3_PATH_STYLE",	 "BACKUP_S3_CA_FILE",
					      "BACKUP_S3_STORAGE_CLASS", "BACKUP_S3_PART_SIZE",
					      "BACKUP_S3_TIMEOUT" };

	if (get_value(envp, var_def("BACKUP_S3_ACCESS_KEY"), &cfg->s3_access_key,
		      &cfg->s3_access_origin, e) < 0 ||
	    get_value(envp, var_def("BACKUP_S3_SECRET_KEY"), &cfg->s3_secret_key,
		      &cfg->s3_secret_origin, e) < 0)
		return -1;
	if (!bucket) {
		for (size_t i = 0; i < ARRAY_SIZE(others); i++)
			if (env_get(envp, others[i]))
				strvec_pushf(&cfg->warnings,
					     "%s is ignored because BACKUP_S3_BUCKET is not set",
					     others[i]);
		if (cfg->s3_access_origin)
			strvec_pushf(&cfg->warnings,
				     "%s is ignored because BACKUP_S3_BUCKET is not set",
				     cfg->s3_access_origin);
		if (cfg->s3_secret_origin)
			strvec_pushf(&cfg->warnings,
				     "%s is ignored because BACKUP_S3_BUCKET is not set",
				     cfg->s3_secret_origin);
		return 0;
	}
	if (!config_bucket_valid(bucket))
		return err_set(
			e, LB_EXIT_CONFIG,
			"BACKUP_S3_BUCKET '%s' is invalid: S3 bucket names have 3 to 63 "
			"lowercase letters, digits, '.' and '-', start and end with a letter "
			"or digit, and are not IP addresses (no 's3://' and no path)",
			SHOW(bucket));
	cfg->s3_bucket = xstrdup(bucket);
	if (!cfg->s3_access_origin)
		return err_set(e, LB_EXIT_CONFIG,
			       "BACKUP_S3_BUCKET is set but BACKUP_S3_ACCESS_KEY is not (or "
			       "BACKUP_S3_ACCESS_KEY_FILE)");
	if (!cfg->s3_secret_origin)
		return err_set(e, LB_EXIT_CONFIG,
			       "BACKUP_S3_BUCKET is set but BACKUP_S3_SECRET_KEY is not (or "
			       "BACKUP_S3_SECRET_KEY_FILE)");
	const char *ep = env_get(envp, "BACKUP_S3_ENDPOINT");
	if (ep) {
		if (!endpoint_valid(ep))
			return err_set(e, LB_EXIT_CONFIG,
				       "BACKUP_S3_ENDPOINT is invalid: expected "
				       "https://host[:port] or http://host[:port]");
		int r = config_url_check(ep);
		if (r < 0)
			return err_set(e, LB_EXIT_CONFIG, "BACKUP_S3_ENDPOINT '%s' %s", SHOW(ep),
				       r == -ERANGE ? "has an invalid port: expected 1 to 65535"
						    : "has no host");
		cfg->s3_endpoint = xstrdup(ep);
		size_t n = strlen(cfg->s3_endpoint);
		if (cfg->s3_endpoint[n - 1] == '/')
			cfg->s3_endpoint[n - 1] = '\0';
	}
	const char *region = env_get(envp, "BACKUP_S3_REGION");
	if (region) {
		for (const char *p = region; *p; p++)
			if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_')
				return err_set(e, LB_EXIT_CONFIG,
					       "BACKUP_S3_REGION '%s' is invalid (expected a name "
					       "such as 'us-east-1')",
					       SHOW(region));
	}
	cfg->s3_region = xstrdup(region ? region : "us-east-1");
	const char *ps = env_get(envp, "BACKUP_S3_PATH_STYLE");
	if (ps) {
		bool b;
		if (parse_bool(ps, &b) < 0)
			return err_set(
				e, LB_EXIT_CONFIG,
				"BACKUP_S3_PATH_STYLE '%s' is invalid: expected true or false",
				SHOW(ps));
		cfg->s3_path_style = b;
	}
	const char *ca = env_get(envp, "BACKUP_S3_CA_FILE");
	if (ca) {
		if (access(ca, R_OK) < 0)
			return err_set(e, LB_EXIT_CONFIG, "BACKUP_S3_CA_FILE '%s': %s", SHOW(ca),
				       strerror(errno));
		cfg->s3_ca_file = xstrdup(ca);
	}
	const char *sc = env_get(envp, "BACKUP_S3_STORAGE_CLASS");
	if (sc) {
		for (const char *p = sc; *p; p++)
			if (!isupper((unsigned char)*p) && !isdigit((unsigned char)*p) && *p != '_')
				return err_set(e, LB_EXIT_CONFIG,
					       "BACKUP_S3_STORAGE_CLASS '%s' is invalid (expected "
					       "a class such as STANDARD_IA)",
					       SHOW(sc));
		cfg->s3_storage_class = xstrdup(sc);
	}
	cfg->s3_part_size = 16ull << 20;
	const char *pz = env_get(envp, "BACKUP_S3_PART_SIZE");
	if (pz) {
		uint64_t v;
		if (parse_size(pz, &v) < 0 || v < (5ull << 20) || v > (5ull << 30))
			return err_set(e, LB_EXIT_CONFIG,
				       "BACKUP_S3_PART_SIZE '%s' is invalid: expected a size from "
				       "5M to 5G (for example 16M)",
				       SHOW(pz));
		cfg->s3_part_size = v;
	}
	cfg->s3_timeout = 120;
	const char *to = env_get(envp, "BACKUP_S3_TIMEOUT");
	if (to && parse_duration("BACKUP_S3_TIMEOUT", to, 1, &cfg->s3_timeout, e) < 0)
		return -1;
	return 0;
}

static void warn_unknown(struct config *cfg, char *const *envp)
{
	for (char *const *p = envp; *p; p++) {
		if (strncmp(*p, "BACKUP_", 7))
			continue;
		const char *eq = strchr(*p, '=');
		size_t len = eq ? (size_t)(eq - *p) : strlen(*p);
		bool is_file;
		const struct var_def *v = var_find(*p, len, &is_file);
		if (!v)
			strvec_pushf(
				&cfg->warnings,
				"unknown variable %.*s is ignored (a typo? see README.md for the "
				"list)",
				(int)(len < SHOWN_MAX ? len : SHOWN_MAX), *p);
		else if (v->status == VAR_IGNORED && eq && eq[1])
			strvec_pushf(&cfg->warnings,
				     "%.*s is ignored: %s is not implemented in this version",
				     (int)len, *p, v->why);
	}
}

/*
 * A whole number from 0 to `max` (unset: `def`); the error says what it counts, e.g.
 * "whole seconds" for BACKUP_STOP_WAIT or "a whole number" for BACKUP_KEEP_DAILY.
 */
static int parse_uint(char *const *envp, const char *var, long def, long max, const char *what,
		      long *ret, struct err *e)
{
	const char *v = env_get(envp, var);
	uint64_t n;

	*ret = def;
	if (!v)
		return 0;
	if (parse_decimal(v, &n, NULL) < 0 || n > (uint64_t)max)
		return err_set(e, LB_EXIT_CONFIG, "%s '%s' is invalid: expected %s from 0 to %ld",
			       var, SHOW(v), what, max);
	*ret = (long)n;
	return 0;
}

/* A non-negative count such as BACKUP_KEEP_DAILY; unset is 0 (rule off). */
static int parse_count(char *const *envp, const char *var, int *ret, struct err *e)
{
	long n;
	int r = parse_uint(envp, var, 0, 1000000, "a whole number", &n, e);
	*ret = (int)n;
	return r;
}

/* BACKUP_COMPRESSION, its level (range per algorithm) and thread count. */
static int parse_compression(struct config *cfg, char *const *envp, struct err *e)
{
	const char *c = env_get(envp, "BACKUP_COMPRESSION");
	const char *lv = env_get(envp, "BACKUP_COMPRESSION_LEVEL");
	const char *th = env_get(envp, "BACKUP_COMPRESSION_THREADS");
	int lo, hi;
	uint64_t n;

	cfg->compression = COMPRESSION_GZIP;
	if (c && !compression_parse(c, &cfg->compression))
		return err_set(
			e, LB_EXIT_CONFIG,
			"BACKUP_COMPRESSION '%s' is invalid: expected 'gzip', 'zstd' or 'none'",
			SHOW(c));
	cfg->compression_level = compression_default_level(cfg->compression);
	compression_level_range(cfg->compression, &lo, &hi);
	if (lv && cfg->compression == COMPRESSION_NONE) {
		strvec_pushf(&cfg->warnings,
			     "BACKUP_COMPRESSION_LEVEL is ignored because BACKUP_COMPRESSION=none");
	} else if (lv) {
		if (parse_decimal(lv, &n, NULL) < 0 || n < (uint64_t)lo || n > (uint64_t)hi)
			return err_set(
				e, LB_EXIT_CONFIG,
				"BACKUP_COMPRESSION_LEVEL '%s' is invalid: expected %d to %d "
				"for %s",
				SHOW(lv), lo, hi, compression_name(cfg->compression));
		cfg->compression_level = (int)n;
	}
	cfg->compression_threads = compress_available_cpus();
	if (th) {
		if (parse_decimal(th, &n, NULL) < 0 || n < 1 || n > 256)
			return err_set(
				e, LB_EXIT_CONFIG,
				"BACKUP_COMPRESSION_THREADS '%s' is invalid: expected a whole "
				"number from 1 to 256",
				SHOW(th));
		cfg->compression_threads = (unsigned)n;
	}
	return 0;
}

/* "HOST:PORT", ":PORT" or "PORT"; HOST an IPv4 address. */
static int check_listen_addr(const char *var, const char *v, struct err *e)
{
	const char *colon = strrchr(v, ':');
	const char *port = colon ? colon + 1 : v;
	bool host_ok = true;

	if (colon && colon != v) {
		char host[INET_ADDRSTRLEN];
		struct in_addr a;
		size_t n = (size_t)(colon - v);
		host_ok = n < sizeof(host);
		if (host_ok) {
			memcpy(host, v, n);
			host[n] = '\0';
			host_ok = inet_pton(AF_INET, host, &a) == 1;
		}
	}
	if (!host_ok || parse_port(port, strlen(port)) < 0)
		return err_set(e, LB_EXIT_CONFIG,
			       "%s '%s' is invalid: expected HOST:PORT with an IPv4 address, or "
			       ":PORT for all interfaces (for example 127.0.0.1:9090)",
			       var, SHOW(v));
	return 0;
}

static int load_webhook(char *const *envp, const char *var, char **ret, struct err *e)
{
	struct strbuf url = STRBUF_INIT;
	const char *origin;

	if (get_value(envp, var_def(var), &url, &origin, e) < 0)
		return -1;
	if (!origin)
		return 0;
	if (strncmp(url.buf, "http://", 7) && strncmp(url.buf, "https://", 8)) {
		strbuf_release_secret(&url);
		return err_set(e, LB_EXIT_CONFIG,
			       "%s is not an http:// or https:// URL (value not shown: it may hold "
			       "a token)",
			       origin);
	}
	for (size_t i = 0; i < url.len; i++) {
		if ((unsigned char)url.buf[i] <= 0x20 || url.buf[i] == 0x7f) {
			strbuf_release_secret(&url);
			return err_set(e, LB_EXIT_CONFIG,
				       "%s contains spaces or control characters (value not "
				       "shown)",
				       origin);
		}
	}
	int r = config_url_check(url.buf);
	if (r < 0) {
		strbuf_release_secret(&url);
		return err_set(
			e, LB_EXIT_CONFIG, "%s %s (value not shown: it may hold a token)", origin,
			r == -ERANGE ? "has an invalid port: expected 1 to 65535" : "has no host");
	}
	*ret = strbuf_detach(&url, NULL);
	return 0;
}

/* Seconds to wait around stopping containers: a whole number, at most a day. */
static int parse_wait(char *const *envp, const char *var, unsigned def, unsigned *ret,
		      struct err *e)
{
	long n;
	int r = parse_uint(envp, var, def, 86400, "whole seconds", &n, e);
	*ret = (unsigned)n;
	return r;
}

/* Container names (Docker's rule) or Compose service names, comma separated. */
static int load_stop_services(struct config *cfg, char *const *envp, struct err *e)
{
	const char *v = env_get(envp, "BACKUP_STOP_SERVICES");

	if (parse_wait(envp, "BACKUP_STOP_WAIT", 2, &cfg->stop_wait, e) < 0 ||
	    parse_wait(envp, "BACKUP_START_WAIT", 3, &cfg->start_wait, e) < 0)
		return -1;
	const char *dh = env_get(envp, "DOCKER_HOST");
	if (dh)
		cfg->docker_host = xstrdup(dh);
	for (const char *p = v; p && *p;) {
		size_t n = strcspn(p, ",");
		size_t lead = strspn(p, " \t");
		const char *name = p + lead;
		size_t len = n - lead;
		while (len && (name[len - 1] == ' ' || name[len - 1] == '\t'))
			len--;
		bool ok = len > 0 && len <= 128 && isalnum((unsigned char)name[0]);
		for (size_t i = 0; ok && i < len; i++)
			ok = isalnum((unsigned char)name[i]) || strchr("_.-", name[i]);
		if (!ok)
			return err_set(e, LB_EXIT_CONFIG,
				       "BACKUP_STOP_SERVICES entry '%.*s' is invalid: expected "
				       "Compose service or container names (letters, digits, '_', "
				       "'.', '-'), comma separated",
				       (int)(len < SHOWN_MAX ? len : SHOWN_MAX), name);
		char *one = xstrndup(name, len);
		bool dup = false;
		for (size_t i = 0; i < cfg->stop_services.nr; i++)
			dup |= !strcmp(cfg->stop_services.v[i], one);
		if (!dup)
			strvec_push(&cfg->stop_services, one);
		free(one);
		p += n;
		if (*p == ',') {
			p++;
			if (!*p)
				return err_set(
					e, LB_EXIT_CONFIG,
					"BACKUP_STOP_SERVICES ends with ',': remove it or add "
					"a name");
		}
	}
	return 0;
}

/* Everything the daemon, retention, webhooks, lock and log use. */
static int load_daemon(struct config *cfg, char *const *envp, struct err *e)
{
	const char *v;

	v = env_get(envp, "BACKUP_SCHEDULE");
	if (v) {
		struct err ce = ERR_INIT;
		if (cron_parse(v, &cfg->cron, &ce) < 0)
			return err_set(e, LB_EXIT_CONFIG, "BACKUP_SCHEDULE '%s': %s", SHOW(v),
				       ce.msg);
		cfg->schedule = xstrdup(v);
	}
	if (parse_count(envp, "BACKUP_RETENTION_DAYS", &cfg->retention.days, e) < 0 ||
	    parse_count(envp, "BACKUP_KEEP_LAST", &cfg->retention.keep_last, e) < 0 ||
	    parse_count(envp, "BACKUP_KEEP_DAILY", &cfg->retention.keep_daily, e) < 0 ||
	    parse_count(envp, "BACKUP_KEEP_WEEKLY", &cfg->retention.keep_weekly, e) < 0 ||
	    parse_count(envp, "BACKUP_KEEP_MONTHLY", &cfg->retention.keep_monthly, e) < 0)
		return -1;
	if (load_webhook(envp, "BACKUP_START_WEBHOOK", &cfg->webhook_start, e) < 0 ||
	    load_webhook(envp, "BACKUP_SUCCESS_WEBHOOK", &cfg->webhook_success, e) < 0 ||
	    load_webhook(envp, "BACKUP_FAILURE_WEBHOOK", &cfg->webhook_failure, e) < 0)
		return -1;
	cfg->lock_timeout = 3600;
	v = env_get(envp, "BACKUP_LOCK_TIMEOUT");
	if (v && parse_duration("BACKUP_LOCK_TIMEOUT", v, 0, &cfg->lock_timeout, e) < 0)
		return -1;
	v = env_get(envp, "BACKUP_METRICS_ADDR");
	if (v) {
		if (check_listen_addr("BACKUP_METRICS_ADDR", v, e) < 0)
			return -1;
		cfg->metrics_addr = xstrdup(v);
	}
	static const struct {
		const char *var, *def;
		size_t off;
	} paths[] = {
		{ "BACKUP_LOG_FILE", "/var/log/backup.log", offsetof(struct config, log_file) },
		{ "BACKUP_STATE_DIR", "/var/lib/lifeboat", offsetof(struct config, state_dir) },
	};
	for (size_t i = 0; i < ARRAY_SIZE(paths); i++) {
		char **dst = (char **)((char *)cfg + paths[i].off);
		v = env_get(envp, paths[i].var);
		if (v && (v[0] != '/' || path_has_dotdot(v)))
			return err_set(e, LB_EXIT_CONFIG,
				       "%s '%s' must be an absolute path without '..'",
				       paths[i].var, SHOW(v));
		*dst = xstrdup(v ? v : paths[i].def);
		normalize_path(*dst);
	}
	/* Not root (a local, non-container run): keep the lock and state under HOME. */
	const char *home = env_get(envp, "HOME");
	if (!env_get(envp, "BACKUP_STATE_DIR") && geteuid() != 0 && home && home[0] == '/' &&
	    !path_has_dotdot(home)) {
		free(cfg->state_dir);
		cfg->state_dir = xasprintf("%s/.local/state/lifeboat", home);
		normalize_path(cfg->state_dir);
	}
	return 0;
}

int config_load(struct config *cfg, char *const *envp, struct err *e)
{
	struct strbuf v = STRBUF_INIT;
	const char *origin;
	int ret = -1;

	warn_unknown(cfg, envp);

	for (size_t i = 0; i < ARRAY_SIZE(vars); i++) {
		if (vars[i].status != VAR_UNSUPPORTED)
			continue;
		strbuf_reset(&v);
		if (get_value(envp, &vars[i], &v, &origin, e) < 0)
			goto out;
		if (origin) {
			err_set(e, LB_EXIT_CONFIG,
				"%s is set, but %s is not implemented in this version of lifeboat; "
				"unset it or use a version that supports it",
				origin, vars[i].why);
			goto out;
		}
	}

	const char *name = env_get(envp, "BACKUP_NAME");
	if (!name) {
		err_set(e, LB_EXIT_CONFIG,
			"BACKUP_NAME is not set: it names your backups (for example "
			"BACKUP_NAME=myapp-production)");
		goto out;
	}
	if (!config_name_valid(name) || strlen(name) > NAME_MAX_LEN) {
		err_set(e, LB_EXIT_CONFIG,
			"BACKUP_NAME '%s' is invalid: use 1 to %d letters, digits, '.', '_' and "
			"'-'",
			SHOW(name), NAME_MAX_LEN);
		goto out;
	}
	cfg->name = xstrdup(name);

	const char *lp = env_get(envp, "BACKUP_LOCAL_PATH");
	if (lp) {
		if (lp[0] != '/' || path_has_dotdot(lp)) {
			err_set(e, LB_EXIT_CONFIG,
				"BACKUP_LOCAL_PATH '%s' must be an absolute path without '..'",
				SHOW(lp));
			goto out;
		}
		cfg->local_path = xstrdup(lp);
		normalize_path(cfg->local_path);
	}

	const char *enc = env_get(envp, "BACKUP_ENCRYPTION");
	cfg->encrypt = true;
	if (enc && !strcasecmp(enc, "none")) {
		cfg->encrypt = false;
	} else if (enc && strcasecmp(enc, "gpg")) {
		err_set(e, LB_EXIT_CONFIG,
			"BACKUP_ENCRYPTION '%s' is invalid: expected 'gpg' or 'none'", SHOW(enc));
		goto out;
	}
	if (get_value(envp, var_def("BACKUP_ENCRYPTION_KEY"), &cfg->key, &cfg->key_origin, e) < 0)
		goto out;
	if (!cfg->encrypt && cfg->key_origin)
		strvec_pushf(&cfg->warnings, "%s is ignored because BACKUP_ENCRYPTION=none",
			     cfg->key_origin);
	/* gpg reads the passphrase as one line from a pipe (crypt.c). */
	if (cfg->encrypt && cfg->key.len > KEY_MAX_LEN) {
		err_set(e, LB_EXIT_CONFIG, "%s is longer than %d bytes", cfg->key_origin,
			KEY_MAX_LEN);
		goto out;
	}
	if (cfg->encrypt && memchr(cfg->key.buf, '\n', cfg->key.len)) {
		err_set(e, LB_EXIT_CONFIG,
			"%s contains a line break: gpg would read only its first line",
			cfg->key_origin);
		goto out;
	}

	if (parse_compression(cfg, envp, e) < 0)
		goto out;

	const char *dirs = env_get(envp, "BACKUP_DIRS");
	if (dirs && parse_sources(cfg, "BACKUP_DIRS", dirs, SOURCE_DIR, e) < 0)
		goto out;
	const char *files = env_get(envp, "BACKUP_FILES");
	if (files && parse_sources(cfg, "BACKUP_FILES", files, SOURCE_FILE, e) < 0)
		goto out;

	strbuf_reset(&v);
	if (get_value(envp, var_def("BACKUP_POSTGRES"), &v, &origin, e) < 0)
		goto out;
	if (origin && parse_db_sources(cfg, origin, v.buf, SOURCE_POSTGRES, e) < 0)
		goto out;
	strbuf_release_secret(&v);
	const char *pgd = env_get(envp, "BACKUP_POSTGRES_DUMP");
	if (!pgd || !strcasecmp(pgd, "auto")) {
		cfg->pg_dump_mode = PG_DUMP_AUTO;
	} else if (!strcasecmp(pgd, "local")) {
		cfg->pg_dump_mode = PG_DUMP_LOCAL;
	} else if (!strcasecmp(pgd, "exec")) {
		cfg->pg_dump_mode = PG_DUMP_EXEC;
	} else {
		err_set(e, LB_EXIT_CONFIG,
			"BACKUP_POSTGRES_DUMP '%s' is invalid: expected auto, local or exec",
			SHOW(pgd));
		goto out;
	}
	if (get_value(envp, var_def("BACKUP_MONGODB"), &v, &origin, e) < 0)
		goto out;
	if (origin && parse_db_sources(cfg, origin, v.buf, SOURCE_MONGODB, e) < 0)
		goto out;
	strbuf_release_secret(&v);

	const char *dbg = env_get(envp, "BACKUP_DEBUG");
	if (dbg && parse_bool(dbg, &cfg->debug) < 0) {
		err_set(e, LB_EXIT_CONFIG, "BACKUP_DEBUG '%s' is invalid: expected true or false",
			SHOW(dbg));
		goto out;
	}

	if (parse_s3(cfg, envp, e) < 0)
		goto out;

	const char *tz = env_get(envp, "TZ");
	if (tz) {
		if (check_tz(tz, e) < 0)
			goto out;
		cfg->tz = xstrdup(tz);
	}

	if (load_daemon(cfg, envp, e) < 0)
		goto out;
	if (load_stop_services(cfg, envp, e) < 0)
		goto out;
	/* DOCKER_HOST is read as the Docker client will read it, whenever it may be used. */
	bool uses_docker = cfg->stop_services.nr > 0;
	for (size_t i = 0; i < cfg->nr_sources; i++)
		uses_docker |= cfg->sources[i].kind == SOURCE_POSTGRES &&
			       cfg->pg_dump_mode != PG_DUMP_LOCAL;
	if (uses_docker && docker_host_check(cfg->docker_host, e) < 0)
		goto out;

	/* A restore replaces a directory's whole content: sources must not nest. */
	for (size_t i = 0; i < cfg->nr_sources; i++) {
		for (size_t k = 0; k < cfg->nr_sources; k++) {
			const struct source_spec *outer = &cfg->sources[i],
						 *inner = &cfg->sources[k];
			if (i == k || outer->kind != SOURCE_DIR ||
			    !path_within(inner->path, outer->path))
				continue;
			err_set(e, LB_EXIT_CONFIG,
				"%s entry '%s:%s' lies inside BACKUP_DIRS entry '%s:%s': sources "
				"must "
				"not overlap",
				inner->kind == SOURCE_DIR ? "BACKUP_DIRS" : "BACKUP_FILES",
				inner->path, inner->name, outer->path, outer->name);
			goto out;
		}
	}

	/* Restoring a directory replaces its content: the store must not live inside it. */
	for (size_t i = 0; cfg->local_path && i < cfg->nr_sources; i++) {
		const struct source_spec *s = &cfg->sources[i];
		if (s->kind == SOURCE_DIR && path_within(cfg->local_path, s->path)) {
			err_set(e, LB_EXIT_CONFIG,
				"BACKUP_LOCAL_PATH '%s' is inside BACKUP_DIRS entry '%s:%s': keep "
				"backups outside the directories they protect",
				cfg->local_path, s->path, s->name);
			goto out;
		}
	}
	ret = 0;
out:
	strbuf_release_secret(&v);
	return ret;
}

int config_require(const struct config *cfg, unsigned need, struct err *e)
{
	struct stat st;

	if (need & NEED_STORE) {
		if (!cfg->local_path && !cfg->s3_bucket)
			return err_set(
				e, LB_EXIT_CONFIG,
				"no destination configured: set BACKUP_LOCAL_PATH to a mounted "
				"directory and/or BACKUP_S3_BUCKET");
	}
	if ((need & NEED_STORE) && cfg->local_path) {
		if (stat(cfg->local_path, &st) < 0)
			return err_set(e, LB_EXIT_CONFIG,
				       "BACKUP_LOCAL_PATH '%s': %s (mount a volume there)",
				       SHOW(cfg->local_path), strerror(errno));
		if (!S_ISDIR(st.st_mode))
			return err_set(e, LB_EXIT_CONFIG,
				       "BACKUP_LOCAL_PATH '%s' is not a directory",
				       cfg->local_path);
	}
	if ((need & NEED_KEY) && cfg->encrypt && !cfg->key.len)
		return err_set(
			e, LB_EXIT_CONFIG,
			"BACKUP_ENCRYPTION_KEY is not set: set it (or BACKUP_ENCRYPTION_KEY_FILE), "
			"or set BACKUP_ENCRYPTION=none to store unencrypted archives");
	if (need & (NEED_SOURCES | NEED_SOURCES_AT_START)) {
		if (!cfg->nr_sources)
			return err_set(e, LB_EXIT_CONFIG,
				       "nothing to back up: set BACKUP_DIRS, BACKUP_FILES, "
				       "BACKUP_POSTGRES and/or BACKUP_MONGODB");
		for (size_t i = 0; i < cfg->nr_sources; i++) {
			const struct source_spec *s = &cfg->sources[i];
			const char *var = source_var(s->kind);
			if (source_is_db(s->kind))
				continue;
			if (stat(s->path, &st) < 0) {
				int saved = errno;
				if ((need & NEED_SOURCES_AT_START) && s->kind == SOURCE_FILE &&
				    saved == ENOENT) {
					/* The application may create it later: its directory must
					 * exist (a mounted volume). */
					char *dir = xstrndup(
						s->path, (size_t)(strrchr(s->path, '/') - s->path));
					int r = stat(*dir ? dir : "/", &st);
					free(dir);
					if (r == 0 && S_ISDIR(st.st_mode))
						continue;
				}
				return err_set(e, LB_EXIT_CONFIG, "%s: '%s' (%s): %s", var,
					       SHOW(s->path), s->name, strerror(saved));
			}
			if (s->kind == SOURCE_DIR && !S_ISDIR(st.st_mode))
				return err_set(e, LB_EXIT_CONFIG,
					       "BACKUP_DIRS: '%s' (%s) is not a directory (use "
					       "BACKUP_FILES for files)",
					       SHOW(s->path), s->name);
			if (s->kind == SOURCE_FILE && !S_ISREG(st.st_mode))
				return err_set(e, LB_EXIT_CONFIG,
					       "BACKUP_FILES: '%s' (%s) is not a regular file%s",
					       SHOW(s->path), s->name,
					       S_ISDIR(st.st_mode)
						       ? " (use BACKUP_DIRS for directories)"
						       : "");
		}
	}
	return 0;
}

char *config_local_dir(const struct config *cfg)
{
	return xasprintf("%s/%s", cfg->local_path, cfg->name);
}

const struct source_spec *config_find_source(const struct config *cfg, enum source_kind kind,
					     const char *name)
{
	for (size_t i = 0; i < cfg->nr_sources; i++)
		if (cfg->sources[i].kind == kind && !strcmp(cfg->sources[i].name, name))
			return &cfg->sources[i];
	return NULL;
}

void config_describe(const struct config *cfg, struct strbuf *out)
{
	strbuf_addf(out, "BACKUP_NAME          %s\n", cfg->name);
	strbuf_addf(out, "BACKUP_LOCAL_PATH    %s\n",
		    cfg->local_path ? cfg->local_path : "(unset)");
	if (cfg->local_path)
		strbuf_addf(out, "  archives in        %s/%s/\n", cfg->local_path, cfg->name);
	strbuf_addf(out, "BACKUP_ENCRYPTION    %s\n",
		    cfg->encrypt ? "gpg (OpenPGP symmetric, AES-256)" : "none");
	if (cfg->encrypt)
		strbuf_addf(out, "encryption key       %s\n",
			    cfg->key_origin
				    ? (!strcmp(cfg->key_origin, "BACKUP_ENCRYPTION_KEY")
					       ? "set in BACKUP_ENCRYPTION_KEY (redacted)"
					       : "read from BACKUP_ENCRYPTION_KEY_FILE (redacted)")
				    : "(unset)");
	if (cfg->compression == COMPRESSION_NONE)
		strbuf_addf(out, "BACKUP_COMPRESSION   none\n");
	else
		strbuf_addf(out, "BACKUP_COMPRESSION   %s, level %d, %u thread%s\n",
			    compression_name(cfg->compression), cfg->compression_level,
			    cfg->compression_threads, cfg->compression_threads == 1 ? "" : "s");
	for (size_t i = 0; i < cfg->nr_sources; i++) {
		const struct source_spec *s = &cfg->sources[i];
		char *prefix = source_archive_prefix(s->kind, s->name);
		strbuf_addf(out, "%-20s %s -> %s\n", source_var(s->kind), s->path, prefix);
		free(prefix);
	}
	if (cfg->s3_bucket) {
		strbuf_addf(out, "BACKUP_S3_BUCKET     %s\n", cfg->s3_bucket);
		strbuf_addf(out, "  archives in        s3://%s/%s/\n", cfg->s3_bucket, cfg->name);
		strbuf_addf(out, "BACKUP_S3_ENDPOINT   %s\n",
			    cfg->s3_endpoint ? cfg->s3_endpoint : "(unset: AWS S3)");
		strbuf_addf(out, "BACKUP_S3_REGION     %s\n", cfg->s3_region);
		strbuf_addf(out, "S3 access key        read from %s (redacted)\n",
			    cfg->s3_access_origin);
		strbuf_addf(out, "S3 secret key        read from %s (redacted)\n",
			    cfg->s3_secret_origin);
		strbuf_addf(out, "BACKUP_S3_PATH_STYLE %s\n",
			    cfg->s3_path_style < 0
				    ? (cfg->s3_endpoint ? "true (custom endpoint)" : "false (AWS)")
			    : cfg->s3_path_style ? "true"
						 : "false");
		if (cfg->s3_ca_file)
			strbuf_addf(out, "BACKUP_S3_CA_FILE    %s\n", cfg->s3_ca_file);
		if (cfg->s3_storage_class)
			strbuf_addf(out, "BACKUP_S3_STORAGE_CLASS %s\n", cfg->s3_storage_class);
		strbuf_addf(out,
			    "BACKUP_S3_PART_SIZE  %llu MiB (minimum; grows for large backups)\n",
			    (unsigned long long)(cfg->s3_part_size >> 20));
		strbuf_addf(out,
			    "BACKUP_S3_TIMEOUT    %us without progress per request (a transfer "
			    "that moves is never cut)\n",
			    cfg->s3_timeout);
	}
	if (cfg->stop_services.nr) {
		strbuf_addstr(out, "BACKUP_STOP_SERVICES ");
		for (size_t i = 0; i < cfg->stop_services.nr; i++)
			strbuf_addf(out, "%s%s", i ? "," : "", cfg->stop_services.v[i]);
		strbuf_addf(out, " (wait %u s after stopping, %u s after starting)\n",
			    cfg->stop_wait, cfg->start_wait);
		strbuf_addf(out, "  Docker engine      %s\n",
			    cfg->docker_host ? cfg->docker_host : "unix:///var/run/docker.sock");
	}
	strbuf_addf(out, "BACKUP_DEBUG         %s\n", cfg->debug ? "true" : "false");
	strbuf_addf(out, "TZ                   %s\n", cfg->tz ? cfg->tz : "(unset: UTC)");
	strbuf_addf(out, "BACKUP_SCHEDULE      %s\n",
		    cfg->schedule ? cfg->schedule : "(unset: manual mode)");
	if (retention_enabled(&cfg->retention))
		strbuf_addf(out,
			    "retention            days %d, keep last %d, daily %d, weekly %d, "
			    "monthly %d (0 = rule off)\n",
			    cfg->retention.days, cfg->retention.keep_last,
			    cfg->retention.keep_daily, cfg->retention.keep_weekly,
			    cfg->retention.keep_monthly);
	else
		strbuf_addf(out, "retention            (none: archives are kept forever)\n");
	strbuf_addf(out, "webhooks             start %s, success %s, failure %s\n",
		    cfg->webhook_start ? "set (redacted)" : "unset",
		    cfg->webhook_success ? "set (redacted)" : "unset",
		    cfg->webhook_failure ? "set (redacted)" : "unset");
	strbuf_addf(out, "BACKUP_LOCK_TIMEOUT  %us\n", cfg->lock_timeout);
	strbuf_addf(out, "BACKUP_METRICS_ADDR  %s\n",
		    cfg->metrics_addr ? cfg->metrics_addr : "(off)");
	strbuf_addf(out, "BACKUP_LOG_FILE      %s\n", cfg->log_file ? cfg->log_file : "(unset)");
	strbuf_addf(out, "BACKUP_STATE_DIR     %s\n", cfg->state_dir ? cfg->state_dir : "(unset)");
}

static void free_secret(char *s)
{
	if (s)
		explicit_bzero(s, strlen(s));
	free(s);
}

void config_release(struct config *cfg)
{
	free(cfg->name);
	free(cfg->local_path);
	strbuf_release_secret(&cfg->key);
	for (size_t i = 0; i < cfg->nr_sources; i++) {
		free(cfg->sources[i].path);
		free(cfg->sources[i].name);
		free_secret(cfg->sources[i].uri);
	}
	free(cfg->sources);
	free(cfg->tz);
	strvec_release(&cfg->stop_services);
	free(cfg->docker_host);
	free(cfg->s3_bucket);
	free(cfg->s3_endpoint);
	free(cfg->s3_region);
	strbuf_release_secret(&cfg->s3_access_key);
	strbuf_release_secret(&cfg->s3_secret_key);
	free(cfg->s3_ca_file);
	free(cfg->s3_storage_class);
	free(cfg->schedule);
	free_secret(cfg->webhook_start);
	free_secret(cfg->webhook_success);
	free_secret(cfg->webhook_failure);
	free(cfg->metrics_addr);
	free(cfg->log_file);
	free(cfg->state_dir);
	strvec_release(&cfg->warnings);
	*cfg = (struct config)CONFIG_INIT;
}
