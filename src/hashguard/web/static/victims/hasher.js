// hashguard's browser hasher: PDQ, vPDQ, MD5 and SHA-256 of a file, computed on the device.
//
// A self-contained ES module (no imports, no dependency, no request of its own), written from
// the PDQ and vPDQ specifications as hashguard's Python code implements them
// (signals/pdq.py, signals/pdq_kernel.py, media/luma.py, media/image.py, signals/vpdq.py,
// media/video.py). Served by hashguard at /static/victims/hasher.js.
//
//   import { hashFile, hashPixels } from "/static/victims/hasher.js";
//   const values = await hashFile(file, { onProgress: (done, total) => ... });
//   // [{signal: "pdq", value: "<64 hex>", quality: 100}, {signal: "md5", value}, ...]
//
// hashFile(file) gives what one `hashguard hash` JSON line per signal gives, without `path`:
//   images: pdq (value and quality), md5, sha256 of the file's bytes;
//   videos: vpdq (hashguard's text form, one "frame,quality,hash,seconds" line per sampled
//           frame; quality = the frames' mean, frames = their count), md5, sha256;
//   other files: md5, sha256.
// Media the browser cannot decode gets its digests alone, as `hashguard hash` gives them; the
// list then carries the reason in its `failed` property.
//
// Where it runs: images and digests work in a (module) Web Worker, since images are decoded
// with createImageBitmap and read through an OffscreenCanvas. Videos need the main thread:
// frames come from a <video> element seeked once a second and drawn on a canvas, which a
// worker does not have. In a worker a video gets its digests alone (with `failed` saying why).
//
// Conformance: hashPixels(rgba, width, height) repeats the Python arithmetic (float32 where
// it is float32, the same downsampling path for each size), so the same pixels give the same
// hash and quality, bit for bit at every size: both paths (exact up to 1.2 MP, weighted above)
// add in float32 in the same fixed order as hashguard's kernels.
// Decoding differs from hashguard's: the browser decodes JPEGs at full size (the Python side
// at a reduced DCT scale above 512 px), applies the EXIF orientation as the Python side does,
// and gives no colour-management (colorSpaceConversion "none"). Transparent pixels: a canvas
// gives black under alpha 0 where hashguard keeps the stored colour, so hashes of images with
// transparency may differ. Video frames are the browser's RGB (the Python side reads the luma
// plane); frame numbers count the samples, as the browser does not expose the frame rate.

const MIN_SIDE = 5;
const EXACT_MAX_PIXELS = 1_200_000;
const MAX_PIXELS = 64_000_000;
const WHOLE_FILE_BYTES = 128 * 1024 * 1024; // read at once (WebCrypto digests); else streamed
const CHUNK_BYTES = 4 * 1024 * 1024;
const SNIFF_BYTES = 512;

// ---- PDQ ----------------------------------------------------------------------------------

const fround = Math.fround;

function dctMatrix() {
  // As the reference builds it: float scale times double cosine, rounded to float32.
  const scale = fround(Math.sqrt(2.0 / 64.0));
  const step = Math.PI / 2.0 / 64.0;
  const matrix = new Float32Array(16 * 64);
  for (let i = 0; i < 16; i++) {
    for (let j = 0; j < 64; j++) {
      matrix[i * 64 + j] = scale * Math.cos(step * (i + 1) * (2 * j + 1));
    }
  }
  return matrix;
}

const DCT_16X64 = dctMatrix();

function jaroszWindow(size) {
  return Math.floor((size + 127) / 128);
}

/** Luma (BT.601) of RGBA pixels, float32, alpha dropped: as hashguard's luma_from_rgb. */
function lumaOf(rgba, count) {
  const out = new Float32Array(count);
  for (let p = 0, q = 0; p < count; p++, q += 4) {
    out[p] = rgba[q] * 0.299 + rgba[q + 1] * 0.587 + rgba[q + 2] * 0.114;
  }
  return out;
}

