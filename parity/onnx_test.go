package parity

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gocv.io/x/gocv"

	"github.com/dettrain/dettrain/data/image"
	"github.com/dettrain/dettrain/model"
	"github.com/dettrain/dettrain/onnx"
)

// allLayersCfg has every layer type and activation dettrain supports (its
// comments list them), shared with package onnx's tests.
const allLayersCfg = "../onnx/testdata/all-layers.cfg"

// onnxNet is a network to export and the input to run it on.
type onnxNet struct {
	name string
	net  *model.Network
	size model.Size
	in   []float32 // n images
	n    int
}

// onnxNets builds the networks the ONNX tests export: the all-layers cfg at
// a square and two non-square sizes (random weights and BN statistics,
// random inputs, 2 images), and the two pretrained models of ../shared at
// their cfg's size on a real image each (skipped when ../shared is absent).
func onnxNets(t *testing.T) []onnxNet {
	t.Helper()
	var nets []onnxNet
	for _, size := range []model.Size{model.Square(64), {W: 96, H: 64}, {W: 64, H: 128}} {
		c, err := model.ReadCfg(allLayersCfg)
		if err != nil {
			t.Fatal(err)
		}
		net, err := model.NewNetwork(c, 0)
		if err != nil {
			t.Fatal(err)
		}
		randomize(net, 11)
		nets = append(nets, onnxNet{"all-layers@" + size.String(), net, size, randomInput(2*3*size.W*size.H, 13), 2})
	}
	for _, m := range []struct{ dir, cfg, weights, image string }{
		{fastest, "yolo-fastest-1.1.cfg", "yolo-fastest-1.1.weights", "dog.jpg"},
		{"../../shared/models/yoloface-50k", "yoloface-50k.cfg", "yoloface-50k.weights", "p1.jpg"},
	} {
		w := filepath.Join(m.dir, m.weights)
		if _, err := os.Stat(w); err != nil {
			t.Logf("%s is absent (../shared is not here?): its cases are skipped", w)
			continue
		}
		c, err := model.ReadCfg(filepath.Join(m.dir, m.cfg))
		if err != nil {
			t.Fatal(err)
		}
		net, err := model.NewNetwork(c, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := net.LoadWeights(w); err != nil {
			t.Fatal(err)
		}
		size := net.InputSize()
		in := make([]float32, 3*size.W*size.H)
		if _, _, err := (image.OpenCV{}).Load(filepath.Join(m.dir, "..", "test-images", m.image), size.W, size.H, in); err != nil {
			t.Fatal(err)
		}
		nets = append(nets, onnxNet{m.cfg + "@" + size.String(), net, size, in, 1})
	}
	return nets
}

// runtimeFunc runs an exported model on in (N, C, H, W) and returns the
// named outputs.
type runtimeFunc func(t *testing.T, path string, in []float32, shape [4]int, outputs []string) [][]float32

// checkONNX exports every network of onnxNets raw and decoded (BN folded,
// and kept as BatchNormalization for the all-layers cfg; a dynamic batch
// for the 2-image inputs; opset 13, and at one size the lowest and highest
// opsets, 18 with its Mish op) and compares what run computes with dettrain's own
// forward pass: raw heads with Graph.Heads, decoded outputs with
// model.Decode at threshold 0, which returns every box and class.
func checkONNX(t *testing.T, run runtimeFunc) {
	for _, tc := range onnxNets(t) {
		for _, v := range []struct {
			decode, keepBN bool
			opset          int
		}{{false, false, 0}, {true, false, 0}, {false, true, 0}, {true, true, 0},
			{false, false, onnx.MinOpset}, {true, true, onnx.MinOpset}, {false, false, onnx.MaxOpset}, {true, true, onnx.MaxOpset}} {
			all := strings.HasPrefix(tc.name, "all-layers")
			if (v.keepBN && !all) || (v.opset != 0 && tc.name != "all-layers@96x64") {
				continue
			}
			name := fmt.Sprintf("%s/decode=%v/keep-bn=%v/opset=%d", tc.name, v.decode, v.keepBN, v.opset)
			t.Run(name, func(t *testing.T) {
				g, err := tc.net.NewGraph(tc.n, tc.size, false)
				if err != nil {
					t.Fatal(err)
				}
				defer g.Close()
				copy(g.Input(), tc.in)
				if err := g.Run(); err != nil {
					t.Fatal(err)
				}
				path := filepath.Join(t.TempDir(), "model.onnx")
				m, err := onnx.Write(path, tc.net, onnx.Options{Size: tc.size, Decode: v.decode, KeepBN: v.keepBN, Opset: v.opset, DynamicBatch: tc.n > 1})
				if err != nil {
					t.Fatal(err)
				}
				shape := [4]int{tc.n, tc.net.Channels, tc.size.H, tc.size.W}
				heads := g.Heads()
				if !v.decode {
					var outs []string
					for k := range heads {
						outs = append(outs, onnx.HeadName(k))
					}
					got := run(t, path, tc.in, shape, outs)
					worst := 0.0
					for k, h := range heads {
						if len(got[k]) != len(h.Data) {
							t.Fatalf("%s: %d values, dettrain's head %d has %d", outs[k], len(got[k]), k, len(h.Data))
						}
						e, at := maxRelErr(got[k], h.Data)
						if e > tol {
							t.Errorf("%s: max relative error %.3g > %g at %d: runtime %v, dettrain %v", outs[k], e, tol, at, got[k][at], h.Data[at])
						}
						worst = math.Max(worst, e)
					}
					t.Logf("raw heads: worst relative error %.2g (%d nodes)", worst, len(m.Graph.Nodes))
					return
				}
				got := run(t, path, tc.in, shape, []string{onnx.BoxesName, onnx.ScoresName})
				eb, es := compareDecoded(t, tc.net, heads, tc.n, tc.size, got[0], got[1])
				t.Logf("decoded: worst box error %.2g (relative to the box's largest |coordinate|, at least 1 px), worst score error %.2g (%d nodes)", eb, es, len(m.Graph.Nodes))
			})
		}
	}
}

// compareDecoded checks boxes (N, K, 4) and scores (N, K, C) against
// model.Decode(heads, b, size, 0), which lists for each head, anchor and cell
// the C classes of one box in the same order. A corner is cx -+ w/2: its
// error comes from cx and w/2, both at most the box's largest |corner|, so a
// corner's error is measured relative to max(1, largest |corner| of its
// box) (relative to the corner itself it is ill-conditioned near 0); scores
// lie in [0, 1] and are compared absolutely. Both must be <= tol (1e-4).
func compareDecoded(t *testing.T, net *model.Network, heads []model.HeadOutput, n int, size model.Size, boxes, scores []float32) (worstBox, worstScore float64) {
	t.Helper()
	nc := net.Classes
	k := 0
	for hi, h := range heads {
		k += len(net.Heads[hi].Mask) * h.H * h.W
	}
	if len(boxes) != n*k*4 || len(scores) != n*k*nc {
		t.Fatalf("boxes %d values, scores %d: want %d x %d x 4 and %d x %d x %d", len(boxes), len(scores), n, k, n, k, nc)
	}
	for b := 0; b < n; b++ {
		dets := net.Decode(heads, b, size, 0)
		if len(dets) != k*nc {
			t.Fatalf("image %d: model.Decode at 0 gave %d detections, want %d boxes x %d classes", b, len(dets), k, nc)
		}
		for r := 0; r < k; r++ {
			d := dets[r*nc]
			want := []float64{d.Box.X1, d.Box.Y1, d.Box.X2, d.Box.Y2}
			scale := 1.0
			for _, v := range want {
				scale = math.Max(scale, math.Abs(v))
			}
			got := boxes[(b*k+r)*4:][:4]
			for c, w := range want {
				if e := math.Abs(float64(got[c])-w) / scale; e > worstBox || math.IsNaN(e) {
					worstBox = e
					if e > tol || math.IsNaN(e) {
						t.Fatalf("image %d box %d coordinate %d: runtime %v, model.Decode %v (error %.3g > %g of %v)", b, r, c, got[c], w, e, tol, scale)
					}
				}
			}
			for c := 0; c < nc; c++ {
				w := dets[r*nc+c].Score
				g := float64(scores[(b*k+r)*nc+c])
				if e := math.Abs(g - w); e > worstScore || math.IsNaN(e) {
					worstScore = e
					if e > tol || math.IsNaN(e) {
						t.Fatalf("image %d box %d class %d: runtime score %v, model.Decode %v", b, r, c, g, w)
					}
				}
			}
		}
	}
	return worstBox, worstScore
}

// runOpenCV runs the model with OpenCV's ONNX importer
// (cv::dnn::readNetFromONNX, DNN_BACKEND_OPENCV on the CPU), one image at a
// time: OpenCV 4.6 fixes its layers' shapes at import with the declared
// batch (a symbolic one read as 1), and its broadcasting Mul
// ([scale_channels]) then fails on a batch of 2 (tried: works with the batch
// declared as 2, fails with 1 or "batch"). Outputs are (N, ...), so the
// images' outputs are concatenated.
func runOpenCV(t *testing.T, path string, in []float32, shape [4]int, outputs []string) [][]float32 {
	t.Helper()
	if shape[0] > 1 {
		per := len(in) / shape[0]
		one := [4]int{1, shape[1], shape[2], shape[3]}
		out := make([][]float32, len(outputs))
		for b := 0; b < shape[0]; b++ {
			for i, o := range runOpenCV(t, path, in[b*per:(b+1)*per], one, outputs) {
				out[i] = append(out[i], o...)
			}
		}
		return out
	}
	net := gocv.ReadNetFromONNX(path)
	if net.Empty() {
		t.Fatalf("OpenCV could not read %s", path)
	}
	defer net.Close()
	if err := net.SetPreferableBackend(gocv.NetBackendOpenCV); err != nil {
		t.Fatal(err)
	}
	if err := net.SetPreferableTarget(gocv.NetTargetCPU); err != nil {
		t.Fatal(err)
	}
	blob, err := gocv.NewMatWithSizesFromBytes(shape[:], gocv.MatTypeCV32F, f32bytes(in))
	if err != nil {
		t.Fatal(err)
	}
	defer blob.Close()
	net.SetInput(blob, onnx.InputName)
	mats := net.ForwardLayers(outputs)
	if len(mats) != len(outputs) {
		t.Fatalf("OpenCV returned %d outputs for %v", len(mats), outputs)
	}
	out := make([][]float32, len(mats))
	for i := range mats {
		d, err := mats[i].DataPtrFloat32()
		if err != nil {
			t.Fatal(err)
		}
		out[i] = append([]float32(nil), d...)
		mats[i].Close()
	}
	return out
}

// TestONNXMatchesOpenCV: models exported by package onnx, read by OpenCV
// 4.6's ONNX importer (an implementation of every operator independent of
// dettrain's), give dettrain's raw heads and model.Decode's boxes and scores
// to 1e-4 (tol: float32 sums in another order; the export folds BN in
// float64 and rounds once).
func TestONNXMatchesOpenCV(t *testing.T) { checkONNX(t, runOpenCV) }

// ortDir is where onnxruntime-node is installed (npm install
// onnxruntime-node into it, outside the repository); DETTRAIN_ORT_DIR
// overrides it.
func ortDir() string {
	if d := os.Getenv("DETTRAIN_ORT_DIR"); d != "" {
		return d
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "dettrain-ort")
}

// ortRunner returns a runtimeFunc running models through onnxruntime-node
// (testdata/ort_run.js), or skips the test when node or the module is absent.
func ortRunner(t *testing.T) runtimeFunc {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not on PATH: onnxruntime (npm onnxruntime-node) cannot run; see docs/ONNX.md")
	}
	mod := filepath.Join(ortDir(), "node_modules")
	if _, err := os.Stat(filepath.Join(mod, "onnxruntime-node", "package.json")); err != nil {
		t.Skipf("onnxruntime-node is not installed in %s (npm install --prefix %s --ignore-scripts onnxruntime-node: its install script only fetches CUDA binaries; DETTRAIN_ORT_DIR moves it): %v", ortDir(), ortDir(), err)
	}
	script, err := filepath.Abs("testdata/ort_run.js")
	if err != nil {
		t.Fatal(err)
	}
	return func(t *testing.T, path string, in []float32, shape [4]int, outputs []string) [][]float32 {
		t.Helper()
		dir := t.TempDir()
		input := filepath.Join(dir, "input.bin")
		if err := os.WriteFile(input, f32bytes(in), 0o644); err != nil {
			t.Fatal(err)
		}
		args := []string{script, path, input}
		for _, d := range shape {
			args = append(args, itoa(d))
		}
		cmd := exec.Command(node, append(args, dir)...)
		cmd.Env = append(os.Environ(), "NODE_PATH="+mod)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		stdout, err := cmd.Output()
		if err != nil {
			t.Fatalf("onnxruntime: %v\n%s", err, stderr.String())
		}
		var dims map[string][]int
		if err := json.Unmarshal(stdout, &dims); err != nil {
			t.Fatalf("onnxruntime's output %q: %v", stdout, err)
		}
		out := make([][]float32, len(outputs))
		for i, name := range outputs {
			if _, ok := dims[name]; !ok {
				t.Fatalf("onnxruntime has no output %q (it has %v)", name, dims)
			}
			b, err := os.ReadFile(filepath.Join(dir, name+".bin"))
			if err != nil {
				t.Fatal(err)
			}
			out[i] = make([]float32, len(b)/4)
			for k := range out[i] {
				out[i][k] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*k:]))
			}
		}
		return out
	}
}

