/* HA wire format: TLV parser and encoder, frame decoder, typed payloads.
 *
 * Values on the wire are unaligned and big-endian; every read goes through
 * the byte helpers below, so no pointer into a frame is ever cast to a wider
 * type. */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "ha/journal.h"

_Static_assert(JR_HELLO_MAX < JR_TB_SIZE && JR_GOODBYE_MAX < JR_TB_SIZE &&
		       JR_SNAP_MAX < JR_TB_SIZE && JR_REC_MAX < JR_TB_SIZE,
	       "JR_TB_SIZE too small");

static inline uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t rd64(const uint8_t *p)
{
	return (uint64_t)rd32(p) << 32 | rd32(p + 4);
}

static inline void wr16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void wr32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static inline void wr64(uint8_t *p, uint64_t v)
{
	wr32(p, (uint32_t)(v >> 32));
	wr32(p + 4, (uint32_t)v);
}

/* --- policies ---------------------------------------------------------------- */

#define FIXED(k)            \
	{                   \
		.kind = (k) \
	}
#define REQ(k)                                       \
	{                                            \
		.kind = (k), .flags = JR_PF_REQUIRED \
	}

static const struct jr_policy hello_policy[JR_HELLO_COUNT] = {
	[JR_HELLO_PROTO_MAJOR] = REQ(JR_A_U8),
	[JR_HELLO_PROTO_MINOR] = REQ(JR_A_U8),
	[JR_HELLO_NODE_ID] = { .kind = JR_A_STRING,
			       .flags = JR_PF_REQUIRED,
			       .min_len = 1,
			       .max_len = JR_NODE_ID_MAX },
	[JR_HELLO_EPOCH] = REQ(JR_A_U64),
	[JR_HELLO_INSTANCE] = REQ(JR_A_U64),
	[JR_HELLO_PRIORITY] = REQ(JR_A_U16),
	[JR_HELLO_REDUNDANCY] = REQ(JR_A_U8),
	[JR_HELLO_ROLE] = REQ(JR_A_U8),
	[JR_HELLO_STATE] = REQ(JR_A_U8),
	[JR_HELLO_LAST_SEQ] = REQ(JR_A_U64),
	[JR_HELLO_MAC] = { .kind = JR_A_BINARY,
			   .flags = JR_PF_REQUIRED,
			   .min_len = 6,
			   .max_len = 6 },
	[JR_HELLO_FED_BY] = { .kind = JR_A_U64 },
	[JR_HELLO_NONCE] = { .kind = JR_A_BINARY,
			     .min_len = JR_NONCE_LEN,
			     .max_len = JR_NONCE_LEN },
};

static const struct jr_policy auth_policy[JR_AUTH_COUNT] = {
	[JR_AUTH_MAC] = { .kind = JR_A_BINARY,
			  .flags = JR_PF_REQUIRED,
			  .min_len = 32,
			  .max_len = 32 },
};

static const struct jr_policy watch_policy[JR_WATCH_COUNT] = {
	[JR_WATCH_INSTANCE] = REQ(JR_A_U64),
	[JR_WATCH_MAC] = { .kind = JR_A_BINARY, .min_len = 32, .max_len = 32 },
};

static const struct jr_policy goodbye_policy[JR_GOODBYE_COUNT] = {
	[JR_GOODBYE_CODE] = REQ(JR_A_U16),
	[JR_GOODBYE_REASON] = { .kind = JR_A_STRING, .max_len = JR_REASON_MAX },
};

static const struct jr_policy snap_policy[JR_SNAP_COUNT] = {
	[JR_SNAP_OBJECTS] = FIXED(JR_A_U64),
};

static const struct jr_policy rec_policy[JR_REC_COUNT] = {
	[JR_REC_KIND] = REQ(JR_A_U16),
	[JR_REC_OP] = REQ(JR_A_U8),
	[JR_REC_KEY] = { .kind = JR_A_BINARY,
			 .flags = JR_PF_REQUIRED,
			 .min_len = 1,
			 .max_len = JR_KEY_MAX },
	[JR_REC_FIELDS] = FIXED(JR_A_NESTED),
};

static const struct jr_policy addr_policy[JR_ADDR_COUNT] = {
	[JR_ADDR_PROTO] = REQ(JR_A_U8),
	[JR_ADDR_IP] = { .kind = JR_A_BINARY,
			 .flags = JR_PF_REQUIRED,
			 .min_len = 4,
			 .max_len = 16 },
	[JR_ADDR_PORT] = REQ(JR_A_U16),
};

