-- Up Migration

-- The events merchants hear of (signed webhooks): one row per event, written by the drainer from
-- the same change of the payment (domain webhookEventOf), in the same transaction. Kept as long as
-- payments are; `GET /v1/events?after=` pages through a merchant's in (created_at, id) order, and
-- `POST /v1/events/{id}/redeliver` sends one again.
CREATE TABLE events (
  id           text        PRIMARY KEY,
  merchant_id  text        NOT NULL,
  type         text        NOT NULL,
  payment_id   text        NOT NULL,
  seq          bigint      NOT NULL,
  created_at   timestamptz NOT NULL,
  body         text        NOT NULL
);
CREATE INDEX events_merchant_order ON events (merchant_id, created_at, id);

-- Down Migration

DROP TABLE events;
