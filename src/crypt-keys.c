/* Public keys and age recipients checked, archives signed and signatures verified (gpg). */
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

/* Field `n` (1-based) of a colon-listing line, up to its end; "" past the last. */
static const char *field(const char *line, int n, size_t *len)
{
	const char *p = line;

	for (int i = 1; i < n && p; i++) {
		p = strpbrk(p, ":\n");
		p = p && *p == ':' ? p + 1 : NULL;
	}
	if (!p) {
		*len = 0;
		return "";
	}
	*len = strcspn(p, ":\n");
	return p;
}

/*
 * The keys imported in c's homedir, each checked: not expired, revoked or invalid,
 * and able to encrypt ('E' among the primary's capabilities: an encryption subkey
 * usable now). `fprs` gets their fingerprints, `subkeys` their encryption subkey ids.
 */
static int check_listing(const char *listing, const char *var, char cap, struct strvec *fprs,
			 struct strvec *subkeys, struct err *e)
{
	struct strbuf subs = STRBUF_INIT;
	char validity = 0, caps_e = 0;
	bool in_pub = false, want_fpr = false, in_sub = false, want_sub = false;
	int ret = 0;

	for (const char *line = listing; *line && !ret;) {
		size_t n;
		const char *end = strchrnul(line, '\n');
		if (!strncmp(line, "pub:", 4)) {
			if (in_pub)
				strvec_push(subkeys, subs.len ? subs.buf : "");
			strbuf_reset(&subs);
			in_pub = true;
			want_fpr = true;
			in_sub = false;
			validity = *field(line, 2, &n);
			const char *caps = field(line, 12, &n);
			caps_e = memchr(caps, cap, n) ? cap : 0;
		} else if (!strncmp(line, "sub:", 4)) {
			size_t cn;
			const char *caps = field(line, 12, &cn);
			char v = *field(line, 2, &n);
			in_sub = true;
			want_sub = memchr(caps, cap + 'a' - 'A', cn) && !strchr("erid", v);
			if (want_sub) {
				const char *id = field(line, 5, &n);
				strbuf_addf(&subs, "%s%.*s", subs.len ? " " : "", (int)n, id);
			}
		} else if (!strncmp(line, "fpr:", 4) && want_fpr && !in_sub) {
			const char *f = field(line, 10, &n);
			char fpr[128];
			snprintf(fpr, sizeof(fpr), "%.*s", (int)(n < 100 ? n : 100), f);
			want_fpr = false;
			if (validity == 'e')
				ret = err_set(e, LB_EXIT_CONFIG, "%s: key %s has expired", var,
					      fpr);
			else if (validity == 'r')
				ret = err_set(e, LB_EXIT_CONFIG, "%s: key %s is revoked", var, fpr);
			else if (validity == 'i' || validity == 'd' || validity == 'n')
				ret = err_set(e, LB_EXIT_CONFIG,
					      "%s: key %s is invalid or disabled", var, fpr);
			else if (!caps_e)
				ret = err_set(
					e, LB_EXIT_CONFIG,
					"%s: key %s has no usable encryption subkey (a "
					"signing-only "
					"key, or its encryption subkey expired or was revoked)",
					var, fpr);
			else
				strvec_push(fprs, fpr);
		}
		line = *end ? end + 1 : end;
	}
	if (!ret && in_pub)
		strvec_push(subkeys, subs.len ? subs.buf : "");
	if (!ret && !fprs->nr)
		ret = err_set(e, LB_EXIT_CONFIG, "%s holds no OpenPGP public key", var);
	strbuf_release(&subs);
	return ret;
}

/* Import public keys into c's homedir and check them (see check_listing). */
int crypt_load_public_keys(struct crypt *c, const struct strbuf *keys, const char *var, char cap,
			   struct strvec *fprs, struct strvec *subkeys, struct err *e)
{
	static const char *const import[] = { "--import", "--import-options=import-minimal", NULL };
	static const char *const list[] = { "--with-colons", "--fixed-list-mode", "--list-keys",
					    NULL };
	struct strbuf why = STRBUF_INIT, listing = STRBUF_INIT;
	int ret = -1;

