/* Unit tests of userspace/core/config.c: every key parsed, every default, and
 * every error path with its exact "PATH:LINE: KEY: REASON" message. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <cmocka.h>
#include <ini.h>

#include "core/config.h"

/* The smallest valid file: 7 lines, so a line appended to it is line 8. */
#define NODE "[node]\nid = a\n" /* lines 1-2 */
#define SIP "[sip]\nlisten = 0.0.0.0:5060\ndomain = sipha.test\n" /* lines 3-5 */
#define CTL "[control]\nsocket = /run/sipha/a.sock\n" /* lines 6-7 */
#define MIN NODE SIP CTL

/* a line in [node] (line 3), in [sip] (line 6) */
#define IN_NODE(l) NODE l "\n" SIP CTL
#define IN_SIP(l) NODE SIP l "\n" CTL

struct err_case {
	const char *text;
	const char *msg;
};

static bool is_zero(const void *p, size_t n)
{
	const unsigned char *c = p;

	for (size_t i = 0; i < n; i++) {
		if (c[i])
			return false;
	}
	return true;
}

static int run_err_cases(const struct err_case *c, size_t n)
{
	struct sipha_config cfg;
	char err[512];
	int bad = 0, rc;

	for (size_t i = 0; i < n; i++) {
		memset(&cfg, 0xa5, sizeof(cfg));
		rc = cfg_load_string(c[i].text, "t.conf", &cfg, err, sizeof(err));
		if (rc != -EINVAL || strcmp(err, c[i].msg) || !is_zero(&cfg, sizeof(cfg))) {
			print_message("case %zu: rc %d\n  got:  %s\n  want: %s\n", i, rc, err,
				      c[i].msg);
			bad++;
		}
		cfg_free(&cfg);
	}
	return bad;
}

#define RUN(cases) assert_int_equal(run_err_cases(cases, sizeof(cases) / sizeof(cases[0])), 0)

static const char *addr_str(const struct cfg_sockaddr *a)
{
	static char buf[64];

	return cfg_sockaddr_str(a, buf, sizeof(buf));
}

/* --- valid files --------------------------------------------------------------------- */

static const char full_text[] = "# sipha test configuration\n"
				"; both comment characters\n"
				"[node]\n"
				"id = node-A_1\n"
				"role = backup\n"
				"redundancy = warm\n"
				"priority = 65535\n"
				"state_dir = /srv/sipha state/a\n"
				"log_level = debug\n"
				"\n"
				"[sip]\n"
				"listen = [fd00::1]:5070\n"
				"domain = sipha.test\n"
				"min_expires = 30\n"
				"max_expires = 7200\n"
				"default_expires = 600\n"
				"max_contacts = 4\n"
				"max_registrations = 5000\n"
				"no_answer_ms = 0\n"
				"max_transactions = 4096\n"
				"max_calls = 500\n"
				"[vip]\n"
				"address = fd00::100/64\n"
				"interface = veth-a123456789\n"
				"garp_count = 0\n"
				"[ha]\n"
				"listen = 10.99.1.1:7100\n"
				"peer = 10.99.1.2:7101\n"
				"heartbeat_ms = 20\n"
				"timeout_ms = 100\n"
				"[xdp]\n"
				"interface = eth1\n"
				"mode = generic\n"
				"invite_rate = 100\n"
				"register_rate = 300\n"
				"burst = 50\n"
				"[control]\n"
				"socket = /run/sipha/a.sock\n"
				"[cti]\n"
				"listen = 127.0.0.1:3000\n"
				"route_timeout_ms = 1500\n"
				"default_route = 3000\n"
				"[engine]\n"
				"workers = 3\n"
				"[auth]\n"
				"realm = Sipha Realm\n"
				"users = /etc/sipha/users\n"
				"[metrics]\n"
				"listen = [::1]:9100\n"
				"[dn]\n"
				"1001 = extension\n"
				"2000 = routing-point\n"
				"3000 = sip:10.99.0.50:5080\n"
				"+1-555.0100_x = sips:agent@example.com;transport=tcp\n";

static void test_full(void **state)
{
	struct sipha_config cfg;
	const struct cfg_dn *d;
	char err[256] = "junk";

	(void)state;
	assert_int_equal(cfg_load_string(full_text, "full.conf", &cfg, err, sizeof(err)), 0);
	assert_string_equal(err, "");
	assert_string_equal(cfg.path, "full.conf");

	assert_string_equal(cfg.node.id, "node-A_1");
	assert_int_equal(cfg.node.role, CFG_ROLE_BACKUP);
	assert_int_equal(cfg.node.redundancy, CFG_RED_WARM);
	assert_int_equal(cfg.node.priority, 65535);
	assert_string_equal(cfg.node.state_dir, "/srv/sipha state/a");
	assert_string_equal(cfg.node.log_level, "debug");

	assert_string_equal(addr_str(&cfg.sip.listen), "[fd00::1]:5070");
	assert_int_equal(cfg.sip.listen.ss.ss_family, AF_INET6);
	assert_int_equal(cfg.sip.listen.len, sizeof(struct sockaddr_in6));
	assert_string_equal(cfg.sip.domain, "sipha.test");
	assert_int_equal(cfg.sip.min_expires, 30);
	assert_int_equal(cfg.sip.max_expires, 7200);
	assert_int_equal(cfg.sip.default_expires, 600);
	assert_int_equal(cfg.sip.max_contacts, 4);
	assert_int_equal(cfg.sip.max_registrations, 5000);
	assert_int_equal(cfg.sip.no_answer_ms, 0);
	assert_int_equal(cfg.sip.max_transactions, 4096);
	assert_int_equal(cfg.sip.max_calls, 500);

	assert_true(cfg.vip.present);
	assert_int_equal(cfg.vip.address.family, AF_INET6);
	assert_int_equal(cfg.vip.address.prefixlen, 64);
	{
		struct in6_addr want;

		assert_int_equal(inet_pton(AF_INET6, "fd00::100", &want), 1);
		assert_memory_equal(&cfg.vip.address.addr.v6, &want, sizeof(want));
	}
	assert_string_equal(cfg.vip.interface, "veth-a123456789");
	assert_int_equal(cfg.vip.garp_count, 0);

	assert_true(cfg.ha.present);
	assert_string_equal(addr_str(&cfg.ha.listen), "10.99.1.1:7100");
	assert_int_equal(cfg.ha.listen.len, sizeof(struct sockaddr_in));
	assert_string_equal(addr_str(&cfg.ha.peer), "10.99.1.2:7101");
	assert_int_equal(cfg.ha.heartbeat_ms, 20);
	assert_int_equal(cfg.ha.timeout_ms, 100);

	assert_int_equal(cfg.xdp.mode, CFG_XDP_GENERIC);
	assert_string_equal(cfg.xdp.interface, "eth1");
	assert_int_equal(cfg.xdp.invite_rate, 100);
	assert_int_equal(cfg.xdp.register_rate, 300);
	assert_int_equal(cfg.xdp.burst, 50);

	assert_string_equal(cfg.control.socket, "/run/sipha/a.sock");

	assert_true(cfg.cti.present);
	assert_string_equal(addr_str(&cfg.cti.listen), "127.0.0.1:3000");
	assert_int_equal(cfg.cti.route_timeout_ms, 1500);
	assert_string_equal(cfg.cti.default_route, "3000");

	assert_int_equal(cfg.engine.workers, 3);

	assert_true(cfg.auth.present);
	assert_string_equal(cfg.auth.realm, "Sipha Realm");
	assert_string_equal(cfg.auth.users, "/etc/sipha/users");

	assert_true(cfg.metrics.present);
	assert_string_equal(addr_str(&cfg.metrics.listen), "[::1]:9100");

	assert_int_equal(cfg.n_dns, 4);
	assert_string_equal(cfg.dns[0].dn, "1001");
	assert_int_equal(cfg.dns[0].kind, CFG_DN_EXTENSION);
	assert_null(cfg.dns[0].uri);
	assert_string_equal(cfg.dns[1].dn, "2000");
	assert_int_equal(cfg.dns[1].kind, CFG_DN_ROUTING_POINT);
	assert_null(cfg.dns[1].uri);
	assert_string_equal(cfg.dns[2].dn, "3000");
	assert_int_equal(cfg.dns[2].kind, CFG_DN_ROUTE);
	assert_string_equal(cfg.dns[2].uri, "sip:10.99.0.50:5080");
	assert_string_equal(cfg.dns[3].dn, "+1-555.0100_x");
	assert_int_equal(cfg.dns[3].kind, CFG_DN_ROUTE);
	assert_string_equal(cfg.dns[3].uri, "sips:agent@example.com;transport=tcp");

	d = cfg_dn_find(&cfg, "2000");
	assert_ptr_equal(d, &cfg.dns[1]);
	assert_ptr_equal(cfg_dn_find(&cfg, "+1-555.0100_x"), &cfg.dns[3]);
	assert_null(cfg_dn_find(&cfg, "200"));
	assert_null(cfg_dn_find(&cfg, "20000"));
	assert_null(cfg_dn_find(&cfg, NULL));

	cfg_free(&cfg);
	assert_true(is_zero(&cfg, sizeof(cfg)));
	cfg_free(&cfg); /* idempotent */
}

