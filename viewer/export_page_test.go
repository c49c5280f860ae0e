package viewer

// PagePlanQueries returns the queries of the series' range and of the
// trace list's totals, with what their plans must contain.
func PagePlanQueries() []PlanQuery {
	return []PlanQuery{
		{Name: "series range", Query: opRangeQuery, Args: []any{"notify", 0, 1 << 62}, Want: "spans_by_op"},
		{Name: "totals' trace ids", Query: traceIDsQuery, Args: []any{"[1,2,3]"}, Want: "SEARCH s USING INTEGER PRIMARY KEY (rowid=?)"},
	}
}
