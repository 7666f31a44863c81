// Package cli is shoal's command line where more than one binary needs it:
// the flag types (ByteSize, DirList) of the shoal CLI's commands, and
// `shoal node`'s flags (RunNode), which the shoal binary and every user
// program serve alike (client.Init runs RunNode when a program's own
// binary is started as a node service), so the node's flags and its
// stdout line are the same everywhere. What the node does is package
// shuffleservice's (shuffleservice.RunNode).
package cli
