#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <sodium.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cc/cc.h"
#include "cc/ctireq.h"
#include "core/listen.h"
#include "core/log.h"
#include "core/loop.h"
#include "ha/role.h"
#include "server/cti.h"
#include "server/server.h"

#define MON_MAX 256 /* DNs one client may monitor */
#define CTI_SNDBUF (64 << 10) /* a client socket's kernel send buffer */

struct sess {
	struct cti *cti; /* NULL once the server is gone (the loop frees us) */
	struct loop_stream *s;
	uint64_t id;
	char client[EV_CLIENT_MAX + 1];
	/* Live: events are streamed to it, from its Hello to an active node
	 * on, until the node changes role (then again after a new Hello, which
	 * may ask for what it missed: since_seq). */
	bool live;
	bool dead; /* closing: nothing more is written */
	uint64_t sent_upto; /* the newest event written to it (live or replayed) */
	bool authed; /* gave a right token in Hello (or none are required) */
	char (*mon)[EV_DN_MAX + 1];
	size_t nmon;
	struct sess *next, *prev;
};

struct cti {
	struct loop *l;
	struct server *srv;
	int fd;
	char **tokens; /* [cti] tokens_file; NULL: no client authentication */
	size_t ntokens;
	struct sess *list;
	unsigned n;
	uint64_t next_id;
	struct cti_stats st;
	struct log_rl rl_refused; /* max_clients: one warning a second */
};

static bool active(const struct cti *c)
{
	return cc_publishing(c->srv->cc);
}

static const char *node_state(const struct cti *c)
{
	struct ha_status hs = { .state = HA_ACTIVE };

	if (c->srv->ha)
		ha_get_status(c->srv->ha, &hs);
	return ha_state_name(hs.state);
}

static void kill_sess(struct sess *ss, const char *why)
{
	if (ss->dead)
		return;
	ss->dead = true;
	pr_info("cti: client %s disconnected: %s", ss->client, why);
	loop_stream_close(ss->s, false);
}

/* One line to the client.  Its queue is bounded: a client that does not
 * read is cut off, never allowed to grow our memory or stall the loop. */
static void send_line(struct sess *ss, const char *line, size_t len)
{
	struct cti *c = ss->cti;

	if (ss->dead)
		return;
	if (loop_stream_backlog(ss->s) + len + 1 > c->srv->cfg->cti.client_queue_max) {
		c->st.slow_clients++;
		pr_warn("cti: client %s does not read (%zu bytes queued); disconnecting",
			ss->client, loop_stream_backlog(ss->s));
		kill_sess(ss, "queue full");
		return;
	}
	if (loop_stream_write(ss->s, line, len) || loop_stream_write(ss->s, "\n", 1))
		kill_sess(ss, "write failed");
}

static void send_json(struct sess *ss, json_t *o)
{
	char *line = o ? json_dumps(o, JSON_COMPACT) : NULL;

	json_decref(o);
	if (line)
		send_line(ss, line, strlen(line));
	free(line);
}

/* An Error outside the log (a request that could not be read, or one a
 * standby refuses): to this client only, no sequence number. */
static void send_error(struct sess *ss, const char *ref, const char *reason)
{
	json_t *o = json_pack("{s:s, s:s}", "event", "Error", "reason", reason);

	ss->cti->st.errors++;
	if (o && ref && *ref) {
		json_t *r = json_loads(ref, JSON_DECODE_ANY, NULL);

		if (r)
			json_object_set_new(o, "ref", r);
	}
	send_json(ss, o);
}

static bool monitors(const struct sess *ss, const struct ev *e)
{
	for (size_t i = 0; i < ss->nmon; i++)
		if (ev_concerns(e, ss->mon[i]))
			return true;
	return false;
}

static bool wants(const struct sess *ss, const struct ev *e)
{
	return e->client[0] ? !strcmp(e->client, ss->client) : monitors(ss, e);
}

static void send_event(struct sess *ss, const struct ev *e)
{
	send_line(ss, e->line, e->len);
	ss->cti->st.events_sent++;
	if (e->seq > ss->sent_upto)
		ss->sent_upto = e->seq;
}

/* The cc sink: an event the pair has made (and the standby has). */
static void deliver(void *arg, const struct ev *e)
{
	struct cti *c = arg;

	for (struct sess *ss = c->list, *next; ss; ss = next) {
		next = ss->next;
		if (ss->live && wants(ss, e))
			send_event(ss, e);
	}
}

