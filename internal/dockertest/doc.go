// Package dockertest drives Docker for tests through the docker command
// line (os/exec, no SDK): images built FROM scratch, private networks,
// volumes and containers that stand for the hosts of a shoal cluster, and
// the faults a real cluster has (a host killed, paused, cut off).
//
// # Using it
//
// A test calls Require first: it skips the test when Docker is not
// available (docker info fails), saying why, or fails it when the
// environment says Docker is required (SHOAL_REQUIRE_DOCKER=1, as in CI),
// and removes what earlier, killed test binaries left behind (Sweep).
// BuildImage then builds shoal:dev or shoal-minio:dev with the Makefile's
// targets; NewNetwork and NewVolume make a private bridge network and a
// named volume; Run starts a container and returns a *Container, whose
// methods are the faults and probes: IP, Kill, Pause, Unpause,
// Disconnect, Connect, Stop, Start, Restart, State, Wait, Logs, and Top
// (the processes inside, through `docker top`: the images are FROM
// scratch, with no shell to exec).
//
//	dockertest.Require(t)
//	img := dockertest.BuildImage(t, dockertest.MinIO)
//	net := dockertest.NewNetwork(t)
//	c := dockertest.Run(t, dockertest.RunOptions{Name: "minio", Image: img, Network: net, Cmd: []string{"server", "/data"}})
//	ip, err := c.IP(ctx)
//
// ComposeCommand finds Docker Compose (the docker CLI's plugin, else the
// standalone docker-compose), for the tests of deploy/compose.yaml.
//
// The constructors (Require, BuildImage, NewNetwork, NewVolume, Run) fail
// the test themselves and must be called from the test's goroutine; the
// methods of a Container return errors and take a context, so a fault
// injector may call them from any goroutine.
//
// # Outside tests
//
// The constructors take a TB, which testing.TB satisfies. A program (the
// experiments across hosts, `shoal demo faults --hosts`) uses a Harness
// instead: Harness.Do runs the function that calls the constructors (a
// Fatalf ends it, as FailNow ends a test) and Harness.Close runs the
// cleanups, on every path out of the program, including a cancelled
// context (Ctrl-C).
//
// # Cleanup
//
// Every resource is labelled shoal-test=1 (and shoal-test.test with the
// test's name) and removed by t.Cleanup, also when the test fails:
// `docker rm -f -v` for a container, `docker network rm`, `docker volume
// rm`; a network or volume is removed after any container still using it.
// The cleanup of a container is registered before `docker run`, so one
// that was created but failed to start goes too. A test binary that is
// killed runs no cleanup: Sweep, which Require runs, removes resources
// labelled shoal-test=1 created more than SweepAge (1 h) ago; younger ones
// may belong to a test running in parallel. Names are unique
// (shoal-test-NAME-RANDOM), so parallel tests never collide; inside a
// network a container is reached by its Hostname and Aliases.
//
// # Secrets
//
// A container's environment is passed in a file (docker run --env-file,
// mode 0600 in the test's temporary directory), never on the command
// line, so error messages, which quote the docker command, never carry a
// value of it.
//
// # Images
//
// BuildImage runs `make image` or `make image-minio` in the module root:
// scripts/image.sh builds the binary, and skips the docker build when the
// image already carries the digest of the same binary and Dockerfile
// (label shoal.context-sha256), so the images are built once per change of
// the binary, and a test that asks again pays only for go build's cached
// compile and a link. The first build of MinIO takes minutes.
package dockertest
