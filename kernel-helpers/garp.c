#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "garp.h"

#define ETH_HDR 14
#define ARP_LEN 28
#define IP6_HDR 40
#define NA_LEN 32 /* header, flags, target, target link-layer option */
#define NS_LEN 24 /* header, reserved, target; no option from :: */

#define ICMP6_NS 135
#define ICMP6_NA 136
#define NA_FLAG_OVERRIDE 0x20
#define ND_OPT_TARGET_LL 2
#define ND_HOP_LIMIT 255 /* RFC 4861: receivers drop ND with anything else */

#define PROBES 3
#define PROBE_READS 256

static const uint8_t bcast_mac[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
static const uint8_t all_nodes[16] = { 0xff, 0x02, [15] = 0x01 };

static uint8_t *put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
	return p + 2;
}

static uint8_t *put(uint8_t *p, const void *src, size_t n)
{
	memcpy(p, src, n);
	return p + n;
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static int garp_check(const struct cfg_prefix *vip)
{
	if (!vip || (vip->family != AF_INET && vip->family != AF_INET6))
		return -EINVAL;
	return 0;
}

/* One's-complement sum over the IPv6 pseudo-header (RFC 8200 §8.1) and the
 * ICMPv6 message at IP6 + IP6_HDR, LEN bytes.  0 over a message whose
 * checksum field is right; the checksum to store when that field is 0. */
static uint16_t icmp6_csum(const uint8_t *ip6, size_t len)
{
	const uint8_t *msg = ip6 + IP6_HDR;
	uint32_t sum = 0;
	size_t i;

	for (i = 8; i < 40; i += 2) /* source and destination addresses */
		sum += get16(ip6 + i);
	sum += (uint32_t)(len >> 16) + (uint32_t)(len & 0xffff);
	sum += IPPROTO_ICMPV6;
	for (i = 0; i + 1 < len; i += 2)
		sum += get16(msg + i);
	if (len & 1)
		sum += (uint32_t)msg[len - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static uint8_t *put_eth(uint8_t *p, const uint8_t *dst, const uint8_t *src, uint16_t type)
{
	p = put(p, dst, 6);
	p = put(p, src, 6);
	return put16(p, type);
}

static int build_arp(const uint8_t mac[6], const struct in_addr *sender,
		     const struct in_addr *target, uint8_t *buf)
{
	static const uint8_t zero_mac[6];
	uint8_t *p = buf;

	p = put_eth(p, bcast_mac, mac, ETH_P_ARP);
	p = put16(p, ARPHRD_ETHER);
	p = put16(p, ETH_P_IP);
	*p++ = 6;
	*p++ = 4;
	p = put16(p, ARPOP_REQUEST);
	p = put(p, mac, 6);
	p = put(p, sender, 4);
	/* RFC 5227: the target hardware address is ignored; zero it. */
	p = put(p, zero_mac, 6);
	p = put(p, target, 4);
	return (int)(p - buf);
}

static uint8_t *put_ip6(uint8_t *p, uint16_t plen, const void *src, const void *dst)
{
	p = put16(p, 0x6000); /* version 6, traffic class and flow label 0 */
	p = put16(p, 0);
	p = put16(p, plen);
	*p++ = IPPROTO_ICMPV6;
	*p++ = ND_HOP_LIMIT;
	p = put(p, src, 16);
	return put(p, dst, 16);
}

static int build_na(const uint8_t mac[6], const struct in6_addr *vip, uint8_t *buf)
{
	static const uint8_t dst_mac[6] = { 0x33, 0x33, 0, 0, 0, 0x01 };
	uint8_t *ip6, *icmp, *p = buf;
	uint16_t csum;

	p = put_eth(p, dst_mac, mac, ETH_P_IPV6);
	ip6 = p;
	p = put_ip6(p, NA_LEN, vip, all_nodes);
	icmp = p;
	*p++ = ICMP6_NA;
	*p++ = 0;
	p = put16(p, 0); /* checksum, below */
	*p++ = NA_FLAG_OVERRIDE;
	memset(p, 0, 3);
	p += 3;
	p = put(p, vip, 16);
	*p++ = ND_OPT_TARGET_LL;
	*p++ = 1; /* in units of 8 bytes */
	p = put(p, mac, 6);
	csum = icmp6_csum(ip6, NA_LEN);
	put16(icmp + 2, csum);
	return (int)(p - buf);
}

static int build_ns(const uint8_t mac[6], const struct in6_addr *vip, uint8_t *buf)
{
	static const uint8_t unspec[16];
	uint8_t snm[16] = { 0xff, 0x02, [11] = 0x01, [12] = 0xff };
	uint8_t dst_mac[6] = { 0x33, 0x33, 0xff };
	uint8_t *ip6, *icmp, *p = buf;

	/* The solicited-node group of the VIP (RFC 4291 §2.7.1), the only
	 * group a holder is sure to listen to. */
	memcpy(snm + 13, vip->s6_addr + 13, 3);
	memcpy(dst_mac + 2, snm + 12, 4);
	p = put_eth(p, dst_mac, mac, ETH_P_IPV6);
	ip6 = p;
	p = put_ip6(p, NS_LEN, unspec, snm);
	icmp = p;
	*p++ = ICMP6_NS;
	*p++ = 0;
	p = put16(p, 0);
	memset(p, 0, 4);
	p += 4;
	p = put(p, vip, 16);
	put16(icmp + 2, icmp6_csum(ip6, NS_LEN));
	return (int)(p - buf);
}

int garp_build(const uint8_t mac[6], const struct cfg_prefix *vip, void *buf, size_t len)
{
	size_t need;

	if (!mac || !buf || garp_check(vip))
		return -EINVAL;
	need = vip->family == AF_INET ? ETH_HDR + ARP_LEN : ETH_HDR + IP6_HDR + NA_LEN;
	if (len < need)
		return -ENOSPC;
	if (vip->family == AF_INET)
		return build_arp(mac, &vip->addr.v4, &vip->addr.v4, buf);
	return build_na(mac, &vip->addr.v6, buf);
}

int garp_build_probe(const uint8_t mac[6], const struct cfg_prefix *vip, void *buf, size_t len)
{
	static const struct in_addr any = { 0 };
	size_t need;

	if (!mac || !buf || garp_check(vip))
		return -EINVAL;
	need = vip->family == AF_INET ? ETH_HDR + ARP_LEN : ETH_HDR + IP6_HDR + NS_LEN;
	if (len < need)
		return -ENOSPC;
	if (vip->family == AF_INET)
		return build_arp(mac, &any, &vip->addr.v4, buf);
	return build_ns(mac, &vip->addr.v6, buf);
}

int if_mac(const char *ifname, uint8_t mac_out[6])
{
	struct ifreq ifr = { 0 };
	int fd = -1, err = 0;

	if (!ifname || !*ifname || !mac_out) {
		err = -EINVAL;
		goto out;
	}
	if (strlen(ifname) >= sizeof(ifr.ifr_name)) {
		err = -ENODEV;
		goto out;
	}
	strcpy(ifr.ifr_name, ifname);
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || ioctl(fd, SIOCGIFHWADDR, &ifr) < 0) {
		err = -errno;
		goto out;
	}
	if (ifr.ifr_hwaddr.sa_family != ARPHRD_ETHER) {
		err = -EOPNOTSUPP;
		goto out;
	}
	memcpy(mac_out, ifr.ifr_hwaddr.sa_data, 6);
out:
	if (fd >= 0)
		close(fd);
	return err;
}

/* The interface's index and MAC, and an AF_PACKET socket bound to it that
 * receives PROTO (0: nothing, a socket to send with). */
static int garp_socket(const char *ifname, uint16_t proto, uint8_t mac[6], int *ifindex)
{
	struct sockaddr_ll sll = { .sll_family = AF_PACKET };
	int fd = -1, err;

	err = if_mac(ifname, mac);
	if (err)
		goto out;
	*ifindex = (int)if_nametoindex(ifname);
	if (!*ifindex) {
		err = -ENODEV;
		goto out;
	}
	/* Created with protocol 0 so that it receives nothing until bind()
	 * has narrowed it to this interface and PROTO. */
	fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		err = -errno;
		pr_err("garp: packet socket: %s", strerror(-err));
		goto out;
	}
	sll.sll_protocol = htons(proto);
	sll.sll_ifindex = *ifindex;
	if (bind(fd, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
		err = -errno;
		pr_err("garp: bind to %s: %s", ifname, strerror(-err));
		goto out;
	}
	return fd;
out:
	if (fd >= 0)
		close(fd);
	return err;
}

static int garp_xmit(int fd, int ifindex, const uint8_t *frame, size_t len)
{
	struct sockaddr_ll sll = {
		.sll_family = AF_PACKET,
		.sll_ifindex = ifindex,
		.sll_halen = 6,
	};

	memcpy(sll.sll_addr, frame, 6);
	sll.sll_protocol = htons(get16(frame + 12));
	if (sendto(fd, frame, len, 0, (struct sockaddr *)&sll, sizeof(sll)) < 0)
		return -errno;
	return 0;
}

static int send_on(int fd, int ifindex, const uint8_t mac[6], const char *ifname,
		   const struct cfg_prefix *vip, unsigned count)
{
	uint8_t frame[GARP_FRAME_MAX];
	int len = garp_build(mac, vip, frame, sizeof(frame)), err = 0;

	if (len < 0)
		return len;
	for (unsigned i = 0; i < count; i++) {
		err = garp_xmit(fd, ifindex, frame, (size_t)len);
		/* A full queue gets a retry from the caller's next set. */
		if (err) {
			pr_warn("garp: send on %s: %s", ifname, strerror(-err));
			break;
		}
	}
	return err;
}

int garp_send(const char *ifname, const struct cfg_prefix *vip, unsigned count)
{
	uint8_t mac[6];
	int fd, ifindex, err;

	err = garp_check(vip);
	if (err)
		return err;
	fd = garp_socket(ifname, 0, mac, &ifindex);
	if (fd < 0)
		return fd;
	err = send_on(fd, ifindex, mac, ifname, vip, count);
	close(fd);
	return err;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* An ARP reply from another MAC whose sender address is VIP, or an
 * announcement of VIP (a request with sender = target = VIP).  A request to
 * resolve some other address does not count: an orphaned node's kernel may
 * still send those from the VIP while its XDP program (docs/ARCHITECTURE.md §3) keeps
 * it from answering for the VIP, and it must not block the takeover. */
static int arp_answer(const uint8_t *f, size_t n, const struct in_addr *vip, const uint8_t *own,
		      uint8_t *mac)
{
	const uint8_t *arp = f + ETH_HDR;
	uint16_t op;

	if (n < ETH_HDR + ARP_LEN || get16(f + 12) != ETH_P_ARP)
		return 0;
	op = get16(arp + 6);
	if (get16(arp) != ARPHRD_ETHER || get16(arp + 2) != ETH_P_IP || arp[4] != 6 ||
	    arp[5] != 4 || (op != ARPOP_REQUEST && op != ARPOP_REPLY))
		return 0;
	if (memcmp(arp + 14, vip, 4) || !memcmp(arp + 8, own, 6))
		return 0;
	if (op == ARPOP_REQUEST && memcmp(arp + 24, vip, 4))
		return 0;
	memcpy(mac, arp + 8, 6);
	return 1;
}

/* A valid neighbour advertisement for VIP from another MAC; its target
 * link-layer option names the holder, else the frame's source does. */
static int na_answer(const uint8_t *f, size_t n, const struct in6_addr *vip, const uint8_t *own,
		     uint8_t *mac)
{
	const uint8_t *ip6 = f + ETH_HDR, *icmp = ip6 + IP6_HDR, *holder = f + 6;
	size_t plen, off;

	if (n < ETH_HDR + IP6_HDR + NS_LEN || get16(f + 12) != ETH_P_IPV6)
		return 0;
	plen = get16(ip6 + 4);
	if ((ip6[0] >> 4) != 6 || ip6[6] != IPPROTO_ICMPV6 || ip6[7] != ND_HOP_LIMIT ||
	    plen < NS_LEN || ETH_HDR + IP6_HDR + plen > n)
		return 0;
	if (icmp[0] != ICMP6_NA || icmp[1] != 0 || icmp6_csum(ip6, plen) != 0)
		return 0;
	if (memcmp(icmp + 8, vip, 16))
		return 0;
	for (off = NS_LEN; off + 8 <= plen && icmp[off + 1]; off += icmp[off + 1] * 8u) {
		if (icmp[off] == ND_OPT_TARGET_LL && icmp[off + 1] == 1)
			holder = icmp + off + 2;
	}
	if (!memcmp(holder, own, 6) || !memcmp(f + 6, own, 6))
		return 0;
	memcpy(mac, holder, 6);
	return 1;
}

/* 1 when a pending frame on FD answers the probe, 0 when none does.  A
 * bounded number per call, so that a busy link cannot hold the probe past
 * its deadline. */
static int probe_read(int fd, const struct cfg_prefix *vip, const uint8_t *own, uint8_t *mac)
{
	uint8_t f[1600];
	struct sockaddr_ll from;
	socklen_t fl;
	ssize_t n;

	for (int i = 0; i < PROBE_READS; i++) {
		fl = sizeof(from);
		n = recvfrom(fd, f, sizeof(f), MSG_DONTWAIT, (struct sockaddr *)&from, &fl);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return 0;
		if (n < 0)
			return -errno;
		if (from.sll_pkttype == PACKET_OUTGOING)
			continue;
		if (vip->family == AF_INET && arp_answer(f, (size_t)n, &vip->addr.v4, own, mac))
			return 1;
		if (vip->family == AF_INET6 && na_answer(f, (size_t)n, &vip->addr.v6, own, mac))
			return 1;
	}
	return 0;
}

static int probe_on(int fd, int ifindex, const uint8_t own[6], const char *ifname,
		    const struct cfg_prefix *vip, unsigned timeout_ms, uint8_t mac_out[6])
{
	uint8_t mac[6], frame[GARP_FRAME_MAX];
	long long start, now, next, wait;
	int len, sent = 0, err;
	struct pollfd pfd;

	len = garp_build_probe(own, vip, frame, sizeof(frame));
	if (len < 0)
		return len;
	start = now_ms();
	for (;;) {
		now = now_ms();
		if (sent < PROBES && now >= start + (long long)timeout_ms * sent / PROBES) {
			err = garp_xmit(fd, ifindex, frame, (size_t)len);
			if (err) {
				pr_err("garp: probe on %s: %s", ifname, strerror(-err));
				return err;
			}
			sent++;
		}
		err = probe_read(fd, vip, own, mac);
		if (err)
			break;
		if (now >= start + timeout_ms)
			break;
		next = start + timeout_ms;
		if (sent < PROBES && start + (long long)timeout_ms * sent / PROBES < next)
			next = start + (long long)timeout_ms * sent / PROBES;
		/* poll() takes an int; a long timeout is waited in slices. */
		wait = next - now < 60000 ? next - now : 60000;
		pfd = (struct pollfd){ .fd = fd, .events = POLLIN };
		if (wait > 0 && poll(&pfd, 1, (int)wait) < 0 && errno != EINTR)
			return -errno;
	}
	if (err == 1 && mac_out)
		memcpy(mac_out, mac, 6);
	return err;
}

int arp_probe(const char *ifname, const struct cfg_prefix *vip, unsigned timeout_ms,
	      uint8_t mac_out[6])
{
	uint8_t own[6];
	int fd, ifindex, err;

	err = garp_check(vip);
	if (err)
		return err;
	fd = garp_socket(ifname, vip->family == AF_INET ? ETH_P_ARP : ETH_P_IPV6, own, &ifindex);
	if (fd < 0)
		return fd;
	err = probe_on(fd, ifindex, own, ifname, vip, timeout_ms, mac_out);
	close(fd);
	return err;
}

/* --- a context kept open -------------------------------------------------------- */

int garp_ctx_open(struct garp_ctx *g, const char *ifname, const struct cfg_prefix *vip)
{
	uint8_t mac[6];
	int err = garp_check(vip);

	g->fd_send = g->fd_probe = -1;
	if (err)
		return err;
	snprintf(g->ifname, sizeof(g->ifname), "%s", ifname);
	g->vip = *vip;
	g->fd_send = garp_socket(ifname, 0, g->mac, &g->ifindex);
	if (g->fd_send < 0) {
		err = g->fd_send;
		goto err;
	}
	g->fd_probe = garp_socket(ifname, vip->family == AF_INET ? ETH_P_ARP : ETH_P_IPV6, mac,
				  &g->ifindex);
	if (g->fd_probe < 0) {
		err = g->fd_probe;
		goto err;
	}
	return 0;
err:
	garp_ctx_close(g);
	return err;
}

void garp_ctx_close(struct garp_ctx *g)
{
	if (g->fd_send >= 0)
		close(g->fd_send);
	if (g->fd_probe >= 0)
		close(g->fd_probe);
	g->fd_send = g->fd_probe = -1;
}

int garp_ctx_send(struct garp_ctx *g, unsigned count)
{
	return send_on(g->fd_send, g->ifindex, g->mac, g->ifname, &g->vip, count);
}

int garp_ctx_probe_send(struct garp_ctx *g, bool fresh)
{
	uint8_t f[GARP_FRAME_MAX];
	int len;

	/* The socket hears every ARP frame while open: what came before a
	 * fresh probe answers nothing. */
	while (fresh && recv(g->fd_probe, f, sizeof(f), MSG_DONTWAIT) > 0)
		;
	len = garp_build_probe(g->mac, &g->vip, f, sizeof(f));
	if (len < 0)
		return len;
	return garp_xmit(g->fd_probe, g->ifindex, f, (size_t)len);
}

int garp_ctx_probe_poll(struct garp_ctx *g, uint8_t mac_out[6])
{
	uint8_t mac[6];
	int ret = probe_read(g->fd_probe, &g->vip, g->mac, mac);

	if (ret == 1 && mac_out)
		memcpy(mac_out, mac, 6);
	return ret;
}

int garp_ctx_probe(struct garp_ctx *g, unsigned timeout_ms, uint8_t mac_out[6])
{
	uint8_t f[1600];

	/* The socket hears every ARP frame while open: what came before the
	 * probe answers nothing. */
	while (recv(g->fd_probe, f, sizeof(f), MSG_DONTWAIT) > 0)
		;
	return probe_on(g->fd_probe, g->ifindex, g->mac, g->ifname, &g->vip, timeout_ms, mac_out);
}
