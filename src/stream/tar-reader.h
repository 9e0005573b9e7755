/*
 * The tar reader: the archive's bytes (from a store, through gpg when
 * encrypted) as entries, with the checks every entry passes (path safety),
 * its data hashed as it is read, and the member reader that joins a
 * database member's parts (REL.000000, REL.000001, ...) back into one stream.
 */
#ifndef LB_STREAM_TAR_READER_H
#define LB_STREAM_TAR_READER_H

#include "common.h"

#include <archive.h>

#include "config.h"
#include "crypt.h"
#include "err.h"
#include "hash.h"
#include "report.h"
#include "stores/store.h"
#include "strbuf.h"

/*
 * Open the archive for reading: the store's stream (*fd), through gpg when the
 * entry is encrypted (crypt then holds the child). *in is set even when the
 * open fails after it was created.
 */
int tar_reader_open(const struct config *cfg, struct store *store, const struct store_entry *entry,
		    struct crypt *crypt, int *fd, struct archive **in, struct err *e);

/*
 * With BACKUP_VERIFY_KEYS: the archive's detached signature (ARCHIVE.sig in the same store)
 * checked over the whole archive before anything else reads it. Missing or bad: exit 7.
 */
int tar_reader_check_signature(const struct config *cfg, struct store *store,
			       const struct store_entry *entry, struct err *e);

/* A relative path without empty, "." or ".." components (a trailing slash allowed). */
bool tar_path_safe(const char *p);

/* "REL.000042": a part of a member cut by the member sink, and its index. */
bool tar_part_index(const char *rel, unsigned *idx);

/*
 * Where an entry's data goes as it is read: blocks at their offsets; `fill`
 * marks zeros standing for a hole of a sparse entry, which a consumer that
 * writes at offsets skips and one that writes in sequence writes.
 */
typedef int tar_data_fn(void *ctx, const void *buf, size_t n, int64_t off, bool fill,
			struct err *e);

/*
 * Read the current entry's data (named `apath` in messages) into `fn` (may be
 * NULL), its SHA-256 into hex and its length into *ret_size. Interrupted by a
 * pending signal.
 */
int tar_read_data(struct archive *in, const char *apath, tar_data_fn *fn, void *ctx,
		  char hex[SHA256_HEX_LEN + 1], uint64_t *ret_size, struct err *e);

/* The current entry's whole data into `out` (a small entry: the manifest, SHA256SUMS). */
int tar_read_all(struct archive *in, const char *name, struct strbuf *out, struct err *e);

/*
 * A logical member: its bytes, over all its parts. Set up at the entry that
 * starts it; reading past its last part reads the next header, kept in
 * `pending` (or archive_eof set at the end of the archive).
 */
struct member_reader {
	struct archive *in;
	const char *prefix;
	char *base; /* the logical member, without a part suffix */
	bool parted;
	unsigned next_part;
	bool eof;
	struct archive_entry *pending; /* a header read past the member's last part */
	bool archive_eof;
	/* A reader that verifies as it goes (member_reader_verify). */
	const struct part_check *check;
	void *check_ctx;
	char *part_path; /* the part being read, hashed into h */
	struct sha256 h;
	uint64_t part_size;
};

/*
 * A pass that feeds a member to its module and verifies the archive at once:
 * each part's header is checked before its data is read, and each part's
 * SHA-256 reported when it ends (the caller compares them with SHA256SUMS).
 */
struct part_check {
	/* A header that continues the member: is it an entry the archive may hold? */
	int (*part_begin)(void *ctx, const char *path, struct archive_entry *ent, struct err *e);
	/* A part's data read to its end. */
	void (*part_end)(void *ctx, const char *path, const char hex[SHA256_HEX_LEN + 1],
			 uint64_t size);
};

/* For the entry PREFIX/rel just read. */
void member_reader_init(struct member_reader *r, struct archive *in, const char *prefix,
			const char *rel);
/* Hash and check every part from the one just read (named `path`) on: see part_check. */
void member_reader_verify(struct member_reader *r, const char *path, const struct part_check *c,
			  void *ctx);
/* Up to `len` bytes; 0 at the end of the member; -1 with `e` set on error. */
ssize_t member_read(struct member_reader *r, void *buf, size_t len, struct err *e);
/* Read what is left of the member (a module may stop early). */
int member_skip(struct member_reader *r, struct err *e);
void member_reader_release(struct member_reader *r);

/*
 * Entries one by one, parts joined for a listing (ls, --to): the member an
 * entry belongs to, and whether it continues the last one.
 */
struct part_tracker {
	const void *src; /* the source of the member in progress */
	char *base;
	unsigned next;
};
bool parts_continue(struct part_tracker *t, const void *src, const char *rel, char **ret_name);
void part_tracker_release(struct part_tracker *t);

/*
 * Why libarchive's disk writer failed: its text ("Write failed") and the
 * system's reason, kept in archive_errno() ("No space left on device").
 * Returns a static buffer.
 */
const char *tar_disk_cause(struct archive *a);

/*
 * libarchive's disk writer, for entries written below directory `dir` (its fd
 * `dfd`, or -1 to enter it by name): the writer works relative to the working
 * directory, so this enters `dir`. Times and permissions are restored (owners
 * too when running as root); symlinks, ".." and absolute paths cannot lead out.
 */
int tar_disk_open(const char *dir, int dfd, struct archive **ret, struct err *e);

/*
 * Owners a restore that is not root cannot give back: libarchive's disk writer
 * then writes every entry owned by the restoring user. owner_loss_note() counts
 * the entries recorded with another owner (the first one's path kept for the
 * message); nothing is counted as root.
 */
struct owner_loss {
	unsigned long n;
	char *first;	    /* the first such entry's path */
	long long uid, gid; /* its recorded owner */
};
void owner_loss_note(struct owner_loss *o, struct archive_entry *ent, const char *path);
/* One warning to `r` when entries of `what` lost their owners; then released. */
void owner_loss_report(struct owner_loss *o, const struct reporter *r, const char *what);

/*
 * Finish and free *disk (directory modes and times are fixed up now, relative
 * to the directory it was opened in), then return to `cwd_fd`. `target` names
 * what was restored in messages. *disk is NULL after.
 */
int tar_disk_close(struct archive **disk, const char *target, int cwd_fd, struct err *e);

#endif
