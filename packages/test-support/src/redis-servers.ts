/**
 * For tests of Redis beyond one node: real `redis-server` processes on free local ports, each in a
 * temporary directory, stopped (and their directories removed) by `stop`, and killed when the test
 * process exits. A Sentinel group is one primary, its replicas and the sentinels watching them.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';

const alive = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of alive) c.kill('SIGKILL');
});

/**
 * A free TCP port on 127.0.0.1 (free when asked; taken by the caller soon after): for processes
 * that take their port from the environment, where 0 would hide it.
 */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as { port: number };
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

/** One running redis-server (data node or sentinel). */
export interface RedisServer {
  port: number;
  url: string;
  /** Its directory (its files, and a sentinel's rewritten configuration). */
  dir: string;
  child: ChildProcess;
  /** A plain client to this server (not following failovers), one per server; closed by `stop`. */
  client(): Redis;
  /** SIGKILL, as a crash: nothing saved, connections cut. */
  kill9(): Promise<void>;
  /** Starts it again on the same port with the same arguments (a crashed node coming back). */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

async function waitForPing(port: number, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const r = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    r.on('error', () => undefined);
    try {
      await r.connect();
      if ((await r.ping()) === 'PONG') return;
    } catch {
      if (Date.now() > until) throw new Error(`redis-server on ${port} did not answer within ${timeoutMs} ms`);
      await new Promise((res) => setTimeout(res, 50));
    } finally {
      r.disconnect();
    }
  }
}

/**
 * A data node's defaults: nothing persisted, and a replica's first sync at once (Redis 7 waits 5 s
 * for more replicas before a diskless sync by default).
 */
const NODE_DEFAULTS = [['save', '""'], ['appendonly', 'no'], ['repl-diskless-sync-delay', '0']];

/**
 * Starts a redis-server with `args` (redis.conf lines as [name, value…]) on a free port. Nothing
 * is persisted unless the args say so. `sentinel`: the args are a sentinel's configuration.
 */
export async function startRedisServer(args: string[][] = [], o: { sentinel?: boolean } = {}): Promise<RedisServer> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), o.sentinel ? 'sluice-sentinel-' : 'sluice-redis-'));
  // A file, not flags: a sentinel rewrites its configuration as the group changes.
  const conf = join(dir, 'redis.conf');
  const lines = [['port', String(port)], ['bind', '127.0.0.1'], ['dir', dir], ...(o.sentinel ? [] : NODE_DEFAULTS), ...args];
  writeFileSync(conf, lines.map((l) => l.join(' ')).join('\n') + '\n');
  let shared: Redis | null = null;
  const server: RedisServer = {
    port,
    url: `redis://127.0.0.1:${port}`,
    dir,
    child: null as unknown as ChildProcess,
    client() {
      if (shared) return shared;
      shared = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 1, retryStrategy: () => 200 });
      shared.on('error', () => undefined);
      return shared;
    },
    async kill9() {
      const child = server.child;
      if (child.exitCode !== null || child.signalCode !== null) return;
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await gone;
    },
    async restart() {
      await server.kill9();
      launch();
      await waitForPing(port, 10_000);
    },
    async stop() {
      shared?.disconnect();
      await server.kill9();
      // An AOF-rewrite child (a fork the SIGKILL does not reach) may still be writing there for a
      // moment; a temp directory left behind is harmless, a failed test run is not.
      try {
        rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
      } catch {
        /* left for the OS to clean */
      }
    },
  };
  const launch = () => {
    const child = spawn('redis-server', o.sentinel ? [conf, '--sentinel'] : [conf], { stdio: 'ignore' });
    alive.add(child);
    child.once('exit', () => alive.delete(child));
    server.child = child;
  };
  launch();
  await waitForPing(port, 10_000);
  return server;
}

/** A Sentinel group: a primary, its replicas, and sentinels that agree (quorum 2) on failover. */
export interface SentinelGroup {
  name: string;
  /** The data nodes, the first started as primary. */
  nodes: RedisServer[];
  sentinels: RedisServer[];
  /** `host:port,…` of the sentinels, as REDIS_SENTINELS takes them. */
  sentinelList: string;
  /** The port the sentinels name as primary now. */
  primaryPort(): Promise<number>;
  /** Waits until the sentinels name a primary other than `port`, and it answers as one. */
  waitForFailover(fromPort: number, timeoutMs?: number): Promise<number>;
  stop(): Promise<void>;
}

/**
 * Starts a Sentinel group on free ports: 1 primary, `replicas` replicas, `sentinels` sentinels,
 * failing over after `downAfterMs` without an answer. `nodeArgs` go to every data node (for
 * example `min-replicas-to-write`).
 */
export async function startSentinelGroup(o: { replicas?: number; sentinels?: number; downAfterMs?: number; nodeArgs?: string[][]; name?: string } = {}): Promise<SentinelGroup> {
  const name = o.name ?? 'sluice';
  const started: RedisServer[] = [];
  try {
    const primary = await startRedisServer(o.nodeArgs ?? []);
    started.push(primary);
    const nodes = [primary];
    for (let i = 0; i < (o.replicas ?? 1); i++) {
      const r = await startRedisServer([...(o.nodeArgs ?? []), ['replicaof', '127.0.0.1', String(primary.port)]]);
      started.push(r);
      nodes.push(r);
    }
    // Replicas in sync before the sentinels look, so that the first failover has a candidate.
    const admin = primary.client();
    for (let i = 0; i < 100; i++) {
      const info = await admin.info('replication');
      if ((info.match(/state=online/g) ?? []).length >= nodes.length - 1) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const downAfter = o.downAfterMs ?? 1_000;
    const sentinels: RedisServer[] = [];
    for (let i = 0; i < (o.sentinels ?? 3); i++) {
      const s = await startRedisServer(
        [
          ['sentinel', 'monitor', name, '127.0.0.1', String(primary.port), '2'],
          ['sentinel', 'down-after-milliseconds', name, String(downAfter)],
          ['sentinel', 'failover-timeout', name, String(Math.max(3 * downAfter, 3_000))],
          ['sentinel', 'parallel-syncs', name, '1'],
        ],
        { sentinel: true },
      );
      started.push(s);
      sentinels.push(s);
    }
    const primaryPort = async (): Promise<number> => {
      for (const s of sentinels) {
        try {
          const [, port] = (await s.client().call('SENTINEL', 'get-master-addr-by-name', name)) as [string, string];
          return Number(port);
        } catch {
          // This sentinel is away; ask the next.
        }
      }
      throw new Error('no sentinel answered');
    };
    return {
      name,
      nodes,
      sentinels,
      sentinelList: sentinels.map((s) => `127.0.0.1:${s.port}`).join(','),
      primaryPort,
      async waitForFailover(fromPort, timeoutMs = 30_000) {
        const until = Date.now() + timeoutMs;
        while (Date.now() < until) {
          const port = await primaryPort().catch(() => fromPort);
          if (port !== fromPort) {
            const node = nodes.find((n) => n.port === port);
            const role = node ? await node.client().call('ROLE').catch(() => null) : null;
            if (Array.isArray(role) && role[0] === 'master') return port;
          }
          await new Promise((r) => setTimeout(r, 100));
        }
        throw new Error(`no failover away from ${fromPort} within ${timeoutMs} ms`);
      },
      async stop() {
        for (const s of started.reverse()) await s.stop();
      },
    };
  } catch (err) {
    for (const s of started.reverse()) await s.stop();
    throw err;
  }
}
