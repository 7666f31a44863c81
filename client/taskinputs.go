package client

import (
	"shoal/compute/computepb"
	"shoal/shuffleservice/shufflepb"
)

// What a task is told of the map outputs it reads. A map output records
// the size of each of its R reduce blocks; a reduce task reads one block
// (or a few) of each. Sending every task every output whole costs M×R
// sizes per task, M×R² for the stage: at 2,000 × 2,000 the driver spent
// its time marshalling them and the workers theirs unmarshalling. So, as
// Spark's MapOutputTracker hands a reducer the sizes of its partition
// range only, each task gets, for each shuffle it reads, the reduce
// partitions [lo, hi) its partition reads (shuffleReads, through the
// narrow dependencies of its stage), the outputs with a non-empty block
// among them (the reader requests no empty block anyway), their sizes cut
// to [lo, hi), and where block lo starts in the output's data file (for
// the reads from the task's own node). The worker refuses to read a
// partition outside the range it was sent (taskContext.readShuffle), so
// a mistake here fails the task instead of losing records.

// partRange is the partitions [lo, hi) of a node.
type partRange struct{ lo, hi int }

// shuffleReads returns the reduce partitions of each shuffle that
// computing partitions [lo, hi) of n reads, through narrow dependencies
// (a node's parentParts maps its partitions to its parents'). A shuffle
// reached only with no partitions maps to an empty range: the task reads
// nothing of it. A shuffle absent from the map is not below n.
func shuffleReads(n *node, lo, hi int) map[int]partRange {
	out := map[int]partRange{}
	type visit struct{ id, lo, hi int }
	seen := map[visit]bool{}
	var walk func(n *node, lo, hi int)
	walk = func(n *node, lo, hi int) {
		if lo >= hi {
			lo, hi = 0, 0
		}
		v := visit{n.id, lo, hi}
		if seen[v] {
			return
		}
		seen[v] = true
		for i, d := range n.deps {
			plo, phi := lo, hi
			if n.parentParts != nil && lo < hi {
				plo, phi = n.parentParts(i, lo, hi)
			}
			if d.kind == depNarrow {
				walk(d.parent, plo, phi)
				continue
			}
			r, ok := out[d.shuffle.id]
			switch {
			case plo >= phi:
				if !ok {
					out[d.shuffle.id] = partRange{}
				}
			case !ok || r.lo >= r.hi:
				out[d.shuffle.id] = partRange{plo, phi}
			default:
				out[d.shuffle.id] = partRange{min(r.lo, plo), max(r.hi, phi)}
			}
		}
	}
	walk(n, lo, hi)
	return out
}

// taskInputs is what the task of partition part is sent of the stage's
// inputs: for each shuffle, what shuffleReads says it reads. A shuffle it
// reads nothing of is left out; one the walk did not reach, or whose
// outputs do not all cover the range, is sent whole.
func (r *stageRun) taskInputs(part int) []*computepb.ShuffleInput {
	if len(r.inputs) == 0 {
		return nil
	}
	reads := shuffleReads(r.st.final, part, part+1)
	ins := make([]*computepb.ShuffleInput, 0, len(r.inputs))
	for i, in := range r.inputs {
		rg, ok := reads[int(in.Shuffle)]
		switch {
		case !ok || !covers(in, rg):
			ins = append(ins, in)
		case rg.lo < rg.hi:
			ins = append(ins, r.cut(i, rg))
		}
	}
	return ins
}

// covers reports whether every output of in has sizes for rg.
func covers(in *computepb.ShuffleInput, rg partRange) bool {
	for _, m := range in.Maps {
		if m.GetOutput() == nil || len(m.Output.Lengths) < rg.hi {
			return false
		}
	}
	return true
}

// cut is input i of the stage cut to reduce partitions rg.
func (r *stageRun) cut(i int, rg partRange) *computepb.ShuffleInput {
	in := r.inputs[i]
	out := &computepb.ShuffleInput{Shuffle: in.Shuffle, ReduceStart: uint32(rg.lo), ReduceEnd: uint32(rg.hi)}
	for m, loc := range in.Maps {
		o := loc.Output
		lengths := o.Lengths[rg.lo:rg.hi]
		empty := true
		for _, n := range lengths {
			if n != 0 {
				empty = false
				break
			}
		}
		if empty {
			continue
		}
		out.Maps = append(out.Maps, &computepb.MapLocation{
			Node:   loc.Node,
			Offset: r.blockOffset(i, m, rg.lo),
			Output: &shufflepb.MapOutput{
				Shuffle: o.Shuffle, Map: o.Map, Attempt: o.Attempt, Epoch: o.Epoch, Kind: o.Kind, Lengths: lengths,
			},
		})
	}
	return out
}

// blockOffset is where block reduce of output m of input i starts in its
// data file. The offsets of an output are summed once per stage attempt,
// when a task first needs them: at most as many numbers as the sizes
// themselves, dropped with the attempt.
func (r *stageRun) blockOffset(i, m, reduce int) uint64 {
	if r.offsets == nil {
		r.offsets = make([][][]uint64, len(r.inputs))
	}
	if r.offsets[i] == nil {
		r.offsets[i] = make([][]uint64, len(r.inputs[i].Maps))
	}
	off := r.offsets[i][m]
	if off == nil {
		lengths := r.inputs[i].Maps[m].Output.Lengths
		off = make([]uint64, len(lengths)+1)
		for j, n := range lengths {
			off[j+1] = off[j] + n
		}
		r.offsets[i][m] = off
	}
	return off[reduce]
}