	if (memmem(keys->buf, keys->len, "PRIVATE KEY BLOCK", 17)) {
		err_set(e, LB_EXIT_CONFIG,
			"%s holds a private key: give only public keys here (the private key "
			"belongs to restore, never to the backup's environment)",
			var);
		goto out;
	}
	if (crypt_gpg_run(c, import, keys, NULL, &why, e) < 0) {
		if (!err_isset(e))
			err_set(e, LB_EXIT_CONFIG, "%s: gpg cannot read the keys: %s", var,
				why.buf);
		goto out;
	}
	if (crypt_gpg_run(c, list, NULL, &listing, &why, e) < 0) {
		if (!err_isset(e))
			err_set(e, LB_EXIT_CONFIG, "%s: gpg cannot list the keys: %s", var,
				why.buf);
		goto out;
	}
	ret = check_listing(listing.buf ? listing.buf : "", var, cap, fprs, subkeys, e);
out:
	strbuf_release(&why);
	strbuf_release(&listing);
	return ret;
}

int crypt_check_gpg_keys(const struct strbuf *keys, const char *var, bool sign, struct strvec *fprs,
			 struct strvec *subkeys, struct err *e)
{
	struct crypt c = CRYPT_INIT;
	int r = crypt_make_homedir(&c, e);

	if (r == 0)
		r = crypt_load_public_keys(&c, keys, var, sign ? 'S' : 'E', fprs, subkeys, e);
	crypt_release(&c);
	return r;
}

/* Does `s` (n bytes) hold only characters of `set`? */
static bool only_of(const char *s, size_t n, const char *set)
{
	for (size_t i = 0; i < n; i++)
		if (!s[i] || !strchr(set, s[i]))
			return false;
	return true;
}

#define B64    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
#define BECH32 "qpzry9x8gf2tvdw0s3jn54khce6mua7l"

/* One age recipient (no surrounding space): X25519 "age1…", or an ssh-ed25519/ssh-rsa key. */
static bool age_recipient_ok(const char *r, size_t n)
{
	if (n == 62 && !strncmp(r, "age1", 4))
		return only_of(r + 4, 58, BECH32);
	/* "ssh-ed25519 BASE64 [comment]": the blob starts with its own type, encoded. */
	static const struct {
		const char *type, *blob;
	} ssh[] = { { "ssh-ed25519 ", "AAAAC3NzaC1lZDI1NTE5AAAAI" },
		    { "ssh-rsa ", "AAAAB3NzaC1yc2E" } };
	for (size_t i = 0; i < ARRAY_SIZE(ssh); i++) {
		size_t t = strlen(ssh[i].type);
		if (n <= t || strncmp(r, ssh[i].type, t))
			continue;
		const char *b = r + t;
		size_t bn = strcspn(b, " \t");
		if (bn > n - t)
			bn = n - t;
		return bn >= strlen(ssh[i].blob) + 20 &&
		       !strncmp(b, ssh[i].blob, strlen(ssh[i].blob)) && only_of(b, bn, B64);
	}
	return false;
}

