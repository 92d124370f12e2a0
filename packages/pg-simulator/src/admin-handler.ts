/**
 * `/__sim/*`: the test and bench controls. They are not part of the PG, so they need no auth and
 * never count toward the rate limit or the arrival log.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { readBody, splitUrl, writeJson } from './http-io.ts';
import type { SimulatorState } from './state.ts';

/** Config bodies are tiny; this cap only stops a mistaken upload. */
const MAX_ADMIN_BODY_BYTES = 64 * 1024;

function badRequest(res: ServerResponse, message: string): void {
  writeJson(res, 400, JSON.stringify({ code: 'INVALID_CONFIG', message }));
}

/**
 * Handles one admin request. `applyKnobs` changes the knobs on behalf of this request; the server
 * uses it to spare this request's own socket when the change starts an outage.
 */
export async function handleAdminRequest(
  state: SimulatorState,
  req: IncomingMessage,
  res: ServerResponse,
  applyKnobs: (patch: unknown, req: IncomingMessage) => void,
): Promise<void> {
  const { path, query } = splitUrl(req.url ?? '/');
  const method = req.method ?? 'GET';
  const route = `${method} ${path}`;
  switch (route) {
    case 'GET /__sim/config':
      return writeJson(res, 200, JSON.stringify(state.knobs));
    case 'POST /__sim/config': {
      const body = await readBody(req, MAX_ADMIN_BODY_BYTES);
      if (body.kind !== 'ok') return badRequest(res, 'config body missing or too large');
      let patch: unknown;
      try {
        patch = JSON.parse(body.text);
      } catch {
        return badRequest(res, 'config body is not JSON');
      }
      try {
        applyKnobs(patch, req);
      } catch (error) {
        return badRequest(res, error instanceof Error ? error.message : String(error));
      }
      // A refused listener is about to go; close this connection too once it has its answer.
      const extra = state.knobs.outage === 'refuse' ? { connection: 'close' } : undefined;
      return writeJson(res, 200, JSON.stringify(state.knobs), extra);
    }
    case 'GET /__sim/stats':
      return writeJson(res, 200, JSON.stringify(state.stats()));
    case 'GET /__sim/ledger':
      return writeJson(res, 200, JSON.stringify(state.ledgerView()));
    case 'GET /__sim/arrivals': {
      const since = Number(new URLSearchParams(query).get('since') ?? '0');
      return writeJson(res, 200, state.arrivals.toJson(Number.isFinite(since) ? since : 0));
    }
    case 'POST /__sim/reset':
      req.resume();
      state.reset();
      return writeJson(res, 200, '{"ok":true}');
    default:
      req.resume();
      return writeJson(res, 404, JSON.stringify({ code: 'NOT_FOUND', message: `no admin route ${route}` }));
  }
}
