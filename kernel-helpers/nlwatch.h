/* Link and address events from rtnetlink, for an event loop.
 *
 * nlw_open() makes a non-blocking socket subscribed to RTMGRP_LINK,
 * RTMGRP_IPV4_IFADDR and RTMGRP_IPV6_IFADDR.  The loop polls nlw_fd() for
 * readability and then calls nlw_process(), which reads what is pending
 * without blocking and calls the callbacks from inside that call.
 *
 * Events are level-triggered: the kernel sends RTM_NEWLINK for many changes
 * (MTU, name, flags, ...), and every one is reported with the link's current
 * state, so the same state may be reported twice in a row.
 *
 * When the kernel drops notifications because the socket's buffer was full
 * (ENOBUFS), on_overrun is called: some events are lost and the caller must
 * re-read the state it cares about (vip_present(), nlw_link_up()).
 * Reading goes on after it.
 *
 * Only changes after nlw_open() are reported: read the initial state the
 * same way, after opening (so no change falls between the two). */
#ifndef SIPHA_NLWATCH_H
#define SIPHA_NLWATCH_H

#include <stdbool.h>
#include <stdint.h>

#include "core/config.h"

struct nlw;

struct nlw_link {
	unsigned ifindex;
	const char *name; /* valid during the callback only; "" if the kernel sent none */
	unsigned flags; /* IFF_* from the message */
	/* Carrier and operationally up: IFF_UP, IFF_RUNNING and IFF_LOWER_UP.
	 * False for a deleted link. */
	bool up;
	bool deleted; /* RTM_DELLINK: the interface is gone */
};

struct nlw_addr {
	unsigned ifindex;
	struct cfg_prefix prefix;
	uint32_t flags; /* IFA_F_*: an IPv6 address doing DAD comes with IFA_F_TENTATIVE,
			 * then again without it once usable */
	bool added; /* RTM_NEWADDR; false for RTM_DELADDR */
};

struct nlw_callbacks {
	void (*on_link)(void *arg, const struct nlw_link *link);
	void (*on_addr)(void *arg, const struct nlw_addr *addr);
	void (*on_overrun)(void *arg);
	void *arg;
};

/* Any callback may be NULL.  Returns 0 or -errno. */
int nlw_open(struct nlw **out, const struct nlw_callbacks *cb);
int nlw_fd(const struct nlw *w);
/* Reads the pending messages (at most a bounded number of datagrams per
 * call, so a flood cannot starve the loop; what is left keeps the fd
 * readable).  Returns the number of events reported (an overrun counts as
 * one), or -errno on a socket error; never blocks. */
int nlw_process(struct nlw *w);
/* Accepts NULL. */
void nlw_close(struct nlw *w);

/* The link's state now, as nlw_link.up defines it: 1 up, 0 down, -ENODEV,
 * or -errno.  One blocking rtnetlink request/ack (like vip.h). */
int nlw_link_up(const char *ifname);

#endif
