/* The callee: 180 then 200 (with SDP) to an INVITE, 200 to BYE and to any
 * other request, nothing to ACK.  It keeps no state: its To tag is a hash
 * of the Call-ID, so a retransmitted INVITE gets the same answers again,
 * which is what makes the lost-200 case work without a transaction table.
 * (It does not retransmit its 200 itself, RFC 3261 §13.3.1.4: the caller's
 * INVITE retransmissions do the job on a lossy path.) */
#include "sipha-load/load.h"

static const char uas_sdp[] = "v=0\r\n"
			      "o=sipha-load 1 1 IN IP4 127.0.0.1\r\n"
			      "s=-\r\n"
			      "c=IN IP4 127.0.0.1\r\n"
			      "t=0 0\r\n"
			      "m=audio 6002 RTP/AVP 0\r\n"
			      "a=rtpmap:0 PCMU/8000\r\n";

static uint64_t fnv1a(const char *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;

	while (n--) {
		h ^= (unsigned char)*p++;
		h *= 0x100000001b3ull;
	}
	return h;
}

static inline void wb_span(struct wb *w, const char *buf, struct sl_span s)
{
	wb_mem(w, buf + s.off, s.len);
}

static void respond(struct load *ld, struct ld_ep *ep, struct ld_conn *conn, const char *buf,
		    const struct sl_msg *m, const struct sockaddr_storage *src, int code,
		    const char *reason, bool sdp)
{
	char *out = conn ? tcp_next(ld, conn) : ld_ep_next(ld, ep);
	const char *host = conn ? ld->uas_host : ep->host;
	struct wb w = { out, out + LD_MSG_MAX, false };

	if (!out) {
		ld->st.transport++; /* the connection does not drain */
		return;
	}

	wb_lit(&w, "SIP/2.0 ");
	wb_u64(&w, (uint64_t)code);
	wb_lit(&w, " ");
	wb_mem(&w, reason, strlen(reason));
	wb_lit(&w, "\r\n");
	for (unsigned i = 0; i < m->nvia; i++)
		wb_span(&w, buf, m->via[i]);
	wb_span(&w, buf, m->from_line);
	if (m->to_tag.len || code == 100) {
		wb_span(&w, buf, m->to_line);
	} else {
		struct sl_span t = m->to_line;

		while (t.len && (buf[t.off + t.len - 1] == '\n' || buf[t.off + t.len - 1] == '\r'))
			t.len--;
		wb_span(&w, buf, t);
		wb_lit(&w, ";tag=");
		wb_hex(&w, fnv1a(buf + m->callid.off, m->callid.len) | 1ull << 63);
		wb_lit(&w, "\r\n");
	}
	wb_span(&w, buf, m->callid_line);
	wb_span(&w, buf, m->cseq_line);
	if (sdp) {
		wb_lit(&w, "Contact: <sip:sipha-load@");
		wb_mem(&w, host, strlen(host));
		if (conn)
			wb_lit(&w, ";transport=tcp");
		wb_lit(&w, ">\r\nContent-Type: application/sdp\r\nContent-Length: ");
		wb_u64(&w, sizeof(uas_sdp) - 1);
		wb_lit(&w, "\r\n\r\n");
		wb_lit(&w, uas_sdp);
	} else {
		wb_lit(&w, "Content-Length: 0\r\n\r\n");
	}
	if (w.over) {
		ld->st.junk++; /* a request too large to echo its headers */
		return;
	}
	if (conn) {
		tcp_commit(conn, (size_t)(w.p - out));
		return;
	}
	ld_ep_commit(ep, (size_t)(w.p - out), (const void *)src,
		     src->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
						: sizeof(struct sockaddr_in),
		     0);
}

void uas_request(struct load *ld, struct ld_ep *ep, struct ld_conn *conn, const char *buf,
		 size_t len, const struct sl_msg *m, const struct sockaddr_storage *src)
{
	(void)len;
	if (!m->nvia || !m->from_line.len || !m->to_line.len) {
		ld->st.junk++;
		return;
	}
	switch (m->method) {
	case SL_INVITE:
		ld->st.uas_invites++;
		if (!m->to_tag.len)
			respond(ld, ep, conn, buf, m, src, 180, "Ringing", false);
		respond(ld, ep, conn, buf, m, src, 200, "OK", true);
		return;
	case SL_ACK:
		ld->st.uas_acks++;
		return;
	case SL_BYE:
		ld->st.uas_byes++;
		respond(ld, ep, conn, buf, m, src, 200, "OK", false);
		if (!ld->o.uac && ld->o.max_calls && ld->st.uas_byes >= ld->o.max_calls)
			ld->done = true;
		return;
	default:
		ld->st.uas_other++;
		respond(ld, ep, conn, buf, m, src, 200, "OK", false);
		return;
	}
}
