#include <arpa/inet.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/if_addr.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>

#include "core/log.h"
#include "vip.h"

/* Large enough for one message of an address dump: the kernel sizes dump
 * skbs from the reader's buffer, and libmnl reports a truncated read as
 * ENOSPC rather than losing part of the answer. */
#define VIP_NL_BUF 32768
/* A kernel that has not answered a local request within this time never
 * will; failing beats freezing the event loop. */
#define VIP_NL_TIMEOUT_MS 1000
/* A dump interrupted by a concurrent change (NLM_F_DUMP_INTR) is retried. */
#define VIP_DUMP_TRIES 4
/* IPv4 allows one address with several prefix lengths; vip_del removes
 * them all, within this bound. */
#define VIP_DEL_ROUNDS 8

struct vip_query {
	unsigned ifindex;
	const struct cfg_prefix *vip;
	int found;
	unsigned prefixlen;
};

/* One request: what the callbacks of mnl_cb_run2 share. */
struct vip_req {
	struct vip_query *query; /* address dumps only */
	char extack[128]; /* the kernel's explanation of an error */
};

static unsigned vip_seq;

static size_t vip_alen(int family)
{
	if (family == AF_INET)
		return sizeof(struct in_addr);
	if (family == AF_INET6)
		return sizeof(struct in6_addr);
	return 0;
}

static int vip_check(const struct cfg_prefix *vip)
{
	if (!vip)
		return -EINVAL;
	if (vip->family == AF_INET)
		return vip->prefixlen <= 32 ? 0 : -EINVAL;
	if (vip->family == AF_INET6)
		return vip->prefixlen <= 128 ? 0 : -EINVAL;
	return -EINVAL;
}

static const char *vip_str(const struct cfg_prefix *p, char *buf, size_t len)
{
	if (!inet_ntop(p->family, &p->addr, buf, (socklen_t)len))
		snprintf(buf, len, "?");
	return buf;
}

static int vip_ifindex(const char *ifname, unsigned *ifindex)
{
	if (!ifname || !*ifname)
		return -EINVAL;
	if (strlen(ifname) >= IF_NAMESIZE)
		return -ENODEV;
	*ifindex = if_nametoindex(ifname);
	return *ifindex ? 0 : -ENODEV;
}

static int vip_check_index(unsigned ifindex, char name[IF_NAMESIZE])
{
	if (!ifindex || !if_indextoname(ifindex, name))
		return -ENODEV;
	return 0;
}

static int vip_extack_attr_cb(const struct nlattr *attr, void *data)
{
	const struct nlattr **tb = data;
	int type = mnl_attr_get_type(attr);

	if (mnl_attr_type_valid(attr, NLMSGERR_ATTR_MAX) < 0)
		return MNL_CB_OK;
	if (type == NLMSGERR_ATTR_MSG && mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) < 0)
		return MNL_CB_ERROR;
	tb[type] = attr;
	return MNL_CB_OK;
}

/* libmnl's default error callback, plus the extended ack's message, which
 * says far more than the errno ("prefix length is too long", ...). */
static int vip_error_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct nlattr *tb[NLMSGERR_ATTR_MAX + 1] = { 0 };
	const struct nlmsgerr *err = mnl_nlmsg_get_payload(nlh);
	struct vip_req *req = data;
	size_t off = sizeof(*err);

	if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof(*err))) {
		errno = EBADMSG;
		return MNL_CB_ERROR;
	}
	if (err->error == 0)
		return MNL_CB_STOP;
	if (nlh->nlmsg_flags & NLM_F_ACK_TLVS) {
		if (!(nlh->nlmsg_flags & NLM_F_CAPPED))
			off += err->msg.nlmsg_len - sizeof(struct nlmsghdr);
		if (off < mnl_nlmsg_get_payload_len(nlh) &&
		    mnl_attr_parse(nlh, (unsigned)off, vip_extack_attr_cb, tb) == MNL_CB_OK &&
		    tb[NLMSGERR_ATTR_MSG])
			snprintf(req->extack, sizeof(req->extack), "%s",
				 mnl_attr_get_str(tb[NLMSGERR_ATTR_MSG]));
	}
	errno = err->error < 0 ? -err->error : err->error;
	return MNL_CB_ERROR;
}