int crypt_check_age_recipients(const char *text, size_t len, const char *var, struct strbuf *out,
			       size_t *ret_nr, struct err *e)
{
	const char *p = text, *end = text + len;
	size_t nr = 0;

	for (unsigned line = 1; p < end; line++) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		/* age1… keys may also be comma separated on one line (an environment value). */
		for (const char *q = p; q < le;) {
			const char *ssh = q;
			while (ssh < le && strchr(" \t\r,", *ssh))
				ssh++;
			q = ssh;
			if (q >= le || *q == '#')
				break;
			const char *qe =
				!strncmp(q, "ssh-", 4) ? le : memchr(q, ',', (size_t)(le - q));
			if (!qe)
				qe = le;
			const char *te = qe;
			while (te > q && strchr(" \t\r", te[-1]))
				te--;
			if (!age_recipient_ok(q, (size_t)(te - q))) {
				size_t shown = (size_t)(te - q) > 80 ? 80 : (size_t)(te - q);
				for (size_t i = 0; i < shown; i++)
					if ((unsigned char)q[i] < ' ' || q[i] == 0x7f)
						shown = i;
				return err_set(
					e, LB_EXIT_CONFIG,
					"%s line %u: '%.*s%s' is not an age recipient (expected "
					"an age1… X25519 public key, or an ssh-ed25519 or ssh-rsa "
					"public key)",
					var, line, (int)shown, q,
					shown < (size_t)(te - q) ? "..." : "");
			}
			strbuf_add(out, q, (size_t)(te - q));
			strbuf_addch(out, '\n');
			nr++;
			q = qe;
		}
		p = le + 1;
	}
	if (!nr)
		return err_set(e, LB_EXIT_CONFIG, "%s holds no age recipient", var);
	*ret_nr = nr;
	return 0;
}

int crypt_sign_start(struct crypt *c, const struct config_crypt *k, struct err *e)
{
	static const char *const import[] = { "--import", NULL };
	struct strbuf why = STRBUF_INIT, secret = STRBUF_INIT;
	int pfd = -1, ret = -1;

	c->decrypt = false;
	c->kind = ENCRYPTION_GPG;
	c->key_origin = "BACKUP_SIGNING_KEY_FILE";
	if (crypt_make_homedir(c, e) < 0 ||
	    crypt_read_key_file(k->signing_key_file, c->key_origin, &secret, e) < 0)
		goto out;
	if (!memmem(secret.buf, secret.len, "PRIVATE KEY BLOCK", 17) &&
	    memmem(secret.buf, secret.len, "PUBLIC KEY BLOCK", 16)) {
		err_set(e, LB_EXIT_CONFIG,
			"BACKUP_SIGNING_KEY_FILE '%s' holds a public key: signing needs the secret "
			"key "
			"(its public key goes to BACKUP_VERIFY_KEYS)",
			k->signing_key_file);
		goto out;
	}
	if (crypt_gpg_run(c, import, &secret, NULL, &why, e) < 0) {
		if (!err_isset(e))
			err_set(e, LB_EXIT_CONFIG,
				"BACKUP_SIGNING_KEY_FILE: gpg cannot import '%s' as an OpenPGP "
				"secret "
				"key: %s",
				k->signing_key_file, why.buf);
		goto out;
	}
	if (k->signing_pass.len &&
	    (pfd = crypt_passphrase_fd(&k->signing_pass, k->signing_pass_origin, e)) < 0)
		goto out;
	struct strvec *a = &c->gpg.args;
	crypt_gpg_args(c, a);
	if (pfd >= 0)
		strvec_push(a, "--passphrase-fd=3");
	strvec_push(a, "--status-fd=2");
	strvec_push(a, "--digest-algo=SHA256");
	strvec_push(a, "--detach-sign");
	strvec_push(a, "--output=-");
	ret = crypt_child_start(c, CHILD_PIPE, pfd, e);
out:
	if (pfd >= 0)
		close(pfd);
	strbuf_release(&why);
	strbuf_release_secret(&secret);
	return ret;
}

