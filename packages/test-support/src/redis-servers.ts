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
  /**
   * Starts it again on the same port with the same arguments (a crashed node coming back), and
   * `extra` lines after them (a data node without persistence comes back empty: give it
   * `replicaof` the primary now, as an operator would, or a stale sentinel may make it the
   * primary again and the others sync its empty dataset).
   */
  restart(extra?: string[][]): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Waits until the server `child` started answers on `port`. Another test file's server may have
 * taken the port between {@link freePort} and the start (files run in parallel): then `child`
 * exits, or the server answering is another process. Returns false in both cases, for the caller
 * to start again on another port; a server that answers as `child` returns true.
 */
async function waitForOwnServer(port: number, child: ChildProcess, timeoutMs: number): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) return false;
    const r = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    r.on('error', () => undefined);
    try {
      await r.connect();
      const pid = Number(/^process_id:(\d+)/m.exec(await r.info('server'))?.[1]);
      if (pid === child.pid) return true;
      if (child.exitCode !== null || child.signalCode !== null || Date.now() > until) return false;
    } catch {
      if (Date.now() > until) throw new Error(`redis-server on ${port} did not answer within ${timeoutMs} ms`);
    } finally {
      r.disconnect();
    }
    await new Promise((res) => setTimeout(res, 50));
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
  for (let attempt = 1; ; attempt++) {
    const server = await startOn(await freePort(), args, o);
    if (server) return server;
    if (attempt >= 5) throw new Error('redis-server: no free port after 5 tries');
  }
}

