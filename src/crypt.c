/*
 * gpg or age as a subprocess: gpg in a private homedir with the passphrase (or age with its
 * recipients) on fd 3, status and stderr judged at the end.
 */
#include "common.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>

#include "crypt-internal.h"
#include "crypt.h"
#include "fault.h"
#include "fs.h"
#include "log.h"
#include "strbuf.h"
#include "strvec.h"
#include "xalloc.h"

static void stop_agent(const char *homedir)
{
	struct child k = CHILD_INIT;
	struct err ignored = ERR_INIT;

	strvec_push(&k.args, "gpgconf");
	strvec_pushf(&k.args, "--homedir=%s", homedir);
	strvec_push(&k.args, "--kill");
	strvec_push(&k.args, "gpg-agent");
	if (child_start(&k, LB_EXIT_CRYPTO, &ignored) == 0)
		child_finish(&k);
	child_release(&k);
}

#define HOME_PREFIX "lbgpg."
#define NEW_PREFIX  ".lbgpg-new."

/*
 * Homedirs are named lbgpg.PID.XXXXXX, and their run holds an flock on the
 * directory for as long as it uses it (the kernel drops it when the run dies).
 * One we can lock is stale, whatever its pid: in a restarted container that pid
 * often belongs to a live process. A homedir gets its name only once locked
 * (make_homedir), so a lockable one is never one being set up; one left under
 * its setup name by a run killed in those microseconds goes after a minute.
 */
static void remove_stale_homedirs(const char *tmp)
{
	DIR *d = opendir(tmp);
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d))) {
		bool setup = !strncmp(de->d_name, NEW_PREFIX, strlen(NEW_PREFIX));
		if (!setup && strncmp(de->d_name, HOME_PREFIX, strlen(HOME_PREFIX)))
			continue;
		int fd = openat(dirfd(d), de->d_name,
				O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		struct stat st;
		if (fd < 0)
			continue;
		if (fstat(fd, &st) == 0 && st.st_uid == geteuid() &&
		    (!setup || st.st_mtime < time(NULL) - 60) &&
		    flock(fd, LOCK_EX | LOCK_NB) == 0) {
			char *path = xasprintf("%s/%s", tmp, de->d_name);
			stop_agent(path);
			remove_tree(path);
			log_debug("removed '%s' left by a killed run", path);
			free(path);
		}
		close(fd);
	}
	closedir(d);
}

