/* The XDP fast path from user space: load bpf/sipha_xdp.bpf.c through its
 * skeleton, pin its maps under SXDP_PIN_BASE/<node-id>/, attach it, and
 * drive it (role, VIP, heartbeat, rate limits, blocklist, counters).
 *
 * Two ways in: siphad holds a struct sxdp from sxdp_open(); siphactl and the
 * metrics code of another process use the sxdp_pinned_*() functions, which
 * need only the node id and the pins of the running daemon.  Everything
 * returns 0 or -errno and logs the failure once. */
#ifndef SIPHA_XDP_H
#define SIPHA_XDP_H

#include <net/if.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/config.h"
#include "sipha_kern_user.h"

struct sxdp;

struct sxdp_status {
	bool attached; /* the program the daemon attached is still on ifindex */
	enum cfg_xdp_mode mode; /* CFG_XDP_OFF when loaded without an interface */
	unsigned ifindex;
	char ifname[IF_NAMESIZE]; /* "" when unknown */
	uint32_t prog_id;
	unsigned invite_rate; /* per second and source, 0 = no limit */
	unsigned register_rate;
	unsigned burst;
};

/* Mounts bpffs on /sys/fs/bpf if needed, loads the program with its maps
 * pinned in SXDP_PIN_BASE/NODE_ID/ (pins left by a crashed run are reused when
 * they still fit, replaced when not) and attaches it to IFNAME in MODE
 * (CFG_XDP_NATIVE or CFG_XDP_GENERIC).  A sipha program already on the
 * interface, in either mode, from a run that did not clean up is replaced,
 * never stacked; any other XDP program makes it fail with -EBUSY.
 * IFNAME NULL loads and pins without attaching (tests, dry runs).
 * SIP_PORT 0 means 5060.  The role starts as whatever the pins hold (standby
 * with no VIP on a first start). */
int sxdp_open(struct sxdp **out, const char *node_id, const char *ifname, enum cfg_xdp_mode mode,
	      uint16_t sip_port);

/* Detaches the program (only if it is still ours), unloads it and removes the
 * pins and the pin directory.  If another run has replaced our program, its
 * pins are left alone.  NULL is fine. */
void sxdp_close(struct sxdp *x);

/* Role, VIP, own and peer MAC, dead-man timeout (0 = off).  ACTIVE false is
 * standby: SIP for the VIP is steered to PEER_MAC (NULL: no peer known, pass).
 * VIP NULL: no VIP, nothing is steered and no ARP is dropped.  Also stamps
 * the heartbeat: a role change is a sign of life. */
/* Opens the sentinel: a UDP socket of FAMILY (the VIP's) bound to the
 * wildcard address and a port of the kernel's choice, which nothing reads
 * and no io_uring request holds, so the kernel closes it the moment this
 * process dies.  From the next sxdp_set_role() on, an active node whose
 * sentinel is gone stops answering ARP and neighbour solicitations for the
 * VIP at once, without waiting for its stamp to age.  0 or -errno. */
int sxdp_sentinel(struct sxdp *x, int family);
int sxdp_set_role(struct sxdp *x, bool active, const struct cfg_prefix *vip,
		  const uint8_t own_mac[6], const uint8_t peer_mac[6], uint64_t timeout_ns);

/* Stamps CLOCK_MONOTONIC (the bpf_ktime_get_ns() clock) as the heartbeat.
 * Does nothing before this run's first sxdp_set_role(): after a crash the
 * pinned role is the dead run's, and ticking must not revive it. */
int sxdp_heartbeat(struct sxdp *x);

/* Per-source limits of initial INVITEs and REGISTERs per second (0 = none)
 * and the bucket depth (0 = twice the larger rate). */
int sxdp_set_rates(struct sxdp *x, unsigned invite_rate, unsigned register_rate, unsigned burst);

/* Counters summed over CPUs, indexed by enum sxdp_counter. */
int sxdp_counters(struct sxdp *x, uint64_t out[SXDP_NCOUNTERS]);

/* Adds or removes a source prefix: "10.0.0.0/8", "2001:db8::/32", or an
 * address alone (a host prefix).  Host bits are cleared.  -EINVAL for a bad
 * prefix, -ENOENT when deleting one that is not there. */
int sxdp_block(struct sxdp *x, const char *prefix, bool add);

/* The program's fd, for BPF_PROG_TEST_RUN. */
int sxdp_prog_fd(const struct sxdp *x);

/* The same as above through the pins of the daemon running as NODE_ID;
 * -ENOENT when there are none. */
int sxdp_pinned_counters(const char *node_id, uint64_t out[SXDP_NCOUNTERS]);
int sxdp_pinned_block(const char *node_id, const char *prefix, bool add);
int sxdp_pinned_status(const char *node_id, struct sxdp_status *st);

/* The contract name of counter I ("invite", "drop_blocklist", ...), NULL
 * when out of range. */
const char *sxdp_counter_name(unsigned i);

/* "native", "generic" or "off". */
const char *sxdp_mode_name(enum cfg_xdp_mode mode);

#endif
