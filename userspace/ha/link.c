/* The HA link over core/loop.h (see ha/link.h and docs/HA-PROTOCOL.md): its
 * connections and its clocks.
 *
 * Every TCP connection, ours or the peer's, is a struct hal_conn that lives
 * from connect/accept until the loop's on_close.  This file opens them: one
 * outgoing connection at a time, retried with a doubling backoff, and a
 * bounded number of incoming ones awaiting their HELLO.  It also runs the
 * handshake deadline, the heartbeat and the silence clock, and holds the
 * API.  What a connection says and how one becomes the link is
 * link_proto.c (link_int.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "ha/link.h"
#include "ha/link_int.h"

#define HAL_BACKOFF_MIN 50
#define HAL_BACKOFF_MAX 1000
#define HAL_MAX_PENDING 4 /* inbound connections before their HELLO */
#define HAL_LISTEN_BACKLOG 8

static const char *addr_str(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN] = "?";

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;

		inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip));
		snprintf(buf, len, "%s:%u", ip, ntohs(sin->sin_port));
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;

		inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof(ip));
		snprintf(buf, len, "[%s]:%u", ip, ntohs(sin6->sin6_port));
	} else {
		snprintf(buf, len, "?");
	}
	return buf;
}

void hal_schedule_connect(struct hal_link *h)
{
	if (h->stopped || h->cur || h->out || timer_pending(&h->retry_t))
		return;
	loop_timer_in(h->l, &h->retry_t, h->backoff);
}

void hal_grow_backoff(struct hal_link *h)
{
	unsigned b = h->backoff ? h->backoff * 2 : h->cfg.backoff_min_ms;

	h->backoff = b > h->cfg.backoff_max_ms ? h->cfg.backoff_max_ms : b;
}

/* --- connections --------------------------------------------------------------- */

static void hs_fire(struct timer *t)
{
	struct hal_conn *c = container_of(t, struct hal_conn, hs);
	char why[64];

	c->h->st.handshake_timeouts++;
	snprintf(why, sizeof(why), "no handshake within %u ms",
		 c->st == CS_READY ? 2 * c->h->cfg.timeout_ms : c->h->cfg.timeout_ms);
	pr_debug("ha: %s: %s", c->name, why);
	hal_conn_drop(c, -ETIMEDOUT, why, 0);
}

static void tune_socket(int fd)
{
	int one = 1;

	/* Heartbeats and records are small and latency is the point. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static struct hal_conn *conn_new(struct hal_link *h, bool outbound,
				 const struct sockaddr_storage *remote)
{
	struct hal_conn *c = calloc(1, sizeof(*c));
	char a[64];

	if (!c)
		return NULL;
	c->h = h;
	c->outbound = outbound;
	c->st = CS_HELLO;
	if (h->keyed)
		hal_auth_nonce(c->nonce);
	jr_decoder_init(&c->dec, HAL_MAX_PAYLOAD);
	timer_init(&c->hs, hs_fire);
	snprintf(c->name, sizeof(c->name), "%s %s", outbound ? "to" : "from",
		 addr_str(remote, a, sizeof(a)));
	return c;
}

/* C has its stream: books it and says HELLO. */
static void conn_attach(struct hal_link *h, struct hal_conn *c)
{
	c->next = h->conns;
	h->conns = c;
	h->st.conns++;
	if (c->outbound)
		h->out = c;
	loop_timer_in(h->l, &c->hs, h->cfg.timeout_ms);
	hal_conn_send_hello(c);
}

void hal_bind_source(struct hal_link *h, int fd)
{
	const struct sockaddr_storage *la = &h->cfg.listen;
	struct sockaddr_storage src;
	int one = 1;

	/* Leave from the [ha] listen address, so the peer sees the address it
	 * knows us by; no port, so a restart never collides with TIME_WAIT. */
	if (la->ss_family != h->cfg.peer.ss_family)
		return;
	memcpy(&src, la, sizeof(src));
	if (src.ss_family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&src;

		if (sin->sin_addr.s_addr == htonl(INADDR_ANY))
			return;
		sin->sin_port = 0;
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&src;

		if (IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr))
			return;
		sin6->sin6_port = 0;
	}
	setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&src, h->cfg.listen_len))
		pr_debug("ha: cannot bind the outgoing connection to the listen address: %s",
			 strerror(errno));
}

