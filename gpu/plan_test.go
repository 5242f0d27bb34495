package gpu

import (
	"fmt"
	"os"
	"testing"

	"github.com/dettrain/dettrain/model"
)

// TestPlanMatchesCPUShapes lays out real darknet models for the GPU without
// a GPU (planNet) and checks every layer's output shape against the CPU
// graph's, and the backward plan's invariant: every gradient buffer that
// receives contributions gets exactly one that overwrites, from its
// highest-index consumer (the first in backward order); the rest add.
func TestPlanMatchesCPUShapes(t *testing.T) {
	cfgs := []string{"../configs/models/demo-tiny.cfg", "../configs/models/yolov3-tiny.cfg", "../configs/models/yolov3.cfg",
		"../../shared/models/yolo-fastest-1.1-coco/yolo-fastest-1.1.cfg", "../../shared/models/yoloface-50k/yoloface-50k.cfg"}
	for _, c := range []struct {
		path string
		size model.Size
	}{
		{cfgs[0], model.Square(96)}, {cfgs[1], model.Square(96)}, {cfgs[2], model.Square(96)}, {cfgs[3], model.Square(96)}, {cfgs[4], model.Square(96)},
		// Non-square: every buffer's h and w from the CPU graph's own shapes.
		{cfgs[1], model.Size{W: 128, H: 64}}, {cfgs[3], model.Size{W: 64, H: 160}},
	} {
		path, size := c.path, c.size
		t.Run(path+"@"+size.String(), func(t *testing.T) {
			if _, err := os.Stat(path); err != nil {
				t.Skipf("%s absent (../shared holds the pretrained models): %v", path, err)
			}
			cfg, err := model.ReadCfg(path)
			if err != nil {
				t.Fatal(err)
			}
			net, err := model.NewNetwork(cfg, 0)
			if err != nil {
				t.Fatal(err)
			}
			net.Init(1)
			const n = 1
			g, err := net.NewGraph(n, size, false)
			if err != nil {
				t.Fatal(err)
			}
			defer g.Close()
			if err := g.Run(); err != nil {
				t.Fatal(err)
			}
			for _, training := range []bool{false, true} {
				nt, err := planNet(net, n, size, training)
				if err != nil {
					t.Fatalf("training %v: %v", training, err)
				}
				for i := range net.Layers {
					_, want := g.LayerOutput(i)
					b := nt.bufs[i+1]
					if got := []int{n, b.c, b.h, b.w}; fmt.Sprint(got) != fmt.Sprint(want) {
						t.Errorf("training %v: layer %d [%s]: GPU shape %v, CPU %v", training, i, net.Layers[i].Section().Type, got, want)
					}
				}
				if !training {
					continue
				}
				overwrite := map[*buffer][]int{} // buffer -> layers whose contribution overwrites
				highest := map[*buffer]int{}
				for _, ly := range nt.layers {
					if ly.skip || (nt.isAlias(ly) && ly.out != 0) && !isYOLO(ly) {
						continue
					}
					for k, s := range ly.in {
						if s == 0 {
							continue
						}
						b := nt.bufs[s]
						highest[b] = max(highest[b], ly.i)
						if !ly.acc[k] {
							overwrite[b] = append(overwrite[b], ly.i)
						}
					}
				}
				for b, hi := range highest {
					if ws := overwrite[b]; len(ws) != 1 || ws[0] != hi {
						t.Errorf("a gradient buffer %dx%dx%d: overwritten by layers %v, want only its last consumer %d", b.c, b.h, b.w, ws, hi)
					}
				}
				if len(nt.heads) == 0 {
					t.Errorf("no heads")
				}
			}
		})
	}
}

func isYOLO(ly *layer) bool { _, ok := ly.l.(*model.YOLOLayer); return ok }
