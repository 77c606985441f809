-- Billing records: xDRs, balance operations, vouchers, voicemail messages.

-- One row per billed leg (docs/DATA.md "xdrs table"). No foreign keys on purpose:
-- an xDR is a historical record and must outlive the account it was billed to.
CREATE TABLE xdrs (
    id              bigserial PRIMARY KEY,
    session_id      text NOT NULL,
    call_id         text NOT NULL,
    leg             text NOT NULL CHECK (leg IN ('ivr', 'toll', 'onnet', 'out', 'in')),
    account_id      text NOT NULL,
    customer_id     integer,
    cli             text NOT NULL DEFAULT '',
    cld             text NOT NULL DEFAULT '',
    access_code     text NOT NULL DEFAULT '',
    setup_time      timestamptz,
    connect_time    timestamptz,
    disconnect_time timestamptz,
    duration        integer NOT NULL DEFAULT 0 CHECK (duration >= 0),
    charged_seconds integer NOT NULL DEFAULT 0 CHECK (charged_seconds >= 0),
    amount          numeric(18,5) NOT NULL DEFAULT 0,
    currency        char(3) CHECK (currency ~ '^[A-Z]{3}$'),
    rate_prefix     text,
    sip_code        integer,
    reason          text NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (call_id, leg, account_id)
);
CREATE INDEX xdrs_account ON xdrs (account_id, setup_time);
CREATE INDEX xdrs_customer ON xdrs (customer_id, setup_time);
CREATE INDEX xdrs_session ON xdrs (session_id);

-- Every change of a balance. amount is the signed change applied to the balance
-- column it names: accounts.balance when account_id is set, else customers.balance.
-- (A charge lowers a debit account's balance and raises a credit account's.)
CREATE TABLE balance_operations (
    id            bigserial PRIMARY KEY,
    account_id    text REFERENCES accounts (id) ON DELETE SET NULL,
    customer_id   integer REFERENCES customers (id) ON DELETE SET NULL,
    kind          text NOT NULL CHECK (kind IN ('charge', 'adjust', 'topup', 'voucher',
                                                'transfer', 'refund')),
    amount        numeric(18,5) NOT NULL,
    currency      char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    balance_after numeric(18,5),
    xdr_id        bigint UNIQUE REFERENCES xdrs (id) ON DELETE SET NULL,
    comment       text NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX balance_operations_account ON balance_operations (account_id, created_at);

CREATE TABLE vouchers (
    id         serial PRIMARY KEY,
    code       text NOT NULL UNIQUE CHECK (code ~ '^[0-9]{4,32}$'),
    amount     numeric(18,5) NOT NULL CHECK (amount > 0),
    currency   char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    expires    timestamptz,
    used_by    text REFERENCES accounts (id) ON DELETE SET NULL,
    used_at    timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE voicemail_messages (
    id         bigserial PRIMARY KEY,
    account_id text NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    caller     text NOT NULL DEFAULT '',
    path       text NOT NULL,
    duration   integer NOT NULL DEFAULT 0 CHECK (duration >= 0),
    heard      boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX voicemail_messages_account ON voicemail_messages (account_id, created_at);
