/* sipha-load — the appliance's own SIP load tool and failover probe.
 *
 *   sipha-load --uac [-i IP] [-p PORT] -s DN -r CALLS_PER_S -m CALLS -d HOLD_MS TARGET
 *   sipha-load --uas -i IP -p PORT
 *   sipha-load --uac --uas ... (both in one process)
 *   sipha-load --register N --users FIRST -r REGS_PER_S TARGET (a registrar load)
 *   sipha-load probe TARGET [--interval-us N] [--duration-s N] ...
 *
 * docs/LOAD.md is the contract of the command line and of the output. */
#include "sipha-load/load.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define LD_DEFAULT_PORT 5060

static volatile sig_atomic_t ld_signalled;

static void on_signal(int sig)
{
	(void)sig;
	ld_signalled = 1;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: sipha-load --uac [options] TARGET_IP[:PORT]   place calls\n"
		"       sipha-load --uas -i IP -p PORT [options]     answer calls\n"
		"       sipha-load --uac --uas [options] TARGET      both, in one process\n"
		"       sipha-load --register N [options] TARGET     REGISTERs at a rate\n"
		"       sipha-load probe TARGET [options]            OPTIONS prober (probe "
		"--help)\n"
		"\n"
		"Calls over UDP: the caller sends INVITE, ACKs the 200, holds the call -d ms and\n"
		"sends BYE; the callee answers INVITE with 180 and 200, BYE with 200.  RFC 3261\n"
		"timers A/E retransmit, B/F (64*T1) end a transaction as a timeout.\n"
		"\n"
		"options (where sipp has the flag, it means the same):\n"
		"  --uac               place calls to TARGET (IPv4, or [IPv6]; port 5060 by "
		"default)\n"
		"  --uas               answer calls on -i IP -p PORT\n"
		"  -i IP               local address (UAC default: the one routed to TARGET;\n"
		"                      UAS default: 127.0.0.1)\n"
		"  -p PORT             local port: the UAS's with --uas, else the UAC's (default "
		"any)\n"
		"  --uac-port PORT     the UAC's port when both run (default any)\n"
		"  -s DN               the number called: INVITE sip:DN@TARGET (default service)\n"
		"  -r CALLS_PER_S      call rate, may be fractional (default 10)\n"
		"  --ramp-to R         with --ramp-s S: the rate goes from -r to R in a straight\n"
		"  --ramp-s S          line over S seconds, then stays at R\n"
		"  -m CALLS            calls to place, then end (default: until SIGINT); with\n"
		"                      --uas alone, end after CALLS calls were hung up (BYE)\n"
		"  -d HOLD_MS          how long a call is held before the BYE (default 0)\n"
		"  --hold-dist D       hold times drawn from D: exp:MEAN_MS (exponential),\n"
		"                      uniform:MIN-MAX (ms), fixed:MS (as -d)\n"
		"  --options-every MS  a held call sends an in-dialog OPTIONS every MS\n"
		"  --reinvite-after MS a held call sends one re-INVITE MS after its ACK\n"
		"                      (each only when due before the BYE)\n"
		"  -l LIMIT            most calls at once; more wait (default from rate and "
		"timers)\n"
		"  -t u1|t1            transport: u1 UDP, t1 TCP (the caller keeps one\n"
		"                      connection and opens a new one when it breaks)\n"
		"  --timer-t1 MS       RFC 3261 T1 (default 500): A/E start there, B/F at 64*T1\n"
		"  --timer-t2 MS       RFC 3261 T2 (default 4000)\n"
		"  --tick-us US        while traffic flows, read and send once per US (default\n"
		"                      1000): the CPU cost falls, answers wait up to US, set-up\n"
		"                      times stay exact (kernel receive timestamps); 0: handle\n"
		"                      each datagram as it comes\n"
		"  --user USER         the caller's user (From: sip:USER@...) and, with\n"
		"  --password PASS     digest credentials: an INVITE answered 401 or 407 is\n"
		"                      sent again once with them (MD5 or SHA-256, qop=auth)\n"
		"  --register N        REGISTER N users first (calls wait for them; bindings\n"
		"                      are refreshed at 4/5 of their expiry; --password:\n"
		"                      every user's digest password); without --uac and\n"
		"                      --uas, only REGISTERs: -m of them (default N), the\n"
		"                      k-th for user k mod N\n"
		"  --users FIRST       the users: FIRST's trailing number counts up, keeping its\n"
		"                      width (1000 -> 1000, 1001, ...; default --user)\n"
		"  --reg-rate R        REGISTERs per second (default -r)\n"
		"  --reg-expires S     Expires asked for (default 3600)\n"
		"  --max-rate          search the highest call rate sustained: steps of\n"
		"  --step-s S          S seconds (default 5) from -r, doubling while a step\n"
		"                      passes, then bisecting to 5%%; a step fails when more\n"
		"  --max-fail-pct P    than P%% (default 1) of its calls failed or had no 2xx\n"
		"  --max-p99-us US     by its end, when its set-up p99 passes US (default: no\n"
		"                      bound), or when under 95%% of its calls could be placed\n"
		"  --rate-max R        the search stays at or under R calls/s (default 100 x -r)\n"
		"  --ring-ms MS        the callee sends its 200 MS after the 180 (a CANCEL\n"
		"                      meanwhile gets 200 and the INVITE 487)\n"
		"  --json              one JSON object on stdout at the end (the summary goes\n"
		"                      to stderr)\n"
		"  --hist FILE         write the set-up and transaction histograms (\"value_us\n"
		"                      count\" lines, gnuplot: plot FILE index 0 using 1:2)\n"
		"  -q, --quiet         no live report (one line per second on stderr)\n"
		"  -h, --help          this text\n"
		"\n"
		"exit status: 0 no call failed, 1 a call, REGISTER, OPTIONS or re-INVITE failed\n"
		"(or a socket error; --max-rate: no rate passed), 2 usage error\n"
		"\n"
		"example: sipha-load --uas -i 127.0.0.1 -p 5090 &\n"
		"         sipha-load --uac -s 3000 -r 100 -m 1000 -d 1000 127.0.0.1:5090 --json\n"
		"         sipha-load --register 1000 --users 2000 --password s -r 500 192.0.2.1\n");
}

