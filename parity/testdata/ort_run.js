// ort_run.js runs an ONNX model in onnxruntime (npm's onnxruntime-node, CPU
// execution provider) for parity/onnx_test.go:
//
//   node ort_run.js MODEL.onnx INPUT.bin N C H W OUTDIR
//
// INPUT.bin is the float32 little-endian input tensor "images" (N, C, H, W).
// Every output is written to OUTDIR/<name>.bin in the same format, and one
// JSON line on stdout gives each output's dims: {"boxes": [1, 2535, 4], ...}.
'use strict';
const fs = require('fs');
const path = require('path');
const ort = require('onnxruntime-node');

async function main() {
  const [model, input, n, c, h, w, outDir] = process.argv.slice(2);
  const buf = fs.readFileSync(input);
  const data = new Float32Array(buf.buffer, buf.byteOffset, buf.length / 4);
  const dims = [n, c, h, w].map(Number);
  const session = await ort.InferenceSession.create(model, {
    executionProviders: ['cpu'],
    graphOptimizationLevel: 'all',
  });
  const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', data, dims) };
  const results = await session.run(feeds);
  const shapes = {};
  for (const name of session.outputNames) {
    const t = results[name];
    fs.writeFileSync(path.join(outDir, name + '.bin'), Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength));
    shapes[name] = t.dims;
  }
  process.stdout.write(JSON.stringify(shapes) + '\n');
}

main().catch((e) => {
  process.stderr.write(String(e && e.stack ? e.stack : e) + '\n');
  process.exit(1);
});
