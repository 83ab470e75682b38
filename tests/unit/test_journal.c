/* HA journal codec: round trips of every frame type and of registration
 * records, the exact wire layout, the decoder on every truncation, hostile
 * TLVs, random buffers and mutated frames (fixed seed, so a failure
 * reproduces), and streaming in random chunk sizes.  Buffers handed to the
 * decoder are heap blocks of the exact size, so ASan sees any read past
 * them. */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ha/journal.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	/* xorshift64*: deterministic, so a failure reproduces. */
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * UINT64_C(2685821657736338717);
}

static size_t rnd_below(size_t n)
{
	return n ? (size_t)(rnd() % n) : 0;
}

static uint8_t *dup_exact(const void *p, size_t n)
{
	/* malloc(0) may return NULL; one byte keeps the pointer valid while
	 * the decoder is still only allowed to read N of it. */
	uint8_t *b = malloc(n ? n : 1);

	assert_non_null(b);
	if (n)
		memcpy(b, p, n);
	return b;
}

/* --- hand-built frames ---------------------------------------------------- */

struct pb {
	uint8_t b[8192];
	size_t n;
};

static void pb_tlv(struct pb *p, uint16_t type, uint32_t len, const void *v, size_t vlen)
{
	assert_true(p->n + 6 + vlen <= sizeof(p->b));
	p->b[p->n++] = (uint8_t)(type >> 8);
	p->b[p->n++] = (uint8_t)type;
	p->b[p->n++] = (uint8_t)(len >> 24);
	p->b[p->n++] = (uint8_t)(len >> 16);
	p->b[p->n++] = (uint8_t)(len >> 8);
	p->b[p->n++] = (uint8_t)len;
	if (vlen)
		memcpy(p->b + p->n, v, vlen);
	p->n += vlen;
}

static void pb_attr(struct pb *p, uint16_t type, const void *v, size_t n)
{
	pb_tlv(p, type, (uint32_t)n, v, n);
}

static void pb_u8(struct pb *p, uint16_t type, uint8_t v)
{
	pb_attr(p, type, &v, 1);
}

static void pb_u16(struct pb *p, uint16_t type, uint16_t v)
{
	uint8_t x[2] = { (uint8_t)(v >> 8), (uint8_t)v };

	pb_attr(p, type, x, 2);
}

static void pb_u64(struct pb *p, uint16_t type, uint64_t v)
{
	uint8_t x[8];

	for (int i = 0; i < 8; i++)
		x[i] = (uint8_t)(v >> (56 - 8 * i));
	pb_attr(p, type, x, 8);
}

/* Every HELLO attribute except SKIP (0: none). */
static void pb_hello(struct pb *p, uint16_t skip)
{
	static const uint8_t mac[6] = { 2, 0, 0, 0, 0, 1 };

	if (skip != JR_HELLO_PROTO_MAJOR)
		pb_u8(p, JR_HELLO_PROTO_MAJOR, JR_VERSION);
	if (skip != JR_HELLO_PROTO_MINOR)
		pb_u8(p, JR_HELLO_PROTO_MINOR, 0);
	if (skip != JR_HELLO_NODE_ID)
		pb_attr(p, JR_HELLO_NODE_ID, "a", 1);
	if (skip != JR_HELLO_EPOCH)
		pb_u64(p, JR_HELLO_EPOCH, 7);
	if (skip != JR_HELLO_INSTANCE)
		pb_u64(p, JR_HELLO_INSTANCE, 99);
	if (skip != JR_HELLO_PRIORITY)
		pb_u16(p, JR_HELLO_PRIORITY, 100);
	if (skip != JR_HELLO_REDUNDANCY)
		pb_u8(p, JR_HELLO_REDUNDANCY, JR_RED_HOT);
	if (skip != JR_HELLO_ROLE)
		pb_u8(p, JR_HELLO_ROLE, JR_ROLE_PRIMARY);
	if (skip != JR_HELLO_STATE)
		pb_u8(p, JR_HELLO_STATE, JR_STATE_ACTIVE);
	if (skip != JR_HELLO_LAST_SEQ)
		pb_u64(p, JR_HELLO_LAST_SEQ, 5);
	if (skip != JR_HELLO_MAC)
		pb_attr(p, JR_HELLO_MAC, mac, 6);
}

/* A frame around payload P: header fields as given. */
static size_t mkframe(uint8_t *out, uint16_t magic, uint8_t version, uint8_t type, uint64_t seq,
		      const struct pb *p)
{
	uint32_t len = (uint32_t)p->n;

	out[0] = (uint8_t)(magic >> 8);
	out[1] = (uint8_t)magic;
	out[2] = version;
	out[3] = type;
	out[4] = (uint8_t)(len >> 24);
	out[5] = (uint8_t)(len >> 16);
	out[6] = (uint8_t)(len >> 8);
	out[7] = (uint8_t)len;
	for (int i = 0; i < 8; i++)
		out[8 + i] = (uint8_t)(seq >> (56 - 8 * i));
	memcpy(out + JR_HDR_LEN, p->b, p->n);
	return JR_HDR_LEN + p->n;
}

/* Decodes one frame of TYPE around payload P from an exact-size copy. */
static int decode_payload(uint8_t type, const struct pb *p, struct jr_frame *f, const char **err)
{
	static uint8_t raw[sizeof(((struct pb *)0)->b) + JR_HDR_LEN];
	struct jr_decoder d;
	size_t n = mkframe(raw, JR_MAGIC, JR_VERSION, type, 1, p), used = 0;
	uint8_t *b = dup_exact(raw, n);
	struct jr_frame tmp;
	int ret;

	jr_decoder_init(&d, 0);
	ret = jr_decode(&d, b, n, &used, f ? f : &tmp);
	if (!ret)
		assert_int_equal(used, n);
	else
		assert_int_equal(used, 0);
	if (err)
		*err = d.err;
	free(b);
	return ret;
}

/* --- a corpus of valid frames ---------------------------------------------- */

static void fill_binding(struct jr_reg_binding *rb, int variant)
{
	memset(rb, 0, sizeof(*rb));
	snprintf(rb->user, sizeof(rb->user), "100%d", variant);
	snprintf(rb->contact, sizeof(rb->contact), "sip:100%d@10.0.0.%d:5060;transport=tcp",
		 variant, variant + 1);
	snprintf(rb->call_id, sizeof(rb->call_id), "cid-%d@host", variant);
	rb->expires_ms = 3600000u - (uint64_t)variant;
	rb->cseq = 42u + (uint32_t)variant;
	rb->q = (uint16_t)(variant * 100 % 1001);
	/* The protocol travels with the source address, so only with one. */
	if (variant % 3 != 2)
		rb->src_proto = variant & 1 ? JR_PROTO_TCP : JR_PROTO_UDP;
	if (variant % 3 == 0) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&rb->src;

		sin->sin_family = AF_INET;
		sin->sin_port = htons(5060 + variant);
		sin->sin_addr.s_addr = htonl(0x0a000001 + (uint32_t)variant);
	} else if (variant % 3 == 1) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&rb->src;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(5070);
		inet_pton(AF_INET6, "2001:db8::1", &sin6->sin6_addr);
		sin6->sin6_addr.s6_addr[15] = (uint8_t)variant;
	}
}

static void fill_hello(struct jr_hello *h)
{
	static const uint8_t mac[6] = { 0x02, 0x11, 0x22, 0x33, 0x44, 0x55 };

	memset(h, 0, sizeof(*h));
	h->proto_major = JR_VERSION;
	h->proto_minor = JR_VERSION_MINOR;
	snprintf(h->node_id, sizeof(h->node_id), "node-a");
	h->epoch = 0x0102030405060708ull;
	h->instance = 0xfeedfacecafebeefull;
	h->priority = 65535;
	h->redundancy = JR_RED_WARM;
	h->role = JR_ROLE_BACKUP;
	h->state = JR_STATE_ISOLATED;
	h->last_seq = 123456789;
	memcpy(h->mac, mac, 6);
}

