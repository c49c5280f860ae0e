package otelsetup

import "github.com/lonelytrace/lonelytrace/exporter"

// ExporterOptions returns the options that Start gives the SQLite exporter
// from the environment ($LONELYTRACE_MAX_AGE, $LONELYTRACE_MAX_SIZE), for a
// program that builds its own exporter.New but should keep the file as a
// Start-ed one would: `lonelytrace collect` does. A value that does not
// parse is an error naming the variable.
func ExporterOptions() ([]exporter.Option, error) {
	return sqliteOptions(config{})
}
