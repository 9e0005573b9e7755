/* SHA-256 through OpenSSL's EVP interface (uses SHA-NI where the CPU has it). */
#include "common.h"

#include <openssl/evp.h>

#include "hash.h"

void sha256_init(struct sha256 *h)
{
	h->ctx = EVP_MD_CTX_new();
	if (!h->ctx || !EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL))
		abort();
}

void sha256_update(struct sha256 *h, const void *data, size_t len)
{
	if (len && !EVP_DigestUpdate(h->ctx, data, len))
		abort();
}

void sha256_final_hex(struct sha256 *h, char out[SHA256_HEX_LEN + 1])
{
	unsigned char md[32];
	unsigned int n = 0;

	if (!EVP_DigestFinal_ex(h->ctx, md, &n) || n != 32)
		abort();
	for (unsigned i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
	sha256_release(h);
}

void sha256_release(struct sha256 *h)
{
	EVP_MD_CTX_free(h->ctx);
	h->ctx = NULL;
}
