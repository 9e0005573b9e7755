/*
 * A small, bounded reader for the S3 responses we need. S3 answers are flat,
 * attribute-free for the elements we read, and capped in size by the caller,
 * so searching for exact tags is enough and avoids a libxml2 dependency.
 */
#include "common.h"

#include <ctype.h>

#include "stores/s3xml.h"
#include "strbuf.h"
#include "xalloc.h"

static const char *find(const char *hay, size_t len, const char *needle, size_t from)
{
	size_t n = strlen(needle);
	if (from > len)
		return NULL;
	return memmem(hay + from, len - from, needle, n);
}

/* Decode the five predefined entities and numeric references; unknown '&' stay as is. */
static void decode(struct strbuf *out, const char *s, size_t n)
{
	static const struct {
		const char *name;
		char c;
	} ents[] = { { "&amp;", '&' },
		     { "&lt;", '<' },
		     { "&gt;", '>' },
		     { "&quot;", '"' },
		     { "&apos;", '\'' } };

	for (size_t i = 0; i < n;) {
		if (s[i] != '&') {
			strbuf_addch(out, s[i++]);
			continue;
		}
		bool done = false;
		for (size_t k = 0; k < ARRAY_SIZE(ents) && !done; k++) {
			size_t el = strlen(ents[k].name);
			if (n - i >= el && !memcmp(s + i, ents[k].name, el)) {
				strbuf_addch(out, ents[k].c);
				i += el;
				done = true;
			}
		}
		if (!done && n - i > 3 && s[i + 1] == '#') {
			bool hex = s[i + 2] == 'x' || s[i + 2] == 'X';
			size_t j = i + (hex ? 3 : 2);
			unsigned long cp = 0;
			size_t digits = 0;
			while (j < n && digits < 8 &&
			       (hex ? isxdigit((unsigned char)s[j])
				    : isdigit((unsigned char)s[j]))) {
				int d = s[j] <= '9' ? s[j] - '0' : (s[j] | 0x20) - 'a' + 10;
				cp = cp * (hex ? 16 : 10) + (unsigned long)d;
				j++;
				digits++;
			}
			if (digits && j < n && s[j] == ';' && cp > 0 && cp <= 0x10FFFF &&
			    (cp < 0xD800 || cp > 0xDFFF)) {
				/* UTF-8 encode. */
				if (cp < 0x80) {
					strbuf_addch(out, (char)cp);
				} else if (cp < 0x800) {
					strbuf_addch(out, (char)(0xC0 | (cp >> 6)));
					strbuf_addch(out, (char)(0x80 | (cp & 0x3F)));
				} else if (cp < 0x10000) {
					strbuf_addch(out, (char)(0xE0 | (cp >> 12)));
					strbuf_addch(out, (char)(0x80 | ((cp >> 6) & 0x3F)));
					strbuf_addch(out, (char)(0x80 | (cp & 0x3F)));
				} else {
					strbuf_addch(out, (char)(0xF0 | (cp >> 18)));
					strbuf_addch(out, (char)(0x80 | ((cp >> 12) & 0x3F)));
					strbuf_addch(out, (char)(0x80 | ((cp >> 6) & 0x3F)));
					strbuf_addch(out, (char)(0x80 | (cp & 0x3F)));
				}
				i = j + 1;
				done = true;
			}
		}
		if (!done)
			strbuf_addch(out, s[i++]);
	}
}

bool s3xml_next(const char *body, size_t len, size_t *pos, const char *tag, struct strbuf *out)
{
	char open[80], close[80];

	if (snprintf(open, sizeof(open), "<%s>", tag) >= (int)sizeof(open) ||
	    snprintf(close, sizeof(close), "</%s>", tag) >= (int)sizeof(close))
		return false;
	const char *o = find(body, len, open, *pos);
	if (!o)
		return false;
	size_t start = (size_t)(o - body) + strlen(open);
	const char *c = find(body, len, close, start);
	if (!c)
		return false;
	strbuf_reset(out);
	decode(out, body + start, (size_t)(c - body) - start);
	*pos = (size_t)(c - body) + strlen(close);
	return true;
}

bool s3xml_first(const char *body, size_t len, const char *tag, struct strbuf *out)
{
	size_t pos = 0;
	return s3xml_next(body, len, &pos, tag, out);
}

static bool parse_u64(const char *s, uint64_t *ret)
{
	char *end;
	if (!*s || *s == '-')
		return false;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end)
		return false;
	*ret = v;
	return true;
}

