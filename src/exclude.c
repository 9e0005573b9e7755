/* BACKUP_EXCLUDE's patterns: parsing and matching (exclude.h has the rules). */
#include "common.h"

#include <fnmatch.h>

#include "exclude.h"
#include "strbuf.h"
#include "xalloc.h"

static bool is_name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '_' || c == '-';
}

/* Why component `c` is not a valid pattern component, or NULL. */
static const char *bad_component(const char *c)
{
	if (!*c)
		return "it has an empty path component ('//')";
	if (!strcmp(c, ".") || !strcmp(c, ".."))
		return "'.' and '..' components are not allowed";
	if (strstr(c, "**") && strcmp(c, "**"))
		return "'**' must be a whole path component ('**/x', 'a/**/b', 'a/**')";
	for (const char *p = c; *p; p++) {
		if (*p == '\\') {
			if (!*++p)
				return "it ends with an unescaped '\\'";
		} else if (*p == '[') {
			const char *q = p + 1;
			if (*q == '!' || *q == '^')
				q++;
			if (*q == ']')
				q++;
			while (*q && *q != ']')
				q++;
			if (!*q)
				return "it has a '[' without its ']'";
			p = q;
		}
	}
	return NULL;
}

static void rule_release(struct exclude_rule *r)
{
	free(r->text);
	free(r->source);
	for (size_t i = 0; i < r->nr; i++)
		free(r->comp[i]);
	free(r->comp);
}

static void push_comp(struct exclude_rule *r, const char *s, size_t n)
{
	r->comp = xrealloc(r->comp, (r->nr + 1) * sizeof(*r->comp));
	r->comp[r->nr++] = xstrndup(s, n);
}

/* One trimmed, non-empty entry. */
static int parse_one(struct exclude_list *l, const char *var, const char *entry, struct err *e)
{
	struct exclude_rule r = { .text = xstrdup(entry) };
	const char *pat = entry, *why = NULL;
	size_t k = 0;

	while (is_name_char(entry[k]))
		k++;
	if (k && entry[k] == ':') {
		r.source = xstrndup(entry, k);
		pat = entry + k + 1;
	}
	auto_free char *p = xstrdup(pat);
	size_t n = strlen(p);
	if (!n) {
		why = "the pattern after the source name is empty";
		goto bad;
	}
	if (p[0] == '!') {
		why = "'!' (negation) is not supported: write '\\!' for a name starting with '!'";
		goto bad;
	}
	if (n && p[n - 1] == '/') {
		r.dir_only = true;
		p[--n] = '\0';
	}
	const char *s = p;
	bool anchored = *s == '/';
	if (anchored)
		s++;
	if (!*s) {
		why = "it matches nothing (only '/')";
		goto bad;
	}
	anchored |= strchr(s, '/') != NULL;
	if (!anchored)
		push_comp(&r, "**", 2);
	for (;;) {
		size_t m = strcspn(s, "/");
		push_comp(&r, s, m);
		if ((why = bad_component(r.comp[r.nr - 1])))
			goto bad;
		if (!s[m])
			break;
		s += m + 1;
	}
	l->v = xrealloc(l->v, (l->nr + 1) * sizeof(*l->v));
	l->v[l->nr++] = r;
	return 0;
bad:
	err_set(e, LB_EXIT_CONFIG, "%s: pattern '%s' is invalid: %s", var, entry, why);
	rule_release(&r);
	return -1;
}

int exclude_parse(struct exclude_list *l, const char *var, const char *value, struct err *e)
{
	struct strbuf one = STRBUF_INIT;
	const char *p = value;
	int ret = 0;

	while (!ret && *p) {
		/* An entry ends at an unescaped comma or a newline. */
		const char *q = p;
		while (*q && *q != ',' && *q != '\n') {
			if (*q == '\\' && q[1] && q[1] != '\n')
				q++;
			q++;
		}
		const char *s = p, *t = q;
		while (s < t && strchr(" \t\r", *s))
			s++;
		while (t > s && strchr(" \t\r", t[-1]))
			t--;
		strbuf_reset(&one);
		/* `\,` is a comma; every other escape is the matcher's. */
		for (const char *c = s; c < t; c++) {
			if (c[0] == '\\' && c + 1 < t && c[1] == ',')
				c++;
			strbuf_addch(&one, *c);
		}
		if (one.len)
			ret = parse_one(l, var, one.buf, e);
		p = *q ? q + 1 : q;
	}
	strbuf_release(&one);
	return ret;
}

/* Do the pattern's components pc[0, np) match the path's rc[0, nr) exactly? */
static bool match_comps(char *const *pc, size_t np, char *const *rc, size_t nr)
{
	while (np) {
		if (!strcmp(pc[0], "**")) {
			/* Zero components, or one more and still at this `**`. */
			for (size_t skip = 0; skip <= nr; skip++)
				if (match_comps(pc + 1, np - 1, rc + skip, nr - skip))
					return true;
			return false;
		}
		if (!nr || fnmatch(pc[0], rc[0], 0) != 0)
			return false;
		pc++, np--, rc++, nr--;
	}
	return nr == 0;
}

static bool applies(const struct exclude_rule *r, const char *source)
{
	return !r->source || (source && !strcmp(r->source, source));
}

/* Split "a/b/c" in place into its components. */
static size_t split(char *s, char ***ret)
{
	size_t n = 1;
	for (char *p = s; *p; p++)
		n += *p == '/';
	char **v = xcalloc(n, sizeof(*v));
	size_t i = 0;
	for (;;) {
		v[i++] = s;
		char *p = strchr(s, '/');
		if (!p)
			break;
		*p = '\0';
		s = p + 1;
	}
	*ret = v;
	return i;
}

static bool match_split(const struct exclude_list *l, const char *source, char *const *rc,
			size_t nr, bool is_dir)
{
	for (size_t i = 0; i < l->nr; i++) {
		const struct exclude_rule *r = &l->v[i];
		if (applies(r, source) && (is_dir || !r->dir_only) &&
		    match_comps(r->comp, r->nr, rc, nr))
			return true;
	}
	return false;
}

bool exclude_match(const struct exclude_list *l, const char *source, const char *rel, bool is_dir)
{
	if (!l || !l->nr || !*rel)
		return false;
	auto_free char *copy = xstrdup(rel);
	auto_free char **rc = NULL;
	size_t nr = split(copy, &rc);
	return match_split(l, source, rc, nr, is_dir);
}

bool exclude_covers(const struct exclude_list *l, const char *source, const char *rel, bool is_dir)
{
	if (!l || !l->nr || !*rel)
		return false;
	auto_free char *copy = xstrdup(rel);
	auto_free char **rc = NULL;
	size_t nr = split(copy, &rc);
	for (size_t k = 1; k <= nr; k++)
		if (match_split(l, source, rc, k, k < nr || is_dir))
			return true;
	return false;
}

bool exclude_any(const struct exclude_list *l, const char *source)
{
	for (size_t i = 0; l && i < l->nr; i++)
		if (applies(&l->v[i], source))
			return true;
	return false;
}

void exclude_release(struct exclude_list *l)
{
	for (size_t i = 0; i < l->nr; i++)
		rule_release(&l->v[i]);
	free(l->v);
	*l = (struct exclude_list){ 0 };
}
