package client

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"testing"

	"shoal/compute/computepb"
	"shoal/shuffleservice/nodeclient"
)

func newFailureHarness(t *testing.T) (*scheduler, *stage) {
	t.Helper()
	c := &Context{opts: Options{MaxStageAttempts: 4}, log: slog.New(slog.DiscardHandler)}
	f := newFakeCluster(1, 1, 1)
	s := newScheduler(c, f, f, f)
	st := &stage{id: 3, final: &node{id: 7, op: "reduceByKey", name: "counts"}}
	return s, st
}

// A stage gives up on its MaxStageAttempts-th attempt in a row that ends
// on fetch failures, with an error that names the cause; a successful
// attempt in between starts the count again.
func TestStageGivesUpAfterMaxFetchFailedAttempts(t *testing.T) {
	s, st := newFailureHarness(t)
	ff := &fetchFailedError{stage: st, shuffle: 1, mapID: 2, node: "127.0.0.1:7", reason: "shuffle: corrupt data: frame 0"}
	for i := range 3 {
		if err := s.stageFetchFailed(ff); err != nil {
			t.Fatalf("attempt %d: %v, want no error before the 4th", i+1, err)
		}
	}
	st.fetchFailures = 0 // what a successful attempt does (runStage)
	for i := range 3 {
		if err := s.stageFetchFailed(ff); err != nil {
			t.Fatalf("after a success, attempt %d: %v", i+1, err)
		}
	}
	err := s.stageFetchFailed(ff)
	if err == nil {
		t.Fatal("no error after 4 attempts ended on fetch failures")
	}
	for _, want := range []string{"stage 3 (counts)", "4 attempts", "shuffle 1 map 2", "127.0.0.1:7", "corrupt data"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

// A fetch failure from a node that does not answer loses the node: every
// output registered there is forgotten and its epoch raised; outputs on
// other nodes stay.
func TestFetchFailureFromDeadNodeLosesAllItsOutputs(t *testing.T) {
	s, st := newFailureHarness(t)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := lis.Addr().String()
	lis.Close() // nothing listens there now: connections are refused
	alive := "127.0.0.1:1"
	s.outputs[1] = []*computepb.MapLocation{{Node: dead}, {Node: alive}, {Node: dead}}
	s.outputs[2] = []*computepb.MapLocation{{Node: alive}, {Node: dead}}
	fails := []*computepb.FetchFailure{
		{Shuffle: 1, Map: 0, Node: dead, Reason: "connection refused"},
		{Shuffle: 1, Map: 0, Node: dead, Reason: "connection refused"},
	}
	nodes := newNodeClients(nodeclient.Credentials{})
	defer nodes.Close()
	probed := probeAll(context.Background(), nodes, s.fetchFailureProbes(fails, nil))
	err = s.fetchFailed(st, fails, nil, probed)
	ff, ok := err.(*fetchFailedError)
	if !ok || !ff.nodeLost || ff.stage != st {
		t.Fatalf("err = %#v, want a fetchFailedError of the stage with the node lost", err)
	}
	if !s.lostNodes[dead] {
		t.Fatal("the node is not marked lost")
	}
	for sh, want := range map[int][]bool{1: {true, false, true}, 2: {false, true}} {
		for m, gone := range want {
			if (s.outputs[sh][m] == nil) != gone {
				t.Errorf("shuffle %d map %d: forgotten %v, want %v", sh, m, s.outputs[sh][m] == nil, gone)
			}
			if e := s.epochs[[2]int{sh, m}]; (e == 1) != gone || e > 1 {
				t.Errorf("shuffle %d map %d: epoch raised by %d", sh, m, e)
			}
		}
	}
}
