/* Freestanding shim: built with -DNDEBUG, assert() compiles to nothing. */
#ifndef WEBP_WASM_ASSERT_H_
#define WEBP_WASM_ASSERT_H_
#ifdef NDEBUG
#define assert(x) ((void)0)
#else
#define assert(x) ((x) ? (void)0 : __builtin_trap())
#endif
#endif
