package viewer

import (
	"context"
	"fmt"
	"time"
)

// Retention is what a file's exporter keeps, as it last recorded it in
// the file's meta table.
type Retention struct {
	// MaxAgeNs is how long spans are kept, in nanoseconds; 0 for ever.
	MaxAgeNs int64 `json:"max_age_ns"`
	// MaxBytes is the most bytes the file may take; 0 for no limit.
	MaxBytes int64 `json:"max_bytes"`
	// DeletedSpans counts the spans retention deleted over the file's life.
	DeletedSpans int64 `json:"deleted_spans"`
}

// MaxAge is MaxAgeNs as a duration.
func (r *Retention) MaxAge() time.Duration { return time.Duration(r.MaxAgeNs) }

// retention reads the retention f's exporter recorded (nil when it
// recorded none: a file of an older exporter) and the bytes the file's
// pages take.
func (f *file) retention(ctx context.Context) (*Retention, int64, error) {
	var r Retention
	var found int
	var bytes int64
	err := f.db.QueryRowContext(ctx, `SELECT
		(SELECT count(*) FROM meta WHERE key IN ('retention_max_age_ns', 'retention_max_bytes')),
		coalesce((SELECT value FROM meta WHERE key = 'retention_max_age_ns' AND typeof(value) = 'integer'), 0),
		coalesce((SELECT value FROM meta WHERE key = 'retention_max_bytes' AND typeof(value) = 'integer'), 0),
		coalesce((SELECT value FROM meta WHERE key = 'retention_deleted_spans' AND typeof(value) = 'integer'), 0),
		(SELECT page_count FROM pragma_page_count) * (SELECT page_size FROM pragma_page_size)`).Scan(&found, &r.MaxAgeNs, &r.MaxBytes, &r.DeletedSpans, &bytes)
	if err != nil {
		return nil, 0, fmt.Errorf("read retention of %s: %w", f.path, err)
	}
	if found == 0 {
		return nil, bytes, nil
	}
	return &r, bytes, nil
}
