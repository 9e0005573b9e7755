/*
 * A small reader for PROPFIND's multistatus: a tokenizer over tags and text (comments,
 * processing instructions and declarations skipped, attributes skipped with their
 * quotes) and a handful of states. The caller caps the body; every field is capped too.
 */
#include "common.h"

#include <ctype.h>

#include "stores/davxml.h"
#include "strbuf.h"
#include "xalloc.h"

#define FIELD_MAX 4096 /* bytes kept of an href, a length or a status */

enum field { F_NONE, F_HREF, F_LENGTH, F_STATUS };

struct parser {
	struct davxml_list *out;
	bool multistatus;
	int response;	  /* depth of the open <response>, 0: none */
	int propstat;	  /* depth of the open <propstat>, 0: none */
	int resourcetype; /* depth of the open <resourcetype>, 0: none */
	int depth;
	enum field capture;
	int capture_depth;
	struct strbuf href, length, status;
	/* the open propstat's properties, kept when its status is 200 */
	bool ps_collection, ps_has_size;
	uint64_t ps_size;
	/* the open response's */
	bool collection, has_size;
	uint64_t size;
};

/* The name after any "prefix:" of the qualified name s[0..n). */
static void local_name(const char *s, size_t n, const char **ret, size_t *ret_len)
{
	const char *c = memrchr(s, ':', n);

	*ret = c ? c + 1 : s;
	*ret_len = c ? n - (size_t)(c + 1 - s) : n;
}

static bool is(const char *name, size_t n, const char *want)
{
	return strlen(want) == n && !memcmp(name, want, n);
}

/* Append text with the five predefined entities decoded; others are kept as they are. */
static void add_text(struct strbuf *sb, const char *s, size_t n)
{
	static const struct {
		const char *ent;
		char c;
	} ents[] = { { "&amp;", '&' },
		     { "&lt;", '<' },
		     { "&gt;", '>' },
		     { "&quot;", '"' },
		     { "&apos;", '\'' } };

	for (size_t i = 0; i < n && sb->len < FIELD_MAX;) {
		size_t k = 0;
		if (s[i] == '&')
			for (; k < ARRAY_SIZE(ents); k++)
				if (n - i >= strlen(ents[k].ent) &&
				    !memcmp(s + i, ents[k].ent, strlen(ents[k].ent)))
					break;
		if (s[i] == '&' && k < ARRAY_SIZE(ents)) {
			strbuf_addch(sb, ents[k].c);
			i += strlen(ents[k].ent);
		} else {
			strbuf_addch(sb, s[i++]);
		}
	}
}

static struct strbuf *field_buf(struct parser *p)
{
	switch (p->capture) {
	case F_HREF:
		return &p->href;
	case F_LENGTH:
		return &p->length;
	case F_STATUS:
		return &p->status;
	default:
		return NULL;
	}
}

static void start_capture(struct parser *p, enum field f)
{
	p->capture = f;
	p->capture_depth = p->depth;
	strbuf_reset(field_buf(p));
}

