/**
 * The host rules of URL input (src/url/hosts.ts), exhaustively: every refused range at its
 * edges and just outside them, the IPv4 spellings the URL parser normalizes, the IPv6 forms
 * that carry IPv4, localhost, the Worker's own host, and URL_HOSTS.
 */
import { describe, expect, it } from 'vitest';
import { addressRefusal, hostRules, parseHost, parseIPv4, parseIPv6, refusal, type HostRules } from '../../src/url/hosts';

const OPEN: HostRules = { allowed: [], self: ['edge.test'] };
const check = (url: string, rules = OPEN) => refusal(new URL(url), rules);

describe('literal IPv4 addresses', () => {
  const refused: Array<[string, RegExp]> = [
    ['0.0.0.0', /unspecified/],
    ['0.255.255.255', /unspecified/],
    ['10.0.0.0', /private/],
    ['10.255.255.255', /private/],
    ['100.64.0.0', /CGNAT/],
    ['100.127.255.255', /CGNAT/],
    ['127.0.0.1', /loopback/],
    ['127.255.255.254', /loopback/],
    ['169.254.0.1', /link-local/],
    ['169.254.169.254', /link-local/],
    ['172.16.0.0', /private/],
    ['172.31.255.255', /private/],
    ['192.168.0.1', /private/],
    ['192.168.255.255', /private/],
    ['224.0.0.1', /multicast/],
    ['239.255.255.255', /multicast/],
    ['240.0.0.1', /reserved/],
    ['255.255.255.255', /reserved/],
  ];
  it.each(refused)('refuses %s', (ip, kind) => {
    expect(check(`http://${ip}/x.jpg`)).toMatch(kind);
    expect(check(`https://${ip}:8443/x.jpg`)).toMatch(kind);
  });

  // The neighbours of every range: public addresses must stay allowed.
  const allowed = ['1.0.0.0', '9.255.255.255', '11.0.0.0', '100.63.255.255', '100.128.0.0', '126.255.255.255', '128.0.0.0',
    '169.253.255.255', '169.255.0.0', '172.15.255.255', '172.32.0.0', '192.167.255.255', '192.169.0.0', '223.255.255.255',
    '8.8.8.8', '93.184.215.14'];
  it.each(allowed)('allows %s', (ip) => {
    expect(check(`http://${ip}/x.jpg`)).toBeUndefined();
  });

  // WHATWG URL parsing turns these into dotted decimal; the rules see only the result.
  const spellings: Array<[string, string]> = [
    ['http://2130706433/', '127.0.0.1'],
    ['http://0x7f.1/', '127.0.0.1'],
    ['http://0x7f000001/', '127.0.0.1'],
    ['http://017700000001/', '127.0.0.1'],
    ['http://0177.0.0.1/', '127.0.0.1'],
    ['http://127.1/', '127.0.0.1'],
    ['http://127.0.1/', '127.0.0.1'],
    ['http://0/', '0.0.0.0'],
    ['http://0xa9fea9fe/', '169.254.169.254'],
    ['http://10.1/', '10.0.0.1'],
    ['http://3232235521/', '192.168.0.1'],
    ['http://0300.0250.0.1/', '192.168.0.1'],
    ['http://127.0.0.1./', '127.0.0.1'],
  ];
  it.each(spellings)('refuses %s (parsed as %s)', (url, hostname) => {
    expect(new URL(url).hostname).toBe(hostname);
    expect(check(url)).toMatch(/address$/);
  });

  it('parses only dotted decimal, each octet at most 255', () => {
    expect(parseIPv4('127.0.0.1')).toBe(0x7f000001);
    expect(parseIPv4('255.255.255.255')).toBe(0xffffffff);
    for (const bad of ['256.0.0.1', '1.2.3', '1.2.3.4.5', '0x7f.0.0.1', 'a.b.c.d', '']) expect(parseIPv4(bad)).toBeUndefined();
  });
});

