/** Redis connections. BullMQ workers need `maxRetriesPerRequest: null`; so does a fail-closed gate. */
import { redisTargetOf, type RedisTarget } from '@sluice/config';
import { Cluster, Redis, type RedisOptions } from 'ioredis';

/**
 * A Redis connection as Sluice uses one, to one URL, to the primary of a Sentinel group, or to a
 * Redis Cluster. With Sentinel the client asks the sentinels for the primary at every (re)connect,
 * and `failoverDetector` drops the connection as soon as they announce a new one, so writes never
 * go on to a demoted primary. With Cluster the client learns the slots from the nodes and follows
 * MOVED and ASK (a failover, a resharding). Commands are batched by default: a Cluster client by
 * ioredis's auto-pipelining, one socket by corking it for the turn ({@link writeTurnByTurn}).
 * `enableAutoPipelining: false` (BullMQ's connection, blocking readers) asks for each command to
 * be written at once instead.
 */
export function connectRedis(target: string | RedisTarget, opts: RedisOptions = {}, watch: HangWatch = {}): Redis {
  const redis = open(target, opts);
  watchRedis(redis, watch);
  return redis;
}

function open(target: string | RedisTarget, opts: RedisOptions): Redis {
  const common: RedisOptions = {
    maxRetriesPerRequest: null,
    // Reconnect forever with a small cap: Sluice fails closed while Redis is away, then resumes.
    retryStrategy: (n) => Math.min(50 * n, 1_000),
    ...opts,
  };
  // One socket: each turn's commands go together by corking it, never through ioredis's
  // pipelines (which `enableAutoPipelining` asks for on a Cluster client only). A connection that
  // asked for no batching writes each command at once: corking holds a command back until the
  // turn's other callbacks have run, a few ms on a busy loop, and BullMQ's workers and the
  // blocking readers make a round trip per job or read, where that wait is paid in latency (the
  // webhooks' deliveries slowed from p99 0.99 s to 2.2 s with it, docs/perf.md) for no CPU.
  const batched = opts.enableAutoPipelining !== false;
  const turns = (r: Redis): Redis => (batched ? writeTurnByTurn(r) : r);
  const single = { ...common, enableAutoPipelining: false };
  if (typeof target === 'string') return turns(new Redis(target, single));
  if (target.kind === 'url') return turns(new Redis(target.url, single));
  if (target.kind === 'cluster') return openCluster(target, common);
  return turns(reconnectUnlessClosed(new Redis({
    sentinels: target.sentinels,
    name: target.name,
    role: 'master',
    failoverDetector: true,
    sentinelRetryStrategy: (n) => Math.min(100 * n, 1_000),
    ...(target.username ? { username: target.username } : {}),
    ...(target.password ? { password: target.password } : {}),
    ...(target.sentinelUsername ? { sentinelUsername: target.sentinelUsername } : {}),
    ...(target.sentinelPassword ? { sentinelPassword: target.sentinelPassword } : {}),
    ...(target.tls ? { tls: {}, sentinelTLS: {}, enableTLSForSentinelMode: true } : {}),
    ...single,
  })));
}

/**
 * Writes the commands of one event-loop turn to the socket together: the socket is corked at the
 * turn's first command and uncorked once the turn's I/O callbacks have run (`setImmediate`), so
 * that requests read together (several intakes, several answers from the PG) send their commands
 * in one system call. ioredis's auto-pipelining does the same by gathering each turn's commands
 * into a `Pipeline`, whose construction copies every script the connection has defined (Sluice's
 * define dozens): a cost per batch that a command arriving alone paid in full (docs/perf.md,
 * "Each turn's commands in one write"). Commands are still written in the order they are sent,
 * and answered as on any connection; a command sent while the connection is down waits in
 * ioredis's offline queue as before, and is written, corked the same way, once it is back.
 */
function writeTurnByTurn(redis: Redis): Redis {
  const send = redis.sendCommand.bind(redis);
  let corked: Redis['stream'] | null = null;
  const uncork = (): void => {
    corked?.uncork();
    corked = null;
  };
  redis.sendCommand = ((command, stream) => {
    const socket = redis.stream as Redis['stream'] | undefined;
    if (corked === null && stream === undefined && redis.status === 'ready' && socket?.writable) {
      corked = socket;
      socket.cork();
      setImmediate(uncork);
    }
    return send(command, stream);
  }) as Redis['sendCommand'];
  return redis;
}

