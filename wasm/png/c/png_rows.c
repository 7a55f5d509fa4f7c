/*
 * The PNG decoder's hot loops: zlib's inflate pulls each scanline straight into one of two row
 * buffers in this module's memory, and the row is unfiltered there against the previous one.
 * The caller (../index.ts) hands input over in pieces (pr_input/pr_feed) and reads the finished
 * row in place. One image at a time; pr_begin() starts over whatever happened before (an
 * abandoned decode, a JS exception), so nothing leaks.
 *
 * zlib's own allocations (its ~7 KB state and the 32 KB window) come from a fixed arena that
 * pr_begin() empties. The two rows are the only thing that varies: they sit at the heap base,
 * and the memory grows when an image's rows need it (it never shrinks; the binding drops an
 * instance that grew large).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "zlib.h"

#define IN_CAP 65536u
#define SCRATCH_CAP 65536u
#define ARENA_CAP 49152u
#define PAGE 65536u

/* pr_row / pr_finish results besides zlib's negative errors. */
#define PR_OK 0          /* a row is ready (pr_row) / the stream is done with (pr_finish) */
#define PR_NEED_INPUT 1  /* feed more input; if there is none, the stream is cut here */
#define PR_ENDED 2       /* the zlib stream ended before this row was complete */
#define PR_BAD_FILTER 3  /* the row's filter type (its first byte) is not 0..4 */
#define PR_TOO_MUCH 4    /* pr_finish: more data after the last row than the slack allows */
#define PR_NEED_DICT 5   /* the stream wants a preset dictionary (never in a PNG) */

static unsigned char in_buf[IN_CAP];
static unsigned char scratch[SCRATCH_CAP]; /* pr_finish's sink for what follows the last row */
static unsigned char arena[ARENA_CAP] __attribute__((aligned(16)));
static size_t arena_used;
static z_stream strm;

extern unsigned char __heap_base;
static unsigned char* rows[2];
static unsigned row_cap;
static unsigned cur; /* index of the row being filled */
static unsigned filled;
static int ended;
static unsigned long extra;

static voidpf arena_alloc(voidpf opaque, uInt items, uInt size) {
  size_t n;
  (void)opaque;
  if (size != 0 && items > ARENA_CAP / size) return Z_NULL;
  n = ((size_t)items * size + 15u) & ~(size_t)15u;
  if (n > ARENA_CAP - arena_used) return Z_NULL;
  arena_used += n;
  return arena + arena_used - n;
}

static void arena_free(voidpf opaque, voidpf p) {
  (void)opaque;
  (void)p; /* the arena is emptied as a whole by pr_begin */
}

/* zutil.c's default allocators, named by inflateInit; never called (we pass ours). zutil.c
   itself is not built: it pulls in the gz* file functions' headers. */
voidpf zcalloc(voidpf opaque, unsigned items, unsigned size) {
  (void)opaque;
  (void)items;
  (void)size;
  return Z_NULL;
}
void zcfree(voidpf opaque, voidpf p) {
  (void)opaque;
  (void)p;
}

unsigned char* pr_input(void) { return in_buf; }
unsigned pr_input_cap(void) { return IN_CAP; }

/*
 * Starts an image whose scanlines are at most row_bytes long (filter byte included): a new
 * zlib-format stream (header and Adler-32 checked), both rows zeroed. Z_OK, Z_MEM_ERROR when
 * the memory cannot grow to the rows, or inflateInit's error.
 */
int pr_begin(unsigned row_bytes) {
  const uintptr_t base = ((uintptr_t)&__heap_base + 15u) & ~(uintptr_t)15u;
  const uint64_t end = (uint64_t)base + 2u * (uint64_t)row_bytes;
  const uint64_t have = (uint64_t)__builtin_wasm_memory_size(0) * PAGE;
  if (row_bytes == 0) return Z_STREAM_ERROR;
  if (end > have) {
    if (end > 0x80000000u) return Z_MEM_ERROR;
    if (__builtin_wasm_memory_grow(0, (size_t)((end - have + PAGE - 1) / PAGE)) == (size_t)-1) return Z_MEM_ERROR;
  }
  rows[0] = (unsigned char*)base;
  rows[1] = rows[0] + row_bytes;
  row_cap = row_bytes;
  memset(rows[0], 0, 2u * (size_t)row_bytes);
  cur = 0;
  filled = 0;
  ended = 0;
  extra = 0;
  memset(&strm, 0, sizeof strm);
  arena_used = 0;
  strm.zalloc = arena_alloc;
  strm.zfree = arena_free;
  return inflateInit(&strm);
}

/* in_buf[0, len) is new input; only once the previous input is used up. */
int pr_feed(unsigned len) {
  if (len > IN_CAP || strm.avail_in != 0) return Z_STREAM_ERROR;
  strm.next_in = in_buf;
  strm.avail_in = len;
  return Z_OK;
}