static int bad(const char *arg, const char *why, const char *val)
{
	fprintf(stderr, "sipha-load: %s: %s%s%s%s\n", arg, why, val ? " ('" : "", val ? val : "",
		val ? "')" : "");
	fprintf(stderr, "try sipha-load --help\n");
	return 2;
}

static bool parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!s || !*s || *s == '-' || *s == '+')
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return false;
	*out = v;
	return true;
}

static bool parse_uns(const char *s, unsigned min, unsigned max, unsigned *out)
{
	uint64_t v;

	if (!parse_u64(s, min, max, &v))
		return false;
	*out = (unsigned)v;
	return true;
}

/* TARGET: IPv4[:PORT] or [IPv6][:PORT] (or a bare IPv6). */
int ld_parse_target(const char *s, struct sockaddr_storage *ss, socklen_t *sl)
{
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon, *port = NULL;
	unsigned p = LD_DEFAULT_PORT;
	struct sockaddr_in *s4 = (void *)ss;
	struct sockaddr_in6 *s6 = (void *)ss;
	size_t n;

	memset(ss, 0, sizeof(*ss));
	if (*s == '[') {
		const char *rb = strchr(s, ']');

		if (!rb)
			return -EINVAL;
		n = (size_t)(rb - s - 1);
		if (rb[1] == ':')
			port = rb + 2;
		else if (rb[1])
			return -EINVAL;
		s++;
	} else {
		colon = strrchr(s, ':');
		if (colon && strchr(s, ':') == colon) {
			n = (size_t)(colon - s);
			port = colon + 1;
		} else {
			n = strlen(s);
		}
	}
	if (n == 0 || n >= sizeof(host))
		return -EINVAL;
	memcpy(host, s, n);
	host[n] = 0;
	if (port && !parse_uns(port, 1, 65535, &p))
		return -EINVAL;
	if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)p);
		*sl = sizeof(*s4);
	} else if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)p);
		*sl = sizeof(*s6);
	} else {
		return -EINVAL;
	}
	return 0;
}

