//go:build unix

package schema

import "syscall"

// onReadOnlyFS reports whether dir is on a file system mounted read-only,
// where no process can write: access(2) says EROFS for a write even to
// root.
func onReadOnlyFS(dir string) bool {
	return syscall.Access(dir, 2 /* W_OK */) == syscall.EROFS
}
