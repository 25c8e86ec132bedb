// Reference outputs of a TF.js graph model, computed by the pure-JS @tensorflow/tfjs CPU backend.
//
// Usage: NODE_PATH=<folder with node_modules> node tfjs_reference.cjs <request.json>
// request.json: {"model": "<model.json>", "input": "<float32 NHWC .bin>", "shape": [B, H, W, C],
//                "outputs": ["node", ...], "out_dir": "<folder>"}
// Writes <out_dir>/<i>.bin (float32, row-major, TF layout) per output and prints
// {"shapes": [[...], ...], "backend": "cpu", "version": "..."} on stdout.
'use strict';
const fs = require('fs');
const path = require('path');
const tf = require('@tensorflow/tfjs');

async function main() {
  const req = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
  const spec = JSON.parse(fs.readFileSync(req.model, 'utf8'));
  const dir = path.dirname(req.model);
  const weightSpecs = [];
  const shards = [];
  for (const group of spec.weightsManifest) {
    weightSpecs.push(...group.weights);
    for (const p of group.paths) shards.push(fs.readFileSync(path.join(dir, p)));
  }
  const joined = Buffer.concat(shards);
  const weightData = joined.buffer.slice(joined.byteOffset, joined.byteOffset + joined.length);
  const handler = {
    load: async () => ({
      modelTopology: spec.modelTopology, weightSpecs, weightData, format: spec.format,
      generatedBy: spec.generatedBy, convertedBy: spec.convertedBy, signature: spec.signature,
    }),
  };
  await tf.setBackend('cpu');
  const model = await tf.loadGraphModel(handler);
  const raw = fs.readFileSync(req.input);
  const data = new Float32Array(raw.buffer, raw.byteOffset, raw.length / 4);
  const x = tf.tensor(data, req.shape, 'float32');
  let ys = model.execute(x, req.outputs);
  if (!Array.isArray(ys)) ys = [ys];
  const shapes = [];
  ys.forEach((y, i) => {
    const values = y.dataSync();
    fs.writeFileSync(path.join(req.out_dir, `${i}.bin`), Buffer.from(values.buffer));
    shapes.push(y.shape);
  });
  process.stdout.write(JSON.stringify({ shapes, backend: tf.getBackend(), version: tf.version.tfjs }));
}

main().catch((err) => { console.error(err); process.exit(1); });
