/**
 * Calibration/evaluation tensors from photo files, made exactly as the Worker makes its inputs:
 * src/image's decoder, then the wasm preprocessing kernel (bit-identical to the reference).
 *
 * Few distinct photos are available here, so each can also be used as a few "views": mirrored
 * and/or resized to a larger shorter side before the same center crop (a zoom-in). They are not
 * independent images; callers that report numbers should say how many scenes they came from.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { decodeImage } from '../../../src/image/index';
import { decodePlannedSync } from '../../../src/image/index';
import { planFor } from '../../../src/pipeline/prepare';
import { IMAGENET_PREPROCESS, type PreprocessSpec } from '../../../src/models/manifest';
import type { PreprocessKernel } from '../../../wasm/preprocess/index';
import { loadKernel } from '../kernel';

export interface View {
  mirror: boolean;
  /** Shorter side before the 224 center crop; 256 is the zoo's preprocessing. */
  resizeShorter: number;
}

export const PLAIN: View[] = [{ mirror: false, resizeShorter: 256 }];
export const AUGMENTED: View[] = [
  { mirror: false, resizeShorter: 256 },
  { mirror: true, resizeShorter: 256 },
  { mirror: false, resizeShorter: 320 },
  { mirror: true, resizeShorter: 400 },
];

export interface PhotoTensor {
  name: string;
  tensor: Float32Array;
}

let kernel: PreprocessKernel | undefined;

function mirrored(img: { width: number; height: number; data: Uint8Array }): { width: number; height: number; data: Uint8Array } {
  const out = new Uint8Array(img.data.length);
  const row = img.width * 3;
  for (let y = 0; y < img.height; y++) {
    for (let x = 0; x < img.width; x++) {
      const s = y * row + x * 3;
      const d = y * row + (img.width - 1 - x) * 3;
      out[d] = img.data[s]!;
      out[d + 1] = img.data[s + 1]!;
      out[d + 2] = img.data[s + 2]!;
    }
  }
  return { width: img.width, height: img.height, data: out };
}

export function photoTensors(paths: readonly string[], views: readonly View[] = PLAIN): PhotoTensor[] {
  kernel ??= loadKernel();
  const out: PhotoTensor[] = [];
  for (const p of paths) {
    const bytes = new Uint8Array(readFileSync(p));
    const limits = { maxPixels: 50_000_000 };
    // Mirrored views are made from the full decode; plain ones take the Worker's own path.
    const flipped = views.some((v) => v.mirror) ? mirrored(decodeImage(bytes, limits)) : undefined;
    for (const v of views) {
      const spec: PreprocessSpec = { ...IMAGENET_PREPROCESS, resizeShorter: v.resizeShorter };
      const t = new Float32Array(3 * spec.cropHeight * spec.cropWidth);
      if (v.mirror) kernel.run(flipped!, spec, t, 0);
      else {
        // The Worker's decode plan (reduced scale for big JPEGs), collected: bit-identical to its streaming.
        const plan = { ...planFor(bytes, spec, limits), streams: false };
        kernel.run(decodePlannedSync(bytes, plan, limits), spec, t, 0, plan.reduction);
      }
      out.push({ name: `${basename(p)}${v.mirror ? ':mirror' : ''}@${v.resizeShorter}`, tensor: t });
    }
  }
  return out;
}
