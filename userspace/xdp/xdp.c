/* Loading, attaching and driving the XDP program (bpf/sipha_xdp.bpf.c). */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <limits.h>
#include <linux/if_link.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bpffs.h"
#include "core/fdhigh.h"
#include "core/log.h"
#include "xdp/xdp.h"
#include "sipha_xdp.skel.h"

#define SXDP_NODE_ID_MAX 32
#define NODE_ID_CHARS "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"
#define NSEC_PER_SEC 1000000000ull

struct sxdp {
	struct sipha_xdp_bpf *skel;
	char pin_dir[PATH_MAX];
	int ifindex; /* 0: not attached */
	__u32 xdp_flags; /* XDP_FLAGS_DRV_MODE or XDP_FLAGS_SKB_MODE */
	struct sxdp_config cfg; /* what the maps hold: written whole */
	struct sxdp_role role;
	bool role_set; /* by this run: until then the role is the crashed run's */
	uint16_t sock_port; /* SXDP_ROLE_F_SOCK's port, host order; 0: none */
	int sentinel; /* the socket behind it, or -1 */
	pthread_mutex_t role_mu; /* role, role_set and their writes */
};

static const char *const counter_names[] = { SXDP_COUNTER_NAMES };

_Static_assert(sizeof(counter_names) / sizeof(counter_names[0]) == SXDP_NCOUNTERS,
	       "one name per counter");

const char *sxdp_counter_name(unsigned i)
{
	return i < SXDP_NCOUNTERS ? counter_names[i] : NULL;
}

const char *sxdp_mode_name(enum cfg_xdp_mode mode)
{
	switch (mode) {
	case CFG_XDP_NATIVE:
		return "native";
	case CFG_XDP_GENERIC:
		return "generic";
	case CFG_XDP_OFF:
		break;
	}
	return "off";
}

/* libbpf's messages, line by line, into our log: the verifier's log arrives
 * as one long string. */
static int libbpf_print(enum libbpf_print_level lvl, const char *fmt, va_list ap)
{
	char *text = NULL, *line, *save = NULL;

	if (lvl != LIBBPF_WARN && log_get_level() < LOG_DEBUG)
		return 0;
	if (vasprintf(&text, fmt, ap) < 0)
		return 0;
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (lvl == LIBBPF_WARN)
			pr_warn("%s", line);
		else
			pr_debug("%s", line);
	}
	free(text);
	return 0;
}

static int node_pin_dir(const char *node_id, char *buf, size_t len)
{
	size_t n = node_id ? strlen(node_id) : 0;

	/* The id becomes a path component: no '/', no "..". */
	if (n == 0 || n > SXDP_NODE_ID_MAX || strspn(node_id, NODE_ID_CHARS) != n) {
		pr_err("xdp: bad node id '%s'", node_id ? node_id : "");
		return -EINVAL;
	}
	snprintf(buf, len, "%s/%s", SXDP_PIN_BASE, node_id);
	return 0;
}

static int pinned_map_fd(const char *node_id, const char *name)
{
	char dir[PATH_MAX], path[PATH_MAX + 32];
	int fd, err;

	libbpf_set_print(libbpf_print);
	err = node_pin_dir(node_id, dir, sizeof(dir));
	if (err)
		return err;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = bpf_obj_get(path);
	if (fd < 0) {
		err = -errno;
		/* No pins: that node runs without XDP, or not at all. */
		if (err == -ENOENT)
			pr_debug("xdp: %s: %s", path, strerror(-err));
		else
			pr_err("xdp: %s: %s", path, strerror(-err));
		return err;
	}
	return fd;
}

/* libbpf refuses to load when a pin by the same name does not match the
 * map definition (left by an older build).  Such a pin holds nothing worth
 * keeping across an upgrade: remove it so the load creates a fresh one. */
