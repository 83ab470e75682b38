/* In-dialog business: a request within a call's dialog is relayed as a
 * new request of the other leg's dialog (struct relay pairs the two
 * transactions) and its response comes back the same way; BYEs end the
 * call, an ACK stops the 2xx retransmission it answers. */
#include <stdlib.h>

#include "server/call.h"
#include "server/call_int.h"
#include "server/server.h"

/* A relayed in-dialog request: the server transaction on one leg and the
 * client transaction that carries it on the other. */
struct relay {
	struct call *call;
	struct txn *st;
	struct txn *ct;
	struct leg *from; /* the leg the request came in on */
	struct leg *to;
	bool is_invite;
	bool is_bye;
};

/* --- in-dialog requests ------------------------------------------------------------------ */

static void relay_terminated(struct txn *t, void *uarg)
{
	struct relay *r = uarg;

	if (r->st == t)
		r->st = NULL;
	if (r->ct == t)
		r->ct = NULL;
	if (!r->st && !r->ct) {
		call_put(r->call);
		free(r);
	}
}

static void relay_response(struct txn *t, void *uarg, osip_message_t *resp)
{
	struct relay *r = uarg;
	struct call *c = r->call;
	int code = resp->status_code;

	(void)t;
	if (code == 100)
		return;
	if (r->is_invite && code >= 200 && code < 300) {
		uint32_t cseq = (uint32_t)strtoul(resp->cseq->number, NULL, 10);

		if (r->to->ack_buf && r->to->ack_cseq == cseq) {
			struct sip_peer to;

			if (!leg_peer(r->to, &to))
				srv_send(c->srv, &to, r->to->ack_buf, r->to->ack_len);
			return;
		}
		dlg_refresh_target(&r->to->dlg, resp);
		send_ack(c, r->to, cseq, NULL);
		if (r->st)
			reply_2xx(c, r->from, r->st, resp);
		return;
	}
	if (code >= 200 && code < 300)
		dlg_refresh_target(&r->to->dlg, resp);
	if (r->is_bye && (code == 481 || code == 408)) {
		/* The other side's dialog is gone (after a takeover, say): this
		 * side's with sipha still ends with 200 (§15.1.2). */
		if (r->st)
			call_reply(c->srv, r->st, 200, "OK", r->from->dlg.local_tag, NULL, false);
	} else if (r->st) {
		call_reply(c->srv, r->st, code, NULL, r->from->dlg.local_tag, resp, r->is_invite);
	}
	if (r->is_bye && code >= 200)
		call_release(c, "BYE answered");
}

static void relay_timeout(struct txn *t, void *uarg, int code)
{
	struct relay *r = uarg;

	(void)t;
	if (r->st && r->is_bye)
		call_reply(r->call->srv, r->st, 200, "OK", r->from->dlg.local_tag, NULL, false);
	else if (r->st)
		call_reply(r->call->srv, r->st, code, NULL, r->from->dlg.local_tag, NULL, false);
	if (r->is_bye)
		call_release(r->call, "BYE unanswered");
}

static const struct txn_user relay_user = {
	.on_response = relay_response,
	.on_timeout = relay_timeout,
	.on_terminated = relay_terminated,
};

static void bye_terminated(struct txn *t, void *uarg)
{
	(void)t;
	call_put(uarg);
}

static const struct txn_user bye_user = {
	.on_terminated = bye_terminated,
};

/* A BYE of sipha's own (not relayed), e.g. after a CANCEL race. */
void send_bye(struct call *c, struct leg *l)
{
	osip_message_t *bye = NULL;
	struct sip_peer to;
	struct txn *t;

	if (l->bye_sent || leg_request(c, l, "BYE", 0, NULL, &bye, &to))
		return;
	l->bye_sent = true;
	c->refs++;
	if (txn_request(c->srv->txns, bye, &to, &bye_user, c, &t))
		c->refs--;
}

bool call_on_indialog(struct server *srv, struct txn *st, osip_message_t *req)
{
	struct leg *from, *to;
	struct call *c;
	struct relay *r;
	osip_message_t *out = NULL;
	struct sip_peer dst;
	enum sip_method m = sipmsg_method_id(req->sip_method);

	from = dlg_find(srv->calls, req, false);
	if (!from)
		return false;
	c = from->call;
	to = from == &c->a ? &c->b : &c->a;
	if (!dlg_check_remote_cseq(&from->dlg, req)) {
		txn_reply(st, 500, "Out of Order CSeq", from->dlg.local_tag);
		return true;
	}
	if (from->dlg.peer.proto == SIP_PROTO_TCP)
		from->dlg.peer = st->peer; /* the connection may have been re-opened */
	if (m == SIP_BYE && (from->bye_sent || to->bye_rcvd || c->state != CALL_ESTABLISHED ||
			     !to->dlg.remote_tag)) {
		/* BYEs crossed, or the other leg never got confirmed: answer
		 * here and end the call; nothing to relay. */
		from->bye_rcvd = true;
		txn_reply(st, 200, "OK", from->dlg.local_tag);
		if (c->state != CALL_ESTABLISHED && c->b_inv)
			send_cancel(c);
		call_release(c, "BYE");
		return true;
	}
	if (!to->dlg.remote_tag || c->state == CALL_RELEASED) {
		txn_reply(st, 481, "Call/Transaction Does Not Exist", from->dlg.local_tag);
		return true;
	}
	if (m == SIP_INVITE || m == SIP_UPDATE)
		dlg_refresh_target(&from->dlg, req);
	if (leg_request(c, to, req->sip_method, 0, NULL, &out, &dst)) {
		txn_reply(st, 500, "Server Internal Error", from->dlg.local_tag);
		return true;
	}
	copy_body(out, req);
	r = calloc(1, sizeof(*r));
	if (!r) {
		osip_message_free(out);
		txn_reply(st, 500, "Server Internal Error", from->dlg.local_tag);
		return true;
	}
	r->call = c;
	r->from = from;
	r->to = to;
	r->st = st;
	r->is_invite = m == SIP_INVITE;
	r->is_bye = m == SIP_BYE;
	if (r->is_bye) {
		from->bye_rcvd = true;
		to->bye_sent = true;
	}
	c->refs++;
	txn_set_user(st, &relay_user, r);
	if (txn_request(srv->txns, out, &dst, &relay_user, r, &r->ct)) {
		r->ct = NULL;
		txn_reply(st, 503, "Service Unavailable", from->dlg.local_tag);
		if (r->is_bye)
			call_release(c, "BYE not relayable");
	}
	srv->st.indialog_relayed++;
	replicate(c, false); /* CSeqs and targets moved */
	return true;
}

void call_on_ack(struct server *srv, osip_message_t *ack)
{
	struct leg *l, *other;
	struct call *c;
	uint32_t cseq;

	l = ack->cseq ? dlg_find(srv->calls, ack, false) : NULL;
	cseq = l ? (uint32_t)strtoul(ack->cseq->number, NULL, 10) : 0;
	if (!l || !l->ok.buf || l->ok.cseq != cseq) {
		srv->st.sip_rx_ack_dropped++;
		return;
	}
	c = l->call;
	timer_del(srv->tw, &l->ok.t);
	free(l->ok.buf);
	l->ok.buf = NULL;
	other = l == &c->a ? &c->b : &c->a;
	if (other->ack_deferred) {
		other->ack_deferred = false;
		send_ack(c, other, other->ack_cseq, ack);
	}
	replicate(c, false); /* the standby stops holding the 2xx */
}
