/**
 * Inverse DCTs. `idctIslow` is libjpeg-turbo's accurate integer IDCT as its x86 SIMD code
 * computes it, so that full-scale output is bit-exact with Pillow; the reduced kernels are separable float matrices, chosen by
 * measurement (see index.ts), since nothing downstream can tell their rounding apart.
 *
 * Every kernel takes quantized coefficients (natural order) and the component's quantization
 * table, and writes level-shifted 8-bit samples.
 */

// jidctint.c's fixed point: CONST_BITS 13, PASS1_BITS 2, FIX(x) = round(x * 2^13).
const F_0_298 = 2446;
const F_0_390 = 3196;
const F_0_541 = 4433;
const F_0_765 = 6270;
const F_0_899 = 7373;
const F_1_175 = 9633;
const F_1_501 = 12299;
const F_1_847 = 15137;
const F_1_961 = 16069;
const F_2_053 = 16819;
const F_2_562 = 20995;
const F_3_072 = 25172;

/** Wraps to int16, as 16-bit SIMD lanes do. */
const s16 = (x: number): number => (x << 16) >> 16;
/** Saturates to int16 (packssdw). */
const sat16 = (x: number): number => (x > 32767 ? 32767 : x < -32768 ? -32768 : x);

const ws = new Int32Array(64);
const row = new Int32Array(8);

/**
 * One 8-point pass of the accurate integer IDCT as libjpeg-turbo's x86-64 SIMD code computes it
 * (jsimd_idct_islow_avx2 / _sse2, which is what Pillow runs): 32-bit products of 16-bit inputs,
 * but the sums in0 +- in4, in7 + in3 and in5 + in1 taken in 16 bits, and each output descaled
 * then saturated to 16 bits. For the coefficients of ordinary photos this is jidctint.c's
 * arithmetic; it differs on overshooting blocks, where Pillow's output saturates instead of
 * wrapping around through jidctint.c's range-limit table (Pillow's hopper_bad_exif.jpg shows it).
 */
function pass(d0: number, d1: number, d2: number, d3: number, d4: number, d5: number, d6: number, d7: number, out: Int32Array, o: number, step: number, shift: number): void {
  const round = 1 << (shift - 1);
  const tmp0 = s16(d0 + d4) * 8192;
  const tmp1 = s16(d0 - d4) * 8192;
  const tmp3 = d2 * (F_0_541 + F_0_765) + d6 * F_0_541;
  const tmp2 = d2 * F_0_541 + d6 * (F_0_541 - F_1_847);
  const tmp10 = tmp0 + tmp3;
  const tmp13 = tmp0 - tmp3;
  const tmp11 = tmp1 + tmp2;
  const tmp12 = tmp1 - tmp2;
  const z3 = s16(d7 + d3);
  const z4 = s16(d5 + d1);
  const z3x = z3 * (F_1_175 - F_1_961) + z4 * F_1_175;
  const z4x = z3 * F_1_175 + z4 * (F_1_175 - F_0_390);
  const t0 = d7 * (F_0_298 - F_0_899) - d1 * F_0_899 + z3x;
  const t1 = d5 * (F_2_053 - F_2_562) - d3 * F_2_562 + z4x;
  const t2 = -d5 * F_2_562 + d3 * (F_3_072 - F_2_562) + z3x;
  const t3 = -d7 * F_0_899 + d1 * (F_1_501 - F_0_899) + z4x;
  // `>>` takes the sums modulo 2^32, as the 32-bit lanes do.
  out[o] = sat16((tmp10 + t3 + round) >> shift);
  out[o + 7 * step] = sat16((tmp10 - t3 + round) >> shift);
  out[o + step] = sat16((tmp11 + t2 + round) >> shift);
  out[o + 6 * step] = sat16((tmp11 - t2 + round) >> shift);
  out[o + 2 * step] = sat16((tmp12 + t1 + round) >> shift);
  out[o + 5 * step] = sat16((tmp12 - t1 + round) >> shift);
  out[o + 3 * step] = sat16((tmp13 + t0 + round) >> shift);
  out[o + 4 * step] = sat16((tmp13 - t0 + round) >> shift);
}

