/* The death watch: a second TCP connection from the active node to its
 * peer that carries one WATCH frame and is never read or written again
 * (docs/HA-PROTOCOL.md §4.7).
 *
 * Why a second connection: the link itself lives on the io_uring loop,
 * whose pending requests hold the socket, so when the process dies its
 * kernel closes the link only once the ring is torn down, 6 to 40 ms later
 * as measured here.  A socket no request holds is closed as the process
 * exits (its file table goes first), and the FIN or RST reaches the peer
 * within a millisecond.  So this one is a plain socket: connected without
 * the loop (a timer polls for the end of the handshake), written once with
 * send(), then left alone.  The peer reads it on its own loop: a close with
 * no GOODBYE on the link first means this process is gone.
 *
 * The watch belongs to one link connection: its WATCH names our instance
 * and, on an authenticated link, proves the key with an HMAC over that
 * connection's two nonces, so it cannot be replayed against another. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sodium.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/fdhigh.h"
#include "core/log.h"
#include "ha/link_int.h"

#define WATCH_POLL_MS 1 /* how often the handshake is looked at */
#define WATCH_POLLS_MAX 1000 /* then the peer is not answering: give up */

/* The slot back to /dev/null: whatever watch it held is closed. */
static void slot_clear(struct hal_link *h)
{
	int n;

	if (h->watch_slot < 0)
		return;
	n = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (n >= 0) {
		dup3(n, h->watch_slot, O_CLOEXEC);
		close(n);
	}
}

/* A watch this process ends itself is not a death: a GOODBYE says so
 * before the close, and what the peer sent is read first, so that the
 * close is a FIN behind it (a close with unread bytes would be an RST,
 * which may overtake them). */
static void say_goodbye(struct hal_link *h)
{
	char junk[512];

	jr_buf_reset(&h->tx);
	if (!jr_goodbye_encode(&h->tx, JR_BYE_SHUTDOWN, "watch ended"))
		(void)!send(h->watch_fd, h->tx.data, h->tx.len, MSG_DONTWAIT | MSG_NOSIGNAL);
	for (int i = 0; i < 64 && recv(h->watch_fd, junk, sizeof(junk), MSG_DONTWAIT) > 0; i++)
		;
}

void hal_watch_close(struct hal_link *h)
{
	timer_del(loop_timers(h->l), &h->watch_t);
	if (h->watch_fd >= 0 && h->watch_sent)
		say_goodbye(h);
	if (h->watch_fd >= 0 && h->watch_fd != h->watch_slot)
		close(h->watch_fd);
	h->watch_fd = -1;
	h->watch_sent = false;
	slot_clear(h);
}

