package exporter_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/lonelytrace/lonelytrace/exporter"
	"github.com/lonelytrace/lonelytrace/internal/otlp/otlptest"
	"github.com/lonelytrace/lonelytrace/schema"
)

// The helper process: tests re-run the test binary with these variables
// to get a second process writing the same file.
const (
	envHelper = "LONELYTRACE_TEST_HELPER" // "write" or "lock"
	envPath   = "LONELYTRACE_TEST_PATH"
	envGen    = "LONELYTRACE_TEST_GEN"
	envBase   = "LONELYTRACE_TEST_BASE" // crashBase, in Unix ns
)

// crashBase is the start time of span number 0 of every generation: span
// n of generation g is named "gen-g" and starts at crashBase + n ns, so
// the parent can tell exactly which spans a child committed. The parent
// takes the hour it starts in and gives it to its children (envBase): a
// child taking its own clock's hour wrote an hour later than the parent
// looked when the hour turned between them. It is recent, so that the
// default retention of an exporter sharing the file keeps it.
var crashBase = func() time.Time {
	if ns, err := strconv.ParseInt(os.Getenv(envBase), 10, 64); err == nil {
		return time.Unix(0, ns)
	}
	return time.Now().Truncate(time.Hour)
}()

// TestHelperProcess is not a test: run by helper, it writes spans flat
// out ("write"), printing after each ForceFlush how many are committed,
// or holds the file's write lock until its stdin closes ("lock").
func TestHelperProcess(t *testing.T) {
	mode := os.Getenv(envHelper)
	if mode == "" {
		t.Skip("helper process for the crash and second-process tests")
	}
	path := os.Getenv(envPath)
	switch mode {
	case "write":
		gen, _ := strconv.Atoi(os.Getenv(envGen))
		e, err := exporter.New(path, exporter.WithMaxAge(0), exporter.WithMaxSize(0))
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		ctx := context.Background()
		name := fmt.Sprintf("gen-%d", gen)
		n := 0
		for {
			for range 2 {
				batch := make([]sdktrace.ReadOnlySpan, 0, 64)
				for range 64 {
					batch = append(batch, stub(uint64(gen)<<32|uint64(n/8), uint64(n+1), name, crashBase.Add(time.Duration(n))))
					n++
				}
				if err := e.ExportSpans(ctx, batch); err != nil {
					fmt.Println("error", err)
					os.Exit(1)
				}
			}
			if err := e.ForceFlush(ctx); err != nil {
				fmt.Println("error", err)
				os.Exit(1)
			}
			fmt.Println("committed", n)
		}
	case "lock":
		release := lockFile(t, path)
		fmt.Println("locked")
		io.Copy(io.Discard, os.Stdin)
		release()
		os.Exit(0)
	}
}

// helper starts the helper process in mode on path.
func helper(t *testing.T, mode, path string, gen int) (cmd *exec.Cmd, stdin io.WriteCloser, lines *bufio.Scanner) {
	t.Helper()
	cmd = exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), envHelper+"="+mode, envPath+"="+path, envGen+"="+strconv.Itoa(gen),
		envBase+"="+strconv.FormatInt(crashBase.UnixNano(), 10))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd, stdin, bufio.NewScanner(out)
}

// TestCrash_Kill9 kills a process writing flat out with SIGKILL at random
// moments, at least 20 times, and checks after each kill that the file
// opens, passes integrity_check, holds every span the process had
// reported committed, and takes the next process's spans.
func TestCrash_Kill9(t *testing.T) {
	path := filepath.Join(t.TempDir(), "crash.db")
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 6))
	const minKills = 20
	// The budget only stops a test that cannot make progress: a child
	// takes a second or more from start to kill under the race detector on
	// a busy machine.
	budget := 60 * time.Second
	if raceEnabled {
		budget = 120 * time.Second
	}
	began := time.Now()
	var total int64
	kills := 0
	for gen := 0; kills < minKills || (time.Since(began) < budget/2 && kills < 40); gen++ {
		if time.Since(began) > budget {
			t.Fatalf("only %d kills in %v", kills, budget)
		}
		cmd, _, lines := helper(t, "write", path, gen)
		// Read the child's reports in the background; the kill comes at a
		// random moment: before its first commit, or after a random number
		// of them, plus a random delay into the next.
		reported := make(chan int64, 1024)
		go func() {
			for lines.Scan() {
				f := strings.Fields(lines.Text())
				if len(f) == 2 && f[0] == "committed" {
					n, _ := strconv.ParseInt(f[1], 10, 64)
					reported <- n
				} else if len(f) > 0 && f[0] == "error" {
					t.Errorf("child %d: %s", gen, lines.Text())
				}
			}
			close(reported)
		}()
		var committed int64
		wait := rng.IntN(6) // commits of 128 spans to wait for; 0 kills during start-up
		for range wait {
			select {
			case n, ok := <-reported:
				if ok {
					committed = n
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("child %d reports no progress", gen)
			}
		}
		time.Sleep(time.Duration(rng.IntN(30_000)) * time.Microsecond)
		cmd.Process.Kill()
		cmd.Wait()
		for n := range reported { // reports printed before the kill
			committed = n
		}
		kills++

		if fi, err := os.Stat(path); (os.IsNotExist(err) || err == nil && fi.Size() == 0) && committed == 0 {
			t.Logf("kill %d before the file was created or its first page written", kills)
			continue
		}
		// A kill during the file's creation or migration leaves a file of
		// version 0, or a hot rollback journal, that a reader may not open
		// until the next process has migrated it: the next round checks it.
		db, err := schema.OpenRead(context.Background(), path)
		if err != nil && committed == 0 {
			t.Logf("kill %d during start-up: %v", kills, err)
			continue
		}
		if err != nil {
			t.Fatalf("kill %d: %v", kills, err)
		}
		t.Cleanup(func() { db.Close() })
		var ok string
		if err := db.QueryRow("PRAGMA integrity_check").Scan(&ok); err != nil || ok != "ok" {
			t.Fatalf("kill %d: integrity_check = %q, %v", kills, ok, err)
		}
		name := fmt.Sprintf("gen-%d", gen)
		have := queryInt(t, db, "SELECT count(*) FROM spans WHERE name = ? AND start_ns < ?", name, crashBase.Add(time.Duration(committed)).UnixNano())
		if have != committed {
			t.Fatalf("kill %d: %d of the %d spans reported committed are in the file", kills, have, committed)
		}
		all := queryInt(t, db, "SELECT count(*) FROM spans WHERE name = ?", name)
		if dup := queryInt(t, db, "SELECT count(*) - count(DISTINCT span_id) FROM spans WHERE name = ?", name); dup != 0 {
			t.Fatalf("kill %d: %d spans twice", kills, dup)
		}
		db.Close()
		total += all
		t.Logf("kill %d after %d commits: %d spans reported committed, %d in the file (%v)", kills, wait, committed, all, time.Since(began).Round(time.Millisecond))
	}
	if n := int64(otlptest.StoredSpans(t, path)); n != total {
		t.Errorf("file holds %d spans; the generations left %d", n, total)
	}
	// The file still takes spans after the last kill.
	e := mustNew(t, path)
	if err := e.ExportSpans(context.Background(), spans(10)); err != nil {
		t.Fatal(err)
	}
	if err := e.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	checkConsistent(t, path)
	t.Logf("%d kills in %v; %d spans in the file", kills, time.Since(began).Round(time.Millisecond), total+10)
}
