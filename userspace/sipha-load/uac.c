/* The caller: INVITE, ACK the 200, hold, BYE; RFC 3261 timers A/B and E/F
 * over UDP.  A call's slot and generation are written into its Call-ID,
 * tags and branches, so an answer finds its call without a lookup table. */
#include "sipha-load/load.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static const char sdp[] = "v=0\r\n"
			  "o=sipha-load 1 1 IN IP4 127.0.0.1\r\n"
			  "s=-\r\n"
			  "c=IN IP4 127.0.0.1\r\n"
			  "t=0 0\r\n"
			  "m=audio 6000 RTP/AVP 0\r\n"
			  "a=rtpmap:0 PCMU/8000\r\n";

int str_printf(struct ld_str *s, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s->s, fmt, ap);
	va_end(ap);
	if (n < 0) {
		s->s = NULL;
		return -ENOMEM;
	}
	s->n = (size_t)n;
	return 0;
}

int uac_init(struct load *ld)
{
	const char *l = ld->o.tcp ? ld->uac_host : ld->uac_ep->host, *t = ld->o.target_host;
	const char *dn = ld->o.dn, *tp = ld->o.tcp ? "TCP" : "UDP";
	const char *cparam = ld->o.tcp ? ";transport=tcp" : "";
	uint64_t slots = ld->o.limit;
	int err = 0;

	ld->calls = calloc(slots, sizeof(*ld->calls));
	ld->freel = calloc(slots, sizeof(*ld->freel));
	if (!ld->calls || !ld->freel)
		return -ENOMEM;
	ld->ncalls = (uint32_t)slots;
	for (uint32_t i = 0; i < ld->ncalls; i++) {
		ld->calls[i].ld = ld;
		ld->freel[i] = ld->ncalls - 1 - i;
	}
	ld->nfree = ld->ncalls;
	err |= str_printf(&ld->ruri, "sip:%s@%s", dn, t);
	err |= str_printf(&ld->req_via, " SIP/2.0\r\nVia: SIP/2.0/%s %s;branch=z9hG4bK", tp, l);
	err |= str_printf(&ld->via_from,
			  ";rport\r\nMax-Forwards: 70\r\nFrom: \"sipha-load\" "
			  "<sip:%s@%s>;tag=",
			  ld->o.user ? ld->o.user : "sipha-load", l);
	err |= str_printf(&ld->to_open, "\r\nTo: <sip:%s@%s>", dn, t);
	err |= str_printf(&ld->inv_tail,
			  "Contact: <sip:sipha-load@%s%s>\r\nContent-Type: application/sdp\r\n"
			  "Content-Length: %zu\r\n\r\n%s",
			  l, cparam, sizeof(sdp) - 1, sdp);
	err |= str_printf(&ld->ack_tail, "Content-Length: 0\r\n\r\n");
	return err ? -ENOMEM : 0;
}

void uac_free(struct load *ld)
{
	struct ld_str *s[] = { &ld->ruri,     &ld->req_via,  &ld->via_from, &ld->to_open,
			       &ld->inv_tail, &ld->ack_tail, &ld->sdp_tail };

	for (size_t i = 0; i < sizeof(s) / sizeof(s[0]); i++)
		free(s[i]->s);
	free(ld->calls);
	free(ld->freel);
}

static inline uint64_t since(uint64_t now, uint64_t t)
{
	return now > t ? now - t : 0;
}

static inline uint32_t slot_of(const struct load *ld, const struct ld_call *c)
{
	return (uint32_t)(c - ld->calls);
}

static inline uint64_t tag_of(const struct load *ld, const struct ld_call *c)
{
	return ((uint64_t)c->gen << 32 | slot_of(ld, c)) + 1;
}

/* "slot-gen-run": the call's identity in its Call-ID, From tag and branches. */
static void wb_id(struct wb *w, const struct load *ld, const struct ld_call *c)
{
	wb_hex(w, slot_of(ld, c));
	wb_lit(w, "-");
	wb_hex(w, c->gen);
	wb_lit(w, "-");
	wb_mem(w, ld->run, strlen(ld->run));
}

static void wb_method(struct wb *w, enum sl_method m)
{
	switch (m) {
	case SL_INVITE:
		wb_lit(w, "INVITE");
		break;
	case SL_ACK:
		wb_lit(w, "ACK");
		break;
	default:
		wb_lit(w, "BYE");
		break;
	}
}

