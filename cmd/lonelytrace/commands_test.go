package main

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"os"
	"strings"
	"testing"
)

func TestCommands_Registered(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range commands {
		if c.name == "" || c.summary == "" || c.flags == nil || seen[c.name] {
			t.Errorf("command %q: want a unique name, a summary and flags", c.name)
		}
		seen[c.name] = true
	}
	var out bytes.Buffer
	if err := run([]string{"help"}, &out); err != nil {
		t.Fatal(err)
	}
	for _, c := range commands {
		if !strings.Contains(out.String(), "  "+c.name+" ") || !strings.Contains(out.String(), c.summary) {
			t.Errorf("help does not list %s:\n%s", c.name, out.String())
		}
	}
	for _, c := range commands {
		t.Run(c.name, func(t *testing.T) {
			// -h prints the command's usage on the flag set's output, stderr.
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			stderr := os.Stderr
			os.Stderr = w
			err = run([]string{c.name, "-h"}, io.Discard)
			os.Stderr = stderr
			w.Close()
			usage, _ := io.ReadAll(r)
			if !errors.Is(err, flag.ErrHelp) {
				t.Errorf("%s -h = %v; want flag.ErrHelp", c.name, err)
			}
			if want := strings.TrimSpace("usage: lonelytrace " + c.name + " [flags] " + c.args); !strings.HasPrefix(string(usage), want) {
				t.Errorf("%s -h printed:\n%s\nwant it to start %q", c.name, usage, want)
			}
		})
	}
}