/* --- requests ------------------------------------------------------------------------ */

/* Whether TOKEN is one of the file's: every token compared, in constant
 * time each, so the answer takes as long whichever matched. */
static bool token_ok(const struct cti *c, const char *token)
{
	size_t tl = strlen(token);
	bool ok = false;

	for (size_t i = 0; i < c->ntokens; i++) {
		size_t l = strlen(c->tokens[i]);

		if (l == tl && !sodium_memcmp(c->tokens[i], token, l))
			ok = true;
	}
	return ok;
}

static void do_hello(struct sess *ss, const struct cti_req *r)
{
	struct cti *c = ss->cti;
	struct cc *cc = c->srv->cc;
	struct evlog *log = cc_evlog(cc);
	uint64_t upto = cc_delivered_seq(cc);
	json_t *o;
	int ret;

	if (c->tokens && !ss->authed) {
		/* A stranger learns nothing and cannot stay. */
		if (!r->token[0] || !token_ok(c, r->token)) {
			c->st.auth_failures++;
			send_error(ss, r->ref, "authentication failed");
			pr_info("cti: client %s: wrong or missing token", ss->client);
			loop_stream_close(ss->s, true);
			ss->dead = true;
			return;
		}
		ss->authed = true;
	}
	if (r->client[0])
		snprintf(ss->client, sizeof(ss->client), "%s", r->client);
	if (r->has_since && active(c)) {
		ret = r->since_seq > upto ? -EINVAL : evlog_check_since(log, r->since_seq);
		if (ret) {
			char why[160];

			snprintf(
				why, sizeof(why),
				ret == -ERANGE ? "gap: events after %llu are older than the log "
						 "(oldest held: %llu); Hello without since_seq "
						 "goes on from now"
					       : "since_seq %llu is newer than this node's last "
						 "event (%llu)",
				(unsigned long long)r->since_seq,
				(unsigned long long)(ret == -ERANGE ? evlog_first_seq(log) : upto));
			ss->live = false;
			send_error(ss, r->ref, why);
			return;
		}
	}
	o = json_pack("{s:b, s:s, s:s, s:I, s:I, s:s}", "ok", 1, "node", c->srv->cfg->node.id,
		      "state", node_state(c), "last_seq", (json_int_t)upto, "first_seq",
		      (json_int_t)evlog_first_seq(log), "client", ss->client);
	if (o && r->ref[0])
		json_object_set_new(o, "ref", json_loads(r->ref, JSON_DECODE_ANY, NULL));
	if (o && c->srv->ha && !active(c)) {
		struct ha_status hs;

		ha_get_status(c->srv->ha, &hs);
		json_object_set_new(o, "active", json_string(hs.peer_connected ? hs.peer : ""));
	}
	send_json(ss, o);
	if (!active(c)) {
		ss->live = false;
		return;
	}
	/* Exactly the events after since_seq that this client would have
	 * seen, then the live stream: nothing twice, nothing missing.  What
	 * this connection was sent already is not sent again (a second Hello
	 * on a live connection). */
	if (r->has_since)
		for (uint64_t s = (r->since_seq > ss->sent_upto ? r->since_seq : ss->sent_upto) + 1;
		     s <= upto && !ss->dead; s++) {
			const struct ev *e = evlog_get(log, s);

			if (e && wants(ss, e))
				send_event(ss, e);
		}
	ss->live = true;
}

static void do_monitor(struct sess *ss, const struct cti_req *r, bool on)
{
	struct cc *cc = ss->cti->srv->cc;
	size_t i;
	json_t *o;

	if (!cc_is_extension(cc, r->dn) && !cc_is_routing_point(cc, r->dn)) {
		send_error(ss, r->ref, "unknown dn (not an extension or a routing point)");
		return;
	}
	for (i = 0; i < ss->nmon && strcmp(ss->mon[i], r->dn); i++)
		;
	if (on && i == ss->nmon) {
		void *p;

		if (ss->nmon == MON_MAX) {
			send_error(ss, r->ref, "too many monitored dns");
			return;
		}
		p = realloc(ss->mon, (ss->nmon + 1) * sizeof(*ss->mon));
		if (!p) {
			send_error(ss, r->ref, "out of memory");
			return;
		}
		ss->mon = p;
		strcpy(ss->mon[ss->nmon++], r->dn);
	} else if (!on && i < ss->nmon) {
		memmove(ss->mon[i], ss->mon[i + 1], (ss->nmon - i - 1) * sizeof(*ss->mon));
		ss->nmon--;
	}
	/* Monitoring is this connection's own: a standby takes it too, so a
	 * client connected to both nodes is already monitoring on the new
	 * active when a failover comes. */
	o = json_pack("{s:b, s:s}", "ok", 1, "dn", r->dn);
	if (o && on && cc_is_extension(cc, r->dn))
		json_object_set_new(o, "device", json_string(cc_dev_name(cc_dev_state(cc, r->dn))));
	if (o && r->ref[0])
		json_object_set_new(o, "ref", json_loads(r->ref, JSON_DECODE_ANY, NULL));
	send_json(ss, o);
}

