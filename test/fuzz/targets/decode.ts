/**
 * The check shared by the decoder targets (JPEG, PNG, GIF): the whole-image decode
 * (`decodeImage`: planDecode with collect, then the format's decoder) and, for the streaming
 * formats, the streaming path (`planDecode` with a model's target size + `decodeRows`), each
 * held to the invariant: pixels of the plan's size, or a 4xx ApiError; and no more allocated
 * than `plan.memoryBytes`.
 */
import { decodePlannedSync, decodeRows, planDecode, probe, type DecodeLimits, type DecodePlan, type RgbImage } from '../../../src/image/index';
import { countAllocationsSync, Violation } from '../harness';

/** The Worker's own limits (wrangler.toml: MAX_PIXELS, MAX_DECODE_MB). */
export const LIMITS: DecodeLimits = { maxPixels: 16_000_000, maxMemoryMB: 32 };

/** Model resize targets to plan streaming decodes for (1 and 16 force the reduced JPEG scales on small files). */
const TARGETS = [undefined, 1, 16, 224] as const;

/** A cheap deterministic pick from the input itself (the regression files hold bytes only). */
export const pickOf = (bytes: Uint8Array, n: number): number => {
  let h = bytes.length;
  for (let i = 0; i < Math.min(bytes.length, 64); i++) h = (h * 31 + bytes[bytes.length - 1 - i]!) >>> 0;
  return h % n;
};

const isApi = (err: unknown): boolean => err instanceof Error && err.name === 'ApiError';

function checkAccounting(what: string, plan: DecodePlan, bytes: number): void {
  if (bytes > plan.memoryBytes) {
    throw new Violation(`${what} (${plan.path}, ${plan.width}x${plan.height}): allocated ${bytes} bytes, its accounting says ${plan.memoryBytes}`);
  }
}

function checkImage(what: string, image: RgbImage, plan: DecodePlan): void {
  const transposed = plan.header.orientation >= 5;
  const w = transposed ? plan.height : plan.width;
  const h = transposed ? plan.width : plan.height;
  if (image.width !== w || image.height !== h || image.data.length !== w * h * 3) {
    throw new Violation(`${what}: returned ${image.width}x${image.height} with ${image.data.length} bytes, the plan says ${w}x${h}`);
  }
}

/** The whole-image decode: planned (collect) then decoded, each step counted. */
export function decodeWhole(bytes: Uint8Array): void {
  // The plan allocates nothing big; counting it with the decode is still fair (it is part of it).
  const { value: plan, bytes: planBytes } = countAllocationsSync(() => planDecode(bytes, LIMITS, { collect: true }));
  const { value: image, bytes: decodeBytes } = countAllocationsSync(() => decodePlannedSync(bytes, plan, LIMITS));
  checkAccounting('decodeImage', plan, planBytes + decodeBytes);
  checkImage('decodeImage', image, plan);
}

/** The streaming path (rows into a sink) where the plan streams, else the planned whole decode. */
export function decodeStreamed(bytes: Uint8Array): void {
  const target = TARGETS[pickOf(bytes, TARGETS.length)];
  const plan = planDecode(bytes, LIMITS, target === undefined ? {} : { target });
  if (!plan.streams) {
    const { value: image, bytes: used } = countAllocationsSync(() => decodePlannedSync(bytes, plan, LIMITS));
    checkAccounting(`planned decode, target ${target}`, plan, used);
    checkImage(`planned decode, target ${target}`, image, plan);
    return;
  }
  const rowBytes = plan.width * 3;
  let next = 0;
  let bad: string | null = null;
  const sink = {
    write(rows: Uint8Array, y0: number, count: number): void {
      if (bad) return;
      if (y0 !== next) bad = `rows from ${y0}, expected ${next}`;
      else if (count < 1 || y0 + count > plan.height) bad = `${count} rows at ${y0} of ${plan.height}`;
      else if (rows.length < count * rowBytes) bad = `${count} rows of ${rowBytes} bytes in ${rows.length} bytes`;
      next = y0 + count;
    },
  };
  const { bytes: used } = countAllocationsSync(() => decodeRows(bytes, plan, sink, LIMITS));
  checkAccounting(`decodeRows, target ${target}`, plan, used);
  if (bad) throw new Violation(`decodeRows (${plan.path}, target ${target}): ${bad}`);
  if (next !== plan.height) throw new Violation(`decodeRows (${plan.path}, target ${target}): returned after ${next} of ${plan.height} rows`);
}

/**
 * Runs every path; a path that refuses (4xx ApiError) does not stop the others. The first
 * refusal is thrown at the end; anything else at once.
 */
export function allPaths(bytes: Uint8Array, paths: Array<(bytes: Uint8Array) => void>): void {
  let refusal: unknown = null;
  for (const path of paths) {
    try {
      path(bytes);
    } catch (err) {
      if (!isApi(err)) throw err;
      refusal ??= err;
    }
  }
  if (refusal) throw refusal;
}

/**
 * The time bound of a decode: 2 s, plus 0.5 us for every pixel the header claims (the JPEG
 * and PNG targets decode twice: whole and streamed). A decoder's
 * work is linear in the pixels, and a few KB of hostile bytes may claim up to MAX_PIXELS (the
 * JPEG decoder decodes what data there is and fills the rest, as libjpeg does: about 0.13 us a
 * pixel here, so ~1 s for a 5 KB file that says 65500x120); that is what the pixel limit and
 * admission control are for. What the bound catches is work beyond linear: loops, quadratic
 * scans, a stall.
 */
export function decodeTimeBound(bytes: Uint8Array): number {
  let pixels = 0;
  try {
    const info = probe(bytes);
    pixels = Math.min(info.width * info.height, LIMITS.maxPixels);
  } catch {
    // Unreadable header: refused before any pixel work.
  }
  return 2000 + pixels * 0.5e-3;
}
