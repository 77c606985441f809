-- virtual-pbx-client.txt "List of Rating profiles ... used to bill its outgoing calls":
-- a client with rating profiles is billed by the products of its active ones (activated,
-- not expired), newest activation first, the first that rates the call; a client with
-- none keeps each account's product
CREATE TABLE rating_profiles (
    id          serial PRIMARY KEY,
    customer_id integer NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    product_id  integer NOT NULL REFERENCES products (id) ON DELETE RESTRICT,
    activation  timestamptz NOT NULL,
    expiry      timestamptz CHECK (expiry > activation),
    UNIQUE (customer_id, product_id, activation)
);
CREATE INDEX rating_profiles_product ON rating_profiles (product_id);
