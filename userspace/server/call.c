/* The B2BUA call engine (see call.h) in four files: callsetup.c sets calls
 * up (the caller's INVITE server transaction joined to sipha's INVITE
 * client transaction towards the callee), calldlg.c relays what comes
 * within the dialogs, calltab.c keeps the table and callha.c what HA adds.
 * This one holds what the flows send with: responses on a server
 * transaction, requests of a leg's dialog, where they go, and the 2xx
 * sipha retransmits until its ACK. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "server/call.h"
#include "server/call_int.h"
#include "server/server.h"

/* --- helpers ----------------------------------------------------------------------- */

void copy_body(osip_message_t *dst, const osip_message_t *src)
{
	osip_body_t *b;
	int pos = 0;

	if (src->content_type) {
		osip_content_type_free(dst->content_type);
		dst->content_type = NULL;
		osip_content_type_clone(src->content_type, &dst->content_type);
	}
	while (osip_message_get_body(src, pos++, &b) >= 0 && b && b->body) {
		if (osip_message_set_body(dst, b->body, b->length))
			break;
	}
}

void contact_uri(struct server *srv, enum sip_proto proto, char *buf, size_t len)
{
	bool v6 = srv->adv.ss_family == AF_INET6;

	snprintf(buf, len, "sip:sipha@%s%s%s:%u%s", v6 ? "[" : "", srv->adv_host, v6 ? "]" : "",
		 srv->adv_port, proto == SIP_PROTO_TCP ? ";transport=tcp" : "");
}

void add_contact(struct server *srv, osip_message_t *m, enum sip_proto proto)
{
	char uri[128], hdr[140];

	contact_uri(srv, proto, uri, sizeof(uri));
	snprintf(hdr, sizeof(hdr), "<%s>", uri);
	osip_message_set_contact(m, hdr);
}

/* The body of M when it has one part with a plain Content-Type: *CT is set
 * to "type/subtype" in CTBUF.  false when it has no such body. */
static bool single_body(const osip_message_t *m, char *ctbuf, size_t n, const char **ct,
			const char **body, size_t *blen)
{
	const osip_content_type_t *t = m->content_type;
	osip_body_t *b = NULL;

	if (osip_list_size(&m->bodies) != 1 || !t || !t->type || !t->subtype ||
	    osip_list_size(&t->gen_params) || osip_message_get_body(m, 0, &b) < 0 || !b || !b->body)
		return false;
	snprintf(ctbuf, n, "%s/%s", t->type, t->subtype);
	*ct = ctbuf;
	*body = b->body;
	*blen = b->length;
	return true;
}

/* call_reply() in place (txn_reply_opt): -EAGAIN when only libosip2 can
 * build it (no echo kept, a multipart body, Content-Type parameters). */
static int call_reply_fast(struct server *srv, struct txn *st, int code, const char *reason,
			   const char *to_tag, const osip_message_t *src, bool contact)
{
	struct sipmsg_reply_opt r = { .code = code, .reason = reason, .to_tag = to_tag };
	char extra[256], uri[128], ctype[128];
	int n;

	if (src && osip_list_size(&src->bodies) &&
	    !single_body(src, ctype, sizeof(ctype), &r.ctype, &r.body, &r.bodylen))
		return -EAGAIN;
	if (contact)
		contact_uri(srv, st->peer.proto, uri, sizeof(uri));
	n = snprintf(extra, sizeof(extra), "%s%s%s%sServer: sipha\r\n", contact ? "Contact: <" : "",
		     contact ? uri : "", contact ? ">\r\n" : "",
		     code >= 200 && code < 300 ? "Allow: " SIPHA_ALLOW "\r\n" : "");
	if (n < 0 || (size_t)n >= sizeof(extra))
		return -EAGAIN;
	r.extra = extra;
	r.extralen = (size_t)n;
	return txn_reply_opt(st, &r);
}

/* Sends a response on a server transaction, built from RESP_SRC's code,
 * reason and body when given (a relayed response), else CODE/REASON. */
