/* The HA link over core/loop.h (see ha/link.h and docs/HA-PROTOCOL.md).
 *
 * Every TCP connection, ours or the peer's, is a struct hal_conn that lives
 * from connect/accept until the loop's on_close.  A connection goes HELLO
 * (ours sent, the peer's awaited) -> READY (the peer's HELLO checked) -> UP
 * (the link).  The node with the lower id decides which READY connection
 * becomes the link and tells the other with SELECT; everything else is closed
 * with a GOODBYE, so both nodes end up on the same connection without a
 * second round trip.  A connection leaves the link's books (conn_detach) the
 * moment we decide to close it; its memory goes when the loop reports it
 * closed. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "ha/link.h"

#define HAL_BACKOFF_MIN 50
#define HAL_BACKOFF_MAX 1000
#define HAL_MAX_PENDING 4 /* inbound connections before their HELLO */
#define HAL_LISTEN_BACKLOG 8

enum conn_state {
	CS_HELLO, /* connecting or connected: our HELLO is out, the peer's awaited */
	CS_READY, /* the peer's HELLO checked: waiting for the choice */
	CS_UP, /* the link */
};

struct hal_conn {
	struct hal_link *h; /* NULL once the link is freed */
	struct loop_stream *s;
	struct hal_conn *next;
	bool outbound;
	bool closing; /* detached: waiting for the loop's on_close */
	bool parked; /* READY inbound, kept while our own connection may still win */
	enum conn_state st;
	struct jr_decoder dec;
	struct jr_hello peer;
	struct timer hs; /* handshake deadline */
	char name[72];
};

struct hal_link {
	struct loop *l;
	struct hal_config cfg;
	const struct hal_ops *ops;
	void *arg;
	struct jr_hello local;
	int lfd;
	bool stopped;
	bool watching; /* the silence clock runs: on_peer_dead is due at its end */
	bool refusal_logged;
	struct hal_conn *conns; /* every connection until on_close */
	struct hal_conn *cur; /* the link */
	struct hal_conn *out; /* our outgoing connection while it is not the link */
	struct jr_hello peer;
	unsigned backoff; /* delay before the next connect */
	struct timer retry_t, hb_t, dead_t;
	struct jr_buf tx;
	struct hal_stats st;
	char peer_name[64];
};

static const struct loop_stream_ops conn_ops;

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

static const char *bye_name(uint16_t code)
{
	static const char *const names[] = {
		[JR_BYE_SHUTDOWN] = "shutdown",	  [JR_BYE_DEMOTING] = "demoting",
		[JR_BYE_VERSION] = "version",	  [JR_BYE_SAME_ID] = "same node id",
		[JR_BYE_DUPLICATE] = "duplicate", [JR_BYE_PROTOCOL] = "protocol error",
		[JR_BYE_TIMEOUT] = "timeout",
	};

	if (code < sizeof(names) / sizeof(names[0]) && names[code])
		return names[code];
	return "unknown";
}

static uint64_t now_ms(const struct hal_link *h)
{
	return loop_now(h->l);
}

/* The lower node id decides which connection is the link. */
static bool we_decide(const struct hal_link *h, const struct hal_conn *c)
{
	return strcmp(h->local.node_id, c->peer.node_id) < 0;
}

static void schedule_connect(struct hal_link *h)
{
	if (h->stopped || h->cur || h->out || timer_pending(&h->retry_t))
		return;
	loop_timer_in(h->l, &h->retry_t, h->backoff);
}

static void grow_backoff(struct hal_link *h)
{
	unsigned b = h->backoff ? h->backoff * 2 : h->cfg.backoff_min_ms;

	h->backoff = b > h->cfg.backoff_max_ms ? h->cfg.backoff_max_ms : b;
}

/* The peer spoke on the link: restart the silence clock. */
static void life(struct hal_link *h)
{
	h->st.last_rx_ms = now_ms(h);
	if (h->watching)
		loop_timer_in(h->l, &h->dead_t, h->cfg.timeout_ms);
}

static void conn_detach(struct hal_conn *c, int err, const char *reason);

/* A GOODBYE is only worth sending on a connection known to be up: our own
 * one may still be connecting, and a close that waits for it to be sent
 * would linger as long as the kernel keeps retrying the SYN. */
static uint16_t bye_if_connected(const struct hal_conn *c, uint16_t code)
{
	return c->outbound && c->st == CS_HELLO ? 0 : code;
}