static void test_minimal_defaults(void **state)
{
	struct sipha_config cfg;
	char err[256];
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned want_workers = ncpu < 1 ? 1 : ncpu > 256 ? 256 : (unsigned)ncpu;

	(void)state;
	assert_int_equal(cfg_load_string(MIN, "min.conf", &cfg, err, sizeof(err)), 0);
	assert_string_equal(cfg.node.id, "a");
	assert_int_equal(cfg.node.role, CFG_ROLE_PRIMARY);
	assert_int_equal(cfg.node.redundancy, CFG_RED_HOT);
	assert_int_equal(cfg.node.priority, 100);
	assert_string_equal(cfg.node.state_dir, "/var/lib/sipha/a");
	assert_string_equal(cfg.node.log_level, "info");

	assert_string_equal(addr_str(&cfg.sip.listen), "0.0.0.0:5060");
	assert_string_equal(cfg.sip.domain, "sipha.test");
	assert_int_equal(cfg.sip.min_expires, 60);
	assert_int_equal(cfg.sip.max_expires, 3600);
	assert_int_equal(cfg.sip.default_expires, 3600);
	assert_int_equal(cfg.sip.max_contacts, 16);
	assert_int_equal(cfg.sip.max_registrations, 1000000);
	assert_int_equal(cfg.sip.no_answer_ms, 60000);
	assert_int_equal(cfg.sip.max_transactions, 262144);
	assert_int_equal(cfg.sip.max_calls, 1000000);

	assert_false(cfg.vip.present);
	assert_int_equal(cfg.vip.garp_count, 3);
	assert_false(cfg.ha.present);
	assert_int_equal(cfg.ha.heartbeat_ms, 50);
	assert_int_equal(cfg.ha.timeout_ms, 200);
	assert_int_equal(cfg.xdp.mode, CFG_XDP_OFF);
	assert_string_equal(cfg.xdp.interface, "");
	assert_int_equal(cfg.xdp.invite_rate, 0);
	assert_int_equal(cfg.xdp.register_rate, 0);
	assert_int_equal(cfg.xdp.burst, 0);
	assert_string_equal(cfg.control.socket, "/run/sipha/a.sock");
	assert_false(cfg.cti.present);
	assert_int_equal(cfg.cti.route_timeout_ms, 30000);
	assert_null(cfg.cti.default_route);
	assert_int_equal(cfg.engine.workers, want_workers);
	assert_false(cfg.auth.present);
	assert_null(cfg.auth.realm);
	assert_null(cfg.auth.users);
	assert_false(cfg.metrics.present);
	assert_int_equal(cfg.n_dns, 0);
	assert_null(cfg.dns);
	assert_null(cfg_dn_find(&cfg, "1001"));
	cfg_free(&cfg);
}

/* Defaults that depend on other keys or on the section being there. */
static void test_section_defaults(void **state)
{
	struct sipha_config cfg;
	char err[256];

	(void)state;
	assert_int_equal(cfg_load_string(MIN "[xdp]\ninterface = eth0\ninvite_rate = 70\n"
					     "register_rate = 40\n"
					     "[vip]\naddress = 10.99.0.100/24\ninterface = eth0\n"
					     "[ha]\nlisten = [::]:7100\npeer = [fd00::2]:7100\n"
					     "[cti]\nlisten = 0.0.0.0:3000\n",
					 "d.conf", &cfg, err, sizeof(err)),
			 0);
	assert_int_equal(cfg.xdp.mode, CFG_XDP_NATIVE);
	assert_int_equal(cfg.xdp.burst, 140);
	assert_true(cfg.vip.present);
	assert_int_equal(cfg.vip.address.family, AF_INET);
	assert_int_equal(cfg.vip.address.addr.v4.s_addr, htonl(0x0a630064));
	assert_int_equal(cfg.vip.address.prefixlen, 24);
	assert_int_equal(cfg.vip.garp_count, 3);
	assert_true(cfg.ha.present);
	assert_int_equal(cfg.ha.heartbeat_ms, 50);
	assert_int_equal(cfg.ha.timeout_ms, 200);
	assert_true(cfg.cti.present);
	assert_int_equal(cfg.cti.route_timeout_ms, 30000);
	assert_null(cfg.cti.default_route);
	cfg_free(&cfg);

	assert_int_equal(cfg_load_string(MIN "[xdp]\nregister_rate = 40\nmode = off\n", "d.conf",
					 &cfg, err, sizeof(err)),
			 0);
	assert_int_equal(cfg.xdp.mode, CFG_XDP_OFF);
	assert_string_equal(cfg.xdp.interface, "");
	assert_int_equal(cfg.xdp.burst, 80);
	cfg_free(&cfg);

	/* an empty optional section is present, with its defaults */
	assert_int_equal(cfg_load_string(MIN "[engine]\n[dn]\n", "d.conf", &cfg, err, sizeof(err)),
			 0);
	assert_int_equal(cfg.n_dns, 0);
	assert_true(cfg.engine.workers >= 1);
	cfg_free(&cfg);
}

/* The syntax the contract allows around keys and comments. */
static void test_syntax_accepted(void **state)
{
	struct sipha_config cfg;
	char err[256];

	(void)state;
	assert_int_equal(cfg_load_string("\xef\xbb\xbf[node]\r\n"
					 "   # indented comment\r\n"
					 "\t; another\r\n"
					 "id: b\r\n"
					 "  priority=0\r\n"
					 "\r\n"
					 "   [sip]   \r\n"
					 "listen=10.0.0.1:1\r\n"
					 "\tdomain =\t[::1]   \r\n"
					 "  max_contacts = 5 ; no, this is not a comment\n"
					 "[control]\n"
					 "socket = relative.sock",
					 "s.conf", &cfg, err, sizeof(err)),
			 -EINVAL);
	/* the line above is a key of [sip], not a comment */
	assert_string_equal(err, "s.conf:10: [sip] max_contacts: inline comment in "
				 "'5 ; no, this is not a comment' (comments must be on a line "
				 "of their own)");

	assert_int_equal(cfg_load_string("\xef\xbb\xbf[node]\r\n"
					 "   # indented comment\r\n"
					 "\t; another\r\n"
					 "id: b\r\n"
					 "  priority=0\r\n"
					 "\r\n"
					 "   [sip]   \r\n"
					 "listen=10.0.0.1:1\r\n"
					 "\tdomain =\t[::1]   \r\n"
					 "[control]\n"
					 "socket = relative.sock",
					 "s.conf", &cfg, err, sizeof(err)),
			 0);
	assert_string_equal(cfg.node.id, "b");
	assert_int_equal(cfg.node.priority, 0);
	assert_string_equal(cfg.node.state_dir, "/var/lib/sipha/b");
	assert_string_equal(addr_str(&cfg.sip.listen), "10.0.0.1:1");
	assert_string_equal(cfg.sip.domain, "[::1]");
	assert_string_equal(cfg.control.socket, "relative.sock");
	cfg_free(&cfg);
}