int crypt_make_homedir(struct crypt *c, struct err *e)
{
	const char *tmp = getenv("TMPDIR");
	char setup[sizeof(c->homedir)];

	/* gpg fails oddly with long homedir paths (socket names): keep it short. */
	if (!tmp || !*tmp || strlen(tmp) > 48)
		tmp = "/tmp";
	remove_stale_homedirs(tmp);
	snprintf(setup, sizeof(setup), "%s/" NEW_PREFIX "%d.XXXXXX", tmp, (int)getpid());
	if (!mkdtemp(setup))
		return err_set(e, LB_EXIT_CRYPTO, "cannot create a gpg home directory in '%s': %s",
			       tmp, strerror(errno));
	/*
	 * Locked before it is named as a homedir: see remove_stale_homedirs. Where
	 * the file system has no flock, no sweep can lock it either, so it is safe
	 * (and a killed run's homedir then stays, as it would anyway).
	 */
	c->home_fd = open(setup, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (c->home_fd < 0 || flock(c->home_fd, LOCK_EX | LOCK_NB) < 0)
		log_debug("cannot lock '%s': %s", setup, strerror(errno));
	snprintf(c->homedir, sizeof(c->homedir), "%s/" HOME_PREFIX "%d.%s", tmp, (int)getpid(),
		 setup + strlen(setup) - 6);
	if (rename(setup, c->homedir) < 0) {
		int saved = errno;
		rmdir(setup);
		close_fd(&c->home_fd);
		c->homedir[0] = '\0';
		return err_set(e, LB_EXIT_CRYPTO, "cannot create a gpg home directory in '%s': %s",
			       tmp, strerror(saved));
	}
	FAULT("crypt.homedir"); /* kill: a run that dies with its gpg home in TMPDIR */
	return 0;
}

/* A pipe already holding `len` bytes of `data` (a passphrase, recipients); the read end or -1. */
static int data_fd(const char *data, size_t len, struct err *e)
{
	int p[2];

	if (pipe2(p, O_CLOEXEC) < 0)
		return err_set(e, LB_EXIT_INTERNAL, "cannot create pipe: %s", strerror(errno));
	/*
	 * Written whole before the child starts: the pipe must hold it (a passphrase, keys,
	 * recipients: small), or the write would wait for a reader that is not there yet.
	 */
	if (len > 60000 && (len > 1024 * 1024 || fcntl(p[1], F_SETPIPE_SZ, (int)len + 4096) < 0)) {
		close(p[0]);
		close(p[1]);
		return err_set(e, LB_EXIT_CONFIG,
			       "%zu bytes of keys are more than a child can take "
			       "(at most 1 MiB)",
			       len);
	}
	int r = write_all(p[1], data, len);
	close(p[1]);
	if (r < 0) {
		close(p[0]);
		return err_set(e, LB_EXIT_INTERNAL, "cannot pass data to a child: %s",
			       strerror(-r));
	}
	return p[0];
}

/* A pipe holding the passphrase and its line end: gpg's --passphrase-fd. */
int crypt_passphrase_fd(const struct strbuf *key, const char *origin, struct err *e)
{
	struct strbuf line = STRBUF_INIT;

	if (key->len > 4096)
		return err_set(e, LB_EXIT_CONFIG, "%s is longer than 4096 bytes", origin);
	if (memchr(key->buf, '\n', key->len))
		return err_set(e, LB_EXIT_CONFIG,
			       "%s contains a line break: gpg would read only its first line",
			       origin);
	strbuf_add(&line, key->buf, key->len);
	strbuf_addch(&line, '\n');
	int fd = data_fd(line.buf, line.len, e);
	strbuf_release_secret(&line);
	return fd;
}

/* The arguments every gpg run here starts with. */
void crypt_gpg_args(struct crypt *c, struct strvec *a)
{
	strvec_push(a, "gpg");
	strvec_pushf(a, "--homedir=%s", c->homedir);
	strvec_push(a, "--batch");
	strvec_push(a, "--no-tty");
	strvec_push(a, "--quiet");
	strvec_push(a, "--no-options");
	strvec_push(a, "--no-symkey-cache");
	strvec_push(a, "--pinentry-mode=loopback");
}

int crypt_child_start(struct crypt *c, int in, int fd3, struct err *e)
{
	c->gpg.in = in;
	c->gpg.out = CHILD_PIPE;
	c->gpg.fd3 = fd3;
	int r = child_start(&c->gpg, LB_EXIT_CRYPTO, e);
	c->gpg.fd3 = -1;
	/*
	 * gpg reads and writes 8 KiB at a time: 1 MiB pipes where the system allows, so a
	 * writer into it fills more at once and the reader of its output can take more per
	 * read (backup.c's pump batches them, fs.h pipe_batch_wait). A backup's only:
	 * restore reads its own way. Measured on 1 GiB at load 1-3, against 64 KiB pipes:
	 * zstd 5.00 s against 5.65 s, gzip of random files the same within the spread
	 * (the pgzip writer's system time 1.46 s before, 0.35 s; bench/README.md).
	 */
	if (r == 0 && !c->decrypt && c->gpg.in_fd >= 0)
		fcntl(c->gpg.in_fd, F_SETPIPE_SZ, 1024 * 1024);
	if (r == 0 && !c->decrypt && c->gpg.out_fd >= 0)
		fcntl(c->gpg.out_fd, F_SETPIPE_SZ, 1024 * 1024);
	return r;
}

/* The last line of a tool's stderr that is neither a status line nor age's "report" advice. */
const char *crypt_err_summary(const struct strbuf *tail, struct strbuf *out)
{
	const char *p = tail->buf, *best = NULL;
	size_t best_len = 0;

	strbuf_reset(out);
	while (p && *p) {
		const char *nl = strchrnul(p, '\n');
		size_t n = (size_t)(nl - p);
		while (n && strchr(" \t\r", p[n - 1]))
			n--;
		if (n && strncmp(p, "[GNUPG:]", 8) && !memmem(p, n, "report unexpected", 17)) {
			best = p;
			best_len = n;
		}
		p = *nl ? nl + 1 : NULL;
	}
	if (best) {
		if (best_len > 5 && (!strncmp(best, "gpg: ", 5) || !strncmp(best, "age: ", 5))) {
			best += 5;
			best_len -= 5;
		}
		if (best_len > 7 && !strncmp(best, "error: ", 7)) {
			best += 7;
			best_len -= 7;
		}
		strbuf_add(out, best, best_len);
	}
	return out->buf ? out->buf : "";
}

/*
 * Run one short gpg command in the homedir: `input` on its stdin, its stdout into `out`
 * (NULL: dropped). 0 or the failed run's summary in `why` with -1.
 */
int crypt_gpg_run(struct crypt *c, const char *const *extra, const struct strbuf *input,
		  struct strbuf *out, struct strbuf *why, struct err *e)
{
	struct child g = CHILD_INIT;
	char buf[16384];
	int ret = -1;

	crypt_gpg_args(c, &g.args);
	for (size_t i = 0; extra[i]; i++)
		strvec_push(&g.args, extra[i]);
	g.in = input ? data_fd(input->buf, input->len, e) : CHILD_NULL;
	if (input && g.in < 0)
		goto out;
	g.out = out ? CHILD_PIPE : CHILD_NULL;
	int r = child_start(&g, LB_EXIT_CRYPTO, e);
	if (input)
		close(g.in);
	if (r < 0)
		goto out;
	ssize_t n;
	while (out && (n = read_retry(g.out_fd, buf, sizeof(buf))) > 0)
		strbuf_add(out, buf, (size_t)n);
	int status = child_finish(&g);
	if (g.err_tail.len)
		log_debug("gpg said: %s", g.err_tail.buf);
	if (status != 0) {
		crypt_err_summary(&g.err_tail, why);
		if (!why->len)
			strbuf_addstr(why, child_status_str(status, buf, sizeof(buf)));
		goto out;
	}
	ret = 0;
out:
	child_release(&g);
	return ret;
}

/* Read the private key file (it may be binary) into `out`; LB_EXIT_CONFIG naming `origin`. */
int crypt_read_key_file(const char *path, const char *origin, struct strbuf *out, struct err *e)
{
	int r = read_file_capped(path, 1024 * 1024, out);

	if (r < 0)
		return err_set(e, LB_EXIT_CONFIG, "%s: cannot read '%s': %s", origin, path,
			       r == -EFBIG ? "file is larger than 1 MiB" : strerror(-r));
	return 0;
}

static int gpg_encrypt_start(struct crypt *c, const struct config_crypt *k, struct err *e)
{
	struct strvec fprs = STRVEC_INIT, subkeys = STRVEC_INIT;
	struct strvec *a = &c->gpg.args;
	int pfd = -1, ret = -1;

	if (!k->key.len && !k->gpg_public.len) {
		err_set(e, LB_EXIT_CONFIG,
			"BACKUP_ENCRYPTION_KEY is not set: set it (or BACKUP_ENCRYPTION_KEY_FILE) "
			"or BACKUP_GPG_PUBLIC_KEYS, or set BACKUP_ENCRYPTION=none");
		goto out;
	}
	if (crypt_make_homedir(c, e) < 0)
		goto out;
	/* Checked again each run: a key may have expired since the daemon started. */
	if (k->gpg_public.len &&
	    crypt_load_public_keys(c, &k->gpg_public,
				   k->gpg_public_origin ? k->gpg_public_origin
							: "BACKUP_GPG_PUBLIC_KEYS",
				   'E', &fprs, &subkeys, e) < 0)
		goto out;
	if (k->key.len &&
	    (pfd = crypt_passphrase_fd(
		     &k->key, k->key_origin ? k->key_origin : "BACKUP_ENCRYPTION_KEY", e)) < 0)
		goto out;
	crypt_gpg_args(c, a);
	if (pfd >= 0) {
		strvec_push(a, "--passphrase-fd=3");
		strvec_push(a, "--symmetric");
		strvec_push(a, "--s2k-cipher-algo=AES256");
		strvec_push(a, "--s2k-digest-algo=SHA512");
		/*
		 * The strongest iteration count OpenPGP can encode. Left unset, each
		 * run's fresh gpg-agent first calibrates a count by hashing for about a
		 * second of CPU: a fixed cost per backup, and a weaker, machine-dependent
		 * count. The count travels in the message: any gpg decrypts it.
		 */
		strvec_push(a, "--s2k-count=65011712");
	}
	if (fprs.nr) {
		strvec_push(a, "--encrypt");
		/*
		 * The user named these keys in BACKUP_GPG_PUBLIC_KEYS: that is the trust
		 * decision. Without this gpg refuses keys nobody has signed ("unusable
		 * public key"); expired and revoked keys stay refused (checked above, and
		 * by gpg).
		 */
		strvec_push(a, "--trust-model=always");
		for (size_t i = 0; i < fprs.nr; i++)
			strvec_pushf(a, "--recipient=%s", fprs.v[i]);
	}
	strvec_push(a, "--cipher-algo=AES256");
	/* We compress already; gpg's own compression would halve throughput. */
	strvec_push(a, "--compress-algo=none");
	strvec_push(a, "--output=-");
	c->passphrase = pfd >= 0;
	ret = crypt_child_start(c, CHILD_PIPE, pfd, e);
out:
	if (pfd >= 0)
		close(pfd);
	strvec_release(&fprs);
	strvec_release(&subkeys);
	return ret;
}

static int age_encrypt_start(struct crypt *c, const struct config_crypt *k, struct err *e)
{
	if (!k->age_recipients.len)
		return err_set(e, LB_EXIT_CONFIG,
			       "BACKUP_ENCRYPTION=age needs BACKUP_AGE_RECIPIENTS (age1… or SSH "
			       "public keys)");
	/* The recipients file is a pipe on fd 3: nothing on the command line, no file. */
	int rfd = data_fd(k->age_recipients.buf, k->age_recipients.len, e);
	if (rfd < 0)
		return -1;
	strvec_push(&c->gpg.args, "age");
	strvec_push(&c->gpg.args, "--encrypt");
	strvec_push(&c->gpg.args, "--recipients-file=/dev/fd/3");
	int r = crypt_child_start(c, CHILD_PIPE, rfd, e);
	close(rfd);
	return r;
}

int crypt_encrypt_start(struct crypt *c, const struct config_crypt *k, struct err *e)
{
	c->decrypt = false;
	c->kind = k->kind == ENCRYPTION_AGE ? ENCRYPTION_AGE : ENCRYPTION_GPG;
	return c->kind == ENCRYPTION_AGE ? age_encrypt_start(c, k, e) : gpg_encrypt_start(c, k, e);
}

static int gpg_decrypt_start(struct crypt *c, const struct config_crypt *k, int in, struct err *e)
{
	static const char *const import[] = { "--import", NULL };
	struct strbuf why = STRBUF_INIT, secret = STRBUF_INIT;
	const struct strbuf *pass = NULL;
	const char *pass_origin = NULL;
	int pfd = -1, ret = -1;

	if (crypt_make_homedir(c, e) < 0)
		goto out;
	if (k->gpg_private_file) {
		c->key_origin = k->key_file_arg ? "--key-file" : "BACKUP_GPG_PRIVATE_KEY_FILE";
		if (crypt_read_key_file(k->gpg_private_file, c->key_origin, &secret, e) < 0)
			goto out;
		if (crypt_gpg_run(c, import, &secret, NULL, &why, e) < 0) {
			if (!err_isset(e))
				err_set(e, LB_EXIT_CONFIG,
					"%s: gpg cannot import '%s' as an OpenPGP private key: %s",
					c->key_origin, k->gpg_private_file, why.buf);
			goto out;
		}
		c->private_key = true;
		if (k->gpg_private_pass.len) {
			pass = &k->gpg_private_pass;
			pass_origin = k->gpg_private_pass_origin;
		}
	}
	/* gpg tries the private key first; the passphrase opens a --symmetric part. */
	if (!pass && k->key.len) {
		pass = &k->key;
		pass_origin = k->key_origin ? k->key_origin : "BACKUP_ENCRYPTION_KEY";
	}
	if (pass && (pfd = crypt_passphrase_fd(pass, pass_origin, e)) < 0)
		goto out;
	struct strvec *a = &c->gpg.args;
	crypt_gpg_args(c, a);
	if (pfd >= 0)
		strvec_push(a, "--passphrase-fd=3");
	/* Status lines on stderr: ENC_TO names the recipients when no key opens it. */
	strvec_push(a, "--status-fd=2");
	strvec_push(a, "--decrypt");
	strvec_push(a, "--output=-");
	c->passphrase = pfd >= 0;
	ret = crypt_child_start(c, in, pfd, e);
out:
	if (pfd >= 0)
		close(pfd);
	strbuf_release(&why);
	strbuf_release_secret(&secret);
	return ret;
}

static void age_recipients(const struct crypt *c, struct strbuf *out);

/* Where an age header is read whole, at most: a recipient stanza is under 200 bytes. */
#define AGE_HEAD_MAX 16384

/*
 * The start of a stream, up to the end of its age header ("--- MAC" and its line end) or
 * AGE_HEAD_MAX bytes, into c->head: what a file would let us pread again. A read error
 * or an early end only leaves less to name; age judges the stream.
 */
static void age_read_head(struct crypt *c, int in)
{
	char buf[4096];

	while (c->head.len < AGE_HEAD_MAX) {
		const char *mac = c->head.buf ? strstr(c->head.buf, "\n--- ") : NULL;
		if (mac && strchr(mac + 1, '\n'))
			return;
		size_t want = AGE_HEAD_MAX - c->head.len;
		ssize_t n = read_retry(in, buf, want < sizeof(buf) ? want : sizeof(buf));
		if (n <= 0)
			return;
		/* The payload is binary: a NUL would end strstr early, but not the header. */
		strbuf_add(&c->head, buf, (size_t)n);
	}
}

/* The feed: what age_read_head took, then the rest of the stream, into age's stdin. */
static int age_feed(int fd, void *data)
{
	struct crypt *c = data;
	char buf[65536];
	int ret = 0;

	if (c->head.len && write_all(fd, c->head.buf, c->head.len) < 0)
		ret = -1;
	while (!ret) {
		/* splice moves pipe pages without copying them; a non-pipe needs read/write. */
		ssize_t n = splice(c->src_fd, NULL, fd, NULL, 1 << 20, SPLICE_F_MOVE);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EINVAL) {
			while ((n = read_retry(c->src_fd, buf, sizeof(buf))) > 0)
				if (write_all(fd, buf, (size_t)n) < 0)
					break;
		}
		if (n <= 0)
			ret = n < 0 ? -1 : 0;
		if (n <= 0)
			break;
	}
	/* age stopped reading (EPIPE: it judged the header) or the stream ended. */
	close_fd(&c->src_fd);
	return ret;
}

