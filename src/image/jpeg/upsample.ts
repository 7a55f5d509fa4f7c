/**
 * jdsample.c's upsamplers, one output row at a time. Which one applies is libjpeg's rule
 * (jinit_upsampler): 2:1 across ("h2v1") and 2:1 both ways ("h2v2") are "fancy" (triangle
 * filter) when the component is more than 2 samples wide, 1:2 down ("h1v2") is always fancy,
 * and every other integral ratio replicates. Vertical neighbours are picked by the caller,
 * clamped to the component's real rows (jdmainct.c duplicates the first and last row).
 */

export const FULL = 0;
export const H2V1 = 1;
export const H2V2 = 2;
export const H1V2 = 3;
export const REPLICATE = 4;

export function upsampleMethod(hexp: number, vexp: number, width: number): number {
  if (hexp === 1 && vexp === 1) return FULL;
  if (hexp === 2 && vexp === 1 && width > 2) return H2V1;
  if (hexp === 1 && vexp === 2) return H1V2;
  if (hexp === 2 && vexp === 2 && width > 2) return H2V2;
  return REPLICATE;
}

/** h2v1_fancy_upsample over `w` (> 2) input samples: 2w outputs. */
export function h2v1(inp: Uint8Array, io: number, w: number, out: Uint8Array): void {
  let v = inp[io]!;
  out[0] = v;
  out[1] = (v * 3 + inp[io + 1]! + 2) >> 2;
  let o = 2;
  for (let i = 1; i < w - 1; i++, o += 2) {
    v = inp[io + i]! * 3;
    out[o] = (v + inp[io + i - 1]! + 1) >> 2;
    out[o + 1] = (v + inp[io + i + 1]! + 2) >> 2;
  }
  v = inp[io + w - 1]!;
  out[o] = (v * 3 + inp[io + w - 2]! + 1) >> 2;
  out[o + 1] = v;
}

/** h2v2_fancy_upsample for one output row: `near` is the nearest input row, `far` the other. */
export function h2v2(near: Uint8Array, no: number, far: Uint8Array, fo: number, w: number, out: Uint8Array): void {
  let last = near[no]! * 3 + far[fo]!;
  let cur = near[no + 1]! * 3 + far[fo + 1]!;
  out[0] = (last * 4 + 8) >> 4;
  out[1] = (last * 3 + cur + 7) >> 4;
  let o = 2;
  for (let i = 2; i < w; i++, o += 2) {
    const next = near[no + i]! * 3 + far[fo + i]!;
    out[o] = (cur * 3 + last + 8) >> 4;
    out[o + 1] = (cur * 3 + next + 7) >> 4;
    last = cur;
    cur = next;
  }
  out[o] = (cur * 3 + last + 8) >> 4;
  out[o + 1] = (cur * 4 + 7) >> 4;
}

/** h1v2_fancy_upsample: bias 1 when the far row is above, 2 when below. */
export function h1v2(near: Uint8Array, no: number, far: Uint8Array, fo: number, w: number, below: boolean, out: Uint8Array): void {
  const bias = below ? 2 : 1;
  for (let i = 0; i < w; i++) out[i] = (near[no + i]! * 3 + far[fo + i]! + bias) >> 2;
}

/** int_upsample / h2v1_upsample across: each sample `hexp` times, `n` outputs. */
export function replicate(inp: Uint8Array, io: number, hexp: number, n: number, out: Uint8Array): void {
  if (hexp === 1) {
    out.set(inp.subarray(io, io + n));
    return;
  }
  for (let x = 0, i = io; x < n; i++) {
    const v = inp[i]!;
    for (let k = 0; k < hexp && x < n; k++) out[x++] = v;
  }
}
