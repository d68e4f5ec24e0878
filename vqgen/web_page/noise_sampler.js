// Sampling code grids from a prior's exported cached step with the randomness given as input: the
// JavaScript twin of vqgen/noise_sampler.py, line by line, with the same noise layout (Gumbel noise
// [N, rows, cols, K] in raster order, flat). `sampleRaster` is the raster loop over `CachedStep`
// (prior_start, prior_step and, for the PixelCNN, prior_row, with the cache as named tensors in and out):
// position `t` is drawn by the Gumbel-max trick, argmax(logits[:, t] + temperature * gumbel[:, t]); with
// classifier-free guidance every call runs the doubled batch (the labels, then the "no label" class, the
// caches doubled too) and draws from u + guidance * (c - u). Each float32 operation is rounded to float32
// (Math.fround) as NumPy computes it, so one noise tensor gives the same codes here as in Python.
// A model is a function of named tensors `{name: [data, dims]}` (Int32Array or Float32Array data) that
// resolves to the named output tensors in the same form (page.js wraps an onnxruntime-web session so).

// The prefixes of a cached step's outputs for a cache tensor NAME (see CachedStep)
const NEXT = "next_";
const UPDATE = "update_";
const START = "start_";

/**
 * Standard Gumbel noise -log(-log(u)), u uniform in (0, 1), drawn with crypto.getRandomValues.
 *
 * @param {number} size - how many values: N * rows * cols * K.
 * @returns {Float32Array} the noise, flat.
 * @example const gumbel = gumbelNoise(16 * 7 * 7 * 256);
 */
export function gumbelNoise(size) {
  const noise = new Float32Array(size);
  const words = new Uint32Array(Math.min(size, 16384)); // getRandomValues fills at most 64 KiB a call
  for (let start = 0; start < size; start += words.length) {
    crypto.getRandomValues(words);
    for (let i = 0; i < words.length && start + i < size; i++) {
      const uniform = Math.fround((words[i] + 0.5) / 4294967296); // (0, 1)
      noise[start + i] = Math.fround(-Math.log(-Math.log(uniform)));
    }
  }
  return noise;
}

/**
 * The exported cached step of a prior (prior_start, prior_step, prior_row), for sampleRaster.
 *
 * The cache is the object of the tensors named cache_* (the position cache) and row_cache_* (the row
 * cache) that prior_start returns. A step returns only what it changes: for a cache tensor NAME, its next
 * value next_NAME, or a slice update_NAME to write at start_NAME (one start per axis), or nothing when
 * NAME stays as it was.
 *
 * @example const step = new CachedStep(model("prior_start"), model("prior_step"), model("prior_row"));
 */
export class CachedStep {
  /**
   * @param {function(Object): Promise<Object>} start - prior_start: batch int32 [] -> the initial caches.
   * @param {function(Object): Promise<Object>} step - prior_step: previous_codes, index, (labels,) cache_*
   *     -> logits and the cache's changes.
   * @param {?function(Object): Promise<Object>} row - prior_row (row_codes, (labels,) row_cache_* ->
   *     next_row_cache_*, next_cache_*), or null for a prior without once-per-row work (the Transformer).
   */
  constructor(start, step, row = null) {
    this.start = start;
    this.step = step;
    this.row = row;
    if (row !== null) { // once-per-row work: sampleRaster calls completeRow after each row
      this.initialRowCache = (batch) => this.initial(batch, "row_cache_");
      this.completeRow = (rowCodes, rowCache, labels) => this.completeRowWith(rowCodes, rowCache, labels);
    }
  }

  /** The caches of prior_start whose names start with `prefix`, copied (the loop writes into them). */
  async initial(batch, prefix) {
    const caches = await this.start({ batch: [Int32Array.of(batch), []] });
    return Object.fromEntries(
      Object.entries(caches)
        .filter(([name]) => name.startsWith(prefix))
        .map(([name, [data, dims]]) => [name, [data.slice(), dims]]),
    );
  }

  /** The position cache before the first position: {name: [data, dims]} of the cache_* tensors. */
  initialCache(batch) {
    return this.initial(batch, "cache_");
  }