/* A request that changes the pair's state: carried out, and answered
 * through the event log (so the answer survives a failover), unless the
 * same client already sent it (same ref): then the logged answer again. */
static void do_change(struct sess *ss, const struct cti_req *r)
{
	struct cti *c = ss->cti;
	struct cc *cc = c->srv->cc;
	const struct ev *prev;
	static const enum ag_event agev[] = {
		[CR_AGENT_LOGIN] = AGE_LOGIN,
		[CR_AGENT_READY] = AGE_READY,
		[CR_AGENT_NOT_READY] = AGE_NOT_READY,
		[CR_AGENT_LOGOUT] = AGE_LOGOUT,
	};
	char why[160] = "", id[24];
	int ret;

	if (!active(c)) {
		struct ha_status hs = { 0 };
		char msg[160];

		if (c->srv->ha)
			ha_get_status(c->srv->ha, &hs);
		snprintf(msg, sizeof(msg), "standby: requests go to the active node%s%s",
			 hs.peer_connected ? " " : "", hs.peer_connected ? hs.peer : "");
		send_error(ss, r->ref, msg);
		return;
	}
	if (!ss->live) {
		send_error(ss, r->ref, "send Hello first");
		return;
	}
	if (r->ref[0] && (prev = cc_find_answer(cc, ss->client, r->ref))) {
		/* Carried out already.  Its answer again, unless this connection
		 * has just had it (a replay after Hello since_seq covers the
		 * answers too): no line reaches a client twice. */
		c->st.duplicates++;
		if (prev->seq > ss->sent_upto)
			send_event(ss, prev);
		return;
	}
	switch (r->type) {
	case CR_AGENT_LOGIN:
	case CR_AGENT_READY:
	case CR_AGENT_NOT_READY:
	case CR_AGENT_LOGOUT:
		ret = cc_agent_request(cc, agev[r->type], r->agent, r->dn,
				       r->has_reason ? r->reason : NULL, why, sizeof(why));
		break;
	case CR_ROUTE_CALL:
		ret = cc_route(cc, r->call, r->target, why, sizeof(why));
		break;
	case CR_RELEASE_CALL:
		ret = cc_release(cc, r->call, why, sizeof(why));
		break;
	default:
		ret = -EINVAL;
		snprintf(why, sizeof(why), "not a request that changes state");
		break;
	}
	snprintf(id, sizeof(id), "%llu", (unsigned long long)r->call);
	if (ret) {
		c->st.errors++;
		cc_answer(cc, ss->client, r->ref, "Error",
			  json_pack("{s:s, s:s}", "reason", why[0] ? why : strerror(-ret), "req",
				    cti_req_name(r->type)));
		return;
	}
	cc_answer(cc, ss->client, r->ref, NULL, json_pack("{s:s}", "req", cti_req_name(r->type)));
}

static void handle_line(struct sess *ss, const char *line, size_t len)
{
	struct cti *c = ss->cti;
	struct cti_req r;
	char why[160];

	c->st.requests++;
	if (cti_req_decode(line, len, &r, why, sizeof(why))) {
		send_error(ss, r.ref, why);
		return;
	}
	if (c->tokens && !ss->authed && r.type != CR_HELLO) {
		c->st.auth_failures++;
		send_error(ss, r.ref, "authentication required: Hello with a token first");
		return;
	}
	switch (r.type) {
	case CR_HELLO:
		do_hello(ss, &r);
		break;
	case CR_MONITOR:
	case CR_STOP_MONITOR:
		do_monitor(ss, &r, r.type == CR_MONITOR);
		break;
	default:
		do_change(ss, &r);
		break;
	}
}