// The reference's 1-D box filter along each row, float32 running sum (Float32Array stores
// round every step to float32, as numba's float32 arithmetic does).
function boxAlongRows(src, dst, rows, cols, window) {
  const half = Math.floor((window + 2) / 2);
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    let acc = 0;
    let ri = base;
    let li = base;
    let oi = base;
    let count = 0;
    for (let n = 0; n < half - 1; n++) {
      acc = fround(acc + src[ri++]);
      count++;
    }
    for (let n = 0; n < window - half + 1; n++) {
      acc = fround(acc + src[ri++]);
      count++;
      dst[oi++] = acc / count;
    }
    for (let n = 0; n < cols - window; n++) {
      acc = fround(acc + src[ri++]);
      acc = fround(acc - src[li++]);
      dst[oi++] = acc / count;
    }
    for (let n = 0; n < half - 1; n++) {
      acc = fround(acc - src[li++]);
      count--;
      dst[oi++] = acc / count;
    }
  }
}

// The same filter down every column at once, with one float32 running sum per column.
function boxAlongColumns(src, dst, rows, cols, window) {
  const half = Math.floor((window + 2) / 2);
  const acc = new Float32Array(cols);
  let ri = 0;
  let li = 0;
  let oi = 0;
  let count = 0;
  for (let n = 0; n < half - 1; n++, ri += cols) {
    for (let j = 0; j < cols; j++) acc[j] += src[ri + j];
    count++;
  }
  for (let n = 0; n < window - half + 1; n++, ri += cols, oi += cols) {
    count++;
    for (let j = 0; j < cols; j++) {
      acc[j] += src[ri + j];
      dst[oi + j] = acc[j] / count;
    }
  }
  for (let n = 0; n < rows - window; n++, ri += cols, li += cols, oi += cols) {
    for (let j = 0; j < cols; j++) {
      acc[j] += src[ri + j];
      acc[j] -= src[li + j];
      dst[oi + j] = acc[j] / count;
    }
  }
  for (let n = 0; n < half - 1; n++, li += cols, oi += cols) {
    count--;
    for (let j = 0; j < cols; j++) {
      acc[j] -= src[li + j];
      dst[oi + j] = acc[j] / count;
    }
  }
}

/** Blur and decimate float32 luma to 64x64 exactly as the reference does. */
function exact64x64(luma, rows, cols) {
  if (rows === 64 && cols === 64) return Float32Array.from(luma);
  const work = Float32Array.from(luma); // the filter runs in place
  const spare = new Float32Array(rows * cols);
  const alongRows = jaroszWindow(cols);
  const alongCols = jaroszWindow(rows);
  for (let pass = 0; pass < 2; pass++) {
    boxAlongRows(work, spare, rows, cols, alongRows);
    boxAlongColumns(spare, work, rows, cols, alongCols);
  }
  const out = new Float32Array(64 * 64);
  for (let i = 0; i < 64; i++) {
    const row = Math.trunc(((i + 0.5) * rows) / 64);
    for (let j = 0; j < 64; j++) {
      out[i * 64 + j] = work[row * cols + Math.trunc(((j + 0.5) * cols) / 64)];
    }
  }
  return out;
}

/**
 * The reference's blur-and-decimate map along one axis of ``full`` pixels, as 64 short rows of
 * weights: output sample i is the sum of weights[i][k] times pixel starts[i] + k (two passes
 * of the edge-normalised box filter, read at the decimation point), float32 as hashguard
 * stores them.
 */
function axisMap(full) {
  const window = jaroszWindow(full);
  const half = Math.floor((window + 2) / 2);
  const low = (x) => Math.max(x - (window - half), 0);
  const high = (x) => Math.min(x + (half - 1), full - 1);
  const starts = new Int32Array(64);
  const rows = [];
  for (let i = 0; i < 64; i++) {
    const p = Math.trunc(((i + 0.5) * full) / 64);
    const pLow = low(p);
    const pHigh = high(p);
    const inner = pHigh - pLow + 1;
    const first = low(pLow);
    const last = high(pHigh);
    // Output = mean over o in box(p) of the mean over box(o): a difference array, integrated.
    const diff = new Float64Array(last - first + 2);
    for (let o = pLow; o <= pHigh; o++) {
      const lo = low(o);
      const hi = high(o);
      const amount = 1.0 / (hi - lo + 1) / inner;
      diff[lo - first] += amount;
      diff[hi - first + 1] -= amount;
    }
    const weights = new Float32Array(last - first + 1);
    let sum = 0;
    for (let k = 0; k < weights.length; k++) {
      sum += diff[k];
      weights[k] = sum;
    }
    starts[i] = first;
    rows.push(weights);
  }
  return { starts, rows };
}

