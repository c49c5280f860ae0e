package otlp

// SetTraceLimit sets how many traces im keeps before it forgets, for the
// tests of forgetting.
func SetTraceLimit(im *Importer, n int) { im.limit = n }