/* Takes C out of the link and closes it, with a GOODBYE first when BYE is a
 * code (then the close waits for it to be sent).  Callbacks may run. */
static void conn_drop(struct hal_conn *c, int err, const char *reason, uint16_t bye)
{
	struct hal_link *h = c->h;

	if (c->closing)
		return;
	if (bye) {
		jr_buf_reset(&h->tx);
		if (!jr_goodbye_encode(&h->tx, bye, reason) &&
		    !loop_stream_write(c->s, h->tx.data, h->tx.len)) {
			h->st.frames_out++;
			h->st.bytes_out += h->tx.len;
		}
	}
	loop_stream_close(c->s, bye != 0);
	conn_detach(c, err, reason);
}

/* Writes whole frames to C; a failure drops C (and the link with it). */
static int conn_write(struct hal_conn *c, const void *buf, size_t len, unsigned frames)
{
	struct hal_link *h = c->h;
	int ret = loop_stream_write(c->s, buf, len);

	if (!ret) {
		h->st.frames_out += frames;
		h->st.bytes_out += len;
		h->st.last_tx_ms = now_ms(h);
		return 0;
	}
	if (ret == -ENOBUFS) {
		h->st.backlog_overflows++;
		pr_warn("ha: %s: send backlog over %u bytes, the peer does not read", c->name,
			LOOP_STREAM_MAX_BACKLOG);
		conn_drop(c, ret, "send backlog overflow", 0);
	} else {
		conn_drop(c, ret, "write failed", 0);
	}
	return ret;
}

static int send_simple(struct hal_conn *c, uint8_t type, uint64_t seq)
{
	struct hal_link *h = c->h;
	int ret;

	jr_buf_reset(&h->tx);
	ret = jr_simple_encode(&h->tx, type, seq);
	return ret ? ret : conn_write(c, h->tx.data, h->tx.len, 1);
}

static int send_hello(struct hal_conn *c)
{
	struct hal_link *h = c->h;
	int ret;

	jr_buf_reset(&h->tx);
	ret = jr_hello_encode(&h->tx, &h->local);
	return ret ? ret : conn_write(c, h->tx.data, h->tx.len, 1);
}

static void protocol_error(struct hal_conn *c, const char *what)
{
	c->h->st.protocol_errors++;
	pr_warn("ha: %s: %s, dropping the connection", c->name, what);
	conn_drop(c, -EPROTO, what, JR_BYE_PROTOCOL);
}

/* A peer we cannot pair with: said once at error level per episode, since
 * it will keep trying every backoff_max_ms. */
static void refuse(struct hal_conn *c, uint16_t code, int err, const char *what)
{
	struct hal_link *h = c->h;

	h->st.refused++;
	if (!h->refusal_logged)
		pr_err("ha: %s: %s: refused", c->name, what);
	else
		pr_debug("ha: %s: %s: refused", c->name, what);
	h->refusal_logged = true;
	conn_drop(c, err, what, code);
}

/* --- up and down ------------------------------------------------------------ */

static void link_down(struct hal_link *h, int err, const char *reason)
{
	h->cur = NULL;
	h->st.downs++;
	timer_del(loop_timers(h->l), &h->hb_t);
	pr_info("ha: link to %s down: %s", h->peer.node_id, reason);
	h->backoff = h->cfg.backoff_min_ms;
	schedule_connect(h);
	if (h->ops->on_down)
		h->ops->on_down(h->arg, err, reason);
}