/* inih's process-wide switches neither change how a file reads nor stay
 * changed after it. */
static void test_inih_switches(void **state)
{
	static char semicolon[] = ";";
	char *const prefixes = ini_start_comment_prefixes;
	struct sipha_config cfg;
	char err[256];

	(void)state;
	ini_allow_inline_comments = true;
	ini_allow_multiline = true;
	ini_allow_no_value = true;
	ini_use_stack = false;
	ini_allow_realloc = true;
	ini_max_line = 20;
	ini_start_comment_prefixes = semicolon;

	assert_int_equal(cfg_load_string(full_text, "t.conf", &cfg, err, sizeof(err)), 0);
	assert_string_equal(cfg.node.state_dir, "/srv/sipha state/a");
	assert_string_equal(cfg.dns[3].uri, "sips:agent@example.com;transport=tcp");
	cfg_free(&cfg);
	assert_int_equal(cfg_load_string(NODE "role = primary\n  priority = 5\n" SIP CTL, "t.conf",
					 &cfg, err, sizeof(err)),
			 0);
	assert_int_equal(cfg.node.priority, 5);
	cfg_free(&cfg);
	assert_int_equal(
		cfg_load_string(IN_NODE("priority = 5 ; c"), "t.conf", &cfg, err, sizeof(err)),
		-EINVAL);
	assert_string_equal(err, "t.conf:3: [node] priority: inline comment in '5 ; c' (comments "
				 "must be on a line of their own)");
	assert_int_equal(cfg_load_string(IN_NODE("priority"), "t.conf", &cfg, err, sizeof(err)),
			 -EINVAL);
	assert_string_equal(err, "t.conf:3: [node]: syntax error (expected 'key = value', "
				 "'[section]' or a comment)");

	assert_true(ini_allow_inline_comments);
	assert_true(ini_allow_multiline);
	assert_true(ini_allow_no_value);
	assert_false(ini_use_stack);
	assert_true(ini_allow_realloc);
	assert_int_equal(ini_max_line, 20);
	assert_ptr_equal(ini_start_comment_prefixes, semicolon);

	ini_allow_inline_comments = true;
	ini_allow_multiline = true;
	ini_allow_no_value = false;
	ini_use_stack = true;
	ini_allow_realloc = false;
	ini_max_line = 200;
	ini_start_comment_prefixes = prefixes;
}

/* --- structure errors -------------------------------------------------------------------- */

static const struct err_case structure_cases[] = {
	{ MIN "[foo]\n", "t.conf:8: [foo]: unknown section" },
	{ MIN "[Node]\n", "t.conf:8: [Node]: unknown section" },
	{ MIN "[ vip ]\n", "t.conf:8: [ vip ]: unknown section" },
	{ MIN "[]\n", "t.conf:8: []: unknown section" },
	{ MIN "[vip\n", "t.conf:8: [vip: missing ']'" },
	{ MIN "[vip] ; c\n",
	  "t.conf:8: [vip]: text after ']' (comments must be on a line of their own)" },
	{ MIN "[sip]\n", "t.conf:8: [sip]: duplicate section (first at line 3)" },
	{ IN_NODE("id = b"), "t.conf:3: [node] id: duplicate key (first at line 2)" },
	{ IN_SIP("listen = 1.2.3.4:5"), "t.conf:6: [sip] listen: duplicate key (first at line 4)" },
	{ MIN "[dn]\n1001 = extension\n1001 = routing-point\n",
	  "t.conf:10: [dn] 1001: duplicate key (first at line 9)" },
	{ "id = a\n" MIN, "t.conf:1: id: key outside any section" },
	{ "garbage\n" MIN,
	  "t.conf:1: (no section): syntax error (expected 'key = value', '[section]' or a "
	  "comment)" },
	{ IN_NODE("garbage"),
	  "t.conf:3: [node]: syntax error (expected 'key = value', '[section]' or a comment)" },
	{ IN_NODE("= 5"), "t.conf:3: [node]: syntax error (no key before '=')" },
	{ IN_NODE("  : 5"), "t.conf:3: [node]: syntax error (no key before ':')" },
	{ IN_NODE("role ="), "t.conf:3: [node] role: missing value" },
	{ IN_NODE("role = pri\x01mary"), "t.conf:3: [node]: control character 0x01 in line" },
	{ IN_NODE("role = pri\rmary"), "t.conf:3: [node]: control character 0x0d in line" },
	{ "\x7f\n" MIN, "t.conf:1: (no section): control character 0x7f in line" },
	/* inline comments are errors, whatever the key type */
	{ IN_NODE("priority = 5 ; c"),
	  "t.conf:3: [node] priority: inline comment in '5 ; c' (comments must be on a line of "
	  "their own)" },
	{ IN_NODE("priority = 5\t# c"),
	  "t.conf:3: [node] priority: inline comment in '5\t# c' (comments must be on a line of "
	  "their own)" },
	{ IN_SIP("min_expires = 60 ;"),
	  "t.conf:6: [sip] min_expires: inline comment in '60 ;' (comments must be on a line of "
	  "their own)" },
	{ IN_NODE("state_dir = /var/lib/x # old"),
	  "t.conf:3: [node] state_dir: inline comment in '/var/lib/x # old' (comments must be on "
	  "a line of their own)" },
	{ MIN "[dn]\n1001 = extension ; desk\n",
	  "t.conf:9: [dn] 1001: inline comment in 'extension ; desk' (comments must be on a line "
	  "of their own)" },
	/* without inline comments "5;c" is just a bad number */
	{ IN_NODE("priority = 5;c"),
	  "t.conf:3: [node] priority: invalid number '5;c' (expected a whole number 0..65535)" },
	/* an indented line is a key of its own, never a continuation */
	{ NODE "role = primary\n   backup\n" SIP CTL,
	  "t.conf:4: [node]: syntax error (expected 'key = value', '[section]' or a comment)" },
};

static void test_structure_errors(void **state)
{
	(void)state;
	RUN(structure_cases);
}

static const struct err_case unknown_key_cases[] = {
	{ IN_NODE("foo = 1"), "t.conf:3: [node] foo: unknown key" },
	{ IN_NODE("ID = a"), "t.conf:3: [node] ID: unknown key" },
	{ IN_SIP("foo = 1"), "t.conf:6: [sip] foo: unknown key" },
	{ NODE SIP "[control]\nsocket = /s\nfoo = 1\n", "t.conf:8: [control] foo: unknown key" },
	{ MIN "[vip]\nfoo = 1\n", "t.conf:9: [vip] foo: unknown key" },
	{ MIN "[ha]\nfoo = 1\n", "t.conf:9: [ha] foo: unknown key" },
	{ MIN "[xdp]\nfoo = 1\n", "t.conf:9: [xdp] foo: unknown key" },
	{ MIN "[cti]\nfoo = 1\n", "t.conf:9: [cti] foo: unknown key" },
	{ MIN "[engine]\nfoo = 1\n", "t.conf:9: [engine] foo: unknown key" },
	{ MIN "[auth]\nfoo = 1\n", "t.conf:9: [auth] foo: unknown key" },
	{ MIN "[metrics]\nfoo = 1\n", "t.conf:9: [metrics] foo: unknown key" },
	/* a key of another section */
	{ MIN "[metrics]\ninterface = eth0\n", "t.conf:9: [metrics] interface: unknown key" },
	{ MIN "[dn]\nfoo bar = extension\n",
	  "t.conf:9: [dn] foo bar: invalid directory number (expected 1..32 of A-Z a-z 0-9 _ . + "
	  "-)" },
};

