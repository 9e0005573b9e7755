/* The tar reader: entries out of an archive, checked, hashed; database members joined. */
#include "common.h"

#include <archive_entry.h>

#include "fs.h"
#include "progress.h"
#include "signals.h"
#include "strbuf.h"
#include "stream/decoder.h"
#include "stream/member-sink.h"
#include "stream/tar-reader.h"
#include "xalloc.h"

int tar_reader_open(const struct config *cfg, struct store *store, const struct store_entry *entry,
		    struct crypt *crypt, int *fd, struct archive **in, struct err *e)
{
	int in_fd;

	if (store->ops->get_open(store, entry->file, fd, e) < 0)
		return -1;
	in_fd = *fd;
	if (entry->id.encrypted) {
		if (crypt_decrypt_start(crypt, &cfg->crypt, naming_encryption(&entry->id), *fd, e) <
		    0)
			return -1;
		close_fd(fd);
		in_fd = crypt_output_fd(crypt);
	}
	*in = archive_read_new();
	archive_read_support_filter_all(*in);
	archive_read_support_format_tar(*in);
	/* gzip and zstd are decoded on a thread of their own (stream/decoder.c). */
	int r = decoder_open(*in, in_fd, e);
	if (r == -1 && err_isset(e))
		return -1;
	if (r != ARCHIVE_OK)
		return err_set(e, LB_EXIT_INTEGRITY, "backup '%s' is damaged or truncated: %s",
			       entry->file, archive_error_string(*in));
	return 0;
}

int tar_reader_check_signature(const struct config *cfg, struct store *store,
			       const struct store_entry *entry, struct err *e)
{
	struct strbuf sig = STRBUF_INIT;
	struct err ge = ERR_INIT;
	char buf[4096];
	int fd = -1, ret = -1;
	ssize_t n;

	if (!cfg->crypt.verify_keys.len)
		return 0;
	char *sig_file = xasprintf("%s%s", entry->file, STORE_SIG_SUFFIX);
	if (store->ops->get_open(store, sig_file, &fd, &ge) < 0) {
		if (ge.code == LB_EXIT_NOT_FOUND)
			err_set(e, LB_EXIT_INTEGRITY,
				"backup '%s' has no signature ('%s'), and BACKUP_VERIFY_KEYS "
				"requires one: refusing it",
				entry->file, sig_file);
		else
			err_copy(e, &ge);
		goto out;
	}
	while ((n = read_retry(fd, buf, sizeof(buf))) > 0 && sig.len <= 65536)
		strbuf_add(&sig, buf, (size_t)n);
	close_fd(&fd);
	if (n < 0 || !sig.len || sig.len > 65536) {
		err_set(e, LB_EXIT_INTEGRITY, "cannot read the signature '%s'%s", sig_file,
			sig.len > 65536 ? ": larger than 64 KiB" : "");
		goto out;
	}
	/* A whole pass over the archive before the one that restores: nothing read is used. */
	if (store->ops->get_open(store, entry->file, &fd, e) < 0)
		goto out;
	ret = crypt_verify_signature(&cfg->crypt, &sig, fd, entry->file, e);
out:
	close_fd(&fd);
	free(sig_file);
	strbuf_release(&sig);
	return ret;
}

/* Reject absolute paths and empty, "." or ".." components. */
bool tar_path_safe(const char *p)
{
	if (!*p || *p == '/')
		return false;
	for (;;) {
		const char *end = strchrnul(p, '/');
		size_t n = (size_t)(end - p);
		if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return false;
		if (!*end)
			return true;
		p = end + 1;
		if (!*p)
			return true; /* a trailing slash on a directory */
	}
}

/* "REL.000042": a part of a member cut by the backup's member sink. */
bool tar_part_index(const char *rel, unsigned *idx)
{
	size_t n = strlen(rel);

	if (n <= DB_PART_SUFFIX_LEN || rel[n - DB_PART_SUFFIX_LEN] != '.')
		return false;
	const char *d = rel + n - DB_PART_SUFFIX_LEN + 1;
	if (strspn(d, "0123456789") != DB_PART_SUFFIX_LEN - 1)
		return false;
	*idx = (unsigned)strtoul(d, NULL, 10);
	return true;
}

