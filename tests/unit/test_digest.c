/* Unit tests of userspace/sip/digest.c: the RFC examples reproduced
 * exactly, the users file (every form, every error with its "PATH:LINE:
 * reason"), stateless nonces (valid, stale, forged), the nonce-count table
 * (replays, eviction) and the challenge text. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "sip/digest.h"

/* --- helpers ---------------------------------------------------------------- */

static char tmpdir[64];
static char fpath[128];

static int setup_dir(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_digest.XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	snprintf(fpath, sizeof(fpath), "%s/users", tmpdir);
	return 0;
}

static int teardown_dir(void **state)
{
	char p[160];

	(void)state;
	unlink(fpath);
	snprintf(p, sizeof(p), "%s/link", tmpdir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/dir", tmpdir);
	rmdir(p);
	return rmdir(tmpdir);
}

/* Writes LEN bytes of TEXT to fpath with MODE. */
static void write_file_n(const char *text, size_t len, mode_t mode)
{
	int fd;

	unlink(fpath);
	fd = open(fpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

static void write_file(const char *text)
{
	write_file_n(text, strlen(text), 0600);
}

/* Loading fpath must fail with RC and ERR "fpath:LINE: REASON". */
static int expect_load_err(int rc, unsigned line, const char *reason)
{
	struct dg_users *u = (struct dg_users *)(uintptr_t)1;
	char err[512], want[512];
	int got;

	snprintf(want, sizeof(want), "%s:%u: %s", fpath, line, reason);
	got = dg_users_load(fpath, &u, err, sizeof(err));
	if (got != rc || strcmp(err, want) || u) {
		print_message("rc %d (want %d)\n  got:  %s\n  want: %s\n", got, rc, err, want);
		return 1;
	}
	return 0;
}

/* --- hashes ------------------------------------------------------------------ */

/* RFC 1321 §A.5, the test suite, through libosip2's MD5. */
static void test_md5_rfc1321(void **state)
{
	static const struct {
		const char *in, *md5;
	} v[] = {
		{ "", "d41d8cd98f00b204e9800998ecf8427e" },
		{ "a", "0cc175b9c0f1b6a831c399e269772661" },
		{ "abc", "900150983cd24fb0d6963f7d28e17f72" },
		{ "message digest", "f96b697d7cb7938d525a2f31aaf161d0" },
		{ "abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b" },
		{ "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
		  "d174ab98d277d9f5a5611c2c9f419d9f" },
		{ "1234567890123456789012345678901234567890"
		  "1234567890123456789012345678901234567890",
		  "57edf4a22be3c955ac49da2e2107b67a" },
	};
	char hex[65];

	(void)state;
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		memset(hex, 'x', sizeof(hex));
		dg_hash_hex(DG_MD5, v[i].in, strlen(v[i].in), hex);
		assert_string_equal(hex, v[i].md5);
	}
}

static void test_sha256(void **state)
{
	char hex[65];

	(void)state;
	dg_hash_hex(DG_SHA256, "abc", 3, hex);
	assert_string_equal(hex,
			    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	dg_hash_hex(DG_SHA256, "", 0, hex);
	assert_string_equal(hex,
			    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

/* --- the RFC examples ----------------------------------------------------------- */

/* RFC 2617 §3.5: the HA1 from a users file, the response with qop=auth; and
 * the same without qop (RFC 2069 compatibility, checked against Python's
 * hashlib). */
static void test_rfc2617_md5(void **state)
{
	struct dg_users *u;
	char err[256], ha1[65], resp[65];

	(void)state;
	write_file("Mufasa:Circle Of Life\n");
	assert_int_equal(dg_users_load(fpath, &u, err, sizeof(err)), 0);
	assert_true(dg_ha1(u, "Mufasa", "testrealm@host.com", DG_MD5, ha1));
	assert_string_equal(ha1, "939e7578ed9e3c518a452acee763bce9");
	dg_response(DG_MD5, ha1, "dcd98b7102dd2f0e8b11d0f600bfb0c093", "00000001", "0a4f113b",
		    "auth", "GET", "/dir/index.html", resp);
	assert_string_equal(resp, "6629fae49393a05397450978507c4ef1");
	assert_true(dg_response_ok(resp, "6629fae49393a05397450978507c4ef1"));
	assert_true(dg_response_ok(resp, "6629FAE49393A05397450978507C4EF1"));

	dg_response(DG_MD5, ha1, "dcd98b7102dd2f0e8b11d0f600bfb0c093", NULL, NULL, NULL, "GET",
		    "/dir/index.html", resp);
	assert_string_equal(resp, "670fd8c2df070c60b045671b8b24ff02");
	dg_users_free(u);
}

/* RFC 7616 §3.9.1: SHA-256 and MD5 responses of the same request. */
static void test_rfc7616(void **state)
{
	static const char nonce[] = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";
	static const char cnonce[] = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";
	struct dg_users *u;
	char err[256], ha1[65], resp[65];

	(void)state;
	write_file("Mufasa:Circle of Life\n");
	assert_int_equal(dg_users_load(fpath, &u, err, sizeof(err)), 0);

	assert_true(dg_ha1(u, "Mufasa", "http-auth@example.org", DG_SHA256, ha1));
	assert_string_equal(ha1,
			    "7987c64c30e25f1b74be53f966b49b90f2808aa92faf9a00262392d7b4794232");
	dg_response(DG_SHA256, ha1, nonce, "00000001", cnonce, "auth", "GET", "/dir/index.html",
		    resp);
	assert_string_equal(resp,
			    "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1");
	assert_true(dg_response_ok(
		resp, "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"));

	assert_true(dg_ha1(u, "Mufasa", "http-auth@example.org", DG_MD5, ha1));
	dg_response(DG_MD5, ha1, nonce, "00000001", cnonce, "auth", "GET", "/dir/index.html", resp);
	assert_string_equal(resp, "8ca523f5e9506fed4657c9700eebdbec");

	/* the same from a stored HA1 */
	write_file(
		"Mufasa:sha256:7987C64C30E25F1B74BE53F966B49B90F2808AA92FAF9A00262392D7B4794232\n");
	dg_users_free(u);
	assert_int_equal(dg_users_load(fpath, &u, err, sizeof(err)), 0);
	assert_true(dg_ha1(u, "Mufasa", "ignored for a stored HA1", DG_SHA256, ha1));
	dg_response(DG_SHA256, ha1, nonce, "00000001", cnonce, "auth", "GET", "/dir/index.html",
		    resp);
	assert_string_equal(resp,
			    "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1");
	dg_users_free(u);
}

static void test_response_edges(void **state)
{
	static const char ha1[] = "939e7578ed9e3c518a452acee763bce9";
	static const char good[] = "6629fae49393a05397450978507c4ef1";
	char resp[65];

	(void)state;
	/* qop is a token: case does not matter, but it is hashed as sent */
	dg_response(DG_MD5, ha1, "dcd98b7102dd2f0e8b11d0f600bfb0c093", "00000001", "0a4f113b",
		    "AUTH", "GET", "/dir/index.html", resp);
	assert_int_equal(strlen(resp), 32);
	assert_string_not_equal(resp, good);

	/* unsupported or incomplete: empty, which matches nothing */
	memset(resp, 'x', sizeof(resp));
	dg_response(DG_MD5, ha1, "n", "00000001", "c", "auth-int", "GET", "/", resp);
	assert_string_equal(resp, "");
	dg_response(DG_MD5, ha1, "n", "00000001", NULL, "auth", "GET", "/", resp);
	assert_string_equal(resp, "");
	dg_response(DG_MD5, ha1, "n", NULL, "c", "auth", "GET", "/", resp);
	assert_string_equal(resp, "");
	dg_response(DG_SHA256, ha1, "n", "00000001", "c", "auth", "GET", "/", resp);
	assert_string_equal(resp, ""); /* an MD5 HA1 for SHA-256 */
	dg_response(DG_MD5, NULL, "n", NULL, NULL, NULL, "GET", "/", resp);
	assert_string_equal(resp, "");
	assert_false(dg_response_ok(resp, ""));
	assert_false(dg_response_ok(resp, good));

	assert_true(dg_response_ok(good, good));
	assert_false(dg_response_ok(good, "6629fae49393a05397450978507c4ef0"));
	assert_false(dg_response_ok(good, "7629fae49393a05397450978507c4ef1"));
	assert_false(dg_response_ok(good, "6629fae49393a05397450978507c4ef"));
	assert_false(dg_response_ok(good, "6629fae49393a05397450978507c4ef11"));
	assert_false(dg_response_ok(good, ""));
	assert_false(dg_response_ok(good, NULL));
	assert_false(dg_response_ok(NULL, good));
	assert_false(dg_response_ok("", ""));
	/* a non-hex character must not fold onto a digit */
	assert_false(dg_response_ok(good, "6629fae49393a05397450978507c4ef\x11"));
	assert_true(dg_response_ok(good, "6629fae49393a05397450978507c4eF1"));
}

/* --- the users file -------------------------------------------------------------- */

static void test_users_forms(void **state)
{
	struct dg_users *u;
	char err[256], hex[65];

	(void)state;
	write_file("# sipha users\r\n"
		   "   # an indented comment\n"
		   "\n"
		   " \t \r\n"
		   "alice:secret\r\n"
		   "bob:md5:cc0d0acf1a9e9ad7c4daa9d8a6069bb8\n"
		   "carol:sha256:9ACBF78DB7EFFD5883A97E47C2AF57236F165EBBBD2451E87416E59832876E9A\n"
		   "dave:pa:ss word\n"
		   "#eve:nope\n"
		   "J\xc3\xa9r\xc3\xb4me:x"); /* no final newline, UTF-8 name */
	err[0] = 'x';
	assert_int_equal(dg_users_load(fpath, &u, err, sizeof(err)), 0);
	assert_string_equal(err, "");
	assert_int_equal(dg_users_count(u), 5);

	assert_true(dg_ha1(u, "alice", "sipha.test", DG_MD5, hex));
	assert_string_equal(hex, "6dab63e0a1d7655b4dd80bcc995103e6");
	assert_true(dg_ha1(u, "alice", "sipha.test", DG_SHA256, hex));
	assert_string_equal(hex,
			    "d24eb03202e7f7bcaf1ef16fc170641cc2ef0805d13ee8f8ac44d30a420b9107");

	assert_true(dg_ha1(u, "bob", "sipha.test", DG_MD5, hex));
	assert_string_equal(hex, "cc0d0acf1a9e9ad7c4daa9d8a6069bb8");
	memset(hex, 'x', sizeof(hex));
	assert_false(dg_ha1(u, "bob", "sipha.test", DG_SHA256, hex)); /* md5 only */
	assert_string_equal(hex, "");

	assert_true(dg_ha1(u, "carol", "sipha.test", DG_SHA256, hex));
	assert_string_equal(hex,
			    "9acbf78db7effd5883a97e47c2af57236f165ebbbd2451e87416e59832876e9a");
	assert_false(dg_ha1(u, "carol", "sipha.test", DG_MD5, hex)); /* sha256 only */

	assert_true(dg_ha1(u, "dave", "sipha.test", DG_MD5, hex)); /* ':' and ' ' kept */
	assert_string_equal(hex, "38fb04a2f8ea1a77cabd7f9da96f5a01");
	assert_true(dg_ha1(u, "J\xc3\xa9r\xc3\xb4me", "r", DG_MD5, hex));

	assert_false(dg_ha1(u, "eve", "sipha.test", DG_MD5, hex));
	assert_false(dg_ha1(u, "Alice", "sipha.test", DG_MD5, hex)); /* case-sensitive */
	assert_false(dg_ha1(u, "alice ", "sipha.test", DG_MD5, hex));
	assert_false(dg_ha1(u, "", "sipha.test", DG_MD5, hex));
	assert_false(dg_ha1(u, NULL, "sipha.test", DG_MD5, hex));
	assert_false(dg_ha1(u, "alice", "sipha.test", (enum dg_alg)7, hex));
	dg_users_free(u);

	/* an empty file, and one of comments, have no users */
	write_file("");
	assert_int_equal(dg_users_load(fpath, &u, err, sizeof(err)), 0);
	assert_int_equal(dg_users_count(u), 0);
	assert_false(dg_ha1(u, "alice", "r", DG_MD5, hex));
	dg_users_free(u);
	dg_users_free(NULL);
	assert_int_equal(dg_users_count(NULL), 0);
}

static void test_users_malformed(void **state)
{
	char user129[140], line1024[1100], line1025[1100], big[300];
	struct dg_users *u;
	char err[512];
	int bad = 0;

	(void)state;
#define BAD(text, line, reason)                                \
	do {                                                   \
		write_file(text);                              \
		bad += expect_load_err(-EINVAL, line, reason); \
	} while (0)
	BAD("alice\n", 1, "no ':' after the user name");
	BAD("# x\n\nalice:x\nbob\n", 4, "no ':' after the user name");
	BAD(":pw\n", 1, "empty user name");
	BAD("al ice:pw\n", 1, "user name has a space, a control character, '\"' or '\\'");
	BAD(" alice:pw\n", 1, "user name has a space, a control character, '\"' or '\\'");
	BAD("al\"ice:pw\n", 1, "user name has a space, a control character, '\"' or '\\'");
	BAD("al\\ice:pw\n", 1, "user name has a space, a control character, '\"' or '\\'");
	BAD("al\x01ice:pw\n", 1, "user name has a space, a control character, '\"' or '\\'");
	BAD("alice:\n", 1, "empty password");
	BAD("alice:\r\n", 1, "empty password");
	BAD("alice:pa\tss\n", 1, "password has a control character");
	BAD("alice:pass\r\r\n", 1, "password has a control character");
	BAD("alice:pa\x7fss\n", 1, "password has a control character");
	BAD("bob:md5:\n", 1, "md5 HA1 is not 32 hex digits");
	BAD("bob:md5:cc0d0acf1a9e9ad7c4daa9d8a6069bb\n", 1, "md5 HA1 is not 32 hex digits");
	BAD("bob:md5:cc0d0acf1a9e9ad7c4daa9d8a6069bb8a\n", 1, "md5 HA1 is not 32 hex digits");
	BAD("bob:md5:gc0d0acf1a9e9ad7c4daa9d8a6069bb8\n", 1, "md5 HA1 is not 32 hex digits");
	BAD("bob:md5:cc0d0acf1a9e9ad7c4daa9d8a6069bb8 \n", 1, "md5 HA1 is not 32 hex digits");
	BAD("carol:md5:9acbf78db7effd5883a97e47c2af57236f165ebbbd2451e87416e59832876e9a\n", 1,
	    "md5 HA1 is not 32 hex digits");
	BAD("carol:sha256:cc0d0acf1a9e9ad7c4daa9d8a6069bb8\n", 1,
	    "sha256 HA1 is not 64 hex digits");
	BAD("carol:sha256:9acbf78db7effd5883a97e47c2af57236f165ebbbd2451e87416e59832876e9\n", 1,
	    "sha256 HA1 is not 64 hex digits");
	BAD("carol:sha256:\n", 1, "sha256 HA1 is not 64 hex digits");
	BAD("a:x\nb:y\n\na:z\n", 4, "user 'a' given twice (first on line 1)");
	BAD("a:x\nA:y\nb:md5:cc0d0acf1a9e9ad7c4daa9d8a6069bb8\nb:z\n", 4,
	    "user 'b' given twice (first on line 3)");

	memset(user129, 'u', 129);
	memcpy(user129 + 129, ":pw\n", 5);
	BAD(user129, 1, "user name longer than 128 bytes");
	memcpy(user129 + 128, ":pw\n", 5); /* 128 is fine */
	write_file(user129);
	assert_int_equal(dg_users_load(fpath, &u, err, sizeof(err)), 0);
	dg_users_free(u);

	memcpy(line1024, "u:", 2);
	memset(line1024 + 2, 'p', 1022);
	memcpy(line1024 + 1024, "\r\n", 3);
	write_file(line1024); /* 1024 bytes and CR LF: fine */
	assert_int_equal(dg_users_load(fpath, &u, err, sizeof(err)), 0);
	dg_users_free(u);
	memcpy(line1025, "#\nu:", 4);
	memset(line1025 + 4, 'p', 1023);
	memcpy(line1025 + 1027, "\n", 2);
	BAD(line1025, 2, "longer than 1024 bytes");

	write_file_n("a:x\nb:y\0z\n", 10, 0600);
	bad += expect_load_err(-EINVAL, 2, "a NUL byte");

	/* the first error is the one reported, in file order */
	BAD("a:x\nbad\na:y\n", 2, "no ':' after the user name");

	/* a long duplicate name fits in the message */
	memset(big, 'v', 128);
	memcpy(big + 128, ":x\n", 3);
	memcpy(big + 131, big, 131);
	big[262] = '\0';
	{
		char want[300];

		snprintf(want, sizeof(want), "user '%.128s' given twice (first on line 1)", big);
		BAD(big, 2, want);
	}
#undef BAD
	/* a small ERR buffer is truncated, not overrun; NULL ERR is fine */
	write_file("alice\n");
	assert_int_equal(dg_users_load(fpath, &u, err, 8), -EINVAL);
	assert_int_equal(strlen(err), 7);
	assert_int_equal(dg_users_load(fpath, &u, NULL, 0), -EINVAL);
	assert_null(u);
	assert_int_equal(bad, 0);
}

static void test_users_file(void **state)
{
	char p[160], reason[128];
	struct dg_users *u;
	char err[512];
	int bad = 0;

	(void)state;
	write_file_n("alice:x\n", 8, 0644);
	bad += expect_load_err(-EACCES, 0, "open to group or others (mode 0644): chmod 600 it");
	write_file_n("alice:x\n", 8, 0640);
	bad += expect_load_err(-EACCES, 0, "open to group or others (mode 0640): chmod 600 it");
	write_file_n("alice:x\n", 8, 0604);
	bad += expect_load_err(-EACCES, 0, "open to group or others (mode 0604): chmod 600 it");
	write_file_n("alice:x\n", 8, 0601);
	bad += expect_load_err(-EACCES, 0, "open to group or others (mode 0601): chmod 600 it");
	write_file_n("alice:x\n", 8, 0400); /* stricter is fine */
	assert_int_equal(dg_users_load(fpath, &u, err, sizeof(err)), 0);
	assert_int_equal(dg_users_count(u), 1);
	dg_users_free(u);

	unlink(fpath);
	snprintf(reason, sizeof(reason), "%s", strerror(ENOENT));
	bad += expect_load_err(-ENOENT, 0, reason);

	/* a symbolic link, a directory */
	write_file("alice:x\n");
	snprintf(p, sizeof(p), "%s/link", tmpdir);
	assert_int_equal(symlink(fpath, p), 0);
	{
		char want[300];

		snprintf(want, sizeof(want),
			 "%s:0: a symbolic link (refused: name the file itself)", p);
		u = NULL;
		assert_int_equal(dg_users_load(p, &u, err, sizeof(err)), -EINVAL);
		assert_string_equal(err, want);
		assert_null(u);
	}
	snprintf(p, sizeof(p), "%s/dir", tmpdir);
	assert_int_equal(mkdir(p, 0700), 0);
	{
		char want[300];

		snprintf(want, sizeof(want), "%s:0: not a regular file", p);
		assert_int_equal(dg_users_load(p, &u, err, sizeof(err)), -EINVAL);
		assert_string_equal(err, want);
	}
	assert_int_equal(bad, 0);
}

/* DG_USERS_MAX_LINES lines of users load; one line more is refused. */
static void test_users_many(void **state)
{
	const size_t max = DG_USERS_MAX_LINES;
	struct dg_users *u;
	char err[256], hex[65], name[32], *text, *p;

	(void)state;
	text = malloc(max * 20 + 16);
	assert_non_null(text);
	p = text;
	for (size_t i = 0; i < max; i++)
		p += sprintf(p, "u%zu:p%zu\n", i, i);
	write_file_n(text, (size_t)(p - text), 0600);
	assert_int_equal(dg_users_load(fpath, &u, err, sizeof(err)), 0);
	assert_int_equal(dg_users_count(u), max);
	for (size_t i = 0; i < max; i += 99991) {
		char want[65], pre[64];

		snprintf(name, sizeof(name), "u%zu", i);
		assert_true(dg_ha1(u, name, "r", DG_MD5, hex));
		snprintf(pre, sizeof(pre), "u%zu:r:p%zu", i, i);
		dg_hash_hex(DG_MD5, pre, strlen(pre), want);
		assert_string_equal(hex, want);
	}
	assert_false(dg_ha1(u, "u1000000", "r", DG_MD5, hex));
	dg_users_free(u);

	/* one line more, even a comment, is too many */
	memcpy(p, "#\n", 3);
	write_file_n(text, (size_t)(p - text) + 2, 0600);
	assert_int_equal(expect_load_err(-EFBIG, 0, "over 1000000 lines"), 0);
	free(text);
}

/* --- nonces ------------------------------------------------------------------------ */

static const uint8_t secret[32] = "0123456789abcdef0123456789abcdef";
static const uint8_t other[32] = "0123456789abcdef0123456789abcdeF";

#define NOW 1700000000ull
#define LIFE 300u

static void test_nonce_valid(void **state)
{
	char a[DG_NONCE_LEN + 1], b[128];

	(void)state;
	dg_nonce_make(secret, NOW, a, sizeof(a));
	assert_int_equal(strlen(a), DG_NONCE_LEN);
	assert_true(DG_NONCE_LEN < 64);
	for (size_t i = 0; a[i]; i++)
		assert_non_null(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
				       "0123456789-_",
				       a[i]));
	dg_nonce_make(secret, NOW, b, sizeof(b));
	assert_string_not_equal(a, b); /* two clients never share one */

	assert_int_equal(dg_nonce_check(secret, a, NOW, LIFE), 0);
	assert_int_equal(dg_nonce_check(secret, b, NOW, LIFE), 0);
	assert_int_equal(dg_nonce_check(secret, a, NOW + LIFE, LIFE), 0); /* last second */
	assert_int_equal(dg_nonce_check(secret, a, NOW + LIFE + 1, LIFE), -ESTALE);
	assert_int_equal(dg_nonce_check(secret, a, NOW + 100000, LIFE), -ESTALE);
	assert_int_equal(dg_nonce_check(secret, a, NOW + 1, 0), -ESTALE);
	assert_int_equal(dg_nonce_check(secret, a, NOW, 0), 0);

	/* from the future: 60 s of clock skew between the nodes is fine */
	assert_int_equal(dg_nonce_check(secret, a, NOW - 60, LIFE), 0);
	assert_int_equal(dg_nonce_check(secret, a, NOW - 61, LIFE), -ESTALE);
	assert_int_equal(dg_nonce_check(secret, a, 0, LIFE), -ESTALE);

	/* the other node of the pair checks it with the same secret */
	assert_int_equal(dg_nonce_check(other, a, NOW, LIFE), -EINVAL);

	/* timestamps at the edges */
	dg_nonce_make(secret, 0, a, sizeof(a));
	assert_int_equal(dg_nonce_check(secret, a, 0, LIFE), 0);
	assert_int_equal(dg_nonce_check(secret, a, UINT64_MAX, LIFE), -ESTALE);
	dg_nonce_make(secret, UINT64_MAX, a, sizeof(a));
	assert_int_equal(dg_nonce_check(secret, a, UINT64_MAX, LIFE), 0);
	assert_int_equal(dg_nonce_check(secret, a, 0, LIFE), -ESTALE);

	/* too small a buffer: empty */
	memset(b, 'x', sizeof(b));
	dg_nonce_make(secret, NOW, b, DG_NONCE_LEN);
	assert_string_equal(b, "");
}

static void test_nonce_forged(void **state)
{
	static const char b64[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	char n[DG_NONCE_LEN + 1], f[DG_NONCE_LEN + 8];
	uint8_t bin[64];
	size_t binlen;

	(void)state;
	dg_nonce_make(secret, NOW, n, sizeof(n));

	/* every character changed to every other base64 character */
	for (size_t i = 0; i < DG_NONCE_LEN; i++) {
		for (size_t k = 0; k < 64; k++) {
			if (b64[k] == n[i])
				continue;
			memcpy(f, n, sizeof(n));
			f[i] = b64[k];
			if (dg_nonce_check(secret, f, NOW, LIFE) != -EINVAL)
				fail_msg("nonce with [%zu] = '%c' accepted", i, b64[k]);
		}
	}
	/* truncated, extended */
	for (size_t len = 0; len < DG_NONCE_LEN; len++) {
		memcpy(f, n, len);
		f[len] = '\0';
		assert_int_equal(dg_nonce_check(secret, f, NOW, LIFE), -EINVAL);
	}
	snprintf(f, sizeof(f), "%sA", n);
	assert_int_equal(dg_nonce_check(secret, f, NOW, LIFE), -EINVAL);
	snprintf(f, sizeof(f), "%s\"", n);
	assert_int_equal(dg_nonce_check(secret, f, NOW, LIFE), -EINVAL);
	snprintf(f, sizeof(f), " %.*s", DG_NONCE_LEN - 1, n + 1);
	assert_int_equal(dg_nonce_check(secret, f, NOW, LIFE), -EINVAL);

	/* wrong secret, garbage, empty, NULL */
	assert_int_equal(dg_nonce_check(other, n, NOW, LIFE), -EINVAL);
	assert_int_equal(dg_nonce_check(secret, "", NOW, LIFE), -EINVAL);
	assert_int_equal(dg_nonce_check(secret, NULL, NOW, LIFE), -EINVAL);
	assert_int_equal(dg_nonce_check(secret, "dcd98b7102dd2f0e8b11d0f600bfb0c093", NOW, LIFE),
			 -EINVAL);
	memset(f, '!', DG_NONCE_LEN);
	f[DG_NONCE_LEN] = '\0';
	assert_int_equal(dg_nonce_check(secret, f, NOW, LIFE), -EINVAL);
	memset(f, 'A', DG_NONCE_LEN);
	assert_int_equal(dg_nonce_check(secret, f, NOW, LIFE), -EINVAL);

	/* a well-formed nonce with another timestamp: the MAC covers it, and a
	 * forged nonce is never "stale" (that would invite a retry) */
	assert_int_equal(sodium_base642bin(bin, sizeof(bin), n, DG_NONCE_LEN, NULL, &binlen, NULL,
					   sodium_base64_VARIANT_URLSAFE_NO_PADDING),
			 0);
	assert_int_equal(binlen, 40);
	bin[7] ^= 1;
	sodium_bin2base64(f, sizeof(f), bin, binlen, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	assert_int_equal(dg_nonce_check(secret, f, NOW, LIFE), -EINVAL);
	bin[7] ^= 1;
	bin[0] ^= 0x80; /* far in the future */
	sodium_bin2base64(f, sizeof(f), bin, binlen, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	assert_int_equal(dg_nonce_check(secret, f, NOW, LIFE), -EINVAL);
	bin[0] ^= 0x80;
	sodium_bin2base64(f, sizeof(f), bin, binlen, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	assert_string_equal(f, n);
	assert_int_equal(dg_nonce_check(secret, f, NOW, LIFE), 0);
}

/* --- nonce-count ------------------------------------------------------------------- */

static void test_nc_basic(void **state)
{
	struct dg_nc_table *t;
	char n63[64], n64[65];

	(void)state;
	assert_int_equal(dg_nc_new(&t, 16), 0);
	assert_true(dg_nc_accept(t, "nonce-a", "00000001"));
	assert_false(dg_nc_accept(t, "nonce-a", "00000001")); /* replay */
	assert_true(dg_nc_accept(t, "nonce-a", "00000002"));
	assert_false(dg_nc_accept(t, "nonce-a", "00000001")); /* lower */
	assert_false(dg_nc_accept(t, "nonce-a", "00000002")); /* equal */
	assert_true(dg_nc_accept(t, "nonce-a", "00000010")); /* gaps are fine */
	assert_false(dg_nc_accept(t, "nonce-a", "0000000f"));
	assert_true(dg_nc_accept(t, "nonce-a", "0000001A")); /* upper-case hex */
	assert_false(dg_nc_accept(t, "nonce-a", "0000001a"));
	assert_true(dg_nc_accept(t, "nonce-a", "ffffffff"));
	assert_false(dg_nc_accept(t, "nonce-a", "FFFFFFFF"));
	/* nonces are apart */
	assert_true(dg_nc_accept(t, "nonce-b", "00000001"));
	assert_true(dg_nc_accept(t, "nonce-B", "00000001"));
	assert_true(dg_nc_accept(t, "nonce-c", "00000005")); /* first seen at 5 */
	assert_false(dg_nc_accept(t, "nonce-c", "00000004"));
	assert_int_equal(dg_nc_count(t), 4);

	/* malformed nc: refused, and nothing recorded */
	assert_false(dg_nc_accept(t, "nonce-d", "00000000"));
	assert_false(dg_nc_accept(t, "nonce-d", "1"));
	assert_false(dg_nc_accept(t, "nonce-d", "0000001"));
	assert_false(dg_nc_accept(t, "nonce-d", "000000001"));
	assert_false(dg_nc_accept(t, "nonce-d", "0000000g"));
	assert_false(dg_nc_accept(t, "nonce-d", " 0000001"));
	assert_false(dg_nc_accept(t, "nonce-d", "+0000001"));
	assert_false(dg_nc_accept(t, "nonce-d", "0x000001"));
	assert_false(dg_nc_accept(t, "nonce-d", ""));
	assert_false(dg_nc_accept(t, "nonce-d", NULL));
	assert_false(dg_nc_accept(t, "nonce-a", "1ffffffff"));
	assert_int_equal(dg_nc_count(t), 4);
	assert_true(dg_nc_accept(t, "nonce-d", "00000001"));

	/* malformed nonce */
	assert_false(dg_nc_accept(t, "", "00000001"));
	assert_false(dg_nc_accept(t, NULL, "00000001"));
	memset(n64, 'n', 64);
	n64[64] = '\0';
	assert_false(dg_nc_accept(t, n64, "00000001"));
	memset(n63, 'n', 63);
	n63[63] = '\0';
	assert_true(dg_nc_accept(t, n63, "00000001"));
	assert_false(dg_nc_accept(t, n63, "00000001"));
	assert_false(dg_nc_accept(NULL, n63, "00000002"));
	dg_nc_free(t);
	dg_nc_free(NULL);

	assert_int_equal(dg_nc_new(&t, 0), -EINVAL);
	assert_null(t);
	assert_int_equal(dg_nc_new(&t, ((size_t)1 << 31) + 1), -EINVAL);
}

static void test_nc_eviction(void **state)
{
	struct dg_nc_table *t;
	char name[32];

	(void)state;
	assert_int_equal(dg_nc_new(&t, 3), 0);
	assert_true(dg_nc_accept(t, "a", "00000001"));
	assert_true(dg_nc_accept(t, "b", "00000001"));
	assert_true(dg_nc_accept(t, "c", "00000001"));
	assert_true(dg_nc_accept(t, "a", "00000002")); /* use does not make it newer */
	assert_int_equal(dg_nc_count(t), 3);
	assert_true(dg_nc_accept(t, "d", "00000001")); /* evicts a, the oldest */
	assert_int_equal(dg_nc_count(t), 3);
	assert_false(dg_nc_accept(t, "b", "00000001")); /* still known */
	assert_false(dg_nc_accept(t, "c", "00000001"));
	assert_false(dg_nc_accept(t, "d", "00000001"));
	assert_true(dg_nc_accept(t, "a", "00000001")); /* forgotten; evicts b */
	assert_true(dg_nc_accept(t, "b", "00000001")); /* forgotten; evicts c */
	assert_false(dg_nc_accept(t, "d", "00000001"));
	assert_false(dg_nc_accept(t, "a", "00000001"));
	assert_int_equal(dg_nc_count(t), 3);
	dg_nc_free(t);

	/* a bigger table, many nonces: exactly the last MAX are remembered */
	assert_int_equal(dg_nc_new(&t, 1000), 0);
	for (int i = 0; i < 5000; i++) {
		snprintf(name, sizeof(name), "n%d", i);
		assert_true(dg_nc_accept(t, name, "00000001"));
	}
	assert_int_equal(dg_nc_count(t), 1000);
	for (int i = 4000; i < 5000; i++) {
		snprintf(name, sizeof(name), "n%d", i);
		assert_false(dg_nc_accept(t, name, "00000001"));
		assert_true(dg_nc_accept(t, name, "00000002"));
	}
	assert_int_equal(dg_nc_count(t), 1000);
	snprintf(name, sizeof(name), "n%d", 3999);
	assert_true(dg_nc_accept(t, name, "00000001")); /* forgotten */
	dg_nc_free(t);
}

/* Real nonces: once one is evicted, no nonce issued no later than it is
 * accepted again unless still remembered, so eviction opens no replay. */
static void test_nc_eviction_mark(void **state)
{
	char n100[DG_NONCE_LEN + 1], n200[DG_NONCE_LEN + 1], n300[DG_NONCE_LEN + 1];
	char m100[DG_NONCE_LEN + 1], n50[DG_NONCE_LEN + 1], n301[DG_NONCE_LEN + 1];
	struct dg_nc_table *t;

	(void)state;
	dg_nonce_make(secret, 100, n100, sizeof(n100));
	dg_nonce_make(secret, 100, m100, sizeof(m100));
	dg_nonce_make(secret, 200, n200, sizeof(n200));
	dg_nonce_make(secret, 300, n300, sizeof(n300));
	dg_nonce_make(secret, 50, n50, sizeof(n50));
	dg_nonce_make(secret, 301, n301, sizeof(n301));

	assert_int_equal(dg_nc_new(&t, 2), 0);
	assert_true(dg_nc_accept(t, n200, "00000001"));
	assert_true(dg_nc_accept(t, n50, "00000001")); /* before any eviction: fine */
	assert_true(dg_nc_accept(t, n300, "00000001")); /* evicts n200: mark 200 */
	assert_false(dg_nc_accept(t, n200, "00000001")); /* the replay stays refused */
	assert_false(dg_nc_accept(t, n200, "00000002"));
	assert_false(dg_nc_accept(t, n100, "00000001")); /* unknown, but not newer */
	assert_false(dg_nc_accept(t, m100, "00000001"));
	assert_false(dg_nc_accept(t, n50, "00000001")); /* known: a replay */
	assert_true(dg_nc_accept(t, n50, "00000002")); /* known: still served */
	assert_true(dg_nc_accept(t, n301, "00000001")); /* evicts n50: mark stays 200 */
	assert_false(dg_nc_accept(t, n50, "00000003"));
	assert_false(dg_nc_accept(t, n300, "00000001"));
	assert_true(dg_nc_accept(t, n300, "00000002"));
	/* other strings are not affected by the mark */
	assert_true(dg_nc_accept(t, "plain", "00000001")); /* evicts n300: mark 300 */
	assert_false(dg_nc_accept(t, n300, "00000003"));
	assert_true(dg_nc_accept(t, n301, "00000002"));
	dg_nc_free(t);
}

/* --- challenge and algorithm ------------------------------------------------------- */

static void test_challenge(void **state)
{
	static const char want[] = "Digest realm=\"sipha.test\", nonce=\"abc-_123\", "
				   "algorithm=MD5, qop=\"auth\"";
	char out[256];

	(void)state;
	assert_int_equal(dg_challenge(out, sizeof(out), "sipha.test", "abc-_123", DG_MD5, false),
			 0);
	assert_string_equal(out, want);
	assert_int_equal(dg_challenge(out, sizeof(out), "sipha.test", "abc-_123", DG_SHA256, true),
			 0);
	assert_string_equal(out, "Digest realm=\"sipha.test\", nonce=\"abc-_123\", "
				 "algorithm=SHA-256, qop=\"auth\", stale=true");
	assert_int_equal(dg_challenge(out, sizeof(out), "My Realm@example.org", "n", DG_MD5, true),
			 0);
	assert_string_equal(out, "Digest realm=\"My Realm@example.org\", nonce=\"n\", "
				 "algorithm=MD5, qop=\"auth\", stale=true");

	/* exactly big enough, one byte short */
	assert_int_equal(dg_challenge(out, sizeof(want), "sipha.test", "abc-_123", DG_MD5, false),
			 0);
	assert_string_equal(out, want);
	assert_int_equal(
		dg_challenge(out, sizeof(want) - 1, "sipha.test", "abc-_123", DG_MD5, false),
		-ENOSPC);
	assert_string_equal(out, "");
	assert_int_equal(dg_challenge(out, 0, "sipha.test", "abc-_123", DG_MD5, false), -ENOSPC);

	/* what cannot be put in a quoted-string */
	assert_int_equal(dg_challenge(out, sizeof(out), "a\"b", "n", DG_MD5, false), -EINVAL);
	assert_int_equal(dg_challenge(out, sizeof(out), "a\\b", "n", DG_MD5, false), -EINVAL);
	assert_int_equal(dg_challenge(out, sizeof(out), "a\r\nb", "n", DG_MD5, false), -EINVAL);
	assert_int_equal(dg_challenge(out, sizeof(out), "", "n", DG_MD5, false), -EINVAL);
	assert_int_equal(dg_challenge(out, sizeof(out), NULL, "n", DG_MD5, false), -EINVAL);
	assert_int_equal(dg_challenge(out, sizeof(out), "r", "n\"", DG_MD5, false), -EINVAL);
	assert_int_equal(dg_challenge(out, sizeof(out), "r", "", DG_MD5, false), -EINVAL);
	assert_int_equal(dg_challenge(out, sizeof(out), "r", "n", (enum dg_alg)2, false), -EINVAL);
	assert_string_equal(out, "");

	/* with a real nonce */
	{
		char n[DG_NONCE_LEN + 1], w[256];

		dg_nonce_make(secret, NOW, n, sizeof(n));
		assert_int_equal(dg_challenge(out, sizeof(out), "sipha.test", n, DG_MD5, false), 0);
		snprintf(w, sizeof(w),
			 "Digest realm=\"sipha.test\", nonce=\"%s\", algorithm=MD5, qop=\"auth\"",
			 n);
		assert_string_equal(out, w);
	}
}

static void test_alg(void **state)
{
	static const char *const bad[] = { "",	     "MD5-sess",    "md5-sess", "SHA-256-sess",
					   "SHA256", "SHA-512-256", "\"MD5\"",	" MD5",
					   "MD5 ",   "SHA-2560",    "MD" };
	enum dg_alg a;

	(void)state;
	a = DG_SHA256;
	assert_int_equal(dg_alg_parse(NULL, &a), 0);
	assert_int_equal(a, DG_MD5);
	a = DG_SHA256;
	assert_int_equal(dg_alg_parse("MD5", &a), 0);
	assert_int_equal(a, DG_MD5);
	a = DG_SHA256;
	assert_int_equal(dg_alg_parse("md5", &a), 0);
	assert_int_equal(a, DG_MD5);
	assert_int_equal(dg_alg_parse("SHA-256", &a), 0);
	assert_int_equal(a, DG_SHA256);
	a = DG_MD5;
	assert_int_equal(dg_alg_parse("sha-256", &a), 0);
	assert_int_equal(a, DG_SHA256);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		a = DG_SHA256;
		if (dg_alg_parse(bad[i], &a) != -EINVAL || a != DG_SHA256)
			fail_msg("'%s' accepted", bad[i]);
	}
	assert_string_equal(dg_alg_name(DG_MD5), "MD5");
	assert_string_equal(dg_alg_name(DG_SHA256), "SHA-256");
}

/* A whole exchange: challenge, client's answer, checks, replay. */
static void test_exchange(void **state)
{
	struct dg_nc_table *t;
	struct dg_users *u;
	char err[256], nonce[DG_NONCE_LEN + 1], ha1[65], client[65], expect[65];
	enum dg_alg alg;

	(void)state;
	write_file("1001:s3cret\n");
	assert_int_equal(dg_users_load(fpath, &u, err, sizeof(err)), 0);
	assert_int_equal(dg_nc_new(&t, 64), 0);
	dg_nonce_make(secret, NOW, nonce, sizeof(nonce));

	/* the client computes its response from the password */
	{
		char a1[128], h1[65];

		snprintf(a1, sizeof(a1), "1001:sipha.test:s3cret");
		dg_hash_hex(DG_SHA256, a1, strlen(a1), h1);
		dg_response(DG_SHA256, h1, nonce, "00000001", "xyz", "auth", "REGISTER",
			    "sip:sipha.test", client);
	}
	/* the other node of the pair checks it */
	assert_int_equal(dg_alg_parse("SHA-256", &alg), 0);
	assert_int_equal(dg_nonce_check(secret, nonce, NOW + 5, LIFE), 0);
	assert_true(dg_ha1(u, "1001", "sipha.test", alg, ha1));
	dg_response(alg, ha1, nonce, "00000001", "xyz", "auth", "REGISTER", "sip:sipha.test",
		    expect);
	assert_true(dg_response_ok(expect, client));
	assert_true(dg_nc_accept(t, nonce, "00000001"));
	/* replayed */
	assert_false(dg_nc_accept(t, nonce, "00000001"));
	/* another method or URI with the same answer */
	dg_response(alg, ha1, nonce, "00000001", "xyz", "auth", "INVITE", "sip:sipha.test", expect);
	assert_false(dg_response_ok(expect, client));
	/* the wrong realm */
	assert_true(dg_ha1(u, "1001", "other.test", alg, ha1));
	dg_response(alg, ha1, nonce, "00000001", "xyz", "auth", "REGISTER", "sip:sipha.test",
		    expect);
	assert_false(dg_response_ok(expect, client));
	dg_nc_free(t);
	dg_users_free(u);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_md5_rfc1321),	cmocka_unit_test(test_sha256),
		cmocka_unit_test(test_rfc2617_md5),	cmocka_unit_test(test_rfc7616),
		cmocka_unit_test(test_response_edges),	cmocka_unit_test(test_users_forms),
		cmocka_unit_test(test_users_malformed), cmocka_unit_test(test_users_file),
		cmocka_unit_test(test_users_many),	cmocka_unit_test(test_nonce_valid),
		cmocka_unit_test(test_nonce_forged),	cmocka_unit_test(test_nc_basic),
		cmocka_unit_test(test_nc_eviction),	cmocka_unit_test(test_nc_eviction_mark),
		cmocka_unit_test(test_challenge),	cmocka_unit_test(test_alg),
		cmocka_unit_test(test_exchange),
	};

	return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
