//go:build !race

package shuffleservice

const raceEnabled = false