/**
 * The reference's 64x64 downsample as R . L . C^T (hashguard's weighted path), from RGBA:
 * one pass over the pixels, each luma row computed once and added into the output rows whose
 * band covers it. Float32 sums in the order hashguard's kernel adds (each output row's band
 * rows in turn, then its columns), so the bits are the Python side's.
 */
function weighted64x64(rgba, rows, cols) {
  const rowMap = axisMap(rows);
  const colMap = axisMap(cols);
  const partial = new Float32Array(64 * cols);
  const line = new Float32Array(cols);
  // The output rows whose band covers each input row: bands overlap, so a few per row.
  let firstBand = 0;
  for (let r = 0; r < rows; r++) {
    while (firstBand < 64 && rowMap.starts[firstBand] + rowMap.rows[firstBand].length <= r) {
      firstBand++;
    }
    if (firstBand === 64) break;
    if (rowMap.starts[firstBand] > r) continue;
    for (let j = 0, q = r * cols * 4; j < cols; j++, q += 4) {
      line[j] = rgba[q] * 0.299 + rgba[q + 1] * 0.587 + rgba[q + 2] * 0.114;
    }
    for (let i = firstBand; i < 64 && rowMap.starts[i] <= r; i++) {
      const k = r - rowMap.starts[i];
      const weights = rowMap.rows[i];
      if (k >= weights.length) continue;
      const w = weights[k];
      if (w === 0) continue;
      const base = i * cols;
      for (let j = 0; j < cols; j++) partial[base + j] = fround(partial[base + j] + fround(w * line[j]));
    }
  }
  const out = new Float32Array(64 * 64);
  for (let j = 0; j < 64; j++) {
    const start = colMap.starts[j];
    const weights = colMap.rows[j];
    const n = Math.min(weights.length, cols - start);
    for (let i = 0; i < 64; i++) {
      const base = i * cols + start;
      let total = 0;
      for (let k = 0; k < n; k++) total = fround(total + fround(weights[k] * partial[base + k]));
      out[i * 64 + j] = total;
    }
  }
  return out;
}

function gradient(u, v) {
  // The reference quantises each step to whole percent of full scale, truncating.
  return Math.abs(Math.trunc(fround(fround(fround(u - v) * 100) / 255)));
}

/** The reference's quality metric: quantised gradient sum of the 64x64 buffer, 0..100. */
function quality(buffer) {
  let gradients = 0;
  for (let i = 0; i < 64; i++) {
    for (let j = 0; j < 64; j++) {
      const u = buffer[i * 64 + j];
      if (i < 63) gradients += gradient(u, buffer[(i + 1) * 64 + j]);
      if (j < 63) gradients += gradient(u, buffer[i * 64 + j + 1]);
    }
  }
  return Math.min(Math.floor(gradients / 90), 100);
}

// a . b^T, a float32 running sum over k in the reference's order.
function timesTransposed(a, aRows, b, bRows, inner) {
  const out = new Float32Array(aRows * bRows);
  for (let i = 0; i < aRows; i++) {
    for (let j = 0; j < bRows; j++) {
      let total = 0;
      for (let k = 0; k < inner; k++) {
        total = fround(total + fround(a[i * inner + k] * b[j * inner + k]));
      }
      out[i * bRows + j] = total;
    }
  }
  return out;
}

function transposed64(buffer) {
  const out = new Float32Array(64 * 64);
  for (let i = 0; i < 64; i++) {
    for (let j = 0; j < 64; j++) out[j * 64 + i] = buffer[i * 64 + j];
  }
  return out;
}

/** D A D^T for the 16x64 DCT matrix D, summed in the reference's order. */
function dct16x16(buffer) {
  const partial = timesTransposed(DCT_16X64, 16, transposed64(buffer), 64, 64);
  return timesTransposed(partial, 16, DCT_16X64, 16, 64);
}

