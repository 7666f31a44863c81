package eventlog

// The event-log contract (docs/DESIGN.md §8): one type per event. Every
// field without omitempty is present in every event of its kind; fields
// may be added, none may be renamed. New makes any of them by name,
// so that a reader can decode any line and a test can check every field.

// AppStart is the first event of an application. The fields after App
// describe its environment (the UI's Environment page): the driver's
// pid, the Go version and the module version it was built from, its
// command line and its options, by name.
type AppStart struct {
	Meta
	App       string            `json:"app"`
	Pid       int               `json:"pid,omitempty"`
	GoVersion string            `json:"go_version,omitempty"`
	Version   string            `json:"version,omitempty"`
	Command   []string          `json:"command,omitempty"`
	Options   map[string]string `json:"options,omitempty"`
}

// AppEnd is the last event of an application that closed its context.
type AppEnd struct {
	Meta
	App    string `json:"app"`
	Status string `json:"status"`
}

// JobStart is an action handed to the scheduler.
type JobStart struct {
	Meta
	Job    int    `json:"job"`
	Action string `json:"action"`
}

// JobEnd is the end of a job: Status is StatusSucceeded or StatusFailed,
// Error is empty when it succeeded. PlanMs is the time spent cutting
// stages and building task plans.
type JobEnd struct {
	Meta
	Job    int     `json:"job"`
	Status string  `json:"status"`
	Error  string  `json:"error"`
	PlanMs float64 `json:"plan_ms"`
}

// StageSubmitted is one attempt of a stage: Tasks is the number of its
// partitions submitted, Kind KindMap or KindResult. Parents are the map
// stages whose shuffles it reads (the edges of the job's DAG), Shuffle
// the shuffle a map stage writes.
type StageSubmitted struct {
	Meta
	Job          int    `json:"job"`
	Stage        int    `json:"stage"`
	StageAttempt int    `json:"stage_attempt"`
	Kind         string `json:"kind"`
	Tasks        int    `json:"tasks"`
	Name         string `json:"name"`
	Parents      []int  `json:"parents,omitempty"`
	Shuffle      int    `json:"shuffle,omitempty"`
}

// StageSkipped is a map stage a job needed whose outputs all existed;
// Parents and Shuffle as in StageSubmitted.
type StageSkipped struct {
	Meta
	Job     int    `json:"job"`
	Stage   int    `json:"stage"`
	Name    string `json:"name"`
	Parents []int  `json:"parents,omitempty"`
	Shuffle int    `json:"shuffle,omitempty"`
}

// StageCompleted ends a stage attempt: StatusSucceeded or StatusFailed.
type StageCompleted struct {
	Meta
	Stage        int    `json:"stage"`
	StageAttempt int    `json:"stage_attempt"`
	Status       string `json:"status"`
}

// TaskAttempt names one task attempt; it is part of TaskStart and TaskEnd.
type TaskAttempt struct {
	Stage        int    `json:"stage"`
	StageAttempt int    `json:"stage_attempt"`
	Partition    int    `json:"partition"`
	Attempt      int    `json:"attempt"`
	Task         uint64 `json:"task"`
	Kind         string `json:"kind"`
	Worker       string `json:"worker"`
	Node         string `json:"node"`
}

// TaskStart is a task sent to a worker; Speculative marks a backup copy
// of a slow task. Locality says how the worker's node relates to where
// the task would rather run (LocalityNode, LocalityAny,
// LocalityNoPref).
type TaskStart struct {
	Meta
	TaskAttempt
	Speculative bool   `json:"speculative,omitempty"`
	Locality    string `json:"locality,omitempty"`
}

// TaskEnd is the end of a task attempt: Status is StatusSucceeded,
// StatusFailed, StatusKilled or StatusLost, Reason says why it did not
// succeed. Metrics are the counters the task reported (records, bytes
// read and written, spills), by name; metrics.go lists the names that
// are part of the contract. A lost task reports none.
type TaskEnd struct {
	Meta
	TaskAttempt
	Status     string           `json:"status"`
	Reason     string           `json:"reason"`
	DurationMs int64            `json:"duration_ms"`
	Metrics    map[string]int64 `json:"metrics,omitempty"`
}

// WorkerAdded is a worker that connected to the driver, with Slots task
// slots.
type WorkerAdded struct {
	Meta
	Worker string `json:"worker"`
	Node   string `json:"node"`
	Pid    int    `json:"pid"`
	Slots  int    `json:"slots,omitempty"`
}

// WorkerLost is a worker whose stream broke or that missed heartbeats.
type WorkerLost struct {
	Meta
	Worker string `json:"worker"`
	Node   string `json:"node"`
	Pid    int    `json:"pid"`
	Reason string `json:"reason"`
}

