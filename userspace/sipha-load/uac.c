/* The caller: INVITE, ACK the 200, hold, BYE; RFC 3261 timers A/B and E/F
 * over UDP.  While a call is held it may send OPTIONS (--options-every)
 * and one re-INVITE (--reinvite-after), one transaction at a time on a
 * timer of their own (mtm).  A call's slot and generation are written into
 * its Call-ID, tags and branches, so an answer finds its call without a
 * lookup table. */
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

	if (ld->o.uac) {
		ld->calls = calloc(slots, sizeof(*ld->calls));
		ld->freel = calloc(slots, sizeof(*ld->freel));
		if (!ld->calls || !ld->freel)
			return -ENOMEM;
		ld->ncalls = (uint32_t)slots;
	}
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
	struct ld_str *s[] = { &ld->ruri,     &ld->req_via,  &ld->via_from,
			       &ld->to_open,  &ld->inv_tail, &ld->ack_tail,
			       &ld->sdp_tail, &ld->reg_ruri, &ld->reg_contact };

	for (size_t i = 0; i < sizeof(s) / sizeof(s[0]); i++)
		free(s[i]->s);
	free(ld->calls);
	free(ld->freel);
}

static inline uint32_t slot_of(const struct load *ld, const struct ld_call *c)
{
	return (uint32_t)(c - ld->calls);
}

/* The call a queued datagram belongs to (LD_TAG_REG is a registration's). */
static inline uint64_t tag_of(const struct load *ld, const struct ld_call *c)
{
	return ((uint64_t)(c->gen & LD_GEN_MASK) << 32 | slot_of(ld, c)) + 1;
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
	case SL_OPTIONS:
		wb_lit(w, "OPTIONS");
		break;
	default:
		wb_lit(w, "BYE");
		break;
	}
}

/* Branch kinds: 'i' the INVITE and the ACK of a non-2xx to it (same
 * transaction), 'j' the same with credentials, 'a' the ACK of its 2xx, 'b'
 * the BYE; mid-call, with the CSeq after the kind: 'o' an OPTIONS, 'r' a
 * re-INVITE and the ACK of a non-2xx to it, 's' the ACK of its 2xx. */
static inline bool in_dialog(char kind)
{
	return kind != 'i' && kind != 'j';
}

/* Writes request METHOD of call C (CSeq CSEQ, branch KIND) into the
 * caller's queue, to TARGET or to the first hop of the route set. */
