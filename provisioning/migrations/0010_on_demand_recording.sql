-- virtual-pbx-client.txt "On-demand call recording" (shown only with the recording
-- feature): how a call asks to be recorded ('service_code': dialed before the number,
-- e.g. *1 12125550123; 'dtmf': keyed in during the call, sent as SIP INFO) and the code;
-- "Allow Client to remove recordings". Recordings
-- are WAV files under the var directory, described here.
ALTER TABLE customers
    ADD COLUMN on_demand_recording text NOT NULL DEFAULT 'disabled'
        CHECK (on_demand_recording IN ('disabled', 'service_code', 'dtmf')),
    ADD COLUMN recording_service_code text NOT NULL DEFAULT '*1'
        CHECK (recording_service_code ~ '^[*#][0-9*#]{1,7}$'),
    ADD COLUMN allow_recording_removal boolean NOT NULL DEFAULT false;

CREATE TABLE recordings (
    id          bigserial PRIMARY KEY,
    call_id     text NOT NULL UNIQUE,
    customer_id integer NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    account_id  text NOT NULL,
    cli         text NOT NULL,
    cld         text NOT NULL,
    started_at  timestamptz NOT NULL,
    seconds     numeric(10,3) NOT NULL CHECK (seconds >= 0),
    path        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX recordings_customer ON recordings (customer_id, started_at);
