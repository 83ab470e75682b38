/* See smalloc.h. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "core/smalloc.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define CLASS 16
#define NCLASS ((SMALLOC_MAX + 16) / CLASS) /* a block holds its 16-byte header too */
#define CHUNK (256u * 1024)
#define RESERVE (8ull << 30) /* address space only; pages are touched as used */

/* Before every block: its class, so that sfree needs no size. */
struct hdr {
	uint32_t cls;
	uint32_t magic;
	uint64_t pad; /* keeps the block 16-byte aligned */
};
#define MAGIC 0x5a11b10c

static char *base, *brk_end; /* the reserved range, and the end of what is carved */
static _Atomic(char *) next_chunk;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static atomic_long live, live_bytes;

static __thread struct hdr *freel[NCLASS + 1];
static __thread char *cur;
static __thread size_t left;

static void reserve(void)
{
	void *p = mmap(NULL, RESERVE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (p == MAP_FAILED)
		return; /* everything goes to malloc */
	base = p;
	brk_end = base + RESERVE;
	atomic_store(&next_chunk, base);
}

bool smalloc_owns(const void *p)
{
	return base && (const char *)p >= base && (const char *)p < brk_end;
}

static bool refill(void)
{
	char *c = atomic_fetch_add(&next_chunk, CHUNK);

	if (c + CHUNK > brk_end)
		return false;
	cur = c;
	left = CHUNK;
	return true;
}

void *smalloc(size_t n)
{
	/* at least room for the free list's link after the header */
	size_t cls = (n + sizeof(struct hdr) + CLASS - 1) / CLASS, sz;
	struct hdr *h;

	if (cls < 2)
		cls = 2;
	sz = cls * CLASS;
	pthread_once(&once, reserve);
	if (!base || cls > NCLASS)
		return malloc(n ? n : 1);
	h = freel[cls];
	if (h) {
		UNPOISON(h, sz);
		freel[cls] = *(struct hdr **)(h + 1);
	} else {
		if (left < sz && !refill())
			return malloc(n ? n : 1);
		h = (struct hdr *)cur;
		cur += sz;
		left -= sz;
	}
	h->cls = (uint32_t)cls;
	h->magic = MAGIC;
	atomic_fetch_add_explicit(&live, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&live_bytes, (long)sz, memory_order_relaxed);
	return h + 1;
}

void sfree(void *p)
{
	struct hdr *h;

	if (!p)
		return;
	if (!smalloc_owns(p)) {
		free(p);
		return;
	}
	h = (struct hdr *)p - 1;
	if (h->magic != MAGIC || !h->cls || h->cls > NCLASS)
		abort(); /* a double free or a stray pointer: stop here, not later */
	h->magic = 0;
	*(struct hdr **)(h + 1) = freel[h->cls];
	freel[h->cls] = h;
	atomic_fetch_sub_explicit(&live, 1, memory_order_relaxed);
	atomic_fetch_sub_explicit(&live_bytes, (long)h->cls * CLASS, memory_order_relaxed);
	POISON(h, (size_t)h->cls * CLASS);
}

void *srealloc(void *p, size_t n)
{
	struct hdr *h;
	size_t have;
	void *q;

	if (!p)
		return smalloc(n);
	if (!smalloc_owns(p))
		return realloc(p, n);
	h = (struct hdr *)p - 1;
	have = (size_t)h->cls * CLASS - sizeof(*h);
	if (n <= have)
		return p;
	q = smalloc(n);
	if (!q)
		return NULL;
	memcpy(q, p, have);
	sfree(p);
	return q;
}

long smalloc_live(void)
{
	return atomic_load(&live);
}

long smalloc_live_bytes(void)
{
	return atomic_load(&live_bytes);
}

long smalloc_pool_bytes(void)
{
	char *n = atomic_load(&next_chunk);

	return base && n ? (long)((n < brk_end ? n : brk_end) - base) : 0;
}
