/* The HA link's protocol on one connection (docs/HA-PROTOCOL.md).
 *
 * A connection goes HELLO (ours sent, the peer's awaited) -> READY (the
 * peer's HELLO checked) -> UP (the link).  The node with the lower id decides
 * which READY connection becomes the link and tells the other with SELECT;
 * everything else is closed with a GOODBYE, so both nodes end up on the same
 * connection without a second round trip.  A connection leaves the link's
 * books (conn_detach) the moment we decide to close it; its memory goes when
 * the loop reports it closed.  Opening connections, backoff and the timers
 * are link.c's (link_int.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "ha/link_int.h"

static const char *bye_name(uint16_t code)
{
	static const char *const names[] = {
		[JR_BYE_SHUTDOWN] = "shutdown",	  [JR_BYE_DEMOTING] = "demoting",
		[JR_BYE_VERSION] = "version",	  [JR_BYE_SAME_ID] = "same node id",
		[JR_BYE_DUPLICATE] = "duplicate", [JR_BYE_PROTOCOL] = "protocol error",
		[JR_BYE_TIMEOUT] = "timeout",	  [JR_BYE_AUTH] = "authentication",
	};

	if (code < sizeof(names) / sizeof(names[0]) && names[code])
		return names[code];
	return "unknown";
}

/* The lower node id decides which connection is the link. */
static bool we_decide(const struct hal_link *h, const struct hal_conn *c)
{
	return strcmp(h->local.node_id, c->peer.node_id) < 0;
}

/* The peer spoke on the link: restart the silence clock. */
static void life(struct hal_link *h)
{
	h->st.last_rx_ms = now_ms(h);
	if (h->watching)
		loop_timer_in(h->l, &h->dead_t, h->cfg.timeout_ms);
}

static void conn_detach(struct hal_conn *c, int err, const char *reason);

/* Whole frames onto C's stream, each with its tag once we have sent our
 * AUTH on an authenticated link. */
static int conn_out(struct hal_conn *c, const void *buf, size_t len)
{
	struct hal_link *h = c->h;
	int ret;

	if (!c->tx_tagged)
		return loop_stream_write(c->s, buf, len);
	ret = hal_auth_seal(c, &h->sealed, buf, len);
	return ret ? ret : loop_stream_write(c->s, h->sealed.data, h->sealed.len);
}

void hal_conn_drop(struct hal_conn *c, int err, const char *reason, uint16_t bye)
{
	struct hal_link *h = c->h;

	if (c->closing)
		return;
	if (bye) {
		jr_buf_reset(&h->tx);
		if (!jr_goodbye_encode(&h->tx, bye, reason) &&
		    !conn_out(c, h->tx.data, h->tx.len)) {
			h->st.frames_out++;
			h->st.bytes_out += h->tx.len;
		}
	}
	loop_stream_close(c->s, bye != 0);
	conn_detach(c, err, reason);
}

int hal_conn_write(struct hal_conn *c, const void *buf, size_t len, unsigned frames)
{
	struct hal_link *h = c->h;
	int ret = conn_out(c, buf, len);

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
		hal_conn_drop(c, ret, "send backlog overflow", 0);
	} else {
		hal_conn_drop(c, ret, "write failed", 0);
	}
	return ret;
}

int hal_conn_send_simple(struct hal_conn *c, uint8_t type, uint64_t seq)
{
	struct hal_link *h = c->h;
	int ret;

	jr_buf_reset(&h->tx);
	ret = jr_simple_encode(&h->tx, type, seq);
	return ret ? ret : hal_conn_write(c, h->tx.data, h->tx.len, 1);
}

int hal_conn_send_hello(struct hal_conn *c)
{
	struct hal_link *h = c->h;
	struct jr_hello hello = h->local;
	int ret;

	/* The connection's challenge; its AUTH binds the first HELLO's bytes. */
	if (h->keyed) {
		hello.has_nonce = true;
		memcpy(hello.nonce, c->nonce, sizeof(hello.nonce));
	}
	jr_buf_reset(&h->tx);
	ret = jr_hello_encode(&h->tx, &hello);
	if (ret)
		return ret;
	if (!c->hello_sent) {
		hal_auth_hash(h->tx.data + JR_HDR_LEN, h->tx.len - JR_HDR_LEN, c->hello_hash);
		c->hello_sent = true;
	}
	return hal_conn_write(c, h->tx.data, h->tx.len, 1);
}

/* A connection that failed to authenticate: counted, logged at most once a
 * minute (a stranger may keep trying), dropped; never trusted. */
static void auth_fail(struct hal_conn *c, const char *what)
{
	struct hal_link *h = c->h;

	h->st.auth_failures++;
	if (now_ms(h) >= h->auth_log_ms) {
		pr_warn("ha: %s: %s: refused (%llu authentication failures so far)", c->name, what,
			(unsigned long long)h->st.auth_failures);
		h->auth_log_ms = now_ms(h) + 60000;
	}
	hal_conn_drop(c, -EACCES, what, c->tx_tagged || !c->outbound ? JR_BYE_AUTH : 0);
}

