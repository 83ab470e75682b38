/* The wire format of the HA link (docs/HA-PROTOCOL.md): frames, TLV
 * attributes, and the typed payloads built from them.
 *
 * A frame is a 16-byte header {magic, version, type, payload length, seq} in
 * network byte order and a payload that is a sequence of TLV attributes
 * {type u16, length u32, value}, unpadded.  Everything read from the peer
 * goes through jr_decode(), which validates the header and every attribute
 * against the frame type's policy before anyone looks at a value; the typed
 * decoders below then only copy out what was already checked.
 *
 * No memory is allocated on the decode path; decoded views point into the
 * caller's buffer and live as long as it does. */
#ifndef SIPHA_JOURNAL_H
#define SIPHA_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define JR_MAGIC 0x5348u /* "SH" */
#define JR_VERSION 1 /* major: a peer with another one is refused */
#define JR_VERSION_MINOR 2 /* 1: AUTH, HELLO nonce ([ha] key_file); 2: WATCH */
#define JR_HDR_LEN 16
#define JR_ATTR_HDR_LEN 6
#define JR_MAX_PAYLOAD (1u << 20)
#define JR_NEST_MAX 8 /* attribute nesting depth, encoder and decoder */

enum jr_type {
	JR_T_HELLO = 1,
	JR_T_HEARTBEAT = 2,
	JR_T_ACK = 3,
	JR_T_SNAPSHOT_BEGIN = 4,
	JR_T_SNAPSHOT_END = 5,
	JR_T_RECORD = 6,
	JR_T_GOODBYE = 7,
	JR_T_SELECT = 8,
	JR_T_AUTH = 9, /* the sender proves it holds the pre-shared key */
	JR_T_WATCH = 10, /* first and only frame of a death-watch connection */
	JR_T_COUNT
};

/* Attribute numbers, one namespace per frame type (0 is never valid). */
enum jr_hello_attr {
	JR_HELLO_PROTO_MAJOR = 1, /* u8 */
	JR_HELLO_PROTO_MINOR, /* u8 */
	JR_HELLO_NODE_ID, /* string 1..JR_NODE_ID_MAX */
	JR_HELLO_EPOCH, /* u64 */
	JR_HELLO_INSTANCE, /* u64, random per process start */
	JR_HELLO_PRIORITY, /* u16 */
	JR_HELLO_REDUNDANCY, /* u8 enum jr_redundancy */
	JR_HELLO_ROLE, /* u8 enum jr_role */
	JR_HELLO_STATE, /* u8 enum jr_state */
	JR_HELLO_LAST_SEQ, /* u64 */
	JR_HELLO_MAC, /* binary 6 */
	JR_HELLO_FED_BY, /* u64, optional: the instance whose stream last_seq counts */
	JR_HELLO_NONCE, /* binary 32, optional: this connection's challenge ([ha] key_file) */
	JR_HELLO_COUNT
};
#define JR_HELLO_MAX (JR_HELLO_COUNT - 1)

enum jr_auth_attr {
	JR_AUTH_MAC = 1, /* binary 32: HMAC-SHA-256, see docs/HA-PROTOCOL.md */
	JR_AUTH_COUNT
};
#define JR_AUTH_MAX (JR_AUTH_COUNT - 1)
#define JR_NONCE_LEN 32
#define JR_TAG_LEN 16 /* the truncated HMAC after each frame of an authenticated link */

enum jr_watch_attr {
	JR_WATCH_INSTANCE = 1, /* u64: the sender's instance, as in its HELLO */
	JR_WATCH_MAC, /* binary 32, on an authenticated link: see docs/HA-PROTOCOL.md */
	JR_WATCH_COUNT
};
#define JR_WATCH_MAX (JR_WATCH_COUNT - 1)

enum jr_goodbye_attr {
	JR_GOODBYE_CODE = 1, /* u16 enum jr_bye */
	JR_GOODBYE_REASON, /* string 0..JR_REASON_MAX */
	JR_GOODBYE_COUNT
};
#define JR_GOODBYE_MAX (JR_GOODBYE_COUNT - 1)

enum jr_snap_attr {
	JR_SNAP_OBJECTS = 1, /* u64, optional */
	JR_SNAP_COUNT
};
#define JR_SNAP_MAX (JR_SNAP_COUNT - 1)

enum jr_rec_attr {
	JR_REC_KIND = 1, /* u16 enum jr_kind */
	JR_REC_OP, /* u8 enum jr_op */
	JR_REC_KEY, /* binary 1..JR_KEY_MAX */
	JR_REC_FIELDS, /* nested, the kind's attributes */
	JR_REC_COUNT
};
#define JR_REC_MAX (JR_REC_COUNT - 1)

