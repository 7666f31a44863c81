package nodewire

import (
	"shoal/blockstore"
	"shoal/shuffleservice/shufflepb"
)

// BlockIDToPB is the message of a block ID.
func BlockIDToPB(id blockstore.BlockID) *shufflepb.BlockId {
	return &shufflepb.BlockId{App: id.App, Rdd: int64(id.RDD), Partition: int64(id.Partition)}
}

// LevelToPB and LevelFromPB translate levels; a level neither side knows
// travels as its number, for the other side to refuse.
func LevelToPB(l blockstore.Level) shufflepb.BlockLevel {
	switch l {
	case blockstore.None:
		return shufflepb.BlockLevel_BLOCK_LEVEL_NONE
	case blockstore.MemorySer:
		return shufflepb.BlockLevel_BLOCK_LEVEL_MEMORY_SER
	case blockstore.MemoryAndDisk:
		return shufflepb.BlockLevel_BLOCK_LEVEL_MEMORY_AND_DISK
	case blockstore.DiskOnly:
		return shufflepb.BlockLevel_BLOCK_LEVEL_DISK_ONLY
	}
	return shufflepb.BlockLevel(l)
}

func LevelFromPB(l shufflepb.BlockLevel) (blockstore.Level, bool) {
	switch l {
	case shufflepb.BlockLevel_BLOCK_LEVEL_NONE:
		return blockstore.None, true
	case shufflepb.BlockLevel_BLOCK_LEVEL_MEMORY_SER:
		return blockstore.MemorySer, true
	case shufflepb.BlockLevel_BLOCK_LEVEL_MEMORY_AND_DISK:
		return blockstore.MemoryAndDisk, true
	case shufflepb.BlockLevel_BLOCK_LEVEL_DISK_ONLY:
		return blockstore.DiskOnly, true
	}
	return blockstore.None, false
}
