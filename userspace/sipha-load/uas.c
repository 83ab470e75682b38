/* The callee: 180 then 200 (with SDP) to an INVITE, 200 to BYE and to any
 * other request.  Its To tag is a hash of the Call-ID.
 *
 * It keeps an INVITE server transaction for each INVITE until the ACK:
 * the final answer is sent again at T1, 2·T1, ... up to T2 until the ACK
 * comes (RFC 3261 §13.3.1.4 for a 2xx, §17.2.1 timer G for a non-2xx, the
 * latter over UDP only) and given up after 64·T1 (counted); a
 * retransmitted INVITE gets the last answer again.  With --ring-ms the 200
 * goes that long after the 180, and a CANCEL meanwhile gets 200 and the
 * INVITE 487.  A transaction keeps the header lines an answer echoes
 * (Via, From, To with our tag, Call-ID, CSeq, Record-Route), so any answer
 * can be written again from it.  Transactions come from chunks allocated
 * as the peak needs them, kept in a hash of Call-ID and CSeq; when none is
 * left the INVITE is answered without one, as the older stateless callee
 * did (counted as untracked). */
#include "sipha-load/load.h"

#include <stdlib.h>

static const char uas_sdp[] = "v=0\r\n"
			      "o=sipha-load 1 1 IN IP4 127.0.0.1\r\n"
			      "s=-\r\n"
			      "c=IN IP4 127.0.0.1\r\n"
			      "t=0 0\r\n"
			      "m=audio 6002 RTP/AVP 0\r\n"
			      "a=rtpmap:0 PCMU/8000\r\n";

#define UT_CHUNK 1024
#define UT_MAX_CHUNKS 1024 /* a million transactions at once */
#define UT_BUCKETS 65536
#define UT_HEAD_MAX 1536

enum ut_state {
	UT_FREE,
	UT_RINGING, /* 180 sent; the 200 at the timer */
	UT_FINAL, /* final answer sent; again at the timer until the ACK */
};

struct uas_tx {
	struct timer tm;
	struct load *ld;
	uint32_t next; /* hash chain, or free list: index + 1, 0 ends */
	uint32_t idx;
	uint64_t key; /* the Call-ID's hash */
	uint32_t cseq;
	uint8_t state;
	uint16_t code; /* the final answer */
	uint16_t head_len;
	uint32_t rto_ms;
	uint64_t deadline_ms;
	/* where answers go: UDP (ep, dst) or the connection with id conn_id */
	struct ld_ep *ep;
	union ld_addr dst;
	socklen_t dlen;
	uint64_t conn_id;
	char head[UT_HEAD_MAX];
};

struct uas_tab {
	uint32_t bucket[UT_BUCKETS];
	struct uas_tx *chunk[UT_MAX_CHUNKS];
	unsigned nchunks;
	uint32_t freel;
};

/* Where an answer goes. */
struct uas_to {
	struct ld_ep *ep;
	struct ld_conn *conn;
	const struct sockaddr *dst;
	socklen_t dlen;
};

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

/* --- writing answers ---------------------------------------------------------------- */

static const char *reason(int code)
{
	switch (code) {
	case 180:
		return "Ringing";
	case 487:
		return "Request Terminated";
	default:
		return "OK";
	}
}

static void wb_status(struct wb *w, int code)
{
	const char *r = reason(code);

	wb_lit(w, "SIP/2.0 ");
	wb_u64(w, (uint64_t)code);
	wb_lit(w, " ");
	wb_mem(w, r, strlen(r));
	wb_lit(w, "\r\n");
}

/* The header lines an answer to M echoes, with our To tag (KEY) when M's
 * To has none. */
