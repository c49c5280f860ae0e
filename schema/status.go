package schema

import "go.opentelemetry.io/otel/codes"

// The values of the spans table's status_code column: OTLP's numbering
// of a span's status (schema/README.md), not the Go API's codes.Code,
// which numbers Ok and Error the other way round.
const (
	// StatusUnset is the status_code of a span whose status was not set.
	StatusUnset = 0
	// StatusOK is the status_code of a span whose status is Ok.
	StatusOK = 1
	// StatusError is the status_code of a span whose status is Error:
	// its operation or phase failed.
	StatusError = 2
)

// CodeOfStatus is the Go API's code of a stored status_code: Unset for
// anything but StatusOK and StatusError.
func CodeOfStatus(c int64) codes.Code {
	switch c {
	case StatusOK:
		return codes.Ok
	case StatusError:
		return codes.Error
	}
	return codes.Unset
}
