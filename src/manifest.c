/* Manifest JSON (jansson) and SHA256SUMS lines: pure functions over buffers. */
#include "common.h"

#include <jansson.h>

#include "manifest.h"
#include "strbuf.h"
#include "xalloc.h"

void manifest_add_source(struct manifest *m, enum source_kind kind, const char *name,
			 const char *path)
{
	m->sources = xrealloc(m->sources, (m->nr_sources + 1) * sizeof(*m->sources));
	m->sources[m->nr_sources++] = (struct manifest_source){
		.kind = kind,
		.name = xstrdup(name),
		.path = xstrdup(path),
	};
}

/* Strings here come from validated config (UTF-8); anything else is a programmer error. */
static json_t *jstr(const char *s)
{
	json_t *j = json_string(s ? s : "");

	if (!j)
		abort();
	return j;
}

void manifest_to_json(const struct manifest *m, struct strbuf *out)
{
	json_t *root = json_object();
	json_t *srcs = json_array();

	json_object_set_new(root, "format", json_string("lifeboat-archive"));
	json_object_set_new(root, "format_version", json_integer(m->format_version));
	json_object_set_new(root, "lifeboat_version", jstr(m->lifeboat_version));
	json_object_set_new(root, "name", jstr(m->name));
	json_object_set_new(root, "timestamp", jstr(m->timestamp));
	json_object_set_new(root, "created", jstr(m->created));
	json_object_set_new(root, "host", jstr(m->host));
	json_object_set_new(root, "compression", jstr(m->compression));
	json_object_set_new(root, "encryption", jstr(m->encryption));
	for (size_t i = 0; i < m->nr_sources; i++) {
		const struct manifest_source *s = &m->sources[i];
		char *prefix = source_archive_prefix(s->kind, s->name);
		json_t *o = json_object();
		json_object_set_new(o, "kind", json_string(source_kind_str(s->kind)));
		json_object_set_new(o, "name", jstr(s->name));
		json_object_set_new(o, "path", jstr(s->path));
		json_object_set_new(o, "archive_path", json_string(prefix));
		if (s->sqlite)
			json_object_set_new(o, "format", json_string("sqlite"));
		if (s->server_version)
			json_object_set_new(o, "server_version", jstr(s->server_version));
		json_array_append_new(srcs, o);
		free(prefix);
	}
	json_object_set_new(root, "sources", srcs);
	char *text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	strbuf_addstr(out, text);
	strbuf_addch(out, '\n');
	free(text);
	json_decref(root);
}

static char *get_str(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	return json_is_string(v) ? xstrdup(json_string_value(v)) : NULL;
}

int manifest_from_json(const char *buf, size_t len, struct manifest *m, struct err *e)
{
	json_error_t jerr;
	json_t *root = json_loadb(buf, len, 0, &jerr);
	int ret = -1;

	if (!root) {
		/* jansson quotes the offending bytes: a message stays one line. */
		for (char *c = jerr.text; *c; c++)
			if ((unsigned char)*c < 0x20 || *c == 0x7f)
				*c = '?';
		return err_set(e, LB_EXIT_INTEGRITY,
			       "manifest.json is not valid JSON: %s (line %d)", jerr.text,
			       jerr.line);
	}
	if (!json_is_object(root)) {
		err_set(e, LB_EXIT_INTEGRITY, "manifest.json is not a JSON object");
		goto out;
	}
	json_t *fv = json_object_get(root, "format_version");
	if (!json_is_integer(fv) || json_integer_value(fv) < 1) {
		err_set(e, LB_EXIT_INTEGRITY, "manifest.json has no valid format_version");
		goto out;
	}
	if (json_integer_value(fv) > MANIFEST_FORMAT_VERSION) {
		err_set(e, LB_EXIT_INTEGRITY,
			"archive format version %lld is newer than this lifeboat understands (%d): "
			"upgrade lifeboat",
			(long long)json_integer_value(fv), MANIFEST_FORMAT_VERSION);
		goto out;
	}
	m->format_version = (int)json_integer_value(fv);
	m->lifeboat_version = get_str(root, "lifeboat_version");
	m->name = get_str(root, "name");
	m->timestamp = get_str(root, "timestamp");
	m->created = get_str(root, "created");
	m->host = get_str(root, "host");
	m->compression = get_str(root, "compression");
	m->encryption = get_str(root, "encryption");

	json_t *srcs = json_object_get(root, "sources");
	if (!json_is_array(srcs)) {
		err_set(e, LB_EXIT_INTEGRITY, "manifest.json has no 'sources' list");
		goto out;
	}
	size_t i;
	json_t *o;
	json_array_foreach (srcs, i, o) {
		const char *kind = json_string_value(json_object_get(o, "kind"));
		const char *name = json_string_value(json_object_get(o, "name"));
		const char *path = json_string_value(json_object_get(o, "path"));
		enum source_kind k;
		if (!kind || source_kind_parse(kind, &k) < 0 || !name || !path ||
		    !config_name_valid(name) ||
		    (!source_is_db(k) &&
		     (path[0] != '/' || strstr(path, "/../") ||
		      (strlen(path) >= 3 && !strcmp(path + strlen(path) - 3, "/..")))) ||
		    (source_is_db(k) && !strstr(path, "://"))) {
			err_set(e, LB_EXIT_INTEGRITY, "manifest.json source %zu is malformed", i);
			goto out;
		}
		for (size_t j = 0; j < m->nr_sources; j++) {
			if ((source_is_db(k) ? m->sources[j].kind == k
					     : !source_is_db(m->sources[j].kind)) &&
			    !strcmp(m->sources[j].name, name)) {
				err_set(e, LB_EXIT_INTEGRITY,
					"manifest.json names source '%s' twice", name);
				goto out;
			}
		}
		const char *format = json_string_value(json_object_get(o, "format"));
		if (format && (strcmp(format, "sqlite") || k != SOURCE_FILE)) {
			err_set(e, LB_EXIT_INTEGRITY,
				"manifest.json source '%s' has an unknown format '%s': upgrade "
				"lifeboat",
				name, format);
			goto out;
		}
		manifest_add_source(m, k, name, path);
		m->sources[m->nr_sources - 1].sqlite = format != NULL;
		const char *sv = json_string_value(json_object_get(o, "server_version"));
		if (sv)
			m->sources[m->nr_sources - 1].server_version = xstrdup(sv);
	}
	/* What names the archive: a restore checks both against the file it read. */
	if (!m->name || !m->timestamp) {
		err_set(e, LB_EXIT_INTEGRITY, "manifest.json has no %s",
			m->name ? "'timestamp'" : "'name'");
		goto out;
	}
	ret = 0;
out:
	json_decref(root);
	return ret;
}

