/**
 * Which URLs the Worker may fetch for a caller. Pure functions over WHATWG-parsed URLs: the
 * parser has already turned every IPv4 spelling (`2130706433`, `0x7f.1`, `017700000001`,
 * `127.1`) into dotted decimal and every IPv6 one into its compressed hex form, so the
 * rules look only at `url.hostname` and never at what the caller typed.
 *
 * What these rules cannot see: a host *name* that resolves to a private address. A Worker
 * has no DNS lookup before `fetch()`, so that is left to the network the Worker runs on.
 */

export interface HostRules {
  /** Normalized host names of URL_HOSTS: when non-empty, the only hosts allowed. */
  allowed: readonly string[];
  /** Normalized names the Worker itself answers on (request URL, Host header). */
  self: readonly string[];
}

/**
 * Why `url` must not be fetched, or undefined when it may be. Hosts listed in URL_HOSTS skip
 * every other host check: listing one is the operator's decision.
 */
export function refusal(url: URL, rules: HostRules): string | undefined {
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return `scheme ${url.protocol.slice(0, 20)} is not http or https`;
  // Credentials in a URL would be forwarded to whoever the host is (and may come back in logs).
  if (url.username !== '' || url.password !== '') return 'the URL carries credentials';
  const host = normalizeHostname(url.hostname);
  if (host === '') return 'the URL has no host';
  if (rules.allowed.length > 0) return rules.allowed.includes(host) ? undefined : 'the host is not in URL_HOSTS';
  if (host === 'localhost' || host.endsWith('.localhost')) return 'localhost';
  if (rules.self.includes(host)) return "the Worker's own host";
  const special = addressRefusal(host);
  return special ? `${special} address` : undefined;
}

/** Host names compare lowercase and without the root label's trailing dot (`localhost.`). */
export function normalizeHostname(hostname: string): string {
  return hostname.toLowerCase().replace(/\.$/, '');
}

/**
 * Normalizes a host as configured or sent (`Example.COM`, `edge.test:8787`, `::1`, `0x7f.1`)
 * the way URLs are, so that a listed host matches the hostname of a URL naming it. Returns
 * undefined for what is no host at all.
 */
export function parseHost(entry: string): string | undefined {
  let text = entry.trim();
  if (text === '') return undefined;
  // A bare IPv6 address (several colons, no brackets) cannot carry a port.
  if (!text.startsWith('[') && (text.match(/:/g)?.length ?? 0) > 1) text = `[${text}]`;
  try {
    const url = new URL(`http://${text}`);
    if (url.pathname !== '/' || url.search !== '' || url.hash !== '' || url.username !== '') return undefined;
    return normalizeHostname(url.hostname) || undefined;
  } catch {
    return undefined;
  }
}

/**
 * The rules for one fetch: URL_HOSTS (already split) and the names the Worker was reached on
 * (`host[:port]` of the request URL, its Host header; none for an RPC call).
 */
export function hostRules(allowed: readonly string[], selfHosts: ReadonlyArray<string | undefined>): HostRules {
  const list = allowed.map((entry) => {
    const host = parseHost(entry);
    // A misconfigured allow list must fail loudly, not silently allow or refuse everything.
    if (host === undefined) throw new Error(`URL_HOSTS: "${entry}" is not a host name`);
    return host;
  });
  const self = selfHosts.map((h) => (h === undefined ? undefined : parseHost(h)));
  return { allowed: list, self: [...new Set(self.filter((h): h is string => h !== undefined))] };
}

/**
 * What kind of non-public address a hostname is, or undefined (a public address or a name).
 * Expects a WHATWG hostname: dotted-decimal IPv4, or bracketed IPv6.
 */
export function addressRefusal(hostname: string): string | undefined {
  if (hostname.startsWith('[') && hostname.endsWith(']')) {
    const groups = parseIPv6(hostname.slice(1, -1));
    // The URL parser would have refused an address we cannot read: treat it as refused.
    return groups ? ipv6Refusal(groups) : 'an unreadable IPv6';
  }
  const v4 = parseIPv4(hostname);
  return v4 === undefined ? undefined : ipv4Refusal(v4);
}