static int age_decrypt_start(struct crypt *c, const struct config_crypt *k, int in, struct err *e)
{
	/*
	 * A file (the local store) can be read again to name the recipients; a stream
	 * (every other store) has its header read first and fed to age after.
	 */
	if (lseek(in, 0, SEEK_CUR) == 0)
		c->peek_fd = fcntl(in, F_DUPFD_CLOEXEC, 3);
	else
		age_read_head(c, in);
	if (!k->age_identity_file) {
		struct strbuf to = STRBUF_INIT;
		age_recipients(c, &to);
		err_set(e, LB_EXIT_CRYPTO,
			"the backup is encrypted with age%s%s: give its identity in "
			"BACKUP_AGE_IDENTITY_FILE or with --key-file",
			to.len ? " for " : "", to.len ? to.buf : "");
		strbuf_release(&to);
		return -1;
	}
	c->key_origin = k->key_file_arg ? "--key-file" : "BACKUP_AGE_IDENTITY_FILE";
	if (access(k->age_identity_file, R_OK) < 0)
		return err_set(e, LB_EXIT_CONFIG, "%s: cannot read '%s': %s", c->key_origin,
			       k->age_identity_file, strerror(errno));
	strvec_push(&c->gpg.args, "age");
	strvec_push(&c->gpg.args, "--decrypt");
	strvec_pushf(&c->gpg.args, "--identity=%s", k->age_identity_file);
	if (c->peek_fd >= 0)
		return crypt_child_start(c, in, -1, e);
	c->src_fd = fcntl(in, F_DUPFD_CLOEXEC, 3);
	if (c->src_fd < 0)
		return err_set(e, LB_EXIT_INTERNAL, "cannot duplicate the archive's stream: %s",
			       strerror(errno));
	if (crypt_child_start(c, CHILD_PIPE, -1, e) < 0)
		return -1;
	c->feed.proc = age_feed;
	c->feed.data = c;
	c->feed.fd = c->gpg.in_fd; /* the feed's to close */
	c->gpg.in_fd = -1;
	return async_start(&c->feed, e);
}

