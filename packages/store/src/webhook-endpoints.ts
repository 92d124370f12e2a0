/**
 * Merchants' webhook endpoints in Redis: a hash per endpoint (`wh:ep:<id>`: merchant, URL, event
 * types, the secret sealed at rest, created, disabled) and a set of ids per merchant. The secret
 * is sealed by the caller (`@sluice/webhooks` SecretBox) and never stored in the clear.
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { WebhookEventType } from '@sluice/domain';

/** An endpoint as stored. */
export interface WebhookEndpoint {
  id: string;
  merchantId: string;
  url: string;
  events: WebhookEventType[];
  sealedSecret: string;
  createdAt: number;
  /** When it was disabled (its receiver answered 410 Gone), or null. */
  disabledAt: number | null;
}

/** Whether an endpoint is sent events of this type: it takes the type and is not disabled. */
export function takesEvent(e: WebhookEndpoint, type: WebhookEventType): boolean {
  return e.disabledAt === null && e.events.includes(type);
}

/** At most this many endpoints per merchant. */
export const MAX_ENDPOINTS_PER_MERCHANT = 20;

const key = (prefix: string, id: string) => `${prefix}:wh:ep:${id}`;
const setKey = (prefix: string, merchantId: string) => `${prefix}:wh:eps:${merchantId}`;

/** A new endpoint id. */
export function newEndpointId(): string {
  return `we_${randomUUID().replaceAll('-', '').slice(0, 24)}`;
}

function parse(h: Record<string, string>): WebhookEndpoint | null {
  if (!h.id) return null;
  return {
    id: h.id,
    merchantId: h.merchantId ?? '',
    url: h.url ?? '',
    events: (h.events ?? '').split(',').filter(Boolean) as WebhookEventType[],
    sealedSecret: h.secret ?? '',
    createdAt: Number(h.createdAt ?? 0),
    disabledAt: h.disabledAt ? Number(h.disabledAt) : null,
  };
}

/** The endpoints of every merchant, under one key prefix. */
export class WebhookEndpoints {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  /** Stores a new endpoint; false when the merchant already has the most it may. */
  async create(e: Omit<WebhookEndpoint, 'disabledAt'>): Promise<boolean> {
    const set = setKey(this.prefix, e.merchantId);
    if ((await this.redis.scard(set)) >= MAX_ENDPOINTS_PER_MERCHANT) return false;
    await this.redis
      .multi()
      .hset(key(this.prefix, e.id), { id: e.id, merchantId: e.merchantId, url: e.url, events: e.events.join(','), secret: e.sealedSecret, createdAt: e.createdAt })
      .sadd(set, e.id)
      .exec();
    return true;
  }

  async get(id: string): Promise<WebhookEndpoint | null> {
    return parse(await this.redis.hgetall(key(this.prefix, id)));
  }

  /** A merchant's endpoints, oldest first. */
  async list(merchantId: string): Promise<WebhookEndpoint[]> {
    const ids = await this.redis.smembers(setKey(this.prefix, merchantId));
    const pipe = this.redis.pipeline();
    for (const id of ids) pipe.hgetall(key(this.prefix, id));
    const res = (await pipe.exec()) ?? [];
    return res.map(([, h]) => parse(h as Record<string, string>)).filter((e): e is WebhookEndpoint => e !== null).sort((a, b) => a.createdAt - b.createdAt || a.id.localeCompare(b.id));
  }

  /** Deletes one of a merchant's endpoints; false when it has none of that id. */
  async delete(merchantId: string, id: string): Promise<boolean> {
    if ((await this.redis.srem(setKey(this.prefix, merchantId), id)) === 0) return false;
    await this.redis.del(key(this.prefix, id));
    return true;
  }

  /** Disables an endpoint (its receiver answered 410 Gone): nothing more is sent to it. */
  async disable(id: string, at = Date.now()): Promise<boolean> {
    const res = await this.redis.eval(
      "if redis.call('EXISTS', KEYS[1]) == 1 and not redis.call('HGET', KEYS[1], 'disabledAt') then redis.call('HSET', KEYS[1], 'disabledAt', ARGV[1]) return 1 end return 0",
      1, key(this.prefix, id), at,
    );
    return res === 1;
  }
}
