/** For tests: a TCP proxy whose outage is a method call. */
import { connect, createServer, type Server, type Socket } from 'node:net';

/**
 * A proxy to 127.0.0.1:`target`: `down` cuts every connection and refuses new ones until `up`;
 * `hang` leaves the connections open but passes nothing more on them (a peer gone silent, a
 * network path that died without a reset), while new connections work.
 */
export interface TcpProxy {
  port: number;
  down(): void;
  up(): void;
  hang(): void;
  close(): Promise<void>;
}

/** A TCP proxy to a local port that can refuse and cut connections: a database outage on demand. */
export async function startTcpProxy(target: number): Promise<TcpProxy> {
  let isUp = true;
  const sockets = new Set<Socket>();
  const pairs = new Set<{ hung: boolean }>();
  const server: Server = createServer((client) => {
    if (!isUp) {
      client.destroy();
      return;
    }
    const upstream = connect(target, '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => undefined);
    }
    const pair = { hung: false };
    pairs.add(pair);
    client.on('data', (d) => {
      if (!pair.hung) upstream.write(d);
    });
    upstream.on('data', (d) => {
      if (!pair.hung) client.write(d);
    });
    client.on('close', () => {
      pairs.delete(pair);
      upstream.destroy();
    });
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as { port: number }).port,
    down() {
      isUp = false;
      for (const s of sockets) s.destroy();
    },
    up() {
      isUp = true;
    },
    hang() {
      for (const p of pairs) p.hung = true;
    },
    close: () => new Promise((r) => server.close(() => r())),
  };
}