/* Writes request METHOD of call C into the UAC queue.  KIND makes the
 * branch: 'i' for the INVITE and the ACK of a non-2xx (same transaction),
 * 'a' for the ACK of a 2xx, 'b' for the BYE. */
static void send_req(struct load *ld, struct ld_call *c, enum sl_method m, char kind)
{
	struct ld_ep *ep = ld->uac_ep;
	char *buf = ld->o.tcp ? tcp_next(ld, ld->uac_conn) : ld_ep_next(ld, ep);
	struct wb w = { buf, buf + LD_MSG_MAX, false };
	bool in_dialog = kind == 'a' || kind == 'b';

	if (!buf)
		return; /* the connection does not drain: timer B/F ends the call */

	wb_method(&w, m);
	wb_lit(&w, " ");
	if (in_dialog && c->contact_len)
		wb_mem(&w, c->contact, c->contact_len);
	else
		wb_str(&w, &ld->ruri);
	wb_str(&w, &ld->req_via);
	wb_id(&w, ld, c);
	wb_mem(&w, &kind, 1);
	wb_str(&w, &ld->via_from);
	wb_id(&w, ld, c);
	wb_str(&w, &ld->to_open);
	if (m != SL_INVITE && c->totag_len) {
		wb_lit(&w, ";tag=");
		wb_mem(&w, c->totag, c->totag_len);
	}
	wb_lit(&w, "\r\nCall-ID: ");
	wb_id(&w, ld, c);
	wb_lit(&w, "\r\nCSeq: ");
	wb_u64(&w, c->cseq_inv + (m == SL_BYE));
	wb_lit(&w, " ");
	wb_method(&w, m);
	wb_lit(&w, "\r\n");
	if (m == SL_INVITE && c->auth_tried) {
		char cnonce[32];

		snprintf(cnonce, sizeof(cnonce), "%s%x", ld->run, slot_of(ld, c));
		auth_header(&w, ld, c, cnonce);
	}
	if (m == SL_INVITE)
		wb_str(&w, &ld->inv_tail);
	else
		wb_str(&w, &ld->ack_tail);
	if (w.over)
		return; /* cannot happen with a contact under LD_URI_MAX */
	if (ld->o.tcp) {
		tcp_commit(ld->uac_conn, (size_t)(w.p - buf));
		return;
	}
	ld_ep_commit(ep, (size_t)(w.p - buf), (const void *)&ld->o.target, ld->o.target_len,
		     tag_of(ld, c));
}

static void release(struct load *ld, struct ld_call *c)
{
	timer_del(&ld->tw, &c->tm);
	c->state = LC_FREE;
	c->gen++;
	ld->freel[ld->nfree++] = slot_of(ld, c);
	ld->active--;
}

static void fail(struct load *ld, struct ld_call *c, int status)
{
	ld->st.failed++;
	if (status > 0 && status < 700)
		ld->st.status[status]++;
	release(ld, c);
}

static void arm(struct load *ld, struct ld_call *c, uint64_t at_ms)
{
	timer_add(&ld->tw, &c->tm, at_ms);
}

static void start_bye(struct load *ld, struct ld_call *c)
{
	uint64_t now_ms = ld->now_us / 1000;

	c->state = LC_BYEING;
	c->provisional = false;
	c->t_txn_us = ld->now_us;
	c->rto_ms = ld->o.t1_ms;
	c->deadline_ms = now_ms + 64ull * ld->o.t1_ms;
	send_req(ld, c, SL_BYE, 'b');
	arm(ld, c, now_ms + c->rto_ms);
}

static void on_timer(struct timer *t)
{
	struct ld_call *c = container_of(t, struct ld_call, tm);
	struct load *ld = c->ld;
	uint64_t now_ms = ld->tw.now, next;

	switch (c->state) {
	case LC_HOLD:
		start_bye(ld, c);
		return;
	case LC_INVITING:
	case LC_BYEING:
		if (now_ms >= c->deadline_ms) { /* timer B or F */
			ld->st.timeouts++;
			fail(ld, c, 0);
			return;
		}
		if (!c->provisional && !ld->o.tcp) { /* timer A or E: UDP only */
			send_req(ld, c, c->state == LC_INVITING ? SL_INVITE : SL_BYE,
				 c->state == LC_INVITING ? c->inv_kind : 'b');
			ld->st.retrans++;
			c->rto_ms *= 2;
			if (c->state == LC_BYEING && c->rto_ms > ld->o.t2_ms)
				c->rto_ms = ld->o.t2_ms;
			next = now_ms + c->rto_ms;
		} else {
			next = c->deadline_ms;
		}
		arm(ld, c, next < c->deadline_ms ? next : c->deadline_ms);
		return;
	default:
		return;
	}
}