static const struct jr_policy reg_policy[JR_REG_COUNT] = {
	[JR_REG_USER] = { .kind = JR_A_STRING,
			  .flags = JR_PF_REQUIRED,
			  .min_len = 1,
			  .max_len = JR_REG_USER_MAX },
	[JR_REG_CONTACT] = { .kind = JR_A_STRING,
			     .flags = JR_PF_REQUIRED,
			     .min_len = 1,
			     .max_len = JR_REG_CONTACT_MAX },
	[JR_REG_EXPIRES_MS] = FIXED(JR_A_U64),
	[JR_REG_CALL_ID] = { .kind = JR_A_STRING, .max_len = JR_REG_CALLID_MAX },
	[JR_REG_CSEQ] = FIXED(JR_A_U32),
	[JR_REG_Q] = FIXED(JR_A_U16),
	[JR_REG_SRC] = { .kind = JR_A_NESTED, .nested = addr_policy, .nested_max = JR_ADDR_MAX },
};

struct type_desc {
	const char *name;
	const struct jr_policy *pol;
	uint16_t maxtype;
};

static const struct type_desc types[JR_T_COUNT] = {
	[JR_T_HELLO] = { "HELLO", hello_policy, JR_HELLO_MAX },
	[JR_T_HEARTBEAT] = { "HEARTBEAT", NULL, 0 },
	[JR_T_ACK] = { "ACK", NULL, 0 },
	[JR_T_SNAPSHOT_BEGIN] = { "SNAPSHOT_BEGIN", snap_policy, JR_SNAP_MAX },
	[JR_T_SNAPSHOT_END] = { "SNAPSHOT_END", snap_policy, JR_SNAP_MAX },
	[JR_T_RECORD] = { "RECORD", rec_policy, JR_REC_MAX },
	[JR_T_GOODBYE] = { "GOODBYE", goodbye_policy, JR_GOODBYE_MAX },
	[JR_T_SELECT] = { "SELECT", NULL, 0 },
	[JR_T_AUTH] = { "AUTH", auth_policy, JR_AUTH_MAX },
	[JR_T_WATCH] = { "WATCH", watch_policy, JR_WATCH_MAX },
};

/* Field policies of record kinds; a kind without one has its fields checked
 * for TLV structure only.  Calls and the rest join here as they are written. */
static const struct type_desc kinds[] = {
	[JR_KIND_REGISTRATION] = { "registration", reg_policy, JR_REG_MAX },
};

const char *jr_type_name(uint8_t type)
{
	if (type < JR_T_COUNT && types[type].name)
		return types[type].name;
	return "unknown";
}

/* --- attributes -------------------------------------------------------------- */

int jr_attr_next(const uint8_t *buf, size_t len, size_t *off, struct jr_attr *a)
{
	uint32_t alen;

	if (*off >= len)
		return 0;
	if (len - *off < JR_ATTR_HDR_LEN)
		return -EBADMSG;
	alen = rd32(buf + *off + 2);
	if (alen > len - *off - JR_ATTR_HDR_LEN)
		return -EBADMSG;
	a->type = rd16(buf + *off);
	a->len = alen;
	a->data = buf + *off + JR_ATTR_HDR_LEN;
	*off += JR_ATTR_HDR_LEN + (size_t)alen;
	return 1;
}

static int parse_level(const uint8_t *buf, size_t len, const struct jr_policy *pol,
		       uint16_t maxtype, struct jr_attr *tb, unsigned *unknown, const char **err,
		       unsigned depth);

static int check_attr(const struct jr_attr *a, const struct jr_policy *p, unsigned *unknown,
		      const char **err, unsigned depth)
{
	static const uint32_t fixed[] = {
		[JR_A_U8] = 1, [JR_A_U16] = 2, [JR_A_U32] = 4, [JR_A_U64] = 8, [JR_A_FLAG] = 0,
	};

	switch (p->kind) {
	case JR_A_U8:
	case JR_A_U16:
	case JR_A_U32:
	case JR_A_U64:
	case JR_A_FLAG:
		if (a->len != fixed[p->kind]) {
			*err = "attribute of the wrong size for its type";
			return -EBADMSG;
		}
		return 0;
	case JR_A_STRING:
		if (a->len && memchr(a->data, 0, a->len)) {
			*err = "string attribute holds a NUL byte";
			return -EBADMSG;
		}
		break;
	case JR_A_BINARY:
	case JR_A_NESTED:
		break;
	default:
		*err = "attribute policy of no known kind";
		return -EBADMSG;
	}
	if (a->len < p->min_len || (p->max_len && a->len > p->max_len)) {
		*err = "attribute length out of bounds";
		return -EBADMSG;
	}
	if (p->kind != JR_A_NESTED)
		return 0;
	if (depth + 1 >= JR_NEST_MAX) {
		*err = "attributes nested too deep";
		return -EBADMSG;
	}
	if (p->nested)
		return parse_level(a->data, a->len, p->nested, p->nested_max, NULL, unknown, err,
				   depth + 1);
	/* No policy: the content only has to be a well-formed TLV sequence;
	 * what it holds is somebody else's business, not an unknown here. */
	return parse_level(a->data, a->len, NULL, 0, NULL, NULL, err, depth + 1);
}

