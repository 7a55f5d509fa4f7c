/* Freestanding shim: zutil.h includes it; nothing here is defined (zlib gets an arena). */
#ifndef ZLIB_WASM_STDLIB_H_
#define ZLIB_WASM_STDLIB_H_
#include <stddef.h>
void* malloc(size_t size);
void* calloc(size_t count, size_t size);
void free(void* ptr);
#endif
