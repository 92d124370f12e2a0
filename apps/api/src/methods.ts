/**
 * 405 with an `Allow` header for a path Sluice serves asked with a method it does not serve
 * there (`DELETE /v1/payments/{id}`), where a 404 would say the payment does not exist; and 204
 * with the same header for OPTIONS. The allowed methods are read from the app's own routes (the
 * routers mounted at `/`), so the header can never disagree with what is served.
 */
import type { Express, NextFunction, Request, Response } from 'express';
import { SluiceError } from '@sluice/domain';

/** The parts of Express's router layers this reads (router 2). */
interface Layer {
  slash?: boolean;
  route?: { _methods(): string[] };
  handle?: { stack?: Layer[] };
  match(path: string): unknown;
}

/** Route layers of `stack` and of the routers mounted at `/` in it. */
function routeLayers(stack: readonly Layer[]): Layer[] {
  const out: Layer[] = [];
  for (const layer of stack) {
    if (layer.route) out.push(layer);
    else if (layer.slash && Array.isArray(layer.handle?.stack)) out.push(...routeLayers(layer.handle.stack));
  }
  return out;
}

/** The methods served at `path`, `HEAD` included where `GET` is; empty when no route matches. */
function allowedAt(layers: readonly Layer[], path: string): string[] {
  const allowed = new Set<string>();
  for (const layer of layers) {
    let hit: unknown = false;
    try {
      hit = layer.match(path);
    } catch {
      // A malformed percent-escape in a parameter: the path is refused as a 400 elsewhere.
    }
    if (hit) for (const m of layer.route!._methods()) allowed.add(m);
  }
  return [...allowed].sort();
}

/** The two ends of {@link allowedMethods}. */
export interface MethodAnswers {
  /** Mounted first: answers OPTIONS before a router's automatic (plain-text) OPTIONS answer. */
  options: (req: Request, res: Response, next: NextFunction) => void;
  /** Mounted after every route and before the 404: a method the path does not serve is a 405. */
  notAllowed: (req: Request, res: Response, next: NextFunction) => void;
}

/** Answers to OPTIONS and to unserved methods, from `app`'s routes (read at the first request, when all are mounted). */
export function allowedMethods(app: Express): MethodAnswers {
  let layers: Layer[] | undefined;
  const allowFor = (req: Request, res: Response): string | null => {
    layers ??= routeLayers((app as unknown as { router: { stack: Layer[] } }).router.stack);
    const allowed = allowedAt(layers, req.path);
    if (allowed.length === 0) return null;
    const allow = allowed.join(', ');
    res.setHeader('Allow', allow);
    return allow;
  };
  return {
    options: (req, res, next) => {
      if (req.method !== 'OPTIONS' || allowFor(req, res) === null) {
        next();
        return;
      }
      res.status(204).end();
    },
    notAllowed: (req, res, next) => {
      const allow = allowFor(req, res);
      if (allow === null) {
        next();
        return;
      }
      throw new SluiceError('METHOD_NOT_ALLOWED', `${req.method} is not served here; allowed: ${allow}`, 405);
    },
  };
}
