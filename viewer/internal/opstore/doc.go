// Package opstore is the viewer's store of operation spans: the only
// home of the viewer's SQL. It opens a set of trace files read-only
// (Open), reads each file's totals, retention and counters (Plan), and
// streams the operation spans of a window to the viewer's aggregates
// (Window.Visit), keeping them between requests in a bounded cache. The
// viewer's other reads are here too, each query written once: the
// average trace's sample and its traces (RecentOps, TraceSpans), the
// links to a trace (Backlinks), a trace's spans (File.Trace), the range
// of a series (Window.OpRange), and the search's reads (attribute keys,
// rows by id, the sieve, the traces of counted operations).
//
// # The layout
//
//   - store.go: a Store is the files, in the order given; a File is one
//     file's database/sql pool (a few rows per query) and its scan
//     connections (scans.go: internal/sqlitec, for the scan of millions
//     of rows, with the file mapped for one read transaction).
//   - filter.go: a Filter is a request's window and filters, in its SQL
//     form (where) and its Go forms (on strings, and on the cache's
//     numbered strings); the viewer builds it from its parsed query.
//   - visit.go: a Window is a plan of the files' totals in a filter's
//     window; a visit lists the window's batches (schema/batches.go), cuts
//     them into chunks of span ids (chunkShift), and reads or finds each
//     chunk on as many goroutines as there are CPUs.
//   - reads.go: the read of a chunk's operation spans, one query over
//     its span ids; phases.go: the rule of phases applied to them
//     (docs/design.md#one-operation-many-spans).
//   - opcache.go: the cache of chunks, encoded, under a print of the
//     batches rows they were read from, with its own table of strings.
//   - sample.go, backlinks.go, oprange.go, searchreads.go: the other
//     reads.
//
// # What a caller may rely on
//
// A visit MUST hand each operation span of the window that passes the
// filter to every visitor exactly once: a span held by several files
// (same trace and span id) from the first file only; a span found to be
// a phase of an operation never. Each chunk is read in one short read
// transaction, so the spans of a chunk are of one snapshot of its file;
// a visit is not one snapshot of the file (a long window is many
// transactions, so that no reader holds an old snapshot and keeps the
// writer's WAL from starting over), and the window's totals (Plan) are
// read before it. Chunks are listed in id order, or newest first with
// Pass.Floor, but go to the visitors in the order their reads end: a
// visitor MUST NOT depend on the order of chunks; within a chunk the
// spans are in id order. Files go in the store's order, every span of
// one file before the next file's.
//
// A visitor is called, and the functions it returns are called, from one
// goroutine at a time. The strings it is given stay valid after the
// visit, and its span ids are stable for as long as the file keeps the
// span; the *Span it is handed is valid only during the call: a visitor
// that keeps a span keeps a copy of it.
//
// Every query takes its values as parameters; no query is built from a
// request's text.
package opstore