static void test_unknown_keys(void **state)
{
	(void)state;
	RUN(unknown_key_cases);
}

static const struct err_case missing_cases[] = {
	{ "", "t.conf:0: [node]: section missing" },
	{ "# only a comment\n", "t.conf:0: [node]: section missing" },
	{ SIP CTL, "t.conf:0: [node]: section missing" },
	{ NODE CTL, "t.conf:0: [sip]: section missing" },
	{ NODE SIP, "t.conf:0: [control]: section missing" },
	{ "[node]\n" SIP CTL, "t.conf:1: [node] id: required key missing" },
	{ NODE "[sip]\ndomain = d\n" CTL, "t.conf:3: [sip] listen: required key missing" },
	{ NODE "[sip]\nlisten = 1.2.3.4:5\n" CTL, "t.conf:3: [sip] domain: required key missing" },
	{ NODE SIP "[control]\n", "t.conf:6: [control] socket: required key missing" },
	{ MIN "[vip]\ninterface = eth0\n", "t.conf:8: [vip] address: required key missing" },
	{ MIN "[vip]\naddress = 10.0.0.1/24\n", "t.conf:8: [vip] interface: required key missing" },
	{ MIN "[ha]\npeer = 10.0.0.2:7100\n", "t.conf:8: [ha] listen: required key missing" },
	{ MIN "[ha]\nlisten = 10.0.0.1:7100\n", "t.conf:8: [ha] peer: required key missing" },
	{ MIN "[xdp]\n", "t.conf:8: [xdp] interface: required key missing (mode = native)" },
	{ MIN "[xdp]\nmode = generic\n",
	  "t.conf:8: [xdp] interface: required key missing (mode = generic)" },
	{ MIN "[cti]\nroute_timeout_ms = 5\n", "t.conf:8: [cti] listen: required key missing" },
	{ MIN "[auth]\nusers = /u\n", "t.conf:8: [auth] realm: required key missing" },
	{ MIN "[auth]\nrealm = r\n", "t.conf:8: [auth] users: required key missing" },
	{ MIN "[metrics]\n", "t.conf:8: [metrics] listen: required key missing" },
	/* the first section in the file is reported first */
	{ MIN "[metrics]\n[auth]\n", "t.conf:8: [metrics] listen: required key missing" },
	{ "[control]\nsocket = /s\n[sip]\n[node]\n",
	  "t.conf:3: [sip] listen: required key missing" },
};

static void test_missing(void **state)
{
	(void)state;
	RUN(missing_cases);
}

/* --- value errors ------------------------------------------------------------------------- */

static const struct err_case node_cases[] = {
	{ "[node]\nid = a b\n" SIP CTL,
	  "t.conf:2: [node] id: invalid node id 'a b' (expected 1..32 of A-Z a-z 0-9 _ -)" },
	{ "[node]\nid = a.b\n" SIP CTL,
	  "t.conf:2: [node] id: invalid node id 'a.b' (expected 1..32 of A-Z a-z 0-9 _ -)" },
	{ "[node]\nid = 123456789012345678901234567890123\n" SIP CTL,
	  "t.conf:2: [node] id: invalid node id '123456789012345678901234567890123' (expected "
	  "1..32 of A-Z a-z 0-9 _ -)" },
	{ "[node]\nid = a/../b\n" SIP CTL,
	  "t.conf:2: [node] id: invalid node id 'a/../b' (expected 1..32 of A-Z a-z 0-9 _ -)" },
	{ IN_NODE("role = Primary"),
	  "t.conf:3: [node] role: invalid value 'Primary' (expected primary|backup)" },
	{ IN_NODE("role = master"),
	  "t.conf:3: [node] role: invalid value 'master' (expected primary|backup)" },
	{ IN_NODE("redundancy = HOT"),
	  "t.conf:3: [node] redundancy: invalid value 'HOT' (expected hot|warm)" },
	{ IN_NODE("redundancy = cold"),
	  "t.conf:3: [node] redundancy: invalid value 'cold' (expected hot|warm)" },
	{ IN_NODE("priority = -1"),
	  "t.conf:3: [node] priority: invalid number '-1' (expected a whole number 0..65535)" },
	{ IN_NODE("priority = +5"),
	  "t.conf:3: [node] priority: invalid number '+5' (expected a whole number 0..65535)" },
	{ IN_NODE("priority = 0x10"),
	  "t.conf:3: [node] priority: invalid number '0x10' (expected a whole number 0..65535)" },
	{ IN_NODE("priority = 1e3"),
	  "t.conf:3: [node] priority: invalid number '1e3' (expected a whole number 0..65535)" },
	{ IN_NODE("priority = 1 0"),
	  "t.conf:3: [node] priority: invalid number '1 0' (expected a whole number 0..65535)" },
	{ IN_NODE("priority = 99999999999999999999x"),
	  "t.conf:3: [node] priority: invalid number '99999999999999999999x' (expected a whole "
	  "number 0..65535)" },
	{ IN_NODE("priority = 65536"), "t.conf:3: [node] priority: 65536 out of range (0..65535)" },
	{ IN_NODE("priority = 99999999999999999999"),
	  "t.conf:3: [node] priority: 99999999999999999999 out of range (0..65535)" },
	{ IN_NODE("log_level = verbose"),
	  "t.conf:3: [node] log_level: invalid value 'verbose' (expected err|warn|info|debug)" },
	{ IN_NODE("log_level = INFO"),
	  "t.conf:3: [node] log_level: invalid value 'INFO' (expected err|warn|info|debug)" },
	{ IN_NODE("state_dir = "), "t.conf:3: [node] state_dir: missing value" },
};

static void test_node_values(void **state)
{
	(void)state;
	RUN(node_cases);
}

/* [sip] listen at line 4 */
#define SIP_LISTEN(v)                                                                        \
	{                                                                                    \
		NODE "[sip]\nlisten = " v "\ndomain = d\n" CTL,                              \
			"t.conf:4: [sip] listen: invalid address '" v "' (expected IP:PORT)" \
	}