static int parse_level(const uint8_t *buf, size_t len, const struct jr_policy *pol,
		       uint16_t maxtype, struct jr_attr *tb, unsigned *unknown, const char **err,
		       unsigned depth)
{
	uint64_t seen = 0;
	size_t off = 0;
	struct jr_attr a;
	int ret;

	if (maxtype >= 64) {
		*err = "policy with more than 63 attributes";
		return -EINVAL;
	}
	if (tb)
		memset(tb, 0, sizeof(*tb) * ((size_t)maxtype + 1));
	while ((ret = jr_attr_next(buf, len, &off, &a)) > 0) {
		const struct jr_policy *p;

		if (a.type == 0) {
			*err = "attribute type 0";
			return -EBADMSG;
		}
		if (!pol || a.type > maxtype || pol[a.type].kind == JR_A_UNUSED) {
			if (unknown)
				(*unknown)++;
			continue;
		}
		p = &pol[a.type];
		ret = check_attr(&a, p, unknown, err, depth);
		if (ret)
			return ret;
		if (seen & (UINT64_C(1) << a.type)) {
			if (!(p->flags & JR_PF_MULTI)) {
				*err = "duplicate attribute";
				return -EBADMSG;
			}
			continue;
		}
		seen |= UINT64_C(1) << a.type;
		if (tb)
			tb[a.type] = a;
	}
	if (ret < 0) {
		*err = off + JR_ATTR_HDR_LEN > len ? "attribute header truncated"
						   : "attribute length past its container";
		return ret;
	}
	for (uint16_t t = 1; pol && t <= maxtype; t++) {
		if ((pol[t].flags & JR_PF_REQUIRED) && !(seen & (UINT64_C(1) << t))) {
			*err = "required attribute missing";
			return -EBADMSG;
		}
	}
	return 0;
}

int jr_parse(const uint8_t *buf, size_t len, const struct jr_policy *pol, uint16_t maxtype,
	     struct jr_attr *tb, unsigned *unknown, const char **err)
{
	const char *dummy;

	return parse_level(buf, len, pol, maxtype, tb, unknown, err ? err : &dummy, 0);
}

uint8_t jr_attr_u8(const struct jr_attr *a)
{
	return a->data && a->len == 1 ? a->data[0] : 0;
}

uint16_t jr_attr_u16(const struct jr_attr *a)
{
	return a->data && a->len == 2 ? rd16(a->data) : 0;
}

uint32_t jr_attr_u32(const struct jr_attr *a)
{
	return a->data && a->len == 4 ? rd32(a->data) : 0;
}

uint64_t jr_attr_u64(const struct jr_attr *a)
{
	return a->data && a->len == 8 ? rd64(a->data) : 0;
}

int jr_attr_strcpy(const struct jr_attr *a, char *buf, size_t size)
{
	if (!a->data)
		return -ENOENT;
	if (a->len >= size)
		return -ENAMETOOLONG;
	if (a->len && memchr(a->data, 0, a->len))
		return -EBADMSG;
	memcpy(buf, a->data, a->len);
	buf[a->len] = '\0';
	return 0;
}

/* --- encoder ------------------------------------------------------------------ */

void jr_buf_init(struct jr_buf *b)
{
	memset(b, 0, sizeof(*b));
}

void jr_buf_free(struct jr_buf *b)
{
	free(b->data);
	jr_buf_init(b);
}

void jr_buf_reset(struct jr_buf *b)
{
	b->len = 0;
	b->err = 0;
	b->in_frame = false;
	b->depth = 0;
}

