// The page of `vqgen export --format web`: loads the export's ONNX models with onnxruntime-web (the
// WebAssembly backend, carried in ./onnxruntime-web/), samples code grids with ./noise_sampler.js (a
// raster-order prior over its cached step, prior_start, prior_step and prior_row; a MaskGIT by its parallel
// decoding, one prior_logits pass per step, in the export's default steps) and draws the decoded images.
// Test hooks: window.vqgenReady (a promise, resolved once the models are loaded) and
// window.vqgenSample({noise, confidenceNoise, num, labels, temperature, guidance}) returning the codes as an
// array (noise: the Gumbel noise of the config's "noise" layout, flat; confidenceNoise: a MaskGIT's
// confidence_gumbel, flat).
import * as ort from "./onnxruntime-web/ort.wasm.bundle.min.mjs";
import { CachedStep, gumbelNoise, maskgitSampleWithNoise, sampleRaster } from "./noise_sampler.js";

const status = document.getElementById("status");
const button = document.getElementById("sample");

/** An ONNX model as a function of named tensors {name: [data, dims]}, resolving to its outputs so. */
async function loadModel(file) {
  const session = await ort.InferenceSession.create(file, { executionProviders: ["wasm"] });
  return async (inputs) => {
    const feeds = {};
    for (const [name, [data, dims]] of Object.entries(inputs)) {
      feeds[name] = new ort.Tensor(data instanceof Int32Array ? "int32" : "float32", data, dims);
    }
    const outputs = await session.run(feeds);
    return Object.fromEntries(Object.entries(outputs).map(([name, tensor]) => [name, [tensor.data, tensor.dims]]));
  };
}

const config = await (await fetch("vqgen_config.json")).json();
const prior = config.prior;
if (prior === null) {
  throw new Error("this export has no prior: export a run whose prior is trained");
}
const [rows, cols] = prior.grid_shape;
const size = prior.num_embeddings;
const conditional = prior.num_classes !== null && prior.num_classes !== undefined;
const noLabel = conditional && prior.label_dropout > 0 ? prior.num_classes : null;
const [height, width, channels] = config.vqvae.input_shape;
const logitsModel = await loadModel("prior_logits.onnx");
const decodeModel = await loadModel("decode.onnx");
const parallel = config.noise.decoding === "parallel"; // a MaskGIT
const steps = parallel ? config.sample_steps : rows * cols; // prior calls per sampling

let lastYield = performance.now();
let passes = 0; // prior steps of the current sampling, for the status line

/** Lets the browser handle input and paint about every 50 ms: the WebAssembly runs on the page's thread. */
async function yieldToBrowser() {
  if (performance.now() - lastYield > 50) {
    await new Promise((resolve) => setTimeout(resolve, 0));
    lastYield = performance.now();
  }
}

async function priorLogits(codes, batchSize, labels) {
  await yieldToBrowser();
  passes += 1;
  const inputs = { codes: [codes, [batchSize, rows, cols]] };
  if (labels !== null) {
    inputs.labels = [labels, [batchSize]];
  }
  return (await logitsModel(inputs)).logits[0];
}

/** `model` counting its calls as passes and letting the browser paint between them. */
function counted(model) {
  return async (inputs) => {
    await yieldToBrowser();
    passes += 1;
    return model(inputs);
  };
}

const cachedStep = parallel
  ? null
  : new CachedStep(
    await loadModel("prior_start.onnx"),
    counted(await loadModel("prior_step.onnx")),
    "prior_row" in config.models ? await loadModel("prior_row.onnx") : null, // the PixelCNN's row work
  );

/** Samples `num` grids; the noise is drawn here unless given (flat, as the config's "noise" lays it out). */
async function sample({ noise = null, confidenceNoise = null, num = 16, labels = null, temperature = 1, guidance = 1 }) {
  const given = labels === null ? null : Int32Array.from(labels);
  const positions = rows * cols;
  if (!parallel) {
    const gumbel = noise === null ? gumbelNoise(num * positions * size) : Float32Array.from(noise);
    return sampleRaster(cachedStep, gumbel, [num, rows, cols, size], temperature, given, guidance, noLabel);
  }
  const gumbel = noise === null ? gumbelNoise(num * steps * positions * size) : Float32Array.from(noise);
  const confidence = confidenceNoise === null ? gumbelNoise(num * steps * positions) : Float32Array.from(confidenceNoise);
  const shape = [num, steps, rows, cols, size];
  const scale = config.noise.confidence_noise;
  return maskgitSampleWithNoise(priorLogits, gumbel, confidence, shape, scale, temperature, given, guidance, noLabel);
}

/** Decodes codes [num, rows, cols] and draws the images as a grid, each `scale` times its size. */
async function draw(codes, num) {
  const images = (await decodeModel({ codes: [codes, [num, rows, cols]] })).images[0];
  const across = Math.ceil(Math.sqrt(num));
  const down = Math.ceil(num / across);
  const tiles = new ImageData(across * width, down * height);
  for (let n = 0; n < num; n++) {
    const left = (n % across) * width;
    const top = Math.floor(n / across) * height;
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const pixel = 4 * ((top + y) * across * width + left + x);
        const value = (n * height * width + y * width + x) * channels;
        for (let c = 0; c < 3; c++) {
          tiles.data[pixel + c] = Math.round(255 * images[value + (channels === 3 ? c : 0)]);
        }
        tiles.data[pixel + 3] = 255;
      }
    }
  }
  const canvas = document.getElementById("grid");
  const scale = Math.max(1, Math.floor(448 / (across * width)));
  canvas.width = across * width * scale;
  canvas.height = down * height * scale;
  const context = canvas.getContext("2d");
  context.imageSmoothingEnabled = false;
  context.drawImage(await createImageBitmap(tiles), 0, 0, canvas.width, canvas.height);
}

const classes = document.getElementById("class");
if (conditional) {
  classes.add(new Option("one of each", "each"));
  for (let label = 0; label < prior.num_classes; label++) {
    classes.add(new Option(String(label), String(label)));
  }
} else {
  document.getElementById("class-field").hidden = true;
}
const guidanceInput = document.getElementById("guidance");
guidanceInput.disabled = noLabel === null; // guidance needs a prior trained with label dropout

button.addEventListener("click", async () => {
  const num = Number(document.getElementById("count").value);
  const labels = !conditional
    ? null
    : Array.from({ length: num }, (_, n) => (classes.value === "each" ? n % prior.num_classes : Number(classes.value)));
  button.disabled = true;
  passes = 0;
  const progress = setInterval(() => {
    status.textContent = `Sampling ${num} grids of ${rows}x${cols} codes: step ${passes} of ${steps}…`;
  }, 250);
  try {
    const start = performance.now();
    const codes = await sample({
      num,
      labels,
      temperature: Number(document.getElementById("temperature").value),
      guidance: Number(guidanceInput.value),
    });
    const seconds = (performance.now() - start) / 1000;
    await draw(codes, num);
    status.textContent = `Sampled ${num} grids in ${seconds.toFixed(2)} s.`;
  } catch (error) {
    status.textContent = `Sampling failed: ${error.message}`;
  } finally {
    clearInterval(progress);
    button.disabled = false;
  }
});

window.vqgenSample = async (options) => Array.from(await sample(options));
status.textContent = `Ready: ${config.prior_class} prior, ${rows}x${cols} grids of ${size} codes.`;
button.disabled = false;
