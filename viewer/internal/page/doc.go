// Package page renders the viewer's answers for people: the main page
// (page.html: the form, the sentence, the average trace, the tables, the
// trends, the breakdowns, the pub/sub map and the trace list, as inline
// SVG with a door from every number to its traces), a trace's page, and
// the same summary as text for a terminal.
//
// It renders a finished model and reads nothing: every answer comes in
// computed (Main, Trace, the JSON types of viewer/model), and the page
// only lays it out, formats the numbers and builds the links. It imports
// no SQL, no Echo and none of the viewer's engine; a test of the viewer
// checks its imports.
package page
