-- second-number-service.txt follow-me: the numbers ring one after the other (each for its
-- own timeout) or all at once (for the longest of their timeouts); the first to answer
-- takes the call
ALTER TABLE accounts
    ADD COLUMN follow_me_order text NOT NULL DEFAULT 'sequential'
        CHECK (follow_me_order IN ('sequential', 'simultaneous'));
