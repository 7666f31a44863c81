package bench

import "os"

// workDir returns dir, or if it is empty a new temporary directory whose
// name starts with "shoal-"+name+"-"; done removes the temporary
// directory (and does nothing for dir).
func workDir(dir, name string) (_ string, done func(), err error) {
	if dir != "" {
		return dir, func() {}, nil
	}
	if dir, err = os.MkdirTemp("", "shoal-"+name+"-"); err != nil {
		return "", nil, err
	}
	return dir, func() { os.RemoveAll(dir) }, nil
}
