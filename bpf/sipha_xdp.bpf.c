/* sipha's XDP fast path: classify and count SIP, drop what must not reach the
 * daemon (blocklisted sources, floods of initial INVITEs and REGISTERs,
 * non-SIP datagrams on the SIP port), and steer SIP for the VIP to the active
 * node's MAC when this node must not serve it (standby, or an active whose
 * daemon stopped stamping its heartbeat: the dead man's switch).
 *
 * Parsing scope: Ethernet with up to two VLAN tags (802.1Q / 802.1ad), IPv4
 * with options, IPv6 with up to SXDP_V6_EXT hop-by-hop / routing /
 * destination-options headers (anything else after the fixed header, AH and
 * ESP included, is "other"), UDP and TCP.  The SIP payload is looked at
 * through bpf_xdp_load_bytes() into a per-CPU buffer, so the scanners index a
 * fixed-size map value instead of chasing packet bounds.
 *
 * Order for an IP packet: blocklist (source prefix) first, then fragments
 * (passed untouched: no ports to judge), then the transport.  For UDP to a SIP
 * port: classify (a method, "SIP/2.0 " response, keep-alive, a request with
 * an unknown method, or junk), drop junk, steer what is for the VIP when this
 * node must not serve it, then rate-limit initial INVITEs and REGISTERs.
 * Steered packets are not rate-limited here: the node that receives them does
 * it.  Fragmented SIP is never steered.
 *
 * Counting beyond the contract names: "keepalive" (CRLF, empty or STUN
 * datagrams on the SIP port, passed) and "unknown_method" (token, space,
 * sip:/sips: URI; passed so the daemon can answer 501/405).  "other" is
 * everything that is not for a SIP port.  A classified packet counts its
 * class and, when it is dropped or steered, the reason too; a blocklisted
 * one counts only drop_blocklist. */
#include <stdbool.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "sipha_kern_user.h"

/* How much of a UDP payload is copied to classify it (method token, response
 * line, keep-alive, the shape of an unknown method). */
#define SXDP_HEAD_LEN 64
/* How much of an INVITE is scanned for a To-tag; a To header further in is
 * not seen and the INVITE counts as initial. */
#define SXDP_SCAN_LEN 1024
#define SXDP_MAX_TOKEN 32 /* longest unknown method name recognised */
#define SXDP_V6_EXT 4 /* IPv6 extension headers walked */

#define NEXTHDR_HOP 0
#define NEXTHDR_ROUTING 43
#define NEXTHDR_FRAGMENT 44
#define NEXTHDR_ICMP 58
#define NEXTHDR_DEST 60
#define ICMPV6_NS 135
#define ARPOP_REQ 1
#define ARPHRD_ETH 1
#define IPV4_MF 0x2000
#define IPV4_OFFSET 0x1fff

struct vlan_hdr {
	__be16 tci;
	__be16 encap_proto;
};

/* ARP for IPv4 over Ethernet, the only kind that can ask for the VIP. */
struct arp_eth4 {
	__be16 hrd;
	__be16 pro;
	__u8 hln;
	__u8 pln;
	__be16 op;
	__u8 sha[ETH_ALEN];
	__u8 spa[4];
	__u8 tha[ETH_ALEN];
	__u8 tpa[4];
} __attribute__((packed));

/* Neighbour solicitation: the IPv6 way of asking for the VIP. */
struct icmp6_ns {
	__u8 type;
	__u8 code;
	__be16 csum;
	__be32 reserved;
	__u32 target[4];
};

struct sxdp_buf {
	__u8 b[SXDP_SCAN_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SXDP_NCOUNTERS);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} SXDP_MAP_COUNTERS SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sxdp_config);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} SXDP_MAP_CONFIG SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sxdp_role);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} SXDP_MAP_ROLE SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, SXDP_BLOCK_MAX);
	__type(key, struct sxdp_lpm4);
	__type(value, __u32);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} SXDP_MAP_BLOCK4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, SXDP_BLOCK_MAX);
	__type(key, struct sxdp_lpm6);
	__type(value, __u32);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} SXDP_MAP_BLOCK6 SEC(".maps");

