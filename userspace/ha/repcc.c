/* Replication of the contact-centre layer (cc/): each CTI event as the
 * active node published it (kind CTI_SEQ: the pair's event log, so that a
 * client's since_seq is served by either node), and each agent's state
 * (kind AGENT).  Device states are not sent: the standby derives them from
 * the calls and registrations it is sent anyway. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cc/cc.h"
#include "ha/replica.h"
#include "server/server.h"

enum rep_ev_attr {
	RE_LINE = 1, /* binary: the event's JSON text */
	RE_DN, /* string, up to EV_DNS: the DNs it is filed under */
	RE_CLIENT, /* string: an answer's client */
	RE_REF, /* string: an answer's request ref (JSON text) */
	RE_SNAP, /* flag: part of a snapshot */
	RE_COUNT
};
#define RE_MAX (RE_COUNT - 1)

enum rep_agent_attr {
	RA_DN = 1, /* string, empty when logged out */
	RA_STATE, /* u8 enum ag_state */
	RA_PREV, /* u8 enum ag_state: where a busy agent returns */
	RA_REASON, /* string */
	RA_COUNT
};
#define RA_MAX (RA_COUNT - 1)

static const struct jr_policy ev_policy[RE_COUNT] = {
	[RE_LINE] = { .kind = JR_A_BINARY,
		      .flags = JR_PF_REQUIRED,
		      .min_len = 2,
		      .max_len = 65536 },
	[RE_DN] = { .kind = JR_A_STRING, .flags = JR_PF_MULTI, .min_len = 1, .max_len = EV_DN_MAX },
	[RE_CLIENT] = { .kind = JR_A_STRING, .min_len = 1, .max_len = EV_CLIENT_MAX },
	[RE_REF] = { .kind = JR_A_STRING, .min_len = 1, .max_len = 256 },
	[RE_SNAP] = { .kind = JR_A_FLAG },
};

static const struct jr_policy agent_policy[RA_COUNT] = {
	[RA_DN] = { .kind = JR_A_STRING, .flags = JR_PF_REQUIRED, .max_len = AG_DN_MAX },
	[RA_STATE] = { .kind = JR_A_U8, .flags = JR_PF_REQUIRED },
	[RA_PREV] = { .kind = JR_A_U8, .flags = JR_PF_REQUIRED },
	[RA_REASON] = { .kind = JR_A_STRING, .max_len = AG_REASON_MAX },
};

static void seq_key(uint64_t seq, uint8_t key[8])
{
	for (int i = 7; i >= 0; i--, seq >>= 8)
		key[i] = (uint8_t)seq;
}

int rep_event_encode(struct jr_buf *b, uint64_t seq, const struct ev *e, bool snapshot)
{
	uint8_t key[8];
	int ret;

	seq_key(e->seq, key);
	ret = jr_record_begin(b, seq, JR_KIND_CTI_SEQ, JR_OP_UPSERT, key, sizeof(key));
	if (ret)
		return ret;
	jr_put_bytes(b, RE_LINE, e->line, e->len);
	for (int i = 0; i < EV_DNS; i++)
		if (e->dns[i][0])
			jr_put_str(b, RE_DN, e->dns[i]);
	if (e->client[0])
		jr_put_str(b, RE_CLIENT, e->client);
	if (e->ref)
		jr_put_str(b, RE_REF, e->ref);
	if (snapshot)
		jr_put_flag(b, RE_SNAP);
	return jr_record_end(b);
}

int rep_agent_encode(struct jr_buf *b, uint64_t seq, const struct agent *a)
{
	int ret = jr_record_begin(b, seq, JR_KIND_AGENT, JR_OP_UPSERT, a->id, strlen(a->id));

	if (ret)
		return ret;
	jr_put_str(b, RA_DN, a->dn);
	jr_put_u8(b, RA_STATE, (uint8_t)a->state);
	jr_put_u8(b, RA_PREV, (uint8_t)a->prev);
	if (a->reason[0])
		jr_put_str(b, RA_REASON, a->reason);
	return jr_record_end(b);
}

/* A string attribute into BUF ("" when absent); -EBADMSG when too long. */
static int get_str(const struct jr_attr *a, char *buf, size_t size)
{
	int ret = jr_attr_strcpy(a, buf, size);

	if (ret == -ENOENT) {
		buf[0] = '\0';
		return 0;
	}
	return ret ? -EBADMSG : 0;
}

int rep_apply_event(struct server *srv, const struct jr_record *r)
{
	struct jr_attr tb[RE_COUNT], a;
	char dns[EV_DNS][EV_DN_MAX + 1], client[EV_CLIENT_MAX + 1], ref[257];
	const char *dnp[EV_DNS] = { 0 };
	uint64_t seq = 0;
	size_t off = 0;
	int n = 0, ret;

	if (r->op != JR_OP_UPSERT || r->key_len != 8 || !r->has_fields)
		return -EBADMSG;
	for (int i = 0; i < 8; i++)
		seq = seq << 8 | r->key[i];
	ret = jr_parse(r->fields, r->fields_len, ev_policy, RE_MAX, tb, NULL, NULL);
	if (ret || !seq)
		return -EBADMSG;
	while ((ret = jr_attr_next(r->fields, r->fields_len, &off, &a)) == 1) {
		if (a.type != RE_DN)
			continue;
		if (n == EV_DNS || get_str(&a, dns[n], sizeof(dns[n])))
			return -EBADMSG;
		dnp[n] = dns[n];
		n++;
	}
	if (ret < 0 || get_str(&tb[RE_CLIENT], client, sizeof(client)) ||
	    get_str(&tb[RE_REF], ref, sizeof(ref)))
		return -EBADMSG;
	/* The line must be one JSON text of its own: no NUL inside. */
	if (memchr(tb[RE_LINE].data, '\0', tb[RE_LINE].len))
		return -EBADMSG;
	ret = cc_log_replica(srv->cc, seq, dnp, client, ref[0] ? ref : NULL,
			     (const char *)tb[RE_LINE].data, tb[RE_LINE].len,
			     tb[RE_SNAP].type != 0);
	/* Already held (a late record after a switchover): nothing to do. */
	if (ret == -EEXIST)
		return 0;
	return ret == -ENOMEM ? -ENOMEM : ret ? -EBADMSG : 0;
}

int rep_apply_agent(struct server *srv, const struct jr_record *r)
{
	struct jr_attr tb[RA_COUNT];
	char id[AG_ID_MAX + 1], dn[AG_DN_MAX + 1], reason[AG_REASON_MAX + 1];
	uint8_t st, prev;
	int ret;

	if (r->op != JR_OP_UPSERT || !r->has_fields || !r->key_len || r->key_len > AG_ID_MAX ||
	    memchr(r->key, '\0', r->key_len))
		return -EBADMSG;
	memcpy(id, r->key, r->key_len);
	id[r->key_len] = '\0';
	if (jr_parse(r->fields, r->fields_len, agent_policy, RA_MAX, tb, NULL, NULL) ||
	    get_str(&tb[RA_DN], dn, sizeof(dn)) || get_str(&tb[RA_REASON], reason, sizeof(reason)))
		return -EBADMSG;
	st = jr_attr_u8(&tb[RA_STATE]);
	prev = jr_attr_u8(&tb[RA_PREV]);
	if (st >= AG_NSTATES || prev >= AG_NSTATES || (st != AG_LOGGED_OUT && !dn[0]))
		return -EBADMSG;
	ret = ag_set(cc_agents_mut(srv->cc), id, dn, st, prev, reason);
	return ret == -ENOMEM ? -ENOMEM : ret ? -EBADMSG : 0;
}