/* Sends NLH (NLM_F_ACK set by the caller) and runs the answer through
 * DATA_CB until the ack, the end of the dump, or an error. */
static int vip_talk(struct nlmsghdr *nlh, mnl_cb_t data_cb, struct vip_req *req)
{
	mnl_cb_t ctl[NLMSG_ERROR + 1] = { [NLMSG_ERROR] = vip_error_cb };
	struct timeval tv = { .tv_sec = VIP_NL_TIMEOUT_MS / 1000,
			      .tv_usec = (VIP_NL_TIMEOUT_MS % 1000) * 1000 };
	struct mnl_socket *nl = NULL;
	char buf[VIP_NL_BUF];
	unsigned seq, portid;
	int one = 1, err = 0;
	ssize_t n;

	nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
	if (!nl) {
		err = -errno;
		pr_err("vip: netlink socket: %s", strerror(-err));
		goto out;
	}
	/* Best effort: without them errors still arrive, only less explained. */
	mnl_socket_setsockopt(nl, NETLINK_EXT_ACK, &one, sizeof(one));
	mnl_socket_setsockopt(nl, NETLINK_CAP_ACK, &one, sizeof(one));
	if (setsockopt(mnl_socket_get_fd(nl), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		err = -errno;
		pr_err("vip: netlink setup: %s", strerror(-err));
		goto out;
	}
	portid = mnl_socket_get_portid(nl);
	seq = (unsigned)time(NULL) + __atomic_add_fetch(&vip_seq, 1, __ATOMIC_RELAXED);
	nlh->nlmsg_seq = seq;
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) {
		err = -errno;
		pr_err("vip: netlink send: %s", strerror(-err));
		goto out;
	}
	for (;;) {
		n = mnl_socket_recvfrom(nl, buf, sizeof(buf));
		if (n < 0) {
			err = (errno == EAGAIN || errno == EWOULDBLOCK) ? -ETIMEDOUT : -errno;
			pr_err("vip: netlink receive: %s", strerror(-err));
			goto out;
		}
		n = mnl_cb_run2(buf, (size_t)n, seq, portid, data_cb, req, ctl,
				sizeof(ctl) / sizeof(ctl[0]));
		if (n == MNL_CB_ERROR) {
			err = -errno;
			goto out;
		}
		if (n == MNL_CB_STOP)
			break;
	}
out:
	if (nl)
		mnl_socket_close(nl);
	return err;
}

struct vip_attr_ctx {
	const struct nlattr **tb;
	size_t alen;
};

static int vip_ifaddr_attr_cb(const struct nlattr *attr, void *data)
{
	struct vip_attr_ctx *ctx = data;
	int type = mnl_attr_get_type(attr);

	if (mnl_attr_type_valid(attr, IFA_MAX) < 0)
		return MNL_CB_OK;
	switch (type) {
	case IFA_ADDRESS:
	case IFA_LOCAL:
		if (mnl_attr_validate2(attr, MNL_TYPE_BINARY, ctx->alen) < 0)
			return MNL_CB_ERROR;
		break;
	case IFA_FLAGS:
		if (mnl_attr_validate(attr, MNL_TYPE_U32) < 0)
			return MNL_CB_ERROR;
		break;
	default:
		return MNL_CB_OK;
	}
	ctx->tb[type] = attr;
	return MNL_CB_OK;
}

