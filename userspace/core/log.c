#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/log.h"

static enum log_level cur_level = LOG_INFO;
static const char *cur_ident = "sipha";

void log_set_level(enum log_level lvl)
{
	cur_level = lvl;
}

enum log_level log_get_level(void)
{
	return cur_level;
}

void log_set_ident(const char *ident)
{
	cur_ident = ident;
}

int log_level_parse(const char *s, enum log_level *out)
{
	static const char *const names[] = { "err", "warn", "info", "debug" };

	for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (!strcmp(s, names[i])) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -EINVAL;
}

/* One line: the time, the ident, the level's letter, FMT, then SUFFIX. */
static __attribute__((format(printf, 3, 0))) void log_vmsg(enum log_level lvl, const char *suffix,
							   const char *fmt, va_list ap)
{
	static const char tag[] = { 'E', 'W', 'I', 'D' };
	struct timespec ts;
	char line[1024];
	int n;

	clock_gettime(CLOCK_REALTIME, &ts);
	n = snprintf(line, sizeof(line), "%lld.%03ld %s %c ", (long long)ts.tv_sec,
		     ts.tv_nsec / 1000000, cur_ident, tag[lvl]);
	vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	n = (int)strlen(line);
	if (suffix)
		snprintf(line + n, sizeof(line) - (size_t)n, "%s", suffix);
	/* One write per line, so lines from several threads never interleave. */
	n = (int)strlen(line);
	if (n && line[n - 1] != '\n' && n < (int)sizeof(line) - 1) {
		line[n++] = '\n';
		line[n] = '\0';
	}
	fputs(line, stderr);
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
	va_list ap;

	if (lvl > cur_level)
		return;
	va_start(ap, fmt);
	log_vmsg(lvl, NULL, fmt, ap);
	va_end(ap);
}

#define LOG_RL_MS 1000

bool log_warn_rl(struct log_rl *rl, uint64_t now_ms, const char *fmt, ...)
{
	char more[64] = "";
	va_list ap;

	if (now_ms < rl->next_ms) {
		rl->held++;
		return false;
	}
	if (rl->held)
		snprintf(more, sizeof(more), " (%llu more since the last warning)",
			 (unsigned long long)rl->held);
	rl->held = 0;
	rl->next_ms = now_ms + LOG_RL_MS;
	if (LOG_WARN > cur_level)
		return true;
	va_start(ap, fmt);
	log_vmsg(LOG_WARN, more, fmt, ap);
	va_end(ap);
	return true;
}
