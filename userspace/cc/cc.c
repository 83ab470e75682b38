#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cc/cc.h"
#include "cc/jline.h"
#include "core/growtab.h"
#include "core/config.h"
#include "core/log.h"

/* A configured DN that has a device (an extension) or a queue (a routing
 * point), with what makes its device state. */
struct cc_dn {
	char dn[EV_DN_MAX + 1];
	bool extension, routing_point;
	bool registered;
	unsigned ringing, busy; /* calls alerting it / calls it is on */
	enum cc_dev dev; /* as last published (or computed, on a standby) */
};

/* What cc remembers of a live call: enough to undo its contribution to
 * device states and to say which events a change makes. */
struct cc_callrec {
	uint64_t id;
	enum cc_call_state state;
	char rp[EV_DN_MAX + 1]; /* the routing point it was queued on, or "" */
	char callee[EV_DN_MAX + 1]; /* the extension alerted / talking, or "" */
	char caller[EV_DN_MAX + 1]; /* the calling extension, or "" */
	struct cc_callrec *hnext;
};

static uint64_t call_hv(uint64_t id)
{
	return id * 0x9e3779b97f4a7c15ull >> 32;
}

static uint64_t callrec_hash(const void *e)
{
	return call_hv(((const struct cc_callrec *)e)->id);
}

struct cc_pend {
	uint64_t seq;
	char dns[EV_DNS][EV_DN_MAX + 1];
	char client[EV_CLIENT_MAX + 1];
	char *ref;
	char *line;
	size_t len;
	struct cc_pend *next;
};

/* An event made while the node may not number events yet (cc_set_defer). */
struct cc_deferred {
	char *name; /* NULL: an answer */
	json_t *fields;
	uint64_t ts; /* when it was made */
	char dns[EV_DNS][EV_DN_MAX + 1];
	char client[EV_CLIENT_MAX + 1];
	char *ref;
	struct cc_deferred *next;
};

struct cc {
	const struct sipha_config *cfg;
	struct cc_dn *dns; /* sorted by dn */
	size_t ndns;
	struct growtab calls; /* by id, chained through cc_callrec's hnext */
	size_t ncalls;
	struct agents agents;
	struct evlog log;
	struct cc_engine eng;
	struct cc_sink sink;
	const uint64_t *now_ms;
	uint64_t (*wall_ms)(void);
	void (*dev_watch)(void *arg, const char *dn, enum cc_dev d);
	void *dev_watch_arg;
	uint64_t zero;
	bool publishing;
	bool deferring;
	struct cc_deferred *deferred, **deferred_tail;
	uint64_t held_from; /* first event not delivered yet (0: none held) */
	/* A standby receiving a snapshot: live events that came before the
	 * snapshot's last one, in order, appended at its end. */
	bool snapping;
	struct cc_pend *pend, **pend_tail;
	/* Sequences of recent answers, for requests sent again (cc_find_answer). */
	uint64_t *answers;
	size_t nanswers, ianswer;
	struct cc_stats st;
};

/* Answers remembered for requests sent again: a client retries within
 * seconds of a failover, and this many answers cover far more. */
#define CC_ANSWERS 65536

static uint64_t realtime_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int dn_cmp(const void *a, const void *b)
{
	return strcmp(((const struct cc_dn *)a)->dn, ((const struct cc_dn *)b)->dn);
}

static struct cc_dn *dn_find(const struct cc *cc, const char *dn)
{
	struct cc_dn key;

	if (!dn || strlen(dn) > EV_DN_MAX)
		return NULL;
	strcpy(key.dn, dn);
	return bsearch(&key, cc->dns, cc->ndns, sizeof(*cc->dns), dn_cmp);
}