static void drop_stale_pins(struct bpf_object *obj)
{
	struct bpf_map_info info;
	struct bpf_map *map;
	__u32 len;
	int fd;

	bpf_object__for_each_map(map, obj)
	{
		const char *path = bpf_map__pin_path(map);

		if (!path)
			continue;
		fd = bpf_obj_get(path);
		if (fd < 0)
			continue;
		memset(&info, 0, sizeof(info));
		len = sizeof(info);
		if (!bpf_obj_get_info_by_fd(fd, &info, &len) &&
		    (info.type != bpf_map__type(map) || info.key_size != bpf_map__key_size(map) ||
		     info.value_size != bpf_map__value_size(map) ||
		     info.max_entries != bpf_map__max_entries(map) ||
		     info.map_flags != bpf_map__map_flags(map))) {
			pr_warn("xdp: %s does not fit this build, replacing it", path);
			unlink(path);
		}
		close(fd);
	}
}

/* Whether the program with ID is one of ours (a leftover of a crashed run). */
static int prog_is_ours(__u32 id, int *fd_out)
{
	struct bpf_prog_info info;
	__u32 len = sizeof(info);
	int fd, err;

	fd = bpf_prog_get_fd_by_id(id);
	if (fd < 0)
		return -errno;
	memset(&info, 0, sizeof(info));
	err = bpf_obj_get_info_by_fd(fd, &info, &len);
	if (err) {
		err = -errno;
		close(fd);
		return err;
	}
	if (strncmp(info.name, SXDP_PROG_NAME, sizeof(info.name))) {
		close(fd);
		return 0;
	}
	*fd_out = fd;
	return 1;
}

static __u32 prog_id_of(int fd)
{
	struct bpf_prog_info info;
	__u32 len = sizeof(info);

	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return 0;
	return info.id;
}

/* Attach in MODE, replacing a sipha program left in either mode; the old one
 * in the same mode is swapped atomically (XDP_FLAGS_REPLACE), so the
 * interface is never without a program. */
static int attach(struct sxdp *x, const char *ifname, int ifindex, enum cfg_xdp_mode mode)
{
	LIBBPF_OPTS(bpf_xdp_query_opts, q);
	LIBBPF_OPTS(bpf_xdp_attach_opts, ao);
	__u32 flags = mode == CFG_XDP_NATIVE ? XDP_FLAGS_DRV_MODE : XDP_FLAGS_SKB_MODE;
	__u32 ids[2], modes[2] = { XDP_FLAGS_DRV_MODE, XDP_FLAGS_SKB_MODE };
	int old_fd[2] = { -1, -1 };
	int prog_fd = bpf_program__fd(x->skel->progs.sipha_xdp);
	int err, i;

	err = bpf_xdp_query(ifindex, 0, &q);
	if (err) {
		pr_err("xdp: query %s: %s", ifname, strerror(-err));
		return err;
	}
	if (q.hw_prog_id) {
		pr_err("xdp: %s has an offloaded XDP program (id %u)", ifname, q.hw_prog_id);
		return -EBUSY;
	}
	ids[0] = q.drv_prog_id;
	ids[1] = q.skb_prog_id;
	for (i = 0; i < 2; i++) {
		if (!ids[i])
			continue;
		err = prog_is_ours(ids[i], &old_fd[i]);
		if (err <= 0) {
			err = err ? err : -EBUSY;
			pr_err("xdp: %s already has XDP program %u that is not sipha's: %s", ifname,
			       ids[i], strerror(-err));
			goto out;
		}
		pr_warn("xdp: replacing sipha program %u left on %s", ids[i], ifname);
	}
	/* A leftover in the other mode blocks ours: native and generic cannot
	 * coexist on one interface. */
	for (i = 0; i < 2; i++) {
		if (old_fd[i] < 0 || modes[i] == flags)
			continue;
		ao.old_prog_fd = old_fd[i];
		err = bpf_xdp_detach(ifindex, modes[i] | XDP_FLAGS_REPLACE, &ao);
		if (err) {
			pr_err("xdp: detach old program from %s: %s", ifname, strerror(-err));
			goto out;
		}
	}
	i = flags == XDP_FLAGS_DRV_MODE ? 0 : 1;
	if (old_fd[i] >= 0) {
		ao.old_prog_fd = old_fd[i];
		err = bpf_xdp_attach(ifindex, prog_fd, flags | XDP_FLAGS_REPLACE, &ao);
	} else {
		err = bpf_xdp_attach(ifindex, prog_fd, flags | XDP_FLAGS_UPDATE_IF_NOEXIST, NULL);
	}
	if (err) {
		pr_err("xdp: attach to %s (%s): %s", ifname, sxdp_mode_name(mode), strerror(-err));
		goto out;
	}
	x->ifindex = ifindex;
	x->xdp_flags = flags;
out:
	for (i = 0; i < 2; i++)
		if (old_fd[i] >= 0)
			close(old_fd[i]);
	return err;
}