static void start_call(struct load *ld)
{
	struct ld_call *c = &ld->calls[ld->freel[--ld->nfree]];
	uint64_t now_ms = ld->now_us / 1000;

	timer_init(&c->tm, on_timer);
	c->state = LC_INVITING;
	c->provisional = false;
	c->totag_len = c->contact_len = 0;
	c->cseq_inv = 1;
	c->inv_kind = 'i';
	c->auth_tried = false;
	c->t_inv_us = c->t_txn_us = ld->now_us;
	c->rto_ms = ld->o.t1_ms;
	c->deadline_ms = now_ms + 64ull * ld->o.t1_ms;
	ld->active++;
	ld->st.started++;
	send_req(ld, c, SL_INVITE, 'i');
	arm(ld, c, now_ms + c->rto_ms);
}

void uac_pace(struct load *ld)
{
	uint64_t due;

	if (ld->stop || ld->st.started >= ld->o.max_calls)
		return;
	if (ld->o.tcp && !tcp_uac_up(ld))
		return; /* the calls due meanwhile start once it is back */
	due = pace_due(&ld->pace, since(ld->now_us, ld->t0_us));
	if (due > ld->o.max_calls)
		due = ld->o.max_calls;
	while (ld->st.started < due && ld->nfree)
		start_call(ld);
}

int64_t uac_pace_wait(const struct load *ld)
{
	uint64_t at;

	if (ld->stop || ld->st.started >= ld->o.max_calls || !ld->nfree)
		return -1;
	if (ld->o.tcp && !tcp_uac_up(ld))
		return -1;
	at = ld->t0_us + pace_at(&ld->pace, ld->st.started);
	return at > ld->now_us ? (int64_t)(at - ld->now_us) : 0;
}

static uint64_t hexnum(const char **pp, const char *e)
{
	const char *p = *pp;
	uint64_t v = 0;
	int n = 0;

	for (; p < e && n < 9; p++, n++) {
		char ch = *p;

		if (ch >= '0' && ch <= '9')
			v = v * 16 + (uint64_t)(ch - '0');
		else if (ch >= 'a' && ch <= 'f')
			v = v * 16 + (uint64_t)(ch - 'a' + 10);
		else
			break;
	}
	*pp = n ? p : NULL;
	return v;
}

/* The live call an answer's Call-ID names, or NULL. */
static struct ld_call *find(struct load *ld, const char *buf, const struct sl_msg *m)
{
	const char *p = buf + m->callid.off, *e = p + m->callid.len;
	uint64_t slot, gen;
	size_t rl = strlen(ld->run);
	struct ld_call *c;

	if (!ld->calls)
		return NULL;
	slot = hexnum(&p, e);
	if (!p || p >= e || *p++ != '-')
		return NULL;
	gen = hexnum(&p, e);
	if (!p || p >= e || *p++ != '-')
		return NULL;
	if ((size_t)(e - p) != rl || memcmp(p, ld->run, rl) || slot >= ld->ncalls)
		return NULL;
	c = &ld->calls[slot];
	if (c->state == LC_FREE || c->gen != (uint32_t)gen)
		return NULL;
	return c;
}

static bool keep_dialog(struct load *ld, struct ld_call *c, const char *buf, const struct sl_msg *m)
{
	if (m->to_tag.len > LD_TAG_MAX) {
		ld->st.bad_answer++;
		return false;
	}
	memcpy(c->totag, buf + m->to_tag.off, m->to_tag.len);
	c->totag_len = (uint8_t)m->to_tag.len;
	c->contact_len = 0;
	if (m->contact_uri.len && m->contact_uri.len <= LD_URI_MAX) {
		memcpy(c->contact, buf + m->contact_uri.off, m->contact_uri.len);
		c->contact_len = (uint8_t)m->contact_uri.len;
	}
	return true;
}

