/* What high availability adds to the call table: the calls a hot standby
 * keeps for its peer (upserts, drops, a mark and sweep around snapshots),
 * and what a node that takes over does with them — rebuild the INVITE
 * transactions of calls still being set up, and answer responses whose
 * transaction died with the peer. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "server/call.h"
#include "server/call_int.h"
#include "server/server.h"

/* --- the standby's copies ------------------------------------------------------------ */

static void replica_free(struct call_replica *r)
{
	dlg_free(&r->a);
	dlg_free(&r->b);
	free(r->dn);
	free(r->from);
	free(r->to);
	free(r->routed_to);
	free(r->a_invite);
	free(r->b_invite);
	free(r->a_ok);
}

/* Moves R's contents into C, whose old ones are freed. */
static void replica_take(struct call *c, struct call_replica *r)
{
	dlg_free(&c->a.dlg);
	dlg_free(&c->b.dlg);
	free(c->dn);
	free(c->from);
	free(c->to);
	free(c->routed_to);
	free(c->a_invite);
	free(c->b_invite);
	c->state = r->state;
	c->routed_to = r->routed_to;
	c->a.dlg = r->a;
	c->b.dlg = r->b;
	c->dn = r->dn;
	c->from = r->from;
	c->to = r->to;
	c->a_invite = r->a_invite;
	c->a_invite_len = r->a_invite_len;
	c->b_invite = r->b_invite;
	c->b_invite_len = r->b_invite_len;
	/* A node that was active may still be retransmitting its own copy. */
	timer_del(c->srv->tw, &c->a.ok.t);
	free(c->a.ok.buf);
	c->a.ok.buf = r->a_ok;
	c->a.ok.len = r->a_ok_len;
	c->a.ok.cseq = r->a_ok_cseq;
	c->b.ack_deferred = r->b_ack_deferred;
	c->b.ack_cseq = r->b_ack_cseq;
	c->unconfirmed = false;
	memset(r, 0, sizeof(*r));
}

/* What set C up on this node (its INVITE transactions, the no-answer
 * timer) ends in silence: another node serves it now, or answered it. */
static void setup_end(struct call *c)
{
	timer_del(c->srv->tw, &c->t_ring);
	txn_abandon(c->a_inv);
	txn_abandon(c->b_inv);
}

int call_upsert_replica(struct server *srv, struct call_replica *r)
{
	struct call_table *ct = srv->calls;
	struct leg *l = dlg_lookup(ct, r->a.call_id, r->a.local_tag);
	struct call *c = l && l == &l->call->a ? l->call : NULL;

	if (c) {
		/* The same call again: the dialogs moved on (CSeq, target,
		 * the callee's tag). */
		dlg_index_del(ct, &c->a);
		dlg_index_del(ct, &c->b);
		replica_take(c, r);
		/* Answered on the old active while it handed over to us (a
		 * late record): the set-up this node resumed at the takeover
		 * is moot: its no-answer timer or the timeout of its INVITE
		 * would answer the caller (who has its 200) with 480 or 408
		 * and end the call. */
		if (c->state == CALL_ESTABLISHED)
			setup_end(c);
		dlg_index_add(ct, &c->a);
		if (c->b.dlg.call_id)
			dlg_index_add(ct, &c->b);
		call_cc_note(c, false);
		return 0;
	}
	c = call_alloc(srv, r->id);
	if (!c) {
		replica_free(r);
		return -ENOMEM;
	}
	replica_take(c, r);
	c->replicated = true;
	if (c->id >= ct->next_id)
		ct->next_id = c->id + 1; /* ids stay unique after a takeover */
	table_add(ct, c);
	call_cc_note(c, false);
	return 0;
}

void call_drop_replica(struct server *srv, const char *a_call_id, const char *a_tag)
{
	struct leg *l = dlg_lookup(srv->calls, a_call_id, a_tag);

	if (l && l == &l->call->a)
		call_release(l->call, "released on the active node");
}

/* Releases C without telling the peer: it is the peer's news. */
static void drop_quietly(struct call *c, const char *why)
{
	struct server *srv = c->srv;
	const struct srv_repl_ops saved = srv->repl;

	srv->repl.call = NULL;
	call_release(c, why);
	srv->repl = saved;
}

int calls_hold_all(struct call_table *ct, struct call ***out, size_t *n)
{
	struct call **v = malloc((ct->nlive ? ct->nlive : 1) * sizeof(*v));
	size_t i = 0;

	*out = v;
	*n = 0;
	if (!v)
		return -ENOMEM;
	for (struct call *c = ct->live; c; c = c->next) {
		c->refs++;
		v[i++] = c;
	}
	*n = i;
	return 0;
}

