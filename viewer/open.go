package viewer

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/lonelytrace/lonelytrace/schema"
)

// openFile opens path read-only for the viewer: schema.OpenRead checks
// that it is a trace file of this version.
func openFile(ctx context.Context, path string) (*sql.DB, error) {
	db, err := schema.OpenRead(ctx, path)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(maxConnsPerFile)
	db.SetMaxIdleConns(maxConnsPerFile)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return db, nil
}
