/* siphad — the sipha daemon.  Runs in the foreground, logs to stderr, exits
 * 0 on SIGTERM/SIGINT after unwinding everything it set up; a bad config
 * exits 2 with one line naming the file, line and key. */
#include <errno.h>
#include <getopt.h>
#include <sys/resource.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "core/caps.h"
#include "core/config.h"
#include "core/log.h"
#include "core/loop.h"
#include "server/metrics_http.h"
#include "server/server.h"

#define SIPHA_VERSION "0.1.0"

static void usage(FILE *f)
{
	fprintf(f, "usage: siphad -c FILE [-d] [-t]\n"
		   "  -c, --config FILE  configuration file (INI; see docs/CONFIG.md)\n"
		   "  -t, --check        check the configuration and exit (0 good, 2 bad)\n"
		   "  -d, --debug        debug logging (overrides [node] log_level)\n"
		   "  -V, --version      print the version\n"
		   "  -h, --help         this help\n"
		   "Runs in the foreground and logs to stderr; SIGTERM or SIGINT stops it\n"
		   "(an active node with a standby in sync hands over first).\n");
}

/* Every TCP connection, CTI client and socket is a file: the soft limit
 * (1,024 on a stock system) would cap the node long before its own limits
 * do, so it goes up to the hard one. */
static void raise_nofile(void)
{
	struct rlimit rl;

	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* systemd's watchdog (WatchdogSec= of siphad@.service): pinged from the
 * loop, so a loop that stops turning stops the pings and systemd restarts
 * the daemon.  Off when systemd asks for none (WATCHDOG_USEC unset). */
struct watchdog {
	struct loop *l;
	struct timer t;
	uint64_t every_ms;
};

static void watchdog_ping(struct timer *t)
{
	struct watchdog *w = container_of(t, struct watchdog, t);

	sd_notify(0, "WATCHDOG=1");
	loop_timer_in(w->l, &w->t, w->every_ms);
}

/* Pings at half the interval systemd gave, as sd_watchdog_enabled(3) says. */
static void watchdog_start(struct watchdog *w, struct loop *l)
{
	uint64_t usec = 0;

	timer_init(&w->t, watchdog_ping);
	w->l = l;
	if (sd_watchdog_enabled(0, &usec) <= 0 || !usec)
		return;
	w->every_ms = usec / 2000 ? usec / 2000 : 1;
	pr_info("watchdog: telling systemd every %llu ms", (unsigned long long)w->every_ms);
	watchdog_ping(&w->t);
}

struct sig_ctx {
	struct loop *l;
	struct server *srv; /* NULL until it is up */
	int fd;
	bool stopping;
};

static void stop_loop(void *arg)
{
	loop_stop(arg);
}

/* The first SIGTERM/SIGINT leaves gracefully (an active node hands over to
 * its peer first); a second one stops at once. */
static void on_signal(void *arg, int fd, unsigned revents)
{
	struct sig_ctx *sc = arg;
	struct signalfd_siginfo si;

	(void)revents;
	while (read(fd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo != SIGTERM && si.ssi_signo != SIGINT)
			continue;
		if (sc->stopping || !sc->srv) {
			pr_info("signal %u: stopping now", si.ssi_signo);
			loop_stop(sc->l);
			continue;
		}
		pr_info("signal %u: shutting down", si.ssi_signo);
		sd_notify(0, "STOPPING=1");
		sc->stopping = true;
		srv_shutdown(sc->srv, stop_loop, sc->l);
	}
}

int main(int argc, char **argv)
{
	struct sipha_config cfg = { 0 };
	struct caps_keep keep;
	struct sig_ctx sc = { .fd = -1 };
	struct server srv;
	struct metrics_http *mh = NULL;
	struct watchdog wd = { 0 };
	const char *path = NULL;
	bool check_only = false, debug = false, srv_up = false;
	struct loop *l = NULL;
	enum log_level lvl;
	char err[512];
	sigset_t ss;
	int opt, ret, rc = 1;

	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' }, { "check", no_argument, NULL, 't' },
		{ "debug", no_argument, NULL, 'd' },	    { "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },	    { NULL, 0, NULL, 0 },
	};

	while ((opt = getopt_long(argc, argv, "c:tdVh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			path = optarg;
			break;
		case 't':
			check_only = true;
			break;
		case 'd':
			debug = true;
			break;
		case 'V':
			printf("siphad %s\n", SIPHA_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!path || optind != argc) {
		usage(stderr);
		return 2;
	}
	raise_nofile();
	ret = cfg_load(path, &cfg, err, sizeof(err));
	if (ret) {
		fprintf(stderr, "%s\n", err);
		cfg_free(&cfg);
		return 2;
	}
	if (check_only) {
		printf("%s: ok\n", path);
		cfg_free(&cfg);
		return 0;
	}
	log_set_ident(cfg.node.id);
	if (!log_level_parse(cfg.node.log_level ? cfg.node.log_level : "info", &lvl))
		log_set_level(lvl);
	if (debug)
		log_set_level(LOG_DEBUG);

	/* Signals arrive through a signalfd read by the loop, never as
	 * asynchronous handlers. */
	sigemptyset(&ss);
	sigaddset(&ss, SIGTERM);
	sigaddset(&ss, SIGINT);
	sigprocmask(SIG_BLOCK, &ss, NULL);
	signal(SIGPIPE, SIG_IGN);

	ret = loop_new(&l);
	if (ret)
		goto out;
	sc.l = l;
	sc.fd = signalfd(-1, &ss, SFD_NONBLOCK | SFD_CLOEXEC);
	if (sc.fd < 0) {
		ret = -errno;
		pr_err("signalfd: %s", strerror(errno));
		goto out;
	}
	ret = loop_poll_add(l, sc.fd, on_signal, &sc);
	if (ret)
		goto out;
	ret = srv_init(&srv, &cfg, l);
	if (ret)
		goto out;
	srv_up = true;
	sc.srv = &srv;
	if (cfg.metrics.present) {
		ret = mh_open(&mh, l, &cfg.metrics.listen, &srv);
		if (ret)
			goto out;
	}
	/* Everything that needed root is open, bound or attached by now. */
	caps_for_config(&cfg, &keep);
	ret = caps_drop(&keep);
	if (ret)
		goto out;
	pr_info("siphad %s node %s ready (sip %s%s%s:%u)", SIPHA_VERSION, cfg.node.id,
		strchr(srv.adv_host, ':') ? "[" : "", srv.adv_host,
		strchr(srv.adv_host, ':') ? "]" : "", srv.adv_port);
	sd_notify(0, "READY=1");
	watchdog_start(&wd, l);
	ret = loop_run(l);
	if (!ret)
		rc = 0;
out:
	if (ret)
		pr_err("siphad: %s", strerror(-ret));
	if (l)
		timer_del(loop_timers(l), &wd.t);
	mh_close(mh);
	if (srv_up)
		srv_fini(&srv);
	loop_free(l);
	if (sc.fd >= 0)
		close(sc.fd);
	cfg_free(&cfg);
	return rc;
}
