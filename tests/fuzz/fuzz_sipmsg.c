/* Fuzz target: one SIP datagram through everything sip/msg*.c does with
 * it before the engine acts: parse (as a datagram and as a framed stream
 * message), the request checks and the response checks, the raw URI
 * readers, the Via amendment, and a response built and serialised.
 * Invariants are the sanitizers' (ASan/UBSan: no read past the input, no
 * leak, no undefined behaviour) plus a few of our own, checked with
 * FUZZ_ASSERT. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "sip/msg.h"

static void fsm_uri(void *arg, const char *uri, size_t len)
{
	char user[256];

	(*(unsigned *)arg)++;
	FUZZ_ASSERT(len < SIPMSG_MAX);
	(void)sipmsg_uri_user(uri, len, user, sizeof(user));
}

static void fsm_request(osip_message_t *m, const char *buf, size_t len)
{
	struct sockaddr_in src = { .sin_family = AF_INET, .sin_port = htons(40000) };
	struct sip_verdict v;
	osip_message_t *r = NULL;
	char *out = NULL;
	size_t olen;

	src.sin_addr.s_addr = htonl(0x0a000001);
	sipmsg_check_request(m, buf, len, &v);
	FUZZ_ASSERT(v.code == 0 || (v.code >= 400 && v.code <= 699 && v.reason));
	(void)sipmsg_via_port(m);
	(void)sipmsg_via_received(m, (const struct sockaddr *)&src);
	if (!sipmsg_response(m, v.code ? v.code : 200, v.reason, "fz", &r)) {
		if (!sipmsg_to_str(r, &out, &olen)) {
			FUZZ_ASSERT(olen == strlen(out) || memchr(out, '\0', olen));
			free(out);
		}
		osip_message_free(r);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;
	osip_message_t *m = NULL;
	unsigned n = 0;

	fuzz_init();
	if (size > SIPMSG_MAX)
		return 0;
	(void)sipmsg_raw_uris(buf, size, false, fsm_uri, &n);
	(void)sipmsg_raw_uris(buf, size, true, fsm_uri, &n);
	for (int datagram = 1; datagram >= 0; datagram--) {
		if (sipmsg_parse(buf, size, datagram, &m))
			continue;
		FUZZ_ASSERT(m != NULL);
		if (MSG_IS_REQUEST(m)) {
			(void)sipmsg_method_id(m->sip_method);
			fsm_request(m, buf, size);
		} else if (!sipmsg_check_response(m)) {
			char *out = NULL;
			size_t olen;

			FUZZ_ASSERT(m->status_code >= 100 && m->status_code <= 699);
			if (!sipmsg_to_str(m, &out, &olen))
				free(out);
		}
		osip_message_free(m);
		m = NULL;
	}
	return 0;
}
