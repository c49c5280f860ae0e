package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/lonelytrace/lonelytrace/internal/outfile"
	"github.com/lonelytrace/lonelytrace/internal/progress"
	"github.com/lonelytrace/lonelytrace/schema"
	"github.com/lonelytrace/lonelytrace/viewer"
)

var copyCommand = command{
	name:    "copy",
	args:    "SRC DST",
	summary: "copy a trace file, live or not, consistent and compacted, optionally only some traces",
	help: `The copy is of one moment of SRC, read in one read transaction, so a
writer never waits; it only cannot checkpoint its WAL past that moment
until the copy is read. A whole copy copies SRC's pages with SQLite's
online backup (at disk speed) and compacts that private copy (VACUUM
INTO); a copy of some traces reads only those (through the indexes), so
it costs in proportion to what it copies. DST must not exist (-f replaces
it, once the copy is complete); it gets SRC's mode.

With no window or filter flag, the copy holds every trace. With any, it
holds the traces they select (without -since, from the beginning;
without -until, until now), each whole: every span SRC holds
with its trace id, with their resources and scopes. Attribute keys and
meta (dropped and failed counts, retention) are copied as they are.

` + selectionHelp,
	flags: func(fs *flag.FlagSet) func(context.Context, []string, io.Writer) error {
		force := fs.Bool("f", false, "replace DST if it exists")
		quiet := fs.Bool("q", false, "show no progress line (shown only on a terminal, for work over 2 s)")
		params := windowFlags(fs)
		return func(ctx context.Context, args []string, stdout io.Writer) error {
			if len(args) != 2 {
				return fmt.Errorf("copy: want SRC and DST, got %s (see lonelytrace copy -h)", countOf(len(args), "argument", "arguments"))
			}
			src, dst := args[0], args[1]
			sel, err := copySelection(params())
			if err != nil {
				return err
			}
			if err := outfile.Check(dst, *force, src); err != nil {
				return fmt.Errorf("copy: %w", err)
			}
			start := time.Now()
			unit := "pages"
			if sel != nil {
				unit = "steps"
			}
			m := progress.Start(os.Stderr, *quiet, "copy", unit)
			st, err := copyFile(ctx, src, dst, sel, *force, func(done, total int64) {
				m.SetTotal(total)
				m.Add(done - m.Done())
				if done == total && sel == nil {
					// The pages are read; compacting them into DST follows.
					m.Note("compacting")
				}
			})
			m.Stop()
			if err != nil {
				return err
			}
			what := "every trace"
			if sel != nil {
				what = "the selected traces"
			}
			fmt.Fprintf(stdout, "lonelytrace: copied %s of %s to %s: %s spans in %s traces, %s, in %s\n",
				what, src, dst, group(st.Spans), group(st.Traces), bytesText(st.Bytes), time.Since(start).Round(time.Millisecond))
			return nil
		}
	},
}

// copySelection turns the window and filter flags into a selection; nil
// when none is given.
func copySelection(params viewer.QueryText) (*schema.TraceSelection, error) {
	if params == (viewer.QueryText{}) {
		return nil, nil
	}
	sel, err := selectionOf(params)
	if err != nil {
		return nil, fmt.Errorf("copy: %w", err)
	}
	return &sel, nil
}

// copyFile copies src to dst as schema.Copy does. With force and an
// existing dst, the copy is made under a private name beside dst and
// renamed onto it only once complete, so that a failed copy leaves the
// old dst as it was.
func copyFile(ctx context.Context, src, dst string, sel *schema.TraceSelection, force bool, progress func(done, total int64)) (schema.CopyStats, error) {
	if _, err := os.Lstat(dst); err != nil || !force {
		return schema.CopyProgress(ctx, src, dst, sel, progress)
	}
	tmp, err := outfile.Temp(dst)
	if err != nil {
		return schema.CopyStats{}, fmt.Errorf("copy: %w", err)
	}
	// schema.Copy wants a name that does not exist: the temporary file
	// only reserved a unique one.
	os.Remove(tmp)
	defer outfile.Remove(tmp)
	st, err := schema.CopyProgress(ctx, src, tmp, sel, progress)
	if err != nil {
		return st, err
	}
	// A -wal or -shm left beside the old file would be applied to the new one.
	for _, p := range []string{dst + "-wal", dst + "-shm"} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return st, fmt.Errorf("copy: %w", err)
		}
	}
	if err := os.Rename(tmp, dst); err != nil {
		return st, fmt.Errorf("copy: %w", err)
	}
	return st, nil
}