enum {
	OPT_UAC = 256,
	OPT_UAS,
	OPT_UAC_PORT,
	OPT_T1,
	OPT_T2,
	OPT_JSON,
	OPT_HIST,
	OPT_TICK,
	OPT_USER,
	OPT_RAMP_TO,
	OPT_RAMP_S,
	OPT_PASSWORD,
	OPT_REGISTER,
	OPT_USERS,
	OPT_REG_RATE,
	OPT_REG_EXPIRES,
	OPT_OPTIONS_EVERY,
	OPT_REINVITE_AFTER,
	OPT_MAX_RATE,
	OPT_MAX_FAIL,
	OPT_MAX_P99,
	OPT_STEP_S,
	OPT_RATE_MAX,
	OPT_RING,
	OPT_HOLD_DIST,
};

static bool parse_rate(const char *s, double *out)
{
	char *end;

	errno = 0;
	*out = strtod(s, &end);
	return !errno && *end == 0 && end != s && *out > 0 && *out <= 1e6;
}

/* --users FIRST: a prefix and the trailing number that counts up. */
static bool parse_users(const char *s, struct ld_opts *o)
{
	size_t n = strlen(s), d = n;

	if (!n || n > 64 || strpbrk(s, " \t\r\n@<>;:\"\\"))
		return false;
	while (d > 0 && s[d - 1] >= '0' && s[d - 1] <= '9' && n - d < 18)
		d--;
	memcpy(o->users_prefix, s, d);
	o->users_prefix[d] = 0;
	o->users_width = (unsigned)(n - d);
	o->users_first = n > d ? strtoull(s + d, NULL, 10) : 0;
	return true;
}