static int write_config(struct sxdp *x)
{
	__u32 k0 = SXDP_KEY0;
	int err;

	err = bpf_map__update_elem(x->skel->maps.SXDP_MAP_CONFIG, &k0, sizeof(k0), &x->cfg,
				   sizeof(x->cfg), BPF_ANY);
	if (err)
		pr_err("xdp: write config: %s", strerror(-err));
	return err;
}

static int write_role(struct sxdp *x)
{
	__u32 k0 = SXDP_KEY0;
	int err;

	err = bpf_map__update_elem(x->skel->maps.SXDP_MAP_ROLE, &k0, sizeof(k0), &x->role,
				   sizeof(x->role), BPF_ANY);
	if (err)
		pr_err("xdp: write role: %s", strerror(-err));
	return err;
}

static void unpin_all(struct sxdp *x)
{
	struct bpf_map *map;

	bpf_object__for_each_map(map, x->skel->obj)
	{
		const char *path = bpf_map__pin_path(map);

		if (path && unlink(path) && errno != ENOENT)
			pr_warn("xdp: unpin %s: %s", path, strerror(errno));
	}
	if (rmdir(x->pin_dir) && errno != ENOENT)
		pr_warn("xdp: rmdir %s: %s", x->pin_dir, strerror(errno));
	/* The base is shared by the nodes of one host: only an empty one goes. */
	rmdir(SXDP_PIN_BASE);
}

int sxdp_open(struct sxdp **out, const char *node_id, const char *ifname, enum cfg_xdp_mode mode,
	      uint16_t sip_port)
{
	LIBBPF_OPTS(bpf_object_open_opts, oo);
	struct sxdp *x = NULL;
	__u32 k0 = SXDP_KEY0;
	int ifindex = 0;
	int err;

	*out = NULL;
	libbpf_set_print(libbpf_print);
	if (ifname && mode != CFG_XDP_NATIVE && mode != CFG_XDP_GENERIC) {
		pr_err("xdp: attach mode must be native or generic");
		return -EINVAL;
	}
	if (ifname) {
		ifindex = (int)if_nametoindex(ifname);
		if (!ifindex) {
			err = -errno;
			pr_err("xdp: interface %s: %s", ifname, strerror(-err));
			return err;
		}
	}
	x = calloc(1, sizeof(*x));
	if (!x)
		return -ENOMEM;
	x->sentinel = -1;
	pthread_mutex_init(&x->role_mu, NULL);
	err = node_pin_dir(node_id, x->pin_dir, sizeof(x->pin_dir));
	if (err)
		goto out;
	err = bpffs_ensure(x->pin_dir);
	if (err)
		goto out;

	oo.pin_root_path = x->pin_dir;
	x->skel = sipha_xdp_bpf__open_opts(&oo);
	if (!x->skel) {
		err = -errno;
		pr_err("xdp: open BPF object: %s", strerror(-err));
		goto out;
	}
	drop_stale_pins(x->skel->obj);
	err = sipha_xdp_bpf__load(x->skel);
	if (err) {
		pr_err("xdp: load BPF program: %s", strerror(-err));
		goto out;
	}

	/* Reused pins keep the role of the crashed run (an orphaned active
	 * stays silent on ARP until the new daemon decides); the config is ours. */
	if (bpf_map__lookup_elem(x->skel->maps.SXDP_MAP_ROLE, &k0, sizeof(k0), &x->role,
				 sizeof(x->role), 0))
		memset(&x->role, 0, sizeof(x->role));
	x->cfg.sip_ports[0] = sip_port ? sip_port : SXDP_DEFAULT_SIP_PORT;
	x->cfg.prog_id = prog_id_of(bpf_program__fd(x->skel->progs.sipha_xdp));
	if (ifname) {
		x->cfg.ifindex = (__u32)ifindex;
		x->cfg.attach_mode = mode;
	}
	err = write_config(x);
	if (err)
		goto out;
	if (ifname) {
		err = attach(x, ifname, ifindex, mode);
		if (err)
			goto out;
		pr_info("xdp: attached to %s (%s), maps in %s", ifname, sxdp_mode_name(mode),
			x->pin_dir);
	}
	*out = x;
	return 0;
out:
	/* What we pinned must not outlive a failed start. */
	if (x->skel) {
		unpin_all(x);
		sipha_xdp_bpf__destroy(x->skel);
	} else if (x->pin_dir[0]) {
		rmdir(x->pin_dir);
		rmdir(SXDP_PIN_BASE);
	}
	free(x);
	return err;
}

