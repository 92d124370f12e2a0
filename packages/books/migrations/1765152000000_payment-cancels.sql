-- Up Migration

-- Merchants' cancels and refunds (POST /v1/payments/{id}/cancel), one row each, as the payment's
-- snapshot lists them: written by the drainer with the payment, at the payment's version, so an
-- older version never overwrites a newer one. The snapshot (payments.snapshot) carries them too;
-- this table is for sums by day and lookups by cancel. Not partitioned: a cancel is rarer than a
-- payment, and its id is its key across months.
CREATE TABLE payment_cancels (
  cancel_id           text        PRIMARY KEY,
  payment_id          text        NOT NULL,
  merchant_id         text        NOT NULL,
  kind                text        NOT NULL,
  amount              bigint      NOT NULL CHECK (amount > 0),
  reason              text        NOT NULL,
  status              text        NOT NULL,
  failure_code        text,
  pg_transaction_key  text,
  created_at          timestamptz NOT NULL,
  completed_at        timestamptz,
  version             bigint      NOT NULL
);
CREATE INDEX payment_cancels_payment ON payment_cancels (payment_id);
CREATE INDEX payment_cancels_merchant_completed ON payment_cancels (merchant_id, completed_at);

-- Down Migration

DROP TABLE payment_cancels;