int cc_new(struct cc **out, const struct sipha_config *cfg, size_t evlog_max, uint64_t keep_ms)
{
	struct cc *cc = calloc(1, sizeof(*cc));
	int ret = -ENOMEM;

	if (!cc)
		return -ENOMEM;
	cc->cfg = cfg;
	cc->now_ms = &cc->zero;
	cc->wall_ms = realtime_ms;
	cc->pend_tail = &cc->pend;
	cc->deferred_tail = &cc->deferred;
	ag_init(&cc->agents);
	ret = evlog_init(&cc->log, evlog_max, keep_ms);
	if (ret)
		goto err;
	ret = -ENOMEM;
	cc->dns = calloc(cfg->n_dns ? cfg->n_dns : 1, sizeof(*cc->dns));
	cc->answers = calloc(CC_ANSWERS, sizeof(*cc->answers));
	if (!cc->dns || !cc->answers ||
	    growtab_init(&cc->calls, 1024, offsetof(struct cc_callrec, hnext), callrec_hash))
		goto err;
	for (size_t i = 0; i < cfg->n_dns; i++) {
		const struct cfg_dn *d = &cfg->dns[i];
		struct cc_dn *e = &cc->dns[cc->ndns];

		if (d->kind == CFG_DN_ROUTE || strlen(d->dn) > EV_DN_MAX)
			continue;
		strcpy(e->dn, d->dn);
		e->extension = d->kind == CFG_DN_EXTENSION;
		e->routing_point = d->kind == CFG_DN_ROUTING_POINT;
		e->dev = e->extension ? CC_DEV_UNREGISTERED : CC_DEV_IDLE;
		cc->ndns++;
	}
	qsort(cc->dns, cc->ndns, sizeof(*cc->dns), dn_cmp);
	*out = cc;
	return 0;
err:
	cc_free(cc);
	return ret;
}

static void pend_drop(struct cc *cc)
{
	while (cc->pend) {
		struct cc_pend *p = cc->pend;

		cc->pend = p->next;
		free(p->ref);
		free(p->line);
		free(p);
	}
	cc->pend_tail = &cc->pend;
}

void cc_free(struct cc *cc)
{
	if (!cc)
		return;
	pend_drop(cc);
	cc->publishing = false;
	cc_set_defer(cc, false); /* frees what waits, publishing nothing */
	cc_calls_reset(cc);
	growtab_fini(&cc->calls);
	free(cc->dns);
	free(cc->answers);
	ag_fini(&cc->agents);
	evlog_fini(&cc->log);
	free(cc);
}

void cc_set_engine(struct cc *cc, const struct cc_engine *e)
{
	cc->eng = *e;
}

void cc_set_sink(struct cc *cc, const struct cc_sink *s)
{
	cc->sink = *s;
}

void cc_set_device_watch(struct cc *cc, void (*fn)(void *arg, const char *dn, enum cc_dev d),
			 void *arg)
{
	cc->dev_watch = fn;
	cc->dev_watch_arg = arg;
}

void cc_set_deliver(struct cc *cc, void (*deliver)(void *arg, const struct ev *e), void *arg)
{
	cc->sink.deliver = deliver;
	cc->sink.deliver_arg = arg;
}

void cc_set_journal(struct cc *cc, uint64_t (*journal)(void *arg, const struct ev *e),
		    void (*agent)(void *arg, const struct agent *a), void *arg)
{
	cc->sink.journal = journal;
	cc->sink.agent = agent;
	cc->sink.journal_arg = arg;
}

void cc_set_clock(struct cc *cc, const uint64_t *now_ms, uint64_t (*wall_ms)(void))
{
	cc->now_ms = now_ms ? now_ms : &cc->zero;
	cc->wall_ms = wall_ms ? wall_ms : realtime_ms;
}

void cc_set_publishing(struct cc *cc, bool on)
{
	cc->publishing = on;
}

bool cc_publishing(const struct cc *cc)
{
	return cc->publishing;
}

const struct agents *cc_agents(const struct cc *cc)
{
	return &cc->agents;
}

