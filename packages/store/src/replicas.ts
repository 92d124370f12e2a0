/**
 * Writes on a replica before they are acknowledged (`REDIS_WAIT_REPLICAS`): replication is
 * asynchronous, so a write the primary answered may vanish in a failover unless a replica has it.
 *
 * `WAIT n timeout` blocks the connection it is sent on until n replicas acknowledged everything
 * that connection wrote. The writes here go over the shared, pipelined connection, so the WAIT goes
 * on a connection of its own, and one WAIT serves every write answered before it was sent: a
 * caller that arrives while one is in flight waits for the next. Redis takes a client's
 * replication offset from its last command, so each WAIT follows a PING (which sets it to the
 * primary's offset then, covering every write Redis had answered).
 *
 * A WAIT only speaks for the server it ran on. During a failover the writer and the waiter may sit
 * on different servers for a moment, so a write is confirmed only if the writer connection did not
 * reconnect between its mark (taken before the write) and the WAIT's answer, the waiter did not
 * reconnect during its WAIT, and both are on the same address. Anything else is "not confirmed":
 * the caller answers 503 and the merchant retries with the same key (the idempotent replay waits
 * again, on whatever server holds the payment then).
 *
 * On a Redis Cluster the writes go to the primary of the payments' slot: the waiter's connection
 * is a plain one to that node as the cluster client maps it, opened again when the slot moves,
 * and "the same server" is that node's address in the map ({@link clusterPlace}). With several
 * payment shards a payment's writes go to two slots, the root's (its claims) and its shard's, each
 * perhaps on its own primary: a write is confirmed once both are (one waiter per slot).
 */
/// <reference path="./cluster-key-slot.d.ts" />
import calculateSlot from 'cluster-key-slot';
import { hashTagOf } from '@sluice/config';
import { Redis as NodeClient, type RedisOptions } from 'ioredis';
import { shardOfPaymentId, shardPrefix } from './keys.ts';
import { isCluster, type Redis } from './redis.ts';

/** Taken before a write, for one place: which connection epoch and server the write goes to. */
interface PlaceMark {
  waiter: PlaceWaiter;
  epoch: number;
  addr: string | null;
}

/** Taken before a write: the places it goes to, each with its connection epoch and server. */
export interface WriteMark {
  readonly places: readonly PlaceMark[];
}

interface Ack {
  replicas: number;
  addr: string | null;
}

interface Waiting {
  resolve: (ack: Ack) => void;
}

const addrOf = (r: Redis): string | null => (r.stream?.remoteAddress && r.status === 'ready' ? `${r.stream.remoteAddress}:${r.stream.remotePort}` : null);

/**
 * Where the writer's writes go, and where the waiter's own connection is: on one Redis (or a
 * Sentinel group's primary), the servers the two sockets are connected to; on a Redis Cluster,
 * the primary that serves the payments' slot in the writer's map of the slots, and the node the
 * waiter's connection was opened to.
 */
export interface WritePlace {
  /** The server the writer's writes go to now (null: not connected, not known). */
  writerAddr(): string | null;
  /** Calls `onReady` each time the writer's connection to a server is made again. */
  watchWriter(onReady: () => void): void;
  /** The server a waiter connection is on (null: not connected). */
  connAddr(conn: Redis): string | null;
  /**
   * A waiter connection to `addr`, the writer's server now. Null `addr`: the writer is not
   * connected; a place that must know where to connect ({@link WritePlace.follows}) is not asked.
   */
  open(addr: string | null): Redis;
  /**
   * The waiter's connection goes to one node by address and must follow the writer's server
   * (a cluster's slot moving); otherwise it follows by itself (a duplicate of the writer).
   */
  follows: boolean;
}

/** One Redis, or a Sentinel group's primary: the waiter is a duplicate of the writer. */
export function plainPlace(writer: Redis): WritePlace {
  return {
    writerAddr: () => addrOf(writer),
    watchWriter: (onReady) => writer.on('ready', onReady),
    connAddr: addrOf,
    open: () => writer.duplicate({ enableAutoPipelining: false }),
    follows: false,
  };
}

/** A cluster client's internals the waiter reads: its map of the slots, its node connections and their options. */
interface ClusterView {
  slots: string[][];
  nodes(role?: 'all' | 'master'): Redis[];
  on(event: '+node', listener: (node: Redis) => void): void;
  options: { redisOptions?: RedisOptions };
}

/**
 * A Redis Cluster: the writes of a script go to the primary of the payments' slot (`slot`). The
 * waiter's connection goes to that node by its address in the cluster's map (a plain client to
 * one node: WAIT has no key, and a cluster client would send it anywhere).
 */
