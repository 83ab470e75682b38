/* sipha-load probe: how long a SIP address stops answering (a failover).
 * One UDP socket sends OPTIONS every --interval-us, each a new transaction
 * (CSeq n, branch n, never retransmitted), and notes when answers arrive
 * (kernel timestamps).  A silence between two answers longer than --gap-us
 * is printed as it ends; the longest is reported at the end, with the
 * answer time of every OPTIONS in a histogram.  Bounded by --duration-s,
 * then up to 300 ms more for the answers in flight. */
#include "sipha-load/load.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define PR_RING 65536 /* send times kept, by CSeq */

struct ld_probe {
	uint64_t sent, answered, late, gaps, longest_gap_us;
	uint64_t last_answer_us, first_answer_us;
	bool open_gap;
	struct ld_str head, mid, tail;
	struct hist rtt;
	uint64_t sent_at[PR_RING];
};

static volatile sig_atomic_t pr_signalled;

static void pr_on_signal(int sig)
{
	(void)sig;
	pr_signalled = 1;
}

static void probe_usage(FILE *f)
{
	fprintf(f,
		"usage: sipha-load probe [options] TARGET_IP[:PORT]\n"
		"\n"
		"Sends an OPTIONS every --interval-us to TARGET (port 5060 by default) and\n"
		"prints each silence between two answers longer than --gap-us, then the\n"
		"longest one: the outage of a failover as a client sees it.\n"
		"\n"
		"options:\n"
		"  -i IP               local address (default: the one routed to TARGET)\n"
		"  -p PORT             local port (default any)\n"
		"  --interval-us N     time between two OPTIONS (default 1000, 100..10000000)\n"
		"  --duration-s N      how long to send (default 10, 1..86400)\n"
		"  --gap-us N          a silence longer than this is a gap (default 10 intervals)\n"
		"  --json              one JSON object on stdout at the end: sent, answered,\n"
		"                      gaps, longest_gap_us, open_gap, rtt_us {p50 p99 p999 max}\n"
		"  -q, --quiet         do not print gaps as they end\n"
		"  -h, --help          this text\n"
		"\n"
		"exit status: 0 when something answered, 1 when nothing did, 2 usage error\n"
		"\n"
		"example: sipha-load probe --interval-us 1000 --duration-s 20 --json "
		"192.0.2.10:5060\n");
}

static int pr_bad(const char *arg, const char *why, const char *val)
{
	fprintf(stderr, "sipha-load probe: %s: %s%s%s%s\ntry sipha-load probe --help\n", arg, why,
		val ? " ('" : "", val ? val : "", val ? "')" : "");
	return 2;
}

static bool pr_uns(const char *s, unsigned min, unsigned max, unsigned *out)
{
	char *end;
	unsigned long v;

	if (!s || !*s || *s == '-' || *s == '+')
		return false;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return false;
	*out = (unsigned)v;
	return true;
}

static int probe_args(int argc, char **argv, struct ld_opts *o)
{
	enum {
		O_INTERVAL = 256,
		O_DURATION,
		O_GAP,
		O_JSON
	};
	static const struct option longopts[] = {
		{ "interval-us", required_argument, NULL, O_INTERVAL },
		{ "duration-s", required_argument, NULL, O_DURATION },
		{ "gap-us", required_argument, NULL, O_GAP },
		{ "json", no_argument, NULL, O_JSON },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	o->interval_us = 1000;
	o->duration_s = 10;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":i:p:qh", longopts, NULL)) != -1) {
		switch (c) {
		case 'i': {
			struct in6_addr a;

			if (inet_pton(AF_INET, optarg, &a) != 1 &&
			    inet_pton(AF_INET6, optarg, &a) != 1)
				return pr_bad("-i", "not an IPv4 or IPv6 address", optarg);
			o->local_ip = optarg;
			break;
		}
		case 'p':
			if (!pr_uns(optarg, 1, 65535, &o->local_port))
				return pr_bad("-p", "not a port in 1..65535", optarg);
			break;
		case O_INTERVAL:
			if (!pr_uns(optarg, 100, 10000000, &o->interval_us))
				return pr_bad("--interval-us", "not a time in 100..10000000 us",
					      optarg);
			break;
		case O_DURATION:
			if (!pr_uns(optarg, 1, 86400, &o->duration_s))
				return pr_bad("--duration-s", "not a time in 1..86400 s", optarg);
			break;
		case O_GAP:
			if (!pr_uns(optarg, 1, 3600000000u, &o->gap_us))
				return pr_bad("--gap-us", "not a time in 1..3600000000 us", optarg);
			break;
		case O_JSON:
			o->json = true;
			break;
		case 'q':
			o->quiet = true;
			break;
		case 'h':
			probe_usage(stdout);
			exit(0);
		case ':':
			return pr_bad(optopt ? (char[]){ '-', (char)optopt, 0 } : argv[optind - 1],
				      "needs a value", NULL);
		default:
			return pr_bad(optopt ? (char[]){ '-', (char)optopt, 0 } : argv[optind - 1],
				      "unknown option", NULL);
		}
	}
	if (optind >= argc)
		return pr_bad("TARGET", "probe needs TARGET_IP[:PORT]", NULL);
	if (ld_parse_target(argv[optind], &o->target, &o->target_len))
		return pr_bad("TARGET", "not IPv4[:PORT] or [IPv6][:PORT]", argv[optind]);
	ld_format_host(&o->target, o->target_host, sizeof(o->target_host));
	if (optind + 1 < argc)
		return pr_bad(argv[optind + 1], "unexpected argument", NULL);
	if (!o->gap_us)
		o->gap_us = 10 * o->interval_us;
	return 0;
}

