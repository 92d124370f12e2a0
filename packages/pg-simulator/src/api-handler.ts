/**
 * One PG request, from arrival to answer. The order of checks is the contract's: a request is
 * counted the moment its head is read (before anything else, so 401/429/503 count too), then the
 * connection and rate limits refuse it unprocessed, then auth, body size, idempotency, and the
 * endpoint itself.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { cancelWithFaults, inquireByOrderId, inquireByPaymentKey } from './cancel.ts';
import { confirmPayment, parseConfirmBody, type ConfirmResult } from './confirm.ts';
import { errorAnswer, isAuthorized, readBody, splitUrl, writeJson } from './http-io.ts';
import { idempotencyScope, type Answer } from './idempotency.ts';
import { forcedScenario } from './scenario.ts';
import { matchRoute, type Route } from './routes.ts';
import type { SimulatorState } from './state.ts';
import { listTransactions } from './transactions.ts';

/** What the handler needs from the server around it. */
export interface ApiContext {
  state: SimulatorState;
  /** `Basic …` for the account's secret key. */
  expectedAuth: string;
  /** Sockets that arrived past `maxConnections`: their request is answered 503 and closed. */
  overLimit: WeakSet<Socket>;
  /** Parks a response unanswered during a `hang` outage. */
  hold(res: ServerResponse): void;
}

/** Where one answer goes: the response and the arrival-log slot it fills. */
interface Reply {
  ctx: ApiContext;
  res: ServerResponse;
  arrival: number;
  generation: number;
}

const REPLAYED = { 'idempotent-replayed': 'true' } as const;
const CLOSE = { connection: 'close' } as const;

/**
 * Sends an answer the way the confirm's plan says: now, after `lateMs`, or never (the socket is
 * destroyed). A `hang` outage parks whatever is about to be sent, including late answers.
 */
function deliver(reply: Reply, answer: Answer, delivery: ConfirmResult['delivery'] = 'now', extra?: Record<string, string>): void {
  const { ctx, res } = reply;
  const { state } = ctx;
  if (delivery === 'drop') {
    res.socket?.destroy();
    return;
  }
  if (delivery === 'late') {
    state.after(state.knobs.lateMs, () => deliver(reply, answer, 'now', extra));
    return;
  }
  if (state.knobs.outage === 'hang') {
    ctx.hold(res);
    return;
  }
  const socket = res.socket;
  if (socket === null || socket.destroyed || res.writableEnded) return;
  writeJson(res, answer.status, answer.body, extra);
  if (reply.generation !== state.generation) return;
  state.arrivals.setStatus(reply.arrival, answer.status);
  if (answer.status === 429) state.status429 += 1;
  else if (answer.status === 503) state.status503 += 1;
}

/** Handles a PG request that arrived at `t` (ms, from the server's 'request' event). */
export function handleApiRequest(ctx: ApiContext, req: IncomingMessage, res: ServerResponse, t: number): void {
  const { state } = ctx;
  const { path, query } = splitUrl(req.url ?? '/');
  const route = matchRoute(req.method ?? 'GET', path);
  const { index, inWindow } = state.arrive(t, route.endpoint);
  const reply: Reply = { ctx, res, arrival: index, generation: state.generation };
  const knobs = state.knobs;

  if (knobs.outage === 'hang') return ctx.hold(res);
  if (ctx.overLimit.has(req.socket)) {
    return deliver(reply, errorAnswer(503, 'TOO_MANY_CONNECTIONS', 'Too many concurrent connections.'), 'now', CLOSE);
  }
  if (inWindow > knobs.rateLimit) {
    return deliver(reply, errorAnswer(429, 'TOO_MANY_REQUESTS', 'Too many requests in the rolling window.'));
  }
  if (route.kind === 'unknown') return deliver(reply, errorAnswer(404, 'NOT_FOUND', 'No such endpoint.'));
  if (!isAuthorized(req.headers.authorization, ctx.expectedAuth)) {
    return deliver(reply, errorAnswer(401, 'UNAUTHORIZED_KEY', 'The secret key is missing or wrong.'));
  }
  switch (route.kind) {
    case 'inquire':
      return deliver(reply, inquireByPaymentKey(state, route.param));
    case 'inquireByOrder':
      return deliver(reply, inquireByOrderId(state, route.param));
    case 'transactions':
      return deliver(reply, listTransactions(state.ledger.transactions, query));
    case 'confirm':
    case 'cancel':
      handlePost(reply, req, route, path).catch((error: unknown) => {
        // Only a simulator bug lands here; answer like a real PG's 500 so the run goes on.
        console.error('pg-simulator: unexpected error', error);
        deliver(reply, errorAnswer(500, 'FAILED_INTERNAL_SYSTEM_PROCESSING', 'Unexpected simulator error.'));
      });
  }
}

/** Confirm and cancel: body, Idempotency-Key, replay or process, then store and deliver. */
async function handlePost(reply: Reply, req: IncomingMessage, route: Route & { kind: 'confirm' | 'cancel' }, path: string): Promise<void> {
  const { state } = reply.ctx;
  const body = await readBody(req, state.knobs.maxBodyBytes);
  if (body.kind === 'aborted') return;
  if (body.kind === 'too_large') return deliver(reply, errorAnswer(413, 'PAYLOAD_TOO_LARGE', 'The request body is over the limit.'));

  const key = headerText(req.headers['idempotency-key']);
  if (key !== undefined && (key.length < 1 || key.length > 300)) {
    return deliver(reply, errorAnswer(400, 'INVALID_IDEMPOTENCY_KEY', 'Idempotency-Key must be 1 to 300 characters.'));
  }
  const confirmBody = route.kind === 'confirm' ? parseConfirmBody(body.text) : null;
  if (confirmBody !== null && forcedScenario(headerText(req.headers['x-sim-scenario']), confirmBody.paymentKey) === 'unread') {
    // A PG slow to read: nothing of this confirm exists until it is read, whether or not the
    // client is still waiting. (It was counted at arrival, which can only over-count a window.)
    const generation = state.generation;
    await state.sleep(state.knobs.unreadMs);
    if (state.generation !== generation) return;
  }
  if (confirmBody !== null) state.ledger.noteConfirmArrival(confirmBody.paymentKey, key);

  const scope = key === undefined ? null : idempotencyScope('POST', path, key);
  if (scope !== null) {
    const entry = state.idempotency.get(scope);
    if (entry?.kind === 'processing') {
      return deliver(reply, errorAnswer(409, 'IDEMPOTENT_REQUEST_PROCESSING', 'A request with this key is being processed.'));
    }
    if (entry?.kind === 'stored') return deliver(reply, entry.answer, 'now', REPLAYED);
    state.idempotency.begin(scope);
  }

  const generation = state.generation;
  const result: ConfirmResult =
    route.kind === 'confirm'
      ? await confirmPayment(state, confirmBody, key ?? null, headerText(req.headers['x-sim-scenario']))
      : await cancelWithFaults(state, route.param, body.text);
  // The key is settled when the outcome exists, before a late or dropped delivery: the PG has
  // finished processing, only the network is slow or lost.
  if (scope !== null && state.generation === generation) state.idempotency.finish(scope, result.answer);
  deliver(reply, result.answer, result.delivery);
}

function headerText(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