// NodeAdded is a node service the driver uses: started, restarted, or a
// lost one that answers again (then Reason says so).
type NodeAdded struct {
	Meta
	Node   string `json:"node"`
	Addr   string `json:"addr"`
	Pid    int    `json:"pid"`
	Reason string `json:"reason,omitempty"`
}

// NodeLost is a node service declared lost: Outputs map outputs and
// Blocks cached blocks it held were forgotten.
type NodeLost struct {
	Meta
	Node    string `json:"node"`
	Addr    string `json:"addr"`
	Pid     int    `json:"pid"`
	Reason  string `json:"reason"`
	Outputs int    `json:"outputs"`
	Blocks  int    `json:"blocks"`
}

// NodeStatus is what a node service reported holding when the driver
// asked (every few seconds while the application runs, and at its end):
// its directories, the map outputs it holds and their bytes on disk, its
// cached blocks in memory and on disk, and the memory it may use for
// them (MemoryLimit, `shoal node --cache-bytes`). DirBytes[i] is what
// Dirs[i] holds, map outputs and cached blocks together (absent from the
// logs of nodes that do not say).
type NodeStatus struct {
	Meta
	Node         string   `json:"node"`
	Dirs         []string `json:"dirs"`
	DirBytes     []int64  `json:"dir_bytes,omitempty"`
	Apps         int      `json:"apps"`
	MapOutputs   int      `json:"map_outputs"`
	OutputBytes  int64    `json:"output_bytes"`
	MemoryBlocks int      `json:"memory_blocks"`
	MemoryBytes  int64    `json:"memory_bytes"`
	MemoryLimit  int64    `json:"memory_limit"`
	DiskBlocks   int      `json:"disk_blocks"`
	DiskBytes    int64    `json:"disk_bytes"`
	Evictions    int64    `json:"evictions"`
}

// FetchFailed is a task that could not read a map output: task Task,
// of partition Partition of attempt StageAttempt of stage Stage.
type FetchFailed struct {
	Meta
	Shuffle      int    `json:"shuffle"`
	Map          int    `json:"map"`
	Node         string `json:"node"`
	Reason       string `json:"reason"`
	Stage        int    `json:"stage,omitempty"`
	StageAttempt int    `json:"stage_attempt,omitempty"`
	Partition    int    `json:"partition,omitempty"`
	Task         uint64 `json:"task,omitempty"`
}

// Block names a cached partition where it is held (a node's address, or
// a worker's ID for MemoryDeser).
type Block struct {
	RDD       int    `json:"rdd"`
	Partition int    `json:"partition"`
	Level     string `json:"level"`
	Node      string `json:"node"`
}

// RDDPersisted is an RDD marked for caching at Level (Persist): Name is
// its display name, Partitions its number of partitions.
type RDDPersisted struct {
	Meta
	RDD        int    `json:"rdd"`
	Name       string `json:"name"`
	Partitions int    `json:"partitions"`
	Level      string `json:"level"`
}

// RDDUnpersisted is an RDD whose cached partitions were dropped
// everywhere (Unpersist).
type RDDUnpersisted struct {
	Meta
	RDD int `json:"rdd"`
}

// BlockStored is a cached partition stored, Bytes long.
type BlockStored struct {
	Meta
	Block
	Bytes int64 `json:"bytes"`
}

// BlockHit is a cached partition read instead of computed.
type BlockHit struct {
	Meta
	Block
	Bytes int64 `json:"bytes"`
}

// BlockEvicted is a cached partition evicted from memory: dropped, or
// moved to the node's disk (ToDisk).
type BlockEvicted struct {
	Meta
	Block
	ToDisk bool `json:"to_disk"`
}

// Checkpoint names a checkpointed partition and where it is stored.
type Checkpoint struct {
	RDD       int    `json:"rdd"`
	Partition int    `json:"partition"`
	URI       string `json:"uri"`
}

// CheckpointWritten is a partition written to the checkpoint store:
// Bytes long (the stored object), of checkpoint Name with sequence
// number Sequence, of an RDD of Partitions partitions.
type CheckpointWritten struct {
	Meta
	Checkpoint
	Name       string `json:"name,omitempty"`
	Sequence   int64  `json:"sequence,omitempty"`
	Partitions int    `json:"partitions,omitempty"`
	Bytes      int64  `json:"bytes,omitempty"`
	// DurableMS is the time from the task's hand-off of the partition to
	// its node until the node reported it durable in the store
	// (Options.CheckpointVia "node"); 0 when the task wrote it itself.
	DurableMS int64 `json:"durable_ms,omitempty"`
	// Node is the node service that uploaded it ("node" only).
	Node string `json:"node,omitempty"`
}

