package client

import (
	"slices"

	"shoal/client/eventlog"
)

// Fields of events that the UI needs (docs/ui.md): a stage's place in the
// DAG, a task's locality.

// parentIDs are the map stages whose shuffles st reads.
func (st *stage) parentIDs() []int {
	ids := make([]int, 0, len(st.parents))
	for _, p := range st.parents {
		ids = append(ids, p.id)
	}
	return ids
}

// shuffleID is the shuffle a map stage writes; 0 for a result stage.
func (st *stage) shuffleID() int {
	if st.shuffle == nil {
		return 0
	}
	return st.shuffle.id
}

// locality says how node relates to the nodes the task prefers.
func (p *pendingTask) locality(node string) string {
	switch {
	case len(p.prefs) == 0:
		return eventlog.LocalityNoPref
	case slices.Contains(p.prefs, node):
		return eventlog.LocalityNode
	}
	return eventlog.LocalityAny
}
