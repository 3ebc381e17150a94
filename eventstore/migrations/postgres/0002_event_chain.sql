-- The hash chain over the global log (docs/audit.md): one row per position, written by the appender in
-- the transaction of the group that appended the event (holding the append lock), so `events` and
-- `event_log` rows never need an UPDATE. `hash` is lowercase hex of SHA-256(previous hash || canonical
-- bytes of the event), the previous hash of position 1 being 32 zero bytes. Deliberately no foreign
-- key to `event_log`: the chain is evidence of its own, and a row whose event has gone is exactly what
-- `autosalon verify` reports. Logs that exist before this migration get their chain computed right
-- after it, in Rust (`eventstore::chain::backfill`): SQL has no canonical JSON. The same table as on
-- SQLite (migrations/sqlite).
CREATE TABLE event_chain
(
    global_position bigint PRIMARY KEY CHECK (global_position > 0),
    hash            text   NOT NULL CHECK (length(hash) = 64)
);

CREATE TRIGGER event_chain_refuse_update BEFORE UPDATE OR DELETE ON event_chain
    FOR EACH ROW EXECUTE FUNCTION event_store_refuse_change('the event chain is');
CREATE TRIGGER event_chain_refuse_truncate BEFORE TRUNCATE ON event_chain
    FOR EACH STATEMENT EXECUTE FUNCTION event_store_refuse_change('the event chain is');
