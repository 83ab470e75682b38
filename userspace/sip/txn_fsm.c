/* The four machines of RFC 3261 §17, with the Accepted states of RFC 6026.
 *
 * Each machine is a [state][event] table further down; an entry names the
 * next state and the action run on entering it.  An event with no entry is
 * ignored (and counted): that is how a 1xx after a final response, an ACK
 * before one and the like die quietly.  An action may return a follow-up
 * event — a transport error, or a timer of zero length on a reliable
 * transport (D, I, J, K) — which goes through the same table at once, so
 * every way into Terminated is in a table.
 *
 * The 100 Trying that §17.2.1 wants "if the TU will not generate a provisional
 * response within 200 ms" is left to the TU: the call engine sends it as soon
 * as it takes an INVITE.  The IST never guesses at the TU's speed and never
 * sends a response it was not given.
 *
 * Transport errors: a client's failed send (the request or a retransmission
 * of it) is a 503 to the user and the end of the transaction (§17.1.4).  A
 * server's failed send is returned to the TU by txn_respond(); it ends the
 * transaction only on a reliable transport, where the connection is gone.
 * On UDP the stored response goes out again with the request's next
 * retransmission or Timer G, which is what a full socket buffer needs.
 *
 * The table, the keys and a transaction's life cycle are txn_match.c's and
 * txn.c's (txn_int.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <osipparser2/osip_port.h>

#include "core/log.h"
#include "sip/msg.h"
#include "sip/txn_int.h"

#define TXN_TIMER_D_MS 32000
/* The ICT in Proceeding has no timer in RFC 3261: it waits for the UAS.  A
 * transaction whose UAS vanished would then live for ever, so Proceeding
 * keeps Timer C of §16.6 (more than 3 minutes, restarted by every 1xx; a UAS
 * that rings longer refreshes its 1xx each minute, §13.3.1.1). */
#define TXN_TIMER_C_MS (3 * 60 * 1000 + 1000)

typedef enum txn_ev (*txn_action)(struct txn *t, struct txn_arg *a);

struct txn_tr {
	enum txn_state next;
	txn_action fn; /* NULL: no transition */
};

static const char *const txn_ev_names[EV_N] = {
	[EV_NONE] = "-",	  [EV_RX_REQ] = "request",  [EV_RX_ACK] = "ACK",
	[EV_TU_1XX] = "send 1xx", [EV_TU_2XX] = "send 2xx", [EV_TU_FINAL] = "send 3xx-6xx",
	[EV_RX_1XX] = "1xx",	  [EV_RX_2XX] = "2xx",	    [EV_RX_FINAL] = "3xx-6xx",
	[EV_RETX] = "retransmit", [EV_LIFE] = "timeout",    [EV_TERR] = "transport error",
};

static unsigned t1(const struct txn *t)
{
	return t->tl->env.t1_ms;
}

static unsigned t2(const struct txn *t)
{
	return t->tl->env.t2_ms;
}

static unsigned t4(const struct txn *t)
{
	return t->tl->env.t4_ms;
}

/* ---- actions ----------------------------------------------------------------- */

int txn_send_out(struct txn *t)
{
	const struct txn_env *env = &t->tl->env;
	int err;

	if (!t->out)
		return 0;
	err = env->send(env->send_arg, &t->peer, t->out, t->outlen);
	if (err > 0)
		err = 0;
	if (err)
		pr_debug("txn %s: send: %s", t->key, strerror(-err));
	return err;
}

static enum txn_ev act_none(struct txn *t, struct txn_arg *a)
{
	(void)t;
	(void)a;
	return EV_NONE;
}

/* Server: the last response again. */
static enum txn_ev srv_resend(struct txn *t, struct txn_arg *a)
{
	a->err = txn_send_out(t);
	return a->err && t->reliable ? EV_TERR : EV_NONE;
}

/* Server: the TU's response becomes the one to retransmit, and goes out. */
static enum txn_ev srv_send(struct txn *t, struct txn_arg *a)
{
	free(t->out);
	t->out = a->buf;
	t->outlen = a->len;
	a->buf = NULL;
	t->code = a->code;
	return srv_resend(t, a);
}

static void ist_keep_tag(struct txn *t, const char *tag)
{
	struct txn_priv *p = container_of(t, struct txn_priv, t);

	if (!*tag || (p->rsp_tag && !strcmp(p->rsp_tag, tag)))
		return;
	free(p->rsp_tag);
	/* Out of memory: RFC 2543 ACKs then no longer match, Timer H ends it. */
	p->rsp_tag = strdup(tag);
}

