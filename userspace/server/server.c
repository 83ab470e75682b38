#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "core/log.h"
#include "server/control.h"
#include "server/server.h"

static void make_tag(struct server *srv, char *buf, size_t len)
{
	snprintf(buf, len, "s%08x%x", srv->tag_salt, ++srv->tag_seq);
}

/* Sends RESP to the peer the request came from (RFC 3261 §18.2.2 with
 * symmetric response routing, RFC 3581: the source address, which is what
 * NATed endpoints and sipp expect). */
static void send_msg(struct server *srv, const struct sip_peer *to, osip_message_t *m)
{
	char *buf = NULL;
	size_t len = 0;

	if (sipmsg_to_str(m, &buf, &len) || sipt_send(srv->tp, to, buf, len)) {
		srv->st.sip_tx_errors++;
	} else {
		srv->st.sip_tx_responses++;
	}
	free(buf);
}

struct extra_hdr {
	const char *name;
	const char *value;
};

static void respond(struct server *srv, const struct sip_peer *to, const osip_message_t *req,
		    int code, const char *reason, const struct extra_hdr *extra, size_t nextra)
{
	osip_message_t *resp = NULL;
	char tag[32];

	make_tag(srv, tag, sizeof(tag));
	if (sipmsg_response(req, code, reason, tag, &resp)) {
		srv->st.sip_tx_errors++;
		return;
	}
	osip_message_set_header(resp, "Server", "sipha");
	for (size_t i = 0; i < nextra; i++)
		osip_message_set_header(resp, extra[i].name, extra[i].value);
	send_msg(srv, to, resp);
	osip_message_free(resp);
}

static void handle_register(struct server *srv, const struct sip_peer *from, osip_message_t *req)
{
	struct reg_result res;
	osip_message_t *resp = NULL;
	char tag[32], minexp[16];

	reg_register(srv->reg, req, loop_now(srv->loop), &res);
	if (res.code != 200) {
		struct extra_hdr h = { "Min-Expires", minexp };

		srv->st.register_refused++;
		snprintf(minexp, sizeof(minexp), "%u", res.min_expires);
		respond(srv, from, req, res.code, res.reason, &h, res.code == 423);
		return;
	}
	srv->st.register_ok++;
	make_tag(srv, tag, sizeof(tag));
	if (sipmsg_response(req, 200, "OK", tag, &resp) ||
	    reg_fill_contacts(srv->reg, res.aor_user, loop_now(srv->loop), resp)) {
		srv->st.sip_tx_errors++;
		osip_message_free(resp);
		return;
	}
	osip_message_set_header(resp, "Server", "sipha");
	send_msg(srv, from, resp);
	osip_message_free(resp);
}

/* Until the call engine lands, an INVITE gets the final answer its target
 * deserves: 404 for a number sipha does not know, 480 for an extension with
 * nobody registered, 486 for routing points (no CTI yet), and 503 for
 * targets that would need the B2BUA. */
static void handle_invite(struct server *srv, const struct sip_peer *from, osip_message_t *req)
{
	const char *user = req->req_uri ? req->req_uri->username : NULL;
	const struct cfg_dn *dn = user ? cfg_dn_find(srv->cfg, user) : NULL;
	const struct reg_aor *a = user ? reg_find(srv->reg, user) : NULL;

	srv->st.invite_refused++;
	if (!dn && !a) {
		respond(srv, from, req, 404, "Not Found", NULL, 0);
	} else if (dn && dn->kind == CFG_DN_ROUTING_POINT) {
		respond(srv, from, req, 486, "Busy Here", NULL, 0);
	} else if (!a && (!dn || dn->kind == CFG_DN_EXTENSION)) {
		respond(srv, from, req, 480, "Temporarily Unavailable", NULL, 0);
	} else {
		struct extra_hdr h = { "Retry-After", "60" };

		respond(srv, from, req, 503, "Service Unavailable", &h, 1);
	}
}

