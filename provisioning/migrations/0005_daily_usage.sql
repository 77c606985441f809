-- virtual-pbx-client.txt "Max daily usage": a client's external outbound spend per day of
-- its timezone, kept by the xDR writer with every external call it bills (the truth that
-- keyspace.daily_spent projects), and when the day's e-mail went out (once per day)
CREATE TABLE daily_usage (
    customer_id integer NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    day         date NOT NULL,
    spent       numeric(18,5) NOT NULL DEFAULT 0 CHECK (spent >= 0),
    reached_at  timestamptz,
    notified_at timestamptz,
    PRIMARY KEY (customer_id, day)
);