/* Fields of a JR_KIND_REGISTRATION record. */
enum jr_reg_attr {
	JR_REG_USER = 1, /* string 1..JR_REG_USER_MAX */
	JR_REG_CONTACT, /* string 1..JR_REG_CONTACT_MAX */
	JR_REG_EXPIRES_MS, /* u64: remaining lifetime when encoded */
	JR_REG_CALL_ID, /* string 0..JR_REG_CALLID_MAX */
	JR_REG_CSEQ, /* u32 */
	JR_REG_Q, /* u16, q-value x 1000, 0..1000 */
	JR_REG_SRC, /* nested enum jr_addr_attr: where the REGISTER came from */
	JR_REG_COUNT
};
#define JR_REG_MAX (JR_REG_COUNT - 1)

enum jr_addr_attr {
	JR_ADDR_PROTO = 1, /* u8 enum jr_proto */
	JR_ADDR_IP, /* binary 4 or 16 */
	JR_ADDR_PORT, /* u16 */
	JR_ADDR_COUNT
};
#define JR_ADDR_MAX (JR_ADDR_COUNT - 1)

#define JR_TB_SIZE 16 /* >= every frame type's attribute max + 1 */

enum jr_redundancy {
	JR_RED_HOT = 0,
	JR_RED_WARM = 1
};
enum jr_role {
	JR_ROLE_PRIMARY = 0,
	JR_ROLE_BACKUP = 1
};
enum jr_state {
	JR_STATE_STARTING = 0,
	JR_STATE_ACTIVE,
	JR_STATE_STANDBY,
	JR_STATE_ISOLATED
};
enum jr_bye {
	JR_BYE_SHUTDOWN = 1, /* the sender stops its HA link */
	JR_BYE_DEMOTING, /* the sender leaves the active role and will reconnect */
	JR_BYE_VERSION, /* refused: another protocol major version */
	JR_BYE_SAME_ID, /* refused: the same node id as the receiver */
	JR_BYE_DUPLICATE, /* another connection between the two nodes won */
	JR_BYE_PROTOCOL, /* malformed or unexpected frame */
	JR_BYE_TIMEOUT, /* handshake not completed in time, or the peer fell silent */
	JR_BYE_AUTH, /* refused: authentication failed or missing */
};
enum jr_kind {
	JR_KIND_CALL = 1,
	JR_KIND_REGISTRATION,
	JR_KIND_DEVICE,
	JR_KIND_AGENT,
	JR_KIND_SUBSCRIPTION,
	JR_KIND_CTI_SEQ,
};
enum jr_op {
	JR_OP_UPSERT = 1,
	JR_OP_DELETE = 2
};
enum jr_proto {
	JR_PROTO_UDP = 0,
	JR_PROTO_TCP = 1
};

#define JR_NODE_ID_MAX 64
#define JR_REASON_MAX 255
#define JR_KEY_MAX 4096
#define JR_REG_USER_MAX 128
#define JR_REG_CONTACT_MAX 2048
#define JR_REG_CALLID_MAX 256

/* --- attributes ----------------------------------------------------------- */

/* A view of one attribute; DATA is NULL when absent. */
struct jr_attr {
	const uint8_t *data;
	uint32_t len;
	uint16_t type;
};

enum jr_attr_kind {
	JR_A_UNUSED = 0, /* a number this table does not define: ignored, counted */
	JR_A_U8,
	JR_A_U16,
	JR_A_U32,
	JR_A_U64,
	JR_A_STRING, /* length-counted, no NUL byte inside, MIN_LEN..MAX_LEN */
	JR_A_BINARY, /* MIN_LEN..MAX_LEN */
	JR_A_NESTED, /* a TLV sequence, validated against NESTED when set */
	JR_A_FLAG, /* length 0 */
};

#define JR_PF_REQUIRED 0x1 /* the parse fails without it */
#define JR_PF_MULTI 0x2 /* may repeat; TB keeps the first, iterate for the rest */

struct jr_policy {
	uint8_t kind;
	uint8_t flags;
	uint32_t min_len, max_len; /* STRING, BINARY, NESTED; max 0 = no bound */
	const struct jr_policy *nested;
	uint16_t nested_max; /* < 64 */
};

/* Validates the TLV sequence BUF/LEN against POL[0..MAXTYPE] (MAXTYPE < 64)
 * and fills TB[0..MAXTYPE] (may be NULL to only validate).  Rejects with
 * -EBADMSG: a truncated header, a length past the container, type 0, a wrong
 * size for a fixed-width type, a string with a NUL, a length out of bounds, a
 * duplicate of a non-MULTI attribute, a missing REQUIRED one, and any of
 * these inside a nested attribute that has a policy.  Attributes the policy
 * does not define are skipped and added to *UNKNOWN (may be NULL); ERR (may
 * be NULL) gets a static description of the first problem. */
