/* What the XDP program and user space share: map names, map keys and values,
 * counter ids.  Only fixed-width <linux/types.h> types, so both clang -target
 * bpf and gcc see the same layout; every struct is written once, here.
 * Multi-byte addresses are in network order, everything else in host order. */
#ifndef SIPHA_KERN_USER_H
#define SIPHA_KERN_USER_H

#include <linux/types.h>

/* Map names.  They are identifiers, not strings, because the BPF side uses
 * them as the map variables; SXDP_NAME() spells them for user space.  They are
 * also the pin file names under the pin directory (LIBBPF_PIN_BY_NAME), and
 * kernel object names are limited to 15 characters. */
#define SXDP_MAP_COUNTERS sxdp_counters /* per-CPU __u64[SXDP_NCOUNTERS] */
#define SXDP_MAP_CONFIG sxdp_config /* one struct sxdp_config */
#define SXDP_MAP_ROLE sxdp_role /* one struct sxdp_role */
#define SXDP_MAP_BLOCK4 sxdp_block4 /* LPM trie: struct sxdp_lpm4 -> __u32 */
#define SXDP_MAP_BLOCK6 sxdp_block6 /* LPM trie: struct sxdp_lpm6 -> __u32 */
#define SXDP_MAP_RATE sxdp_rate /* LRU hash: struct sxdp_rate_key -> __u64 */
#define SXDP_MAP_SCRATCH sxdp_scratch /* per-CPU payload copy, not pinned */

#define SXDP__STR(x) #x
#define SXDP_NAME(x) SXDP__STR(x)

#define SXDP_PROG_NAME "sipha_xdp"
#define SXDP_PIN_BASE "/sys/fs/bpf/sipha" /* pins live in SXDP_PIN_BASE/<node-id>/ */

#define SXDP_DEFAULT_SIP_PORT 5060
#define SXDP_MAX_PORTS 4
#define SXDP_BLOCK_MAX 16384
#define SXDP_RATE_MAX 65536

/* The counters, in index order.  The second column is the name user space
 * shows (siphactl xdp, metrics): a contract (docs/ARCHITECTURE.md §5), so only append.
 * The SIP methods come first so that a method's class id is its counter. */
#define SXDP_COUNTER_LIST(X)                \
	X(INVITE, invite)                   \
	X(ACK, ack)                         \
	X(BYE, bye)                         \
	X(CANCEL, cancel)                   \
	X(REGISTER, register)               \
	X(OPTIONS, options)                 \
	X(SUBSCRIBE, subscribe)             \
	X(NOTIFY, notify)                   \
	X(REFER, refer)                     \
	X(INFO, info)                       \
	X(UPDATE, update)                   \
	X(PRACK, prack)                     \
	X(MESSAGE, message)                 \
	X(PUBLISH, publish)                 \
	X(RESPONSE, response)               \
	X(NON_SIP, non_sip)                 \
	X(FRAGMENT, fragment)               \
	X(TCP, tcp)                         \
	X(OTHER, other)                     \
	X(DROP_BLOCKLIST, drop_blocklist)   \
	X(DROP_RATELIMIT, drop_ratelimit)   \
	X(DROP_NON_SIP, drop_non_sip)       \
	X(STEERED, steered)                 \
	X(ORPHAN_ARP_DROP, orphan_arp_drop) \
	X(KEEPALIVE, keepalive)             \
	X(UNKNOWN_METHOD, unknown_method)   \
	X(STEER_BOUNCE, steer_bounce)

#define SXDP__ENUM(id, name) SXDP_C_##id,
enum sxdp_counter {
	SXDP_COUNTER_LIST(SXDP__ENUM) SXDP_NCOUNTERS
};
#undef SXDP__ENUM

/* Spelling for user space: static const char *const n[] = { SXDP_COUNTER_NAMES };
 * (a macro, not an array here, so that no includer carries an unused table). */
#define SXDP__NAME(id, name) #name,
#define SXDP_COUNTER_NAMES SXDP_COUNTER_LIST(SXDP__NAME)

/* Every single-entry map has key 0. */
#define SXDP_KEY0 0

/* Rate limits are kept as GCRA (a token bucket stored as one "theoretical
 * arrival time" per source): user space turns "rate per second, burst" into
 * interval = 1e9 / rate and tolerance = (burst - 1) * interval, so the
 * program needs no division.  interval 0 = no limit. */
struct sxdp_limit {
	__u64 interval_ns;
	__u64 tolerance_ns;
};

enum sxdp_limit_kind {
	SXDP_LIMIT_INVITE,
	SXDP_LIMIT_REGISTER,
	SXDP_NLIMITS,
};

struct sxdp_config {
	__u16 sip_ports[SXDP_MAX_PORTS]; /* UDP/TCP SIP ports; 0 = unused; all 0 = 5060 */
	struct sxdp_limit limit[SXDP_NLIMITS];
	/* Not read by the program: what siphactl shows without the daemon. */
	__u32 invite_rate;
	__u32 register_rate;
	__u32 burst;
	__u32 ifindex; /* 0: loaded but not attached */
	__u32 attach_mode; /* enum cfg_xdp_mode */
	__u32 prog_id;
};

enum sxdp_role_kind {
	SXDP_ROLE_STANDBY = 0,
	SXDP_ROLE_ACTIVE = 1,
};

#define SXDP_ROLE_F_VIP4 (1u << 0) /* vip4 is valid */
#define SXDP_ROLE_F_VIP6 (1u << 1) /* vip6 is valid */
#define SXDP_ROLE_F_PEER (1u << 2) /* peer_mac is valid: steering possible */
/* The daemon's SIP socket (UDP, VIP or wildcard, sip_port) is its proof of
 * life too: when the process dies its kernel closes the socket at once, and
 * an active node with no such socket is orphaned without waiting for the
 * stamp to age (docs/HA-PROTOCOL.md, "A dead process"). */
#define SXDP_ROLE_F_SOCK (1u << 3)

/* Written whole by user space.  heartbeat_ns is bpf_ktime_get_ns() time
 * (CLOCK_MONOTONIC); 0 = never stamped.  An active node whose stamp is older
 * than timeout_ns (non-zero) is orphaned: the daemon is dead or hung. */
struct sxdp_role {
	__u64 heartbeat_ns;
	__u64 timeout_ns;
	__u32 role; /* enum sxdp_role_kind */
	__u32 flags; /* SXDP_ROLE_F_* */
	__u32 vip4;
	__u32 vip6[4];
	__u8 own_mac[6];
	__u8 peer_mac[6];
	__u16 sip_port; /* network order; with SXDP_ROLE_F_SOCK */
	__u16 pad;
};

/* LPM trie keys: prefixlen first, as the kernel requires. */
struct sxdp_lpm4 {
	__u32 prefixlen;
	__u8 addr[4];
};

struct sxdp_lpm6 {
	__u32 prefixlen;
	__u8 addr[16];
};

/* Rate-limit state key.  IPv4 sources are keyed by address (as ::ffff:a.b.c.d),
 * IPv6 sources by their /64: one subscriber's prefix is one source, else a
 * flooder with a /64 would get a fresh bucket per packet. */
struct sxdp_rate_key {
	__u8 addr[16];
	__u32 kind; /* enum sxdp_limit_kind */
};

#endif