static void retry_fire(struct timer *t)
{
	struct hal_link *h = container_of(t, struct hal_link, retry_t);
	struct hal_conn *c;
	int fd;

	if (h->stopped || h->cur || h->out)
		return;
	h->st.connect_attempts++;
	fd = socket(h->cfg.peer.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	c = fd >= 0 ? conn_new(h, true, &h->cfg.peer) : NULL;
	if (!c) {
		pr_warn("ha: cannot open a connection to %s: %s", h->peer_name,
			strerror(fd < 0 ? errno : ENOMEM));
		goto fail;
	}
	tune_socket(fd);
	hal_bind_source(h, fd);
	c->s = loop_stream_connect(h->l, fd, (const struct sockaddr *)&h->cfg.peer, h->cfg.peer_len,
				   &hal_conn_ops, c);
	fd = -1; /* the loop owns it now, even on failure */
	if (!c->s) {
		free(c);
		goto fail;
	}
	conn_attach(h, c);
	return;
fail:
	if (fd >= 0)
		close(fd);
	h->st.connect_failures++;
	hal_grow_backoff(h);
	hal_schedule_connect(h);
}

static unsigned pending_inbound(const struct hal_link *h)
{
	unsigned n = 0;

	for (const struct hal_conn *c = h->conns; c; c = c->next)
		if (!c->closing && !c->outbound && c->st != CS_UP)
			n++;
	return n;
}

/* Whether A is the configured peer's IP address (any port: the peer
 * connects from an ephemeral one).  An IPv4 peer may show up as an
 * IPv4-mapped IPv6 address on a dual-stack listener. */
static bool is_peer_addr(const struct hal_link *h, const struct sockaddr_storage *a)
{
	const struct sockaddr_storage *p = &h->cfg.peer;

	if (p->ss_family == AF_INET) {
		const struct in_addr *want = &((const struct sockaddr_in *)p)->sin_addr;

		if (a->ss_family == AF_INET)
			return ((const struct sockaddr_in *)a)->sin_addr.s_addr == want->s_addr;
		if (a->ss_family == AF_INET6) {
			const struct in6_addr *v6 = &((const struct sockaddr_in6 *)a)->sin6_addr;

			return IN6_IS_ADDR_V4MAPPED(v6) && !memcmp(&v6->s6_addr[12], want, 4);
		}
		return false;
	}
	return a->ss_family == AF_INET6 &&
	       !memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
		       &((const struct sockaddr_in6 *)p)->sin6_addr, sizeof(struct in6_addr));
}

static void on_accept(void *arg, int fd, const struct sockaddr_storage *peer, socklen_t peerlen)
{
	struct hal_link *h = arg;
	struct hal_conn *c;
	char a[64];

	(void)peerlen;
	h->st.accepts++;
	/* Only [ha] peer may talk to us: anyone else is closed before a byte
	 * is read, and logged at most once a minute. */
	if (!is_peer_addr(h, peer)) {
		h->st.strangers++;
		if (now_ms(h) >= h->stranger_log_ms) {
			pr_warn("ha: connection from %s refused: not the peer (%s); %llu so far",
				addr_str(peer, a, sizeof(a)), h->peer_name,
				(unsigned long long)h->st.strangers);
			h->stranger_log_ms = now_ms(h) + 60000;
		}
		close(fd);
		return;
	}
	if (h->stopped || pending_inbound(h) >= HAL_MAX_PENDING) {
		h->st.accepts_refused++;
		close(fd);
		return;
	}
	c = conn_new(h, false, peer);
	if (!c) {
		close(fd);
		return;
	}
	tune_socket(fd);
	c->s = loop_stream_add(h->l, fd, &hal_conn_ops, c);
	if (!c->s) {
		free(c);
		return;
	}
	conn_attach(h, c);
}

/* --- timers ------------------------------------------------------------------------ */

static void hb_fire(struct timer *t)
{
	struct hal_link *h = container_of(t, struct hal_link, hb_t);

	if (!h->cur)
		return;
	if (now_ms(h) - h->st.last_rx_ms >= 2 * (uint64_t)h->cfg.heartbeat_ms)
		h->st.heartbeats_missed++;
	if (hal_conn_send_simple(h->cur, JR_T_HEARTBEAT, h->st.last_seq_sent))
		return;
	h->st.heartbeats_out++;
	loop_timer_in(h->l, &h->hb_t, h->cfg.heartbeat_ms);
}

