// Package model is dettrain's darknet network on the CPU: it reads a darknet
// .cfg, builds the layers, turns them into a gorgonia graph for an input size
// (forward, loss and backward), and reads and writes darknet .weights. The
// trainer (package train) runs these graphs; package gpu runs the same
// Network on the device with its own kernels and checks them against the
// ones here.
//
// # Map
//
// From text to graph, one file per step:
//
//   - cfg.go: the .cfg parser. A Cfg is [net] plus a list of Sections; each
//     Section remembers its file, its line and the line of every key, so that
//     errors read "yolov3.cfg:212: ..." (CfgError). Sections are read with
//     Int, Float, Ints, Str; keys nobody read are an error (Unused). The
//     parser knows nothing about layers.
//   - network.go: NewNetwork, the builder: one Layer per section, made by
//     the parser layerTypes names for its type, with the checks that need
//     more than one section (route and shortcut indices, the filters in
//     front of a [yolo] head), and Init, which fills the weights. Each Layer
//     type (ConvLayer, MaxPoolLayer, RouteLayer, ...) lives in its op's file
//     with its parser, its node method (what NewGraph adds for it) and
//     extent (darknet's size rule, for SpatialSizes).
//   - graph.go: Network.NewGraph builds a Graph for a batch size and an input
//     Size (size.go: Size, ParseSize, the stride check), inference or
//     training; a training graph adds the loss and the backward pass
//     (backward.go), shares gradient buffers by liveness (slots.go) and,
//     WithArena, its memory with the graphs of other input sizes (arena.go).
//     Graph.Run, Loss, Grads, Heads are what the trainer calls.
//
// The ops, one file each: the gorgonia.Op, its CPU kernels written once for
// float32 and float64 (generic over float), and its backward op:
//
//   - conv.go: Conv2D (im2col + GEMM per image and band, the direct
//     depthwise kernels), convbatch.go: several images per GEMM for small
//     feature maps;
//   - bnact.go: batch norm fused with the activation (BNAct) and bias plus
//     activation (BiasAct); syncbn.go: SyncBN, the batch statistics reduced
//     over replicas through a Collective (SyncGroup in one process);
//   - act.go: the activations (Activation) and Activate; pool.go: MaxPool,
//     Upsample, GlobalAvgPool; route.go: RouteGroups and the shortcut sum;
//     scale.go: ScaleChannels; dropout.go: Dropout with masks that are a
//     function of (seed, layer, image, step);
//   - op.go: what they share: opBase (the gorgonia.Op methods), opBase.do
//     (timing and unpacking around each Do), backOp[K], the one backward op
//     type, parameterised by its kernel, and extractOp (side gradients such
//     as BN's dgamma); par.go: parallelFor, the one parallel loop; simd*.go:
//     AVX2 kernels for the float32 hot loops; optime.go: per-op timing
//     (bench --op-times).
//
// The detection parts:
//
//   - yolo.go: the YOLOv3 loss of one [yolo] head (Head, LossParts, the
//     assignment of truths to anchors) as docs/FREEBIES.md specifies, and
//     YOLOLossCPU for checking other implementations;
//   - decode.go: Decode and DecodeBest, a graph's head outputs to
//     Detections;
//   - anchors.go: KMeansAnchors, MeanBestIoU, SetAnchors and the anchor
//     statistics of a data set;
//   - weights.go: darknet .weights I/O (header, LoadWeights, WriteWeights,
//     WriteAtomic); partial.go: LoadPartial, pretrained weights of another
//     class count or a prefix of the layers, and HeadPriors.
//
// # Adding a layer
//
// A new section type [foo] is one file here, foo.go, holding:
//
//   - the FooLayer type (Section, OutChannels), parseFoo (reads its keys and
//     checks them, errors naming the line) and its line in network.go's
//     layerTypes table;
//   - node, which applies the op to the layer's input (b.cur, or earlier
//     outputs b.outs) in the graph being built, and extent, darknet's size
//     rule;
//   - the op. Its forward op embeds opBase (newOpBase), states InferShape,
//     Do (return o.do(vs, o.forward)), DiffWRT and SymDiff; its backward op
//     is backOp[fooBack] made by newBack, where fooBack holds a pointer to
//     the forward op and its backward method is the kernel. The kernels are
//     generic functions of T float, called once per dtype.
//
// Then foo_test.go (a numerical gradient check, gradCheck in ops_test.go,
// and values checked against darknet's or OpenCV's for a darknet layer);
// weights.go and partial.go when the layer has parameters; outside this
// package gpu/foo.go and gpu/kernels/foo.cu with a line in gpu/op.go's
// newLayerOp and cases in gpu/op_test.go's table, and onnx/export.go for
// the ONNX export.
package model