/** packsswb + 128. */
const toSample = (v: number): number => (v < -128 ? 0 : v > 127 ? 255 : v + 128);

/** Dequantization + accurate IDCT (jpeg_idct_islow, SIMD arithmetic): `coef` quantized, natural order; 8x8 into `out`. */
export function idctIslow(coef: Int16Array, co: number, q: Int32Array, out: Uint8Array, o: number, stride: number): void {
  let ac = 0;
  for (let i = co + 8; i < co + 64; i++) ac |= coef[i]!;
  if (ac === 0) {
    // Rows 1..7 all zero: the SIMD code's shortcut (a 16-bit shift of each dequantized
    // coefficient of row 0), and then every output row is the same.
    let d1 = 0;
    for (let c = 1; c < 8; c++) d1 |= coef[co + c]!;
    if (d1 === 0) {
      const px = toSample(sat16((s16(s16(coef[co]! * q[0]!) << 2) * 8192 + 131072) >> 18));
      for (let r = 0; r < 8; r++) out.fill(px, o + r * stride, o + r * stride + 8);
      return;
    }
    const w = (c: number): number => s16(s16(coef[co + c]! * q[c]!) << 2);
    pass(w(0), w(1), w(2), w(3), w(4), w(5), w(6), w(7), row, 0, 1, 18);
    for (let r = 0; r < 8; r++) {
      const p = o + r * stride;
      for (let x = 0; x < 8; x++) out[p + x] = toSample(row[x]!);
    }
    return;
  }
  for (let c = 0; c < 8; c++) {
    const i = co + c;
    if ((coef[i + 8]! | coef[i + 16]! | coef[i + 24]! | coef[i + 32]! | coef[i + 40]! | coef[i + 48]! | coef[i + 56]!) === 0) {
      // What the full pass computes for a column with only its DC, without the multiplies.
      const v = sat16(s16(coef[i]! * q[c]!) * 4);
      for (let r = 0; r < 64; r += 8) ws[c + r] = v;
      continue;
    }
    pass(
      s16(coef[i]! * q[c]!),
      s16(coef[i + 8]! * q[c + 8]!),
      s16(coef[i + 16]! * q[c + 16]!),
      s16(coef[i + 24]! * q[c + 24]!),
      s16(coef[i + 32]! * q[c + 32]!),
      s16(coef[i + 40]! * q[c + 40]!),
      s16(coef[i + 48]! * q[c + 48]!),
      s16(coef[i + 56]! * q[c + 56]!),
      ws,
      c,
      8,
      11,
    );
  }
  for (let r = 0; r < 8; r++) {
    const w = r * 8;
    const p = o + r * stride;
    if ((ws[w + 1]! | ws[w + 2]! | ws[w + 3]! | ws[w + 4]! | ws[w + 5]! | ws[w + 6]! | ws[w + 7]!) === 0) {
      out.fill(toSample(sat16((ws[w]! * 8192 + 131072) >> 18)), p, p + 8);
      continue;
    }
    pass(ws[w]!, ws[w + 1]!, ws[w + 2]!, ws[w + 3]!, ws[w + 4]!, ws[w + 5]!, ws[w + 6]!, ws[w + 7]!, row, 0, 1, 18);
    for (let x = 0; x < 8; x++) out[p + x] = toSample(row[x]!);
  }
}

/** How a reduced block is made from the 8x8 coefficients; see index.ts for the measurements. */
export type ReducedKernel = 'box' | 'lowfreq';

const C = (u: number): number => (u === 0 ? Math.SQRT1_2 : 1) / 2;

/**
 * n x 8 matrix taking a column (or row) of 8 dequantized coefficients to n samples.
 * 'box': each sample is the exact mean of the full IDCT's 8/n samples it covers.
 * 'lowfreq': an n-point IDCT of the n lowest coefficients (jidctint.c's scaled kernels' idea).
 */
