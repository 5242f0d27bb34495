package engine

import (
	"strings"
	"testing"

	"github.com/dettrain/dettrain/config"
	"github.com/dettrain/dettrain/model"
)

// TestReplicasPerRank: train.replicas counts the replicas of the whole run;
// each rank takes its share, at least one.
func TestReplicasPerRank(t *testing.T) {
	for _, c := range []struct {
		replicas, ranks, want int
		err                   string
	}{
		{1, 1, 1, ""}, {1, 2, 1, ""}, {2, 2, 1, ""}, {4, 2, 2, ""}, {8, 4, 2, ""},
		{2, 4, 1, ""}, // fewer replicas than ranks: one a rank
		{3, 2, 0, "train.replicas 3 does not divide among 2 ranks"},
	} {
		got, err := replicasPerRank(c.replicas, c.ranks)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%d replicas, %d ranks: error %v, want %q", c.replicas, c.ranks, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%d replicas, %d ranks: %d, %v; want %d", c.replicas, c.ranks, got, err, c.want)
		}
	}
}

// TestOptionsFromConfig: the train section's values reach the loader's and
// the trainer's options, hand-worked from the config.
func TestOptionsFromConfig(t *testing.T) {
	c := config.Default()
	c.Train.Epochs, c.Train.Batch, c.Train.Seed = 50, 8, 7
	c.Train.Mixup, c.Train.MixupOffEpochs, c.Train.MixupOffFraction = true, 20, 0.1
	c.Train.Mosaic, c.Train.CloseMosaic = true, 10
	c.Train.WarmupEpochs, c.Train.LR = 2, 0.01
	c.Train.EMA = true
	c.Model.BN = "sync"
	lo := LoaderOptions(&c, model.Square(64), 12)
	if lo.Batch != 8 || lo.W != 64 || lo.H != 64 || lo.Seed != 7 || !lo.Shuffle || !lo.DropLast {
		t.Errorf("loader options %+v", lo)
	}
	// mixup_off_fraction 0.1 of 50 epochs replaces mixup_off_epochs: off from epoch 45.
	if lo.Mixup == nil || lo.Mixup.OffFromEpoch != 45 {
		t.Errorf("mixup %+v, want off from epoch 45", lo.Mixup)
	}
	if lo.Mosaic == nil || lo.Mosaic.OffFromEpoch != 40 {
		t.Errorf("mosaic %+v, want off from epoch 40", lo.Mosaic)
	}
	o, err := TrainOptions(&c, model.Square(64), 12, 4)
	if err != nil {
		t.Fatal(err)
	}
	// 50 epochs x 12 iterations; warmup 2 epochs = 24 iterations.
	if o.Epochs != 50 || o.Batch != 8 || !o.SyncBN || o.EMA == nil || o.Schedule.Total != 600 || o.Schedule.Warmup != 24 || o.Schedule.Base != 0.01 {
		t.Errorf("train options %+v (schedule %+v)", o, o.Schedule)
	}
	if o.GPU != nil || o.Ranks != nil {
		t.Errorf("a CPU config gives GPU %+v, ranks %v", o.GPU, o.Ranks)
	}
}
