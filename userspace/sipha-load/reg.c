/* --register N: REGISTER N users (--users FIRST counting up), with digest
 * credentials when challenged (--password), each over its own Call-ID
 * with a CSeq that grows (RFC 3261 §10.2.4).  Before calls (--uac) or
 * with a callee (--uas), every user registers once at --reg-rate, calls
 * wait for that round to end, and each binding is refreshed at 4/5 of
 * the time the registrar granted.  Alone (no --uac, no --uas), it is a
 * registrar load: -m REGISTERs (default N) at --reg-rate, REGISTER k for
 * user k mod N, the later ones refreshes.  Timers E/F as for a BYE.  A
 * registration's answers find it by its Call-ID "r<index>-<run>". */
#include "sipha-load/load.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

static bool reg_alone(const struct load *ld)
{
	return !ld->o.uac && !ld->o.uas;
}

static inline uint32_t idx_of(const struct load *ld, const struct ld_reg *r)
{
	return (uint32_t)(r - ld->regs);
}

void reg_user(const struct load *ld, uint32_t i, char out[LD_USER_MAX + 24])
{
	if (!ld->o.users_width)
		snprintf(out, LD_USER_MAX + 24, "%s", ld->o.users_prefix);
	else
		snprintf(out, LD_USER_MAX + 24, "%s%0*llu", ld->o.users_prefix,
			 (int)ld->o.users_width, (unsigned long long)(ld->o.users_first + i));
}

static void on_timer(struct timer *t);

int reg_init(struct load *ld)
{
	const char *host;
	int err = 0;

	if (!ld->o.reg_n)
		return 0;
	if (ld->o.uas)
		host = ld->o.tcp ? ld->uas_host : ld->uas_ep->host;
	else
		host = ld->o.tcp ? ld->uac_host : ld->uac_ep->host;
	ld->regs = calloc(ld->o.reg_n, sizeof(*ld->regs));
	if (!ld->regs)
		return -ENOMEM;
	for (uint32_t i = 0; i < ld->o.reg_n; i++) {
		ld->regs[i].ld = ld;
		timer_init(&ld->regs[i].tm, on_timer);
	}
	ld->reg_pace.r0 = ld->reg_pace.r1 = ld->o.reg_rate;
	ld->reg_phase = ld->o.uac;
	err |= str_printf(&ld->reg_ruri, "sip:%s", ld->o.target_host);
	err |= str_printf(&ld->reg_contact, "@%s%s>\r\nExpires: %u\r\n", host,
			  ld->o.tcp ? ";transport=tcp" : "", ld->o.reg_expires);
	return err ? -ENOMEM : 0;
}

void reg_free(struct load *ld)
{
	free(ld->regs);
	ld->regs = NULL;
}

/* "r<index>-<run>": the registration's Call-ID and From tag. */
static void wb_rid(struct wb *w, const struct load *ld, const struct ld_reg *r)
{
	wb_lit(w, "r");
	wb_hex(w, idx_of(ld, r));
	wb_lit(w, "-");
	wb_mem(w, ld->run, strlen(ld->run));
}

/* "<sip:USER@HOST>": the address of record, in From and To. */
static void wb_aor(struct wb *w, const char *user, size_t ul, const char *host)
{
	wb_lit(w, "<sip:");
	wb_mem(w, user, ul);
	wb_lit(w, "@");
	wb_mem(w, host, strlen(host));
	wb_lit(w, ">");
}