static void invite_answer(struct load *ld, struct ld_call *c, const char *buf,
			  const struct sl_msg *m)
{
	uint64_t now = ld->now_us;

	if (m->cseq != c->cseq_inv)
		return; /* an answer to the INVITE before the challenge */
	if (c->state != LC_INVITING) {
		if (m->status >= 200 && m->status < 300) { /* our ACK was lost: again */
			ld->st.rx_retrans++;
			send_req(ld, c, SL_ACK, 'a');
		}
		return;
	}
	if (m->status < 200) {
		if (!c->provisional) {
			c->provisional = true;
			arm(ld, c, c->deadline_ms);
		}
		return;
	}
	hist_add(&ld->txn_invite, since(now, c->t_txn_us));
	if (m->status >= 300) {
		if (m->to_tag.len <= LD_TAG_MAX) {
			memcpy(c->totag, buf + m->to_tag.off, m->to_tag.len);
			c->totag_len = (uint8_t)m->to_tag.len;
		}
		send_req(ld, c, SL_ACK, c->inv_kind);
		if ((m->status == 401 || m->status == 407) && ld->o.user && !c->auth_tried &&
		    !auth_challenge(ld, c, buf + m->challenge.off, m->challenge.len)) {
			/* again, with credentials: a new transaction */
			ld->st.challenges++;
			c->auth_tried = true;
			c->proxy_auth = m->status == 407;
			c->cseq_inv = 2;
			c->inv_kind = 'j';
			c->totag_len = 0;
			c->provisional = false;
			c->t_txn_us = now;
			c->rto_ms = ld->o.t1_ms;
			c->deadline_ms = now / 1000 + 64ull * ld->o.t1_ms;
			send_req(ld, c, SL_INVITE, c->inv_kind);
			arm(ld, c, now / 1000 + c->rto_ms);
			return;
		}
		fail(ld, c, m->status);
		return;
	}
	if (!keep_dialog(ld, c, buf, m)) {
		fail(ld, c, 0);
		return;
	}
	hist_add(&ld->setup, since(now, c->t_inv_us));
	hist_add(&ld->setup_iv, since(now, c->t_inv_us));
	send_req(ld, c, SL_ACK, 'a');
	if (ld->o.hold_ms == 0) {
		start_bye(ld, c);
		return;
	}
	c->state = LC_HOLD;
	arm(ld, c, now / 1000 + ld->o.hold_ms);
}

void uac_answer(struct load *ld, const char *buf, const struct sl_msg *m)
{
	struct ld_call *c = find(ld, buf, m);

	if (!c) {
		ld->st.stray++;
		return;
	}
	switch (m->cseq_method) {
	case SL_INVITE:
		invite_answer(ld, c, buf, m);
		return;
	case SL_BYE:
		if (c->state != LC_BYEING)
			return;
		if (m->status < 200) {
			if (!c->provisional) {
				c->provisional = true;
				arm(ld, c, c->deadline_ms);
			}
			return;
		}
		hist_add(&ld->txn_bye, since(ld->now_us, c->t_txn_us));
		if (m->status < 300) {
			ld->st.ok++;
			release(ld, c);
		} else {
			fail(ld, c, m->status);
		}
		return;
	default:
		ld->st.stray++;
		return;
	}
}

bool uac_request(struct load *ld, const char *buf, const struct sl_msg *m)
{
	struct ld_call *c;

	if (m->method != SL_BYE)
		return false;
	c = find(ld, buf, m);
	if (!c)
		return false;
	if (c->state == LC_HOLD || c->state == LC_BYEING) {
		ld->st.ok++; /* the far end hung up: a call that went through */
		release(ld, c);
	}
	return true;
}

void uac_send_failed(struct load *ld, uint64_t tag, int err)
{
	struct ld_call *c;
	uint32_t slot;

	(void)err;
	if (!tag || !ld->calls)
		return;
	tag--;
	slot = (uint32_t)tag;
	if (slot >= ld->ncalls)
		return;
	c = &ld->calls[slot];
	if (c->state == LC_FREE || c->gen != (uint32_t)(tag >> 32))
		return;
	ld->st.transport++;
	fail(ld, c, 0);
}

void uac_conn_lost(struct load *ld)
{
	for (uint32_t i = 0; i < ld->ncalls; i++) {
		struct ld_call *c = &ld->calls[i];

		if (c->state == LC_INVITING || c->state == LC_BYEING) {
			ld->st.transport++;
			fail(ld, c, 0);
		}
	}
}
