/* Freestanding shim: lossless.c includes it; the decoder uses no libm function. */
#ifndef WEBP_WASM_MATH_H_
#define WEBP_WASM_MATH_H_
#endif
