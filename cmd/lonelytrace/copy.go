package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/lonelytrace/lonelytrace/schema"
)

var copyCommand = command{
	name:    "copy",
	args:    "SRC DST",
	summary: "copy a trace file, live or not, consistent and compacted, optionally only some traces",
	help: `The copy is of one moment of SRC: SQLite's online backup copies SRC's pages
in steps of 256 within one read transaction, so a writer never waits; it
only cannot checkpoint its WAL past that moment until the pages are
copied (at disk speed). Selecting traces and compacting (VACUUM INTO) then
run on that private copy, never on SRC. DST must not exist (-f replaces
it).

With no window or filter flag, the copy holds every trace. With any, it
holds the traces they select (without -since, from the beginning;
without -until, until now), each whole: every span SRC holds
with its trace id, with their resources and scopes. Attribute keys and
meta (dropped and failed counts, retention) are copied as they are.

` + selectionHelp,
	flags: func(fs *flag.FlagSet) func(context.Context, []string, io.Writer) error {
		force := fs.Bool("f", false, "replace DST if it exists")
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
			if si, err := os.Stat(src); err == nil {
				if di, err := os.Stat(dst); err == nil && os.SameFile(si, di) {
					return fmt.Errorf("copy: %s and %s are the same file", src, dst)
				}
			}
			if _, err := os.Lstat(dst); err == nil {
				if !*force {
					return fmt.Errorf("copy: %s exists; give -f to replace it", dst)
				}
				// A -wal left beside the old file would be applied to the new one.
				for _, p := range []string{dst, dst + "-wal", dst + "-shm"} {
					if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
						return fmt.Errorf("copy: %w", err)
					}
				}
			}
			start := time.Now()
			st, err := schema.Copy(ctx, src, dst, sel)
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
func copySelection(params map[string][]string) (*schema.TraceSelection, error) {
	if len(params) == 0 {
		return nil, nil
	}
	sel, err := selectionOf(params)
	if err != nil {
		return nil, fmt.Errorf("copy: %w", err)
	}
	return &sel, nil
}