static bool parse_u64(const char *s, uint64_t *ret)
{
	uint64_t v = 0;
	size_t i = 0;

	while (isspace((unsigned char)s[i]))
		i++;
	if (!isdigit((unsigned char)s[i]))
		return false;
	for (; isdigit((unsigned char)s[i]); i++) {
		if (v > (UINT64_MAX - 9) / 10)
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	while (isspace((unsigned char)s[i]))
		i++;
	if (s[i])
		return false;
	*ret = v;
	return true;
}

static void open_element(struct parser *p, const char *name, size_t n)
{
	p->depth++;
	if (is(name, n, "multistatus")) {
		p->multistatus = true;
	} else if (is(name, n, "response") && !p->response) {
		p->response = p->depth;
		strbuf_reset(&p->href);
		p->collection = p->has_size = false;
		p->size = 0;
	} else if (!p->response) {
		return;
	} else if (is(name, n, "href") && !p->propstat && p->capture == F_NONE) {
		start_capture(p, F_HREF);
	} else if (is(name, n, "propstat") && !p->propstat) {
		p->propstat = p->depth;
		p->ps_collection = p->ps_has_size = false;
		p->ps_size = 0;
		strbuf_reset(&p->status);
	} else if (!p->propstat) {
		return;
	} else if (is(name, n, "status") && p->capture == F_NONE) {
		start_capture(p, F_STATUS);
	} else if (is(name, n, "getcontentlength") && p->capture == F_NONE) {
		start_capture(p, F_LENGTH);
	} else if (is(name, n, "resourcetype") && !p->resourcetype) {
		p->resourcetype = p->depth;
	} else if (is(name, n, "collection") && p->resourcetype) {
		p->ps_collection = true;
	}
}

/* "HTTP/1.1 200 OK": the code is the second word. */
static bool status_ok(const struct strbuf *s)
{
	const char *sp = strchr(s->buf, ' ');

	return sp && !strncmp(sp + 1, "200", 3) && !isdigit((unsigned char)sp[4]);
}

static void close_element(struct parser *p)
{
	if (p->depth <= 0)
		return;
	if (p->capture != F_NONE && p->depth == p->capture_depth) {
		if (p->capture == F_LENGTH)
			p->ps_has_size = parse_u64(p->length.buf, &p->ps_size);
		p->capture = F_NONE;
	}
	if (p->resourcetype == p->depth)
		p->resourcetype = 0;
	if (p->propstat == p->depth) {
		if (status_ok(&p->status)) {
			p->collection |= p->ps_collection;
			if (p->ps_has_size) {
				p->has_size = true;
				p->size = p->ps_size;
			}
		}
		p->propstat = 0;
	}
	if (p->response == p->depth) {
		/* An href with a NUL byte names nothing we could have written. */
		if (p->href.len && !memchr(p->href.buf, '\0', p->href.len)) {
			struct davxml_list *l = p->out;
			ALLOC_GROW(l->v, l->nr + 1, l->alloc);
			l->v[l->nr++] = (struct davxml_entry){ .href = xstrdup(p->href.buf),
							       .size = p->size,
							       .has_size = p->has_size,
							       .collection = p->collection };
		}
		p->response = 0;
	}
	p->depth--;
}

/* Past the end of the construct opened at body[i] ("<?", "<!--", "<!"), or 0 when cut. */
static size_t skip_special(const char *body, size_t len, size_t i, struct parser *p)
{
	const char *end;

	if (len - i >= 9 && !memcmp(body + i, "<![CDATA[", 9)) {
		end = memmem(body + i + 9, len - i - 9, "]]>", 3);
		if (!end)
			return 0;
		struct strbuf *f = field_buf(p);
		if (f)
			for (const char *c = body + i + 9; c < end && f->len < FIELD_MAX; c++)
				strbuf_addch(f, *c);
		return (size_t)(end - body) + 3;
	}
	if (len - i >= 4 && !memcmp(body + i, "<!--", 4)) {
		end = memmem(body + i + 4, len - i - 4, "-->", 3);
		return end ? (size_t)(end - body) + 3 : 0;
	}
	if (body[i + 1] == '?') {
		end = memmem(body + i + 2, len - i - 2, "?>", 2);
		return end ? (size_t)(end - body) + 2 : 0;
	}
	end = memchr(body + i, '>', len - i);
	return end ? (size_t)(end - body) + 1 : 0;
}

/* One tag at body[i] == '<'; the index past it, or 0 when the body ends inside it. */
static size_t tag(const char *body, size_t len, size_t i, struct parser *p)
{
	size_t j = i + 1;
	bool closing = j < len && body[j] == '/';
	char quote = 0;

	if (j < len && (body[j] == '?' || body[j] == '!'))
		return skip_special(body, len, i, p);
	if (closing)
		j++;
	size_t name = j;
	while (j < len && !isspace((unsigned char)body[j]) && body[j] != '/' && body[j] != '>')
		j++;
	size_t name_len = j - name;
	/* Attributes: a '>' inside quotes does not end the tag. */
	for (; j < len; j++) {
		if (quote) {
			if (body[j] == quote)
				quote = 0;
		} else if (body[j] == '"' || body[j] == '\'') {
			quote = body[j];
		} else if (body[j] == '>') {
			break;
		}
	}
	if (j >= len)
		return 0;
	const char *ln;
	size_t ln_len;
	local_name(body + name, name_len, &ln, &ln_len);
	if (closing) {
		close_element(p);
	} else {
		open_element(p, ln, ln_len);
		if (body[j - 1] == '/' && j - 1 > name)
			close_element(p);
	}
	return j + 1;
}

int davxml_parse_multistatus(const char *body, size_t len, struct davxml_list *ret)
{
	struct parser p = {
		.out = ret, .href = STRBUF_INIT, .length = STRBUF_INIT, .status = STRBUF_INIT
	};
	size_t i = 0;
	int rc = 0;

	while (i < len) {
		if (body[i] == '<') {
			size_t next = tag(body, len, i, &p);
			if (!next) {
				rc = -1;
				break;
			}
			i = next;
			continue;
		}
		const char *lt = memchr(body + i, '<', len - i);
		size_t n = lt ? (size_t)(lt - (body + i)) : len - i;
		struct strbuf *f = field_buf(&p);
		if (f)
			add_text(f, body + i, n);
		i += n;
	}
	strbuf_release(&p.href);
	strbuf_release(&p.length);
	strbuf_release(&p.status);
	return rc < 0 || !p.multistatus ? -1 : 0;
}

void davxml_list_release(struct davxml_list *l)
{
	for (size_t i = 0; i < l->nr; i++)
		free(l->v[i].href);
	free(l->v);
	l->v = NULL;
	l->nr = l->alloc = 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)(c | 0x20);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

bool davxml_href_name(const char *href, struct strbuf *out)
{
	size_t end = strlen(href), start;

	strbuf_reset(out);
	if (end && href[end - 1] == '/')
		end--;
	start = end;
	while (start && href[start - 1] != '/')
		start--;
	for (size_t i = start; i < end; i++) {
		char c = href[i];
		if (c == '%') {
			if (i + 2 >= end)
				return false;
			int hi = hexval(href[i + 1]), lo = hexval(href[i + 2]);
			if (hi < 0 || lo < 0)
				return false;
			c = (char)(hi << 4 | lo);
			i += 2;
		}
		if (c == '/' || c == '\0')
			return false;
		strbuf_addch(out, c);
	}
	return out->len > 0;
}
