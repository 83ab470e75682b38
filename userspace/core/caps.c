/* Least privilege after start-up: see caps.h and docs/SECURITY.md. */
#include <errno.h>
#include <linux/bpf.h>
#include <stdio.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/caps.h"
#include "core/log.h"

void caps_for_config(const struct sipha_config *cfg, struct caps_keep *out)
{
	bool xdp = cfg->xdp.mode != CFG_XDP_OFF;

	out->net_admin = cfg->vip.present || xdp;
	out->bpf = xdp;
}

static int lower_effective(const cap_value_t *v, int n)
{
	cap_t c = cap_get_proc();
	int ret = 0;

	if (!c)
		return -errno;
	if (cap_set_flag(c, CAP_EFFECTIVE, n, v, CAP_CLEAR) || cap_set_proc(c))
		ret = -errno;
	cap_free(c);
	return ret;
}

bool caps_bpf_checked(void)
{
	const cap_value_t v[] = { CAP_SYS_ADMIN, CAP_BPF };
	union bpf_attr attr;
	long r;

	/* CAP_BPF unknown to the kernel (before 5.8): lowering it is an
	 * error, and CAP_SYS_ADMIN is what bpf() checks there. */
	if (lower_effective(v, CAP_IS_SUPPORTED(CAP_BPF) ? 2 : 1))
		return true;
	memset(&attr, 0, sizeof(attr));
	attr.map_fd = (__u32)-1;
	r = syscall(__NR_bpf, BPF_MAP_LOOKUP_ELEM, &attr, sizeof(attr));
	/* -EBADF: the fd was looked at, so no capability was asked for. */
	return r < 0 && errno == EPERM;
}

/* CAP in our permitted set? */
static bool have(cap_t cur, cap_value_t cap)
{
	cap_flag_value_t v = CAP_CLEAR;

	return !cap_get_flag(cur, cap, CAP_PERMITTED, &v) && v == CAP_SET;
}

int caps_drop(const struct caps_keep *keep)
{
	cap_value_t want[2], kept[2];
	int nwant = 0, nkept = 0, ret = 0, i;
	char names[96] = "";
	bool bound = true;
	cap_t cur = NULL, next = NULL;
	size_t off = 0;

	if (keep->net_admin)
		want[nwant++] = CAP_NET_ADMIN;
	if (keep->bpf && caps_bpf_checked())
		want[nwant++] = CAP_IS_SUPPORTED(CAP_BPF) ? CAP_BPF : CAP_SYS_ADMIN;
	cur = cap_get_proc();
	next = cap_init();
	if (!cur || !next) {
		ret = -errno;
		pr_err("caps: %s", strerror(-ret));
		goto out;
	}
	for (i = 0; i < nwant; i++)
		if (have(cur, want[i]))
			kept[nkept++] = want[i];
	/* The bounding set first: dropping from it needs CAP_SETPCAP, which
	 * goes with the rest below. */
	for (cap_value_t c = 0; c < (cap_value_t)cap_max_bits(); c++) {
		bool k = false;

		for (i = 0; i < nkept; i++)
			k |= kept[i] == c;
		if (k || cap_get_bound(c) != 1)
			continue;
		if (cap_drop_bound(c)) {
			if (errno != EPERM) {
				ret = -errno;
				pr_err("caps: drop capability %d from the bounding set: %s", c,
				       strerror(-ret));
				goto out;
			}
			bound = false;
			break;
		}
	}
	if (nkept && (cap_set_flag(next, CAP_PERMITTED, nkept, kept, CAP_SET) ||
		      cap_set_flag(next, CAP_EFFECTIVE, nkept, kept, CAP_SET))) {
		ret = -errno;
		pr_err("caps: %s", strerror(-ret));
		goto out;
	}
	if (cap_set_proc(next)) {
		ret = -errno;
		pr_err("caps: cannot drop capabilities: %s", strerror(-ret));
		goto out;
	}
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) && errno != EINVAL) {
		ret = -errno;
		pr_err("caps: clear the ambient set: %s", strerror(-ret));
		goto out;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) {
		ret = -errno;
		pr_err("caps: no_new_privs: %s", strerror(-ret));
		goto out;
	}
	for (i = 0; i < nkept; i++) {
		char *n = cap_to_name(kept[i]);

		off += (size_t)snprintf(names + off, sizeof(names) - off, "%s%s", i ? "," : "",
					n ? n : "?");
		cap_free(n);
		if (off >= sizeof(names))
			break;
	}
	pr_info("caps: keeping %s; the rest dropped%s, no_new_privs set", nkept ? names : "none",
		bound ? ", the bounding set too"
		      : " (the bounding set is as we were started: no "
			"CAP_SETPCAP)");
out:
	cap_free(cur);
	cap_free(next);
	return ret;
}