static void page_add(struct s3xml_page *p, const char *key, uint64_t size, const char *upload)
{
	p->v = xrealloc(p->v, (p->nr + 1) * sizeof(*p->v));
	p->v[p->nr] = (struct s3xml_object){ .key = xstrdup(key), .size = size };
	if (upload) {
		p->upload_ids = xrealloc(p->upload_ids, (p->nr + 1) * sizeof(*p->upload_ids));
		p->upload_ids[p->nr] = xstrdup(upload);
	}
	p->nr++;
}

static void parse_truncated(const char *body, size_t len, struct s3xml_page *p)
{
	struct strbuf sb = STRBUF_INIT;
	p->truncated = s3xml_first(body, len, "IsTruncated", &sb) && !strcmp(sb.buf, "true");
	strbuf_release(&sb);
}

/* The next open…close slice of `body` from *pos (moved past it): false when there is none. */
static bool next_slice(const char *body, size_t len, const char *open, const char *close,
		       size_t *pos, size_t *ret_start, size_t *ret_end)
{
	const char *o = find(body, len, open, *pos);
	if (!o)
		return false;
	size_t start = (size_t)(o - body);
	const char *c = find(body, len, close, start);
	if (!c)
		return false;
	*ret_start = start;
	*ret_end = (size_t)(c - body);
	*pos = *ret_end + strlen(close);
	return true;
}

int s3xml_parse_list(const char *body, size_t len, struct s3xml_page *ret)
{
	struct strbuf key = STRBUF_INIT, size = STRBUF_INIT;
	struct s3xml_page p = { 0 };
	size_t pos = 0, start, end;

	if (!find(body, len, "<ListBucketResult", 0))
		return -1;
	/* Each leaf is decoded once, from the raw slice of its <Contents>. */
	while (next_slice(body, len, "<Contents>", "</Contents>", &pos, &start, &end)) {
		uint64_t sz = 0;
		if (!s3xml_first(body + start, end - start, "Key", &key)) {
			s3xml_page_release(&p);
			strbuf_release(&key);
			strbuf_release(&size);
			return -1;
		}
		if (s3xml_first(body + start, end - start, "Size", &size))
			parse_u64(size.buf, &sz);
		page_add(&p, key.buf, sz, NULL);
	}
	parse_truncated(body, len, &p);
	if (s3xml_first(body, len, "NextContinuationToken", &key) && key.len)
		p.next_token = xstrdup(key.buf);
	strbuf_release(&key);
	strbuf_release(&size);
	*ret = p;
	return 0;
}

int s3xml_parse_uploads(const char *body, size_t len, struct s3xml_page *ret)
{
	struct strbuf key = STRBUF_INIT, id = STRBUF_INIT;
	struct s3xml_page p = { 0 };
	size_t pos = 0, start, end;

	if (!find(body, len, "<ListMultipartUploadsResult", 0))
		return -1;
	while (next_slice(body, len, "<Upload>", "</Upload>", &pos, &start, &end)) {
		if (s3xml_first(body + start, end - start, "Key", &key) &&
		    s3xml_first(body + start, end - start, "UploadId", &id))
			page_add(&p, key.buf, 0, id.buf);
	}
	parse_truncated(body, len, &p);
	if (s3xml_first(body, len, "NextKeyMarker", &key) && key.len)
		p.next_key_marker = xstrdup(key.buf);
	if (s3xml_first(body, len, "NextUploadIdMarker", &key) && key.len)
		p.next_upload_id_marker = xstrdup(key.buf);
	strbuf_release(&key);
	strbuf_release(&id);
	*ret = p;
	return 0;
}

void s3xml_page_release(struct s3xml_page *p)
{
	for (size_t i = 0; i < p->nr; i++) {
		free(p->v[i].key);
		if (p->upload_ids)
			free(p->upload_ids[i]);
	}
	free(p->v);
	free(p->upload_ids);
	free(p->next_token);
	free(p->next_key_marker);
	free(p->next_upload_id_marker);
	*p = (struct s3xml_page){ 0 };
}

bool s3xml_parse_error(const char *body, size_t len, struct strbuf *code, struct strbuf *msg)
{
	const char *o = find(body, len, "<Error>", 0);
	if (!o)
		return false;
	size_t start = (size_t)(o - body);
	strbuf_reset(code);
	strbuf_reset(msg);
	s3xml_first(body + start, len - start, "Code", code);
	s3xml_first(body + start, len - start, "Message", msg);
	return true;
}

void s3xml_escape(struct strbuf *out, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '&':
			strbuf_addstr(out, "&amp;");
			break;
		case '<':
			strbuf_addstr(out, "&lt;");
			break;
		case '>':
			strbuf_addstr(out, "&gt;");
			break;
		default:
			strbuf_addch(out, *s);
		}
	}
}
