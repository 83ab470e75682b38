/* siphactl — the sipha CLI.
 *
 *   siphactl [-s SOCKET | -c CONFIG] <command> [args] [--json]
 *
 * Exit codes (contract): 0 success, 1 refused, 2 usage, 3 daemon unreachable.
 * With --json it prints exactly one JSON object.  The kernel's view of the
 * VIP comes from libnl-route-3, next to the daemon's view. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <jansson.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>

#include "core/config.h"

enum {
	EXIT_OK = 0,
	EXIT_REFUSED = 1,
	EXIT_USAGE = 2,
	EXIT_UNREACHABLE = 3
};

static const char *const usage_text =
	"usage: siphactl [-s SOCKET | -c CONFIG] <command> [args] [--json]\n"
	"\n"
	"commands:\n"
	"  status                 node summary: role, state, peer, sync, calls\n"
	"  calls                  live calls\n"
	"  registrations          registered contacts\n"
	"  agents                 agent states\n"
	"  switchover             hand the active role to the peer\n"
	"  vip                    the daemon's and the kernel's view of the VIP\n"
	"  xdp                    XDP program state and counters\n"
	"  block add|del PREFIX   change the XDP source blocklist\n"
	"  metrics                every counter, Prometheus text format\n"
	"  help [COMMAND]         this text, or one command's (also: COMMAND --help)\n"
	"\n"
	"  -s SOCKET   control socket of the daemon\n"
	"  -c CONFIG   take the socket from CONFIG's [control] socket\n"
	"  --json      print one JSON object\n"
	"\n"
	"exit: 0 ok, 1 refused, 2 usage error, 3 daemon unreachable\n";

/* One command's help: `siphactl help COMMAND`, `siphactl COMMAND --help`. */
struct cmd_help {
	const char *name;
	const char *args; /* what follows the command's name */
	const char *text;
};

static const struct cmd_help cmd_helps[] = {
	{ "status", "",
	  "The node's summary: its name, configured role and redundancy, state (active,\n"
	  "standby or isolated) and epoch; with [ha], whether the peer is connected and\n"
	  "the standby in sync (lag: records not yet acknowledged); the SIP address,\n"
	  "calls, registrations and workers.\n"
	  "--json: node role state epoch redundancy peer_connected in_sync sync_lag\n"
	  "calls registrations workers, and more (peer, takeovers, aors, uptime_ms, ...).\n" },
	{ "calls", "",
	  "Live calls, one a line: id, state (dialing, ringing, established, queued,\n"
	  "released), from, to and the DN dialled.\n"
	  "--json: {\"calls\": [{id, state, from, to, dn}]}.\n" },
	{ "registrations", "",
	  "Registered contact bindings: address of record, contact, and the seconds\n"
	  "left before the binding expires.\n"
	  "--json: {\"registrations\": [{aor, contact, expires}]}.\n" },
	{ "agents", "",
	  "Contact-centre agents: agent, DN and state (logged_out, not_ready, ready,\n"
	  "busy); agents that logged out stay listed.\n"
	  "--json: {\"agents\": [{agent, dn, state}]}, with reason when one was given.\n" },
	{ "switchover", "",
	  "Hands the active role to the peer, make-before-break: the peer takes the VIP\n"
	  "first, then this node lets it go and steers stray packets to the peer.  Run it\n"
	  "on the active node.  Refused (exit 1) without [ha], when the peer is not\n"
	  "connected, or when the standby is not in sync yet.  Root or the sipha group\n"
	  "only.\n" },
	{ "vip", "",
	  "The VIP as the daemon sees it (address, interface, and expected: whether this\n"
	  "node should hold it) next to the kernel's view, read by siphactl itself over\n"
	  "netlink (present: the address is on the interface; link: up, down or absent).\n"
	  "Refused (exit 1) without [vip].\n" },
	{ "xdp", "",
	  "The XDP program: whether it is attached (asked of the kernel), its mode and\n"
	  "interface, and its counters (packets by SIP method, drops, steered, ...).\n" },
	{ "block", "add|del PREFIX",
	  "Adds or removes an IPv4 or IPv6 prefix (or one address) in the XDP source\n"
	  "blocklist: its packets are dropped before the kernel's stack.  Deleting an\n"
	  "absent prefix is not an error.  Refused (exit 1) without XDP.  Root or the\n"
	  "sipha group only.\n" },
	{ "metrics", "",
	  "Every counter and gauge in Prometheus text format: the text [metrics] listen\n"
	  "serves over HTTP at /metrics.\n"
	  "--json: {\"text\": \"...\"}.\n" },
	{ "help", "[COMMAND]",
	  "The list of commands, or one command's help; `siphactl COMMAND --help` is\n"
	  "the same.  Needs no daemon.\n" },
};