int crypt_decrypt_start(struct crypt *c, const struct config_crypt *k, enum encryption kind,
			int in_fd, struct err *e)
{
	c->decrypt = true;
	c->kind = kind == ENCRYPTION_AGE ? ENCRYPTION_AGE : ENCRYPTION_GPG;
	return c->kind == ENCRYPTION_AGE ? age_decrypt_start(c, k, in_fd, e)
					 : gpg_decrypt_start(c, k, in_fd, e);
}

/* "4E05273C37982C95, 966A7B304C13D24C": the key ids of gpg's ENC_TO status lines. */
static void gpg_recipients(const char *tail, struct strbuf *out)
{
	for (const char *p = tail; (p = strstr(p, "[GNUPG:] ENC_TO "));) {
		p += 16;
		size_t n = strcspn(p, " \n");
		strbuf_addf(out, "%s%.*s", out->len ? ", " : "", (int)n, p);
	}
}

/*
 * The stanzas of an age header, read again from the start of a file or kept from a
 * stream: who the archive is for.
 */
static void age_recipients(const struct crypt *c, struct strbuf *out)
{
	char buf[AGE_HEAD_MAX + 1];
	unsigned x25519 = 0;
	ssize_t n = -1;

	if (c->peek_fd >= 0) {
		n = pread(c->peek_fd, buf, sizeof(buf) - 1, 0);
	} else if (c->head.len) {
		n = (ssize_t)c->head.len;
		memcpy(buf, c->head.buf, c->head.len);
	}
	if (n <= 0)
		return;
	buf[n] = '\0';
	/* Only the header: stanzas end at the "---" line, the payload is binary. */
	char *end = strstr(buf, "\n--- ");
	if (end)
		end[1] = '\0';
	for (char *p = buf; (p = strstr(p, "\n-> "));) {
		p += 4;
		size_t tn = strcspn(p, " \n");
		if (tn == 6 && !strncmp(p, "X25519", 6)) {
			x25519++;
		} else if (!strncmp(p, "ssh-", 4)) {
			char *tag = p + tn + (p[tn] == ' ');
			strbuf_addf(out, "%s%.*s key tag %.*s", out->len ? ", " : "", (int)tn, p,
				    (int)strcspn(tag, " \n"), tag);
		} else {
			strbuf_addf(out, "%s%.*s", out->len ? ", " : "", (int)tn, p);
		}
	}
	if (x25519)
		strbuf_addf(out, "%s%u X25519 recipient%s (age does not record which keys)",
			    out->len ? ", " : "", x25519, x25519 == 1 ? "" : "s");
}

