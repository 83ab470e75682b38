/* Replays the seed corpus of every fuzz target (tests/fuzz/) under the
 * normal sanitizers, so `make test` catches a regression on any input that
 * once found a bug, with no libFuzzer at run time.  Each target is the
 * very file libFuzzer builds, included here with its entry point renamed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define LLVMFuzzerTestOneInput fuzz_sipmsg_one
#include "../fuzz/fuzz_sipmsg.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_frame_one
#include "../fuzz/fuzz_frame.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_srv_one
#include "../fuzz/fuzz_srv.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_journal_one
#include "../fuzz/fuzz_journal.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_config_one
#include "../fuzz/fuzz_config.c"
#undef LLVMFuzzerTestOneInput

typedef int (*fuzz_fn)(const uint8_t *data, size_t size);

static const char *corpus_root(void)
{
	const char *d = getenv("SIPHA_FUZZ_CORPUS");

	return d && *d ? d : "tests/fuzz/corpus";
}

/* Every file of corpus/NAME through FN, each in a buffer of exactly its
 * size so that ASan sees a read past the end; how many were replayed. */
static unsigned replay(const char *name, fuzz_fn fn)
{
	char dir[512], path[1024];
	struct dirent *e;
	unsigned n = 0;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/%s", corpus_root(), name);
	d = opendir(dir);
	if (!d)
		fail_msg("%s: cannot open the corpus directory", dir);
	while ((e = readdir(d))) {
		struct stat st;
		uint8_t *buf;
		FILE *f;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (stat(path, &st) || !S_ISREG(st.st_mode))
			continue;
		buf = malloc(st.st_size ? (size_t)st.st_size : 1);
		assert_non_null(buf);
		f = fopen(path, "rb");
		assert_non_null(f);
		assert_int_equal(fread(buf, 1, (size_t)st.st_size, f), (size_t)st.st_size);
		fclose(f);
		assert_int_equal(fn(buf, (size_t)st.st_size), 0);
		free(buf);
		n++;
	}
	closedir(d);
	return n;
}

static void test_corpus_sipmsg(void **state)
{
	(void)state;
	assert_true(replay("sipmsg", fuzz_sipmsg_one) >= 40);
}

static void test_corpus_frame(void **state)
{
	(void)state;
	assert_true(replay("frame", fuzz_frame_one) >= 10);
}

static void test_corpus_srv(void **state)
{
	(void)state;
	assert_true(replay("srv", fuzz_srv_one) >= 10);
}

static void test_corpus_journal(void **state)
{
	(void)state;
	assert_true(replay("journal", fuzz_journal_one) >= 5);
}

static void test_corpus_config(void **state)
{
	(void)state;
	assert_true(replay("config", fuzz_config_one) >= 10);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_corpus_sipmsg), cmocka_unit_test(test_corpus_frame),
		cmocka_unit_test(test_corpus_srv),    cmocka_unit_test(test_corpus_journal),
		cmocka_unit_test(test_corpus_config),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
