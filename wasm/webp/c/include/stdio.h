/* Freestanding shim: libwebp's decoder only includes it for debug printing, not compiled here. */
#ifndef WEBP_WASM_STDIO_H_
#define WEBP_WASM_STDIO_H_
#endif
