-- Provisioning core: tenants, products, tariffs and rates, voice applications,
-- accounts and aliases. Money is numeric(18,5); intervals are seconds.

CREATE TABLE customers (
    id                  serial PRIMARY KEY,
    name                text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 128),
    currency            char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    timezone            text NOT NULL DEFAULT 'UTC' CHECK (length(timezone) BETWEEN 1 AND 64),
    language            text NOT NULL DEFAULT 'en' CHECK (language ~ '^[a-z]{2}(-[A-Za-z]{2})?$'),
    -- NULL: unlimited; caps what all the customer's credit accounts can owe together
    credit_limit        numeric(18,5) CHECK (credit_limit >= 0),
    balance             numeric(18,5) NOT NULL DEFAULT 0,
    blocked             boolean NOT NULL DEFAULT false,
    -- concurrent external calls, 0 = unlimited (virtual-pbx-client "Max calls")
    max_calls           integer NOT NULL DEFAULT 0 CHECK (max_calls >= 0),
    -- NULL: no daily limit; reset at midnight in the customer's timezone
    max_daily_usage     numeric(18,5) CHECK (max_daily_usage >= 0),
    daily_usage_email   text CHECK (daily_usage_email ~ '^[^@\s]+@[^@\s]+$'),
    ip_filter           boolean NOT NULL DEFAULT false,
    authorized_sources  cidr[] NOT NULL DEFAULT '{}',
    allowed_countries   text[] NOT NULL DEFAULT '{}'
                        CHECK (array_to_string(allowed_countries, ',') ~ '^([A-Z]{2}(,[A-Z]{2})*)?$'),
    outgoing_ddi        text CHECK (outgoing_ddi ~ '^\+?[0-9]{1,32}$'),
    media_relay_set     text CHECK (length(media_relay_set) BETWEEN 1 AND 64),
    voice_notifications boolean NOT NULL DEFAULT false,
    recording           boolean NOT NULL DEFAULT false,
    created_at          timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE tariffs (
    id         serial PRIMARY KEY,
    name       text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 128),
    currency   char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    created_at timestamptz NOT NULL DEFAULT now()
);

-- One row per destination prefix; rating picks the longest matching prefix.
-- Prices are per minute, charged per interval (first interval, then each next one).
CREATE TABLE rates (
    tariff_id      integer NOT NULL REFERENCES tariffs (id) ON DELETE CASCADE,
    prefix         text NOT NULL CHECK (prefix ~ '^[0-9]{0,32}$'),
    price_first    numeric(18,5) NOT NULL CHECK (price_first >= 0),
    price_next     numeric(18,5) NOT NULL CHECK (price_next >= 0),
    interval_first integer NOT NULL CHECK (interval_first > 0),
    interval_next  integer NOT NULL CHECK (interval_next > 0),
    connect_fee    numeric(18,5) NOT NULL DEFAULT 0 CHECK (connect_fee >= 0),
    free_seconds   integer NOT NULL DEFAULT 0 CHECK (free_seconds >= 0),
    forbidden      boolean NOT NULL DEFAULT false,
    PRIMARY KEY (tariff_id, prefix)
);

CREATE TABLE products (
    id         serial PRIMARY KEY,
    name       text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 128),
    currency   char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    created_at timestamptz NOT NULL DEFAULT now()
);

-- access_code '' rates plain calls; the seeds' special codes (IN, FIRSTCALL,
-- FIRST#<access number>, ANNOUNCE+DNIS, LEG_A.<dnis>, LEG_B.<dnis>, CALLBACK_FAIL,
-- ACCESS_CODE.ANSWER, ACCESS_CODE.ANSWER.FAIL, grouping prefixes) are plain values.
CREATE TABLE rating_entries (
    id          serial PRIMARY KEY,
    product_id  integer NOT NULL REFERENCES products (id) ON DELETE CASCADE,
    access_code text NOT NULL DEFAULT '' CHECK (access_code ~ '^[A-Za-z0-9_.#+%*-]{0,64}$'),
    tariff_id   integer NOT NULL REFERENCES tariffs (id) ON DELETE RESTRICT,
    UNIQUE (product_id, access_code)
);

CREATE TABLE voice_applications (
    id         serial PRIMARY KEY,
    name       text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 128),
    type       text NOT NULL CHECK (type IN ('pass_through', 'prepaid', 'callback', 'voucher_topup',
                                              'balance_info', 'balance_transfer', 'voicemail')),
    -- complete: every option of provisioning/app_settings.py with defaults filled in
    settings   jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(settings) = 'object'),
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE access_numbers (
    number     text PRIMARY KEY CHECK (number ~ '^[A-Za-z0-9+*#%]{1,64}$'),
    app_id     integer NOT NULL REFERENCES voice_applications (id) ON DELETE CASCADE
);
CREATE INDEX access_numbers_app ON access_numbers (app_id);

-- Account and alias IDs share one namespace: both tables reference this one, so a
-- duplicate is refused by the primary key even under concurrent inserts.
CREATE TABLE ids (
    id   text PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 64),
    kind text NOT NULL CHECK (kind IN ('account', 'alias')),
    UNIQUE (id, kind)
);

CREATE TABLE accounts (
    id                text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9._+-]{1,64}$'),
    kind              text NOT NULL DEFAULT 'account' CHECK (kind = 'account'),
    customer_id       integer NOT NULL REFERENCES customers (id) ON DELETE RESTRICT,
    product_id        integer NOT NULL REFERENCES products (id) ON DELETE RESTRICT,
    password          text NOT NULL DEFAULT '' CHECK (length(password) <= 128),
    service_password  text NOT NULL DEFAULT '' CHECK (length(service_password) <= 64),
    associated_number text CHECK (associated_number ~ '^[0-9]{1,32}$'),
    ivr_app_id        integer REFERENCES voice_applications (id) ON DELETE RESTRICT,
    language          text CHECK (language ~ '^[a-z]{2}(-[A-Za-z]{2})?$'),
    blocked           boolean NOT NULL DEFAULT false,
    billing_model     text NOT NULL DEFAULT 'credit' CHECK (billing_model IN ('debit', 'credit')),
    -- debit: available funds; credit: amount owed
    balance           numeric(18,5) NOT NULL DEFAULT 0,
    -- credit accounts only; NULL: unlimited (the customer's credit_limit still applies)
    credit_limit      numeric(18,5) CHECK (credit_limit >= 0),
    answering_mode    text NOT NULL DEFAULT 'ring'
                      CHECK (answering_mode IN ('ring', 'ring_then_voicemail', 'forward',
                                                'forward_then_voicemail', 'voicemail')),
    follow_me         text[] NOT NULL DEFAULT '{}',
    expires           timestamptz,
    first_use         timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (id, kind) REFERENCES ids (id, kind) ON DELETE CASCADE
);
CREATE INDEX accounts_customer ON accounts (customer_id);

CREATE TABLE aliases (
    id         text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9._+-]+(#[0-9]+)?(@[A-Za-z0-9.-]+)?$'),
    kind       text NOT NULL DEFAULT 'alias' CHECK (kind = 'alias'),
    account_id text NOT NULL REFERENCES accounts (id) ON DELETE RESTRICT,
    -- false: the alias can never REGISTER or digest-authenticate
    allow_auth boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (id, kind) REFERENCES ids (id, kind) ON DELETE CASCADE
);
CREATE INDEX aliases_account ON aliases (account_id);