static void handle_request(struct server *srv, const struct sip_peer *from, osip_message_t *req,
			   const char *raw, size_t len)
{
	static const struct extra_hdr allow = { "Allow", SIPHA_ALLOW };
	enum sip_method m = sipmsg_method_id(req->sip_method);
	struct sip_verdict v;

	srv->st.sip_rx_requests++;
	sipmsg_check_request(req, raw, len, &v);
	if (v.code) {
		/* An ACK is never answered (RFC 3261 §17.2.1): drop it. */
		if (m == SIP_ACK) {
			srv->st.sip_rx_ack_dropped++;
			return;
		}
		struct extra_hdr h = { v.hname, v.hvalue };

		srv->st.sip_rx_rejected++;
		respond(srv, from, req, v.code, v.reason, &h, v.hname != NULL);
		return;
	}
	switch (m) {
	case SIP_REGISTER:
		handle_register(srv, from, req);
		break;
	case SIP_OPTIONS: {
		const struct extra_hdr h[] = { allow, { "Accept", "application/sdp" } };

		srv->st.options_answered++;
		respond(srv, from, req, 200, "OK", h, 2);
		break;
	}
	case SIP_INVITE:
		handle_invite(srv, from, req);
		break;
	case SIP_ACK:
		/* ACK for a non-2xx final answer of ours, or for a dialog we do
		 * not have; nothing to do until transactions own them. */
		srv->st.sip_rx_ack_dropped++;
		break;
	case SIP_BYE:
	case SIP_CANCEL:
	case SIP_UPDATE:
	case SIP_INFO:
	case SIP_PRACK:
		srv->st.no_dialog++;
		respond(srv, from, req, 481, "Call/Transaction Does Not Exist", NULL, 0);
		break;
	case SIP_SUBSCRIBE:
	case SIP_NOTIFY:
	case SIP_REFER:
	case SIP_MESSAGE:
	case SIP_PUBLISH:
		srv->st.method_not_allowed++;
		respond(srv, from, req, 405, "Method Not Allowed", &allow, 1);
		break;
	default:
		srv->st.method_not_implemented++;
		respond(srv, from, req, 501, "Not Implemented", &allow, 1);
		break;
	}
}

void srv_rx(void *arg, const struct sip_peer *from, const char *buf, size_t len)
{
	struct server *srv = arg;
	osip_message_t *msg = NULL;

	srv->st.sip_rx_messages++;
	if (sipmsg_parse(buf, len, from->proto == SIP_PROTO_UDP, &msg)) {
		char a[64];

		srv->st.sip_rx_unparsable++;
		pr_debug("sip: unparsable message of %zu bytes from %s dropped", len,
			 sipt_addr_str(&from->addr, a, sizeof(a)));
		return;
	}
	if (MSG_IS_REQUEST(msg)) {
		handle_request(srv, from, msg, buf, len);
	} else {
		srv->st.sip_rx_responses++;
		/* No client transactions yet: every response is unmatched. */
		srv->st.sip_rx_responses_dropped++;
	}
	osip_message_free(msg);
}

static void set_adv(struct server *srv)
{
	const struct sipha_config *cfg = srv->cfg;
	uint16_t port = ntohs(((const struct sockaddr_in *)&cfg->sip.listen.ss)->sin_port);

	memset(&srv->adv, 0, sizeof(srv->adv));
	if (cfg->vip.present && cfg->vip.address.family == AF_INET) {
		struct sockaddr_in *s = (struct sockaddr_in *)&srv->adv;

		s->sin_family = AF_INET;
		s->sin_addr = cfg->vip.address.addr.v4;
		s->sin_port = htons(port);
		srv->adv_is_vip = true;
	} else if (cfg->vip.present) {
		struct sockaddr_in6 *s = (struct sockaddr_in6 *)&srv->adv;

		s->sin6_family = AF_INET6;
		s->sin6_addr = cfg->vip.address.addr.v6;
		s->sin6_port = htons(port);
		srv->adv_is_vip = true;
	} else {
		memcpy(&srv->adv, &cfg->sip.listen.ss, cfg->sip.listen.len);
	}
	srv->adv_port = port;
	if (srv->adv.ss_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)&srv->adv)->sin_addr, srv->adv_host,
			  sizeof(srv->adv_host));
	else
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&srv->adv)->sin6_addr,
			  srv->adv_host, sizeof(srv->adv_host));
}

int srv_init(struct server *srv, struct sipha_config *cfg, struct loop *l)
{
	struct reg_limits lim = {
		.min_expires = cfg->sip.min_expires,
		.max_expires = cfg->sip.max_expires,
		.default_expires = cfg->sip.default_expires,
		.max_contacts = cfg->sip.max_contacts,
		.max_aors = cfg->sip.max_registrations,
		.domain = cfg->sip.domain,
	};
	int ret;

	memset(srv, 0, sizeof(*srv));
	srv->cfg = cfg;
	srv->loop = l;
	srv->started_ms = loop_now(l);
	if (getrandom(&srv->tag_salt, sizeof(srv->tag_salt), 0) != sizeof(srv->tag_salt))
		srv->tag_salt = (uint32_t)srv->started_ms;
	set_adv(srv);
	sipmsg_init();
	ret = reg_new(&srv->reg, loop_timers(l), &lim);
	if (ret)
		goto err;
	/* Send from the VIP only when it is ours to use; a wildcard listen
	 * address answers from where each request arrived. */
	ret = sipt_open(&srv->tp, l, &cfg->sip.listen, srv->adv_is_vip ? &srv->adv : NULL, srv_rx,
			srv);
	if (ret)
		goto err;
	ret = ctl_open(&srv->ctl, l, cfg->control.socket, srv);
	if (ret)
		goto err;
	return 0;
err:
	srv_fini(srv);
	return ret;
}

void srv_fini(struct server *srv)
{
	ctl_close(srv->ctl);
	srv->ctl = NULL;
	sipt_close(srv->tp);
	srv->tp = NULL;
	reg_free(srv->reg);
	srv->reg = NULL;
}
