/**
 * The HTTP server around the handlers: arrival stamping, connection accounting, keep-alive, and
 * the socket side of outages. `refuse` really closes the listening socket (clients get
 * ECONNREFUSED) and re-listens on the same port when it ends; `hang` parks every answer and
 * destroys the parked sockets when it ends.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { handleAdminRequest } from './admin-handler.ts';
import { handleApiRequest, type ApiContext } from './api-handler.ts';
import { nowMs } from './clock.ts';
import { expectedAuthorization, writeJson } from './http-io.ts';
import type { SimulatorKnobs } from './knobs.ts';
import { resolveOptions, type SimulatorOptions } from './options.ts';
import { SimulatorState } from './state.ts';

/** A started simulator. */
export interface RunningSimulator {
  /** `http://host:port` of the PG API (and of `/__sim/*`). */
  url: string;
  port: number;
  /** `http://host:adminPort` when `adminPort` was given, else null. */
  adminUrl: string | null;
  /** Stops listening, destroys every connection and drops pending timers. */
  close(): Promise<void>;
  /** Direct access for in-process tests (knobs via `state.setKnobs`, ledger, arrivals). */
  state: SimulatorState;
}

const ADMIN_PREFIX = '/__sim/';

function listen(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error): void => reject(error);
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      const address = server.address();
      resolve(typeof address === 'object' && address !== null ? address.port : port);
    });
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.closeAllConnections();
    if (!server.listening) return resolve();
    server.close(() => resolve());
  });
}

function urlOf(host: string, port: number): string {
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/** Starts a simulator; `port: 0` (the default here) picks a free port. */
export async function startSimulator(opts: Partial<SimulatorOptions> = {}): Promise<RunningSimulator> {
  const options = resolveOptions(opts);
  const state = new SimulatorState(options.secretKey, options.seed, options.knobs);
  const sockets = new Set<Socket>();
  const held = new Set<ServerResponse>();
  let closing = false;
  let outageTimer: NodeJS.Timeout | null = null;
  let port = options.port;

  const ctx: ApiContext = {
    state,
    expectedAuth: expectedAuthorization(options.secretKey),
    overLimit: new WeakSet<Socket>(),
    hold(res) {
      held.add(res);
      res.once('close', () => held.delete(res));
    },
  };

  /** Knob changes from `/__sim/config`; the calling request's socket survives a `refuse`. */
  let spared: Socket | null = null;
  const applyKnobs = (patch: unknown, req: IncomingMessage): void => {
    spared = req.socket;
    try {
      state.setKnobs(patch);
    } finally {
      spared = null;
    }
  };
  const admin = (req: IncomingMessage, res: ServerResponse): void => {
    handleAdminRequest(state, req, res, applyKnobs).catch((error: unknown) => {
      if (!res.headersSent) writeJson(res, 500, JSON.stringify({ code: 'SIM_ERROR', message: String(error) }));
    });
  };

  const server = createServer();
  /**
   * Node 20.20 advertises `Keep-Alive: timeout=4` but arms the idle timer at keepAliveTimeout + 1 s
   * (its HTTP_SERVER_KEEP_ALIVE_TIMEOUT_BUFFER). The contract closes at 4 s, and a lenient PG
   * would hide a client that reuses sockets too late, so re-arm exactly that timer at 4 s.
   * Node's own 'finish' listener runs first (it is added before 'request' is emitted).
   */
  const trimKeepAlive = (req: IncomingMessage, res: ServerResponse): void => {
    const socket = req.socket;
    res.once('finish', () => {
      const armed = socket.timeout;
      if (armed !== undefined && armed > server.keepAliveTimeout && armed === server.keepAliveTimeout + 1_000) {
        socket.setTimeout(server.keepAliveTimeout);
      }
    });
  };
  server.keepAliveTimeout = options.knobs.keepAliveMs;
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    // Contract: a request counts when its line and headers are read, i.e. now.
    const t = nowMs();
    trimKeepAlive(req, res);
    if (req.url !== undefined && req.url.startsWith(ADMIN_PREFIX)) return admin(req, res);
    handleApiRequest(ctx, req, res, t);
  });
  server.on('connection', (socket: Socket) => {
    if (closing || state.knobs.outage === 'refuse') {
      socket.destroy();
      return;
    }
    sockets.add(socket);
    state.openConnections += 1;
    if (state.openConnections > state.peakConnections) state.peakConnections = state.openConnections;
    if (state.openConnections > state.knobs.maxConnections) ctx.overLimit.add(socket);
    socket.once('close', () => {
      sockets.delete(socket);
      state.openConnections -= 1;
    });
  });

  const destroyHeld = (): void => {
    for (const res of held) res.socket?.destroy();
    held.clear();
  };

  const relisten = async (attempt = 0): Promise<void> => {
    if (closing || state.knobs.outage === 'refuse' || server.listening) return;
    try {
      await listen(server, port, options.host);
    } catch (error) {
      // The port may linger for a moment after close; retry briefly, then say so once.
      if (attempt < 20) setTimeout(() => void relisten(attempt + 1), 50);
      else console.error(`pg-simulator: cannot listen again on ${port}`, error);
    }
  };

  const onKnobs = (prev: SimulatorKnobs, next: SimulatorKnobs): void => {
    server.keepAliveTimeout = next.keepAliveMs;
    if (next.outage === 'refuse' && prev.outage !== 'refuse') {
      if (server.listening) server.close();
      for (const socket of sockets) if (socket !== spared) socket.destroy();
      destroyHeld();
    }
    if (prev.outage === 'refuse' && next.outage !== 'refuse') void relisten();
    if (prev.outage === 'hang' && next.outage !== 'hang') destroyHeld();
    if (next.outage !== prev.outage || next.outageMs !== prev.outageMs) {
      if (outageTimer !== null) clearTimeout(outageTimer);
      outageTimer = null;
      if (next.outage !== 'none' && next.outageMs > 0) {
        outageTimer = setTimeout(() => {
          outageTimer = null;
          state.setKnobs({ outage: 'none' });
        }, next.outageMs);
      }
    }
  };
  state.onKnobs = onKnobs;

  port = await listen(server, options.port, options.host);
  // Honour an outage given at start: the listener existed only to reserve the port.
  if (options.knobs.outage !== 'none') onKnobs({ ...options.knobs, outage: 'none', outageMs: 0 }, options.knobs);

  let adminServer: Server | null = null;
  let adminPort: number | null = null;
  if (options.adminPort !== null) {
    adminServer = createServer((req, res) => {
      if (req.url !== undefined && req.url.startsWith(ADMIN_PREFIX)) return admin(req, res);
      writeJson(res, 404, JSON.stringify({ code: 'NOT_FOUND', message: 'the admin port serves /__sim/* only' }));
    });
    adminPort = await listen(adminServer, options.adminPort, options.host);
  }

  return {
    url: urlOf(options.host, port),
    port,
    adminUrl: adminPort === null ? null : urlOf(options.host, adminPort),
    state,
    async close() {
      if (closing) return;
      closing = true;
      if (outageTimer !== null) clearTimeout(outageTimer);
      state.dispose();
      for (const socket of sockets) socket.destroy();
      held.clear();
      await closeServer(server);
      if (adminServer !== null) await closeServer(adminServer);
    },
  };
}
