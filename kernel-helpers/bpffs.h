/* The BPF filesystem, where the XDP maps are pinned.
 *
 * bpffs_ensure(PATH) mounts bpffs on /sys/fs/bpf unless a bpffs is already
 * there (many systems mount it at boot; a second mount would hide pins made
 * in the first), then creates PATH and its missing parents (mode 0700: pinned
 * maps are control surfaces).  PATH must be /sys/fs/bpf or below it.
 * Returns 0 or -errno (-EINVAL for a PATH outside, -ENOTDIR when a component
 * is a file, -EPERM without CAP_SYS_ADMIN for the mount). */
#ifndef SIPHA_BPFFS_H
#define SIPHA_BPFFS_H

#define BPFFS_ROOT "/sys/fs/bpf"

int bpffs_ensure(const char *path);

/* The same with another mount point: PATH must be ROOT or below it.  ROOT
 * must exist. */
int bpffs_ensure_at(const char *root, const char *path);

#endif
