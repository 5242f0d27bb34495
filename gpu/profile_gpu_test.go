package gpu

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/dettrain/dettrain/model"
)

// TestProfileGPU prints where a training step's time goes, per kind of op
// (CUDA events between op groups: Net.Profile), when DETTRAIN_GPU_PROFILE
// lists model:size:batch entries, e.g. "yolov3:416:32". Each entry runs in
// float32 (TF32) and in mixed precision (bfloat16), eagerly (profiled) and
// as CUDA graphs (host wall time only: events inside a graph would be
// captured with it). DETTRAIN_GPU_PROFILE_DEFAULT_MATH=1 adds bfloat16 with
// cuDNN's default math type (no tensor cores: on an H200, 191 ms a yolov3
// step against 54 ms).
func TestProfileGPU(t *testing.T) {
	spec := os.Getenv("DETTRAIN_GPU_PROFILE")
	if spec == "" {
		t.Skip("set DETTRAIN_GPU_PROFILE to run")
	}
	testGPU(t)
	for _, e := range strings.Split(spec, ",") {
		f, size, batch, net := specNetwork(t, e)
		images, truths := randomBatch(batch, size, 1)
		type variant struct {
			name        string
			amp, graphs bool
			math        int32
		}
		vs := []variant{{"float32+TF32", false, false, 0}, {"float32+TF32 CUDA graphs", false, true, 0},
			{"bf16", true, false, cudnnTensorOpMath}, {"bf16 CUDA graphs", true, true, cudnnTensorOpMath}}
		if os.Getenv("DETTRAIN_GPU_PROFILE_DEFAULT_MATH") == "1" {
			vs = append(vs, variant{"bf16 default math", true, false, cudnnDefaultMath})
		}
		for _, v := range vs {
			bf16ConvMath = v.math
			tr, err := NewTrainer(net, TrainerOptions{TF32: true, AMP: v.amp, Graphs: v.graphs, Momentum: 0.9, Decay: 0.0005})
			if err != nil {
				t.Fatal(err)
			}
			if err := tr.Load(nil, nil); err != nil {
				t.Fatal(err)
			}
			tr.KeepInput = true
			step := func() {
				if _, _, err := tr.Step(images, model.Square(size), truths, 1e-6, 0, 0); err != nil {
					t.Fatal(err)
				}
			}
			for i := 0; i < 3; i++ {
				step()
			}
			r := tr.reps[0]
			nt := r.nets[model.Square(size)]
			const steps = 3
			if v.graphs {
				t0 := time.Now()
				for i := 0; i < 10; i++ {
					step()
				}
				wall := time.Since(t0).Seconds() * 1000 / 10
				fmt.Printf("PROFILE %s %d b%d %s: step %.2f ms (host wall; graph error: %v)\n", f[0], size, batch, v.name, wall, nt.GraphError())
				if nt.GraphError() != nil || len(nt.graphs) == 0 {
					t.Errorf("%s %s: the passes did not run as CUDA graphs (%v)", e, v.name, nt.GraphError())
				}
				tr.Close()
				continue
			}
			r.dev.Do(func() error { return nt.Profile(true) })
			t0 := time.Now()
			for i := 0; i < steps; i++ {
				step()
			}
			wall := time.Since(t0).Seconds() * 1000 / steps
			var labels []string
			var ms []float64
			r.dev.Do(func() error {
				var err error
				labels, ms, err = nt.ProfileResult()
				nt.Profile(false)
				return err
			})
			sum := map[string]float64{}
			total := 0.0
			for i, l := range labels {
				sum[l] += ms[i] / steps
				total += ms[i] / steps
			}
			keys := make([]string, 0, len(sum))
			for k := range sum {
				keys = append(keys, k)
			}
			sort.Slice(keys, func(i, j int) bool { return sum[keys[i]] > sum[keys[j]] })
			fmt.Printf("PROFILE %s %d b%d %s: step %.2f ms (host wall), %.2f ms in the Net's op groups\n", f[0], size, batch, v.name, wall, total)
			// The device is busy with the step's ops for (nearly) the whole
			// step the host measures: no host round trip inside the step
			// leaves it idle.
			if total < 0.9*wall {
				t.Errorf("%s %s: the op groups take %.2f ms of a %.2f ms step: the GPU waits for the host", e, v.name, total, wall)
			}
			for _, k := range keys {
				fmt.Printf("PROFILE   %-28s %8.2f ms %5.1f%%\n", k, sum[k], 100*sum[k]/total)
			}
			algos := nt.ConvAlgos()
			for i, a := range algos {
				if i < 3 || i == len(algos)/2 {
					fmt.Printf("PROFILE   %s\n", a)
				}
			}
			tr.Close()
		}
		bf16ConvMath = cudnnTensorOpMath
	}
}
