// Preprocessing kernel: Pillow-exact antialiased bilinear resize (only the cropped part),
// center crop, ToTensor + Normalize to CHW float32. The memory layout and the call sequence
// are documented once, in ../README.md; ../index.ts is the only code that drives this.
//
// Bit-exactness contract: the 8-bit values equal Pillow's (22-bit fixed-point weights,
// horizontal pass then vertical, round half up, clip), and the floats equal torch's float32
// ((v / 255 - mean) / std, each step rounded to f32). Integer sums are exact whatever the
// order, so SIMD may regroup them freely; the float steps are per lane and in torch's order.

// ---- parameter block: 32 slots of 4 bytes in the data segment ------------------------------
const PARAMS: usize = memory.data(128, 16);

// Written by plan(), read by the binding (i32 slots).
const P_SRC_W: usize = 0;
const P_SRC_H: usize = 1;
const P_RESIZE: usize = 2;
const P_CROP_W: usize = 3;
const P_CROP_H: usize = 4;
const P_RESIZED_W: usize = 5;
const P_RESIZED_H: usize = 6;
const P_LEFT: usize = 7;
const P_TOP: usize = 8;
const P_KSIZE_H: usize = 9;
const P_KSIZE_V: usize = 10;
const P_ROW_FIRST: usize = 11;
const P_ROW_COUNT: usize = 12;
const P_CHUNK_ROWS: usize = 13;
const P_INPUT_PTR: usize = 14;
const P_OUTPUT_PTR: usize = 15;
const P_END: usize = 16;
// The full image that the source is a 1/scale decode of (see plan()).
const P_FULL_W: usize = 17;
const P_FULL_H: usize = 18;
const P_SCALE: usize = 19;
// Written by the binding (f32 slots): mean R,G,B at 20..22, std R,G,B at 24..26.
const P_MEAN: usize = 20;
const P_STD: usize = 24;

const PRECISION_BITS: i32 = 22;
const HALF: i32 = 1 << (PRECISION_BITS - 1);
// Source rows are copied in by the binding in chunks of about this many bytes, so a 12 MP
// photo never has to live in wasm memory whole.
const CHUNK_BYTES: i64 = 1 << 20;
// Wasm32 addresses; also keeps every size product below i32 overflow.
const MAX_END: i64 = 0x7fff0000;

const ERR_ARGS: i32 = -1;
const ERR_TOO_LARGE: i32 = -2;

// Region pointers of the current plan (see README.md).
let hBounds: usize = 0;
let hCoef: usize = 0;
let vBounds: usize = 0;
let vCoef: usize = 0;
let scratch: usize = 0;
let tmp: usize = 0;
let plane: usize = 0;
let kPadH: i32 = 0;

// @ts-ignore: decorator
@inline function getI(slot: usize): i32 {
  return load<i32>(PARAMS + (slot << 2));
}

// @ts-ignore: decorator
@inline function setI(slot: usize, v: i32): void {
  store<i32>(PARAMS + (slot << 2), v);
}

// @ts-ignore: decorator
@inline function align16(v: i64): i64 {
  return (v + 15) & ~15;
}