static int parse_args(int argc, char **argv, struct ld_opts *o)
{
	static const struct option longopts[] = {
		{ "uac", no_argument, NULL, OPT_UAC },
		{ "uas", no_argument, NULL, OPT_UAS },
		{ "uac-port", required_argument, NULL, OPT_UAC_PORT },
		{ "timer-t1", required_argument, NULL, OPT_T1 },
		{ "timer-t2", required_argument, NULL, OPT_T2 },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "hist", required_argument, NULL, OPT_HIST },
		{ "tick-us", required_argument, NULL, OPT_TICK },
		{ "user", required_argument, NULL, OPT_USER },
		{ "ramp-to", required_argument, NULL, OPT_RAMP_TO },
		{ "ramp-s", required_argument, NULL, OPT_RAMP_S },
		{ "password", required_argument, NULL, OPT_PASSWORD },
		{ "register", required_argument, NULL, OPT_REGISTER },
		{ "users", required_argument, NULL, OPT_USERS },
		{ "reg-rate", required_argument, NULL, OPT_REG_RATE },
		{ "reg-expires", required_argument, NULL, OPT_REG_EXPIRES },
		{ "options-every", required_argument, NULL, OPT_OPTIONS_EVERY },
		{ "reinvite-after", required_argument, NULL, OPT_REINVITE_AFTER },
		{ "max-rate", no_argument, NULL, OPT_MAX_RATE },
		{ "max-fail-pct", required_argument, NULL, OPT_MAX_FAIL },
		{ "max-p99-us", required_argument, NULL, OPT_MAX_P99 },
		{ "step-s", required_argument, NULL, OPT_STEP_S },
		{ "rate-max", required_argument, NULL, OPT_RATE_MAX },
		{ "ring-ms", required_argument, NULL, OPT_RING },
		{ "hold-dist", required_argument, NULL, OPT_HOLD_DIST },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool have_m = false, have_d = false, have_dist = false;
	const char *users = NULL;
	int c;

	o->dn = "service";
	o->rate = 10;
	o->t1_ms = 500;
	o->t2_ms = 4000;
	o->tick_us = 1000;
	o->reg_expires = 3600;
	o->max_fail_pct = 1;
	o->step_s = 5;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":i:p:s:r:m:d:l:t:qh", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_UAC:
			o->uac = true;
			break;
		case OPT_UAS:
			o->uas = true;
			break;
		case 'i': {
			struct in6_addr a;

			if (inet_pton(AF_INET, optarg, &a) != 1 &&
			    inet_pton(AF_INET6, optarg, &a) != 1)
				return bad("-i", "not an IPv4 or IPv6 address", optarg);
			o->local_ip = optarg;
			break;
		}
		case 'p':
			if (!parse_uns(optarg, 1, 65535, &o->local_port))
				return bad("-p", "not a port in 1..65535", optarg);
			break;
		case OPT_UAC_PORT:
			if (!parse_uns(optarg, 1, 65535, &o->uac_port))
				return bad("--uac-port", "not a port in 1..65535", optarg);
			break;
		case 's':
			if (!*optarg || strlen(optarg) > 64 || strpbrk(optarg, " \t\r\n@<>;:\"")) {
				return bad("-s", "not a user part of up to 64 characters", optarg);
			}
			o->dn = optarg;
			break;
		case 'r':
			if (!parse_rate(optarg, &o->rate))
				return bad("-r", "not a call rate in (0, 1000000] per second",
					   optarg);
			break;
		case OPT_RAMP_TO:
			if (!parse_rate(optarg, &o->ramp_to))
				return bad("--ramp-to",
					   "not a call rate in (0, 1000000] per second", optarg);
			break;
		case OPT_REG_RATE:
			if (!parse_rate(optarg, &o->reg_rate))
				return bad("--reg-rate",
					   "not a REGISTER rate in (0, 1000000] per second",
					   optarg);
			break;
		case OPT_RATE_MAX:
			if (!parse_rate(optarg, &o->rate_max))
				return bad("--rate-max",
					   "not a call rate in (0, 1000000] per second", optarg);
			break;
		case OPT_MAX_FAIL: {
			char *end;

			errno = 0;
			o->max_fail_pct = strtod(optarg, &end);
			if (errno || *end || end == optarg || !(o->max_fail_pct >= 0) ||
			    o->max_fail_pct > 100)
				return bad("--max-fail-pct", "not a percentage in [0, 100]",
					   optarg);
			break;
		}
		case OPT_MAX_P99:
			if (!parse_u64(optarg, 1, 3600000000ull, &o->max_p99_us))
				return bad("--max-p99-us", "not a time in 1..3600000000 us",
					   optarg);
			break;
		case OPT_MAX_RATE:
			o->max_rate = true;
			break;
		case OPT_STEP_S:
			if (!parse_uns(optarg, 2, 3600, &o->step_s))
				return bad("--step-s", "not a time in 2..3600 s", optarg);
			break;
		case OPT_REGISTER:
			if (!parse_uns(optarg, 1, 1000000, &o->reg_n))
				return bad("--register", "not a user count in 1..1000000", optarg);
			break;
		case OPT_USERS:
			if (!parse_users(optarg, o))
				return bad("--users", "not a user name of up to 64 characters",
					   optarg);
			users = optarg;
			break;
		case OPT_REG_EXPIRES:
			if (!parse_uns(optarg, 0, 604800, &o->reg_expires))
				return bad("--reg-expires", "not a time in 0..604800 s", optarg);
			break;
		case OPT_OPTIONS_EVERY:
			if (!parse_uns(optarg, 1, 86400000, &o->options_ms))
				return bad("--options-every", "not a time in 1..86400000 ms",
					   optarg);
			break;
		case OPT_REINVITE_AFTER:
			if (!parse_uns(optarg, 0, 86400000, &o->reinvite_ms))
				return bad("--reinvite-after", "not a time in 0..86400000 ms",
					   optarg);
			o->reinvite = true;
			break;
		case OPT_RING:
			if (!parse_uns(optarg, 0, 600000, &o->ring_ms))
				return bad("--ring-ms", "not a time in 0..600000 ms", optarg);
			break;
		case OPT_HOLD_DIST:
			if (dist_parse(optarg, 86400000, &o->hold))
				return bad("--hold-dist",
					   "not exp:MEAN_MS, uniform:MIN-MAX or fixed:MS "
					   "(ms up to 86400000)",
					   optarg);
			have_dist = true;
			break;
		case OPT_RAMP_S:
			if (!parse_uns(optarg, 1, 86400, &o->ramp_s))
				return bad("--ramp-s", "not a time in 1..86400 s", optarg);
			break;
		case 'm':
			if (!parse_u64(optarg, 1, UINT32_MAX, &o->max_calls))
				return bad("-m", "not a call count in 1..4294967295", optarg);
			have_m = true;
			break;
		case 'd':
			if (!parse_uns(optarg, 0, 86400000, &o->hold_ms))
				return bad("-d", "not a hold time in 0..86400000 ms", optarg);
			have_d = true;
			break;
		case 'l':
			if (!parse_uns(optarg, 1, 1u << 22, &o->limit))
				return bad("-l", "not a call limit in 1..4194304", optarg);
			break;
		case 't':
			if (!strcmp(optarg, "u1"))
				o->tcp = false;
			else if (!strcmp(optarg, "t1"))
				o->tcp = true;
			else
				return bad("-t", "not a transport (u1 or t1)", optarg);
			break;
		case OPT_T1:
			if (!parse_uns(optarg, 1, 60000, &o->t1_ms))
				return bad("--timer-t1", "not a time in 1..60000 ms", optarg);
			break;
		case OPT_T2:
			if (!parse_uns(optarg, 1, 600000, &o->t2_ms))
				return bad("--timer-t2", "not a time in 1..600000 ms", optarg);
			break;
		case OPT_JSON:
			o->json = true;
			break;
		case OPT_HIST:
			if (!*optarg)
				return bad("--hist", "an empty file name", NULL);
			o->hist_path = optarg;
			break;
		case OPT_TICK:
			if (!parse_uns(optarg, 0, 100000, &o->tick_us))
				return bad("--tick-us", "not a time in 0..100000 us", optarg);
			break;
		case OPT_USER:
			if (!*optarg || strlen(optarg) > 64 || strpbrk(optarg, " \t\r\n@<>;:\"\\"))
				return bad("--user", "not a user name of up to 64 characters",
					   optarg);
			o->user = optarg;
			break;
		case OPT_PASSWORD:
			if (strlen(optarg) > 128 || strpbrk(optarg, "\r\n"))
				return bad("--password", "not a password of up to 128 characters",
					   NULL);
			o->password = optarg;
			break;
		case 'q':
			o->quiet = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case ':': {
			char opt[32];

			if (optopt)
				snprintf(opt, sizeof(opt), "-%c", optopt);
			else
				snprintf(opt, sizeof(opt), "%s", argv[optind - 1]);
			return bad(opt, "needs a value", NULL);
		}
		default: {
			char opt[64];

			if (optopt)
				snprintf(opt, sizeof(opt), "-%c", optopt);
			else
				snprintf(opt, sizeof(opt), "%.60s", argv[optind - 1]);
			return bad(opt, "unknown option", NULL);
		}
		}
	}
	if (!o->ramp_to != !o->ramp_s)
		return bad(o->ramp_to ? "--ramp-s" : "--ramp-to",
			   "--ramp-to and --ramp-s go together", NULL);
	if (o->user && !o->password)
		return bad("--password", "--user and --password go together", NULL);
	if (o->password && !o->user && !o->reg_n)
		return bad("--user", "--password needs --user or --register", NULL);
	if (have_d && have_dist)
		return bad("--hold-dist", "give -d or --hold-dist, not both", NULL);
	if (!have_dist) {
		o->hold.kind = LD_FIXED;
		o->hold.a = o->hold_ms;
	}
	if (!o->uac && !o->uas && !o->reg_n)
		return bad("mode", "give --uac, --uas, --register or both (or the probe command)",
			   NULL);
	if (o->max_rate && !o->uac)
		return bad("--max-rate", "searches a call rate: it needs --uac", NULL);
	if (o->max_rate && o->ramp_to)
		return bad("--max-rate", "chooses the rates itself: no --ramp-to", NULL);
	if ((o->options_ms || o->reinvite) && !o->uac)
		return bad(o->options_ms ? "--options-every" : "--reinvite-after",
			   "sent by held calls: it needs --uac", NULL);
	if (o->reg_n) {
		if (!users)
			parse_users(o->user ? o->user : "sipha-load", o);
		if (!o->users_width && o->reg_n > 1)
			return bad("--users",
				   "needs a trailing number to count up from for --register N > 1",
				   users ? users : o->user);
		if (!o->reg_rate)
			o->reg_rate = o->rate;
	}
	if (o->uac || o->reg_n) {
		if (optind >= argc)
			return bad("TARGET",
				   o->uac ? "--uac needs TARGET_IP[:PORT] to call"
					  : "--register needs TARGET_IP[:PORT] to register with",
				   NULL);
		if (ld_parse_target(argv[optind], &o->target, &o->target_len))
			return bad("TARGET", "not IPv4[:PORT] or [IPv6][:PORT]", argv[optind]);
		ld_format_host(&o->target, o->target_host, sizeof(o->target_host));
		o->have_target = true;
		optind++;
	}
	if (optind < argc)
		return bad(argv[optind], "unexpected argument", NULL);
	if (o->uas && !o->local_port)
		return bad("-p", "--uas needs the port to answer on", NULL);
	if (!have_m)
		o->max_calls = o->uac ? UINT64_MAX : (o->uas ? 0 : o->reg_n);
	if (o->max_rate && !o->rate_max)
		o->rate_max = o->rate * 100 < 1e6 ? o->rate * 100 : 1e6;
	if (o->uac && !o->limit) {
		/* Little's law with room: the calls up at once at the highest
		 * rate.  --max-rate counts on set-ups of a few T1 at most: a
		 * step that fills the table fails, as it places too few calls. */
		double r = o->max_rate ? o->rate_max : o->ramp_to > o->rate ? o->ramp_to : o->rate;
		double l = r * (dist_mean(&o->hold) + (o->max_rate ? 4.0 : 64.0) * o->t1_ms) /
				   1000.0 * 1.25 +
			   64;
		double cap = o->max_rate ? (1u << 18) : (1u << 22);

		if (l > cap)
			l = cap;
		if ((double)o->max_calls < l)
			l = (double)o->max_calls;
		o->limit = (unsigned)l;
	}
	return 0;
}