static const struct err_case sip_cases[] = {
	SIP_LISTEN("1.2.3:99"),
	SIP_LISTEN("1.2.3.4"),
	SIP_LISTEN("1.2.3.4:"),
	SIP_LISTEN(":5060"),
	SIP_LISTEN("1.2.3.4:0"),
	SIP_LISTEN("1.2.3.4:65536"),
	SIP_LISTEN("1.2.3.4:99999999"),
	SIP_LISTEN("1.2.3.4:-1"),
	SIP_LISTEN("1.2.3.4:+80"),
	SIP_LISTEN("1.2.3.4:5060x"),
	SIP_LISTEN("1.2.3.4: 5060"),
	SIP_LISTEN("1.2.3.4:5060:1"),
	SIP_LISTEN("256.1.1.1:5060"),
	SIP_LISTEN("host.example:5060"),
	SIP_LISTEN("[1.2.3.4]:5060"),
	SIP_LISTEN("::1:5060"),
	SIP_LISTEN("[::1]"),
	SIP_LISTEN("[::1]:"),
	SIP_LISTEN("[::1]:0"),
	SIP_LISTEN("[::1]:65536"),
	SIP_LISTEN("[::1]5060"),
	SIP_LISTEN("[::1:5060"),
	SIP_LISTEN("[]:5060"),
	SIP_LISTEN("[fe80::1%eth0]:5060"),
	SIP_LISTEN("[::g]:5060"),
	{ NODE "[sip]\nlisten = 1.2.3.4:5\ndomain = sipha test\n" CTL,
	  "t.conf:5: [sip] domain: invalid domain 'sipha test' (expected a host name or IP "
	  "address)" },
	{ NODE "[sip]\nlisten = 1.2.3.4:5\ndomain = a/b\n" CTL,
	  "t.conf:5: [sip] domain: invalid domain 'a/b' (expected a host name or IP address)" },
	{ NODE "[sip]\nlisten = 1.2.3.4:5\ndomain = [::1\n" CTL,
	  "t.conf:5: [sip] domain: invalid domain '[::1' (expected a host name or IP address)" },
	{ NODE "[sip]\nlisten = 1.2.3.4:5\ndomain = [zz]\n" CTL,
	  "t.conf:5: [sip] domain: invalid domain '[zz]' (expected a host name or IP address)" },
	{ IN_SIP("min_expires = 0"), "t.conf:6: [sip] min_expires: 0 out of range (1..604800)" },
	{ IN_SIP("min_expires = 604801"),
	  "t.conf:6: [sip] min_expires: 604801 out of range (1..604800)" },
	{ IN_SIP("max_expires = 0"), "t.conf:6: [sip] max_expires: 0 out of range (1..604800)" },
	{ IN_SIP("max_expires = 604801"),
	  "t.conf:6: [sip] max_expires: 604801 out of range (1..604800)" },
	{ IN_SIP("default_expires = 0"),
	  "t.conf:6: [sip] default_expires: 0 out of range (1..604800)" },
	{ IN_SIP("default_expires = x"),
	  "t.conf:6: [sip] default_expires: invalid number 'x' (expected a whole number "
	  "1..604800)" },
	{ IN_SIP("max_contacts = 0"), "t.conf:6: [sip] max_contacts: 0 out of range (1..1024)" },
	{ IN_SIP("max_contacts = 1025"),
	  "t.conf:6: [sip] max_contacts: 1025 out of range (1..1024)" },
	{ IN_SIP("no_answer_ms = 3600001"),
	  "t.conf:6: [sip] no_answer_ms: 3600001 out of range (0..3600000)" },
	{ IN_SIP("max_transactions = 1023"),
	  "t.conf:6: [sip] max_transactions: 1023 out of range (1024..16777216)" },
	{ IN_SIP("max_calls = 0"), "t.conf:6: [sip] max_calls: 0 out of range (1..100000000)" },
	{ IN_SIP("max_registrations = 0"),
	  "t.conf:6: [sip] max_registrations: 0 out of range (1..100000000)" },
	{ IN_SIP("max_registrations = 100000001"),
	  "t.conf:6: [sip] max_registrations: 100000001 out of range (1..100000000)" },
	/* cross-key: min_expires <= default_expires <= max_expires */
	{ NODE SIP "min_expires = 120\nmax_expires = 60\n" CTL,
	  "t.conf:7: [sip] max_expires: must be at least min_expires (120)" },
	{ IN_SIP("min_expires = 4000"),
	  "t.conf:6: [sip] min_expires: must be at most max_expires (3600)" },
	{ IN_SIP("default_expires = 30"),
	  "t.conf:6: [sip] default_expires: must be at least min_expires (60)" },
	{ IN_SIP("max_expires = 1800"),
	  "t.conf:6: [sip] max_expires: must be at least default_expires (3600)" },
	{ NODE SIP "max_expires = 100\nmin_expires = 200\n" CTL,
	  "t.conf:6: [sip] max_expires: must be at least min_expires (200)" },
	{ NODE SIP "default_expires = 50\nmin_expires = 100\nmax_expires = 200\n" CTL,
	  "t.conf:6: [sip] default_expires: must be at least min_expires (100)" },
};

static void test_sip_values(void **state)
{
	(void)state;
	RUN(sip_cases);
}

#define VIP_ADDR(v, reason)                                       \
	{                                                         \
		MIN "[vip]\ninterface = eth0\naddress = " v "\n", \
			"t.conf:10: [vip] address: " reason       \
	}
#define VIP_BADPFX(v) VIP_ADDR(v, "invalid prefix '" v "' (expected IP/LEN)")
#define VIP_NOTVIP(v) \
	VIP_ADDR(v, "'" v "' cannot be a VIP (expected a unicast address, prefix length >= 1)")
#define VIP_IF(v)                                                                \
	{                                                                        \
		MIN "[vip]\naddress = 10.0.0.1/24\ninterface = " v "\n",         \
			"t.conf:10: [vip] interface: invalid interface name '" v \
			"' (1..15 characters, no '/', ':' or space)"             \
	}

static const struct err_case vip_cases[] = {
	VIP_BADPFX("10.99.0.100"),
	VIP_BADPFX("10.99.0.100/"),
	VIP_BADPFX("10.99.0.100/33"),
	VIP_BADPFX("10.99.0.100/0024"),
	VIP_BADPFX("10.99.0.100/-1"),
	VIP_BADPFX("10.99.0.100/24x"),
	VIP_BADPFX("10.99.0/24"),
	VIP_BADPFX("/24"),
	VIP_BADPFX("fd00::1"),
	VIP_BADPFX("fd00::1/129"),
	VIP_BADPFX("[fd00::1]/64"),
	VIP_BADPFX("fd00::1/64/1"),
	VIP_BADPFX("vip.example/24"),
	VIP_NOTVIP("0.0.0.0/24"),
	VIP_NOTVIP("224.0.0.1/24"),
	VIP_NOTVIP("10.0.0.1/0"),
	VIP_NOTVIP("::/64"),
	VIP_NOTVIP("ff02::1/64"),
	VIP_IF("a234567890123456"),
	VIP_IF("eth/0"),
	VIP_IF("eth0:1"),
	VIP_IF("eth 0"),
	VIP_IF("."),
	VIP_IF(".."),
	{ MIN "[vip]\naddress = 10.0.0.1/24\ninterface = eth0\ngarp_count = 101\n",
	  "t.conf:11: [vip] garp_count: 101 out of range (0..100)" },
	{ MIN "[vip]\naddress = 10.0.0.1/24\ninterface = eth0\ngarp_count = three\n",
	  "t.conf:11: [vip] garp_count: invalid number 'three' (expected a whole number 0..100)" },
};

static void test_vip_values(void **state)
{
	(void)state;
	RUN(vip_cases);
}

#define HA MIN "[ha]\nlisten = 10.99.1.1:7100\npeer = 10.99.1.2:7100\n" /* next: line 11 */

static const struct err_case ha_cases[] = {
	{ MIN "[ha]\npeer = 10.0.0.2:7100\nlisten = 10.0.0.1\n",
	  "t.conf:10: [ha] listen: invalid address '10.0.0.1' (expected IP:PORT)" },
	{ MIN "[ha]\nlisten = 10.0.0.1:7100\npeer = [::1]:0\n",
	  "t.conf:10: [ha] peer: invalid address '[::1]:0' (expected IP:PORT)" },
	{ MIN "[ha]\nlisten = 10.0.0.1:7100\npeer = 0.0.0.0:7100\n",
	  "t.conf:10: [ha] peer: '0.0.0.0:7100' is a wildcard address (expected the peer's "
	  "IP:PORT)" },
	{ MIN "[ha]\nlisten = [::1]:7100\npeer = [::]:7100\n",
	  "t.conf:10: [ha] peer: '[::]:7100' is a wildcard address (expected the peer's "
	  "IP:PORT)" },
	{ MIN "[ha]\npeer = [fd00::2]:7100\nlisten = 10.0.0.1:7100\n",
	  "t.conf:9: [ha] peer: address family differs from [ha] listen" },
	{ HA "heartbeat_ms = 0\n", "t.conf:11: [ha] heartbeat_ms: 0 out of range (1..60000)" },
	{ HA "heartbeat_ms = 60001\n",
	  "t.conf:11: [ha] heartbeat_ms: 60001 out of range (1..60000)" },
	{ HA "timeout_ms = 0\n", "t.conf:11: [ha] timeout_ms: 0 out of range (1..600000)" },
	{ HA "timeout_ms = 600001\n",
	  "t.conf:11: [ha] timeout_ms: 600001 out of range (1..600000)" },
	{ HA "timeout_ms = 1s\n",
	  "t.conf:11: [ha] timeout_ms: invalid number '1s' (expected a whole number 1..600000)" },
	/* cross-key: timeout_ms > heartbeat_ms */
	{ HA "heartbeat_ms = 200\ntimeout_ms = 200\n",
	  "t.conf:12: [ha] timeout_ms: must be greater than heartbeat_ms (200)" },
	{ HA "timeout_ms = 40\n",
	  "t.conf:11: [ha] timeout_ms: must be greater than heartbeat_ms (50)" },
	{ HA "heartbeat_ms = 300\n",
	  "t.conf:11: [ha] heartbeat_ms: must be less than timeout_ms (200)" },
};

