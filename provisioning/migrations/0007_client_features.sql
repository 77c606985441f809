-- virtual-pbx-client.txt "Features" (what the client may use: the rest is hidden and off)
-- and "Billing method" (when calls are priced; 'none' disables billing)
ALTER TABLE customers
    ADD COLUMN features text[] NOT NULL DEFAULT '{billing,voice_notifications,recording}'
        CHECK (features <@ ARRAY['billing', 'voice_notifications', 'recording']),
    ADD COLUMN billing_method text NOT NULL DEFAULT 'postpaid'
        CHECK (billing_method IN ('postpaid', 'none'));
