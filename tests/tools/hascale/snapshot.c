/* hascale — the snapshot as the feed and the standby handle it: a pass
 * over the active's calls encoded as records (ha/feed.c), a slice's frames
 * handed on as hal_send_frame() takes them, and the standby's apply of the
 * frames (role.c's standby_frame). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ha/replica.h"

#include "hascale.h"

static void snap_call(void *arg, const struct call *c)
{
	struct hs_snap *s = arg;
	int ret;

	if (s->err || c->state != s->want)
		return;
	ret = rep_call_encode(s->jb, ++s->seq, c, JR_OP_UPSERT);
	if (ret) {
		s->err = ret;
		return;
	}
	s->records++;
	if (s->limit && s->jb->len > s->limit) {
		s->bytes += s->jb->len;
		jr_buf_reset(s->jb);
	}
}

static int snap_pass(const struct hs_node *act, struct hs_snap *s)
{
	calls_foreach(act->srv.calls, snap_call, s);
	s->bytes += s->jb->len;
	if (s->err)
		fprintf(stderr, "hascale: rep_call_encode: %s\n", strerror(-s->err));
	return s->err;
}

/* What hal_send_frame() does with the bytes before queueing them: decode
 * every frame.  Returns the number of frames, or -errno. */
static long walk_frames(const struct jr_buf *jb)
{
	struct jr_decoder d;
	struct jr_frame f;
	size_t off = 0, used;
	long frames = 0;

	jr_decoder_init(&d, 0);
	while (off < jb->len) {
		if (jr_decode(&d, jb->data + off, jb->len - off, &used, &f))
			return -EBADMSG;
		off += used;
		frames++;
	}
	return frames;
}

/* JB's frames handed on as feed.c's flush does through hal_send_frame():
 * every frame decoded, the bytes copied; JB is empty again.  Adds to
 * *FRAMES and *BYTES. */
int hs_hand_on(struct jr_buf *jb, struct hs_queue *q, long *frames, size_t *bytes)
{
	long n = walk_frames(jb);

	if (n < 0) {
		fprintf(stderr, "hascale: a slice's frames do not decode\n");
		return -EBADMSG;
	}
	if (jb->len > q->cap) {
		void *p = realloc(q->data, jb->len);

		if (!p)
			return -ENOMEM;
		q->data = p;
		q->cap = jb->len;
	}
	memcpy(q->data, jb->data, jb->len);
	*frames += n;
	*bytes += jb->len;
	jr_buf_reset(jb);
	return 0;
}

/* The standby's side of JB, as role.c's standby_frame: SNAPSHOT_BEGIN
 * marks, each RECORD is applied, SNAPSHOT_END sweeps (nothing, here). */
int hs_apply_frames(struct hs_node *sby, const struct jr_buf *jb)
{
	struct jr_decoder d;
	struct jr_frame f;
	struct jr_record r;
	size_t off = 0, used, swept;
	int ret;

	jr_decoder_init(&d, 0);
	while (off < jb->len) {
		ret = jr_decode(&d, jb->data + off, jb->len - off, &used, &f);
		if (ret) {
			fprintf(stderr, "hascale: jr_decode: %s\n", d.err ? d.err : "?");
			return ret;
		}
		off += used;
		switch (f.type) {
		case JR_T_SNAPSHOT_BEGIN:
			rep_clear_registrations(&sby->srv);
			calls_mark_all(sby->srv.calls);
			break;
		case JR_T_SNAPSHOT_END:
			swept = calls_sweep(sby->srv.calls, NULL, NULL);
			if (swept) {
				fprintf(stderr, "hascale: the snapshot swept %zu calls\n", swept);
				return -EPROTO;
			}
			break;
		case JR_T_RECORD:
			ret = jr_record_decode(&f, &r);
			if (!ret)
				ret = rep_apply(&sby->srv, &r);
			if (ret) {
				fprintf(stderr, "hascale: record %" PRIu64 " refused: %s\n", f.seq,
					strerror(-ret));
				return ret;
			}
			break;
		default:
			fprintf(stderr, "hascale: unexpected frame %s\n", jr_type_name(f.type));
			return -EPROTO;
		}
	}
	return 0;
}

int hs_snap_checked(const struct hs_node *act, struct hs_snap *s, size_t want)
{
	int ret = snap_pass(act, s);

	if (!ret && s->records != want) {
		fprintf(stderr, "hascale: the snapshot has %zu records, expected %zu\n", s->records,
			want);
		ret = -EPROTO;
	}
	return ret;
}