int jr_parse(const uint8_t *buf, size_t len, const struct jr_policy *pol, uint16_t maxtype,
	     struct jr_attr *tb, unsigned *unknown, const char **err);

/* Iterates BUF/LEN: 1 with the next attribute in *A, 0 at the end, -EBADMSG
 * on a malformed one.  *OFF starts at 0. */
int jr_attr_next(const uint8_t *buf, size_t len, size_t *off, struct jr_attr *a);

/* Value readers; each returns 0 when A's length is not the type's size. */
uint8_t jr_attr_u8(const struct jr_attr *a);
uint16_t jr_attr_u16(const struct jr_attr *a);
uint32_t jr_attr_u32(const struct jr_attr *a);
uint64_t jr_attr_u64(const struct jr_attr *a);
/* Copies a string attribute into BUF with a terminating NUL: 0, -ENOENT when
 * absent, -ENAMETOOLONG when it does not fit, -EBADMSG when it holds a NUL. */
int jr_attr_strcpy(const struct jr_attr *a, char *buf, size_t size);

/* --- encoder -------------------------------------------------------------- */

/* A growable output buffer holding zero or more complete frames and at most
 * one frame under construction.  The first error sticks: later puts do
 * nothing and jr_frame_end() reports it, dropping the partial frame, so
 * callers may check only there. */
struct jr_buf {
	uint8_t *data;
	size_t len, cap;
	int err;
	bool in_frame;
	size_t frame; /* offset of the open frame's header */
	unsigned depth;
	size_t nest[JR_NEST_MAX];
};

void jr_buf_init(struct jr_buf *b);
void jr_buf_free(struct jr_buf *b);
/* Forgets the content, keeps the memory. */
void jr_buf_reset(struct jr_buf *b);

int jr_frame_begin(struct jr_buf *b, uint8_t type, uint64_t seq);
/* Closes the open frame: 0, or the sticky error (-EMSGSIZE past
 * JR_MAX_PAYLOAD, -ENOMEM, -EINVAL for misuse) with the frame removed. */
int jr_frame_end(struct jr_buf *b);
int jr_put_u8(struct jr_buf *b, uint16_t type, uint8_t v);
int jr_put_u16(struct jr_buf *b, uint16_t type, uint16_t v);
int jr_put_u32(struct jr_buf *b, uint16_t type, uint32_t v);
int jr_put_u64(struct jr_buf *b, uint16_t type, uint64_t v);
int jr_put_str(struct jr_buf *b, uint16_t type, const char *s);
int jr_put_bytes(struct jr_buf *b, uint16_t type, const void *p, size_t n);
int jr_put_flag(struct jr_buf *b, uint16_t type);
int jr_nest_begin(struct jr_buf *b, uint16_t type);
int jr_nest_end(struct jr_buf *b);

/* --- frames and the decoder ----------------------------------------------- */

struct jr_frame {
	uint8_t version, type;
	uint32_t len; /* payload bytes */
	uint64_t seq;
	const uint8_t *payload;
	bool known; /* a type this version defines; TB is filled for those */
	unsigned unknown_attrs;
	struct jr_attr tb[JR_TB_SIZE];
};

struct jr_decoder {
	uint32_t max_payload;
	bool failed; /* sticky: a byte stream has no resynchronisation point */
	const char *err;
	uint8_t err_version; /* the version byte when ERR is about it */
	uint64_t frames, bytes, unknown_types, unknown_attrs;
};

/* MAX_PAYLOAD 0 or above JR_MAX_PAYLOAD means JR_MAX_PAYLOAD. */
void jr_decoder_init(struct jr_decoder *d, uint32_t max_payload);

/* Decodes the frame at the start of BUF/LEN.  0: *OUT is the frame (views
 * into BUF) and *CONSUMED its size.  -EAGAIN: the bytes so far are a valid
 * beginning, more are needed.  -EBADMSG: malformed (bad magic, another
 * version, type 0, payload over the limit, a payload that fails its type's
 * policy); d->err says why, and the decoder stays failed until re-init.
 * The header fields are checked as soon as their bytes are there, so junk is
 * refused without waiting for 16 bytes.  Never reads outside BUF/LEN. */
int jr_decode(struct jr_decoder *d, const uint8_t *buf, size_t len, size_t *consumed,
	      struct jr_frame *out);

const char *jr_type_name(uint8_t type);

/* The whole length (header and payload) of the frame whose header is at P
 * (JR_HDR_LEN bytes there), as the header says: nothing checked. */
