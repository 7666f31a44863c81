// Command shoal is the one binary of shoal: the node service, the
// built-in jobs, the input generators, the benchmarks and experiments,
// and (re-executed by the launcher) the workers. Each role lives in its
// own file with its own flags: node.go, run.go (runfault.go, runsort.go),
// gen.go, bench.go, demo.go, worker.go; main.go dispatches.
//
// # Manners
//
// cli.go holds what every command shares, so that they all behave alike
// (docs/running.md shows them from the outside):
//
//   - `shoal --help`, `shoal help`, `shoal COMMAND --help` (or -h) and
//     `shoal help COMMAND` print the usage and exit 0. The usage goes to
//     stdout; `shoal node`'s goes to stderr, as the node service's own
//     command line (shuffleservice.RunNodeCommand) prints it.
//   - A wrong command line (an unknown command, job or kind, a bad flag or
//     flag value, a missing required flag) prints one line per problem,
//     "shoal run: ...", the last naming the -h to read, and exits 2.
//   - A failure (a missing input file, a job that fails, a malformed input
//     line) prints one line, "shoal run: ...", naming the input and the
//     position where it is known (client reports a panic while a text
//     input's line was processed with the file and the line number), and
//     exits 1.
//   - A Go stack trace (a panic in a worker reaches the driver as text)
//     is cut from that line unless -v is given; every command takes -v.
//     A panic of the command itself is recovered in main and printed as
//     one line, with its stack under -v.
package main
