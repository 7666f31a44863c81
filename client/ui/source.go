package ui

// source is where the server finds applications: the live driver's one,
// or the event logs of a directory (history.go).
type source interface {
	// list returns the applications in the order the index shows them.
	list() []*entry
	// get returns the application with that ID, or nil.
	get(id string) *entry
}

// entry is one application a source serves.
type entry struct {
	id string
	t  *tracker
	// refresh, if set, brings the model up to date before a query (the
	// history server's tail of a log still being written).
	refresh func()
}

// view runs q on the entry's model, up to date.
func (e *entry) view(q func(*model)) bool {
	if e.refresh != nil {
		e.refresh()
	}
	return e.t.do(q)
}
