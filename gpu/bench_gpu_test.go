package gpu

import (
	"fmt"
	"math/rand"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/dettrain/dettrain/box"
	"github.com/dettrain/dettrain/model"
)

// TestBenchGPU times the workloads of docs/BENCHMARKS.md's GPU table when
// DETTRAIN_GPU_BENCH is set to a list of model:size:batch:mode[:tf32|fp32|amp]
// entries, e.g. "yolov3:416:32:train,yolov3-tiny:416:64:train". It prints one
// line per entry (img/s median, min, max; dettrain's peak device memory).
// `dettrain bench --device cuda` does the same from the CLI; this test runs
// where the CLI cannot be built (no OpenCV on the GPU test machine).
// specNetwork reads a benchmark entry model:size:batch[:...] and builds
// configs/models/<model>.cfg for 20 classes; f is the entry's fields.
func specNetwork(t *testing.T, entry string) (f []string, size, batch int, net *model.Network) {
	f = strings.Split(entry, ":")
	if len(f) < 3 {
		t.Fatalf("%s: want model:size:batch", entry)
	}
	fmt.Sscan(f[1], &size)
	fmt.Sscan(f[2], &batch)
	cfg, err := model.ReadCfg("../configs/models/" + f[0] + ".cfg")
	if err != nil {
		t.Fatal(err)
	}
	if net, err = model.NewNetwork(cfg, 20); err != nil {
		t.Fatal(err)
	}
	net.Init(1)
	return f, size, batch, net
}

func TestBenchGPU(t *testing.T) {
	spec := os.Getenv("DETTRAIN_GPU_BENCH")
	if spec == "" {
		t.Skip("set DETTRAIN_GPU_BENCH to run")
	}
	testGPU(t)
	for _, e := range strings.Split(spec, ",") {
		f, size, batch, net := specNetwork(t, e)
		if len(f) < 4 {
			t.Fatalf("%s: want model:size:batch:mode[:tf32|fp32|amp]", e)
		}
		mode, tf32 := f[3], !(len(f) > 4 && f[4] == "fp32")
		amp := len(f) > 4 && f[4] == "amp"
		if amp && mode != "train" {
			t.Fatalf("%s: amp is for train entries", e)
		}
		r := rand.New(rand.NewSource(1))
		// Two batches in turn, so that staging the next one (the input
		// copy overlapped with the step in flight) is real.
		var images [2][]float32
		for k := range images {
			images[k] = make([]float32, batch*3*size*size)
			for i := range images[k] {
				images[k][i] = r.Float32()
			}
		}
		truths := make([][]model.Truth, batch)
		for i := range truths {
			for k := 0; k < 4; k++ {
				x, y := r.Float64()*float64(size)*0.7, r.Float64()*float64(size)*0.7
				w, h := 16+r.Float64()*float64(size)*0.3, 16+r.Float64()*float64(size)*0.3
				truths[i] = append(truths[i], model.Truth{Class: r.Intn(20), Box: box.Box{X1: x, Y1: y, X2: x + w, Y2: y + h}, Weight: 1})
			}
		}
		for _, keep := range []bool{false, true} {
			d, _, _ := testGPU(t)
			d.ResetPeak()
			var step func() error
			k := 0
			var mem func() (int64, int64)
			var closeF func()
			if mode == "train" {
				tr, err := NewTrainer(net, TrainerOptions{TF32: tf32, AMP: amp, Graphs: true, Momentum: 0.9, Decay: 0.0005})
				if err != nil {
					t.Fatal(err)
				}
				if err := tr.Load(nil, nil); err != nil {
					t.Fatal(err)
				}
				tr.KeepInput = keep
				step = func() error {
					k++
					if err := tr.Launch(images[k%2], model.Square(size), truths, 1e-6, 0, 0); err != nil {
						return err
					}
					if err := tr.Stage(images[(k+1)%2], model.Square(size), batch); err != nil {
						return err
					}
					_, _, err := tr.Finish()
					return err
				}
				mem, closeF = tr.Memory, tr.Close
			} else {
				p, err := NewPredictor(net, 0, batch, model.Square(size), tf32)
				if err != nil {
					t.Fatal(err)
				}
				p.KeepInput, p.Graphs = keep, true
				step = func() error {
					k++
					if err := p.Launch(images[k%2]); err != nil {
						return err
					}
					if err := p.Stage(images[(k+1)%2]); err != nil {
						return err
					}
					return p.Sync()
				}
				mem, closeF = p.Memory, p.Close
			}
			t0 := time.Now()
			for i := 0; i < 5; i++ {
				if err := step(); err != nil {
					t.Fatal(err)
				}
			}
			warm := time.Since(t0)
			ips := make([]float64, 20)
			for i := range ips {
				t1 := time.Now()
				if err := step(); err != nil {
					t.Fatal(err)
				}
				ips[i] = float64(batch) / time.Since(t1).Seconds()
			}
			sort.Float64s(ips)
			_, peak := mem()
			input := "input uploaded every step (next batch staged during the step)"
			if keep {
				input = "input resident on the device"
			}
			label := mode
			if amp {
				label += " amp(bf16)"
			}
			fmt.Printf("GPUBENCH %s size %d batch %d %s tf32=%v, %s: IPS %.1f min %.1f max %.1f peakDeviceMiB %.0f (warmup incl. algorithm search %.1fs)\n",
				f[0], size, batch, label, tf32, input, (ips[9]+ips[10])/2, ips[0], ips[19], float64(peak)/(1<<20), warm.Seconds())
			closeF()
		}
	}
}
