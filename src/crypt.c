/* gpg as a subprocess: private homedir, passphrase on fd 3, status and stderr judged at the end. */
#include "common.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>

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

static int make_homedir(struct crypt *c, struct err *e)
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

/* A pipe already holding the passphrase; returns the read end or -1. */
static int passphrase_fd(const struct strbuf *key, struct err *e)
{
	int p[2];

	if (key->len > 4096)
		return err_set(e, LB_EXIT_CONFIG,
			       "BACKUP_ENCRYPTION_KEY is longer than 4096 bytes");
	if (memchr(key->buf, '\n', key->len))
		return err_set(
			e, LB_EXIT_CONFIG,
			"BACKUP_ENCRYPTION_KEY contains a line break: gpg would read only its "
			"first line");
	if (pipe2(p, O_CLOEXEC) < 0)
		return err_set(e, LB_EXIT_INTERNAL, "cannot create pipe: %s", strerror(errno));
	int r = write_all(p[1], key->buf, key->len);
	if (!r)
		r = write_all(p[1], "\n", 1);
	close(p[1]);
	if (r < 0) {
		close(p[0]);
		return err_set(e, LB_EXIT_INTERNAL, "cannot pass the key to gpg: %s", strerror(-r));
	}
	return p[0];
}

static int start(struct crypt *c, const struct strbuf *key, int in, bool decrypt, struct err *e)
{
	if (!key->len)
		return err_set(e, LB_EXIT_CONFIG,
			       "BACKUP_ENCRYPTION_KEY is not set, and this archive is encrypted");
	if (make_homedir(c, e) < 0)
		return -1;
	int pfd = passphrase_fd(key, e);
	if (pfd < 0)
		return -1;

	c->decrypt = decrypt;
	struct strvec *a = &c->gpg.args;
	strvec_push(a, "gpg");
	strvec_pushf(a, "--homedir=%s", c->homedir);
	strvec_push(a, "--batch");
	strvec_push(a, "--no-tty");
	strvec_push(a, "--quiet");
	strvec_push(a, "--no-options");
	strvec_push(a, "--no-symkey-cache");
	strvec_push(a, "--pinentry-mode=loopback");
	strvec_push(a, "--passphrase-fd=3");
	if (decrypt) {
		strvec_push(a, "--decrypt");
	} else {
		strvec_push(a, "--symmetric");
		strvec_push(a, "--cipher-algo=AES256");
		strvec_push(a, "--s2k-cipher-algo=AES256");
		strvec_push(a, "--s2k-digest-algo=SHA512");
		/*
		 * The strongest iteration count OpenPGP can encode. Left unset, each
		 * run's fresh gpg-agent first calibrates a count by hashing for about a
		 * second of CPU: a fixed cost per backup, and a weaker, machine-dependent
		 * count. The count travels in the message: any gpg decrypts it.
		 */
		strvec_push(a, "--s2k-count=65011712");
		/* We compress already; gpg's own compression would halve throughput. */
		strvec_push(a, "--compress-algo=none");
	}
	strvec_push(a, "--output=-");
	c->gpg.in = in;
	c->gpg.out = CHILD_PIPE;
	c->gpg.fd3 = pfd;
	int r = child_start(&c->gpg, LB_EXIT_CRYPTO, e);
	close(pfd);
	c->gpg.fd3 = -1;
	return r;
}

int crypt_encrypt_start(struct crypt *c, const struct strbuf *key, struct err *e)
{
	return start(c, key, CHILD_PIPE, false, e);
}

int crypt_decrypt_start(struct crypt *c, const struct strbuf *key, int in_fd, struct err *e)
{
	return start(c, key, in_fd, true, e);
}

int crypt_finish(struct crypt *c, const char *what, struct err *e)
{
	struct strbuf last = STRBUF_INIT;
	char sbuf[64];
	int status = child_finish(&c->gpg);
	int ret = 0;

	if (c->gpg.err_tail.len)
		log_debug("gpg said: %s", c->gpg.err_tail.buf);
	if (status == 0)
		goto out;
	child_err_summary(&c->gpg, &last);
	const char *tail = c->gpg.err_tail.buf;
	if (c->decrypt && (strstr(tail, "Bad session key") || strstr(tail, "bad passphrase") ||
			   strstr(tail, "Bad passphrase")))
		ret = err_set(e, LB_EXIT_CRYPTO,
			      "the encryption key does not decrypt backup '%s' (check "
			      "BACKUP_ENCRYPTION_KEY)",
			      what);
	else if (c->decrypt)
		ret = err_set(e, LB_EXIT_INTEGRITY,
			      "backup '%s' is damaged or truncated: gpg %s: %s", what,
			      child_status_str(status, sbuf, sizeof(sbuf)),
			      last.len ? last.buf : "no message");
	else
		ret = err_set(e, LB_EXIT_CRYPTO, "encryption failed: gpg %s: %s",
			      child_status_str(status, sbuf, sizeof(sbuf)),
			      last.len ? last.buf : "no message");
out:
	strbuf_release(&last);
	return ret;
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
	if (c->homedir[0]) {
		/* gpg --symmetric starts an agent that would outlive us. */
		stop_agent(c->homedir);
		remove_tree(c->homedir);
		c->homedir[0] = '\0';
		/* Only now: the lock says "in use" until the directory is gone. */
		close_fd(&c->home_fd);
	}
}