int call_reply(struct server *srv, struct txn *st, int code, const char *reason, const char *to_tag,
	       const osip_message_t *resp_src, bool contact)
{
	osip_message_t *r = NULL;
	int ret;

	if (!st || st->state == TXN_COMPLETED || st->state == TXN_CONFIRMED ||
	    st->state == TXN_TERMINATED || st->state == TXN_ACCEPTED)
		return -EINVAL;
	if (resp_src) {
		code = resp_src->status_code;
		reason = resp_src->reason_phrase;
	}
	ret = call_reply_fast(srv, st, code, reason, to_tag, resp_src, contact);
	if (ret != -EAGAIN)
		goto done;
	ret = sipmsg_response(st->req, code, reason, to_tag, &r);
	if (ret)
		return ret;
	if (resp_src)
		copy_body(r, resp_src);
	if (contact)
		add_contact(srv, r, st->peer.proto);
	if (code >= 200 && code < 300)
		osip_message_set_allow(r, SIPHA_ALLOW);
	osip_message_set_header(r, "Server", "sipha");
	ret = txn_respond(st, r);
	osip_message_free(r);
done:
	if (ret)
		srv->st.sip_tx_errors++;
	else
		srv->st.sip_tx_responses++;
	return ret;
}

/* Where requests to URI go: its host and port (IP literals; sipha does not
 * resolve names, RFC 3263), with transport=tcp honoured. */
int call_resolve(const char *uri_str, struct sip_peer *out)
{
	osip_uri_t *u = NULL;
	osip_uri_param_t *tp = NULL;
	unsigned port = 5060;
	int ret = -EINVAL;

	memset(out, 0, sizeof(*out));
	if (osip_uri_init(&u) || osip_uri_parse(u, uri_str) || !u->host)
		goto out;
	if (u->port && (port = (unsigned)strtoul(u->port, NULL, 10)) - 1 > 65534)
		goto out;
	osip_uri_uparam_get_byname(u, "transport", &tp);
	out->proto = tp && tp->gvalue && !osip_strcasecmp(tp->gvalue, "tcp") ? SIP_PROTO_TCP
									     : SIP_PROTO_UDP;
	if (strchr(u->host, ':')) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&out->addr;
		char h[64];

		snprintf(h, sizeof(h), "%s", u->host[0] == '[' ? u->host + 1 : u->host);
		h[strcspn(h, "]")] = '\0';
		if (inet_pton(AF_INET6, h, &s6->sin6_addr) != 1) {
			ret = -EHOSTUNREACH;
			goto out;
		}
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		out->addrlen = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&out->addr;

		if (inet_pton(AF_INET, u->host, &s4->sin_addr) != 1) {
			ret = -EHOSTUNREACH;
			goto out;
		}
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		out->addrlen = sizeof(*s4);
	}
	ret = 0;
out:
	osip_uri_free(u);
	return ret;
}

/* The peer in-dialog requests of leg L go to: the first route, or the
 * remote target; a leg that reached us over TCP keeps its connection while
 * it is open.  Once it is gone, the flow's address is no place to connect
 * to (a client's source port, RFC 3261 §18.1.1): the target is. */
int dialog_peer(struct server *srv, const struct dialog *d, struct sip_peer *out)
{
	const char *target = d->nroutes ? d->routes[0] : d->remote_target;
	struct sip_transport *tp = srv->tp;
	char buf[512];
	int ret;

	if (d->peer.proto == SIP_PROTO_TCP && d->peer.conn &&
	    (!tp || sipt_conn_open(tp, d->peer.conn))) {
		*out = d->peer;
		return 0;
	}
	/* A Route value is a name-addr: strip the angle brackets. */
	snprintf(buf, sizeof(buf), "%s", target[0] == '<' ? target + 1 : target);
	buf[strcspn(buf, ">")] = '\0';
	ret = call_resolve(buf, out);
	if (!ret && d->peer.addrlen && out->proto == SIP_PROTO_UDP)
		out->local = d->peer.local;
	return ret;
}

int leg_peer(struct leg *l, struct sip_peer *out)
{
	return dialog_peer(l->call->srv, &l->dlg, out);
}

/* --- 2xx retransmission towards a UAS leg (§13.3.1.4) ------------------------------ */

void call_ok_retx(struct timer *t)
{
	struct uas_2xx *ok = container_of(t, struct uas_2xx, t);
	struct leg *l = container_of(ok, struct leg, ok);
	struct call *c = l->call;
	struct server *srv = c->srv;
	struct sip_peer to;
	uint64_t now = srv->tw->now;

	if (now >= ok->deadline) {
		/* No ACK within 64*T1: the dialog is confirmed in name only;
		 * end the call on both sides (§13.3.1.4). */
		pr_warn("call %llu: no ACK for 2xx, releasing", (unsigned long long)c->id);
		free(ok->buf);
		ok->buf = NULL;
		srv->st.calls_no_ack++;
		call_release(c, "no ACK");
		return;
	}
	if (!leg_peer(l, &to))
		srv_send(srv, &to, ok->buf, ok->len);
	ok->interval = ok->interval * 2 > srv->t2_ms ? srv->t2_ms : ok->interval * 2;
	timer_add(srv->tw, t, now + ok->interval);
}

