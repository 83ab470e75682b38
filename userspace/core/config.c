/* The configuration file (docs/ARCHITECTURE.md §5): INI through inih, made strict.
 *
 * inih is used for what it is good at (walking the file and calling us once
 * per key), but three of its habits clash with the contract, so we feed it
 * through our own reader:
 *  - it has no line numbers for the handler in Debian's build
 *    (INI_HANDLER_LINENO is 0 in the shipped ABI, so defining it here would
 *    make the library call a 4-argument handler with 5 arguments expected);
 *    the reader hands inih one line at a time and counts them, and inih calls
 *    the handler before it asks for the next line, so p->lineno is exact;
 *  - Debian's build strips inline "; comments" and joins indented lines into
 *    multi-line values; we switch both off through the runtime switches
 *    Debian's libinih exports, and, so that a changed switch can never make a
 *    value silently shorter, take the key and value from our own copy of the
 *    raw line rather than from what inih passes the handler;
 *  - it ignores text after "[section]" and never reports empty sections; the
 *    reader checks section headers itself.
 * This file is the reader; the schema is in config_keys.c, the syntax of
 * one value in config_values.c and [dn] in config_dn.c (config_int.h).
 * The switches are process-wide, so cfg_load() is not thread-safe; it runs
 * once at start-up. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/config.h"
#include "core/config_int.h"

#define CFG_MAX_FILE (1 << 20)

void __attribute__((format(printf, 5, 6)))
cfg_fail(struct parser *p, unsigned line, int sec, const char *name, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (p->rc)
		return;
	p->rc = -EINVAL;
	if (!p->err || !p->errlen)
		return;
	/* KEY is "[section] key", "[section]", or NAME as given when there is
	 * no known section to put in front of it. */
	if (sec >= 0 && name)
		n = snprintf(p->err, p->errlen, "%s:%u: [%s] %s: ", p->path, line,
			     cfg_sections[sec].name, name);
	else if (sec >= 0)
		n = snprintf(p->err, p->errlen, "%s:%u: [%s]: ", p->path, line,
			     cfg_sections[sec].name);
	else
		n = snprintf(p->err, p->errlen, "%s:%u: %s: ", p->path, line,
			     name ? name : "(no section)");
	if (n < 0 || (size_t)n >= p->errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
	va_end(ap);
}

void cfg_fail_errno(struct parser *p, int err)
{
	if (p->rc)
		return;
	p->rc = err;
	if (p->err && p->errlen)
		snprintf(p->err, p->errlen, "%s: %s", p->path, strerror(-err));
}

static char *lskip(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	return s;
}

static void rstrip(char *s)
{
	size_t n = strlen(s);

	while (n && isspace((unsigned char)s[n - 1]))
		s[--n] = '\0';
}

static bool inline_comment(const char *v)
{
	for (size_t i = 1; v[i]; i++) {
		if ((v[i] == '#' || v[i] == ';') && isspace((unsigned char)v[i - 1]))
			return true;
	}
	return false;
}

/* --- the line reader and the inih handler ---------------------------------------- */

static void section_header(struct parser *p, char *s)
{
	char *end = strchr(s, ']');
	int i;

	if (!end) {
		cfg_fail(p, p->lineno, SEC_NONE, s, "missing ']'");
		return;
	}
	if (end[1]) {
		end[1] = '\0';
		cfg_fail(p, p->lineno, SEC_NONE, s,
			 "text after ']' (comments must be on a line of their own)");
		return;
	}
	*end = '\0';
	for (i = 0; i < SEC_COUNT; i++) {
		if (!strcmp(s + 1, cfg_sections[i].name))
			break;
	}
	*end = ']';
	if (i == SEC_COUNT) {
		cfg_fail(p, p->lineno, SEC_NONE, s, "unknown section");
		return;
	}
	if (p->sec_line[i]) {
		cfg_fail(p, p->lineno, i, NULL, "duplicate section (first at line %u)",
			 p->sec_line[i]);
		return;
	}
	p->sec_line[i] = p->lineno;
	p->sec = i;
	if (cfg_sections[i].present)
		*(bool *)((char *)p->cfg + cfg_sections[i].present) = true;
}

/* Splits the raw line the way the contract reads it; inih then gets the same
 * text and only has to agree that it is a key line. */
