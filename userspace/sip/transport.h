/* SIP transports (RFC 3261 §18): one UDP socket and one TCP listener on the
 * [sip] listen address.  Datagrams and framed stream messages reach one
 * receive callback with a sip_peer that says where to answer. */
#ifndef SIPHA_SIP_TRANSPORT_H
#define SIPHA_SIP_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/config.h"
#include "core/loop.h"

enum sip_proto {
	SIP_PROTO_UDP,
	SIP_PROTO_TCP
};

struct sip_peer {
	enum sip_proto proto;
	struct sockaddr_storage addr; /* remote */
	socklen_t addrlen;
	struct sockaddr_storage local; /* where it arrived (UDP: from IP_PKTINFO) */
	uint64_t conn; /* TCP: connection id, 0 for UDP */
	/* TCP, a request's source: its top Via's port, where answers go once
	 * the connection is gone (RFC 3261 §18.2.2); 0 when unknown. */
	uint16_t reply_port;
};

typedef void (*sipt_rx_fn)(void *arg, const struct sip_peer *from, const char *buf, size_t len);

struct sipt_stats {
	uint64_t udp_in, udp_out, udp_truncated, udp_send_errors;
	uint64_t tcp_in, tcp_out, tcp_accepted, tcp_connects, tcp_open, tcp_framing_errors,
		tcp_send_errors;
	uint64_t keepalives;
	uint64_t tcp_refused; /* connections closed at accept: per-source or global limit */
	uint64_t tcp_table_full; /* connections refused: the node's table was full */
	uint64_t tcp_timeouts; /* connections closed: silent since opened, or idle */
};

/* TCP limits ([sip] tcp_*): connections from one IP address at most;
 * how long an accepted connection may stay without a SIP message (or
 * keep-alive) at first, and without any later (0: for ever). */
struct sipt_limits {
	unsigned max_per_source;
	uint64_t silent_ms, idle_ms;
};

struct sip_transport;

/* Opens UDP and TCP on LISTEN.  SRC, when not NULL, is the address every
 * packet is sent from (the VIP); otherwise a UDP answer leaves from the
 * address its request arrived at.  0 or -errno. */
int sipt_open(struct sip_transport **out, struct loop *l, const struct cfg_sockaddr *listen,
	      const struct sockaddr_storage *src, sipt_rx_fn fn, void *arg);
void sipt_close(struct sip_transport *t);
void sipt_set_limits(struct sip_transport *t, const struct sipt_limits *lim);

/* Sends BUF to TO: UDP to its address; TCP on its connection, or, that one
 * gone, to the address at TO's reply_port when it has one, on any open
 * connection to that address or on a new one.  0 or -errno. */
int sipt_send(struct sip_transport *t, const struct sip_peer *to, const char *buf, size_t len);

/* A TCP connection closed with an error (a connect refused or timed out, a
 * reset): whatever was sent on it to PEER gets no answer on it. */
typedef void (*sipt_err_fn)(void *arg, const struct sip_peer *peer, int err);
/* FN is called with the ARG of sipt_open(). */
void sipt_set_error_fn(struct sip_transport *t, sipt_err_fn fn);

/* P becomes a peer over PROTO at IP (an IPv4 or IPv6 literal) and PORT,
 * with no connection: 0, or -EINVAL for anything else. */
int sipt_peer_set(struct sip_peer *p, enum sip_proto proto, const char *ip, unsigned port);

/* Same family, address and port. */
bool sipt_same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b);

/* Whether the TCP connection with id CONN (sip_peer.conn) is still open. */
bool sipt_conn_open(const struct sip_transport *t, uint64_t conn);

const struct sipt_stats *sipt_stats(const struct sip_transport *t);

/* The address bytes of SS (4 for IPv4, 16 for IPv6) at *P; the length. */
size_t sipt_ip_bytes(const struct sockaddr_storage *ss, const uint8_t **p);

/* "1.2.3.4:5060" / "[::1]:5060" */
const char *sipt_addr_str(const struct sockaddr_storage *ss, char *buf, size_t len);

#endif
