package replay

import (
	"fmt"
	"strconv"
	"strings"
)

// Position is a place in the files of a replay: the rows of the files
// before File, and the rows of File up to row id After, are sent. Its
// text form, FILE:ROW (File counted from 1 among the files as given),
// is what `lonelytrace replay -resume` takes.
type Position struct {
	// File is the file's place among the files, from 1.
	File int
	// After is a row id of that file (spans.id): rows up to it are sent.
	After int64
}

// String returns the form ParsePosition reads: 2:81920.
func (p Position) String() string { return fmt.Sprintf("%d:%d", p.File, p.After) }

// ParsePosition reads a Position as String writes it.
func ParsePosition(s string) (Position, error) {
	f, r, ok := strings.Cut(strings.TrimSpace(s), ":")
	file, err1 := strconv.Atoi(f)
	after, err2 := strconv.ParseInt(r, 10, 64)
	if !ok || err1 != nil || err2 != nil || file < 1 || after < 0 {
		return Position{}, fmt.Errorf("position %q: want FILE:ROW, the file's place among the files (from 1) and a row id, such as 2:81920", s)
	}
	return Position{File: file, After: after}, nil
}

// StoppedError is Replay's error when it stops part way. Replay called
// again with the same files and WithResume(Resume) sends what is left;
// nothing before Resume is sent again.
type StoppedError struct {
	// Resume is where to continue.
	Resume Position
	// File is the path of the file being sent.
	File string
	// Skip, when set, is the position past the one span the collector
	// refuses as too large: resuming there leaves that span out.
	Skip *Position
	Err  error
}

func (e *StoppedError) Error() string {
	return fmt.Sprintf("replay: %s: stopped after row %d: %v", e.File, e.Resume.After, e.Err)
}

func (e *StoppedError) Unwrap() error { return e.Err }
