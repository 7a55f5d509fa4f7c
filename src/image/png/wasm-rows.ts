/**
 * Rows read by our wasm module (wasm/png): zlib 1.2.13, the library the reference's Pillow
 * inflates PNGs with, pulling each scanline into the module's memory, and PNG's filters undone
 * there. So a corrupt stream is refused where Pillow refuses it, in zlib's own words, and a
 * 12 MP PNG decodes ~2-3x faster than with our JS inflater and unfilter (bench/png-decode.ts).
 */
import { PngRows, PngRowsError } from '../../../wasm/png/index';
import { badChecksum, badData, badFilter, endedEarly, idatPieces, INFLATE_SLACK, tooMuchData, truncated, type RowReader } from './rows';

// See ../webp/module.ts for why this is a top-level dynamic import. null: no .wasm loader.
const rowsModule: WebAssembly.Module | null = await import('./module').then(
  (m) => m.default,
  () => null,
);

let shared: PngRows | null = null;

/**
 * The isolate's module instance, or null where the module did not load. One serves every
 * decode: a PNG is read synchronously from its first row to finish(), so decodes never interleave.
 */
export function pngRowsModule(): PngRows | null {
  if (!rowsModule) return null;
  shared ??= PngRows.fromModule(rowsModule);
  return shared;
}

/** Bytes of the module's memory besides the rows (its buffers, zlib's state and window, stack). */
export const WASM_ROWS_BASE_BYTES = 256 * 1024;

/** Our 422 for what stopped the module. */
function refusal(err: unknown, y: number): unknown {
  if (!(err instanceof PngRowsError)) return err;
  switch (err.kind) {
    case 'truncated':
      return truncated();
    case 'ended':
      return endedEarly();
    case 'filter':
      return badFilter(err.filter, y);
    case 'too-much':
      return tooMuchData();
    case 'data':
      return err.message === 'incorrect data check' ? badChecksum() : badData(err.message);
    default:
      return err;
  }
}

export class WasmRows implements RowReader {
  constructor(
    bytes: Uint8Array,
    idat: number,
    rowBytes: number,
    private readonly bpp: number,
    private readonly rows: PngRows,
  ) {
    rows.begin(rowBytes, idatPieces(bytes, idat));
  }

  pass(n: number): void {
    this.rows.pass(n);
  }

  row(n: number, y: number): Uint8Array {
    try {
      return this.rows.row(n, this.bpp);
    } catch (err) {
      throw refusal(err, y);
    }
  }

  finish(): void {
    try {
      this.rows.finish(INFLATE_SLACK);
    } catch (err) {
      throw refusal(err, -1);
    }
  }

  close(): void {
    this.rows.end();
  }
}