static void protocol_error(struct hal_conn *c, const char *what)
{
	c->h->st.protocol_errors++;
	pr_warn("ha: %s: %s, dropping the connection", c->name, what);
	hal_conn_drop(c, -EPROTO, what, JR_BYE_PROTOCOL);
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
	hal_conn_drop(c, err, what, code);
}

/* --- up and down ------------------------------------------------------------ */

static void link_down(struct hal_link *h, int err, const char *reason)
{
	h->cur = NULL;
	/* The peer's watch was over the process of that link. */
	if (h->watcher)
		hal_conn_drop(h->watcher, 0, "the link went down", 0);
	h->st.downs++;
	timer_del(loop_timers(h->l), &h->hb_t);
	pr_info("ha: link to %s down: %s", h->peer.node_id, reason);
	h->backoff = h->cfg.backoff_min_ms;
	hal_schedule_connect(h);
	if (h->ops->on_down)
		h->ops->on_down(h->arg, err, reason);
}

static void link_up(struct hal_link *h, struct hal_conn *c)
{
	bool same_peer = false;

	if (h->cur) {
		/* The peer moved to a new connection (it restarted, or saw the
		 * old one die before we did): the old one is stale. */
		hal_conn_drop(h->cur, -ECONNRESET, "the peer moved to a new connection",
			      JR_BYE_DUPLICATE);
		if (h->stopped || c->closing)
			return;
	}
	/* SELECT goes first: if it cannot be written, C is dropped as a
	 * connection that never made it, not as a link that went down. */
	if (we_decide(h, c) && hal_conn_send_simple(c, JR_T_SELECT, 0))
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
		/* A death watch stays, and so does an incoming connection that
		 * has said nothing yet: it may be one (its handshake deadline
		 * closes it otherwise). */
		if (o != c && !o->closing && !o->is_watch && (o->outbound || o->st != CS_HELLO)) {
			h->st.duplicates++;
			hal_conn_drop(o, 0, "another connection won",
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
	hal_watch_link_up(h);
	hal_watch_adopt(h, c);
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
	if (h->watcher == c)
		h->watcher = NULL;
	hal_watch_forget(h, c);
	timer_del(loop_timers(h->l), &c->hs);
	h->st.conns--;
	if (was_out) {
		h->out = NULL;
		if (!h->cur) {
			h->st.connect_failures++;
			hal_grow_backoff(h);
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
	hal_schedule_connect(h);
}

/* Called on the deciding node when C has become READY. */
static void decide(struct hal_link *h, struct hal_conn *c)
{
	if (h->cur) {
		if (h->cur->peer.instance == c->peer.instance) {
			/* Same peer process, second connection: keep the one in use. */
			h->st.duplicates++;
			hal_conn_drop(c, 0, "the link is already up", JR_BYE_DUPLICATE);
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

/* The peer's HELLO, checked (and, on an authenticated link, proven). */
static void hello_accepted(struct hal_conn *c, const struct jr_hello *hello)
{
	struct hal_link *h = c->h;
	char why[2 * JR_NODE_ID_MAX + 64];

	if (h->cur && strcmp(hello->node_id, h->cur->peer.node_id)) {
		snprintf(why, sizeof(why), "node '%s' connects while the link with '%s' is up",
			 hello->node_id, h->cur->peer.node_id);
		refuse(c, JR_BYE_DUPLICATE, -EEXIST, why);
		return;
	}
	c->peer = *hello;
	c->st = CS_READY;
	if (we_decide(h, c)) {
		decide(h, c);
	} else {
		/* The peer may park this connection while its own one races
		 * (up to timeout_ms): wait for its SELECT longer than that. */
		loop_timer_in(h->l, &c->hs, 2 * (uint64_t)h->cfg.timeout_ms);
	}
}

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
	/* Epochs move by one per takeover: a jump far past ours is a peer that
	 * lies (it would win every split brain and be adopted, persisted and,
	 * near UINT64_MAX, wrap), never a real one. */
	if (hello.epoch > HAL_EPOCH_MAX || hello.epoch > h->local.epoch + HAL_EPOCH_JUMP) {
		snprintf(why, sizeof(why), "peer claims epoch %llu (ours is %llu)",
			 (unsigned long long)hello.epoch, (unsigned long long)h->local.epoch);
		refuse(c, JR_BYE_PROTOCOL, -EINVAL, why);
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
	if (h->keyed != hello.has_nonce) {
		auth_fail(c, h->keyed ? "the peer does not authenticate (no [ha] key_file there)"
				      : "the peer authenticates ([ha] key_file there, not here)");
		return;
	}
	if (h->keyed) {
		/* Nothing of this HELLO counts until the peer proves the key:
		 * our AUTH goes out, from here on our frames carry tags. */
		uint8_t mac[32];

		c->pending = hello;
		memcpy(c->peer_nonce, hello.nonce, sizeof(c->peer_nonce));
		hal_auth_hash(f->payload, f->len, c->peer_hello_hash);
		hal_auth_keys(h, c);
		hal_auth_mac(h, c->nonce, c->peer_nonce, c->hello_hash, mac);
		jr_buf_reset(&h->tx);
		if (jr_frame_begin(&h->tx, JR_T_AUTH, 0) ||
		    jr_put_bytes(&h->tx, JR_AUTH_MAC, mac, 32) || jr_frame_end(&h->tx) ||
		    hal_conn_write(c, h->tx.data, h->tx.len, 1))
			return;
		c->tx_tagged = true;
		c->st = CS_AUTH;
		return;
	}
	hello_accepted(c, &hello);
}

/* The peer's AUTH: it holds the key (or the connection goes). */
static void conn_auth(struct hal_conn *c, const struct jr_frame *f)
{
	const struct jr_attr *a = &f->tb[JR_AUTH_MAC];

	if (!a->data || a->len != 32 || !hal_auth_check(c->h, c, a->data)) {
		auth_fail(c, "wrong AUTH: the peer does not hold our key");
		return;
	}
	c->rx_tagged = true;
	c->st = CS_HELLO;
	hello_accepted(c, &c->pending);
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
	hal_conn_drop(c, c == h->cur ? -ECONNRESET : 0, why, 0);
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
	if (c->is_watch) {
		/* The peer ended its watch itself (it left the active role). */
		if (f->type == JR_T_GOODBYE)
			hal_conn_drop(c, 0, "the peer ended its death watch", 0);
		else
			protocol_error(c, "a frame after WATCH");
		return;
	}
	switch (c->st) {
	case CS_HELLO:
		if (f->type == JR_T_HELLO)
			conn_hello(c, f);
		else if (f->type == JR_T_WATCH)
			hal_watch_frame(c, f);
		else if (f->type == JR_T_GOODBYE)
			conn_goodbye(c, f);
		else
			protocol_error(c, "frame before HELLO");
		break;
	case CS_AUTH:
		if (f->type == JR_T_AUTH)
			conn_auth(c, f);
		else if (f->type == JR_T_GOODBYE)
			conn_goodbye(c, f);
		else
			auth_fail(c, "frame before AUTH");
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
	hal_conn_drop(c, -EBADMSG, why, JR_BYE_PROTOCOL);
}

static size_t conn_data(struct loop_stream *s, void *arg, const char *buf, size_t len)
{
	struct hal_conn *c = arg;
	const uint8_t *p = (const uint8_t *)buf;
	size_t used = 0;

	(void)s;
	while (c->h && !c->closing && used < len) {
		struct jr_frame f;
		size_t n, fl;
		int ret;

		/* An authenticated frame is whole with its tag: wait for both
		 * (a header the decoder refuses is refused below all the same). */
		if (c->rx_tagged && len - used >= JR_HDR_LEN) {
			fl = jr_frame_len(p + used);
			if (fl <= JR_HDR_LEN + HAL_MAX_PAYLOAD && len - used < fl + JR_TAG_LEN)
				return used;
		}
		ret = jr_decode(&c->dec, p + used, len - used, &n, &f);
		if (ret == -EAGAIN)
			return used;
		if (ret) {
			conn_bad_bytes(c);
			break;
		}
		if (c->rx_tagged) {
			if (len - used < n + JR_TAG_LEN)
				return used;
			if (!hal_auth_open(c, p + used, n, p + used + n)) {
				auth_fail(c,
					  "a frame with a wrong tag (changed, replayed or forged)");
				break;
			}
			c->h->st.bytes_in += JR_TAG_LEN;
			n += JR_TAG_LEN;
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
			/* A FIN or RST on the link itself, with no GOODBYE before
			 * it: the peer's kernel closed it, as it does for a process
			 * that died.  A network fault times out instead. */
			bool watch = c == h->watcher;
			bool gone = (c == h->cur || watch) && !h->stopped &&
				    (!err || err == -ECONNRESET || err == -EPIPE);
			char why[96];

			if (err)
				snprintf(why, sizeof(why), "connection lost: %s", strerror(-err));
			else
				snprintf(why, sizeof(why), "connection closed by the peer");
			conn_detach(c, err, why);
			/* The link of a dead process is dead too, though its
			 * kernel has not closed it yet (link_watch.c). */
			if (gone && watch && h->cur)
				hal_conn_drop(h->cur, -ECONNRESET, "the peer's death watch closed",
					      0);
			if (gone && !h->stopped) {
				h->st.peer_gone++;
				if (h->ops->on_peer_gone)
					h->ops->on_peer_gone(h->arg);
			}
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

const struct loop_stream_ops hal_conn_ops = {
	.on_data = conn_data,
	.on_close = conn_closed,
};
