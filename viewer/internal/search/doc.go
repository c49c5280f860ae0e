// Package search is the trace list's search (docs/design.md#search): it
// ranks the operation spans of a window that match a search's terms, in
// the list's order, walks their rows to judge what the operation cache
// does not hold, sieves those rows in SQL when few pass, and counts the
// matching operations and their traces.
//
// It reads through the op store (viewer/internal/opstore) only: the
// store's visit hands it the window's spans (newest first, stopping
// early, through opstore.Pass.Floor), and the store runs every query.
// The viewer parses the request's parameters into Terms.
package search