/* The handshake done: the one frame goes out, and that is all. */
static int watch_send(struct hal_link *h)
{
	uint8_t mac[32];
	ssize_t n;

	jr_buf_reset(&h->tx);
	if (jr_frame_begin(&h->tx, JR_T_WATCH, 0) ||
	    jr_put_u64(&h->tx, JR_WATCH_INSTANCE, h->local.instance))
		return -ENOMEM;
	if (h->keyed) {
		hal_auth_watch_mac(h, h->cur, true, mac);
		jr_put_bytes(&h->tx, JR_WATCH_MAC, mac, sizeof(mac));
	}
	if (jr_frame_end(&h->tx))
		return -ENOMEM;
	n = send(h->watch_fd, h->tx.data, h->tx.len, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (n < 0)
		return -errno;
	return (size_t)n == h->tx.len ? 0 : -EAGAIN;
}

static void watch_fire(struct timer *t)
{
	struct hal_link *h = container_of(t, struct hal_link, watch_t);
	struct pollfd p = { .fd = h->watch_fd, .events = POLLOUT };
	int err = 0;
	socklen_t el = sizeof(err);

	if (h->watch_fd < 0 || h->watch_sent || !h->cur)
		return;
	if (poll(&p, 1, 0) < 0) {
		err = errno;
	} else if (!p.revents) {
		if (++h->watch_polls < WATCH_POLLS_MAX) {
			loop_timer_in(h->l, &h->watch_t, WATCH_POLL_MS);
			return;
		}
		err = ETIMEDOUT;
	} else if (getsockopt(h->watch_fd, SOL_SOCKET, SO_ERROR, &err, &el) || err) {
		err = err ? err : errno;
	} else {
		err = -watch_send(h);
	}
	if (err) {
		/* The link will be watched from its next connection. */
		pr_warn("ha: no death watch on %s: %s", h->peer_name, strerror(err));
		hal_watch_close(h);
		return;
	}
	/* Into the low slot, which closes the previous link's watch: the peer
	 * dropped it with that link by now (this one was up before the
	 * handshake began), so its close tells nothing. */
	if (h->watch_slot >= 0 && dup3(h->watch_fd, h->watch_slot, O_CLOEXEC) >= 0) {
		close(h->watch_fd);
		h->watch_fd = h->watch_slot;
	}
	h->watch_sent = true;
	h->st.watches_sent++;
	pr_info("ha: death watch set on %s", h->peer_name);
}

static void watch_open(struct hal_link *h)
{
	int fd;

	timer_del(loop_timers(h->l), &h->watch_t);
	if (h->watch_fd >= 0 && h->watch_fd != h->watch_slot)
		close(h->watch_fd); /* a handshake that had not finished */
	h->watch_fd = -1;
	h->watch_sent = false;
	fd = socket(h->cfg.peer.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		pr_warn("ha: no death watch: %s", strerror(errno));
		return;
	}
	hal_bind_source(h, fd);
	if (connect(fd, (const struct sockaddr *)&h->cfg.peer, h->cfg.peer_len) &&
	    errno != EINPROGRESS) {
		pr_warn("ha: no death watch on %s: %s", h->peer_name, strerror(errno));
		close(fd);
		return;
	}
	h->watch_fd = fd;
	h->watch_polls = 0;
	loop_timer_in(h->l, &h->watch_t, WATCH_POLL_MS);
}

void hal_watch_init(struct hal_link *h)
{
	/* Kept near the top of the table (core/fdhigh.h): a dying process
	 * releases it right after the XDP sentinel, so the VIP is no longer
	 * answered when the peer, told by this socket, probes it. */
	h->watch_fd = -1;
	h->watch_slot = fd_move_high(open("/dev/null", O_RDONLY | O_CLOEXEC), FD_RANK_WATCH);
	timer_init(&h->watch_t, watch_fire);
}

void hal_watch_fini(struct hal_link *h)
{
	hal_watch_close(h);
	if (h->watch_slot >= 0)
		close(h->watch_slot);
	h->watch_slot = -1;
}

void hal_watch_link_up(struct hal_link *h)
{
	/* A watch of the previous connection would name nonces the peer no
	 * longer knows: a new one for this connection. */
	if (h->watch_wanted && h->cur)
		watch_open(h);
}

void hal_watch(struct hal_link *h, bool on)
{
	if (h->watch_wanted == on)
		return;
	h->watch_wanted = on;
	if (on)
		hal_watch_link_up(h);
	else
		hal_watch_close(h);
}

/* --- the watched side ------------------------------------------------------------ */

/* Whether the WATCH proof MAC is the right one for link connection L. */
static bool proof_ok(struct hal_link *h, struct hal_conn *l, const struct jr_attr *mac)
{
	uint8_t want[32];

	if (!h->keyed)
		return true;
	hal_auth_watch_mac(h, l, false, want);
	return mac->data && mac->len == 32 && !crypto_verify_32(want, mac->data);
}

/* The link connection a WATCH for INSTANCE belongs to: the up link, or
 * one whose handshake is done and which is about to become it (the peer
 * may send its WATCH before our side has made a connection the link, and
 * both of its connections may be ready then: on an authenticated link the
 * proof names the one, otherwise the instance is all there is). */
static struct hal_conn *watched_conn(struct hal_link *h, uint64_t instance,
				     const struct jr_attr *mac, bool *bad_proof)
{
	*bad_proof = false;
	if (h->cur) {
		if (h->cur->peer.instance != instance)
			return NULL;
		*bad_proof = !proof_ok(h, h->cur, mac);
		return *bad_proof ? NULL : h->cur;
	}
	for (struct hal_conn *l = h->conns; l; l = l->next) {
		if (l->closing || l->is_watch || l->st != CS_READY || l->peer.instance != instance)
			continue;
		if (proof_ok(h, l, mac))
			return l;
		*bad_proof = true;
	}
	return NULL;
}

static void watch_take(struct hal_link *h, struct hal_conn *c)
{
	timer_del(loop_timers(h->l), &c->hs);
	c->watch_for = NULL;
	h->watcher = c;
	h->st.watches++;
	pr_info("ha: %s watches over its process (%s)", h->cur->peer.node_id, c->name);
}

void hal_watch_frame(struct hal_conn *c, const struct jr_frame *f)
{
	struct hal_link *h = c->h;
	uint64_t inst = jr_attr_u64(&f->tb[JR_WATCH_INSTANCE]);
	bool bad_proof;
	struct hal_conn *l = watched_conn(h, inst, &f->tb[JR_WATCH_MAC], &bad_proof);
	const char *why = NULL;

	if (c->outbound)
		why = "WATCH on a connection we opened";
	else if (bad_proof)
		why = "WATCH with a wrong proof";
	else if (!l)
		why = "WATCH for no link of ours";
	else if (l == h->cur && h->watcher)
		why = "a second WATCH";
	for (struct hal_conn *o = h->conns; !why && o; o = o->next)
		if (o != c && o->is_watch && !o->closing && o != h->watcher &&
		    o->watch_inst == inst)
			why = "a second WATCH";
	if (why) {
		h->st.watches_refused++;
		pr_warn("ha: %s: %s; closed", c->name, why);
		hal_conn_drop(c, 0, why, 0);
		return;
	}
	c->is_watch = true;
	c->watch_inst = inst;
	if (l == h->cur) {
		watch_take(h, c);
		return;
	}
	/* Taken when L goes up; its handshake deadline bounds the wait. */
	c->watch_for = l;
}

void hal_watch_adopt(struct hal_link *h, struct hal_conn *c)
{
	for (struct hal_conn *o = h->conns; o; o = o->next) {
		if (o->is_watch && !o->closing && o != h->watcher &&
		    (o->watch_for == c || (!h->keyed && o->watch_inst == c->peer.instance))) {
			watch_take(h, o);
			return;
		}
	}
}

void hal_watch_forget(struct hal_link *h, struct hal_conn *c)
{
	for (struct hal_conn *o = h->conns; o; o = o->next)
		if (o->watch_for == c)
			o->watch_for = NULL;
}