/* The start of an Adam7 pass: the row "above" its first row is zeros. */
void pr_pass(unsigned n) {
  if (n <= row_cap) memset(rows[cur ^ 1u], 0, n);
}

static inline int iabs(int x) { return x < 0 ? -x : x; }

/* PNG's five filters, undone in place: x[0] is the filter type, x[1..n] the bytes. */
static int unfilter(unsigned char* x, const unsigned char* above, unsigned n, unsigned bpp) {
  const unsigned end = n;
  unsigned i = 1;
  switch (x[0]) {
    case 0:
      return 1;
    case 1:
      for (i = bpp + 1; i < end; i++) x[i] = (unsigned char)(x[i] + x[i - bpp]);
      return 1;
    case 2:
      for (; i < end; i++) x[i] = (unsigned char)(x[i] + above[i]);
      return 1;
    case 3:
      for (; i <= bpp && i < end; i++) x[i] = (unsigned char)(x[i] + (above[i] >> 1));
      for (; i < end; i++) x[i] = (unsigned char)(x[i] + ((x[i - bpp] + above[i]) >> 1));
      return 1;
    case 4:
      for (; i <= bpp && i < end; i++) x[i] = (unsigned char)(x[i] + above[i]);
      for (; i < end; i++) {
        const int a = x[i - bpp], b = above[i], c = above[i - bpp];
        const int pa = iabs(b - c), pb = iabs(a - c), pc = iabs(a + b - c - c);
        x[i] = (unsigned char)(x[i] + ((pa <= pb && pa <= pc) ? a : (pb <= pc ? b : c)));
      }
      return 1;
    default:
      return 0;
  }
}

static int status_of(int st) {
  if (st == Z_STREAM_END) {
    ended = 1;
    return Z_OK;
  }
  if (st == Z_NEED_DICT) return PR_NEED_DICT;
  if (st == Z_OK || st == Z_BUF_ERROR) return Z_OK;
  return st;
}

/*
 * Inflates the next scanline of n bytes (filter byte included; n <= row_bytes) and unfilters
 * it: PR_OK (read it at pr_last()), PR_NEED_INPUT (zlib can make no more of what it was
 * given: call again after pr_feed; with no input left the data is cut), PR_ENDED,
 * PR_BAD_FILTER (its type is at pr_current()), PR_NEED_DICT or zlib's error.
 */
int pr_row(unsigned n, unsigned bpp) {
  unsigned char* const x = rows[cur];
  if (n == 0 || n > row_cap || bpp == 0 || bpp > 8) return Z_STREAM_ERROR;
  while (filled < n) {
    int st;
    const unsigned in_before = strm.avail_in;
    const unsigned out_before = filled;
    if (ended) return PR_ENDED;
    /* Called even without input: zlib may hold bits (or a match) that still make output. */
    strm.next_out = x + filled;
    strm.avail_out = n - filled;
    st = status_of(inflate(&strm, Z_NO_FLUSH));
    filled = n - strm.avail_out;
    if (st != Z_OK) return st;
    if (filled < n && !ended && in_before == 0 && filled == out_before) return PR_NEED_INPUT;
  }
  filled = 0;
  if (!unfilter(x, rows[cur ^ 1u], n, bpp)) return PR_BAD_FILTER;
  cur ^= 1u;
  return PR_OK;
}

/* The row pr_row just finished, and the one it is filling. */
unsigned char* pr_last(void) { return rows[cur ^ 1u]; }
unsigned char* pr_current(void) { return rows[cur]; }

/*
 * After the last row: inflates what is left (into a scratch buffer), refusing more than
 * `slack` bytes; the Adler-32 is checked if the stream ends with one. PR_OK once the stream
 * has ended, PR_NEED_INPUT (feed, or stop: a stream cut after the last row is accepted),
 * PR_TOO_MUCH, PR_NEED_DICT or zlib's error.
 */
int pr_finish(unsigned slack) {
  while (!ended) {
    int st;
    unsigned produced;
    const unsigned in_before = strm.avail_in;
    /* Called even without input: what zlib holds is decoded, so a fault in it is seen. */
    strm.next_out = scratch;
    strm.avail_out = SCRATCH_CAP;
    st = status_of(inflate(&strm, Z_NO_FLUSH));
    produced = SCRATCH_CAP - strm.avail_out;
    extra += produced;
    if (extra > slack) return PR_TOO_MUCH;
    if (st != Z_OK) return st;
    if (!ended && in_before == 0 && produced == 0) return PR_NEED_INPUT;
  }
  return PR_OK;
}

/* zlib's message for the last error (a NUL-terminated string in the linear memory), or 0. */
const char* pr_message(void) { return strm.msg; }
