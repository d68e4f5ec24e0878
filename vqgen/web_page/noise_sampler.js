// Sampling code grids from a prior's logits with the randomness given as input: the JavaScript twin of
// vqgen/noise_sampler.py, line by line, with the same noise layout (Gumbel noise [N, rows, cols, K] in
// raster order, flat). Position `t` is drawn by the Gumbel-max trick,
// argmax(logits[:, t] + temperature * gumbel[:, t]); with classifier-free guidance every call runs the
// doubled batch (the labels, then the "no label" class) and draws from u + guidance * (c - u). Each
// float32 operation is rounded to float32 (Math.fround) as NumPy computes it, so one noise tensor gives
// the same codes here as in Python. The model is behind one function, `priorLogits`.

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
 * Draws code grids position by position with one `priorLogits` call per position (vqgen/noise_sampler.py's
 * sample_with_noise).
 *
 * @param {function(Int32Array, number, (Int32Array|null)): Promise<Float32Array>} priorLogits - (codes
 *     [B, rows, cols] flat, B, labels [B] or null) -> logits [B, rows, cols, K] flat, e.g. prior_logits.onnx.
 * @param {Float32Array} gumbel - noise [N, rows, cols, K] flat, e.g. from gumbelNoise.
 * @param {number[]} shape - [N, rows, cols, K].
 * @param {number} temperature - > 0.
 * @param {(Int32Array|null)} labels - [N] for a class-conditional prior, else null.
 * @param {number} guidance - >= 0; 1 draws from the conditional logits alone.
 * @param {(number|null)} noLabel - the "no label" class (the prior's num_classes); needed when guidance != 1.
 * @returns {Promise<Int32Array>} codes [N, rows, cols] flat.
 * @throws {Error} a noise of the wrong size, temperature <= 0, or guidance != 1 without labels and noLabel.
 * @example const codes = await sampleWithNoise(logitsOf, gumbelNoise(16 * 49 * 256), [16, 7, 7, 256]);
 */
export async function sampleWithNoise(
  priorLogits, gumbel, shape, temperature = 1, labels = null, guidance = 1, noLabel = null,
) {
  const [num, rows, cols, size] = shape;
  if (gumbel.length !== num * rows * cols * size) {
    throw new Error(`gumbel must hold N*rows*cols*K = ${num * rows * cols * size} values, not ${gumbel.length}`);
  }
  if (!(temperature > 0)) {
    throw new Error(`temperature must be > 0. Received: temperature=${temperature}`);
  }
  const guided = guidance !== 1;
  if (guided && !(guidance >= 0 && labels !== null && noLabel !== null)) {
    throw new Error(`guidance ${guidance} needs a value >= 0, labels and noLabel (the prior's num_classes)`);
  }
  const temperature32 = Math.fround(temperature);
  const guidance32 = Math.fround(guidance);
  if (guided) { // the batch of every call: the grids with their labels, then with "no label"
    const doubled = new Int32Array(2 * num).fill(noLabel);
    doubled.set(labels);
    labels = doubled;
  }
  // The raster loop of prior.sampling.sample_raster with its full-pass step and noise draw.
  const positions = rows * cols;
  const codes = new Int32Array(num * positions); // code 0 where nothing is drawn yet
  const batchSize = guided ? 2 * num : num;
  for (let index = 0; index < positions; index++) {
    let batch = codes;
    if (guided) {
      batch = new Int32Array(2 * codes.length);
      batch.set(codes);
      batch.set(codes, codes.length);
    }
    const logits = await priorLogits(batch, batchSize, labels); // [B, positions, K]
    for (let n = 0; n < num; n++) {
      const conditional = (n * positions + index) * size;
      const unconditional = ((num + n) * positions + index) * size;
      const noise = (n * positions + index) * size;
      let best = 0;
      let bestValue = -Infinity;
      for (let k = 0; k < size; k++) {
        let value = logits[conditional + k];
        if (guided) {
          const u = logits[unconditional + k];
          value = Math.fround(u + Math.fround(guidance32 * Math.fround(value - u)));
        }
        value = Math.fround(value + Math.fround(temperature32 * gumbel[noise + k]));
        if (value > bestValue) { // the first of equal values, as np.argmax
          best = k;
          bestValue = value;
        }
      }
      codes[n * positions + index] = best;
    }
  }
  return codes;
}