size_t cc_agents_logged_in(const struct cc *cc)
{
	size_t n = 0;

	for (const struct agent *a = cc->agents.list; a; a = a->next)
		n += a->state != AG_LOGGED_OUT;
	return n;
}

struct agents *cc_agents_mut(struct cc *cc)
{
	return &cc->agents;
}

struct evlog *cc_evlog(struct cc *cc)
{
	return &cc->log;
}

const struct cc_stats *cc_stats(const struct cc *cc)
{
	return &cc->st;
}

bool cc_is_extension(const struct cc *cc, const char *dn)
{
	const struct cc_dn *d = dn_find(cc, dn);

	return d && d->extension;
}

bool cc_is_routing_point(const struct cc *cc, const char *dn)
{
	const struct cc_dn *d = dn_find(cc, dn);

	return d && d->routing_point;
}

static const char *const dev_names[] = {
	[CC_DEV_UNREGISTERED] = "unregistered",
	[CC_DEV_IDLE] = "idle",
	[CC_DEV_RINGING] = "ringing",
	[CC_DEV_BUSY] = "busy",
};

const char *cc_dev_name(enum cc_dev d)
{
	return (unsigned)d <= CC_DEV_BUSY ? dev_names[d] : "?";
}

static enum cc_dev dev_of(const struct cc_dn *d)
{
	if (d->busy)
		return CC_DEV_BUSY;
	if (d->ringing)
		return CC_DEV_RINGING;
	return d->registered ? CC_DEV_IDLE : CC_DEV_UNREGISTERED;
}

enum cc_dev cc_dev_state(const struct cc *cc, const char *dn)
{
	const struct cc_dn *d = dn_find(cc, dn);

	return d && d->extension ? dev_of(d) : CC_DEV_UNREGISTERED;
}

/* --- publishing ------------------------------------------------------------------- */

static void deliver_upto(struct cc *cc, uint64_t jseq_acked, bool all)
{
	while (cc->held_from && cc->held_from <= cc->log.last_seq) {
		struct ev *e = evlog_get(&cc->log, cc->held_from);

		if (e && !all && e->jseq > jseq_acked)
			return;
		if (e && cc->sink.deliver)
			cc->sink.deliver(cc->sink.deliver_arg, e);
		cc->held_from++;
	}
	cc->held_from = 0;
}

void cc_drop_held(struct cc *cc)
{
	cc->held_from = 0;
}

void cc_journal_acked(struct cc *cc, uint64_t jseq)
{
	deliver_upto(cc, jseq, false);
}

void cc_release_held(struct cc *cc)
{
	deliver_upto(cc, 0, true);
}

static void copy_dn(char *dst, const char *src)
{
	dst[0] = '\0';
	if (src && strlen(src) <= EV_DN_MAX)
		strcpy(dst, src);
}

static void remember_answer(struct cc *cc, uint64_t seq, const char *ref);

static uint64_t defer(struct cc *cc, const char *name, json_t *fields, const char *const *dns,
		      const char *client, const char *ref)
{
	struct cc_deferred *d = calloc(1, sizeof(*d));

	if (!d || (name && !(d->name = strdup(name))) || (ref && !(d->ref = strdup(ref)))) {
		if (d) {
			free(d->name);
			free(d->ref);
		}
		free(d);
		json_decref(fields);
		pr_err("cti: no memory to keep an event");
		return 0;
	}
	d->ts = cc->wall_ms();
	d->fields = fields;
	for (int i = 0; dns && i < EV_DNS; i++)
		copy_dn(d->dns[i], dns[i]);
	snprintf(d->client, sizeof(d->client), "%s", client ? client : "");
	*cc->deferred_tail = d;
	cc->deferred_tail = &d->next;
	return 0;
}

static uint64_t cc_log_line(struct cc *cc, uint64_t seq, const char *line, size_t len,
			    const char *const *dns, const char *client, const char *ref);