static void wb_head(struct wb *w, const char *buf, const struct sl_msg *m, uint64_t key)
{
	for (unsigned i = 0; i < m->nvia; i++)
		wb_span(w, buf, m->via[i]);
	for (unsigned i = 0; i < m->nrr; i++)
		wb_span(w, buf, m->rr[i]);
	wb_span(w, buf, m->from_line);
	if (m->to_tag.len) {
		wb_span(w, buf, m->to_line);
	} else {
		struct sl_span t = m->to_line;

		while (t.len && (buf[t.off + t.len - 1] == '\n' || buf[t.off + t.len - 1] == '\r'))
			t.len--;
		wb_span(w, buf, t);
		wb_lit(w, ";tag=");
		wb_hex(w, key | 1ull << 63);
		wb_lit(w, "\r\n");
	}
	wb_span(w, buf, m->callid_line);
	wb_span(w, buf, m->cseq_line);
}

/* Contact and SDP for a 2xx to an INVITE, else an empty body. */
static void wb_tail(struct wb *w, struct load *ld, const struct uas_to *to, bool sdp)
{
	const char *host = to->conn ? ld->uas_host : to->ep->host;

	if (!sdp) {
		wb_lit(w, "Content-Length: 0\r\n\r\n");
		return;
	}
	wb_lit(w, "Contact: <sip:sipha-load@");
	wb_mem(w, host, strlen(host));
	if (to->conn)
		wb_lit(w, ";transport=tcp");
	wb_lit(w, ">\r\nContent-Type: application/sdp\r\nContent-Length: ");
	wb_u64(w, sizeof(uas_sdp) - 1);
	wb_lit(w, "\r\n\r\n");
	wb_lit(w, uas_sdp);
}

static char *out_next(struct load *ld, const struct uas_to *to)
{
	return to->conn ? tcp_next(ld, to->conn) : ld_ep_next(ld, to->ep);
}

static void out_commit(struct load *ld, const struct uas_to *to, struct wb *w, char *out)
{
	if (w->over) {
		ld->st.junk++; /* a request too large to echo its headers */
		return;
	}
	if (to->conn)
		tcp_commit(to->conn, (size_t)(w->p - out));
	else
		ld_ep_commit(to->ep, (size_t)(w->p - out), to->dst, to->dlen, 0);
}

/* An answer to request M written from M itself (no transaction). */
static void respond(struct load *ld, const struct uas_to *to, const char *buf,
		    const struct sl_msg *m, int code, bool sdp)
{
	char *out = out_next(ld, to);
	struct wb w = { out, out + LD_MSG_MAX, false };

	if (!out) {
		ld->st.transport++; /* the connection does not drain */
		return;
	}
	wb_status(&w, code);
	wb_head(&w, buf, m, fnv1a(buf + m->callid.off, m->callid.len));
	wb_tail(&w, ld, to, sdp);
	out_commit(ld, to, &w, out);
}

/* --- transactions --------------------------------------------------------------------- */

static struct uas_tx *tx_at(struct uas_tab *t, uint32_t idx)
{
	return &t->chunk[idx / UT_CHUNK][idx % UT_CHUNK];
}

static void on_tx_timer(struct timer *tm);

static struct uas_tx *tx_alloc(struct load *ld)
{
	struct uas_tab *t = ld->uas;
	struct uas_tx *x;

	if (!t->freel) {
		struct uas_tx *c;

		if (t->nchunks == UT_MAX_CHUNKS)
			return NULL;
		c = calloc(UT_CHUNK, sizeof(*c));
		if (!c)
			return NULL;
		for (uint32_t i = 0; i < UT_CHUNK; i++) {
			c[i].ld = ld;
			c[i].idx = t->nchunks * UT_CHUNK + i;
			timer_init(&c[i].tm, on_tx_timer);
			c[i].next = i + 1 < UT_CHUNK ? c[i].idx + 2 : 0;
		}
		t->chunk[t->nchunks++] = c;
		t->freel = c[0].idx + 1;
	}
	x = tx_at(t, t->freel - 1);
	t->freel = x->next;
	return x;
}