static int gpg_verdict(struct crypt *c, const char *what, int status, struct err *e)
{
	struct strbuf last = STRBUF_INIT, to = STRBUF_INIT;
	const char *tail = c->gpg.err_tail.buf ? c->gpg.err_tail.buf : "";
	char sbuf[64];
	int ret;

	crypt_err_summary(&c->gpg.err_tail, &last);
	gpg_recipients(tail, &to);
	bool sym = strstr(tail, "NEED_PASSPHRASE_SYM");
	if (!c->decrypt) {
		ret = err_set(e, LB_EXIT_CRYPTO, "encryption failed: gpg %s: %s",
			      child_status_str(status, sbuf, sizeof(sbuf)),
			      last.len ? last.buf : "no message");
	} else if (c->private_key && !strstr(tail, "NEED_PASSPHRASE_SYM") &&
		   (strstr(tail, "Bad passphrase") || strstr(tail, "BAD_PASSPHRASE") ||
		    strstr(tail, "can't get input") ||
		    /* The key given is a recipient (gpg considered it), yet no secret key. */
		    (strstr(tail, "KEY_CONSIDERED") && strstr(tail, "No secret key")))) {
		ret = err_set(e, LB_EXIT_CRYPTO,
			      "the passphrase of the private key in %s is wrong or missing (check "
			      "BACKUP_GPG_PRIVATE_KEY_PASSPHRASE)",
			      c->key_origin);
	} else if (strstr(tail, "Bad session key") || strstr(tail, "Bad passphrase") ||
		   strstr(tail, "bad passphrase")) {
		ret = err_set(e, LB_EXIT_CRYPTO,
			      "the encryption key does not decrypt backup '%s' (check "
			      "BACKUP_ENCRYPTION_KEY)%s%s",
			      what, to.len ? "; it is also encrypted to OpenPGP keys " : "",
			      to.len ? to.buf : "");
	} else if (strstr(tail, "NO_SECKEY") || strstr(tail, "No secret key") ||
		   (sym && !c->passphrase)) {
		if (!to.len)
			ret = err_set(e, c->passphrase ? LB_EXIT_CRYPTO : LB_EXIT_CONFIG,
				      "BACKUP_ENCRYPTION_KEY is not set, and this archive is "
				      "encrypted");
		else
			ret = err_set(e, LB_EXIT_CRYPTO,
				      "%s backup '%s': it is encrypted to OpenPGP key%s %s%s (give "
				      "the private key in BACKUP_GPG_PRIVATE_KEY_FILE or with "
				      "--key-file)",
				      c->private_key ? "the private key given does not open"
						     : "no private key given to open",
				      what, strchr(to.buf, ',') ? "s" : "", to.buf,
				      sym ? " and to a passphrase" : "");
	} else {
		ret = err_set(e, LB_EXIT_INTEGRITY,
			      "backup '%s' is damaged or truncated: gpg %s: %s", what,
			      child_status_str(status, sbuf, sizeof(sbuf)),
			      last.len ? last.buf : "no message");
	}
	strbuf_release(&last);
	strbuf_release(&to);
	return ret;
}

