/* Least privilege (core/caps.c): which capabilities a configuration keeps,
 * whether the kernel checks CAP_BPF for bpf() on open fds (against the
 * kernel version, a different way of knowing than the probe), and the drop
 * itself, in a child process, read back from /proc/self/status. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/caps.h"

static void test_for_config(void **state)
{
	struct sipha_config cfg;
	struct caps_keep k;

	(void)state;
	memset(&cfg, 0, sizeof(cfg));
	cfg.xdp.mode = CFG_XDP_OFF;
	caps_for_config(&cfg, &k);
	assert_false(k.net_admin);
	assert_false(k.bpf);
	cfg.vip.present = true;
	caps_for_config(&cfg, &k);
	assert_true(k.net_admin);
	assert_false(k.bpf);
	cfg.vip.present = false;
	cfg.xdp.mode = CFG_XDP_GENERIC;
	caps_for_config(&cfg, &k);
	assert_true(k.net_admin);
	assert_true(k.bpf);
	cfg.vip.present = true;
	cfg.xdp.mode = CFG_XDP_NATIVE;
	caps_for_config(&cfg, &k);
	assert_true(k.net_admin);
	assert_true(k.bpf);
}

/* Before 6.5 every bpf() command is refused without CAP_BPF when
 * unprivileged BPF is disabled; from 6.5 only loading is. */
static bool kernel_checks_bpf(void)
{
	struct utsname u;
	unsigned maj = 0, min = 0;
	int v = 0;
	FILE *f;

	if (uname(&u) || sscanf(u.release, "%u.%u", &maj, &min) != 2)
		return true;
	if (maj > 6 || (maj == 6 && min >= 5))
		return false;
	f = fopen("/proc/sys/kernel/unprivileged_bpf_disabled", "r");
	if (!f)
		return true;
	if (fscanf(f, "%d", &v) != 1)
		v = 1;
	fclose(f);
	return v != 0;
}

/* Runs FN in a child; its exit status. */
static int in_child(int (*fn)(void))
{
	int st = 0;
	pid_t pid = fork();

	if (pid == 0)
		_exit(fn());
	assert_true(pid > 0);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	return WEXITSTATUS(st);
}

static int child_probe(void)
{
	return caps_bpf_checked() == kernel_checks_bpf() ? 0 : 1;
}

static void test_bpf_probe(void **state)
{
	(void)state;
	assert_int_equal(in_child(child_probe), 0);
}

/* One line of /proc/self/status as a number (hex for the Cap* lines). */
static unsigned long long status_field(const char *name)
{
	char line[256];
	size_t n = strlen(name);
	unsigned long long v = ~0ull;
	FILE *f = fopen("/proc/self/status", "r");

	if (!f)
		return v;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, name, n) && line[n] == ':')
			v = strtoull(line + n + 1, NULL, !strncmp(name, "Cap", 3) ? 16 : 10);
	fclose(f);
	return v;
}

static bool permitted(cap_value_t c)
{
	cap_t cur = cap_get_proc();
	cap_flag_value_t v = CAP_CLEAR;

	if (cur) {
		cap_get_flag(cur, c, CAP_PERMITTED, &v);
		cap_free(cur);
	}
	return v == CAP_SET;
}

static int check_after(unsigned long long want, bool bound_dropped)
{
	if (status_field("CapEff") != want || status_field("CapPrm") != want)
		return 10;
	if (status_field("CapInh") || status_field("CapAmb"))
		return 11;
	if (bound_dropped && status_field("CapBnd") != want)
		return 12;
	if (status_field("NoNewPrivs") != 1)
		return 13;
	return 0;
}

static int child_keep_net_admin(void)
{
	struct caps_keep k = { .net_admin = true, .bpf = false };
	bool had = permitted(CAP_NET_ADMIN), setpcap = permitted(CAP_SETPCAP);

	if (caps_drop(&k))
		return 2;
	return check_after(had ? 1ull << CAP_NET_ADMIN : 0, setpcap);
}

static int child_keep_nothing(void)
{
	struct caps_keep k = { 0 };
	bool setpcap = permitted(CAP_SETPCAP);

	if (caps_drop(&k))
		return 2;
	/* Really gone: raising one again is refused. */
	{
		cap_t c = cap_get_proc();
		cap_value_t v = CAP_NET_ADMIN;
		int r;

		cap_set_flag(c, CAP_EFFECTIVE, 1, &v, CAP_SET);
		r = cap_set_proc(c);
		cap_free(c);
		if (!r)
			return 3;
	}
	return check_after(0, setpcap);
}

static void test_drop(void **state)
{
	(void)state;
	assert_int_equal(in_child(child_keep_net_admin), 0);
	assert_int_equal(in_child(child_keep_nothing), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_for_config),
		cmocka_unit_test(test_bpf_probe),
		cmocka_unit_test(test_drop),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