int vip_ifaddr_parse(const struct nlmsghdr *nlh, unsigned *ifindex, struct cfg_prefix *out,
		     uint32_t *flags)
{
	const struct nlattr *tb[IFA_MAX + 1] = { 0 };
	struct vip_attr_ctx ctx = { .tb = tb };
	const struct ifaddrmsg *ifa;
	const struct nlattr *a;

	if (!nlh || !ifindex || !out || nlh->nlmsg_len < mnl_nlmsg_size(sizeof(*ifa)))
		return -EINVAL;
	if (nlh->nlmsg_type != RTM_NEWADDR && nlh->nlmsg_type != RTM_DELADDR)
		return -EINVAL;
	ifa = mnl_nlmsg_get_payload(nlh);
	ctx.alen = vip_alen(ifa->ifa_family);
	if (!ctx.alen)
		return -EAFNOSUPPORT;
	if (ifa->ifa_prefixlen > ctx.alen * 8)
		return -EINVAL;
	if (mnl_attr_parse(nlh, sizeof(*ifa), vip_ifaddr_attr_cb, &ctx) != MNL_CB_OK)
		return -EINVAL;
	a = tb[IFA_LOCAL] ? tb[IFA_LOCAL] : tb[IFA_ADDRESS];
	if (!a)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	out->family = ifa->ifa_family;
	out->prefixlen = ifa->ifa_prefixlen;
	memcpy(&out->addr, mnl_attr_get_payload(a), ctx.alen);
	*ifindex = ifa->ifa_index;
	if (flags)
		*flags = tb[IFA_FLAGS] ? mnl_attr_get_u32(tb[IFA_FLAGS]) : ifa->ifa_flags;
	return 0;
}

static int vip_dump_cb(const struct nlmsghdr *nlh, void *data)
{
	struct vip_query *q = ((struct vip_req *)data)->query;
	struct cfg_prefix p;
	unsigned idx;

	if (nlh->nlmsg_type != RTM_NEWADDR)
		return MNL_CB_OK;
	/* Another family or a message we cannot read says nothing about ours. */
	if (vip_ifaddr_parse(nlh, &idx, &p, NULL) < 0)
		return MNL_CB_OK;
	if (idx == q->ifindex && p.family == q->vip->family &&
	    !memcmp(&p.addr, &q->vip->addr, vip_alen(p.family))) {
		q->found = 1;
		q->prefixlen = p.prefixlen;
	}
	return MNL_CB_OK;
}

/* 1 (with the prefix length found) or 0, or -errno. */
static int vip_lookup(unsigned ifindex, const struct cfg_prefix *vip, unsigned *prefixlen)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct vip_query q = { .ifindex = ifindex, .vip = vip };
	struct vip_req req = { .query = &q };
	struct nlmsghdr *nlh;
	struct ifaddrmsg *ifa;
	int err = -EINTR;

	for (int i = 0; i < VIP_DUMP_TRIES && err == -EINTR; i++) {
		q.found = 0;
		nlh = mnl_nlmsg_put_header(buf);
		nlh->nlmsg_type = RTM_GETADDR;
		nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP | NLM_F_ACK;
		ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
		ifa->ifa_family = (unsigned char)vip->family;
		ifa->ifa_index = ifindex;
		err = vip_talk(nlh, vip_dump_cb, &req);
	}
	if (err < 0) {
		pr_err("vip: address dump: %s", strerror(-err));
		return err;
	}
	if (q.found && prefixlen)
		*prefixlen = q.prefixlen;
	return q.found;
}

/* RTM_NEWADDR / RTM_DELADDR for VIP with PREFIXLEN on IFINDEX. */
static int vip_change(uint16_t type, unsigned ifindex, const struct cfg_prefix *vip,
		      unsigned prefixlen, struct vip_req *req)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	size_t alen = vip_alen(vip->family);
	struct nlmsghdr *nlh;
	struct ifaddrmsg *ifa;
	uint32_t flags = 0;

	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	if (type == RTM_NEWADDR)
		nlh->nlmsg_flags |= NLM_F_CREATE | NLM_F_EXCL;
	ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
	ifa->ifa_family = (unsigned char)vip->family;
	ifa->ifa_prefixlen = (unsigned char)prefixlen;
	ifa->ifa_scope = RT_SCOPE_UNIVERSE;
	ifa->ifa_index = ifindex;
	/* Without NODAD an IPv6 VIP stays tentative for a second or more and
	 * cannot be bound or answered for: useless right after a takeover. */
	if (type == RTM_NEWADDR && vip->family == AF_INET6)
		flags = IFA_F_NODAD;
	ifa->ifa_flags = (unsigned char)flags;
	mnl_attr_put(nlh, IFA_LOCAL, alen, &vip->addr);
	mnl_attr_put(nlh, IFA_ADDRESS, alen, &vip->addr);
	if (type == RTM_NEWADDR)
		mnl_attr_put_u32(nlh, IFA_FLAGS, flags);
	return vip_talk(nlh, NULL, req);
}

