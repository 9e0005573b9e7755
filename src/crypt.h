/*
 * Encryption through GnuPG's gpg (a passphrase and/or OpenPGP public keys) or the `age`
 * tool (age recipients), each run as a child with pipes we own.
 */
#ifndef LB_CRYPT_H
#define LB_CRYPT_H

#include "common.h"

#include "child.h"
#include "config.h"
#include "err.h"
#include "naming.h"
#include "strbuf.h"
#include "strvec.h"

struct crypt {
	struct child gpg; /* the tool: gpg, or age */
	char homedir[96];
	int home_fd; /* holds an flock on homedir while we use it (see remove_stale_homedirs) */
	bool decrypt;
	enum encryption kind;
	bool private_key;	/* decrypting with an OpenPGP private key */
	bool passphrase;	/* a passphrase went to gpg */
	const char *key_origin; /* where the private side came from, for messages */
	int peek_fd;		/* age decrypt: a seekable input, to name the recipients */
	/*
	 * age decrypt from a stream (a pipe from a store's download): the header read
	 * first (to name the recipients), then `feed` writes it and the rest of `src_fd`
	 * to age's stdin.
	 */
	struct strbuf head;
	int src_fd;
	struct async feed;
};
#define CRYPT_INIT                                                                    \
	{                                                                             \
		.gpg = CHILD_INIT, .home_fd = -1, .peek_fd = -1, .head = STRBUF_INIT, \
		.src_fd = -1, .feed = ASYNC_INIT                                      \
	}

/*
 * Start encrypting as `k` says: gpg to every BACKUP_GPG_PUBLIC_KEYS recipient and/or
 * the passphrase (AES-256, no compression), or age to BACKUP_AGE_RECIPIENTS. Write
 * plaintext to crypt_input_fd(), read the message from crypt_output_fd().
 */
int crypt_encrypt_start(struct crypt *c, const struct config_crypt *k, struct err *e);

/*
 * Start decrypting an archive encrypted with `kind`, reading from `in_fd` (still the
 * caller's to close: the child has its own copy), with what `k` holds of the private
 * side (private key, identity, passphrase); read plaintext from crypt_output_fd().
 */
int crypt_decrypt_start(struct crypt *c, const struct config_crypt *k, enum encryption kind,
			int in_fd, struct err *e);

/*
 * BACKUP_GPG_PUBLIC_KEYS or BACKUP_VERIFY_KEYS, for the commands that use them
 * (config_require): import `keys` into a scratch homedir and check each key (parseable,
 * not expired or revoked, able to encrypt, or with `sign` to sign). Fills `fprs` with the
 * primary fingerprints and `subkeys` with each one's encryption subkey ids. Every failure
 * is LB_EXIT_CONFIG naming `var` and the key's fingerprint.
 */
int crypt_check_gpg_keys(const struct strbuf *keys, const char *var, bool sign, struct strvec *fprs,
			 struct strvec *subkeys, struct err *e);

/*
 * Start `gpg --detach-sign` with BACKUP_SIGNING_KEY_FILE: write the archive's bytes to
 * crypt_input_fd() as they stream, then crypt_sign_finish() for the signature.
 */
int crypt_sign_start(struct crypt *c, const struct config_crypt *k, struct err *e);
/* End the input, read the detached signature into `sig`, judge gpg's result. */
int crypt_sign_finish(struct crypt *c, struct strbuf *sig, struct err *e);

/*
 * Check a detached signature `sig` over the bytes read from `data_fd` against
 * BACKUP_VERIFY_KEYS: 0 when one of them made it over exactly these bytes; a bad
 * signature, or one by another key, is LB_EXIT_INTEGRITY.
 */
int crypt_verify_signature(const struct config_crypt *k, const struct strbuf *sig, int data_fd,
			   const char *what, struct err *e);

/*
 * BACKUP_AGE_RECIPIENTS at load: one recipient per line or comma (age1… X25519, ssh-ed25519,
 * ssh-rsa; blank lines and # comments skipped) into `out`, one per line; a malformed one is
 * LB_EXIT_CONFIG naming `var` and the line.
 */
int crypt_check_age_recipients(const char *text, size_t len, const char *var, struct strbuf *out,
			       size_t *ret_nr, struct err *e);

/* The tool started and not yet waited for. */
bool crypt_running(const struct crypt *c);

/* The tool's stdin when encrypting (-1 otherwise): crypt's to close, with crypt_close_input(). */
int crypt_input_fd(const struct crypt *c);

/* The plaintext is complete: close the tool's stdin so it ends the message. */
void crypt_close_input(struct crypt *c);

/* The tool's stdout (-1 if closed or taken): crypt's to close, in crypt_finish() or release. */
int crypt_output_fd(const struct crypt *c);

/* The tool's stdout handed over: from now on the caller's (or its async's) to close. */
int crypt_take_output_fd(struct crypt *c);

/*
 * Our side failed: stop the tool (SIGTERM), its verdict no longer matters. Its pipes stay
 * open, so a thread still writing to crypt_input_fd() sees EPIPE, never a reused fd;
 * crypt_release() waits for it and closes them.
 */
void crypt_kill(struct crypt *c);

/* Read and drop what the tool still writes, then crypt_finish(): its verdict on the input. */
int crypt_drain_and_finish(struct crypt *c, const char *what, struct err *e);

/*
 * Wait for the tool and judge its result: a wrong or missing key is LB_EXIT_CRYPTO (naming
 * the recipients the archive is for), a damaged message LB_EXIT_INTEGRITY. `what` names
 * the backup in messages.
 */
int crypt_finish(struct crypt *c, const char *what, struct err *e);

/* Stop the tool and gpg's agent and remove the private home directory. */
void crypt_release(struct crypt *c);

#endif
