/* The member sink: a source's members into the tar writer, cut into parts when long. */
#include "common.h"

#include "stream/member-sink.h"
#include "xalloc.h"

void sink_init(struct member_sink *s, struct tar_writer *tar, enum source_kind kind,
	       const char *name)
{
	*s = (struct member_sink){ .tar = tar, .prefix = source_archive_prefix(kind, name) };
}

void sink_release(struct member_sink *s)
{
	free(s->rel);
	free(s->buf);
	free(s->prefix);
	*s = (struct member_sink){ 0 };
}

static bool rel_safe(const char *rel)
{
	if (!*rel || *rel == '/' || strstr(rel, "//"))
		return false;
	for (const char *p = rel; *p;) {
		size_t n = strcspn(p, "/");
		if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return false;
		p += n;
		if (*p)
			p++;
	}
	return rel[strlen(rel) - 1] != '/';
}

int sink_begin(struct member_sink *s, const char *rel, struct err *e)
{
	if (s->rel)
		return err_set(e, LB_EXIT_INTERNAL, "member '%s' started inside '%s'", rel, s->rel);
	if (!rel_safe(rel))
		return err_set(e, LB_EXIT_INTERNAL, "unsafe member name '%s'", rel);
	if (!s->buf)
		s->buf = xmalloc(DB_PART_SIZE);
	s->rel = xstrdup(rel);
	s->len = 0;
	s->parts = 0;
	return 0;
}

static int sink_flush_part(struct member_sink *s, bool last, struct err *e)
{
	char *apath = last && !s->parts ? xasprintf("%s/%s", s->prefix, s->rel)
					: xasprintf("%s/%s.%06u", s->prefix, s->rel, s->parts);
	int r = 0;

	if (s->parts >= 999999)
		r = err_set(e, LB_EXIT_SOURCE, "'%s/%s' is too large (%u parts)", s->prefix, s->rel,
			    s->parts);
	if (!r)
		r = tarw_add_blob(s->tar, apath, s->buf, s->len, TARW_HASH | TARW_COUNT, e);
	free(apath);
	s->len = 0;
	s->parts++;
	return r;
}

int sink_write(struct member_sink *s, const void *buf, size_t len, struct err *e)
{
	const unsigned char *p = buf;

	if (!s->rel)
		return err_set(e, LB_EXIT_INTERNAL, "data written outside a member");
	while (len) {
		/* A full part is written once more data shows it is not the last. */
		if (s->len == DB_PART_SIZE && sink_flush_part(s, false, e) < 0)
			return -1;
		size_t n = DB_PART_SIZE - s->len;
		if (n > len)
			n = len;
		memcpy(s->buf + s->len, p, n);
		s->len += n;
		p += n;
		len -= n;
	}
	return 0;
}

int sink_end(struct member_sink *s, struct err *e)
{
	if (!s->rel)
		return err_set(e, LB_EXIT_INTERNAL, "no member to end");
	int r = sink_flush_part(s, true, e);
	free(s->rel);
	s->rel = NULL;
	return r;
}

int sink_add(struct member_sink *s, const char *rel, const void *buf, size_t len, struct err *e)
{
	if (sink_begin(s, rel, e) < 0 || sink_write(s, buf, len, e) < 0) {
		free(s->rel);
		s->rel = NULL;
		return -1;
	}
	return sink_end(s, e);
}

int sink_from_process(struct member_sink *s, struct process *p, const char *rel, const char *tool,
		      const char *what, struct err *e)
{
	unsigned char *buf = NULL;

	if (sink_begin(s, rel, e) < 0)
		goto kill;
	buf = xmalloc(256 * 1024);
	for (;;) {
		ssize_t n = process_read(p, buf, 256 * 1024);
		if (n < 0) {
			err_set(e, LB_EXIT_SOURCE, "cannot read from %s: %s", tool,
				strerror((int)-n));
			goto kill;
		}
		if (n == 0)
			break;
		if (sink_write(s, buf, (size_t)n, e) < 0)
			goto kill;
	}
	free(buf);
	if (process_finish(p, what, e) < 0)
		return -1;
	return sink_end(s, e);
kill:
	free(buf);
	process_kill(p);
	return -1;
}
