/* Pure value parsers (parse.h): no allocation, no environment, no messages. */
#include "common.h"

#include <arpa/inet.h>
#include <ctype.h>

#include "parse.h"

int parse_bool(const char *s, bool *ret)
{
	static const char *const yes[] = { "1", "true", "yes", "on" };
	static const char *const no[] = { "0", "false", "no", "off", "" };

	for (size_t i = 0; i < ARRAY_SIZE(yes); i++)
		if (!strcasecmp(s, yes[i])) {
			*ret = true;
			return 0;
		}
	for (size_t i = 0; i < ARRAY_SIZE(no); i++)
		if (!strcasecmp(s, no[i])) {
			*ret = false;
			return 0;
		}
	return -EINVAL;
}

int parse_decimal(const char *s, uint64_t *ret, const char **ret_end)
{
	uint64_t v = 0;
	const char *p = s;

	for (; *p >= '0' && *p <= '9'; p++) {
		unsigned d = (unsigned)(*p - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	if (p == s || (!ret_end && *p))
		return -EINVAL;
	if (ret_end)
		*ret_end = p;
	*ret = v;
	return 0;
}

int parse_port(const char *s, size_t n)
{
	uint64_t v = 0;

	if (!n || n > 5)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	return v >= 1 && v <= 65535 ? (int)v : -EINVAL;
}

bool parse_name_valid(const char *s)
{
	if (!*s || !strcmp(s, ".") || !strcmp(s, ".."))
		return false;
	for (const char *p = s; *p; p++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-",
			    *p))
			return false;
	return true;
}

bool path_has_dotdot(const char *p)
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
bool path_within(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	if (!strcmp(dir, "/"))
		return true;
	return !strncmp(path, dir, n) && (path[n] == '/' || path[n] == '\0');
}

/* Collapse "//" and "/./" and drop a trailing slash, in place ("/" stays "/"). */
void path_normalize(char *p)
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

/*
 * The authority of an http(s):// URL: a host (a name, IPv4, or [IPv6]) and an optional
 * port from 1 to 65535, after any user-info. 0, -ENOENT without a scheme or a host,
 * -ERANGE for a bad port.
 */
int parse_url_check(const char *url)
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
bool parse_endpoint_valid(const char *s)
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

bool parse_bucket_valid(const char *b)
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
int parse_size(const char *s, uint64_t *ret)
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
int parse_duration(const char *s, unsigned min, unsigned *ret)
{
	const char *end;
	uint64_t n, mult = 1;

	if (parse_decimal(s, &n, &end) < 0)
		return -EINVAL;
	if (!strcmp(end, "m"))
		mult = 60;
	else if (!strcmp(end, "h"))
		mult = 3600;
	else if (strcmp(end, "s") && *end)
		return -EINVAL;
	if (n > 7 * 86400 / mult || n * mult < min)
		return -EINVAL;
	*ret = (unsigned)(n * mult);
	return 0;
}

/* "HOST:PORT", ":PORT" or "PORT"; HOST an IPv4 address. */
int parse_listen_addr(const char *v)
{
	const char *colon = strrchr(v, ':');
	const char *port = colon ? colon + 1 : v;

	if (colon && colon != v) {
		char host[INET_ADDRSTRLEN];
		struct in_addr a;
		size_t n = (size_t)(colon - v);
		if (n >= sizeof(host))
			return -EINVAL;
		memcpy(host, v, n);
		host[n] = '\0';
		if (inet_pton(AF_INET, host, &a) != 1)
			return -EINVAL;
	}
	return parse_port(port, strlen(port)) < 0 ? -EINVAL : 0;
}

const char *format_size(uint64_t bytes, char *buf, size_t len)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)bytes;
	size_t u = 0;

	while (v >= 1024 && u + 1 < ARRAY_SIZE(units)) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%llu B", (unsigned long long)bytes);
	else
		snprintf(buf, len, "%.1f %s", v, units[u]);
	return buf;
}

bool utf8_valid(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	while (*p) {
		unsigned c = *p;
		int n;
		unsigned min;
		if (c < 0x80) {
			p++;
			continue;
		} else if ((c & 0xe0) == 0xc0) {
			n = 1, min = 0x80, c &= 0x1f;
		} else if ((c & 0xf0) == 0xe0) {
			n = 2, min = 0x800, c &= 0x0f;
		} else if ((c & 0xf8) == 0xf0) {
			n = 3, min = 0x10000, c &= 0x07;
		} else {
			return false;
		}
		for (int i = 1; i <= n; i++) {
			if ((p[i] & 0xc0) != 0x80)
				return false;
			c = (c << 6) | (p[i] & 0x3f);
		}
		if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
			return false;
		p += n + 1;
	}
	return true;
}
