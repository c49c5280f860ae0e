package schema

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// ImmediateTx runs fn inside a BEGIN IMMEDIATE transaction on conn, and
// commits when fn returns nil. BEGIN IMMEDIATE takes the write lock at
// once (waiting up to the busy timeout), so that a transaction never
// fails half way for want of it. Every write of lonelytrace goes through
// here or ImmediateTxExec, with one rollback policy: when fn or the
// COMMIT fails, the transaction is rolled back, even when ctx has ended,
// and a failed rollback's error is joined to the first one, unless
// SQLite had already rolled back by itself (as it does on some I/O and
// disk-full errors).
func ImmediateTx(ctx context.Context, conn *sql.Conn, fn func() error) error {
	return ImmediateTxExec(func(stmt string) error {
		c := ctx
		if stmt == "ROLLBACK" {
			c = context.WithoutCancel(ctx)
		}
		_, err := conn.ExecContext(c, stmt)
		return err
	}, fn)
}

// ImmediateTxExec is ImmediateTx on a connection that exec runs
// statements on: "BEGIN IMMEDIATE", "COMMIT" and "ROLLBACK". The
// exporter's writer, whose connection is not database/sql's, uses it.
func ImmediateTxExec(exec func(stmt string) error, fn func() error) (err error) {
	if err := exec("BEGIN IMMEDIATE"); err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() {
		if err == nil {
			return
		}
		if rerr := exec("ROLLBACK"); rerr != nil && !strings.Contains(rerr.Error(), "no transaction") {
			err = errors.Join(err, fmt.Errorf("rollback: %w", rerr))
		}
	}()
	if err := fn(); err != nil {
		return err
	}
	if err := exec("COMMIT"); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}