static void send_register(struct load *ld, struct ld_reg *r)
{
	struct ld_ep *ep = ld->uac_ep;
	char *buf = ld->o.tcp ? tcp_next(ld, ld->uac_conn) : ld_ep_next(ld, ep);
	struct wb w = { buf, buf + LD_MSG_MAX, false };
	const char *t = ld->o.target_host;
	char user[LD_USER_MAX + 24];
	size_t ul;

	if (!buf)
		return; /* the connection does not drain: timer F ends it */
	reg_user(ld, idx_of(ld, r), user);
	ul = strlen(user);
	wb_lit(&w, "REGISTER ");
	wb_str(&w, &ld->reg_ruri);
	wb_str(&w, &ld->req_via);
	wb_rid(&w, ld, r);
	wb_lit(&w, "-");
	wb_u64(&w, r->cseq);
	wb_lit(&w, ";rport\r\nMax-Forwards: 70\r\nFrom: ");
	wb_aor(&w, user, ul, t);
	wb_lit(&w, ";tag=");
	wb_rid(&w, ld, r);
	wb_lit(&w, "\r\nTo: ");
	wb_aor(&w, user, ul, t);
	wb_lit(&w, "\r\nCall-ID: ");
	wb_rid(&w, ld, r);
	wb_lit(&w, "\r\nCSeq: ");
	wb_u64(&w, r->cseq);
	wb_lit(&w, " REGISTER\r\nContact: <sip:");
	wb_mem(&w, user, ul);
	wb_str(&w, &ld->reg_contact);
	if (r->auth_tried) {
		char cnonce[40];

		snprintf(cnonce, sizeof(cnonce), "%sr%x", ld->run, idx_of(ld, r));
		auth_header(&w, ld, &r->auth, user, "REGISTER", &ld->reg_ruri, cnonce);
	}
	wb_lit(&w, "Content-Length: 0\r\n\r\n");
	if (w.over)
		return;
	if (ld->o.tcp) {
		tcp_commit(ld->uac_conn, (size_t)(w.p - buf));
		return;
	}
	ld_ep_commit(ep, (size_t)(w.p - buf), (const void *)&ld->o.target, ld->o.target_len,
		     LD_TAG_REG | idx_of(ld, r));
}

/* A new REGISTER transaction of R (the first, a refresh, or the one with
 * credentials). */
static void txn(struct load *ld, struct ld_reg *r)
{
	uint64_t now_ms = ld->now_us / 1000;

	r->cseq++;
	r->state = LR_TXN;
	r->provisional = false;
	r->t_txn_us = ld->now_us;
	r->rto_ms = ld->o.t1_ms;
	r->deadline_ms = now_ms + 64ull * ld->o.t1_ms;
	send_register(ld, r);
	timer_add(&ld->tw, &r->tm, now_ms + r->rto_ms);
}

static void reg_start(struct load *ld, struct ld_reg *r)
{
	if (r->state == LR_BOUND)
		ld->st.reg_refreshes++;
	r->auth_tried = false;
	ld->st.reg.sent++;
	ld->reg_inflight++;
	txn(ld, r);
}

/* R's registration ended, ok (BOUND) or not (IDLE). */
static void reg_done(struct load *ld, struct ld_reg *r, bool ok, unsigned granted_s)
{
	r->state = ok ? LR_BOUND : LR_IDLE;
	ld->reg_inflight--;
	if (reg_alone(ld))
		return;
	if (ok && granted_s)
		timer_add(&ld->tw, &r->tm, ld->now_us / 1000 + granted_s * 800ull);
	if (r->ended_once)
		return;
	r->ended_once = true;
	if (++ld->reg_ended >= ld->o.reg_n && ld->reg_phase) {
		ld->reg_phase = false; /* every user had its first answer: calls start */
		uac_begin(ld);
	}
}

static void reg_failed(struct load *ld, struct ld_reg *r, uint64_t *cause, int status)
{
	ld->st.reg.failed++;
	if (cause)
		(*cause)++;
	if (status > 0 && status < 700)
		ld->st.reg.status[status]++;
	timer_del(&ld->tw, &r->tm);
	reg_done(ld, r, false, 0);
}

static void on_timer(struct timer *t)
{
	struct ld_reg *r = container_of(t, struct ld_reg, tm);
	struct load *ld = r->ld;
	uint64_t now_ms = ld->tw.now, next;

	if (r->state == LR_BOUND) {
		if (!ld->stop)
			reg_start(ld, r); /* refresh */
		return;
	}
	if (r->state != LR_TXN)
		return;
	if (now_ms >= r->deadline_ms) { /* timer F */
		reg_failed(ld, r, &ld->st.reg.timeouts, 0);
		return;
	}
	next = r->deadline_ms;
	if (!r->provisional && !ld->o.tcp) { /* timer E */
		send_register(ld, r);
		ld->st.reg.retrans++;
		r->rto_ms *= 2;
		if (r->rto_ms > ld->o.t2_ms)
			r->rto_ms = ld->o.t2_ms;
		if (now_ms + r->rto_ms < next)
			next = now_ms + r->rto_ms;
	}
	timer_add(&ld->tw, &r->tm, next);
}

/* The registration a Call-ID names, or NULL. */
static struct ld_reg *find(struct load *ld, const char *buf, const struct sl_msg *m)
{
	const char *p = buf + m->callid.off, *e = p + m->callid.len;
	size_t rl = strlen(ld->run);
	uint64_t i = 0;
	int n = 0;

