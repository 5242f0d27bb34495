package parity

import (
	"math/rand"
	"testing"

	"github.com/dettrain/dettrain/box"
	"github.com/dettrain/dettrain/model"
)

// TestTrainedModelMatchesOpenCV trains a small model for a few SGD steps
// (BN statistics, weights and biases all move away from their initial
// values; dropout is active), writes it as dettrain writes its models
// (Cfg.Text and WriteWeights, the same as `dettrain export`) and checks that
// OpenCV reads it and gives the outputs dettrain gives. The model trains with
// OpenCV's BN epsilon (model.bn_eps: 1e-6), which makes the two agree to
// float32 rounding.
func TestTrainedModelMatchesOpenCV(t *testing.T) {
	cfg := netHead + conv(16, 3, 2, true, "leaky") + conv(16, 3, 1, true, "leaky", "groups=16") +
		"[dropout]\nprobability=0.2\n" + conv(16, 1, 1, true, "linear") + "[shortcut]\nfrom=-4\nactivation=linear\n" +
		"[maxpool]\nsize=2\nstride=2\n" + conv(32, 3, 1, true, "mish") + "[route]\nlayers=-1\ngroups=2\ngroup_id=0\n" +
		conv(32, 3, 2, true, "swish") + yoloHead("3,4,5") + "[route]\nlayers=-5\n" + conv(16, 3, 1, true, "leaky") +
		yoloHead("0,1,2", "scale_x_y=1.1")
	net := parse(t, "trained.cfg", cfg)
	net.Init(1)
	net.SetBNEps(opencvBNEps)
	const n = 4
	size := model.Square(64)
	g, err := net.NewGraph(n, size, true)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewSource(2))
	params := net.Params()
	for step := 0; step < 5; step++ {
		for i := range g.Input() {
			g.Input()[i] = float32(r.Float64())
		}
		truths := make([][]model.Truth, n)
		for i := range truths {
			x, y := r.Float64()*40, r.Float64()*40
			truths[i] = []model.Truth{{Class: r.Intn(2), Box: box.Box{X1: x, Y1: y, X2: x + 8 + r.Float64()*16, Y2: y + 8 + r.Float64()*16}, Weight: 1}}
		}
		g.SetTruths(truths)
		if err := g.Run(); err != nil {
			t.Fatal(err)
		}
		grads, err := g.Grads()
		if err != nil {
			t.Fatal(err)
		}
		for k, p := range params {
			v := p.Value.Float32s()
			for j := range v {
				v[j] -= 0.05 * grads[k][j]
			}
			clear(grads[k])
		}
	}
	g.Close()
	moved := false
	for _, l := range net.Layers {
		if c, ok := l.(*model.ConvLayer); ok && c.BatchNorm && (c.BN.Mean[0] != 0 || c.BN.Var[0] != 1) {
			moved = true
		}
	}
	if !moved {
		t.Fatal("training did not change the BN running statistics")
	}
	e := compareWithOpenCV(t, net, 2, size, 3)
	t.Logf("after 5 SGD steps: worst relative error %.2g over %d layers", e, len(net.Layers))
}
