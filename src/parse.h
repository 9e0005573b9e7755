/*
 * Pure value parsers for configuration values: numbers, ports, sizes, durations,
 * booleans, names, bucket names, URLs and paths, and two pure helpers of the same kind: a
 * byte size for people (parse_size's inverse) and a UTF-8 check. No allocation, no
 * environment, no messages: each says yes or no (or where it failed), and the caller
 * words the error.
 */
#ifndef LB_PARSE_H
#define LB_PARSE_H

#include "common.h"

/* Parse a boolean word (true/false/yes/no/1/0/on/off); 0 or -EINVAL. */
int parse_bool(const char *s, bool *ret);
/*
 * The one number parser: decimal digits only (no sign, no spaces), at least one, at
 * most UINT64_MAX. *ret_end, when given, gets where the digits stop (a unit may
 * follow); without it the digits must be the whole string. 0, -EINVAL or -ERANGE.
 */
int parse_decimal(const char *s, uint64_t *ret, const char **ret_end);
/* A TCP port: the `n` bytes at `s` are digits forming 1 to 65535; the port or -EINVAL. */
int parse_port(const char *s, size_t n);
/* A size such as 16M, 16MiB, 5242880 (k, m, g: powers of 1024) into bytes; 0 or -EINVAL. */
int parse_size(const char *s, uint64_t *ret);
/* "90", "90s", "30m", "2h" into seconds, from `min` to 7 days; 0 or -EINVAL. */
int parse_duration(const char *s, unsigned min, unsigned *ret);
/* "HOST:PORT", ":PORT" or "PORT" with HOST an IPv4 address; 0 or -EINVAL. */
int parse_listen_addr(const char *s);

/* A backup or source name: [A-Za-z0-9._-]+, not "." or "..". */
bool parse_name_valid(const char *s);
/* An S3 bucket name by S3's rules: 3-63 of [a-z0-9.-], letter or digit at both ends, no
 * "..", not an IPv4 address, none of AWS's reserved prefixes and suffixes. */
bool parse_bucket_valid(const char *s);
/* An S3 endpoint we accept: http(s)://host[:port] with nothing after but one '/'. */
bool parse_endpoint_valid(const char *s);
/* An http(s):// URL's host and port: 0, -ENOENT (no scheme or host), -ERANGE (bad port). */
int parse_url_check(const char *url);

/* Does path `p` hold a ".." component? */
bool path_has_dotdot(const char *p);
/* Is `path` equal to `dir` or below it? Both absolute, without trailing slash. */
bool path_within(const char *path, const char *dir);
/* Collapse "//" and "/./" and drop a trailing slash, in place ("/" stays "/"). */
void path_normalize(char *p);

/* Human-readable byte size into buf ("1.5 GiB"). */
const char *format_size(uint64_t bytes, char *buf, size_t len);
/* Is `s` valid UTF-8 (no overlongs, no surrogates)? */
bool utf8_valid(const char *s);

#endif