void ld_rx(struct load *ld, struct ld_ep *ep, struct ld_conn *conn, const char *buf, size_t len,
	   const struct sockaddr_storage *src)
{
	struct sl_msg m;

	if (ld->probe) {
		probe_rx(ld, buf, len);
		return;
	}
	if (sl_scan(buf, len, &m)) {
		ld->st.junk++;
		return;
	}
	bool to_uac = conn ? conn == ld->uac_conn : ep && ep == ld->uac_ep;

	if (m.status) {
		if (to_uac)
			uac_answer(ld, buf, &m);
		else
			ld->st.stray++;
		return;
	}
	if (to_uac)
		uac_request(ld, buf, &m);
	uas_request(ld, ep, conn, buf, len, &m, src);
}

static int run(struct load *ld)
{
	struct pollfd pf[4 + LD_MAX_CONNS];
	struct ld_ep *eps[2];
	unsigned nep = 0, ntcp = 0;
	struct ld_report rep = { 0 };
	uint64_t next_rep, last_wake = 0;
	bool busy = false;
	unsigned got;
	sigset_t block, orig;
	struct sigaction sa = { 0 };

	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigprocmask(SIG_BLOCK, &block, &orig);

	if (ld->uac_ep)
		eps[nep++] = ld->uac_ep;
	if (ld->uas_ep)
		eps[nep++] = ld->uas_ep;
	for (unsigned i = 0; i < nep; i++) {
		pf[i].fd = eps[i]->fd;
		pf[i].events = POLLIN;
	}
	ld->now_us = ld->t0_us = ld->reg_t0_us = ld_mono_us();
	timer_wheel_init(&ld->tw, ld->now_us / 1000);
	if (ld->o.uac && !ld->reg_phase)
		uac_begin(ld);
	rep.at_us = ld->t0_us;
	next_rep = ld->t0_us + 1000000;
	for (;;) {
		int64_t wait_us = 1000000, t;
		struct timespec ts;
		int n;

		ld->now_us = ld_mono_us();
		if (ld->o.tcp)
			tcp_tick(ld);
		timer_run(&ld->tw, ld->now_us / 1000);
		reg_pace(ld);
		if (ld->o.uac)
			uac_pace(ld);
		for (unsigned i = 0; i < nep; i++)
			ld_ep_flush(ld, eps[i]);
		if (ld->o.tcp) {
			tcp_flush_all(ld);
			ntcp = tcp_pollfds(ld, pf + nep, LD_MAX_CONNS + 2);
		}
		if (ld_signalled)
			ld->stop = 1;
		if (ld->stop || ld->done)
			break;
		if (ld->o.uac && ld->st.started >= ld->o.max_calls && ld->active == 0 &&
		    reg_over(ld))
			break;
		if (!ld->o.uac && !ld->o.uas && reg_over(ld))
			break; /* --register alone: every REGISTER answered */
		if (ld->now_us >= next_rep) {
			if (!ld->o.quiet)
				live_report(ld, &rep);
			next_rep += 1000000;
			if (next_rep <= ld->now_us)
				next_rep = ld->now_us + 1000000;
		}
		wait_us = (int64_t)(next_rep - ld->now_us);
		t = timer_next(&ld->tw);
		if (t >= 0) {
			/* the wheel's "now" is whole ms: round up to its next tick */
			int64_t tw = t * 1000 + (int64_t)(1000 - ld->now_us % 1000);

			if (tw < wait_us)
				wait_us = tw;
		}
		if (ld->o.uac) {
			t = uac_pace_wait(ld);
			if (t >= 0 && t < wait_us)
				wait_us = t;
		}
		t = reg_pace_wait(ld);
		if (t >= 0 && t < wait_us)
			wait_us = t;
		if (ld->uac_conn && ld->uac_conn->fd < 0) {
			t = (int64_t)ld->reconnect_at_us - (int64_t)ld->now_us;
			if (t < wait_us)
				wait_us = t < 0 ? 0 : t;
		}
		if (ld->uac_conn && ld->uac_conn->fd >= 0 && !ld->uac_conn->up)
			busy = false; /* connecting: wait for POLLOUT */
		if (ld->o.tick_us && busy) {
			/* Busy: sleep out the tick, then read everything that came
			 * meanwhile in one batch per socket.  Timers and the pacer
			 * catch up after it; the kernel's timestamps keep the
			 * measures exact. */
			int64_t until = (int64_t)(last_wake + ld->o.tick_us) - (int64_t)ld->now_us;

			if (until > 0) {
				ts.tv_sec = until / 1000000;
				ts.tv_nsec = (until % 1000000) * 1000;
				if (ppoll(NULL, 0, &ts, &orig) < 0 && errno != EINTR) {
					fprintf(stderr, "sipha-load: poll: %s\n", strerror(errno));
					return -errno;
				}
			}
			last_wake = ld_mono_us();
			got = 0;
			for (unsigned i = 0; i < nep; i++)
				got += ld_ep_drain(ld, eps[i]);
			if (ntcp)
				got += tcp_service(ld, pf + nep, ntcp, true);
			busy = got > 0;
			continue;
		}
		ts.tv_sec = wait_us / 1000000;
		ts.tv_nsec = (wait_us % 1000000) * 1000;
		n = ppoll(pf, nep + ntcp, &ts, &orig);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "sipha-load: poll: %s\n", strerror(errno));
			return -errno;
		}
		last_wake = ld_mono_us();
		got = 0;
		for (unsigned i = 0; i < nep; i++)
			if (pf[i].revents)
				got += ld_ep_drain(ld, eps[i]);
		if (ntcp)
			got += tcp_service(ld, pf + nep, ntcp, false);
		busy = got > 0;
	}
	sigprocmask(SIG_SETMASK, &orig, NULL);
	return 0;
}

