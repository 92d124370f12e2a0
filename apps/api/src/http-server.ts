/**
 * The HTTP server around the app, and what happens before Express sees a request: Node's parser
 * refuses malformed HTTP (`clientError`), and a request that does not arrive in time is cut off.
 * Both answer in the API's error shape, `{ code, message }`, like every other error.
 */
import { createServer, STATUS_CODES, type RequestListener, type Server } from 'node:http';
import type { Socket } from 'node:net';
import type { Config } from '@sluice/config';
import type { ErrorCode } from '@sluice/domain';

/** How often Node looks for requests past their timeout (its default is 30 s). */
const TIMEOUT_CHECK_MS = 500;

/** The answer to an error of Node's parser (`err.code`): status, code, message. */
export function clientErrorAnswer(nodeCode: string | undefined): [number, ErrorCode, string] {
  switch (nodeCode) {
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return [408, 'REQUEST_TIMEOUT', 'The request did not arrive in time'];
    case 'HPE_HEADER_OVERFLOW':
      return [431, 'HEADERS_TOO_LARGE', 'The request headers are too large'];
    default:
      return [400, 'INVALID_REQUEST', 'Malformed HTTP request'];
  }
}

function onClientError(err: NodeJS.ErrnoException, socket: Socket): void {
  // A reset has no one to answer; an answer already under way cannot take another.
  const response = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (err.code === 'ECONNRESET' || !socket.writable || response?.headersSent) {
    socket.destroy();
    return;
  }
  const [status, code, message] = clientErrorAnswer(err.code);
  const body = JSON.stringify({ code, message });
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n${body}`,
  );
}

/** An HTTP server for `app` with REQUEST_TIMEOUT_MS in force and JSON answers to bad HTTP. */
export function createHttpServer(app: RequestListener, config: Pick<Config, 'REQUEST_TIMEOUT_MS'>): Server {
  const server = createServer(
    {
      requestTimeout: config.REQUEST_TIMEOUT_MS,
      headersTimeout: config.REQUEST_TIMEOUT_MS,
      connectionsCheckingInterval: Math.min(TIMEOUT_CHECK_MS, config.REQUEST_TIMEOUT_MS),
    },
    app,
  );
  server.on('clientError', onClientError);
  return server;
}
