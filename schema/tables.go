package schema

// The tables and views of the file, for SQL that Go code builds.
// schema/README.md says what each holds.
const (
	MetaTable          = "meta"
	AttributeKeysTable = "attribute_keys"
	ResourcesTable     = "resources"
	ScopesTable        = "scopes"
	TracesTable        = "traces"
	SpansTable         = "spans"
	BatchesTable       = "batches"
	SpansView          = "spans_view"
	SpanAttributesView = "span_attributes"
)

// SpanColumn is a column of the spans table: its position in SpanColumns.
type SpanColumn int

// The columns of the spans table after its row id, in table order. The
// writer's INSERT, its row of values and the Reader's SELECT all take
// their positions from these.
const (
	ColTrace SpanColumn = iota
	ColSpanID
	ColParentSpanID
	ColParentRemote
	ColFlags
	ColTraceState
	ColName
	ColKind
	ColStartNs
	ColEndNs
	ColStatusCode
	ColStatusMessage
	ColAttributes
	ColEvents
	ColLinks
	ColDroppedAttributes
	ColDroppedEvents
	ColDroppedLinks
	ColChildCount
	ColResource
	ColScope
	ColOp
	ColTopic
	ColGlob
	ColBroadcaster
	ColBodySize
	ColSubscribers
	ColStateful
)

// NumSpanColumns is the number of columns of the spans table after id.
const NumSpanColumns = int(ColStateful) + 1

// SpanColumns names the columns of the spans table after its row id (id,
// INTEGER PRIMARY KEY), in table order: SpanColumns[ColName] is "name".
var SpanColumns = [NumSpanColumns]string{
	ColTrace:             "trace",
	ColSpanID:            "span_id",
	ColParentSpanID:      "parent_span_id",
	ColParentRemote:      "parent_remote",
	ColFlags:             "flags",
	ColTraceState:        "trace_state",
	ColName:              "name",
	ColKind:              "kind",
	ColStartNs:           "start_ns",
	ColEndNs:             "end_ns",
	ColStatusCode:        "status_code",
	ColStatusMessage:     "status_message",
	ColAttributes:        "attributes",
	ColEvents:            "events",
	ColLinks:             "links",
	ColDroppedAttributes: "dropped_attributes",
	ColDroppedEvents:     "dropped_events",
	ColDroppedLinks:      "dropped_links",
	ColChildCount:        "child_count",
	ColResource:          "resource",
	ColScope:             "scope",
	ColOp:                "op",
	ColTopic:             "topic",
	ColGlob:              "glob",
	ColBroadcaster:       "broadcaster",
	ColBodySize:          "body_size",
	ColSubscribers:       "subscribers",
	ColStateful:          "stateful",
}

// String returns the column's name.
func (c SpanColumn) String() string { return SpanColumns[c] }
