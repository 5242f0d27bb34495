package image

import (
	"os"
	"testing"

	"github.com/dettrain/dettrain/data"
)

// TestCheckBCCD probes every BCCD image (the data.root of
// configs/bccd-yolov3-tiny.yaml) with OpenCV.Probe: all are whole
// 640x480 JPEGs that match their XML <size>.
func TestCheckBCCD(t *testing.T) {
	root := "/work/shared/data/bccd"
	if _, err := os.Stat(root); err != nil {
		t.Skip("/work/shared/data/bccd not found")
	}
	l := data.VOCLayout{Root: root, Images: "images", Annotations: "annotations", Splits: "splits/Main"}
	_, rep, err := data.Check(l, "trainval", []string{"RBC", "WBC", "Platelets"}, OpenCV{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Images != 292 || len(rep.Problems) != 0 {
		t.Errorf("%d images, problems %v", rep.Images, rep.Problems)
	}
}