void call_unhold(struct call *c)
{
	call_put(c);
}

void calls_quiesce(struct call_table *ct)
{
	calls_resume_stop(ct);
	/* A live call keeps the table's reference: dropping its transactions'
	 * never frees it under us. */
	for (struct call *c = ct->live; c; c = c->next) {
		timer_del(ct->srv->tw, &c->a.ok.t);
		timer_del(ct->srv->tw, &c->b.ok.t);
		setup_end(c);
	}
}

void calls_mark_all(struct call_table *ct)
{
	for (struct call *c = ct->live; c; c = c->next)
		c->unconfirmed = true;
}

size_t calls_sweep(struct call_table *ct, call_iter_fn fn, void *arg)
{
	size_t n = 0;

	for (struct call *c = ct->live, *next; c; c = next) {
		next = c->next;
		if (!c->unconfirmed)
			continue;
		if (fn)
			fn(arg, c);
		drop_quietly(c, "not in the peer's snapshot");
		n++;
	}
	return n;
}

char *call_pending_invite(const struct call *c, bool b_side, size_t *len)
{
	const struct txn *t = b_side ? c->b_inv : c->a_inv;
	const char *copy = b_side ? c->b_invite : c->a_invite, *raw = NULL;
	size_t copy_len = b_side ? c->b_invite_len : c->a_invite_len, raw_len = 0;
	char *buf = NULL;

	*len = 0;
	if (c->state != CALL_DIALING && c->state != CALL_RINGING &&
	    !(c->state == CALL_QUEUED && !b_side))
		return NULL;
	if (t && b_side && t->out) {
		copy = t->out; /* the ICT keeps the bytes it sends */
		copy_len = t->outlen;
	} else if (t && !b_side && (raw = txn_raw(t, &raw_len))) {
		/* the IST keeps the octets that came: no tree printed again
		 * (resume_a amends the Via the way the request was) */
		copy = raw;
		copy_len = raw_len;
	} else if (t && t->req) {
		if (sipmsg_to_str(t->req, &buf, len))
			return NULL;
		return buf;
	}
	if (copy && (buf = malloc(copy_len))) {
		memcpy(buf, copy, copy_len);
		*len = copy_len;
	}
	return buf;
}

/* --- taking over ----------------------------------------------------------------------- */

/* Calls resumed per tick after a takeover: each costs ~15 µs (two INVITEs
 * parsed, two transactions, a send). */
#define RESUME_SLICE 128

/* The caller's INVITE becomes a new server transaction here, as if it had
 * just arrived: nothing is sent; its retransmissions are absorbed, and the
 * answers of the call go through it. */
static int resume_a(struct call *c)
{
	struct server *srv = c->srv;
	struct sip_peer from = c->a.dlg.peer;
	osip_message_t *inv = NULL;
	struct txn *st = NULL;
	enum txn_rx rx;

	if (!c->a_invite || sipmsg_parse(c->a_invite, c->a_invite_len, true, &inv))
		return -EINVAL;
	/* As srv_rx did: the record may carry the octets as they came. */
	(void)sipmsg_via_received(inv, (const struct sockaddr *)&from.addr);
	if (from.proto == SIP_PROTO_TCP) {
		/* Its connection died with the peer: §18.2.2, answers go to
		 * the address it came from, at its Via's port. */
		from.conn = 0;
		from.reply_port = sipmsg_via_port(inv);
	}
	rx = txn_rx_request(srv->txns, inv, &from, &st);
	osip_message_free(inv);
	if (rx != TXN_RX_NEW)
		return -EEXIST;
	c->a_inv = st;
	c->refs++;
	txn_set_user(st, &call_ainv_user, c);
	return 0;
}

/* Sipha's INVITE to the callee goes out again, byte for byte: the callee's
 * transaction takes it for a retransmission and answers with its last
 * response, which this new client transaction now receives. */
static int resume_b(struct call *c)
{
	struct server *srv = c->srv;
	osip_message_t *inv = NULL;
	struct sip_peer to = c->b.dlg.peer;
	int ret;

	if (!c->b_invite || sipmsg_parse(c->b_invite, c->b_invite_len, true, &inv))
		return -EINVAL;
	to.conn = 0;
	if (!to.addrlen && leg_peer(&c->b, &to)) {
		osip_message_free(inv);
		return -EHOSTUNREACH;
	}
	c->refs++;
	ret = txn_request_bytes(srv->txns, inv, c->b_invite, c->b_invite_len, &to, &call_binv_user,
				c, &c->b_inv);
	if (ret) {
		c->refs--;
		return ret;
	}
	c->b_provisional = c->state == CALL_RINGING;
	return 0;
}

