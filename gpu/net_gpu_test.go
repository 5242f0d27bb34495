package gpu

import (
	"fmt"
	"math"
	"math/rand"
	"os"
	"strings"
	"testing"

	"github.com/dettrain/dettrain/box"
	"github.com/dettrain/dettrain/model"
)

// allLayersCfg has every layer type the GPU executor runs, every
// activation, grouped and depthwise convolutions, route groups, fan-out at
// several layers and two heads: model/testdata/all-layers.cfg without its
// dropout, whose masks differ from the CPU's by design.
func allLayersCfg(t testing.TB) string {
	b, err := os.ReadFile("../model/testdata/all-layers.cfg")
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(b), "[dropout]\nprobability=0.25\n\n", "", 1)
	if strings.Contains(s, "[dropout]") {
		t.Fatal("model/testdata/all-layers.cfg: its [dropout] section changed; update allLayersCfg")
	}
	return s
}

func testNetwork(t testing.TB, cfgText string, seed int64) *model.Network {
	t.Helper()
	cfg, err := model.ParseCfg("all-layers.cfg", []byte(cfgText))
	if err != nil {
		t.Fatal(err)
	}
	net, err := model.NewNetwork(cfg, 0)
	if err != nil {
		t.Fatal(err)
	}
	net.Init(seed)
	// Non-trivial BN running statistics and biases, so that inference uses them.
	r := rand.New(rand.NewSource(seed + 1))
	for _, l := range net.Layers {
		if c, ok := l.(*model.ConvLayer); ok {
			for i, v := range c.Bias.Float32s() {
				c.Bias.Float32s()[i] = v + float32(r.NormFloat64()*0.1)
			}
			if c.BatchNorm {
				for i := range c.BN.Mean {
					c.BN.Mean[i] = float32(r.NormFloat64() * 0.1)
					c.BN.Var[i] = float32(0.5 + r.Float64())
				}
			}
		}
	}
	return net
}

func randomBatch(n, size int, seed int64) ([]float32, [][]model.Truth) {
	r := rand.New(rand.NewSource(seed))
	img := make([]float32, n*3*size*size)
	for i := range img {
		img[i] = r.Float32()
	}
	truths := make([][]model.Truth, n)
	for b := 0; b < n; b++ {
		for k := 0; k < 1+b%3; k++ {
			w, h := 6+r.Float64()*40, 6+r.Float64()*40
			x, y := r.Float64()*(float64(size)-w), r.Float64()*(float64(size)-h)
			truths[b] = append(truths[b], model.Truth{Class: r.Intn(2), Box: box.Box{X1: x, Y1: y, X2: x + w, Y2: y + h}, Weight: 1})
		}
	}
	return img, truths
}

// relErr is the max-norm relative error max|a-b| / max|b| over the tensor
// (an element-wise ratio is meaningless for elements near zero, where float32
// rounding of the larger terms that summed to them dominates), and where
// the largest difference is. NaN in a counts as infinite.
func relErr(a, b []float32) (float64, int) {
	var scale float64
	for _, v := range b {
		scale = math.Max(scale, math.Abs(float64(v)))
	}
	worst, at := 0.0, -1
	for i := range a {
		if math.IsNaN(float64(a[i])) || math.IsInf(float64(a[i]), 0) {
			return math.Inf(1), i
		}
		if d := math.Abs(float64(a[i]) - float64(b[i])); d > worst || at < 0 {
			worst, at = d, i
		}
	}
	if scale == 0 {
		return worst, at
	}
	return worst / scale, at
}