static void dead_fire(struct timer *t)
{
	struct hal_link *h = container_of(t, struct hal_link, dead_t);
	char why[64];

	if (h->alive_fn && h->alive_fn(h->alive_arg)) {
		/* The peer is not dead: the HA clock still hears it.  A loop
		 * that is merely slow is forgiven; a link silent for longer
		 * than that carries nothing (a partition of the link alone):
		 * it is re-made, which resynchronises, with no verdict. */
		h->st.silences_forgiven++;
		if (h->cur && now_ms(h) - h->st.last_rx_ms >= hal_patience_ms(h->cfg.timeout_ms))
			hal_conn_drop(h->cur, -ETIMEDOUT, "link silent while the peer lives",
				      JR_BYE_TIMEOUT);
		loop_timer_in(h->l, &h->dead_t, h->cfg.timeout_ms);
		return;
	}
	h->watching = false;
	snprintf(why, sizeof(why), "peer silent for %u ms", h->cfg.timeout_ms);
	/* Said, if the peer can still hear it: a close with no GOODBYE
	 * would tell it that this process died (on_peer_gone). */
	if (h->cur)
		hal_conn_drop(h->cur, -ETIMEDOUT, why, JR_BYE_TIMEOUT);
	if (h->stopped)
		return;
	h->st.peer_dead++;
	pr_warn("ha: peer %s is dead: %s", h->peer.node_id[0] ? h->peer.node_id : h->peer_name,
		why);
	if (h->ops->on_peer_dead)
		h->ops->on_peer_dead(h->arg);
}

/* --- API ---------------------------------------------------------------------------- */

static int check_config(const struct hal_config *cfg)
{
	size_t idlen = cfg->node_id ? strlen(cfg->node_id) : 0;

	if (!idlen || idlen > JR_NODE_ID_MAX) {
		pr_err("ha: node id must have 1 to %u characters", JR_NODE_ID_MAX);
		return -EINVAL;
	}
	if (!cfg->heartbeat_ms || cfg->timeout_ms <= cfg->heartbeat_ms) {
		pr_err("ha: need heartbeat_ms >= 1 and timeout_ms > heartbeat_ms");
		return -EINVAL;
	}
	if (!cfg->listen_len || cfg->listen_len > sizeof(cfg->listen) || !cfg->peer_len ||
	    cfg->peer_len > sizeof(cfg->peer) ||
	    (cfg->listen.ss_family != AF_INET && cfg->listen.ss_family != AF_INET6) ||
	    (cfg->peer.ss_family != AF_INET && cfg->peer.ss_family != AF_INET6)) {
		pr_err("ha: listen and peer must be IPv4 or IPv6 addresses");
		return -EINVAL;
	}
	if (cfg->redundancy > JR_RED_WARM || cfg->role > JR_ROLE_BACKUP ||
	    cfg->state > JR_STATE_ISOLATED)
		return -EINVAL;
	return 0;
}

static int open_listener(struct hal_link *h)
{
	char a[64];
	int one = 1, fd, ret;

	fd = socket(h->cfg.listen.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* A restarted daemon must get its port back while the old
	 * connections sit in TIME_WAIT. */
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)&h->cfg.listen, h->cfg.listen_len) ||
	    listen(fd, HAL_LISTEN_BACKLOG)) {
		ret = -errno;
		pr_err("ha: cannot listen on %s: %s", addr_str(&h->cfg.listen, a, sizeof(a)),
		       strerror(-ret));
		close(fd);
		return ret;
	}
	h->lfd = fd;
	ret = loop_listen_add(h->l, fd, on_accept, h);
	if (ret)
		return ret;
	pr_info("ha: listening on %s, peer %s", addr_str(&h->cfg.listen, a, sizeof(a)),
		h->peer_name);
	return 0;
}

static uint64_t random_instance(void)
{
	uint64_t v = 0;
	struct timespec ts;

	if (getrandom(&v, sizeof(v), GRND_NONBLOCK) == (ssize_t)sizeof(v) && v)
		return v;
	/* Only has to differ from the previous run of this node. */
	clock_gettime(CLOCK_REALTIME, &ts);
	return ((uint64_t)ts.tv_sec << 20) ^ (uint64_t)ts.tv_nsec ^ (uint64_t)getpid() << 40;
}

void hal_set_alive_check(struct hal_link *h, bool (*fn)(void *arg), void *arg)
{
	h->alive_fn = fn;
	h->alive_arg = arg;
}