/* Appends one valid frame of every kind to B; returns how many. */
static unsigned build_corpus(struct jr_buf *b)
{
	struct jr_hello h;
	struct jr_reg_binding rb;
	unsigned n = 0;

	fill_hello(&h);
	assert_int_equal(jr_hello_encode(b, &h), 0), n++;
	assert_int_equal(jr_simple_encode(b, JR_T_HEARTBEAT, 17), 0), n++;
	assert_int_equal(jr_simple_encode(b, JR_T_ACK, 18), 0), n++;
	assert_int_equal(jr_simple_encode(b, JR_T_SELECT, 0), 0), n++;
	assert_int_equal(jr_snapshot_encode(b, JR_T_SNAPSHOT_BEGIN, 19, 3), 0), n++;
	assert_int_equal(jr_snapshot_encode(b, JR_T_SNAPSHOT_END, 19, UINT64_MAX), 0), n++;
	assert_int_equal(jr_goodbye_encode(b, JR_BYE_DEMOTING, "demoting"), 0), n++;
	for (int v = 0; v < 3; v++) {
		fill_binding(&rb, v);
		assert_int_equal(jr_reg_encode(b, 20 + (uint64_t)v, JR_OP_UPSERT, &rb), 0), n++;
	}
	assert_int_equal(jr_reg_encode(b, 30, JR_OP_DELETE, &rb), 0), n++;
	/* A kind without a field policy, with nested fields. */
	assert_int_equal(jr_record_begin(b, 31, JR_KIND_CALL, JR_OP_UPSERT, "call-1", 6), 0);
	jr_put_str(b, 1, "dialing");
	jr_nest_begin(b, 2);
	jr_put_u32(b, 1, 5);
	jr_nest_begin(b, 9);
	jr_put_flag(b, 3);
	jr_nest_end(b);
	jr_nest_end(b);
	assert_int_equal(jr_record_end(b), 0), n++;
	return n;
}

/* Offsets and sizes of the frames in BUF (all valid). */
static unsigned split_frames(const uint8_t *buf, size_t len, size_t *off, size_t *sz, unsigned max)
{
	struct jr_decoder d;
	struct jr_frame f;
	size_t pos = 0, used;
	unsigned n = 0;

	jr_decoder_init(&d, 0);
	while (pos < len) {
		assert_true(n < max);
		assert_int_equal(jr_decode(&d, buf + pos, len - pos, &used, &f), 0);
		off[n] = pos;
		sz[n++] = used;
		pos += used;
	}
	return n;
}

/* Runs every typed decoder that applies to F; they must not crash on any
 * frame the decoder accepted. */
static void poke_typed(const struct jr_frame *f)
{
	struct jr_hello h;
	struct jr_goodbye g;
	struct jr_record r;
	struct jr_reg_binding rb;
	uint64_t objects;

	switch (f->type) {
	case JR_T_HELLO:
		jr_hello_decode(f, &h);
		break;
	case JR_T_GOODBYE:
		jr_goodbye_decode(f, &g);
		break;
	case JR_T_SNAPSHOT_BEGIN:
	case JR_T_SNAPSHOT_END:
		assert_int_equal(jr_snapshot_decode(f, &objects), 0);
		break;
	case JR_T_RECORD:
		if (!jr_record_decode(f, &r))
			jr_reg_decode(&r, &rb);
		break;
	}
}

/* --- round trips ---------------------------------------------------------- */

static int decode_one(const struct jr_buf *b, struct jr_frame *f)
{
	struct jr_decoder d;
	size_t used;
	int ret;

	jr_decoder_init(&d, 0);
	ret = jr_decode(&d, b->data, b->len, &used, f);
	if (!ret)
		assert_int_equal(used, b->len);
	return ret;
}

static void test_wire_layout(void **state)
{
	static const uint8_t want[] = {
		0x53, 0x48, 0x01, JR_T_ACK, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8,
	};
	static const uint8_t want_bye[] = {
		0x53, 0x48, 0x01, JR_T_GOODBYE,
		0,    0,    0,	  17,
		0,    0,    0,	  0,
		0,    0,    0,	  0,
		0,    1,    0,	  0,
		0,    2,    0,	  5, /* CODE u16 = 5 */
		0,    2,    0,	  0,
		0,    3,    'd',  'u',
		'p',
	};
	struct jr_buf b;

	(void)state;
	jr_buf_init(&b);
	assert_int_equal(jr_simple_encode(&b, JR_T_ACK, 0x0102030405060708ull), 0);
	assert_int_equal(b.len, sizeof(want));
	assert_memory_equal(b.data, want, sizeof(want));
	jr_buf_reset(&b);
	assert_int_equal(jr_goodbye_encode(&b, JR_BYE_DUPLICATE, "dup"), 0);
	assert_int_equal(b.len, sizeof(want_bye));
	assert_memory_equal(b.data, want_bye, sizeof(want_bye));
	jr_buf_free(&b);
}

static void test_roundtrip_hello(void **state)
{
	struct jr_hello h, o;
	struct jr_frame f;
	struct jr_buf b;

	(void)state;
	jr_buf_init(&b);
	fill_hello(&h);
	assert_int_equal(jr_hello_encode(&b, &h), 0);
	assert_int_equal(decode_one(&b, &f), 0);
	assert_int_equal(f.type, JR_T_HELLO);
	assert_true(f.known);
	assert_int_equal(f.seq, h.last_seq);
	assert_int_equal(f.len, b.len - JR_HDR_LEN);
	assert_int_equal(f.unknown_attrs, 0);
	assert_int_equal(jr_hello_decode(&f, &o), 0);
	assert_memory_equal(&h, &o, sizeof(h));

	/* fed_by travels when set, and reads 0 when left out. */
	h.fed_by = 0x1122334455667788ull;
	jr_buf_reset(&b);
	assert_int_equal(jr_hello_encode(&b, &h), 0);
	assert_int_equal(decode_one(&b, &f), 0);
	assert_int_equal(jr_hello_decode(&f, &o), 0);
	assert_true(o.fed_by == h.fed_by);
	h.fed_by = 0;
	jr_buf_reset(&b);
	assert_int_equal(jr_hello_encode(&b, &h), 0);
	assert_int_equal(decode_one(&b, &f), 0);
	assert_int_equal(f.len, b.len - JR_HDR_LEN);
	assert_int_equal(jr_hello_decode(&f, &o), 0);
	assert_true(o.fed_by == 0);
	assert_null(f.tb[JR_HELLO_FED_BY].data);

	/* The connection's nonce (an authenticated link) travels whole; a
	 * nonce of another size is refused by the frame's policy. */
	h.has_nonce = true;
	for (int i = 0; i < JR_NONCE_LEN; i++)
		h.nonce[i] = (uint8_t)(i * 7 + 1);
	jr_buf_reset(&b);
	assert_int_equal(jr_hello_encode(&b, &h), 0);
	assert_int_equal(decode_one(&b, &f), 0);
	assert_int_equal(jr_hello_decode(&f, &o), 0);
	assert_true(o.has_nonce);
	assert_memory_equal(o.nonce, h.nonce, JR_NONCE_LEN);
	b.data[b.len - JR_NONCE_LEN - 4 + 3] = JR_NONCE_LEN - 1; /* its length field */
	b.len--;
	b.data[7]--; /* the payload length */
	assert_int_equal(decode_one(&b, &f), -EBADMSG);
	h.has_nonce = false;

	/* The longest node id fits; one more is refused at encode time. */
	memset(h.node_id, 'x', JR_NODE_ID_MAX);
	h.node_id[JR_NODE_ID_MAX] = 0;
	jr_buf_reset(&b);
	assert_int_equal(jr_hello_encode(&b, &h), 0);
	assert_int_equal(decode_one(&b, &f), 0);
	assert_int_equal(jr_hello_decode(&f, &o), 0);
	assert_string_equal(o.node_id, h.node_id);
	h.node_id[0] = 0;
	assert_int_equal(jr_hello_encode(&b, &h), -EINVAL);

	/* Enum values beyond this version's are refused by the typed decoder. */
	fill_hello(&h);
	h.state = 9;
	jr_buf_reset(&b);
	assert_int_equal(jr_hello_encode(&b, &h), 0);
	assert_int_equal(decode_one(&b, &f), 0);
	assert_int_equal(jr_hello_decode(&f, &o), -EBADMSG);
	jr_buf_free(&b);
}

