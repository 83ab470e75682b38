#include <errno.h>
#include <net/if.h> /* before linux/if.h: libc-compat then adds only what glibc lacks */
#include <libmnl/libmnl.h>
#include <linux/if.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>

#include "core/log.h"
#include "nlwatch.h"
#include "vip.h"

/* One datagram of notifications; a link message with all its attributes
 * (stats, VF info) can pass several kilobytes. */
#define NLW_BUF 32768
/* Room for bursts (a bond or a switch flapping many ports) before the kernel
 * has to drop notifications. */
#define NLW_RCVBUF (1 << 20)
/* Datagrams per nlw_process() call. */
#define NLW_MAX_READS 256

struct nlw {
	struct mnl_socket *nl;
	struct nlw_callbacks cb;
	int events;
	char buf[NLW_BUF];
};

static int nlw_link_attr_cb(const struct nlattr *attr, void *data)
{
	const struct nlattr **tb = data;
	int type = mnl_attr_get_type(attr);

	if (mnl_attr_type_valid(attr, IFLA_MAX) < 0)
		return MNL_CB_OK;
	if (type != IFLA_IFNAME)
		return MNL_CB_OK;
	if (mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) < 0)
		return MNL_CB_ERROR;
	tb[type] = attr;
	return MNL_CB_OK;
}

#define NLW_UP_FLAGS (IFF_UP | IFF_RUNNING | IFF_LOWER_UP)

static void nlw_link(struct nlw *w, const struct nlmsghdr *nlh)
{
	const struct nlattr *tb[IFLA_MAX + 1] = { 0 };
	const struct ifinfomsg *ifi;
	struct nlw_link ev = { 0 };
	char name[IF_NAMESIZE] = "";

	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(*ifi))
		goto bad;
	ifi = mnl_nlmsg_get_payload(nlh);
	/* AF_BRIDGE messages describe bridge ports; their RTM_DELLINK means
	 * "left the bridge", not "gone". */
	if (ifi->ifi_family != AF_UNSPEC)
		return;
	if (mnl_attr_parse(nlh, sizeof(*ifi), nlw_link_attr_cb, tb) != MNL_CB_OK)
		goto bad;
	if (tb[IFLA_IFNAME])
		snprintf(name, sizeof(name), "%s", mnl_attr_get_str(tb[IFLA_IFNAME]));
	ev.ifindex = (unsigned)ifi->ifi_index;
	ev.name = name;
	ev.flags = ifi->ifi_flags;
	ev.deleted = nlh->nlmsg_type == RTM_DELLINK;
	ev.up = !ev.deleted && (ifi->ifi_flags & NLW_UP_FLAGS) == NLW_UP_FLAGS;
	w->events++;
	if (w->cb.on_link)
		w->cb.on_link(w->cb.arg, &ev);
	return;
bad:
	pr_warn("nlwatch: malformed link message ignored");
}

static void nlw_addr(struct nlw *w, const struct nlmsghdr *nlh)
{
	struct nlw_addr ev = { 0 };
	int err;

	err = vip_ifaddr_parse(nlh, &ev.ifindex, &ev.prefix, &ev.flags);
	if (err == -EAFNOSUPPORT)
		return;
	if (err) {
		pr_warn("nlwatch: malformed address message ignored");
		return;
	}
	ev.added = nlh->nlmsg_type == RTM_NEWADDR;
	w->events++;
	if (w->cb.on_addr)
		w->cb.on_addr(w->cb.arg, &ev);
}

static int nlw_msg_cb(const struct nlmsghdr *nlh, void *data)
{
	struct nlw *w = data;

	switch (nlh->nlmsg_type) {
	case RTM_NEWLINK:
	case RTM_DELLINK:
		nlw_link(w, nlh);
		break;
	case RTM_NEWADDR:
	case RTM_DELADDR:
		nlw_addr(w, nlh);
		break;
	default:
		break;
	}
	return MNL_CB_OK;
}

static void nlw_overrun(struct nlw *w, const char *why)
{
	pr_warn("nlwatch: %s, events lost; state must be re-read", why);
	w->events++;
	if (w->cb.on_overrun)
		w->cb.on_overrun(w->cb.arg);
}

