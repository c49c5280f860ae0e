// Package schema describes the lonelytrace trace file: its SQL schema as
// versioned migrations, the pub/sub attribute keys the viewer reads, the
// attribute encoding, and a Reader that decodes spans back. The exporter
// writes what this package describes and the viewer reads it; neither
// imports the other. README.md beside this file documents every table and
// column for users of the sqlite3 shell.
package schema