static void test_roundtrip_simple(void **state)
{
	static const uint8_t types[] = { JR_T_HEARTBEAT, JR_T_ACK, JR_T_SELECT };
	struct jr_frame f;
	struct jr_goodbye g;
	struct jr_buf b;
	uint64_t objects;
	char longr[400];

	(void)state;
	jr_buf_init(&b);
	for (unsigned i = 0; i < sizeof(types); i++) {
		jr_buf_reset(&b);
		assert_int_equal(jr_simple_encode(&b, types[i], 1000 + i), 0);
		assert_int_equal(b.len, JR_HDR_LEN);
		assert_int_equal(decode_one(&b, &f), 0);
		assert_int_equal(f.type, types[i]);
		assert_int_equal(f.seq, 1000 + i);
		assert_int_equal(f.len, 0);
		assert_string_equal(jr_type_name(types[i]), i == 0   ? "HEARTBEAT"
							    : i == 1 ? "ACK"
								     : "SELECT");
	}
	for (uint8_t t = JR_T_SNAPSHOT_BEGIN; t <= JR_T_SNAPSHOT_END; t++) {
		jr_buf_reset(&b);
		assert_int_equal(jr_snapshot_encode(&b, t, 77, 12345), 0);
		assert_int_equal(decode_one(&b, &f), 0);
		assert_int_equal(f.type, t);
		assert_int_equal(f.seq, 77);
		assert_int_equal(jr_snapshot_decode(&f, &objects), 0);
		assert_int_equal(objects, 12345);
		jr_buf_reset(&b);
		assert_int_equal(jr_snapshot_encode(&b, t, 78, UINT64_MAX), 0);
		assert_int_equal(decode_one(&b, &f), 0);
		assert_int_equal(jr_snapshot_decode(&f, &objects), 0);
		assert_true(objects == UINT64_MAX);
	}
	assert_int_equal(jr_snapshot_encode(&b, JR_T_ACK, 1, 1), -EINVAL);

	jr_buf_reset(&b);
	assert_int_equal(jr_goodbye_encode(&b, JR_BYE_DEMOTING, "demoting"), 0);
	assert_int_equal(decode_one(&b, &f), 0);
	assert_int_equal(jr_goodbye_decode(&f, &g), 0);
	assert_int_equal(g.code, JR_BYE_DEMOTING);
	assert_string_equal(g.reason, "demoting");
	jr_buf_reset(&b);
	assert_int_equal(jr_goodbye_encode(&b, JR_BYE_SHUTDOWN, NULL), 0);
	assert_int_equal(decode_one(&b, &f), 0);
	assert_int_equal(jr_goodbye_decode(&f, &g), 0);
	assert_string_equal(g.reason, "");
	/* An over-long reason is cut to JR_REASON_MAX, not refused. */
	memset(longr, 'r', sizeof(longr) - 1);
	longr[sizeof(longr) - 1] = 0;
	jr_buf_reset(&b);
	assert_int_equal(jr_goodbye_encode(&b, JR_BYE_SHUTDOWN, longr), 0);
	assert_int_equal(decode_one(&b, &f), 0);
	assert_int_equal(jr_goodbye_decode(&f, &g), 0);
	assert_int_equal(strlen(g.reason), JR_REASON_MAX);
	/* Typed decoders refuse frames of another type. */
	assert_int_equal(jr_hello_decode(&f, &(struct jr_hello){ 0 }), -EBADMSG);
	assert_int_equal(jr_snapshot_decode(&f, &objects), -EBADMSG);
	jr_buf_free(&b);
}

static void test_roundtrip_record(void **state)
{
	struct jr_buf b, fields;
	struct jr_frame f;
	struct jr_record r, in;
	struct jr_attr a, tb[4];
	size_t off = 0;

	(void)state;
	jr_buf_init(&b);
	jr_buf_init(&fields);
	/* Fields prepared on their own (as the replica layer may) then sent
	 * through jr_record_encode: they travel byte for byte. */
	assert_int_equal(jr_frame_begin(&fields, 99, 0), 0);
	jr_put_str(&fields, 1, "established");
	jr_put_u64(&fields, 2, 0xdeadbeefull);
	jr_nest_begin(&fields, 3);
	jr_put_u16(&fields, 1, 7);
	jr_nest_end(&fields);
	assert_int_equal(jr_frame_end(&fields), 0);
	memset(&in, 0, sizeof(in));
	in.seq = 4242;
	in.kind = JR_KIND_CALL;
	in.op = JR_OP_UPSERT;
	in.key = (const uint8_t *)"\x00\x01key";
	in.key_len = 5;
	in.has_fields = true;
	in.fields = fields.data + JR_HDR_LEN;
	in.fields_len = (uint32_t)(fields.len - JR_HDR_LEN);
	assert_int_equal(jr_record_encode(&b, &in), 0);
	assert_int_equal(decode_one(&b, &f), 0);
	assert_int_equal(jr_record_decode(&f, &r), 0);
	assert_int_equal(r.seq, 4242);
	assert_int_equal(r.kind, JR_KIND_CALL);
	assert_int_equal(r.op, JR_OP_UPSERT);
	assert_int_equal(r.key_len, 5);
	assert_memory_equal(r.key, in.key, 5);
	assert_true(r.has_fields);
	assert_int_equal(r.fields_len, in.fields_len);
	assert_memory_equal(r.fields, in.fields, in.fields_len);
	/* The fields parse back with the generic machinery. */
	assert_int_equal(jr_attr_next(r.fields, r.fields_len, &off, &a), 1);
	assert_int_equal(a.type, 1);
	assert_int_equal(a.len, 11);
	assert_int_equal(jr_attr_next(r.fields, r.fields_len, &off, &a), 1);
	assert_int_equal(jr_attr_u64(&a), 0xdeadbeefull);
	assert_int_equal(jr_attr_next(r.fields, r.fields_len, &off, &a), 1);
	assert_int_equal(jr_parse(a.data, a.len, NULL, 0, NULL, NULL, NULL), 0);
	assert_int_equal(jr_attr_next(r.fields, r.fields_len, &off, &a), 0);
	{
		static const struct jr_policy pol[4] = {
			[1] = { .kind = JR_A_STRING, .min_len = 1 },
			[2] = { .kind = JR_A_U64 },
			[3] = { .kind = JR_A_NESTED },
		};

		assert_int_equal(jr_parse(r.fields, r.fields_len, pol, 3, tb, NULL, NULL), 0);
		assert_int_equal(jr_attr_u64(&tb[2]), 0xdeadbeefull);
		assert_int_equal(tb[3].len, 6 + 2);
	}

	/* A delete with no fields. */
	jr_buf_reset(&b);
	in.op = JR_OP_DELETE;
	in.has_fields = false;
	assert_int_equal(jr_record_encode(&b, &in), 0);
	assert_int_equal(decode_one(&b, &f), 0);
	assert_int_equal(jr_record_decode(&f, &r), 0);
	assert_int_equal(r.op, JR_OP_DELETE);
	assert_false(r.has_fields);

	/* Bad arguments open nothing. */
	in.op = 3;
	assert_int_equal(jr_record_encode(&b, &in), -EINVAL);
	in.op = JR_OP_UPSERT;
	in.kind = 0;
	assert_int_equal(jr_record_encode(&b, &in), -EINVAL);
	in.kind = JR_KIND_AGENT;
	in.key_len = 0;
	assert_int_equal(jr_record_encode(&b, &in), -EINVAL);
	assert_int_equal(jr_record_begin(&b, 1, JR_KIND_AGENT, JR_OP_UPSERT, "k", JR_KEY_MAX + 1),
			 -EINVAL);
	assert_false(b.in_frame);
	jr_buf_free(&b);
	jr_buf_free(&fields);
}