/** [network, prefix length, kind], IPv4 as unsigned 32-bit integers. */
const IPV4_RANGES: Array<[string, number, string]> = [
  ['0.0.0.0', 8, 'an unspecified'],
  ['10.0.0.0', 8, 'a private'],
  ['100.64.0.0', 10, 'a CGNAT'],
  ['127.0.0.0', 8, 'a loopback'],
  ['169.254.0.0', 16, 'a link-local'],
  ['172.16.0.0', 12, 'a private'],
  ['192.168.0.0', 16, 'a private'],
  ['224.0.0.0', 4, 'a multicast'],
  // Reserved, and 255.255.255.255 (broadcast) within it.
  ['240.0.0.0', 4, 'a reserved'],
];
const V4 = IPV4_RANGES.map(([net, bits, kind]) => ({ net: parseIPv4(net)!, mask: bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0, kind }));

export function ipv4Refusal(address: number): string | undefined {
  return V4.find(({ net, mask }) => ((address & mask) >>> 0) === net)?.kind;
}

/** Dotted decimal (as the URL parser normalizes to) to an unsigned 32-bit integer. */
export function parseIPv4(text: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (!m) return undefined;
  const octets = m.slice(1).map(Number);
  if (octets.some((o) => o > 255)) return undefined;
  return octets.reduce((acc, o) => acc * 256 + o, 0);
}

function ipv6Refusal(g: number[]): string | undefined {
  const embedded = (hi: number, lo: number) => ipv4Refusal(hi * 65536 + lo);
  const zeros = (from: number, to: number) => g.slice(from, to).every((x) => x === 0);
  if (zeros(0, 8)) return 'an unspecified';
  if (zeros(0, 7) && g[7] === 1) return 'a loopback';
  // IPv4 carried in IPv6 reaches the IPv4 host: mapped ::ffff:a.b.c.d, translated
  // ::ffff:0:a.b.c.d, compatible ::a.b.c.d, NAT64 64:ff9b::a.b.c.d, and 6to4 2002:AABB:CCDD::.
  const carried = (kind: string | undefined, form: string) => (kind ? `${kind} (${form})` : undefined);
  if (zeros(0, 5) && g[5] === 0xffff) return carried(embedded(g[6]!, g[7]!), 'IPv4-mapped');
  if (zeros(0, 4) && g[4] === 0xffff && g[5] === 0) return carried(embedded(g[6]!, g[7]!), 'IPv4-translated');
  if (zeros(0, 6)) return carried(embedded(g[6]!, g[7]!), 'IPv4-compatible');
  if (g[0] === 0x64 && g[1] === 0xff9b && zeros(2, 6)) return carried(embedded(g[6]!, g[7]!), 'NAT64');
  if (g[0] === 0x2002) return carried(embedded(g[1]!, g[2]!), '6to4');
  if ((g[0]! & 0xfe00) === 0xfc00) return 'a unique-local';
  if ((g[0]! & 0xffc0) === 0xfe80) return 'a link-local';
  if ((g[0]! & 0xffc0) === 0xfec0) return 'a site-local';
  if ((g[0]! & 0xff00) === 0xff00) return 'a multicast';
  return undefined;
}

/** An IPv6 address (no brackets, no zone) to its eight 16-bit groups, or undefined. */
export function parseIPv6(text: string): number[] | undefined {
  let body = text.toLowerCase();
  let tail: number[] = [];
  // A dotted-quad tail (::ffff:1.2.3.4) is two groups.
  const dotted = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(body);
  if (dotted) {
    const v4 = parseIPv4(dotted[2]!);
    if (v4 === undefined) return undefined;
    tail = [v4 >>> 16, v4 & 0xffff];
    body = dotted[1]!.endsWith('::') ? dotted[1]! : dotted[1]!.slice(0, -1);
  }
  const halves = body.split('::');
  if (halves.length > 2) return undefined;
  const parse = (part: string) => (part === '' ? [] : part.split(':').map((h) => (/^[0-9a-f]{1,4}$/.test(h) ? parseInt(h, 16) : NaN)));
  const head = parse(halves[0]!);
  const rest = halves.length === 2 ? parse(halves[1]!) : [];
  const given = head.length + rest.length + tail.length;
  if ([...head, ...rest].some(Number.isNaN)) return undefined;
  if (halves.length === 1 && given !== 8) return undefined;
  if (halves.length === 2 && given > 7) return undefined;
  return [...head, ...new Array<number>(8 - given).fill(0), ...rest, ...tail];
}
