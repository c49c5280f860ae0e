package schema

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
)

func TestImmediateTx(t *testing.T) {
	ctx := context.Background()
	db := mustOpenWrite(t, filepath.Join(t.TempDir(), "t.db"))
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	insert := func(key string) error {
		_, err := conn.ExecContext(ctx, "INSERT INTO meta (key, value) VALUES (?, 1)", key)
		return err
	}
	count := func(key string) int {
		t.Helper()
		var n int
		if err := conn.QueryRowContext(ctx, "SELECT count(*) FROM meta WHERE key = ?", key).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	if err := ImmediateTx(ctx, conn, func() error { return insert("committed") }); err != nil {
		t.Fatalf("ImmediateTx = %v", err)
	}
	if n := count("committed"); n != 1 {
		t.Errorf("rows of a committed transaction = %d; want 1", n)
	}

	failure := errors.New("failure")
	err = ImmediateTx(ctx, conn, func() error {
		if err := insert("rolled back"); err != nil {
			return err
		}
		return failure
	})
	if !errors.Is(err, failure) {
		t.Errorf("ImmediateTx = %v; want fn's error", err)
	}
	if n := count("rolled back"); n != 0 {
		t.Errorf("rows of a failed transaction = %d; want 0", n)
	}

	// A statement error that ends the transaction by itself still leaves
	// the connection usable, and the error is fn's alone.
	err = ImmediateTx(ctx, conn, func() error { _, err := conn.ExecContext(ctx, "ROLLBACK"); return errors.Join(err, failure) })
	if !errors.Is(err, failure) || err.Error() != failure.Error() {
		t.Errorf("ImmediateTx after SQLite rolled back = %v; want %v alone", err, failure)
	}
	if err := ImmediateTx(ctx, conn, func() error { return nil }); err != nil {
		t.Errorf("ImmediateTx after a failed one = %v; want nil", err)
	}
}
