-- virtual-pbx-client.txt "Outgoing DDI ... if it is not overridden in a lower level": an
-- account may present its own DDI on external calls (one of its customer's numbers)
ALTER TABLE accounts ADD COLUMN outgoing_ddi text CHECK (outgoing_ddi ~ '^\+?[0-9]{1,32}$');
