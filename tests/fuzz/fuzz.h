/* Shared by the fuzz targets of tests/fuzz/: each is one file defining
 * LLVMFuzzerTestOneInput(), built two ways — with libFuzzer (`make fuzz`)
 * and, renamed, into tests/unit/test_fuzz_corpus.c, which replays the seed
 * corpus under the normal sanitizers in `make test`. */
#ifndef SIPHA_FUZZ_H
#define SIPHA_FUZZ_H

#include <stdio.h>
#include <stdlib.h>

#include "core/log.h"
#include "sip/msg.h"

/* An invariant of ours: a finding, reported like a sanitizer's. */
#define FUZZ_ASSERT(c)                                                                       \
	do {                                                                                 \
		if (!(c)) {                                                                  \
			fprintf(stderr, "%s:%d: FUZZ_ASSERT(%s)\n", __FILE__, __LINE__, #c); \
			abort();                                                             \
		}                                                                            \
	} while (0)

/* Once per process: libosip2's tables, and the daemon's logging quiet. */
static inline void fuzz_init(void)
{
	static int done;

	if (done)
		return;
	done = 1;
	sipmsg_init();
	log_set_level(LOG_ERR);
}

#endif
