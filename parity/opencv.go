// Package parity checks dettrain against tools nobody here wrote: its tests
// run darknet models (pretrained ones from ../shared and random-weight ones
// written by dettrain) in OpenCV's DNN module through gocv and compare the
// outputs layer by layer with dettrain's forward pass. Package model itself
// never imports gocv, so that it builds without OpenCV; this package does.
package parity

import (
	"fmt"
	"math"
	"regexp"
	"strconv"

	"gocv.io/x/gocv"
)

// OpenCV is a darknet model loaded by OpenCV (cv::dnn::readNet on the .cfg
// and .weights, DNN_BACKEND_OPENCV on the CPU).
type OpenCV struct {
	net   gocv.Net
	blobs map[int]string // darknet layer index -> OpenCV's name of its output
}

var layerName = regexp.MustCompile(`^([a-z_]+)_(\d+)$`)

// activations are the kinds darknet_io.cpp gives activation layers.
var activations = map[string]bool{"leaky": true, "relu": true, "mish": true, "swish": true, "logistic": true,
	"tanh": true, "elu": true, "selu": true, "gelu": true, "hardswish": true, "hard_mish": true, "relu6": true}

// LoadOpenCV reads cfg and weights with OpenCV. OpenCV aborts the process on
// a cfg it cannot read (gocv does not catch C++ exceptions): give it only
// layers and activations it supports.
func LoadOpenCV(cfg, weights string) (*OpenCV, error) {
	net := gocv.ReadNet(weights, cfg)
	if net.Empty() {
		return nil, fmt.Errorf("OpenCV could not read %s with %s", cfg, weights)
	}
	if err := net.SetPreferableBackend(gocv.NetBackendOpenCV); err != nil {
		return nil, err
	}
	if err := net.SetPreferableTarget(gocv.NetTargetCPU); err != nil {
		return nil, err
	}
	// darknet_io.cpp names every OpenCV layer made for darknet layer i
	// "<kind>_<i>" (conv_3, bn_3, shortcut_3, ...), except the activation,
	// which it names after the layer counter has moved on: "leaky_4" is layer
	// 3's activation. The last layer named for i holds i's output.
	o := &OpenCV{net: net, blobs: map[int]string{}}
	for _, n := range net.GetLayerNames() {
		m := layerName.FindStringSubmatch(n)
		if m == nil {
			continue
		}
		i, _ := strconv.Atoi(m[2])
		if activations[m[1]] {
			i--
		}
		o.blobs[i] = n
	}
	return o, nil
}

// Names lists OpenCV's layer names.
func (o *OpenCV) Names() []string { return o.net.GetLayerNames() }

// Close releases the network.
func (o *OpenCV) Close() { o.net.Close() }

// BlobName is OpenCV's name for darknet layer i's output ("" if none).
func (o *OpenCV) BlobName(i int) string { return o.blobs[i] }

// Forward runs the network on input (N, C, H, W) and returns the outputs of
// the given darknet layers, copied into Go memory.
func (o *OpenCV) Forward(input []float32, shape [4]int, layers []int) ([][]float32, error) {
	if len(input) != shape[0]*shape[1]*shape[2]*shape[3] {
		return nil, fmt.Errorf("input has %d values, shape %v", len(input), shape)
	}
	blob, err := gocv.NewMatWithSizesFromBytes(shape[:], gocv.MatTypeCV32F, f32bytes(input))
	if err != nil {
		return nil, err
	}
	defer blob.Close()
	o.net.SetInput(blob, "")
	names := make([]string, len(layers))
	for i, l := range layers {
		if names[i] = o.blobs[l]; names[i] == "" {
			return nil, fmt.Errorf("OpenCV has no layer for darknet layer %d", l)
		}
	}
	mats := o.net.ForwardLayers(names)
	out := make([][]float32, len(mats))
	for i := range mats {
		d, err := mats[i].DataPtrFloat32()
		if err != nil {
			return nil, err
		}
		out[i] = append([]float32(nil), d...)
		mats[i].Close()
	}
	return out, nil
}

func f32bytes(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, f := range v {
		u := math.Float32bits(f)
		b[4*i], b[4*i+1], b[4*i+2], b[4*i+3] = byte(u), byte(u>>8), byte(u>>16), byte(u>>24)
	}
	return b
}
