/* The HA link: one TCP connection between the two nodes of a pair, kept up
 * over core/loop.h, carrying the frames of ha/journal.h.
 *
 * Both nodes listen and both connect; the node with the lower id decides
 * which connection is used (its own outgoing one when both exist) and says
 * so with a SELECT frame, so exactly one survives (docs/HA-PROTOCOL.md).
 * Heartbeats flow both ways every heartbeat_ms while the link is up; any
 * frame counts as life, and timeout_ms of silence makes the peer dead.
 *
 * The link knows nothing of SIP or of the configuration file: its owner (the
 * role state machine) passes in what the HELLO says and gets callbacks.
 * Callbacks come from the loop, and on_down also from inside hal_stop() and
 * from a send that overflows the backlog.  The owner may call any hal_*
 * function from a callback except hal_free(). */
#ifndef SIPHA_HA_LINK_H
#define SIPHA_HA_LINK_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/loop.h"
#include "ha/journal.h"

struct hal_link;

struct hal_config {
	const char *node_id; /* copied; 1..JR_NODE_ID_MAX bytes */
	uint64_t epoch;
	uint16_t priority;
	uint8_t redundancy, role, state; /* enum jr_redundancy, jr_role, jr_state */
	uint64_t last_seq; /* last journal sequence applied here */
	uint8_t mac[6]; /* of the service interface */
	uint64_t instance; /* 0: random; tells a restarted peer apart */

	struct sockaddr_storage listen; /* [ha] listen */
	socklen_t listen_len;
	struct sockaddr_storage peer; /* [ha] peer */
	socklen_t peer_len;

	unsigned heartbeat_ms; /* >= 1 */
	unsigned timeout_ms; /* > heartbeat_ms */
	unsigned backoff_min_ms, backoff_max_ms; /* reconnect delays; 0: 50 and 1000 */
	/* The pre-shared key ([ha] key_file, hashed): with it every connection
	 * must prove it holds the same key, and every frame is authenticated;
	 * without it the link trusts the peer's address only. */
	bool keyed;
	uint8_t key[32];
};

struct hal_ops {
	/* The link is up with PEER (its HELLO). */
	void (*on_up)(void *arg, const struct jr_hello *peer);
	/* A frame from the peer on the up link: RECORD, ACK, SNAPSHOT_BEGIN/END,
	 * GOODBYE (just before the link goes down), HELLO (the peer changed
	 * epoch or state).  Views into F are valid during the call only. */
	void (*on_frame)(void *arg, const struct jr_frame *f);
	/* The up link is gone; ERR is 0 or -errno, REASON a log phrase. */
	void (*on_down)(void *arg, int err, const char *reason);
	/* timeout_ms of silence from the peer, counted from its last frame (or
	 * from the start when none came).  Once per silence: again only after
	 * another on_up.  When the link was up, on_down comes first. */
	void (*on_peer_dead)(void *arg);
	/* The up link was closed by the peer's kernel (FIN or RST) with no
	 * GOODBYE: the peer's process is most likely gone while its host
	 * lives.  Comes right after on_down. */
	void (*on_peer_gone)(void *arg);
};

/* A link that starts gives the peer this long past timeout_ms before the
 * first verdict: a connect, a handshake and a few heartbeats, so that a
 * node that starts beside a live peer does not call it dead first. */
static inline unsigned hal_start_grace_ms(unsigned heartbeat_ms)
{
	return 3 * heartbeat_ms > 100 ? 3 * heartbeat_ms : 100;
}

/* How long a link may stay silent while the peer is heard otherwise: a
 * SIP loop held that long is stuck, not slow. */
static inline unsigned hal_patience_ms(unsigned timeout_ms)
{
	return 10 * timeout_ms > 1000 ? 10 * timeout_ms : 1000;
}

/* A peer's HELLO is refused when its epoch is past HAL_EPOCH_MAX or more
 * than HAL_EPOCH_JUMP above ours (a takeover adds one). */
#define HAL_EPOCH_MAX (1ull << 48)
#define HAL_EPOCH_JUMP (1ull << 16)

struct hal_stats {
	uint64_t frames_in, frames_out, bytes_in, bytes_out;
	uint64_t heartbeats_in, heartbeats_out;
	uint64_t heartbeats_missed; /* ticks after 2 heartbeat intervals of silence */
	uint64_t connect_attempts, connect_failures, accepts, accepts_refused;
	uint64_t ups, downs, reconnects, peer_dead;
	uint64_t peer_gone; /* up links closed by the peer's kernel, no GOODBYE */
	uint64_t watches_sent; /* our death watches that reached the peer */
	uint64_t watches; /* the peer's death watches accepted */
	uint64_t watches_refused; /* WATCHes for no link, a second one, a wrong proof */
	uint64_t silences_forgiven; /* link silences while the HA clock heard the peer */
	uint64_t decode_errors; /* malformed bytes from a connection */
	uint64_t protocol_errors; /* well-formed but out of place */
	uint64_t refused; /* peers we refused: version, same node id */
	uint64_t refused_by_peer; /* GOODBYE VERSION/SAME_ID received */
	uint64_t duplicates; /* connections closed by the tie-break */
	uint64_t handshake_timeouts; /* connections that never became the link */
	uint64_t backlog_overflows; /* sends over LOOP_STREAM_MAX_BACKLOG */
	uint64_t strangers; /* connections from an address that is not [ha] peer's */
	uint64_t auth_failures; /* wrong or missing AUTH, a frame with a bad tag */
	uint64_t unknown_frames, unknown_attrs;
	uint64_t last_seq_sent; /* highest RECORD/SNAPSHOT seq sent */
	uint64_t last_seq_acked; /* highest seq the peer acknowledged */
	uint64_t last_ack_sent; /* highest seq we acknowledged */
	uint64_t last_rx_ms, last_tx_ms; /* loop_now() of the last frame */
	unsigned conns; /* connections open, the link's included */
};

