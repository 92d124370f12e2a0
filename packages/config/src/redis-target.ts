/**
 * Where Redis is: one URL (`redis://` or `rediss://` for TLS, with user and password in it if
 * any), a Sentinel group (REDIS_SENTINELS, REDIS_SENTINEL_NAME), whose primary the client asks
 * the sentinels for and follows through failovers, or a Redis Cluster (REDIS_CLUSTER_NODES), whose
 * slots the client learns from the nodes and follows through redirections and failovers. One
 * description for every process and thread; the store turns it into connections.
 */
import { z } from 'zod';

/** A sentinel's, or a cluster node's, address. */
export interface NodeAddress {
  host: string;
  port: number;
}

/** A sentinel's address. */
export type SentinelAddress = NodeAddress;

/** Everything a connection to Sluice's Redis needs. */
export type RedisTarget =
  | { kind: 'url'; url: string }
  | {
      kind: 'sentinel';
      sentinels: SentinelAddress[];
      /** The monitored primary's name (`sentinel monitor <name> …`). */
      name: string;
      /** ACL user and password of the data nodes (primary and replicas). */
      username?: string;
      password?: string;
      /** The sentinels' own ACL user and password, when they require one. */
      sentinelUsername?: string;
      sentinelPassword?: string;
      /** TLS to the sentinels and to the data nodes (CAs beyond the system's: NODE_EXTRA_CA_CERTS). */
      tls: boolean;
    }
  | {
      kind: 'cluster';
      /** Some of the cluster's nodes: the client asks them for the rest and for the slots. */
      nodes: NodeAddress[];
      /** ACL user and password of the cluster's nodes. */
      username?: string;
      password?: string;
      tls: boolean;
    };

const HOST_PORT = /^\[?([A-Za-z0-9.:_-]+?)\]?:(\d{1,5})$/;

/** Parses `host:port,host:port` (IPv6 in brackets); throws naming the bad entry. */
export function parseNodes(list: string): NodeAddress[] {
  const out: NodeAddress[] = [];
  for (const raw of list.split(',').map((s) => s.trim()).filter(Boolean)) {
    const m = HOST_PORT.exec(raw);
    const port = m ? Number(m[2]) : 0;
    if (!m || port < 1 || port > 65_535) throw new Error(`"${raw}" is not host:port`);
    out.push({ host: m[1]!, port });
  }
  if (out.length === 0) throw new Error('no address given');
  return out;
}

/** The sentinels of REDIS_SENTINELS (`host:port,…`). */
export const parseSentinels = parseNodes;

/**
 * The hash tag of a key prefix (`{sluice}` → `sluice`), as Redis Cluster hashes it: the text
 * between the first `{` and the next `}`, when not empty; null when the prefix has none.
 */
export function hashTagOf(prefix: string): string | null {
  const open = prefix.indexOf('{');
  if (open < 0) return null;
  const close = prefix.indexOf('}', open + 1);
  return close > open + 1 ? prefix.slice(open + 1, close) : null;
}

/**
 * The prefix of a part of Sluice's keys that may live in a hash slot of its own on Redis Cluster
 * (no script touches its keys together with the rest's): the prefix's hash tag `{T}` becomes
 * `{T:part}`. A prefix without a hash tag (one Redis) is returned as it is.
 */
export function slotPrefix(prefix: string, part: string): string {
  const tag = hashTagOf(prefix);
  return tag === null ? prefix : prefix.replace(`{${tag}}`, `{${tag}:${part}}`);
}

const addressList = () =>
  z
    .string()
    .optional()
    .superRefine((v, ctx) => {
      if (v === undefined || v === '') return;
      try {
        parseNodes(v);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: err instanceof Error ? err.message : String(err) });
      }
    });

/** The variables of {@link RedisTarget}, checked at boot with the rest of the configuration. */
export const redisTargetVariables = {
  /** Sentinels (`host:port,…`): set, Sluice follows the primary they name instead of REDIS_URL's host. */
  REDIS_SENTINELS: addressList(),
  /** Nodes of a Redis Cluster (`host:port,…`): set, Sluice runs on the cluster instead of REDIS_URL. */
  REDIS_CLUSTER_NODES: addressList(),
  REDIS_SENTINEL_NAME: z.string().min(1).default('mymaster'),
  REDIS_USERNAME: z.string().optional(),
  REDIS_PASSWORD: z.string().optional(),
  REDIS_SENTINEL_USERNAME: z.string().optional(),
  REDIS_SENTINEL_PASSWORD: z.string().optional(),
  /** TLS with Sentinel or Cluster (with one URL, `rediss://` says it). */
  REDIS_TLS: z.enum(['true', 'false']).default('false').transform((v) => v === 'true'),
};

interface TargetSettings {
  REDIS_URL: string;
  REDIS_SENTINELS?: string | undefined;
  REDIS_CLUSTER_NODES?: string | undefined;
  REDIS_SENTINEL_NAME: string;
  REDIS_USERNAME?: string | undefined;
  REDIS_PASSWORD?: string | undefined;
  REDIS_SENTINEL_USERNAME?: string | undefined;
  REDIS_SENTINEL_PASSWORD?: string | undefined;
  REDIS_TLS: boolean;
}

/** The configured Redis: the cluster, or the sentinels, when set; else REDIS_URL. */
export function redisTargetOf(c: TargetSettings): RedisTarget {
  if (c.REDIS_CLUSTER_NODES) {
    return {
      kind: 'cluster',
      nodes: parseNodes(c.REDIS_CLUSTER_NODES),
      ...(c.REDIS_USERNAME ? { username: c.REDIS_USERNAME } : {}),
      ...(c.REDIS_PASSWORD ? { password: c.REDIS_PASSWORD } : {}),
      tls: c.REDIS_TLS,
    };
  }
  if (!c.REDIS_SENTINELS) return { kind: 'url', url: c.REDIS_URL };
  return {
    kind: 'sentinel',
    sentinels: parseSentinels(c.REDIS_SENTINELS),
    name: c.REDIS_SENTINEL_NAME,
    ...(c.REDIS_USERNAME ? { username: c.REDIS_USERNAME } : {}),
    ...(c.REDIS_PASSWORD ? { password: c.REDIS_PASSWORD } : {}),
    ...(c.REDIS_SENTINEL_USERNAME ? { sentinelUsername: c.REDIS_SENTINEL_USERNAME } : {}),
    ...(c.REDIS_SENTINEL_PASSWORD ? { sentinelPassword: c.REDIS_SENTINEL_PASSWORD } : {}),
    tls: c.REDIS_TLS,
  };
}

/** The target for logs and pages: never a password. */
export function describeRedisTarget(t: RedisTarget): string {
  if (t.kind === 'cluster') return `cluster via ${t.nodes.map((n) => `${n.host}:${n.port}`).join(',')}${t.tls ? ' (TLS)' : ''}`;
  if (t.kind === 'sentinel') return `sentinel ${t.name} via ${t.sentinels.map((s) => `${s.host}:${s.port}`).join(',')}${t.tls ? ' (TLS)' : ''}`;
  try {
    const u = new URL(t.url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'redis (unparsable URL)';
  }
}
