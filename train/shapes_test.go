package train

import (
	"context"
	"io"
	"testing"

	"github.com/dettrain/dettrain/data"
	"github.com/dettrain/dettrain/model"
	"github.com/dettrain/dettrain/tricks"
)

// shapeSource draws each batch's size with tricks.Shapes from two loaders
// over the same images, standing in for a loader with per-batch sizes.
type shapeSource struct {
	by     map[int]*data.Loader
	shapes tricks.Shapes
	per    int
	e, k   int
	seen   map[int]int
}

func (s *shapeSource) EpochFrom(e, k int) {
	s.e, s.k = e, k
	for _, l := range s.by {
		l.EpochFrom(e, k)
	}
}
func (s *shapeSource) BatchesPerEpoch() int { return s.per }
func (s *shapeSource) Next() (*data.Batch, error) {
	if s.k >= s.per {
		return nil, io.EOF
	}
	size := s.shapes.SizeAt(s.e*s.per + s.k)
	s.seen[size]++
	s.k++
	for sz, l := range s.by {
		b, err := l.Next()
		if sz == size {
			return b, err
		}
	}
	panic("unreachable")
}

// TestRandomShapesShareWeights trains with batches of two sizes: one graph
// per size is built once and reused, and both update the same weights.
func TestRandomShapesShareWeights(t *testing.T) {
	s := newSmallRun(t)
	net := s.net(t)
	src := &shapeSource{by: map[int]*data.Loader{}, shapes: tricks.Shapes{Sizes: []int{64, 96}, Every: 1, Seed: 1}, per: 2, seen: map[int]int{}}
	for _, size := range []int{64, 96} {
		l := data.NewLoader(s.ds, resizeDecoder{}, data.LoaderOptions{Batch: 4, W: size, Workers: 2, Shuffle: true, Seed: 9, DropLast: true})
		defer l.Close()
		src.by[size] = l
	}
	before := weightsOf(net)
	o := s.options(t.TempDir(), 5)
	o.Size = model.Square(64)
	var built int
	sum, err := run(context.Background(), net, src, o, nil, io.Discard, io.Discard, seams{built: &built})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Iter != 10 || len(src.seen) != 2 {
		t.Fatalf("iterations %d, sizes seen %v", sum.Iter, src.seen)
	}
	if built != 2 {
		t.Fatalf("built %d graphs for 2 sizes", built)
	}
	after := weightsOf(net)
	changed := 0
	for i := range before {
		for j := range before[i] {
			if before[i][j] != after[i][j] {
				changed++
			}
		}
	}
	if changed == 0 {
		t.Fatal("weights did not change")
	}
}

// resizeDecoder is stdDecoder with nearest-neighbour resizing.
type resizeDecoder struct{}

func (resizeDecoder) Load(path string, w, h int, dst []float32) (int, int, error) {
	full := make([]float32, 3*64*64)
	if _, _, err := (stdDecoder{}).Load(path, 64, 64, full); err != nil {
		return 0, 0, err
	}
	for c := 0; c < 3; c++ {
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				dst[(c*h+y)*w+x] = full[(c*64+y*64/h)*64+x*64/w]
			}
		}
	}
	return 64, 64, nil
}
