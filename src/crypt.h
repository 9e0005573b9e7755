/* OpenPGP symmetric encryption through GnuPG's gpg, run as a child with pipes we own. */
#ifndef LB_CRYPT_H
#define LB_CRYPT_H

#include "common.h"

#include "child.h"
#include "err.h"
#include "strbuf.h"

struct crypt {
	struct child gpg;
	char homedir[96];
	int home_fd; /* holds an flock on homedir while we use it (see remove_stale_homedirs) */
	bool decrypt;
};
#define CRYPT_INIT                               \
	{                                        \
		.gpg = CHILD_INIT, .home_fd = -1 \
	}

/*
 * Start `gpg --symmetric` (AES-256, no compression). Write plaintext to
 * crypt_input_fd(), read the OpenPGP message from crypt_output_fd().
 */
int crypt_encrypt_start(struct crypt *c, const struct strbuf *key, struct err *e);

/*
 * Start `gpg --decrypt` reading from `in_fd` (still the caller's to close: gpg has
 * its own copy); read plaintext from crypt_output_fd().
 */
int crypt_decrypt_start(struct crypt *c, const struct strbuf *key, int in_fd, struct err *e);

/* gpg started and not yet waited for. */
bool crypt_running(const struct crypt *c);

/* gpg's stdin when encrypting (-1 otherwise): crypt's to close, with crypt_close_input(). */
int crypt_input_fd(const struct crypt *c);

/* The plaintext is complete: close gpg's stdin so it ends the message. */
void crypt_close_input(struct crypt *c);

/* gpg's stdout (-1 if closed or taken): crypt's to close, in crypt_finish() or release. */
int crypt_output_fd(const struct crypt *c);

/* gpg's stdout handed over: from now on the caller's (or its async's) to close. */
int crypt_take_output_fd(struct crypt *c);

/*
 * Our side failed: stop gpg (SIGTERM), its verdict no longer matters. Its pipes stay
 * open, so a thread still writing to crypt_input_fd() sees EPIPE, never a reused fd;
 * crypt_release() waits for it and closes them.
 */
void crypt_kill(struct crypt *c);

/* Read and drop what gpg still writes, then crypt_finish(): gpg's verdict on the input. */
int crypt_drain_and_finish(struct crypt *c, const char *what, struct err *e);

/*
 * Wait for gpg and judge its result: a wrong passphrase is LB_EXIT_CRYPTO,
 * a damaged message LB_EXIT_INTEGRITY. `what` names the backup in messages.
 */
int crypt_finish(struct crypt *c, const char *what, struct err *e);

/* Stop gpg and its agent and remove the private home directory. */
void crypt_release(struct crypt *c);

#endif