static void link_up(struct hal_link *h, struct hal_conn *c)
{
	bool same_peer = false;

	if (h->cur) {
		/* The peer moved to a new connection (it restarted, or saw the
		 * old one die before we did): the old one is stale. */
		conn_drop(h->cur, -ECONNRESET, "the peer moved to a new connection", 0);
		if (h->stopped || c->closing)
			return;
	}
	/* SELECT goes first: if it cannot be written, C is dropped as a
	 * connection that never made it, not as a link that went down. */
	if (we_decide(h, c) && send_simple(c, JR_T_SELECT, 0))
		return;
	if (h->st.ups && !strcmp(h->peer.node_id, c->peer.node_id) &&
	    h->peer.instance == c->peer.instance)
		same_peer = true;
	if (h->out == c)
		h->out = NULL;
	timer_del(loop_timers(h->l), &h->retry_t);
	timer_del(loop_timers(h->l), &c->hs);
	c->st = CS_UP;
	c->parked = false;
	h->cur = c;
	for (struct hal_conn *o = h->conns; o; o = o->next) {
		if (o != c && !o->closing) {
			h->st.duplicates++;
			conn_drop(o, 0, "another connection won",
				  bye_if_connected(o, JR_BYE_DUPLICATE));
		}
	}
	h->peer = c->peer;
	/* A restarted peer has only what its HELLO says; the same process
	 * still has everything it acknowledged before. */
	if (!same_peer || c->peer.last_seq > h->st.last_seq_acked)
		h->st.last_seq_acked = c->peer.last_seq;
	h->st.ups++;
	if (h->st.ups > 1)
		h->st.reconnects++;
	h->backoff = h->cfg.backoff_min_ms;
	h->refusal_logged = false;
	h->watching = true;
	life(h);
	loop_timer_in(h->l, &h->hb_t, h->cfg.heartbeat_ms);
	pr_info("ha: link up with %s (epoch %llu) on the %s connection %s", c->peer.node_id,
		(unsigned long long)c->peer.epoch, c->outbound ? "outgoing" : "incoming", c->name);
	if (h->ops->on_up)
		h->ops->on_up(h->arg, &h->peer);
}

static struct hal_conn *find_parked(struct hal_link *h)
{
	for (struct hal_conn *c = h->conns; c; c = c->next)
		if (c->parked && !c->closing)
			return c;
	return NULL;
}

static void conn_detach(struct hal_conn *c, int err, const char *reason)
{
	struct hal_link *h = c->h;
	bool was_cur = h->cur == c, was_out = h->out == c;

	c->closing = true;
	c->parked = false;
	timer_del(loop_timers(h->l), &c->hs);
	h->st.conns--;
	if (was_out) {
		h->out = NULL;
		if (!h->cur) {
			h->st.connect_failures++;
			grow_backoff(h);
		}
	}
	if (was_cur) {
		link_down(h, err, reason);
		return;
	}
	if (h->cur || h->stopped)
		return;
	if (was_out) {
		struct hal_conn *p = find_parked(h);

		if (p) {
			link_up(h, p);
			return;
		}
	}
	schedule_connect(h);
}

/* Called on the deciding node when C has become READY. */
static void decide(struct hal_link *h, struct hal_conn *c)
{
	if (h->cur) {
		if (h->cur->peer.instance == c->peer.instance) {
			/* Same peer process, second connection: keep the one in use. */
			h->st.duplicates++;
			conn_drop(c, 0, "the link is already up", JR_BYE_DUPLICATE);
			return;
		}
		link_up(h, c);
		return;
	}
	if (!c->outbound && h->out) {
		/* Both nodes are connecting at once: ours wins if it completes,
		 * and its handshake deadline bounds the wait. */
		c->parked = true;
		timer_del(loop_timers(h->l), &c->hs);
		return;
	}
	link_up(h, c);
}

/* --- frames ---------------------------------------------------------------------- */

static void conn_hello(struct hal_conn *c, const struct jr_frame *f)
{
	struct hal_link *h = c->h;
	struct jr_hello hello;
	char why[2 * JR_NODE_ID_MAX + 64];

	if (jr_hello_decode(f, &hello)) {
		protocol_error(c, "HELLO with values out of range");
		return;
	}
	if (hello.proto_major != JR_VERSION) {
		snprintf(why, sizeof(why), "peer speaks protocol %u.%u, we speak %u.%u",
			 hello.proto_major, hello.proto_minor, JR_VERSION, JR_VERSION_MINOR);
		refuse(c, JR_BYE_VERSION, -EPROTONOSUPPORT, why);
		return;
	}
	if (!strcmp(hello.node_id, h->local.node_id)) {
		snprintf(why, sizeof(why), "peer has our node id '%s'", hello.node_id);
		refuse(c, JR_BYE_SAME_ID, -EEXIST, why);
		return;
	}
	if (c->st == CS_UP) {
		if (strcmp(hello.node_id, c->peer.node_id) || hello.instance != c->peer.instance) {
			protocol_error(c, "HELLO changed the node id or instance of the link");
			return;
		}
		c->peer = hello;
		h->peer = hello;
		if (h->ops->on_frame)
			h->ops->on_frame(h->arg, f);
		return;
	}
	if (c->st != CS_HELLO) {
		protocol_error(c, "second HELLO before the link was up");
		return;
	}
	if (h->cur && strcmp(hello.node_id, h->cur->peer.node_id)) {
		snprintf(why, sizeof(why), "node '%s' connects while the link with '%s' is up",
			 hello.node_id, h->cur->peer.node_id);
		refuse(c, JR_BYE_DUPLICATE, -EEXIST, why);
		return;
	}
	c->peer = hello;
	c->st = CS_READY;
	if (we_decide(h, c)) {
		decide(h, c);
	} else {
		/* The peer may park this connection while its own one races
		 * (up to timeout_ms): wait for its SELECT longer than that. */
		loop_timer_in(h->l, &c->hs, 2 * (uint64_t)h->cfg.timeout_ms);
	}
}