static uint64_t cc_publish_ref(struct cc *cc, const char *name, json_t *fields,
			       const char *const *dns, const char *client, const char *ref,
			       uint64_t ts)
{
	uint64_t seq = cc->log.last_seq + 1;
	char *line, flat[2048];
	ssize_t n;
	json_t *o;

	if (!cc->publishing || !fields) {
		json_decref(fields);
		return 0;
	}
	if (cc->deferring)
		return defer(cc, name, fields, dns, client, ref);
	/* "event" (or "ref"), "seq" and "ts" first: a reader of the raw
	 * stream sees what a line is at a glance.  A flat event is written
	 * straight into a buffer; anything else jansson prints. */
	if (!ts)
		ts = cc->wall_ms();
	n = jline_event(flat, sizeof(flat), name, seq, ts, fields);
	if (n >= 0) {
		json_decref(fields);
		return cc_log_line(cc, seq, flat, (size_t)n, dns, client, ref);
	}
	o = json_object();
	if (name)
		json_object_set_new(o, "event", json_string(name));
	else if (json_object_get(fields, "ref"))
		json_object_set(o, "ref", json_object_get(fields, "ref"));
	json_object_set_new(o, "seq", json_integer((json_int_t)seq));
	/* A deferred event keeps the time it was made. */
	json_object_set_new(o, "ts", json_integer((json_int_t)ts));
	json_object_update_missing(o, fields);
	json_decref(fields);
	line = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (!line)
		return 0;
	seq = cc_log_line(cc, seq, line, strlen(line), dns, client, ref);
	free(line);
	return seq;
}

/* Event SEQ, its LINE written, goes into the log, then to the standby or
 * the clients.  SEQ, or 0 when it could not be logged. */
static uint64_t cc_log_line(struct cc *cc, uint64_t seq, const char *line, size_t len,
			    const char *const *dns, const char *client, const char *ref)
{
	struct ev *e;
	int ret = evlog_append(&cc->log, seq, *cc->now_ms, dns, client, line, len);

	if (ret) {
		pr_err("cti: event %llu not logged: %s", (unsigned long long)seq, strerror(-ret));
		return 0;
	}
	cc->st.events++;
	remember_answer(cc, seq, ref);
	e = evlog_get(&cc->log, seq);
	/* Replicated first: a client never hears of an event that the standby
	 * could lack after a failover (it is held until the record's ACK). */
	e->jseq = cc->sink.journal ? cc->sink.journal(cc->sink.journal_arg, e) : 0;
	if (e->jseq) {
		if (!cc->held_from)
			cc->held_from = seq;
		return seq;
	}
	if (cc->held_from) {
		/* Nothing overtakes a held event: those go first, this one with
		 * them (it is the log's last). */
		cc_release_held(cc);
		return seq;
	}
	if (cc->sink.deliver)
		cc->sink.deliver(cc->sink.deliver_arg, e);
	return seq;
}

void cc_set_defer(struct cc *cc, bool on)
{
	struct cc_deferred *d;

	cc->deferring = on;
	if (on)
		return;
	/* Numbered now, after whatever the old active's last records brought;
	 * dropped unpublished when this node is not publishing any more. */
	while ((d = cc->deferred)) {
		const char *dns[EV_DNS] = { d->dns[0][0] ? d->dns[0] : NULL,
					    d->dns[1][0] ? d->dns[1] : NULL,
					    d->dns[2][0] ? d->dns[2] : NULL };

		cc->deferred = d->next;
		cc_publish_ref(cc, d->name, d->fields, dns, d->client[0] ? d->client : NULL, d->ref,
			       d->ts);
		free(d->name);
		free(d->ref);
		free(d);
	}
	cc->deferred_tail = &cc->deferred;
}

uint64_t cc_publish(struct cc *cc, const char *name, json_t *fields, const char *const *dns,
		    const char *client)
{
	return cc_publish_ref(cc, name, fields, dns, client, NULL, 0);
}

