package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/lonelytrace/lonelytrace/internal/progress"
	"github.com/lonelytrace/lonelytrace/schema"
)

var checkCommand = command{
	name:    "check",
	args:    "FILE...",
	summary: "check trace files and report what they hold; safe on a file being written",
	help: `For each file: schema version and whether a migration is pending, SQLite's
integrity_check (quick_check with -quick), spans, traces and resources,
the oldest and newest span, dropped and failed spans, page size, file,
WAL and free-page bytes, and the retention the writer recorded.

It never writes, checkpoints or takes a write lock. A file being written
is read in one read transaction, which keeps the writer from
checkpointing past it until the check ends (the WAL grows meanwhile;
-quick makes that shorter). A file no process has open is read without
locks, leaving no -wal or -shm behind.

The exit status is 1 when any file is not SQLite, is another
application's SQLite file, has a newer schema than this lonelytrace reads,
or is corrupt; each says which.`,
	flags: func(fs *flag.FlagSet) func(context.Context, []string, io.Writer) error {
		quick := fs.Bool("quick", false, "run quick_check instead of the full integrity_check")
		asJSON := fs.Bool("json", false, "print one JSON object per file instead of text")
		quiet := fs.Bool("q", false, "show no progress line (shown only on a terminal, for work over 2 s)")
		return func(ctx context.Context, args []string, stdout io.Writer) error {
			files, err := needFiles("check", args)
			if err != nil {
				return err
			}
			var bad []error
			var badPaths []string
			m := progress.Start(os.Stderr, *quiet, "check", "files")
			defer m.Stop()
			m.SetTotal(int64(len(files)))
			for _, path := range files {
				m.Note(path)
				r, err := schema.Check(ctx, path, *quick)
				m.Add(1)
				if ctx.Err() != nil {
					return ctx.Err()
				}
				// The report starts on a clean line.
				m.Clear()
				if *asJSON {
					if e := writeCheckJSON(stdout, path, r, err); e != nil {
						return e
					}
				} else {
					// One file's problem is the command's error, said by
					// main; several are said in the report, each once.
					writeCheckText(stdout, path, r, err, len(files) > 1)
				}
				if err != nil {
					bad = append(bad, err)
					badPaths = append(badPaths, path)
				}
			}
			switch {
			case len(bad) == 0:
				return nil
			case len(files) == 1:
				return bad[0]
			}
			// The report said each problem; the error only names the files.
			return reportedError{fmt.Sprintf("check: %d of %d files failed: %s", len(bad), len(files), strings.Join(badPaths, ", ")), bad}
		}
	},
}

// reportedError is the error of problems already printed in the report:
// its message only names the files, and errors.Is still sees each cause.
type reportedError struct {
	msg  string
	errs []error
}

func (e reportedError) Error() string   { return e.msg }
func (e reportedError) Unwrap() []error { return e.errs }

// checkVerdict names the kind of problem, for people and for -json.
func checkVerdict(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, schema.ErrNotSQLite):
		return "not SQLite"
	case errors.Is(err, schema.ErrNotTraceFile):
		return "foreign SQLite file"
	case errors.Is(err, schema.ErrNewerSchema):
		return "newer schema"
	case errors.Is(err, schema.ErrCorrupt):
		return "corrupt"
	}
	return "unreadable"
}

func writeCheckJSON(w io.Writer, path string, r *schema.CheckReport, err error) error {
	doc := struct {
		Path    string              `json:"path"`
		Verdict string              `json:"verdict"`
		Error   string              `json:"error,omitempty"`
		Report  *schema.CheckReport `json:"report,omitempty"`
	}{Path: path, Verdict: checkVerdict(err), Report: r}
	if err != nil {
		doc.Error = err.Error()
	}
	return json.NewEncoder(w).Encode(doc)
}

func writeCheckText(w io.Writer, path string, r *schema.CheckReport, err error, problem bool) {
	fmt.Fprintf(w, "%s: %s\n", path, checkVerdict(err))
	if err != nil && problem {
		fmt.Fprintf(w, "  problem     %v\n", err)
	}
	if r == nil || r.Version == 0 && r.Integrity == nil {
		return
	}
	pending := "current"
	if r.MigrationPending {
		pending = fmt.Sprintf("older: migration to %d pending (the exporter migrates it when it opens the file)", schema.Version)
	}
	fmt.Fprintf(w, "  schema      version %d, %s\n", r.Version, pending)
	if r.Integrity != nil {
		name := "integrity_check"
		if r.Quick {
			name = "quick_check"
		}
		fmt.Fprintf(w, "  integrity   %s: %s\n", name, firstLines(r.Integrity, 3))
	}
	if err != nil {
		return
	}
	fmt.Fprintf(w, "  contents    %s spans in %s traces, %s resources\n", group(r.Spans), group(r.Traces), group(r.Resources))
	if r.Spans > 0 {
		fmt.Fprintf(w, "  spans       oldest %s, newest %s\n", r.Oldest.Format(time.RFC3339Nano), r.Newest.Format(time.RFC3339Nano))
	}
	fmt.Fprintf(w, "  lost        %s dropped (queue full), %s failed (write failed)\n", group(r.Dropped), group(r.Failed))
	fmt.Fprintf(w, "  size        file %s, WAL %s, free pages %s, page size %s bytes\n", bytesText(r.FileBytes), bytesText(r.WALBytes), bytesText(r.FreeBytes), group(r.PageSize))
	if r.Retention {
		age, size := "no age limit", "no size limit"
		if r.MaxAge > 0 {
			age = "max age " + r.MaxAge.String()
		}
		if r.MaxSize > 0 {
			size = "max size " + bytesText(r.MaxSize)
		}
		fmt.Fprintf(w, "  retention   %s, %s; %s spans deleted by it\n", age, size, group(r.RetentionDeleted))
	} else {
		fmt.Fprintf(w, "  retention   none recorded\n")
	}
	how := "without locks (no process has it open)"
	if r.Live {
		how = "beside a writer, in one read transaction"
	}
	fmt.Fprintf(w, "  read        %s\n", how)
}

func firstLines(s []string, n int) string {
	out := ""
	for i, l := range s {
		if i == n {
			return out + fmt.Sprintf("; and %d more", len(s)-n)
		}
		if i > 0 {
			out += "; "
		}
		out += l
	}
	return out
}

// bytesText writes n for people: 1.4 MiB (exact count in bytes below 1 KiB).
func bytesText(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}