static const struct cmd_help *find_help(const char *name)
{
	for (size_t i = 0; i < sizeof(cmd_helps) / sizeof(cmd_helps[0]); i++)
		if (!strcmp(cmd_helps[i].name, name))
			return &cmd_helps[i];
	return NULL;
}

static void print_cmd_help(const struct cmd_help *h)
{
	printf("usage: siphactl [-s SOCKET | -c CONFIG] %s%s%s%s\n\n%s", h->name,
	       h->args[0] ? " " : "", h->args, strcmp(h->name, "help") ? " [--json]" : "", h->text);
}

static int usage_error(const char *msg)
{
	if (msg)
		fprintf(stderr, "siphactl: %s\n", msg);
	fputs(usage_text, stderr);
	return EXIT_USAGE;
}

/* Sends REQ, returns the answer object or NULL (unreachable). */
static json_t *call_daemon(const char *path, json_t *req, char *err, size_t errlen)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	char *line = NULL, buf[65536];
	size_t have = 0, cap = 0;
	json_t *ans = NULL;
	json_error_t jerr;
	char *out;
	int fd;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		snprintf(err, errlen, "socket path too long: %s", path);
		return NULL;
	}
	strcpy(sun.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun))) {
		snprintf(err, errlen, "cannot reach siphad at %s: %s", path, strerror(errno));
		goto out;
	}
	out = json_dumps(req, JSON_COMPACT);
	if (!out || dprintf(fd, "%s\n", out) < 0) {
		snprintf(err, errlen, "cannot send to %s: %s", path, strerror(errno));
		free(out);
		goto out;
	}
	free(out);
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		char *nl;

		if (n <= 0) {
			snprintf(err, errlen, "siphad closed the connection without an answer");
			goto out;
		}
		if (have + (size_t)n + 1 > cap) {
			cap = (have + (size_t)n + 1) * 2;
			nl = realloc(line, cap);
			if (!nl)
				goto out;
			line = nl;
		}
		memcpy(line + have, buf, (size_t)n);
		have += (size_t)n;
		line[have] = '\0';
		if ((nl = memchr(line, '\n', have))) {
			ans = json_loadb(line, (size_t)(nl - line), 0, &jerr);
			if (!ans)
				snprintf(err, errlen, "bad answer from siphad: %s", jerr.text);
			break;
		}
	}
out:
	if (fd >= 0)
		close(fd);
	free(line);
	return ans;
}

/* The kernel's view: is ADDR (no prefix) configured on IFNAME?  1/0/-errno. */
static int kernel_has_addr(const char *ifname, const char *addr_prefix, char *link_state,
			   size_t lslen)
{
	struct nl_sock *sk = nl_socket_alloc();
	struct nl_cache *links = NULL, *addrs = NULL;
	struct rtnl_link *link = NULL;
	char ip[INET6_ADDRSTRLEN + 8];
	int ifindex, found = 0, ret;
	char *slash;

	snprintf(ip, sizeof(ip), "%s", addr_prefix);
	slash = strchr(ip, '/');
	if (slash)
		*slash = '\0';
	if (!sk)
		return -ENOMEM;
	ret = nl_connect(sk, NETLINK_ROUTE);
	if (ret < 0)
		goto out;
	ret = rtnl_link_alloc_cache(sk, AF_UNSPEC, &links);
	if (ret < 0)
		goto out;
	link = rtnl_link_get_by_name(links, ifname);
	if (!link) {
		snprintf(link_state, lslen, "absent");
		ret = 0;
		goto out;
	}
	ifindex = rtnl_link_get_ifindex(link);
	snprintf(link_state, lslen, "%s", rtnl_link_get_carrier(link) ? "up" : "down");
	ret = rtnl_addr_alloc_cache(sk, &addrs);
	if (ret < 0)
		goto out;
	for (struct nl_object *o = nl_cache_get_first(addrs); o; o = nl_cache_get_next(o)) {
		struct rtnl_addr *a = (struct rtnl_addr *)o;
		char s[INET6_ADDRSTRLEN + 8];

		if (rtnl_addr_get_ifindex(a) != ifindex)
			continue;
		nl_addr2str(rtnl_addr_get_local(a), s, sizeof(s));
		slash = strchr(s, '/');
		if (slash)
			*slash = '\0';
		if (!strcmp(s, ip))
			found = 1;
	}
	ret = found;
out:
	if (link)
		rtnl_link_put(link);
	nl_cache_free(addrs);
	nl_cache_free(links);
	nl_socket_free(sk);
	return ret < 0 ? -EIO : ret;
}