/* Room for N more bytes, or the sticky error. */
static uint8_t *reserve(struct jr_buf *b, size_t n)
{
	uint8_t *p;

	if (b->err)
		return NULL;
	if (!b->in_frame) {
		b->err = -EINVAL;
		return NULL;
	}
	/* No frame may outgrow the limit, so neither may one frame's bytes. */
	if (n > JR_MAX_PAYLOAD || b->len - b->frame + n > JR_HDR_LEN + (size_t)JR_MAX_PAYLOAD) {
		b->err = -EMSGSIZE;
		return NULL;
	}
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 256;

		while (cap < b->len + n)
			cap *= 2;
		p = realloc(b->data, cap);
		if (!p) {
			b->err = -ENOMEM;
			return NULL;
		}
		b->data = p;
		b->cap = cap;
	}
	p = b->data + b->len;
	b->len += n;
	return p;
}

int jr_frame_begin(struct jr_buf *b, uint8_t type, uint64_t seq)
{
	uint8_t *p;

	if (b->in_frame || type == 0) {
		b->err = b->err ? b->err : -EINVAL;
		return b->err;
	}
	b->err = 0;
	b->in_frame = true;
	b->frame = b->len;
	b->depth = 0;
	p = reserve(b, JR_HDR_LEN);
	if (!p)
		return b->err;
	wr16(p, JR_MAGIC);
	p[2] = JR_VERSION;
	p[3] = type;
	wr32(p + 4, 0);
	wr64(p + 8, seq);
	return 0;
}

int jr_frame_end(struct jr_buf *b)
{
	int ret;

	if (!b->in_frame)
		return -EINVAL;
	if (!b->err && b->depth)
		b->err = -EINVAL;
	if (!b->err && b->len - b->frame - JR_HDR_LEN > JR_MAX_PAYLOAD)
		b->err = -EMSGSIZE;
	ret = b->err;
	if (ret)
		b->len = b->frame;
	else
		wr32(b->data + b->frame + 4, (uint32_t)(b->len - b->frame - JR_HDR_LEN));
	b->in_frame = false;
	b->depth = 0;
	b->err = 0;
	return ret;
}

static int put(struct jr_buf *b, uint16_t type, const void *v, size_t n)
{
	uint8_t *p;

	if (type == 0 || n > UINT32_MAX) {
		b->err = b->err ? b->err : -EINVAL;
		return b->err;
	}
	p = reserve(b, JR_ATTR_HDR_LEN + n);
	if (!p)
		return b->err;
	wr16(p, type);
	wr32(p + 2, (uint32_t)n);
	if (n)
		memcpy(p + JR_ATTR_HDR_LEN, v, n);
	return 0;
}

int jr_put_u8(struct jr_buf *b, uint16_t type, uint8_t v)
{
	return put(b, type, &v, 1);
}

int jr_put_u16(struct jr_buf *b, uint16_t type, uint16_t v)
{
	uint8_t x[2];

	wr16(x, v);
	return put(b, type, x, sizeof(x));
}

int jr_put_u32(struct jr_buf *b, uint16_t type, uint32_t v)
{
	uint8_t x[4];

	wr32(x, v);
	return put(b, type, x, sizeof(x));
}

int jr_put_u64(struct jr_buf *b, uint16_t type, uint64_t v)
{
	uint8_t x[8];

	wr64(x, v);
	return put(b, type, x, sizeof(x));
}

int jr_put_str(struct jr_buf *b, uint16_t type, const char *s)
{
	return put(b, type, s, strlen(s));
}

int jr_put_bytes(struct jr_buf *b, uint16_t type, const void *p, size_t n)
{
	return put(b, type, p, n);
}

int jr_put_flag(struct jr_buf *b, uint16_t type)
{
	return put(b, type, NULL, 0);
}

int jr_nest_begin(struct jr_buf *b, uint16_t type)
{
	size_t at = b->len;

	if (!b->err && b->depth + 1 >= JR_NEST_MAX)
		b->err = -EINVAL;
	if (put(b, type, NULL, 0))
		return b->err;
	b->nest[b->depth++] = at;
	return 0;
}

int jr_nest_end(struct jr_buf *b)
{
	size_t at;

	if (b->err)
		return b->err;
	if (!b->in_frame || !b->depth) {
		b->err = -EINVAL;
		return b->err;
	}
	at = b->nest[--b->depth];
	wr32(b->data + at + 2, (uint32_t)(b->len - at - JR_ATTR_HDR_LEN));
	return 0;
}

