package dockertest

import (
	"context"
	"os/exec"
	"time"

	"shoal/internal/tail"
	"shoal/internal/testbin"
)

// Image is an image the Makefile builds.
type Image string

// The images of the project, FROM scratch (deploy/Dockerfile,
// deploy/minio.Dockerfile).
const (
	// Shoal is shoal:dev, `make image`: the static shoal binary; runs
	// `shoal node` by default.
	Shoal Image = "shoal:dev"
	// MinIO is shoal-minio:dev, `make image-minio`: the pinned MinIO
	// server; serves /data on :9000 by default.
	MinIO Image = "shoal-minio:dev"
)

// BuildTimeout bounds one image build: MinIO's first build compiles the
// server, which takes minutes on a small machine.
const BuildTimeout = 30 * time.Minute

// BuildImage builds img with its make target in the module root and
// returns its name, for RunOptions.Image. The target skips the docker
// build when the image holds the same binary already (doc.go, "Images").
// It fails the test if the build fails, quoting the end of its output.
func BuildImage(t TB, img Image) string {
	t.Helper()
	target := map[Image]string{Shoal: "image", MinIO: "image-minio"}[img]
	if target == "" {
		t.Fatalf("dockertest: no make target builds %q", img)
	}
	root, ok := testbin.ModuleRoot()
	if !ok {
		t.Fatalf("dockertest: no go.mod above the working directory: the images are built (make %s) in the shoal source tree", target)
	}
	ctx, cancel := context.WithTimeout(context.Background(), BuildTimeout)
	defer cancel()
	out := &tail.Buffer{Max: 8 << 10}
	cmd := exec.CommandContext(ctx, "make", "--no-print-directory", target)
	cmd.Dir = root
	cmd.Stdout, cmd.Stderr = out, out
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("dockertest: make %s (in %s): %v\n%s", target, root, err, out)
	}
	t.Logf("make %s: %s (%v)", target, lastLine(out.String()), time.Since(start).Round(time.Millisecond))
	return string(img)
}

func lastLine(s string) string {
	for len(s) > 0 && s[len(s)-1] == '\n' {
		s = s[:len(s)-1]
	}
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '\n' {
			return s[i+1:]
		}
	}
	return s
}