/* Keeps BUF (a 2xx sent to leg L) to retransmit until L's ACK. */
int arm_2xx(struct call *c, struct leg *l, const char *buf, size_t len, uint32_t cseq,
	    bool reliable)
{
	struct server *srv = c->srv;

	free(l->ok.buf);
	l->ok.buf = malloc(len);
	if (!l->ok.buf)
		return -ENOMEM;
	memcpy(l->ok.buf, buf, len);
	l->ok.len = len;
	l->ok.cseq = cseq;
	if (reliable)
		return 0; /* TCP delivers it; still wait for the ACK */
	l->ok.interval = srv->t1_ms;
	l->ok.deadline = srv->tw->now + 64ull * srv->t1_ms;
	timer_add(srv->tw, &l->ok.t, srv->tw->now + l->ok.interval);
	return 0;
}

/* Sends the 2xx on the IST and keeps retransmitting it ourselves. */
int reply_2xx(struct call *c, struct leg *l, struct txn *st, const osip_message_t *src)
{
	int ret = call_reply(c->srv, st, 200, "OK", l->dlg.local_tag, src, true);

	if (ret)
		return ret;
	return arm_2xx(c, l, st->out, st->outlen,
		       (uint32_t)strtoul(st->req->cseq->number, NULL, 10), st->reliable);
}

/* --- requests sipha sends as UAC ---------------------------------------------------- */

int leg_request(struct call *c, struct leg *l, const char *method, uint32_t cseq,
		const char *branch_in, osip_message_t **out, struct sip_peer *to)
{
	struct server *srv = c->srv;
	char branch[48], contact[128];
	int ret;

	ret = leg_peer(l, to);
	if (ret)
		return ret;
	if (branch_in)
		snprintf(branch, sizeof(branch), "%s", branch_in);
	else
		txn_new_branch(srv->txns, branch, sizeof(branch));
	contact_uri(srv, to->proto, contact, sizeof(contact));
	return dlg_build_request(
		&l->dlg, method, cseq, srv->adv_host, srv->adv_port, to->proto, branch,
		strcmp(method, "BYE") && strcmp(method, "ACK") ? contact : NULL, out);
}

/* send_ack() written in place: false when only libosip2 can build it. */
static bool send_ack_fast(struct call *c, struct leg *l, uint32_t cseq, const osip_message_t *src)
{
	struct server *srv = c->srv;
	const char *ct = NULL, *body = NULL;
	char branch[48], ctbuf[128], out[TXN_REPLY_MAX], *buf;
	struct sip_peer to;
	size_t blen = 0;
	ssize_t n;

	if (src && osip_list_size(&src->bodies) &&
	    !single_body(src, ctbuf, sizeof(ctbuf), &ct, &body, &blen))
		return false;
	if (leg_peer(l, &to))
		return true; /* nowhere to send it, as on the slow way */
	txn_new_branch(srv->txns, branch, sizeof(branch));
	n = dlg_write_request(&l->dlg, "ACK", cseq, srv->adv_host, srv->adv_port, to.proto, branch,
			      ct, body, blen, out, sizeof(out));
	if (n < 0 || !(buf = malloc((size_t)n)))
		return false;
	memcpy(buf, out, (size_t)n);
	srv_send(srv, &to, buf, (size_t)n);
	free(l->ack_buf);
	l->ack_buf = buf; /* kept to answer a retransmitted 2xx */
	l->ack_len = (size_t)n;
	l->ack_cseq = cseq;
	return true;
}

void send_ack(struct call *c, struct leg *l, uint32_t cseq, const osip_message_t *body)
{
	struct server *srv = c->srv;
	osip_message_t *ack = NULL;
	struct sip_peer to;
	char *buf = NULL;
	size_t len;

	if (send_ack_fast(c, l, cseq, body))
		return;
	if (leg_request(c, l, "ACK", cseq, NULL, &ack, &to))
		return;
	if (body)
		copy_body(ack, body);
	if (!sipmsg_to_str(ack, &buf, &len)) {
		srv_send(srv, &to, buf, len);
		free(l->ack_buf);
		l->ack_buf = buf;
		l->ack_len = len;
		l->ack_cseq = cseq;
	}
	osip_message_free(ack);
}