/* --- decoder ------------------------------------------------------------------ */

void jr_decoder_init(struct jr_decoder *d, uint32_t max_payload)
{
	memset(d, 0, sizeof(*d));
	d->max_payload = max_payload && max_payload < JR_MAX_PAYLOAD ? max_payload : JR_MAX_PAYLOAD;
}

static int fail(struct jr_decoder *d, const char *why)
{
	d->failed = true;
	d->err = why;
	return -EBADMSG;
}

static int check_record_fields(const struct jr_frame *f, unsigned *unknown, const char **err)
{
	const struct jr_attr *fa = &f->tb[JR_REC_FIELDS];
	uint16_t kind = jr_attr_u16(&f->tb[JR_REC_KIND]);
	const struct type_desc *k = kind < sizeof(kinds) / sizeof(kinds[0]) ? &kinds[kind] : NULL;

	if (!fa->data || !k || !k->pol)
		return 0;
	return jr_parse(fa->data, fa->len, k->pol, k->maxtype, NULL, unknown, err);
}

int jr_decode(struct jr_decoder *d, const uint8_t *buf, size_t len, size_t *consumed,
	      struct jr_frame *out)
{
	const struct type_desc *t = NULL;
	const char *err = NULL;
	uint32_t plen;
	int ret;

	*consumed = 0;
	if (d->failed)
		return -EBADMSG;
	if ((len >= 1 && buf[0] != JR_MAGIC >> 8) || (len >= 2 && buf[1] != (JR_MAGIC & 0xff)))
		return fail(d, "bad magic");
	if (len >= 3 && buf[2] != JR_VERSION) {
		d->err_version = buf[2];
		return fail(d, "unsupported protocol version");
	}
	if (len >= 4 && buf[3] == 0)
		return fail(d, "frame type 0");
	if (len >= 8 && rd32(buf + 4) > d->max_payload)
		return fail(d, "payload length over the limit");
	if (len < JR_HDR_LEN)
		return -EAGAIN;
	plen = rd32(buf + 4);
	if (len - JR_HDR_LEN < plen)
		return -EAGAIN;

	memset(out, 0, sizeof(*out));
	out->version = buf[2];
	out->type = buf[3];
	out->len = plen;
	out->seq = rd64(buf + 8);
	out->payload = buf + JR_HDR_LEN;
	if (out->type < JR_T_COUNT && types[out->type].name)
		t = &types[out->type];
	out->known = t != NULL;
	/* Every payload is a TLV sequence, also of types this version does not
	 * know: that much a future peer must keep to. */
	ret = jr_parse(out->payload, plen, t ? t->pol : NULL, t ? t->maxtype : 0,
		       t ? out->tb : NULL, &out->unknown_attrs, &err);
	if (!ret && out->type == JR_T_RECORD)
		ret = check_record_fields(out, &out->unknown_attrs, &err);
	if (ret)
		return fail(d, err ? err : "malformed payload");
	*consumed = JR_HDR_LEN + (size_t)plen;
	d->frames++;
	d->bytes += *consumed;
	d->unknown_attrs += out->unknown_attrs;
	if (!t)
		d->unknown_types++;
	return 0;
}

/* --- typed payloads ----------------------------------------------------------- */

int jr_hello_encode(struct jr_buf *b, const struct jr_hello *h)
{
	size_t idlen = strnlen(h->node_id, sizeof(h->node_id));

	if (!idlen || idlen > JR_NODE_ID_MAX)
		return -EINVAL;
	jr_frame_begin(b, JR_T_HELLO, h->last_seq);
	jr_put_u8(b, JR_HELLO_PROTO_MAJOR, h->proto_major);
	jr_put_u8(b, JR_HELLO_PROTO_MINOR, h->proto_minor);
	jr_put_bytes(b, JR_HELLO_NODE_ID, h->node_id, idlen);
	jr_put_u64(b, JR_HELLO_EPOCH, h->epoch);
	jr_put_u64(b, JR_HELLO_INSTANCE, h->instance);
	jr_put_u16(b, JR_HELLO_PRIORITY, h->priority);
	jr_put_u8(b, JR_HELLO_REDUNDANCY, h->redundancy);
	jr_put_u8(b, JR_HELLO_ROLE, h->role);
	jr_put_u8(b, JR_HELLO_STATE, h->state);
	jr_put_u64(b, JR_HELLO_LAST_SEQ, h->last_seq);
	jr_put_bytes(b, JR_HELLO_MAC, h->mac, sizeof(h->mac));
	if (h->fed_by)
		jr_put_u64(b, JR_HELLO_FED_BY, h->fed_by);
	if (h->has_nonce)
		jr_put_bytes(b, JR_HELLO_NONCE, h->nonce, sizeof(h->nonce));
	return jr_frame_end(b);
}

