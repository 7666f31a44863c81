package cli

import (
	"fmt"
	"os"
	"strings"
)

// ReadSecretFile returns the cluster secret held in path: the file's
// content without surrounding white space. A file that anyone may read
// (mode o+r), or an empty one, is refused with one line saying what to do;
// the secret itself is never quoted.
func ReadSecretFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("cluster secret: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("cluster secret: %w", err)
	}
	if st.Mode().Perm()&0o004 != 0 {
		return "", fmt.Errorf("cluster secret %s is readable by every user (mode %v): chmod o-r %s", path, st.Mode().Perm(), path)
	}
	if st.Size() > 4096 {
		return "", fmt.Errorf("cluster secret %s is %d bytes: a secret is at most 4096", path, st.Size())
	}
	b := make([]byte, st.Size())
	if _, err := f.ReadAt(b, 0); err != nil && st.Size() > 0 {
		return "", fmt.Errorf("cluster secret: %w", err)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("cluster secret %s is empty (make one: head -c 32 /dev/urandom | base64 > %s)", path, path)
	}
	return s, nil
}
