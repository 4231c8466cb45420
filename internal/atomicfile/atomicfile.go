// Package atomicfile replaces a file so that a crash or a power cut leaves
// either the old content or the new one, never a mix: the new content goes
// to a temporary file beside it, is fsync'd, renamed over the old name, and
// the directory is fsync'd so the rename itself is durable.
package atomicfile

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// TempPrefix returns the prefix of the temporary files Write makes for
// path; a leftover one (a crash during Write) may be removed by the owner.
func TempPrefix(path string) string {
	return "." + filepath.Base(path) + ".tmp-"
}

// Write replaces path with what write produces, with permissions perm.
// On error the old file is untouched and no temporary file is left.
func Write(path string, perm os.FileMode, write func(io.Writer) error) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, TempPrefix(path)+"*")
	if err != nil {
		return fmt.Errorf("replace %s: %w", path, err)
	}
	tmp := f.Name()
	err = write(f)
	if err == nil {
		err = f.Chmod(perm)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("replace %s: %w", path, err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("replace %s: %w", path, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("replace %s: fsync %s: %w", path, dir, err)
	}
	return nil
}

// WriteBytes replaces path with b.
func WriteBytes(path string, perm os.FileMode, b []byte) error {
	return Write(path, perm, func(w io.Writer) error {
		_, err := w.Write(b)
		return err
	})
}