static void test_roundtrip_registration(void **state)
{
	struct jr_reg_binding rb, out;
	struct jr_frame f;
	struct jr_record r;
	struct jr_buf b;

	(void)state;
	jr_buf_init(&b);
	for (int v = 0; v < 6; v++) {
		fill_binding(&rb, v);
		jr_buf_reset(&b);
		assert_int_equal(jr_reg_encode(&b, 500 + (uint64_t)v, JR_OP_UPSERT, &rb), 0);
		assert_int_equal(decode_one(&b, &f), 0);
		assert_int_equal(f.unknown_attrs, 0);
		assert_int_equal(jr_record_decode(&f, &r), 0);
		assert_int_equal(r.kind, JR_KIND_REGISTRATION);
		assert_int_equal(r.seq, 500 + (uint64_t)v);
		assert_int_equal(jr_reg_decode(&r, &out), 0);
		assert_memory_equal(&rb, &out, sizeof(rb));
	}
	/* Longest strings. */
	memset(&rb, 0, sizeof(rb));
	memset(rb.user, 'u', JR_REG_USER_MAX);
	memset(rb.contact, 'c', JR_REG_CONTACT_MAX);
	memset(rb.call_id, 'i', JR_REG_CALLID_MAX);
	rb.q = 1000;
	jr_buf_reset(&b);
	assert_int_equal(jr_reg_encode(&b, 1, JR_OP_UPSERT, &rb), 0);
	assert_int_equal(decode_one(&b, &f), 0);
	assert_int_equal(jr_record_decode(&f, &r), 0);
	assert_int_equal(jr_reg_decode(&r, &out), 0);
	assert_memory_equal(&rb, &out, sizeof(rb));

	/* A delete carries user and contact only. */
	fill_binding(&rb, 4);
	jr_buf_reset(&b);
	assert_int_equal(jr_reg_encode(&b, 9, JR_OP_DELETE, &rb), 0);
	assert_int_equal(decode_one(&b, &f), 0);
	assert_int_equal(jr_record_decode(&f, &r), 0);
	assert_int_equal(r.op, JR_OP_DELETE);
	assert_int_equal(jr_reg_decode(&r, &out), 0);
	assert_string_equal(out.user, rb.user);
	assert_string_equal(out.contact, rb.contact);
	assert_int_equal(out.expires_ms, 0);
	assert_int_equal(out.src.ss_family, AF_UNSPEC);

	/* Values the decoder would refuse are refused at encode time. */
	rb.q = 1001;
	assert_int_equal(jr_reg_encode(&b, 1, JR_OP_UPSERT, &rb), -EINVAL);
	fill_binding(&rb, 1);
	rb.user[0] = 0;
	assert_int_equal(jr_reg_encode(&b, 1, JR_OP_UPSERT, &rb), -EINVAL);
	fill_binding(&rb, 1);
	assert_int_equal(jr_reg_encode(&b, 1, 7, &rb), -EINVAL);
	assert_false(b.in_frame);
	jr_buf_free(&b);
}

static void test_registration_rejects(void **state)
{
	struct jr_reg_binding rb;
	struct jr_record r;
	struct jr_frame f;
	struct pb p = { 0 }, fields = { 0 }, addr = { 0 };
	const char *err;

	(void)state;
	/* The key must be user NUL contact. */
	pb_attr(&fields, JR_REG_USER, "1001", 4);
	pb_attr(&fields, JR_REG_CONTACT, "sip:x", 5);
	pb_u64(&fields, JR_REG_EXPIRES_MS, 1000);
	pb_attr(&fields, JR_REG_CALL_ID, "c", 1);
	pb_attr(&fields, JR_REG_CSEQ, "\0\0\0\1", 4);
	pb_u16(&fields, JR_REG_Q, 500);
	pb_u16(&p, JR_REC_KIND, JR_KIND_REGISTRATION);
	pb_u8(&p, JR_REC_OP, JR_OP_UPSERT);
	pb_attr(&p, JR_REC_KEY, "1001\0sip:y", 10);
	pb_attr(&p, JR_REC_FIELDS, fields.b, fields.n);
	assert_int_equal(decode_payload(JR_T_RECORD, &p, &f, NULL), 0);
	/* F's views point into a freed copy: decode again into a live one. */
	{
		uint8_t raw[sizeof(p.b) + JR_HDR_LEN];
		size_t n = mkframe(raw, JR_MAGIC, JR_VERSION, JR_T_RECORD, 1, &p), used;
		struct jr_decoder d;

		jr_decoder_init(&d, 0);
		assert_int_equal(jr_decode(&d, raw, n, &used, &f), 0);
		assert_int_equal(jr_record_decode(&f, &r), 0);
		assert_int_equal(jr_reg_decode(&r, &rb), -EBADMSG);
		raw[JR_HDR_LEN + 6 + 2 + 6 + 1 + 6 + 9] = 'x'; /* "sip:y" -> "sip:x" */
		jr_decoder_init(&d, 0);
		assert_int_equal(jr_decode(&d, raw, n, &used, &f), 0);
		assert_int_equal(jr_record_decode(&f, &r), 0);
		assert_int_equal(jr_reg_decode(&r, &rb), 0);
		assert_int_equal(rb.cseq, 1);
		assert_int_equal(rb.q, 500);

		/* An upsert missing its expiry is not a binding. */
		r.fields_len -= 6 + 8 + 6 + 1 + 6 + 4 + 6 + 2; /* keep user, contact */
		assert_int_equal(jr_reg_decode(&r, &rb), -EBADMSG);
		r.op = JR_OP_DELETE;
		assert_int_equal(jr_reg_decode(&r, &rb), 0);
		r.kind = JR_KIND_AGENT;
		assert_int_equal(jr_reg_decode(&r, &rb), -EBADMSG);
	}

	/* The frame decoder applies the registration field policy: a wrong
	 * width inside FIELDS drops the whole frame. */
	memset(&fields, 0, sizeof(fields));
	pb_attr(&fields, JR_REG_USER, "1001", 4);
	pb_attr(&fields, JR_REG_CONTACT, "sip:x", 5);
	pb_u16(&fields, JR_REG_CSEQ, 1);
	memset(&p, 0, sizeof(p));
	pb_u16(&p, JR_REC_KIND, JR_KIND_REGISTRATION);
	pb_u8(&p, JR_REC_OP, JR_OP_UPSERT);
	pb_attr(&p, JR_REC_KEY, "1001\0sip:x", 10);
	pb_attr(&p, JR_REC_FIELDS, fields.b, fields.n);
	assert_int_equal(decode_payload(JR_T_RECORD, &p, NULL, &err), -EBADMSG);
	assert_string_equal(err, "attribute of the wrong size for its type");

	/* ...and the address policy two levels down. */
	pb_u8(&addr, JR_ADDR_PROTO, JR_PROTO_UDP);
	pb_attr(&addr, JR_ADDR_IP, "\1\2\3", 3);
	pb_u16(&addr, JR_ADDR_PORT, 5060);
	memset(&fields, 0, sizeof(fields));
	pb_attr(&fields, JR_REG_USER, "1001", 4);
	pb_attr(&fields, JR_REG_CONTACT, "sip:x", 5);
	pb_attr(&fields, JR_REG_SRC, addr.b, addr.n);
	memset(&p, 0, sizeof(p));
	pb_u16(&p, JR_REC_KIND, JR_KIND_REGISTRATION);
	pb_u8(&p, JR_REC_OP, JR_OP_DELETE);
	pb_attr(&p, JR_REC_KEY, "1001\0sip:x", 10);
	pb_attr(&p, JR_REC_FIELDS, fields.b, fields.n);
	assert_int_equal(decode_payload(JR_T_RECORD, &p, NULL, &err), -EBADMSG);
	assert_string_equal(err, "attribute length out of bounds");
}

