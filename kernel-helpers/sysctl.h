/* Kernel parameters under /proc/sys, and the check of those that decide
 * whether a VIP can move between two nodes cleanly.
 *
 * A PATH is either absolute ("/proc/sys/net/ipv4/ip_nonlocal_bind") or
 * relative to /proc/sys ("net/ipv4/ip_nonlocal_bind").  Dots are not
 * translated: "net/ipv4/conf/eth0.100/arp_ignore" names a VLAN interface. */
#ifndef SIPHA_SYSCTL_H
#define SIPHA_SYSCTL_H

/* Reads a value holding one integer.  0, or -errno (-ENOENT for an unknown
 * key, -EINVAL when the file does not hold exactly one int). */
int sysctl_get_int(const char *path, int *val);
/* 0, or -errno (-EINVAL when the kernel refuses the value). */
int sysctl_set_int(const char *path, int val);

/* Problems reported by ha_sysctl_check(), as bits. */
enum ha_sysctl_problem {
	/* net.ipv4.ip_nonlocal_bind 0: a socket cannot bind the VIP
	 * before this node holds it. */
	HA_SYSCTL_NONLOCAL_BIND = 1 << 0,
	/* arp_ignore (the larger of conf/all and conf/IF) not 1 or 2: with 0
	 * the node answers ARP for its addresses on every interface (ARP
	 * flux); 3 and above may keep it from answering for the VIP. */
	HA_SYSCTL_ARP_IGNORE = 1 << 1,
	/* arp_announce (the larger of all and IF) 0: ARP requests may carry
	 * an address of another interface as sender. */
	HA_SYSCTL_ARP_ANNOUNCE = 1 << 2,
	/* promote_secondaries off in both all and IF: deleting the primary
	 * address of the VIP's subnet silently deletes the VIP with it. */
	HA_SYSCTL_PROMOTE_SECONDARIES = 1 << 3,
};

/* Checks the IPv4 parameters above for IFNAME, logs each problem with
 * pr_warn, and returns the mask of enum ha_sysctl_problem (0: all good), or
 * -ENODEV for an unknown interface, -EINVAL for a bad name, -errno when a
 * value cannot be read. */
int ha_sysctl_check(const char *ifname);

#endif
