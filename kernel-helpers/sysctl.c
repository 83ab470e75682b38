#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "sysctl.h"

#define SYSCTL_ROOT "/proc/sys/"

static int sysctl_path(const char *path, char *buf, size_t len)
{
	int n;

	if (!path || !*path)
		return -EINVAL;
	n = snprintf(buf, len, "%s%s", path[0] == '/' ? "" : SYSCTL_ROOT, path);
	return n > 0 && (size_t)n < len ? 0 : -ENAMETOOLONG;
}

int sysctl_get_int(const char *path, int *val)
{
	char full[PATH_MAX], text[64], *end;
	int fd = -1, err;
	ssize_t n;
	long v;

	err = sysctl_path(path, full, sizeof(full));
	if (err)
		goto out;
	if (!val) {
		err = -EINVAL;
		goto out;
	}
	fd = open(full, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		err = -errno;
		goto out;
	}
	n = read(fd, text, sizeof(text) - 1);
	if (n < 0) {
		err = -errno;
		goto out;
	}
	text[n] = '\0';
	errno = 0;
	v = strtol(text, &end, 10);
	if (end == text || errno || v < INT_MIN || v > INT_MAX) {
		err = -EINVAL;
		goto out;
	}
	/* A vector like tcp_rmem ("4096 131072 6291456") is not one int. */
	while (*end == ' ' || *end == '\t' || *end == '\n')
		end++;
	if (*end) {
		err = -EINVAL;
		goto out;
	}
	*val = (int)v;
out:
	if (fd >= 0)
		close(fd);
	return err;
}

int sysctl_set_int(const char *path, int val)
{
	char full[PATH_MAX], text[16];
	int fd = -1, len, err;
	ssize_t n;

	err = sysctl_path(path, full, sizeof(full));
	if (err)
		goto out;
	fd = open(full, O_WRONLY | O_CLOEXEC);
	if (fd < 0) {
		err = -errno;
		goto out;
	}
	len = snprintf(text, sizeof(text), "%d\n", val);
	n = write(fd, text, (size_t)len);
	if (n < 0) {
		err = -errno;
		goto out;
	}
	if (n != len)
		err = -EIO;
out:
	if (fd >= 0)
		close(fd);
	if (err)
		pr_debug("sysctl: %s = %d: %s", path ? path : "(null)", val, strerror(-err));
	return err;
}

/* conf/all and conf/IF values of KEY. */
static int conf_pair(const char *ifname, const char *key, int *all, int *dev)
{
	char path[128];
	int err;

	snprintf(path, sizeof(path), "net/ipv4/conf/all/%s", key);
	err = sysctl_get_int(path, all);
	if (err)
		goto out;
	snprintf(path, sizeof(path), "net/ipv4/conf/%s/%s", ifname, key);
	err = sysctl_get_int(path, dev);
out:
	if (err)
		pr_err("sysctl: read %s for %s: %s", key, ifname, strerror(-err));
	return err;
}

int ha_sysctl_check(const char *ifname)
{
	char dir[128];
	int mask = 0, v, all, dev, err;

	/* The name becomes a path component: no way out of conf/. */
	if (!ifname || !*ifname || strlen(ifname) >= IF_NAMESIZE || strchr(ifname, '/') ||
	    !strcmp(ifname, ".") || !strcmp(ifname, ".."))
		return -EINVAL;
	snprintf(dir, sizeof(dir), SYSCTL_ROOT "net/ipv4/conf/%s", ifname);
	if (access(dir, F_OK) < 0)
		return errno == ENOENT ? -ENODEV : -errno;

	err = sysctl_get_int("net/ipv4/ip_nonlocal_bind", &v);
	if (err) {
		pr_err("sysctl: read net.ipv4.ip_nonlocal_bind: %s", strerror(-err));
		return err;
	}
	if (v == 0) {
		mask |= HA_SYSCTL_NONLOCAL_BIND;
		pr_warn("sysctl: net.ipv4.ip_nonlocal_bind = %d: sockets cannot bind the VIP "
			"while the peer holds it; set it to 1",
			v);
	}

	err = conf_pair(ifname, "arp_ignore", &all, &dev);
	if (err)
		return err;
	v = all > dev ? all : dev; /* the kernel applies the larger */
	if (v != 1 && v != 2) {
		mask |= HA_SYSCTL_ARP_IGNORE;
		pr_warn("sysctl: arp_ignore on %s is %d (all %d, %s %d): %s; set it to 1", ifname,
			v, all, ifname, dev,
			v == 0 ? "the node answers ARP for every local address on every interface"
			       : "the node may not answer ARP for the VIP");
	}

	err = conf_pair(ifname, "arp_announce", &all, &dev);
	if (err)
		return err;
	v = all > dev ? all : dev;
	if (v == 0) {
		mask |= HA_SYSCTL_ARP_ANNOUNCE;
		pr_warn("sysctl: arp_announce on %s is 0: ARP requests may carry an address of "
			"another interface; set it to 2",
			ifname);
	}

	err = conf_pair(ifname, "promote_secondaries", &all, &dev);
	if (err)
		return err;
	if (!all && !dev) {
		mask |= HA_SYSCTL_PROMOTE_SECONDARIES;
		pr_warn("sysctl: promote_secondaries is off on %s: removing the primary address "
			"of the VIP's subnet would remove the VIP too; set it to 1",
			ifname);
	}
	return mask;
}