void sxdp_close(struct sxdp *x)
{
	LIBBPF_OPTS(bpf_xdp_attach_opts, ao);
	bool ours = true;
	int err;

	if (!x)
		return;
	if (x->sentinel >= 0)
		close(x->sentinel);
	if (x->ifindex) {
		/* REPLACE with our fd: detach only if the program is still ours. */
		ao.old_prog_fd = bpf_program__fd(x->skel->progs.sipha_xdp);
		err = bpf_xdp_detach(x->ifindex, x->xdp_flags | XDP_FLAGS_REPLACE, &ao);
		if (err == -EEXIST) {
			pr_warn("xdp: program replaced by another run; leaving it and its maps");
			ours = false;
		} else if (err) {
			pr_err("xdp: detach: %s", strerror(-err));
		}
	}
	if (ours)
		unpin_all(x);
	sipha_xdp_bpf__destroy(x->skel);
	free(x);
}

int sxdp_prog_fd(const struct sxdp *x)
{
	return bpf_program__fd(x->skel->progs.sipha_xdp);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

int sxdp_set_role(struct sxdp *x, bool active, const struct cfg_prefix *vip,
		  const uint8_t own_mac[6], const uint8_t peer_mac[6], uint64_t timeout_ns)
{
	struct sxdp_role r = { 0 };
	int err;

	if (!own_mac || (vip && vip->family != AF_INET && vip->family != AF_INET6)) {
		pr_err("xdp: set role: bad arguments");
		return -EINVAL;
	}
	r.role = active ? SXDP_ROLE_ACTIVE : SXDP_ROLE_STANDBY;
	r.timeout_ns = timeout_ns;
	r.heartbeat_ns = now_ns();
	if (vip && vip->family == AF_INET) {
		r.flags |= SXDP_ROLE_F_VIP4;
		memcpy(&r.vip4, &vip->addr.v4, sizeof(r.vip4));
	} else if (vip) {
		r.flags |= SXDP_ROLE_F_VIP6;
		memcpy(r.vip6, &vip->addr.v6, sizeof(r.vip6));
	}
	memcpy(r.own_mac, own_mac, sizeof(r.own_mac));
	if (vip && x->sock_port) {
		r.flags |= SXDP_ROLE_F_SOCK;
		r.sip_port = htons(x->sock_port);
	}
	if (peer_mac) {
		r.flags |= SXDP_ROLE_F_PEER;
		memcpy(r.peer_mac, peer_mac, sizeof(r.peer_mac));
	}
	pthread_mutex_lock(&x->role_mu);
	x->role = r;
	x->role_set = true;
	err = write_role(x);
	pthread_mutex_unlock(&x->role_mu);
	return err;
}

int sxdp_sentinel(struct sxdp *x, int family)
{
	struct sockaddr_storage ss = { .ss_family = (sa_family_t)family };
	socklen_t len =
		family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
	int one = 1, fd;

	if (x->sentinel >= 0)
		return 0;
	fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) ||
	    getsockname(fd, (struct sockaddr *)&ss, &len)) {
		int err = -errno;

		close(fd);
		return err;
	}
	/* Released first when this process dies (core/fdhigh.h). */
	fd = fd_move_high(fd, FD_RANK_SENTINEL);
	x->sentinel = fd;
	x->sock_port = ntohs(family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
					       : ((struct sockaddr_in6 *)&ss)->sin6_port);
	return 0;
}

