# onnxruntime.py stands in for the onnxruntime Python package in
# parity/onnx_test.go (TestONNXExampleMatchesPredict) where it is not
# installed: the model runs in OpenCV's ONNX importer (cv2.dnn) and the
# metadata is read with the onnx package. Only what onnx_predict.py uses.
import cv2, onnx


class _Meta:
    def __init__(self, props):
        self.custom_metadata_map = {p.key: p.value for p in props}


class InferenceSession:
    def __init__(self, path, providers=None):
        self._net = cv2.dnn.readNetFromONNX(path)
        self._meta = _Meta(onnx.load(path).metadata_props)

    def get_modelmeta(self):
        return self._meta

    def run(self, outputs, feeds):
        for name, value in feeds.items():
            self._net.setInput(value, name)
        return self._net.forward(outputs)
