package blockstore

import (
	"fmt"

	"shoal/internal/ident"
)

// Level is where a block is asked to be stored, and where it is held now.
//
// A Put asks for MemorySer, MemoryAndDisk or DiskOnly. The level a block is
// held at afterwards (returned by Put and Get) is one of:
//
//	MemorySer      in memory; dropped if evicted
//	MemoryAndDisk  in memory; moved to disk if evicted
//	DiskOnly       on disk: asked for, or a MemoryAndDisk block that did
//	               not fit in memory or was evicted from it
//	None           not stored (Put of a MemorySer block that does not fit)
//
// A block on disk stays there: it is never promoted back to memory.
//
// MemoryDeser (deserialized Go values in a worker's heap) is kept by the
// workers, not here. The replicated "_2" levels are the driver's concern:
// it puts the block in two nodes' stores, each of which sees an ordinary
// level.
type Level uint8

const (
	None Level = iota
	MemorySer
	MemoryAndDisk
	DiskOnly
)

func (l Level) String() string {
	switch l {
	case None:
		return "None"
	case MemorySer:
		return "MemorySer"
	case MemoryAndDisk:
		return "MemoryAndDisk"
	case DiskOnly:
		return "DiskOnly"
	}
	return fmt.Sprintf("Level(%d)", uint8(l))
}

// inMemory reports whether a Put at level l asks for the memory tier.
func (l Level) inMemory() bool { return l == MemorySer || l == MemoryAndDisk }

// BlockID names a cached partition: partition Partition of RDD RDD of
// application App. RDD and Partition are in [0, 2^31).
type BlockID struct {
	App       string
	RDD       int
	Partition int
}

func (id BlockID) String() string {
	return fmt.Sprintf("%s/rdd_%d_%d", id.App, id.RDD, id.Partition)
}

// sameRDD reports whether a and b are partitions of the same RDD.
func (id BlockID) sameRDD(o BlockID) bool { return id.App == o.App && id.RDD == o.RDD }

const maxIndex = 1<<31 - 1

func validateApp(app string) error {
	// The syntax of package ident, the node's: an ID is one safe path element.
	if err := ident.Check("application ID", app); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	}
	return nil
}

func validateRDD(rdd int) error {
	if rdd < 0 || rdd > maxIndex {
		return fmt.Errorf("%w: RDD %d is outside [0, %d]", ErrInvalidArgument, rdd, maxIndex)
	}
	return nil
}

// Validate reports whether id can name a block.
func (id BlockID) Validate() error {
	if err := validateApp(id.App); err != nil {
		return err
	}
	if err := validateRDD(id.RDD); err != nil {
		return fmt.Errorf("%w (block %s)", err, id)
	}
	if id.Partition < 0 || id.Partition > maxIndex {
		return fmt.Errorf("%w: partition %d of block %s is outside [0, %d]", ErrInvalidArgument, id.Partition, id, maxIndex)
	}
	return nil
}

// Evicted reports a block that a Put pushed out of memory to make room.
type Evicted struct {
	ID BlockID
	// Level is the block's level before eviction: MemorySer or
	// MemoryAndDisk.
	Level Level
	// ToDisk is true if the block was moved to disk (a MemoryAndDisk block
	// whose file was written and catalogued) and is still served, at
	// DiskOnly; false if it was dropped (MemorySer, a failed write, or
	// removed meanwhile).
	ToDisk bool
}