int sxdp_heartbeat(struct sxdp *x)
{
	/* Stamping the role a crashed run left would revive it before this run
	 * has decided what it is. */
	int err = 0;

	/* From the HA clock's thread too (ha/clock.c): one writer at a time. */
	pthread_mutex_lock(&x->role_mu);
	/* The whole value is rewritten; only the stamp differs from what the
	 * map holds, so a reader never sees a mix of two roles. */
	if (x->role_set) {
		x->role.heartbeat_ns = now_ns();
		err = write_role(x);
	}
	pthread_mutex_unlock(&x->role_mu);
	return err;
}

static void set_limit(struct sxdp_limit *l, unsigned rate, unsigned burst)
{
	l->interval_ns = rate ? NSEC_PER_SEC / rate : 0;
	l->tolerance_ns = rate ? (uint64_t)(burst - 1) * l->interval_ns : 0;
}

int sxdp_set_rates(struct sxdp *x, unsigned invite_rate, unsigned register_rate, unsigned burst)
{
	unsigned top = invite_rate > register_rate ? invite_rate : register_rate;

	if (!burst)
		burst = top > UINT_MAX / 2 ? UINT_MAX : 2 * top;
	if (!burst)
		burst = 1;
	x->cfg.invite_rate = invite_rate;
	x->cfg.register_rate = register_rate;
	x->cfg.burst = burst;
	set_limit(&x->cfg.limit[SXDP_LIMIT_INVITE], invite_rate, burst);
	set_limit(&x->cfg.limit[SXDP_LIMIT_REGISTER], register_rate, burst);
	return write_config(x);
}

static int read_counters(int fd, uint64_t out[SXDP_NCOUNTERS])
{
	int ncpu = libbpf_num_possible_cpus();
	uint64_t *vals;
	int err = 0;

	if (ncpu <= 0)
		return ncpu ? ncpu : -EINVAL;
	vals = calloc((size_t)ncpu, sizeof(*vals));
	if (!vals)
		return -ENOMEM;
	for (__u32 i = 0; i < SXDP_NCOUNTERS; i++) {
		out[i] = 0;
		if (bpf_map_lookup_elem(fd, &i, vals)) {
			err = -errno;
			pr_err("xdp: read counter %s: %s", counter_names[i], strerror(-err));
			goto out;
		}
		for (int c = 0; c < ncpu; c++)
			out[i] += vals[c];
	}
out:
	free(vals);
	return err;
}

int sxdp_counters(struct sxdp *x, uint64_t out[SXDP_NCOUNTERS])
{
	return read_counters(bpf_map__fd(x->skel->maps.SXDP_MAP_COUNTERS), out);
}

int sxdp_pinned_counters(const char *node_id, uint64_t out[SXDP_NCOUNTERS])
{
	int fd = pinned_map_fd(node_id, SXDP_NAME(SXDP_MAP_COUNTERS));
	int err;

	if (fd < 0)
		return fd;
	err = read_counters(fd, out);
	close(fd);
	return err;
}

/* Strict "ADDR[/LEN]": no spaces, no signs, LEN within the family. */
static int parse_prefix(const char *s, int *family, uint8_t addr[16], unsigned *plen)
{
	char buf[INET6_ADDRSTRLEN + 8];
	const char *slash = strchr(s, '/');
	size_t alen = slash ? (size_t)(slash - s) : strlen(s);
	unsigned max, len = 0;

	if (alen == 0 || alen >= INET6_ADDRSTRLEN)
		return -EINVAL;
	memcpy(buf, s, alen);
	buf[alen] = '\0';
	if (inet_pton(AF_INET, buf, addr) == 1) {
		*family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, buf, addr) == 1) {
		*family = AF_INET6;
		max = 128;
	} else {
		return -EINVAL;
	}
	if (!slash) {
		*plen = max;
		return 0;
	}
	slash++;
	if (!*slash || strlen(slash) > 3)
		return -EINVAL;
	for (const char *p = slash; *p; p++) {
		if (*p < '0' || *p > '9')
			return -EINVAL;
		len = len * 10 + (unsigned)(*p - '0');
	}
	if (len > max)
		return -EINVAL;
	*plen = len;
	return 0;
}