/* LRU: a flood from many sources evicts the oldest buckets instead of
 * growing without bound or refusing new sources. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SXDP_RATE_MAX);
	__type(key, struct sxdp_rate_key);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} SXDP_MAP_RATE SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sxdp_buf);
} SXDP_MAP_SCRATCH SEC(".maps");

/* What the L3 parsers hand to the L4 step. */
struct sxdp_pkt {
	struct xdp_md *ctx;
	const struct sxdp_config *cfg;
	const struct sxdp_role *role;
	__u32 l4_off;
	__u8 l4_proto;
	bool to_vip;
	struct sxdp_rate_key src;
};

static __always_inline void count(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&SXDP_MAP_COUNTERS, &idx);

	if (v)
		*v += 1;
}

/* The dead man's switch: an active node whose daemon stopped stamping. */
static __always_inline bool orphaned(const struct sxdp_role *r)
{
	__u64 now;

	if (r->role != SXDP_ROLE_ACTIVE || !r->heartbeat_ns || !r->timeout_ns)
		return false;
	now = bpf_ktime_get_ns();
	return now > r->heartbeat_ns && now - r->heartbeat_ns > r->timeout_ns;
}

/* No UDP socket for the VIP's SIP port: the daemon's process is gone.
 * Asked only for ARP and neighbour solicitations for the VIP, which are
 * rare, so the lookup costs the SIP path nothing. */
static __always_inline bool sock_gone(struct xdp_md *ctx, const struct sxdp_role *r, bool v6)
{
	struct bpf_sock_tuple t = {};
	struct bpf_sock *sk;

	if (r->role != SXDP_ROLE_ACTIVE || !(r->flags & SXDP_ROLE_F_SOCK))
		return false;
	if (v6) {
		__builtin_memcpy(t.ipv6.daddr, r->vip6, sizeof(t.ipv6.daddr));
		t.ipv6.dport = r->sip_port;
		sk = bpf_sk_lookup_udp(ctx, &t, sizeof(t.ipv6), BPF_F_CURRENT_NETNS, 0);
	} else {
		t.ipv4.daddr = r->vip4;
		t.ipv4.dport = r->sip_port;
		sk = bpf_sk_lookup_udp(ctx, &t, sizeof(t.ipv4), BPF_F_CURRENT_NETNS, 0);
	}
	if (!sk)
		return true;
	bpf_sk_release(sk);
	return false;
}

static __always_inline bool must_steer(const struct sxdp_role *r)
{
	if (!(r->flags & SXDP_ROLE_F_PEER))
		return false;
	return r->role == SXDP_ROLE_STANDBY || orphaned(r);
}

static __always_inline int steer(struct xdp_md *ctx, const struct sxdp_role *r)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	/* A frame the peer steered to us goes no further: while both nodes
	 * think the other should serve (a takeover in progress), sending it
	 * back would bounce it between the two until one turns active. */
	if (eth->h_source[0] == r->peer_mac[0] && eth->h_source[1] == r->peer_mac[1] &&
	    eth->h_source[2] == r->peer_mac[2] && eth->h_source[3] == r->peer_mac[3] &&
	    eth->h_source[4] == r->peer_mac[4] && eth->h_source[5] == r->peer_mac[5]) {
		count(SXDP_C_STEER_BOUNCE);
		return XDP_PASS;
	}
	__builtin_memcpy(eth->h_dest, r->peer_mac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, r->own_mac, ETH_ALEN);
	count(SXDP_C_STEERED);
	return XDP_TX;
}

static __always_inline bool is_sip_port(const struct sxdp_config *cfg, __be16 port)
{
	__u16 p = bpf_ntohs(port);
	bool any = false;

#pragma unroll
	for (int i = 0; i < SXDP_MAX_PORTS; i++) {
		if (!cfg->sip_ports[i])
			continue;
		any = true;
		if (cfg->sip_ports[i] == p)
			return true;
	}
	return !any && p == SXDP_DEFAULT_SIP_PORT;
}

/* GCRA: pass while the theoretical arrival time is at most tolerance ahead
 * of now.  The read-modify-write is not atomic across CPUs; a race lets a
 * packet or two more through, which is not worth a lock per packet. */
static __always_inline bool rate_ok(const struct sxdp_limit *lim, struct sxdp_rate_key *key)
{
	__u64 now, tat, *st;

	if (!lim->interval_ns)
		return true;
	now = bpf_ktime_get_ns();
	st = bpf_map_lookup_elem(&SXDP_MAP_RATE, key);
	tat = st && *st > now ? *st : now;
	if (tat - now > lim->tolerance_ns)
		return false;
	tat += lim->interval_ns;
	if (st)
		*st = tat;
	else
		bpf_map_update_elem(&SXDP_MAP_RATE, key, &tat, BPF_ANY);
	return true;
}

