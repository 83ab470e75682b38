/* Fuzz target: the SIP engine behind the transport — srv_rx() with a
 * configuration of every kind of DN, a fake clock and a send function that
 * reads back what it is given (fsrv_send() says how much).  The input is a
 * sequence of datagrams separated by the octets "\0\0\0\n" so that one
 * input can open a transaction and then hit it; each comes from one of four
 * sources (its first octet picks which) and the clock moves on 600 ms after
 * each, so timers fire and state expires.  A fresh engine per input
 * (fuzz_engine.h). */
#include <arpa/inet.h>
#include <string.h>

#include "fuzz.h"
#include "fuzz_engine.h"

static int fsrv_send(void *arg, const struct sip_peer *to, const char *buf, size_t len)
{
	osip_message_t *m = NULL;

	(void)arg;
	(void)to;
	FUZZ_ASSERT(len > 0 && len <= SIPMSG_MAX);
	/* Every message frames as exactly itself (a stream peer depends on
	 * its Content-Length).  A request sipha writes on its own, sipha
	 * must be able to read back; a response copies the request's From,
	 * To, Call-ID and Via as the sender wrote them (a 400 to a malformed
	 * To keeps it malformed), so it is only framed. */
	if (sipmsg_frame(buf, len) != (ssize_t)len ||
	    (memcmp(buf, "SIP/2.0 ", 8) && sipmsg_parse(buf, len, true, &m))) {
		fprintf(stderr, "fuzz_srv: sipha sent what it cannot read:\n%.*s\n", (int)len, buf);
		abort();
	}
	osip_message_free(m);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const srcs[] = { "10.0.0.1", "10.0.0.50", "192.0.2.7", "10.0.0.1" };
	static const unsigned ports[] = { 5061, 5080, 5060, 40000 };
	static struct fuzz_engine e;
	const char *p = (const char *)data, *end = p + size;

	fuzz_init();
	if (size > 8 * SIPMSG_MAX)
		return 0;
	fuzz_engine_start(&e, fsrv_send);
	while (p < end) {
		const char *sep = memmem(p, (size_t)(end - p), "\0\0\0\n", 4);
		size_t len = sep ? (size_t)(sep - p) : (size_t)(end - p);
		struct sip_peer from;
		unsigned k = len ? (unsigned char)p[0] % 4 : 0;

		FUZZ_ASSERT(sipt_peer_set(&from, k == 3 ? SIP_PROTO_TCP : SIP_PROTO_UDP, srcs[k],
					  ports[k]) == 0);
		if (k == 3)
			from.conn = 1;
		if (len > 1)
			srv_rx(&e.srv, &from, p + 1, len - 1);
		timer_run(&e.tw, e.tw.now + 600);
		p += len + (sep ? 4 : 0);
	}
	fuzz_engine_stop(&e);
	return 0;
}
