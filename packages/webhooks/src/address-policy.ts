/**
 * Where webhooks may go (SSRF): an endpoint URL is `https` (plain `http` only when allowed: not
 * in production), has no credentials, and every address its name resolves to, and the one
 * actually connected to, is a public unicast address unless private ones are allowed
 * (WEBHOOK_ALLOW_PRIVATE, for a receiver on the same network). Redirects are never followed.
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { isIP, type LookupFunction } from 'node:net';

/** What the policy allows. */
export interface AddressPolicy {
  allowHttp: boolean;
  allowPrivate: boolean;
}

/** IPv4 ranges that are not public: [first, prefix length]. */
const V4_BLOCKED: [string, number][] = [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12],
  ['192.0.0.0', 24], ['192.0.2.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['198.51.100.0', 24], ['203.0.113.0', 24],
  ['224.0.0.0', 4], ['240.0.0.0', 4],
];

const v4 = (ip: string): number => ip.split('.').reduce((a, o) => a * 256 + Number(o), 0);

function v4Blocked(ip: string): boolean {
  const n = v4(ip);
  return V4_BLOCKED.some(([base, bits]) => Math.floor(n / 2 ** (32 - bits)) === Math.floor(v4(base) / 2 ** (32 - bits)));
}

/** Whether an address is a public unicast one (not loopback, private, link-local, shared, reserved or multicast). */
export function isPublicAddress(ip: string): boolean {
  const kind = isIP(ip);
  if (kind === 4) return !v4Blocked(ip);
  if (kind !== 6) return false;
  const a = ip.toLowerCase();
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(a);
  if (mapped) return !v4Blocked(mapped[1]!);
  if (a === '::' || a === '::1') return false;
  // fc00::/7 unique local, fe80::/10 link-local, ff00::/8 multicast, 2001:db8::/32 documentation, 64:ff9b::/96 NAT64.
  return !(/^f[cd]/.test(a) || /^fe[89ab]/.test(a) || a.startsWith('ff') || a.startsWith('2001:db8:') || a.startsWith('64:ff9b:'));
}

/** Why a URL is refused, or null when it may be registered. Checks the URL itself; addresses are checked at connect. */
export function urlProblem(raw: string, policy: AddressPolicy): string | null {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    return 'not a URL';
  }
  if (u.protocol !== 'https:' && !(policy.allowHttp && u.protocol === 'http:')) return policy.allowHttp ? 'must be http or https' : 'must be https';
  if (u.username || u.password) return 'must not carry credentials';
  if (u.hash) return 'must not have a fragment';
  const host = u.hostname.replace(/^\[|\]$/g, '');
  if (isIP(host) && !policy.allowPrivate && !isPublicAddress(host)) return 'must not be a loopback, private or link-local address';
  if (!policy.allowPrivate && (host === 'localhost' || host.endsWith('.localhost'))) return 'must not be a loopback, private or link-local address';
  return null;
}

/**
 * A DNS lookup for the delivery client's connections that refuses names resolving to an address
 * the policy does not allow: the check is on the address actually connected to, after DNS, so a
 * name that resolves to 127.0.0.1 on the day of delivery is refused then.
 */
export function guardedLookup(policy: AddressPolicy): LookupFunction {
  return ((hostname: string, options: object, callback: (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void) => {
    dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, '', 0);
      const list = addresses as LookupAddress[];
      const bad = policy.allowPrivate ? undefined : list.find((a) => !isPublicAddress(a.address));
      if (bad) {
        const e: NodeJS.ErrnoException = new Error(`webhook address ${bad.address} is not allowed (private, loopback or link-local)`);
        e.code = 'EADDRNOTALLOWED';
        return callback(e, '', 0);
      }
      if ((options as { all?: boolean }).all) return callback(null, list);
      const first = list[0]!;
      callback(null, first.address, first.family);
    });
  }) as LookupFunction;
}