static size_t sess_data(struct loop_stream *s, void *arg, const char *buf, size_t len)
{
	struct sess *ss = arg;
	size_t used = 0;

	(void)s;
	while (ss->cti && !ss->dead && used < len) {
		const char *nl = memchr(buf + used, '\n', len - used);
		size_t n;

		if (!nl) {
			if (len - used > CTI_LINE_MAX + 1) { /* + a CR */
				send_error(ss, NULL, "request line too long");
				loop_stream_close(ss->s, true);
				ss->dead = true;
				return len;
			}
			break;
		}
		n = (size_t)(nl - (buf + used));
		if (n && buf[used + n - 1] == '\r')
			n--; /* CRLF is fine too */
		if (n > CTI_LINE_MAX) {
			/* As when the newline never comes: refused, and closed. */
			send_error(ss, NULL, "request line too long");
			loop_stream_close(ss->s, true);
			ss->dead = true;
			return len;
		}
		if (n)
			handle_line(ss, buf + used, n);
		used = (size_t)(nl - buf) + 1;
	}
	return ss->dead ? len : used;
}

static void sess_close(struct loop_stream *s, void *arg, int err)
{
	struct sess *ss = arg;
	struct cti *c = ss->cti;

	(void)s;
	if (c) {
		if (!ss->dead || err)
			pr_info("cti: client %s left%s%s", ss->client, err ? ": " : "",
				err ? strerror(-err) : "");
		if (ss->prev)
			ss->prev->next = ss->next;
		else
			c->list = ss->next;
		if (ss->next)
			ss->next->prev = ss->prev;
		c->n--;
	}
	free(ss->mon);
	free(ss);
}

static const struct loop_stream_ops sess_ops = {
	.on_data = sess_data,
	.on_close = sess_close,
};

/* A connection past max_clients: an Error line (docs/CTI.md), then closed.
 * Written straight to the new socket, whose empty send buffer takes it
 * whole, so a flood of them costs no stream and no memory. */
static void refuse(struct cti *c, int fd, const char *addr)
{
	char line[128];
	int n = snprintf(line, sizeof(line),
			 "{\"event\":\"Error\",\"reason\":\"too many clients (max_clients %u)\"}\n",
			 c->srv->cfg->cti.max_clients);

	c->st.refused++;
	log_warn_rl(&c->rl_refused, loop_now(c->l),
		    "cti: connection from %s refused: max_clients (%u) connected", addr, c->n);
	if (n > 0 && (size_t)n < sizeof(line) &&
	    send(fd, line, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL) == n)
		shutdown(fd, SHUT_WR);
	close(fd);
}

static void on_accept(void *arg, int fd, const struct sockaddr_storage *peer, socklen_t len)
{
	struct cti *c = arg;
	struct sess *ss;
	char a[64] = "?";
	int one = 1, sndbuf = CTI_SNDBUF;

	(void)len;
	if (peer->ss_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)peer)->sin_addr, a, sizeof(a));
	else if (peer->ss_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)peer)->sin6_addr, a, sizeof(a));
	if (c->n >= c->srv->cfg->cti.max_clients) {
		refuse(c, fd, a);
		return;
	}
	ss = calloc(1, sizeof(*ss));
	if (!ss) {
		pr_err("cti: connection from %s closed: out of memory", a);
		close(fd);
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/* The kernel's share of a client's backlog is bounded too (the kernel
	 * doubles this): with client_queue_max, what a client that does not
	 * read can hold of ours is known, and it is cut off in time. */
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	ss->cti = c;
	ss->id = ++c->next_id;
	/* A name until the client gives its own in Hello: answers find it. */
	snprintf(ss->client, sizeof(ss->client), "~%s.%llu", c->srv->cfg->node.id,
		 (unsigned long long)ss->id);
	/* Streamed to from its Hello on, not before: a Hello with since_seq
	 * then replays in order what came before it. */
	ss->live = false;
	ss->authed = !c->tokens;
	ss->s = loop_stream_add(c->l, fd, &sess_ops, ss);
	if (!ss->s) {
		free(ss);
		return;
	}
	ss->next = c->list;
	if (c->list)
		c->list->prev = ss;
	c->list = ss;
	c->n++;
	c->st.connections++;
	pr_info("cti: client %s connected from %s", ss->client, a);
}

void cti_node_state(struct cti *c, bool now_active)
{
	if (!c)
		return;
	/* Every client stops and says Hello (with the last seq it saw) to go
	 * on: the replay then covers exactly what it missed. */
	for (struct sess *ss = c->list, *next; ss; ss = next) {
		next = ss->next;
		ss->live = false;
		send_json(ss, json_pack("{s:s, s:s, s:s, s:I}", "event", "NodeState", "node",
					c->srv->cfg->node.id, "state",
					now_active ? "active" : "standby", "last_seq",
					(json_int_t)cc_delivered_seq(c->srv->cc)));
	}
}

