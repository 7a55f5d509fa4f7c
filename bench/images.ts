/**
 * Test inputs made from the fixture photos: JPEGs at the three sizes the report uses, and
 * preprocessed tensors through the Worker's own kernel (the calibration set and the input
 * tensor every runtime gets). JPEGs are cached in the scratch folder; they are deterministic.
 */
import { readFileSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { encode as encodeJpeg } from 'jpeg-js';
import { decodeImage } from '../src/image/index';
import { planFor, prepareInput } from '../src/pipeline/prepare';
import { IMAGENET_PREPROCESS } from '../src/models/manifest';
import type { RgbImage } from '../src/preprocess/types';
import type { PreprocessKernel } from '../wasm/preprocess/index';
import { PHOTOS } from '../models/src/paths';

/** Source of every test JPEG, so that the sizes differ in pixel count only. */
export const SOURCE_PHOTO = 'coffee.jpg';
/** Calibration photos for the quantizer: every fixture scene. */
export const CALIBRATION_PHOTOS = ['camera.png', 'chelsea.jpg', 'coffee.jpg', 'rocket.jpg'];
const QUALITY = 90;
/** No decode limit while making inputs; the Worker's own limit applies to what it receives. */
const NO_LIMIT = { maxPixels: 1e9 };

export interface TestJpeg {
  name: string;
  width: number;
  height: number;
  bytes: Uint8Array;
}

export const SIZES: ReadonlyArray<{ name: string; width: number; height: number }> = [
  { name: '640x480', width: 640, height: 480 },
  { name: '1920x1080', width: 1920, height: 1080 },
  { name: '4032x3024', width: 4032, height: 3024 },
];

export function decodeFile(path: string): RgbImage {
  return decodeImage(new Uint8Array(readFileSync(path)), NO_LIMIT);
}

/** Center crop to the target aspect, then bilinear resize (up or down). */
function resizeTo(src: RgbImage, width: number, height: number): RgbImage {
  const target = width / height;
  let cw = src.width;
  let ch = src.height;
  if (cw / ch > target) cw = Math.round(ch * target);
  else ch = Math.round(cw / target);
  const axis = (srcSize: number, offset: number, scale: number, size: number) => {
    const lo = new Int32Array(size);
    const hi = new Int32Array(size);
    const w = new Float64Array(size);
    for (let i = 0; i < size; i++) {
      const f = Math.min(srcSize - 1, Math.max(0, offset + (i + 0.5) * scale - 0.5));
      lo[i] = Math.floor(f);
      hi[i] = Math.min(srcSize - 1, lo[i]! + 1);
      w[i] = f - lo[i]!;
    }
    return { lo, hi, w };
  };
  const xs = axis(src.width, (src.width - cw) / 2, cw / width, width);
  const ys = axis(src.height, (src.height - ch) / 2, ch / height, height);
  const out = new Uint8Array(width * height * 3);
  const s = src.data;
  for (let y = 0; y < height; y++) {
    const ra = ys.lo[y]! * src.width * 3;
    const rb = ys.hi[y]! * src.width * 3;
    const wy = ys.w[y]!;
    for (let x = 0; x < width; x++) {
      const ca = xs.lo[x]! * 3;
      const cb = xs.hi[x]! * 3;
      const wx = xs.w[x]!;
      const o = (y * width + x) * 3;
      for (let c = 0; c < 3; c++) {
        const top = s[ra + ca + c]! * (1 - wx) + s[ra + cb + c]! * wx;
        const bottom = s[rb + ca + c]! * (1 - wx) + s[rb + cb + c]! * wx;
        out[o + c] = Math.round(top * (1 - wy) + bottom * wy);
      }
    }
  }
  return { width, height, data: out };
}

/**
 * An upscaled photo is smoother than a camera's and would compress (and entropy-decode)
 * unrealistically well; deterministic sensor-like grain brings the file size nearer a real
 * photo of that size. The report gives each file's size.
 */
function addGrain(img: RgbImage, amplitude: number): void {
  let s = 0x9e3779b9;
  for (let i = 0; i < img.data.length; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    const noise = ((s >>> 0) / 0xffffffff - 0.5) * 2 * amplitude;
    img.data[i] = Math.max(0, Math.min(255, Math.round((img.data[i] as number) + noise)));
  }
}

function toJpeg(img: RgbImage): Uint8Array {
  const rgba = new Uint8Array(img.width * img.height * 4);
  for (let i = 0, j = 0; i < img.data.length; i += 3, j += 4) {
    rgba[j] = img.data[i] as number;
    rgba[j + 1] = img.data[i + 1] as number;
    rgba[j + 2] = img.data[i + 2] as number;
    rgba[j + 3] = 255;
  }
  return new Uint8Array(encodeJpeg({ width: img.width, height: img.height, data: rgba }, QUALITY).data);
}

const GRAIN = 6;
const RECIPE = `${SOURCE_PHOTO} q${QUALITY} grain${GRAIN} v2`;

/**
 * 12 MP uploads in the other formats the Worker streams or decodes at reduced scale: the same
 * 4032x3024 picture as a progressive JPEG (sharp: libvips + libjpeg-turbo), a lossy WebP, and as a PNG (sharp,
 * of the picture without grain, as a screenshot-like PNG; with grain it passes the 20 MiB body
 * limit). Made once and cached beside the JPEGs.
 */
export async function testFormats(workDir: string): Promise<TestJpeg[]> {
  const dir = join(workDir, 'images');
  await mkdir(dir, { recursive: true });
  const { default: sharp } = await import('sharp');
  const out: TestJpeg[] = [];
  const { width, height } = SIZES[SIZES.length - 1]!;
  let plain: RgbImage | undefined;
  let grained: RgbImage | undefined;
  const recipes = [
    { name: `${width}x${height} progressive JPEG`, file: 'progressive.jpg', grain: true, encode: (raw: RgbImage) => sharp(raw.data, { raw: { width, height, channels: 3 } }).jpeg({ quality: QUALITY, progressive: true }).toBuffer() },
    { name: `${width}x${height} PNG`, file: 'screen.png', grain: false, encode: (raw: RgbImage) => sharp(raw.data, { raw: { width, height, channels: 3 } }).png({ compressionLevel: 6 }).toBuffer() },
    { name: `${width}x${height} lossy WebP`, file: 'lossy.webp', grain: true, encode: (raw: RgbImage) => sharp(raw.data, { raw: { width, height, channels: 3 } }).webp({ quality: 85 }).toBuffer() },
  ];
  for (const r of recipes) {
    const file = join(dir, `${width}x${height}-${r.file}`);
    const recipe = `${RECIPE} ${r.file} sharp`;
    let bytes: Uint8Array | undefined;
    try {
      if ((await readFile(`${file}.recipe`, 'utf8')) === recipe) bytes = new Uint8Array(await readFile(file));
    } catch {
      // not made yet
    }
    if (!bytes) {
      plain ??= resizeTo(decodeFile(join(PHOTOS, SOURCE_PHOTO)), width, height);
      if (r.grain && !grained) {
        grained = { ...plain, data: plain.data.slice() };
        addGrain(grained, GRAIN);
      }
      bytes = new Uint8Array(await r.encode(r.grain ? grained! : plain));
      await writeFile(file, bytes);
      await writeFile(`${file}.recipe`, recipe);
    }
    out.push({ name: r.name, width, height, bytes });
  }
  return out;
}

/** The three test JPEGs, made once and cached under `<workDir>/images/`. */
export async function testJpegs(workDir: string): Promise<TestJpeg[]> {
  const dir = join(workDir, 'images');
  await mkdir(dir, { recursive: true });
  let source: RgbImage | undefined;
  const out: TestJpeg[] = [];
  for (const size of SIZES) {
    const file = join(dir, `${size.name}.jpg`);
    const recipeFile = `${file}.recipe`;
    let bytes: Uint8Array | undefined;
    try {
      if ((await readFile(recipeFile, 'utf8')) === RECIPE) bytes = new Uint8Array(await readFile(file));
    } catch {
      // not made yet
    }
    if (!bytes) {
      source ??= decodeFile(join(PHOTOS, SOURCE_PHOTO));
      const img = resizeTo(source, size.width, size.height);
      addGrain(img, GRAIN);
      bytes = toJpeg(img);
      await writeFile(file, bytes);
      await writeFile(recipeFile, RECIPE);
    }
    out.push({ ...size, bytes });
  }
  return out;
}

/** One image through the Worker's preprocessing (the kernel), as a [1, 3, 224, 224] tensor. */
export function tensorOf(kernel: PreprocessKernel, img: RgbImage): Float32Array {
  const t = new Float32Array(3 * IMAGENET_PREPROCESS.cropHeight * IMAGENET_PREPROCESS.cropWidth);
  kernel.run(img, IMAGENET_PREPROCESS, t, 0);
  return t;
}

/** The model input the Worker makes from these bytes (its decode plan, streamed into the kernel). */
export async function workerTensor(kernel: PreprocessKernel, bytes: Uint8Array): Promise<Float32Array> {
  const t = new Float32Array(3 * IMAGENET_PREPROCESS.cropHeight * IMAGENET_PREPROCESS.cropWidth);
  await prepareInput(bytes, planFor(bytes, IMAGENET_PREPROCESS, NO_LIMIT), IMAGENET_PREPROCESS, NO_LIMIT, kernel, t, 0);
  return t;
}

export function calibrationTensors(kernel: PreprocessKernel): Float32Array[] {
  return CALIBRATION_PHOTOS.map((f) => tensorOf(kernel, decodeFile(join(PHOTOS, f))));
}