static enum txn_ev ist_accept(struct txn *t, struct txn_arg *a)
{
	txn_arm(t, &t->t_life, 64 * t1(t)); /* Timer L */
	ist_keep_tag(t, a->tag);
	return srv_send(t, a);
}

static enum txn_ev ist_complete(struct txn *t, struct txn_arg *a)
{
	if (!t->reliable) {
		t->interval = t1(t);
		txn_arm(t, &t->t_retx, t->interval); /* Timer G */
	}
	txn_arm(t, &t->t_life, 64 * t1(t)); /* Timer H */
	ist_keep_tag(t, a->tag);
	return srv_send(t, a);
}

static enum txn_ev ist_timer_g(struct txn *t, struct txn_arg *a)
{
	t->interval = t->interval * 2 < t2(t) ? t->interval * 2 : t2(t);
	txn_arm(t, &t->t_retx, t->interval);
	return srv_resend(t, a);
}

static enum txn_ev ist_timer_h(struct txn *t, struct txn_arg *a)
{
	(void)a;
	pr_debug("txn %s: no ACK for %d", t->key, t->code);
	if (t->user && t->user->on_no_ack)
		t->user->on_no_ack(t, t->uarg);
	return EV_NONE;
}

static enum txn_ev ist_confirm(struct txn *t, struct txn_arg *a)
{
	(void)a;
	txn_stop(t, &t->t_retx);
	txn_stop(t, &t->t_life);
	if (t->reliable)
		return EV_LIFE; /* Timer I = 0 */
	txn_arm(t, &t->t_life, t4(t)); /* Timer I */
	return EV_NONE;
}

/* An ACK for our 2xx that happens to match (RFC 2543 peers): the dialog's. */
static enum txn_ev ist_ack_up(struct txn *t, struct txn_arg *a)
{
	(void)t;
	a->rx = TXN_RX_ACK;
	return EV_NONE;
}

static enum txn_ev nist_complete(struct txn *t, struct txn_arg *a)
{
	enum txn_ev ev = srv_send(t, a);

	if (ev != EV_NONE)
		return ev;
	if (t->reliable)
		return EV_LIFE; /* Timer J = 0 */
	txn_arm(t, &t->t_life, 64 * t1(t)); /* Timer J */
	/* The request is needed no more, but its handler may still hold
	 * it: it is dropped at the next tick (nist_shrink). */
	txn_arm(t, &t->t_retx, 0);
	return EV_NONE;
}

/* A Completed NIST only answers retransmissions with the bytes it keeps
 * for 32 s (Timer J): the parsed request goes, its To tag stays for the
 * match (a REGISTER no longer holds a few kilobytes for those 32 s). */
static enum txn_ev nist_shrink(struct txn *t, struct txn_arg *a)
{
	struct txn_priv *p = container_of(t, struct txn_priv, t);
	const char *tag;

	(void)a;
	if (!t->req)
		return EV_NONE;
	tag = txn_tag_of(t->req->to);
	if (*tag && !(p->req_tag = strdup(tag)))
		return EV_NONE; /* out of memory: keep the request */
	osip_message_free(t->req);
	t->req = NULL;
	free(p->echo_buf);
	p->echo_buf = NULL;
	return EV_NONE;
}

static void cli_deliver(struct txn *t, struct txn_arg *a)
{
	t->code = a->msg->status_code;
	if (t->user && t->user->on_response)
		t->user->on_response(t, t->uarg, a->msg);
}

static enum txn_ev cli_pass(struct txn *t, struct txn_arg *a)
{
	cli_deliver(t, a);
	return EV_NONE;
}

static enum txn_ev cli_timeout(struct txn *t, int code)
{
	pr_debug("txn %s: %s", t->key, code == 408 ? "timed out" : "transport failed");
	if (t->user && t->user->on_timeout)
		t->user->on_timeout(t, t->uarg, code);
	return EV_NONE;
}

static enum txn_ev cli_408(struct txn *t, struct txn_arg *a)
{
	(void)a;
	return cli_timeout(t, 408);
}

static enum txn_ev cli_503(struct txn *t, struct txn_arg *a)
{
	(void)a;
	return cli_timeout(t, 503);
}

static enum txn_ev ict_timer_a(struct txn *t, struct txn_arg *a)
{
	(void)a;
	if (txn_send_out(t))
		return EV_TERR;
	t->interval *= 2;
	txn_arm(t, &t->t_retx, t->interval);
	return EV_NONE;
}

static enum txn_ev ict_proceed(struct txn *t, struct txn_arg *a)
{
	txn_stop(t, &t->t_retx);
	txn_arm(t, &t->t_life, TXN_TIMER_C_MS); /* replaces Timer B */
	cli_deliver(t, a);
	return EV_NONE;
}