/**
 * ioredis ends a Sentinel client for good ("Connection is closed." to every command after) when
 * its connector is told to disconnect while it is asking the sentinels for the primary: what its
 * own failover detector does when the sentinels announce a new primary while the client is
 * already reconnecting after the old one died. A client that ends without being closed (`quit`,
 * `disconnect()`) is connected again.
 */
function reconnectUnlessClosed(redis: Redis): Redis {
  let closing = false;
  const quit = redis.quit.bind(redis);
  const disconnect = redis.disconnect.bind(redis);
  redis.quit = ((...args: Parameters<Redis['quit']>) => {
    closing = true;
    return quit(...args);
  }) as Redis['quit'];
  redis.disconnect = (reconnect = false) => {
    if (!reconnect) closing = true;
    disconnect(reconnect);
  };
  redis.on('end', () => {
    if (!closing && redis.status === 'end') redis.connect().catch(() => undefined);
  });
  return redis;
}

/**
 * A Redis Cluster client, typed as a Redis: every command Sluice sends names its keys, each
 * script's keys in one slot (the prefix's hash tag, which config asks for; the queues, the gate
 * and each payment shard in slots of their own), so the cluster client routes each to the node
 * that owns the slot and it answers as one Redis would. What differs is only in commands without a
 * key: INFO, CONFIG and TIME reach some node, so Sluice reads them through a script naming a key
 * ({@link TIME_OF_KEY_OWNER}) or node by node (redis-safety.ts); and the client has no single
 * socket (`stream`; WAIT goes on connections of its own to each slot's primary: replicas.ts).
 * While a slot moves, a command the client cannot redirect fails as any Redis error does (it did
 * not run: {@link cutBySlotMove}). Reads go to primaries
 * only (`scaleReads: 'master'`): a replica's copy may be stale.
 */
function openCluster(target: Extract<RedisTarget, { kind: 'cluster' }>, common: RedisOptions): Redis {
  // The nodes' own reconnects are the cluster's (clusterRetryStrategy), not retryStrategy.
  const { enableAutoPipelining, maxRetriesPerRequest, retryStrategy: _perNode, lazyConnect, ...node } = common;
  const cluster = new Cluster(target.nodes, {
    scaleReads: 'master',
    enableAutoPipelining: enableAutoPipelining ?? true,
    maxRedirections: 16,
    retryDelayOnFailover: 100,
    retryDelayOnClusterDown: 200,
    clusterRetryStrategy: (n) => Math.min(50 * n, 1_000),
    ...(lazyConnect ? { lazyConnect } : {}),
    redisOptions: {
      ...node,
      maxRetriesPerRequest: maxRetriesPerRequest ?? null,
      ...(target.username ? { username: target.username } : {}),
      ...(target.password ? { password: target.password } : {}),
      ...(target.tls ? { tls: {} } : {}),
    },
  });
  return cluster as unknown as Redis;
}

/**
 * Scripts that read the server holding KEYS[1]: on a Redis Cluster, that slot's owner (TIME and
 * INFO alone reach any node, and a pipeline mixing them with keyed commands is not redirected as
 * a whole when its slot moves). `no-writes`: a primary that refuses writes (min-replicas-to-write)
 * still answers them.
 */
export const TIME_OF_KEY_OWNER = "#!lua flags=no-writes\nreturn redis.call('TIME')";
/** `INFO <ARGV[1]>` of the server holding KEYS[1]; see {@link TIME_OF_KEY_OWNER}. */
export const INFO_OF_KEY_OWNER = "#!lua flags=no-writes\nreturn redis.call('INFO', ARGV[1])";

/** Whether a connection is a Redis Cluster client ({@link openCluster}). */
export function isCluster(redis: Redis): boolean {
  return (redis as unknown as { isCluster?: boolean }).isCluster === true;
}

/**
 * A connection to the configured Redis (one URL, a Sentinel group or a Cluster), watched for hanging with
 * REDIS_HANG_MS, a dropped hung connection logged on `log`: what every process and thread opens.
 */
