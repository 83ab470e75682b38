/* The XDP fast path under test: the real object, loaded and pinned by the
 * real library (node id "test-<pid>", so pins live in
 * SXDP_PIN_BASE/test-<pid>/ and are gone afterwards), driven through
 * BPF_PROG_TEST_RUN with packet tables; attach and replace on a veth pair
 * in a private network namespace.  Needs root. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/if_ether.h>
#include <linux/if_link.h>
#include <cmocka.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "core/log.h"
#include "xdp/xdp.h"

#define NC SXDP_NCOUNTERS
#define FRAME_MAX 2048
#define L3_ARP 1
#define MS 1000000ull

struct fx {
	struct sxdp *x;
	char node[40];
	int prog_fd;
};

/* What a frame is made of; zero fields mean the usual (IPv4, UDP, 5060). */
struct fspec {
	int l3; /* AF_INET (0), AF_INET6 or L3_ARP */
	int vlans; /* 0..2; two: 802.1ad outside, 802.1Q inside */
	const char *src, *dst; /* ARP: sender and target address */
	int l4; /* IPPROTO_UDP (0), IPPROTO_TCP, IPPROTO_ICMP, IPPROTO_ICMPV6 */
	uint16_t dport;
	const char *payload;
	size_t plen; /* 0: strlen(payload) */
	uint16_t frag; /* IPv4 frag_off field */
	bool v6frag, v6hbh;
	int v4opts; /* option bytes, a multiple of 4 */
	int udp_len_adj; /* added to the UDP length field */
	uint16_t arp_op; /* 0: request */
	const char *target; /* neighbour solicitation target */
};

struct cnt {
	int c;
	uint64_t n; /* 0 ends the list */
};

struct pcase {
	const char *desc;
	struct fspec f;
	void (*setup)(struct fx *);
	unsigned verdict;
	struct cnt cnt[4];
	bool steered; /* expected output: the input with MACs rewritten */
};

struct res {
	int err;
	unsigned ret;
	uint8_t out[FRAME_MAX];
	uint32_t out_len;
	uint64_t d[NC];
};

static struct fx fx;

static const uint8_t mac_client[6] = { 0x02, 0, 0, 0, 0, 0x01 };
static const uint8_t mac_node[6] = { 0x02, 0, 0, 0, 0, 0x02 };
static const uint8_t mac_own[6] = { 0x02, 0, 0, 0, 0, 0xaa };
static const uint8_t mac_peer[6] = { 0x02, 0, 0, 0, 0, 0xbb };

#define SIP_HDRS(m, to)                                       \
	"Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-1\r\n" \
	"Max-Forwards: 70\r\n"                                \
	"From: <sip:alice@sipha.test>;tag=a1\r\n" to "\r\n"   \
	"Call-ID: 1@x\r\n"                                    \
	"CSeq: 1 " m "\r\n"                                   \
	"Content-Length: 0\r\n\r\n"
#define REQ_TO(m, to) m " sip:bob@sipha.test SIP/2.0\r\n" SIP_HDRS(m, to)
#define REQ(m) REQ_TO(m, "To: <sip:bob@sipha.test>")
#define INV REQ("INVITE")
#define RESP "SIP/2.0 200 OK\r\n" SIP_HDRS("INVITE", "To: <sip:bob@sipha.test>;tag=b2")

static void put16(uint8_t *p, unsigned v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void addr(int family, const char *s, void *out)
{
	if (inet_pton(family, s, out) != 1)
		fail_msg("bad test address %s", s);
}

static size_t build(uint8_t *f, const struct fspec *s)
{
	int l3 = s->l3 ? s->l3 : AF_INET;
	int l4 = s->l4 ? s->l4 : IPPROTO_UDP;
	size_t plen = s->payload ? (s->plen ? s->plen : strlen(s->payload)) : 0;
	size_t off = 12, ipoff, hlen;
	uint8_t *ip, *next, *t;

	memset(f, 0, FRAME_MAX);
	memcpy(f, mac_node, 6);
	memcpy(f + 6, mac_client, 6);
	for (int i = 0; i < s->vlans; i++, off += 4) {
		put16(f + off, i == 0 && s->vlans == 2 ? ETH_P_8021AD : ETH_P_8021Q);
		put16(f + off + 2, 100 + (unsigned)i);
	}
	if (l3 == L3_ARP) {
		put16(f + off, ETH_P_ARP);
		t = f + off + 2;
		put16(t, 1);
		put16(t + 2, ETH_P_IP);
		t[4] = 6;
		t[5] = 4;
		put16(t + 6, s->arp_op ? s->arp_op : 1);
		memcpy(t + 8, mac_client, 6);
		addr(AF_INET, s->src ? s->src : "10.99.0.7", t + 14);
		addr(AF_INET, s->dst ? s->dst : "10.99.0.1", t + 24);
		return off + 2 + 28;
	}
	hlen = l4 == IPPROTO_UDP ? 8 : l4 == IPPROTO_TCP ? 20 : l4 == IPPROTO_ICMPV6 ? 24 : 8;
	put16(f + off, l3 == AF_INET ? ETH_P_IP : ETH_P_IPV6);
	ipoff = off += 2;
	ip = f + ipoff;
	if (l3 == AF_INET) {
		ip[0] = (uint8_t)(0x40 | (20 + s->v4opts) / 4);
		put16(ip + 2, (unsigned)(20 + s->v4opts + hlen + plen));
		put16(ip + 6, s->frag);
		ip[8] = 64;
		ip[9] = (uint8_t)l4;
		addr(AF_INET, s->src ? s->src : "10.0.0.1", ip + 12);
		addr(AF_INET, s->dst ? s->dst : "10.99.0.1", ip + 16);
		memset(ip + 20, 1, (size_t)s->v4opts); /* NOPs */
		off += 20 + (size_t)s->v4opts;
	} else {
		ip[0] = 0x60;
		ip[7] = 64;
		addr(AF_INET6, s->src ? s->src : "2001:db8::1", ip + 8);
		addr(AF_INET6, s->dst ? s->dst : "2001:db8::99", ip + 24);
		next = ip + 6;
		off += 40;
		if (s->v6hbh) { /* hop-by-hop with one PadN option */
			*next = 0;
			next = f + off;
			f[off + 2] = 1;
			f[off + 3] = 4;
			off += 8;
		}
		if (s->v6frag) { /* first fragment, more to come */
			*next = 44;
			next = f + off;
			put16(f + off + 2, 1);
			f[off + 7] = 42;
			off += 8;
		}
		*next = (uint8_t)l4;
		put16(ip + 4, (unsigned)(off - ipoff - 40 + hlen + plen));
	}
	t = f + off;
	switch (l4) {
	case IPPROTO_UDP:
		put16(t, 40000);
		put16(t + 2, s->dport ? s->dport : 5060);
		put16(t + 4, (unsigned)((int)(8 + plen) + s->udp_len_adj));
		break;
	case IPPROTO_TCP:
		put16(t, 40000);
		put16(t + 2, s->dport ? s->dport : 5060);
		t[12] = 5 << 4;
		t[13] = 0x02; /* SYN */
		break;
	case IPPROTO_ICMPV6:
		t[0] = 135;
		addr(AF_INET6, s->target ? s->target : "2001:db8::99", t + 8);
		break;
	default:
		t[0] = 8; /* echo request */
		break;
	}
	if (plen)
		memcpy(t + hlen, s->payload, plen);
	return off + hlen + plen;
}

static void counters(struct fx *f, uint64_t out[NC])
{
	int err = sxdp_pinned_counters(f->node, out);

	if (err)
		fail_msg("sxdp_pinned_counters: %s", strerror(-err));
}

/* One run of LEN bytes of IN, with the counter deltas it caused. */
static void run_raw(struct fx *f, const uint8_t *in, size_t len, struct res *r)
{
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = in, .data_size_in = (uint32_t)len,
		    .data_out = r->out, .data_size_out = sizeof(r->out), .repeat = 1);
	uint64_t before[NC], after[NC];

	counters(f, before);
	r->err = bpf_prog_test_run_opts(f->prog_fd, &o);
	r->ret = o.retval;
	r->out_len = o.data_size_out;
	counters(f, after);
	for (int i = 0; i < NC; i++)
		r->d[i] = after[i] - before[i];
}

