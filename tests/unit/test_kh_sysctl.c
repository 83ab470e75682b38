/* kernel-helpers: sysctl.c and bpffs.c.  The process moves into private
 * network and mount namespaces first, so the values it changes and the bpffs
 * it mounts are its own. */
#include <errno.h>
#include <linux/magic.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "bpffs.h"
#include "sysctl.h"

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;
	int rc;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	rc = system(cmd);
	return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

/* The value in a /proc/sys file, read without sysctl.c. */
static int read_proc(const char *rel)
{
	char path[256];
	FILE *f;
	int v = -12345;

	snprintf(path, sizeof(path), "/proc/sys/%s", rel);
	f = fopen(path, "r");
	assert_non_null(f);
	assert_int_equal(fscanf(f, "%d", &v), 1);
	fclose(f);
	return v;
}

static void write_proc(const char *rel, int v)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/sys/%s", rel);
	f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "%d\n", v);
	assert_int_equal(fclose(f), 0);
}

static int group_setup(void **state)
{
	(void)state;
	if (unshare(CLONE_NEWNET | CLONE_NEWNS) < 0) {
		fprintf(stderr, "unshare: %s\n", strerror(errno));
		return -1;
	}
	/* Mounts made from here on stay in this namespace. */
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
		fprintf(stderr, "mount --make-rprivate /: %s\n", strerror(errno));
		return -1;
	}
	return sh("ip link add ks0 type veth peer name ks1") ? -1 : 0;
}

/* ---- sysctl ---------------------------------------------------------------- */

static void test_sysctl_roundtrip(void **state)
{
	int v = -1;

	(void)state;
	assert_int_equal(sysctl_set_int("net/ipv4/conf/ks0/arp_ignore", 1), 0);
	assert_int_equal(read_proc("net/ipv4/conf/ks0/arp_ignore"), 1);
	assert_int_equal(sysctl_get_int("net/ipv4/conf/ks0/arp_ignore", &v), 0);
	assert_int_equal(v, 1);

	/* Absolute paths, and a value written by someone else. */
	write_proc("net/ipv4/conf/ks0/arp_ignore", 2);
	assert_int_equal(sysctl_get_int("/proc/sys/net/ipv4/conf/ks0/arp_ignore", &v), 0);
	assert_int_equal(v, 2);
	assert_int_equal(sysctl_set_int("/proc/sys/net/ipv4/conf/ks0/arp_ignore", 0), 0);
	assert_int_equal(read_proc("net/ipv4/conf/ks0/arp_ignore"), 0);

	/* Negative values survive the trip. */
	assert_int_equal(sysctl_set_int("net/ipv4/conf/ks0/medium_id", -1), 0);
	assert_int_equal(sysctl_get_int("net/ipv4/conf/ks0/medium_id", &v), 0);
	assert_int_equal(v, -1);
	assert_int_equal(sysctl_set_int("net/ipv4/conf/ks0/medium_id", 0), 0);
}

static void test_sysctl_bad(void **state)
{
	int v = 77;

	(void)state;
	assert_int_equal(sysctl_get_int("net/ipv4/no_such_key", &v), -ENOENT);
	assert_int_equal(sysctl_set_int("net/ipv4/no_such_key", 1), -ENOENT);
	/* Three numbers are not one. */
	assert_int_equal(sysctl_get_int("net/ipv4/tcp_rmem", &v), -EINVAL);
	/* A directory. */
	assert_int_equal(sysctl_get_int("net/ipv4", &v), -EISDIR);
	/* The kernel refuses a value out of range (ip_default_ttl: 1..255). */
	assert_int_equal(sysctl_set_int("net/ipv4/ip_default_ttl", 0), -EINVAL);
	assert_int_not_equal(read_proc("net/ipv4/ip_default_ttl"), 0);
	assert_int_equal(v, 77);
	assert_int_equal(sysctl_get_int(NULL, &v), -EINVAL);
	assert_int_equal(sysctl_get_int("", &v), -EINVAL);
	assert_int_equal(sysctl_get_int("net/ipv4/ip_forward", NULL), -EINVAL);
	assert_int_equal(sysctl_set_int(NULL, 1), -EINVAL);
}