int tar_read_data(struct archive *in, const char *apath, tar_data_fn *fn, void *ctx,
		  char hex[SHA256_HEX_LEN + 1], uint64_t *ret_size, struct err *e)
{
	static const unsigned char zeros[4096];
	struct sha256 h;
	la_int64_t pos = 0;

	sha256_init(&h);
	for (;;) {
		const void *buf;
		size_t n;
		la_int64_t off;
		int r = archive_read_data_block(in, &buf, &n, &off);
		if (r == ARCHIVE_EOF)
			break;
		if (r != ARCHIVE_OK) {
			sha256_release(&h);
			return err_set(e, LB_EXIT_INTEGRITY,
				       "cannot read '%s' from the archive: %s", apath,
				       archive_error_string(in));
		}
		while (pos < off) {
			size_t z = off - pos > (la_int64_t)sizeof(zeros) ? sizeof(zeros)
									 : (size_t)(off - pos);
			sha256_update(&h, zeros, z);
			if (fn && fn(ctx, zeros, z, pos, true, e) < 0) {
				sha256_release(&h);
				return -1;
			}
			pos += (la_int64_t)z;
		}
		sha256_update(&h, buf, n);
		pos += (la_int64_t)n;
		progress_add(n);
		if (fn && fn(ctx, buf, n, off, false, e) < 0) {
			sha256_release(&h);
			return -1;
		}
		if (signals_pending()) {
			sha256_release(&h);
			return err_set(e, LB_EXIT_INTERRUPTED, "interrupted by signal %d",
				       signals_pending());
		}
	}
	sha256_final_hex(&h, hex);
	*ret_size = (uint64_t)pos;
	progress_file();
	return 0;
}

int tar_read_all(struct archive *in, const char *name, struct strbuf *out, struct err *e)
{
	for (;;) {
		char buf[65536];
		la_ssize_t n = archive_read_data(in, buf, sizeof(buf));
		if (n < 0)
			return err_set(e, LB_EXIT_INTEGRITY, "cannot read %s: %s", name,
				       archive_error_string(in));
		if (n == 0)
			return 0;
		strbuf_add(out, buf, (size_t)n);
	}
}

void member_reader_init(struct member_reader *r, struct archive *in, const char *prefix,
			const char *rel)
{
	unsigned idx;

	*r = (struct member_reader){ .in = in, .prefix = prefix };
	if (tar_part_index(rel, &idx) && idx == 0) {
		r->base = xstrndup(rel, strlen(rel) - DB_PART_SUFFIX_LEN);
		r->parted = true;
		r->next_part = 1;
	} else {
		r->base = xstrdup(rel);
	}
}

ssize_t member_read(struct member_reader *r, void *buf, size_t len, struct err *e)
{
	if (r->eof)
		return 0;
	for (;;) {
		if (signals_pending())
			return err_set(e, LB_EXIT_INTERRUPTED, "interrupted by signal %d",
				       signals_pending());
		la_ssize_t n = archive_read_data(r->in, buf, len);
		if (n < 0)
			return err_set(e, LB_EXIT_INTEGRITY, "cannot read '%s/%s': %s", r->prefix,
				       r->base, archive_error_string(r->in));
		if (n > 0) {
			if (r->check) {
				sha256_update(&r->h, buf, (size_t)n);
				r->part_size += (uint64_t)n;
			}
			progress_add((uint64_t)n);
			return n;
		}
		if (r->check && r->part_path) {
			char hex[SHA256_HEX_LEN + 1];
			sha256_final_hex(&r->h, hex);
			r->check->part_end(r->check_ctx, r->part_path, hex, r->part_size);
			free(r->part_path);
			r->part_path = NULL;
		}
		r->eof = true;
		if (!r->parted)
			return 0;
		struct archive_entry *ent;
		int rc = archive_read_next_header(r->in, &ent);
		if (rc == ARCHIVE_EOF) {
			r->archive_eof = true;
			return 0;
		}
		if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN)
			return err_set(e, LB_EXIT_INTEGRITY, "cannot read the archive: %s",
				       archive_error_string(r->in));
		char *want = xasprintf("%s/%s.%06u", r->prefix, r->base, r->next_part);
		if (strcmp(archive_entry_pathname(ent), want)) {
			free(want);
			r->pending = ent;
			return 0;
		}
		if (r->check) {
			if (r->check->part_begin(r->check_ctx, want, ent, e) < 0) {
				free(want);
				return -1;
			}
			r->part_path = want;
			r->part_size = 0;
			sha256_init(&r->h);
		} else {
			free(want);
		}
		r->next_part++;
		r->eof = false;
	}
}

int member_skip(struct member_reader *r, struct err *e)
{
	char buf[65536];
	ssize_t n;

	while ((n = member_read(r, buf, sizeof(buf), e)) > 0)
		;
	return n < 0 ? -1 : 0;
}

