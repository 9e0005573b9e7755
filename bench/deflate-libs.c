/*
 * Deflate libraries compared on one file in blocks, the way pgzip uses them (issue 18):
 *   zlib       raw deflate per block, primed with the previous 32 KiB, Z_SYNC_FLUSH
 *              (the pigz-style single stream pgzip used before)
 *   libdeflate one gzip member per block (no preset dictionary in its API)
 *   isal       ISA-L raw deflate per block, isal_deflate_set_dict with the previous 32 KiB,
 *              SYNC_FLUSH (its levels are 0-3)
 * Prints the single-thread speed (input MB per CPU second of this process) and the
 * compressed/input ratio, after checking that zlib inflates the output back to the input.
 *
 *   cc -O2 -o /tmp/deflate-libs bench/deflate-libs.c -lz -ldeflate -lisal
 *   /tmp/deflate-libs FILE LIB LEVEL BLOCK_KIB
 * Not part of the build (ISA-L is not a dependency of Lifeboat).
 */
#include <isa-l.h>
#include <libdeflate.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#define DICT (32 * 1024)

static double cpu_seconds(void)
{
	struct timespec t;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void die(const char *what)
{
	fprintf(stderr, "deflate-libs: %s\n", what);
	exit(1);
}

/* Inflate `len` bytes of raw deflate (raw) or gzip members (!raw) and compare with want. */
static void check(const unsigned char *buf, size_t len, int raw, const unsigned char *want,
		  size_t n)
{
	unsigned char *got = malloc(n + 1);
	z_stream z = { 0 };
	size_t off = 0;

	if (!got || inflateInit2(&z, raw ? -15 : 16 + 15) != Z_OK)
		die("inflate init");
	z.next_in = (unsigned char *)buf;
	z.avail_in = (uInt)len;
	z.next_out = got;
	z.avail_out = (uInt)(n + 1);
	for (;;) {
		int r = inflate(&z, Z_SYNC_FLUSH);
		if (r == Z_STREAM_END && !raw && z.avail_in) {
			inflateReset(&z);
			continue;
		}
		if (r == Z_STREAM_END || (raw && r == Z_OK && !z.avail_in))
			break;
		if (r != Z_OK)
			die("output does not inflate");
	}
	off = (size_t)(z.next_out - got);
	if (off != n || memcmp(got, want, n))
		die("output inflates to other bytes");
	inflateEnd(&z);
	free(got);
}

int main(int argc, char **argv)
{
	if (argc != 5)
		die("usage: deflate-libs FILE zlib|libdeflate|isal LEVEL BLOCK_KIB");
	FILE *f = fopen(argv[1], "rb");
	size_t cap = (size_t)256 << 20;
	unsigned char *in = malloc(cap);
	if (!f || !in)
		die("cannot read the file");
	size_t n = fread(in, 1, cap, f);
	fclose(f);
	const char *lib = argv[2];
	int level = atoi(argv[3]);
	size_t block = (size_t)atoi(argv[4]) * 1024;
	size_t out_cap = n + n / 8 + 65536, total = 0;
	unsigned char *out = malloc(out_cap);
	if (!out || !block)
		die("bad arguments");
	double t0 = cpu_seconds();

	if (!strcmp(lib, "zlib")) {
		z_stream s = { 0 };
		if (deflateInit2(&s, level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
			die("zlib level");
		for (size_t o = 0; o < n; o += block) {
			size_t l = n - o < block ? n - o : block, d = o < DICT ? o : DICT;
			deflateReset(&s);
			if (d)
				deflateSetDictionary(&s, in + o - d, (uInt)d);
			s.next_in = in + o;
			s.avail_in = (uInt)l;
			s.next_out = out + total;
			s.avail_out = (uInt)(out_cap - total);
			if (deflate(&s, Z_SYNC_FLUSH) != Z_OK || s.avail_in)
				die("zlib deflate");
			total = out_cap - s.avail_out;
		}
		deflateEnd(&s);
	} else if (!strcmp(lib, "libdeflate")) {
		struct libdeflate_compressor *c = libdeflate_alloc_compressor(level);
		if (!c)
			die("libdeflate level");
		for (size_t o = 0; o < n; o += block) {
			size_t l = n - o < block ? n - o : block;
			size_t r = libdeflate_gzip_compress(c, in + o, l, out + total,
							    out_cap - total);
			if (!r)
				die("libdeflate compress");
			total += r;
		}
		libdeflate_free_compressor(c);
	} else if (!strcmp(lib, "isal")) {
		static const size_t lvl_buf[] = { ISAL_DEF_LVL0_DEFAULT, ISAL_DEF_LVL1_DEFAULT,
						  ISAL_DEF_LVL2_DEFAULT, ISAL_DEF_LVL3_DEFAULT };
		struct isal_zstream s;
		if (level < 0 || level > 3)
			die("isal level");
		unsigned char *lb = malloc(lvl_buf[level]);
		isal_deflate_init(&s);
		for (size_t o = 0; o < n; o += block) {
			size_t l = n - o < block ? n - o : block, d = o < DICT ? o : DICT;
			isal_deflate_reset(&s);
			s.level = (uint32_t)level;
			s.level_buf = lb;
			s.level_buf_size = (uint32_t)lvl_buf[level];
			s.flush = SYNC_FLUSH;
			s.end_of_stream = 0;
			s.gzip_flag = 0;
			if (d && isal_deflate_set_dict(&s, in + o - d, (uint32_t)d) != COMP_OK)
				die("isal set_dict");
			s.next_in = in + o;
			s.avail_in = (uint32_t)l;
			s.next_out = out + total;
			s.avail_out = (uint32_t)(out_cap - total);
			if (isal_deflate(&s) != COMP_OK || s.avail_in)
				die("isal deflate");
			total = out_cap - s.avail_out;
		}
		free(lb);
	} else {
		die("unknown library");
	}
	double secs = cpu_seconds() - t0;
	check(out, total, strcmp(lib, "libdeflate") != 0, in, n);
	printf("%-10s level %-2d block %5zu KiB  %7.1f MB/s  ratio %.4f  (%zu -> %zu bytes)\n", lib,
	       level, block / 1024, (double)n / 1e6 / secs, (double)total / (double)n, n, total);
	free(in);
	free(out);
	return 0;
}
