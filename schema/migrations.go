package schema

import (
	"context"
	"database/sql"
	"fmt"
)

// Version is the schema version this package writes, kept in PRAGMA
// user_version. It is len(migrations).
const Version = 3

// TraceGenerationShift sets how often traces.gen advances: a writer gives
// new traces the generation of the next row id shifted right by it, that
// is a new generation every 2^18 (262,144) traces.
const TraceGenerationShift = 18

// ApplicationID marks lonelytrace files in PRAGMA application_id ("ltrc").
const ApplicationID = 0x6c747263

// migrations[i] takes a file from version i to version i+1. A migration
// that has shipped is frozen, byte for byte (TestMigrationsFrozen checks
// their sha256): never edited, only followed by a new one. So each is
// written out in full, names included: the literal 'dropped_spans' of
// migration 1 is MetaDroppedSpans, and the views it and migration 2
// create are those of their day. Views are derived objects, brought to
// their current definition after the migrations by ensureViews
// (views.go).
var migrations = []string{
	// 1: the first schema. See README.md for what each column holds.
	`
CREATE TABLE meta (
	key   TEXT PRIMARY KEY,
	value ANY
) STRICT;
INSERT INTO meta(key, value) VALUES ('dropped_spans', 0);

CREATE TABLE attribute_keys (
	id  INTEGER PRIMARY KEY,
	key TEXT NOT NULL UNIQUE
) STRICT;

CREATE TABLE resources (
	id         INTEGER PRIMARY KEY,
	schema_url TEXT NOT NULL,
	attributes TEXT NOT NULL,
	UNIQUE (attributes, schema_url)
) STRICT;

CREATE TABLE scopes (
	id         INTEGER PRIMARY KEY,
	name       TEXT NOT NULL,
	version    TEXT NOT NULL,
	schema_url TEXT NOT NULL,
	attributes TEXT NOT NULL,
	UNIQUE (name, version, schema_url, attributes)
) STRICT;

CREATE TABLE traces (
	id       INTEGER PRIMARY KEY,
	trace_id BLOB NOT NULL UNIQUE
) STRICT;

CREATE TABLE spans (
	id                 INTEGER PRIMARY KEY,
	trace              INTEGER NOT NULL,
	span_id            BLOB NOT NULL,
	parent_span_id     BLOB,
	parent_remote      INTEGER NOT NULL,
	flags              INTEGER NOT NULL,
	trace_state        TEXT,
	name               TEXT NOT NULL,
	kind               INTEGER NOT NULL,
	start_ns           INTEGER NOT NULL,
	end_ns             INTEGER NOT NULL,
	status_code        INTEGER NOT NULL,
	status_message     TEXT,
	attributes         TEXT,
	events             TEXT,
	links              TEXT,
	dropped_attributes INTEGER NOT NULL,
	dropped_events     INTEGER NOT NULL,
	dropped_links      INTEGER NOT NULL,
	child_count        INTEGER NOT NULL,
	resource           INTEGER NOT NULL,
	scope              INTEGER NOT NULL,
	op                 TEXT,
	topic              TEXT,
	glob               TEXT,
	broadcaster        TEXT,
	body_size          INTEGER,
	subscribers        INTEGER,
	stateful           INTEGER
) STRICT;

-- Both indexes grow at their end: trace is an id handed out in order of
-- first sight, and the operation index holds only the few spans that are
-- pub/sub operations, in start order within each.
CREATE INDEX spans_by_trace ON spans (trace);
CREATE INDEX spans_by_op ON spans (op, start_ns, end_ns) WHERE op IS NOT NULL;

-- One row per write transaction: the span rows it added and the range of
-- their start times. Rows are written in roughly the order they start, so
-- this small table maps a time window to ranges of span ids, in place of
-- an index on start_ns that every span would pay for.
CREATE TABLE batches (
	id           INTEGER PRIMARY KEY,
	first_span   INTEGER NOT NULL,
	last_span    INTEGER NOT NULL,
	spans        INTEGER NOT NULL,
	min_start_ns INTEGER NOT NULL,
	max_start_ns INTEGER NOT NULL,
	written_ns   INTEGER NOT NULL
) STRICT;
CREATE INDEX batches_by_max_start ON batches (max_start_ns);

CREATE VIEW spans_view AS
SELECT
	s.id,
	lower(hex(t.trace_id)) AS trace_id,
	lower(hex(s.span_id)) AS span_id,
	lower(hex(s.parent_span_id)) AS parent_span_id,
	s.parent_remote,
	s.name,
	CASE s.kind WHEN 1 THEN 'internal' WHEN 2 THEN 'server' WHEN 3 THEN 'client'
		WHEN 4 THEN 'producer' WHEN 5 THEN 'consumer' ELSE 'unspecified' END AS kind,
	strftime('%Y-%m-%dT%H:%M:%fZ', s.start_ns / 1e9, 'unixepoch') AS start_time,
	s.start_ns,
	s.end_ns,
	(s.end_ns - s.start_ns) / 1e6 AS duration_ms,
	CASE s.status_code WHEN 1 THEN 'ok' WHEN 2 THEN 'error' ELSE 'unset' END AS status,
	s.status_message,
	(SELECT json_group_object(k.key,
			CASE a.type WHEN 'true' THEN json('true') WHEN 'false' THEN json('false')
				WHEN 'array' THEN json(a.value) WHEN 'object' THEN json(a.value)
				ELSE a.value END)
		FROM json_each(s.attributes) AS a
		JOIN attribute_keys AS k ON k.id = CAST(a.key AS INTEGER)) AS attributes,
	s.events,
	s.links,
	json_extract(r.attributes, '$."service.name"') AS service_name,
	r.attributes AS resource,
	sc.name AS scope,
	s.op, s.topic, s.glob, s.broadcaster, s.body_size, s.subscribers, s.stateful
FROM spans AS s
JOIN traces AS t ON t.id = s.trace
JOIN resources AS r ON r.id = s.resource
JOIN scopes AS sc ON sc.id = s.scope;

CREATE VIEW span_attributes AS
SELECT s.id AS span, k.key AS key, a.value AS value, a.type AS type
FROM spans AS s, json_each(s.attributes) AS a
JOIN attribute_keys AS k ON k.id = CAST(a.key AS INTEGER);
`,
	// 2: the trace-id index grows at its end. Trace ids are random, so a
	// unique index on them alone takes every new trace to a random page:
	// once the index outgrows the page cache, each new trace reads a page
	// and rewrites it at the commit. Prefixed with a generation that
	// advances every 2^18 traces, new ids land in the newest generation's
	// few megabytes, which stay cached. A lookup by trace id alone probes
	// each generation (skip-scan; the sqlite_stat1 row tells the planner
	// that generations are few), a handful of seeks for millions of
	// traces. It drops spans_view, which reads traces, to rebuild that
	// table under it.
	`
DROP VIEW spans_view;
CREATE TABLE traces_v2 (
	id       INTEGER PRIMARY KEY,
	gen      INTEGER NOT NULL,
	trace_id BLOB NOT NULL
) STRICT;
INSERT INTO traces_v2 (id, gen, trace_id) SELECT id, id >> 18, trace_id FROM traces;
DROP TABLE traces;
ALTER TABLE traces_v2 RENAME TO traces;
CREATE UNIQUE INDEX traces_by_gen ON traces (gen, trace_id);
ANALYZE sqlite_schema;
DELETE FROM sqlite_stat1 WHERE tbl = 'traces';
INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES ('traces', 'traces_by_gen', '1000000 262144 1');
-- Again, so that this connection loads the row too (ANALYZE reloads them).
ANALYZE sqlite_schema;
CREATE VIEW spans_view AS
SELECT
	s.id,
	lower(hex(t.trace_id)) AS trace_id,
	lower(hex(s.span_id)) AS span_id,
	lower(hex(s.parent_span_id)) AS parent_span_id,
	s.parent_remote,
	s.name,
	CASE s.kind WHEN 1 THEN 'internal' WHEN 2 THEN 'server' WHEN 3 THEN 'client'
		WHEN 4 THEN 'producer' WHEN 5 THEN 'consumer' ELSE 'unspecified' END AS kind,
	strftime('%Y-%m-%dT%H:%M:%fZ', s.start_ns / 1e9, 'unixepoch') AS start_time,
	s.start_ns,
	s.end_ns,
	(s.end_ns - s.start_ns) / 1e6 AS duration_ms,
	CASE s.status_code WHEN 1 THEN 'ok' WHEN 2 THEN 'error' ELSE 'unset' END AS status,
	s.status_message,
	(SELECT json_group_object(k.key,
			CASE a.type WHEN 'true' THEN json('true') WHEN 'false' THEN json('false')
				WHEN 'array' THEN json(a.value) WHEN 'object' THEN json(a.value)
				ELSE a.value END)
		FROM json_each(s.attributes) AS a
		JOIN attribute_keys AS k ON k.id = CAST(a.key AS INTEGER)) AS attributes,
	s.events,
	s.links,
	json_extract(r.attributes, '$."service.name"') AS service_name,
	r.attributes AS resource,
	sc.name AS scope,
	s.op, s.topic, s.glob, s.broadcaster, s.body_size, s.subscribers, s.stateful
FROM spans AS s
JOIN traces AS t ON t.id = s.trace
JOIN resources AS r ON r.id = s.resource
JOIN scopes AS sc ON sc.id = s.scope;
`,
	// 3: resources, scopes and attribute keys can be reclaimed. last_span
	// is at least the highest spans.id of a span that refers to the row,
	// so a row whose last_span is below every span id left is one no span
	// uses. Writers that do not keep it leave the default, the largest
	// id, which is never reclaimed; rows already there count as used by
	// every span now in the file. The indexes let retention find the rows
	// to reclaim without reading the tables.
	`
ALTER TABLE attribute_keys ADD COLUMN last_span INTEGER NOT NULL DEFAULT 9223372036854775807;
ALTER TABLE resources ADD COLUMN last_span INTEGER NOT NULL DEFAULT 9223372036854775807;
ALTER TABLE scopes ADD COLUMN last_span INTEGER NOT NULL DEFAULT 9223372036854775807;
UPDATE attribute_keys SET last_span = (SELECT coalesce(max(id), 0) FROM spans);
UPDATE resources SET last_span = (SELECT coalesce(max(id), 0) FROM spans);
UPDATE scopes SET last_span = (SELECT coalesce(max(id), 0) FROM spans);
CREATE INDEX attribute_keys_by_last_span ON attribute_keys (last_span);
CREATE INDEX resources_by_last_span ON resources (last_span);
CREATE INDEX scopes_by_last_span ON scopes (last_span);
`,
}