void manifest_release(struct manifest *m)
{
	free(m->lifeboat_version);
	free(m->name);
	free(m->timestamp);
	free(m->created);
	free(m->host);
	free(m->compression);
	free(m->encryption);
	for (size_t i = 0; i < m->nr_sources; i++) {
		free(m->sources[i].name);
		free(m->sources[i].path);
		free(m->sources[i].server_version);
	}
	free(m->sources);
	*m = (struct manifest)MANIFEST_INIT;
}

void sums_add(struct strbuf *sums, const char hex[SHA256_HEX_LEN + 1], const char *path)
{
	bool escape = strpbrk(path, "\\\n\r") != NULL;

	if (escape)
		strbuf_addch(sums, '\\');
	strbuf_add(sums, hex, SHA256_HEX_LEN);
	strbuf_addstr(sums, "  ");
	for (const char *p = path; *p; p++) {
		if (escape && *p == '\\')
			strbuf_addstr(sums, "\\\\");
		else if (escape && *p == '\n')
			strbuf_addstr(sums, "\\n");
		else if (escape && *p == '\r')
			strbuf_addstr(sums, "\\r");
		else
			strbuf_addch(sums, *p);
	}
	strbuf_addch(sums, '\n');
}

/* The path part of a sums line (still escaped), for messages. */
static void line_path(const char *line, size_t len, struct strbuf *out)
{
	size_t off = (line[0] == '\\' ? 1 : 0) + SHA256_HEX_LEN + 2;
	strbuf_reset(out);
	if (len > off)
		strbuf_add(out, line + off, len - off);
}

int sums_compare(const struct strbuf *recorded, const struct strbuf *computed,
		 struct strbuf *detail)
{
	const char *a = recorded->buf, *b = computed->buf;
	const char *aend = a + recorded->len, *bend = b + computed->len;
	struct strbuf pa = STRBUF_INIT, pb = STRBUF_INIT;
	int ret = 0;

	while (a < aend || b < bend) {
		const char *na = memchr(a, '\n', (size_t)(aend - a));
		const char *nb = memchr(b, '\n', (size_t)(bend - b));
		size_t la = na ? (size_t)(na - a) : (size_t)(aend - a);
		size_t lb = nb ? (size_t)(nb - b) : (size_t)(bend - b);

		if (a >= aend) {
			line_path(b, lb, &pb);
			strbuf_addf(detail, "'%s' is in the archive but not in its SHA256SUMS",
				    pb.buf);
			ret = -1;
			break;
		}
		if (b >= bend) {
			line_path(a, la, &pa);
			strbuf_addf(detail,
				    "'%s' is listed in SHA256SUMS but missing from the archive",
				    pa.buf);
			ret = -1;
			break;
		}
		if (la != lb || memcmp(a, b, la)) {
			line_path(a, la, &pa);
			line_path(b, lb, &pb);
			if (!strcmp(pa.buf, pb.buf))
				strbuf_addf(detail, "checksum mismatch for '%s'", pa.buf);
			else
				strbuf_addf(detail,
					    "SHA256SUMS lists '%s' where the archive has '%s'",
					    pa.buf, pb.buf);
			ret = -1;
			break;
		}
		a += la + 1;
		b += lb + 1;
	}
	strbuf_release(&pa);
	strbuf_release(&pb);
	return ret;
}
