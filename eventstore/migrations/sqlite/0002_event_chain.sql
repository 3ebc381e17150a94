-- The hash chain over the global log (docs/audit.md): one row per position, written by the appender in
-- the transaction of the group that appended the event, so `events` and `event_log` rows never need an
-- UPDATE. `hash` is lowercase hex of SHA-256(previous hash || canonical bytes of the event), the
-- previous hash of position 1 being 32 zero bytes. Deliberately no foreign key to `event_log`: the
-- chain is evidence of its own, and a row whose event has gone is exactly what `autosalon verify`
-- reports. Logs that exist before this migration get their chain computed right after it, in Rust
-- (`eventstore::chain::backfill`): SQL has no canonical JSON.
CREATE TABLE event_chain
(
    global_position integer PRIMARY KEY CHECK (global_position > 0),
    hash            text    NOT NULL CHECK (length(hash) = 64)
) STRICT;

CREATE TRIGGER event_chain_refuse_update BEFORE UPDATE ON event_chain
BEGIN
    SELECT RAISE(ABORT, 'the event chain is immutable: UPDATE refused');
END;
CREATE TRIGGER event_chain_refuse_delete BEFORE DELETE ON event_chain
BEGIN
    SELECT RAISE(ABORT, 'the event chain is immutable: DELETE refused');
END;
