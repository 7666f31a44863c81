// Package poll is how tests wait for something that happens in another
// goroutine or process: they poll a condition until it holds, with a
// deadline, instead of sleeping for a guessed time (nats-server's
// checkFor). WaitFor is the one helper; every test that waits uses it.
package poll