/* Whether the N bytes at B start with the string literal S.  A macro, so the
 * loop has a constant trip count and unrolls into compares with immediates. */
#define LIT(b, n, s)                                                           \
	({                                                                     \
		bool ok_ = (n) >= sizeof(s) - 1;                               \
		_Pragma("unroll") for (__u32 i_ = 0; i_ < sizeof(s) - 1; i_++) \
		{                                                              \
			ok_ = ok_ && (b)[i_] == (__u8)(s)[i_];                 \
		}                                                              \
		ok_;                                                           \
	})

/* C equals the lower-case letter L in either case; exact for letters only,
 * and free of branches, which keeps the verifier's path count down. */
#define CI_EQ(c, l) (((c) | 0x20) == (l))

static __always_inline bool is_ws(__u8 c)
{
	return c == ' ' || c == '\t';
}

/* RFC 3261 token characters as a 128-bit set, looked up without branches. */
#define TOK_BIT(c) (1ull << ((c)&63))
#define TOK_LO                                                                       \
	(TOK_BIT('!') | TOK_BIT('%') | TOK_BIT('\'') | TOK_BIT('*') | TOK_BIT('+') | \
	 TOK_BIT('-') | TOK_BIT('.') | (0x3ffull << 48) /* 0-9 */)
#define TOK_HI                                                                        \
	(TOK_BIT('_') | TOK_BIT('`') | TOK_BIT('~') | (0x3ffffffull << 1) /* A-Z */ | \
	 (0x3ffffffull << 33) /* a-z */)

static __always_inline __u64 is_token(__u8 c)
{
	__u64 hi = -(__u64)((c >> 6) & 1);
	__u64 set = TOK_LO ^ ((TOK_LO ^ TOK_HI) & hi);

	return (set >> (c & 63)) & 1 & ~(__u64)(c >> 7);
}

/* "SIP/2.0 ": the version is case-insensitive (RFC 3261 §7.1). */
static __always_inline bool is_response(const __u8 *b, __u32 n)
{
	return n >= 8 && CI_EQ(b[0], 's') && CI_EQ(b[1], 'i') && CI_EQ(b[2], 'p') && b[3] == '/' &&
	       b[4] == '2' && b[5] == '.' && b[6] == '0' && b[7] == ' ';
}

/* CRLF keep-alives (RFC 5626 §3.5.1) and STUN binding keep-alives: the
 * daemon decides what to answer, they are not garbage. */
static __always_inline bool is_keepalive(const __u8 *b, __u32 n, __u32 plen)
{
	if (plen >= 20 && !(b[0] & 0xc0) && b[4] == 0x21 && b[5] == 0x12 && b[6] == 0xa4 &&
	    b[7] == 0x42)
		return true;
	if (plen > n)
		return false;
	for (__u32 i = 0; i < SXDP_HEAD_LEN; i++) {
		if (i >= n)
			break;
		if (b[i] != '\r' && b[i] != '\n')
			return false;
	}
	return true;
}

/* A method the program does not know, in the shape of a request line:
 * token, one space, a sip: or sips: Request-URI.  Global (verified once) for
 * the same reason as sxdp_classify(). */
__noinline bool sxdp_unknown_request(const struct sxdp_buf *buf, __u32 n)
{
	const __u8 *b;
	__u32 i;

	if (!buf)
		return false;
	b = buf->b;
	for (i = 0; i <= SXDP_MAX_TOKEN; i++) {
		if (i >= n)
			return false;
		if (b[i] == ' ')
			break;
		if (!is_token(b[i]))
			return false;
	}
	if (i == 0 || i > SXDP_MAX_TOKEN || i + 6 > n)
		return false;
	if (!CI_EQ(b[i + 1], 's') || !CI_EQ(b[i + 2], 'i') || !CI_EQ(b[i + 3], 'p'))
		return false;
	return b[i + 4] == ':' || (CI_EQ(b[i + 4], 's') && b[i + 5] == ':');
}

/* Class of a UDP payload: a method's counter, RESPONSE, KEEPALIVE,
 * UNKNOWN_METHOD or NON_SIP.  BUF holds the first N bytes of PLEN.  A global
 * function, so the verifier checks it once instead of once per path that
 * reaches it. */