static void classify(struct parser *p)
{
	char *s = lskip(p->raw), *sep;
	char sepc;

	rstrip(s);
	if (!*s || *s == '#' || *s == ';')
		return;
	if (*s == '[') {
		section_header(p, s);
		return;
	}
	sep = strpbrk(s, "=:");
	if (!sep) {
		cfg_fail(p, p->lineno, p->sec, NULL,
			 "syntax error (expected 'key = value', '[section]' or a comment)");
		return;
	}
	sepc = *sep;
	*sep = '\0';
	rstrip(s);
	if (!*s) {
		cfg_fail(p, p->lineno, p->sec, NULL, "syntax error (no key before '%c')", sepc);
		return;
	}
	if (p->sec == SEC_NONE) {
		cfg_fail(p, p->lineno, SEC_NONE, s, "key outside any section");
		return;
	}
	p->name = s;
	p->value = lskip(sep + 1);
	p->kv_pending = true;
}

static char *ini_read(char *str, int num, void *stream)
{
	struct parser *p = stream;
	const char *s, *nl;
	size_t len, max;

	if (p->rc)
		return NULL;
	if (p->kv_pending) {
		/* inih refused a line we took for a key: never expected */
		cfg_fail(p, p->lineno, p->sec, NULL, "syntax error");
		return NULL;
	}
	if (p->pos >= p->len)
		return NULL;
	s = p->buf + p->pos;
	nl = memchr(s, '\n', p->len - p->pos);
	len = nl ? (size_t)(nl - s) : p->len - p->pos;
	p->pos += len + (nl ? 1 : 0);
	p->lineno++;
	if (len && s[len - 1] == '\r')
		len--;
	if (p->lineno == 1 && len >= 3 && !memcmp(s, "\xef\xbb\xbf", 3)) {
		s += 3;
		len -= 3;
	}
	/* room for the newline and the NUL, as fgets() would leave them */
	max = num > 2 ? (size_t)num - 2 : 0;
	if (max > CFG_MAX_LINE)
		max = CFG_MAX_LINE;
	if (len > max) {
		cfg_fail(p, p->lineno, p->sec, NULL, "line too long (at most %zu characters)", max);
		return NULL;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if ((c < 0x20 && c != '\t') || c == 0x7f) {
			cfg_fail(p, p->lineno, p->sec, NULL, "control character 0x%02x in line", c);
			return NULL;
		}
	}
	memcpy(p->raw, s, len);
	p->raw[len] = '\0';
	memcpy(str, s, len);
	str[len] = '\n';
	str[len + 1] = '\0';
	classify(p);
	return p->rc ? NULL : str;
}

static int on_key(void *user, const char *section, const char *name, const char *value)
{
	struct parser *p = user;
	int k = -1;

	(void)section;
	(void)name;
	(void)value;
	if (p->rc)
		return 0;
	if (!p->kv_pending) {
		cfg_fail(p, p->lineno, p->sec, NULL, "syntax error");
		return 0;
	}
	p->kv_pending = false;
	if (p->sec != SEC_DN) {
		k = cfg_key_find(p->sec, p->name);
		if (k < 0) {
			cfg_fail(p, p->lineno, p->sec, p->name, "unknown key");
			return 0;
		}
		if (p->key_line[k]) {
			cfg_fail(p, p->lineno, p->sec, p->name, "duplicate key (first at line %u)",
				 p->key_line[k]);
			return 0;
		}
		p->key_line[k] = p->lineno;
	}
	if (!*p->value)
		cfg_fail(p, p->lineno, p->sec, p->name, "missing value");
	else if (inline_comment(p->value))
		cfg_fail(p, p->lineno, p->sec, p->name,
			 "inline comment in '%s' (comments must be on a line of their own)",
			 p->value);
	else if (p->sec == SEC_DN)
		cfg_dn_entry(p);
	else
		cfg_set_key(p, k);
	return p->rc == 0;
}

/* The runtime switches of Debian's libinih that decide how a line is read. */
struct ini_switches {
	bool inline_comments, multiline, no_value, use_stack, realloc;
	char *comment_prefixes;
	int max_line;
};

static void ini_switches_swap(struct ini_switches *s)
{
	struct ini_switches old = {
		ini_allow_inline_comments,
		ini_allow_multiline,
		ini_allow_no_value,
		ini_use_stack,
		ini_allow_realloc,
		ini_start_comment_prefixes,
		ini_max_line,
	};

	ini_allow_inline_comments = s->inline_comments;
	ini_allow_multiline = s->multiline;
	ini_allow_no_value = s->no_value;
	ini_use_stack = s->use_stack;
	ini_allow_realloc = s->realloc;
	ini_start_comment_prefixes = s->comment_prefixes;
	ini_max_line = s->max_line;
	*s = old;
}