static void tx_link(struct uas_tab *t, struct uas_tx *x)
{
	uint32_t *b = &t->bucket[x->key & (UT_BUCKETS - 1)];

	x->next = *b;
	*b = x->idx + 1;
}

static void tx_free(struct load *ld, struct uas_tx *x)
{
	struct uas_tab *t = ld->uas;
	uint32_t *p = &t->bucket[x->key & (UT_BUCKETS - 1)];

	while (*p && *p != x->idx + 1)
		p = &tx_at(t, *p - 1)->next;
	if (*p)
		*p = x->next;
	timer_del(&ld->tw, &x->tm);
	x->state = UT_FREE;
	x->next = t->freel;
	t->freel = x->idx + 1;
}

/* The transaction of Call-ID hash KEY and CSeq CSEQ (any CSeq with
 * ANY_CSEQ), or NULL. */
static struct uas_tx *tx_find(struct load *ld, uint64_t key, uint32_t cseq, bool any_cseq)
{
	struct uas_tab *t = ld->uas;

	for (uint32_t i = t->bucket[key & (UT_BUCKETS - 1)]; i;) {
		struct uas_tx *x = tx_at(t, i - 1);

		if (x->key == key && (any_cseq || x->cseq == cseq))
			return x;
		i = x->next;
	}
	return NULL;
}

/* Sends CODE from transaction X (to its connection, if it is still open). */
static void tx_send(struct load *ld, struct uas_tx *x, int code)
{
	struct uas_to to = { x->ep, NULL, &x->dst.sa, x->dlen };
	struct wb w;
	char *out;

	if (!x->ep) {
		to.conn = tcp_conn_by_id(ld, x->conn_id);
		if (!to.conn)
			return; /* the connection is gone: the caller's retransmission will come */
	}
	out = out_next(ld, &to);
	if (!out) {
		ld->st.transport++;
		return;
	}
	w = (struct wb){ out, out + LD_MSG_MAX, false };
	wb_status(&w, code);
	wb_mem(&w, x->head, x->head_len);
	wb_tail(&w, ld, &to, code >= 200 && code < 300);
	out_commit(ld, &to, &w, out);
}

static void tx_final(struct load *ld, struct uas_tx *x, int code)
{
	uint64_t now_ms = ld->now_us / 1000;

	x->state = UT_FINAL;
	x->code = (uint16_t)code;
	x->rto_ms = ld->o.t1_ms;
	x->deadline_ms = now_ms + 64ull * ld->o.t1_ms;
	tx_send(ld, x, code);
	timer_add(&ld->tw, &x->tm, now_ms + x->rto_ms);
}

static void on_tx_timer(struct timer *tm)
{
	struct uas_tx *x = container_of(tm, struct uas_tx, tm);
	struct load *ld = x->ld;
	uint64_t now_ms = ld->tw.now, next;

	if (x->state == UT_RINGING) {
		tx_final(ld, x, 200);
		return;
	}
	if (now_ms >= x->deadline_ms) { /* timer H, or the 2xx's 64*T1 */
		ld->st.uas_ack_timeouts++;
		tx_free(ld, x);
		return;
	}
	if (x->ep || x->code < 300) { /* timer G is UDP's; a 2xx goes again on any */
		tx_send(ld, x, x->code);
		ld->st.uas_rtx++;
	}
	x->rto_ms = x->rto_ms * 2 < ld->o.t2_ms ? x->rto_ms * 2 : ld->o.t2_ms;
	next = now_ms + x->rto_ms;
	timer_add(&ld->tw, &x->tm, next < x->deadline_ms ? next : x->deadline_ms);
}

/* A new INVITE: 180 (unless it is in a dialog), then 200 now or after
 * --ring-ms; answered without a transaction when none is left. */
