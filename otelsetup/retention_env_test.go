package otelsetup_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/contrib/exporters/autoexport"

	"github.com/lonelytrace/lonelytrace/exporter"
	"github.com/lonelytrace/lonelytrace/otelsetup"
	"github.com/lonelytrace/lonelytrace/schema"
)

func TestStart_RetentionFromEnv(t *testing.T) {
	ctx := context.Background()
	read := func(t *testing.T, path string) (age, size int64) {
		t.Helper()
		db, err := schema.OpenRead(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		for key, dst := range map[string]*int64{"retention_max_age_ns": &age, "retention_max_bytes": &size} {
			if err := db.QueryRow("SELECT value FROM meta WHERE key = ?", key).Scan(dst); err != nil {
				t.Fatalf("meta %s: %v", key, err)
			}
		}
		return age, size
	}
	start := func(t *testing.T, path string, opts ...otelsetup.Option) {
		t.Helper()
		var exp *exporter.Exporter
		shutdown, err := otelsetup.Start(ctx, append(opts, otelsetup.WithDBPath(path),
			otelsetup.WithSQLiteExporter(func(e *exporter.Exporter) { exp = e }))...)
		if err != nil {
			t.Fatal(err)
		}
		// A flush runs the writer's maintenance, which records the
		// retention in the file.
		if err := exp.ForceFlush(ctx); err != nil {
			t.Fatal(err)
		}
		if err := shutdown(ctx); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("OTEL_TRACES_EXPORTER", "sqlite")
	t.Run("Defaults", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "t.db")
		start(t, path)
		if age, size := read(t, path); age != int64(exporter.DefaultMaxAge) || size != exporter.DefaultMaxSize {
			t.Errorf("retention = %v, %d; want the defaults", time.Duration(age), size)
		}
	})
	t.Run("Env", func(t *testing.T) {
		t.Setenv(otelsetup.EnvMaxAge, "90d")
		t.Setenv(otelsetup.EnvMaxSize, "500MB")
		path := filepath.Join(t.TempDir(), "t.db")
		start(t, path)
		if age, size := read(t, path); age != int64(90*24*time.Hour) || size != 500e6 {
			t.Errorf("retention = %v, %d; want 90 days, 500 MB", time.Duration(age), size)
		}
	})
	t.Run("OptionsWin", func(t *testing.T) {
		t.Setenv(otelsetup.EnvMaxAge, "90d")
		t.Setenv(otelsetup.EnvMaxSize, "0")
		path := filepath.Join(t.TempDir(), "t.db")
		start(t, path, otelsetup.WithExporterOptions(exporter.WithMaxAge(time.Hour)))
		if age, size := read(t, path); age != int64(time.Hour) || size != 0 {
			t.Errorf("retention = %v, %d; want 1h from the option, no size limit from the environment", time.Duration(age), size)
		}
	})
	t.Run("Autoexport", func(t *testing.T) {
		// The autoexport factory builds the exporter as Start does: the
		// environment's retention, then the latest Start's options.
		t.Setenv(otelsetup.EnvMaxAge, "90d")
		t.Setenv(otelsetup.EnvMaxSize, "")
		t.Setenv("OTEL_TRACES_EXPORTER", "none")
		path := filepath.Join(t.TempDir(), "t.db")
		shutdown, err := otelsetup.Start(ctx, otelsetup.WithDBPath(path),
			otelsetup.WithExporterOptions(exporter.WithMaxSize(300e6)))
		if err != nil {
			t.Fatal(err)
		}
		shutdown(ctx)
		t.Setenv("OTEL_TRACES_EXPORTER", "sqlite")
		se, err := autoexport.NewSpanExporter(ctx)
		if err != nil {
			t.Fatal(err)
		}
		exp, ok := se.(*exporter.Exporter)
		if !ok {
			t.Fatalf("autoexport gave %T; want *exporter.Exporter", se)
		}
		if err := exp.ForceFlush(ctx); err != nil {
			t.Fatal(err)
		}
		if err := exp.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		if age, size := read(t, path); age != int64(90*24*time.Hour) || size != 300e6 {
			t.Errorf("retention = %v, %d; want 90 days from the environment, 300 MB from the option", time.Duration(age), size)
		}
	})
	t.Run("Bad", func(t *testing.T) {
		for _, kv := range [][2]string{{otelsetup.EnvMaxAge, "a week"}, {otelsetup.EnvMaxSize, "lots"}} {
			t.Setenv(kv[0], kv[1])
			_, err := otelsetup.Start(ctx, otelsetup.WithDBPath(filepath.Join(t.TempDir(), "t.db")))
			if err == nil || !strings.Contains(err.Error(), kv[0]) {
				t.Errorf("Start with %s=%q = %v; want an error naming the variable", kv[0], kv[1], err)
			}
			t.Setenv(kv[0], "")
		}
	})
}
