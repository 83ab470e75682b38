/* Shared by the two files of the HA link, and included by nothing else:
 *  - link.c: the connections (listening, connecting with backoff,
 *    accepting), the link's timers and the API of ha/link.h;
 *  - link_proto.c: what travels on a connection: the handshake that makes
 *    one of them the link, the link going up and down, frames in and out. */
#ifndef SIPHA_HA_LINK_INT_H
#define SIPHA_HA_LINK_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "core/loop.h"
#include "core/timer.h"
#include "ha/journal.h"
#include "ha/link.h"

enum conn_state {
	CS_HELLO, /* connecting or connected: our HELLO is out, the peer's awaited */
	CS_AUTH, /* the peer's HELLO read, our AUTH out: the peer's AUTH awaited */
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
	bool is_watch; /* the peer's death watch (link_watch.c), not a link */
	struct hal_conn *watch_for; /* the connection a watch waits to go up */
	uint64_t watch_inst; /* the instance a watch names */
	enum conn_state st;
	struct jr_decoder dec;
	struct jr_hello peer;
	struct timer hs; /* handshake deadline */
	char name[72];
	/* Authentication ([ha] key_file; link_auth.c) */
	uint8_t nonce[JR_NONCE_LEN]; /* ours, in our HELLO */
	uint8_t peer_nonce[JR_NONCE_LEN];
	uint8_t hello_hash[32]; /* SHA-256 of our first HELLO's payload */
	uint8_t peer_hello_hash[32];
	bool hello_sent;
	struct jr_hello pending; /* the peer's HELLO, until its AUTH is verified */
	bool tx_tagged, rx_tagged; /* frames carry tags from here on */
	uint8_t k_tx[32], k_rx[32];
	uint64_t tx_ctr, rx_ctr;
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
	uint64_t stranger_log_ms; /* when a stranger may be logged again */
	struct hal_conn *conns; /* every connection until on_close */
	struct hal_conn *cur; /* the link */
	struct hal_conn *out; /* our outgoing connection while it is not the link */
	struct jr_hello peer;
	unsigned backoff; /* delay before the next connect */
	struct timer retry_t, hb_t, dead_t;
	struct jr_buf tx;
	struct hal_stats st;
	char peer_name[64];
	bool keyed; /* [ha] key_file: every connection authenticates */
	uint8_t key[32];
	struct jr_buf sealed; /* frames with their tags, being written */
	uint64_t auth_log_ms; /* when an authentication failure may be logged again */
	/* The death watch (link_watch.c).  On the active node: our plain
	 * socket to the peer, never handed to io_uring, so that our kernel
	 * closes it the moment this process dies.  On the other: the peer's
	 * watch connection, whose close says the peer's process is gone. */
	bool (*alive_fn)(void *arg);
	void *alive_arg;
	bool watch_wanted;
	int watch_fd; /* the socket being connected, or watch_slot once set */
	int watch_slot; /* a low fd kept for the set watch (/dev/null meanwhile) */
	bool watch_sent;
	unsigned watch_polls;
	struct timer watch_t;
	struct hal_conn *watcher;
};

static inline uint64_t now_ms(const struct hal_link *h)
{
	return loop_now(h->l);
}

/* A GOODBYE is only worth sending on a connection known to be up: our own
 * one may still be connecting, and a close that waits for it to be sent
 * would linger as long as the kernel keeps retrying the SYN. */
static inline uint16_t bye_if_connected(const struct hal_conn *c, uint16_t code)
{
	return c->outbound && c->st == CS_HELLO ? 0 : code;
}

/* --- link.c ------------------------------------------------------------------------- */

/* Arms the connect timer unless the link is up or stopped, or a connect is
 * already under way or due. */
void hal_schedule_connect(struct hal_link *h);
/* Binds outgoing socket FD to the [ha] listen address (no port), so the
 * peer sees the address it knows us by. */
void hal_bind_source(struct hal_link *h, int fd);
/* Doubles the reconnect delay, within backoff_min_ms..backoff_max_ms. */
void hal_grow_backoff(struct hal_link *h);

/* --- link_auth.c -------------------------------------------------------------------- */

int hal_auth_init(void);
void hal_auth_nonce(uint8_t nonce[JR_NONCE_LEN]);
void hal_auth_hash(const uint8_t *buf, size_t len, uint8_t out[32]);
/* The AUTH value of the sender of N_SENDER towards the holder of N_RECEIVER. */
void hal_auth_mac(const struct hal_link *h, const uint8_t *n_sender, const uint8_t *n_receiver,
		  const uint8_t hello_hash[32], uint8_t out[32]);
/* Whether MAC is the peer's right AUTH on C (constant time). */
bool hal_auth_check(const struct hal_link *h, const struct hal_conn *c, const uint8_t mac[32]);
/* Both directions' frame keys of C, from the two nonces. */
void hal_auth_keys(const struct hal_link *h, struct hal_conn *c);
/* BUF (whole frames) into OUT with a tag after each.  0 or -errno. */
int hal_auth_seal(struct hal_conn *c, struct jr_buf *out, const uint8_t *buf, size_t len);
/* Whether T is the right tag of the peer's next frame FRAME (LEN bytes);
 * counts it when it is. */
bool hal_auth_open(struct hal_conn *c, const uint8_t *frame, size_t len,
		   const uint8_t t[JR_TAG_LEN]);

/* The WATCH proof on C (a link connection): HMAC over both of its nonces,
 * the sender's first.  SENDER_IS_US: we send it (on the active node). */
void hal_auth_watch_mac(const struct hal_link *h, const struct hal_conn *c, bool sender_is_us,
			uint8_t out[32]);
/* --- link_watch.c ------------------------------------------------------------------- */
void hal_watch_init(struct hal_link *h);
/* The link came up or went down: the active node's watch follows it. */
void hal_watch_link_up(struct hal_link *h);
void hal_watch_close(struct hal_link *h);
void hal_watch_fini(struct hal_link *h);
/* The peer's WATCH on incoming connection C, in its HELLO state. */
void hal_watch_frame(struct hal_conn *c, const struct jr_frame *f);
/* Connection C has just become the link: a watch that came first is
 * taken now.  And C is going away: no watch waits for it any more. */
void hal_watch_adopt(struct hal_link *h, struct hal_conn *c);
void hal_watch_forget(struct hal_link *h, struct hal_conn *c);
/* --- link_proto.c ------------------------------------------------------------------- */

/* The loop's callbacks for every connection. */
extern const struct loop_stream_ops hal_conn_ops;
/* Takes C out of the link and closes it, with a GOODBYE first when BYE is a
 * code (then the close waits for it to be sent).  Callbacks may run. */
void hal_conn_drop(struct hal_conn *c, int err, const char *reason, uint16_t bye);
/* Writes whole frames to C; a failure drops C (and the link with it). */
int hal_conn_write(struct hal_conn *c, const void *buf, size_t len, unsigned frames);
/* One frame from h->tx; a failure drops C as hal_conn_write() does. */
int hal_conn_send_simple(struct hal_conn *c, uint8_t type, uint64_t seq);
int hal_conn_send_hello(struct hal_conn *c);

#endif