static unsigned verdict(struct fx *f, const struct fspec *s)
{
	uint8_t in[FRAME_MAX];
	struct res r;

	run_raw(f, in, build(in, s), &r);
	if (r.err)
		fail_msg("test run: %s", strerror(-r.err));
	return r.ret;
}

static void check_case(struct fx *f, const struct pcase *c)
{
	uint8_t in[FRAME_MAX], want_out[FRAME_MAX];
	uint64_t want[NC] = { 0 };
	size_t len = build(in, &c->f);
	struct res r;

	if (c->setup)
		c->setup(f);
	for (int k = 0; k < 4 && c->cnt[k].n; k++)
		want[c->cnt[k].c] += c->cnt[k].n;
	memcpy(want_out, in, len);
	if (c->steered) {
		memcpy(want_out, mac_peer, 6);
		memcpy(want_out + 6, mac_own, 6);
	}
	run_raw(f, in, len, &r);
	if (r.err)
		fail_msg("%s: test run: %s", c->desc, strerror(-r.err));
	if (r.ret != c->verdict)
		fail_msg("%s: verdict %u, expected %u", c->desc, r.ret, c->verdict);
	for (int i = 0; i < NC; i++)
		if (r.d[i] != want[i])
			fail_msg("%s: counter %s +%llu, expected +%llu", c->desc,
				 sxdp_counter_name((unsigned)i), (unsigned long long)r.d[i],
				 (unsigned long long)want[i]);
	if (r.out_len != len || memcmp(r.out, want_out, len))
		fail_msg("%s: output frame differs from the expected one", c->desc);
}

/* --- role setups ---------------------------------------------------------- */

static struct cfg_prefix prefix(int family, const char *s, unsigned len)
{
	struct cfg_prefix p = { .family = family, .prefixlen = len };

	addr(family, s, &p.addr);
	return p;
}

