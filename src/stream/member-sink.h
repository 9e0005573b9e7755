/*
 * The member sink: where a source writes its members, below its archive
 * directory (dirs/NAME, files/NAME, postgres/NAME, mongodb/NAME).
 *
 * Files and directories add entries with their metadata straight to the tar
 * writer (sink->tar, at paths below sink->prefix). A database writes members
 * whose size is unknown in advance: they are streamed, cut into parts of
 * DB_PART_SIZE bytes, each a tar member of its own, because a tar header must
 * state the size of its data. A member that fits in one part keeps its name;
 * a longer one becomes REL.000000, REL.000001, ... (concatenated in name order
 * they give the original bytes back). The restore side hides the parts again
 * (stream/tar-reader.h's member reader).
 */
#ifndef LB_STREAM_MEMBER_SINK_H
#define LB_STREAM_MEMBER_SINK_H

#include "common.h"

#include "config.h"
#include "err.h"
#include "process.h"
#include "stream/tar-writer.h"

#define DB_PART_SIZE	   (16u * 1024 * 1024)
#define DB_PART_SUFFIX_LEN 7 /* ".000000" */

struct member_sink {
	struct tar_writer *tar;
	char *prefix;	    /* KIND-DIR/NAME */
	char *rel;	    /* the member being written; NULL between members */
	unsigned char *buf; /* one part, allocated on first use */
	size_t len;
	unsigned parts; /* parts of the current member already written */
};

/* A sink for one source, writing into `tar`. */
void sink_init(struct member_sink *s, struct tar_writer *tar, enum source_kind kind,
	       const char *name);
void sink_release(struct member_sink *s);

/* Start a member at PREFIX/rel (rel: relative path, '/' separated, no ".."). */
int sink_begin(struct member_sink *s, const char *rel, struct err *e);
/* Append bytes to the current member. */
int sink_write(struct member_sink *s, const void *buf, size_t len, struct err *e);
/* Finish the current member. */
int sink_end(struct member_sink *s, struct err *e);
/* A whole small member at once. */
int sink_add(struct member_sink *s, const char *rel, const void *buf, size_t len, struct err *e);

/*
 * A started tool's stdout into member `rel` as it comes (no temporary copy), then the
 * tool's verdict (process_finish with `what`). A reader thread of its own fills parts
 * from the tool's stdout while this thread writes the previous part into the archive
 * (tar, hash, compression, encryption, stores), so the tool does not wait for the
 * pipeline: memory is bounded by SINK_PUMP_PARTS parts (32 MiB). On any failure
 * (a read, the tool, the archive) the thread is stopped and joined and the tool
 * killed and reaped before this returns. `tool` names it in a read error. `p` is the
 * caller's to release.
 */
#define SINK_PUMP_PARTS 2
int sink_from_process(struct member_sink *s, struct process *p, const char *rel, const char *tool,
		      const char *what, struct err *e);

/*
 * What a source checks on a tool's stream (sink_from_process_checked), on this thread.
 * head: the first bytes read (all of them when the stream is shorter than a part).
 * end: once, at the end of the stream, before its last bytes are written: `tail` is
 * its last min(hold, total) bytes of the `total` read; *ret_drop (<= n) of them are
 * dropped from the member (a trailer the tool adds that is no part of the file).
 * Either may be NULL; returning -1 with `e` set fails the member.
 */
struct sink_check {
	size_t hold; /* at most 4096 */
	void *ctx;
	int (*head)(void *ctx, const unsigned char *buf, size_t len, struct err *e);
	int (*end)(void *ctx, const unsigned char *tail, size_t n, uint64_t total, size_t *ret_drop,
		   struct err *e);
};
int sink_from_process_checked(struct member_sink *s, struct process *p, const char *rel,
			      const char *tool, const char *what, const struct sink_check *check,
			      struct err *e);

#endif
