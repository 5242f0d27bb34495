# Detect objects with a model from `dettrain export --format onnx --decode`:
#   python3 onnx_predict.py model.onnx image.jpg ...
# prints "image class score x1 y1 x2 y2" (image pixels), the boxes `dettrain predict` finds.
import json, sys, cv2, numpy as np, onnxruntime as ort

sess = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
meta = sess.get_modelmeta().custom_metadata_map  # class names, input size, preprocessing
names, W, H = json.loads(meta["names"]), int(meta["input_width"]), int(meta["input_height"])
for path in sys.argv[2:]:
    img = cv2.imread(path)  # BGR, 8 bits
    h, w = img.shape[:2]
    x = cv2.resize(img, (W, H), interpolation=cv2.INTER_LINEAR)[:, :, ::-1]  # plain resize, RGB
    x = np.ascontiguousarray(x.transpose(2, 0, 1)[None], dtype=np.float32) / 255
    boxes, scores = sess.run(["boxes", "scores"], {"images": x})
    b = (boxes[0] * [w / W, h / H, w / W, h / H]).clip(0, [w, h, w, h])  # x1 y1 x2 y2 in the image
    for c, name in enumerate(names):  # every class scoring >= 0.25, then NMS 0.45 per class
        s = scores[0, :, c]
        idx = np.flatnonzero((s >= 0.25) & (b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1]))
        xywh = np.c_[b[idx, :2], b[idx, 2:] - b[idx, :2]]
        keep = cv2.dnn.NMSBoxes(xywh.tolist(), s[idx].tolist(), 0.0, 0.45)
        for i in idx[np.array(keep, dtype=int).reshape(-1)]:
            print(path, name, "%.6f" % s[i], " ".join("%.3f" % v for v in b[i]))
