/**
 * The intake scenario's yardstick: the cheapest Express 5 JSON POST route there is, in a process
 * of its own. `POST /v1/payments` parses the JSON body and answers 202 `{ok:true}`; nothing else.
 * Sluice's intake is measured against this with the same requests and the same load generator.
 *
 * Express's defaults are kept on purpose (ETag, `X-Powered-By`): the target is "a no-op Express
 * JSON route", not a hand-tuned one, so the yardstick is what anyone would write first.
 *
 * Run by the bench as `node --import tsx apps/bench/src/profiles/noop-server.ts` with `PORT` (0 picks a
 * free port); it prints `noop listening on <port>` once it accepts connections.
 */
import express from 'express';

const app = express();
app.post('/v1/payments', express.json(), (_req, res) => {
  res.status(202).json({ ok: true });
});

const port = Number(process.env.PORT ?? 0);
const server = app.listen(port, '127.0.0.1', () => {
  const address = server.address();
  console.log(`noop listening on ${typeof address === 'object' && address ? address.port : port}`);
});

/** Stops accepting, lets answers in flight finish, then exits; the bench waits for the exit. */
function stop(): void {
  server.close(() => process.exit(0));
  server.closeIdleConnections();
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