void hal_start(struct hal_link *h)
{
	if (!h->stopped)
		return;
	h->stopped = false;
	h->backoff = 0;
	h->watching = true;
	loop_timer_in(h->l, &h->dead_t,
		      h->cfg.timeout_ms + hal_start_grace_ms(h->cfg.heartbeat_ms));
	hal_schedule_connect(h);
}

int hal_new(struct loop *l, const struct hal_config *cfg, const struct hal_ops *ops, void *arg,
	    struct hal_link **out)
{
	struct hal_link *h;
	int ret;

	*out = NULL;
	ret = check_config(cfg);
	if (ret)
		return ret;
	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->l = l;
	h->cfg = *cfg;
	h->cfg.node_id = h->local.node_id;
	if (!h->cfg.backoff_min_ms)
		h->cfg.backoff_min_ms = HAL_BACKOFF_MIN;
	if (h->cfg.backoff_max_ms < h->cfg.backoff_min_ms)
		h->cfg.backoff_max_ms = h->cfg.backoff_min_ms > HAL_BACKOFF_MAX
						? h->cfg.backoff_min_ms
						: HAL_BACKOFF_MAX;
	h->ops = ops;
	h->arg = arg;
	h->lfd = -1;
	h->stopped = true;
	h->local.proto_major = JR_VERSION;
	h->local.proto_minor = JR_VERSION_MINOR;
	snprintf(h->local.node_id, sizeof(h->local.node_id), "%s", cfg->node_id);
	h->local.epoch = cfg->epoch;
	h->local.instance = cfg->instance ? cfg->instance : random_instance();
	h->local.priority = cfg->priority;
	h->local.redundancy = cfg->redundancy;
	h->local.role = cfg->role;
	h->local.state = cfg->state;
	h->local.last_seq = cfg->last_seq;
	memcpy(h->local.mac, cfg->mac, sizeof(h->local.mac));
	addr_str(&cfg->peer, h->peer_name, sizeof(h->peer_name));
	jr_buf_init(&h->tx);
	jr_buf_init(&h->sealed);
	h->keyed = cfg->keyed;
	memcpy(h->key, cfg->key, sizeof(h->key));
	sodium_memzero(h->cfg.key, sizeof(h->cfg.key));
	if (h->keyed && hal_auth_init()) {
		pr_err("ha: cannot initialise libsodium");
		hal_free(h);
		return -EIO;
	}
	timer_init(&h->retry_t, retry_fire);
	timer_init(&h->hb_t, hb_fire);
	timer_init(&h->dead_t, dead_fire);
	hal_watch_init(h);
	ret = open_listener(h);
	if (ret) {
		hal_free(h);
		return ret;
	}
	hal_start(h);
	*out = h;
	return 0;
}

void hal_free(struct hal_link *h)
{
	struct timer_wheel *tw;

	if (!h)
		return;
	tw = loop_timers(h->l);
	timer_del(tw, &h->retry_t);
	timer_del(tw, &h->hb_t);
	timer_del(tw, &h->dead_t);
	hal_watch_fini(h);
	/* The loop still owns the streams and reports them closed later (or
	 * in loop_free); a connection without a link just frees itself then. */
	for (struct hal_conn *c = h->conns; c; c = c->next) {
		timer_del(tw, &c->hs);
		if (!c->closing)
			loop_stream_close(c->s, false);
		c->h = NULL;
	}
	if (h->lfd >= 0) {
		shutdown(h->lfd, SHUT_RDWR);
		close(h->lfd);
	}
	jr_buf_free(&h->tx);
	jr_buf_free(&h->sealed);
	sodium_memzero(h->key, sizeof(h->key));
	free(h);
}

void hal_stop(struct hal_link *h, uint16_t code, const char *reason)
{
	struct timer_wheel *tw = loop_timers(h->l);

	if (h->stopped)
		return;
	h->stopped = true;
	h->watching = false;
	timer_del(tw, &h->retry_t);
	timer_del(tw, &h->hb_t);
	timer_del(tw, &h->dead_t);
	for (struct hal_conn *c = h->conns; c; c = c->next)
		if (!c->closing)
			hal_conn_drop(c, 0, reason ? reason : "stopped",
				      bye_if_connected(c, code ? code : JR_BYE_SHUTDOWN));
}

void hal_set_progress(struct hal_link *h, uint64_t last_seq, uint64_t fed_by)
{
	h->local.last_seq = last_seq;
	h->local.fed_by = fed_by;
}

