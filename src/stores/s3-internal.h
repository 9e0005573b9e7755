/* Private to the S3 store's files: the store's state, one request, the retrying call. */
#ifndef LB_STORES_S3_INTERNAL_H
#define LB_STORES_S3_INTERNAL_H

#include "common.h"

#include <pthread.h>

#include "stores/store.h"
#include "err.h"
#include "http.h"
#include "sigv4.h"
#include "strbuf.h"

#define S3_ATTEMPTS 5 /* backoff 0.5 + 1 + 2 + 4 s between them */

struct s3 {
	const struct config *cfg;
	char *scheme; /* "https" or "http" */
	char *host;   /* endpoint host[:port] */
	bool path_style;
	char *prefix; /* "BACKUP_NAME/" */
	struct sigv4_key key;
	pthread_mutex_t lock; /* getters */
	pthread_t *getters;
	size_t nr_getters;
	/*
	 * Since when no request to the endpoint has made progress (0: the last one did),
	 * and why the last attempt failed: shared by every request of the run, so a dead
	 * endpoint costs BACKUP_S3_TIMEOUT once, not once per request.
	 */
	pthread_mutex_t stall_lock;
	long stalled_since;
	char stall_why[256];
};

/* One request and what came back. */
struct s3_req {
	const char *method;
	const char *key; /* object key, or NULL for the bucket */
	const struct sigv4_kv *query;
	size_t nr_query;
	const void *body;
	size_t body_len;
	const char *content_type;
	bool md5;	    /* send Content-MD5 of the body */
	bool storage_class; /* send x-amz-storage-class */
	int out_fd;	    /* GET: stream a 2xx body here (else -1: keep it in resp) */
	/* results */
	long status;
	struct strbuf resp;
	char etag[128];
	uint64_t streamed;
	int out_errno;
	CURL *h;
	/* The attempt in progress: when it began, and when bytes last moved a second or more
	 * after that (0: never; a hung server still takes a socket buffer's worth at once). */
	long began_ms, moved_ms;
	curl_off_t moved_up, moved_down;
};
#define S3_REQ_INIT(m)                                           \
	{                                                        \
		.method = (m), .out_fd = -1, .resp = STRBUF_INIT \
	}

/*
 * Run a request, retrying network errors and 5xx/429 answers with backoff, at most
 * `attempts` tries (0: the abort of an upload, as many as fit in `budget_ms`);
 * `also_ok` (e.g. 404 for a delete) counts as success besides 2xx. See s3.c.
 */
int s3_call(struct s3 *s, CURL *h, struct s3_req *r, const char *what, int attempts, long budget_ms,
	    long also_ok, struct err *e);
/* What BACKUP_S3_TIMEOUT allows: this long without progress, the endpoint is dead. */
long s3_budget_ms(const struct s3 *s);
/* "BACKUP_NAME/" + file; the caller frees it. */
char *s3_object_key(struct s3 *s, const char *file);
/* Copy remote text into a message: one line, printable, bounded. */
void s3_add_remote_text(struct strbuf *out, const char *s, size_t max);

/* The multipart upload (s3-upload.c): the store's put_* ops. */
int s3_put_begin(struct store *st, const char *file, struct store_put *p, struct err *e);
int s3_put_write(struct store_put *p, const void *buf, size_t len, struct err *e);
int s3_put_commit(struct store_put *p, struct err *e);
void s3_put_abort(struct store_put *p);
/* The store's remove_temp: abort the unfinished multipart uploads of an archive's key. */
int s3_remove_temp(struct store *st, const char *file, struct err *e);

#endif