uint64_t cc_delivered_seq(const struct cc *cc)
{
	return cc->held_from ? cc->held_from - 1 : cc->log.last_seq;
}

static void remember_answer(struct cc *cc, uint64_t seq, const char *ref)
{
	struct ev *e = evlog_get(&cc->log, seq);

	if (!e || !ref || !*ref || !(e->ref = strdup(ref)))
		return;
	cc->answers[cc->ianswer] = seq;
	cc->ianswer = (cc->ianswer + 1) % CC_ANSWERS;
	if (cc->nanswers < CC_ANSWERS)
		cc->nanswers++;
}

uint64_t cc_answer(struct cc *cc, const char *client, const char *ref, const char *event,
		   json_t *fields)
{
	uint64_t seq;

	if (!fields)
		return 0;
	if (ref && *ref) {
		json_t *r = json_loads(ref, JSON_DECODE_ANY, NULL);

		if (r)
			json_object_set_new(fields, "ref", r);
	}
	if (!event)
		json_object_set_new(fields, "ok", json_true());
	/* Held like any event until the standby has it: the same request sent
	 * to the peer after a failover finds it there. */
	seq = cc_publish_ref(cc, event, fields, NULL, client, ref, 0);
	return seq;
}

const struct ev *cc_find_answer(const struct cc *cc, const char *client, const char *ref)
{
	/* Newest first; linear in the answers remembered (a retried request
	 * is rare, and this runs per request, not per datagram). */
	for (size_t k = 0; k < cc->nanswers; k++) {
		size_t i = (cc->ianswer + CC_ANSWERS - 1 - k) % CC_ANSWERS;
		const struct ev *e = evlog_get(&cc->log, cc->answers[i]);

		if (e && e->ref && !strcmp(e->ref, ref) && !strcmp(e->client, client))
			return e;
	}
	return NULL;
}

/* A string for an event: text from the network need not be UTF-8 (a URI
 * with raw octets), and jansson takes only UTF-8; such octets become '?'
 * rather than the whole event being lost. */
static json_t *text(const char *s)
{
	json_t *j;
	char *copy;

	if (!s)
		s = "";
	j = json_string(s);
	if (j || !(copy = strdup(s)))
		return j;
	for (unsigned char *p = (unsigned char *)copy; *p; p++)
		if (*p >= 0x80)
			*p = '?';
	j = json_string(copy);
	free(copy);
	return j;
}

static void publish_agent(struct cc *cc, const struct agent *a, const char *const *dns)
{
	json_t *f = json_pack("{s:s, s:s, s:s}", "agent", a->id, "dn", dns[0] ? dns[0] : "",
			      "state", ag_state_name(a->state));

	if (f && a->reason[0])
		json_object_set_new(f, "reason", json_string(a->reason));
	cc_publish(cc, "AgentState", f, dns, NULL);
	if (cc->sink.agent)
		cc->sink.agent(cc->sink.journal_arg, a);
}

static void publish_dev(struct cc *cc, struct cc_dn *d)
{
	const char *dns[EV_DNS] = { d->dn };
	enum cc_dev now = dev_of(d);
	struct agent *a;

	if (now == d->dev)
		return;
	d->dev = now;
	if (cc->dev_watch)
		cc->dev_watch(cc->dev_watch_arg, d->dn, now);
	cc_publish(cc, "DeviceState",
		   json_pack("{s:s, s:s}", "dn", d->dn, "state", cc_dev_name(now)), dns, NULL);
	if (!cc->publishing)
		return; /* a standby's agents come from the active node's records */
	a = ag_device(&cc->agents, d->dn, now == CC_DEV_BUSY || now == CC_DEV_RINGING);
	if (a)
		publish_agent(cc, a, dns);
}

/* --- calls ------------------------------------------------------------------------- */

static struct cc_callrec **call_slot(struct cc *cc, uint64_t id)
{
	struct cc_callrec **p = (struct cc_callrec **)growtab_head(&cc->calls, call_hv(id));

