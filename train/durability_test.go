package train

import (
	"bytes"
	"encoding/gob"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// recordingFS is the real file system with every call written down, and
// one kind of call made to fail on request ("write", "sync", "close",
// "rename", "syncdir").
type recordingFS struct {
	events []string
	fail   string
}

var errInjected = errors.New("injected failure")

func (r *recordingFS) CreateTemp(dir, pattern string) (tempFile, error) {
	f, err := osFS{}.CreateTemp(dir, pattern)
	if err != nil {
		return nil, err
	}
	r.events = append(r.events, "create "+filepath.Base(f.Name()))
	return &recordingFile{f, r}, nil
}

func (r *recordingFS) Rename(oldpath, newpath string) error {
	r.events = append(r.events, "rename "+filepath.Base(oldpath)+" "+filepath.Base(newpath))
	if r.fail == "rename" {
		return errInjected
	}
	return os.Rename(oldpath, newpath)
}

func (r *recordingFS) Remove(name string) error {
	r.events = append(r.events, "remove "+filepath.Base(name))
	return os.Remove(name)
}

func (r *recordingFS) SyncDir(dir string) error {
	r.events = append(r.events, "syncdir "+dir)
	if r.fail == "syncdir" {
		return errInjected
	}
	return osFS{}.SyncDir(dir)
}

type recordingFile struct {
	tempFile
	r *recordingFS
}

func (f *recordingFile) Write(b []byte) (int, error) {
	f.r.events = append(f.r.events, "write "+filepath.Base(f.Name()))
	if f.r.fail == "write" {
		return 0, errInjected
	}
	return f.tempFile.Write(b)
}

func (f *recordingFile) Sync() error {
	f.r.events = append(f.r.events, "sync "+filepath.Base(f.Name()))
	if f.r.fail == "sync" {
		return errInjected
	}
	return f.tempFile.Sync()
}

func (f *recordingFile) Close() error {
	f.r.events = append(f.r.events, "close "+filepath.Base(f.Name()))
	err := f.tempFile.Close()
	if f.r.fail == "close" {
		return errInjected
	}
	return err
}

// testCheckpoint is a small checkpoint with recognisable values.
func testCheckpoint(iter int) *Checkpoint {
	return &Checkpoint{
		Version: checkpointVersion, Config: []byte("c"), ModelID: "m", DataID: "d",
		State:  State{Iter: iter, Epoch: 1, Batch: 2, Seen: 40, BestMetric: -1},
		Params: [][]float32{{1, 2, 3, float32(iter)}, {0.5}}, BNMean: [][]float32{{0.25}}, BNVar: [][]float32{{2}},
		Velocity: [][]float32{{0, 0, 0, 1}, {-1}}, EMA: &EMAState{Updates: iter, Values: [][]float32{{7}}}, DropoutSeed: 11,
	}
}

// TestCheckpointWriteOrder: a checkpoint reaches the disk as
// write -> fsync(file) -> close -> rename -> fsync(folder), and older
// checkpoints are removed only after that.
func TestCheckpointWriteOrder(t *testing.T) {
	dir := t.TempDir()
	fs := &recordingFS{}
	if _, err := writeCheckpointFS(fs, dir, testCheckpoint(2), 1); err != nil {
		t.Fatal(err)
	}
	fs.events = nil
	path, err := writeCheckpointFS(fs, dir, testCheckpoint(4), 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(fs.events) == 0 || !strings.HasPrefix(fs.events[0], "create .ckpt-000000004.ckpt.tmp") {
		t.Fatalf("events %q", fs.events)
	}
	tmp := strings.TrimPrefix(fs.events[0], "create ")
	// Consecutive writes count as one.
	var got []string
	for _, e := range fs.events {
		if len(got) == 0 || e != got[len(got)-1] || !strings.HasPrefix(e, "write ") {
			got = append(got, e)
		}
	}
	want := []string{"create " + tmp, "write " + tmp, "sync " + tmp, "close " + tmp,
		"rename " + tmp + " ckpt-000000004.ckpt", "syncdir " + dir, "remove ckpt-000000002.ckpt"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("calls\n%q\nwant\n%q", got, want)
	}
	if ck, err := ReadCheckpoint(path); err != nil || !reflect.DeepEqual(ck, testCheckpoint(4)) {
		t.Fatalf("read back: %v\n%+v", err, ck)
	}
}

// TestCheckpointWriteFailures: when any step of the write fails, the call
// returns an error naming the file, the previous checkpoint is still the
// newest whole one and is not pruned, and no temporary file stays behind.
// A failed fsync of the folder comes after the rename: the new file is in
// place, and the error says it may not be durable.
func TestCheckpointWriteFailures(t *testing.T) {
	for _, fail := range []string{"write", "sync", "close", "rename", "syncdir"} {
		dir := t.TempDir()
		if _, err := WriteCheckpoint(dir, testCheckpoint(2), 1); err != nil {
			t.Fatal(err)
		}
		fs := &recordingFS{fail: fail}
		_, err := writeCheckpointFS(fs, dir, testCheckpoint(4), 1)
		if !errors.Is(err, errInjected) || !strings.Contains(err.Error(), filepath.Join(dir, "ckpt-000000004.ckpt")) {
			t.Errorf("%s fails: error %v, want the injected one naming the file", fail, err)
		}
		left, _ := filepath.Glob(filepath.Join(dir, ".*tmp*"))
		if len(left) > 0 {
			t.Errorf("%s fails: temporary files left: %v", fail, left)
		}
		if _, err := os.Stat(filepath.Join(dir, "ckpt-000000002.ckpt")); err != nil {
			t.Errorf("%s fails: the previous checkpoint is gone: %v", fail, err)
		}
		_, path, err := LatestCheckpoint(dir, &bytes.Buffer{})
		wantNewest := "ckpt-000000002.ckpt"
		if fail == "syncdir" {
			wantNewest = "ckpt-000000004.ckpt"
		}
		if err != nil || filepath.Base(path) != wantNewest {
			t.Errorf("%s fails: newest checkpoint %s %v, want %s", fail, path, err, wantNewest)
		}
	}
}

// TestTruncatedCheckpointDetected: a checkpoint cut short on disk at any
// length (empty, inside the header, inside the payload, one byte short) or
// with one flipped bit is refused by ReadCheckpoint with an error naming the
// file and the problem; resuming from the folder warns, naming it, and uses
// the previous checkpoint.
func TestTruncatedCheckpointDetected(t *testing.T) {
	dir := t.TempDir()
	if _, err := WriteCheckpoint(dir, testCheckpoint(2), 3); err != nil {
		t.Fatal(err)
	}
	newest, err := WriteCheckpoint(dir, testCheckpoint(4), 3)
	if err != nil {
		t.Fatal(err)
	}
	whole, err := os.ReadFile(newest)
	if err != nil {
		t.Fatal(err)
	}
	flipped := bytes.Clone(whole)
	flipped[len(flipped)-3] ^= 0x10 // inside the gob payload: a float's bits
	cases := []struct {
		name string
		b    []byte
		want string
	}{
		{"empty", nil, "truncated"},
		{"half a header", whole[:20], "truncated in its header"},
		{"half", whole[:len(whole)/2], fmt.Sprintf("truncated: %d bytes, the header says %d", len(whole)/2, len(whole))},
		{"one byte short", whole[:len(whole)-1], fmt.Sprintf("truncated: %d bytes, the header says %d", len(whole)-1, len(whole))},
		{"one extra byte", append(bytes.Clone(whole), 0), "has trailing bytes"},
		{"a flipped bit", flipped, "SHA-256 of its content does not match"},
	}
	for _, c := range cases {
		if err := os.WriteFile(newest, c.b, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := ReadCheckpoint(newest)
		if err == nil || !errors.Is(err, ErrBadCheckpoint) || !strings.HasPrefix(err.Error(), newest+": ") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: ReadCheckpoint: %v, want an error naming %s and saying %q", c.name, err, newest, c.want)
		}
		var warn bytes.Buffer
		ck, path, err := LatestCheckpoint(dir, &warn)
		if err != nil || filepath.Base(path) != "ckpt-000000002.ckpt" || !reflect.DeepEqual(ck, testCheckpoint(2)) {
			t.Errorf("%s: LatestCheckpoint: %s %v, want the previous checkpoint", c.name, path, err)
		}
		if w := warn.String(); !strings.Contains(w, "warning: "+newest+": ") || !strings.Contains(w, c.want) || !strings.Contains(w, "using the older checkpoint") {
			t.Errorf("%s: warning %q does not name %s and its problem", c.name, w, newest)
		}
	}
	// Every checkpoint damaged: an error, not a crash.
	first := filepath.Join(dir, "ckpt-000000002.ckpt")
	os.Truncate(first, 10)
	if _, _, err := LatestCheckpoint(dir, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "no readable checkpoint in "+dir) {
		t.Errorf("all damaged: %v", err)
	}
}

// TestVersion1CheckpointStillReads: a checkpoint of the format before the
// header (a bare gob stream, version 1) still resumes.
func TestVersion1CheckpointStillReads(t *testing.T) {
	ck := testCheckpoint(6)
	ck.Version = 1
	var b bytes.Buffer
	if err := gob.NewEncoder(&b).Encode(ck); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ckpt-000000006.ckpt")
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := ReadCheckpoint(path)
	if err != nil || !reflect.DeepEqual(got, ck) {
		t.Fatalf("%v\n%+v", err, got)
	}
}

// TestRestoreDropoutSeed: a version 2 checkpoint sets the network's dropout
// seed; a version 1 one, which kept none, leaves the network's (the
// config's) rather than setting 0.
func TestRestoreDropoutSeed(t *testing.T) {
	s := newSmallRun(t)
	for _, c := range []struct {
		version int
		want    int64
	}{{checkpointVersion, 11}, {1, 7}} {
		net := s.net(t) // Init(7)
		opt := NewSGD(net.Params(), 0.9, 0)
		ck := capture(net, opt, nil, State{}, Identity{})
		ck.Version, ck.DropoutSeed = c.version, 11
		if c.version == 1 {
			ck.DropoutSeed = 0
		}
		if err := ck.restore(net, opt, nil); err != nil {
			t.Fatal(err)
		}
		if got := net.DropoutSeed(); got != c.want {
			t.Errorf("version %d: dropout seed %d after restore, want %d", c.version, got, c.want)
		}
	}
}

// TestWeightsWriteOrder: last.weights and best.weights reach the disk as a
// checkpoint does (write -> fsync(file) -> close -> rename -> fsync(folder)),
// read back equal, and a failed fsync leaves the previous file whole.
func TestWeightsWriteOrder(t *testing.T) {
	s := newSmallRun(t)
	net := s.net(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "last.weights")
	fs := &recordingFS{}
	if err := writeWeightsFS(fs, net, path, 12); err != nil {
		t.Fatal(err)
	}
	if len(fs.events) == 0 || !strings.HasPrefix(fs.events[0], "create .last.weights.tmp") {
		t.Fatalf("events %q", fs.events)
	}
	tmp := strings.TrimPrefix(fs.events[0], "create ")
	var got []string
	for _, e := range fs.events {
		if len(got) == 0 || e != got[len(got)-1] || !strings.HasPrefix(e, "write ") {
			got = append(got, e)
		}
	}
	want := []string{"create " + tmp, "write " + tmp, "sync " + tmp, "close " + tmp, "rename " + tmp + " last.weights", "syncdir " + dir}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("calls\n%q\nwant\n%q", got, want)
	}
	back := s.net(t)
	for _, p := range back.Params() {
		clear(p.Value.Float32s())
	}
	h, err := back.LoadWeights(path)
	if err != nil || h.Seen != 12 || !reflect.DeepEqual(weightsOf(back)[:len(net.Params())], weightsOf(net)[:len(net.Params())]) {
		t.Fatalf("read back: seen %d, %v (or other weights)", h.Seen, err)
	}
	before, _ := os.ReadFile(path)
	if err := writeWeightsFS(&recordingFS{fail: "sync"}, net, path, 99); err == nil || !strings.Contains(err.Error(), "last.weights") {
		t.Fatalf("failed fsync: err %v, want one naming the file", err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Error("a failed write changed the previous weights")
	}
	if m, _ := filepath.Glob(filepath.Join(dir, ".last.weights.tmp*")); len(m) != 0 {
		t.Errorf("temporary files left: %v", m)
	}
}
