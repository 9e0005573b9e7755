/*
 * The decompressing reader of a restore: a thread of its own reads the
 * archive's bytes (gpg's output or the store's stream), decompresses gzip or
 * zstd and hands the tar bytes to libarchive through a bounded ring of large
 * buffers, so decompression runs beside the thread that parses tar, hashes
 * and writes (issue #18). Any other stream is passed through as it is, and
 * libarchive's own filters judge it.
 */
#ifndef LB_STREAM_DECODER_H
#define LB_STREAM_DECODER_H

#include "common.h"

#include <archive.h>

#include "err.h"

/*
 * The ring: DECODER_NR_BUF buffers of DECODER_BUF_SIZE bytes, 2 MiB in all.
 * 16 x 128 KiB and 8 x 1 MiB took the same CPU seconds within the noise of a
 * 1 GiB restore; 8 x 1 MiB raised the peak RSS by 6 MiB.
 */
#define DECODER_BUF_SIZE (256u * 1024)
#define DECODER_NR_BUF	 8

/*
 * Open `a` (formats and filters already chosen) on `fd`, read by the decoder
 * thread. The fd stays the caller's: it is not read once archive_read_close()
 * or archive_read_free() of `a` returned (they stop and join the thread).
 * Errors of the stream (a read error, damaged or truncated compressed data)
 * are libarchive's errors of `a`. Returns archive_read_open()'s result, or -1
 * with `e` set when the thread cannot start.
 */
int decoder_open(struct archive *a, int fd, struct err *e);

#endif
