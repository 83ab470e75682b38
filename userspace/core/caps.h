/* Least privilege after start-up.  siphad starts as root because start-up
 * needs it (bpffs mount, loading and attaching XDP, packet sockets, ports
 * below 1,024); once every socket is open and the program attached, it keeps
 * only what the running node still asks the kernel for.  docs/SECURITY.md
 * lists the set and the reason for each. */
#ifndef SIPHA_CAPS_H
#define SIPHA_CAPS_H

#include <stdbool.h>

#include "core/config.h"

struct caps_keep {
	/* RTM_NEWADDR/DELADDR for the VIP at every role change and at exit;
	 * the XDP detach at exit (RTM_SETLINK). */
	bool net_admin;
	/* Map updates and reads through the fds already open (heartbeat,
	 * role, blocklist, counters): only when the kernel checks a
	 * capability for them, see caps_bpf_checked(). */
	bool bpf;
};

/* What a node with CFG needs once it is up: CAP_NET_ADMIN with a [vip] or
 * XDP, CAP_BPF with XDP (subject to caps_bpf_checked() in caps_drop()). */
void caps_for_config(const struct sipha_config *cfg, struct caps_keep *out);

/* Whether this kernel refuses a bpf() command on an open fd to a process
 * without CAP_BPF/CAP_SYS_ADMIN in its effective set: kernels before 6.5
 * do for every command when kernel.unprivileged_bpf_disabled is set
 * (Debian's default), later ones check only loading.  Asks the kernel with
 * a lookup on fd -1 and the two capabilities lowered from the effective set
 * (they stay permitted: the caller raises them again or drops them). */
bool caps_bpf_checked(void);

/* Drops every capability not in KEEP from the effective, permitted,
 * inheritable and ambient sets and from the bounding set (when we hold
 * CAP_SETPCAP; a process started without it has a bounding set chosen for
 * it), and sets no_new_privs.  A capability in KEEP we do not hold is not
 * kept either.  Logs what is kept.  0 or -errno (then the process may hold
 * less than before, never more). */
int caps_drop(const struct caps_keep *keep);

#endif
