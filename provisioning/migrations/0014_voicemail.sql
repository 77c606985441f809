-- second-number-service.txt voicemail: the IVR records a message to a WAV file under
-- <var>/voicemail/<account>/ and provisioning/voicemail.py files it here. message_key is
-- the digest of the account and the recording session's Call-ID: depositing or replaying the
-- same message again changes nothing. path is relative to <var>/voicemail.
ALTER TABLE voicemail_messages
    ADD COLUMN message_key text,
    ADD COLUMN received_at timestamptz,
    ADD COLUMN size_bytes  bigint CHECK (size_bytes >= 0);
-- rows from before this migration get a key and time of their own
UPDATE voicemail_messages
   SET message_key = 'legacy-' || id, received_at = created_at;
ALTER TABLE voicemail_messages
    ALTER COLUMN message_key SET NOT NULL,
    ADD CONSTRAINT voicemail_messages_message_key UNIQUE (message_key),
    ALTER COLUMN received_at SET NOT NULL,
    ALTER COLUMN received_at SET DEFAULT now(),
    -- new rows only: a caller's CLI is cleaned to 64 characters, a path never leaves the root
    ADD CONSTRAINT voicemail_messages_caller CHECK (caller ~ '^[0-9A-Za-z+*#._@-]{0,64}$')
        NOT VALID,
    ADD CONSTRAINT voicemail_messages_relative_path
        CHECK (path <> '' AND path !~ '^/' AND path !~ '(^|/)\.\.(/|$)') NOT VALID;
DROP INDEX voicemail_messages_account;
CREATE INDEX voicemail_messages_account ON voicemail_messages (account_id, received_at, id);

-- the account's mailbox: where a new message is e-mailed (NULL: nowhere), how many
-- messages it keeps (new and saved), the longest message, and whether its owner calling
-- from the account's own number (ANI) still has to key the service password
ALTER TABLE accounts
    ADD COLUMN voicemail_email text CHECK (voicemail_email ~ '^[^@\s]+@[^@\s]+$'),
    ADD COLUMN voicemail_max_messages integer NOT NULL DEFAULT 100
        CHECK (voicemail_max_messages BETWEEN 1 AND 10000),
    ADD COLUMN voicemail_max_seconds integer NOT NULL DEFAULT 180
        CHECK (voicemail_max_seconds BETWEEN 10 AND 3600),
    ADD COLUMN voicemail_pin_required boolean NOT NULL DEFAULT false;
