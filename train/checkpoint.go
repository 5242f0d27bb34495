package train

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/dettrain/dettrain/model"
)

// Checkpoint is everything a run needs to continue exactly where it
// stopped: the weights, BN running statistics, optimizer state, EMA, the
// position in the schedule and the data (randomness in dettrain is a pure
// function of the seed and the position, so the position is the random
// state; dropout masks are keyed by DropoutSeed and the iteration), plus the
// identity of the model and data set it belongs to.
type Checkpoint struct {
	Version  int
	Config   []byte // the resolved config YAML of the run
	ModelID  string // hash of the model cfg (with heads fitted to the classes)
	DataID   string // hash of the class names and training sample ids
	State    State
	Params   [][]float32 // model.Network.Params order
	BNMean   [][]float32 // per BN layer, in layer order
	BNVar    [][]float32
	Velocity [][]float32
	EMA      *EMAState
	// DropoutSeed keys the dropout masks (model.Graph.SetDropoutStep): with
	// the iteration in State it is all of dropout's random state.
	DropoutSeed int64
}

// State is the position of a run.
type State struct {
	Iter       int     // iterations done
	Epoch      int     // the epoch in progress (or the next one when Batch == 0)
	Batch      int     // batches of Epoch already done
	Seen       uint64  // images trained on
	BestMetric float64 // -1 before any evaluation
	BestEpoch  int
	Finished   bool // the run ran all its epochs
}

const checkpointVersion = 2

// bnStates lists the network's BN layers in order.
func bnStates(net *model.Network) []*model.BNState {
	var out []*model.BNState
	for _, l := range net.Layers {
		if c, ok := l.(*model.ConvLayer); ok && c.BatchNorm {
			out = append(out, c.BN)
		}
	}
	return out
}

func clone(x []float32) []float32 { return append([]float32(nil), x...) }

// capture copies the run's state into a checkpoint.
func capture(net *model.Network, opt *SGD, ema *EMA, st State, id Identity) *Checkpoint {
	ck := &Checkpoint{Version: checkpointVersion, Config: id.Config, ModelID: id.Model, DataID: id.Data, State: st, DropoutSeed: net.DropoutSeed()}
	for _, p := range net.Params() {
		ck.Params = append(ck.Params, clone(p.Value.Float32s()))
	}
	for _, b := range bnStates(net) {
		ck.BNMean = append(ck.BNMean, clone(b.Mean))
		ck.BNVar = append(ck.BNVar, clone(b.Var))
	}
	for _, v := range opt.velocity {
		ck.Velocity = append(ck.Velocity, clone(v))
	}
	if ema != nil {
		s := ema.state()
		ck.EMA = &s
	}
	return ck
}

// restore copies a checkpoint into the network and optimizer, after
// checking that every tensor has the right size.
func (ck *Checkpoint) restore(net *model.Network, opt *SGD, ema *EMA) error {
	ps := net.Params()
	bns := bnStates(net)
	if len(ck.Params) != len(ps) || len(ck.BNMean) != len(bns) || len(ck.Velocity) != len(ps) {
		return fmt.Errorf("checkpoint has %d tensors and %d BN layers, the model %d and %d", len(ck.Params), len(ck.BNMean), len(ps), len(bns))
	}
	for i, p := range ps {
		if len(ck.Params[i]) != len(p.Value.Float32s()) || len(ck.Velocity[i]) != len(ck.Params[i]) {
			return fmt.Errorf("checkpoint tensor %s has %d values, the model %d", p.Name, len(ck.Params[i]), len(p.Value.Float32s()))
		}
	}
	for i, p := range ps {
		copy(p.Value.Float32s(), ck.Params[i])
		copy(opt.velocity[i], ck.Velocity[i])
	}
	for i, b := range bns {
		if len(ck.BNMean[i]) != len(b.Mean) {
			return fmt.Errorf("checkpoint BN layer %d has %d channels, the model %d", i, len(ck.BNMean[i]), len(b.Mean))
		}
		copy(b.Mean, ck.BNMean[i])
		copy(b.Var, ck.BNVar[i])
	}
	if ck.Version >= 2 { // version 1 kept no dropout seed: keep the network's (the config's)
		net.SetDropoutSeed(ck.DropoutSeed)
	}
	if ema != nil && ck.EMA != nil {
		return ema.setState(*ck.EMA)
	}
	return nil
}