	while (*p && (*p)->id != id)
		p = &(*p)->hnext;
	return p;
}

/* Adds (SIGN +1) or removes (-1) what call R in state S does to devices. */
static void contribute(struct cc *cc, const struct cc_callrec *r, enum cc_call_state s, int sign,
		       struct cc_dn **touched, int *nt)
{
	struct cc_dn *callee = r->callee[0] ? dn_find(cc, r->callee) : NULL;
	struct cc_dn *caller = r->caller[0] ? dn_find(cc, r->caller) : NULL;

	if (callee && callee->extension) {
		if (s == CCS_DIALING || s == CCS_RINGING)
			callee->ringing += (unsigned)sign;
		else if (s == CCS_ESTABLISHED)
			callee->busy += (unsigned)sign;
		touched[(*nt)++] = callee;
	}
	if (caller && caller->extension && caller != callee && s != CCS_RELEASED) {
		caller->busy += (unsigned)sign;
		touched[(*nt)++] = caller;
	}
}

static const char *call_event(enum cc_call_state s)
{
	switch (s) {
	case CCS_DIALING:
		return "Dialing";
	case CCS_RINGING:
		return "Ringing";
	case CCS_ESTABLISHED:
		return "Established";
	case CCS_QUEUED:
		return "Queued";
	case CCS_RELEASED:
		return "Released";
	}
	return NULL;
}

/* An event from key/value strings: written as its line at once, with no
 * jansson object; deferred events and text that is not UTF-8 go through
 * cc_publish (text() mends the latter). */
static uint64_t cc_publish_kv(struct cc *cc, const char *name, const struct jkv *kv, size_t n,
			      const char *const *dns)
{
	uint64_t seq = cc->log.last_seq + 1;
	char flat[2048];
	ssize_t len;
	json_t *f;

	if (!cc->publishing)
		return 0; /* built for nothing otherwise */
	if (!cc->deferring) {
		len = jline_event_kv(flat, sizeof(flat), name, seq, cc->wall_ms(), kv, n);
		if (len >= 0)
			return cc_log_line(cc, seq, flat, (size_t)len, dns, NULL, NULL);
	}
	f = json_object();
	for (size_t i = 0; f && i < n; i++)
		json_object_set_new(f, kv[i].k, kv[i].v ? text(kv[i].v) : json_null());
	return cc_publish(cc, name, f, dns, NULL);
}

/* A call event's fields: call, dn, from, to, then rp and cause when set.
 * ID holds the call's number.  Returns how many. */
static size_t call_kv(const struct cc_callrec *r, const struct cc_call *c, const char *dn,
		      const char *cause, char id[24], struct jkv kv[6])
{
	size_t n = 0;

	kv[n++] = (struct jkv){ "call", jline_utoa(id, c->id) };
	kv[n++] = (struct jkv){ "dn", dn ? dn : "" };
	kv[n++] = (struct jkv){ "from", c->from ? c->from : "" };
	kv[n++] = (struct jkv){ "to", c->to ? c->to : "" };
	if (r->rp[0])
		kv[n++] = (struct jkv){ "rp", r->rp };
	if (cause)
		kv[n++] = (struct jkv){ "cause", cause };
	return n;
}

