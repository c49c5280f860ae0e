package viewer

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/lonelytrace/lonelytrace/schema"
)

// mmapSize is how much of a trace file each read connection maps. Reading
// through the map instead of one read(2) per page is what keeps a summary
// over a million spans under a second; it is address space, not memory.
// SQLite keeps the map within the file's committed size, and in WAL mode a
// checkpoint only shrinks the file under no reader, so a live writer is
// safe beside it.
const mmapSize = 1 << 30

// openFile opens path read-only for the viewer: schema.OpenRead checks
// that it is a trace file of this version and maps it into memory.
func openFile(ctx context.Context, path string) (*sql.DB, error) {
	db, err := schema.OpenRead(ctx, path, schema.WithMmapSize(mmapSize))
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
