#include <sodium.h>
#include <string.h>

#include "core/khash.h"

static unsigned char key[crypto_shorthash_KEYBYTES];
static int keyed; /* the key is drawn at the first use */

uint64_t khash(const void *p, size_t n)
{
	uint64_t h;

	if (!keyed) {
		/* sodium_init is idempotent and thread-safe; failure leaves the
		 * key at zero, a plain SipHash: still correct, no longer keyed. */
		if (sodium_init() >= 0)
			randombytes_buf(key, sizeof(key));
		keyed = 1;
	}
	crypto_shorthash((unsigned char *)&h, p, n, key);
	return h;
}

uint64_t khash_str(const char *s)
{
	return khash(s, strlen(s));
}

uint64_t khash_str2(const char *a, const char *b)
{
	uint64_t two[2] = { khash_str(a), khash_str(b) };

	return khash(two, sizeof(two));
}