/* Answered on the peer, the caller's ACK not seen: its 2xx is sent and
 * retransmitted from here until the ACK (which, with a delayed offer, also
 * releases the callee's ACK). */
static void resume_2xx(struct call *c)
{
	struct uas_2xx *ok = &c->a.ok;
	struct sip_peer to;
	char *buf = ok->buf;

	if (!buf || timer_pending(&ok->t))
		return;
	ok->buf = NULL;
	if (!arm_2xx(c, &c->a, buf, ok->len, ok->cseq, c->a.dlg.peer.proto == SIP_PROTO_TCP) &&
	    !leg_peer(&c->a, &to))
		srv_send(c->srv, &to, ok->buf, ok->len);
	free(buf);
}

/* Rebuilds the transactions of C, taken over while being set up; with ST,
 * the caller's INVITE just arrived again and is its server transaction. */
static int resume_one(struct call *c, struct txn *st)
{
	struct server *srv = c->srv;
	int ret = 0;

	c->resume_pending = false;
	if (st) {
		c->a_inv = st;
		c->refs++;
		txn_set_user(st, &call_ainv_user, c);
		txn_reply(st, 100, "Trying", NULL);
	} else {
		ret = resume_a(c);
	}
	if (!ret && c->state != CALL_QUEUED)
		ret = resume_b(c);
	if (ret) {
		pr_warn("call %llu (%s -> %s): cannot resume after the takeover",
			(unsigned long long)c->id, c->from ? c->from : "?", c->to ? c->to : "?");
		if (c->a_inv)
			txn_reply(c->a_inv, 500, "Server Internal Error", c->a.dlg.local_tag);
		srv->st.calls_failed++;
		call_release(c, "cannot resume");
		return ret;
	}
	free(c->a_invite);
	free(c->b_invite);
	c->a_invite = c->b_invite = NULL;
	/* The peer's no-answer (or route) timer died with it: a whole one here. */
	if (c->state == CALL_QUEUED)
		timer_add(srv->tw, &c->t_ring, srv->tw->now + srv->cfg->cti.route_timeout_ms);
	else if (srv->cfg->sip.no_answer_ms)
		timer_add(srv->tw, &c->t_ring, srv->tw->now + srv->cfg->sip.no_answer_ms);
	return 0;
}

int call_resume_now(struct call *c, struct txn *st)
{
	return c->resume_pending && c->state != CALL_RELEASED ? resume_one(c, st) : -ENOENT;
}

void calls_resume_stop(struct call_table *ct)
{
	timer_del(ct->srv->tw, &ct->t_resume);
	for (; ct->iresume < ct->nresume; ct->iresume++) {
		ct->resume[ct->iresume]->resume_pending = false;
		call_put(ct->resume[ct->iresume]);
	}
	free(ct->resume);
	ct->resume = NULL;
	ct->nresume = ct->iresume = 0;
}

void calls_resume_tick(struct timer *t)
{
	struct call_table *ct = container_of(t, struct call_table, t_resume);
	unsigned n = 0;

	while (ct->iresume < ct->nresume && n < RESUME_SLICE) {
		struct call *c = ct->resume[ct->iresume++];

		if (!call_resume_now(c, NULL))
			n++;
		call_put(c);
	}
	if (ct->iresume < ct->nresume)
		timer_add(ct->srv->tw, t, ct->srv->tw->now + 1);
	else
		calls_resume_stop(ct);
}

struct call *call_pending_for(struct call_table *ct, const osip_message_t *req)
{
	osip_generic_param_t *tag = NULL;
	char cid[256];

	if (ct->iresume >= ct->nresume || !req->call_id || !req->call_id->number || !req->from ||
	    osip_from_get_tag(req->from, &tag) || !tag || !tag->gvalue)
		return NULL;
	snprintf(cid, sizeof(cid), "%s%s%s", req->call_id->number, req->call_id->host ? "@" : "",
		 req->call_id->host ? req->call_id->host : "");
	/* Linear, and only while a takeover's calls are being resumed. */
	for (size_t i = ct->iresume; i < ct->nresume; i++) {
		struct call *c = ct->resume[i];

		if (c->resume_pending && c->state != CALL_RELEASED && c->a.dlg.remote_tag &&
		    !strcmp(c->a.dlg.call_id, cid) && !strcmp(c->a.dlg.remote_tag, tag->gvalue))
			return c;
	}
	return NULL;
}