// Torben's selection, as the reference uses: the value at rank (n+1)/2 without sorting.
function torbenMedian(values) {
  const n = values.length;
  let low = values[0];
  let high = values[0];
  for (let i = 1; i < n; i++) {
    low = Math.min(low, values[i]);
    high = Math.max(high, values[i]);
  }
  const half = Math.floor((n + 1) / 2);
  let less;
  let greater;
  let equal;
  let maxBelow;
  let minAbove;
  let guess;
  for (;;) {
    guess = fround(fround(low + high) / 2);
    less = 0;
    greater = 0;
    equal = 0;
    maxBelow = low;
    minAbove = high;
    for (let i = 0; i < n; i++) {
      const v = values[i];
      if (v < guess) {
        less++;
        if (v > maxBelow) maxBelow = v;
      } else if (v > guess) {
        greater++;
        if (v < minAbove) minAbove = v;
      } else {
        equal++;
      }
    }
    if (less <= half && greater <= half) break;
    if (less > greater) high = maxBelow;
    else low = minAbove;
  }
  if (less >= half) return maxBelow;
  if (less + equal >= half) return guess;
  return minAbove;
}

const HEX = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, "0"));

function hexOf(bytes) {
  let text = "";
  for (const b of bytes) text += HEX[b];
  return text;
}

/** 256 bits, coefficient > median, in the order of the hex string (bit 255 first). */
function hashBits(dct) {
  const median = torbenMedian(dct);
  const out = new Uint8Array(32);
  for (let k = 0; k < 256; k++) {
    if (dct[k] > median) out[31 - (k >> 3)] |= 1 << (k & 7);
  }
  return hexOf(out);
}

/**
 * PDQ of RGBA pixels (row-major, 4 bytes a pixel; alpha dropped): ``{value, quality}``, the
 * same hash and quality hashguard's Python PDQ gives for the same pixels. Images under 5 px a
 * side hash as all zeros, quality 0 (as the reference).
 */
export function hashPixels(rgba, width, height) {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 0 || height < 0) {
    throw new RangeError(`hashPixels: width and height must be whole numbers, got ${width}x${height}`);
  }
  if (rgba.length < width * height * 4) {
    throw new RangeError(
      `hashPixels: ${width}x${height} pixels need ${width * height * 4} bytes, got ${rgba.length}`,
    );
  }
  if (width < MIN_SIDE || height < MIN_SIDE) return { value: "0".repeat(64), quality: 0 };
  const buffer =
    width * height <= EXACT_MAX_PIXELS
      ? exact64x64(lumaOf(rgba, width * height), height, width)
      : weighted64x64(rgba, height, width);
  return { value: hashBits(dct16x16(buffer)), quality: quality(buffer) };
}

// ---- MD5 (RFC 1321) and SHA-256 (FIPS 180-4), incremental --------------------------------

const MD5_SHIFTS = [
  7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9,
  14, 20, 5, 9, 14, 20, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 6, 10, 15,
  21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21,
];
const MD5_SINES = Int32Array.from({ length: 64 }, (_, i) =>
  Math.floor(Math.abs(Math.sin(i + 1)) * 2 ** 32),
);

/** A digest fed in pieces: blocks of 64 bytes, padded with the bit length at the end. */
class BlockDigest {
  constructor(bigEndian) {
    this.bigEndian = bigEndian;
    this.pending = new Uint8Array(64);
    this.pendingLength = 0;
    this.total = 0;
  }

  update(bytes) {
    let offset = 0;
    this.total += bytes.length;
    if (this.pendingLength > 0) {
      const take = Math.min(64 - this.pendingLength, bytes.length);
      this.pending.set(bytes.subarray(0, take), this.pendingLength);
      this.pendingLength += take;
      offset = take;
      if (this.pendingLength < 64) return this;
      this.blocks(this.pending, 0, 64);
      this.pendingLength = 0;
    }
    const whole = offset + Math.floor((bytes.length - offset) / 64) * 64;
    this.blocks(bytes, offset, whole);
    this.pending.set(bytes.subarray(whole));
    this.pendingLength = bytes.length - whole;
    return this;
  }

  hex() {
    const bits = this.total * 8;
    const tail = new Uint8Array(this.pendingLength < 56 ? 64 : 128);
    tail.set(this.pending.subarray(0, this.pendingLength));
    tail[this.pendingLength] = 0x80;
    const view = new DataView(tail.buffer);
    const high = Math.floor(bits / 2 ** 32);
    const low = bits >>> 0;
    if (this.bigEndian) {
      view.setUint32(tail.length - 8, high);
      view.setUint32(tail.length - 4, low);
    } else {
      view.setUint32(tail.length - 8, low, true);
      view.setUint32(tail.length - 4, high, true);
    }
    this.blocks(tail, 0, tail.length);
    return hexOf(this.digestBytes());
  }
}

