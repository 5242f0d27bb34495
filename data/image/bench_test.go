package image

import (
	"io"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/dettrain/dettrain/data"
)

// BenchmarkPipeline measures the training input pipeline on BCCD (the
// data.root of configs/bccd-yolov3-tiny.yaml, 640x480 JPEGs) with 2 workers
// and batches of 8 at 416x416: "plain" is the eval/predict path (OpenCV
// decode + resize), "augment" decodes at full size and runs GluonCV's YOLOv3
// transform, "augment+mixup" also decodes and mixes a partner per image. The
// img/s metric counts images delivered by Next; cpu-ms/img is the process's
// CPU time per image (both workers and the GC), which other load on the
// machine does not change.
//
//	go test ./data/image -run '^$' -bench Pipeline -benchtime 400x
func BenchmarkPipeline(b *testing.B) {
	root := "/work/shared/data/bccd"
	if _, err := os.Stat(root); err != nil {
		b.Skip("/work/shared/data/bccd not found")
	}
	l := data.VOCLayout{Root: root, Images: "images", Annotations: "annotations", Splits: "splits/Main"}
	ds, _, err := data.LoadVOC(l, "trainval", []string{"RBC", "WBC", "Platelets"}, nil)
	if err != nil {
		b.Fatal(err)
	}
	base := data.LoaderOptions{Batch: 8, W: 416, Workers: 2, Prefetch: 2, Shuffle: true, Seed: 1, Flip: true}
	aug := base
	aug.Augment = true
	mix := aug
	mix.Mixup = &data.MixupOptions{OffFromEpoch: 1 << 30}
	for _, c := range []struct {
		name string
		o    data.LoaderOptions
	}{{"plain", base}, {"augment", aug}, {"augment+mixup", mix}} {
		b.Run(c.name, func(b *testing.B) {
			ld := data.NewLoader(ds, OpenCV{}, c.o)
			defer ld.Close()
			e := 0
			ld.Epoch(e)
			images := 0
			start, cpu0 := time.Now(), cpuTime()
			b.ResetTimer()
			for range b.N {
				bt, err := ld.Next()
				if err == io.EOF {
					e++
					ld.Epoch(e)
					bt, err = ld.Next()
				}
				if err != nil {
					b.Fatal(err)
				}
				images += bt.N
			}
			b.ReportMetric(float64(images)/time.Since(start).Seconds(), "img/s")
			b.ReportMetric((cpuTime()-cpu0).Seconds()*1000/float64(images), "cpu-ms/img")
		})
	}
}

// cpuTime is the process's user+system CPU time: cpu-ms/img measures the
// work per image even when other processes share the cores.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