void cc_call_update(struct cc *cc, const struct cc_call *c)
{
	struct cc_callrec **p = call_slot(cc, c->id), *r = *p;
	enum cc_call_state before = r ? r->state : CCS_RELEASED;
	struct cc_dn *touched[4];
	const char *dns[EV_DNS];
	const char *dn;
	int nt = 0;

	if (!r) {
		if (c->state == CCS_RELEASED)
			return;
		r = calloc(1, sizeof(*r));
		if (!r) {
			pr_err("cti: no memory for call %llu", (unsigned long long)c->id);
			return;
		}
		r->id = c->id;
		r->state = CCS_RELEASED;
		/* a step of growth moves chains: the slot is found after it */
		growtab_step(&cc->calls, cc->ncalls, 2, SIZE_MAX);
		p = call_slot(cc, c->id);
		*p = r;
		cc->ncalls++;
		copy_dn(r->caller, c->caller);
	} else {
		contribute(cc, r, r->state, -1, touched, &nt);
	}
	/* Who the call is for: the routing point it waits on, then the DN it
	 * was routed to; a call dialed straight to an extension alerts it. */
	if (cc_is_routing_point(cc, c->dn))
		copy_dn(r->rp, c->dn);
	copy_dn(r->callee, c->target ? c->target : r->rp[0] ? NULL : c->dn);
	r->state = c->state;
	contribute(cc, r, r->state, +1, touched, &nt);

	dns[0] = r->rp[0] ? r->rp : NULL;
	dns[1] = r->callee[0] ? r->callee : NULL;
	dns[2] = r->caller[0] ? r->caller : NULL;
	dn = r->callee[0] ? r->callee : r->rp[0] ? r->rp : c->dn ? c->dn : "";
	if (c->state != before) {
		const char *cause = NULL;
		struct jkv kv[6];
		char id[24];
		size_t n;

		if (c->state == CCS_RELEASED)
			cause = c->cause ? c->cause : "normal";
		n = call_kv(r, c, dn, cause, id, kv);
		cc_publish_kv(cc, call_event(c->state), kv, n, dns);
		if (c->state == CCS_QUEUED) {
			cc->st.queued += cc->publishing;
			n = call_kv(r, c, r->rp, NULL, id, kv);
			cc_publish_kv(cc, "RouteRequest", kv, n, dns);
		}
	}
	for (int i = 0; i < nt; i++)
		publish_dev(cc, touched[i]);
	if (c->state == CCS_RELEASED) {
		*call_slot(cc, c->id) = r->hnext;
		cc->ncalls--;
		free(r);
	}
}

void cc_calls_reset(struct cc *cc)
{
	growtab_settle(&cc->calls);
	for (size_t i = 0; cc->calls.b && i < cc->calls.n; i++)
		while (cc->calls.b[i]) {
			struct cc_callrec *r = cc->calls.b[i];

			cc->calls.b[i] = r->hnext;
			free(r);
		}
	cc->ncalls = 0;
	for (size_t i = 0; i < cc->ndns; i++) {
		cc->dns[i].ringing = cc->dns[i].busy = 0;
		cc->dns[i].dev = dev_of(&cc->dns[i]);
	}
}

void cc_reg_update(struct cc *cc, const char *dn, bool registered)
{
	struct cc_dn *d = dn_find(cc, dn);

	if (!d || !d->extension || d->registered == registered)
		return;
	d->registered = registered;
	publish_dev(cc, d);
}

/* --- requests -------------------------------------------------------------------- */

static int refuse(char *why, size_t n, int err, const char *what)
{
	snprintf(why, n, "%s", what);
	return err;
}

int cc_agent_request(struct cc *cc, enum ag_event ev, const char *agent, const char *dn,
		     const char *reason, char *why, size_t n)
{
	const struct agent *before = agent ? ag_find(&cc->agents, agent) : NULL;
	const char *dns[EV_DNS] = { 0 };
	const struct cc_dn *d = NULL;
	char was_on[AG_DN_MAX + 1];
	struct agent *a = NULL;
	const char *w = NULL;
	int ret;

	if (!cc->publishing)
		return refuse(why, n, -EPERM, "standby");
	if (ev == AGE_LOGIN) {
		d = dn_find(cc, dn);
		if (!d || !d->extension)
			return refuse(why, n, -EINVAL, "dn is not an extension");
	}
	strcpy(was_on, before ? before->dn : "");
	ret = ag_request(&cc->agents, ev, agent, dn, reason,
			 d && (dev_of(d) == CC_DEV_BUSY || dev_of(d) == CC_DEV_RINGING), &a, &w);
	if (ret < 0)
		return refuse(why, n, ret, w ? w : strerror(-ret));
	if (ret == 0)
		return 0;
	/* Filed under the DN it is on, or was on until this logout. */
	dns[0] = a->dn[0] ? a->dn : was_on;
	publish_agent(cc, a, dns);
	return 0;
}

