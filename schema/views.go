package schema

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// Views are derived objects: nothing is stored in them, so a new
// definition needs no migration of data. The versioned migrations, which
// are frozen, created the views of their day; ensureViews then brings
// every view to the definition below, dropping and creating again those
// whose stored text differs. It runs on every open for writing and writes
// only when a definition has changed: a reader (OpenRead) never writes,
// and sees the views of the last writer that opened the file, which for a
// file of this version the migrations created together with its tables.
var views = [...]struct{ name, sql string }{
	{SpansView, `CREATE VIEW spans_view AS
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
JOIN scopes AS sc ON sc.id = s.scope`},
	{SpanAttributesView, `CREATE VIEW span_attributes AS
SELECT s.id AS span, k.key AS key, a.value AS value, a.type AS type
FROM spans AS s, json_each(s.attributes) AS a
JOIN attribute_keys AS k ON k.id = CAST(a.key AS INTEGER)`},
}

// ensureViews gives every view of the file on conn its current
// definition, in one transaction when any differs.
func ensureViews(ctx context.Context, conn *sql.Conn) error {
	stale, err := staleViews(ctx, conn)
	if err != nil || len(stale) == 0 {
		return err
	}
	return ImmediateTx(ctx, conn, func() error {
		for _, i := range stale {
			v := views[i]
			// The view's name is ours, not user input.
			if _, err := conn.ExecContext(ctx, fmt.Sprintf("DROP VIEW IF EXISTS %s; %s", v.name, v.sql)); err != nil {
				return fmt.Errorf("create view %s: %w", v.name, err)
			}
		}
		return nil
	})
}

// staleViews returns the indexes in views of those whose stored
// definition is missing or not the current one. SQLite keeps a view's
// CREATE statement as it was written, without its semicolon.
func staleViews(ctx context.Context, conn *sql.Conn) ([]int, error) {
	var stale []int
	for i, v := range views {
		var stored sql.NullString
		err := conn.QueryRowContext(ctx, "SELECT sql FROM sqlite_schema WHERE type = 'view' AND name = ?", v.name).Scan(&stored)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("read view %s: %w", v.name, err)
		}
		if strings.TrimSpace(stored.String) != v.sql {
			stale = append(stale, i)
		}
	}
	return stale, nil
}