export function clusterPlace(writer: Redis, slot: number): WritePlace {
  const cluster = writer as unknown as ClusterView;
  const keyOf = (r: Redis): string => `${r.options.host}:${r.options.port}`;
  return {
    writerAddr() {
      const owner = cluster.slots[slot]?.[0];
      if (!owner) return null;
      const node = cluster.nodes('master').find((n) => keyOf(n) === owner);
      return node?.status === 'ready' ? owner : null;
    },
    watchWriter(onReady) {
      for (const node of cluster.nodes('all')) node.on('ready', onReady);
      cluster.on('+node', (node) => node.on('ready', onReady));
    },
    connAddr: (conn) => (conn.status === 'ready' ? keyOf(conn) : null),
    follows: true,
    open(addr) {
      const owner = addr ?? '';
      const at = owner.lastIndexOf(':');
      return new NodeClient({
        ...cluster.options.redisOptions,
        host: owner.slice(0, at),
        port: Number(owner.slice(at + 1)),
        enableAutoPipelining: false,
        maxRetriesPerRequest: null,
        retryStrategy: (n) => Math.min(50 * n, 1_000),
      });
    },
  };
}

/** WAITs sent, writes confirmed and not confirmed (for metrics and tests). */
interface WaiterStats {
  waits: number;
  confirmed: number;
  unconfirmed: number;
}

/** The places a payment's writes go to (`null`: a write of no payment's), each named once. */
export type PlacesOf = (paymentId: string | null) => readonly { key: string; place: () => WritePlace }[];

/**
 * Confirms writes on `replicas` replicas within `timeoutMs`: one waiter per place the writes go to
 * (one server; with several payment shards on a cluster, each slot a payment writes), each
 * sending one WAIT per batch of writers.
 */
export class ReplicaWaiter {
  private readonly placesOf: PlacesOf;
  private readonly waiters = new Map<string, PlaceWaiter>();
  private closed = false;
  readonly stats: WaiterStats = { waits: 0, confirmed: 0, unconfirmed: 0 };

  constructor(
    places: WritePlace | PlacesOf,
    readonly replicas: number,
    readonly timeoutMs: number,
  ) {
    this.placesOf = typeof places === 'function' ? places : () => [{ key: 'main', place: () => places }];
    // Opened now, so that the first request's wait is the WAIT's, not a connect's.
    for (const p of this.placesOf(null)) this.waiterOf(p.key, p.place);
  }

  /** Call before the write (of payment `paymentId`, whose shard says where it goes). */
  mark(paymentId: string | null = null): WriteMark {
    return { places: this.placesOf(paymentId).map((p) => this.waiterOf(p.key, p.place).mark()) };
  }

  /** After the write's answer: whether `replicas` replicas hold it (and everything before it) at every place it went. */
  async confirm(mark: WriteMark): Promise<boolean> {
    const each = await Promise.all(mark.places.map((m) => m.waiter.confirm(m)));
    const ok = each.every(Boolean);
    if (ok) this.stats.confirmed++;
    else this.stats.unconfirmed++;
    return ok;
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.waiters.values()].map((w) => w.close()));
  }

  private waiterOf(key: string, place: () => WritePlace): PlaceWaiter {
    let w = this.waiters.get(key);
    if (!w) {
      w = new PlaceWaiter(place(), this.replicas, this.timeoutMs, this.stats);
      if (this.closed) void w.close();
      this.waiters.set(key, w);
    }
    return w;
  }
}

/** Confirms writes to one place, one WAIT per batch of writers. */
class PlaceWaiter {
  private conn: Redis | null = null;
  /** The writer's server when the connection was opened. */
  private openedFor: string | null = null;
  private connEpoch = 0;
  private writerEpoch = 0;
  private waiting: Waiting[] = [];
  private running = false;
  private closed = false;

  constructor(
    private readonly place: WritePlace,
    readonly replicas: number,
    readonly timeoutMs: number,
    private readonly stats: WaiterStats,
  ) {
    place.watchWriter(() => {
      this.writerEpoch++;
      // A cluster's node is up: open the connection to the slot's primary now if not yet.
      if (place.follows && !this.conn && !this.closed) this.connection();
    });
    this.connection();
  }

  /** Call before the write. */
  mark(): PlaceMark {
    return { waiter: this, epoch: this.writerEpoch, addr: this.place.writerAddr() };
  }

