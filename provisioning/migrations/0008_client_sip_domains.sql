-- virtual-pbx-client.txt "SIP domain" and "Corporation": a client may have its own SIP
-- domain, where its accounts register and authenticate (digest realm = the domain) by
-- their extensions: aliases <extension>@<domain> with allow_auth, unique per domain, so
-- two clients may both have a 101. Clients of one corporation may call each other's
-- extensions (inter-VPBX friends).
ALTER TABLE customers
    ADD COLUMN sip_domain text UNIQUE
        CHECK (sip_domain ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$'
               AND length(sip_domain) <= 253),
    ADD COLUMN corporation text CHECK (length(corporation) BETWEEN 1 AND 128);
