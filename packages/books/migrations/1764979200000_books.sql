-- Up Migration

-- The books: every payment, every change of its state, every PG call made for it, and every
-- reconciliation run, for as long as the operator keeps them. Money is an integer of minor
-- units, times are timestamptz. The three big tables are partitioned by month (on the time that
-- never changes for a row), so that an old month can be detached and archived as a whole; the
-- drainer creates each month's partitions before it writes into them (books_ensure_month).

CREATE TABLE payments (
  id               text        NOT NULL,
  created_at       timestamptz NOT NULL,
  merchant_id      text        NOT NULL,
  payment_key      text        NOT NULL,
  order_id         text        NOT NULL,
  amount           bigint      NOT NULL CHECK (amount > 0),
  currency         text        NOT NULL,
  status           text        NOT NULL,
  phase            text        NOT NULL,
  attempts         integer     NOT NULL DEFAULT 0,
  pg_calls         integer     NOT NULL DEFAULT 0,
  transaction_key  text,
  approved_at      text,
  failure_code     text,
  finalized_at     timestamptz,
  updated_at       timestamptz NOT NULL,
  -- The version of the payment this row holds: an older version never overwrites a newer one.
  version          bigint      NOT NULL,
  -- The payment as Sluice keeps it (all fields, as strings): what the API renders, so that a
  -- payment read from the books has the shape it had while it was in Redis.
  snapshot         jsonb       NOT NULL,
  -- The 202 body as first sent, which an idempotent replay answers byte for byte.
  intake_body      text,
  PRIMARY KEY (id, created_at)
) PARTITION BY RANGE (created_at);
CREATE INDEX payments_merchant_id ON payments (merchant_id, id);
CREATE INDEX payments_merchant_status_id ON payments (merchant_id, status, id);
CREATE INDEX payments_order_id ON payments (order_id);
CREATE INDEX payments_payment_key ON payments (payment_key);

-- Claims for good: one payment per orderId and per paymentKey across the PG account. Not
-- partitioned, so that the unique keys hold across months. A payment that released its claims
-- (FAILED before any confirm was sent) has them deleted.
CREATE TABLE order_claims (
  order_id    text PRIMARY KEY,
  payment_id  text NOT NULL
);
CREATE TABLE payment_key_claims (
  payment_key text PRIMARY KEY,
  payment_id  text NOT NULL
);

-- Every change of a payment's state: from, to, cause, the PG's outcome, time, attempt.
CREATE TABLE payment_events (
  payment_id  text        NOT NULL,
  version     bigint      NOT NULL,
  at          timestamptz NOT NULL,
  from_phase  text,
  to_phase    text        NOT NULL,
  status      text        NOT NULL,
  attempt     integer     NOT NULL,
  cause       jsonb       NOT NULL,
  PRIMARY KEY (payment_id, version, at)
) PARTITION BY RANGE (at);

-- Every PG call: type, idempotency key, outcome, HTTP status, latency.
CREATE TABLE pg_calls (
  -- The Redis stream entry it came from: a call drained twice is stored once.
  entry_id         text        NOT NULL,
  at               timestamptz NOT NULL,
  payment_id       text,
  call             text        NOT NULL,
  idempotency_key  text,
  outcome          text        NOT NULL,
  http_status      integer,
  latency_ms       integer     NOT NULL,
  PRIMARY KEY (entry_id, at)
) PARTITION BY RANGE (at);
CREATE INDEX pg_calls_payment ON pg_calls (payment_id, at);

CREATE TABLE reconciliation_runs (
  id           bigserial   PRIMARY KEY,
  started_at   timestamptz NOT NULL,
  finished_at  timestamptz NOT NULL,
  report       jsonb       NOT NULL
);
CREATE TABLE reconciliation_findings (
  run_id      bigint NOT NULL REFERENCES reconciliation_runs (id) ON DELETE CASCADE,
  payment_id  text,
  kind        text   NOT NULL,
  detail      jsonb  NOT NULL
);
CREATE INDEX reconciliation_findings_run ON reconciliation_findings (run_id);

-- Creates the month's partition of each partitioned table, if missing. Serialised by an
-- advisory lock: two drainers may meet a new month at once.
CREATE FUNCTION books_ensure_month(month_start date) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  t text;
  next_start date := (month_start + interval '1 month')::date;
BEGIN
  PERFORM pg_advisory_xact_lock(hashtext('books_ensure_month'));
  FOREACH t IN ARRAY ARRAY['payments', 'payment_events', 'pg_calls'] LOOP
    EXECUTE format(
      'CREATE TABLE IF NOT EXISTS %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
      t || '_' || to_char(month_start, 'YYYY_MM'), t, month_start, next_start);
  END LOOP;
END $$;

-- Down Migration

DROP FUNCTION books_ensure_month(date);
DROP TABLE reconciliation_findings;
DROP TABLE reconciliation_runs;
DROP TABLE pg_calls;
DROP TABLE payment_events;
DROP TABLE payment_key_claims;
DROP TABLE order_claims;
DROP TABLE payments;