int vip_add_index(unsigned ifindex, const struct cfg_prefix *vip)
{
	struct vip_req req = { 0 };
	char name[IF_NAMESIZE], a[INET6_ADDRSTRLEN];
	unsigned plen;
	int err;

	err = vip_check(vip);
	if (err)
		goto out;
	err = vip_check_index(ifindex, name);
	if (err)
		goto out;
	err = vip_lookup(ifindex, vip, &plen);
	if (err < 0)
		goto out;
	if (err == 1) {
		if (plen != vip->prefixlen)
			pr_warn("vip: %s is on %s as /%u, not /%u; leaving it as it is",
				vip_str(vip, a, sizeof(a)), name, plen, vip->prefixlen);
		err = 0;
		goto out;
	}
	err = vip_change(RTM_NEWADDR, ifindex, vip, vip->prefixlen, &req);
	if (err == -EEXIST) /* added by someone else since the lookup */
		err = 0;
	if (err)
		pr_err("vip: add %s/%u on %s: %s%s%s", vip_str(vip, a, sizeof(a)), vip->prefixlen,
		       name, strerror(-err), req.extack[0] ? ": " : "", req.extack);
	else
		pr_info("vip: %s/%u added on %s", vip_str(vip, a, sizeof(a)), vip->prefixlen, name);
out:
	return err;
}

int vip_del_index(unsigned ifindex, const struct cfg_prefix *vip)
{
	char name[IF_NAMESIZE], a[INET6_ADDRSTRLEN];
	unsigned plen;
	int err, i;

	err = vip_check(vip);
	if (err)
		goto out;
	err = vip_check_index(ifindex, name);
	if (err)
		goto out;
	for (i = 0; i < VIP_DEL_ROUNDS; i++) {
		struct vip_req req = { 0 };

		err = vip_lookup(ifindex, vip, &plen);
		if (err <= 0)
			goto out;
		err = vip_change(RTM_DELADDR, ifindex, vip, plen, &req);
		/* Gone since the lookup: what we wanted. */
		if (err == -EADDRNOTAVAIL || err == -ENOENT || err == -ESRCH)
			err = 0;
		if (err) {
			pr_err("vip: delete %s/%u from %s: %s%s%s", vip_str(vip, a, sizeof(a)),
			       plen, name, strerror(-err), req.extack[0] ? ": " : "", req.extack);
			goto out;
		}
		pr_info("vip: %s/%u removed from %s", vip_str(vip, a, sizeof(a)), plen, name);
	}
	err = -EBUSY;
	pr_err("vip: %s still on %s after %d deletions", vip_str(vip, a, sizeof(a)), name, i);
out:
	return err;
}

int vip_present_index(unsigned ifindex, const struct cfg_prefix *vip)
{
	char name[IF_NAMESIZE];
	int err;

	err = vip_check(vip);
	if (err)
		return err;
	err = vip_check_index(ifindex, name);
	if (err)
		return err;
	return vip_lookup(ifindex, vip, NULL);
}

int vip_add(const char *ifname, const struct cfg_prefix *vip)
{
	unsigned idx;
	int err = vip_ifindex(ifname, &idx);

	return err ? err : vip_add_index(idx, vip);
}

int vip_del(const char *ifname, const struct cfg_prefix *vip)
{
	unsigned idx;
	int err = vip_ifindex(ifname, &idx);

	return err ? err : vip_del_index(idx, vip);
}

int vip_present(const char *ifname, const struct cfg_prefix *vip)
{
	unsigned idx;
	int err = vip_ifindex(ifname, &idx);

	return err ? err : vip_present_index(idx, vip);
}
