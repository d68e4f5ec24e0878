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

// ---------------------------------------------------------------------- MaskGIT's parallel decoding

/**
 * How many of `total` positions stay masked after each of `steps` steps: the cosine plan
 * (vqgen/noise_sampler.py's cosine_masked_counts).
 *
 * @param {number} steps - in [1, total].
 * @param {number} total - the positions of a grid.
 * @returns {Int32Array} [steps], strictly decreasing to 0.
 * @throws {Error} steps outside [1, total].
 * @example cosineMaskedCounts(4, 16); // Int32Array [14, 11, 6, 0]
 */
export function cosineMaskedCounts(steps, total) {
  if (!(Number.isInteger(steps) && steps >= 1 && steps <= total)) {
    throw new Error(`steps must be in [1, ${total}] (rows * cols). Received: steps=${steps}`);
  }
  const counts = new Int32Array(steps);
  let left = total;
  for (let step = 0; step < steps; step++) {
    const wanted = Math.floor(total * Math.cos(((step + 1) / steps) * (Math.PI / 2)));
    left = Math.min(Math.max(wanted, steps - step - 1), left - 1);
    counts[step] = left;
  }
  return counts;
}

/** The float32 sum of `values` as NumPy's pairwise summation adds a contiguous float32 row. */
function pairwiseSum(values) {
  const n = values.length;
  if (n < 8) {
    let sum = 0;
    for (let i = 0; i < n; i++) {
      sum = Math.fround(sum + values[i]);
    }
    return sum;
  }
  if (n <= 128) {
    const partial = Float32Array.from(values.subarray(0, 8)); // eight running sums
    let i = 8;
    for (; i < n - (n % 8); i += 8) {
      for (let j = 0; j < 8; j++) {
        partial[j] += values[i + j];
      }
    }
    const f = Math.fround;
    let sum = f(
      f(f(partial[0] + partial[1]) + f(partial[2] + partial[3])) +
        f(f(partial[4] + partial[5]) + f(partial[6] + partial[7])),
    );
    for (; i < n; i++) {
      sum = f(sum + values[i]);
    }
    return sum;
  }
  let half = Math.floor(n / 2);
  half -= half % 8;
  return Math.fround(pairwiseSum(values.subarray(0, half)) + pairwiseSum(values.subarray(half)));
}

/** log(softmax(row))[index] in float32, as vqgen/noise_sampler.py's _log_softmax computes it. */
function logSoftmaxAt(row, index) {
  let largest = -Infinity;
  for (let k = 0; k < row.length; k++) {
    largest = Math.max(largest, row[k]);
  }
  const exps = new Float32Array(row.length); // a Float32Array rounds each value to float32
  for (let k = 0; k < row.length; k++) {
    exps[k] = Math.exp(Math.fround(row[k] - largest));
  }
  return Math.fround(Math.fround(row[index] - largest) - Math.fround(Math.log(pairwiseSum(exps))));
}

/**
 * MaskGIT's iterative decoding from all-masked grids, one priorLogits call per step: vqgen/noise_sampler.py's
 * maskgit_sample_with_noise.
 *
 * The grids start as the mask token K everywhere; step t of steps: (1) draws every masked position p of
 * grid n as argmax(logits[n, p] + temperature * gumbel[n, t, p]); (2) scores each draw by
 * log_softmax(logits[n, p])[drawn] + confidenceNoise * (1 - (t + 1) / steps) * confidenceGumbel[n, t, p],
 * the positions decoded before scoring +Infinity; (3) keeps the draws but for the
 * cosineMaskedCounts(steps, rows * cols)[t] lowest scores (ties broken by position), which become K again.
 *
 * @param {function(Int32Array, number, (Int32Array|null)): Promise<Float32Array>} priorLogits - (codes
 *     [B, rows, cols] flat in [0, K], B, labels [B] or null) -> logits [B, rows, cols, K] flat.
 * @param {Float32Array} gumbel - noise [N, steps, rows, cols, K] flat.
 * @param {Float32Array} confidenceGumbel - noise [N, steps, rows, cols] flat.
 * @param {number[]} shape - [N, steps, rows, cols, K].
 * @param {number} confidenceNoise - the confidences' noise scale at the first step (the export config's
 *     noise.confidence_noise).
 * @param {number} temperature - > 0.
 * @param {(Int32Array|null)} labels - [N] for a class-conditional prior, else null.
 * @param {number} guidance - >= 0; 1 draws from the conditional logits alone.
 * @param {(number|null)} noLabel - the "no label" class (the prior's num_classes); needed when guidance != 1.
 * @returns {Promise<Int32Array>} codes [N, rows, cols] flat.
 * @throws {Error} noise of the wrong size, steps outside [1, rows * cols], temperature <= 0, or
 *     guidance != 1 without labels and noLabel.
 * @example const codes = await maskgitSampleWithNoise(logitsOf, g, c, [4, 8, 7, 7, 256], 4.5);
 */
export async function maskgitSampleWithNoise(
  priorLogits, gumbel, confidenceGumbel, shape, confidenceNoise, temperature = 1, labels = null, guidance = 1,
  noLabel = null,
) {
  const [num, steps, rows, cols, maskId] = shape; // the mask token is K
  const positions = rows * cols;
  if (gumbel.length !== num * steps * positions * maskId || confidenceGumbel.length !== num * steps * positions) {
    throw new Error(
      `gumbel must hold N*steps*rows*cols*K = ${num * steps * positions * maskId} values and confidenceGumbel ` +
        `N*steps*rows*cols = ${num * steps * positions}, not ${gumbel.length} and ${confidenceGumbel.length}`,
    );
  }
  const counts = cosineMaskedCounts(steps, positions);
  const modelLabels = checkedLabels(temperature, labels, guidance, noLabel);
  const guided = guidance !== 1;
  const temperature32 = Math.fround(temperature);
  const codes = new Int32Array(num * positions).fill(maskId);
  for (let step = 0; step < steps; step++) {
    const batch = modelRows(codes, guided);
    const logits = guidedLogits(await priorLogits(batch, batch.length / positions, modelLabels), num, positions * maskId, guidance);
    const annealing = Math.fround(
      Math.fround(confidenceNoise) * Math.fround(1 - Math.fround((step + 1) / steps)),
    );
    for (let n = 0; n < num; n++) {
      const drawn = new Int32Array(positions);
      const confidence = new Float32Array(positions);
      for (let p = 0; p < positions; p++) {
        const at = n * positions + p;
        if (codes[at] !== maskId) {
          drawn[p] = codes[at];
          confidence[p] = Infinity;
          continue;
        }
        const offset = at * maskId;
        const noise = ((n * steps + step) * positions + p) * maskId;
        drawn[p] = drawCode(logits, offset, gumbel, noise, maskId, temperature32);
        const logProb = logSoftmaxAt(logits.subarray(offset, offset + maskId), drawn[p]);
        const scaled = Math.fround(annealing * confidenceGumbel[(n * steps + step) * positions + p]);
        confidence[p] = logProb + scaled; // a Float32Array rounds the sum to float32
      }
      // the positions in ascending order of confidence, ties by position (a stable sort, as np.argsort's)
      const order = Array.from({ length: positions }, (_, p) => p).sort(
        (a, b) => confidence[a] - confidence[b] || a - b,
      );
      for (let rank = 0; rank < positions; rank++) {
        codes[n * positions + order[rank]] = rank < counts[step] ? maskId : drawn[order[rank]];
      }
    }
  }
  return codes;
}
