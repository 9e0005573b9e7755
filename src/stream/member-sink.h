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
 * tool's verdict (process_finish with `what`). On failure the tool is killed. `tool` names
 * it in a read error. `p` is the caller's to release.
 */
int sink_from_process(struct member_sink *s, struct process *p, const char *rel, const char *tool,
		      const char *what, struct err *e);

#endif