static void test_ha_values(void **state)
{
	(void)state;
	RUN(ha_cases);
}

/* [ha] key_file: only a file others cannot read, of 16 bytes to 64 KiB; the
 * key is the SHA-256 of its content, so two nodes with the same file agree. */
static void test_ha_key_file(void **state)
{
	char dir[] = "/tmp/sipha-keyXXXXXX", path[64], text[512], err[512], want[256];
	struct sipha_config cfg, cfg2;
	uint8_t zero[32] = { 0 };
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/ha.key", dir);
	snprintf(text, sizeof(text), HA "key_file = %s\n", path);

	/* missing */
	assert_int_equal(cfg_load_string(text, "t.conf", &cfg, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "t.conf:11: [ha] key_file: %s: No such file or directory",
		 path);
	assert_string_equal(err, want);
	/* readable by others */
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("0123456789abcdef0123456789abcdef\n", f);
	fclose(f);
	assert_int_equal(chmod(path, 0644), 0);
	assert_int_equal(cfg_load_string(text, "t.conf", &cfg, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want),
		 "t.conf:11: [ha] key_file: %s is open to group or others (mode 0644): chmod 600 "
		 "it",
		 path);
	assert_string_equal(err, want);
	/* right */
	assert_int_equal(chmod(path, 0600), 0);
	assert_int_equal(cfg_load_string(text, "t.conf", &cfg, err, sizeof(err)), 0);
	assert_true(cfg.ha.has_key);
	assert_memory_not_equal(cfg.ha.key, zero, 32);
	assert_int_equal(cfg_load_string(text, "t.conf", &cfg2, err, sizeof(err)), 0);
	assert_memory_equal(cfg.ha.key, cfg2.ha.key, 32); /* same file, same key */
	cfg_free(&cfg);
	cfg_free(&cfg2);
	/* too short */
	f = fopen(path, "w");
	fputs("short", f);
	fclose(f);
	assert_int_equal(cfg_load_string(text, "t.conf", &cfg, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "t.conf:11: [ha] key_file: %s: shorter than 16 bytes", path);
	assert_string_equal(err, want);
	/* without [ha] key_file: no key */
	assert_int_equal(cfg_load_string(HA, "t.conf", &cfg, err, sizeof(err)), 0);
	assert_false(cfg.ha.has_key);
	cfg_free(&cfg);
	unlink(path);
	rmdir(dir);
}

#define XDP MIN "[xdp]\ninterface = eth0\n" /* next: line 10 */

static const struct err_case xdp_cases[] = {
	{ MIN "[xdp]\ninterface = eth0/1\n",
	  "t.conf:9: [xdp] interface: invalid interface name 'eth0/1' (1..15 characters, no '/', "
	  "':' or space)" },
	{ XDP "mode = NATIVE\n",
	  "t.conf:10: [xdp] mode: invalid value 'NATIVE' (expected native|generic|off)" },
	{ XDP "mode = skb\n",
	  "t.conf:10: [xdp] mode: invalid value 'skb' (expected native|generic|off)" },
	{ XDP "invite_rate = 1000001\n",
	  "t.conf:10: [xdp] invite_rate: 1000001 out of range (0..1000000)" },
	{ XDP "invite_rate = -5\n",
	  "t.conf:10: [xdp] invite_rate: invalid number '-5' (expected a whole number "
	  "0..1000000)" },
	{ XDP "register_rate = 1000001\n",
	  "t.conf:10: [xdp] register_rate: 1000001 out of range (0..1000000)" },
	{ XDP "register_rate = 1.5\n",
	  "t.conf:10: [xdp] register_rate: invalid number '1.5' (expected a whole number "
	  "0..1000000)" },
	{ XDP "burst = 10000001\n", "t.conf:10: [xdp] burst: 10000001 out of range (0..10000000)" },
	{ XDP "invite_rate = 10\nburst = 0\n",
	  "t.conf:11: [xdp] burst: must be at least 1 when invite_rate or register_rate is set" },
};

static void test_xdp_values(void **state)
{
	(void)state;
	RUN(xdp_cases);
}

#define CTI MIN "[cti]\nlisten = 0.0.0.0:3000\n" /* next: line 10 */

static const struct err_case other_cases[] = {
	{ MIN "[cti]\nlisten = 0.0.0.0:3000x\n",
	  "t.conf:9: [cti] listen: invalid address '0.0.0.0:3000x' (expected IP:PORT)" },
	{ CTI "route_timeout_ms = 0\n",
	  "t.conf:10: [cti] route_timeout_ms: 0 out of range (1..3600000)" },
	{ CTI "route_timeout_ms = 3600001\n",
	  "t.conf:10: [cti] route_timeout_ms: 3600001 out of range (1..3600000)" },
	/* cross-key: default_route must be a DN of [dn], in whichever order */
	{ CTI "default_route = 3000\n",
	  "t.conf:10: [cti] default_route: unknown directory number '3000' (not in [dn])" },
	{ MIN "[dn]\n1001 = extension\n300 = extension\n[cti]\nlisten = 0.0.0.0:3000\n"
	      "default_route = 3000\n",
	  "t.conf:13: [cti] default_route: unknown directory number '3000' (not in [dn])" },
	{ MIN "[engine]\nworkers = 0\n", "t.conf:9: [engine] workers: 0 out of range (1..256)" },
	{ MIN "[engine]\nworkers = 257\n",
	  "t.conf:9: [engine] workers: 257 out of range (1..256)" },
	{ MIN "[engine]\nworkers = two\n",
	  "t.conf:9: [engine] workers: invalid number 'two' (expected a whole number 1..256)" },
	{ MIN "[auth]\nusers = /u\nrealm = a\"b\n",
	  "t.conf:10: [auth] realm: invalid realm 'a\"b' (at most 128 characters, no '\"' or "
	  "'\\')" },
	{ MIN "[auth]\nusers = /u\nrealm = a\\b\n",
	  "t.conf:10: [auth] realm: invalid realm 'a\\b' (at most 128 characters, no '\"' or "
	  "'\\')" },
	{ MIN "[auth]\nrealm = r\nusers =\n", "t.conf:10: [auth] users: missing value" },
	{ MIN "[metrics]\nlisten = 127.0.0.1\n",
	  "t.conf:9: [metrics] listen: invalid address '127.0.0.1' (expected IP:PORT)" },
};

static void test_other_values(void **state)
{
	(void)state;
	RUN(other_cases);
}

#define DN_VAL(v)                                                               \
	{                                                                       \
		MIN "[dn]\n1001 = " v "\n",                                     \
			"t.conf:9: [dn] 1001: invalid value '" v                \
			"' (expected extension|routing-point|sip:URI|sips:URI)" \
	}
#define DN_KEY(k)                                                                                \
	{                                                                                        \
		MIN "[dn]\n" k " = extension\n",                                                 \
			"t.conf:9: [dn] " k ": invalid directory number (expected 1..32 of A-Z " \
			"a-z 0-9 _ . + -)"                                                       \
	}

static const struct err_case dn_cases[] = {
	DN_VAL("Extension"),
	DN_VAL("routing_point"),
	DN_VAL("sip:"),
	DN_VAL("sips:"),
	DN_VAL("SIP:1.2.3.4"),
	DN_VAL("tel:+15550100"),
	DN_VAL("sip:a b@host"),
	DN_VAL("sip:1000@"),
	DN_VAL("sip:<1.2.3.4>"),
	DN_KEY("123456789012345678901234567890123"),
	DN_KEY("10/01"),
	DN_KEY("a@b"),
	{ MIN "[dn]\n1001 =\n", "t.conf:9: [dn] 1001: missing value" },
};

static void test_dn_values(void **state)
{
	(void)state;
	RUN(dn_cases);
}

/* Many DNs: the duplicate set grows, order is kept, a late duplicate is found. */
static void test_dn_many(void **state)
{
	enum {
		N = 5000
	};
	struct sipha_config cfg;
	char err[256], *text, *w;
	size_t cap = sizeof(MIN) + 40 * (N + 2);

	(void)state;
	text = malloc(cap);
	assert_non_null(text);
	w = text + sprintf(text, "%s[dn]\n", MIN);
	for (int i = 0; i < N; i++)
		w += sprintf(w, "%d = %s\n", 100000 + i, i % 2 ? "extension" : "sip:h.example");
	assert_int_equal(cfg_load_string(text, "t.conf", &cfg, err, sizeof(err)), 0);
	assert_int_equal(cfg.n_dns, N);
	for (int i = 0; i < N; i += 997) {
		char dn[16];

		snprintf(dn, sizeof(dn), "%d", 100000 + i);
		assert_ptr_equal(cfg_dn_find(&cfg, dn), &cfg.dns[i]);
		assert_int_equal(cfg.dns[i].kind, i % 2 ? CFG_DN_EXTENSION : CFG_DN_ROUTE);
	}
	cfg_free(&cfg);

	/* line 9 holds 100000, line 9 + N is the repeat */
	sprintf(w, "100000 = extension\n");
	assert_int_equal(cfg_load_string(text, "t.conf", &cfg, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "t.conf:5009: [dn] 100000: duplicate key (first at line 9)");
	assert_true(is_zero(&cfg, sizeof(cfg)));
	free(text);
}

static void test_long_line(void **state)
{
	struct sipha_config cfg;
	char err[256], *text;
	size_t base = strlen(MIN "[dn]\n1 = sip:");

	(void)state;
	text = malloc(base + 5000);
	assert_non_null(text);
	/* exactly 4095 characters: the longest line there may be */
	strcpy(text, MIN "[dn]\n1 = sip:");
	memset(text + base, 'a', 4095 - strlen("1 = sip:"));
	strcpy(text + base + 4095 - strlen("1 = sip:"), "\n");
	assert_int_equal(cfg_load_string(text, "t.conf", &cfg, err, sizeof(err)), 0);
	assert_int_equal(strlen(cfg.dns[0].uri), 4095 - strlen("1 = "));
	cfg_free(&cfg);
	/* one more */
	memset(text + base, 'a', 4096 - strlen("1 = sip:"));
	strcpy(text + base + 4096 - strlen("1 = sip:"), "\n[dn]\n");
	assert_int_equal(cfg_load_string(text, "t.conf", &cfg, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "t.conf:9: [dn]: line too long (at most 4095 characters)");
	free(text);
}

/* Length limits of strings, at the limit and one past it. */
static void test_string_limits(void **state)
{
	struct sipha_config cfg;
	char text[1024], err[512], val[200];

	(void)state;
	/* a socket path must fit sockaddr_un.sun_path with its NUL */
	memset(val, 's', 107);
	val[0] = '/';
	val[107] = '\0';
	snprintf(text, sizeof(text), NODE SIP "[control]\nsocket = %s\n", val);
	assert_int_equal(cfg_load_string(text, "t.conf", &cfg, err, sizeof(err)), 0);
	assert_string_equal(cfg.control.socket, val);
	cfg_free(&cfg);
	strcat(val, "s");
	snprintf(text, sizeof(text), NODE SIP "[control]\nsocket = %s\n", val);
	assert_int_equal(cfg_load_string(text, "t.conf", &cfg, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "t.conf:7: [control] socket: path too long (at most 107 "
				 "characters)");

	memset(val, 'r', 128);
	val[128] = '\0';
	snprintf(text, sizeof(text), MIN "[auth]\nusers = /u\nrealm = %s\n", val);
	assert_int_equal(cfg_load_string(text, "t.conf", &cfg, err, sizeof(err)), 0);
	assert_string_equal(cfg.auth.realm, val);
	cfg_free(&cfg);
	strcat(val, "r");
	snprintf(text, sizeof(text), MIN "[auth]\nusers = /u\nrealm = %s\n", val);
	assert_int_equal(cfg_load_string(text, "t.conf", &cfg, err, sizeof(err)), -EINVAL);
	assert_true(strstr(err, "t.conf:10: [auth] realm: invalid realm 'rrr") == err);
	assert_non_null(strstr(err, "r' (at most 128 characters, no '\"' or '\\')"));

	/* 32 characters for a node id and a DN */
	assert_int_equal(cfg_load_string("[node]\nid = 12345678901234567890123456789012\n" SIP CTL
					 "[dn]\nabcdefghijklmnopqrstuvwxyz_.+-12 = extension\n",
					 "t.conf", &cfg, err, sizeof(err)),
			 0);
	assert_string_equal(cfg.node.state_dir, "/var/lib/sipha/12345678901234567890123456789012");
	assert_string_equal(cfg.dns[0].dn, "abcdefghijklmnopqrstuvwxyz_.+-12");
	cfg_free(&cfg);
}

/* --- API edges --------------------------------------------------------------------------- */

static void test_api_edges(void **state)
{
	struct sipha_config cfg, zero;
	char err[16];

	(void)state;
	memset(&zero, 0, sizeof(zero));
	cfg = zero;
	cfg_free(&cfg);
	cfg_free(&cfg);
	cfg_free(NULL);
	assert_true(is_zero(&cfg, sizeof(cfg)));

	/* no room for the message: still the right code, nothing written */
	assert_int_equal(cfg_load_string(IN_NODE("priority = x"), "t.conf", &cfg, NULL, 0),
			 -EINVAL);
	assert_int_equal(cfg_load_string(IN_NODE("priority = x"), "t.conf", &cfg, err, 0), -EINVAL);
	/* a short buffer gets the start of the message */
	assert_int_equal(cfg_load_string(IN_NODE("priority = x"), "t.conf", &cfg, err, sizeof(err)),
			 -EINVAL);
	assert_string_equal(err, "t.conf:3: [node");
	assert_int_equal(cfg_load_string("", NULL, &cfg, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "(string):0: [no");
	assert_int_equal(cfg_load_string(NULL, "t.conf", &cfg, err, sizeof(err)), -EINVAL);
	assert_true(is_zero(&cfg, sizeof(cfg)));

	/* a loaded config passed again to cfg_free, then reused */
	assert_int_equal(cfg_load_string(MIN, "t.conf", &cfg, NULL, 0), 0);
	cfg_free(&cfg);
	cfg_free(&cfg);
	assert_int_equal(cfg_load_string(MIN, "t.conf", &cfg, NULL, 0), 0);
	cfg_free(&cfg);
}

struct addr_case {
	const char *in, *out;
	int family;
};

static void test_parse_sockaddr(void **state)
{
	static const struct addr_case good[] = {
		{ "1.2.3.4:5060", "1.2.3.4:5060", AF_INET },
		{ "0.0.0.0:1", "0.0.0.0:1", AF_INET },
		{ "255.255.255.255:65535", "255.255.255.255:65535", AF_INET },
		{ "10.0.0.1:05060", "10.0.0.1:5060", AF_INET },
		{ "[::1]:5060", "[::1]:5060", AF_INET6 },
		{ "[::]:65535", "[::]:65535", AF_INET6 },
		{ "[fd00:0:0::1]:7100", "[fd00::1]:7100", AF_INET6 },
		{ "[::ffff:10.0.0.1]:80", "[::ffff:10.0.0.1]:80", AF_INET6 },
	};
	static const char *const bad[] = {
		"",	     "1.2.3.4",	      "1.2.3:99",	"1.2.3.4:",
		"1.2.3.4:0", "1.2.3.4:65536", "1.2.3.4:123456", "1.2.3.4:-1",
		"1.2.3.4:x", " 1.2.3.4:5",    "::1:5060",	"[::1]",
		"[::1]:",    "[::1]:0",	      "[::1]:65536",	"[::1]x1",
		"[::1",	     "[]:1",	      "[1.2.3.4]:1",	"localhost:5060",
	};
	struct cfg_sockaddr a, b;
	char buf[64];

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		memset(&a, 0xff, sizeof(a));
		assert_int_equal(cfg_parse_sockaddr(good[i].in, &a), 0);
		assert_int_equal(a.ss.ss_family, good[i].family);
		assert_int_equal(a.len, good[i].family == AF_INET ? sizeof(struct sockaddr_in)
								  : sizeof(struct sockaddr_in6));
		assert_string_equal(cfg_sockaddr_str(&a, buf, sizeof(buf)), good[i].out);
		/* what it prints parses back to the same address */
		assert_int_equal(cfg_parse_sockaddr(buf, &b), 0);
		assert_memory_equal(&a.ss, &b.ss, a.len);
	}
	memset(&a, 0x5a, sizeof(a));
	b = a;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (cfg_parse_sockaddr(bad[i], &a) != -EINVAL)
			fail_msg("'%s' accepted", bad[i]);
		/* a failed parse leaves OUT alone */
		assert_memory_equal(&a, &b, sizeof(a));
	}
	assert_int_equal(cfg_parse_sockaddr(NULL, &a), -EINVAL);

	memset(&a, 0, sizeof(a));
	assert_string_equal(cfg_sockaddr_str(&a, buf, sizeof(buf)), "(none)");
	assert_int_equal(cfg_parse_sockaddr("[fd00::1]:5060", &a), 0);
	assert_string_equal(cfg_sockaddr_str(&a, buf, 6), "[fd00");
}

static void test_parse_prefix(void **state)
{
	static const char *const bad[] = {
		"",
		"10.0.0.1",
		"10.0.0.1/",
		"10.0.0.1/33",
		"10.0.0.1/x",
		"10.0.0.1/-1",
		"10.0.0.1/ 24",
		"10.0.0/24",
		"/24",
		"fd00::1/129",
		"fd00::1/",
		"[fd00::1]/64",
		"fd00::1/1000",
		"fd00::1/64/64",
	};
	struct cfg_prefix p, q;
	struct in6_addr want;

	(void)state;
	assert_int_equal(cfg_parse_prefix("10.99.0.100/24", &p), 0);
	assert_int_equal(p.family, AF_INET);
	assert_int_equal(p.addr.v4.s_addr, htonl(0x0a630064));
	assert_int_equal(p.prefixlen, 24);
	assert_int_equal(cfg_parse_prefix("10.99.0.100/32", &p), 0);
	assert_int_equal(p.prefixlen, 32);
	assert_int_equal(cfg_parse_prefix("0.0.0.0/0", &p), 0);
	assert_int_equal(p.prefixlen, 0);
	assert_int_equal(cfg_parse_prefix("fd00::1/64", &p), 0);
	assert_int_equal(p.family, AF_INET6);
	assert_int_equal(p.prefixlen, 64);
	assert_int_equal(inet_pton(AF_INET6, "fd00::1", &want), 1);
	assert_memory_equal(&p.addr.v6, &want, sizeof(want));
	assert_int_equal(cfg_parse_prefix("fd00::1/128", &p), 0);
	assert_int_equal(p.prefixlen, 128);

	memset(&p, 0x5a, sizeof(p));
	q = p;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (cfg_parse_prefix(bad[i], &p) != -EINVAL)
			fail_msg("'%s' accepted", bad[i]);
		assert_memory_equal(&p, &q, sizeof(p));
	}
	assert_int_equal(cfg_parse_prefix(NULL, &p), -EINVAL);
}

/* --- files --------------------------------------------------------------------------------- */

static char tmpdir[64];

static int setup_dir(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/sipha-cfg-XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_dir(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static void write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static void test_load_file(void **state)
{
	struct sipha_config cfg;
	char path[128], want[256], err[256];
	static const char nul_text[] = "[node]\nid = a\0b\n";
	int fd;

	(void)state;
	snprintf(path, sizeof(path), "%s/ok.conf", tmpdir);
	write_file(path, full_text, strlen(full_text));
	assert_int_equal(cfg_load(path, &cfg, err, sizeof(err)), 0);
	assert_string_equal(cfg.path, path);
	assert_string_equal(cfg.node.id, "node-A_1");
	assert_int_equal(cfg.n_dns, 4);
	cfg_free(&cfg);

	/* errors in a file carry its path */
	snprintf(path, sizeof(path), "%s/bad.conf", tmpdir);
	write_file(path, IN_SIP("listen = 1.2.3.4:6"), strlen(IN_SIP("listen = 1.2.3.4:6")));
	assert_int_equal(cfg_load(path, &cfg, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s:6: [sip] listen: duplicate key (first at line 4)", path);
	assert_string_equal(err, want);
	assert_true(is_zero(&cfg, sizeof(cfg)));

	/* a NUL byte is a control character, not the end of the file */
	snprintf(path, sizeof(path), "%s/nul.conf", tmpdir);
	write_file(path, nul_text, sizeof(nul_text) - 1);
	assert_int_equal(cfg_load(path, &cfg, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s:2: [node]: control character 0x00 in line", path);
	assert_string_equal(err, want);

	snprintf(path, sizeof(path), "%s/missing.conf", tmpdir);
	assert_int_equal(cfg_load(path, &cfg, err, sizeof(err)), -ENOENT);
	snprintf(want, sizeof(want), "%s: No such file or directory", path);
	assert_string_equal(err, want);
	assert_true(is_zero(&cfg, sizeof(cfg)));

	assert_int_equal(cfg_load(tmpdir, &cfg, err, sizeof(err)), -EISDIR);
	snprintf(want, sizeof(want), "%s: Is a directory", tmpdir);
	assert_string_equal(err, want);

	snprintf(path, sizeof(path), "%s/ok.conf/x", tmpdir);
	assert_int_equal(cfg_load(path, &cfg, err, sizeof(err)), -ENOTDIR);
	snprintf(want, sizeof(want), "%s: Not a directory", path);
	assert_string_equal(err, want);

	snprintf(path, sizeof(path), "%s/huge.conf", tmpdir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 2 << 20), 0);
	close(fd);
	assert_int_equal(cfg_load(path, &cfg, err, sizeof(err)), -EFBIG);
	snprintf(want, sizeof(want), "%s: File too large", path);
	assert_string_equal(err, want);
	assert_true(is_zero(&cfg, sizeof(cfg)));

	/* not a regular file: read to the end, under the same bound */
	assert_int_equal(cfg_load("/dev/null", &cfg, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "/dev/null:0: [node]: section missing");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full),
		cmocka_unit_test(test_minimal_defaults),
		cmocka_unit_test(test_section_defaults),
		cmocka_unit_test(test_syntax_accepted),
		cmocka_unit_test(test_inih_switches),
		cmocka_unit_test(test_structure_errors),
		cmocka_unit_test(test_unknown_keys),
		cmocka_unit_test(test_missing),
		cmocka_unit_test(test_node_values),
		cmocka_unit_test(test_sip_values),
		cmocka_unit_test(test_vip_values),
		cmocka_unit_test(test_ha_values),
		cmocka_unit_test(test_ha_key_file),
		cmocka_unit_test(test_xdp_values),
		cmocka_unit_test(test_other_values),
		cmocka_unit_test(test_dn_values),
		cmocka_unit_test(test_dn_many),
		cmocka_unit_test(test_long_line),
		cmocka_unit_test(test_string_limits),
		cmocka_unit_test(test_api_edges),
		cmocka_unit_test(test_parse_sockaddr),
		cmocka_unit_test(test_parse_prefix),
		cmocka_unit_test_setup_teardown(test_load_file, setup_dir, teardown_dir),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