static void conn_goodbye(struct hal_conn *c, const struct jr_frame *f)
{
	struct hal_link *h = c->h;
	struct jr_goodbye g;
	char why[JR_REASON_MAX + 64];

	if (jr_goodbye_decode(f, &g)) {
		protocol_error(c, "malformed GOODBYE");
		return;
	}
	snprintf(why, sizeof(why), "peer said goodbye (%s)%s%s", bye_name(g.code),
		 g.reason[0] ? ": " : "", g.reason);
	if (g.code == JR_BYE_VERSION || g.code == JR_BYE_SAME_ID) {
		h->st.refused_by_peer++;
		if (!h->refusal_logged)
			pr_err("ha: %s: %s", c->name, why);
		h->refusal_logged = true;
	} else if (c != h->cur) {
		pr_debug("ha: %s: %s", c->name, why);
	}
	if (c == h->cur && h->ops->on_frame) {
		h->ops->on_frame(h->arg, f);
		if (c->closing)
			return;
	}
	conn_drop(c, c == h->cur ? -ECONNRESET : 0, why, 0);
}

static void conn_frame_up(struct hal_conn *c, const struct jr_frame *f)
{
	struct hal_link *h = c->h;

	life(h);
	switch (f->type) {
	case JR_T_HEARTBEAT:
		h->st.heartbeats_in++;
		return;
	case JR_T_ACK:
		if (f->seq > h->st.last_seq_acked)
			h->st.last_seq_acked = f->seq;
		break;
	case JR_T_RECORD:
	case JR_T_SNAPSHOT_BEGIN:
	case JR_T_SNAPSHOT_END:
		break;
	case JR_T_HELLO:
		conn_hello(c, f);
		return;
	case JR_T_GOODBYE:
		conn_goodbye(c, f);
		return;
	case JR_T_SELECT:
		if (we_decide(h, c))
			protocol_error(c, "SELECT from the node that does not decide");
		return;
	default:
		/* A newer minor version's frame: skipped, as it must be. */
		h->st.unknown_frames++;
		return;
	}
	if (h->ops->on_frame)
		h->ops->on_frame(h->arg, f);
}

static void conn_frame(struct hal_conn *c, const struct jr_frame *f)
{
	struct hal_link *h = c->h;

	h->st.frames_in++;
	h->st.unknown_attrs += f->unknown_attrs;
	switch (c->st) {
	case CS_HELLO:
		if (f->type == JR_T_HELLO)
			conn_hello(c, f);
		else if (f->type == JR_T_GOODBYE)
			conn_goodbye(c, f);
		else
			protocol_error(c, "frame before HELLO");
		break;
	case CS_READY:
		if (f->type == JR_T_SELECT && !we_decide(h, c))
			link_up(h, c);
		else if (f->type == JR_T_GOODBYE)
			conn_goodbye(c, f);
		else
			protocol_error(c, "frame before the link was up");
		break;
	case CS_UP:
		conn_frame_up(c, f);
		break;
	}
}

static void conn_bad_bytes(struct hal_conn *c)
{
	struct hal_link *h = c->h;
	char why[128];

	if (c->dec.err_version && c->dec.err_version != JR_VERSION) {
		snprintf(why, sizeof(why), "peer frames protocol version %u, we speak %u",
			 c->dec.err_version, JR_VERSION);
		refuse(c, JR_BYE_VERSION, -EPROTONOSUPPORT, why);
		return;
	}
	h->st.decode_errors++;
	snprintf(why, sizeof(why), "malformed frame: %s", c->dec.err ? c->dec.err : "?");
	pr_warn("ha: %s: %s, dropping the connection", c->name, why);
	conn_drop(c, -EBADMSG, why, JR_BYE_PROTOCOL);
}

