/*
 * Row-streaming decoder API over libwebp 1.2.4's decoder (see ../README.md).
 *
 * libwebp's own DecodeInto (src/dec/webp_dec.c) with one change: the output buffer is a ring
 * of RING_ROWS rows instead of the whole image. Before each batch of rows libwebp writes
 * (VP8: our put hook around its CustomPut; VP8L: WebPRowsBefore/After, called from
 * ProcessRows by ../patches/0001-vp8l-row-hook.patch), the buffer's base pointer is moved so
 * that the batch's first row lands at the start of the ring; after it, the rows go to the
 * embedder through the one import, env.webp_rows. Everything else (fancy upsampling, the
 * rescaler, cropping) is libwebp's unchanged code path, so full-size output is what
 * WebPDecodeRGB(A) gives.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "src/dec/vp8_dec.h"
#include "src/dec/vp8i_dec.h"
#include "src/dec/vp8li_dec.h"
#include "src/dec/webpi_dec.h"
#include "src/webp/decode.h"

/* Rows libwebp writes in one batch: VP8 at most 16 + 8 (filter delay) + 1 (fancy upsampling),
 * VP8L at most 16; downscaling never makes more rows than go in (+1 pending). */
#define RING_ROWS 40
#define MAX_PAD 16

/* Our status codes above libwebp's VP8StatusCode (0 OK .. 7 NOT_ENOUGH_DATA). */
#define WEBP_ROWS_ABORTED 20  /* the embedder's callback returned 0 */
#define WEBP_ROWS_BAD_ARGS 21 /* sizes out of range (upscaling, crop outside the image) */
#define WEBP_ROWS_INTERNAL 22 /* a batch did not fit the ring or rows came out of order */

__attribute__((import_module("env"), import_name("webp_rows"))) extern int EmbedderRows(const uint8_t* rows, int y0, int count,
                                                                                      int stride);

static struct {
  WebPDecBuffer* output;
  uint8_t* ring;
  int stride;
  int bpp;
  int width; /* decoded width, without the padding */
  int pad_w;
  int next_row; /* rows delivered so far */
  int status;   /* 0, or why delivery stopped */
  int (*put)(const VP8Io* io);
} S;

static void Rebase(int y) {
  /* Row y of the (virtual) whole-image buffer is the ring's first row. The subtraction wraps
   * in 32-bit addresses; libwebp adds y * stride back. */
  S.output->u.RGBA.rgba = (uint8_t*)((uintptr_t)S.ring - (uintptr_t)y * (uintptr_t)S.stride);
}

static int Deliver(int y0, int count) {
  int r, i;
  if (count <= 0) return S.status == 0;
  if (count > RING_ROWS || y0 != S.next_row) {
    if (S.status == 0) S.status = WEBP_ROWS_INTERNAL;
    return 0;
  }
  S.next_row += count;
  if (S.status != 0) return 0;
  if (S.pad_w > 0) {
    for (r = 0; r < count; r++) {
      uint8_t* const row = S.ring + (size_t)r * S.stride;
      const uint8_t* const last = row + (size_t)(S.width - 1) * S.bpp;
      for (i = 0; i < S.pad_w; i++) memcpy(row + (size_t)(S.width + i) * S.bpp, last, S.bpp);
    }
  }
  if (!EmbedderRows(S.ring, y0, count, S.stride)) {
    S.status = WEBP_ROWS_ABORTED;
    return 0;
  }
  return 1;
}

/* Called by the patched VP8L ProcessRows around each batch it writes. */
void WebPRowsBefore(const WebPDecBuffer* output, int y) {
  if (output == S.output) Rebase(y);
}
int WebPRowsAfter(const WebPDecBuffer* output, int y0, int count) { return output == S.output ? Deliver(y0, count) : 1; }

/* VP8: around libwebp's CustomPut, which writes rows [last_y, last_y + n). */
static int RowsPut(const VP8Io* io) {
  WebPDecParams* const p = (WebPDecParams*)io->opaque;
  const int y0 = p->last_y;
  Rebase(y0);
  if (!S.put(io)) return 0;
  return Deliver(y0, p->last_y - y0);
}

__attribute__((export_name("webp_malloc"))) void* webp_malloc(size_t size) { return malloc(size); }
__attribute__((export_name("webp_free"))) void webp_free(void* p) { free(p); }

/*
 * Stored size and kind of a WebP: out[0] width, out[1] height, out[2] has alpha, out[3] 1 for
 * lossless (VP8L), out[4] animated. Returns a VP8StatusCode (0 OK).
 */
__attribute__((export_name("webp_info"))) int webp_info(const uint8_t* data, size_t size, int* out) {
  WebPBitstreamFeatures f;
  const VP8StatusCode status = WebPGetFeatures(data, size, &f);
  if (status != VP8_STATUS_OK) return status;
  out[0] = f.width;
  out[1] = f.height;
  out[2] = f.has_alpha;
  out[3] = f.format == 2;
  out[4] = f.has_animation;
  return 0;
}

/*
 * Decodes the still image in data[0, size) (an animation's first frame must be extracted into
 * a still file by the caller) and hands its rows, top to bottom, to env.webp_rows in batches.
 *
 *   crop_w, crop_h  decode only the top-left crop_w x crop_h of the image (0: whole width/height)
 *   out_w, out_h    scale that to out_w x out_h with libwebp's rescaler (0: no scaling);
 *                   downscaling only: 1 <= out <= crop on each side
 *   pad_w, pad_h    0..16 extra columns / rows, copies of the last column / row
 *   rgba            0: RGB, 3 bytes a pixel, the ALPH chunk is not decoded at all;
 *                   1: RGBA, non-premultiplied
 *
 * Rows are (out_w + pad_w) pixels wide; each call of env.webp_rows(ptr, y0, count, stride) gets
 * `count` rows from row y0, `stride` bytes apart; the pointer is valid during the call only.
 * Returns 0, a VP8StatusCode, or WEBP_ROWS_*.
 */