// TestONNXMatchesOnnxruntime: the same exports run by onnxruntime (npm's
// onnxruntime-node, CPU, all graph optimisations on: it fuses Conv with its
// activations and BatchNormalization into Conv by itself), the same 1e-4.
func TestONNXMatchesOnnxruntime(t *testing.T) { checkONNX(t, ortRunner(t)) }

// exampleScript is docs/ONNX.md's Python example (the docs include it
// verbatim; TestONNXDocsExample keeps them equal).
const exampleScript = "testdata/onnx_predict.py"

// TestONNXExampleMatchesPredict runs docs/ONNX.md's example on the export of
// the pretrained Yolo-Fastest (--decode) and requires the boxes `dettrain
// predict` finds on the same images, at its defaults (conf 0.25, NMS 0.45,
// every class): the same count, classes, scores within tol (1e-4: the
// runtimes agree to that, TestONNXMatches*), coordinates within tol of the
// box's largest |coordinate| (both sides scale input pixels to the image by
// the same factors, which keeps that relative bound). The example runs in
// onnxruntime's Python package where installed, else with
// testdata/ort-shim, which runs the model in OpenCV's ONNX importer
// (onnxruntime itself is checked by TestONNXMatchesOnnxruntime): what this
// test checks is the example's pre- and post-processing against predict's.
func TestONNXExampleMatchesPredict(t *testing.T) {
	cfg, weights, names := filepath.Join(fastest, "yolo-fastest-1.1.cfg"), filepath.Join(fastest, "yolo-fastest-1.1.weights"), filepath.Join(fastest, "coco.names")
	if _, err := os.Stat(weights); err != nil {
		t.Skipf("%s is absent (../shared is not here?): %v", weights, err)
	}
	py, env := "", []string{}
	for _, p := range []string{"/usr/bin/python3", "python3"} {
		if exec.Command(p, "-c", "import cv2, numpy, onnxruntime").Run() == nil {
			py = p
			break
		}
		if exec.Command(p, "-c", "import cv2, numpy, onnx").Run() == nil {
			shim, _ := filepath.Abs("testdata/ort-shim")
			py, env = p, []string{"PYTHONPATH=" + shim}
			t.Logf("%s has no onnxruntime: the example runs with testdata/ort-shim (OpenCV's ONNX importer)", p)
			break
		}
	}
	if py == "" {
		t.Skip("no python3 with cv2, numpy and onnxruntime (or onnx for the shim): apt-get install python3-opencv python3-onnx")
	}
	bin := buildCLI(t)
	dir := t.TempDir()
	onnxPath := filepath.Join(dir, "fastest.onnx")
	if out, err := exec.Command(bin, "export", "--model", cfg, "--weights", weights, "--names", names, "--format", "onnx", "--decode", "--out", onnxPath).CombinedOutput(); err != nil {
		t.Fatalf("dettrain export: %v\n%s", err, out)
	}
	imgDir := filepath.Join(fastest, "..", "test-images")
	var images []string
	for _, im := range []string{"dog.jpg", "horses.jpg", "person.jpg", "eagle.jpg"} {
		images = append(images, filepath.Join(imgDir, im))
	}
	pred := filepath.Join(dir, "pred")
	args := append([]string{"predict", "--model", cfg, "--weights", weights, "--names", names, "--no-draw", "--out", pred}, images...)
	if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
		t.Fatalf("dettrain predict: %v\n%s", err, out)
	}
	b, err := os.ReadFile(filepath.Join(pred, "predictions.json"))
	if err != nil {
		t.Fatal(err)
	}
	var preds []struct {
		FileName string     `json:"file_name"`
		Category string     `json:"category_name"`
		BBox     [4]float64 `json:"bbox"`
		Score    float64    `json:"score"`
	}
	if err := json.Unmarshal(b, &preds); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, append([]string{exampleScript, onnxPath}, images...)...)
	cmd.Env = append(os.Environ(), env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s", exampleScript, err, stderr.String())
	}
	type det struct {
		image, class string
		score        float64
		box          [4]float64
	}
	var ex []det
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		var d det
		// class names may hold spaces ("traffic light"): the last 5 fields are numbers.
		if len(f) < 7 {
			t.Fatalf("example printed %q", line)
		}
		d.image, d.class = filepath.Base(f[0]), strings.Join(f[1:len(f)-5], " ")
		if _, err := fmt.Sscan(strings.Join(f[len(f)-5:], " "), &d.score, &d.box[0], &d.box[1], &d.box[2], &d.box[3]); err != nil {
			t.Fatalf("example printed %q: %v", line, err)
		}
		ex = append(ex, d)
	}
	used := make([]bool, len(ex))
	worst := 0.0
	for _, p := range preds {
		want := [4]float64{p.BBox[0], p.BBox[1], p.BBox[0] + p.BBox[2], p.BBox[1] + p.BBox[3]}
		scale := 1.0
		for _, v := range want {
			scale = math.Max(scale, math.Abs(v))
		}
		found := false
		for k, d := range ex {
			if used[k] || d.image != p.FileName || d.class != p.Category || math.Abs(d.score-p.Score) > tol {
				continue
			}
			e := 0.0
			for c := range want {
				// the example prints 3 decimals: half a unit of the last is added to the bound.
				e = math.Max(e, math.Max(0, math.Abs(d.box[c]-want[c])-0.0005)/scale)
			}
			if e <= tol {
				used[k], found = true, true
				worst = math.Max(worst, e)
				break
			}
		}
		if !found {
			t.Errorf("predict's %s %s %.4f at %v: the example has no such box", p.FileName, p.Category, p.Score, want)
		}
	}
	for k, d := range ex {
		if !used[k] {
			t.Errorf("the example's %s %s %.4f at %v is not among predict's boxes", d.image, d.class, d.score, d.box)
		}
	}
	t.Logf("%d boxes of predict on %d images found by the example, nothing else (worst box error %.2g of the box's extent)", len(preds), len(images), worst)
}

// TestONNXDocsExample: docs/ONNX.md shows testdata/onnx_predict.py verbatim.
func TestONNXDocsExample(t *testing.T) {
	doc, err := os.ReadFile("../docs/ONNX.md")
	if err != nil {
		t.Fatal(err)
	}
	script, err := os.ReadFile(exampleScript)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), "```python\n"+string(script)+"```\n") {
		t.Errorf("docs/ONNX.md does not show %s as it is (a ```python block holding the whole file)", exampleScript)
	}
}
