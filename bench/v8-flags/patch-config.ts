/**
 * Adds V8 flags to a workerd configuration in Cap'n Proto's binary form (stdin to stdout), for
 * `workerd.sh`. wrangler 4.86's miniflare hands workerd its config on stdin and offers no way to
 * set `Config.v8Flags`; the test pool's newer miniflare reads MINIFLARE_WORKERD_V8_FLAGS, this is
 * that for `wrangler dev`.
 *
 * The flags go in a segment appended to the message, reached from the root's `v8Flags` pointer
 * (index 2 of `struct Config`, workerd.capnp) through a far pointer: nothing already encoded moves.
 *
 *   node --import tsx bench/v8-flags/patch-config.ts --trace-gc-verbose < config.bin > patched.bin
 */
import { readFileSync, writeFileSync } from 'node:fs';

const V8_FLAGS_POINTER = 2;

export function withV8Flags(message: Uint8Array, flags: readonly string[]): Uint8Array {
  const view = new DataView(message.buffer, message.byteOffset, message.byteLength);
  const count = view.getUint32(0, true) + 1;
  const headerWords = Math.ceil((4 + 4 * count) / 8);
  const segments: { start: number; words: number }[] = [];
  let at = headerWords * 8;
  for (let i = 0; i < count; i++) {
    const words = view.getUint32(4 + 4 * i, true);
    segments.push({ start: at, words });
    at += words * 8;
  }
  if (at > message.byteLength) throw new Error(`config: ${count} segments need ${at} bytes, got ${message.byteLength}`);
  const word = (seg: number, w: number) => view.getBigUint64(segments[seg]!.start + w * 8, true);

  // The root: a struct pointer, or a far pointer to one (a single landing pad).
  let seg = 0;
  let pos = 0;
  let root = word(0, 0);
  if ((root & 3n) === 2n) {
    if (root & 4n) throw new Error('config: a double-far root pointer is not handled');
    seg = Number(root >> 32n);
    pos = Number((root >> 3n) & 0x1fffffffn);
    root = word(seg, pos);
  }
  if ((root & 3n) !== 0n) throw new Error('config: the root is not a struct');
  const offset = Number(BigInt.asIntN(30, (root >> 2n) & 0x3fffffffn));
  const dataWords = Number((root >> 32n) & 0xffffn);
  const pointers = Number((root >> 48n) & 0xffffn);
  if (pointers <= V8_FLAGS_POINTER) throw new Error(`config: the root struct has ${pointers} pointers, v8Flags is pointer ${V8_FLAGS_POINTER}`);
  const slot = segments[seg]!.start + (pos + 1 + offset + dataWords + V8_FLAGS_POINTER) * 8;

  // The new segment: a landing pad, the list of text pointers, then the texts (NUL-terminated).
  const texts = flags.map((f) => new TextEncoder().encode(`${f}\0`));
  const textWords = texts.map((t) => Math.ceil(t.length / 8));
  const words = 1 + flags.length + textWords.reduce((a, b) => a + b, 0);
  const extra = new Uint8Array(words * 8);
  const ev = new DataView(extra.buffer);
  const listPointer = (offsetWords: number, elementSize: number, elements: number) =>
    1n | (BigInt.asUintN(30, BigInt(offsetWords)) << 2n) | (BigInt(elementSize) << 32n) | (BigInt(elements) << 35n);
  ev.setBigUint64(0, listPointer(0, 6, flags.length), true);
  let textAt = 1 + flags.length;
  texts.forEach((t, i) => {
    const pointerAt = 1 + i;
    ev.setBigUint64(pointerAt * 8, listPointer(textAt - pointerAt - 1, 2, t.length), true);
    extra.set(t, textAt * 8);
    textAt += textWords[i]!;
  });

  const newHeaderWords = Math.ceil((4 + 4 * (count + 1)) / 8);
  const body = message.subarray(headerWords * 8, at);
  const out = new Uint8Array(newHeaderWords * 8 + body.length + extra.length);
  const ov = new DataView(out.buffer);
  ov.setUint32(0, count, true);
  segments.forEach((s, i) => ov.setUint32(4 + 4 * i, s.words, true));
  ov.setUint32(4 + 4 * count, words, true);
  out.set(body, newHeaderWords * 8);
  out.set(extra, newHeaderWords * 8 + body.length);
  const slotOut = slot - headerWords * 8 + newHeaderWords * 8;
  if (ov.getBigUint64(slotOut, true) !== 0n) process.stderr.write('patch-config: the config had V8 flags of its own; they are replaced\n');
  // A far pointer (single landing pad at word 0 of the new segment).
  ov.setBigUint64(slotOut, 2n | (BigInt(count) << 32n), true);
  return out;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const flags = process.argv.slice(2);
  writeFileSync(1, withV8Flags(readFileSync(0), flags));
}