/* --- encoder misuse ---------------------------------------------------------- */

static void test_encoder_errors(void **state)
{
	struct jr_buf b;
	size_t keep;
	uint8_t *big;

	(void)state;
	jr_buf_init(&b);
	/* Outside a frame. */
	assert_int_equal(jr_put_u8(&b, 1, 1), -EINVAL);
	assert_int_equal(jr_frame_end(&b), -EINVAL);
	assert_int_equal(jr_frame_begin(&b, 0, 0), -EINVAL);

	/* A good frame, then failures that must leave it alone. */
	assert_int_equal(jr_simple_encode(&b, JR_T_ACK, 1), 0);
	keep = b.len;
	assert_int_equal(jr_frame_begin(&b, JR_T_RECORD, 2), 0);
	jr_nest_begin(&b, 4);
	assert_int_equal(jr_frame_end(&b), -EINVAL); /* open nest */
	assert_int_equal(b.len, keep);
	assert_int_equal(jr_frame_begin(&b, JR_T_RECORD, 2), 0);
	assert_int_equal(jr_nest_end(&b), -EINVAL); /* no nest open */
	assert_int_equal(jr_put_u8(&b, 1, 1), -EINVAL); /* sticky */
	assert_int_equal(jr_frame_end(&b), -EINVAL);
	assert_int_equal(b.len, keep);
	assert_int_equal(jr_frame_begin(&b, JR_T_RECORD, 2), 0);
	assert_int_equal(jr_put_u8(&b, 0, 1), -EINVAL); /* type 0 */
	assert_int_equal(jr_frame_end(&b), -EINVAL);
	/* jr_record_begin never leaves a frame open on failure. */
	assert_int_equal(jr_frame_begin(&b, JR_T_ACK, 2), 0);
	assert_int_equal(jr_record_begin(&b, 1, JR_KIND_CALL, JR_OP_UPSERT, "k", 1), -EINVAL);
	assert_false(b.in_frame);
	assert_int_equal(b.len, keep);
	/* Too deep. */
	assert_int_equal(jr_frame_begin(&b, JR_T_RECORD, 2), 0);
	for (int i = 0; i < JR_NEST_MAX - 1; i++)
		assert_int_equal(jr_nest_begin(&b, 1), 0);
	assert_int_equal(jr_nest_begin(&b, 1), -EINVAL);
	assert_int_equal(jr_frame_end(&b), -EINVAL);
	assert_int_equal(b.len, keep);
	/* A frame past JR_MAX_PAYLOAD. */
	big = calloc(1, JR_MAX_PAYLOAD);
	assert_non_null(big);
	assert_int_equal(jr_frame_begin(&b, JR_T_RECORD, 3), 0);
	assert_int_equal(jr_put_bytes(&b, 1, big, JR_MAX_PAYLOAD - JR_ATTR_HDR_LEN), 0);
	assert_int_equal(jr_put_u8(&b, 2, 1), -EMSGSIZE);
	assert_int_equal(jr_frame_end(&b), -EMSGSIZE);
	assert_int_equal(b.len, keep);
	/* Exactly the limit is fine and decodes. */
	assert_int_equal(jr_frame_begin(&b, 200, 3), 0);
	assert_int_equal(jr_put_bytes(&b, 1, big, JR_MAX_PAYLOAD - JR_ATTR_HDR_LEN), 0);
	assert_int_equal(jr_frame_end(&b), 0);
	assert_int_equal(b.len, keep + JR_HDR_LEN + JR_MAX_PAYLOAD);
	{
		struct jr_decoder d;
		struct jr_frame f;
		size_t used;

		jr_decoder_init(&d, 0);
		assert_int_equal(jr_decode(&d, b.data, b.len, &used, &f), 0);
		assert_int_equal(jr_decode(&d, b.data + used, b.len - used, &used, &f), 0);
		assert_int_equal(f.len, JR_MAX_PAYLOAD);
		assert_false(f.known);
		assert_int_equal(f.unknown_attrs, 1);
		assert_int_equal(d.unknown_types, 1);
		/* A decoder with a smaller limit refuses it. */
		jr_decoder_init(&d, 4096);
		assert_int_equal(jr_decode(&d, b.data + keep, 8, &used, &f), -EBADMSG);
		assert_string_equal(d.err, "payload length over the limit");
	}
	free(big);
	jr_buf_free(&b);
	jr_buf_free(&b); /* idempotent */
}

/* --- decoder: headers and truncation ------------------------------------------- */

static void test_truncation(void **state)
{
	struct jr_buf b;
	size_t off[32], sz[32];
	unsigned n;

	(void)state;
	jr_buf_init(&b);
	n = build_corpus(&b);
	assert_int_equal(split_frames(b.data, b.len, off, sz, 32), n);
	for (unsigned i = 0; i < n; i++) {
		/* Every prefix of the frame, then the frame, then the frame with
		 * the start of the next one behind it. */
		size_t total = sz[i] + (i + 1 < n ? sz[i + 1] / 2 : 0);

		for (size_t cut = 0; cut <= total; cut++) {
			uint8_t *p = dup_exact(b.data + off[i], cut);
			struct jr_decoder d;
			struct jr_frame f;
			size_t used = 77;
			int ret;

			jr_decoder_init(&d, 0);
			ret = jr_decode(&d, p, cut, &used, &f);
			if (cut < sz[i]) {
				assert_int_equal(ret, -EAGAIN);
				assert_int_equal(used, 0);
				assert_false(d.failed);
			} else {
				assert_int_equal(ret, 0);
				assert_int_equal(used, sz[i]);
				assert_int_equal(f.len, sz[i] - JR_HDR_LEN);
				poke_typed(&f);
			}
			free(p);
		}
	}
	jr_buf_free(&b);
}

static void test_bad_header(void **state)
{
	struct pb p = { 0 };
	uint8_t raw[64];
	struct jr_decoder d;
	struct jr_frame f;
	size_t used, n;

	(void)state;
	pb_u64(&p, 1, 1);
	/* Bad magic: refused from its first byte on. */
	n = mkframe(raw, 0x4854, JR_VERSION, JR_T_ACK, 0, &p);
	for (size_t cut = 1; cut <= n; cut++) {
		jr_decoder_init(&d, 0);
		assert_int_equal(jr_decode(&d, raw, cut, &used, &f), -EBADMSG);
		assert_string_equal(d.err, "bad magic");
	}
	n = mkframe(raw, 0x5349, JR_VERSION, JR_T_ACK, 0, &p);
	jr_decoder_init(&d, 0);
	assert_int_equal(jr_decode(&d, raw, 1, &used, &f), -EAGAIN);
	assert_int_equal(jr_decode(&d, raw, 2, &used, &f), -EBADMSG);
	/* Sticky: nothing decodes after that. */
	n = mkframe(raw, JR_MAGIC, JR_VERSION, JR_T_ACK, 0, &p);
	assert_int_equal(jr_decode(&d, raw, n, &used, &f), -EBADMSG);
	jr_decoder_init(&d, 0);
	assert_int_equal(jr_decode(&d, raw, n, &used, &f), 0);

	/* Another version, 0 and 2. */
	for (uint8_t v = 0; v <= 2; v += 2) {
		n = mkframe(raw, JR_MAGIC, v, JR_T_HELLO, 0, &p);
		jr_decoder_init(&d, 0);
		assert_int_equal(jr_decode(&d, raw, 3, &used, &f), -EBADMSG);
		assert_int_equal(d.err_version, v);
		assert_string_equal(d.err, "unsupported protocol version");
	}
	/* Type 0. */
	n = mkframe(raw, JR_MAGIC, JR_VERSION, 0, 0, &p);
	jr_decoder_init(&d, 0);
	assert_int_equal(jr_decode(&d, raw, 4, &used, &f), -EBADMSG);
	/* Oversized length, refused as soon as the length is there. */
	n = mkframe(raw, JR_MAGIC, JR_VERSION, JR_T_RECORD, 0, &p);
	raw[4] = 0, raw[5] = 0x10, raw[6] = 0, raw[7] = 1; /* JR_MAX_PAYLOAD + 1 */
	jr_decoder_init(&d, 0);
	assert_int_equal(jr_decode(&d, raw, 7, &used, &f), -EAGAIN);
	assert_int_equal(jr_decode(&d, raw, 8, &used, &f), -EBADMSG);
	raw[4] = 0xff;
	jr_decoder_init(&d, 0);
	assert_int_equal(jr_decode(&d, raw, n, &used, &f), -EBADMSG);
	/* Exactly the limit is only "need more". */
	raw[4] = 0, raw[5] = 0x10, raw[6] = 0, raw[7] = 0;
	jr_decoder_init(&d, 0);
	assert_int_equal(jr_decode(&d, raw, n, &used, &f), -EAGAIN);
}

