package viewer

import (
	"io"

	"github.com/lonelytrace/lonelytrace/viewer/internal/page"
	"github.com/lonelytrace/lonelytrace/viewer/model"
)

// WriteSummaryText writes s for a terminal: the same sections as the
// page, in the same order, each with its line on how to read it.
func WriteSummaryText(w io.Writer, s *model.Summary) error { return page.WriteSummaryText(w, s) }

// WriteBreakdownText writes b for a terminal: one line per group, the
// largest first.
func WriteBreakdownText(w io.Writer, b *model.Breakdown) error {
	return page.WriteBreakdownText(w, b)
}