int crypt_sign_finish(struct crypt *c, struct strbuf *sig, struct err *e)
{
	struct strbuf last = STRBUF_INIT;
	char buf[4096], sbuf[64];
	ssize_t n;

	crypt_close_input(c);
	while ((n = read_retry(c->gpg.out_fd, buf, sizeof(buf))) > 0 && sig->len < 65536)
		strbuf_add(sig, buf, (size_t)n);
	int status = child_finish(&c->gpg);
	if (c->gpg.err_tail.len)
		log_debug("gpg said: %s", c->gpg.err_tail.buf);
	if (status == 0 && sig->len &&
	    strstr(c->gpg.err_tail.buf ? c->gpg.err_tail.buf : "", "SIG_CREATED"))
		return 0;
	crypt_err_summary(&c->gpg.err_tail, &last);
	const char *tail = c->gpg.err_tail.buf ? c->gpg.err_tail.buf : "";
	int r = err_set(e, LB_EXIT_CRYPTO,
			"cannot sign the archive with BACKUP_SIGNING_KEY_FILE: %s%s",
			strstr(tail, "BAD_PASSPHRASE") || strstr(tail, "NEED_PASSPHRASE")
				? "the key's passphrase is wrong or missing "
				  "(BACKUP_SIGNING_KEY_PASSPHRASE): "
				: "",
			last.len ? last.buf : child_status_str(status, sbuf, sizeof(sbuf)));
	strbuf_release(&last);
	return r;
}

int crypt_verify_signature(const struct config_crypt *k, const struct strbuf *sig, int data_fd,
			   const char *what, struct err *e)
{
	struct crypt c = CRYPT_INIT;
	struct strvec fprs = STRVEC_INIT, subkeys = STRVEC_INIT;
	struct strbuf last = STRBUF_INIT;
	char *sig_path = NULL;
	int ret = -1;

	if (crypt_make_homedir(&c, e) < 0 ||
	    crypt_load_public_keys(&c, &k->verify_keys,
				   k->verify_origin ? k->verify_origin : "BACKUP_VERIFY_KEYS", 'S',
				   &fprs, &subkeys, e) < 0)
		goto out;
	sig_path = xasprintf("%s/archive.sig", c.homedir);
	int r = write_file_atomic(sig_path, sig->buf, sig->len, 0600);
	if (r < 0) {
		err_set(e, LB_EXIT_INTERNAL, "cannot write '%s': %s", sig_path, strerror(-r));
		goto out;
	}
	struct strvec *a = &c.gpg.args;
	crypt_gpg_args(&c, a);
	strvec_push(a, "--status-fd=2");
	/* The homedir holds only BACKUP_VERIFY_KEYS: naming them is the trust decision. */
	strvec_push(a, "--trust-model=always");
	strvec_push(a, "--verify");
	strvec_push(a, sig_path);
	strvec_push(a, "-");
	c.gpg.in = data_fd;
	c.gpg.out = CHILD_NULL;
	if (child_start(&c.gpg, LB_EXIT_CRYPTO, e) < 0)
		goto out;
	int status = child_finish(&c.gpg);
	const char *tail = c.gpg.err_tail.buf ? c.gpg.err_tail.buf : "";
	if (c.gpg.err_tail.len)
		log_debug("gpg said: %s", tail);
	const char *valid = strstr(tail, "[GNUPG:] VALIDSIG ");
	if (status == 0 && valid && !strstr(tail, "BADSIG") && !strstr(tail, "ERRSIG")) {
		ret = 0;
		goto out;
	}
	crypt_err_summary(&c.gpg.err_tail, &last);
	const char *id = NULL;
	if ((id = strstr(tail, "[GNUPG:] NO_PUBKEY ")))
		id += 19;
	if (strstr(tail, "BADSIG"))
		err_set(e, LB_EXIT_INTEGRITY,
			"backup '%s' does not match its signature: it was changed after it was "
			"signed",
			what);
	else if (id)
		err_set(e, LB_EXIT_INTEGRITY,
			"backup '%s' is signed by key %.*s, which is not in BACKUP_VERIFY_KEYS",
			what, (int)strcspn(id, " \n"), id);
	else
		err_set(e, LB_EXIT_INTEGRITY, "the signature of backup '%s' does not verify: %s",
			what, last.len ? last.buf : "gpg gave no reason");
out:
	if (sig_path)
		free(sig_path);
	strbuf_release(&last);
	strvec_release(&fprs);
	strvec_release(&subkeys);
	crypt_release(&c);
	return ret;
}
