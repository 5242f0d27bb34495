package data

// MixupOptions turn on visually coherent mixup (Zhang et al. 2019, "Bag of
// Freebies for Training Object Detection Neural Networks", section 3.1;
// GluonCV's MixupDetection): every training image is mixed with a partner
// drawn uniformly from the other images of the data set, with
// lambda ~ Beta(Alpha, Beta), before the other augmentations. See Mixup for
// the mixing and tricks.MixupDraw for the draws.
type MixupOptions struct {
	Alpha, Beta float64 // Beta distribution parameters (default 1.5 and 1.5)
	// OffFromEpoch is the first epoch without mixup: images are mixed in
	// epochs e < OffFromEpoch (GluonCV turns mixup off for the last 20
	// epochs: OffFromEpoch = epochs - 20). Zero or less: never mixed.
	OffFromEpoch int
}

func (o MixupOptions) withDefaults() MixupOptions {
	if o.Alpha <= 0 {
		o.Alpha = 1.5
	}
	if o.Beta <= 0 {
		o.Beta = 1.5
	}
	return o
}

// Mixup mixes two images as GluonCV's MixupDetection: the canvas is
// max(a.W, b.W) x max(a.H, b.H), zero-filled; a is pasted at the top-left
// corner times lambda, and b, also at the top-left corner, times 1-lambda is
// added:
//
//	out(x, y) = lambda*a(x, y) [inside a] + (1-lambda)*b(x, y) [inside b]
//
// in float32 (GluonCV rounds the result to uint8; dettrain keeps the
// floats). The boxes of both images are kept, in the same pixel coordinates
// (no resizing: "geometry preserved"), a's with their Weight times lambda,
// b's times 1-lambda; that weight multiplies each object's loss terms.
// Neither input is modified.
func Mixup(a *Image, ta []Target, b *Image, tb []Target, lambda float64) (*Image, []Target) {
	return mixup(a, ta, b, tb, lambda, false)
}

// mixup is Mixup; with reuse, a's pixels are overwritten by the canvas when
// it has a's size (the loader owns a and saves a copy).
func mixup(a *Image, ta []Target, b *Image, tb []Target, lambda float64, reuse bool) (*Image, []Target) {
	w, h := max(a.W, b.W), max(a.H, b.H)
	var out *Image
	if reuse && w == a.W && h == a.H {
		out = a
	} else {
		out = NewImage(w, h)
	}
	la, lb := float32(lambda), float32(1-lambda)
	for y := range a.H {
		src := a.Pix[y*a.W*3 : (y+1)*a.W*3]
		dst := out.Pix[y*w*3 : y*w*3+len(src)]
		for i, v := range src {
			dst[i] = v * la
		}
	}
	for y := range b.H {
		src := b.Pix[y*b.W*3 : (y+1)*b.W*3]
		dst := out.Pix[y*w*3 : y*w*3+len(src)]
		for i, v := range src {
			dst[i] += v * lb
		}
	}
	ts := make([]Target, 0, len(ta)+len(tb))
	for _, t := range ta {
		t.Weight *= la
		ts = append(ts, t)
	}
	for _, t := range tb {
		t.Weight *= lb
		ts = append(ts, t)
	}
	return out, ts
}