__noinline __u32 sxdp_classify(const struct sxdp_buf *buf, __u32 n, __u32 plen)
{
	const __u8 *b;

	if (!buf)
		return SXDP_C_NON_SIP;
	b = buf->b;
	if (n > SXDP_HEAD_LEN)
		n = SXDP_HEAD_LEN;
	if (n == 0)
		return SXDP_C_KEEPALIVE;
	switch (b[0]) {
	case 'A':
		if (LIT(b, n, "ACK "))
			return SXDP_C_ACK;
		break;
	case 'B':
		if (LIT(b, n, "BYE "))
			return SXDP_C_BYE;
		break;
	case 'C':
		if (LIT(b, n, "CANCEL "))
			return SXDP_C_CANCEL;
		break;
	case 'I':
		if (LIT(b, n, "INVITE "))
			return SXDP_C_INVITE;
		if (LIT(b, n, "INFO "))
			return SXDP_C_INFO;
		break;
	case 'M':
		if (LIT(b, n, "MESSAGE "))
			return SXDP_C_MESSAGE;
		break;
	case 'N':
		if (LIT(b, n, "NOTIFY "))
			return SXDP_C_NOTIFY;
		break;
	case 'O':
		if (LIT(b, n, "OPTIONS "))
			return SXDP_C_OPTIONS;
		break;
	case 'P':
		if (LIT(b, n, "PRACK "))
			return SXDP_C_PRACK;
		if (LIT(b, n, "PUBLISH "))
			return SXDP_C_PUBLISH;
		break;
	case 'R':
		if (LIT(b, n, "REGISTER "))
			return SXDP_C_REGISTER;
		if (LIT(b, n, "REFER "))
			return SXDP_C_REFER;
		break;
	case 'S':
		if (LIT(b, n, "SUBSCRIBE "))
			return SXDP_C_SUBSCRIBE;
		break;
	case 'U':
		if (LIT(b, n, "UPDATE "))
			return SXDP_C_UPDATE;
		break;
	}
	if (is_response(b, n))
		return SXDP_C_RESPONSE;
	if (is_keepalive(b, n, plen))
		return SXDP_C_KEEPALIVE;
	if (sxdp_unknown_request(buf, n))
		return SXDP_C_UNKNOWN_METHOD;
	return SXDP_C_NON_SIP;
}

enum to_state {
	TS_LINE, /* inside a header line that is not To */
	TS_BOL, /* at the start of a header line */
	TS_T, /* "t" or "T" at the start of a line */
	TS_TO, /* "To" */
	TS_NAME_WS, /* whitespace between the name and ':' */
	TS_VALUE, /* inside the To value, outside quotes and <> */
	TS_QUOTED,
	TS_QESC,
	TS_ANGLE,
	TS_SEMI, /* after ';' */
	TS_TAG_T,
	TS_TAG_A,
	TS_TAG_G, /* "tag", then optional whitespace, then '=' */
};

/* One byte of the To-tag scan: -1 to go on, else the answer (1: tagged). */
static __always_inline int to_step(__u32 *st, __u8 c)
{
	switch (*st) {
	case TS_LINE:
		if (c == '\n')
			*st = TS_BOL;
		return -1;
	case TS_BOL:
		if (c == '\r' || c == '\n')
			return 0; /* end of the headers */
		*st = CI_EQ(c, 't') ? TS_T : TS_LINE;
		return -1;
	case TS_T:
		if (CI_EQ(c, 'o')) {
			*st = TS_TO;
			return -1;
		}
		/* fallthrough */
	case TS_TO:
	case TS_NAME_WS:
		if (c == ':')
			*st = TS_VALUE;
		else if (is_ws(c))
			*st = TS_NAME_WS;
		else
			*st = c == '\n' ? TS_BOL : TS_LINE;
		return -1;
	case TS_QUOTED:
		if (c == '"')
			*st = TS_VALUE;
		else if (c == '\\')
			*st = TS_QESC;
		else if (c == '\n')
			return 0;
		return -1;
	case TS_QESC:
		*st = TS_QUOTED;
		return -1;
	case TS_ANGLE:
		if (c == '>')
			*st = TS_VALUE;
		else if (c == '\n')
			return 0;
		return -1;
	case TS_SEMI:
		if (is_ws(c))
			return -1;
		if (CI_EQ(c, 't')) {
			*st = TS_TAG_T;
			return -1;
		}
		break;
	case TS_TAG_T:
		if (CI_EQ(c, 'a')) {
			*st = TS_TAG_A;
			return -1;
		}
		break;
	case TS_TAG_A:
		if (CI_EQ(c, 'g')) {
			*st = TS_TAG_G;
			return -1;
		}
		break;
	case TS_TAG_G:
		if (c == '=')
			return 1;
		if (is_ws(c))
			return -1;
		break;
	}
	/* TS_VALUE, or a parameter that turned out not to be "tag". */
	if (c == '\n')
		return 0;
	if (c == ';')
		*st = TS_SEMI;
	else if (c == '"')
		*st = TS_QUOTED;
	else if (c == '<')
		*st = TS_ANGLE;
	else
		*st = TS_VALUE;
	return -1;
}

