/* lifeboat ls TIMESTAMP [PATH] [--json]: the sources and files in a backup, read from it. */
#include "common.h"

#include <jansson.h>
#include <sys/stat.h>
#include <time.h>

#include "cmd.h"
#include "log.h"
#include "parse.h"
#include "stores/store.h"
#include "restore.h"
#include "stores/store.h"
#include "strbuf.h"
#include "xalloc.h"

/* Control characters and backslashes escaped C-style: one entry is one line. */
static void add_escaped(struct strbuf *out, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '\\')
			strbuf_addstr(out, "\\\\");
		else if (*p == '\n')
			strbuf_addstr(out, "\\n");
		else if (*p == '\t')
			strbuf_addstr(out, "\\t");
		else if (*p < 0x20 || *p == 0x7f)
			strbuf_addf(out, "\\x%02x", *p);
		else
			strbuf_addch(out, (char)*p);
	}
}

static const char *escaped(struct strbuf *sb, const char *s)
{
	strbuf_reset(sb);
	add_escaped(sb, s);
	return sb->buf;
}

/* A JSON string for a name: as is when it is UTF-8, else with its bytes escaped. */
static json_t *json_name(const char *s)
{
	if (utf8_valid(s))
		return json_string(s);
	struct strbuf sb = STRBUF_INIT;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p >= 0x80 || *p == '\\')
			strbuf_addf(&sb, "\\x%02x", *p);
		else
			strbuf_addch(&sb, (char)*p);
	json_t *j = json_string(sb.buf);
	strbuf_release(&sb);
	return j;
}

static json_t *json_hex(const char *s)
{
	struct strbuf sb = STRBUF_INIT;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		strbuf_addf(&sb, "%02x", *p);
	json_t *j = json_string(sb.buf);
	strbuf_release(&sb);
	return j;
}

static const char *type_word(mode_t mode)
{
	return S_ISDIR(mode) ? "dir" : S_ISLNK(mode) ? "symlink" : S_ISREG(mode) ? "file" : "other";
}

static void mode_string(mode_t mode, char buf[11])
{
	static const char rwx[] = "rwxrwxrwx";

	buf[0] = S_ISDIR(mode) ? 'd' : S_ISLNK(mode) ? 'l' : S_ISREG(mode) ? '-' : '?';
	for (int i = 0; i < 9; i++)
		buf[1 + i] = mode & (0400u >> i) ? rwx[i] : '-';
	if (mode & S_ISUID)
		buf[3] = mode & 0100 ? 's' : 'S';
	if (mode & S_ISGID)
		buf[6] = mode & 0010 ? 's' : 'S';
	if (mode & S_ISVTX)
		buf[9] = mode & 0001 ? 't' : 'T';
	buf[10] = '\0';
}

/* Does `path` equal `prefix` or lie below it? */
static bool path_under(const char *path, const char *prefix)
{
	size_t n = strlen(prefix);
	return !strncmp(path, prefix, n) && (path[n] == '\0' || path[n] == '/');
}

/* PATH names a source (NAME or KIND/NAME) or a path in one (NAME/sub, KIND/NAME/sub). */
static bool matches(const struct restore_item *it, const char *filter)
{
	if (!filter)
		return true;
	const char *no_kind = strchr(it->path, '/');
	return path_under(it->path, filter) || (no_kind && path_under(no_kind + 1, filter));
}

