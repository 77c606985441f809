-- voice-application-settings.txt "Brand prompts": IVR prompts customized per access number.
-- An access number may name its own brand folder (<brand dir>/<brand>/<lang>/<name>.wav),
-- tried before its application's brand_prompts and the default prompts; NULL: the app's.
ALTER TABLE access_numbers
    ADD COLUMN brand_prompts text
        CHECK (brand_prompts ~ '^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$');