struct to_scan {
	const __u8 *b;
	__u32 n;
	__u32 st;
	int tagged;
};

static long to_scan_cb(__u32 i, void *arg)
{
	struct to_scan *s = arg;
	int r;

	if (i >= s->n)
		return 1;
	r = to_step(&s->st, s->b[i & (SXDP_SCAN_LEN - 1)]);
	if (r < 0)
		return 0;
	s->tagged = r;
	return 1;
}

/* Whether the To header (long or compact form) of the N bytes in B carries a
 * tag parameter, i.e. the INVITE is inside a dialog.  A To header that is
 * folded over lines or lies beyond the scanned bytes is not seen: the INVITE
 * then counts as initial, which errs on the side of limiting.  bpf_loop()
 * because the verifier would walk an open-coded byte loop once per byte. */
static __always_inline bool has_to_tag(const __u8 *b, __u32 n)
{
	struct to_scan s = { .b = b, .n = n, .st = TS_LINE };

	bpf_loop(SXDP_SCAN_LEN, to_scan_cb, &s, 0);
	return s.tagged > 0;
}

/* Copies LEN (1..SXDP_SCAN_LEN) payload bytes at OFF into the scratch
 * buffer; NULL when that cannot be done. */
static __always_inline struct sxdp_buf *load(struct xdp_md *ctx, __u32 off, __u32 len)
{
	__u32 k0 = SXDP_KEY0;
	struct sxdp_buf *buf = bpf_map_lookup_elem(&SXDP_MAP_SCRATCH, &k0);

	if (!buf || len == 0 || len > SXDP_SCAN_LEN)
		return NULL;
	if (bpf_xdp_load_bytes(ctx, off, buf->b, len))
		return NULL;
	return buf;
}

static __always_inline int do_udp_sip(struct sxdp_pkt *p, __u32 poff, __u32 plen)
{
	__u32 n = plen < SXDP_HEAD_LEN ? plen : SXDP_HEAD_LEN;
	struct sxdp_buf *buf;
	__u32 cls;

	if (n) {
		buf = load(p->ctx, poff, n);
		if (!buf) {
			/* Cannot look: let the daemon judge rather than drop. */
			count(SXDP_C_OTHER);
			return XDP_PASS;
		}
		cls = sxdp_classify(buf, n, plen);
	} else {
		cls = SXDP_C_KEEPALIVE;
	}
	count(cls);
	if (cls == SXDP_C_NON_SIP) {
		count(SXDP_C_DROP_NON_SIP);
		return XDP_DROP;
	}
	/* Steered packets are limited by the node that receives them. */
	if (p->to_vip && must_steer(p->role))
		return steer(p->ctx, p->role);

	if (cls == SXDP_C_INVITE && p->cfg->limit[SXDP_LIMIT_INVITE].interval_ns) {
		n = plen < SXDP_SCAN_LEN ? plen : SXDP_SCAN_LEN;
		buf = load(p->ctx, poff, n);
		if (buf && has_to_tag(buf->b, n))
			return XDP_PASS;
		p->src.kind = SXDP_LIMIT_INVITE;
		if (!rate_ok(&p->cfg->limit[SXDP_LIMIT_INVITE], &p->src))
			goto limited;
	} else if (cls == SXDP_C_REGISTER) {
		p->src.kind = SXDP_LIMIT_REGISTER;
		if (!rate_ok(&p->cfg->limit[SXDP_LIMIT_REGISTER], &p->src))
			goto limited;
	}
	return XDP_PASS;
limited:
	count(SXDP_C_DROP_RATELIMIT);
	return XDP_DROP;
}