static void print_json(const struct restore_listing *l, const char *filter)
{
	json_t *arr = json_array();

	for (size_t i = 0; i < l->nr; i++) {
		const struct restore_item *it = &l->v[i];
		const struct manifest_source *ms = &l->sources[it->source];
		if (!matches(it, filter))
			continue;
		json_t *o = json_object();
		char mode[8], when[64];
		struct tm tm;
		time_t t = it->mtime.tv_sec;
		gmtime_r(&t, &tm);
		size_t n = strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
		snprintf(when + n, sizeof(when) - n, ".%09ldZ", (long)it->mtime.tv_nsec);
		snprintf(mode, sizeof(mode), "%04o", (unsigned)(it->mode & 07777));
		json_object_set_new(o, "path", json_name(it->path));
		if (!utf8_valid(it->path))
			json_object_set_new(o, "path_hex", json_hex(it->path));
		json_object_set_new(o, "source", json_string(ms->name));
		json_object_set_new(o, "kind", json_string(source_kind_str(ms->kind)));
		json_object_set_new(o, "type", json_string(type_word(it->mode)));
		json_object_set_new(o, "size", json_integer((json_int_t)it->size));
		json_object_set_new(o, "mode", json_string(mode));
		json_object_set_new(o, "uid", json_integer((json_int_t)it->uid));
		json_object_set_new(o, "gid", json_integer((json_int_t)it->gid));
		json_object_set_new(o, "mtime", json_string(when));
		json_object_set_new(o, "mtime_ns",
				    json_integer((json_int_t)it->mtime.tv_sec * 1000000000 +
						 it->mtime.tv_nsec));
		if (it->link)
			json_object_set_new(o, "link", json_name(it->link));
		json_array_append_new(arr, o);
	}
	char *text = json_dumps(arr, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	printf("%s\n", text);
	free(text);
	json_decref(arr);
}

static void print_text(const struct config *cfg, const struct restore_listing *l,
		       const char *filter)
{
	struct strbuf a = STRBUF_INIT, b = STRBUF_INIT;

	printf("%-20s %-8s %-36s %s\n", "SOURCE", "KIND", "BACKED UP FROM", "RESTORES TO");
	for (size_t i = 0; i < l->nr_sources; i++) {
		const struct manifest_source *ms = &l->sources[i];
		const struct source_spec *cs = config_find_source(cfg, ms->kind, ms->name);
		bool shown = !filter;
		for (size_t k = 0; !shown && k < l->nr; k++)
			shown = l->v[k].source == i && matches(&l->v[k], filter);
		if (shown)
			printf("%-20s %-8s %-36s %s\n", ms->name, source_kind_str(ms->kind),
			       escaped(&a, ms->path),
			       cs ? escaped(&b, cs->path) : "(not configured now: skipped)");
	}
	printf("\n%-10s %11s %12s  %-19s  %s\n", "MODE", "UID:GID", "SIZE", "MODIFIED", "PATH");
	for (size_t i = 0; i < l->nr; i++) {
		const struct restore_item *it = &l->v[i];
		if (!matches(it, filter))
			continue;
		char mode[11], ids[32], when[32];
		struct tm tm;
		time_t t = it->mtime.tv_sec;
		localtime_r(&t, &tm);
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
		mode_string(it->mode, mode);
		snprintf(ids, sizeof(ids), "%lld:%lld", (long long)it->uid, (long long)it->gid);
		printf("%-10s %11s %12llu  %-19s  %s%s%s\n", mode, ids,
		       (unsigned long long)it->size, when, escaped(&a, it->path),
		       it->link ? " -> " : "", it->link ? escaped(&b, it->link) : "");
	}
	strbuf_release(&a);
	strbuf_release(&b);
}

static int run(int argc, char **argv)
{
	struct restore_listing listing = { 0 };
	struct restore_opts opts = { .mode = RESTORE_LIST, .listing = &listing };
	struct config cfg = CONFIG_INIT;
	struct store_entry entry = { 0 };
	struct restore_stats stats = { 0 };
	struct store_set set = { 0 };
	struct store *store = NULL;
	struct err e = ERR_INIT;
	const char *what = NULL, *from = NULL, *key_file = NULL;
	char *filter = NULL;
	bool json = false;
	int rc;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json")) {
			json = true;
		} else if (!strcmp(argv[i], "--from") || !strncmp(argv[i], "--from=", 7)) {
			from = argv[i][6] == '=' ? argv[i] + 7 : i + 1 < argc ? argv[++i] : "";
			if (!store_kind_find(from)) {
				struct strbuf names = STRBUF_INIT;
				store_kinds_list(&names, false, " or ");
				fprintf(stderr, "lifeboat ls: --from takes %s\n%s", names.buf,
					cmd_ls.usage);
				strbuf_release(&names);
				free(filter);
				return LB_EXIT_USAGE;
			}
		} else if (!strcmp(argv[i], "--key-file") || !strncmp(argv[i], "--key-file=", 11)) {
			key_file = argv[i][10] == '=' ? argv[i] + 11
				   : i + 1 < argc     ? argv[++i]
						      : "";
			if (!*key_file) {
				fprintf(stderr, "lifeboat ls: --key-file takes a file\n%s",
					cmd_ls.usage);
				free(filter);
				return LB_EXIT_USAGE;
			}
		} else if (argv[i][0] == '-' || (what && filter)) {
			fprintf(stderr, "lifeboat ls: unexpected argument '%s'\n%s", argv[i],
				cmd_ls.usage);
			free(filter);
			return LB_EXIT_USAGE;
		} else if (!what) {
			what = argv[i];
		} else {
			filter = xstrdup(argv[i]);
			size_t n = strlen(filter);
			while (n > 1 && filter[n - 1] == '/')
				filter[--n] = '\0';
		}
	}
	if (!what) {
		fprintf(stderr, "lifeboat ls: which backup? give its TIMESTAMP\n%s", cmd_ls.usage);
		return LB_EXIT_USAGE;
	}
	rc = cmd_load_config(&cfg, NEED_STORE | NEED_VERIFY_KEYS);
	if (!rc && key_file)
		rc = cmd_key_file(&cfg, key_file, "ls");
	if (rc)
		goto out;
	if (store_set_open(&cfg, &set, &e) < 0 || (from && store_set_only(&set, from, &e) < 0) ||
	    restore_find(&set, what, &entry, &store, &e) < 0 ||
	    restore_run(&cfg, store, &entry, &opts, &stats, &e) < 0) {
		rc = cmd_fail(&e);
		goto out;
	}
	bool any = !filter;
	for (size_t i = 0; !any && i < listing.nr; i++)
		any = matches(&listing.v[i], filter);
	if (!any) {
		err_set(&e, LB_EXIT_NOT_FOUND,
			"backup '%s' holds nothing at '%s' (a source name, or a path in one, as "
			"'lifeboat ls %s' shows)",
			entry.file, filter, what);
		rc = cmd_fail(&e);
		goto out;
	}
	if (json)
		print_json(&listing, filter);
	else
		print_text(&cfg, &listing, filter);
