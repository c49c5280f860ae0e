package exporter

// maintain runs on the writer goroutine between transactions: the place
// for work that must not stall ingest for more than one batch.
func (w *writer) maintain() {}
