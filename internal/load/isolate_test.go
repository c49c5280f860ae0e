package load_test

import (
	"context"
	"os/exec"
	"strings"
	"testing"

	"github.com/lonelytrace/lonelytrace/internal/load"
)

// TestCompareIsolated_Counts checks what CompareIsolated makes of
// children that do not add up: an OTLP child that says it delivered
// spans the receiver never got, and a child that runs another mode. (The
// real children run in cmd/lonelytrace's TestLoad_Isolate.)
func TestCompareIsolated_Counts(t *testing.T) {
	for _, tc := range []struct {
		name, lonelytrace, otlp, want string
	}{
		{"Undelivered",
			`{"mode":"lonelytrace","produced":8,"stored":8,"cpu_ns_per_span":1000}`,
			`{"mode":"otlp","produced":8,"stored":8,"cpu_ns_per_span":1000}`,
			"the child delivered 8 spans; the receiver decoded 0"},
		{"OtherMode",
			`{"mode":"discard","produced":8,"stored":8}`,
			`{"mode":"otlp"}`,
			`child ran "discard"; want "lonelytrace"`},
		{"NotJSON", "produced 8", "", "its result"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			command := func(ctx context.Context, mode load.Mode, endpoint string) *exec.Cmd {
				out := tc.lonelytrace
				if mode == load.OTLP {
					if !strings.HasPrefix(endpoint, "http://127.0.0.1:") {
						t.Errorf("endpoint = %q; want the parent's receiver on 127.0.0.1", endpoint)
					}
					out = tc.otlp
				}
				return exec.CommandContext(ctx, "echo", out)
			}
			c, err := load.CompareIsolated(context.Background(), command, 1)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v; want one saying %q", err, tc.want)
			}
			if tc.name == "Undelivered" && len(c.Runs) != 1 {
				t.Errorf("runs = %d; want the lonelytrace run before the failing one", len(c.Runs))
			}
		})
	}
}