/* Past any L4 header this program parses: Ethernet, VLAN tags, IPv6 and
 * its extension headers fit well under it.  A power of two less one. */
#define SXDP_L4_OFF_MAX 1023

static __always_inline int do_l4(struct sxdp_pkt *p)
{
	void *data = (void *)(long)p->ctx->data;
	void *data_end = (void *)(long)p->ctx->data_end;
	struct udphdr *uh;
	struct tcphdr *th;
	__u32 ulen, avail, off = p->l4_off;

	/* Bounded for the verifier, which tracks a packet pointer's range only
	 * while its variable offset is known to be small. */
	if (off > SXDP_L4_OFF_MAX)
		goto other;
	/* The bound on the very register used below: clang would drop a mask
	 * it can prove redundant, and the verifier does not see the test. */
	asm volatile("" : "+r"(off));
	off &= SXDP_L4_OFF_MAX;
	if (p->l4_proto == IPPROTO_TCP) {
		th = data + off;
		/* Only the ports are needed. */
		if ((void *)th + 4 > data_end || !is_sip_port(p->cfg, th->dest))
			goto other;
		count(SXDP_C_TCP);
		return XDP_PASS;
	}
	if (p->l4_proto != IPPROTO_UDP)
		goto other;
	uh = data + off;
	if ((void *)(uh + 1) > data_end || !is_sip_port(p->cfg, uh->dest))
		goto other;
	ulen = bpf_ntohs(uh->len);
	avail = data_end - (void *)(uh + 1);
	/* A datagram longer than its frame, or shorter than its header, cannot
	 * be SIP (and the stack would drop it anyway). */
	if (ulen < sizeof(*uh) || ulen - sizeof(*uh) > avail) {
		count(SXDP_C_NON_SIP);
		count(SXDP_C_DROP_NON_SIP);
		return XDP_DROP;
	}
	return do_udp_sip(p, off + sizeof(*uh), ulen - sizeof(*uh));
other:
	count(SXDP_C_OTHER);
	return XDP_PASS;
}

static __always_inline int do_arp(struct xdp_md *ctx, const struct sxdp_role *r, __u32 off)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct arp_eth4 *arp = data + off;
	__u32 tpa;

	if ((void *)(arp + 1) > data_end || !(r->flags & SXDP_ROLE_F_VIP4))
		goto pass;
	if (arp->op != bpf_htons(ARPOP_REQ) || arp->hrd != bpf_htons(ARPHRD_ETH) ||
	    arp->pro != bpf_htons(ETH_P_IP))
		goto pass;
	__builtin_memcpy(&tpa, arp->tpa, sizeof(tpa));
	if (tpa != r->vip4 || !(orphaned(r) || sock_gone(ctx, r, false)))
		goto pass;
	count(SXDP_C_ORPHAN_ARP_DROP);
	return XDP_DROP;
pass:
	count(SXDP_C_OTHER);
	return XDP_PASS;
}

static __always_inline int do_ipv4(struct sxdp_pkt *p, __u32 off)
{
	void *data = (void *)(long)p->ctx->data;
	void *data_end = (void *)(long)p->ctx->data_end;
	struct iphdr *iph = data + off;
	struct sxdp_lpm4 key;
	__u32 ihl;

	if ((void *)(iph + 1) > data_end)
		goto other;
	key.prefixlen = 32;
	__builtin_memcpy(key.addr, &iph->saddr, 4);
	if (bpf_map_lookup_elem(&SXDP_MAP_BLOCK4, &key)) {
		count(SXDP_C_DROP_BLOCKLIST);
		return XDP_DROP;
	}
	ihl = iph->ihl * 4;
	if (iph->version != 4 || ihl < sizeof(*iph))
		goto other;
	if (iph->frag_off & bpf_htons(IPV4_MF | IPV4_OFFSET)) {
		count(SXDP_C_FRAGMENT);
		return XDP_PASS;
	}
	p->to_vip = (p->role->flags & SXDP_ROLE_F_VIP4) && iph->daddr == p->role->vip4;
	p->src.addr[10] = 0xff;
	p->src.addr[11] = 0xff;
	__builtin_memcpy(&p->src.addr[12], &iph->saddr, 4);
	p->l4_off = off + ihl;
	p->l4_proto = iph->protocol;
	return do_l4(p);
other:
	count(SXDP_C_OTHER);
	return XDP_PASS;
}

