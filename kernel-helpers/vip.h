/* The virtual IP on an interface, through rtnetlink (libmnl).
 *
 * An address is identified by its value alone, whatever its prefix length:
 * that is what makes the node answer ARP / NS for it, and what the kernel's
 * IPv6 code uses as identity.  So vip_present() ignores the prefix length,
 * vip_add() of an address that is already there (with any prefix length) is a
 * success that changes nothing, and vip_del() removes the address whatever
 * prefix length it carries.
 *
 * Each call opens its own netlink socket and waits for the kernel's answer
 * (a request/ack round trip of some microseconds, bounded by a 1 s receive
 * timeout).  That blocks the caller's event loop, which is acceptable for
 * these rare operations (takeover, switchover, shutdown, a CLI query); they
 * must not be used on a per-packet path.
 *
 * All functions return 0 (vip_present: 1 or 0) or -errno: -EINVAL for a bad
 * prefix, -ENODEV for an interface that does not exist. */
#ifndef SIPHA_VIP_H
#define SIPHA_VIP_H

#include <stdint.h>

#include "core/config.h"

struct nlmsghdr;

int vip_add(const char *ifname, const struct cfg_prefix *vip);
int vip_del(const char *ifname, const struct cfg_prefix *vip);
/* 1 when the address is configured on the interface, 0 when not. */
int vip_present(const char *ifname, const struct cfg_prefix *vip);

/* The same by interface index. */
int vip_add_index(unsigned ifindex, const struct cfg_prefix *vip);
int vip_del_index(unsigned ifindex, const struct cfg_prefix *vip);
int vip_present_index(unsigned ifindex, const struct cfg_prefix *vip);

/* Decodes an RTM_NEWADDR / RTM_DELADDR message (shared with nlwatch): the
 * local address (IFA_LOCAL, else IFA_ADDRESS), its prefix length, the
 * interface index and the IFA_F_* flags (IFA_FLAGS when present).
 * Returns 0, -EAFNOSUPPORT for a family other than IPv4/IPv6, or -EINVAL for
 * a malformed message.  FLAGS may be NULL. */
int vip_ifaddr_parse(const struct nlmsghdr *nlh, unsigned *ifindex, struct cfg_prefix *out,
		     uint32_t *flags);

#endif
