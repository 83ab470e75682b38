/* Fuzz target: what a standby does with the HA link's byte stream — the
 * frame decoder (jr_decode, sticky on error as on the link), the typed
 * decoders of every frame type, snapshots (mark and sweep) and each RECORD
 * applied to a fresh standby engine through rep_apply(), as ha/role.c
 * does (calls, registrations, subscriptions, CTI events and agents).  At
 * the end the standby takes over (calls being set up get their
 * transactions back), its timers run out and it is freed, so a record that
 * leaves state inconsistent shows up in those paths. */
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "fuzz_engine.h"
#include "ha/journal.h"
#include "ha/replica.h"
#include "server/call.h"
#include "server/subscribe.h"
#include "cc/cc.h"

static int fjr_send(void *arg, const struct sip_peer *to, const char *buf, size_t len)
{
	(void)arg;
	(void)to;
	(void)buf;
	FUZZ_ASSERT(len > 0 && len <= SIPMSG_MAX);
	return 0;
}

static void fjr_frame(struct server *srv, const struct jr_frame *fr)
{
	struct jr_hello h;
	struct jr_goodbye g;
	struct jr_record r;
	struct jr_reg_binding rb;
	uint64_t objects;

	switch (fr->type) {
	case JR_T_HELLO:
		(void)jr_hello_decode(fr, &h);
		break;
	case JR_T_SNAPSHOT_BEGIN:
		(void)jr_snapshot_decode(fr, &objects);
		rep_clear_registrations(srv);
		calls_mark_all(srv->calls);
		cc_snap_begin(srv->cc);
		subs_clear(srv->subs);
		break;
	case JR_T_SNAPSHOT_END:
		(void)jr_snapshot_decode(fr, &objects);
		cc_snap_end(srv->cc);
		(void)calls_sweep(srv->calls, NULL, NULL);
		break;
	case JR_T_GOODBYE:
		(void)jr_goodbye_decode(fr, &g);
		break;
	case JR_T_RECORD:
		if (jr_record_decode(fr, &r))
			break;
		(void)jr_reg_decode(&r, &rb);
		(void)rep_apply(srv, &r);
		break;
	default:
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct fuzz_engine e;
	static struct jr_frame fr;
	struct jr_decoder d;
	size_t off = 0, used;

	fuzz_init();
	if (size > 4 * SIPMSG_MAX)
		return 0;
	fuzz_engine_start(&e, fjr_send);
	srv_ha_state(&e.srv, false);
	jr_decoder_init(&d, 0);
	while (off < size) {
		if (jr_decode(&d, data + off, size - off, &used, &fr))
			break; /* -EAGAIN: the rest is a frame's beginning; -EBADMSG */
		FUZZ_ASSERT(used >= JR_HDR_LEN && used <= size - off);
		fjr_frame(&e.srv, &fr);
		off += used;
		timer_run(&e.tw, e.tw.now + 100);
	}
	srv_ha_state(&e.srv, true);
	(void)calls_take_over(e.srv.calls);
	fuzz_engine_stop(&e);
	return 0;
}
