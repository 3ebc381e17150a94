-- The event store. `events` and `snapshots` keep the exact columns and primary keys that sqlite-es
-- names in its INSERTs: sqlite-es detects an optimistic-lock conflict only by SQLite error 1555
-- (PRIMARY KEY), so that key must stay. Everything added here is filled by defaults or triggers.

CREATE TABLE events
(
    aggregate_type  text                          NOT NULL,
    aggregate_id    text                          NOT NULL,
    sequence        integer CHECK (sequence >= 0) NOT NULL,
    event_type      text                          NOT NULL,
    event_version   text                          NOT NULL,
    payload         text                          NOT NULL,
    metadata        text                          NOT NULL,
    -- Server-assigned UTC time of the append, RFC 3339 with milliseconds and a Z.
    recorded_at     text                          NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    -- Lets a retried command find the events its first attempt wrote.
    idempotency_key text GENERATED ALWAYS AS (json_extract(metadata, '$.idempotency_key')) VIRTUAL,
    PRIMARY KEY (aggregate_type, aggregate_id, sequence)
) STRICT;

CREATE INDEX events_idempotency_key ON events (idempotency_key) WHERE idempotency_key IS NOT NULL;

-- The global, commit-ordered log. SQLite has one writer, so insertion order is commit order; the
-- rowid alone is not enough (VACUUM may renumber an implicit rowid), so the position is a declared
-- INTEGER PRIMARY KEY with AUTOINCREMENT: stable across VACUUM and backup/restore, never reused.
CREATE TABLE event_log
(
    global_position integer PRIMARY KEY AUTOINCREMENT,
    aggregate_type  text    NOT NULL,
    aggregate_id    text    NOT NULL,
    sequence        integer NOT NULL,
    UNIQUE (aggregate_type, aggregate_id, sequence),
    FOREIGN KEY (aggregate_type, aggregate_id, sequence) REFERENCES events (aggregate_type, aggregate_id, sequence)
) STRICT;

-- Filled in the same transaction as the event itself, so a reader never sees one without the other.
CREATE TRIGGER events_assign_global_position
    AFTER INSERT ON events
BEGIN
    INSERT INTO event_log (aggregate_type, aggregate_id, sequence)
    VALUES (NEW.aggregate_type, NEW.aggregate_id, NEW.sequence);
END;

-- Events are immutable: corrections are new events, never edits.
CREATE TRIGGER events_refuse_update BEFORE UPDATE ON events
BEGIN
    SELECT RAISE(ABORT, 'events are immutable: UPDATE refused');
END;
CREATE TRIGGER events_refuse_delete BEFORE DELETE ON events
BEGIN
    SELECT RAISE(ABORT, 'events are immutable: DELETE refused');
END;
CREATE TRIGGER event_log_refuse_update BEFORE UPDATE ON event_log
BEGIN
    SELECT RAISE(ABORT, 'the event log is immutable: UPDATE refused');
END;
CREATE TRIGGER event_log_refuse_delete BEFORE DELETE ON event_log
BEGIN
    SELECT RAISE(ABORT, 'the event log is immutable: DELETE refused');
END;

-- Snapshots keep long streams cheap to load (sqlite-es layout).
CREATE TABLE snapshots
(
    aggregate_type   text                                  NOT NULL,
    aggregate_id     text                                  NOT NULL,
    last_sequence    integer CHECK (last_sequence >= 0)    NOT NULL,
    current_snapshot integer CHECK (current_snapshot >= 0) NOT NULL,
    payload          text                                  NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id, last_sequence)
) STRICT;

-- One row per consumer of the global log (projector, later process managers): how far it has got.
CREATE TABLE log_checkpoints
(
    consumer        text PRIMARY KEY,
    version         integer NOT NULL,
    position        integer NOT NULL DEFAULT 0 CHECK (position >= 0),
    updated_at      text    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    -- The event it is stuck on and why, while it is failing; NULL when healthy.
    failed_position integer,
    last_error      text
) STRICT;
