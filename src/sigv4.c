/* AWS Signature Version 4 with OpenSSL HMAC-SHA256, independent of libcurl's own signer. */
#include "common.h"

#include <ctype.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "hash.h"
#include "sigv4.h"
#include "strbuf.h"
#include "xalloc.h"

static bool unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_' || c == '.' || c == '~';
}

void sigv4_uri_encode(struct strbuf *out, const char *s, bool keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";

	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (unreserved(*p) || (keep_slash && *p == '/')) {
			strbuf_addch(out, (char)*p);
		} else {
			strbuf_addch(out, '%');
			strbuf_addch(out, hex[*p >> 4]);
			strbuf_addch(out, hex[*p & 15]);
		}
	}
}

struct enc_kv {
	char *name;
	char *value;
};

static int cmp_enc_kv(const void *a, const void *b)
{
	const struct enc_kv *x = a, *y = b;
	int c = strcmp(x->name, y->name);
	return c ? c : strcmp(x->value, y->value);
}

void sigv4_canonical_query(struct strbuf *out, const struct sigv4_kv *q, size_t n)
{
	struct enc_kv *v = n ? xcalloc(n, sizeof(*v)) : NULL;
	struct strbuf sb = STRBUF_INIT;

	for (size_t i = 0; i < n; i++) {
		strbuf_reset(&sb);
		sigv4_uri_encode(&sb, q[i].name, false);
		v[i].name = xstrdup(sb.buf);
		strbuf_reset(&sb);
		sigv4_uri_encode(&sb, q[i].value ? q[i].value : "", false);
		v[i].value = xstrdup(sb.buf);
	}
	/* Sorted by encoded name (byte order), then value. */
	if (n)
		qsort(v, n, sizeof(*v), cmp_enc_kv);
	for (size_t i = 0; i < n; i++) {
		strbuf_addf(out, "%s%s=%s", i ? "&" : "", v[i].name, v[i].value);
		free(v[i].name);
		free(v[i].value);
	}
	free(v);
	strbuf_release(&sb);
}

struct canon_header {
	char *name;  /* lower case */
	char *value; /* trimmed, inner runs of spaces collapsed */
};

static int cmp_header(const void *a, const void *b)
{
	return strcmp(((const struct canon_header *)a)->name,
		      ((const struct canon_header *)b)->name);
}

static char *canon_value(const char *s)
{
	struct strbuf sb = STRBUF_INIT;
	bool space = false;

	while (*s == ' ' || *s == '\t')
		s++;
	for (; *s; s++) {
		if (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r') {
			space = true;
			continue;
		}
		if (space && sb.len)
			strbuf_addch(&sb, ' ');
		space = false;
		strbuf_addch(&sb, *s);
	}
	return strbuf_detach(&sb, NULL);
}

void sigv4_canonical_request(const struct sigv4_request *r, struct strbuf *out,
			     struct strbuf *signed_headers)
{
	struct canon_header *h = xcalloc(r->nr_headers ? r->nr_headers : 1, sizeof(*h));

	for (size_t i = 0; i < r->nr_headers; i++) {
		h[i].name = xstrdup(r->headers[i].name);
		for (char *p = h[i].name; *p; p++)
			*p = (char)tolower((unsigned char)*p);
		h[i].value = canon_value(r->headers[i].value);
	}
	qsort(h, r->nr_headers, sizeof(*h), cmp_header);

	strbuf_addf(out, "%s\n", r->method);
	sigv4_uri_encode(out, r->path, true);
	strbuf_addch(out, '\n');
	sigv4_canonical_query(out, r->query, r->nr_query);
	strbuf_addch(out, '\n');
	for (size_t i = 0; i < r->nr_headers; i++)
		strbuf_addf(out, "%s:%s\n", h[i].name, h[i].value);
	strbuf_addch(out, '\n');
	for (size_t i = 0; i < r->nr_headers; i++) {
		strbuf_addf(signed_headers, "%s%s", i ? ";" : "", h[i].name);
		free(h[i].name);
		free(h[i].value);
	}
	free(h);
	strbuf_addf(out, "%s\n%s", signed_headers->buf, r->payload_hash);
}

static void hmac(const void *key, size_t key_len, const char *data, unsigned char out[32])
{
	unsigned int len = 32;
	HMAC(EVP_sha256(), key, (int)key_len, (const unsigned char *)data, strlen(data), out, &len);
}

void sigv4_sha256_hex(const void *data, size_t len, char out[65])
{
	struct sha256 h;
	sha256_init(&h);
	sha256_update(&h, data, len);
	sha256_final_hex(&h, out);
}

void sigv4_authorization(const struct sigv4_request *r, const struct sigv4_key *k,
			 const char *amz_date, struct strbuf *out)
{
	struct strbuf creq = STRBUF_INIT, signed_headers = STRBUF_INIT, sts = STRBUF_INIT;
	struct strbuf secret = STRBUF_INIT;
	unsigned char kd[32], kr[32], ks[32], kk[32], sig[32];
	char date[9], creq_hash[65];

	snprintf(date, sizeof(date), "%.8s", amz_date);
	sigv4_canonical_request(r, &creq, &signed_headers);
	sigv4_sha256_hex(creq.buf, creq.len, creq_hash);
	strbuf_addf(&sts, "AWS4-HMAC-SHA256\n%s\n%s/%s/%s/aws4_request\n%s", amz_date, date,
		    k->region, k->service, creq_hash);

	strbuf_addf(&secret, "AWS4%s", k->secret_key);
	hmac(secret.buf, secret.len, date, kd);
	hmac(kd, 32, k->region, kr);
	hmac(kr, 32, k->service, ks);
	hmac(ks, 32, "aws4_request", kk);
	hmac(kk, 32, sts.buf, sig);

	strbuf_addf(out,
		    "AWS4-HMAC-SHA256 Credential=%s/%s/%s/%s/aws4_request, SignedHeaders=%s, "
		    "Signature=",
		    k->access_key, date, k->region, k->service, signed_headers.buf);
	for (int i = 0; i < 32; i++)
		strbuf_addf(out, "%02x", sig[i]);

	strbuf_release_secret(&secret);
	explicit_bzero(kd, sizeof(kd));
	explicit_bzero(kr, sizeof(kr));
	explicit_bzero(ks, sizeof(ks));
	explicit_bzero(kk, sizeof(kk));
	strbuf_release(&creq);
	strbuf_release(&signed_headers);
	strbuf_release(&sts);
}

void sigv4_date(time_t t, char out[SIGV4_DATE_LEN + 1])
{
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, SIGV4_DATE_LEN + 1, "%Y%m%dT%H%M%SZ", &tm);
}
