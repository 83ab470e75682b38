/* A whole SIP engine for a fuzz target (fuzz_srv, fuzz_journal): the
 * configuration, a fake timer wheel and the server core, fresh for every
 * input so that a finding replays from its input alone. */
#ifndef SIPHA_FUZZ_ENGINE_H
#define SIPHA_FUZZ_ENGINE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/timer.h"
#include "server/server.h"

struct fuzz_engine {
	struct sipha_config cfg;
	struct timer_wheel tw;
	struct server srv;
};

/* Every kind of DN, and the smallest transaction table allowed. */
static const char fuzz_engine_conf[] = "[node]\n"
				       "id = fz\n"
				       "[sip]\n"
				       "listen = 127.0.0.1:5060\n"
				       "domain = sipha.test\n"
				       "max_transactions = 1024\n"
				       "[control]\n"
				       "socket = /tmp/sipha-fuzz.sock\n"
				       "[dn]\n"
				       "1001 = extension\n"
				       "1002 = extension\n"
				       "2000 = routing-point\n"
				       "3000 = sip:10.0.0.50:5080\n";

static inline void fuzz_engine_start(struct fuzz_engine *e, srv_send_fn send)
{
	char err[256];

	memset(e, 0, sizeof(*e));
	if (cfg_load_string(fuzz_engine_conf, "fuzz.conf", &e->cfg, err, sizeof(err))) {
		fprintf(stderr, "fuzz engine: %s\n", err);
		abort();
	}
	timer_wheel_init(&e->tw, 1000);
	if (srv_core_init(&e->srv, &e->cfg, &e->tw, send, NULL)) {
		fprintf(stderr, "fuzz engine: srv_core_init failed\n");
		abort();
	}
}

/* A minute and more on, so every transaction, call and registration timer
 * runs out (their expiry paths are fuzzed too), then everything is freed:
 * LeakSanitizer sees what an input leaked. */
static inline void fuzz_engine_stop(struct fuzz_engine *e)
{
	for (int i = 0; i < 70; i++)
		timer_run(&e->tw, e->tw.now + 1000);
	srv_core_fini(&e->srv);
	cfg_free(&e->cfg);
}

#endif