export function reducedMatrix(kernel: ReducedKernel, n: number): Float64Array {
  const m = new Float64Array(n * 8);
  const g = 8 / n;
  for (let x = 0; x < n; x++) {
    for (let u = 0; u < 8; u++) {
      let v = 0;
      if (kernel === 'box') {
        for (let k = x * g; k < (x + 1) * g; k++) v += C(u) * Math.cos(((2 * k + 1) * u * Math.PI) / 16);
        v /= g;
      } else if (u < n) {
        v = C(u) * Math.cos(((2 * x + 1) * u * Math.PI) / (2 * n));
      }
      m[x * 8 + u] = Math.abs(v) < 1e-12 ? 0 : v;
    }
  }
  return m;
}

/** Natural-order coefficient indexes a reduced kernel of sx x sy reads (the rest may be dropped). */
export function neededCoefficients(mx: Float64Array, my: Float64Array, sx: number, sy: number): number[] {
  const used: number[] = [];
  for (let v = 0; v < 8; v++) {
    let rowUsed = false;
    for (let y = 0; y < sy; y++) if (my[y * 8 + v] !== 0) rowUsed = true;
    for (let u = 0; u < 8; u++) {
      let colUsed = false;
      for (let x = 0; x < sx; x++) if (mx[x * 8 + u] !== 0) colUsed = true;
      if (rowUsed && colUsed) used.push(v * 8 + u);
    }
  }
  return used;
}

const tmpF = new Float64Array(64);

/**
 * Separable float IDCT to sx x sy samples. `slots[k]` is where natural index k lives in the
 * block (coef[co + slots[k]]), -1 for a dropped (unused) coefficient.
 */
export function idctReduced(
  coef: Int16Array,
  co: number,
  slots: Int8Array,
  q: Int32Array,
  mx: Float64Array,
  my: Float64Array,
  sx: number,
  sy: number,
  out: Uint8Array,
  o: number,
  stride: number,
): void {
  // Columns first: tmp[y][u] for the sy output rows.
  for (let u = 0; u < 8; u++) {
    for (let y = 0; y < sy; y++) tmpF[y * 8 + u] = 0;
    for (let v = 0; v < 8; v++) {
      const s = slots[v * 8 + u]!;
      if (s < 0) continue;
      const c = coef[co + s]!;
      if (c === 0) continue;
      const d = c * q[v * 8 + u]!;
      for (let y = 0; y < sy; y++) tmpF[y * 8 + u] = tmpF[y * 8 + u]! + my[y * 8 + v]! * d;
    }
  }
  for (let y = 0; y < sy; y++) {
    const p = o + y * stride;
    for (let x = 0; x < sx; x++) {
      let s = 0;
      for (let u = 0; u < 8; u++) s += mx[x * 8 + u]! * tmpF[y * 8 + u]!;
      const v = Math.round(s) + 128;
      out[p + x] = v < 0 ? 0 : v > 255 ? 255 : v;
    }
  }
}

/** A reduced kernel's sum as a level-shifted 8-bit sample. */
const sample = (s: number): number => {
  const v = Math.round(s) + 128;
  return v < 0 ? 0 : v > 255 ? 255 : v;
};

/**
 * idctReduced for the 'lowfreq' kernel, whose sx x sy output reads only the sx x sy corner of
 * coefficients, stored compactly (natural index v * 8 + u at slot v * sx + u, as
 * neededCoefficients lists them). The same sums in the same order as idctReduced (the terms it
 * adds beyond the corner are zeros), so the same bytes, without its 8 x 8 walk; a block with only
 * its DC (most of a photo's chroma) is one value.
 */