uint64_t hal_instance(const struct hal_link *h)
{
	return h->local.instance;
}

int hal_update_hello(struct hal_link *h, uint64_t epoch, uint8_t state, uint64_t last_seq)
{
	if (state > JR_STATE_ISOLATED)
		return -EINVAL;
	h->local.epoch = epoch;
	h->local.state = state;
	h->local.last_seq = last_seq;
	return h->cur ? hal_conn_send_hello(h->cur) : 0;
}

static uint32_t peek_len(const uint8_t *p)
{
	return (uint32_t)p[4] << 24 | (uint32_t)p[5] << 16 | (uint32_t)p[6] << 8 | p[7];
}

int hal_send_frame(struct hal_link *h, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	uint64_t max_seq = 0, max_ack = 0;
	struct jr_decoder d;
	unsigned frames = 0;
	size_t off = 0;
	int ret;

	if (!h->cur)
		return -ENOTCONN;
	if (!len)
		return -EINVAL;
	jr_decoder_init(&d, HAL_MAX_PAYLOAD);
	while (off < len) {
		struct jr_frame f;
		size_t n;

		ret = jr_decode(&d, p + off, len - off, &n, &f);
		if (ret == -EBADMSG && len - off >= 8 && peek_len(p + off) > HAL_MAX_PAYLOAD &&
		    d.err_version == 0 && p[off] == JR_MAGIC >> 8)
			return -EMSGSIZE;
		if (ret)
			return -EINVAL;
		switch (f.type) {
		case JR_T_HELLO:
		case JR_T_HEARTBEAT:
		case JR_T_GOODBYE:
		case JR_T_SELECT:
			return -EINVAL;
		case JR_T_RECORD:
		case JR_T_SNAPSHOT_BEGIN:
		case JR_T_SNAPSHOT_END:
			if (f.seq > max_seq)
				max_seq = f.seq;
			break;
		case JR_T_ACK:
			if (f.seq > max_ack)
				max_ack = f.seq;
			break;
		}
		off += n;
		frames++;
	}
	ret = hal_conn_write(h->cur, buf, len, frames);
	if (ret)
		return ret;
	if (max_seq > h->st.last_seq_sent)
		h->st.last_seq_sent = max_seq;
	if (max_ack > h->st.last_ack_sent)
		h->st.last_ack_sent = max_ack;
	return 0;
}

int hal_send_record(struct hal_link *h, const struct jr_record *r)
{
	int ret;

	if (!h->cur)
		return -ENOTCONN;
	jr_buf_reset(&h->tx);
	ret = jr_record_encode(&h->tx, r);
	return ret ? ret : hal_send_frame(h, h->tx.data, h->tx.len);
}

int hal_send_ack(struct hal_link *h, uint64_t seq)
{
	int ret;

	if (!h->cur)
		return -ENOTCONN;
	ret = hal_conn_send_simple(h->cur, JR_T_ACK, seq);
	if (!ret && seq > h->st.last_ack_sent)
		h->st.last_ack_sent = seq;
	return ret;
}

bool hal_is_up(const struct hal_link *h)
{
	return h->cur != NULL;
}

const struct jr_hello *hal_peer(const struct hal_link *h)
{
	return h->cur ? &h->peer : NULL;
}

const struct hal_stats *hal_stats(const struct hal_link *h)
{
	return &h->st;
}

size_t hal_backlog(const struct hal_link *h)
{
	return h->cur && h->cur->s ? loop_stream_backlog(h->cur->s) : 0;
}

uint64_t hal_sync_lag(const struct hal_link *h)
{
	return h->st.last_seq_sent > h->st.last_seq_acked
		       ? h->st.last_seq_sent - h->st.last_seq_acked
		       : 0;
}

int hal_conn_info(const struct hal_link *h, struct hal_conn_info *out)
{
	int fd;

	memset(out, 0, sizeof(*out));
	if (!h->cur)
		return -ENOTCONN;
	fd = loop_stream_fd(h->cur->s);
	out->outbound = h->cur->outbound;
	out->local_len = sizeof(out->local);
	out->remote_len = sizeof(out->remote);
	if (getsockname(fd, (struct sockaddr *)&out->local, &out->local_len) ||
	    getpeername(fd, (struct sockaddr *)&out->remote, &out->remote_len))
		return -errno;
	return 0;
}