int cc_route(struct cc *cc, uint64_t call, const char *target, char *why, size_t n)
{
	int ret;

	if (!cc->publishing)
		return refuse(why, n, -EPERM, "standby");
	if (!cc->eng.route)
		return refuse(why, n, -ENOSYS, "no call engine");
	ret = cc->eng.route(cc->eng.arg, call, target, why, n);
	if (!ret)
		cc->st.routed++;
	return ret;
}

int cc_release(struct cc *cc, uint64_t call, char *why, size_t n)
{
	if (!cc->publishing)
		return refuse(why, n, -EPERM, "standby");
	if (!cc->eng.release)
		return refuse(why, n, -ENOSYS, "no call engine");
	return cc->eng.release(cc->eng.arg, call, why, n);
}

/* --- a standby's copy ------------------------------------------------------------ */

static int log_append(struct cc *cc, uint64_t seq, const char *const *dns, const char *client,
		      const char *ref, const char *line, size_t len)
{
	int ret;

	if (seq <= cc->log.last_seq && evlog_get(&cc->log, seq))
		return -EEXIST;
	ret = evlog_append(&cc->log, seq, *cc->now_ms, dns, client && *client ? client : NULL, line,
			   len);
	if (ret)
		return ret;
	remember_answer(cc, seq, ref);
	/* The old active's last events, on the node that took over from it
	 * in a switchover: its clients hear them from here. */
	if (cc->publishing && cc->sink.deliver)
		cc->sink.deliver(cc->sink.deliver_arg, evlog_get(&cc->log, seq));
	return 0;
}

int cc_log_replica(struct cc *cc, uint64_t seq, const char *const *dns, const char *client,
		   const char *ref, const char *line, size_t len, bool from_snapshot)
{
	struct cc_pend *p;

	if (!cc->snapping || from_snapshot)
		return log_append(cc, seq, dns, client, ref, line, len);
	p = calloc(1, sizeof(*p));
	if (!p || !(p->line = malloc(len + 1)) || (ref && !(p->ref = strdup(ref)))) {
		if (p)
			free(p->line);
		free(p);
		return -ENOMEM;
	}
	p->seq = seq;
	for (int i = 0; dns && i < EV_DNS; i++)
		copy_dn(p->dns[i], dns[i]);
	snprintf(p->client, sizeof(p->client), "%s", client ? client : "");
	memcpy(p->line, line, len);
	p->line[len] = '\0';
	p->len = len;
	*cc->pend_tail = p;
	cc->pend_tail = &p->next;
	return 0;
}

void cc_snap_begin(struct cc *cc)
{
	pend_drop(cc);
	ag_fini(&cc->agents);
	ag_init(&cc->agents);
	evlog_reset(&cc->log, 0);
	cc->nanswers = cc->ianswer = 0;
	cc->held_from = 0;
	cc->snapping = true;
}

void cc_snap_end(struct cc *cc)
{
	cc->snapping = false;
	for (struct cc_pend *p = cc->pend; p; p = p->next) {
		const char *dns[EV_DNS] = { p->dns[0][0] ? p->dns[0] : NULL,
					    p->dns[1][0] ? p->dns[1] : NULL,
					    p->dns[2][0] ? p->dns[2] : NULL };
		int ret = log_append(cc, p->seq, dns, p->client, p->ref, p->line, p->len);

		if (ret && ret != -EEXIST)
			pr_warn("cti: replicated event %llu not kept: %s",
				(unsigned long long)p->seq, strerror(-ret));
	}
	pend_drop(cc);
}
