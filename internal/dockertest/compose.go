package dockertest

import (
	"context"
	"errors"
	"os/exec"
	"time"
)

// ComposeCommand returns the command that runs Docker Compose here: the
// docker CLI's plugin (docker compose) if it answers, else the standalone
// docker-compose (version 1.28 or later reads profiles and the Compose
// specification). The files in deploy/ work with both.
func ComposeCommand(ctx context.Context) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := exec.CommandContext(ctx, "docker", "compose", "version").Run(); err == nil {
		return []string{"docker", "compose"}, nil
	}
	if p, err := exec.LookPath("docker-compose"); err == nil {
		if err := exec.CommandContext(ctx, p, "version").Run(); err == nil {
			return []string{p}, nil
		}
	}
	return nil, errors.New("neither `docker compose` nor `docker-compose` runs")
}
