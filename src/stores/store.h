/* Where archives live: a small ops table per kind of store (local, S3, SFTP, WebDAV, rclone). */
#ifndef LB_STORE_H
#define LB_STORE_H

#include "common.h"

#include "config.h"
#include "err.h"
#include "log.h"
#include "naming.h"
#include "strbuf.h"

struct store;

/* One archive being written. */
struct store_put {
	struct store *store;
	char *file;
	void *priv;
	uint64_t bytes;
};

/* One archive found in a store. */
struct store_entry {
	char *file;
	struct backup_id id;
	uint64_t size;
	unsigned where; /* store_set_list: bit i set when set->v[i] holds it */
};

struct store_list {
	struct store_entry *v;
	size_t nr, alloc;
};

#define STORE_TAKEN 1 /* put_begin: the timestamp is being written by another run */

struct store_ops {
	const char *kind; /* "local", "s3", "sftp": the store's name everywhere */
	/*
	 * Start writing `file`; nothing is visible under that name until commit.
	 * STORE_TAKEN (e untouched, nothing to abort): another run is writing an
	 * archive of the same timestamp there right now; choose a later one.
	 */
	int (*put_begin)(struct store *s, const char *file, struct store_put *p, struct err *e);
	int (*put_write)(struct store_put *p, const void *buf, size_t len, struct err *e);
	/* Make the archive durable and visible under its name. */
	int (*put_commit)(struct store_put *p, struct err *e);
	/* Remove everything put_begin created. Never fails. */
	void (*put_abort)(struct store_put *p);
	/* Every archive of this backup name, in no particular order. */
	int (*list)(struct store *s, struct store_list *out, struct err *e);
	/* An fd streaming the archive's bytes, positioned at the start. */
	int (*get_open)(struct store *s, const char *file, int *ret_fd, struct err *e);
	/* Does `file` exist? */
	bool (*exists)(struct store *s, const char *file);
	/*
	 * Delete one archive of this backup name, or its sidecar (ARCHIVE.sig); a missing file
	 * is not an error.
	 */
	int (*remove)(struct store *s, const char *file, struct err *e);
	/*
	 * Write a small file beside the archives (a signature, ARCHIVE.sig) whole: visible
	 * complete or not at all, replacing one of the same name.
	 */
	int (*put_small)(struct store *s, const char *file, const void *buf, size_t len,
			 struct err *e);
	/*
	 * Remove a temporary that a put of an earlier run began and never finished: a name
	 * put_begin gave store_temp_made (a hidden temporary, or for S3 the archive whose
	 * multipart uploads are aborted; never a finished archive). 1: removed, 0: not
	 * there, -1: e says why. NULL: the store records none (local: its own lock rule).
	 */
	int (*remove_temp)(struct store *s, const char *name, struct err *e);
	void (*free)(struct store *s);
};

/*
 * Where a store sends what it cannot return as an error (an abort that leaves an upload
 * behind, a failure in a download thread): stores never log, their opener does.
 */
typedef void store_report_fn(void *ud, enum log_level level, const char *msg);

struct store {
	const struct store_ops *ops;
	const struct config *cfg;
	void *priv;
	store_report_fn *report; /* NULL: dropped */
	void *report_ud;
	/* The opener holds the run lock: put_begin records its temporaries (store_temp_made). */
	bool record_temps;
};

/* Send one message to s->report. */
void store_report(struct store *s, enum log_level level, const char *fmt, ...) LB_PRINTF(3, 4);

/* The local directory store, BACKUP_LOCAL_PATH/BACKUP_NAME. */
int store_local_new(const struct config *cfg, struct store **ret, struct err *e);

/* The S3 store, s3://BACKUP_S3_BUCKET/BACKUP_NAME/. */
int store_s3_new(const struct config *cfg, struct store **ret, struct err *e);

/* The SFTP store, sftp://USER@HOST:PORT/PATH/BACKUP_NAME/. */
int store_sftp_new(const struct config *cfg, struct store **ret, struct err *e);

/* The WebDAV store, BACKUP_WEBDAV_URL/BACKUP_NAME/. */
int store_webdav_new(const struct config *cfg, struct store **ret, struct err *e);