out:
	free(filter);
	restore_listing_release(&listing);
	free(entry.file);
	store_set_release(&set);
	config_release(&cfg);
	return rc;
}

const struct command cmd_ls = {
	.name = "ls",
	.summary = "list the sources and files in a backup",
	.usage = "usage: lifeboat ls TIMESTAMP [PATH] [--json] [--from STORE] [--key-file FILE]\n\n"
		 "Decrypts backup TIMESTAMP and lists its sources (name, kind, where each was\n"
		 "backed up from and where a restore would put it now) and every entry: mode,\n"
		 "owner, size, modification time and path as 'restore --to' writes it\n"
		 "(dirs/NAME/..., files/NAME/FILE, postgres/NAME/DB.pgdump, mongodb/NAME/...,\n"
		 "mysql/NAME/DB.sql; a database dump stored in parts is one file). Nothing is\n"
		 "shown unless every checksum matched. Times are in TZ. Control characters\n"
		 "and backslashes in names are escaped (\\n, \\t, \\\\, \\xNN).\n\n"
		 "  PATH          only what lies at or below PATH: a source name (data), a path\n"
		 "                in one (data/sub/file.txt) or an archive path (dirs/data/sub);\n"
		 "                nothing there exits 8\n"
		 "  --json        a JSON array, one object per entry: path, source, kind, type\n"
		 "                (file, dir, symlink), size, mode (\"0644\"), uid, gid, mtime\n"
		 "                (UTC, ISO 8601 with nanoseconds), mtime_ns, link (symlinks);\n"
		 "                a name that is not UTF-8 has its bytes above 0x7f and its\n"
		 "                backslashes escaped as \\xNN, and path_hex holds them all\n"
		 "  --from STORE  read the backup from this store only: local, s3, sftp, webdav\n"
		 "                or rclone\n"
		 "  --key-file F  the OpenPGP private key or age identity that opens it\n",
	.run = run,
};