static __always_inline bool addr6_eq(const __u32 *a, const __u32 *b)
{
	return a[0] == b[0] && a[1] == b[1] && a[2] == b[2] && a[3] == b[3];
}

/* The IPv6 twin of do_arp(): a neighbour solicitation for the VIP. */
static __always_inline bool orphan_ns(struct sxdp_pkt *p)
{
	void *data = (void *)(long)p->ctx->data;
	void *data_end = (void *)(long)p->ctx->data_end;
	struct icmp6_ns *ns = data + p->l4_off;

	if ((void *)(ns + 1) > data_end || ns->type != ICMPV6_NS || ns->code != 0)
		return false;
	if (!(p->role->flags & SXDP_ROLE_F_VIP6) || !addr6_eq(ns->target, p->role->vip6))
		return false;
	return orphaned(p->role) || sock_gone(p->ctx, p->role, true);
}

static __always_inline int do_ipv6(struct sxdp_pkt *p, __u32 off)
{
	void *data = (void *)(long)p->ctx->data;
	void *data_end = (void *)(long)p->ctx->data_end;
	struct ipv6hdr *ip6h = data + off;
	struct sxdp_lpm6 key;
	__u8 *ext;
	__u8 nh;

	if ((void *)(ip6h + 1) > data_end)
		goto other;
	key.prefixlen = 128;
	__builtin_memcpy(key.addr, &ip6h->saddr, 16);
	if (bpf_map_lookup_elem(&SXDP_MAP_BLOCK6, &key)) {
		count(SXDP_C_DROP_BLOCKLIST);
		return XDP_DROP;
	}
	if (ip6h->version != 6)
		goto other;
	p->to_vip = (p->role->flags & SXDP_ROLE_F_VIP6) &&
		    addr6_eq(ip6h->daddr.in6_u.u6_addr32, p->role->vip6);
	__builtin_memcpy(p->src.addr, &ip6h->saddr, 8);
	nh = ip6h->nexthdr;
	off += sizeof(*ip6h);
#pragma unroll
	for (int i = 0; i < SXDP_V6_EXT; i++) {
		if (nh != NEXTHDR_HOP && nh != NEXTHDR_ROUTING && nh != NEXTHDR_DEST)
			break;
		ext = data + off;
		if ((void *)ext + 2 > data_end)
			goto other;
		nh = ext[0];
		off += (ext[1] + 1) * 8;
	}
	if (nh == NEXTHDR_FRAGMENT) {
		count(SXDP_C_FRAGMENT);
		return XDP_PASS;
	}
	p->l4_off = off;
	p->l4_proto = nh;
	if (nh == NEXTHDR_ICMP && orphan_ns(p)) {
		count(SXDP_C_ORPHAN_ARP_DROP);
		return XDP_DROP;
	}
	return do_l4(p);
other:
	count(SXDP_C_OTHER);
	return XDP_PASS;
}

SEC("xdp")
int sipha_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct sxdp_pkt p = { .ctx = ctx };
	__u32 k0 = SXDP_KEY0;
	__u32 off = sizeof(*eth);
	struct vlan_hdr *vh;
	__be16 proto;

	p.cfg = bpf_map_lookup_elem(&SXDP_MAP_CONFIG, &k0);
	p.role = bpf_map_lookup_elem(&SXDP_MAP_ROLE, &k0);
	if (!p.cfg || !p.role)
		return XDP_PASS;
	if ((void *)(eth + 1) > data_end)
		goto other;
	proto = eth->h_proto;
#pragma unroll
	for (int i = 0; i < 2; i++) {
		if (proto != bpf_htons(ETH_P_8021Q) && proto != bpf_htons(ETH_P_8021AD))
			break;
		vh = data + off;
		if ((void *)(vh + 1) > data_end)
			goto other;
		proto = vh->encap_proto;
		off += sizeof(*vh);
	}
	if (proto == bpf_htons(ETH_P_IP))
		return do_ipv4(&p, off);
	if (proto == bpf_htons(ETH_P_IPV6))
		return do_ipv6(&p, off);
	if (proto == bpf_htons(ETH_P_ARP))
		return do_arp(ctx, p.role, off);
other:
	count(SXDP_C_OTHER);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
