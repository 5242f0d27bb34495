package engine

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"os"
	"runtime"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/dettrain/dettrain/blas"
	"github.com/dettrain/dettrain/box"
	"github.com/dettrain/dettrain/config"
	"github.com/dettrain/dettrain/gpu"
	"github.com/dettrain/dettrain/model"
	"github.com/dettrain/dettrain/train"
)

// BenchOptions are bench's flags.
type BenchOptions struct {
	Model            string
	Run              string     // --run DIR: DIR/model.cfg and its class count
	Size             model.Size // zero: the cfg's [net] width x height
	Batch            int
	Mode             string
	Iters, Warmup    int
	Classes, Threads int
	JSON             bool
	RSSEvery         int
	CPUProfile       string
	OpTimes          bool
	MemProfile       string
	Device           string
	TF32             bool
	AMP              bool
	Resident         bool
}

// forwardFLOPs is darknet's count: 2*filters*size*size*(in/groups)*out_h*out_w per conv.
func forwardFLOPs(net *model.Network, size model.Size) float64 {
	ws, hs := net.SpatialSizes(size.W), net.SpatialSizes(size.H)
	total := 0.0
	for i, l := range net.Layers {
		if l, ok := l.(*model.ConvLayer); ok {
			total += 2 * float64(l.Filters*l.Size*l.Size*(l.In/l.G)) * float64(ws[i]*hs[i])
		}
	}
	return total
}

// peakRSS reads VmHWM from /proc/self/status, in MiB (0 where unavailable).
func peakRSS() float64 { return procStatus("VmHWM:") }

// procStatus reads one kB field of /proc/self/status, in MiB.
func procStatus(field string) float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, field) {
			f := strings.Fields(line)
			if len(f) >= 2 {
				kb, _ := strconv.ParseFloat(f[1], 64)
				return kb / 1024
			}
		}
	}
	return 0
}