/* --- decoder: TLV rules ---------------------------------------------------------- */

static void test_tlv_rules(void **state)
{
	struct pb p;
	struct jr_frame f;
	const char *err;
	uint8_t z[8] = { 0 };

	(void)state;
	/* The reference HELLO is fine. */
	memset(&p, 0, sizeof(p));
	pb_hello(&p, 0);
	assert_int_equal(decode_payload(JR_T_HELLO, &p, NULL, NULL), 0);

	/* Every required attribute is required (all but FED_BY, which a
	 * node not in sync with anyone leaves out). */
	for (uint16_t t = 1; t <= JR_HELLO_MAC; t++) {
		memset(&p, 0, sizeof(p));
		pb_hello(&p, t);
		assert_int_equal(decode_payload(JR_T_HELLO, &p, NULL, &err), -EBADMSG);
		assert_string_equal(err, "required attribute missing");
	}
	/* Truncated attribute header: 1..5 stray bytes at the end. */
	for (size_t k = 1; k < JR_ATTR_HDR_LEN; k++) {
		memset(&p, 0, sizeof(p));
		pb_hello(&p, 0);
		memset(p.b + p.n, 0, k);
		p.n += k;
		assert_int_equal(decode_payload(JR_T_HELLO, &p, NULL, &err), -EBADMSG);
		assert_string_equal(err, "attribute header truncated");
	}
	/* Length past the frame, by one and by a lot. */
	memset(&p, 0, sizeof(p));
	pb_hello(&p, 0);
	pb_tlv(&p, 200, 9, z, 8);
	assert_int_equal(decode_payload(JR_T_HELLO, &p, NULL, &err), -EBADMSG);
	assert_string_equal(err, "attribute length past its container");
	memset(&p, 0, sizeof(p));
	pb_tlv(&p, JR_HELLO_EPOCH, 0xffffffffu, z, 8);
	pb_hello(&p, JR_HELLO_EPOCH);
	assert_int_equal(decode_payload(JR_T_HELLO, &p, NULL, NULL), -EBADMSG);
	/* Wrong sizes for fixed-width types, zero length included. */
	for (uint32_t len = 0; len <= 8; len++) {
		if (len == 8)
			continue;
		memset(&p, 0, sizeof(p));
		pb_tlv(&p, JR_HELLO_EPOCH, len, z, len);
		pb_hello(&p, JR_HELLO_EPOCH);
		assert_int_equal(decode_payload(JR_T_HELLO, &p, NULL, &err), -EBADMSG);
		assert_string_equal(err, "attribute of the wrong size for its type");
	}
	memset(&p, 0, sizeof(p));
	pb_attr(&p, JR_HELLO_MAC, "\1\2\3\4\5", 5);
	pb_hello(&p, JR_HELLO_MAC);
	assert_int_equal(decode_payload(JR_T_HELLO, &p, NULL, &err), -EBADMSG);
	assert_string_equal(err, "attribute length out of bounds");
	/* Strings: empty where not allowed, too long, NUL inside. */
	memset(&p, 0, sizeof(p));
	pb_attr(&p, JR_HELLO_NODE_ID, "", 0);
	pb_hello(&p, JR_HELLO_NODE_ID);
	assert_int_equal(decode_payload(JR_T_HELLO, &p, NULL, &err), -EBADMSG);
	{
		char id[JR_NODE_ID_MAX + 1];

		memset(id, 'n', sizeof(id));
		memset(&p, 0, sizeof(p));
		pb_attr(&p, JR_HELLO_NODE_ID, id, sizeof(id));
		pb_hello(&p, JR_HELLO_NODE_ID);
		assert_int_equal(decode_payload(JR_T_HELLO, &p, NULL, &err), -EBADMSG);
		assert_string_equal(err, "attribute length out of bounds");
	}
	memset(&p, 0, sizeof(p));
	pb_attr(&p, JR_HELLO_NODE_ID, "a\0b", 3);
	pb_hello(&p, JR_HELLO_NODE_ID);
	assert_int_equal(decode_payload(JR_T_HELLO, &p, NULL, &err), -EBADMSG);
	assert_string_equal(err, "string attribute holds a NUL byte");
	/* An empty GOODBYE reason is allowed (zero-length value). */
	memset(&p, 0, sizeof(p));
	pb_u16(&p, JR_GOODBYE_CODE, JR_BYE_SHUTDOWN);
	pb_attr(&p, JR_GOODBYE_REASON, "", 0);
	assert_int_equal(decode_payload(JR_T_GOODBYE, &p, NULL, NULL), 0);
	/* Duplicates. */
	memset(&p, 0, sizeof(p));
	pb_hello(&p, 0);
	pb_u64(&p, JR_HELLO_EPOCH, 8);
	assert_int_equal(decode_payload(JR_T_HELLO, &p, NULL, &err), -EBADMSG);
	assert_string_equal(err, "duplicate attribute");
	/* Type 0. */
	memset(&p, 0, sizeof(p));
	pb_hello(&p, 0);
	pb_attr(&p, 0, "", 0);
	assert_int_equal(decode_payload(JR_T_HELLO, &p, NULL, &err), -EBADMSG);
	assert_string_equal(err, "attribute type 0");
	/* Unknown attributes: skipped and counted, of any length, repeated. */
	memset(&p, 0, sizeof(p));
	pb_attr(&p, 300, "future", 6);
	pb_hello(&p, 0);
	pb_attr(&p, JR_HELLO_COUNT, "", 0);
	pb_attr(&p, 300, "again", 5);
	{
		uint8_t raw[sizeof(p.b) + JR_HDR_LEN];
		size_t n = mkframe(raw, JR_MAGIC, JR_VERSION, JR_T_HELLO, 0, &p), used;
		struct jr_decoder d;
		struct jr_hello h;

		jr_decoder_init(&d, 0);
		assert_int_equal(jr_decode(&d, raw, n, &used, &f), 0);
		assert_int_equal(f.unknown_attrs, 3);
		assert_int_equal(d.unknown_attrs, 3);
		assert_int_equal(jr_hello_decode(&f, &h), 0);
		assert_string_equal(h.node_id, "a");
		assert_int_equal(h.epoch, 7);
	}
	/* Unknown frame types: TLV structure still enforced. */
	memset(&p, 0, sizeof(p));
	pb_attr(&p, 1, "x", 1);
	assert_int_equal(decode_payload(250, &p, NULL, NULL), 0);
	p.b[5] = 2; /* length 2 > what is there */
	assert_int_equal(decode_payload(250, &p, NULL, NULL), -EBADMSG);
	/* Types this version knows but defines no attributes for. */
	memset(&p, 0, sizeof(p));
	pb_attr(&p, 1, "x", 1);
	assert_int_equal(decode_payload(JR_T_HEARTBEAT, &p, &f, NULL), 0);
	assert_int_equal(f.unknown_attrs, 1);
}

