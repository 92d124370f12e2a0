/**
 * One open connection per unit of the share (connections.ts). The PG counts every open
 * connection against its cap, an idle one too, so a unit that ends up with two (its call's
 * `ready` opening one while its Client opens another for the request) breaks the cap by one
 * until the PG's keep-alive closes the idle one: on the slow profile, with read timeouts closing
 * connections all the time, that was 201 open at once from a pool of 196.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { Connections } from './connections.ts';

let server: Server | null = null;
let connections: Connections | null = null;
afterEach(async () => {
  await connections?.destroy();
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  server = null;
  connections = null;
});

/** A bare HTTP server that counts the connections it accepted and those open now. */
async function countingServer(): Promise<{ url: URL; accepted: () => number; open: () => number; closeAll: () => void }> {
  const sockets = new Set<Socket>();
  let accepted = 0;
  server = createServer((socket) => {
    accepted++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    socket.on('data', () => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nKeep-Alive: timeout=4\r\n\r\nok'));
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  return {
    url: new URL(`http://127.0.0.1:${port}`), accepted: () => accepted, open: () => sockets.size,
    closeAll: () => {
      for (const socket of sockets) socket.destroy();
    },
  };
}

const options = (origin: URL) => ({ origin, size: 1, connectTimeoutMs: 1_000, headersTimeoutMs: 5_000, bodyTimeoutMs: 5_000, keepAliveTimeoutMs: 4_000 });

describe('Connections', () => {
  it('opens one connection when a call readies its unit while the Client connects for a request', async () => {
    const s = await countingServer();
    connections = new Connections(options(s.url));
    // Both at once, neither connected: `ready` and the Client's connector share one attempt.
    const ready = connections.ready(0);
    const res = await connections.dispatcher(0).request({ method: 'GET', path: '/' });
    expect(await res.body.text()).toBe('ok');
    expect(await ready).toBeNull();
    await new Promise((r) => setTimeout(r, 100));
    expect(s.accepted()).toBe(1);
    expect(s.open()).toBe(1);
    // The next call on the unit uses that connection.
    expect(await connections.ready(0)).toBeNull();
    const again = await connections.dispatcher(0).request({ method: 'GET', path: '/' });
    expect(await again.body.text()).toBe('ok');
    expect(s.accepted()).toBe(1);
  });

  it('opens a new connection, and only one, after the last one was closed', async () => {
    const s = await countingServer();
    connections = new Connections(options(s.url));
    expect(await connections.ready(0)).toBeNull();
    const first = await connections.dispatcher(0).request({ method: 'GET', path: '/' });
    await first.body.text();
    // The server closes it (as the PG does past its keep-alive), and the client sees the close.
    s.closeAll();
    await new Promise((r) => setTimeout(r, 100));
    expect(await connections.ready(0)).toBeNull();
    const second = await connections.dispatcher(0).request({ method: 'GET', path: '/' });
    expect(await second.body.text()).toBe('ok');
    await new Promise((r) => setTimeout(r, 100));
    expect(s.accepted()).toBe(2);
    expect(s.open()).toBe(1);
  });
});
