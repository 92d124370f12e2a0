/**
 * The PG connections of this process: one undici Client per unit of the share, so that a call
 * that holds a unit holds *its* connection. A call opens that connection, if it is not open,
 * **before** it takes a send slot (`ready`): a connection opened after the slot would make the
 * write late, and a late write is refused and wastes the slot. That is what a burst after an idle
 * spell used to pay: ~150 new connections in its first second, many of them late, and the PG got
 * 400 requests in that second instead of ~480. No request is sent to open or keep a connection:
 * a socket opened here is handed to the Client by its connector when the call's request needs it.
 */
import type { Socket } from 'node:net';
import { buildConnector, Client, type Dispatcher } from 'undici';
import { lateGuard } from './late-guard.ts';

/** The connections' origin, count and timeouts. */
export interface ConnectionOptions {
  origin: URL;
  size: number;
  connectTimeoutMs: number;
  headersTimeoutMs: number;
  bodyTimeoutMs: number;
  keepAliveTimeoutMs: number;
}

interface Unit {
  client: Client;
  /** The Client, with the permit checked again as each request is written (late-guard.ts). */
  dispatcher: Dispatcher;
  /** The socket the Client uses, while it is open. */
  socket: Socket | null;
  /** A socket opened for the next request, not yet handed to the Client. */
  opened: Socket | null;
  /**
   * The unit's one connection attempt in flight, shared by `ready` and the Client's connector:
   * two attempts at once would leave the unit two open connections, one of them idle and counted
   * by the PG until its keep-alive closes it (seen: 201 open to the simulator from a pool of 196).
   */
  connecting: Promise<Socket | Error> | null;
}

const alive = (socket: Socket | null): boolean => socket !== null && !socket.destroyed && socket.readyState === 'open';

/** One undici Client per unit of the share, each opened before its call takes a slot. */
export class Connections {
  private readonly units: Unit[];
  private readonly connect: buildConnector.connector;
  private readonly target: buildConnector.Options;

  constructor(options: ConnectionOptions) {
    this.connect = buildConnector({ timeout: options.connectTimeoutMs });
    const https = options.origin.protocol === 'https:';
    this.target = {
      protocol: options.origin.protocol,
      hostname: options.origin.hostname,
      host: options.origin.host,
      port: options.origin.port || (https ? '443' : '80'),
      ...(https ? { servername: options.origin.hostname } : {}),
    };
    this.units = Array.from({ length: options.size }, () => {
      const unit = { socket: null, opened: null, connecting: null } as unknown as Unit;
      unit.client = new Client(options.origin.origin, {
        pipelining: 1,
        connect: (target, callback) => {
          // The socket `ready` opened for this request, if it is still open; else a new one.
          const opened: Socket | null = unit.opened;
          unit.opened = null;
          // Handed over asynchronously, as a connector does: undici's Client hangs on a callback
          // made within the connector call.
          if (opened !== null && alive(opened)) return queueMicrotask(() => callback(null, this.adopt(unit, opened)));
          opened?.destroy();
          void this.open(unit).then((socket) => (socket instanceof Error ? callback(socket, null) : callback(null, this.adopt(unit, socket))));
        },
        headersTimeout: options.headersTimeoutMs,
        bodyTimeout: options.bodyTimeoutMs,
        keepAliveTimeout: options.keepAliveTimeoutMs,
        keepAliveMaxTimeout: options.keepAliveTimeoutMs,
      });
      unit.dispatcher = unit.client.compose(lateGuard);
      return unit;
    });
  }

  /** The unit's connection attempt: the one in flight, or a new one. */
  private open(unit: Unit): Promise<Socket | Error> {
    unit.connecting ??= new Promise<Socket | Error>((resolve) => {
      this.connect(this.target, (err, socket) => {
        unit.connecting = null;
        resolve(err ?? (socket as Socket));
      });
    });
    return unit.connecting;
  }

  private adopt(unit: Unit, socket: Socket): Socket {
    // One open connection per unit, whatever the order things happened in.
    if (unit.opened === socket) unit.opened = null;
    else if (unit.opened !== null) {
      unit.opened.destroy();
      unit.opened = null;
    }
    unit.socket = socket;
    socket.once('close', () => {
      if (unit.socket === socket) unit.socket = null;
    });
    return socket;
  }

  /** The dispatcher of a held unit. */
  dispatcher(unit: number): Dispatcher {
    return this.units[unit]!.dispatcher;
  }

  /**
   * Makes sure the unit's connection is open before its call takes a send slot. Resolves null
   * when it is, or the connect error's code (nothing was sent).
   */
  ready(unit: number): Promise<string | null> {
    const entry = this.units[unit]!;
    if (alive(entry.socket) || alive(entry.opened)) return Promise.resolve(null);
    return this.open(entry).then((socket) => {
      if (socket instanceof Error) return (socket as { code?: string }).code ?? socket.name;
      // The Client took it already (its own connect shared this attempt), or holds another.
      if (entry.socket === socket) return null;
      if (alive(entry.socket)) {
        socket.destroy();
        return null;
      }
      if (entry.opened !== socket) entry.opened?.destroy();
      entry.opened = socket;
      return null;
    });
  }

  /** Closes every connection at once. */
  async destroy(): Promise<void> {
    await Promise.all(
      this.units.map(async (entry) => {
        entry.opened?.destroy();
        await entry.client.destroy().catch(() => undefined);
      }),
    );
  }
}