/* The rclone store, BACKUP_RCLONE_REMOTE/BACKUP_NAME/ (rclone as a child). */
int store_rclone_new(const struct config *cfg, struct store **ret, struct err *e);

/* A kind of store: one row of the table in store.c. */
struct config_var_group;
struct store_kind {
	const char *name;			      /* "local", "s3", "sftp" */
	const struct config_var_group *vars;	      /* its rows of the configuration table */
	bool (*configured)(const struct config *cfg); /* does the configuration name it? */
	int (*open)(const struct config *cfg, struct store **ret, struct err *e);
};
/* The i-th row of the table, NULL past its end. */
const struct store_kind *store_kind_at(size_t i);
/* The row of this name, or NULL. */
const struct store_kind *store_kind_find(const char *name);
/* The variable that configures a kind ("BACKUP_LOCAL_PATH", "BACKUP_S3_BUCKET", ...). */
const char *store_kind_var(const struct store_kind *k);
/* Does the configuration name any store? */
bool store_any_configured(const struct config *cfg);
/* The table's names ("'local', 's3' or 'sftp'"), or with `vars` their variables, for
 * messages; `last` goes before the last one (" or ", " and/or "). */
void store_kinds_list(struct strbuf *out, bool vars, const char *last);
/* "no destination configured: set ...": always -1. */
int store_none_configured(struct err *e);
extern const struct config_var_group local_vars, s3_vars, sftp_vars, webdav_vars, rclone_vars;

/* Every store the configuration names, in the table's order (local first). */
struct store_set {
	struct store **v;
	size_t nr;
};
int store_set_open(const struct config *cfg, struct store_set *ret, struct err *e);
void store_set_release(struct store_set *set);
/*
 * Archives of every store, merged by file name, newest first. Returns 0, or 1
 * when some store could not be listed (e says why; the others are in `out`),
 * or -1 when none could.
 */
int store_set_list(struct store_set *set, struct store_list *out, struct err *e);
/* "local", "s3", "both", ...: where an entry of store_set_list lives. */
void store_set_where(const struct store_set *set, unsigned where, char *buf, size_t len);
/* Keep only the store of this kind ("local", "s3", "sftp"); fails when it is not configured. */
int store_set_only(struct store_set *set, const char *kind, struct err *e);

/* An archive of this backup name, or an archive's sidecar ("ARCHIVE.sig"): ours to delete. */
bool store_file_ours(const struct config *cfg, const char *file);
/*
 * put_small for a store whose put_begin/put_write/put_commit already write a hidden
 * temporary and rename it into place (SFTP, WebDAV, rclone): the small file goes the same
 * way, and put_abort removes the temporary on failure. A file of that name already there
 * is an error (those stores' renames never replace one).
 */
int store_put_small_streamed(struct store *s, const char *file, const void *buf, size_t len,
			     struct err *e);
/*
 * A hidden temporary of this backup name: ".NAME-TIMESTAMP" + anything + ".partial", no
 * '/' (the names put_begin gives the uploads of local, SFTP, WebDAV and rclone).
 */
bool store_temp_ours(const struct config *cfg, const char *name);

/*
 * The record of temporaries (stores/temps.c), STATE_DIR/NAME.temporaries: a store with
 * record_temps names each temporary there before it makes it, and again once it is gone
 * (renamed into place or removed), so the next run of this state directory knows what a
 * killed run, or a clean-up that failed, left. Failures to write it are reported, never
 * fatal.
 */
void store_temp_made(struct store *s, const char *name);
void store_temp_gone(struct store *s, const char *name);
/*
 * Remove from the stores of `set` the temporaries the record names, and keep in it only
 * those that could not be removed (or whose store is not configured now). The caller
 * holds the run lock: every run that wrote the record has ended, so none of those
 * temporaries is still being written, and a temporary of another sidecar (another state
 * directory) is never named. Reported through each store; returns how many were removed.
 */
size_t store_set_sweep_temps(struct store_set *set);

/* The sidecar suffix of an archive's detached signature. */
#define STORE_SIG_SUFFIX ".sig"

void store_free(struct store *s);
void store_list_release(struct store_list *l);
void store_list_add(struct store_list *l, const char *file, const struct backup_id *id,
		    uint64_t size);

#endif