__attribute__((export_name("webp_decode_rows"))) int webp_decode_rows(const uint8_t* data, size_t size, int crop_w, int crop_h,
                                                                      int out_w, int out_h, int pad_w, int pad_h, int rgba) {
  VP8StatusCode status;
  WebPHeaderStructure headers;
  WebPDecoderOptions options;
  WebPDecParams params;
  WebPDecBuffer output;
  VP8Io io;
  int width, height, scaled_w, scaled_h, i;

  if (pad_w < 0 || pad_w > MAX_PAD || pad_h < 0 || pad_h > MAX_PAD || crop_w < 0 || crop_h < 0 || out_w < 0 || out_h < 0) {
    return WEBP_ROWS_BAD_ARGS;
  }
  memset(&S, 0, sizeof(S));
  memset(&options, 0, sizeof(options));
  WebPInitDecBuffer(&output);
  WebPResetDecParams(&params);
  params.output = &output;
  params.options = &options;

  headers.data = data;
  headers.data_size = size;
  headers.have_all_data = 1;
  status = WebPParseHeaders(&headers);
  if (status != VP8_STATUS_OK) return status;

  VP8InitIo(&io);
  io.data = headers.data + headers.offset;
  io.data_size = headers.data_size - headers.offset;
  WebPInitCustomIo(&params, &io);
  S.put = io.put;
  io.put = RowsPut;

  {
    VP8Decoder* dec = NULL;
    VP8LDecoder* ldec = NULL;
    int ok;
    if (!headers.is_lossless) {
      dec = VP8New();
      if (dec == NULL) return VP8_STATUS_OUT_OF_MEMORY;
      if (rgba) {
        dec->alpha_data_ = headers.alpha_data;
        dec->alpha_data_size_ = headers.alpha_data_size;
      }
      ok = VP8GetHeaders(dec, &io);
      status = ok ? VP8_STATUS_OK : dec->status_;
    } else {
      ldec = VP8LNew();
      if (ldec == NULL) return VP8_STATUS_OUT_OF_MEMORY;
      ok = VP8LDecodeHeader(ldec, &io);
      status = ok ? VP8_STATUS_OK : ldec->status_;
    }

    if (status == VP8_STATUS_OK) {
      width = io.width;
      height = io.height;
      if (crop_w == 0) crop_w = width;
      if (crop_h == 0) crop_h = height;
      scaled_w = out_w == 0 ? crop_w : out_w;
      scaled_h = out_h == 0 ? crop_h : out_h;
      if (crop_w > width || crop_h > height || scaled_w > crop_w || scaled_h > crop_h) {
        status = (VP8StatusCode)WEBP_ROWS_BAD_ARGS;
      } else {
        if (crop_w != width || crop_h != height) {
          options.use_cropping = 1;
          options.crop_width = crop_w;
          options.crop_height = crop_h;
        }
        if (scaled_w != crop_w || scaled_h != crop_h) {
          options.use_scaling = 1;
          options.scaled_width = scaled_w;
          options.scaled_height = scaled_h;
        }
        S.bpp = rgba ? 4 : 3;
        S.width = scaled_w;
        S.pad_w = pad_w;
        S.stride = (scaled_w + pad_w) * S.bpp;
        S.output = &output;
        S.ring = (uint8_t*)malloc((size_t)S.stride * RING_ROWS);
        if (S.ring == NULL) status = VP8_STATUS_OUT_OF_MEMORY;
      }
    }

    if (status == VP8_STATUS_OK) {
      /* An external buffer as big as the whole output, by its declared size only: every write
       * goes through Rebase into the ring. */
      output.colorspace = rgba ? MODE_RGBA : MODE_RGB;
      output.is_external_memory = 1;
      output.u.RGBA.rgba = S.ring;
      output.u.RGBA.stride = S.stride;
      output.u.RGBA.size = (size_t)S.stride * (size_t)scaled_h;
      status = WebPAllocateDecBuffer(io.width, io.height, &options, &output);
      if (status == VP8_STATUS_OK) {
        if (dec != NULL) {
          dec->mt_method_ = VP8GetThreadMethod(&options, &headers, io.width, io.height);
          VP8InitDithering(&options, dec);
          if (!VP8Decode(dec, &io)) status = dec->status_;
        } else {
          if (!VP8LDecodeImage(ldec)) status = ldec->status_;
        }
      }
    }
    if (dec != NULL) VP8Delete(dec);
    if (ldec != NULL) VP8LDelete(ldec);
  }

  if (S.status != 0) status = (VP8StatusCode)S.status;
  if (status == VP8_STATUS_OK && S.next_row != scaled_h) status = (VP8StatusCode)WEBP_ROWS_INTERNAL;
  if (status == VP8_STATUS_OK && pad_h > 0) {
    /* The last row again, pad_h times: it is still in the ring, wherever the last batch put it;
     * copy it to the start and deliver it from there. */
    const uint8_t* last = S.output->u.RGBA.rgba + (size_t)(scaled_h - 1) * S.stride;
    if (last != S.ring) memmove(S.ring, last, S.stride);
    for (i = 1; i < pad_h; i++) memcpy(S.ring + (size_t)i * S.stride, S.ring, S.stride);
    if (!EmbedderRows(S.ring, scaled_h, pad_h, S.stride)) status = (VP8StatusCode)WEBP_ROWS_ABORTED;
  }
  free(S.ring);
  memset(&S, 0, sizeof(S));
  return status;
}