int jr_hello_decode(const struct jr_frame *f, struct jr_hello *h)
{
	const struct jr_attr *tb = f->tb;

	memset(h, 0, sizeof(*h));
	if (f->type != JR_T_HELLO || !tb[JR_HELLO_NODE_ID].data || !tb[JR_HELLO_MAC].data ||
	    tb[JR_HELLO_MAC].len != sizeof(h->mac))
		return -EBADMSG;
	if (jr_attr_strcpy(&tb[JR_HELLO_NODE_ID], h->node_id, sizeof(h->node_id)))
		return -EBADMSG;
	h->proto_major = jr_attr_u8(&tb[JR_HELLO_PROTO_MAJOR]);
	h->proto_minor = jr_attr_u8(&tb[JR_HELLO_PROTO_MINOR]);
	h->epoch = jr_attr_u64(&tb[JR_HELLO_EPOCH]);
	h->instance = jr_attr_u64(&tb[JR_HELLO_INSTANCE]);
	h->priority = jr_attr_u16(&tb[JR_HELLO_PRIORITY]);
	h->redundancy = jr_attr_u8(&tb[JR_HELLO_REDUNDANCY]);
	h->role = jr_attr_u8(&tb[JR_HELLO_ROLE]);
	h->state = jr_attr_u8(&tb[JR_HELLO_STATE]);
	h->last_seq = jr_attr_u64(&tb[JR_HELLO_LAST_SEQ]);
	memcpy(h->mac, tb[JR_HELLO_MAC].data, sizeof(h->mac));
	h->fed_by = jr_attr_u64(&tb[JR_HELLO_FED_BY]);
	if (tb[JR_HELLO_NONCE].data) {
		h->has_nonce = true;
		memcpy(h->nonce, tb[JR_HELLO_NONCE].data, sizeof(h->nonce));
	}
	if (h->redundancy > JR_RED_WARM || h->role > JR_ROLE_BACKUP || h->state > JR_STATE_ISOLATED)
		return -EBADMSG;
	return 0;
}

int jr_simple_encode(struct jr_buf *b, uint8_t type, uint64_t seq)
{
	jr_frame_begin(b, type, seq);
	return jr_frame_end(b);
}

int jr_snapshot_encode(struct jr_buf *b, uint8_t type, uint64_t seq, uint64_t objects)
{
	if (type != JR_T_SNAPSHOT_BEGIN && type != JR_T_SNAPSHOT_END)
		return -EINVAL;
	jr_frame_begin(b, type, seq);
	if (objects != UINT64_MAX)
		jr_put_u64(b, JR_SNAP_OBJECTS, objects);
	return jr_frame_end(b);
}

int jr_snapshot_decode(const struct jr_frame *f, uint64_t *objects)
{
	if (f->type != JR_T_SNAPSHOT_BEGIN && f->type != JR_T_SNAPSHOT_END)
		return -EBADMSG;
	*objects = f->tb[JR_SNAP_OBJECTS].data ? jr_attr_u64(&f->tb[JR_SNAP_OBJECTS]) : UINT64_MAX;
	return 0;
}

int jr_goodbye_encode(struct jr_buf *b, uint16_t code, const char *reason)
{
	size_t n = reason ? strlen(reason) : 0;

	jr_frame_begin(b, JR_T_GOODBYE, 0);
	jr_put_u16(b, JR_GOODBYE_CODE, code);
	/* A reason is advice for a log line: cut, never refused. */
	if (n)
		jr_put_bytes(b, JR_GOODBYE_REASON, reason, n > JR_REASON_MAX ? JR_REASON_MAX : n);
	return jr_frame_end(b);
}

int jr_goodbye_decode(const struct jr_frame *f, struct jr_goodbye *g)
{
	memset(g, 0, sizeof(*g));
	if (f->type != JR_T_GOODBYE || !f->tb[JR_GOODBYE_CODE].data)
		return -EBADMSG;
	g->code = jr_attr_u16(&f->tb[JR_GOODBYE_CODE]);
	if (f->tb[JR_GOODBYE_REASON].data &&
	    jr_attr_strcpy(&f->tb[JR_GOODBYE_REASON], g->reason, sizeof(g->reason)))
		return -EBADMSG;
	return 0;
}