// TestNetMatchesCPU runs the all-layers network on the GPU and on the CPU
// (model's gorgonia graph): every layer's inference output, then a training
// step's loss terms and every parameter gradient, TF32 off.
func TestNetMatchesCPU(t *testing.T) {
	d, s, k := testGPU(t)
	const n, size = 3, 64
	netCPU := testNetwork(t, allLayersCfg(t), 7)
	netGPU := testNetwork(t, allLayersCfg(t), 7)
	img, truths := randomBatch(n, size, 11)
	const tol = 1e-5
	var worstInf, worstGrad float64
	defer func() {
		t.Logf("max-norm relative error: inference outputs %.3g (all %d layers), parameter gradients %.3g", worstInf, len(netCPU.Layers), worstGrad)
	}()

	err := d.Do(func() error {
		dnn, err := NewDNN(s)
		if err != nil {
			return err
		}
		defer dnn.Close()
		st, err := NewState(d, netGPU, true, false)
		if err != nil {
			return err
		}
		defer st.Free()
		if err := st.Upload(s, nil, nil); err != nil {
			return err
		}
		// Inference, layer by layer.
		inf, err := NewNet(d, s, k, dnn, netGPU, st, n, model.Square(size), false, NetOptions{KeepOutputs: true})
		if err != nil {
			return err
		}
		defer inf.Free()
		copy(inf.Input(), img)
		if err := inf.Forward(); err != nil {
			return err
		}
		g, err := netCPU.NewGraph(n, model.Square(size), false)
		if err != nil {
			return err
		}
		defer g.Close()
		copy(g.Input(), img)
		if err := g.Run(); err != nil {
			return err
		}
		for i := range netCPU.Layers {
			want, wshape := g.LayerOutput(i)
			got, gshape, err := inf.LayerOutput(i)
			if err != nil {
				return err
			}
			if fmt.Sprint(wshape) != fmt.Sprint(gshape) {
				t.Errorf("inference layer %d [%s]: shape %v, CPU %v", i, netCPU.Layers[i].Section().Type, gshape, wshape)
				continue
			}
			e, at := relErr(got, want)
			worstInf = math.Max(worstInf, e)
			if e > tol {
				t.Errorf("inference layer %d [%s]: relative error %.3g at %d (got %v, want %v)", i, netCPU.Layers[i].Section().Type, e, at, got[at], want[at])
			}
		}

		// The same forward pass with activations sharing memory by liveness:
		// the same heads.
		shared, err := NewNet(d, s, k, dnn, netGPU, st, n, model.Square(size), false, NetOptions{})
		if err != nil {
			return err
		}
		defer shared.Free()
		copy(shared.Input(), img)
		if err := shared.Forward(); err != nil {
			return err
		}
		hs, err := shared.Heads()
		if err != nil {
			return err
		}
		hk, err := inf.Heads()
		if err != nil {
			return err
		}
		for i := range hs {
			if e, at := relErr(hs[i].Data, hk[i].Data); e != 0 {
				t.Errorf("head %d with shared activation memory: differs by %.3g at %d", i, e, at)
			}
		}

		// One training step.
		tr, err := NewNet(d, s, k, dnn, netGPU, st, n, model.Square(size), true, NetOptions{})
		if err != nil {
			return err
		}
		defer tr.Free()
		copy(tr.Input(), img)
		if err := tr.SetTruths(truths); err != nil {
			return err
		}
		if err := tr.Step(); err != nil {
			return err
		}
		loss, bad, err := tr.LossResult()
		if err != nil {
			return err
		}
		gt, err := netCPU.NewGraph(n, model.Square(size), true)
		if err != nil {
			return err
		}
		defer gt.Close()
		copy(gt.Input(), img)
		gt.SetTruths(truths)
		if err := gt.Run(); err != nil {
			return err
		}
		want := gt.Loss()
		t.Logf("loss GPU %+v, CPU %+v", loss, want)
		if bad {
			t.Errorf("the step was flagged not finite")
		}
		for _, p := range [][3]any{{"obj", loss.Obj, want.Obj}, {"xy", loss.XY, want.XY}, {"wh", loss.WH, want.WH}, {"cls", loss.Cls, want.Cls}} {
			a, b := p[1].(float64), p[2].(float64)
			if math.Abs(a-b) > 1e-5*math.Max(1, math.Abs(b)) {
				t.Errorf("loss %s: GPU %v, CPU %v", p[0], a, b)
			}
		}
		if loss.Positives != want.Positives {
			t.Errorf("positives: GPU %d, CPU %d", loss.Positives, want.Positives)
		}
		for i := range netCPU.Layers {
			w, _ := gt.LayerOutput(i)
			got, _, err := tr.LayerOutput(i)
			if err != nil {
				return err
			}
			if e, at := relErr(got, w); e > tol { // a diagnostic: the CPU graph may reuse buffers in backward
				t.Logf("training forward layer %d [%s]: relative error %.3g at %d (got %v, want %v)", i, netCPU.Layers[i].Section().Type, e, at, got[at], w[at])
			}
		}
		gg, err := st.Grads(s)
		if err != nil {
			return err
		}
		wg, err := gt.Grads()
		if err != nil {
			return err
		}
		for i, p := range netCPU.Params() {
			e, at := relErr(gg[i], wg[i])
			worstGrad = math.Max(worstGrad, e)
			if e > 1e-4 { // through up to 20 layers of float32 sums
				t.Errorf("gradient of %s: relative error %.3g at %d (got %v, want %v)", p.Name, e, at, gg[i][at], wg[i][at])
			}
		}
		// BN running statistics after the step.
		host := testNetwork(t, allLayersCfg(t), 99)
		st2 := *st
		st2.net = host
		if err := st2.Download(s, nil, nil); err != nil {
			return err
		}
		for i, l := range netCPU.Layers {
			c, ok := l.(*model.ConvLayer)
			if !ok || !c.BatchNorm {
				continue
			}
			hc := host.Layers[i].(*model.ConvLayer)
			if e, at := relErr(hc.BN.Mean, c.BN.Mean); e > tol {
				t.Errorf("layer %d running mean: relative error %.3g at %d", i, e, at)
			}
			if e, at := relErr(hc.BN.Var, c.BN.Var); e > tol {
				t.Errorf("layer %d running variance: relative error %.3g at %d", i, e, at)
			}
		}
		t.Logf("conv algorithms: %v", tr.ConvAlgos())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// oneStep trains a fresh all-layers network for one step (learning rate 0)
// with options o and returns the loss, the gradients and dettrain's peak
// device memory.
func oneStep(t *testing.T, o TrainerOptions, img []float32, size int, truths [][]model.Truth) (model.LossParts, [][]float32, int64) {
	t.Helper()
	tr, err := NewTrainer(testNetwork(t, allLayersCfg(t), 3), o)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if err := tr.Load(nil, nil); err != nil {
		t.Fatal(err)
	}
	loss, bad, err := tr.Step(img, model.Square(size), truths, 0, 0, 0)
	if err != nil || bad {
		t.Fatalf("%+v: step: %v (not finite: %v)", o, err, bad)
	}
	g, err := tr.Grads()
	if err != nil {
		t.Fatal(err)
	}
	_, peak := tr.Memory()
	return loss, g, peak
}

// TestReplicasOnOneGPU: two replicas on one GPU with synchronized BN give
// the loss and gradients of one replica with the whole batch.
func TestReplicasOnOneGPU(t *testing.T) {
	testGPU(t)
	const n, size = 4, 64
	img, truths := randomBatch(n, size, 5)
	run := func(devs []int) (model.LossParts, [][]float32) {
		l, g, _ := oneStep(t, TrainerOptions{Devices: devs, SyncBN: true, Momentum: 0.9, Decay: 5e-4}, img, size, truths)
		return l, g
	}
	l1, g1 := run([]int{0})
	l2, g2 := run([]int{0, 0})
	t.Logf("one replica %+v, two %+v", l1, l2)
	if math.Abs(l1.Total()-l2.Total()) > 1e-5*math.Abs(l1.Total()) {
		t.Errorf("loss: one replica %v, two %v", l1.Total(), l2.Total())
	}
	for i := range g1 {
		if e, at := relErr(g2[i], g1[i]); e > 1e-4 {
			t.Errorf("gradient %d: relative error %.3g at %d (two %v, one %v)", i, e, at, g2[i][at], g1[i][at])
		}
	}
}

// TestDeviceMemoryFlat: 100 training steps (two input sizes alternating,
// each captured as CUDA graphs at its third step) allocate nothing after
// the first six.
func TestDeviceMemoryFlat(t *testing.T) {
	d, _, _ := testGPU(t)
	net := testNetwork(t, allLayersCfg(t), 3)
	tr, err := NewTrainer(net, TrainerOptions{Momentum: 0.9, Decay: 5e-4, EMA: true, Graphs: true})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if err := tr.Load(nil, nil); err != nil {
		t.Fatal(err)
	}
	var held0, free0 int64
	for i := 0; i < 100; i++ {
		size := 64
		if i%2 == 1 {
			size = 96
		}
		img, truths := randomBatch(4, size, int64(i))
		if _, bad, err := tr.Step(img, model.Square(size), truths, 1e-3, 0.9, 0.1); err != nil || bad {
			t.Fatalf("step %d: %v (not finite: %v)", i, err, bad)
		}
		if i == 5 {
			held0, _ = tr.Memory()
			d.Do(func() error { free0, _, _ = d.MemInfo(); return nil })
		}
	}
	held, peak := tr.Memory()
	var free int64
	d.Do(func() error { free, _, _ = d.MemInfo(); return nil })
	t.Logf("device memory held by dettrain: %.1f MiB after step 6, %.1f MiB after step 100 (peak %.1f); free %.1f -> %.1f MiB",
		float64(held0)/(1<<20), float64(held)/(1<<20), float64(peak)/(1<<20), float64(free0)/(1<<20), float64(free)/(1<<20))
	if held != held0 {
		t.Errorf("dettrain's device memory grew from %d to %d bytes over 100 steps", held0, held)
	}
	if free0-free > 8<<20 {
		t.Errorf("free device memory fell by %.1f MiB over 100 steps", float64(free0-free)/(1<<20))
	}
}

// TestStagedInput: steps whose images were staged during the previous step
// (Launch, Stage, Finish) give the losses of plain Steps, and the staged
// copies are really used; the same for the Predictor's forward pass.
func TestStagedInput(t *testing.T) {
	testGPU(t)
	const n, size, steps = 4, 64, 6
	var imgs [][]float32
	var truths [][][]model.Truth
	for i := 0; i < steps; i++ {
		im, tr := randomBatch(n, size, int64(20+i))
		imgs, truths = append(imgs, im), append(truths, tr)
	}
	net := testNetwork(t, allLayersCfg(t), 3)
	tr, err := NewTrainer(net, TrainerOptions{Momentum: 0.9, Decay: 5e-4})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	run := func(stage bool) []float64 {
		if err := tr.Load(nil, nil); err != nil {
			t.Fatal(err)
		}
		var out []float64
		for i := 0; i < steps; i++ {
			if err := tr.Launch(imgs[i], model.Square(size), truths[i], 1e-3, 0, 0); err != nil {
				t.Fatal(err)
			}
			if stage && i+1 < steps {
				if err := tr.Stage(imgs[i+1], model.Square(size), n); err != nil {
					t.Fatal(err)
				}
			}
			l, bad, err := tr.Finish()
			if err != nil || bad {
				t.Fatalf("step %d: %v (not finite: %v)", i, err, bad)
			}
			out = append(out, l.Total())
		}
		return out
	}
	plain := run(false)
	staged := run(true)
	if used := tr.reps[0].nets[model.Square(size)].stage.used; used != steps-1 {
		t.Errorf("%d staged batches used, want %d", used, steps-1)
	}
	for i := range plain {
		if math.Abs(plain[i]-staged[i]) > 1e-6*math.Abs(plain[i]) {
			t.Errorf("step %d: loss %v with staging, %v without", i, staged[i], plain[i])
		}
	}
	t.Logf("losses %v", staged)

	p, err := NewPredictor(net, 0, n, model.Square(size), false)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var want [][]model.HeadOutput
	for i := 0; i < 3; i++ {
		h, err := p.Heads(imgs[i])
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, h)
	}
	for i := 0; i < 3; i++ {
		if err := p.Launch(imgs[i]); err != nil {
			t.Fatal(err)
		}
		if i < 2 {
			if err := p.Stage(imgs[i+1]); err != nil {
				t.Fatal(err)
			}
		}
		var got []model.HeadOutput
		err := p.r.dev.Do(func() error { var err error; got, err = p.nt.Heads(); return err })
		if err != nil {
			t.Fatal(err)
		}
		for hi := range got {
			if e, at := relErr(got[hi].Data, want[i][hi].Data); e != 0 {
				t.Errorf("batch %d head %d: staged forward differs (relative %.3g at %d)", i, hi, e, at)
			}
		}
	}
	if used := p.nt.stage.used; used != 2 {
		t.Errorf("predictor: %d staged batches used, want 2", used)
	}
}

// TestGraphsMatchEager: training steps and forward passes replayed as CUDA
// graphs (one graph per input buffer: float32 staging alternates two, mixed
// precision converts both into one) give the losses and outputs of eager
// execution on the same Net (same cuDNN algorithms), in float32 and in mixed
// precision; a network with training dropout stays eager.
func TestGraphsMatchEager(t *testing.T) {
	testGPU(t)
	const n, size, steps = 4, 64, 8
	cfg, err := model.ReadCfg("../configs/models/yolov3-tiny.cfg")
	if err != nil {
		t.Fatal(err)
	}
	net, err := model.NewNetwork(cfg, 2)
	if err != nil {
		t.Fatal(err)
	}
	net.Init(5)
	var imgs [2][]float32
	var truths [2][][]model.Truth
	for i := range imgs {
		imgs[i], truths[i] = randomBatch(n, size, int64(40+i))
	}
	for _, amp := range []bool{false, true} {
		tr, err := NewTrainer(net, TrainerOptions{AMP: amp, Momentum: 0.9, Decay: 5e-4})
		if err != nil {
			t.Fatal(err)
		}
		train := func(graphs bool) []float64 {
			if err := tr.Load(nil, nil); err != nil {
				t.Fatal(err)
			}
			var out []float64
			for i := 0; i < steps; i++ {
				if nt := tr.reps[0].nets[model.Square(size)]; nt != nil {
					nt.Graphs = graphs
				}
				if err := tr.Launch(imgs[i%2], model.Square(size), truths[i%2], 1e-3, 0, 0); err != nil {
					t.Fatal(err)
				}
				if err := tr.Stage(imgs[(i+1)%2], model.Square(size), n); err != nil {
					t.Fatal(err)
				}
				l, bad, err := tr.Finish()
				if err != nil || bad {
					t.Fatalf("graphs %v amp %v step %d: %v (not finite: %v)", graphs, amp, i, err, bad)
				}
				out = append(out, l.Total())
			}
			return out
		}
		eager := train(false)
		eager2 := train(false)
		graphed := train(true)
		nt := tr.reps[0].nets[model.Square(size)]
		want := 2
		if amp {
			want = 1
		}
		if err := nt.GraphError(); err != nil {
			t.Errorf("amp %v: graphs not used: %v", amp, err)
		} else if len(nt.graphs) != want {
			t.Errorf("amp %v: %d input buffers with graphs, want %d", amp, len(nt.graphs), want)
		}
		tr.Close()
		// The first step replays the eager ops exactly. Later ones differ
		// as two eager runs do: some cuDNN algorithms chosen here sum with
		// atomics (non-deterministic), and training amplifies the last-bit
		// differences; graphs must not differ more than that.
		if graphed[0] != eager[0] {
			t.Errorf("amp %v: first step's loss %v with graphs, %v eager (want identical)", amp, graphed[0], eager[0])
		}
		rerun := 0.0 // the largest relative difference of two eager runs so far
		for i := range eager {
			rerun = math.Max(rerun, math.Abs(eager2[i]-eager[i])/math.Abs(eager[i]))
			d := math.Abs(graphed[i]-eager[i]) / math.Abs(eager[i])
			if d > 10*rerun+1e-6 {
				t.Errorf("amp %v step %d: loss %v with graphs, %v eager (relative %.2g; two eager runs differ by %.2g)", amp, i, graphed[i], eager[i], d, rerun)
			}
		}
		t.Logf("amp %v: losses eager %v, eager again %v, with graphs %v", amp, eager, eager2, graphed)
	}

	// Inference: the same outputs from the same Predictor.
	p, err := NewPredictor(net, 0, n, model.Square(size), false)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var want [2][]model.HeadOutput
	for i := range want {
		if want[i], err = p.Heads(imgs[i]); err != nil {
			t.Fatal(err)
		}
	}
	p.Graphs = true
	for i := 0; i < 6; i++ {
		got, err := p.Heads(imgs[i%2])
		if err != nil {
			t.Fatal(err)
		}
		for h := range got {
			if e, at := relErr(got[h].Data, want[i%2][h].Data); e > 0 {
				t.Errorf("forward %d head %d: relative error %.3g at %d with graphs", i, h, e, at)
			}
		}
	}
	if err := p.nt.GraphError(); err != nil || len(p.nt.graphs) == 0 {
		t.Errorf("predictor: graphs not used (%d, %v)", len(p.nt.graphs), err)
	}

	// Training dropout changes its mask every step: no graphs.
	raw, err := os.ReadFile("../model/testdata/all-layers.cfg")
	if err != nil {
		t.Fatal(err)
	}
	tr, err := NewTrainer(testNetwork(t, string(raw), 3), TrainerOptions{Graphs: true, Momentum: 0.9})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if err := tr.Load(nil, nil); err != nil {
		t.Fatal(err)
	}
	img, tt := randomBatch(n, size, 9)
	for i := 0; i < 4; i++ {
		if _, bad, err := tr.Step(img, model.Square(size), tt, 1e-4, 0, 0); err != nil || bad {
			t.Fatalf("dropout network step %d: %v (not finite %v)", i, err, bad)
		}
	}
	if g := tr.reps[0].nets[model.Square(size)].graphs; len(g) != 0 {
		t.Errorf("a network with training dropout was captured as a graph")
	}
}