static int parse(const char *buf, size_t len, const char *path, struct sipha_config *cfg, char *err,
		 size_t errlen)
{
	static char comment_prefixes[] = "#;";
	/* The contract's syntax.  The line buffer lives on the stack, sized by
	 * max_line (a VLA in Debian's build), which holds our longest line with
	 * its newline and NUL; the heap variant would re-read "partial" lines. */
	struct ini_switches sw = {
		.inline_comments = false,
		.multiline = false,
		.no_value = false,
		.use_stack = true,
		.realloc = false,
		.comment_prefixes = comment_prefixes,
		.max_line = CFG_MAX_LINE + 2,
	};
	struct parser *p;
	int rc;

	p = calloc(1, sizeof(*p));
	if (!p) {
		if (err && errlen)
			snprintf(err, errlen, "%s: %s", path, strerror(ENOMEM));
		return -ENOMEM;
	}
	*p = (struct parser){ .buf = buf,
			      .len = len,
			      .path = path,
			      .cfg = cfg,
			      .err = err,
			      .errlen = errlen,
			      .sec = SEC_NONE };
	cfg_set_defaults(cfg);
	cfg->path = strdup(path);
	if (!cfg->path) {
		cfg_fail_errno(p, -ENOMEM);
		goto out;
	}

	ini_switches_swap(&sw);
	rc = ini_parse_stream(ini_read, p, on_key, p);
	ini_switches_swap(&sw);

	if (rc == -2)
		cfg_fail_errno(p, -ENOMEM);
	else if (rc && !p->rc)
		cfg_fail(p, rc > 0 ? (unsigned)rc : p->lineno, p->sec, NULL, "syntax error");
	else if (p->kv_pending && !p->rc)
		cfg_fail(p, p->lineno, p->sec, NULL, "syntax error");
	if (!p->rc)
		cfg_finish(p);
out:
	rc = p->rc;
	free(p->dn_set.slot);
	free(p->dn_line);
	free(p);
	if (rc)
		cfg_free(cfg);
	return rc;
}

/* --- public ------------------------------------------------------------------------- */

int cfg_load_string(const char *text, const char *path, struct sipha_config *cfg, char *err,
		    size_t errlen)
{
	memset(cfg, 0, sizeof(*cfg));
	if (err && errlen)
		err[0] = '\0';
	if (!path)
		path = "(string)";
	if (!text) {
		if (err && errlen)
			snprintf(err, errlen, "%s: %s", path, strerror(EINVAL));
		return -EINVAL;
	}
	return parse(text, strlen(text), path, cfg, err, errlen);
}

int cfg_load(const char *path, struct sipha_config *cfg, char *err, size_t errlen)
{
	struct stat st;
	char *buf = NULL, *nbuf;
	size_t len = 0, cap = 0;
	ssize_t n;
	int fd, rc = 0;

	memset(cfg, 0, sizeof(*cfg));
	if (err && errlen)
		err[0] = '\0';
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		goto out;
	}
	if (fstat(fd, &st)) {
		rc = -errno;
		goto out;
	}
	if (S_ISDIR(st.st_mode)) {
		rc = -EISDIR;
		goto out;
	}
	if (S_ISREG(st.st_mode) && st.st_size > CFG_MAX_FILE) {
		rc = -EFBIG;
		goto out;
	}
	/* Read to EOF rather than trusting st_size: the file may be a pipe or
	 * change under us; a bound keeps a runaway source from eating memory. */
	for (;;) {
		if (len == cap) {
			if (cap > CFG_MAX_FILE) {
				rc = -EFBIG;
				goto out;
			}
			cap = cap ? cap * 2 : 4096;
			nbuf = realloc(buf, cap);
			if (!nbuf) {
				rc = -ENOMEM;
				goto out;
			}
			buf = nbuf;
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len > CFG_MAX_FILE) {
		rc = -EFBIG;
		goto out;
	}
	close(fd);
	fd = -1;
	rc = parse(buf, len, path, cfg, err, errlen);
	free(buf);
	return rc;
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	if (err && errlen)
		snprintf(err, errlen, "%s: %s", path, strerror(-rc));
	return rc;
}

void cfg_free(struct sipha_config *cfg)
{
	if (!cfg)
		return;
	free(cfg->path);
	free(cfg->node.id);
	free(cfg->node.state_dir);
	free(cfg->node.log_level);
	free(cfg->sip.domain);
	free(cfg->control.socket);
	free(cfg->cti.default_route);
	free(cfg->auth.realm);
	free(cfg->auth.users);
	free(cfg->ha.key_file);
	free(cfg->cti.tokens_file);
	for (size_t i = 0; i < cfg->n_dns; i++) {
		free(cfg->dns[i].dn);
		free(cfg->dns[i].uri);
	}
	free(cfg->dns);
	/* The key goes with the rest; memset may be optimised away, this not. */
	explicit_bzero(cfg->ha.key, sizeof(cfg->ha.key));
	memset(cfg, 0, sizeof(*cfg));
}