static void free_tokens(struct cti *c)
{
	for (size_t i = 0; i < c->ntokens; i++) {
		sodium_memzero(c->tokens[i], strlen(c->tokens[i]));
		free(c->tokens[i]);
	}
	free(c->tokens);
	c->tokens = NULL;
	c->ntokens = 0;
}

/* [cti] tokens_file: one token a line (16..256 printable characters, '#'
 * comments), readable by this user only. */
static int load_tokens(struct cti *c, const char *path)
{
	char line[CTI_TOKEN_MAX + 8];
	struct stat st;
	unsigned n = 0;
	FILE *f;
	int ret = 0, fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

	if (fd < 0 || fstat(fd, &st) || !S_ISREG(st.st_mode) || (st.st_mode & 077)) {
		ret = fd < 0 ? -errno : -EACCES;
		pr_err("cti: %s: %s", path,
		       fd < 0 ? strerror(errno) : "not a regular file of mode 0600 or stricter");
		if (fd >= 0)
			close(fd);
		return ret;
	}
	f = fdopen(fd, "r");
	if (!f) {
		close(fd);
		return -errno;
	}
	while (fgets(line, sizeof(line), f)) {
		size_t len = strcspn(line, "\r\n");
		char **v;

		n++;
		line[len] = '\0';
		if (!len || line[0] == '#')
			continue;
		if (len < 16 || len > CTI_TOKEN_MAX || strpbrk(line, "\t\"\\ ")) {
			pr_err("cti: %s:%u: a token is 16 to %d characters, no space, quote or "
			       "backslash",
			       path, n, CTI_TOKEN_MAX);
			ret = -EINVAL;
			break;
		}
		v = realloc(c->tokens, (c->ntokens + 1) * sizeof(*v));
		if (!v || !(v[c->ntokens] = strdup(line))) {
			if (v)
				c->tokens = v;
			ret = -ENOMEM;
			break;
		}
		c->tokens = v;
		c->ntokens++;
	}
	sodium_memzero(line, sizeof(line));
	fclose(f);
	if (!ret && !c->ntokens) {
		pr_err("cti: %s holds no token", path);
		ret = -EINVAL;
	}
	return ret;
}

int cti_open(struct cti **out, struct loop *l, struct server *srv)
{
	const struct cfg_sockaddr *la = &srv->cfg->cti.listen;
	struct cti *c;
	char a[80];
	int fd, ret;

	*out = NULL;
	/* The VIP may not be ours yet (a standby listens too). */
	fd = tcp_listen(la, 128);
	if (fd < 0) {
		pr_err("cti: cannot listen on %s: %s", cfg_sockaddr_str(la, a, sizeof(a)),
		       strerror(-fd));
		return fd;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		return -ENOMEM;
	}
	c->l = l;
	c->srv = srv;
	c->fd = fd;
	if (srv->cfg->cti.tokens_file) {
		ret = sodium_init() < 0 ? -EIO : load_tokens(c, srv->cfg->cti.tokens_file);
		if (ret) {
			free_tokens(c);
			close(fd);
			free(c);
			return ret;
		}
	} else {
		pr_warn("cti: clients are not authenticated ([cti] tokens_file)");
	}
	ret = loop_listen_add(l, fd, on_accept, c);
	if (ret) {
		free_tokens(c);
		close(fd);
		free(c);
		return ret;
	}
	cc_set_deliver(srv->cc, deliver, c);
	pr_info("cti: listening on %s", cfg_sockaddr_str(la, a, sizeof(a)));
	*out = c;
	return 0;
}

void cti_close(struct cti *c)
{
	if (!c)
		return;
	cc_set_deliver(c->srv->cc, NULL, NULL);
	/* The loop frees each connection (sess_close) when it closes it. */
	for (struct sess *ss = c->list; ss; ss = ss->next) {
		ss->cti = NULL;
		if (!ss->dead)
			loop_stream_close(ss->s, false);
		ss->dead = true;
	}
	close(c->fd);
	free_tokens(c);
	free(c);
}

const struct cti_stats *cti_stats(const struct cti *c)
{
	return &c->st;
}

unsigned cti_clients(const struct cti *c)
{
	return c ? c->n : 0;
}
