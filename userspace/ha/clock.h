/* The HA clock: the pair's heartbeats on a thread nothing else runs on.
 *
 * The HA link (ha/link.h) lives on the SIP loop, and that loop can be held:
 * a burst of calls on a 2-core machine shared with load generators, a
 * control command over a large table.  A node whose loop stalls for
 * timeout_ms looked dead to its peer (a false takeover) and to its own XDP
 * program (its dead man's switch fired while it was healthy).  So the
 * liveness that matters is kept here, on a thread of its own (real-time
 * priority when the process may have it), over UDP to the peer's [ha]
 * address and port:
 *
 *  - every heartbeat_ms it sends the peer a datagram (an instance, a
 *    counter, and on an authenticated link a tag under the pair's key), and
 *    stamps this node's XDP proof of life, as long as the SIP loop has shown
 *    progress within stall_ms (ha_clock_progress()): a loop that is merely
 *    slow does not kill the node, one that is stuck does;
 *  - it hears the peer's datagrams (from [ha] peer's address only; with a
 *    key, only tagged ones with a counter above the last); once it has heard
 *    the peer, timeout_ms of silence makes it signal its eventfd
 *    (ha_clock_fd()), once per silence.
 *
 * A peer that never sent a datagram (an older version) is judged by the
 * link alone, as before. */
#ifndef SIPHA_HA_CLOCK_H
#define SIPHA_HA_CLOCK_H
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/caps.h"

struct sxdp;
struct ha_clock;

struct ha_clock_config {
	struct sockaddr_storage listen; /* [ha] listen: the UDP port is the same */
	socklen_t listen_len;
	struct sockaddr_storage peer; /* [ha] peer */
	socklen_t peer_len;
	unsigned heartbeat_ms, timeout_ms;
	/* Silence after which the peer is suspect (the eventfd fires, the
	 * phase says so): a probe can run before the verdict.  0: never. */
	unsigned suspect_ms;
	unsigned stall_ms; /* the SIP loop silent this long: no more heartbeats */
	bool keyed;
	uint8_t key[32];
	uint64_t instance; /* ours, as in our HELLO */
	struct sxdp *xdp; /* stamped from the clock's thread; may be NULL */
	int rt_priority; /* SCHED_FIFO priority of the thread; 0: none */
	/* Capabilities are per thread: the clock's drops to these as it
	 * starts, as the main thread does after start-up (core/caps.h). */
	bool drop_caps;
	struct caps_keep keep;
};

struct ha_clock_stats {
	uint64_t sent, heard; /* datagrams */
	uint64_t refused; /* from another address, bad tag, replayed, malformed */
	uint64_t silences; /* times the peer fell silent (the eventfd fired) */
	uint64_t held; /* heartbeat ticks skipped: the SIP loop showed no progress */
	uint64_t late_ticks; /* ticks more than a heartbeat late (the thread was held) */
	bool realtime; /* the thread runs SCHED_FIFO */
};

/* Binds the UDP socket and starts the thread.  0 or -errno. */
int ha_clock_start(struct ha_clock **out, const struct ha_clock_config *cfg);
/* Stops the thread and frees.  NULL is ok. */
void ha_clock_stop(struct ha_clock *c);
/* The SIP loop is alive at NOW_MS (CLOCK_MONOTONIC milliseconds). */
void ha_clock_progress(struct ha_clock *c, uint64_t now_ms);
/* Readable (an eventfd) when the peer, once heard, fell silent for
 * suspect_ms and again for timeout_ms; read it to clear, then ask the phase. */
int ha_clock_fd(const struct ha_clock *c);
enum ha_clock_phase {
	HA_CLOCK_HEARD, /* within suspect_ms (or never heard) */
	HA_CLOCK_SUSPECT, /* silent for suspect_ms */
	HA_CLOCK_SILENT, /* silent for timeout_ms: dead */
};
enum ha_clock_phase ha_clock_phase(const struct ha_clock *c);
/* Whether the peer was heard within timeout_ms (false if never heard). */
bool ha_clock_hears_peer(const struct ha_clock *c);
void ha_clock_stats(const struct ha_clock *c, struct ha_clock_stats *out);

#endif