class Md5 extends BlockDigest {
  constructor() {
    super(false);
    this.state = Int32Array.of(0x67452301, 0xefcdab89 | 0, 0x98badcfe | 0, 0x10325476);
    this.words = new Int32Array(16);
  }

  blocks(bytes, start, end) {
    const s = this.state;
    const x = this.words;
    for (let at = start; at < end; at += 64) {
      for (let i = 0; i < 16; i++) {
        const p = at + i * 4;
        x[i] = bytes[p] | (bytes[p + 1] << 8) | (bytes[p + 2] << 16) | (bytes[p + 3] << 24);
      }
      let a = s[0];
      let b = s[1];
      let c = s[2];
      let d = s[3];
      for (let i = 0; i < 64; i++) {
        let f;
        let g;
        if (i < 16) {
          f = (b & c) | (~b & d);
          g = i;
        } else if (i < 32) {
          f = (d & b) | (~d & c);
          g = (5 * i + 1) & 15;
        } else if (i < 48) {
          f = b ^ c ^ d;
          g = (3 * i + 5) & 15;
        } else {
          f = c ^ (b | ~d);
          g = (7 * i) & 15;
        }
        const sum = (a + f + MD5_SINES[i] + x[g]) | 0;
        const shift = MD5_SHIFTS[i];
        a = d;
        d = c;
        c = b;
        b = (b + ((sum << shift) | (sum >>> (32 - shift)))) | 0;
      }
      s[0] += a;
      s[1] += b;
      s[2] += c;
      s[3] += d;
    }
  }

  digestBytes() {
    const out = new Uint8Array(16);
    new DataView(out.buffer).setInt32(0, this.state[0], true);
    new DataView(out.buffer).setInt32(4, this.state[1], true);
    new DataView(out.buffer).setInt32(8, this.state[2], true);
    new DataView(out.buffer).setInt32(12, this.state[3], true);
    return out;
  }
}

// The first 32 bits of the fractional parts of the cube roots of the first 64 primes.
const SHA256_K = Int32Array.of(
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
);

class Sha256 extends BlockDigest {
  constructor() {
    super(true);
    this.state = Int32Array.of(
      0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
    );
    this.words = new Int32Array(64);
  }

  blocks(bytes, start, end) {
    const s = this.state;
    const w = this.words;
    for (let at = start; at < end; at += 64) {
      for (let i = 0; i < 16; i++) {
        const p = at + i * 4;
        w[i] = (bytes[p] << 24) | (bytes[p + 1] << 16) | (bytes[p + 2] << 8) | bytes[p + 3];
      }
      for (let i = 16; i < 64; i++) {
        const x = w[i - 15];
        const y = w[i - 2];
        const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
        const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
        w[i] = (w[i - 16] + s0 + w[i - 7] + s1) | 0;
      }
      let a = s[0];
      let b = s[1];
      let c = s[2];
      let d = s[3];
      let e = s[4];
      let f = s[5];
      let g = s[6];
      let h = s[7];
      for (let i = 0; i < 64; i++) {
        const s1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
        const choose = (e & f) ^ (~e & g);
        const t1 = (h + s1 + choose + SHA256_K[i] + w[i]) | 0;
        const s0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
        const majority = (a & b) ^ (a & c) ^ (b & c);
        const t2 = (s0 + majority) | 0;
        h = g;
        g = f;
        f = e;
        e = (d + t1) | 0;
        d = c;
        c = b;
        b = a;
        a = (t1 + t2) | 0;
      }
      s[0] += a;
      s[1] += b;
      s[2] += c;
      s[3] += d;
      s[4] += e;
      s[5] += f;
      s[6] += g;
      s[7] += h;
    }
  }

  digestBytes() {
    const out = new Uint8Array(32);
    const view = new DataView(out.buffer);
    for (let i = 0; i < 8; i++) view.setInt32(i * 4, this.state[i]);
    return out;
  }
}

/** MD5 of bytes (a Uint8Array or ArrayBuffer), as 32 hex digits. */
export function md5Hex(bytes) {
  return new Md5().update(asBytes(bytes)).hex();
}