// migrate brings the database on conn to Version. Each migration runs with
// its user_version bump in one immediate transaction (ImmediateTx), so a
// crash leaves the file at the old or the new version, never between.
func migrate(ctx context.Context, conn *sql.Conn) error {
	for {
		done, err := migrateOne(ctx, conn)
		if err != nil || done {
			return err
		}
	}
}

func migrateOne(ctx context.Context, conn *sql.Conn) (done bool, err error) {
	err = ImmediateTx(ctx, conn, func() error {
		// Read the version inside the write lock: another process may
		// have migrated the file since we looked.
		var v int
		if err := conn.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
			return fmt.Errorf("read user_version: %w", err)
		}
		if v > Version {
			return fmt.Errorf("%w: file is version %d, this lonelytrace reads up to %d", ErrNewerSchema, v, Version)
		}
		if v == Version {
			done = true
			return nil
		}
		if _, err := conn.ExecContext(ctx, migrations[v]); err != nil {
			return fmt.Errorf("apply migrations[%d]: %w", v, err)
		}
		// PRAGMA takes no parameters; v+1 is our own integer.
		if _, err := conn.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d; PRAGMA application_id = %d", v+1, ApplicationID)); err != nil {
			return fmt.Errorf("set user_version %d: %w", v+1, err)
		}
		return nil
	})
	return done, err
}