static void print_table_header(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void print_table_header(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
}

static void print_human(const char *cmd, json_t *a)
{
	size_t i;
	json_t *v;

	if (!strcmp(cmd, "status")) {
		const char *red = json_string_value(json_object_get(a, "redundancy"));

		if (red && !strcmp(red, "none"))
			printf("node          %s (alone (no HA))\n",
			       json_string_value(json_object_get(a, "node")));
		else
			printf("node          %s (%s, %s standby)\n",
			       json_string_value(json_object_get(a, "node")),
			       json_string_value(json_object_get(a, "role")), red ? red : "?");
		printf("state         %s  epoch %lld\n",
		       json_string_value(json_object_get(a, "state")),
		       json_integer_value(json_object_get(a, "epoch")));
		if (!red || strcmp(red, "none")) {
			printf("peer          %s\n",
			       json_is_true(json_object_get(a, "peer_connected"))
				       ? "connected"
				       : "not connected");
			printf("sync          %s, lag %lld\n",
			       json_is_true(json_object_get(a, "in_sync")) ? "in sync"
									   : "not in sync",
			       json_integer_value(json_object_get(a, "sync_lag")));
		}
		printf("sip           %s:%lld\n",
		       json_string_value(json_object_get(a, "sip_address")),
		       json_integer_value(json_object_get(a, "sip_port")));
		printf("calls         %lld\n", json_integer_value(json_object_get(a, "calls")));
		printf("registrations %lld\n",
		       json_integer_value(json_object_get(a, "registrations")));
		printf("workers       %lld\n", json_integer_value(json_object_get(a, "workers")));
	} else if (!strcmp(cmd, "registrations")) {
		print_table_header("%-40s %-50s %s\n", "AOR", "CONTACT", "EXPIRES");
		json_array_foreach (json_object_get(a, "registrations"), i, v) {
			printf("%-40s %-50s %lld\n", json_string_value(json_object_get(v, "aor")),
			       json_string_value(json_object_get(v, "contact")),
			       json_integer_value(json_object_get(v, "expires")));
		}
	} else if (!strcmp(cmd, "calls")) {
		print_table_header("%-24s %-12s %-30s %-30s %s\n", "ID", "STATE", "FROM", "TO",
				   "DN");
		json_array_foreach (json_object_get(a, "calls"), i, v) {
			printf("%-24s %-12s %-30s %-30s %s\n",
			       json_string_value(json_object_get(v, "id")),
			       json_string_value(json_object_get(v, "state")),
			       json_string_value(json_object_get(v, "from")),
			       json_string_value(json_object_get(v, "to")),
			       json_string_value(json_object_get(v, "dn")));
		}
	} else if (!strcmp(cmd, "agents")) {
		print_table_header("%-20s %-12s %s\n", "AGENT", "DN", "STATE");
		json_array_foreach (json_object_get(a, "agents"), i, v) {
			printf("%-20s %-12s %s\n", json_string_value(json_object_get(v, "agent")),
			       json_string_value(json_object_get(v, "dn")),
			       json_string_value(json_object_get(v, "state")));
		}
	} else if (!strcmp(cmd, "vip")) {
		printf("address    %s on %s\n", json_string_value(json_object_get(a, "address")),
		       json_string_value(json_object_get(a, "interface")));
		printf("expected   %s\n",
		       json_is_true(json_object_get(a, "expected")) ? "yes" : "no");
		printf("present    %s (kernel; link %s)\n",
		       json_is_true(json_object_get(a, "present")) ? "yes" : "no",
		       json_string_value(json_object_get(a, "link")));
	} else if (!strcmp(cmd, "xdp")) {
		const char *k;

		printf("attached   %s (%s)\n",
		       json_is_true(json_object_get(a, "attached")) ? "yes" : "no",
		       json_string_value(json_object_get(a, "mode")));
		json_object_foreach (json_object_get(a, "counters"), k, v) {
			printf("  %-18s %lld\n", k, json_integer_value(v));
		}
	} else if (!strcmp(cmd, "metrics")) {
		fputs(json_string_value(json_object_get(a, "text")), stdout);
	} else {
		printf("ok\n");
	}
}

static int socket_from_config(const char *path, char *out, size_t len)
{
	struct sipha_config cfg = { 0 };
	char err[512];

	if (cfg_load(path, &cfg, err, sizeof(err))) {
		fprintf(stderr, "siphactl: %s\n", err);
		cfg_free(&cfg);
		return -EINVAL;
	}
	snprintf(out, len, "%s", cfg.control.socket);
	cfg_free(&cfg);
	return 0;
}

/* What ARGV asks for help about: -h or --help anywhere (*DASH_H), or the
 * command help.  The command and its first argument go to *NAME and *ARG. */
static bool wants_help(int argc, char **argv, const char **name, const char **arg, bool *dash_h)
{
	*name = *arg = NULL;
	*dash_h = false;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
			*dash_h = true;
		else if (!strcmp(argv[i], "-s") || !strcmp(argv[i], "-c"))
			i++;
		else if (argv[i][0] == '-' && argv[i][1])
			continue;
		else if (!*name)
			*name = argv[i];
		else if (!*arg)
			*arg = argv[i];
	}
	return *dash_h || (*name && !strcmp(*name, "help"));
}