describe('literal IPv6 addresses', () => {
  const refused: Array<[string, RegExp]> = [
    ['::', /unspecified/],
    ['0:0:0:0:0:0:0:0', /unspecified/],
    ['::1', /loopback/],
    ['0:0:0:0:0:0:0:1', /loopback/],
    ['fc00::1', /unique-local/],
    ['fd12:3456:789a::1', /unique-local/],
    ['fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', /unique-local/],
    ['fe80::1', /link-local/],
    ['febf:ffff::1', /link-local/],
    ['fec0::1', /site-local/],
    ['ff02::1', /multicast/],
    // IPv4-mapped, in every spelling the parser accepts.
    ['::ffff:127.0.0.1', /loopback \(IPv4-mapped\)/],
    ['::ffff:7f00:1', /loopback \(IPv4-mapped\)/],
    ['0:0:0:0:0:ffff:7f00:1', /loopback \(IPv4-mapped\)/],
    ['::FFFF:7F00:0001', /loopback \(IPv4-mapped\)/],
    ['::ffff:10.0.0.1', /private \(IPv4-mapped\)/],
    ['::ffff:169.254.169.254', /link-local \(IPv4-mapped\)/],
    ['::ffff:100.64.0.1', /CGNAT \(IPv4-mapped\)/],
    ['::ffff:0.0.0.0', /unspecified \(IPv4-mapped\)/],
    ['::ffff:192.168.1.1', /private \(IPv4-mapped\)/],
    ['::ffff:172.16.0.1', /private \(IPv4-mapped\)/],
    // Other ways IPv6 carries IPv4.
    ['::127.0.0.1', /loopback \(IPv4-compatible\)/],
    ['::ffff:0:127.0.0.1', /loopback \(IPv4-translated\)/],
    ['64:ff9b::127.0.0.1', /loopback \(NAT64\)/],
    ['64:ff9b::a00:1', /private \(NAT64\)/],
    ['2002:7f00:1::', /loopback \(6to4\)/],
    ['2002:c0a8:101::1', /private \(6to4\)/],
  ];
  it.each(refused)('refuses [%s]', (ip, kind) => {
    expect(check(`http://[${ip}]/x.jpg`)).toMatch(kind);
    expect(check(`https://[${ip}]:8443/`)).toMatch(kind);
  });

  const allowed = ['2606:4700::1111', '2001:db8::1', '::ffff:8.8.8.8', '64:ff9b::808:808', '2002:808:808::1', 'fbff::1',
    'fe00::1', 'fe7f::1'];
  it.each(allowed)('allows [%s]', (ip) => {
    expect(check(`http://[${ip}]/x.jpg`)).toBeUndefined();
  });

  it('reads the groups of every form, and nothing else', () => {
    expect(parseIPv6('::')).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
    expect(parseIPv6('::1')).toEqual([0, 0, 0, 0, 0, 0, 0, 1]);
    expect(parseIPv6('1::')).toEqual([1, 0, 0, 0, 0, 0, 0, 0]);
    expect(parseIPv6('1:2:3:4:5:6:7:8')).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(parseIPv6('1:2:3:4:5:6:1.2.3.4')).toEqual([1, 2, 3, 4, 5, 6, 0x102, 0x304]);
    expect(parseIPv6('::ffff:127.0.0.1')).toEqual([0, 0, 0, 0, 0, 0xffff, 0x7f00, 1]);
    expect(parseIPv6('fe80::1:2')).toEqual([0xfe80, 0, 0, 0, 0, 0, 1, 2]);
    for (const bad of ['1:2:3', '1::2::3', '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7::8', 'g::1', '12345::', '::1.2.3.256', '']) {
      expect(parseIPv6(bad), bad).toBeUndefined();
    }
  });

  it('refuses an address it cannot read rather than letting it through', () => {
    expect(addressRefusal('[zz::]')).toMatch(/unreadable/);
  });
});

describe('host names', () => {
  it('refuses localhost and its subdomains in any case, with or without the trailing dot', () => {
    for (const host of ['localhost', 'LOCALHOST', 'localhost.', 'a.localhost', 'api.Internal.localhost.']) {
      expect(check(`http://${host}:8787/x.jpg`), host).toBe('localhost');
    }
    expect(check('http://localhost.example.com/x.jpg')).toBeUndefined();
    expect(check('http://notlocalhost/x.jpg')).toBeUndefined();
  });

  it("refuses the Worker's own host", () => {
    for (const host of ['edge.test', 'EDGE.test', 'edge.test.', 'edge.test:8443']) {
      expect(check(`https://${host}/predict`), host).toBe("the Worker's own host");
    }
    expect(check('https://other.edge.test/x.jpg')).toBeUndefined();
  });

  it('allows public names (what they resolve to is beyond a Worker)', () => {
    expect(check('https://images.example.com/cat.jpg?sig=secret')).toBeUndefined();
    expect(check('http://example.com:8080/cat.jpg')).toBeUndefined();
  });
});

