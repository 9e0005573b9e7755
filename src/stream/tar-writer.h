/* The start of the backup stream: a pax tar of hashed members, written by libarchive. */
#ifndef LB_STREAM_TAR_WRITER_H
#define LB_STREAM_TAR_WRITER_H

#include "common.h"

#include <sys/stat.h>

#include "err.h"
#include "report.h"
#include "strbuf.h"
#include "stream/compressor.h"

struct archive;

struct tar_writer {
	struct archive *a;
	stream_out_fn out; /* where the tar bytes go (the compressor) */
	void *ctx;
	struct err err;	    /* the output's first failure; the rest is discarded */
	bool discard;	    /* the run failed: drop further output */
	bool raw_drop;	    /* a private entry writer is closing: drop its end marker */
	struct strbuf sums; /* SHA256SUMS lines of every hashed member, in order */
	uint64_t files;	    /* hashed members written, and their bytes */
	uint64_t bytes;
	unsigned char *buf;	       /* one copy chunk */
	const struct reporter *report; /* warnings (a file that shrank), for the log */
};
#define TAR_WRITER_INIT             \
	{                           \
		.sums = STRBUF_INIT \
	}

/* Start a pax archive whose bytes go to `out` (called on this thread). */
int tarw_open(struct tar_writer *w, stream_out_fn out, void *ctx, struct err *e);

/*
 * A directory, symlink (`link_target`) or regular file described by `st`,
 * stored as `apath`; a regular file's first st_size bytes are copied from `fd`
 * and hashed into the sums (`src` names it in messages). A file that shrinks
 * while read is padded with zeros, with a warning.
 */
int tarw_add_entry(struct tar_writer *w, const char *src, const char *apath, const struct stat *st,
		   const char *link_target, int fd, struct err *e);

enum tarw_blob_flags {
	TARW_HASH = 1 << 0,  /* listed in the sums */
	TARW_COUNT = 1 << 1, /* counted in files and bytes (content, not manifest) */
};

/* A regular member from memory (mode 0600, now). */
int tarw_add_blob(struct tar_writer *w, const char *apath, const void *data, size_t len,
		  unsigned flags, struct err *e);

/* Write the archive's end: every tar byte has reached `out` when this returns 0. */
int tarw_close(struct tar_writer *w, struct err *e);

/* Free libarchive's state; after a failure (`failed`) what it flushes is discarded. */
void tarw_release(struct tar_writer *w, bool failed);

#endif