static size_t conn_data(struct loop_stream *s, void *arg, const char *buf, size_t len)
{
	struct hal_conn *c = arg;
	const uint8_t *p = (const uint8_t *)buf;
	size_t used = 0;

	(void)s;
	while (c->h && !c->closing && used < len) {
		struct jr_frame f;
		size_t n;
		int ret = jr_decode(&c->dec, p + used, len - used, &n, &f);

		if (ret == -EAGAIN)
			return used;
		if (ret) {
			conn_bad_bytes(c);
			break;
		}
		used += n;
		c->h->st.bytes_in += n;
		conn_frame(c, &f);
	}
	/* Bytes after a close are nobody's: take them all. */
	return len;
}

static void conn_closed(struct loop_stream *s, void *arg, int err)
{
	struct hal_conn *c = arg;
	struct hal_link *h = c->h;

	(void)s;
	if (h) {
		if (!c->closing) {
			char why[96];

			if (err)
				snprintf(why, sizeof(why), "connection lost: %s", strerror(-err));
			else
				snprintf(why, sizeof(why), "connection closed by the peer");
			conn_detach(c, err, why);
		}
		for (struct hal_conn **pp = &h->conns; *pp; pp = &(*pp)->next) {
			if (*pp == c) {
				*pp = c->next;
				break;
			}
		}
	}
	free(c);
}

static const struct loop_stream_ops conn_ops = {
	.on_data = conn_data,
	.on_close = conn_closed,
};

/* --- connections --------------------------------------------------------------- */

static void hs_fire(struct timer *t)
{
	struct hal_conn *c = container_of(t, struct hal_conn, hs);
	char why[64];

	c->h->st.handshake_timeouts++;
	snprintf(why, sizeof(why), "no handshake within %u ms",
		 c->st == CS_READY ? 2 * c->h->cfg.timeout_ms : c->h->cfg.timeout_ms);
	pr_debug("ha: %s: %s", c->name, why);
	conn_drop(c, -ETIMEDOUT, why, 0);
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
	send_hello(c);
}

static void bind_source(struct hal_link *h, int fd)
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
	bind_source(h, fd);
	c->s = loop_stream_connect(h->l, fd, (const struct sockaddr *)&h->cfg.peer, h->cfg.peer_len,
				   &conn_ops, c);
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
	grow_backoff(h);
	schedule_connect(h);
}

static unsigned pending_inbound(const struct hal_link *h)
{
	unsigned n = 0;

	for (const struct hal_conn *c = h->conns; c; c = c->next)
		if (!c->closing && !c->outbound && c->st != CS_UP)
			n++;
	return n;
}

static void on_accept(void *arg, int fd, const struct sockaddr_storage *peer, socklen_t peerlen)
{
	struct hal_link *h = arg;
	struct hal_conn *c;

	(void)peerlen;
	h->st.accepts++;
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
	c->s = loop_stream_add(h->l, fd, &conn_ops, c);
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
	if (send_simple(h->cur, JR_T_HEARTBEAT, h->st.last_seq_sent))
		return;
	h->st.heartbeats_out++;
	loop_timer_in(h->l, &h->hb_t, h->cfg.heartbeat_ms);
}

static void dead_fire(struct timer *t)
{
	struct hal_link *h = container_of(t, struct hal_link, dead_t);
	char why[64];

	h->watching = false;
	snprintf(why, sizeof(why), "peer silent for %u ms", h->cfg.timeout_ms);
	if (h->cur)
		conn_drop(h->cur, -ETIMEDOUT, why, 0);
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

void hal_start(struct hal_link *h)
{
	if (!h->stopped)
		return;
	h->stopped = false;
	h->backoff = 0;
	h->watching = true;
	loop_timer_in(h->l, &h->dead_t, h->cfg.timeout_ms);
	schedule_connect(h);
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
	timer_init(&h->retry_t, retry_fire);
	timer_init(&h->hb_t, hb_fire);
	timer_init(&h->dead_t, dead_fire);
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
			conn_drop(c, 0, reason ? reason : "stopped",
				  bye_if_connected(c, code ? code : JR_BYE_SHUTDOWN));
}

int hal_update_hello(struct hal_link *h, uint64_t epoch, uint8_t state, uint64_t last_seq)
{
	if (state > JR_STATE_ISOLATED)
		return -EINVAL;
	h->local.epoch = epoch;
	h->local.state = state;
	h->local.last_seq = last_seq;
	return h->cur ? send_hello(h->cur) : 0;
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
	ret = conn_write(h->cur, buf, len, frames);
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
	ret = send_simple(h->cur, JR_T_ACK, seq);
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
