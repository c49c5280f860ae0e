//go:build !unix

package schema

// onReadOnlyFS is false where access(2) is not available: such a file is
// opened as any other, and only the permission bits can show that no
// writer can exist.
func onReadOnlyFS(dir string) bool { return false }