void member_reader_verify(struct member_reader *r, const char *path, const struct part_check *c,
			  void *ctx)
{
	r->check = c;
	r->check_ctx = ctx;
	r->part_path = xstrdup(path);
	r->part_size = 0;
	sha256_init(&r->h);
}

void member_reader_release(struct member_reader *r)
{
	if (r->part_path) {
		sha256_release(&r->h);
		free(r->part_path);
		r->part_path = NULL;
	}
	free(r->base);
	r->base = NULL;
}

bool parts_continue(struct part_tracker *t, const void *src, const char *rel, char **ret_name)
{
	unsigned idx;

	if (tar_part_index(rel, &idx)) {
		size_t n = strlen(rel) - DB_PART_SUFFIX_LEN;
		if (idx > 0 && t->src == src && idx == t->next && strlen(t->base) == n &&
		    !strncmp(rel, t->base, n)) {
			t->next++;
			*ret_name = xstrdup(t->base);
			return true;
		}
		if (idx == 0) {
			free(t->base);
			t->base = xstrndup(rel, n);
			t->src = src;
			t->next = 1;
			*ret_name = xstrdup(t->base);
			return false;
		}
	}
	free(t->base);
	t->base = NULL;
	t->src = NULL;
	*ret_name = xstrdup(rel);
	return false;
}

void part_tracker_release(struct part_tracker *t)
{
	free(t->base);
	*t = (struct part_tracker){ 0 };
}

/*
 * Why the disk writer failed: its text ("Write failed") and the system's reason, kept in
 * archive_errno() ("No space left on device"). Returns a static buffer.
 */
const char *tar_disk_cause(struct archive *a)
{
	static char buf[512];
	const char *what = archive_error_string(a);
	int en = archive_errno(a);

	const char *reason = en > 0 ? strerror(en) : NULL;

	if (!reason)
		return what ? what : "unknown error";
	if (what && strstr(what, reason))
		return what;
	if (!what || !strcmp(what, "Write failed"))
		return reason;
	snprintf(buf, sizeof(buf), "%s: %s", what, reason);
	return buf;
}

int tar_disk_open(const char *dir, int dfd, struct archive **ret, struct err *e)
{
	int flags = ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_SECURE_SYMLINKS |
		    ARCHIVE_EXTRACT_SECURE_NODOTDOT | ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS;

	if (geteuid() == 0)
		flags |= ARCHIVE_EXTRACT_OWNER;
	if ((dfd >= 0 ? fchdir(dfd) : chdir(dir)) < 0)
		return err_set(e, LB_EXIT_SOURCE, "cannot enter '%s': %s", dir, strerror(errno));
	*ret = archive_write_disk_new();
	archive_write_disk_set_options(*ret, flags);
	return 0;
}

void owner_loss_note(struct owner_loss *o, struct archive_entry *ent, const char *path)
{
	if (geteuid() == 0)
		return;
	if ((uid_t)archive_entry_uid(ent) == geteuid() &&
	    (gid_t)archive_entry_gid(ent) == getegid())
		return;
	if (!o->n++) {
		o->first = xstrdup(path);
		o->uid = (long long)archive_entry_uid(ent);
		o->gid = (long long)archive_entry_gid(ent);
	}
}

void owner_loss_report(struct owner_loss *o, const struct reporter *r, const char *what)
{
	if (o->n && what)
		report(r, LOG_WARN,
		       "%s: restored as uid %ld, not root, which cannot set owners: %lu "
		       "entr%s recorded with other owners (first '%s', %lld:%lld) get%s the owner "
		       "%ld:%ld; restore as root to keep the owners",
		       what, (long)geteuid(), o->n, o->n == 1 ? "y" : "ies", o->first, o->uid,
		       o->gid, o->n == 1 ? "s" : "", (long)geteuid(), (long)getegid());
	free(o->first);
	*o = (struct owner_loss){ 0 };
}

int tar_disk_close(struct archive **disk, const char *target, int cwd_fd, struct err *e)
{
	int ret = 0;

	if (!*disk)
		return 0;
	if (archive_write_close(*disk) != ARCHIVE_OK)
		ret = err_set(e, LB_EXIT_SOURCE, "cannot finish restoring '%s': %s", target,
			      tar_disk_cause(*disk));
	archive_write_free(*disk);
	*disk = NULL;
	if (fchdir(cwd_fd) < 0 && !ret)
		ret = err_set(e, LB_EXIT_INTERNAL, "cannot return to the working directory: %s",
			      strerror(errno));
	return ret;
}