static void test_ha_sysctl_check(void **state)
{
	const int all = HA_SYSCTL_NONLOCAL_BIND | HA_SYSCTL_ARP_IGNORE | HA_SYSCTL_ARP_ANNOUNCE |
			HA_SYSCTL_PROMOTE_SECONDARIES;

	(void)state;
	write_proc("net/ipv4/ip_nonlocal_bind", 0);
	write_proc("net/ipv4/conf/all/arp_ignore", 0);
	write_proc("net/ipv4/conf/ks0/arp_ignore", 0);
	write_proc("net/ipv4/conf/all/arp_announce", 0);
	write_proc("net/ipv4/conf/ks0/arp_announce", 0);
	write_proc("net/ipv4/conf/all/promote_secondaries", 0);
	write_proc("net/ipv4/conf/ks0/promote_secondaries", 0);
	assert_int_equal(ha_sysctl_check("ks0"), all);

	/* Fixed one at a time, on the interface. */
	write_proc("net/ipv4/ip_nonlocal_bind", 1);
	assert_int_equal(ha_sysctl_check("ks0"), all & ~HA_SYSCTL_NONLOCAL_BIND);
	write_proc("net/ipv4/conf/ks0/arp_ignore", 1);
	assert_int_equal(ha_sysctl_check("ks0"),
			 HA_SYSCTL_ARP_ANNOUNCE | HA_SYSCTL_PROMOTE_SECONDARIES);
	write_proc("net/ipv4/conf/ks0/arp_announce", 2);
	assert_int_equal(ha_sysctl_check("ks0"), HA_SYSCTL_PROMOTE_SECONDARIES);
	write_proc("net/ipv4/conf/ks0/promote_secondaries", 1);
	assert_int_equal(ha_sysctl_check("ks0"), 0);
	/* The other interface still has the defaults. */
	assert_int_equal(ha_sysctl_check("ks1"), HA_SYSCTL_ARP_IGNORE | HA_SYSCTL_ARP_ANNOUNCE |
							 HA_SYSCTL_PROMOTE_SECONDARIES);

	/* conf/all counts as the kernel counts it: the larger value for
	 * arp_ignore (8 = never answer), either one for promote_secondaries. */
	write_proc("net/ipv4/conf/all/arp_ignore", 8);
	assert_int_equal(ha_sysctl_check("ks0"), HA_SYSCTL_ARP_IGNORE);
	write_proc("net/ipv4/conf/all/arp_ignore", 2);
	assert_int_equal(ha_sysctl_check("ks0"), 0);
	write_proc("net/ipv4/conf/all/arp_ignore", 0);
	write_proc("net/ipv4/conf/all/promote_secondaries", 1);
	write_proc("net/ipv4/conf/ks1/promote_secondaries", 0);
	assert_int_equal(ha_sysctl_check("ks1"), HA_SYSCTL_ARP_IGNORE | HA_SYSCTL_ARP_ANNOUNCE);

	assert_int_equal(ha_sysctl_check("nosuch0"), -ENODEV);
	assert_int_equal(ha_sysctl_check("../all"), -EINVAL);
	assert_int_equal(ha_sysctl_check(".."), -EINVAL);
	assert_int_equal(ha_sysctl_check(""), -EINVAL);
	assert_int_equal(ha_sysctl_check(NULL), -EINVAL);
	assert_int_equal(ha_sysctl_check("a-name-far-too-long-for-linux"), -EINVAL);
}

/* ---- bpffs ----------------------------------------------------------------- */

static int count_bpf_mounts(const char *mnt)
{
	char line[1024], fstype[64], where[512];
	FILE *f = fopen("/proc/self/mounts", "r");
	int n = 0;

	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%*s %511s %63s", where, fstype) == 2 && !strcmp(fstype, "bpf") &&
		    !strcmp(where, mnt))
			n++;
	}
	fclose(f);
	return n;
}

static void assert_dir_on_bpffs(const char *path)
{
	struct statfs sfs;
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(statfs(path, &sfs), 0);
	assert_true(sfs.f_type == BPF_FS_MAGIC);
}