/* Largest payload the link sends or accepts: a frame must fit the loop's
 * stream input buffer. */
#define HAL_MAX_PAYLOAD                                                                           \
	(LOOP_STREAM_MAX_INBUF - JR_HDR_LEN < JR_MAX_PAYLOAD ? LOOP_STREAM_MAX_INBUF - JR_HDR_LEN \
							     : JR_MAX_PAYLOAD)

/* Binds and listens on cfg->listen and starts connecting to cfg->peer.
 * 0 or -errno (-EINVAL for a bad config). */
int hal_new(struct loop *l, const struct hal_config *cfg, const struct hal_ops *ops, void *arg,
	    struct hal_link **out);
/* Closes everything at once (no GOODBYE: see hal_stop).  Call it before
 * loop_free() and do not run the loop afterwards: core/loop.h cannot remove
 * a listener, so the loop must not complete another accept for it. */
void hal_free(struct hal_link *h);

/* Says GOODBYE (CODE enum jr_bye, REASON for the peer's log), closes the link
 * (on_down follows) and stops connecting; incoming connections are closed
 * until hal_start().  No on_peer_dead while stopped. */
void hal_stop(struct hal_link *h, uint16_t code, const char *reason);
/* Resumes a stopped link as if new (the silence clock starts again, with
 * hal_start_grace_ms() added). */
void hal_start(struct hal_link *h);

/* FN(ARG) answers whether the peer is known alive by other means (the HA
 * clock, ha/clock.h): while it says so, the link's own silence clock never
 * reports the peer dead, and drops the link only after hal_patience_ms()
 * of silence (the link alone is cut; it comes back with a resync). */
void hal_set_alive_check(struct hal_link *h, bool (*fn)(void *arg), void *arg);
/* The death watch (docs/HA-PROTOCOL.md §4.7): while ON and the link is up,
 * this node keeps a second connection to the peer that only its kernel
 * closes, the moment this process dies; the peer then gets on_peer_gone.
 * The active node turns it on. */
void hal_watch(struct hal_link *h, bool on);
/* Changes what our HELLO says; when the link is up, a HELLO goes out now so
 * the peer's on_frame sees the change. */
int hal_update_hello(struct hal_link *h, uint64_t epoch, uint8_t state, uint64_t last_seq);
/* What the next HELLO says of the journal applied here (jr_hello last_seq
 * and fed_by), without sending one: a standby calls it per record. */
void hal_set_progress(struct hal_link *h, uint64_t last_seq, uint64_t fed_by);
/* This link's own instance id (jr_hello.instance), random per start. */
uint64_t hal_instance(const struct hal_link *h);

/* Sends complete frames (one or more, as jr_buf holds them).  They are
 * validated as the peer will: -EINVAL for malformed ones or the link's own
 * types (HELLO, HEARTBEAT, GOODBYE, SELECT), -EMSGSIZE over HAL_MAX_PAYLOAD,
 * -ENOTCONN when the link is not up, -ENOBUFS when the send backlog overflows
 * (the link is dropped: the peer is not reading). */
int hal_send_frame(struct hal_link *h, const void *buf, size_t len);
int hal_send_record(struct hal_link *h, const struct jr_record *r);
int hal_send_ack(struct hal_link *h, uint64_t seq);

bool hal_is_up(const struct hal_link *h);
/* The peer's latest HELLO while up, else NULL. */
const struct jr_hello *hal_peer(const struct hal_link *h);
const struct hal_stats *hal_stats(const struct hal_link *h);
/* Bytes given to the link and not yet sent to the peer (0 when down). */
size_t hal_backlog(const struct hal_link *h);
/* last_seq_sent - last_seq_acked, 0 when the peer is ahead. */
uint64_t hal_sync_lag(const struct hal_link *h);

struct hal_conn_info {
	bool outbound; /* this node initiated the connection */
	struct sockaddr_storage local, remote;
	socklen_t local_len, remote_len;
};
/* The up connection's addresses: 0 or -ENOTCONN. */
int hal_conn_info(const struct hal_link *h, struct hal_conn_info *out);

#endif