/** SHA-256 of bytes, computed in JavaScript (no WebCrypto needed), as 64 hex digits. */
export function sha256Hex(bytes) {
  return new Sha256().update(asBytes(bytes)).hex();
}

function asBytes(bytes) {
  return bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
}

async function digests(file, progress) {
  const subtle = globalThis.crypto && globalThis.crypto.subtle;
  if (subtle && file.size <= WHOLE_FILE_BYTES) {
    const bytes = new Uint8Array(await file.arrayBuffer());
    const sha256 = hexOf(new Uint8Array(await subtle.digest("SHA-256", bytes)));
    const md5 = md5Hex(bytes);
    progress(file.size);
    return { md5, sha256 };
  }
  // Streamed in chunks: memory stays small however large the file is.
  const md5 = new Md5();
  const sha256 = new Sha256();
  for (let at = 0; at < file.size; at += CHUNK_BYTES) {
    const chunk = new Uint8Array(await file.slice(at, at + CHUNK_BYTES).arrayBuffer());
    md5.update(chunk);
    sha256.update(chunk);
    progress(Math.min(file.size, at + CHUNK_BYTES));
  }
  return { md5: md5.hex(), sha256: sha256.hex() };
}

// ---- Files --------------------------------------------------------------------------------

/** "image", "video" or "other", from the first bytes, as hashguard's media.formats.sniff. */
function kindOf(head) {
  const at = (offset, text) => {
    for (let i = 0; i < text.length; i++) {
      if (head[offset + i] !== text.charCodeAt(i)) return false;
    }
    return true;
  };
  if (head.length === 0) return "other";
  if (head[0] === 0xff && head[1] === 0xd8 && head[2] === 0xff) return "image";
  if (at(0, "\x89PNG\r\n\x1a\n") || at(0, "GIF87a") || at(0, "GIF89a")) return "image";
  if (at(0, "RIFF") && at(8, "WEBP")) return "image";
  if (at(0, "RIFF") && at(8, "AVI ")) return "video";
  if (at(0, "BM") && head.length >= 26) return "image";
  if (at(0, "II*\x00") || at(0, "MM\x00*") || at(0, "II+\x00") || at(0, "MM\x00+")) return "image";
  if (at(4, "ftyp")) {
    const brand = String.fromCharCode(...head.subarray(8, 12));
    const end = Math.min(head.length, new DataView(head.buffer, head.byteOffset).getUint32(0));
    const compatible = new Set();
    for (let i = 16; i < end - 3; i += 4) compatible.add(String.fromCharCode(...head.subarray(i, i + 4)));
    const avif = compatible.has("avif") || compatible.has("avis");
    const heif = ["heic", "heix", "heim", "heis", "hevc", "hevx", "mif1", "msf1"].includes(brand);
    const generic = brand === "mif1" || brand === "msf1";
    if (brand === "avif" || brand === "avis" || ((generic || !heif) && avif) || heif) return "image";
    return "video";
  }
  if (at(0, "\x1a\x45\xdf\xa3")) return "video";
  if (head.length > 376 && head[0] === 0x47 && head[188] === 0x47 && head[376] === 0x47) return "video";
  if (at(0, "\x00\x00\x01\xba") || at(0, "FLV") || at(0, "OggS")) return "video";
  return "other";
}

function failure(error) {
  return error && error.message ? error.message : String(error);
}

/** RGBA pixels of an image file as a viewer shows it (EXIF orientation applied). */
async function decodeImage(file) {
  const bitmap = await createImageBitmap(file, {
    imageOrientation: "from-image",
    colorSpaceConversion: "none",
    premultiplyAlpha: "none",
  });
  try {
    const { width, height } = bitmap;
    if (width * height > MAX_PIXELS) {
      throw new RangeError(`${width}x${height} pixels is over the limit of ${MAX_PIXELS}`);
    }
    const canvas =
      typeof OffscreenCanvas === "function"
        ? new OffscreenCanvas(width, height)
        : Object.assign(document.createElement("canvas"), { width, height });
    const context = canvas.getContext("2d", { willReadFrequently: true });
    context.drawImage(bitmap, 0, 0);
    return { rgba: context.getImageData(0, 0, width, height).data, width, height };
  } finally {
    bitmap.close();
  }
}