static int open_uas(struct load *ld)
{
	const char *ip = ld->o.local_ip ? ld->o.local_ip : "127.0.0.1";
	int err;

	if (ld->o.tcp)
		err = tcp_uas_listen(ld, ip, ld->o.local_port);
	else
		err = ld_ep_open(&ld->uas_ep, ip, ld->o.local_port, NULL);
	if (err)
		fprintf(stderr, "sipha-load: --uas on %s%s port %u: %s\n", ld->o.tcp ? "TCP " : "",
			ip, ld->o.local_port, strerror(-err));
	return err;
}

/* The caller's socket (or TCP connection) and templates: for calls and
 * for REGISTERs. */
static int open_uac(struct load *ld)
{
	unsigned port = ld->o.uas ? ld->o.uac_port : ld->o.local_port;
	int err;

	if (ld->o.tcp) {
		struct sockaddr_storage bs;
		socklen_t bl = 0;

		if (ld->o.local_ip || port) {
			char spec[96];

			if (ld->o.local_ip && strchr(ld->o.local_ip, ':'))
				snprintf(spec, sizeof(spec), "[%s]:%u", ld->o.local_ip, port);
			else
				snprintf(spec, sizeof(spec), "%s:%u",
					 ld->o.local_ip ? ld->o.local_ip : "0.0.0.0", port);
			if (ld_parse_target(spec, &bs, &bl) && port == 0) {
				/* port 0: parse_target wants 1..65535; bind any */
				snprintf(spec, sizeof(spec), "%s",
					 ld->o.local_ip ? ld->o.local_ip : "0.0.0.0");
				ld_parse_target(spec, &bs, &bl);
				((struct sockaddr_in *)&bs)->sin_port = 0;
			}
		}
		err = tcp_uac_init(ld, bl ? &bs : NULL, bl);
		if (!err)
			err = uac_init(ld);
		if (err)
			fprintf(stderr, "sipha-load: --uac over TCP: %s\n", strerror(-err));
		return err;
	}
	err = ld_ep_open(&ld->uac_ep, ld->o.local_ip, port, &ld->o.target);
	if (err) {
		fprintf(stderr, "sipha-load: --uac local address %s port %u: %s\n",
			ld->o.local_ip ? ld->o.local_ip : "(routed)", port, strerror(-err));
		return err;
	}
	err = uac_init(ld);
	if (err)
		fprintf(stderr, "sipha-load: %s\n", strerror(-err));
	return err;
}