export function idctCorner(coef: Int16Array, co: number, q: Int32Array, mx: Float64Array, my: Float64Array, sx: number, sy: number, out: Uint8Array, o: number, stride: number): void {
  const n = sx * sy;
  let ac = 0;
  for (let i = co + 1; i < co + n; i++) ac |= coef[i]!;
  if (ac === 0) {
    // Every row of my and mx starts with the same C(0) weight, so every sample is the same.
    const v = Math.round(mx[0]! * (my[0]! * (coef[co]! * q[0]!))) + 128;
    const px = v < 0 ? 0 : v > 255 ? 255 : v;
    // Plain stores: TypedArray.fill's call costs more than a few bytes' worth (workerd profile).
    for (let y = 0, p = o; y < sy; y++, p += stride) for (let x = 0; x < sx; x++) out[p + x] = px;
    return;
  }
  if (sx === 2 && sy === 2) {
    // The luma of 4:2:0 at 1/4, straight-line. Zero terms are included: adding a +-0 product
    // leaves a sum unchanged, and a sum of zeros rounds to the same sample either way.
    const d00 = coef[co]! * q[0]!;
    const d01 = coef[co + 1]! * q[1]!;
    const d10 = coef[co + 2]! * q[8]!;
    const d11 = coef[co + 3]! * q[9]!;
    const t00 = my[0]! * d00 + my[1]! * d10;
    const t01 = my[0]! * d01 + my[1]! * d11;
    const t10 = my[8]! * d00 + my[9]! * d10;
    const t11 = my[8]! * d01 + my[9]! * d11;
    const a = mx[0]!;
    const b = mx[1]!;
    const c = mx[8]!;
    const d = mx[9]!;
    out[o] = sample(a * t00 + b * t01);
    out[o + 1] = sample(c * t00 + d * t01);
    out[o + stride] = sample(a * t10 + b * t11);
    out[o + stride + 1] = sample(c * t10 + d * t11);
    return;
  }
  if (sx === 4 && sy === 4) {
    // 4:2:0 chroma at 1/4 (and every component of 4:4:4 at 1/2), the same way.
    const d00 = coef[co]! * q[0]!, d01 = coef[co + 1]! * q[1]!, d02 = coef[co + 2]! * q[2]!, d03 = coef[co + 3]! * q[3]!;
    const d10 = coef[co + 4]! * q[8]!, d11 = coef[co + 5]! * q[9]!, d12 = coef[co + 6]! * q[10]!, d13 = coef[co + 7]! * q[11]!;
    const d20 = coef[co + 8]! * q[16]!, d21 = coef[co + 9]! * q[17]!, d22 = coef[co + 10]! * q[18]!, d23 = coef[co + 11]! * q[19]!;
    const d30 = coef[co + 12]! * q[24]!, d31 = coef[co + 13]! * q[25]!, d32 = coef[co + 14]! * q[26]!, d33 = coef[co + 15]! * q[27]!;
    for (let y = 0, p = o; y < 4; y++, p += stride) {
      const a = my[y * 8]!, b = my[y * 8 + 1]!, c = my[y * 8 + 2]!, d = my[y * 8 + 3]!;
      const t0 = a * d00 + b * d10 + c * d20 + d * d30;
      const t1 = a * d01 + b * d11 + c * d21 + d * d31;
      const t2 = a * d02 + b * d12 + c * d22 + d * d32;
      const t3 = a * d03 + b * d13 + c * d23 + d * d33;
      for (let x = 0; x < 4; x++) out[p + x] = sample(mx[x * 8]! * t0 + mx[x * 8 + 1]! * t1 + mx[x * 8 + 2]! * t2 + mx[x * 8 + 3]! * t3);
    }
    return;
  }
  for (let u = 0; u < sx; u++) {
    for (let y = 0; y < sy; y++) tmpF[y * 8 + u] = 0;
    for (let v = 0; v < sy; v++) {
      const c = coef[co + v * sx + u]!;
      if (c === 0) continue;
      const d = c * q[v * 8 + u]!;
      for (let y = 0; y < sy; y++) tmpF[y * 8 + u] = tmpF[y * 8 + u]! + my[y * 8 + v]! * d;
    }
  }
  for (let y = 0; y < sy; y++) {
    const p = o + y * stride;
    for (let x = 0; x < sx; x++) {
      let s = 0;
      for (let u = 0; u < sx; u++) s += mx[x * 8 + u]! * tmpF[y * 8 + u]!;
      const v = Math.round(s) + 128;
      out[p + x] = v < 0 ? 0 : v > 255 ? 255 : v;
    }
  }
}
