package keys

import (
	"os"
	"path/filepath"
)

func dirOf(path string) string { return filepath.Dir(path) }

// syncDir fsyncs a folder so that a file created in it survives a crash.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
