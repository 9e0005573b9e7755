/*
 * libFuzzer target: the bytes a restore decompresses before anything is checked, through
 * the decoder thread (gzip, zstd or none, told from the first bytes) into libarchive's tar
 * reader. Any bytes: no crash, no leak, no hang; an error is one line.
 */
#include "common.h"

#include <archive.h>
#include <archive_entry.h>
#include <sys/mman.h>

#include "fs.h"
#include "stream/decoder.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct err e = ERR_INIT;
	struct archive_entry *ent;
	int fd = memfd_create("fuzz-decoder", MFD_CLOEXEC);

	if (fd < 0 || write_all(fd, data, size) < 0 || lseek(fd, 0, SEEK_SET) < 0)
		abort();
	struct archive *a = archive_read_new();
	archive_read_support_filter_all(a);
	archive_read_support_format_tar(a);
	int r = decoder_open(a, fd, &e);
	while (r == ARCHIVE_OK && (r = archive_read_next_header(a, &ent)) == ARCHIVE_OK) {
		const void *buf;
		size_t n;
		la_int64_t off;
		while ((r = archive_read_data_block(a, &buf, &n, &off)) == ARCHIVE_OK)
			;
		if (r != ARCHIVE_EOF)
			break;
		r = ARCHIVE_OK;
	}
	if (r != ARCHIVE_EOF && r != ARCHIVE_OK) {
		const char *why = archive_error_string(a);
		if (why && strchr(why, '\n'))
			abort();
	}
	archive_read_free(a);
	close(fd);
	return 0;
}