int jr_record_begin(struct jr_buf *b, uint64_t seq, uint16_t kind, uint8_t op, const void *key,
		    size_t key_len)
{
	if (!kind || (op != JR_OP_UPSERT && op != JR_OP_DELETE) || !key_len || key_len > JR_KEY_MAX)
		return -EINVAL;
	if (jr_frame_begin(b, JR_T_RECORD, seq) && !b->in_frame)
		return b->err;
	jr_put_u16(b, JR_REC_KIND, kind);
	jr_put_u8(b, JR_REC_OP, op);
	jr_put_bytes(b, JR_REC_KEY, key, key_len);
	/* On failure nothing stays open, so a caller may just return. */
	if (jr_nest_begin(b, JR_REC_FIELDS))
		return jr_frame_end(b);
	return 0;
}

int jr_record_end(struct jr_buf *b)
{
	jr_nest_end(b);
	return jr_frame_end(b);
}

int jr_record_encode(struct jr_buf *b, const struct jr_record *r)
{
	if (!r->kind || (r->op != JR_OP_UPSERT && r->op != JR_OP_DELETE) || !r->key_len ||
	    r->key_len > JR_KEY_MAX)
		return -EINVAL;
	/* A failure below sticks in B and comes out of jr_frame_end(). */
	jr_frame_begin(b, JR_T_RECORD, r->seq);
	jr_put_u16(b, JR_REC_KIND, r->kind);
	jr_put_u8(b, JR_REC_OP, r->op);
	jr_put_bytes(b, JR_REC_KEY, r->key, r->key_len);
	if (r->has_fields)
		jr_put_bytes(b, JR_REC_FIELDS, r->fields, r->fields_len);
	return jr_frame_end(b);
}

int jr_record_decode(const struct jr_frame *f, struct jr_record *r)
{
	const struct jr_attr *tb = f->tb;

	memset(r, 0, sizeof(*r));
	if (f->type != JR_T_RECORD || !tb[JR_REC_KIND].data || !tb[JR_REC_OP].data ||
	    !tb[JR_REC_KEY].data)
		return -EBADMSG;
	r->seq = f->seq;
	r->kind = jr_attr_u16(&tb[JR_REC_KIND]);
	r->op = jr_attr_u8(&tb[JR_REC_OP]);
	r->key = tb[JR_REC_KEY].data;
	r->key_len = tb[JR_REC_KEY].len;
	r->has_fields = tb[JR_REC_FIELDS].data != NULL;
	r->fields = tb[JR_REC_FIELDS].data;
	r->fields_len = tb[JR_REC_FIELDS].len;
	if (!r->kind || (r->op != JR_OP_UPSERT && r->op != JR_OP_DELETE))
		return -EBADMSG;
	return 0;
}

/* --- registration bindings ------------------------------------------------------ */

int jr_reg_key(const char *user, const char *contact, uint8_t *key, size_t size)
{
	size_t u = strlen(user), c = strlen(contact);

	if (u + 1 + c > size || u + 1 + c > JR_KEY_MAX)
		return -ENAMETOOLONG;
	memcpy(key, user, u);
	key[u] = 0;
	memcpy(key + u + 1, contact, c);
	return (int)(u + 1 + c);
}

static void put_addr(struct jr_buf *b, uint8_t proto, const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;

		jr_nest_begin(b, JR_REG_SRC);
		jr_put_u8(b, JR_ADDR_PROTO, proto);
		jr_put_bytes(b, JR_ADDR_IP, &sin->sin_addr, 4);
		jr_put_u16(b, JR_ADDR_PORT, ntohs(sin->sin_port));
		jr_nest_end(b);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;

		jr_nest_begin(b, JR_REG_SRC);
		jr_put_u8(b, JR_ADDR_PROTO, proto);
		jr_put_bytes(b, JR_ADDR_IP, &sin6->sin6_addr, 16);
		jr_put_u16(b, JR_ADDR_PORT, ntohs(sin6->sin6_port));
		jr_nest_end(b);
	}
}