static void test_bpffs_ensure(void **state)
{
	char top[128], path[192];
	struct statfs sfs;

	(void)state;
	snprintf(top, sizeof(top), BPFFS_ROOT "/sipha-t%d", (int)getpid());
	snprintf(path, sizeof(path), "%s/a/b", top);
	/* Start from no bpffs, in this mount namespace only, so that the
	 * mount itself is tested whatever the system has. */
	while (umount2(BPFFS_ROOT, MNT_DETACH) == 0)
		;
	assert_int_equal(count_bpf_mounts(BPFFS_ROOT), 0);
	assert_int_equal(statfs(BPFFS_ROOT, &sfs), 0);
	assert_false(sfs.f_type == BPF_FS_MAGIC);

	assert_int_equal(bpffs_ensure(path), 0);
	assert_dir_on_bpffs(BPFFS_ROOT);
	assert_dir_on_bpffs(path);
	assert_int_equal(count_bpf_mounts(BPFFS_ROOT), 1);

	/* Again, and with a trailing slash: nothing mounted twice. */
	assert_int_equal(bpffs_ensure(path), 0);
	strcat(path, "/");
	assert_int_equal(bpffs_ensure(path), 0);
	assert_int_equal(count_bpf_mounts(BPFFS_ROOT), 1);
	assert_int_equal(bpffs_ensure(BPFFS_ROOT), 0);

	snprintf(path, sizeof(path), "%s/a/b", top);
	assert_int_equal(rmdir(path), 0);
	snprintf(path, sizeof(path), "%s/a", top);
	assert_int_equal(rmdir(path), 0);
	assert_int_equal(rmdir(top), 0);
}

static void test_bpffs_other_root(void **state)
{
	char root[] = "/tmp/sipha-bpffs-XXXXXX", path[128];

	(void)state;
	assert_non_null(mkdtemp(root));
	snprintf(path, sizeof(path), "%s/x/y/z", root);
	assert_int_equal(bpffs_ensure_at(root, path), 0);
	assert_dir_on_bpffs(root);
	assert_dir_on_bpffs(path);
	assert_int_equal(count_bpf_mounts(root), 1);
	assert_int_equal(umount2(root, MNT_DETACH), 0);
	assert_int_equal(rmdir(root), 0);
	/* A root that does not exist. */
	assert_int_equal(bpffs_ensure_at(root, path), -ENOENT);
}

static void test_bpffs_bad(void **state)
{
	(void)state;
	assert_int_equal(bpffs_ensure(NULL), -EINVAL);
	assert_int_equal(bpffs_ensure(""), -EINVAL);
	assert_int_equal(bpffs_ensure("/tmp/x"), -EINVAL);
	assert_int_equal(bpffs_ensure("/sys/fs/bpfx"), -EINVAL);
	assert_int_equal(bpffs_ensure("sys/fs/bpf/x"), -EINVAL);
	assert_int_equal(bpffs_ensure("/sys/fs/bpf/../../../tmp/x"), -EINVAL);
	assert_int_equal(bpffs_ensure("/sys/fs/bpf/a/.."), -EINVAL);
	assert_int_equal(bpffs_ensure_at(NULL, "/x"), -EINVAL);
	assert_int_equal(bpffs_ensure_at("relative", "relative/x"), -EINVAL);
}

/* ".." is refused as a path component, not inside a name: such a name
 * reaches the kernel, which refuses it itself (bpffs reserves dots in names). */
static void test_bpffs_dotted_name(void **state)
{
	char path[128];

	(void)state;
	snprintf(path, sizeof(path), BPFFS_ROOT "/sipha-t%d..x", (int)getpid());
	assert_int_equal(bpffs_ensure(path), -EPERM);
	assert_int_equal(access(path, F_OK), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sysctl_roundtrip),  cmocka_unit_test(test_sysctl_bad),
		cmocka_unit_test(test_ha_sysctl_check),	  cmocka_unit_test(test_bpffs_ensure),
		cmocka_unit_test(test_bpffs_other_root),  cmocka_unit_test(test_bpffs_bad),
		cmocka_unit_test(test_bpffs_dotted_name),
	};

	return cmocka_run_group_tests(tests, group_setup, NULL);
}
