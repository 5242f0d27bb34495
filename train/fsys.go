package train

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// fileSystem is the part of the OS that an atomic, durable write uses. The
// production implementation is osFS; tests put a recording fake in its place
// to check the order of the calls and to make any of them fail.
type fileSystem interface {
	// CreateTemp creates a new file in dir as os.CreateTemp does.
	CreateTemp(dir, pattern string) (tempFile, error)
	Rename(oldpath, newpath string) error
	Remove(name string) error
	// SyncDir fsyncs the folder dir, so that a rename into it survives a
	// power cut (rename(2) is atomic but not durable until then).
	SyncDir(dir string) error
}

// tempFile is an open file being written.
type tempFile interface {
	io.Writer
	Name() string
	Sync() error
	Close() error
}

// osFS is the real file system.
type osFS struct{}

func (osFS) CreateTemp(dir, pattern string) (tempFile, error) { return os.CreateTemp(dir, pattern) }
func (osFS) Rename(oldpath, newpath string) error             { return os.Rename(oldpath, newpath) }
func (osFS) Remove(name string) error                         { return os.Remove(name) }
func (osFS) SyncDir(dir string) error {
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

// writeAtomic writes path through fn so that after a crash at any moment
// path holds either its old content or the complete new one, and once it
// returns nil the new content is on disk:
//
//	create a temporary file in path's folder, write, fsync(file), close,
//	rename onto path, fsync(folder)
//
// (the sequence of POSIX's rename(2) rationale and of SQLite's atomic
// commit, https://www.sqlite.org/atomiccommit.html). The temporary file is
// removed on any failure before the rename.
func writeAtomic(fsys fileSystem, path string, fn func(io.Writer) error) (err error) {
	dir := filepath.Dir(path)
	tmp, err := fsys.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	name := tmp.Name()
	renamed := false
	defer func() {
		if !renamed {
			fsys.Remove(name)
		}
	}()
	if err := fn(tmp); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: fsync: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := fsys.Rename(name, path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	renamed = true
	if err := fsys.SyncDir(dir); err != nil {
		return fmt.Errorf("writing %s: fsync of the folder %s: %w (the file is in place but may not survive a power cut)", path, dir, err)
	}
	return nil
}
