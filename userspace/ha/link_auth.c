/* Authentication of the HA link with a pre-shared key ([ha] key_file),
 * HMAC-SHA-256 from libsodium (docs/HA-PROTOCOL.md §4.6).
 *
 * Each side's HELLO carries a fresh random nonce.  On the peer's HELLO a
 * side sends AUTH: HMAC(key, "sipha-ha-auth-v1" | own nonce | peer's nonce |
 * SHA-256 of its own HELLO's payload), which proves it holds the key, binds
 * what its HELLO claimed, and cannot be replayed on another connection (the
 * peer's nonce is in it).  Every frame after a side's AUTH is followed by a
 * 16-byte tag, HMAC(k, counter | frame) truncated, with k derived from both
 * nonces for that direction and the counter counting that side's frames on
 * the connection: a frame cannot be changed, dropped, reordered or replayed
 * without the connection being dropped.  Nothing a peer says is acted upon
 * before its AUTH is verified. */
#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "ha/link_int.h"

static const char auth_label[] = "sipha-ha-auth-v1";
static const char frames_label[] = "sipha-ha-frames-v1";
static const char watch_label[] = "sipha-ha-watch-v1";

int hal_auth_init(void)
{
	return sodium_init() < 0 ? -EIO : 0;
}

void hal_auth_nonce(uint8_t nonce[JR_NONCE_LEN])
{
	randombytes_buf(nonce, JR_NONCE_LEN);
}

void hal_auth_hash(const uint8_t *buf, size_t len, uint8_t out[32])
{
	crypto_hash_sha256(out, buf, len);
}

/* HMAC(KEY, LABEL | A | B | C), C may be NULL. */
static void mac3(const uint8_t key[32], const char *label, const uint8_t *a, const uint8_t *b,
		 const uint8_t *c, uint8_t out[32])
{
	crypto_auth_hmacsha256_state st;

	crypto_auth_hmacsha256_init(&st, key, 32);
	crypto_auth_hmacsha256_update(&st, (const uint8_t *)label, strlen(label));
	crypto_auth_hmacsha256_update(&st, a, JR_NONCE_LEN);
	crypto_auth_hmacsha256_update(&st, b, JR_NONCE_LEN);
	if (c)
		crypto_auth_hmacsha256_update(&st, c, 32);
	crypto_auth_hmacsha256_final(&st, out);
	sodium_memzero(&st, sizeof(st));
}

void hal_auth_mac(const struct hal_link *h, const uint8_t *n_sender, const uint8_t *n_receiver,
		  const uint8_t hello_hash[32], uint8_t out[32])
{
	mac3(h->key, auth_label, n_sender, n_receiver, hello_hash, out);
}

void hal_auth_watch_mac(const struct hal_link *h, const struct hal_conn *c, bool sender_is_us,
			uint8_t out[32])
{
	if (sender_is_us)
		mac3(h->key, watch_label, c->nonce, c->peer_nonce, NULL, out);
	else
		mac3(h->key, watch_label, c->peer_nonce, c->nonce, NULL, out);
}

bool hal_auth_check(const struct hal_link *h, const struct hal_conn *c, const uint8_t mac[32])
{
	uint8_t want[32];
	bool ok;

	hal_auth_mac(h, c->peer_nonce, c->nonce, c->peer_hello_hash, want);
	ok = crypto_verify_32(want, mac) == 0;
	sodium_memzero(want, sizeof(want));
	return ok;
}

void hal_auth_keys(const struct hal_link *h, struct hal_conn *c)
{
	mac3(h->key, frames_label, c->nonce, c->peer_nonce, NULL, c->k_tx);
	mac3(h->key, frames_label, c->peer_nonce, c->nonce, NULL, c->k_rx);
	c->tx_ctr = c->rx_ctr = 0;
}

static void tag(const uint8_t k[32], uint64_t ctr, const uint8_t *frame, size_t len,
		uint8_t out[JR_TAG_LEN])
{
	crypto_auth_hmacsha256_state st;
	uint8_t be[8], full[32];

	for (int i = 7; i >= 0; i--, ctr >>= 8)
		be[i] = (uint8_t)ctr;
	crypto_auth_hmacsha256_init(&st, k, 32);
	crypto_auth_hmacsha256_update(&st, be, sizeof(be));
	crypto_auth_hmacsha256_update(&st, frame, len);
	crypto_auth_hmacsha256_final(&st, full);
	memcpy(out, full, JR_TAG_LEN);
}

int hal_auth_seal(struct hal_conn *c, struct jr_buf *out, const uint8_t *buf, size_t len)
{
	size_t off = 0;

	jr_buf_reset(out);
	while (off + JR_HDR_LEN <= len) {
		size_t n = jr_frame_len(buf + off);
		uint8_t t[JR_TAG_LEN];
		size_t need;

		if (off + n > len)
			return -EINVAL; /* only whole frames are written */
		need = out->len + n + JR_TAG_LEN;
		if (need > out->cap) {
			size_t cap = out->cap ? out->cap : 4096;
			uint8_t *p;

			while (cap < need)
				cap *= 2;
			p = realloc(out->data, cap);
			if (!p)
				return -ENOMEM;
			out->data = p;
			out->cap = cap;
		}
		tag(c->k_tx, c->tx_ctr++, buf + off, n, t);
		memcpy(out->data + out->len, buf + off, n);
		memcpy(out->data + out->len + n, t, JR_TAG_LEN);
		out->len += n + JR_TAG_LEN;
		off += n;
	}
	return off == len ? 0 : -EINVAL;
}

bool hal_auth_open(struct hal_conn *c, const uint8_t *frame, size_t len,
		   const uint8_t t[JR_TAG_LEN])
{
	uint8_t want[JR_TAG_LEN];

	tag(c->k_rx, c->rx_ctr, frame, len, want);
	if (crypto_verify_16(want, t))
		return false;
	c->rx_ctr++;
	return true;
}
