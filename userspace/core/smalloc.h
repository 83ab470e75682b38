/* A small-block allocator for libosip2 (osip_set_allocators).
 *
 * libosip2 builds every parsed message as a tree of small strings and
 * structures: a REGISTER costs a few hundred malloc/free pairs, and glibc's
 * malloc spent a quarter of siphad's instructions on them.  Blocks of up to
 * SMALLOC_MAX bytes come here from per-thread free lists of 16-byte size
 * classes, carved from chunks of one reserved address range; larger ones
 * go to malloc.
 *
 * Whose block is it: a pointer inside the range is ours, any other came from
 * malloc, so a string the application malloc'd and libosip2 frees (or the
 * other way round through osip_free) is still freed correctly.  Only free()
 * of a block libosip2 allocated is wrong, as it always was in principle.
 * Memory returns to the free lists, never to the system: the pool is as big
 * as the most messages ever alive at once.  Under AddressSanitizer a free
 * block is poisoned, so a use after free is still reported. */
#ifndef SIPHA_CORE_SMALLOC_H
#define SIPHA_CORE_SMALLOC_H

#include <stdbool.h>
#include <stddef.h>

#define SMALLOC_MAX 496 /* larger blocks go to malloc */

void *smalloc(size_t n);
void sfree(void *p);
void *srealloc(void *p, size_t n);
/* Is P a block of the pool? */
bool smalloc_owns(const void *p);

/* Blocks handed out and not freed, all threads (tests). */
long smalloc_live(void);
/* Bytes of those blocks, headers and rounding included. */
long smalloc_live_bytes(void);
/* Bytes carved from the reserved range so far: the pool's size. */
long smalloc_pool_bytes(void);

#endif
