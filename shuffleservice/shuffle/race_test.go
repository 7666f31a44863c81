//go:build race

package shuffle

// raceEnabled: the race detector allocates on its own, so allocation
// budgets cannot be checked under it.
const raceEnabled = true
