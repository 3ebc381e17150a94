-- The event store on PostgreSQL. `events` and `snapshots` keep the exact columns and primary keys that
-- postgres-es names in its statements: it detects an optimistic-lock conflict only by error 23505 on
-- the events' primary key, so that key must stay. Everything added here is filled by defaults or
-- triggers. The same tables, columns and meanings as the SQLite store (migrations/sqlite).

CREATE TABLE events
(
    aggregate_type  text                         NOT NULL,
    aggregate_id    text                         NOT NULL,
    sequence        bigint CHECK (sequence >= 0) NOT NULL,
    event_type      text                         NOT NULL,
    event_version   text                         NOT NULL,
    payload         json                         NOT NULL,
    metadata        json                         NOT NULL,
    -- Server-assigned UTC time of the append.
    recorded_at     timestamptz                  NOT NULL DEFAULT clock_timestamp(),
    -- Lets a retried command find the events its first attempt wrote.
    idempotency_key text GENERATED ALWAYS AS (metadata ->> 'idempotency_key') STORED,
    PRIMARY KEY (aggregate_type, aggregate_id, sequence)
);

CREATE INDEX events_idempotency_key ON events (idempotency_key) WHERE idempotency_key IS NOT NULL;

-- The global, commit-ordered log.
--
-- PostgreSQL hands out sequence values when a row is inserted, but transactions commit in another
-- order: a reader that has seen position 11 may later find a 10 that committed after it, and a
-- checkpoint at 11 would skip it forever. So appends are serialised: the first event of every append
-- takes one transaction-scoped advisory lock, held until its transaction commits or rolls back, and
-- only then takes the next position (max + 1: no gaps, even after a rollback). A position is therefore
-- handed out only after every smaller one has committed or vanished, and "everything after my
-- checkpoint" never skips a late commit. Appends from every server queue on that lock; reads never do.
CREATE TABLE event_log
(
    global_position bigint PRIMARY KEY CHECK (global_position > 0),
    aggregate_type  text   NOT NULL,
    aggregate_id    text   NOT NULL,
    sequence        bigint NOT NULL,
    UNIQUE (aggregate_type, aggregate_id, sequence),
    FOREIGN KEY (aggregate_type, aggregate_id, sequence) REFERENCES events (aggregate_type, aggregate_id, sequence)
);

-- Lock key: (1096111183 = 0x4155544f = 'AUTO', 1). Taken BEFORE the row is inserted, so an append never waits for
-- the lock while holding a row another append is waiting on (no deadlock with the primary key).
CREATE FUNCTION events_serialise_append() RETURNS trigger
    LANGUAGE plpgsql AS
$$
BEGIN
    -- Positions are read with max() after the lock is taken; a snapshot older than the lock (REPEATABLE
    -- READ, SERIALIZABLE) would not see the previous append and would reuse its position.
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'events must be appended at READ COMMITTED, not %',
            current_setting('transaction_isolation');
    END IF;
    PERFORM pg_advisory_xact_lock(1096111183, 1);
    RETURN NEW;
END;
$$;

CREATE TRIGGER events_serialise_append
    BEFORE INSERT ON events
    FOR EACH ROW EXECUTE FUNCTION events_serialise_append();

-- Filled in the same transaction as the event itself, so a reader never sees one without the other;
-- the NOTIFY is delivered at commit, to every server, and wakes their log consumers.
CREATE FUNCTION events_assign_global_position() RETURNS trigger
    LANGUAGE plpgsql AS
$$
BEGIN
    INSERT INTO event_log (global_position, aggregate_type, aggregate_id, sequence)
    VALUES ((SELECT coalesce(max(global_position), 0) + 1 FROM event_log),
            NEW.aggregate_type, NEW.aggregate_id, NEW.sequence);
    PERFORM pg_notify('autosalon_events', '');
    RETURN NULL;
END;
$$;

CREATE TRIGGER events_assign_global_position
    AFTER INSERT ON events
    FOR EACH ROW EXECUTE FUNCTION events_assign_global_position();

-- Events are immutable: corrections are new events, never edits.
CREATE FUNCTION event_store_refuse_change() RETURNS trigger
    LANGUAGE plpgsql AS
$$
BEGIN
    RAISE EXCEPTION '% is immutable: % refused', TG_ARGV[0], TG_OP;
END;
$$;

CREATE TRIGGER events_refuse_update BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION event_store_refuse_change('events are');
CREATE TRIGGER events_refuse_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION event_store_refuse_change('events are');
CREATE TRIGGER event_log_refuse_update BEFORE UPDATE OR DELETE ON event_log
    FOR EACH ROW EXECUTE FUNCTION event_store_refuse_change('the event log is');
CREATE TRIGGER event_log_refuse_truncate BEFORE TRUNCATE ON event_log
    FOR EACH STATEMENT EXECUTE FUNCTION event_store_refuse_change('the event log is');

-- Snapshots keep long streams cheap to load (postgres-es layout).
CREATE TABLE snapshots
(
    aggregate_type   text                                 NOT NULL,
    aggregate_id     text                                 NOT NULL,
    last_sequence    bigint CHECK (last_sequence >= 0)    NOT NULL,
    current_snapshot bigint CHECK (current_snapshot >= 0) NOT NULL,
    payload          json                                 NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id, last_sequence)
);

-- One row per consumer of the global log (projector, later process managers): how far it has got.
CREATE TABLE log_checkpoints
(
    consumer        text PRIMARY KEY,
    version         bigint NOT NULL,
    position        bigint NOT NULL DEFAULT 0 CHECK (position >= 0),
    updated_at      text   NOT NULL DEFAULT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
    -- The event it is stuck on and why, while it is failing; NULL when healthy.
    failed_position bigint,
    last_error      text
);

-- Servers that do not run a projector learn of its progress at once (read-your-writes on any server).
CREATE FUNCTION log_checkpoints_notify() RETURNS trigger
    LANGUAGE plpgsql AS
$$
BEGIN
    PERFORM pg_notify('autosalon_checkpoints', NEW.consumer);
    RETURN NULL;
END;
$$;

CREATE TRIGGER log_checkpoints_notify
    AFTER INSERT OR UPDATE ON log_checkpoints
    FOR EACH ROW EXECUTE FUNCTION log_checkpoints_notify();
