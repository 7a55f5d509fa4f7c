/* Freestanding shim: zconf.h wants off_t (for the gz* file functions, which we do not build). */
#ifndef ZLIB_WASM_SYS_TYPES_H_
#define ZLIB_WASM_SYS_TYPES_H_
typedef long off_t;
#endif