static int get_addr(const struct jr_attr *a, uint8_t *proto, struct sockaddr_storage *ss)
{
	struct jr_attr tb[JR_ADDR_COUNT];

	if (jr_parse(a->data, a->len, addr_policy, JR_ADDR_MAX, tb, NULL, NULL))
		return -EBADMSG;
	*proto = jr_attr_u8(&tb[JR_ADDR_PROTO]);
	if (*proto > JR_PROTO_TCP)
		return -EBADMSG;
	if (tb[JR_ADDR_IP].len == 4) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		sin->sin_family = AF_INET;
		memcpy(&sin->sin_addr, tb[JR_ADDR_IP].data, 4);
		sin->sin_port = htons(jr_attr_u16(&tb[JR_ADDR_PORT]));
	} else if (tb[JR_ADDR_IP].len == 16) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		sin6->sin6_family = AF_INET6;
		memcpy(&sin6->sin6_addr, tb[JR_ADDR_IP].data, 16);
		sin6->sin6_port = htons(jr_attr_u16(&tb[JR_ADDR_PORT]));
	} else {
		return -EBADMSG;
	}
	return 0;
}

int jr_reg_encode(struct jr_buf *b, uint64_t seq, uint8_t op, const struct jr_reg_binding *rb)
{
	size_t ul = strnlen(rb->user, sizeof(rb->user)),
	       cl = strnlen(rb->contact, sizeof(rb->contact));
	size_t il = strnlen(rb->call_id, sizeof(rb->call_id));
	uint8_t key[JR_REG_USER_MAX + 1 + JR_REG_CONTACT_MAX];
	int klen, ret;

	if (!ul || ul > JR_REG_USER_MAX || !cl || cl > JR_REG_CONTACT_MAX ||
	    il > JR_REG_CALLID_MAX || rb->q > 1000 || rb->src_proto > JR_PROTO_TCP)
		return -EINVAL;
	klen = jr_reg_key(rb->user, rb->contact, key, sizeof(key));
	if (klen < 0)
		return klen;
	ret = jr_record_begin(b, seq, JR_KIND_REGISTRATION, op, key, (size_t)klen);
	if (ret)
		return ret;
	jr_put_bytes(b, JR_REG_USER, rb->user, ul);
	jr_put_bytes(b, JR_REG_CONTACT, rb->contact, cl);
	if (op == JR_OP_UPSERT) {
		jr_put_u64(b, JR_REG_EXPIRES_MS, rb->expires_ms);
		jr_put_bytes(b, JR_REG_CALL_ID, rb->call_id, il);
		jr_put_u32(b, JR_REG_CSEQ, rb->cseq);
		jr_put_u16(b, JR_REG_Q, rb->q);
		put_addr(b, rb->src_proto, &rb->src);
	}
	return jr_record_end(b);
}

int jr_reg_decode(const struct jr_record *r, struct jr_reg_binding *rb)
{
	struct jr_attr tb[JR_REG_COUNT];
	uint8_t key[JR_REG_USER_MAX + 1 + JR_REG_CONTACT_MAX];
	int klen;

	memset(rb, 0, sizeof(*rb));
	if (r->kind != JR_KIND_REGISTRATION || !r->has_fields ||
	    jr_parse(r->fields, r->fields_len, reg_policy, JR_REG_MAX, tb, NULL, NULL))
		return -EBADMSG;
	if (jr_attr_strcpy(&tb[JR_REG_USER], rb->user, sizeof(rb->user)) ||
	    jr_attr_strcpy(&tb[JR_REG_CONTACT], rb->contact, sizeof(rb->contact)))
		return -EBADMSG;
	klen = jr_reg_key(rb->user, rb->contact, key, sizeof(key));
	if (klen < 0 || (uint32_t)klen != r->key_len || memcmp(key, r->key, r->key_len))
		return -EBADMSG;
	if (r->op == JR_OP_DELETE)
		return 0;
	if (!tb[JR_REG_EXPIRES_MS].data || !tb[JR_REG_CALL_ID].data || !tb[JR_REG_CSEQ].data ||
	    !tb[JR_REG_Q].data)
		return -EBADMSG;
	if (jr_attr_strcpy(&tb[JR_REG_CALL_ID], rb->call_id, sizeof(rb->call_id)))
		return -EBADMSG;
	rb->expires_ms = jr_attr_u64(&tb[JR_REG_EXPIRES_MS]);
	rb->cseq = jr_attr_u32(&tb[JR_REG_CSEQ]);
	rb->q = jr_attr_u16(&tb[JR_REG_Q]);
	if (rb->q > 1000)
		return -EBADMSG;
	if (tb[JR_REG_SRC].data && get_addr(&tb[JR_REG_SRC], &rb->src_proto, &rb->src))
		return -EBADMSG;
	return 0;
}
