package otelsetup_test

import (
	"testing"

	"github.com/lonelytrace/lonelytrace/otelsetup"
)

// TestDBPath is the rule that names the trace file, for Start and for
// `lonelytrace collect`: the path given, else $LONELYTRACE_DB, else the
// default.
func TestDBPath(t *testing.T) {
	for _, c := range []struct {
		name, given, env, want string
	}{
		{"Given", "given.db", "", "given.db"},
		{"GivenBeatsEnv", "given.db", "env.db", "given.db"},
		{"Env", "", "env.db", "env.db"},
		{"Default", "", "", otelsetup.DefaultDBPath},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv(otelsetup.EnvDB, c.env)
			if got := otelsetup.DBPath(c.given); got != c.want {
				t.Errorf("DBPath(%q) with %s=%q = %q; want %q", c.given, otelsetup.EnvDB, c.env, got, c.want)
			}
		})
	}
	if otelsetup.DefaultDBPath != "traces.db" {
		t.Errorf("DefaultDBPath = %q; want traces.db, as the README says", otelsetup.DefaultDBPath)
	}
}
