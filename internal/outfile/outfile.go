// Package outfile writes a command's output file all at once or not at
// all: the output is written to a temporary file beside its target and
// renamed onto it only when the command succeeds, so that a failure, an
// interrupt or a crash leaves the target as it was and no half file. It
// also refuses the outputs a command must never write: one of the
// command's own inputs, and an existing file the user did not ask to
// replace.
package outfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// ErrExists is returned for an output that exists when replacing it was
// not asked for.
var ErrExists = errors.New("exists; give -f to replace it")

// ErrIsInput is returned for an output that is one of the inputs.
var ErrIsInput = errors.New("is also an input")

// DefaultMode is the mode of a new output file that Options do not set
// and that replaces no file: readable by all, as os.Create's usual
// result under the common umask 022.
const DefaultMode fs.FileMode = 0o644

// Check reports why path cannot be the output of a command that reads
// inputs: it is the same file as one of them (by device and inode, so
// that another name or a link is caught too), or it exists and force is
// false. Inputs that cannot be stat'ed are skipped: the command reports
// them when it opens them.
func Check(path string, force bool, inputs ...string) error {
	oi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		if _, lerr := os.Lstat(path); lerr == nil && !force {
			// A dangling link: writing would replace the link.
			return fmt.Errorf("%s %w", path, ErrExists)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("output %s: %w", path, err)
	}
	for _, in := range inputs {
		ii, err := os.Stat(in)
		if err == nil && os.SameFile(oi, ii) {
			return fmt.Errorf("output %s %w (%s)", path, ErrIsInput, in)
		}
	}
	if !force {
		return fmt.Errorf("%s %w", path, ErrExists)
	}
	if oi.IsDir() {
		return fmt.Errorf("output %s is a directory", path)
	}
	return nil
}

// Temp creates an empty temporary file beside path, named after it and
// hidden, for a writer that opens files itself (SQLite). Publish moves it
// onto path; Remove deletes it with what SQLite left beside it.
func Temp(path string) (string, error) {
	dir, base := filepath.Split(path)
	f, err := os.CreateTemp(dir, "."+base+".*.partial")
	if err != nil {
		return "", fmt.Errorf("create a temporary file beside %s: %w", path, err)
	}
	name := f.Name()
	if err := f.Close(); err != nil {
		os.Remove(name)
		return "", fmt.Errorf("create a temporary file beside %s: %w", path, err)
	}
	return name, nil
}

// Remove deletes the temporary file tmp and the -wal, -shm and -journal
// files SQLite may have left beside it. It is for temporary files only.
func Remove(tmp string) {
	for _, p := range []string{tmp, tmp + "-wal", tmp + "-shm", tmp + "-journal"} {
		os.Remove(p)
	}
}

// Publish gives the finished temporary file tmp the mode, syncs it, and
// moves it onto path. With force it replaces whatever path is; without,
// it fails with ErrExists if path appeared since Check, leaving tmp in
// place for the caller to Remove. It syncs the directory, so that the
// new name survives a crash.
func Publish(tmp, path string, mode fs.FileMode, force bool) error {
	f, err := os.OpenFile(tmp, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	err = f.Chmod(mode)
	if err == nil {
		err = f.Sync()
	}
	if e := f.Close(); e != nil && err == nil {
		err = e
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if force {
		err = os.Rename(tmp, path)
	} else {
		err = publishNew(tmp, path)
	}
	if err != nil {
		return err
	}
	syncDir(filepath.Dir(path))
	return nil
}

// publishNew moves tmp onto path only if path does not exist: a link,
// unlike a rename, fails when it does.
func publishNew(tmp, path string) error {
	err := os.Link(tmp, path)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%s %w", path, ErrExists)
	}
	if err != nil {
		// A file system without hard links: check, then rename.
		if _, lerr := os.Lstat(path); lerr == nil {
			return fmt.Errorf("%s %w", path, ErrExists)
		}
		if err := os.Rename(tmp, path); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
		return nil
	}
	os.Remove(tmp)
	return nil
}

// syncDir syncs the directory dir, where the file system allows it; a
// failure only weakens crash safety, so it is not reported.
func syncDir(dir string) {
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	d.Sync()
	d.Close()
}

// ModeOf returns the mode a new output at path takes: that of the file it
// replaces if there is one, else DefaultMode.
func ModeOf(path string) fs.FileMode {
	if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() {
		return fi.Mode().Perm()
	}
	return DefaultMode
}

// File is an output file being written: a temporary file beside its
// target that becomes the target at Commit. Write to it through its
// *os.File; call Abort, deferred, to remove it unless Commit ran.
type File struct {
	*os.File
	path  string
	mode  fs.FileMode
	force bool
	done  bool
}

// Create checks path as Check does and creates the temporary file that
// will become it. The output takes the mode of the file it replaces, or
// DefaultMode.
func Create(path string, force bool, inputs ...string) (*File, error) {
	if err := Check(path, force, inputs...); err != nil {
		return nil, err
	}
	dir, base := filepath.Split(path)
	f, err := os.CreateTemp(dir, "."+base+".*.partial")
	if err != nil {
		return nil, fmt.Errorf("create a temporary file beside %s: %w", path, err)
	}
	return &File{File: f, path: path, mode: ModeOf(path), force: force}, nil
}

// Path returns the target's path.
func (f *File) Path() string { return f.path }

// Commit syncs and closes the temporary file and moves it onto the
// target. On error the temporary file is removed.
func (f *File) Commit() error {
	if f.done {
		return errors.New("outfile: commit after commit or abort")
	}
	f.done = true
	tmp := f.File.Name()
	if err := f.File.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", f.path, err)
	}
	if err := Publish(tmp, f.path, f.mode, f.force); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// Abort closes and removes the temporary file, leaving the target as it
// was. It does nothing after Commit, so it can be deferred.
func (f *File) Abort() {
	if f.done {
		return
	}
	f.done = true
	f.File.Close()
	os.Remove(f.File.Name())
}
