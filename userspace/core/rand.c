#include <errno.h>
#include <string.h>
#include <sys/random.h>

#include "core/rand.h"

#define RND_POOL 4096

static __thread unsigned char pool[RND_POOL];
static __thread size_t left;

static void refill(void)
{
	size_t got = 0;

	/* Blocking only until the kernel's pool is first initialised (early
	 * boot); never after.  A short read or EINTR is just read again. */
	while (got < RND_POOL) {
		ssize_t r = getrandom(pool + got, RND_POOL - got, 0);

		if (r > 0)
			got += (size_t)r;
		else if (r < 0 && errno != EINTR)
			break;
	}
	left = got;
}

void rnd_bytes(void *buf, size_t n)
{
	unsigned char *out = buf;

	while (n) {
		size_t k;

		if (!left)
			refill();
		k = n < left ? n : left;
		if (!k)
			return; /* getrandom failed for good: nothing to give */
		memcpy(out, pool + RND_POOL - left, k);
		/* Used bytes are not kept around for anyone to read later. */
		memset(pool + RND_POOL - left, 0, k);
		left -= k;
		out += k;
		n -= k;
	}
}

uint64_t rnd_u64(void)
{
	uint64_t v = 0;

	rnd_bytes(&v, sizeof(v));
	return v;
}

void rnd_hex(char *out, size_t nbytes)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char b[64];

	while (nbytes) {
		size_t k = nbytes < sizeof(b) ? nbytes : sizeof(b);

		rnd_bytes(b, k);
		for (size_t i = 0; i < k; i++) {
			*out++ = hex[b[i] >> 4];
			*out++ = hex[b[i] & 15];
		}
		nbytes -= k;
	}
	*out = '\0';
}
