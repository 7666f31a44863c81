// Package testbin builds the shoal binary for tests that run it as real
// processes (node services, workers), and other main packages statically
// linked (Static, BuildStatic: the workers a node service starts).
package testbin
