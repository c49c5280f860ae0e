// Package progress shows how far a long command has got: one line on a
// terminal, rewritten in place once a second after the first two seconds
// (done, the total when it is known, the rate and the time left), and
// nothing at all when the output is not a terminal or the user asked for
// quiet. Work shorter than two seconds prints nothing.
package progress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Delay is how long work runs before its line first shows; Interval is
// how often the line is rewritten after that.
const (
	Delay    = 2 * time.Second
	Interval = time.Second
)

// Meter counts done units of work toward an optional total and, when
// enabled, shows them on its line. A nil *Meter does nothing, so a
// command can call it whether or not it shows progress. Add and SetTotal
// are safe from any goroutine.
type Meter struct {
	w     io.Writer
	what  string // the command, "export"
	unit  string // what is counted, "spans"
	note  atomic.Pointer[string]
	done  atomic.Int64
	total atomic.Int64 // 0: unknown
	start time.Time

	stop     chan struct{}
	wg       sync.WaitGroup
	mu       sync.Mutex // serialises writes of the line
	shown    bool       // a line is on the terminal
	stopOnce sync.Once
}

// IsTerminal reports whether f is a terminal (a character device).
func IsTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// Start returns a running Meter that writes its line to f, or nil when f
// is not a terminal or quiet is true. what names the command, unit what
// Add counts.
func Start(f *os.File, quiet bool, what, unit string) *Meter {
	if quiet || !IsTerminal(f) {
		return nil
	}
	return StartTo(f, what, unit)
}

// StartTo returns a running Meter that writes to w, terminal or not.
func StartTo(w io.Writer, what, unit string) *Meter {
	m := &Meter{w: w, what: what, unit: unit, start: time.Now(), stop: make(chan struct{})}
	m.wg.Add(1)
	go m.run()
	return m
}

func (m *Meter) run() {
	defer m.wg.Done()
	t := time.NewTimer(Delay)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case now := <-t.C:
			m.show(now)
			t.Reset(Interval)
		}
	}
}

// Add counts n more units done.
func (m *Meter) Add(n int64) {
	if m != nil {
		m.done.Add(n)
	}
}

// Done returns the units counted so far; 0 for a nil Meter.
func (m *Meter) Done() int64 {
	if m == nil {
		return 0
	}
	return m.done.Load()
}

// SetTotal sets how many units the work holds; 0 is unknown.
func (m *Meter) SetTotal(n int64) {
	if m != nil {
		m.total.Store(n)
	}
}

// Note sets a word or two shown after the counts, such as the file being
// read.
func (m *Meter) Note(s string) {
	if m != nil {
		m.note.Store(&s)
	}
}

// Stop ends the Meter and clears its line, so that what the command
// prints next starts on a clean line. It is safe to call more than once.
func (m *Meter) Stop() {
	if m == nil {
		return
	}
	m.stopOnce.Do(func() {
		close(m.stop)
		m.wg.Wait()
		m.mu.Lock()
		defer m.mu.Unlock()
		if m.shown {
			io.WriteString(m.w, "\r\x1b[K")
		}
	})
}

// Clear takes the line off the terminal until the next rewrite, so that
// the command can print a line of its own meanwhile.
func (m *Meter) Clear() {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.shown {
		io.WriteString(m.w, "\r\x1b[K")
		m.shown = false
	}
}

func (m *Meter) show(now time.Time) {
	note := ""
	if p := m.note.Load(); p != nil {
		note = *p
	}
	line := Line(m.what, m.unit, note, m.done.Load(), m.total.Load(), now.Sub(m.start))
	m.mu.Lock()
	defer m.mu.Unlock()
	m.shown = true
	io.WriteString(m.w, "\r"+line+"\x1b[K")
}

// Line is the progress line of what after elapsed, with done of total
// units (total 0: unknown): "export: 120,000 of 1,012,327 spans (12 %),
// 60,000 spans/s, 15 s left".
func Line(what, unit, note string, done, total int64, elapsed time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s", what, group(done))
	if total > 0 {
		fmt.Fprintf(&b, " of %s", group(total))
	}
	b.WriteString(" " + unit)
	if total > 0 {
		fmt.Fprintf(&b, " (%d %%)", min(100, done*100/total))
	}
	secs := elapsed.Seconds()
	if secs > 0 && done > 0 {
		rate := float64(done) / secs
		fmt.Fprintf(&b, ", %s %s/s", group(int64(rate)), unit)
		if total > done {
			left := time.Duration(float64(total-done) / rate * float64(time.Second))
			fmt.Fprintf(&b, ", %s left", left.Round(time.Second))
		}
	}
	fmt.Fprintf(&b, ", %s", elapsed.Round(time.Second))
	if note != "" {
		b.WriteString(", " + note)
	}
	return b.String()
}

// group writes n with thousands separators: 1,204,000.
func group(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