static int age_verdict(struct crypt *c, const char *what, int status, struct err *e)
{
	struct strbuf last = STRBUF_INIT, to = STRBUF_INIT;
	const char *tail = c->gpg.err_tail.buf ? c->gpg.err_tail.buf : "";
	char sbuf[64];
	int ret;

	crypt_err_summary(&c->gpg.err_tail, &last);
	if (!c->decrypt) {
		ret = err_set(e, LB_EXIT_CRYPTO, "encryption failed: age %s: %s",
			      child_status_str(status, sbuf, sizeof(sbuf)),
			      last.len ? last.buf : "no message");
	} else if (strstr(tail, "no identity matched")) {
		age_recipients(c, &to);
		ret = err_set(e, LB_EXIT_CRYPTO,
			      "the age identity in %s does not open backup '%s': it is for %s",
			      c->key_origin, what, to.len ? to.buf : "other recipients");
	} else if (strstr(tail, "identit") || strstr(tail, "passphrase")) {
		ret = err_set(e, LB_EXIT_CRYPTO, "age cannot use the identity in %s: %s",
			      c->key_origin, last.len ? last.buf : "no message");
	} else {
		ret = err_set(e, LB_EXIT_INTEGRITY,
			      "backup '%s' is damaged or truncated: age %s: %s", what,
			      child_status_str(status, sbuf, sizeof(sbuf)),
			      last.len ? last.buf : "no message");
	}
	strbuf_release(&last);
	strbuf_release(&to);
	return ret;
}

