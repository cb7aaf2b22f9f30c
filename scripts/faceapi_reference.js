// Run @vladmandic/face-api's own FaceExpressionNet (tfjs, pure-JS cpu backend) on raw 112x112 RGB images.
// Usage (called by scripts/verify_teachers.py): NODE_PATH=<dir>/node_modules node scripts/faceapi_reference.js MODEL_DIR INPUT.f32 N > out.json
//   INPUT.f32: N*112*112*3 little-endian float32 pixel values in [0, 255], NHWC (what face-api's toBatchTensor yields).
// Prints {"backend", "tfjs", "faceapi", "labels", "probs": N x 7 softmax outputs}. Verification only: not a deocc dependency.
const fs = require('fs');
const tf = require('@tensorflow/tfjs');
const faceapi = require('@vladmandic/face-api/dist/face-api.node-wasm.js');

async function main() {
  const [modelDir, inputPath, nArg] = process.argv.slice(2);
  const n = parseInt(nArg, 10);
  await tf.setBackend('cpu'); await tf.ready();
  await faceapi.nets.faceExpressionNet.loadFromDisk(modelDir);
  const buf = fs.readFileSync(inputPath);
  const data = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
  if (data.length !== n * 112 * 112 * 3) throw new Error(`expected ${n * 112 * 112 * 3} floats, got ${data.length}`);
  const probs = [];
  for (let i = 0; i < n; i++) {
    const x = tf.tensor4d(data.subarray(i * 112 * 112 * 3, (i + 1) * 112 * 112 * 3), [1, 112, 112, 3]);
    const out = await faceapi.nets.faceExpressionNet.forward(x);
    probs.push(Array.from(out.dataSync())); out.dispose(); x.dispose();
  }
  console.log(JSON.stringify({ backend: tf.getBackend(), tfjs: tf.version.tfjs, faceapi: faceapi.version,
    labels: faceapi.FACE_EXPRESSION_LABELS, probs }));
}
main().catch((e) => { console.error(e); process.exit(1); });
