/* Shell-like splitting of command lines (no shell) and the `SERVICE: command` lines. */
#include "common.h"

#include <ctype.h>

#include "cmdline.h"
#include "strbuf.h"
#include "strvec.h"
#include "xalloc.h"

#define PLACE_MAX 128 /* a container or Compose service name */

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

int cmdline_split(const char *s, size_t len, struct strvec *argv, const char **ret_why)
{
	struct strbuf w = STRBUF_INIT;
	const char *end = s + len;
	bool in_word = false;
	int ret = 0;

	for (const char *p = s; p < end; p++) {
		char c = *p;
		if (is_space(c)) {
			if (in_word)
				strvec_push(argv, w.buf);
			strbuf_reset(&w);
			in_word = false;
			continue;
		}
		in_word = true;
		if (c == '\\') {
			if (++p == end) {
				*ret_why = "it ends with a backslash";
				ret = -EINVAL;
				goto out;
			}
			strbuf_addch(&w, *p);
		} else if (c == '\'') {
			const char *q = memchr(p + 1, '\'', (size_t)(end - p - 1));
			if (!q) {
				*ret_why = "a single quote is not closed";
				ret = -EINVAL;
				goto out;
			}
			strbuf_add(&w, p + 1, (size_t)(q - p - 1));
			p = q;
		} else if (c == '"') {
			for (p++;; p++) {
				if (p == end) {
					*ret_why = "a double quote is not closed";
					ret = -EINVAL;
					goto out;
				}
				if (*p == '"')
					break;
				if (*p == '\\' && p + 1 < end && strchr("\\\"$", p[1]))
					p++;
				strbuf_addch(&w, *p);
			}
		} else {
			strbuf_addch(&w, c);
		}
	}
	if (in_word)
		strvec_push(argv, w.buf);
out:
	strbuf_release(&w);
	return ret;
}

static struct hook_cmd *list_add(struct hook_list *list)
{
	ALLOC_GROW(list->v, list->nr + 1, list->alloc);
	struct hook_cmd *c = &list->v[list->nr++];
	*c = (struct hook_cmd){ .argv = STRVEC_INIT };
	return c;
}

static void hook_cmd_release(struct hook_cmd *c)
{
	free(c->where);
	free(c->text);
	strvec_release(&c->argv);
}

/* One non-blank line: its place (with `placed`) and its words into `c`. */
static int parse_line(const char *s, size_t n, bool placed, struct hook_cmd *c,
		      const char **ret_why)
{
	if (placed) {
		size_t k = 0;
		if (n && isalnum((unsigned char)s[0]))
			while (k < n && (isalnum((unsigned char)s[k]) || strchr("_.-", s[k])))
				k++;
		if (k == n || s[k] != ':') {
			*ret_why = "expected 'SERVICE: command' (in that Compose service's or "
				   "container's container) or ': command' (in the sidecar)";
			return -EINVAL;
		}
		if (k > PLACE_MAX) {
			*ret_why = "the container or service name is longer than 128 bytes";
			return -EINVAL;
		}
		c->where = k ? xstrndup(s, k) : NULL;
		s += k + 1;
		n -= k + 1;
		while (n && is_space(*s))
			s++, n--;
	}
	while (n && is_space(s[n - 1]))
		n--;
	c->text = xstrndup(s, n);
	if (cmdline_split(s, n, &c->argv, ret_why) < 0)
		return -EINVAL;
	if (!c->argv.nr) {
		*ret_why = "there is no command";
		return -EINVAL;
	}
	return 0;
}

int cmdline_parse_list(const char *value, bool placed, struct hook_list *list, unsigned *ret_line,
		       const char **ret_why)
{
	unsigned line = 0;

	for (const char *p = value; p && *p;) {
		size_t n = strcspn(p, "\n");
		const char *s = p;
		p += n;
		p += *p == '\n';
		line++;
		while (n && is_space(*s))
			s++, n--;
		if (!n || s[0] == '#')
			continue;
		struct hook_cmd *c = list_add(list);
		c->line = line;
		if (parse_line(s, n, placed, c, ret_why) < 0) {
			hook_cmd_release(c);
			list->nr--;
			*ret_line = line;
			return -EINVAL;
		}
	}
	return 0;
}

void hook_list_release(struct hook_list *list)
{
	for (size_t i = 0; i < list->nr; i++)
		hook_cmd_release(&list->v[i]);
	free(list->v);
	*list = (struct hook_list)HOOK_LIST_INIT;
}