  /** After the write's answer: whether `replicas` replicas hold it (and everything before it). */
  async confirm(mark: PlaceMark): Promise<boolean> {
    const ack = await new Promise<Ack>((resolve) => {
      this.waiting.push({ resolve });
      if (!this.running) void this.drain();
    });
    return ack.replicas >= this.replicas && mark.addr !== null && ack.addr === mark.addr && this.writerEpoch === mark.epoch && this.place.writerAddr() === mark.addr;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const w of this.waiting.splice(0)) w.resolve({ replicas: 0, addr: null });
    this.conn?.disconnect();
    this.conn = null;
  }

  private async drain(): Promise<void> {
    this.running = true;
    try {
      while (this.waiting.length > 0) {
        // Only those who came before this WAIT's PING is sent: later ones wait for the next.
        const batch = this.waiting.splice(0);
        const ack = this.closed ? { replicas: 0, addr: null } : await this.waitOnce();
        for (const w of batch) w.resolve(ack);
      }
    } finally {
      this.running = false;
    }
  }

  /** The waiter's connection, opened if needed; null while a following place has no server to name. */
  private connection(): Redis | null {
    // On a cluster the payments' slot may have moved since the connection was opened: open one
    // to where the writes go now.
    const target = this.place.writerAddr();
    if (this.place.follows) {
      if (this.conn && target !== null && target !== this.openedFor) {
        this.conn.disconnect();
        this.conn = null;
      }
      if (!this.conn && target === null) return null;
    }
    if (this.conn) return this.conn;
    const conn = this.place.open(target);
    this.openedFor = target;
    conn.on('error', () => undefined);
    conn.on('ready', () => this.connEpoch++);
    this.conn = conn;
    return conn;
  }

  private async waitOnce(): Promise<Ack> {
    const conn = this.connection();
    if (!conn) return { replicas: 0, addr: null };
    let timer: NodeJS.Timeout | undefined;
    try {
      if (conn.status !== 'ready') {
        // A new connection (or one coming back): wait for it, as long as a WAIT may take.
        await new Promise<void>((r) => {
          const ready = () => r();
          timer = setTimeout(() => {
            conn.off('ready', ready);
            r();
          }, this.timeoutMs);
          conn.once('ready', ready);
        });
        clearTimeout(timer);
      }
      const epoch = this.connEpoch;
      const addr = this.place.connAddr(conn);
      this.stats.waits++;
      // Redis away: the pipeline would wait for it (no retry limit); give up a second past WAIT's own.
      const answered = await Promise.race([
        conn.pipeline().ping().call('WAIT', this.replicas, this.timeoutMs).exec(),
        new Promise<null>((r) => {
          timer = setTimeout(() => r(null), this.timeoutMs + 1_000);
        }),
      ]);
      if (answered === null) {
        // The connection's state is unknown: start again on a fresh one.
        conn.disconnect();
        this.conn = null;
        return { replicas: 0, addr: null };
      }
      const [, wait] = answered ?? [];
      const replicas = wait && !wait[0] ? Number(wait[1]) : 0;
      if (addr === null || this.connEpoch !== epoch || this.place.connAddr(conn) !== addr) return { replicas: 0, addr: null };
      return { replicas, addr };
    } catch {
      return { replicas: 0, addr: null };
    } finally {
      clearTimeout(timer);
    }
  }
}

/**
 * The waiter REDIS_WAIT_REPLICAS asks for, on `writer`'s server (on a Redis Cluster, the primary
 * of the payments' slot, REDIS_PREFIX's hash tag; with several shards, the root's slot and each
 * payment's shard's), or null when it is 0.
 */
export function replicaWaiterOf(c: { REDIS_WAIT_REPLICAS: number; REDIS_WAIT_TIMEOUT_MS: number; REDIS_PREFIX: string; REDIS_SHARDS?: number }, writer: Redis): ReplicaWaiter | null {
  if (c.REDIS_WAIT_REPLICAS <= 0) return null;
  if (!isCluster(writer)) return new ReplicaWaiter(plainPlace(writer), c.REDIS_WAIT_REPLICAS, c.REDIS_WAIT_TIMEOUT_MS);
  const slotOf = (prefix: string): number => calculateSlot(`{${hashTagOf(prefix) ?? prefix}}`);
  const root = { key: 'root', place: () => clusterPlace(writer, slotOf(c.REDIS_PREFIX)) };
  const shards = c.REDIS_SHARDS ?? 1;
  if (shards <= 1) return new ReplicaWaiter(clusterPlace(writer, slotOf(c.REDIS_PREFIX)), c.REDIS_WAIT_REPLICAS, c.REDIS_WAIT_TIMEOUT_MS);
  return new ReplicaWaiter((paymentId) => {
    if (paymentId === null) return [root];
    const n = shardOfPaymentId(paymentId);
    return [root, { key: `s${n}`, place: () => clusterPlace(writer, slotOf(shardPrefix(c.REDIS_PREFIX, n, shards))) }];
  }, c.REDIS_WAIT_REPLICAS, c.REDIS_WAIT_TIMEOUT_MS);
}