describe('URLs', () => {
  it('takes http and https only', () => {
    for (const url of ['ftp://example.com/x.jpg', 'file:///etc/passwd', 'data:image/png;base64,AAAA', 'javascript:alert(1)', 'ws://example.com/', 'blob:https://example.com/x']) {
      expect(check(url), url).toMatch(/^scheme .* is not http or https$/);
    }
    expect(check('HTTPS://example.com/')).toBeUndefined();
  });

  it('refuses credentials in the URL', () => {
    expect(check('https://user:pass@example.com/x.jpg')).toMatch(/credentials/);
    expect(check('https://user@example.com/x.jpg')).toMatch(/credentials/);
  });
});

describe('URL_HOSTS', () => {
  const rules = hostRules(['Images.Example.com', ' 127.0.0.1 ', '::1', 'localhost', 'edge.test'], ['edge.test', 'edge.test']);

  it('allows only the listed hosts, in any case and on any port', () => {
    expect(check('https://images.example.com/x.jpg', rules)).toBeUndefined();
    expect(check('https://IMAGES.example.com.:444/x.jpg', rules)).toBeUndefined();
    expect(check('https://example.com/x.jpg', rules)).toBe('the host is not in URL_HOSTS');
    expect(check('https://cdn.images.example.com/x.jpg', rules)).toBe('the host is not in URL_HOSTS');
    expect(check('http://8.8.8.8/x.jpg', rules)).toBe('the host is not in URL_HOSTS');
  });

  it('lets a listed host past the localhost, own-host and address refusals (the operator chose it)', () => {
    expect(check('http://127.0.0.1:9000/x.jpg', rules)).toBeUndefined();
    expect(check('http://2130706433:9000/x.jpg', rules)).toBeUndefined();
    expect(check('http://[::1]:9000/x.jpg', rules)).toBeUndefined();
    expect(check('http://localhost:9000/x.jpg', rules)).toBeUndefined();
    expect(check('http://edge.test/x.jpg', rules)).toBeUndefined();
    // Listed is exactly listed: another loopback address is still refused.
    expect(check('http://127.0.0.2/x.jpg', rules)).toBe('the host is not in URL_HOSTS');
    expect(check('http://[::ffff:127.0.0.1]/x.jpg', rules)).toBe('the host is not in URL_HOSTS');
  });

  it('still refuses other schemes and credentials for listed hosts', () => {
    expect(check('ftp://images.example.com/x.jpg', rules)).toMatch(/scheme/);
    expect(check('https://u:p@images.example.com/x.jpg', rules)).toMatch(/credentials/);
  });

  it('normalizes entries as URLs normalize hosts, and refuses a list entry that is no host', () => {
    expect(parseHost('0x7f.1')).toBe('127.0.0.1');
    expect(parseHost('::FFFF:127.0.0.1')).toBe('[::ffff:7f00:1]');
    expect(parseHost('[::1]')).toBe('[::1]');
    expect(parseHost('Example.COM.')).toBe('example.com');
    expect(parseHost('example.com:8080')).toBe('example.com');
    for (const bad of ['', '  ', 'http://x/', 'a/b', 'a b', 'u@host']) expect(parseHost(bad), bad).toBeUndefined();
    expect(() => hostRules(['example.com', 'a/b'], ['edge.test'])).toThrow(/URL_HOSTS: "a\/b"/);
  });

  it("takes the Worker's own names as given (request URL host, Host header), or none", () => {
    const r = hostRules([], ['api.example.net:8443', 'Front.Example.org', undefined, 'API.example.net']);
    expect(r.self).toEqual(['api.example.net', 'front.example.org']);
    expect(hostRules([], []).self).toEqual([]);
    expect(check('https://api.example.net/x.jpg', r)).toBe("the Worker's own host");
    expect(check('https://front.example.org/x.jpg', r)).toBe("the Worker's own host");
    expect(check('https://example.org/x.jpg', r)).toBeUndefined();
  });
});
