package main

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/lonelytrace/lonelytrace/internal/load"
)

// envTestAsMain makes this test binary run as the lonelytrace program
// itself, so that commands that run the program again (load -isolate)
// can be tested without building it.
const envTestAsMain = "LONELYTRACE_TEST_AS_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(envTestAsMain) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestLoad_Isolate(t *testing.T) {
	t.Setenv("OTEL_TRACES_EXPORTER", "sqlite")
	t.Setenv(envTestAsMain, "1")
	var out bytes.Buffer
	// 2,000 spans/s for 1.5 s fit in either pipeline's queue: every span
	// must be stored.
	err := run([]string{"load", "-compare", "-isolate", "-runs", "2", "-rate", "2000", "-duration", "1500ms", "-json"}, &out)
	if err != nil {
		t.Fatalf("load: %v\n%s", err, out.String())
	}
	text := out.String()
	var c load.Isolation
	if err := json.Unmarshal([]byte(text[strings.Index(text, "\n{")+1:]), &c); err != nil {
		t.Fatalf("JSON: %v\n%s", err, text)
	}
	if len(c.Runs) != 4 {
		t.Fatalf("runs = %d; want 4\n%s", len(c.Runs), text)
	}
	// The modes alternate, and so does which goes first.
	want := []load.Mode{load.Lonelytrace, load.OTLP, load.OTLP, load.Lonelytrace}
	for i, r := range c.Runs {
		if r.Mode != want[i] {
			t.Errorf("runs[%d].Mode = %q; want %q", i, r.Mode, want[i])
		}
		if r.Produced < 2000 || r.Produced%4 != 0 {
			t.Errorf("runs[%d] (%s): produced = %d; want some 3,000 in whole traces", i, r.Mode, r.Produced)
		}
		if r.Stored != r.Produced || r.Dropped+r.SDKDropped+r.Failed != 0 {
			t.Errorf("runs[%d] (%s): stored %d, dropped %d, SDK dropped %d, failed %d; want all %d produced stored",
				i, r.Mode, r.Stored, r.Dropped, r.SDKDropped, r.Failed, r.Produced)
		}
		if r.CPUPerSpan <= 0 || r.PeakRSS <= 0 {
			t.Errorf("runs[%d] (%s): CPU per span %s, peak RSS %d; want both > 0", i, r.Mode, r.CPUPerSpan, r.PeakRSS)
		}
		switch r.Mode {
		case load.Lonelytrace:
			if r.FileSpans != r.Stored {
				t.Errorf("runs[%d]: spans in the child's file = %d; want stored = %d", i, r.FileSpans, r.Stored)
			}
		case load.OTLP:
			// Stored is the parent's receiver's count, checked against
			// the child's own; the receiver's CPU is not the child's.
			if r.BytesPerSpan < 50 || r.BytesPerSpan > 1000 || r.ReceiverCPUPerSpan <= 0 {
				t.Errorf("runs[%d]: %.1f bytes per span, receiver CPU %s; want a protobuf's few hundred bytes and the parent's CPU",
					i, r.BytesPerSpan, r.ReceiverCPUPerSpan)
			}
		}
	}
	if len(c.Medians) != 2 || c.CPUVsOTLP <= 0 || c.ChildCPUVsOTLP <= 0 {
		t.Errorf("medians %+v, lonelytrace/otlp CPU %.2f, from start to exit %.2f; want two modes and the ratios", c.Medians, c.CPUVsOTLP, c.ChildCPUVsOTLP)
	}
	// A child's CPU from start to exit holds its CPU over the run.
	for i, whole := range c.ChildCPUPerSpan {
		if r := c.Runs[i]; whole < r.CPUPerSpan {
			t.Errorf("runs[%d] (%s): CPU per span from start to exit %s < over the run %s", i, r.Mode, whole, r.CPUPerSpan)
		}
	}
	if len(c.ChildCPUPerSpan) != len(c.Runs) {
		t.Errorf("child CPU figures = %d; want one a run, %d", len(c.ChildCPUPerSpan), len(c.Runs))
	}
	for _, line := range []string{"lonelytrace/otlp process CPU per span:", "lonelytrace − otlp peak RSS:", "load: child 4 of 4: "} {
		if !strings.Contains(text, line) {
			t.Errorf("output lacks %q:\n%s", line, text)
		}
	}

	t.Run("WithoutCompare", func(t *testing.T) {
		if err := run([]string{"load", "-isolate", "-duration", "1s"}, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "-compare") {
			t.Errorf("error = %v; want one saying -isolate goes with -compare", err)
		}
	})
}