static enum txn_ev ict_accept(struct txn *t, struct txn_arg *a)
{
	txn_stop(t, &t->t_retx);
	txn_arm(t, &t->t_life, 64 * t1(t)); /* Timer M */
	cli_deliver(t, a);
	return EV_NONE;
}

static enum txn_ev ict_complete(struct txn *t, struct txn_arg *a)
{
	osip_message_t *ack = NULL;
	int err;

	txn_stop(t, &t->t_retx);
	txn_stop(t, &t->t_life);
	free(t->out);
	t->out = NULL;
	t->outlen = 0;
	/* From now on the bytes to retransmit are the ACK's. */
	err = txn_build_ack(t->req, a->msg, &ack);
	if (!err)
		err = sipmsg_to_str(ack, &t->out, &t->outlen);
	osip_message_free(ack);
	if (err)
		pr_warn("txn %s: cannot build ACK: %s", t->key, strerror(-err));
	txn_send_out(t); /* a lost ACK is sent again for the next retransmitted final */
	cli_deliver(t, a);
	if (t->reliable)
		return EV_LIFE; /* Timer D = 0 */
	txn_arm(t, &t->t_life, TXN_TIMER_D_MS); /* Timer D */
	return EV_NONE;
}

static enum txn_ev ict_reack(struct txn *t, struct txn_arg *a)
{
	(void)a;
	txn_send_out(t);
	return EV_NONE;
}

static enum txn_ev nict_timer_e(struct txn *t, struct txn_arg *a)
{
	(void)a;
	if (txn_send_out(t))
		return EV_TERR;
	t->interval = t->interval * 2 < t2(t) ? t->interval * 2 : t2(t);
	txn_arm(t, &t->t_retx, t->interval);
	return EV_NONE;
}

static enum txn_ev nict_timer_e_t2(struct txn *t, struct txn_arg *a)
{
	(void)a;
	if (txn_send_out(t))
		return EV_TERR;
	t->interval = t2(t);
	txn_arm(t, &t->t_retx, t->interval);
	return EV_NONE;
}

static enum txn_ev nict_complete(struct txn *t, struct txn_arg *a)
{
	txn_stop(t, &t->t_retx);
	txn_stop(t, &t->t_life);
	cli_deliver(t, a);
	if (t->reliable)
		return EV_LIFE; /* Timer K = 0 */
	txn_arm(t, &t->t_life, t4(t)); /* Timer K */
	return EV_NONE;
}

/* ---- the machines ---------------------------------------------------------------
 * Entry: { next state, action run on entering it }.  A missing entry means the
 * event is ignored in that state. */

/* clang-format off */

/* INVITE server, §17.2.1 with RFC 6026 §8.  Starts in Proceeding; the 100
 * Trying is the TU's (see the top of the file). */
static const struct txn_tr ist_fsm[TXN_NSTATES][EV_N] = {
	[TXN_PROCEEDING] = {
		[EV_RX_REQ]   = { TXN_PROCEEDING, srv_resend },   /* the last 1xx, if any */
		[EV_TU_1XX]   = { TXN_PROCEEDING, srv_send },
		[EV_TU_2XX]   = { TXN_ACCEPTED,   ist_accept },   /* arms L */
		[EV_TU_FINAL] = { TXN_COMPLETED,  ist_complete }, /* arms G (UDP), H */
		[EV_TERR]     = { TXN_TERMINATED, act_none },
	},
	[TXN_ACCEPTED] = {
		[EV_RX_REQ]   = { TXN_ACCEPTED,   act_none },     /* the TU retransmits its 2xx */
		[EV_RX_ACK]   = { TXN_ACCEPTED,   ist_ack_up },   /* TXN_RX_ACK: the dialog's */
		[EV_TU_2XX]   = { TXN_ACCEPTED,   srv_send },     /* the TU's 2xx retransmission */
		[EV_LIFE]     = { TXN_TERMINATED, act_none },     /* Timer L */
		[EV_TERR]     = { TXN_TERMINATED, act_none },
	},
	[TXN_COMPLETED] = {
		[EV_RX_REQ]   = { TXN_COMPLETED,  srv_resend },
		[EV_RX_ACK]   = { TXN_CONFIRMED,  ist_confirm },  /* arms I */
		[EV_RETX]     = { TXN_COMPLETED,  ist_timer_g },  /* Timer G */
		[EV_LIFE]     = { TXN_TERMINATED, ist_timer_h },  /* Timer H: on_no_ack */
		[EV_TERR]     = { TXN_TERMINATED, act_none },
	},
	[TXN_CONFIRMED] = {
		[EV_RX_REQ]   = { TXN_CONFIRMED,  act_none },
		[EV_RX_ACK]   = { TXN_CONFIRMED,  act_none },
		[EV_LIFE]     = { TXN_TERMINATED, act_none },     /* Timer I */
	},
};