// @ts-ignore: decorator
@inline function clip8(acc: i32): i32 {
  let v = acc >> PRECISION_BITS;
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

/** Address of the parameter block (see README.md for the slots). */
export function params(): usize {
  return PARAMS;
}

function cropOrigin(size: i32, crop: i32): i32 {
  // torchvision pads (crop - size) // 2 in front; else Python round((size - crop) / 2), which
  // sends .5 to the even neighbour.
  if (crop > size) return -((crop - size) >> 1);
  let d = size - crop;
  let q = d >> 1;
  if ((d & 1) != 0 && (q & 1) != 0) q += 1;
  return q;
}

function ksizeOf(boxSize: f64, outSize: i32): i32 {
  let scale = boxSize / <f64>outSize;
  let support = scale < 1.0 ? 1.0 : scale;
  return <i32>Math.ceil(support) * 2 + 1;
}

/**
 * Geometry and memory layout for one image; returns 0, or ERR_* (nothing is written to memory
 * beyond the parameter block, so the binding can grow memory to P_END afterwards).
 *
 * The source (srcW x srcH) may be a fullW x fullH image decoded at 1/scale, srcW =
 * ceil(fullW / scale): the geometry is then the full image's, and the filters sample the box
 * [0, fullW / scale) x [0, fullH / scale) of the source, as Pillow's resize(box=...) does.
 * A plain image is fullW = srcW, fullH = srcH, scale = 1.
 */
export function plan(
  srcW: i32, srcH: i32, resizeShorter: i32, cropW: i32, cropH: i32,
  fullW: i32, fullH: i32, scale: i32,
): i32 {
  if (srcW < 1 || srcH < 1 || resizeShorter < 1 || cropW < 1 || cropH < 1) return ERR_ARGS;
  if (fullW < 1 || fullH < 1 || scale < 1) return ERR_ARGS;
  if ((fullW + scale - 1) / scale != srcW || (fullH + scale - 1) / scale != srcH) return ERR_ARGS;
  let boxW = <f64>fullW / <f64>scale;
  let boxH = <f64>fullH / <f64>scale;
  let short = fullW <= fullH ? fullW : fullH;
  let long = fullW <= fullH ? fullH : fullW;
  // torchvision: int(size * long / short) with Python floats.
  let newLong64 = <i64>Math.trunc(<f64>resizeShorter * <f64>long / <f64>short);
  if (newLong64 > 0x7fffffff) return ERR_TOO_LARGE;
  let newLong = <i32>newLong64;
  let rw = fullW <= fullH ? resizeShorter : newLong;
  let rh = fullW <= fullH ? newLong : resizeShorter;
  let left = cropOrigin(rw, cropW);
  let top = cropOrigin(rh, cropH);

  let ksizeH = ksizeOf(boxW, rw);
  let ksizeV = ksizeOf(boxH, rh);
  let kPad = (ksizeH + 3) & ~3;

  // Source rows read by the surviving output rows, from the same bounds formula as coeffs().
  let vScale = boxH / <f64>rh;
  let support = vScale < 1.0 ? 1.0 : vScale;
  let y0 = max(top, 0);
  let y1 = min(top + cropH, rh) - 1;
  let rowFirst = 0;
  let rowCount = 0;
  if (y0 <= y1) {
    let c0 = (<f64>y0 + 0.5) * vScale;
    let c1 = (<f64>y1 + 0.5) * vScale;
    rowFirst = max(<i32>(c0 - support + 0.5), 0);
    let rowEnd = min(<i32>(c1 + support + 0.5), srcH);
    rowCount = rowEnd - rowFirst;
  }
  let rowBytes = <i64>srcW * 3;
  let chunkRows = <i32>min<i64>(max<i64>(CHUNK_BYTES / rowBytes, 1), max<i64>(<i64>rowCount, 1));

  let p = align16(<i64>__heap_base);
  let hb = p;
  p = align16(p + <i64>cropW * 8);
  let hc = p;
  p = align16(p + <i64>cropW * <i64>kPad * 12);
  let vb = p;
  p = align16(p + <i64>cropH * 8);
  let vc = p;
  p = align16(p + <i64>cropH * <i64>ksizeV * 4);
  let sc = p;
  p = align16(p + <i64>max(ksizeH, ksizeV) * 8);
  let tp = p;
  let pl = <i64>rowCount * <i64>cropW;
  // 16 bytes of slack: the vertical pass loads 8 columns at a time past the last one.
  p = align16(p + pl * 3 + 16);
  let op = p;
  // 32 bytes of slack: the vertical pass stores 8 floats at a time past the last column.
  p = align16(p + <i64>cropW * <i64>cropH * 12 + 32);
  let ip = p;
  // 16 bytes of slack: the horizontal pass loads 16 bytes to use 12.
  p = align16(p + <i64>chunkRows * rowBytes + 16);
  if (p > MAX_END) return ERR_TOO_LARGE;

  setI(P_SRC_W, srcW);
  setI(P_SRC_H, srcH);
  setI(P_RESIZE, resizeShorter);
  setI(P_CROP_W, cropW);
  setI(P_CROP_H, cropH);
  setI(P_RESIZED_W, rw);
  setI(P_RESIZED_H, rh);
  setI(P_LEFT, left);
  setI(P_TOP, top);
  setI(P_KSIZE_H, ksizeH);
  setI(P_KSIZE_V, ksizeV);
  setI(P_ROW_FIRST, rowFirst);
  setI(P_ROW_COUNT, rowCount);
  setI(P_CHUNK_ROWS, chunkRows);
  setI(P_INPUT_PTR, <i32>ip);
  setI(P_OUTPUT_PTR, <i32>op);
  setI(P_END, <i32>p);
  setI(P_FULL_W, fullW);
  setI(P_FULL_H, fullH);
  setI(P_SCALE, scale);
  hBounds = <usize>hb;
  hCoef = <usize>hc;
  vBounds = <usize>vb;
  vCoef = <usize>vc;
  scratch = <usize>sc;
  tmp = <usize>tp;
  plane = <usize>pl;
  kPadH = kPad;
  return 0;
}

/**
 * Pillow's precompute_coeffs + normalize_coeffs_8bpc for output indices [start, start + len),
 * box [0, boxSize) of an inSize input, same double operations in the same order. Indices
 * outside [0, outSize) get no taps, which yields 0 after rounding: torchvision's zero padding.
 * `stride` is the weight row length in i32s; `lanes` = 3 repeats each weight per RGB byte for
 * the horizontal pass.
 */
function coeffs(
  inSize: i32, boxSize: f64, outSize: i32, start: i32, len: i32,
  bounds: usize, weights: usize, stride: i32, lanes: i32,
): void {
  let scale = boxSize / <f64>outSize;
  let filterscale = scale < 1.0 ? 1.0 : scale;
  let support = 1.0 * filterscale;
  let ss = 1.0 / filterscale;
  let one = <f64>(1 << PRECISION_BITS);
  memory.fill(weights, 0, <usize>len * <usize>stride * 4);
  for (let i = 0; i < len; i++) {
    let xx = start + i;
    let b = bounds + (<usize>i << 3);
    if (xx < 0 || xx >= outSize) {
      store<i32>(b, 0);
      store<i32>(b, 0, 4);
      continue;
    }
    let center = (<f64>xx + 0.5) * scale;
    let xmin = <i32>(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    let xmax = <i32>(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    let ww = 0.0;
    for (let x = 0; x < xmax; x++) {
      let t = (<f64>(x + xmin) - center + 0.5) * ss;
      if (t < 0.0) t = -t;
      let w = t < 1.0 ? 1.0 - t : 0.0;
      store<f64>(scratch + (<usize>x << 3), w);
      ww += w;
    }
    let row = weights + <usize>i * <usize>stride * 4;
    for (let x = 0; x < xmax; x++) {
      let k = load<f64>(scratch + (<usize>x << 3));
      if (ww != 0.0) k /= ww;
      let q = k < 0.0 ? <i32>(-0.5 + k * one) : <i32>(0.5 + k * one);
      for (let c = 0; c < lanes; c++) {
        store<i32>(row + (<usize>(x * lanes + c) << 2), q);
      }
    }
    store<i32>(b, xmin);
    store<i32>(b, xmax, 4);
  }
}

/** Fills the coefficient tables of the current plan (memory must already reach P_END). */
export function prepare(): void {
  let scale = <f64>getI(P_SCALE);
  let boxW = <f64>getI(P_FULL_W) / scale;
  let boxH = <f64>getI(P_FULL_H) / scale;
  coeffs(getI(P_SRC_W), boxW, getI(P_RESIZED_W), getI(P_LEFT), getI(P_CROP_W), hBounds, hCoef, kPadH * 3, 3);
  coeffs(getI(P_SRC_H), boxH, getI(P_RESIZED_H), getI(P_TOP), getI(P_CROP_H), vBounds, vCoef, getI(P_KSIZE_V), 1);
}

/**
 * Horizontal pass over source rows [row0, row0 + rows), which the binding has copied to the
 * input chunk (row0 first). Writes the 8-bit intermediate, planar per channel, for the crop's
 * columns only.
 *
 * SIMD: one 16-byte load covers 4 RGB pixels (12 bytes used), widened to three i32x4 and
 * multiplied by the weights expanded per byte in prepare(). Each accumulator lane keeps one
 * channel (lane i holds byte 4j+i, channel (4j+i) mod 3), and one shuffle-and-add at the end
 * folds the four partial sums of R, G and B into lanes 0..2. Taps past the count have weight 0.
 */
export function horizontal(row0: i32, rows: i32): void {
  let srcW = getI(P_SRC_W);
  let cropW = getI(P_CROP_W);
  let rowBytes = <usize>srcW * 3;
  let input = <usize>getI(P_INPUT_PTR);
  let kStride = <usize>kPadH * 12;
  let zero = i32x4.splat(0);
  let r = 0;
  // Two rows per sweep share the bounds and weight loads; an odd last row goes alone.
  for (; r + 1 < rows; r += 2) {
    let src = input + <usize>r * rowBytes;
    let t = tmp + <usize>(row0 - getI(P_ROW_FIRST) + r) * <usize>cropW;
    for (let x = 0; x < cropW; x++) {
      let b = hBounds + (<usize>x << 3);
      let n = load<i32>(b, 4);
      let p = src + <usize>load<i32>(b) * 3;
      let kp = hCoef + <usize>x * kStride;
      let a0 = zero;
      let a1 = zero;
      let a2 = zero;
      let b0 = zero;
      let b1 = zero;
      let b2 = zero;
      for (let s = (n + 3) >> 2; s > 0; s--) {
        let k0 = v128.load(kp);
        let k1 = v128.load(kp, 16);
        let k2 = v128.load(kp, 32);
        let v = v128.load(p);
        let lo = i16x8.extend_low_i8x16_u(v);
        let hi = i16x8.extend_high_i8x16_u(v);
        a0 = i32x4.add(a0, i32x4.mul(i32x4.extend_low_i16x8_u(lo), k0));
        a1 = i32x4.add(a1, i32x4.mul(i32x4.extend_high_i16x8_u(lo), k1));
        a2 = i32x4.add(a2, i32x4.mul(i32x4.extend_low_i16x8_u(hi), k2));
        let u = v128.load(p + rowBytes);
        let ulo = i16x8.extend_low_i8x16_u(u);
        let uhi = i16x8.extend_high_i8x16_u(u);
        b0 = i32x4.add(b0, i32x4.mul(i32x4.extend_low_i16x8_u(ulo), k0));
        b1 = i32x4.add(b1, i32x4.mul(i32x4.extend_high_i16x8_u(ulo), k1));
        b2 = i32x4.add(b2, i32x4.mul(i32x4.extend_low_i16x8_u(uhi), k2));
        p += 12;
        kp += 48;
      }
      storeRgb(t + <usize>x, a0, a1, a2);
      storeRgb(t + <usize>cropW + <usize>x, b0, b1, b2);
    }
  }
  for (; r < rows; r++) {
    let src = input + <usize>r * rowBytes;
    let t = tmp + <usize>(row0 - getI(P_ROW_FIRST) + r) * <usize>cropW;
    for (let x = 0; x < cropW; x++) {
      let b = hBounds + (<usize>x << 3);
      let n = load<i32>(b, 4);
      let p = src + <usize>load<i32>(b) * 3;
      let kp = hCoef + <usize>x * kStride;
      let a0 = zero;
      let a1 = zero;
      let a2 = zero;
      for (let s = (n + 3) >> 2; s > 0; s--) {
        let v = v128.load(p);
        let lo = i16x8.extend_low_i8x16_u(v);
        let hi = i16x8.extend_high_i8x16_u(v);
        a0 = i32x4.add(a0, i32x4.mul(i32x4.extend_low_i16x8_u(lo), v128.load(kp)));
        a1 = i32x4.add(a1, i32x4.mul(i32x4.extend_high_i16x8_u(lo), v128.load(kp, 16)));
        a2 = i32x4.add(a2, i32x4.mul(i32x4.extend_low_i16x8_u(hi), v128.load(kp, 32)));
        p += 12;
        kp += 48;
      }
      storeRgb(t + <usize>x, a0, a1, a2);
    }
  }
}

/**
 * Folds the three accumulators (lanes hold channels R G B R | G B R G | B R G B) into R, G, B,
 * rounds and clips like Pillow, and stores one byte into each intermediate plane.
 */
// @ts-ignore: decorator
@inline function storeRgb(t: usize, a0: v128, a1: v128, a2: v128): void {
  let sum = i32x4.add(
    i32x4.add(a0, i32x4.shuffle(a0, a1, 3, 4, 5, 0)),
    i32x4.add(i32x4.shuffle(a1, a2, 2, 3, 4, 0), i32x4.shuffle(a2, a2, 1, 2, 3, 0)),
  );
  let v = i32x4.shr_s(i32x4.add(sum, i32x4.splat(HALF)), PRECISION_BITS);
  v = i32x4.min_s(i32x4.max_s(v, i32x4.splat(0)), i32x4.splat(255));
  store<u8>(t, <u8>i32x4.extract_lane(v, 0));
  store<u8>(t + plane, <u8>i32x4.extract_lane(v, 1));
  store<u8>(t + (plane << 1), <u8>i32x4.extract_lane(v, 2));
}

/**
 * Vertical pass + ToTensor + Normalize, writing the CHW float32 block at P_OUTPUT_PTR.
 *
 * SIMD: 8 columns per step (u8x8 load widened to two i32x4, times the splatted weight), then
 * shift, clamp, convert and normalize 4 lanes at a time. The last step of a row may run past
 * cropW: it reads the intermediate's next row (or the slack) and writes into the next output
 * row (or the slack), which is computed afterwards and overwrites it.
 */
export function vertical(): void {
  let cropW = getI(P_CROP_W);
  let cropH = getI(P_CROP_H);
  let ksizeV = <usize>getI(P_KSIZE_V);
  let rowFirst = getI(P_ROW_FIRST);
  let output = <usize>getI(P_OUTPUT_PTR);
  let stride = <usize>cropW;
  let half = i32x4.splat(HALF);
  let zero = i32x4.splat(0);
  let top = i32x4.splat(255);
  let f255 = f32x4.splat(255.0);
  for (let c: usize = 0; c < 3; c++) {
    let mean = f32x4.splat(load<f32>(PARAMS + ((P_MEAN + c) << 2)));
    let std = f32x4.splat(load<f32>(PARAMS + ((P_STD + c) << 2)));
    let planeIn = tmp + c * plane;
    for (let y = 0; y < cropH; y++) {
      let b = vBounds + (<usize>y << 3);
      let n = load<i32>(b, 4);
      let rowIn = planeIn + <usize>(load<i32>(b) - rowFirst) * stride;
      let kRow = vCoef + <usize>y * ksizeV * 4;
      let out = output + ((c * <usize>cropH + <usize>y) * stride << 2);
      for (let x = 0; x < cropW; x += 8) {
        let acc0 = half;
        let acc1 = half;
        let p = rowIn + <usize>x;
        for (let k = 0; k < n; k++) {
          let w = v128.load32_splat(kRow + (<usize>k << 2));
          let v = v128.load8x8_u(p);
          acc0 = i32x4.add(acc0, i32x4.mul(i32x4.extend_low_i16x8_u(v), w));
          acc1 = i32x4.add(acc1, i32x4.mul(i32x4.extend_high_i16x8_u(v), w));
          p += stride;
        }
        let q0 = i32x4.min_s(i32x4.max_s(i32x4.shr_s(acc0, PRECISION_BITS), zero), top);
        let q1 = i32x4.min_s(i32x4.max_s(i32x4.shr_s(acc1, PRECISION_BITS), zero), top);
        let f0 = f32x4.div(f32x4.sub(f32x4.div(f32x4.convert_i32x4_s(q0), f255), mean), std);
        let f1 = f32x4.div(f32x4.sub(f32x4.div(f32x4.convert_i32x4_s(q1), f255), mean), std);
        let o = out + (<usize>x << 2);
        v128.store(o, f0);
        v128.store(o, f1, 16);
      }
    }
  }
}