size_t calls_take_over(struct call_table *ct)
{
	size_t n = 0, cap = 0;

	calls_resume_stop(ct);
	for (struct call *c = ct->live; c; c = c->next) {
		c->unconfirmed = false;
		if (c->state != CALL_DIALING && c->state != CALL_RINGING &&
		    c->state != CALL_QUEUED) {
			free(c->a_invite);
			free(c->b_invite);
			c->a_invite = c->b_invite = NULL;
			resume_2xx(c);
			continue;
		}
		if (c->a_inv || c->b_inv)
			continue; /* set up here: nothing to rebuild */
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			struct call **v = realloc(ct->resume, ncap * sizeof(*v));

			if (!v)
				break; /* the rest stay as they are: CANCEL gets 481 */
			ct->resume = v;
			cap = ncap;
		}
		c->refs++;
		c->resume_pending = true;
		ct->resume[n++] = c;
	}
	ct->nresume = n;
	ct->iresume = 0;
	/* The first slice now; the rest a slice per millisecond, or at once
	 * when a message of theirs comes (the caller's CANCEL or INVITE, the
	 * callee's answer): the new active answers its first request after
	 * RESUME_SLICE calls' work at most, not after all of them. */
	if (n)
		calls_resume_tick(&ct->t_resume);
	return n;
}

/* --- responses whose transaction is gone ----------------------------------------- */

/* A 3xx-6xx whose INVITE client transaction is not here: ACK it as the
 * ICT would (§17.1.1.3: the INVITE's branch, To with the response's tag). */
static void ack_stray_final(struct server *srv, const osip_message_t *resp, const char *ruri,
			    const struct sip_peer *to)
{
	osip_message_t *ack = NULL;
	osip_via_t *via = NULL, *v2 = NULL;
	char cs[32], *buf = NULL;
	size_t len;

	if (osip_message_init(&ack))
		return;
	osip_message_set_method(ack, osip_strdup("ACK"));
	osip_message_set_version(ack, osip_strdup("SIP/2.0"));
	osip_uri_init(&ack->req_uri);
	if (osip_uri_parse(ack->req_uri, ruri))
		goto out;
	osip_message_get_via(resp, 0, &via);
	if (!via || osip_via_clone(via, &v2))
		goto out;
	osip_list_add(&ack->vias, v2, -1);
	osip_from_clone(resp->from, &ack->from);
	osip_to_clone(resp->to, &ack->to);
	osip_call_id_clone(resp->call_id, &ack->call_id);
	snprintf(cs, sizeof(cs), "%s ACK", resp->cseq->number);
	osip_message_set_cseq(ack, cs);
	osip_message_set_max_forwards(ack, "70");
	if (!sipmsg_to_str(ack, &buf, &len))
		srv_send(srv, to, buf, len);
	free(buf);
out:
	osip_message_free(ack);
}

bool call_on_stray_response(struct server *srv, osip_message_t *resp)
{
	struct sip_peer to;
	struct leg *l;
	struct call *c;
	uint32_t cseq;
	int code = resp->status_code;

	if (!resp->cseq || !resp->cseq->method || strcmp(resp->cseq->method, "INVITE"))
		return false;
	l = dlg_find(srv->calls, resp, true);
	if (!l)
		return false;
	c = l->call;
	if (c->resume_pending && l == &c->b) {
		/* Its turn has not come yet: now, and the answer goes to the
		 * client transaction just rebuilt. */
		return !call_resume_now(c, NULL) && txn_rx_response(srv->txns, resp, NULL);
	}
	if (code < 200)
		return false;
	cseq = (uint32_t)strtoul(resp->cseq->number, NULL, 10);
	if (leg_peer(l, &to))
		return false;
	if (code >= 300) {
		ack_stray_final(srv, resp, l->dlg.remote_target, &to);
		return true;
	}
	if (l->ack_buf && l->ack_cseq == cseq) {
		srv_send(srv, &to, l->ack_buf, l->ack_len); /* our ACK was lost */
		return true;
	}
	if (c->state == CALL_ESTABLISHED) {
		/* A 2xx whose transaction is gone: our ACK was lost and the node
		 * that sent it died, or a re-INVITE was in flight at the
		 * takeover.  Every 2xx gets its ACK (§13.2.2.4), or the far end
		 * ends the call once it gives up retransmitting; not the one
		 * that waits for the caller's answer SDP (delayed offer). */
		if (!(l->ack_deferred && cseq == l->ack_cseq))
			send_ack(c, l, cseq, NULL);
		return true;
	}
	return false;
}