static void invite(struct load *ld, const struct uas_to *to, const char *buf,
		   const struct sl_msg *m, uint64_t key)
{
	struct uas_tx *x = tx_alloc(ld);
	struct wb w;

	if (x) {
		w = (struct wb){ x->head, x->head + UT_HEAD_MAX, false };
		wb_head(&w, buf, m, key);
		if (w.over) {
			x->key = 0;
			x->next = ld->uas->freel;
			ld->uas->freel = x->idx + 1;
			x = NULL;
		}
	}
	if (!x) {
		ld->st.uas_untracked++;
		if (!m->to_tag.len)
			respond(ld, to, buf, m, 180, false);
		respond(ld, to, buf, m, 200, true);
		return;
	}
	x->head_len = (uint16_t)(w.p - x->head);
	x->key = key;
	x->cseq = m->cseq;
	x->ep = to->conn ? NULL : to->ep;
	x->conn_id = to->conn ? to->conn->id : 0;
	if (!to->conn) {
		memcpy(&x->dst, to->dst, to->dlen);
		x->dlen = to->dlen;
	}
	tx_link(ld->uas, x);
	if (m->to_tag.len) {
		tx_final(ld, x, 200);
		return;
	}
	tx_send(ld, x, 180);
	if (ld->o.ring_ms) {
		x->state = UT_RINGING;
		timer_add(&ld->tw, &x->tm, ld->now_us / 1000 + ld->o.ring_ms);
		return;
	}
	tx_final(ld, x, 200);
}

int uas_init(struct load *ld)
{
	ld->uas = calloc(1, sizeof(*ld->uas));
	return ld->uas ? 0 : -ENOMEM;
}

void uas_free(struct load *ld)
{
	if (!ld->uas)
		return;
	for (unsigned i = 0; i < ld->uas->nchunks; i++)
		free(ld->uas->chunk[i]);
	free(ld->uas);
	ld->uas = NULL;
}

void uas_request(struct load *ld, struct ld_ep *ep, struct ld_conn *conn, const char *buf,
		 size_t len, const struct sl_msg *m, const struct sockaddr_storage *src)
{
	struct uas_to to = { ep, conn, (const void *)src, 0 };
	uint64_t key;
	struct uas_tx *x;

	(void)len;
	if (!m->nvia || !m->from_line.len || !m->to_line.len) {
		ld->st.junk++;
		return;
	}
	if (!conn)
		to.dlen = src->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
						     : sizeof(struct sockaddr_in);
	key = fnv1a(buf + m->callid.off, m->callid.len);
	switch (m->method) {
	case SL_INVITE:
		ld->st.uas_invites++;
		x = tx_find(ld, key, m->cseq, false);
		if (x) { /* a retransmission: the last answer again */
			ld->st.uas_inv_rtx++;
			tx_send(ld, x, x->state == UT_RINGING ? 180 : x->code);
			return;
		}
		invite(ld, &to, buf, m, key);
		return;
	case SL_ACK:
		ld->st.uas_acks++;
		x = tx_find(ld, key, m->cseq, false);
		if (x && x->state == UT_FINAL)
			tx_free(ld, x);
		return;
	case SL_CANCEL:
		ld->st.uas_other++;
		respond(ld, &to, buf, m, 200, false);
		x = tx_find(ld, key, m->cseq, false);
		if (x && x->state == UT_RINGING) {
			ld->st.uas_cancels++;
			timer_del(&ld->tw, &x->tm);
			tx_final(ld, x, 487);
		}
		return;
	case SL_BYE:
		ld->st.uas_byes++;
		respond(ld, &to, buf, m, 200, false);
		/* the caller had our 200: an ACK lost on the way changes nothing */
		while ((x = tx_find(ld, key, 0, true)) && x->state == UT_FINAL)
			tx_free(ld, x);
		if (!ld->o.uac && ld->o.max_calls && ld->st.uas_byes >= ld->o.max_calls)
			ld->done = true;
		return;
	default:
		ld->st.uas_other++;
		respond(ld, &to, buf, m, 200, false);
		return;
	}
}