// checkpointName is ckpt-<iteration, 9 digits>.ckpt, so names sort by iteration.
func checkpointName(iter int) string { return fmt.Sprintf("ckpt-%09d.ckpt", iter) }

// WriteCheckpoint writes ck to dir atomically and durably (temporary file,
// fsync, rename, fsync of dir; see writeAtomic), then deletes all but the
// newest keep checkpoints (best.ckpt is never deleted). A crash at any moment
// leaves the previous checkpoints whole.
func WriteCheckpoint(dir string, ck *Checkpoint, keep int) (string, error) {
	return writeCheckpointFS(osFS{}, dir, ck, keep)
}

func writeCheckpointFS(fsys fileSystem, dir string, ck *Checkpoint, keep int) (string, error) {
	path := filepath.Join(dir, checkpointName(ck.State.Iter))
	if err := writeCheckpointFile(fsys, path, ck); err != nil {
		return "", err
	}
	// Older checkpoints go only once the new one is on disk.
	if keep > 0 {
		all, _ := listCheckpoints(dir)
		for len(all) > keep {
			fsys.Remove(all[0])
			all = all[1:]
		}
	}
	return path, nil
}

// slowWriteEnv names a fault-injection hook for the crash tests: when set to
// a duration (e.g. "2s"), checkpoint writing pauses that long half-way, so a
// test can kill the process in the middle of a write.
const slowWriteEnv = "DETTRAIN_TEST_SLOW_CHECKPOINT"

// A checkpoint file (version 2) is a header and the gob encoding of a
// Checkpoint:
//
//	offset  0: checkpointMagic (8 bytes)
//	offset  8: length of the gob payload, uint64 little-endian
//	offset 16: SHA-256 of the payload (32 bytes)
//	offset 48: payload
//
// so that a file cut short (a disk that lost the tail, a copy that stopped)
// or damaged is recognised before anything is restored from it. Version 1
// files are the bare gob payload and are still read, without that check.
const (
	checkpointMagic  = "DTCKPT\x00\x02"
	checkpointHeader = 8 + 8 + sha256.Size
)

// writeAtomicCheckpoint writes one checkpoint file (best.ckpt) atomically.
func writeAtomicCheckpoint(path string, ck *Checkpoint) error {
	return writeCheckpointFile(osFS{}, path, ck)
}

func writeCheckpointFile(fsys fileSystem, path string, ck *Checkpoint) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	var buf bytes.Buffer
	buf.Write(make([]byte, checkpointHeader))
	if err := gob.NewEncoder(&buf).Encode(ck); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	b := buf.Bytes()
	payload := b[checkpointHeader:]
	copy(b, checkpointMagic)
	binary.LittleEndian.PutUint64(b[8:16], uint64(len(payload)))
	sum := sha256.Sum256(payload)
	copy(b[16:checkpointHeader], sum[:])
	return writeAtomic(fsys, path, func(w io.Writer) error {
		if d, err := time.ParseDuration(os.Getenv(slowWriteEnv)); err == nil {
			if _, err := w.Write(b[:len(b)/2]); err != nil {
				return err
			}
			if f, ok := w.(*os.File); ok {
				f.Sync()
			}
			time.Sleep(d)
			b = b[len(b)/2:]
		}
		_, err := w.Write(b)
		return err
	})
}

// ErrBadCheckpoint is wrapped by the errors of ReadCheckpoint for a file that
// is truncated, damaged or not a checkpoint.
var ErrBadCheckpoint = errors.New("not a complete dettrain checkpoint")