static void role(struct fx *f, bool active, const struct cfg_prefix *vip, bool peer,
		 uint64_t timeout_ns)
{
	assert_int_equal(
		sxdp_set_role(f->x, active, vip, mac_own, peer ? mac_peer : NULL, timeout_ns), 0);
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static void no_role(struct fx *f)
{
	role(f, false, NULL, false, 0);
}

static void standby4(struct fx *f)
{
	struct cfg_prefix vip = prefix(AF_INET, "10.99.0.100", 24);

	role(f, false, &vip, true, 0);
}

static void standby6(struct fx *f)
{
	struct cfg_prefix vip = prefix(AF_INET6, "2001:db8::100", 64);

	role(f, false, &vip, true, 0);
}

static void standby4_nopeer(struct fx *f)
{
	struct cfg_prefix vip = prefix(AF_INET, "10.99.0.100", 24);

	role(f, false, &vip, false, 0);
}

static void active4(struct fx *f)
{
	struct cfg_prefix vip = prefix(AF_INET, "10.99.0.100", 24);

	role(f, true, &vip, true, 10000 * MS);
}

static void active6(struct fx *f)
{
	struct cfg_prefix vip = prefix(AF_INET6, "2001:db8::100", 64);

	role(f, true, &vip, true, 10000 * MS);
}

/* An active node whose daemon stopped stamping: 1 ms timeout, 5 ms silence. */
static void orphan4(struct fx *f)
{
	struct cfg_prefix vip = prefix(AF_INET, "10.99.0.100", 24);

	role(f, true, &vip, true, 1 * MS);
	sleep_ms(5);
}

static void orphan6(struct fx *f)
{
	struct cfg_prefix vip = prefix(AF_INET6, "2001:db8::100", 64);

	role(f, true, &vip, true, 1 * MS);
	sleep_ms(5);
}

/* R, with our MACs, straight into the pinned role map: a role user space
 * would not write. */
static void write_role_raw(struct fx *f, struct sxdp_role *r)
{
	char path[PATH_MAX];
	__u32 k0 = 0;
	int fd, err;

	memcpy(r->own_mac, mac_own, 6);
	memcpy(r->peer_mac, mac_peer, 6);
	snprintf(path, sizeof(path), "%s/%s/%s", SXDP_PIN_BASE, f->node, SXDP_NAME(SXDP_MAP_ROLE));
	fd = bpf_obj_get(path);
	assert_true(fd >= 0);
	err = bpf_map_update_elem(fd, &k0, r, BPF_ANY);
	close(fd);
	assert_int_equal(err, 0);
}

/* Active with a timeout but never stamped: not orphaned (not yet started). */
static void active4_unstamped(struct fx *f)
{
	struct sxdp_role r = { .role = SXDP_ROLE_ACTIVE,
			       .timeout_ns = 1,
			       .flags = SXDP_ROLE_F_VIP4 | SXDP_ROLE_F_PEER };

	addr(AF_INET, "10.99.0.100", &r.vip4);
	write_role_raw(f, &r);
}

/* A port of FAMILY no UDP socket has: one the kernel gave and took back. */
static uint16_t closed_port(int family)
{
	struct sockaddr_storage ss = { .ss_family = (sa_family_t)family };
	socklen_t len =
		family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
	int fd = socket(family, SOCK_DGRAM, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&ss, len), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
	close(fd);
	return family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
				 : ((struct sockaddr_in6 *)&ss)->sin6_port;
}

/* An active node, freshly stamped, whose sentinel socket is gone (its
 * process died): the port in the role map has no socket. */
static void sentinel_gone(struct fx *f, int family)
{
	struct timespec ts;
	struct sxdp_role r = { .role = SXDP_ROLE_ACTIVE,
			       .timeout_ns = 10000 * MS,
			       .flags = SXDP_ROLE_F_PEER | SXDP_ROLE_F_SOCK };

	clock_gettime(CLOCK_MONOTONIC, &ts);
	r.heartbeat_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	if (family == AF_INET) {
		r.flags |= SXDP_ROLE_F_VIP4;
		addr(AF_INET, "10.99.0.100", &r.vip4);
	} else {
		r.flags |= SXDP_ROLE_F_VIP6;
		addr(AF_INET6, "2001:db8::100", r.vip6);
	}
	r.sip_port = closed_port(family);
	write_role_raw(f, &r);
}

static void sentinel_gone4(struct fx *f)
{
	sentinel_gone(f, AF_INET);
}

static void sentinel_gone6(struct fx *f)
{
	sentinel_gone(f, AF_INET6);
}

/* The same node with its sentinel open: alive. */
static void sentinel4(struct fx *f)
{
	assert_int_equal(sxdp_sentinel(f->x, AF_INET), 0);
	active4(f);
}

/* --- tables --------------------------------------------------------------- */

#define C(name) SXDP_C_##name
#define F(...)              \
	{                   \
		__VA_ARGS__ \
	} /* a frame spec inside a table macro */
#define UDP_SIP(p) F(.payload = (p))
/* {description, frame, setup, verdict, counter deltas...}; STEER: XDP_TX with
 * the output frame being the input with the MACs rewritten. */
#define CASE(d, spec, set, v, ...)                                                       \
	{                                                                                \
		.desc = d, .f = spec, .setup = set, .verdict = v, .cnt = { __VA_ARGS__ } \
	}
#define STEER(d, spec, set, ...)                                                               \
	{                                                                                      \
		.desc = d, .f = spec, .setup = set, .verdict = XDP_TX, .cnt = { __VA_ARGS__ }, \
		.steered = true                                                                \
	}
#define METHOD(M, id) CASE(M, UDP_SIP(REQ(M)), no_role, XDP_PASS, { C(id), 1 })

static const struct pcase classify_cases[] = {
	METHOD("INVITE", INVITE),
	METHOD("ACK", ACK),
	METHOD("BYE", BYE),
	METHOD("CANCEL", CANCEL),
	METHOD("REGISTER", REGISTER),
	METHOD("OPTIONS", OPTIONS),
	METHOD("SUBSCRIBE", SUBSCRIBE),
	METHOD("NOTIFY", NOTIFY),
	METHOD("REFER", REFER),
	METHOD("INFO", INFO),
	METHOD("UPDATE", UPDATE),
	METHOD("PRACK", PRACK),
	METHOD("MESSAGE", MESSAGE),
	METHOD("PUBLISH", PUBLISH),
	CASE("response", UDP_SIP(RESP), no_role, XDP_PASS, { C(RESPONSE), 1 }),
	CASE("response, lower-case version", UDP_SIP("sip/2.0 180 Ringing\r\n\r\n"), no_role,
	     XDP_PASS, { C(RESPONSE), 1 }),
	CASE("one VLAN tag", F(.vlans = 1, .payload = INV), no_role, XDP_PASS, { C(INVITE), 1 }),
	CASE("two VLAN tags", F(.vlans = 2, .payload = INV), no_role, XDP_PASS, { C(INVITE), 1 }),
	CASE("IPv4 options", F(.v4opts = 8, .payload = INV), no_role, XDP_PASS, { C(INVITE), 1 }),
	CASE("IPv6", F(.l3 = AF_INET6, .payload = INV), no_role, XDP_PASS, { C(INVITE), 1 }),
	CASE("IPv6 hop-by-hop header", F(.l3 = AF_INET6, .v6hbh = true, .payload = REQ("BYE")),
	     no_role, XDP_PASS, { C(BYE), 1 }),
	CASE("IPv6 in two VLAN tags", F(.l3 = AF_INET6, .vlans = 2, .payload = RESP), no_role,
	     XDP_PASS, { C(RESPONSE), 1 }),
	CASE("IPv4 first fragment (MF)", F(.frag = 0x2000, .payload = INV), no_role, XDP_PASS,
	     { C(FRAGMENT), 1 }),
	CASE("IPv4 later fragment (offset)", F(.frag = 185, .payload = "tail of a datagram"),
	     no_role, XDP_PASS, { C(FRAGMENT), 1 }),
	CASE("IPv6 fragment header", F(.l3 = AF_INET6, .v6frag = true, .payload = INV), no_role,
	     XDP_PASS, { C(FRAGMENT), 1 }),
	CASE("IPv6 fragment after hop-by-hop",
	     F(.l3 = AF_INET6, .v6hbh = true, .v6frag = true, .payload = INV), no_role, XDP_PASS,
	     { C(FRAGMENT), 1 }),
	CASE("TCP to 5060", F(.l4 = IPPROTO_TCP), no_role, XDP_PASS, { C(TCP), 1 }),
	CASE("TCP to 80", F(.l4 = IPPROTO_TCP, .dport = 80), no_role, XDP_PASS, { C(OTHER), 1 }),
	CASE("UDP to 5061", F(.dport = 5061, .payload = INV), no_role, XDP_PASS, { C(OTHER), 1 }),
	CASE("ICMP", F(.l4 = IPPROTO_ICMP), no_role, XDP_PASS, { C(OTHER), 1 }),
	CASE("ARP", F(.l3 = L3_ARP), no_role, XDP_PASS, { C(OTHER), 1 }),
	CASE("non-SIP text", UDP_SIP("hello world, this is not SIP\r\n"), no_role, XDP_DROP,
	     { C(NON_SIP), 1 }, { C(DROP_NON_SIP), 1 }),
	CASE("binary junk", F(.payload = "\x16\x03\x01\x02\x00\x01", .plen = 6), no_role, XDP_DROP,
	     { C(NON_SIP), 1 }, { C(DROP_NON_SIP), 1 }),
	CASE("method without space", UDP_SIP("INVITEsip:bob@x SIP/2.0\r\n\r\n"), no_role, XDP_DROP,
	     { C(NON_SIP), 1 }, { C(DROP_NON_SIP), 1 }),
	CASE("bare version", UDP_SIP("SIP/2.0"), no_role, XDP_DROP, { C(NON_SIP), 1 },
	     { C(DROP_NON_SIP), 1 }),
	CASE("UDP length beyond the frame", F(.payload = INV, .udp_len_adj = 100), no_role,
	     XDP_DROP, { C(NON_SIP), 1 }, { C(DROP_NON_SIP), 1 }),
	CASE("CRLF keep-alive", UDP_SIP("\r\n\r\n"), no_role, XDP_PASS, { C(KEEPALIVE), 1 }),
	CASE("empty datagram", F(.payload = NULL), no_role, XDP_PASS, { C(KEEPALIVE), 1 }),
	CASE("STUN binding request",
	     F(.payload = "\x00\x01\x00\x00\x21\x12\xa4\x42"
			  "abcdefghijkl",
	       .plen = 20),
	     no_role, XDP_PASS, { C(KEEPALIVE), 1 }),
	CASE("unknown method", UDP_SIP(REQ("FOO")), no_role, XDP_PASS, { C(UNKNOWN_METHOD), 1 }),
	CASE("lower-case method is unknown", UDP_SIP("invite sips:bob@x SIP/2.0\r\n\r\n"), no_role,
	     XDP_PASS, { C(UNKNOWN_METHOD), 1 }),
};

#define VIP4_SIP(p) F(.dst = "10.99.0.100", .payload = (p))
#define VIP6_SIP(p) F(.l3 = AF_INET6, .dst = "2001:db8::100", .payload = (p))
#define ARP_FOR(ip) F(.l3 = L3_ARP, .dst = (ip))
#define NS_FOR(ip) \
	F(.l3 = AF_INET6, .l4 = IPPROTO_ICMPV6, .dst = "ff02::1:ff00:100", .target = (ip))

static const struct pcase role_cases[] = {
	STEER("standby: SIP to the VIP is steered", VIP4_SIP(INV), standby4, { C(INVITE), 1 },
	      { C(STEERED), 1 }),
	STEER("standby: VLAN-tagged SIP to the VIP is steered",
	      F(.vlans = 2, .dst = "10.99.0.100", .payload = REQ("BYE")), standby4, { C(BYE), 1 },
	      { C(STEERED), 1 }),
	STEER("standby: response to the VIP is steered", VIP4_SIP(RESP), standby4,
	      { C(RESPONSE), 1 }, { C(STEERED), 1 }),
	CASE("standby: SIP to another address passes", F(.dst = "10.99.0.1", .payload = INV),
	     standby4, XDP_PASS, { C(INVITE), 1 }),
	CASE("standby: non-SIP to the VIP is dropped, not steered", VIP4_SIP("junk"), standby4,
	     XDP_DROP, { C(NON_SIP), 1 }, { C(DROP_NON_SIP), 1 }),
	CASE("standby: TCP to the VIP passes", F(.dst = "10.99.0.100", .l4 = IPPROTO_TCP), standby4,
	     XDP_PASS, { C(TCP), 1 }),
	CASE("standby: ARP for the VIP passes", ARP_FOR("10.99.0.100"), standby4, XDP_PASS,
	     { C(OTHER), 1 }),
	CASE("standby, no peer MAC: SIP to the VIP passes", VIP4_SIP(INV), standby4_nopeer,
	     XDP_PASS, { C(INVITE), 1 }),
	STEER("standby: IPv6 SIP to the VIP is steered", VIP6_SIP(INV), standby6, { C(INVITE), 1 },
	      { C(STEERED), 1 }),
	CASE("standby: IPv6 SIP to another address passes",
	     F(.l3 = AF_INET6, .dst = "2001:db8::101", .payload = INV), standby6, XDP_PASS,
	     { C(INVITE), 1 }),
	CASE("active: SIP to the VIP passes", VIP4_SIP(INV), active4, XDP_PASS, { C(INVITE), 1 }),
	CASE("active: ARP for the VIP passes", ARP_FOR("10.99.0.100"), active4, XDP_PASS,
	     { C(OTHER), 1 }),
	CASE("active: NS for the VIP passes", NS_FOR("2001:db8::100"), active6, XDP_PASS,
	     { C(OTHER), 1 }),
	CASE("orphan: ARP request for the VIP is dropped", ARP_FOR("10.99.0.100"), orphan4,
	     XDP_DROP, { C(ORPHAN_ARP_DROP), 1 }),
	CASE("orphan: ARP request in a VLAN for the VIP is dropped",
	     F(.l3 = L3_ARP, .vlans = 1, .dst = "10.99.0.100"), orphan4, XDP_DROP,
	     { C(ORPHAN_ARP_DROP), 1 }),
	CASE("orphan: ARP request for another address passes", ARP_FOR("10.99.0.1"), orphan4,
	     XDP_PASS, { C(OTHER), 1 }),
	CASE("orphan: ARP reply from the VIP passes",
	     F(.l3 = L3_ARP, .arp_op = 2, .dst = "10.99.0.100"), orphan4, XDP_PASS,
	     { C(OTHER), 1 }),
	STEER("orphan: SIP to the VIP is steered", VIP4_SIP(INV), orphan4, { C(INVITE), 1 },
	      { C(STEERED), 1 }),
	CASE("orphan: SIP to another address passes", F(.dst = "10.99.0.1", .payload = INV),
	     orphan4, XDP_PASS, { C(INVITE), 1 }),
	CASE("sentinel open: ARP request for the VIP passes", ARP_FOR("10.99.0.100"), sentinel4,
	     XDP_PASS, { C(OTHER), 1 }),
	CASE("sentinel gone: ARP request for the VIP is dropped at once", ARP_FOR("10.99.0.100"),
	     sentinel_gone4, XDP_DROP, { C(ORPHAN_ARP_DROP), 1 }),
	CASE("sentinel gone: NS for the VIP is dropped at once", NS_FOR("2001:db8::100"),
	     sentinel_gone6, XDP_DROP, { C(ORPHAN_ARP_DROP), 1 }),
	CASE("orphan: NS for the VIP is dropped", NS_FOR("2001:db8::100"), orphan6, XDP_DROP,
	     { C(ORPHAN_ARP_DROP), 1 }),
	CASE("orphan: NS for another address passes", NS_FOR("2001:db8::101"), orphan6, XDP_PASS,
	     { C(OTHER), 1 }),
	STEER("orphan: IPv6 SIP to the VIP is steered", VIP6_SIP(INV), orphan6, { C(INVITE), 1 },
	      { C(STEERED), 1 }),
	CASE("active, never stamped: ARP for the VIP passes", ARP_FOR("10.99.0.100"),
	     active4_unstamped, XDP_PASS, { C(OTHER), 1 }),
	CASE("active, never stamped: SIP to the VIP passes", VIP4_SIP(INV), active4_unstamped,
	     XDP_PASS, { C(INVITE), 1 }),
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static void test_classify(void **state)
{
	for (size_t i = 0; i < NELEM(classify_cases); i++)
		check_case(*state, &classify_cases[i]);
}

static void test_roles(void **state)
{
	for (size_t i = 0; i < NELEM(role_cases); i++)
		check_case(*state, &role_cases[i]);
	no_role(*state);
}

/* The heartbeat refreshes what the timeout ages. */
static void test_heartbeat(void **state)
{
	struct fspec arp = { .l3 = L3_ARP, .dst = "10.99.0.100" };
	struct cfg_prefix vip = prefix(AF_INET, "10.99.0.100", 24);
	struct fx *f = *state;

	role(f, true, &vip, true, 300 * MS);
	assert_int_equal(verdict(f, &arp), XDP_PASS);
	sleep_ms(400);
	assert_int_equal(verdict(f, &arp), XDP_DROP);
	assert_int_equal(sxdp_heartbeat(f->x), 0);
	assert_int_equal(verdict(f, &arp), XDP_PASS);
	no_role(f);
}

/* Every length of a frame gives a verdict and no error.  The kernel never
 * hands XDP less than an Ethernet header (test runs, bpf_xdp_adjust_head()
 * and _tail() refuse it as the drivers do), so below ETH_HLEN the check is
 * that the run is refused and the program never sees the frame. */
static void truncations(struct fx *f, const struct fspec *s, unsigned full)
{
	uint8_t in[FRAME_MAX];
	size_t len = build(in, s);
	struct res r;

	for (size_t l = 0; l <= len; l++) {
		uint64_t sum = 0;

		run_raw(f, in, l, &r);
		for (int i = 0; i < NC; i++)
			sum += r.d[i];
		if (l < ETH_HLEN) {
			if (r.err != -EINVAL || sum)
				fail_msg("length %zu: run %d, %llu counted; expected a refusal", l,
					 r.err, (unsigned long long)sum);
			continue;
		}
		if (r.err)
			fail_msg("length %zu of %zu: test run: %s", l, len, strerror(-r.err));
		if (r.ret != XDP_PASS && r.ret != XDP_DROP && r.ret != XDP_TX)
			fail_msg("length %zu of %zu: verdict %u", l, len, r.ret);
		/* Every path counts: proof the program ran on this length. */
		if (sum == 0)
			fail_msg("length %zu of %zu: nothing counted", l, len);
		if (l < len && r.ret == XDP_PASS && r.d[SXDP_C_INVITE])
			fail_msg("length %zu of %zu: a cut INVITE passed as SIP", l, len);
	}
	if (r.ret != full)
		fail_msg("full frame: verdict %u, expected %u", r.ret, full);
}

static void test_truncated(void **state)
{
	const struct {
		struct fspec f;
		unsigned full; /* verdict on the whole frame */
	} frames[] = {
		{ { .payload = INV }, XDP_PASS },
		{ { .l3 = AF_INET6, .v6hbh = true, .payload = INV }, XDP_PASS },
		{ { .vlans = 2, .v4opts = 4, .payload = INV }, XDP_PASS },
		{ { .l3 = L3_ARP, .dst = "10.99.0.100" }, XDP_DROP },
		{ { .l3 = AF_INET6, .l4 = IPPROTO_ICMPV6, .target = "2001:db8::100" }, XDP_DROP },
		{ { .l3 = AF_INET6, .dst = "2001:db8::100", .payload = INV }, XDP_TX },
	};
	struct fx *f = *state;

	/* Orphaned with a v6 VIP; the ARP frame is for the v4 VIP's sake. */
	orphan6(f);
	for (size_t i = 0; i < NELEM(frames); i++)
		if (frames[i].f.l3 != L3_ARP)
			truncations(f, &frames[i].f, frames[i].full);
	orphan4(f);
	truncations(f, &frames[3].f, frames[3].full);
	standby4(f);
	truncations(f, &(struct fspec){ .dst = "10.99.0.100", .payload = INV }, XDP_TX);
	no_role(f);
}

static void block(struct fx *f, const char *p, bool add, int want)
{
	int err = sxdp_pinned_block(f->node, p, add);

	if (err != want)
		fail_msg("%s %s: %d, expected %d", add ? "block" : "unblock", p, err, want);
}

static void test_blocklist(void **state)
{
	static const char *const bad[] = { "",		 "10.0.0.0/33", "10.0.0.0/", "10.0.0.0/-1",
					   "::/129",	 "junk",	"10.0.0/8",  "10.0.0.0/ 8",
					   "1.2.3.4/8x", "/8" };
	struct fx *f = *state;
	uint64_t c0[NC], c1[NC];

	block(f, "10.1.0.0/16", true, 0);
	block(f, "2001:db8:aa00::/40", true, 0);
	block(f, "192.0.2.7", true, 0);

	counters(f, c0);
	assert_int_equal(verdict(f, &(struct fspec){ .src = "10.1.255.255", .payload = INV }),
			 XDP_DROP);
	/* Before everything: fragments and non-SIP of a blocked source too. */
	assert_int_equal(verdict(f, &(struct fspec){ .src = "10.1.0.1", .frag = 0x2000 }),
			 XDP_DROP);
	assert_int_equal(verdict(f, &(struct fspec){ .src = "10.1.0.1", .l4 = IPPROTO_TCP }),
			 XDP_DROP);
	assert_int_equal(verdict(f, &(struct fspec){ .l3 = AF_INET6,
						     .src = "2001:db8:aaff:ffff::1",
						     .payload = INV }),
			 XDP_DROP);
	assert_int_equal(verdict(f, &(struct fspec){ .src = "192.0.2.7", .payload = INV }),
			 XDP_DROP);
	counters(f, c1);
	assert_int_equal(c1[SXDP_C_DROP_BLOCKLIST] - c0[SXDP_C_DROP_BLOCKLIST], 5);
	assert_int_equal(c1[SXDP_C_INVITE] - c0[SXDP_C_INVITE], 0);

	/* Just outside each prefix. */
	assert_int_equal(verdict(f, &(struct fspec){ .src = "10.2.0.0", .payload = INV }),
			 XDP_PASS);
	assert_int_equal(verdict(f, &(struct fspec){ .src = "10.0.255.255", .payload = INV }),
			 XDP_PASS);
	assert_int_equal(verdict(f, &(struct fspec){ .l3 = AF_INET6,
						     .src = "2001:db8:ab00::1",
						     .payload = INV }),
			 XDP_PASS);
	assert_int_equal(verdict(f, &(struct fspec){ .src = "192.0.2.6", .payload = INV }),
			 XDP_PASS);
	counters(f, c0);
	assert_int_equal(c0[SXDP_C_DROP_BLOCKLIST] - c1[SXDP_C_DROP_BLOCKLIST], 0);
	assert_int_equal(c0[SXDP_C_INVITE] - c1[SXDP_C_INVITE], 4);

	/* Host bits do not matter; deleting what is absent is -ENOENT. */
	block(f, "10.1.99.99/16", false, 0);
	block(f, "10.1.0.0/16", false, -ENOENT);
	block(f, "2001:db8:aa00::/40", false, 0);
	block(f, "192.0.2.7/32", false, 0);
	assert_int_equal(verdict(f, &(struct fspec){ .src = "10.1.255.255", .payload = INV }),
			 XDP_PASS);
	assert_int_equal(verdict(f, &(struct fspec){ .src = "192.0.2.7", .payload = INV }),
			 XDP_PASS);
	for (size_t i = 0; i < NELEM(bad); i++)
		block(f, bad[i], true, -EINVAL);
	block(f, "10.9.8.7/8", true, 0);
	assert_int_equal(verdict(f, &(struct fspec){ .src = "10.200.0.1", .payload = INV }),
			 XDP_DROP);
	block(f, "10.0.0.0/8", false, 0);
	assert_int_equal(sxdp_pinned_block("test-absent-node", "10.0.0.0/8", true), -ENOENT);
	assert_int_equal(sxdp_pinned_block("../x", "10.0.0.0/8", true), -EINVAL);
	/* Through the object too. */
	assert_int_equal(sxdp_block(f->x, "198.51.100.0/24", true), 0);
	assert_int_equal(verdict(f, &(struct fspec){ .src = "198.51.100.9", .payload = INV }),
			 XDP_DROP);
	assert_int_equal(sxdp_block(f->x, "198.51.100.0/24", false), 0);
}

static unsigned n_pass(struct fx *f, const struct fspec *s, unsigned n)
{
	unsigned passed = 0;

	for (unsigned i = 0; i < n; i++)
		passed += verdict(f, s) == XDP_PASS;
	return passed;
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

#define INV_FROM(s, to) (&(struct fspec){ .src = (s), .payload = REQ_TO("INVITE", to) })

/* INVITE limit 2/s, burst 2: the third back-to-back initial INVITE of one
 * source is dropped; in-dialog INVITEs, other sources and other methods are
 * not; after 600 ms one more token has come back. */
static void test_ratelimit_invite(void **state)
{
	struct fx *f = *state;
	const char *a = "10.20.0.1";
	uint64_t c0[NC], c1[NC], t0, t1;
	unsigned p;

	assert_int_equal(sxdp_set_rates(f->x, 2, 0, 2), 0);
	counters(f, c0);
	t0 = mono_ms();
	assert_int_equal(n_pass(f, INV_FROM(a, "To: <sip:bob@x>"), 5), 2);
	counters(f, c1);
	assert_int_equal(c1[SXDP_C_INVITE] - c0[SXDP_C_INVITE], 5);
	assert_int_equal(c1[SXDP_C_DROP_RATELIMIT] - c0[SXDP_C_DROP_RATELIMIT], 3);

	/* In-dialog (To-tag), long and compact form, any parameter order. */
	assert_int_equal(verdict(f, INV_FROM(a, "To: <sip:bob@x>;tag=9")), XDP_PASS);
	assert_int_equal(verdict(f, INV_FROM(a, "t: sip:bob@x;tag=9")), XDP_PASS);
	assert_int_equal(verdict(f, INV_FROM(a, "TO : <sip:bob@x>;foo=bar ; TAG = 9")), XDP_PASS);
	assert_int_equal(verdict(f, INV_FROM(a, "To: \"Bob\" <sip:bob@x>;tag=9")), XDP_PASS);
	/* Not a To-tag: still initial, still limited. */
	assert_int_equal(verdict(f, INV_FROM(a, "To: \"x;tag=1\" <sip:bob@x>")), XDP_DROP);
	assert_int_equal(verdict(f, INV_FROM(a, "To: <sip:bob@x;tag=1>")), XDP_DROP);
	assert_int_equal(verdict(f, INV_FROM(a, "Tox: <sip:bob@x>;tag=1")), XDP_DROP);
	assert_int_equal(verdict(f, INV_FROM(a, "To: <sip:bob@x>;tagx=1")), XDP_DROP);

	/* Another source, another method. */
	assert_int_equal(n_pass(f, INV_FROM("10.20.0.2", "To: <sip:bob@x>"), 3), 2);
	assert_int_equal(n_pass(f, &(struct fspec){ .src = a, .payload = REQ("REGISTER") }, 5), 5);
	assert_int_equal(n_pass(f, &(struct fspec){ .src = a, .payload = REQ("OPTIONS") }, 5), 5);

	/* IPv6 sources share a bucket per /64. */
	assert_int_equal(
		n_pass(f,
		       &(struct fspec){ .l3 = AF_INET6, .src = "2001:db8:20::1", .payload = INV },
		       2),
		2);
	assert_int_equal(
		verdict(f,
			&(struct fspec){ .l3 = AF_INET6, .src = "2001:db8:20::2", .payload = INV }),
		XDP_DROP);
	assert_int_equal(
		verdict(f,
			&(struct fspec){ .l3 = AF_INET6, .src = "2001:db8:21::1", .payload = INV }),
		XDP_PASS);

	/* Refill: the bucket of A was full at t0 + 1000 ms and allows 500 ms
	 * ahead, so from t0 + 500 ms one more passes, and a second only from
	 * t0 + 1000 ms. */
	sleep_ms(600);
	p = n_pass(f, INV_FROM(a, "To: <sip:bob@x>"), 2);
	t1 = mono_ms();
	if (t1 - t0 < 1000)
		assert_int_equal(p, 1);
	else
		assert_true(p >= 1);

	/* Off again: no limit. */
	assert_int_equal(sxdp_set_rates(f->x, 0, 0, 0), 0);
	assert_int_equal(n_pass(f, INV_FROM(a, "To: <sip:bob@x>"), 5), 5);
}

static void test_ratelimit_register(void **state)
{
	struct fx *f = *state;
	struct fspec reg = { .src = "10.21.0.1", .payload = REQ("REGISTER") };
	uint64_t c0[NC], c1[NC];

	assert_int_equal(sxdp_set_rates(f->x, 0, 1, 3), 0);
	counters(f, c0);
	assert_int_equal(n_pass(f, &reg, 5), 3);
	counters(f, c1);
	assert_int_equal(c1[SXDP_C_REGISTER] - c0[SXDP_C_REGISTER], 5);
	assert_int_equal(c1[SXDP_C_DROP_RATELIMIT] - c0[SXDP_C_DROP_RATELIMIT], 2);
	assert_int_equal(n_pass(f, INV_FROM("10.21.0.1", "To: <sip:bob@x>"), 5), 5);
	/* Default burst: twice the larger rate. */
	assert_int_equal(sxdp_set_rates(f->x, 0, 2, 0), 0);
	reg.src = "10.21.0.2";
	assert_int_equal(n_pass(f, &reg, 6), 4);
	assert_int_equal(sxdp_set_rates(f->x, 0, 0, 0), 0);
}

static void test_counters(void **state)
{
	static const char *const contract[] = {
		"invite",	  "ack",	  "bye",     "cancel",		"register",
		"options",	  "subscribe",	  "notify",  "refer",		"info",
		"update",	  "prack",	  "message", "publish",		"response",
		"non_sip",	  "fragment",	  "tcp",     "other",		"drop_blocklist",
		"drop_ratelimit", "drop_non_sip", "steered", "orphan_arp_drop",
	};
	struct fx *f = *state;
	uint8_t in[FRAME_MAX], out[FRAME_MAX];
	uint64_t a[NC], b[NC], direct[NC];
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = in, .data_out = out,
		    .data_size_out = sizeof(out), .repeat = 10);

	for (size_t i = 0; i < NELEM(contract); i++)
		assert_string_equal(sxdp_counter_name((unsigned)i), contract[i]);
	for (unsigned i = 0; i < NC; i++) {
		assert_non_null(sxdp_counter_name(i));
		for (unsigned j = 0; j < i; j++)
			assert_string_not_equal(sxdp_counter_name(i), sxdp_counter_name(j));
	}
	assert_null(sxdp_counter_name(NC));

	o.data_size_in = (uint32_t)build(in, &(struct fspec){ .payload = REQ("NOTIFY") });
	counters(f, a);
	assert_int_equal(bpf_prog_test_run_opts(f->prog_fd, &o), 0);
	assert_int_equal(o.retval, XDP_PASS);
	counters(f, b);
	assert_int_equal(b[SXDP_C_NOTIFY] - a[SXDP_C_NOTIFY], 10);
	assert_int_equal(sxdp_counters(f->x, direct), 0);
	assert_memory_equal(direct, b, sizeof(b));

	assert_int_equal(sxdp_pinned_counters("test-absent-node", a), -ENOENT);
	assert_int_equal(sxdp_pinned_counters("", a), -EINVAL);
	assert_int_equal(sxdp_pinned_counters("a/b", a), -EINVAL);
}

static void test_status_unattached(void **state)
{
	struct fx *f = *state;
	struct bpf_prog_info info = { 0 };
	__u32 len = sizeof(info);
	struct sxdp_status st;

	assert_int_equal(bpf_obj_get_info_by_fd(f->prog_fd, &info, &len), 0);
	assert_int_equal(sxdp_pinned_status(f->node, &st), 0);
	assert_false(st.attached);
	assert_int_equal(st.mode, CFG_XDP_OFF);
	assert_int_equal(st.ifindex, 0);
	assert_int_equal(st.prog_id, info.id);
	assert_int_equal(sxdp_set_rates(f->x, 7, 9, 0), 0);
	assert_int_equal(sxdp_pinned_status(f->node, &st), 0);
	assert_int_equal(st.invite_rate, 7);
	assert_int_equal(st.register_rate, 9);
	assert_int_equal(st.burst, 18);
	assert_int_equal(sxdp_set_rates(f->x, 0, 0, 0), 0);
	assert_int_equal(sxdp_pinned_status("test-absent-node", &st), -ENOENT);
}

static bool pin_dir_exists(const char *node)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", SXDP_PIN_BASE, node);
	return access(path, F_OK) == 0;
}

/* Best effort, for teardown after a failure. */
static void remove_pins(const char *node)
{
	static const char *const maps[] = {
		SXDP_NAME(SXDP_MAP_COUNTERS), SXDP_NAME(SXDP_MAP_CONFIG), SXDP_NAME(SXDP_MAP_ROLE),
		SXDP_NAME(SXDP_MAP_BLOCK4),   SXDP_NAME(SXDP_MAP_BLOCK6), SXDP_NAME(SXDP_MAP_RATE),
		SXDP_NAME(SXDP_MAP_SCRATCH)
	};
	char path[PATH_MAX];

	for (size_t i = 0; i < NELEM(maps); i++) {
		snprintf(path, sizeof(path), "%s/%s/%s", SXDP_PIN_BASE, node, maps[i]);
		unlink(path);
	}
	snprintf(path, sizeof(path), "%s/%s", SXDP_PIN_BASE, node);
	rmdir(path);
	rmdir(SXDP_PIN_BASE);
}

static struct fx other; /* a second instance, for open/close tests */

static int other_setup(void **state)
{
	memset(&other, 0, sizeof(other));
	snprintf(other.node, sizeof(other.node), "test-%d-c", (int)getpid());
	*state = &other;
	return 0;
}

static int other_teardown(void **state)
{
	struct fx *o = *state;

	sxdp_close(o->x);
	o->x = NULL;
	remove_pins(o->node);
	return 0;
}

static void test_open_close(void **state)
{
	struct fx *o = *state;
	uint64_t c[NC];

	assert_int_equal(sxdp_open(&o->x, o->node, NULL, CFG_XDP_OFF, 5080), 0);
	assert_true(pin_dir_exists(o->node));
	o->prog_fd = sxdp_prog_fd(o->x);
	/* The SIP port is the configured one, and the maps are new. */
	assert_int_equal(verdict(o, &(struct fspec){ .dport = 5080, .payload = INV }), XDP_PASS);
	assert_int_equal(verdict(o, &(struct fspec){ .dport = 5080, .payload = "junk" }), XDP_DROP);
	assert_int_equal(verdict(o, &(struct fspec){ .dport = 5060, .payload = "junk" }), XDP_PASS);
	assert_int_equal(sxdp_counters(o->x, c), 0);
	for (int i = 0; i < NC; i++) {
		uint64_t want = i == SXDP_C_INVITE || i == SXDP_C_NON_SIP ||
				i == SXDP_C_DROP_NON_SIP || i == SXDP_C_OTHER;

		if (c[i] != want)
			fail_msg("counter %s: %llu, expected %llu", sxdp_counter_name((unsigned)i),
				 (unsigned long long)c[i], (unsigned long long)want);
	}
	assert_int_equal(sxdp_set_role(o->x, true, NULL, NULL, NULL, 0), -EINVAL);
	sxdp_close(o->x);
	o->x = NULL;
	assert_false(pin_dir_exists(o->node));
	sxdp_close(NULL);

	assert_int_equal(sxdp_open(&o->x, "../etc", NULL, CFG_XDP_OFF, 0), -EINVAL);
	assert_null(o->x);
	assert_int_equal(sxdp_open(&o->x, "", NULL, CFG_XDP_OFF, 0), -EINVAL);
	assert_int_equal(sxdp_open(&o->x, o->node, "lo", CFG_XDP_OFF, 0), -EINVAL);
	assert_int_equal(sxdp_open(&o->x, o->node, "sipha-no-such-if", CFG_XDP_NATIVE, 0), -ENODEV);
	assert_null(o->x);
	assert_false(pin_dir_exists(o->node));
}

/* Pins of a crashed run are reused when they fit (its blocklist survives),
 * replaced when they do not (a pin from an older build). */
static void test_pin_reuse(void **state)
{
	struct fx *o = *state;
	struct fspec arp = { .l3 = L3_ARP, .dst = "10.99.0.100" };
	struct cfg_prefix vip = prefix(AF_INET, "10.99.0.100", 24);
	struct bpf_map_info info = { 0 };
	__u32 len = sizeof(info);
	char path[PATH_MAX];
	pid_t pid;
	int st, fd;

	/* A crashed run: active for the VIP, with a blocklist entry. */
	pid = fork();
	if (pid == 0) {
		struct sxdp *x;

		_exit(sxdp_open(&x, o->node, NULL, CFG_XDP_OFF, 0) ||
		      sxdp_block(x, "203.0.113.0/24", true) ||
		      sxdp_set_role(x, true, &vip, mac_own, mac_peer, 1 * MS));
	}
	assert_true(pid > 0);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	assert_true(pin_dir_exists(o->node));

	/* And a pin of an older shape. */
	snprintf(path, sizeof(path), "%s/%s/%s", SXDP_PIN_BASE, o->node, SXDP_NAME(SXDP_MAP_RATE));
	assert_int_equal(unlink(path), 0);
	fd = bpf_map_create(BPF_MAP_TYPE_HASH, SXDP_NAME(SXDP_MAP_RATE), 4, 8, 1, NULL);
	assert_true(fd >= 0);
	assert_int_equal(bpf_obj_pin(fd, path), 0);
	close(fd);

	assert_int_equal(sxdp_open(&o->x, o->node, NULL, CFG_XDP_OFF, 0), 0);
	o->prog_fd = sxdp_prog_fd(o->x);
	assert_int_equal(verdict(o, &(struct fspec){ .src = "203.0.113.5", .payload = INV }),
			 XDP_DROP);
	/* The dead run's role stays orphaned until this run sets its own;
	 * heartbeats alone do not revive it. */
	sleep_ms(5);
	assert_int_equal(verdict(o, &arp), XDP_DROP);
	assert_int_equal(sxdp_heartbeat(o->x), 0);
	assert_int_equal(verdict(o, &arp), XDP_DROP);
	assert_int_equal(sxdp_set_role(o->x, true, &vip, mac_own, mac_peer, 10000 * MS), 0);
	assert_int_equal(verdict(o, &arp), XDP_PASS);
	fd = bpf_obj_get(path);
	assert_true(fd >= 0);
	assert_int_equal(bpf_obj_get_info_by_fd(fd, &info, &len), 0);
	close(fd);
	assert_int_equal(info.type, BPF_MAP_TYPE_LRU_HASH);
	assert_int_equal(info.key_size, sizeof(struct sxdp_rate_key));
	sxdp_close(o->x);
	o->x = NULL;
	assert_false(pin_dir_exists(o->node));
}

/* --- attach on veth in a private network namespace ------------------------- */

struct nsfx {
	int orig_ns;
	int ifindex;
	int foreign_fd;
	char node[48];
	struct sxdp *a, *b;
};

static int ns_setup(void **state)
{
	static struct nsfx n;

	memset(&n, 0, sizeof(n));
	n.foreign_fd = -1;
	snprintf(n.node, sizeof(n.node), "test-%d-a", (int)getpid());
	n.orig_ns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (n.orig_ns < 0)
		return -1;
	if (unshare(CLONE_NEWNET)) {
		close(n.orig_ns);
		return -1;
	}
	if (system("ip link add sxt0 type veth peer name sxt1 && ip link set sxt0 up && "
		   "ip link set sxt1 up") ||
	    !(n.ifindex = (int)if_nametoindex("sxt0"))) {
		setns(n.orig_ns, CLONE_NEWNET);
		close(n.orig_ns);
		return -1;
	}
	*state = &n;
	return 0;
}

static int ns_teardown(void **state)
{
	struct nsfx *n = *state;

	sxdp_close(n->a);
	sxdp_close(n->b);
	if (n->foreign_fd >= 0) {
		bpf_xdp_detach(n->ifindex, XDP_FLAGS_DRV_MODE, NULL);
		close(n->foreign_fd);
	}
	remove_pins(n->node);
	/* Leaving the namespace destroys it and the veth pair with it. */
	setns(n->orig_ns, CLONE_NEWNET);
	close(n->orig_ns);
	return 0;
}

static void attached(int ifindex, uint32_t *drv, uint32_t *skb)
{
	LIBBPF_OPTS(bpf_xdp_query_opts, q);

	assert_int_equal(bpf_xdp_query(ifindex, 0, &q), 0);
	*drv = q.drv_prog_id;
	*skb = q.skb_prog_id;
}

static uint32_t prog_id(struct sxdp *x)
{
	struct bpf_prog_info info = { 0 };
	__u32 len = sizeof(info);

	assert_int_equal(bpf_obj_get_info_by_fd(sxdp_prog_fd(x), &info, &len), 0);
	return info.id;
}

/* A daemon that attaches and dies without cleaning up. */
static int crashed_run(const char *node, enum cfg_xdp_mode mode)
{
	pid_t pid = fork();
	int st;

	if (pid == 0) {
		struct sxdp *x;

		_exit(sxdp_open(&x, node, "sxt0", mode, 5060) ? 1 : 0);
	}
	if (pid < 0 || waitpid(pid, &st, 0) != pid)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_attach_replace(void **state)
{
	struct nsfx *n = *state;
	struct sxdp_status st;
	uint32_t drv, skb, old;
	char path[PATH_MAX];

	/* A crashed native run is replaced, in place. */
	assert_int_equal(crashed_run(n->node, CFG_XDP_NATIVE), 0);
	attached(n->ifindex, &old, &skb);
	assert_int_not_equal(old, 0);
	assert_int_equal(skb, 0);
	assert_true(pin_dir_exists(n->node));
	assert_int_equal(sxdp_open(&n->a, n->node, "sxt0", CFG_XDP_NATIVE, 5060), 0);
	attached(n->ifindex, &drv, &skb);
	assert_int_equal(drv, prog_id(n->a));
	assert_int_not_equal(drv, old);
	assert_int_equal(skb, 0);
	assert_int_equal(sxdp_pinned_status(n->node, &st), 0);
	assert_true(st.attached);
	assert_int_equal(st.mode, CFG_XDP_NATIVE);
	assert_int_equal(st.ifindex, n->ifindex);
	assert_string_equal(st.ifname, "sxt0");
	assert_int_equal(st.prog_id, drv);

	/* A second open on the same interface replaces the first ... */
	assert_int_equal(sxdp_open(&n->b, n->node, "sxt0", CFG_XDP_NATIVE, 5060), 0);
	attached(n->ifindex, &drv, &skb);
	assert_int_equal(drv, prog_id(n->b));
	assert_int_equal(skb, 0);
	/* ... and closing the replaced one leaves the new one and its pins. */
	sxdp_close(n->a);
	n->a = NULL;
	attached(n->ifindex, &drv, &skb);
	assert_int_equal(drv, prog_id(n->b));
	snprintf(path, sizeof(path), "%s/%s/%s", SXDP_PIN_BASE, n->node,
		 SXDP_NAME(SXDP_MAP_COUNTERS));
	assert_int_equal(access(path, F_OK), 0);
	sxdp_close(n->b);
	n->b = NULL;
	attached(n->ifindex, &drv, &skb);
	assert_int_equal(drv, 0);
	assert_int_equal(skb, 0);
	assert_false(pin_dir_exists(n->node));
	assert_int_equal(sxdp_pinned_status(n->node, &st), -ENOENT);

	/* A crashed generic run is removed when we come up native. */
	assert_int_equal(crashed_run(n->node, CFG_XDP_GENERIC), 0);
	attached(n->ifindex, &drv, &skb);
	assert_int_equal(drv, 0);
	assert_int_not_equal(skb, 0);
	assert_int_equal(sxdp_open(&n->a, n->node, "sxt0", CFG_XDP_NATIVE, 5060), 0);
	attached(n->ifindex, &drv, &skb);
	assert_int_equal(drv, prog_id(n->a));
	assert_int_equal(skb, 0);
	sxdp_close(n->a);
	n->a = NULL;

	/* Generic on its own. */
	assert_int_equal(sxdp_open(&n->a, n->node, "sxt0", CFG_XDP_GENERIC, 5060), 0);
	attached(n->ifindex, &drv, &skb);
	assert_int_equal(drv, 0);
	assert_int_equal(skb, prog_id(n->a));
	assert_int_equal(sxdp_pinned_status(n->node, &st), 0);
	assert_true(st.attached);
	assert_int_equal(st.mode, CFG_XDP_GENERIC);
	sxdp_close(n->a);
	n->a = NULL;
	attached(n->ifindex, &drv, &skb);
	assert_int_equal(drv, 0);
	assert_int_equal(skb, 0);
	assert_false(pin_dir_exists(n->node));
}

/* Somebody else's XDP program is not ours to replace. */
static void test_attach_foreign(void **state)
{
	struct nsfx *n = *state;
	struct bpf_insn pass[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = XDP_PASS },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	uint32_t drv, skb, foreign;
	LIBBPF_OPTS(bpf_xdp_query_opts, q);

	n->foreign_fd = bpf_prog_load(BPF_PROG_TYPE_XDP, "foreign", "GPL", pass, 2, NULL);
	assert_true(n->foreign_fd >= 0);
	assert_int_equal(bpf_xdp_attach(n->ifindex, n->foreign_fd, XDP_FLAGS_DRV_MODE, NULL), 0);
	attached(n->ifindex, &foreign, &skb);
	assert_int_equal(sxdp_open(&n->a, n->node, "sxt0", CFG_XDP_NATIVE, 5060), -EBUSY);
	assert_null(n->a);
	assert_int_equal(sxdp_open(&n->a, n->node, "sxt0", CFG_XDP_GENERIC, 5060), -EBUSY);
	attached(n->ifindex, &drv, &skb);
	assert_int_equal(drv, foreign);
	assert_int_equal(skb, 0);
	assert_false(pin_dir_exists(n->node));
}

static int group_setup(void **state)
{
	int err;

	log_set_level(LOG_WARN);
	snprintf(fx.node, sizeof(fx.node), "test-%d", (int)getpid());
	err = sxdp_open(&fx.x, fx.node, NULL, CFG_XDP_OFF, 5060);
	if (err) {
		fprintf(stderr, "sxdp_open: %s\n", strerror(-err));
		return -1;
	}
	fx.prog_fd = sxdp_prog_fd(fx.x);
	*state = &fx;
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	sxdp_close(fx.x);
	fx.x = NULL;
	if (pin_dir_exists(fx.node)) {
		fprintf(stderr, "pins of %s left after close\n", fx.node);
		remove_pins(fx.node);
		return -1;
	}
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_classify),
		cmocka_unit_test(test_roles),
		cmocka_unit_test(test_heartbeat),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_blocklist),
		cmocka_unit_test(test_ratelimit_invite),
		cmocka_unit_test(test_ratelimit_register),
		cmocka_unit_test(test_counters),
		cmocka_unit_test(test_status_unattached),
		cmocka_unit_test_setup_teardown(test_open_close, other_setup, other_teardown),
		cmocka_unit_test_setup_teardown(test_pin_reuse, other_setup, other_teardown),
		cmocka_unit_test_setup_teardown(test_attach_replace, ns_setup, ns_teardown),
		cmocka_unit_test_setup_teardown(test_attach_foreign, ns_setup, ns_teardown),
	};

	if (geteuid() != 0) {
		fprintf(stderr, "test_xdp: needs root\n");
		return 77;
	}
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
