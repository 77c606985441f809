-- voice-application-settings.txt "Restrict calls for accounts with low balance": an
-- account whose balance is less than its product's rounding amount counts as out of funds
ALTER TABLE products
    ADD COLUMN rounding_amount numeric(12,5) NOT NULL DEFAULT 0.01
        CHECK (rounding_amount >= 0);