function once(target, success, timeoutMs) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => finish(new Error(`the video gave no "${success}" event`)), timeoutMs);
    const onSuccess = () => finish(null);
    const onError = () => finish(new Error("the browser cannot decode this video"));
    function finish(error) {
      clearTimeout(timer);
      target.removeEventListener(success, onSuccess);
      target.removeEventListener("error", onError);
      if (error) reject(error);
      else resolve();
    }
    target.addEventListener(success, onSuccess);
    target.addEventListener("error", onError);
  });
}

async function seek(video, seconds) {
  const seeked = once(video, "seeked", 30_000);
  video.currentTime = seconds;
  await seeked;
}

/** The video's length in seconds; files without one in their header (some WebM) are asked
 * for it by a seek to the end, which makes the browser find it. */
async function durationOf(video) {
  if (Number.isFinite(video.duration)) return video.duration;
  await seek(video, 1e9);
  const duration = video.duration;
  if (!Number.isFinite(duration)) throw new Error("the video does not say how long it is");
  return duration;
}

// Python's round(): halves to even, as hashguard's mean quality.
function roundHalfEven(x) {
  const floor = Math.floor(x);
  const diff = x - floor;
  if (diff > 0.5) return floor + 1;
  if (diff < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

/** vPDQ in hashguard's text form, a frame a second, through the browser's own decoding. */
async function hashVideo(file, progress) {
  if (typeof document === "undefined") {
    throw new Error("videos are hashed on the page's main thread, not in a worker");
  }
  const url = URL.createObjectURL(file);
  const video = document.createElement("video");
  video.muted = true;
  video.playsInline = true;
  video.preload = "auto";
  try {
    const loaded = once(video, "loadeddata", 60_000);
    video.src = url;
    await loaded;
    const duration = await durationOf(video);
    const width = video.videoWidth;
    const height = video.videoHeight;
    if (width * height > MAX_PIXELS) {
      throw new RangeError(`${width}x${height} video frames are over the limit of ${MAX_PIXELS} pixels`);
    }
    const canvas = Object.assign(document.createElement("canvas"), { width, height });
    const context = canvas.getContext("2d", { willReadFrequently: true });
    const lines = [];
    let qualities = 0;
    const samples = Math.max(1, Math.ceil(duration));
    for (let second = 0; second < samples; second++) {
      await seek(video, second);
      context.drawImage(video, 0, 0, width, height);
      const { value, quality: frameQuality } = hashPixels(
        context.getImageData(0, 0, width, height).data, width, height,
      );
      lines.push(`${second},${frameQuality},${value},${second.toFixed(3)}`);
      qualities += frameQuality;
      progress(second + 1, samples);
    }
    return {
      signal: "vpdq",
      value: lines.join("\n"),
      quality: roundHalfEven(qualities / lines.length),
      frames: lines.length,
    };
  } finally {
    video.removeAttribute("src");
    video.load();
    URL.revokeObjectURL(url);
  }
}

/**
 * Hash a File (or Blob): a list of ``{signal, value, quality?}`` as ``hashguard hash`` gives
 * them (see the header). ``onProgress(done, total)`` is called as the work advances (bytes
 * digested, then frames hashed). Media that cannot be decoded gets its digests alone, and the
 * list's ``failed`` property says why.
 */
export async function hashFile(file, { onProgress } = {}) {
  const report = typeof onProgress === "function" ? onProgress : () => {};
  const head = new Uint8Array(await file.slice(0, SNIFF_BYTES).arrayBuffer());
  const kind = kindOf(head);
  const values = [];
  let failed = null;
  if (kind === "image") {
    try {
      const { rgba, width, height } = await decodeImage(file);
      values.push({ signal: "pdq", ...hashPixels(rgba, width, height) });
    } catch (error) {
      failed = `cannot decode the image: ${failure(error)}`;
    }
  }
  const { md5, sha256 } = await digests(file, (done) => report(done, file.size));
  if (kind === "video") {
    try {
      values.push(await hashVideo(file, report));
    } catch (error) {
      failed = `cannot decode the video: ${failure(error)}`;
    }
  }
  values.push({ signal: "md5", value: md5 }, { signal: "sha256", value: sha256 });
  if (failed) values.failed = failed;
  return values;
}
