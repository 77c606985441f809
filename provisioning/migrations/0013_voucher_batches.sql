-- Vouchers (voice-application-settings.txt, "Account top-up via voucher"): each
-- `tollgate voucher generate` makes one batch of single-use vouchers of one amount; a
-- redeemed voucher points at the balance operation that credited it.
CREATE TABLE voucher_batches (
    id         serial PRIMARY KEY,
    amount     numeric(18,5) NOT NULL CHECK (amount > 0),
    currency   char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    expires    timestamptz,
    size       integer NOT NULL CHECK (size > 0),
    comment    text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE vouchers
    ADD COLUMN batch_id integer REFERENCES voucher_batches (id) ON DELETE CASCADE,
    ADD COLUMN balance_operation_id bigint REFERENCES balance_operations (id)
        ON DELETE SET NULL;
CREATE INDEX vouchers_batch ON vouchers (batch_id, id);
