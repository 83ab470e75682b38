/* Announcing and probing the VIP on the link, over AF_PACKET.
 *
 * IPv4: a gratuitous ARP request (sender IP = target IP = VIP, broadcast),
 * and an RFC 5227 ARP probe (sender IP 0.0.0.0) to find a live holder.
 * IPv6: an unsolicited neighbour advertisement (RFC 4861 §7.2.6: override
 * flag, target = VIP, to ff02::1, with the target link-layer address), and a
 * DAD-style neighbour solicitation (source ::, to the VIP's solicited-node
 * group) as probe, which a holder answers with an NA.
 *
 * Only Ethernet interfaces (ARPHRD_ETHER); others give -EOPNOTSUPP. */
#ifndef SIPHA_GARP_H
#define SIPHA_GARP_H

#include <stddef.h>
#include <net/if.h>
#include <stdint.h>

#include "core/config.h"

/* Large enough for every frame built here (the NA, 86 bytes, is the largest). */
#define GARP_FRAME_MAX 128

/* Writes the announcement frame for VIP from MAC into BUF (Ethernet header
 * included).  Returns its length, -EINVAL for a bad argument, -ENOSPC when
 * BUF is too small. */
int garp_build(const uint8_t mac[6], const struct cfg_prefix *vip, void *buf, size_t len);
/* The same for the probe frame. */
int garp_build_probe(const uint8_t mac[6], const struct cfg_prefix *vip, void *buf, size_t len);

/* Sends COUNT copies of the announcement back to back on IFNAME (one
 * announcement set; spacing repeated sets is the caller's business).  COUNT 0
 * sends nothing.  Returns 0 or -errno (-ENODEV, -ENETDOWN, ...). */
int garp_send(const char *ifname, const struct cfg_prefix *vip, unsigned count);

/* Asks the link whether someone holds VIP: sends probes (three, spread over
 * the timeout, against loss) and waits at most TIMEOUT_MS for an ARP reply
 * or announcement (IPv6: a neighbour advertisement) from another MAC for
 * VIP; the holder's requests to resolve other addresses do not count (see
 * garp.c).  Returns 1
 * with that MAC in MAC_OUT (may be NULL), 0 when nobody answered, or -errno.
 * Our own frames are never taken for an answer. */
int arp_probe(const char *ifname, const struct cfg_prefix *vip, unsigned timeout_ms,
	      uint8_t mac_out[6]);

/* The same two on packet sockets kept open.  Closing a packet socket waits
 * for an RCU grace period (5-30 ms here), which a takeover cannot afford:
 * the HA engine opens this once and probes and announces through it. */
struct garp_ctx {
	int fd_send, fd_probe;
	int ifindex;
	uint8_t mac[6];
	char ifname[IF_NAMESIZE];
	struct cfg_prefix vip;
};
int garp_ctx_open(struct garp_ctx *g, const char *ifname, const struct cfg_prefix *vip);
void garp_ctx_close(struct garp_ctx *g);
int garp_ctx_send(struct garp_ctx *g, unsigned count);
int garp_ctx_probe(struct garp_ctx *g, unsigned timeout_ms, uint8_t mac_out[6]);
/* The same probe without waiting, for a caller with a clock of its own:
 * sends one request (FRESH: what the socket heard before is forgotten
 * first), and later polls: 1 when someone answered for the VIP since (its
 * MAC in MAC_OUT), 0 when nobody did, or -errno. */
int garp_ctx_probe_send(struct garp_ctx *g, bool fresh);
int garp_ctx_probe_poll(struct garp_ctx *g, uint8_t mac_out[6]);

/* The Ethernet address of IFNAME: 0, -ENODEV, or -EOPNOTSUPP when it has none. */
int if_mac(const char *ifname, uint8_t mac_out[6]);

#endif