/* Help, with no daemon: `siphactl help [COMMAND]`, `COMMAND --help`, or
 * `--help` (the list of commands; so is --help with a command we do not
 * know, while `help` of one is a usage error). */
static int help(const char *name, const char *arg, bool dash_h)
{
	const struct cmd_help *h;

	if (name && !strcmp(name, "help") && arg)
		name = arg;
	else if (name && !strcmp(name, "help") && !dash_h)
		name = NULL;
	else
		arg = NULL;
	h = name ? find_help(name) : NULL;
	if (!h && !arg) {
		fputs(usage_text, stdout);
		return EXIT_OK;
	}
	if (!h) {
		fprintf(stderr, "siphactl: help: unknown command '%s'\n", name);
		fputs(usage_text, stderr);
		return EXIT_USAGE;
	}
	print_cmd_help(h);
	return EXIT_OK;
}

int main(int argc, char **argv)
{
	char sock[108] = "/run/sipha/sipha.sock", err[512] = "";
	const char *cmd = NULL;
	json_t *req, *args, *ans;
	bool json = false;
	const char *hname, *harg;
	bool dash_h;
	int rc;

	if (wants_help(argc, argv, &hname, &harg, &dash_h))
		return help(hname, harg, dash_h);
	args = json_array();
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json")) {
			json = true;
		} else if (!strcmp(argv[i], "-s") || !strcmp(argv[i], "-c")) {
			if (i + 1 >= argc) {
				json_decref(args);
				return usage_error("option needs an argument");
			}
			if (argv[i][1] == 's') {
				snprintf(sock, sizeof(sock), "%s", argv[i + 1]);
			} else if (socket_from_config(argv[i + 1], sock, sizeof(sock))) {
				json_decref(args);
				return EXIT_USAGE;
			}
			i++;
		} else if (argv[i][0] == '-' && argv[i][1] && !cmd) {
			json_decref(args);
			return usage_error("unknown option");
		} else if (!cmd) {
			cmd = argv[i];
		} else {
			json_array_append_new(args, json_string(argv[i]));
		}
	}
	if (!cmd) {
		json_decref(args);
		return usage_error("no command given");
	}
	req = json_pack("{s:s, s:o}", "cmd", cmd, "args", args);
	ans = call_daemon(sock, req, err, sizeof(err));
	json_decref(req);
	if (!ans) {
		fprintf(stderr, "siphactl: %s\n", err);
		return EXIT_UNREACHABLE;
	}
	if (!json_is_true(json_object_get(ans, "ok"))) {
		bool usage = json_is_true(json_object_get(ans, "usage"));

		if (json) {
			json_dumpf(ans, stdout, JSON_COMPACT);
			putchar('\n');
		} else {
			fprintf(stderr, "siphactl: %s: %s\n", cmd,
				json_string_value(json_object_get(ans, "error")));
		}
		if (usage && !json)
			fputs(usage_text, stderr);
		json_decref(ans);
		return usage ? EXIT_USAGE : EXIT_REFUSED;
	}
	if (!strcmp(cmd, "vip")) {
		char state[16] = "unknown";
		int present = kernel_has_addr(json_string_value(json_object_get(ans, "interface")),
					      json_string_value(json_object_get(ans, "address")),
					      state, sizeof(state));

		json_object_set_new(ans, "present", json_boolean(present == 1));
		json_object_set_new(ans, "link", json_string(state));
	}
	if (json) {
		json_dumpf(ans, stdout, JSON_COMPACT);
		putchar('\n');
	} else {
		print_human(cmd, ans);
	}
	json_decref(ans);
	rc = EXIT_OK;
	return rc;
}