static void probe_send(struct load *ld, struct ld_probe *pr)
{
	struct ld_ep *ep = ld->uac_ep;
	char *buf = ld_ep_next(ld, ep);
	struct wb w = { buf, buf + LD_MSG_MAX, false };
	uint64_t n = ++pr->sent;

	wb_str(&w, &pr->head); /* ... branch=z9hG4bK */
	wb_hex(&w, n);
	wb_str(&w, &pr->mid); /* ... CSeq: */
	wb_u64(&w, n);
	wb_str(&w, &pr->tail); /* OPTIONS ... */
	pr->sent_at[n % PR_RING] = ld->now_us;
	ld_ep_commit(ep, (size_t)(w.p - buf), (const void *)&ld->o.target, ld->o.target_len, 0);
}

void probe_rx(struct load *ld, const char *buf, size_t len)
{
	struct ld_probe *pr = ld->probe;
	struct sl_msg m;
	const char *cid;
	size_t rl = strlen(ld->run);
	uint64_t now = ld->now_us;

	if (sl_scan(buf, len, &m) || !m.status) {
		ld->st.junk++;
		return;
	}
	cid = buf + m.callid.off;
	if (m.cseq_method != SL_OPTIONS || m.callid.len < rl + 6 || memcmp(cid, "probe-", 6) ||
	    memcmp(cid + 6, ld->run, rl) || m.cseq == 0 || m.cseq > pr->sent) {
		ld->st.stray++;
		return;
	}
	if (m.status < 200)
		return;
	if (pr->sent - m.cseq < PR_RING)
		hist_add(&pr->rtt, now > pr->sent_at[m.cseq % PR_RING]
					   ? now - pr->sent_at[m.cseq % PR_RING]
					   : 0);
	pr->answered++;
	if (!pr->first_answer_us) {
		pr->first_answer_us = pr->last_answer_us = now;
		if (!ld->o.quiet)
			fprintf(stderr, "first answer at +%.6f s\n",
				(double)(now - ld->t0_us) / 1e6);
		return;
	}
	if (now < pr->last_answer_us) {
		pr->late++; /* read in a batch out of order: no gap to see */
		return;
	}
	if (now - pr->last_answer_us > ld->o.gap_us) {
		uint64_t gap = now - pr->last_answer_us;

		pr->gaps++;
		if (gap > pr->longest_gap_us)
			pr->longest_gap_us = gap;
		if (!ld->o.quiet)
			fprintf(stderr, "gap %" PRIu64 " us: no answer from +%.6f s to +%.6f s\n",
				gap, (double)(pr->last_answer_us - ld->t0_us) / 1e6,
				(double)(now - ld->t0_us) / 1e6);
	}
	pr->last_answer_us = now;
}