int crypt_finish(struct crypt *c, const char *what, struct err *e)
{
	int status = child_finish(&c->gpg);

	/* age has ended: the feed sees EPIPE at its next write, or has seen the end. */
	async_finish(&c->feed);

	if (c->gpg.err_tail.len)
		log_debug("%s said: %s", c->kind == ENCRYPTION_AGE ? "age" : "gpg",
			  c->gpg.err_tail.buf);
	if (status == 0)
		return 0;
	return c->kind == ENCRYPTION_AGE ? age_verdict(c, what, status, e)
					 : gpg_verdict(c, what, status, e);
}

bool crypt_running(const struct crypt *c)
{
	return c->gpg.pid > 0;
}

int crypt_input_fd(const struct crypt *c)
{
	return c->gpg.in_fd;
}

void crypt_close_input(struct crypt *c)
{
	close_fd(&c->gpg.in_fd);
}

int crypt_output_fd(const struct crypt *c)
{
	return c->gpg.out_fd;
}

int crypt_take_output_fd(struct crypt *c)
{
	int fd = c->gpg.out_fd;

	c->gpg.out_fd = -1;
	return fd;
}

void crypt_kill(struct crypt *c)
{
	if (c->gpg.pid > 0)
		kill(c->gpg.pid, SIGTERM);
}

int crypt_drain_and_finish(struct crypt *c, const char *what, struct err *e)
{
	char buf[65536];

	while (read_retry(c->gpg.out_fd, buf, sizeof(buf)) > 0)
		;
	return crypt_finish(c, what, e);
}

void crypt_release(struct crypt *c)
{
	child_release(&c->gpg);
	async_finish(&c->feed);
	close_fd(&c->src_fd); /* a feed that never started */
	strbuf_release(&c->head);
	close_fd(&c->peek_fd);
	if (c->homedir[0]) {
		/* gpg --symmetric starts an agent that would outlive us. */
		stop_agent(c->homedir);
		remove_tree(c->homedir);
		c->homedir[0] = '\0';
		/* Only now: the lock says "in use" until the directory is gone. */
		close_fd(&c->home_fd);
	}
}
