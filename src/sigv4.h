/* AWS Signature Version 4: canonical request, string to sign and Authorization header. */
#ifndef LB_SIGV4_H
#define LB_SIGV4_H

#include "common.h"

#include <time.h>

#include "strbuf.h"

#define SIGV4_DATE_LEN 16 /* YYYYMMDDTHHMMSSZ */

/* A query parameter or header: raw (not yet encoded) name and value. */
struct sigv4_kv {
	const char *name;
	const char *value;
};

struct sigv4_request {
	const char *method;
	const char *path; /* raw, starting with '/'; encoded here (S3: no normalisation) */
	const struct sigv4_kv *query;
	size_t nr_query;
	const struct sigv4_kv *headers; /* every header to sign, host and x-amz-date included */
	size_t nr_headers;
	const char *payload_hash; /* hex SHA-256 of the body */
};

struct sigv4_key {
	const char *access_key;
	const char *secret_key;
	const char *region;
	const char *service; /* "s3" */
};

/* Percent-encode as SigV4 wants: unreserved bytes stay, '/' stays only when keep_slash. */
void sigv4_uri_encode(struct strbuf *out, const char *s, bool keep_slash);

/* The canonical query string (encoded, sorted); also what goes after '?' in the URL. */
void sigv4_canonical_query(struct strbuf *out, const struct sigv4_kv *q, size_t n);

/* The canonical request; `signed_headers` receives "host;x-amz-date;...". */
void sigv4_canonical_request(const struct sigv4_request *r, struct strbuf *out,
			     struct strbuf *signed_headers);

/*
 * The Authorization header value for `r` signed at `amz_date` (which must
 * also be the request's x-amz-date header). Never fails.
 */
void sigv4_authorization(const struct sigv4_request *r, const struct sigv4_key *k,
			 const char *amz_date, struct strbuf *out);

/* `t` as YYYYMMDDTHHMMSSZ (UTC). */
void sigv4_date(time_t t, char out[SIGV4_DATE_LEN + 1]);

/* Hex SHA-256 of a buffer. */
void sigv4_sha256_hex(const void *data, size_t len, char out[65]);

#endif
