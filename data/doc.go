// Package data reads, writes and checks object-detection data sets and turns
// them into batches of network input for training.
//
// # Formats
//
// Three annotation formats (Formats; config data.format), each with its
// reader and writer in one file:
//
//   - voc.go: PASCAL VOC, one XML per image (VOCLayout, LoadVOC, Check);
//     boxes are 1-based inclusive corners, converted with box.FromVOC.
//   - coco.go: COCO instances JSON (ReadCOCO, ParseCOCO, LoadCOCO,
//     CheckCOCO, COCOSplit for the ids and areas a Dataset has no field
//     for); iscrowd=1 loads as Difficult.
//   - yolo.go: darknet / Ultralytics txt labels, "class cx cy w h" relative
//     to the image, one file per image (YOLODirs, YOLOListFile, LoadYOLO).
//
// Load reads one split in any of them into the same Dataset and Report;
// Write (convert.go) writes a Dataset in any format, and Detect finds a data
// set on disk for `dettrain data convert`. Readers collect Problems instead
// of failing, so that one bad file does not hide the others.
//
// # Splits
//
// split.go reads a data set without split lists whole (LoadAll, split
// "all"), divides it into train, val and test stratified by each image's
// rarest class (Split), and writes the lists in each format's own layout
// (WriteSplitLists).
//
// # Loader and augmentation
//
// Loader (loader.go) turns a Dataset into Batches (NCHW float32, RGB/255)
// in parallel goroutines. Batches are a pure function of the data set, the
// LoaderOptions and the epoch: every per-image random draw comes from
// SampleRand(seed, epoch, position), so the number of workers does not
// matter, EpochFrom resumes in the middle of an epoch, and
// LoaderOptions.Shard/Shards split each batch between processes with every
// image as in the unsharded batch. Random shapes (one input size per batch)
// come from LoaderOptions.SizeAt.
//
// With LoaderOptions.Augment every image goes through GluonCV's YOLOv3
// training transform on a full-size Image (image.go, HWC floats 0..255):
// colour jitter (colour.go), random expand and SSD constrained crop
// (geometry.go), resize with a random interpolation (resize.go) and the
// horizontal flip, done in one resampling pass (augment.go). Before it,
// Mosaic (mosaic.go, YOLOv4 / Ultralytics load_mosaic) makes an image of
// four, and Mixup (mixup.go, Zhang et al. 2019 section 3.1, GluonCV's
// MixupDetection) blends an image with a partner; their random draws are
// in package tricks (tricks.MixupDraw, tricks.MixPartner).
//
// # Decoding
//
// This package has no cgo: images are decoded and probed through the
// Decoder, FullDecoder and Prober interfaces. Package data/image implements
// them with OpenCV through gocv, and also draws labelled boxes; it is the
// only package of dettrain that needs cgo. Package data/synth renders the
// synthetic shapes data set.
package data
