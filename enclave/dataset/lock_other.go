//go:build !unix

package dataset

import (
	"errors"
	"os"
)

// tryLock is not available without flock; the enclave runs on unix systems.
func tryLock(f *os.File) (bool, error) {
	return false, errors.New("dataset locking needs a unix system")
}

func unlock(f *os.File) {}
