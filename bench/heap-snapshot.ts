/**
 * What holds the isolate's large ArrayBuffers: a V8 heap snapshot (DevTools'
 * `HeapProfiler.takeHeapSnapshot`, which collects garbage first, so everything in it is live)
 * summarized as each backing store of 1 MiB or more with the chain of objects that retains it.
 * bench/heap-burst.ts `--snapshot` takes one in the middle of each burst.
 */

/** The parts of a .heapsnapshot this reads. */
interface HeapSnapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]]; edge_fields: string[]; edge_types: [string[], ...unknown[]] } };
  nodes: number[];
  edges: number[];
  strings: string[];
}

export interface HeldBuffer {
  bytes: number;
  /** Retainers from the buffer outwards, e.g. `ArrayBuffer <-[buffer] Uint8Array <-[bytes] Object`. */
  path: string;
}

export interface BufferSummary {
  /** Sum of every ArrayBuffer backing store in the snapshot. */
  totalBytes: number;
  count: number;
  /** Those of 1 MiB or more, largest first. */
  large: HeldBuffer[];
  /** V8's JS heap: the sum of the nodes' own sizes, backing stores excepted. */
  jsHeapBytes: number;
  /** The backing stores of WebAssembly memories (their buffer's holder is a `Memory`), part of totalBytes. */
  wasmBytes: number;
}

export function summarizeBuffers(json: string, minBytes = 1024 * 1024, depth = 6): BufferSummary {
  const s = JSON.parse(json) as HeapSnapshot;
  const nf = s.snapshot.meta.node_fields;
  const ef = s.snapshot.meta.edge_fields;
  const nodeTypes = s.snapshot.meta.node_types[0];
  const edgeTypes = s.snapshot.meta.edge_types[0];
  const N = nf.length;
  const E = ef.length;
  const [nType, nName, nSize, nEdges] = ['type', 'name', 'self_size', 'edge_count'].map((f) => nf.indexOf(f)) as [number, number, number, number];
  const [eType, eName, eTo] = ['type', 'name_or_index', 'to_node'].map((f) => ef.indexOf(f)) as [number, number, number];
  const count = s.nodes.length / N;
  const firstEdge = new Uint32Array(count + 1);
  for (let i = 0; i < count; i++) firstEdge[i + 1] = firstEdge[i]! + s.nodes[i * N + nEdges]!;
  // Reverse edges: for each node, who points at it (first retainer found is enough for a path).
  const retainers: Array<Array<[number, string]>> = Array.from({ length: count }, () => []);
  for (let i = 0; i < count; i++) {
    for (let e = firstEdge[i]!; e < firstEdge[i + 1]!; e++) {
      const type = edgeTypes[s.edges[e * E + eType]!]!;
      if (type === 'weak' || type === 'shortcut') continue;
      const to = s.edges[e * E + eTo]! / N;
      const nameOrIndex = s.edges[e * E + eName]!;
      const label = type === 'element' || type === 'hidden' ? `[${nameOrIndex}]` : (s.strings[nameOrIndex] ?? '?');
      if (retainers[to]!.length < 4) retainers[to]!.push([i, label]);
    }
  }
  const nameOf = (i: number): string => {
    const type = nodeTypes[s.nodes[i * N + nType]!]!;
    const name = s.strings[s.nodes[i * N + nName]!] ?? '?';
    return type === 'object' || type === 'native' ? name.slice(0, 60) : `(${type}) ${name.slice(0, 40)}`;
  };
  let totalBytes = 0;
  let buffers = 0;
  let jsHeapBytes = 0;
  let wasmBytes = 0;
  const large: HeldBuffer[] = [];
  // A wasm memory's backing store belongs to an (Shared)ArrayBuffer that a Memory object holds
  // (found over every edge: a heap's buffer has more retainers than `retainers` keeps).
  const heldByMemory = new Set<number>();
  for (let i = 0; i < count; i++) {
    if (s.strings[s.nodes[i * N + nName]!] !== 'Memory') continue;
    for (let e = firstEdge[i]!; e < firstEdge[i + 1]!; e++) heldByMemory.add(s.edges[e * E + eTo]! / N);
  }
  const isWasmMemory = (store: number) => retainers[store]!.some(([buffer]) => heldByMemory.has(buffer));
  for (let i = 0; i < count; i++) {
    const name = s.strings[s.nodes[i * N + nName]!] ?? '';
    const size = s.nodes[i * N + nSize]!;
    // A backing store is a native node named after JSArrayBufferData.
    if (!/JSArrayBufferData/.test(name)) {
      jsHeapBytes += size;
      continue;
    }
    totalBytes += size;
    buffers++;
    if (isWasmMemory(i)) wasmBytes += size;
    if (size < minBytes) continue;
    const parts: string[] = [];
    let at = i;
    const seen = new Set<number>([i]);
    for (let d = 0; d < depth; d++) {
      const next = retainers[at]!.find(([from]) => !seen.has(from));
      if (!next) break;
      parts.push(`<-[${next[1]}] ${nameOf(next[0])}`);
      seen.add(next[0]);
      at = next[0];
    }
    large.push({ bytes: size, path: parts.join(' ') });
  }
  large.sort((a, b) => b.bytes - a.bytes);
  return { totalBytes, count: buffers, large, jsHeapBytes, wasmBytes };
}