static void test_nested_rules(void **state)
{
	struct pb p, in, in2;
	const char *err;

	(void)state;
	/* Nested overrun: inner length past the nest, though within the frame. */
	memset(&in, 0, sizeof(in));
	pb_tlv(&in, 1, 20, "abcd", 4);
	memset(&p, 0, sizeof(p));
	pb_u16(&p, JR_REC_KIND, JR_KIND_CALL);
	pb_u8(&p, JR_REC_OP, JR_OP_UPSERT);
	pb_attr(&p, JR_REC_KEY, "k", 1);
	pb_attr(&p, JR_REC_FIELDS, in.b, in.n);
	pb_attr(&p, 100, "0123456789abcdefghij", 20); /* bytes the overrun would reach */
	assert_int_equal(decode_payload(JR_T_RECORD, &p, NULL, &err), -EBADMSG);
	assert_string_equal(err, "attribute length past its container");
	/* A nest of a nest, the inner one overrunning. */
	memset(&in2, 0, sizeof(in2));
	pb_tlv(&in2, 1, 3, "ab", 2);
	memset(&in, 0, sizeof(in));
	pb_attr(&in, 5, in2.b, in2.n);
	memset(&p, 0, sizeof(p));
	pb_u16(&p, JR_REC_KIND, JR_KIND_REGISTRATION);
	pb_u8(&p, JR_REC_OP, JR_OP_DELETE);
	pb_attr(&p, JR_REC_KEY, "u\0c", 3);
	memset(&in, 0, sizeof(in));
	pb_attr(&in, JR_REG_USER, "u", 1);
	pb_attr(&in, JR_REG_CONTACT, "c", 1);
	pb_attr(&in, JR_REG_SRC, in2.b, in2.n);
	pb_attr(&p, JR_REC_FIELDS, in.b, in.n);
	assert_int_equal(decode_payload(JR_T_RECORD, &p, NULL, &err), -EBADMSG);
	/* Empty nest: fine for a kind without a policy, and for a delete. */
	memset(&p, 0, sizeof(p));
	pb_u16(&p, JR_REC_KIND, JR_KIND_AGENT);
	pb_u8(&p, JR_REC_OP, JR_OP_DELETE);
	pb_attr(&p, JR_REC_KEY, "k", 1);
	pb_attr(&p, JR_REC_FIELDS, "", 0);
	assert_int_equal(decode_payload(JR_T_RECORD, &p, NULL, NULL), 0);
	/* Zero-length key is refused. */
	memset(&p, 0, sizeof(p));
	pb_u16(&p, JR_REC_KIND, JR_KIND_AGENT);
	pb_u8(&p, JR_REC_OP, JR_OP_DELETE);
	pb_attr(&p, JR_REC_KEY, "", 0);
	assert_int_equal(decode_payload(JR_T_RECORD, &p, NULL, NULL), -EBADMSG);
}

/* A policy that nests into itself: depth is what stops the parser. */
static const struct jr_policy tree_policy[3] = {
	[1] = { .kind = JR_A_NESTED, .nested = tree_policy, .nested_max = 2 },
	[2] = { .kind = JR_A_U8, .flags = JR_PF_MULTI },
};

static size_t build_tree(uint8_t *out, unsigned depth)
{
	/* DEPTH nests, innermost holding one u8. */
	struct pb a = { 0 }, b = { 0 };
	struct pb *cur = &a, *next = &b;

	pb_u8(cur, 2, 7);
	for (unsigned i = 0; i < depth; i++) {
		next->n = 0;
		pb_attr(next, 1, cur->b, cur->n);
		struct pb *t = cur;
		cur = next;
		next = t;
	}
	memcpy(out, cur->b, cur->n);
	return cur->n;
}

static void test_policy_depth_and_multi(void **state)
{
	uint8_t buf[512];
	struct jr_attr tb[3], a;
	const char *err = NULL;
	size_t n, off = 0;
	unsigned seen = 0;
	struct pb p = { 0 };

	(void)state;
	n = build_tree(buf, JR_NEST_MAX - 1);
	assert_int_equal(jr_parse(buf, n, tree_policy, 2, tb, NULL, &err), 0);
	n = build_tree(buf, JR_NEST_MAX);
	assert_int_equal(jr_parse(buf, n, tree_policy, 2, tb, NULL, &err), -EBADMSG);
	assert_string_equal(err, "attributes nested too deep");

	/* MULTI: repeats allowed, TB keeps the first, iteration sees all. */
	pb_u8(&p, 2, 1);
	pb_u8(&p, 2, 2);
	pb_u8(&p, 2, 3);
	assert_int_equal(jr_parse(p.b, p.n, tree_policy, 2, tb, NULL, NULL), 0);
	assert_int_equal(jr_attr_u8(&tb[2]), 1);
	assert_null(tb[1].data);
	while (jr_attr_next(p.b, p.n, &off, &a) == 1) {
		assert_int_equal(a.type, 2);
		assert_int_equal(jr_attr_u8(&a), ++seen);
	}
	assert_int_equal(seen, 3);
	/* A MULTI attribute of the wrong size is still refused. */
	pb_u16(&p, 2, 4);
	assert_int_equal(jr_parse(p.b, p.n, tree_policy, 2, tb, NULL, NULL), -EBADMSG);
	/* Readers are safe on wrong sizes and absence. */
	a.data = (const uint8_t *)"12345678";
	a.len = 3;
	assert_int_equal(jr_attr_u64(&a), 0);
	assert_int_equal(jr_attr_u32(&a), 0);
	{
		char s[4];
		struct jr_attr none = { 0 };

		assert_int_equal(jr_attr_strcpy(&a, s, sizeof(s)), 0);
		assert_string_equal(s, "123");
		assert_int_equal(jr_attr_strcpy(&a, s, 3), -ENAMETOOLONG);
		assert_int_equal(jr_attr_strcpy(&none, s, sizeof(s)), -ENOENT);
	}
}

/* --- random input ---------------------------------------------------------------- */

static void decode_all(const uint8_t *buf, size_t len, unsigned *ok, unsigned *bad)
{
	struct jr_decoder d;
	size_t pos = 0;

	jr_decoder_init(&d, 0);
	while (pos < len) {
		struct jr_frame f;
		size_t used = 0;
		int ret = jr_decode(&d, buf + pos, len - pos, &used, &f);

		if (ret == -EAGAIN)
			break;
		if (ret) {
			assert_int_equal(ret, -EBADMSG);
			assert_non_null(d.err);
			(*bad)++;
			break;
		}
		assert_true(used >= JR_HDR_LEN && used <= len - pos);
		assert_true(f.payload + f.len <= buf + len);
		poke_typed(&f);
		(*ok)++;
		pos += used;
	}
}

static void test_random_buffers(void **state)
{
	unsigned ok = 0, bad = 0;
	uint8_t tmp[600];

	(void)state;
	rng = 0x1234567887654321ull;
	for (int i = 0; i < 100000; i++) {
		size_t len = rnd_below(sizeof(tmp));
		uint8_t *b;

		for (size_t k = 0; k < len; k++)
			tmp[k] = (uint8_t)rnd();
		/* Half of them get a plausible header so the payload parser is
		 * what meets the noise. */
		if (i & 1 && len >= JR_HDR_LEN) {
			uint32_t plen = (uint32_t)rnd_below(len - JR_HDR_LEN + 1);

			tmp[0] = JR_MAGIC >> 8;
			tmp[1] = JR_MAGIC & 0xff;
			tmp[2] = JR_VERSION;
			tmp[3] = (uint8_t)(1 + rnd_below(JR_T_COUNT));
			tmp[4] = tmp[5] = 0;
			tmp[6] = (uint8_t)(plen >> 8);
			tmp[7] = (uint8_t)plen;
			/* Often a first attribute that fits, too. */
			if (plen >= JR_ATTR_HDR_LEN && rnd() & 1) {
				uint32_t alen = (uint32_t)rnd_below(plen - JR_ATTR_HDR_LEN + 1);

				tmp[16] = 0;
				tmp[17] = (uint8_t)(1 + rnd_below(12));
				tmp[18] = tmp[19] = tmp[20] = 0;
				tmp[21] = (uint8_t)alen;
			}
		}
		b = dup_exact(tmp, len);
		decode_all(b, len, &ok, &bad);
		free(b);
	}
	/* Noise must mostly be refused, and the plausible half must reach the
	 * TLV checks: both outcomes occur. */
	assert_true(bad > 50000);
	assert_true(ok > 0);
	print_message("random: %u frames accepted, %u buffers refused\n", ok, bad);
}