/* Non-INVITE server, §17.2.2. */
static const struct txn_tr nist_fsm[TXN_NSTATES][EV_N] = {
	[TXN_TRYING] = {
		[EV_RX_REQ]   = { TXN_TRYING,     act_none },     /* nothing to resend yet */
		[EV_TU_1XX]   = { TXN_PROCEEDING, srv_send },
		[EV_TU_2XX]   = { TXN_COMPLETED,  nist_complete }, /* arms J */
		[EV_TU_FINAL] = { TXN_COMPLETED,  nist_complete },
		[EV_TERR]     = { TXN_TERMINATED, act_none },
	},
	[TXN_PROCEEDING] = {
		[EV_RX_REQ]   = { TXN_PROCEEDING, srv_resend },
		[EV_TU_1XX]   = { TXN_PROCEEDING, srv_send },
		[EV_TU_2XX]   = { TXN_COMPLETED,  nist_complete },
		[EV_TU_FINAL] = { TXN_COMPLETED,  nist_complete },
		[EV_TERR]     = { TXN_TERMINATED, act_none },
	},
	[TXN_COMPLETED] = {
		[EV_RX_REQ]   = { TXN_COMPLETED,  srv_resend },
		[EV_RETX]     = { TXN_COMPLETED,  nist_shrink },  /* the tick after */
		[EV_LIFE]     = { TXN_TERMINATED, act_none },     /* Timer J */
		[EV_TERR]     = { TXN_TERMINATED, act_none },
	},
};

/* INVITE client, §17.1.1 with RFC 6026 §7.  Starts in Calling with A (UDP)
 * and B armed. */
static const struct txn_tr ict_fsm[TXN_NSTATES][EV_N] = {
	[TXN_CALLING] = {
		[EV_RX_1XX]   = { TXN_PROCEEDING, ict_proceed },  /* stops A, B; arms C */
		[EV_RX_2XX]   = { TXN_ACCEPTED,   ict_accept },   /* arms M */
		[EV_RX_FINAL] = { TXN_COMPLETED,  ict_complete }, /* sends ACK, arms D */
		[EV_RETX]     = { TXN_CALLING,    ict_timer_a },  /* Timer A */
		[EV_LIFE]     = { TXN_TERMINATED, cli_408 },      /* Timer B */
		[EV_TERR]     = { TXN_TERMINATED, cli_503 },
	},
	[TXN_PROCEEDING] = {
		[EV_RX_1XX]   = { TXN_PROCEEDING, ict_proceed },  /* restarts C */
		[EV_RX_2XX]   = { TXN_ACCEPTED,   ict_accept },
		[EV_RX_FINAL] = { TXN_COMPLETED,  ict_complete },
		[EV_LIFE]     = { TXN_TERMINATED, cli_408 },      /* Timer C */
	},
	[TXN_ACCEPTED] = {
		[EV_RX_2XX]   = { TXN_ACCEPTED,   cli_pass },     /* every 2xx goes up */
		[EV_LIFE]     = { TXN_TERMINATED, act_none },     /* Timer M */
	},
	[TXN_COMPLETED] = {
		[EV_RX_FINAL] = { TXN_COMPLETED,  ict_reack },    /* absorbed */
		[EV_LIFE]     = { TXN_TERMINATED, act_none },     /* Timer D */
	},
};

/* Non-INVITE client, §17.1.2.  Starts in Trying with E (UDP) and F armed. */
static const struct txn_tr nict_fsm[TXN_NSTATES][EV_N] = {
	[TXN_TRYING] = {
		[EV_RX_1XX]   = { TXN_PROCEEDING, cli_pass },
		[EV_RX_2XX]   = { TXN_COMPLETED,  nict_complete }, /* arms K */
		[EV_RX_FINAL] = { TXN_COMPLETED,  nict_complete },
		[EV_RETX]     = { TXN_TRYING,     nict_timer_e },  /* Timer E, doubling to T2 */
		[EV_LIFE]     = { TXN_TERMINATED, cli_408 },       /* Timer F */
		[EV_TERR]     = { TXN_TERMINATED, cli_503 },
	},
	[TXN_PROCEEDING] = {
		[EV_RX_1XX]   = { TXN_PROCEEDING, cli_pass },
		[EV_RX_2XX]   = { TXN_COMPLETED,  nict_complete },
		[EV_RX_FINAL] = { TXN_COMPLETED,  nict_complete },
		[EV_RETX]     = { TXN_PROCEEDING, nict_timer_e_t2 }, /* Timer E, at T2 */
		[EV_LIFE]     = { TXN_TERMINATED, cli_408 },         /* Timer F */
		[EV_TERR]     = { TXN_TERMINATED, cli_503 },
	},
	[TXN_COMPLETED] = {
		[EV_RX_2XX]   = { TXN_COMPLETED,  act_none },      /* absorbed */
		[EV_RX_FINAL] = { TXN_COMPLETED,  act_none },
		[EV_LIFE]     = { TXN_TERMINATED, act_none },      /* Timer K */
	},
};