	if (!ld->regs || p >= e || *p++ != 'r')
		return NULL;
	for (; p < e && n < 9; p++, n++) {
		if (*p >= '0' && *p <= '9')
			i = i * 16 + (uint64_t)(*p - '0');
		else if (*p >= 'a' && *p <= 'f')
			i = i * 16 + (uint64_t)(*p - 'a' + 10);
		else
			break;
	}
	if (!n || p >= e || *p++ != '-' || (size_t)(e - p) != rl || memcmp(p, ld->run, rl) ||
	    i >= ld->o.reg_n)
		return NULL;
	return &ld->regs[i];
}

/* The time granted: our Contact's expires (a registrar lists each binding
 * with its own), else Expires, else what we asked. */
static unsigned granted(const struct load *ld, const struct sl_msg *m)
{
	if (m->contact_expires != SL_NO_EXPIRES)
		return m->contact_expires;
	if (m->expires != SL_NO_EXPIRES)
		return m->expires;
	return ld->o.reg_expires;
}

void reg_answer(struct load *ld, const char *buf, const struct sl_msg *m)
{
	struct ld_reg *r = find(ld, buf, m);

	if (!r || r->state != LR_TXN || m->cseq != r->cseq) {
		ld->st.stray++;
		return;
	}
	if (m->status < 200) {
		ld_provisional(ld, &r->tm, &r->provisional, r->deadline_ms);
		return;
	}
	hist_add(&ld->st.reg.us, since(ld->now_us, r->t_txn_us));
	hist_add(&ld->reg_iv, since(ld->now_us, r->t_txn_us));
	if ((m->status == 401 || m->status == 407) && ld->o.password && !r->auth_tried &&
	    !auth_challenge(ld, &r->auth, buf + m->challenge.off, m->challenge.len)) {
		ld->st.reg.challenges++;
		r->auth_tried = true;
		r->auth.proxy = m->status == 407;
		txn(ld, r);
		return;
	}
	timer_del(&ld->tw, &r->tm);
	if (m->status >= 300) {
		reg_failed(ld, r, NULL, m->status);
		return;
	}
	ld->st.reg.ok++;
	reg_done(ld, r, true, granted(ld, m));
}

void reg_send_failed(struct load *ld, uint64_t tag)
{
	uint64_t i = tag & ~LD_TAG_REG;

	if (i < ld->o.reg_n && ld->regs[i].state == LR_TXN)
		reg_failed(ld, &ld->regs[i], &ld->st.reg.transport, 0);
}

void reg_conn_lost(struct load *ld)
{
	for (uint32_t i = 0; i < ld->o.reg_n && ld->regs; i++)
		if (ld->regs[i].state == LR_TXN)
			reg_failed(ld, &ld->regs[i], &ld->st.reg.transport, 0);
}

/* REGISTERs due by now: the first round (users in order), or alone the
 * k-th for user k mod N, up to -m. */
static uint64_t due(const struct load *ld)
{
	uint64_t d = pace_due(&ld->reg_pace, since(ld->now_us, ld->reg_t0_us));
	uint64_t cap = reg_alone(ld) ? ld->o.max_calls : ld->o.reg_n;

	return d < cap ? d : cap;
}

void reg_pace(struct load *ld)
{
	uint64_t d;

	if (!ld->regs || ld->stop)
		return;
	if (ld->o.tcp && !tcp_uac_up(ld))
		return;
	d = due(ld);
	while (ld->reg_next < d) {
		struct ld_reg *r = &ld->regs[ld->reg_next % ld->o.reg_n];

		if (r->state == LR_TXN)
			break; /* its last one is still out: wait */
		timer_del(&ld->tw, &r->tm);
		reg_start(ld, r);
		ld->reg_next++;
	}
}

int64_t reg_pace_wait(const struct load *ld)
{
	uint64_t cap = reg_alone(ld) ? ld->o.max_calls : ld->o.reg_n, at;

	if (!ld->regs || ld->stop || ld->reg_next >= cap)
		return -1;
	if (ld->o.tcp && !tcp_uac_up(ld))
		return -1;
	if (ld->regs[ld->reg_next % ld->o.reg_n].state == LR_TXN)
		return -1; /* its answer wakes the loop */
	at = ld->reg_t0_us + pace_at(&ld->reg_pace, ld->reg_next);
	return at > ld->now_us ? (int64_t)(at - ld->now_us) : 0;
}

bool reg_over(const struct load *ld)
{
	return !ld->reg_inflight && ld->reg_next >= (reg_alone(ld) ? ld->o.max_calls : 0);
}
