/* Private to the SFTP store's files: the store's state, one request, the retrying call. */
#ifndef LB_STORES_SFTP_INTERNAL_H
#define LB_STORES_SFTP_INTERNAL_H

#include "common.h"

#include <pthread.h>

#include "err.h"
#include "http.h"
#include "stores/sftp.h"
#include "stores/store.h"
#include "strbuf.h"

#define SFTP_ATTEMPTS 3 /* backoff 0.5 + 1 s between them */

struct sftp {
	const struct config *cfg;
	char *origin;		  /* "sftp://host:port": what curl is given, the user apart */
	char *shown;		  /* "sftp://user@host:port": what messages show */
	char *dir;		  /* the archives' directory, decoded: PATH/BACKUP_NAME */
	pthread_mutex_t ctl_lock; /* ctl: one connection for list, exists, remove */
	CURL *ctl;
	pthread_mutex_t lock; /* getters */
	pthread_t *getters;
	size_t nr_getters;
};

/* One request and what came back. */
struct sftp_req {
	/* "GET": download a file, or list a path that ends in '/'; "HEAD": only the commands
	 * (and the file's size); "PUT": upload from `read` */
	const char *method;
	const char *path; /* decoded, absolute */
	struct curl_slist *quote, *postquote;
	curl_read_callback read;
	void *read_ud;
	curl_write_callback write; /* GET: the body (else kept in resp) */
	void *write_ud;
	curl_xferinfo_callback progress; /* non-zero stops the transfer */
	void *progress_ud;
	long timeout_s; /* 0: BACKUP_SFTP_TIMEOUT */
	/* results */
	struct strbuf resp;
	curl_off_t size; /* HEAD of a file: its size */
	long filetime;	 /* HEAD of a file: its mtime, or -1 */
	CURLcode cc;
	char errbuf[CURL_ERROR_SIZE];
	/* the host key check: what the server showed, when it was not the expected one */
	struct sftp *s;
	int key_match; /* enum curl_khmatch of a known_hosts check; -1: none ran */
	char key_seen[SFTP_FP_MAX + 64];
};
#define SFTP_REQ_INIT(m)                                                            \
	{                                                                           \
		.method = (m), .resp = STRBUF_INIT, .filetime = -1, .key_match = -1 \
	}

/*
 * Run a request on `h`, retrying failures to connect at most `attempts` times; on failure
 * `e` says "cannot WHAT: why" in one line. See sftp.c.
 */
int sftp_call(struct sftp *s, CURL *h, struct sftp_req *r, const char *what, int attempts,
	      struct err *e);
void sftp_req_release(struct sftp_req *r);
/* "sftp://host:port/PATH", PATH percent-encoded; the caller frees. */
char *sftp_url(const struct sftp *s, const char *path);
/* Run curl's SFTP command `cmd` ("rm", "rename", "mkdir") on `a` (and `b`). */
int sftp_command(struct sftp *s, CURL *h, const char *cmd, const char *a, const char *b,
		 const char *what, long timeout_s, struct err *e);

/*
 * The archives' directory's long listing; *ret_missing when it does not exist yet (an
 * error when BACKUP_SFTP_URL's own directory does not either). Errors say "cannot
 * DOING" (NULL: "list 'URL'").
 */
int sftp_list_names(struct sftp *s, CURL *h, const char *doing, struct strbuf *listing,
		    bool *ret_missing, struct err *e);

/* The upload (sftp-upload.c): the store's put_* ops. */
int sftp_put_begin(struct store *st, const char *file, struct store_put *p, struct err *e);
int sftp_put_write(struct store_put *p, const void *buf, size_t len, struct err *e);
int sftp_put_commit(struct store_put *p, struct err *e);
void sftp_put_abort(struct store_put *p);

#endif