/* clang-format on */

static const struct txn_tr (*const txn_fsm[])[EV_N] = {
	[TXN_IST] = ist_fsm,
	[TXN_NIST] = nist_fsm,
	[TXN_ICT] = ict_fsm,
	[TXN_NICT] = nict_fsm,
};

void txn_fire(struct txn *t, enum txn_ev ev, struct txn_arg *a)
{
	const struct txn_tr *tr;
	bool first = true;

	while (ev != EV_NONE && t->state != TXN_TERMINATED) {
		tr = &txn_fsm[t->kind][t->state][ev];
		if (!tr->fn) {
			t->tl->ignored++;
			pr_debug("txn %s: %s ignored in %s", t->key, txn_ev_names[ev],
				 txn_state_name(t->state));
			break;
		}
		if (first)
			a->handled = true;
		first = false;
		pr_debug("txn %s: %s --%s--> %s", t->key, txn_state_name(t->state),
			 txn_ev_names[ev], txn_state_name(tr->next));
		t->state = tr->next;
		ev = tr->fn(t, a);
	}
	if (t->state == TXN_TERMINATED)
		txn_terminate(t);
}

bool txn_fsm_has(const struct txn *t, enum txn_ev ev)
{
	return txn_fsm[t->kind][t->state][ev].fn;
}

/* ---- the ICT's ACK for a 3xx-6xx -------------------------------------------- */

int txn_build_ack(const osip_message_t *invite, const osip_message_t *resp, osip_message_t **ack)
{
	const osip_via_t *via;
	osip_message_t *m = NULL;
	osip_via_t *v = NULL;
	osip_cseq_t *cs = NULL;
	int err = -EINVAL;

	if (!ack)
		return -EINVAL;
	*ack = NULL;
	if (!invite || !resp || !MSG_IS_REQUEST(invite) || !MSG_IS_RESPONSE(resp) ||
	    !invite->req_uri || !invite->from || !invite->call_id || !invite->cseq ||
	    !invite->cseq->number || !resp->to || !(via = txn_top_via(invite)))
		return -EINVAL;
	err = -ENOMEM;
	if (osip_message_init(&m))
		goto out;
	osip_message_set_method(m, osip_strdup("ACK"));
	osip_message_set_version(m, osip_strdup("SIP/2.0"));
	if (!m->sip_method || !m->sip_version)
		goto out;
	/* §17.1.1.3: the INVITE's Request-URI, Call-ID, From, top Via (so its
	 * branch) and CSeq number; the response's To (with its tag); the
	 * INVITE's Route set. */
	if (osip_uri_clone(invite->req_uri, &m->req_uri) ||
	    osip_from_clone(invite->from, &m->from) || osip_to_clone(resp->to, &m->to) ||
	    osip_call_id_clone(invite->call_id, &m->call_id))
		goto out;
	if (osip_via_clone(via, &v))
		goto out;
	if (osip_list_add(&m->vias, v, -1) < 0) {
		osip_via_free(v);
		goto out;
	}
	if (osip_cseq_init(&cs))
		goto out;
	m->cseq = cs;
	osip_cseq_set_number(cs, osip_strdup(invite->cseq->number));
	osip_cseq_set_method(cs, osip_strdup("ACK"));
	if (!cs->number || !cs->method)
		goto out;
	for (int i = 0; i < osip_list_size(&invite->routes); i++) {
		const osip_route_t *r = osip_list_get(&invite->routes, i);
		osip_route_t *rc = NULL;

		if (!r || osip_route_clone(r, &rc))
			goto out;
		if (osip_list_add(&m->routes, rc, -1) < 0) {
			osip_route_free(rc);
			goto out;
		}
	}
	if (osip_message_set_max_forwards(m, "70") || osip_message_set_content_length(m, "0"))
		goto out;
	*ack = m;
	m = NULL;
	err = 0;
out:
	osip_message_free(m);
	return err;
}
