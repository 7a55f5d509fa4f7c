/* Freestanding shim: libwebp's types.h only needs the fixed-width integer types. */
#ifndef WEBP_WASM_INTTYPES_H_
#define WEBP_WASM_INTTYPES_H_
#include <stdint.h>
#endif
