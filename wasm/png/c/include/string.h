/* Freestanding shim: memcpy / memmove / memset as the bulk memory instructions (../libc.c). */
#ifndef ZLIB_WASM_STRING_H_
#define ZLIB_WASM_STRING_H_
#include <stddef.h>
void* memcpy(void* restrict dst, const void* restrict src, size_t n);
void* memmove(void* dst, const void* src, size_t n);
void* memset(void* dst, int c, size_t n);
int memcmp(const void* a, const void* b, size_t n);
size_t strlen(const char* s);
#endif
