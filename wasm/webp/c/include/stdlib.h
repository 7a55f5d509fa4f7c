/* Freestanding shim: the allocator of ../libc.c, abs. */
#ifndef WEBP_WASM_STDLIB_H_
#define WEBP_WASM_STDLIB_H_
#include <stddef.h>
void* malloc(size_t size);
void* calloc(size_t count, size_t size);
void free(void* ptr);
static inline int abs(int x) { return x < 0 ? -x : x; }
#endif
