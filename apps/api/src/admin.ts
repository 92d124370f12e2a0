/**
 * Operator pages: bull-board over the three queues at `/admin/queues`, behind HTTP Basic auth.
 * Without ADMIN_USER and ADMIN_PASSWORD there are no admin routes at all (they answer 404, like
 * any unknown path), so an unconfigured deployment never exposes an unauthenticated board.
 */
import { Router } from 'express';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import type { Config } from '@sluice/config';
import type { Queues } from '@sluice/queue';
import { basicAuth } from './auth.ts';

/** Where the board is mounted. */
export const ADMIN_QUEUES_PATH = '/admin/queues';

/**
 * The admin router, or null when no operator credentials are configured. Read-only unless
 * BULL_BOARD_READ_ONLY=false: retrying or removing a confirm job by hand can send a payment to
 * the PG out of the worker's control, so write access is an explicit choice.
 */
export function adminRoutes(config: Config, queues: Queues): Router | null {
  const user = config.ADMIN_USER;
  const password = config.ADMIN_PASSWORD;
  if (!user || !password) return null;

  const serverAdapter = new ExpressAdapter();
  serverAdapter.setBasePath(ADMIN_QUEUES_PATH);
  const readOnlyMode = config.BULL_BOARD_READ_ONLY;
  createBullBoard({
    queues: [queues.confirm, queues.resolve, queues.maintenance].map((q) => new BullMQAdapter(q, { readOnlyMode })),
    serverAdapter,
    options: { uiConfig: { boardTitle: 'Sluice queues' } },
  });

  const router = Router();
  router.use(ADMIN_QUEUES_PATH, basicAuth(user, password), serverAdapter.getRouter() as Router);
  return router;
}