  /** [logits [N, K] flat, the next position cache] from one prior_step call. */
  async callWithCache(previousCodes, cache, index, labels = null) {
    const inputs = {
      previous_codes: [previousCodes, [previousCodes.length]],
      index: [Int32Array.of(index), []],
      ...cache,
    };
    if (labels !== null) {
      inputs.labels = [labels, [labels.length]];
    }
    const outputs = await this.step(inputs);
    return [outputs.logits[0], changed(cache, outputs)];
  }

  /** [the next row cache, the position cache of the next row] from one prior_row call. */
  async completeRowWith(rowCodes, rowCache, labels = null) {
    const batch = Object.values(rowCache)[0][1][0]; // every cache tensor is [batch, ...]
    const inputs = { row_codes: [rowCodes, [batch, rowCodes.length / batch]], ...rowCache };
    if (labels !== null) {
      inputs.labels = [labels, [labels.length]];
    }
    const outputs = await this.row(inputs);
    const cache = Object.fromEntries(
      Object.entries(outputs)
        .filter(([name]) => name.startsWith(NEXT + "cache_"))
        .map(([name, tensor]) => [name.slice(NEXT.length), tensor]),
    );
    return [changed(rowCache, outputs), cache];
  }
}

/**
 * `cache` with a step's `outputs` applied: next_NAME replaces NAME, update_NAME is written into NAME (in
 * place) at start_NAME, clamped as XLA's dynamic update slice clamps it.
 */
function changed(cache, outputs) {
  const result = { ...cache };
  for (const [name, [data, dims]] of Object.entries(cache)) {
    if (NEXT + name in outputs) {
      result[name] = outputs[NEXT + name];
    } else if (UPDATE + name in outputs) {
      const [update, updateDims] = outputs[UPDATE + name];
      const starts = Array.from(outputs[START + name][0], (start, axis) =>
        Math.min(Math.max(Number(start), 0), dims[axis] - updateDims[axis]));
      writeSlice(data, dims, update, updateDims, starts);
    }
  }
  return result;
}

/** Writes `update` (dims `updateDims`) into `data` (row-major, dims `dims`) at `starts`, one per axis. */
function writeSlice(data, dims, update, updateDims, starts) {
  const rank = dims.length;
  const strides = new Array(rank).fill(1);
  for (let axis = rank - 2; axis >= 0; axis--) {
    strides[axis] = strides[axis + 1] * dims[axis + 1];
  }
  const inner = updateDims[rank - 1]; // the innermost axis is copied as one run
  const index = new Array(rank - 1).fill(0); // the position among the runs, as an odometer
  for (let run = 0; inner > 0 && run < update.length / inner; run++) {
    let offset = starts[rank - 1];
    for (let axis = 0; axis < rank - 1; axis++) {
      offset += (starts[axis] + index[axis]) * strides[axis];
    }
    data.set(update.subarray(run * inner, (run + 1) * inner), offset);
    for (let axis = rank - 2; axis >= 0 && ++index[axis] === updateDims[axis]; axis--) {
      index[axis] = 0;
    }
  }
}

/** Checks the arguments common to the samplers; returns the labels of a model call (doubled if guided). */
function checkedLabels(temperature, labels, guidance, noLabel) {
  if (!(temperature > 0)) {
    throw new Error(`temperature must be > 0. Received: temperature=${temperature}`);
  }
  if (guidance !== 1 && !(guidance >= 0 && labels !== null && noLabel !== null)) {
    throw new Error(`guidance ${guidance} needs a value >= 0, labels and noLabel (the prior's num_classes)`);
  }
  if (guidance === 1) {
    return labels;
  }
  const doubled = new Int32Array(2 * labels.length).fill(noLabel); // the labels, then "no label"
  doubled.set(labels);
  return doubled;
}

/** The rows `[num, width]` of `array` twice (both halves of the guided batch), or `array` unguided. */
function modelRows(array, guided) {
  if (!guided) {
    return array;
  }
  const doubled = new Int32Array(2 * array.length);
  doubled.set(array);
  doubled.set(array, array.length);
  return doubled;
}

/**
 * The logits drawn from, [num, width] flat: the model's own, or with guidance u + guidance * (c - u) from
 * its doubled batch [2 * num, width] (c the first half, u the second), each operation in float32.
 */
