/* The event loop: a thin API over one io_uring per worker thread.
 *
 * The SIP, HA, CTI and control code never touches io_uring; it registers
 * datagram sockets, listeners, byte streams and readable-fd watches here and
 * gets plain callbacks, so unit tests can drive the same handlers with
 * synthetic input.  Timers are the wheel of core/timer.h, advanced by the
 * loop with a cached monotonic clock.
 *
 * What runs on io_uring: multishot recvmsg with a provided-buffer ring (UDP),
 * multishot accept (listeners), recv/send per stream, multishot poll
 * (signalfd, netlink), sendmsg for datagrams (copied, so the caller's buffer
 * is free on return).  Submission is batched: SQEs queued by callbacks go to
 * the kernel in one io_uring_enter per iteration, together with the wait. */
#ifndef SIPHA_LOOP_H
#define SIPHA_LOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/timer.h"

struct loop;
struct loop_stream;

/* A received datagram.  DST is the local address it was sent to (from
 * IP_PKTINFO/IPV6_PKTINFO), zeroed when the socket does not report it. */
struct loop_dgram {
	const char *buf;
	size_t len;
	bool truncated; /* larger than a receive buffer: BUF holds a prefix */
	const struct sockaddr_storage *src;
	socklen_t srclen;
	struct sockaddr_storage dst;
	int ifindex;
};

typedef void (*loop_dgram_fn)(void *arg, int fd, const struct loop_dgram *d);
typedef void (*loop_accept_fn)(void *arg, int fd, const struct sockaddr_storage *peer,
			       socklen_t peerlen);
typedef void (*loop_poll_fn)(void *arg, int fd, unsigned revents);

struct loop_stream_ops {
	/* Bytes arrived; BUF holds everything not yet consumed.  Returns how many
	 * bytes it consumed (the rest is kept and offered again with more). */
	size_t (*on_data)(struct loop_stream *s, void *arg, const char *buf, size_t len);
	/* The stream is gone (peer closed, error, or loop_stream_close); ERR is
	 * 0 or -errno.  Called once; the stream is freed after it returns. */
	void (*on_close)(struct loop_stream *s, void *arg, int err);
};

int loop_new(struct loop **out);
void loop_free(struct loop *l);

/* Runs until loop_stop(); returns 0 or -errno from io_uring. */
int loop_run(struct loop *l);
void loop_stop(struct loop *l);

/* Monotonic milliseconds, read once per loop iteration. */
uint64_t loop_now(const struct loop *l);
struct timer_wheel *loop_timers(struct loop *l);
/* Arms T to fire DELAY_MS from now. */
void loop_timer_in(struct loop *l, struct timer *t, uint64_t delay_ms);
/* Reads the clock again for loop_now() and loop_timer_in(), outside an
 * iteration: set-up before the first one (attaching XDP alone takes 100 ms
 * and more) ran on a clock read before it.  The wheel's own clock catches
 * up at the next iteration; no timer fires here. */
void loop_clock_update(struct loop *l);

/* Receives every datagram of FD (already bound, non-blocking) with
 * multishot recvmsg; IP_PKTINFO/IPV6_RECVPKTINFO are enabled here. */
int loop_dgram_add(struct loop *l, int fd, loop_dgram_fn fn, void *arg);
/* Sends LEN bytes to TO; FROM (may be NULL) sets the source address through
 * IP_PKTINFO/IPV6_PKTINFO.  The bytes are copied.  0 or -errno. */
int loop_dgram_send(struct loop *l, int fd, const void *buf, size_t len, const struct sockaddr *to,
		    socklen_t tolen, const struct sockaddr *from);

/* Accepts every connection on listening socket FD (multishot accept). */
int loop_listen_add(struct loop *l, int fd, loop_accept_fn fn, void *arg);

/* Wraps connected socket FD (the loop owns it from now on, even on error). */
struct loop_stream *loop_stream_add(struct loop *l, int fd, const struct loop_stream_ops *ops,
				    void *arg);
/* Connects socket FD (non-blocking, unconnected) to ADDR and wraps it as
 * a stream; bytes written before the connection is up are sent once it is.
 * A failed connect closes the stream with the error (on_close). */
struct loop_stream *loop_stream_connect(struct loop *l, int fd, const struct sockaddr *addr,
					socklen_t addrlen, const struct loop_stream_ops *ops,
					void *arg);
/* Queues bytes for sending (copied).  A stream whose backlog passes
 * LOOP_STREAM_MAX_BACKLOG is closed with -ENOBUFS: a peer that does not read
 * must not grow our memory.  0 or -errno. */
int loop_stream_write(struct loop_stream *s, const void *buf, size_t len);
/* Closes after the queued bytes are sent (FLUSH) or at once. */
void loop_stream_close(struct loop_stream *s, bool flush);
/* Closes at once, with ERR (0 or -errno) for on_close, also a stream whose
 * flushing close is still waiting for a peer that does not read. */
void loop_stream_abort(struct loop_stream *s, int err);
int loop_stream_fd(const struct loop_stream *s);
/* Bytes queued and not yet sent (what counts against the backlog limit). */
size_t loop_stream_backlog(const struct loop_stream *s);
#define LOOP_STREAM_MAX_BACKLOG (8u << 20)
#define LOOP_STREAM_MAX_INBUF (256u << 10)

/* Calls FN whenever FD is readable (multishot poll).  0 or -errno. */
int loop_poll_add(struct loop *l, int fd, loop_poll_fn fn, void *arg);

/* Counters of the loop itself, for metrics. */
struct loop_stats {
	uint64_t iterations;
	uint64_t cqes;
	uint64_t dgrams_in;
	uint64_t dgrams_truncated;
	uint64_t dgrams_out;
	uint64_t dgram_send_errors;
	uint64_t nobufs; /* provided-buffer ring ran dry (the receive is re-armed) */
	uint64_t rearm_retries; /* a multishot re-arm found no submission slot: retried */
	uint64_t streams_open;
	uint64_t streams_total;
	uint64_t streams_oversized; /* closed: LOOP_STREAM_MAX_INBUF bytes, no message */
};
const struct loop_stats *loop_stats(const struct loop *l);

/* Fault injection, for tests: the next N requests for a submission slot
 * find the queue full, as if a submit could not drain it. */
void loop_inject_sq_full(struct loop *l, unsigned n);
/* ...and the next N datagram buffers are held back instead of returned
 * after their handler, until the kernel reports the ring empty (ENOBUFS),
 * as a burst larger than the ring would. */
void loop_inject_buf_shortage(struct loop *l, unsigned n);

#endif
