/**
 * Operator pages: bull-board over the three queues at `/admin/queues`, behind HTTP Basic auth.
 * Without ADMIN_USER and ADMIN_PASSWORD there are no admin routes at all (they answer 404, like
 * any unknown path), so an unconfigured deployment never exposes an unauthenticated board.
 */
import { Router, type Express, type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import type { Config } from '@sluice/config';
import type { Queues } from '@sluice/queue';
import { SluiceError, type ErrorCode } from '@sluice/domain';

/** Reads only: every other method is a 405 before bull-board sees it. */
function readOnly(req: Request, res: Response, next: NextFunction): void {
  if (req.method === 'GET' || req.method === 'HEAD') {
    next();
    return;
  }
  res.setHeader('Allow', 'GET, HEAD');
  throw new SluiceError('METHOD_NOT_ALLOWED', 'The queue board is read-only (BULL_BOARD_READ_ONLY)', 405);
}

/** The API's code for a status bull-board answers with. */
function codeFor(status: number): ErrorCode {
  if (status === 401) return 'UNAUTHORIZED';
  if (status === 404) return 'NOT_FOUND';
  if (status === 405) return 'METHOD_NOT_ALLOWED';
  return status >= 500 ? 'INTERNAL' : 'INVALID_REQUEST';
}

/**
 * bull-board answers its errors as `{ error }` (`Queue not found`); they gain the API's `code` and
 * `message`, as every error of Sluice has, and keep `error`, which the board's page reads.
 */
function boardErrorShape(_req: Request, res: Response, next: NextFunction): void {
  const json = res.json.bind(res);
  res.json = (body?: unknown) => {
    if (res.statusCode >= 400 && typeof body === 'object' && body !== null && !('code' in body)) {
      const error = (body as { error?: unknown }).error;
      body = { code: codeFor(res.statusCode), message: typeof error === 'string' ? error : 'The queue board refused the request', ...body };
    }
    return json(body);
  };
  next();
}

/** Where the board is mounted. */
export const ADMIN_QUEUES_PATH = '/admin/queues';

/**
 * The admin router, or null when no operator credentials are configured. Read-only unless
 * BULL_BOARD_READ_ONLY=false: retrying or removing a confirm job by hand can send a payment to
 * the PG out of the worker's control, so write access is an explicit choice.
 */
export function adminRoutes(config: Config, queues: Queues, auth: RequestHandler | null): Router | null {
  if (!auth) return null;

  const serverAdapter = new ExpressAdapter();
  serverAdapter.setBasePath(ADMIN_QUEUES_PATH);
  const readOnlyMode = config.BULL_BOARD_READ_ONLY;
  createBullBoard({
    queues: [queues.confirm, queues.resolve, queues.maintenance].map((q) => new BullMQAdapter(q, { readOnlyMode })),
    serverAdapter,
    options: { uiConfig: { boardTitle: 'Sluice queues' } },
  });

  const board = serverAdapter.getRouter() as Express;
  // bull-board serves from an Express app of its own, which would announce itself.
  board.disable('x-powered-by');
  const router = Router();
  router.use(ADMIN_QUEUES_PATH, auth);
  // Read-only means no write reaches the board at all: its read-only mode hides the buttons and
  // refuses some writes itself, in a body of its own shape; every one is a 405 here.
  if (readOnlyMode) router.use(ADMIN_QUEUES_PATH, readOnly);
  router.use(ADMIN_QUEUES_PATH, boardErrorShape, board);
  return router;
}