function guidedLogits(logits, num, width, guidance) {
  if (guidance === 1) {
    return logits;
  }
  const guidance32 = Math.fround(guidance);
  const result = new Float32Array(num * width); // a Float32Array rounds the last sum to float32
  for (let i = 0; i < num * width; i++) {
    const u = logits[num * width + i];
    result[i] = u + Math.fround(guidance32 * Math.fround(logits[i] - u));
  }
  return result;
}

/** argmax over k < size of logits[offset + k] + temperature32 * gumbel[noise + k] in float32: the first
 * of equal values, as np.argmax. */
function drawCode(logits, offset, gumbel, noise, size, temperature32) {
  let best = 0;
  let bestValue = -Infinity;
  for (let k = 0; k < size; k++) {
    const value = Math.fround(logits[offset + k] + Math.fround(temperature32 * gumbel[noise + k]));
    if (value > bestValue) {
      best = k;
      bestValue = value;
    }
  }
  return best;
}

/**
 * Draws code grids position by position over a cached step: vqgen/noise_sampler.py's sample_raster.
 *
 * Position t (raster order) feeds the codes drawn at t - 1 to step.callWithCache, which resolves to the
 * logits of t and the next cache; the codes of t are argmax(logits + temperature * gumbel[:, t]). A step
 * with completeRow (the PixelCNN's vertical stack) gets each row's codes once the row is drawn and
 * resolves to the next row's caches.
 *
 * @param {CachedStep} step - the prior's cached step.
 * @param {Float32Array} gumbel - noise [N, rows, cols, K] flat, e.g. from gumbelNoise.
 * @param {number[]} shape - [N, rows, cols, K].
 * @param {number} temperature - > 0.
 * @param {(Int32Array|null)} labels - [N] for a class-conditional prior, else null.
 * @param {number} guidance - >= 0; 1 draws from the conditional logits alone.
 * @param {(number|null)} noLabel - the "no label" class (the prior's num_classes); needed when guidance != 1.
 * @returns {Promise<Int32Array>} codes [N, rows, cols] flat.
 * @throws {Error} a noise of the wrong size, temperature <= 0, or guidance != 1 without labels and noLabel.
 * @example const codes = await sampleRaster(step, gumbelNoise(16 * 49 * 256), [16, 7, 7, 256]);
 */
export async function sampleRaster(step, gumbel, shape, temperature = 1, labels = null, guidance = 1, noLabel = null) {
  const [num, rows, cols, size] = shape;
  if (gumbel.length !== num * rows * cols * size) {
    throw new Error(`gumbel must hold N*rows*cols*K = ${num * rows * cols * size} values, not ${gumbel.length}`);
  }
  const modelLabels = checkedLabels(temperature, labels, guidance, noLabel);
  const guided = guidance !== 1;
  const temperature32 = Math.fround(temperature);
  const batch = guided ? 2 * num : num;
  const positions = rows * cols;
  const codes = new Int32Array(num * positions);
  let cache = await step.initialCache(batch);
  const byRows = step.completeRow !== undefined;
  let rowCache = byRows ? await step.initialRowCache(batch) : null;
  let previousCodes = new Int32Array(batch);
  for (let index = 0; index < positions; index++) {
    let logits;
    [logits, cache] = await step.callWithCache(previousCodes, cache, index, modelLabels);
    logits = guidedLogits(logits, num, size, guidance);
    const drawn = new Int32Array(num);
    for (let n = 0; n < num; n++) {
      drawn[n] = drawCode(logits, n * size, gumbel, (n * positions + index) * size, size, temperature32);
      codes[n * positions + index] = drawn[n];
    }
    previousCodes = modelRows(drawn, guided);
    if (byRows && (index + 1) % cols === 0 && index + 1 < positions) { // a row is complete
      const row = new Int32Array(num * cols);
      for (let n = 0; n < num; n++) {
        row.set(codes.subarray(n * positions + index + 1 - cols, n * positions + index + 1), n * cols);
      }
      [rowCache, cache] = await step.completeRow(modelRows(row, guided), rowCache, modelLabels);
    }
  }
  return codes;
}