/* Any call or transaction failed (--max-rate: no rate was sustained). */
static bool any_failed(const struct load *ld)
{
	const struct ld_stats *s = &ld->st;

	if (ld->o.max_rate)
		return ld->search.lo <= 0;
	return s->failed || s->reg.failed || s->opt.failed || s->reinv.failed;
}

int main(int argc, char **argv)
{
	struct load *ld = NULL;
	double wall, cpu;
	int err, rc = 1;
	uint64_t r;

	if (argc > 1 && !strcmp(argv[1], "probe"))
		return probe_main(argc - 1, argv + 1);
	ld = calloc(1, sizeof(*ld));
	if (!ld) {
		fprintf(stderr, "sipha-load: out of memory\n");
		return 1;
	}
	err = parse_args(argc, argv, &ld->o);
	if (err) {
		free(ld);
		return err;
	}
	ld->lfd = -1;
	ld->pace.r0 = ld->o.rate;
	ld->pace.r1 = ld->o.ramp_to ? ld->o.ramp_to : ld->o.rate;
	ld->pace.ramp_us = (uint64_t)ld->o.ramp_s * 1000000u;
	if (ld->o.max_rate)
		search_init(&ld->search, ld->o.rate, ld->o.rate_max);
	hist_reset(&ld->setup);
	hist_reset(&ld->setup_iv);
	hist_reset(&ld->txn_invite);
	hist_reset(&ld->txn_bye);
	hist_reset(&ld->hold);
	hist_reset(&ld->reg_iv);
	hist_reset(&ld->st.reg.us);
	hist_reset(&ld->st.opt.us);
	hist_reset(&ld->st.reinv.us);
	r = ((uint64_t)getpid() << 32) ^ ld_mono_us() ^ (uint64_t)time(NULL) * 2654435761u;
	snprintf(ld->run, sizeof(ld->run), "%08" PRIx32, (uint32_t)(r ^ (r >> 32)));
	ld->rng = r | 1;
	err = uas_init(ld);
	if (!err && ld->o.uas)
		err = open_uas(ld);
	if (!err && (ld->o.uac || ld->o.reg_n))
		err = open_uac(ld);
	if (!err)
		err = reg_init(ld);
	if (err) {
		if (err == -ENOMEM)
			fprintf(stderr, "sipha-load: %s\n", strerror(-err));
		goto out;
	}
	err = run(ld);
	wall = (double)(ld->now_us - ld->t0_us) / 1e6;
	cpu = cpu_seconds();
	summary(ld, wall, cpu, ld->o.json ? stderr : stdout);
	if (ld->o.json)
		json_out(ld, wall, cpu);
	if (ld->o.hist_path && write_hists(ld))
		err = -EIO;
	rc = err || any_failed(ld) ? 1 : 0;
out:
	uac_free(ld);
	reg_free(ld);
	uas_free(ld);
	ld_ep_close(ld->uac_ep);
	ld_ep_close(ld->uas_ep);
	tcp_close_all(ld);
	free(ld);
	return rc;
}
