-- virtual-pbx-client.txt "Distribute Method" and "Application Server": how a client's calls
-- are spread over the application servers (IVR workers): 'hash' (one server per client,
-- the default), 'round_robin' (every server in turn: huge clients), 'static' (always
-- application_server, for debugging); a server that fails passes the call to the next
ALTER TABLE customers
    ADD COLUMN distribute_method text NOT NULL DEFAULT 'hash'
        CHECK (distribute_method IN ('hash', 'round_robin', 'static')),
    ADD COLUMN application_server integer CHECK (application_server >= 0),
    ADD CONSTRAINT static_needs_a_server
        CHECK (distribute_method <> 'static' OR application_server IS NOT NULL);