// Bench times training steps or inference of a cfg (or a run's model) on
// synthetic input and prints img/s, the per-step times and the peak RSS.
func Bench(ios *IO, o *BenchOptions) error {
	blas.SetThreads(o.Threads)
	if o.Run != "" {
		run, err := OpenRun(o.Run)
		if err != nil {
			return err
		}
		o.Model, o.Classes = run.Cfg, len(run.Names)
	}
	net, err := BuildNetwork(o.Model, "", o.Classes, 1)
	if err != nil {
		return err
	}
	if o.Size.IsZero() {
		o.Size = net.InputSize()
	}
	r := rand.New(rand.NewSource(1))
	images := make([]float32, o.Batch*net.Channels*o.Size.W*o.Size.H)
	for i := range images {
		images[i] = r.Float32()
	}
	truths := make([][]model.Truth, o.Batch)
	for i := range truths {
		for k := 0; k < 4; k++ {
			x, y := r.Float64()*float64(o.Size.W)*0.7, r.Float64()*float64(o.Size.H)*0.7
			w, h := 16+r.Float64()*float64(o.Size.W)*0.3, 16+r.Float64()*float64(o.Size.H)*0.3
			truths[i] = append(truths[i], model.Truth{Class: r.Intn(o.Classes), Box: box.Box{X1: x, Y1: y, X2: x + w, Y2: y + h}, Weight: 1})
		}
	}
	if dev, _ := config.ParseDevice(o.Device); dev >= 0 {
		return benchGPU(ios, o, net, dev, images, truths)
	}
	g, err := net.NewGraph(o.Batch, o.Size, o.Mode == "train")
	if err != nil {
		return err
	}
	defer g.Close()
	copy(g.Input(), images)
	var opt *train.SGD
	if o.Mode == "train" {
		g.SetTruths(truths)
		opt = train.NewSGD(net.Params(), 0.9, 0.0005)
	}
	step := func() error {
		if err := g.Run(); err != nil {
			return err
		}
		if opt != nil {
			grads, err := g.Grads()
			if err != nil {
				return err
			}
			opt.Step(grads, 1e-6)
			for _, gr := range grads {
				clear(gr)
			}
		}
		return nil
	}
	for i := 0; i < o.Warmup; i++ {
		if err := step(); err != nil {
			return err
		}
	}
	if o.CPUProfile != "" {
		f, err := os.Create(o.CPUProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if o.OpTimes {
		model.EnableOpTimes(true)
		defer model.WriteOpTimes(ios.Out, o.Iters)
	}
	ips := make([]float64, o.Iters)
	for i := range ips {
		t0 := time.Now()
		if err := step(); err != nil {
			return err
		}
		ips[i] = float64(o.Batch) / time.Since(t0).Seconds()
		if o.RSSEvery > 0 && (i+1)%o.RSSEvery == 0 {
			fmt.Fprintf(ios.Out, "iter %d RSS %.0f MiB peak %.0f MiB\n", i+1, procStatus("VmRSS:"), procStatus("VmHWM:"))
		}
	}
	if o.MemProfile != "" {
		f, err := os.Create(o.MemProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		runtime.GC()
		if err := pprof.WriteHeapProfile(f); err != nil {
			return err
		}
	}
	med, sorted := median(ips)
	fwd := forwardFLOPs(net, o.Size)
	mult := 1.0
	if o.Mode == "train" {
		mult = 3
	}
	gflops := med * fwd * mult / 1e9
	rss := peakRSS()
	if o.JSON {
		return writeJSONTo(ios.Out, map[string]any{"model": o.Model, "mode": o.Mode, "size": o.Size.String(), "batch": o.Batch, "threads": blas.Threads(),
			"img_per_s_median": med, "img_per_s_min": sorted[0], "img_per_s_max": sorted[len(sorted)-1],
			"fwd_gflop_per_img": fwd / 1e9, "gflop_per_s": gflops, "peak_rss_mib": rss, "blas": blas.Backend()})
	}
	fmt.Fprintf(ios.Out, "IPS %.3f min %.3f max %.3f fwdGFLOP/img %.3f GFLOPs %.1f peakMiB %.0f (%s %s size %s batch %d, %d BLAS threads)\n",
		med, sorted[0], sorted[len(sorted)-1], fwd/1e9, gflops, rss, o.Mode, o.Model, o.Size, o.Batch, blas.Threads())
	return nil
}

func writeJSONTo(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// median returns the median of v and v sorted.
func median(v []float64) (float64, []float64) {
	sorted := append([]float64(nil), v...)
	sort.Float64s(sorted)
	med := sorted[len(sorted)/2]
	if len(sorted)%2 == 0 {
		med = (sorted[len(sorted)/2-1] + sorted[len(sorted)/2]) / 2
	}
	return med, sorted
}

// benchGPU is bench on cuda: the whole training step (forward, loss,
// backward, SGD) or the forward pass on the device, timed from the host
// around each step, which waits for the device at its end.
func benchGPU(ios *IO, o *BenchOptions, net *model.Network, dev int, images []float32, truths [][]model.Truth) error {
	var step func() error
	var memory func() (int64, int64)
	var describe string
	if o.Mode == "train" {
		tr, err := gpu.NewTrainer(net, gpu.TrainerOptions{Devices: []int{dev}, TF32: o.TF32, AMP: o.AMP, Graphs: true, Momentum: 0.9, Decay: 0.0005})
		if err != nil {
			return err
		}
		defer tr.Close()
		if err := tr.Load(nil, nil); err != nil {
			return err
		}
		tr.KeepInput = o.Resident
		// Two batches in turn, the next one staged during each step, as
		// training's input copy overlaps the step in flight.
		batches := [2][]float32{images, append([]float32(nil), images...)}
		k := 0
		step = func() error {
			k++
			if err := tr.Launch(batches[k%2], o.Size, truths, 1e-6, 0, 0); err != nil {
				return err
			}
			if err := tr.Stage(batches[(k+1)%2], o.Size, o.Batch); err != nil {
				return err
			}
			_, _, err := tr.Finish()
			return err
		}
		memory, describe = tr.Memory, tr.Describe()
	} else {
		p, err := gpu.NewPredictor(net, dev, o.Batch, o.Size, o.TF32)
		if err != nil {
			return err
		}
		defer p.Close()
		p.KeepInput, p.Graphs = o.Resident, true
		batches := [2][]float32{images, append([]float32(nil), images...)}
		k := 0
		step = func() error {
			k++
			if err := p.Launch(batches[k%2]); err != nil {
				return err
			}
			if err := p.Stage(batches[(k+1)%2]); err != nil {
				return err
			}
			return p.Sync()
		}
		memory, describe = p.Memory, p.Describe()
	}
	for i := 0; i < o.Warmup; i++ {
		if err := step(); err != nil {
			return err
		}
	}
	ips := make([]float64, o.Iters)
	for i := range ips {
		t0 := time.Now()
		if err := step(); err != nil {
			return err
		}
		ips[i] = float64(o.Batch) / time.Since(t0).Seconds()
	}
	med, sorted := median(ips)
	fwd := forwardFLOPs(net, o.Size)
	mult := 1.0
	if o.Mode == "train" {
		mult = 3
	}
	_, peak := memory()
	peakMiB := float64(peak) / (1 << 20)
	if o.JSON {
		return writeJSONTo(ios.Out, map[string]any{"model": o.Model, "mode": o.Mode, "size": o.Size.String(), "batch": o.Batch, "device": describe, "tf32": o.TF32, "amp": o.AMP,
			"img_per_s_median": med, "img_per_s_min": sorted[0], "img_per_s_max": sorted[len(sorted)-1],
			"fwd_gflop_per_img": fwd / 1e9, "gflop_per_s": med * fwd * mult / 1e9, "peak_device_mib": peakMiB, "peak_rss_mib": peakRSS()})
	}
	fmt.Fprintf(ios.Out, "IPS %.3f min %.3f max %.3f fwdGFLOP/img %.3f GFLOPs %.1f peakMiB %.0f (device; %s %s size %s batch %d, tf32 %v, amp %v, %s)\n",
		med, sorted[0], sorted[len(sorted)-1], fwd/1e9, med*fwd*mult/1e9, peakMiB, o.Mode, o.Model, o.Size, o.Batch, o.TF32, o.AMP, describe)
	return nil
}