static inline size_t jr_frame_len(const uint8_t *p)
{
	return JR_HDR_LEN + ((size_t)p[4] << 24 | (size_t)p[5] << 16 | (size_t)p[6] << 8 | p[7]);
}

/* --- typed payloads -------------------------------------------------------- */

struct jr_hello {
	uint8_t proto_major, proto_minor;
	char node_id[JR_NODE_ID_MAX + 1];
	uint64_t epoch;
	uint64_t instance;
	uint16_t priority;
	uint8_t redundancy, role, state;
	uint64_t last_seq;
	uint8_t mac[6];
	/* A standby in sync: the INSTANCE of the active node whose records it
	 * applied up to last_seq, so that one can resume its stream instead of
	 * sending a snapshot (0: none, a snapshot is needed). */
	uint64_t fed_by;
	/* The connection's challenge, when the sender has a key. */
	bool has_nonce;
	uint8_t nonce[JR_NONCE_LEN];
};

/* The encoders append one complete frame to B: 0 or -errno (-EINVAL for
 * values the decoder would refuse). */
int jr_hello_encode(struct jr_buf *b, const struct jr_hello *h);
/* From a frame jr_decode() returned: 0 or -EBADMSG (wrong type, a value out
 * of range). */
int jr_hello_decode(const struct jr_frame *f, struct jr_hello *h);

/* HEARTBEAT, ACK, SELECT: a header and no attributes. */
int jr_simple_encode(struct jr_buf *b, uint8_t type, uint64_t seq);

int jr_snapshot_encode(struct jr_buf *b, uint8_t type, uint64_t seq, uint64_t objects);
/* OBJECTS is UINT64_MAX when the frame does not say. */
int jr_snapshot_decode(const struct jr_frame *f, uint64_t *objects);

struct jr_goodbye {
	uint16_t code;
	char reason[JR_REASON_MAX + 1];
};
int jr_goodbye_encode(struct jr_buf *b, uint16_t code, const char *reason);
int jr_goodbye_decode(const struct jr_frame *f, struct jr_goodbye *g);

/* A journal record: one object's new state (upsert) or its removal.  KEY is
 * the object's identity within its kind; FIELDS the raw TLVs of the kind's
 * attributes (HAS_FIELDS false when the frame carries none). */
struct jr_record {
	uint64_t seq;
	uint16_t kind;
	uint8_t op;
	const uint8_t *key;
	uint32_t key_len;
	bool has_fields;
	const uint8_t *fields;
	uint32_t fields_len;
};

/* Opens a RECORD frame and its FIELDS nest: put the kind's attributes, then
 * jr_record_end().  On an error (-EINVAL for a kind 0, an unknown op, a key
 * of 0 or over JR_KEY_MAX bytes; -ENOMEM; -EINVAL when a frame is already
 * open) nothing is left open.  Errors of the puts that follow stick and come
 * out of jr_record_end().  A kind registered with a policy in journal.c has its
 * fields validated by the decoder too. */
int jr_record_begin(struct jr_buf *b, uint64_t seq, uint16_t kind, uint8_t op, const void *key,
		    size_t key_len);
int jr_record_end(struct jr_buf *b);
/* One RECORD frame from a view (its FIELDS copied as they are). */
int jr_record_encode(struct jr_buf *b, const struct jr_record *r);
int jr_record_decode(const struct jr_frame *f, struct jr_record *r);

/* A registration binding.  EXPIRES_MS is the lifetime left when encoded, not
 * an absolute time: the two nodes' clocks need not agree, and the error is
 * the transit time of the frame (see docs/HA-PROTOCOL.md).  SRC's family is
 * AF_UNSPEC when unknown; an IPv6 scope id is not carried. */
struct jr_reg_binding {
	char user[JR_REG_USER_MAX + 1];
	char contact[JR_REG_CONTACT_MAX + 1];
	char call_id[JR_REG_CALLID_MAX + 1];
	uint64_t expires_ms;
	uint32_t cseq;
	uint16_t q;
	uint8_t src_proto;
	struct sockaddr_storage src;
};

/* The record key of a binding: USER, a NUL, CONTACT.  Returns its length, or
 * -ENAMETOOLONG when it does not fit SIZE. */
int jr_reg_key(const char *user, const char *contact, uint8_t *key, size_t size);
/* A RECORD frame of kind REGISTRATION.  A DELETE carries only user and
 * contact. */
int jr_reg_encode(struct jr_buf *b, uint64_t seq, uint8_t op, const struct jr_reg_binding *rb);
/* 0, or -EBADMSG when R is not a well-formed registration (a missing field of
 * an upsert, a key that does not match user and contact). */
int jr_reg_decode(const struct jr_record *r, struct jr_reg_binding *rb);

#endif
