/*
 * The C library libwebp's decoder needs, and no more: malloc/calloc/free over the wasm linear
 * memory (growing it with memory.grow, never shrinking), memcpy/memmove/memset as the bulk
 * memory instructions, memcmp. Built with -fno-builtin so that no loop here turns back into a
 * call to itself.
 *
 * The allocator: 16-byte aligned blocks with a 16-byte header (size | used bit), carved from
 * the top of the heap; freed blocks go to an address-ordered free list, coalesced with their
 * neighbours, first fit, split when the rest is worth keeping; a free block that ends at the
 * top goes back to the top. libwebp makes a few dozen allocations a decode and frees them all,
 * so after each decode the heap is one free region the next decode reuses.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

extern unsigned char __heap_base;

#define ALIGN 16u
#define HEADER 16u
#define SPLIT_MIN 64u
#define PAGE 65536u

typedef struct Block {
  size_t size; /* bytes including the header; bit 0 set while in use */
  struct Block* next; /* free list link, only while free */
} Block;

static uintptr_t heap_top;
static Block* free_list;
static size_t bytes_in_use;
static size_t bytes_peak;
static uintptr_t heap_limit = 0x80000000u; /* linear memory the heap may reach */

static int reserve(uintptr_t end) {
  const uintptr_t have = (uintptr_t)__builtin_wasm_memory_size(0) * PAGE;
  if (end <= have) return 1;
  if (end > heap_limit) return 0;
  return __builtin_wasm_memory_grow(0, (end - have + PAGE - 1) / PAGE) != (size_t)-1;
}

void* malloc(size_t n) {
  Block** link = &free_list;
  Block* b;
  size_t need;
  if (n > 0x7fff0000u) return NULL;
  need = (n + HEADER + ALIGN - 1) & ~(size_t)(ALIGN - 1);
  for (b = free_list; b != NULL; link = &b->next, b = b->next) {
    if (b->size >= need) {
      if (b->size - need >= SPLIT_MIN) {
        Block* const rest = (Block*)((char*)b + need);
        rest->size = b->size - need;
        rest->next = b->next;
        *link = rest;
        b->size = need;
      } else {
        *link = b->next;
      }
      goto found;
    }
  }
  if (heap_top == 0) heap_top = ((uintptr_t)&__heap_base + ALIGN - 1) & ~(uintptr_t)(ALIGN - 1);
  if (heap_top + need < heap_top || !reserve(heap_top + need)) return NULL;
  b = (Block*)heap_top;
  b->size = need;
  heap_top += need;
found:
  bytes_in_use += b->size;
  if (bytes_in_use > bytes_peak) bytes_peak = bytes_in_use;
  b->size |= 1;
  return (char*)b + HEADER;
}

void free(void* p) {
  Block* b;
  Block* prev = NULL;
  Block* cur = free_list;
  if (p == NULL) return;
  b = (Block*)((char*)p - HEADER);
  if (!(b->size & 1)) __builtin_trap(); /* double free */
  b->size &= ~(size_t)1;
  bytes_in_use -= b->size;
  while (cur != NULL && cur < b) {
    prev = cur;
    cur = cur->next;
  }
  b->next = cur;
  if (cur != NULL && (char*)b + b->size == (char*)cur) {
    b->size += cur->size;
    b->next = cur->next;
  }
  if (prev != NULL) {
    prev->next = b;
    if ((char*)prev + prev->size == (char*)b) {
      prev->size += b->size;
      prev->next = b->next;
      b = prev;
    }
  } else {
    free_list = b;
  }
  if (b->next == NULL && (uintptr_t)b + b->size == heap_top) {
    /* The last block: back to the top of the heap. */
    Block** link = &free_list;
    while (*link != b) link = &(*link)->next;
    *link = NULL;
    heap_top = (uintptr_t)b;
  }
}

void* calloc(size_t count, size_t size) {
  void* p;
  if (size != 0 && count > 0x7fff0000u / size) return NULL;
  p = malloc(count * size);
  if (p != NULL) memset(p, 0, count * size);
  return p;
}

void* memcpy(void* restrict dst, const void* restrict src, size_t n) {
  __builtin_memcpy(dst, src, n);
  return dst;
}

void* memmove(void* dst, const void* src, size_t n) {
  __builtin_memmove(dst, src, n);
  return dst;
}

void* memset(void* dst, int c, size_t n) {
  __builtin_memset(dst, c, n);
  return dst;
}

int memcmp(const void* a, const void* b, size_t n) {
  const unsigned char* x = (const unsigned char*)a;
  const unsigned char* y = (const unsigned char*)b;
  for (; n != 0; n--, x++, y++) {
    if (*x != *y) return *x - *y;
  }
  return 0;
}

/* For tests and the binding: bytes in live blocks now, and the most there ever were. */
__attribute__((export_name("webp_heap_in_use"))) size_t webp_heap_in_use(void) { return bytes_in_use; }
__attribute__((export_name("webp_heap_peak"))) size_t webp_heap_peak(void) { return bytes_peak; }
__attribute__((export_name("webp_heap_reset_peak"))) void webp_heap_reset_peak(void) { bytes_peak = bytes_in_use; }
/* The heap never grows the linear memory past `bytes` (malloc returns NULL instead); 0: 2 GiB. */
__attribute__((export_name("webp_heap_limit"))) void webp_heap_limit(size_t bytes) {
  heap_limit = bytes == 0 || bytes > 0x80000000u ? 0x80000000u : bytes;
}