// CheckpointUploadFailed is a failed attempt of a node service to
// upload a checkpoint partition handed to it: Reason says why (the
// store's error), Attempts how many attempts failed so far. The node
// keeps retrying; the driver gives up after Options.CheckpointTimeout.
type CheckpointUploadFailed struct {
	Meta
	Checkpoint
	Name     string `json:"name,omitempty"`
	Node     string `json:"node"`
	Reason   string `json:"reason"`
	Attempts int    `json:"attempts"`
}

// CheckpointRead is a partition read back from the checkpoint store.
type CheckpointRead struct {
	Meta
	Checkpoint
	// Source says where the bytes came from: "local" (the task's node
	// held a copy), "store" (read through the node from the store) or
	// empty (the task read the store itself: CheckpointVia "task").
	Source string `json:"source,omitempty"`
}

// Values of Status and Kind fields.
const (
	StatusSucceeded = "succeeded"
	StatusFailed    = "failed"
	StatusKilled    = "killed"
	StatusLost      = "lost"

	KindMap    = "map"
	KindResult = "result"

	// LocalityNode: the task ran on a node that holds its input (a
	// cached block, or much of its shuffle input); LocalityAny: it had
	// such nodes but ran elsewhere; LocalityNoPref: it had none.
	LocalityNode   = "node"
	LocalityAny    = "any"
	LocalityNoPref = "no_pref"
)

// New returns an empty event of the kind named, or false if the contract
// has no such event.
func New(name string) (Event, bool) {
	switch name {
	case "app_start":
		return new(AppStart), true
	case "app_end":
		return new(AppEnd), true
	case "job_start":
		return new(JobStart), true
	case "job_end":
		return new(JobEnd), true
	case "stage_submitted":
		return new(StageSubmitted), true
	case "stage_skipped":
		return new(StageSkipped), true
	case "stage_completed":
		return new(StageCompleted), true
	case "task_start":
		return new(TaskStart), true
	case "task_end":
		return new(TaskEnd), true
	case "worker_added":
		return new(WorkerAdded), true
	case "worker_lost":
		return new(WorkerLost), true
	case "node_added":
		return new(NodeAdded), true
	case "node_lost":
		return new(NodeLost), true
	case "node_status":
		return new(NodeStatus), true
	case "fetch_failed":
		return new(FetchFailed), true
	case "rdd_persisted":
		return new(RDDPersisted), true
	case "rdd_unpersisted":
		return new(RDDUnpersisted), true
	case "block_stored":
		return new(BlockStored), true
	case "block_hit":
		return new(BlockHit), true
	case "block_evicted":
		return new(BlockEvicted), true
	case "checkpoint_written":
		return new(CheckpointWritten), true
	case "checkpoint_read":
		return new(CheckpointRead), true
	case "checkpoint_upload_failed":
		return new(CheckpointUploadFailed), true
	}
	return nil, false
}

// Names lists every event of the contract, in the order of
// docs/DESIGN.md §8.
func Names() []string {
	return []string{"app_start", "app_end", "job_start", "job_end", "stage_submitted", "stage_skipped", "stage_completed", "task_start", "task_end", "worker_added", "worker_lost", "node_added", "node_lost", "node_status", "fetch_failed", "rdd_persisted", "rdd_unpersisted", "block_stored", "block_hit", "block_evicted", "checkpoint_written", "checkpoint_read", "checkpoint_upload_failed"}
}

func (*AppStart) name() string               { return "app_start" }
func (*AppEnd) name() string                 { return "app_end" }
func (*JobStart) name() string               { return "job_start" }
func (*JobEnd) name() string                 { return "job_end" }
func (*StageSubmitted) name() string         { return "stage_submitted" }
func (*StageSkipped) name() string           { return "stage_skipped" }
func (*StageCompleted) name() string         { return "stage_completed" }
func (*TaskStart) name() string              { return "task_start" }
func (*TaskEnd) name() string                { return "task_end" }
func (*WorkerAdded) name() string            { return "worker_added" }
func (*WorkerLost) name() string             { return "worker_lost" }
func (*NodeAdded) name() string              { return "node_added" }
func (*NodeLost) name() string               { return "node_lost" }
func (*NodeStatus) name() string             { return "node_status" }
func (*FetchFailed) name() string            { return "fetch_failed" }
func (*RDDPersisted) name() string           { return "rdd_persisted" }
func (*RDDUnpersisted) name() string         { return "rdd_unpersisted" }
func (*BlockStored) name() string            { return "block_stored" }
func (*BlockHit) name() string               { return "block_hit" }
func (*BlockEvicted) name() string           { return "block_evicted" }
func (*CheckpointWritten) name() string      { return "checkpoint_written" }
func (*CheckpointRead) name() string         { return "checkpoint_read" }
func (*CheckpointUploadFailed) name() string { return "checkpoint_upload_failed" }