int nlw_open(struct nlw **out, const struct nlw_callbacks *cb)
{
	unsigned groups = RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR;
	int sz = NLW_RCVBUF, fd, err = 0;
	struct nlw *w = NULL;

	if (!out) {
		err = -EINVAL;
		goto out;
	}
	*out = NULL;
	w = calloc(1, sizeof(*w));
	if (!w) {
		err = -ENOMEM;
		goto out;
	}
	if (cb)
		w->cb = *cb;
	w->nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (!w->nl) {
		err = -errno;
		pr_err("nlwatch: netlink socket: %s", strerror(-err));
		goto out;
	}
	fd = mnl_socket_get_fd(w->nl);
	/* FORCE passes rmem_max when we may (CAP_NET_ADMIN); else take what
	 * the system allows. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	if (mnl_socket_bind(w->nl, groups, MNL_SOCKET_AUTOPID) < 0) {
		err = -errno;
		pr_err("nlwatch: netlink bind: %s", strerror(-err));
		goto out;
	}
	*out = w;
	w = NULL;
out:
	nlw_close(w);
	return err;
}

int nlw_fd(const struct nlw *w)
{
	return w ? mnl_socket_get_fd(w->nl) : -EINVAL;
}

int nlw_process(struct nlw *w)
{
	struct sockaddr_nl sa;
	struct iovec iov;
	struct msghdr msg;
	ssize_t n;
	int err = 0;

	if (!w)
		return -EINVAL;
	w->events = 0;
	for (int i = 0; i < NLW_MAX_READS; i++) {
		iov = (struct iovec){ .iov_base = w->buf, .iov_len = sizeof(w->buf) };
		msg = (struct msghdr){
			.msg_name = &sa, .msg_namelen = sizeof(sa), .msg_iov = &iov, .msg_iovlen = 1
		};
		n = recvmsg(mnl_socket_get_fd(w->nl), &msg, MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			if (errno == EINTR)
				continue;
			if (errno == ENOBUFS) {
				nlw_overrun(w, "netlink receive buffer overrun");
				continue;
			}
			err = -errno;
			pr_err("nlwatch: netlink receive: %s", strerror(-err));
			goto out;
		}
		if (msg.msg_flags & MSG_TRUNC) {
			nlw_overrun(w, "notification larger than the buffer");
			continue;
		}
		/* Only the kernel speaks on rtnetlink groups; a unicast from
		 * another process must not fake a link going down. */
		if (msg.msg_namelen != sizeof(sa) || sa.nl_pid != 0)
			continue;
		if (mnl_cb_run(w->buf, (size_t)n, 0, 0, nlw_msg_cb, w) == MNL_CB_ERROR)
			pr_warn("nlwatch: bad netlink datagram: %s", strerror(errno));
	}
out:
	return err ? err : w->events;
}

void nlw_close(struct nlw *w)
{
	if (!w)
		return;
	if (w->nl)
		mnl_socket_close(w->nl);
	free(w);
}

struct nlw_query {
	int ifindex;
	int found;
	unsigned flags;
};

static int nlw_query_cb(const struct nlmsghdr *nlh, void *data)
{
	struct nlw_query *q = data;
	const struct ifinfomsg *ifi;

	if (nlh->nlmsg_type != RTM_NEWLINK || mnl_nlmsg_get_payload_len(nlh) < sizeof(*ifi))
		return MNL_CB_OK;
	ifi = mnl_nlmsg_get_payload(nlh);
	if (ifi->ifi_index == q->ifindex) {
		q->found = 1;
		q->flags = ifi->ifi_flags;
	}
	return MNL_CB_OK;
}

int nlw_link_up(const char *ifname)
{
	struct timeval tv = { .tv_sec = 1 };
	struct nlw_query q = { 0 };
	struct mnl_socket *nl = NULL;
	struct nlmsghdr *nlh;
	struct ifinfomsg *ifi;
	unsigned seq, portid;
	char *buf = NULL;
	ssize_t n;
	int err = 0;

	if (!ifname || !*ifname)
		return -EINVAL;
	if (strlen(ifname) >= IF_NAMESIZE)
		return -ENODEV;
	q.ifindex = (int)if_nametoindex(ifname);
	if (!q.ifindex)
		return -ENODEV;
	buf = malloc(NLW_BUF);
	nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
	if (!buf || !nl) {
		err = buf ? -errno : -ENOMEM;
		goto out;
	}
	if (setsockopt(mnl_socket_get_fd(nl), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		err = -errno;
		goto out;
	}
	portid = mnl_socket_get_portid(nl);
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = RTM_GETLINK;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	nlh->nlmsg_seq = seq = (unsigned)time(NULL);
	ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	ifi->ifi_index = q.ifindex;
	/* Flags are all we want; the statistics would only fill the buffer. */
	mnl_attr_put_u32(nlh, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) {
		err = -errno;
		goto out;
	}
	do {
		n = mnl_socket_recvfrom(nl, buf, NLW_BUF);
		if (n < 0) {
			err = (errno == EAGAIN || errno == EWOULDBLOCK) ? -ETIMEDOUT : -errno;
			goto out;
		}
		n = mnl_cb_run(buf, (size_t)n, seq, portid, nlw_query_cb, &q);
	} while (n == MNL_CB_OK);
	if (n == MNL_CB_ERROR)
		err = -errno;
	else if (!q.found)
		err = -ENODEV;
out:
	if (err && err != -ENODEV)
		pr_err("nlwatch: link state of %s: %s", ifname, strerror(-err));
	if (nl)
		mnl_socket_close(nl);
	free(buf);
	return err ? err : (q.flags & NLW_UP_FLAGS) == NLW_UP_FLAGS;
}
