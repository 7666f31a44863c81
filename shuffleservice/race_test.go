//go:build race

package shuffleservice

// raceEnabled: the race detector allocates on its own, so allocation
// budgets cannot be checked under it.
const raceEnabled = true
