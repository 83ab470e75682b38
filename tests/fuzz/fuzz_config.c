/* Fuzz target: the configuration parser (cfg_load_string(): inih, every
 * key's value parser, the [dn] table, the cross-checks).  A bad file must
 * give an error naming its line, never a crash or a leak: on success the
 * configuration is freed, on error the message must be a non-empty string
 * and nothing may need freeing (cfg_free is called anyway). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct sipha_config cfg;
	char err[512];
	char *text;
	int ret;

	fuzz_init();
	if (size > 1 << 16)
		return 0;
	text = malloc(size + 1);
	FUZZ_ASSERT(text != NULL);
	memcpy(text, data, size);
	text[size] = '\0';
	memset(&cfg, 0, sizeof(cfg));
	err[0] = '\0';
	ret = cfg_load_string(text, "fuzz.conf", &cfg, err, sizeof(err));
	FUZZ_ASSERT(ret <= 0);
	if (ret)
		FUZZ_ASSERT(err[0] != '\0' && memchr(err, '\0', sizeof(err)));
	cfg_free(&cfg);
	free(text);
	return 0;
}
