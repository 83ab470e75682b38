#include <errno.h>
#include <limits.h>
#include <linux/magic.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>

#include "bpffs.h"
#include "core/log.h"

/* PATH is ROOT or below it, with no ".." that could lead out. */
static int bpffs_inside(const char *root, const char *path, size_t *rootlen)
{
	size_t rl = strlen(root);
	const char *p;

	while (rl > 1 && root[rl - 1] == '/')
		rl--;
	if (root[0] != '/' || strncmp(path, root, rl) || (path[rl] && path[rl] != '/'))
		return -EINVAL;
	for (p = path; (p = strstr(p, "..")); p += 2) {
		if (p[-1] == '/' && (p[2] == '/' || !p[2]))
			return -EINVAL;
	}
	*rootlen = rl;
	return 0;
}

static int bpffs_mkdir(const char *dir)
{
	struct stat st;

	if (!mkdir(dir, 0700))
		return 0;
	if (errno != EEXIST)
		return -errno;
	if (stat(dir, &st) < 0)
		return -errno;
	return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

int bpffs_ensure_at(const char *root, const char *path)
{
	char buf[PATH_MAX], rootbuf[PATH_MAX];
	struct statfs sfs;
	size_t rl, len;
	int err;

	if (!root || !path) {
		err = -EINVAL;
		goto out;
	}
	err = bpffs_inside(root, path, &rl);
	if (err)
		goto out;
	len = strlen(path);
	if (len >= sizeof(buf)) {
		err = -ENAMETOOLONG;
		goto out;
	}
	memcpy(rootbuf, path, rl);
	rootbuf[rl] = '\0';
	if (statfs(rootbuf, &sfs) < 0) {
		err = -errno;
		pr_err("bpffs: %s: %s", rootbuf, strerror(-err));
		goto out;
	}
	if (sfs.f_type != BPF_FS_MAGIC) {
		if (mount("bpf", rootbuf, "bpf", 0, "mode=0700") < 0) {
			err = -errno;
			pr_err("bpffs: mount on %s: %s", rootbuf, strerror(-err));
			goto out;
		}
		pr_info("bpffs: mounted on %s", rootbuf);
	}
	memcpy(buf, path, len + 1);
	/* mkdir -p below the mount point, one component at a time. */
	for (size_t i = rl + 1; i <= len; i++) {
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		if (buf[i - 1] == '/')
			continue;
		buf[i] = '\0';
		err = bpffs_mkdir(buf);
		buf[i] = path[i];
		if (err) {
			pr_err("bpffs: mkdir %.*s: %s", (int)i, path, strerror(-err));
			goto out;
		}
	}
out:
	return err;
}

int bpffs_ensure(const char *path)
{
	return bpffs_ensure_at(BPFFS_ROOT, path);
}