static void test_mutations(void **state)
{
	struct jr_buf corpus;
	size_t off[32], sz[32];
	unsigned n, ok = 0, bad = 0;
	uint8_t tmp[8192];

	(void)state;
	rng = 0xabcdef0123456789ull;
	jr_buf_init(&corpus);
	n = build_corpus(&corpus);
	assert_int_equal(split_frames(corpus.data, corpus.len, off, sz, 32), n);
	for (int i = 0; i < 100000; i++) {
		unsigned k = (unsigned)rnd_below(n), muts = 1 + (unsigned)rnd_below(4);
		size_t len = sz[k];
		uint8_t *b;

		memcpy(tmp, corpus.data + off[k], len);
		for (unsigned m = 0; m < muts; m++) {
			size_t at = rnd_below(len);

			switch (rnd_below(6)) {
			case 0: /* flip a bit */
				tmp[at] ^= (uint8_t)(1u << rnd_below(8));
				break;
			case 1: /* set a byte */
				tmp[at] = (uint8_t)rnd();
				break;
			case 2: /* truncate */
				len = at;
				break;
			case 3: /* grow by a random byte */
				if (len < sizeof(tmp))
					tmp[len++] = (uint8_t)rnd();
				break;
			case 4: /* delete a byte */
				if (len) {
					memmove(tmp + at, tmp + at + 1, len - at - 1);
					len--;
				}
				break;
			case 5: /* boundary values in a length or count field */
				if (at + 4 <= len) {
					static const uint8_t vals[] = { 0x00, 0x7f, 0x80, 0xff };
					tmp[at] = vals[rnd_below(4)];
					tmp[at + 1] = vals[rnd_below(4)];
				}
				break;
			}
		}
		b = dup_exact(tmp, len);
		decode_all(b, len, &ok, &bad);
		free(b);
	}
	assert_true(ok > 1000);
	assert_true(bad > 1000);
	print_message("mutations: %u frames accepted, %u buffers refused\n", ok, bad);
	jr_buf_free(&corpus);
}

/* --- streaming -------------------------------------------------------------------- */

struct seen {
	uint8_t type;
	uint64_t seq;
	uint32_t len;
	uint64_t sum; /* of the payload bytes, position-weighted */
};

static uint64_t weigh(const uint8_t *p, size_t n)
{
	uint64_t s = 0;

	for (size_t i = 0; i < n; i++)
		s = s * 131 + p[i];
	return s;
}

static void append(uint8_t **buf, size_t *len, size_t *cap, const void *p, size_t n)
{
	if (*len + n > *cap) {
		size_t c = *cap ? *cap : 4096;
		uint8_t *nb;

		while (c < *len + n)
			c *= 2;
		nb = realloc(*buf, c);
		assert_non_null(nb);
		*buf = nb;
		*cap = c;
	}
	memcpy(*buf + *len, p, n);
	*len += n;
}

static void test_streaming(void **state)
{
	enum {
		FRAMES = 2000
	};
	struct jr_buf one, corpus;
	uint8_t *stream = NULL;
	size_t slen = 0, scap = 0;
	size_t off[32], sz[32];
	struct seen *want, *got;
	unsigned n, ngot = 0;
	uint8_t *pend = NULL;
	size_t plen = 0, pos = 0;
	struct jr_decoder d;

	(void)state;
	rng = 0x5555aaaa5555aaaaull;
	jr_buf_init(&one);
	jr_buf_init(&corpus);
	want = calloc(FRAMES, sizeof(*want));
	got = calloc(FRAMES, sizeof(*got));
	assert_non_null(want);
	assert_non_null(got);
	n = build_corpus(&corpus);
	assert_int_equal(split_frames(corpus.data, corpus.len, off, sz, 32), n);
	/* A stream of corpus frames mixed with freshly encoded registrations. */
	for (unsigned i = 0; i < FRAMES; i++) {
		unsigned k = (unsigned)rnd_below(n + 1);

		if (k == n) {
			struct jr_reg_binding rb;

			fill_binding(&rb, (int)(i % 7));
			jr_buf_reset(&one);
			assert_int_equal(jr_reg_encode(&one, 100000 + i, JR_OP_UPSERT, &rb), 0);
			append(&stream, &slen, &scap, one.data, one.len);
		} else {
			append(&stream, &slen, &scap, corpus.data + off[k], sz[k]);
		}
	}
	/* One-shot reference. */
	jr_decoder_init(&d, 0);
	for (size_t p = 0, used; p < slen; p += used) {
		struct jr_frame f;

		assert_int_equal(jr_decode(&d, stream + p, slen - p, &used, &f), 0);
		want[ngot].type = f.type;
		want[ngot].seq = f.seq;
		want[ngot].len = f.len;
		want[ngot].sum = weigh(f.payload, f.len);
		ngot++;
	}
	assert_int_equal(ngot, FRAMES);

	/* The same bytes in random chunks, kept and re-offered like the
	 * loop's stream buffer does. */
	ngot = 0;
	jr_decoder_init(&d, 0);
	while (pos < slen) {
		size_t chunk = 1 + rnd_below(rnd() & 1 ? 7 : 3000), used, at = 0;

		if (chunk > slen - pos)
			chunk = slen - pos;
		pend = realloc(pend, plen + chunk);
		assert_non_null(pend);
		memcpy(pend + plen, stream + pos, chunk);
		plen += chunk;
		pos += chunk;
		for (;;) {
			struct jr_frame f;
			int ret = jr_decode(&d, pend + at, plen - at, &used, &f);

			if (ret == -EAGAIN)
				break;
			assert_int_equal(ret, 0);
			assert_true(ngot < FRAMES);
			got[ngot].type = f.type;
			got[ngot].seq = f.seq;
			got[ngot].len = f.len;
			got[ngot].sum = weigh(f.payload, f.len);
			ngot++;
			at += used;
		}
		memmove(pend, pend + at, plen - at);
		plen -= at;
	}
	assert_int_equal(plen, 0);
	assert_int_equal(ngot, FRAMES);
	assert_memory_equal(want, got, FRAMES * sizeof(*want));
	assert_int_equal(d.frames, FRAMES);
	assert_int_equal(d.bytes, slen);
	free(pend);
	free(want);
	free(got);
	free(stream);
	jr_buf_free(&one);
	jr_buf_free(&corpus);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_wire_layout),
		cmocka_unit_test(test_roundtrip_hello),
		cmocka_unit_test(test_roundtrip_simple),
		cmocka_unit_test(test_roundtrip_record),
		cmocka_unit_test(test_roundtrip_registration),
		cmocka_unit_test(test_registration_rejects),
		cmocka_unit_test(test_encoder_errors),
		cmocka_unit_test(test_truncation),
		cmocka_unit_test(test_bad_header),
		cmocka_unit_test(test_tlv_rules),
		cmocka_unit_test(test_nested_rules),
		cmocka_unit_test(test_policy_depth_and_multi),
		cmocka_unit_test(test_random_buffers),
		cmocka_unit_test(test_mutations),
		cmocka_unit_test(test_streaming),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