static void clear_host_bits(uint8_t *addr, unsigned bytes, unsigned plen)
{
	for (unsigned i = 0; i < bytes; i++) {
		unsigned keep = plen > i * 8 ? plen - i * 8 : 0;

		if (keep < 8)
			addr[i] &= (uint8_t)(0xff00u >> keep);
	}
}

/* FD4/FD6: the two blocklist tries. */
static int block_update(int fd4, int fd6, const char *prefix, bool add)
{
	struct sxdp_lpm4 k4 = { 0 };
	struct sxdp_lpm6 k6 = { 0 };
	uint8_t addr[16];
	unsigned plen;
	__u32 one = 1;
	void *key;
	int family, fd, err;

	err = parse_prefix(prefix, &family, addr, &plen);
	if (err) {
		pr_err("xdp: bad prefix '%s'", prefix);
		return err;
	}
	if (family == AF_INET) {
		clear_host_bits(addr, 4, plen);
		k4.prefixlen = plen;
		memcpy(k4.addr, addr, 4);
		key = &k4;
		fd = fd4;
	} else {
		clear_host_bits(addr, 16, plen);
		k6.prefixlen = plen;
		memcpy(k6.addr, addr, 16);
		key = &k6;
		fd = fd6;
	}
	err = add ? bpf_map_update_elem(fd, key, &one, BPF_ANY) : bpf_map_delete_elem(fd, key);
	if (err) {
		err = -errno;
		if (add || err != -ENOENT)
			pr_err("xdp: %s %s: %s", add ? "block" : "unblock", prefix, strerror(-err));
	}
	return err;
}

int sxdp_block(struct sxdp *x, const char *prefix, bool add)
{
	return block_update(bpf_map__fd(x->skel->maps.SXDP_MAP_BLOCK4),
			    bpf_map__fd(x->skel->maps.SXDP_MAP_BLOCK6), prefix, add);
}

int sxdp_pinned_block(const char *node_id, const char *prefix, bool add)
{
	int fd4 = -1, fd6 = -1, err;

	fd4 = pinned_map_fd(node_id, SXDP_NAME(SXDP_MAP_BLOCK4));
	if (fd4 < 0)
		return fd4;
	fd6 = pinned_map_fd(node_id, SXDP_NAME(SXDP_MAP_BLOCK6));
	if (fd6 < 0) {
		err = fd6;
		goto out;
	}
	err = block_update(fd4, fd6, prefix, add);
out:
	close(fd4);
	if (fd6 >= 0)
		close(fd6);
	return err;
}

int sxdp_pinned_status(const char *node_id, struct sxdp_status *st)
{
	LIBBPF_OPTS(bpf_xdp_query_opts, q);
	struct sxdp_config cfg;
	__u32 k0 = SXDP_KEY0;
	int fd, err;

	memset(st, 0, sizeof(*st));
	fd = pinned_map_fd(node_id, SXDP_NAME(SXDP_MAP_CONFIG));
	if (fd < 0)
		return fd;
	err = bpf_map_lookup_elem(fd, &k0, &cfg);
	if (err) {
		err = -errno;
		pr_err("xdp: read config: %s", strerror(-err));
		goto out;
	}
	st->prog_id = cfg.prog_id;
	st->invite_rate = cfg.invite_rate;
	st->register_rate = cfg.register_rate;
	st->burst = cfg.burst;
	st->ifindex = cfg.ifindex;
	st->mode = cfg.ifindex ? (enum cfg_xdp_mode)cfg.attach_mode : CFG_XDP_OFF;
	if (!cfg.ifindex)
		goto out;
	if (!if_indextoname(cfg.ifindex, st->ifname))
		st->ifname[0] = '\0';
	/* The daemon may have died and someone else attached since. */
	if (!bpf_xdp_query((int)cfg.ifindex, 0, &q))
		st->attached = cfg.prog_id &&
			       (cfg.attach_mode == CFG_XDP_NATIVE ? q.drv_prog_id
								  : q.skb_prog_id) == cfg.prog_id;
out:
	close(fd);
	return err;
}