int probe_main(int argc, char **argv)
{
	struct load *ld = calloc(1, sizeof(*ld));
	struct ld_probe *pr = calloc(1, sizeof(*pr));
	struct sigaction sa = { 0 };
	sigset_t block, orig;
	struct pollfd pf;
	uint64_t total, end_us, last_send_us = 0, r;
	int err, rc = 1;
	const char *l;

	if (!ld || !pr) {
		fprintf(stderr, "sipha-load probe: out of memory\n");
		free(ld);
		free(pr);
		return 1;
	}
	err = probe_args(argc, argv, &ld->o);
	if (err) {
		rc = err;
		goto out;
	}
	ld->probe = pr;
	hist_reset(&pr->rtt);
	r = ((uint64_t)getpid() << 32) ^ ld_mono_us() ^ (uint64_t)time(NULL) * 2654435761u;
	snprintf(ld->run, sizeof(ld->run), "%08" PRIx32, (uint32_t)(r ^ (r >> 32)));
	err = ld_ep_open(&ld->uac_ep, ld->o.local_ip, ld->o.local_port, &ld->o.target);
	if (err) {
		fprintf(stderr, "sipha-load probe: local address %s port %u: %s\n",
			ld->o.local_ip ? ld->o.local_ip : "(routed)", ld->o.local_port,
			strerror(-err));
		goto out;
	}
	l = ld->uac_ep->host;
	err = str_printf(&pr->head,
			 "OPTIONS sip:%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK-probe-%s-",
			 ld->o.target_host, l, ld->run);
	if (!err)
		err = str_printf(
			&pr->mid,
			";rport\r\nMax-Forwards: 70\r\nFrom: <sip:sipha-load@%s>;tag=%s\r\n"
			"To: <sip:%s>\r\nCSeq: ",
			l, ld->run, ld->o.target_host);
	if (!err)
		err = str_printf(&pr->tail,
				 " OPTIONS\r\nCall-ID: probe-%s@sipha-load\r\n"
				 "Contact: <sip:sipha-load@%s>\r\nAccept: application/sdp\r\n"
				 "Content-Length: 0\r\n\r\n",
				 ld->run, l);
	if (err) {
		fprintf(stderr, "sipha-load probe: out of memory\n");
		goto out;
	}
	sa.sa_handler = pr_on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigprocmask(SIG_BLOCK, &block, &orig);
	pf.fd = ld->uac_ep->fd;
	pf.events = POLLIN;
	ld->now_us = ld->t0_us = ld_mono_us();
	total = (uint64_t)ld->o.duration_s * 1000000u / ld->o.interval_us;
	end_us = ld->t0_us + (uint64_t)ld->o.duration_s * 1000000u + 300000;
	for (;;) {
		int64_t wait_us;
		struct timespec ts;
		uint64_t due;

		ld->now_us = ld_mono_us();
		if (pr_signalled && total > pr->sent) { /* stop sending, drain */
			total = pr->sent;
			end_us = ld->now_us + 300000;
		}
		if (pr->sent < total) {
			/* every OPTIONS due is sent, late ones at once: a run sends
			 * exactly duration / interval of them */
			due = (ld->now_us - ld->t0_us) / ld->o.interval_us + 1;
			if (due > total)
				due = total;
			while (pr->sent < due) {
				probe_send(ld, pr);
				last_send_us = ld->now_us;
			}
			ld_ep_flush(ld, ld->uac_ep);
		}
		if (pr->sent >= total && ld->now_us >= end_us)
			break;
		if (pr->sent < total)
			wait_us = (int64_t)(ld->t0_us + pr->sent * ld->o.interval_us) -
				  (int64_t)ld->now_us;
		else
			wait_us = (int64_t)(end_us - ld->now_us);
		if (wait_us < 0)
			wait_us = 0;
		ts.tv_sec = wait_us / 1000000;
		ts.tv_nsec = (wait_us % 1000000) * 1000;
		if (ppoll(&pf, 1, &ts, &orig) > 0)
			ld_ep_drain(ld, ld->uac_ep);
	}
	sigprocmask(SIG_SETMASK, &orig, NULL);
	/* A silence still running when the sending stopped is a gap too: the
	 * target had not come back. */
	{
		uint64_t since = pr->first_answer_us ? pr->last_answer_us : ld->t0_us;

		if (last_send_us > since && last_send_us - since > ld->o.gap_us) {
			pr->open_gap = true;
			pr->gaps++;
			if (last_send_us - since > pr->longest_gap_us)
				pr->longest_gap_us = last_send_us - since;
			if (!ld->o.quiet)
				fprintf(stderr,
					"gap %" PRIu64
					" us: no answer since +%.6f s (still open)\n",
					last_send_us - since, (double)(since - ld->t0_us) / 1e6);
		}
	}
	fprintf(ld->o.json ? stderr : stdout,
		"probe %s: %" PRIu64 " OPTIONS sent, %" PRIu64 " answered, %" PRIu64
		" gaps over %u us, longest gap %" PRIu64 " us%s; answer time us p50 %" PRIu64
		" p99 %" PRIu64 " max %" PRIu64 "\n",
		ld->o.target_host, pr->sent, pr->answered, pr->gaps, ld->o.gap_us,
		pr->longest_gap_us, pr->open_gap ? " (still open at the end)" : "",
		hist_percentile(&pr->rtt, 50), hist_percentile(&pr->rtt, 99), pr->rtt.max);
	if (ld->o.json)
		printf("{\"target\":\"%s\",\"sent\":%" PRIu64 ",\"answered\":%" PRIu64
		       ",\"gaps\":%" PRIu64 ",\"gap_us\":%u,\"longest_gap_us\":%" PRIu64
		       ",\"open_gap\":%s,\"interval_us\":%u,\"rtt_us\":{\"p50\":%" PRIu64
		       ",\"p99\":%" PRIu64 ",\"p999\":%" PRIu64 ",\"max\":%" PRIu64 "}}\n",
		       ld->o.target_host, pr->sent, pr->answered, pr->gaps, ld->o.gap_us,
		       pr->longest_gap_us, pr->open_gap ? "true" : "false", ld->o.interval_us,
		       hist_percentile(&pr->rtt, 50), hist_percentile(&pr->rtt, 99),
		       hist_percentile(&pr->rtt, 99.9), pr->rtt.max);
	rc = pr->answered ? 0 : 1;
out:
	if (pr) {
		free(pr->head.s);
		free(pr->mid.s);
		free(pr->tail.s);
	}
	ld_ep_close(ld->uac_ep);
	free(pr);
	free(ld);
	return rc;
}
