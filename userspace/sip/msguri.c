/* URIs as they were written.  libosip2 decodes %XX escapes in place while
 * parsing a URI, so an escaped NUL (RFC 4475 escnull) ends its C string and
 * the rest of the user part is lost.  Where a URI is stored or used as a
 * key (registrar AoRs and contacts), sipha takes it from the raw octets. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "sip/msg.h"
#include "sip/msgraw.h"

/* The URI of one name-addr / addr-spec element VAL[0..N): inside <> when
 * there are brackets; otherwise up to the first ';' (what follows is header
 * parameters, RFC 3261 §20.10). */
static void element_uri(const char *v, size_t n, sipmsg_uri_fn fn, void *arg)
{
	const char *lt = NULL, *end;
	bool quoted = false;

	/* A '<' inside a quoted display name opens nothing. */
	for (size_t i = 0; i < n && !lt; i++) {
		if (quoted && v[i] == '\\' && i + 1 < n)
			i++;
		else if (v[i] == '"')
			quoted = !quoted;
		else if (!quoted && v[i] == '<')
			lt = v + i;
	}

	if (lt) {
		end = memchr(lt, '>', n - (size_t)(lt - v));
		if (end)
			fn(arg, lt + 1, (size_t)(end - lt - 1));
		return;
	}
	end = memchr(v, ';', n);
	if (!end)
		end = v + n;
	while (v < end && isspace((unsigned char)*v))
		v++;
	while (end > v && isspace((unsigned char)end[-1]))
		end--;
	if (end > v)
		fn(arg, v, (size_t)(end - v));
}

/* Splits a header value at the commas that separate elements: not inside
 * a quoted string nor inside <>. */
static void split_elements(const char *v, size_t n, sipmsg_uri_fn fn, void *arg)
{
	bool quoted = false, angled = false;
	size_t start = 0;

	for (size_t i = 0; i <= n; i++) {
		char c = i < n ? v[i] : ',';

		if (quoted) {
			if (c == '\\' && i + 1 < n)
				i++;
			else if (c == '"')
				quoted = false;
			continue;
		}
		if (c == '"')
			quoted = true;
		else if (c == '<')
			angled = true;
		else if (c == '>')
			angled = false;
		else if (c == ',' && !angled) {
			element_uri(v + start, i - start, fn, arg);
			start = i + 1;
		}
	}
}

int sipmsg_ix_uris(const struct sipmsg_ix *ix, bool contacts, sipmsg_uri_fn fn, void *arg)
{
	struct sipmsg_ixit it = { 0, 0 };
	struct sipmsg_hdr h;
	enum sipmsg_hid id;
	int ret;

	while ((ret = sipmsg_ix_next(ix, &it, &h, &id)) == 1) {
		if (contacts && id == SIPMSG_H_CONTACT) {
			split_elements(h.val, h.vlen, fn, arg);
		} else if (!contacts && id == SIPMSG_H_TO) {
			element_uri(h.val, h.vlen, fn, arg);
			return 0;
		}
	}
	return ret < 0 ? ret : 0;
}

int sipmsg_raw_uris(const char *buf, size_t len, bool contacts, sipmsg_uri_fn fn, void *arg)
{
	struct sipmsg_ix ix;

	if (sipmsg_index(buf, len, &ix))
		return -EBADMSG;
	return sipmsg_ix_uris(&ix, contacts, fn, arg);
}

static bool user_char(unsigned char c)
{
	/* unreserved and user-unreserved (RFC 3261 §25.1): these are the same
	 * escaped or not, so the canonical form writes them plainly. */
	return isalnum(c) || (c && strchr("-_.!~*'()&=+$,;?/", c));
}

static unsigned hexval(char h)
{
	return h <= '9' ? (unsigned)(h - '0') : (unsigned)((h | 0x20) - 'a' + 10);
}

int sipmsg_uri_user(const char *uri, size_t n, char *out, size_t outlen)
{
	const char *colon = memchr(uri, ':', n), *at, *end = uri + n;
	size_t o = 0;

	if (!colon || !outlen)
		return -EINVAL;
	at = memchr(colon, '@', (size_t)(end - colon));
	if (!at)
		return -ENOENT;
	for (const char *p = colon + 1; p < at; p++) {
		unsigned char c = (unsigned char)*p;
		char enc[4];

		if (c == '%' && p + 2 < at && isxdigit((unsigned char)p[1]) &&
		    isxdigit((unsigned char)p[2])) {
			/* Decoded by hand: the URI is not NUL-terminated (it
			 * points into the received octets), and sscanf() would
			 * look for the end of the whole string first. */
			c = (unsigned char)(hexval(p[1]) << 4 | hexval(p[2]));
			p += 2;
		}
		if (user_char(c)) {
			enc[0] = (char)c;
			enc[1] = '\0';
		} else {
			snprintf(enc, sizeof(enc), "%%%02X", c);
		}
		if (o + strlen(enc) + 1 > outlen)
			return -ENAMETOOLONG;
		memcpy(out + o, enc, strlen(enc));
		o += strlen(enc);
	}
	out[o] = '\0';
	return o ? 0 : -ENOENT;
}
