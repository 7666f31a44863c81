// Package testbin builds the shoal binary for tests that run it as real
// processes (node services, workers).
package testbin