// ReadCheckpoint reads one checkpoint file, checking its length and
// checksum: a truncated or damaged file is an error naming it.
func ReadCheckpoint(path string) (*Checkpoint, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	head := make([]byte, checkpointHeader)
	n, _ := io.ReadFull(f, head)
	var ck Checkpoint
	if n < len(checkpointMagic) {
		return nil, fmt.Errorf("%s: %w: truncated: %d bytes", path, ErrBadCheckpoint, fi.Size())
	}
	if string(head[:len(checkpointMagic)]) == checkpointMagic {
		if n < checkpointHeader {
			return nil, fmt.Errorf("%s: %w: truncated in its header (%d bytes)", path, ErrBadCheckpoint, fi.Size())
		}
		want := binary.LittleEndian.Uint64(head[8:16])
		if got := uint64(fi.Size() - checkpointHeader); got != want {
			what := "truncated"
			if got > want {
				what = "has trailing bytes"
			}
			return nil, fmt.Errorf("%s: %w: %s: %d bytes, the header says %d", path, ErrBadCheckpoint, what, fi.Size(), want+checkpointHeader)
		}
		h := sha256.New()
		err := gob.NewDecoder(io.TeeReader(bufio.NewReader(io.LimitReader(f, int64(want))), h)).Decode(&ck)
		io.Copy(h, f) // the rest, if the decoder stopped early
		if !bytes.Equal(h.Sum(nil), head[16:checkpointHeader]) {
			return nil, fmt.Errorf("%s: %w: the SHA-256 of its content does not match its header (the file is damaged)", path, ErrBadCheckpoint)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w: %v", path, ErrBadCheckpoint, err)
		}
		if ck.Version != checkpointVersion {
			return nil, fmt.Errorf("%s: checkpoint version %d, this dettrain reads versions 1 and %d", path, ck.Version, checkpointVersion)
		}
		return &ck, nil
	}
	// Version 1: a bare gob stream.
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	if err := gob.NewDecoder(bufio.NewReader(f)).Decode(&ck); err != nil {
		return nil, fmt.Errorf("%s: %w: %v", path, ErrBadCheckpoint, err)
	}
	if ck.Version != 1 {
		return nil, fmt.Errorf("%s: checkpoint version %d without a header, this dettrain reads versions 1 and %d", path, ck.Version, checkpointVersion)
	}
	return &ck, nil
}

func listCheckpoints(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		n := e.Name()
		if strings.HasPrefix(n, "ckpt-") && strings.HasSuffix(n, ".ckpt") {
			if _, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(n, "ckpt-"), ".ckpt")); err == nil {
				out = append(out, filepath.Join(dir, n))
			}
		}
	}
	sort.Strings(out)
	return out, nil
}

// LatestCheckpoint reads the newest readable checkpoint in dir. A newest
// file that is truncated or damaged (atomic, fsynced writes make that rare:
// a disk that lost data, a partial copy of the folder) is reported on warn,
// naming it, and the one before it used.
func LatestCheckpoint(dir string, warn io.Writer) (*Checkpoint, string, error) {
	all, err := listCheckpoints(dir)
	if err != nil {
		return nil, "", fmt.Errorf("no checkpoints to resume from: %w", err)
	}
	bad := 0
	for i := len(all) - 1; i >= 0; i-- {
		ck, err := ReadCheckpoint(all[i])
		if err == nil {
			if bad > 0 {
				fmt.Fprintf(warn, "warning: using the older checkpoint %s\n", all[i])
			}
			return ck, all[i], nil
		}
		bad++
		fmt.Fprintf(warn, "warning: %v; trying an older checkpoint\n", err)
	}
	if bad > 0 {
		return nil, "", fmt.Errorf("no readable checkpoint in %s (%d damaged)", dir, bad)
	}
	return nil, "", errors.New("no checkpoint in " + dir)
}