static void send_req(struct load *ld, struct ld_call *c, enum sl_method m, char kind, uint32_t cseq)
{
	struct ld_ep *ep = ld->uac_ep;
	char *buf = ld->o.tcp ? tcp_next(ld, ld->uac_conn) : ld_ep_next(ld, ep);
	struct wb w = { buf, buf + LD_MSG_MAX, false };
	bool dlg = in_dialog(kind);

	if (!buf)
		return; /* the connection does not drain: timer B/F ends the call */

	wb_method(&w, m);
	wb_lit(&w, " ");
	if (dlg)
		route_ruri(&w, ld, c);
	else
		wb_str(&w, &ld->ruri);
	wb_str(&w, &ld->req_via);
	wb_id(&w, ld, c);
	wb_mem(&w, &kind, 1);
	if (kind == 'o' || kind == 'r' || kind == 's')
		wb_u64(&w, cseq);
	wb_str(&w, &ld->via_from);
	wb_id(&w, ld, c);
	wb_str(&w, &ld->to_open);
	if ((m != SL_INVITE || dlg) && c->totag_len) {
		wb_lit(&w, ";tag=");
		wb_mem(&w, c->totag, c->totag_len);
	}
	wb_lit(&w, "\r\nCall-ID: ");
	wb_id(&w, ld, c);
	wb_lit(&w, "\r\nCSeq: ");
	wb_u64(&w, cseq);
	wb_lit(&w, " ");
	wb_method(&w, m);
	wb_lit(&w, "\r\n");
	if (dlg)
		route_header(&w, c);
	if (m == SL_INVITE && !dlg && c->auth_tried) {
		char cnonce[32];

		snprintf(cnonce, sizeof(cnonce), "%s%x", ld->run, slot_of(ld, c));
		auth_header(&w, ld, &c->auth, ld->o.user, "INVITE", &ld->ruri, cnonce);
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
	if (dlg && c->has_hop)
		ld_ep_commit(ep, (size_t)(w.p - buf), &c->hop.sa,
			     c->hop.sa.sa_family == AF_INET6 ? sizeof(c->hop.in6)
							     : sizeof(c->hop.in),
			     tag_of(ld, c));
	else
		ld_ep_commit(ep, (size_t)(w.p - buf), (const void *)&ld->o.target, ld->o.target_len,
			     tag_of(ld, c));
}

static void release(struct load *ld, struct ld_call *c)
{
	timer_del(&ld->tw, &c->tm);
	timer_del(&ld->tw, &c->mtm);
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
	if (c->set_up)
		maxrate_failed_after(ld, c);
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
	send_req(ld, c, SL_BYE, 'b', ++c->cseq);
	arm(ld, c, now_ms + c->rto_ms);
}

/* Timer A or E has fired at NOW_MS on a transaction with retransmission
 * interval *RTO and deadline DEADLINE (timer B or F): sends it again over
 * UDP until a 1xx came (PROV); returns when to fire next. */
static uint64_t retransmit(struct load *ld, struct ld_call *c, enum sl_method m, char kind,
			   uint32_t cseq, bool prov, uint32_t *rto, uint64_t deadline,
			   uint64_t *counter)
{
	uint64_t now_ms = ld->tw.now, next;

	if (prov || ld->o.tcp) /* timers A and E are UDP's */
		return deadline;
	send_req(ld, c, m, kind, cseq);
	(*counter)++;
	*rto *= 2;
	if (m != SL_INVITE && *rto > ld->o.t2_ms)
		*rto = ld->o.t2_ms;
	next = now_ms + *rto;
	return next < deadline ? next : deadline;
}

/* --- mid-call: OPTIONS and re-INVITE ------------------------------------------------ */

static struct ld_mstat *mstat(struct load *ld, const struct ld_call *c)
{
	return c->mmethod == SL_INVITE ? &ld->st.reinv : &ld->st.opt;
}

/* Arms the mid-call timer at the next OPTIONS or re-INVITE due before the
 * BYE, if any. */
static void mid_plan(struct load *ld, struct ld_call *c)
{
	uint64_t next = c->bye_at_ms;

	if (ld->o.options_ms && c->next_opt_ms < next)
		next = c->next_opt_ms;
	if (ld->o.reinvite && !c->reinvited && c->reinv_at_ms < next)
		next = c->reinv_at_ms;
	if (next >= c->bye_at_ms) {
		c->mstate = LM_NONE;
		return;
	}
	c->mstate = LM_WAIT;
	timer_add(&ld->tw, &c->mtm, next);
}

static void mid_start(struct load *ld, struct ld_call *c, enum sl_method m)
{
	uint64_t now_ms = ld->tw.now;

	c->mstate = LM_TXN;
	c->mmethod = (uint8_t)m;
	c->mcseq = ++c->cseq;
	if (m == SL_INVITE)
		c->rcseq = c->mcseq;
	c->mprov = false;
	c->mt_us = ld->now_us;
	c->mrto_ms = ld->o.t1_ms;
	c->mdeadline_ms = now_ms + 64ull * ld->o.t1_ms;
	mstat(ld, c)->sent++;
	send_req(ld, c, m, m == SL_INVITE ? 'r' : 'o', c->mcseq);
	timer_add(&ld->tw, &c->mtm, now_ms + c->mrto_ms);
}

/* The mid-call transaction ended: the BYE when it waited, else the next. */
static void mid_end(struct load *ld, struct ld_call *c)
{
	c->mstate = LM_NONE;
	if (c->bye_waits) {
		c->bye_waits = false;
		timer_del(&ld->tw, &c->tm);
		start_bye(ld, c);
		return;
	}
	mid_plan(ld, c);
}

static void mid_failed(struct load *ld, struct ld_call *c, uint64_t *cause, int status)
{
	struct ld_mstat *s = mstat(ld, c);

	s->failed++;
	if (cause)
		(*cause)++;
	if (status > 0 && status < 700)
		s->status[status]++;
	mid_end(ld, c);
}

static void on_mtimer(struct timer *t)
{
	struct ld_call *c = container_of(t, struct ld_call, mtm);
	struct load *ld = c->ld;
	uint64_t now_ms = ld->tw.now;
	enum sl_method m = (enum sl_method)c->mmethod;

	if (c->state != LC_HOLD)
		return;
	if (c->mstate == LM_WAIT) {
		if (ld->o.reinvite && !c->reinvited && c->reinv_at_ms <= now_ms) {
			c->reinvited = true;
			mid_start(ld, c, SL_INVITE);
		} else {
			c->next_opt_ms += ld->o.options_ms;
			mid_start(ld, c, SL_OPTIONS);
		}
		return;
	}
	if (c->mstate != LM_TXN)
		return;
	if (now_ms >= c->mdeadline_ms) { /* timer B or F */
		mid_failed(ld, c, &mstat(ld, c)->timeouts, 0);
		return;
	}
	timer_add(&ld->tw, &c->mtm,
		  retransmit(ld, c, m, m == SL_INVITE ? 'r' : 'o', c->mcseq, c->mprov, &c->mrto_ms,
			     c->mdeadline_ms, &mstat(ld, c)->retrans));
}

/* An answer to a mid-call request: the OPTIONS or re-INVITE in flight,
 * or a 2xx to the re-INVITE again (our ACK was lost). */
static void mid_answer(struct load *ld, struct ld_call *c, const struct sl_msg *m)
{
	struct ld_mstat *s = mstat(ld, c);

	if (c->mstate != LM_TXN || c->mcseq != m->cseq || c->mmethod != m->cseq_method) {
		if (m->cseq_method == SL_INVITE && m->status >= 200 && m->status < 300) {
			ld->st.rx_retrans++;
			send_req(ld, c, SL_ACK, 's', c->rcseq);
		}
		return;
	}
	if (m->status < 200) {
		ld_provisional(ld, &c->mtm, &c->mprov, c->mdeadline_ms);
		return;
	}
	hist_add(&s->us, since(ld->now_us, c->mt_us));
	if (c->mmethod == SL_INVITE)
		send_req(ld, c, SL_ACK, m->status < 300 ? 's' : 'r', c->mcseq);
	if (m->status >= 300) {
		mid_failed(ld, c, NULL, m->status);
		return;
	}
	s->ok++;
	mid_end(ld, c);
}

/* The call is established: hold it (and plan the mid-call requests), or
 * hang up at once. */
static void hold(struct load *ld, struct ld_call *c)
{
	uint64_t now_ms = ld->now_us / 1000, h = dist_draw(&ld->o.hold, &ld->rng);

	hist_add(&ld->hold, h);
	if (h == 0) {
		start_bye(ld, c);
		return;
	}
	c->state = LC_HOLD;
	c->bye_at_ms = now_ms + h;
	c->next_opt_ms = now_ms + ld->o.options_ms;
	c->reinv_at_ms = now_ms + ld->o.reinvite_ms;
	c->reinvited = c->bye_waits = false;
	arm(ld, c, c->bye_at_ms);
	if (ld->o.options_ms || ld->o.reinvite)
		mid_plan(ld, c);
}

/* --- the call --------------------------------------------------------------------- */

static void on_timer(struct timer *t)
{
	struct ld_call *c = container_of(t, struct ld_call, tm);
	struct load *ld = c->ld;
	uint64_t now_ms = ld->tw.now;

	switch (c->state) {
	case LC_HOLD:
		if (c->mstate == LM_TXN) { /* the BYE goes when it ends */
			c->bye_waits = true;
			return;
		}
		timer_del(&ld->tw, &c->mtm);
		c->mstate = LM_NONE;
		start_bye(ld, c);
		return;
	case LC_INVITING:
	case LC_BYEING:
		if (now_ms >= c->deadline_ms) { /* timer B or F */
			ld->st.timeouts++;
			fail(ld, c, 0);
			return;
		}
		if (c->state == LC_INVITING)
			arm(ld, c,
			    retransmit(ld, c, SL_INVITE, c->inv_kind, c->cseq_inv, c->provisional,
				       &c->rto_ms, c->deadline_ms, &ld->st.retrans));
		else
			arm(ld, c,
			    retransmit(ld, c, SL_BYE, 'b', c->cseq, c->provisional, &c->rto_ms,
				       c->deadline_ms, &ld->st.retrans));
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
	timer_init(&c->mtm, on_mtimer);
	c->state = LC_INVITING;
	c->provisional = c->set_up = false;
	c->totag_len = c->contact_len = 0;
	c->route_len = 0;
	c->has_hop = false;
	c->mstate = LM_NONE;
	c->cseq_inv = 1;
	c->inv_kind = 'i';
	c->auth_tried = false;
	c->t_inv_us = c->t_txn_us = ld->now_us;
	c->rto_ms = ld->o.t1_ms;
	c->deadline_ms = now_ms + 64ull * ld->o.t1_ms;
	ld->active++;
	ld->st.started++;
	maxrate_started(ld, c);
	send_req(ld, c, SL_INVITE, 'i', c->cseq_inv);
	arm(ld, c, now_ms + c->rto_ms);
}

void uac_begin(struct load *ld)
{
	ld->pace_t0_us = ld->now_us;
	ld->pace_n0 = ld->st.started;
	if (ld->o.max_rate)
		maxrate_begin(ld);
}

void uac_pace(struct load *ld)
{
	uint64_t due;

	if (ld->stop || ld->reg_phase || ld->st.started >= ld->o.max_calls)
		return;
	if (ld->o.max_rate && maxrate_tick(ld))
		return; /* the search is over */
	if (ld->o.tcp && !tcp_uac_up(ld))
		return; /* the calls due meanwhile start once it is back */
	due = ld->pace_n0 + pace_due(&ld->pace, since(ld->now_us, ld->pace_t0_us));
	if (due > ld->o.max_calls)
		due = ld->o.max_calls;
	while (ld->st.started < due && ld->nfree)
		start_call(ld);
}

int64_t uac_pace_wait(const struct load *ld)
{
	uint64_t at;

	if (ld->stop || ld->reg_phase || ld->st.started >= ld->o.max_calls)
		return -1;
	if (ld->o.max_rate && ld->now_us >= ld->step_end_us)
		return 0;
	if (!ld->nfree || (ld->o.tcp && !tcp_uac_up(ld)))
		return ld->o.max_rate ? (int64_t)(ld->step_end_us - ld->now_us) : -1;
	at = ld->pace_t0_us + pace_at(&ld->pace, ld->st.started - ld->pace_n0);
	if (ld->o.max_rate && at > ld->step_end_us)
		at = ld->step_end_us;
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
	if (m->to_tag.len > LD_TAG_MAX || route_set(c, buf, m)) {
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

/* A 401/407 to the INVITE: again with credentials, as a new transaction
 * (true), or not (false: the call fails by the status). */
static bool invite_again(struct load *ld, struct ld_call *c, const char *buf,
			 const struct sl_msg *m)
{
	uint64_t now = ld->now_us;

	if ((m->status != 401 && m->status != 407) || !ld->o.user || c->auth_tried ||
	    auth_challenge(ld, &c->auth, buf + m->challenge.off, m->challenge.len))
		return false;
	ld->st.challenges++;
	c->auth_tried = true;
	c->auth.proxy = m->status == 407;
	c->cseq_inv = 2;
	c->inv_kind = 'j';
	c->totag_len = 0;
	c->provisional = false;
	c->t_txn_us = now;
	c->rto_ms = ld->o.t1_ms;
	c->deadline_ms = now / 1000 + 64ull * ld->o.t1_ms;
	send_req(ld, c, SL_INVITE, c->inv_kind, c->cseq_inv);
	arm(ld, c, now / 1000 + c->rto_ms);
	return true;
}

static void invite_answer(struct load *ld, struct ld_call *c, const char *buf,
			  const struct sl_msg *m)
{
	uint64_t now = ld->now_us;

	if (m->cseq != c->cseq_inv) {
		if (c->reinvited && m->cseq == c->rcseq && c->state == LC_HOLD)
			mid_answer(ld, c, m); /* the re-INVITE's */
		return; /* else an answer to the INVITE before the challenge */
	}
	if (c->state != LC_INVITING) {
		if (m->status >= 200 && m->status < 300) { /* our ACK was lost: again */
			ld->st.rx_retrans++;
			send_req(ld, c, SL_ACK, 'a', c->cseq_inv);
		}
		return;
	}
	if (m->status < 200) {
		ld_provisional(ld, &c->tm, &c->provisional, c->deadline_ms);
		return;
	}
	hist_add(&ld->txn_invite, since(now, c->t_txn_us));
	if (m->status >= 300) {
		if (m->to_tag.len <= LD_TAG_MAX) {
			memcpy(c->totag, buf + m->to_tag.off, m->to_tag.len);
			c->totag_len = (uint8_t)m->to_tag.len;
		}
		send_req(ld, c, SL_ACK, c->inv_kind, c->cseq_inv);
		if (!invite_again(ld, c, buf, m))
			fail(ld, c, m->status);
		return;
	}
	if (!keep_dialog(ld, c, buf, m)) {
		fail(ld, c, 0);
		return;
	}
	c->set_up = true;
	c->cseq = c->cseq_inv;
	hist_add(&ld->setup, since(now, c->t_inv_us));
	hist_add(&ld->setup_iv, since(now, c->t_inv_us));
	maxrate_set_up(ld, c, since(now, c->t_inv_us));
	send_req(ld, c, SL_ACK, 'a', c->cseq_inv);
	hold(ld, c);
}

static void bye_answer(struct load *ld, struct ld_call *c, const struct sl_msg *m)
{
	if (c->state != LC_BYEING || m->cseq != c->cseq)
		return;
	if (m->status < 200) {
		ld_provisional(ld, &c->tm, &c->provisional, c->deadline_ms);
		return;
	}
	hist_add(&ld->txn_bye, since(ld->now_us, c->t_txn_us));
	if (m->status < 300) {
		ld->st.ok++;
		release(ld, c);
	} else {
		fail(ld, c, m->status);
	}
}

void uac_answer(struct load *ld, const char *buf, const struct sl_msg *m)
{
	struct ld_call *c;

	if (m->cseq_method == SL_REGISTER) {
		reg_answer(ld, buf, m);
		return;
	}
	c = find(ld, buf, m);
	if (!c) {
		ld->st.stray++;
		return;
	}
	switch (m->cseq_method) {
	case SL_INVITE:
		invite_answer(ld, c, buf, m);
		return;
	case SL_BYE:
		bye_answer(ld, c, m);
		return;
	case SL_OPTIONS:
		if (c->state == LC_HOLD)
			mid_answer(ld, c, m);
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
	if (tag & LD_TAG_REG) {
		reg_send_failed(ld, tag);
		return;
	}
	if (!tag || !ld->calls)
		return;
	tag--;
	slot = (uint32_t)tag;
	if (slot >= ld->ncalls)
		return;
	c = &ld->calls[slot];
	if (c->state == LC_FREE || (c->gen & LD_GEN_MASK) != (uint32_t)(tag >> 32))
		return;
	ld->st.transport++;
	fail(ld, c, 0);
}

void uac_conn_lost(struct load *ld)
{
	reg_conn_lost(ld);
	for (uint32_t i = 0; i < ld->ncalls; i++) {
		struct ld_call *c = &ld->calls[i];

		if (c->state == LC_INVITING || c->state == LC_BYEING) {
			ld->st.transport++;
			fail(ld, c, 0);
		} else if (c->state == LC_HOLD && c->mstate == LM_TXN) {
			timer_del(&ld->tw, &c->mtm);
			mid_failed(ld, c, &mstat(ld, c)->transport, 0);
		}
	}
}
