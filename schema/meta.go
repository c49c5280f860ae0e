package schema

// The keys of the meta table. Writer and viewer name them only through
// these constants; schema/README.md says what each value means.
const (
	// MetaDroppedSpans counts the spans the exporter dropped because its
	// queue stayed full.
	MetaDroppedSpans = "dropped_spans"
	// MetaFailedSpans counts the spans whose write transaction failed.
	MetaFailedSpans = "failed_spans"
	// MetaRetentionMaxAge is the age limit in force, in nanoseconds (0:
	// none).
	MetaRetentionMaxAge = "retention_max_age_ns"
	// MetaRetentionMaxSize is the size limit in force, in bytes (0: none).
	MetaRetentionMaxSize = "retention_max_bytes"
	// MetaRetentionDeleted counts the spans retention has deleted.
	MetaRetentionDeleted = "retention_deleted_spans"
	// MetaCheckpointsBlocked counts the episodes in which the WAL grew
	// past its bound because a reader held it, so that checkpoints could
	// not finish and the file's footprint was over its limit.
	MetaCheckpointsBlocked = "checkpoints_blocked"
)