export function connectConfigured(
  config: Parameters<typeof redisTargetOf>[0] & { REDIS_HANG_MS: number },
  log: { warn(obj: object, msg: string): void },
  opts: RedisOptions = {},
): Redis {
  const redis = connectRedis(redisTargetOf(config), opts, {
    hangMs: config.REDIS_HANG_MS,
    onHang: (hangMs) => log.warn({ hangMs }, 'Redis connection answered no PING: dropped, reconnecting'),
  });
  // ioredis reconnects by itself; its errors are said once per outage (without a listener ioredis
  // prints every failed attempt to stderr as an "unhandled error event").
  let down = false;
  redis.on('error', (err: Error) => {
    if (down) return;
    down = true;
    log.warn({ err: err.message }, 'Redis connection error: reconnecting');
  });
  redis.on('ready', () => {
    down = false;
  });
  return redis;
}

/** How a connection is watched for hanging (see {@link watchRedis}). */
export interface HangWatch {
  /** No answer to a PING for this long is a hung connection (REDIS_HANG_MS); 0 = not watched. */
  hangMs?: number;
  /** Told when the watchdog drops a hung connection (to log it). */
  onHang?: (hangMs: number) => void;
}

/** REDIS_HANG_MS's default, for connections made without a config (tests, tools). */
export const DEFAULT_REDIS_HANG_MS = 5_000;

/**
 * A watchdog for a connection that hangs rather than closes (a peer gone silent, a network path
 * that died without a reset, a failed-over primary still holding the socket): ioredis would wait
 * for ever, since nothing closes the socket. Every second or so, while the connection is ready, a
 * PING goes out behind whatever is queued; no answer within `hangMs` drops the connection, and
 * ioredis reconnects (asking the sentinels again) and sends again what had no answer, as after any
 * reconnect. The phase guards make a resent state change safe, as they do after a Redis restart.
 */
export function watchRedis(redis: Redis, watch: HangWatch = {}): void {
  const hangMs = watch.hangMs ?? DEFAULT_REDIS_HANG_MS;
  if (hangMs <= 0) return;
  let probe = 0;
  let pending: { id: number; timer: NodeJS.Timeout } | null = null;
  let timer: NodeJS.Timeout | null = null;
  const round = () => {
    if (pending || redis.status !== 'ready') return;
    const id = ++probe;
    pending = {
      id,
      timer: setTimeout(() => {
        if (pending?.id !== id) return;
        pending = null;
        // Only a connection that is up and silent is dropped. One already being made again must
        // be left to it: ioredis ends for good a connection whose connector is told to disconnect
        // while it is asking the sentinels for the primary ("Connection is closed." for ever).
        if (redis.status !== 'ready') return;
        watch.onHang?.(hangMs);
        redis.disconnect(true);
      }, hangMs),
    };
    pending.timer.unref();
    const done = () => {
      if (pending?.id !== id) return;
      clearTimeout(pending.timer);
      pending = null;
    };
    redis.ping().then(done, done);
  };
  const start = () => {
    if (timer) return;
    timer = setInterval(round, Math.min(1_000, Math.max(10, Math.floor(hangMs / 2))));
    timer.unref();
  };
  start();
  // A connection that closed is being made again: its probe's clock stops (the PING waits in the
  // queue and is sent again), and the next round, once it is ready, starts a new one.
  redis.on('close', () => {
    if (pending) clearTimeout(pending.timer);
    pending = null;
  });
  // Ended: nothing to watch (and nothing kept alive), until a client connected again after an
  // end it did not ask for (reconnectUnlessClosed) is ready.
  redis.on('end', () => {
    if (timer) clearInterval(timer);
    timer = null;
    if (pending) clearTimeout(pending.timer);
    pending = null;
  });
  redis.on('ready', start);
}

/** ioredis's client type, for the callers of this package. */
export type { Redis };

/** Whether a Redis answers PING at `url` now (one try, no retries). */
export async function redisAnswers(url: string, connectTimeoutMs = 1_000): Promise<boolean> {
  const r = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: connectTimeoutMs });
  r.on('error', () => undefined);
  try {
    await r.connect();
    return (await r.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    r.disconnect();
  }
}

/**
 * A command cut short by a slot moving on a Redis Cluster: a redirection the client could not
 * follow (MOVED, ASK, TRYAGAIN, CLUSTERDOWN), or ioredis refusing to send a batch again once the
 * move split its keys over two nodes (auto-pipelining batches the commands of one node, and it
 * sends a batch again only when its other commands were reads). Such a command did not run, or was
 * a read: its caller may try it again.
 */
export function cutBySlotMove(err: unknown): boolean {
  return err instanceof Error && (/^(MOVED|ASK|TRYAGAIN|CLUSTERDOWN)\b/.test(err.message) || err.message.startsWith('All keys in the pipeline should belong to the same slots allocation group'));
}
