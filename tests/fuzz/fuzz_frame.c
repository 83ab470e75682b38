/* Fuzz target: the TCP stream framer (sipmsg_framer_next(), what
 * sip/transport.c runs on every arrival).  The input is a stream; its
 * first octet seeds the sizes of the pieces it arrives in.  Framed whole
 * and framed piece by piece, resuming as the transport does, it must give
 * the same messages (keep-alives aside) and the same end (an error, or data
 * still wanted): the resume shortcut must never change what is framed.
 * Each framed message is parsed as a stream message too. */
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

#include "fuzz.h"
#include "sip/msg.h"

#define FFR_MAX 512

struct ffr_run {
	size_t off[FFR_MAX], len[FFR_MAX];
	unsigned n;
	int end; /* 0: more data wanted, -EBADMSG */
};

/* Frames every whole message in BUF[*USED..AVAIL), as tcp_data() does. */
static void ffr_drain(struct sipmsg_framer *f, const char *buf, size_t *used, size_t avail,
		      struct ffr_run *r)
{
	while (*used < avail && !r->end && r->n < FFR_MAX) {
		ssize_t n = sipmsg_framer_next(f, buf + *used, avail - *used);

		if (n == 0)
			return;
		if (n < 0) {
			r->end = (int)n;
			return;
		}
		FUZZ_ASSERT((size_t)n <= avail - *used);
		/* A run of keep-alive line ends is framed as far as it has
		 * arrived, so pieces split it where the whole does not: only
		 * messages are compared. */
		if (buf[*used] != '\r' && buf[*used] != '\n') {
			r->off[r->n] = *used;
			r->len[r->n++] = (size_t)n;
		}
		*used += (size_t)n;
	}
}

/* what the last input framed, whole and in pieces (static: large) */
static struct ffr_run ffr_whole, ffr_pieces;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ffr_run *const whole = &ffr_whole, *const pieces = &ffr_pieces;
	struct sipmsg_framer f;
	const char *buf;
	unsigned seed;
	size_t used, avail;

	fuzz_init();
	if (size < 1 || size > 4 * SIPMSG_MAX)
		return 0;
	seed = data[0];
	buf = (const char *)data + 1;
	size--;

	memset(whole, 0, sizeof(*whole));
	memset(&f, 0, sizeof(f));
	used = 0;
	ffr_drain(&f, buf, &used, size, whole);

	memset(pieces, 0, sizeof(*pieces));
	memset(&f, 0, sizeof(f));
	used = avail = 0;
	while (avail < size && !pieces->end && pieces->n < FFR_MAX) {
		/* pieces of 1..64 octets, or 1..4096 when the seed says so */
		size_t step = 1 + (seed & 0x80 ? seed * 31u % 4096 : seed % 64);

		seed = seed * 1103515245u + 12345u;
		avail = avail + step < size ? avail + step : size;
		ffr_drain(&f, buf, &used, avail, pieces);
	}
	if (whole->n < FFR_MAX && pieces->n < FFR_MAX) {
		FUZZ_ASSERT(whole->n == pieces->n);
		FUZZ_ASSERT(!memcmp(whole->off, pieces->off, whole->n * sizeof(whole->off[0])));
		FUZZ_ASSERT(!memcmp(whole->len, pieces->len, whole->n * sizeof(whole->len[0])));
		FUZZ_ASSERT(whole->end == pieces->end);
	}
	for (unsigned i = 0; i < whole->n; i++) {
		osip_message_t *m = NULL;
		const char *s = buf + whole->off[i];

		if (!sipmsg_parse(s, whole->len[i], false, &m))
			osip_message_free(m);
	}
	return 0;
}