/** A redis-server on `port`, or null when the port turned out to be taken. */
async function startOn(port: number, args: string[][], o: { sentinel?: boolean }): Promise<RedisServer | null> {
  const dir = mkdtempSync(join(tmpdir(), o.sentinel ? 'sluice-sentinel-' : 'sluice-redis-'));
  // A file, not flags: a sentinel rewrites its configuration as the group changes.
  const conf = join(dir, 'redis.conf');
  const lines = [['port', String(port)], ['bind', '127.0.0.1'], ['dir', dir], ...(o.sentinel ? [] : NODE_DEFAULTS), ...args];
  const writeConf = (extra: string[][]) => writeFileSync(conf, [...lines, ...extra].map((l) => l.join(' ')).join('\n') + '\n');
  writeConf([]);
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
    async restart(extra = []) {
      await server.kill9();
      // A sentinel keeps the configuration it rewrote; a data node takes its own plus `extra`.
      if (!o.sentinel) writeConf(extra);
      launch();
      if (!(await waitForOwnServer(port, server.child, 10_000))) throw new Error(`redis-server could not start again on ${port}: the port was taken`);
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
  if (await waitForOwnServer(port, server.child, 10_000)) return server;
  await server.stop();
  return null;
}

/** A Sentinel group: a primary, its replicas, and sentinels that agree (quorum 2) on failover. */
export interface SentinelGroup {
  name: string;
  /** The data nodes, the first started as primary. */
  nodes: RedisServer[];
  sentinels: RedisServer[];
  /** `host:port,…` of the sentinels, as REDIS_SENTINELS takes them. */
  sentinelList: string;
  /** The port the sentinels name as primary now (the first that answers). */
  primaryPort(): Promise<number>;
  /** The port each sentinel names as primary now, in order; null for one that does not answer. */
  primaryPorts(): Promise<(number | null)[]>;
  /**
   * Waits until every sentinel that answers names the same primary, other than `port`, and it
   * answers as one (a sentinel that has not heard of the failover yet would still act on the old
   * one's return).
   */
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
    /** The primary's port as sentinel `s` names it; null when it does not answer. */
    const namedBy = (s: RedisServer): Promise<number | null> =>
      (s.client().call('SENTINEL', 'get-master-addr-by-name', name) as Promise<[string, string]>).then(([, port]) => Number(port), () => null);
    const primaryPorts = (): Promise<(number | null)[]> => Promise.all(sentinels.map(namedBy));
    const primaryPort = async (): Promise<number> => {
      for (const s of sentinels) {
        const port = await namedBy(s);
        if (port !== null) return port;
        // This sentinel is away; ask the next.
      }
      throw new Error('no sentinel answered');
    };
    return {
      name,
      nodes,
      sentinels,
      sentinelList: sentinels.map((s) => `127.0.0.1:${s.port}`).join(','),
      primaryPort,
      primaryPorts,
      async waitForFailover(fromPort, timeoutMs = 30_000) {
        const until = Date.now() + timeoutMs;
        while (Date.now() < until) {
          const said = new Set((await primaryPorts()).filter((p): p is number => p !== null));
          const port = said.size === 1 ? [...said][0]! : fromPort;
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

/** A Redis Cluster: its primaries (and their replicas), slots spread evenly by `redis-cli --cluster create`. */
export interface RedisClusterGroup {
  nodes: RedisServer[];
  /** `host:port,…` of every node, as REDIS_CLUSTER_NODES takes them. */
  nodeList: string;
  /** The port of the primary that serves `slot` now. */
  ownerOf(slot: number): Promise<number>;
  /** The slot of a key (or of a `{tag}`), as the cluster computes it. */
  slotOf(key: string): Promise<number>;
  /** Moves `slot`, keys and all, to the primary on `toPort`, as `redis-cli --cluster reshard` does. */
  moveSlot(slot: number, toPort: number): Promise<void>;
  /** The ports of the primaries now, and of the replicas of the primary on `port`. */
  primaries(): Promise<number[]>;
  replicasOf(port: number): Promise<number[]>;
  stop(): Promise<void>;
}

/**
 * Starts a Redis Cluster on free ports: `primaries` primaries (3 at least, as Redis asks) with
 * `replicas` replicas each, and waits until every node says `cluster_state:ok`.
 */
export async function startRedisCluster(o: { primaries?: number; replicas?: number; nodeArgs?: string[][] } = {}): Promise<RedisClusterGroup> {
  const count = (o.primaries ?? 3) * (1 + (o.replicas ?? 0));
  const nodes: RedisServer[] = [];
  const stop = async () => {
    for (const n of nodes.reverse()) await n.stop();
  };
  try {
    for (let i = 0; i < count; i++) {
      nodes.push(await startRedisServer([['cluster-enabled', 'yes'], ['cluster-config-file', 'nodes.conf'], ['cluster-node-timeout', '2000'], ...(o.nodeArgs ?? [])]));
    }
    const addrs = nodes.map((n) => `127.0.0.1:${n.port}`);
    await new Promise<void>((resolve, reject) => {
      const cli = spawn('redis-cli', ['--cluster', 'create', ...addrs, '--cluster-replicas', String(o.replicas ?? 0), '--cluster-yes'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      cli.stdout.on('data', (d: Buffer) => (out += d.toString()));
      cli.stderr.on('data', (d: Buffer) => (out += d.toString()));
      cli.once('error', reject);
      cli.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`redis-cli --cluster create exited ${code}: ${out.slice(-500)}`))));
    });
    const until = Date.now() + 30_000;
    for (const n of nodes) {
      while (!/cluster_state:ok/.test(await n.client().call('CLUSTER', 'INFO') as string)) {
        if (Date.now() > until) throw new Error(`cluster node ${n.port} not ok within 30 s`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    // Replicas in sync before anyone writes (a primary with min-replicas-to-write refuses until then).
    for (const n of nodes) {
      for (;;) {
        const info = await n.client().info('replication');
        if (!/^role:master/m.test(info) || (info.match(/state=online/g) ?? []).length >= (o.replicas ?? 0)) break;
        if (Date.now() > until) throw new Error(`cluster primary ${n.port}: replicas not in sync within 30 s`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    const group: RedisClusterGroup = {
      nodes,
      nodeList: addrs.join(','),
      async ownerOf(slot) {
        const ranges = (await nodes[0]!.client().call('CLUSTER', 'SLOTS')) as [number, number, [string, number, ...unknown[]], ...unknown[]][];
        const r = ranges.find(([lo, hi]) => slot >= lo && slot <= hi);
        if (!r) throw new Error(`no node serves slot ${slot}`);
        return Number(r[2][1]);
      },
      async slotOf(key) {
        return (await nodes[0]!.client().call('CLUSTER', 'KEYSLOT', key)) as number;
      },
      async moveSlot(slot, toPort) {
        const node = (port: number) => nodes.find((n) => n.port === port)!.client();
        const fromPort = await group.ownerOf(slot);
        if (fromPort === toPort) return;
        const [fromId, toId] = [(await node(fromPort).call('CLUSTER', 'MYID')) as string, (await node(toPort).call('CLUSTER', 'MYID')) as string];
        await node(toPort).call('CLUSTER', 'SETSLOT', slot, 'IMPORTING', fromId);
        await node(fromPort).call('CLUSTER', 'SETSLOT', slot, 'MIGRATING', toId);
        for (;;) {
          const keys = (await node(fromPort).call('CLUSTER', 'GETKEYSINSLOT', slot, 100)) as string[];
          if (keys.length === 0) break;
          await node(fromPort).call('MIGRATE', '127.0.0.1', toPort, '', 0, 5_000, 'KEYS', ...keys);
        }
        for (const n of nodes) {
          if (/^role:master/m.test(await n.client().info('replication'))) await n.client().call('CLUSTER', 'SETSLOT', slot, 'NODE', toId);
        }
      },
      async primaries() {
        const out: number[] = [];
        for (const n of nodes) {
          const info = await n.client().info('replication').catch(() => '');
          if (/^role:master/m.test(info)) out.push(n.port);
        }
        return out;
      },
      async replicasOf(port) {
        const info = await nodes.find((n) => n.port === port)!.client().info('replication');
        return [...info.matchAll(/^slave\d+:ip=[^,]+,port=(\d+)/gm)].map((m) => Number(m[1]));
      },
      stop,
    };
    return group;
  } catch (err) {
    await stop();
    throw err;
  }
}
