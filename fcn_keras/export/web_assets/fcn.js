// fcn.js: run an fcn_keras web export (model.onnx) in the browser with ONNX Runtime Web.
//
//   import { load } from "./fcn.js";
//   const fcn = await load();                      // "./model.onnx" beside this file
//   const r = await fcn.segment(imageBitmapOrImageDataOrImgOrCanvas);
//   // r.labels: Uint8Array(r.width * r.height), row-major class ids at the image's own size
//   // r.classNames, r.palette ([[r, g, b], ...]), r.ms (inference time), r.backend
//
// The image is segmented exactly as `fcn-keras predict` does: an image whose longest side is
// over `maxSide` (the export's web.json, default predict's --max-size) is resized down with
// Pillow's bilinear filter (reimplemented here, same fixed-point arithmetic), the network's
// scores are resized back to the image's size (bilinear, half-pixel centres, float32), and the
// labels are their argmax. The runtime files are loaded from ./ort/ beside this file: nothing
// is fetched from anywhere else.

const HERE = new URL(".", import.meta.url);
const ORT_BUNDLES = { wasm: "ort/ort.wasm.min.mjs", webgpu: "ort/ort.webgpu.min.mjs" };

async function fetchJson(url, what) {
  let response;
  try {
    response = await fetch(url);
  } catch (e) {
    throw new Error(`could not fetch the ${what} ${url}: ${e.message}`);
  }
  if (!response.ok) throw new Error(`could not fetch the ${what} ${url}: HTTP ${response.status}`);
  try {
    return await response.json();
  } catch (e) {
    throw new Error(`the ${what} ${url} is not JSON: ${e.message}`);
  }
}

async function webgpuAvailable() {
  if (typeof navigator === "undefined" || !navigator.gpu) return false;
  try {
    return Boolean(await navigator.gpu.requestAdapter());
  } catch (e) {
    return false;
  }
}

/**
 * Loads an exported model.
 * @param {string} url the .onnx file (default: ./model.onnx beside fcn.js); its metadata is
 *   read from `${url}.json` and the page settings from web.json in the same folder.
 * @param {object} options backend: "wasm" (the default: WebGPU on Chromium's software adapter
 *   labelled only 68% of a photo's pixels as WASM does, with ONNX Runtime Web 1.30) | "webgpu" |
 *   "auto" (WebGPU where the browser offers an adapter, else WASM); threads: WASM threads (default: up to 4 when the page is
 *   cross-origin isolated, else 1); maxSide: longest side the network sees (0: full size).
 * @returns {Promise<Segmenter>}
 */
export async function load(url = new URL("model.onnx", HERE).href, options = {}) {
  const modelUrl = new URL(url, document.baseURI).href;
  const meta = await fetchJson(`${modelUrl}.json`, "model metadata");
  const web = await fetchJson(new URL("web.json", modelUrl).href, "web settings");
  if (meta.model && meta.model.num_classes > 256) {
    throw new Error(`fcn.js returns uint8 labels: a model of ${meta.model.num_classes} classes has too many`);
  }
  const wanted = options.backend || "wasm";
  if (!["auto", "webgpu", "wasm"].includes(wanted)) {
    throw new Error(`options.backend must be "auto", "webgpu" or "wasm". Received: ${wanted}`);
  }
  let backend = wanted === "auto" ? ((await webgpuAvailable()) ? "webgpu" : "wasm") : wanted;
  if (backend === "webgpu" && !(await webgpuAvailable())) {
    throw new Error("options.backend is \"webgpu\" but this browser offers no WebGPU adapter; use \"wasm\"");
  }
  const ortUrl = new URL(ORT_BUNDLES[backend], HERE).href;
  let ort;
  try {
    ort = await import(ortUrl);
  } catch (e) {
    throw new Error(`could not load ONNX Runtime Web from ${ortUrl}: ${e.message}`);
  }
  const isolated = typeof crossOriginIsolated !== "undefined" && crossOriginIsolated;
  const cores = (typeof navigator !== "undefined" && navigator.hardwareConcurrency) || 1;
  const threads = options.threads || (isolated ? Math.min(4, cores) : 1);
  if (threads > 1 && !isolated) {
    throw new Error(`options.threads=${threads} needs a cross-origin isolated page (COOP/COEP headers: ` +
                    "`fcn-keras serve` sends them); use threads: 1");
  }
  ort.env.wasm.numThreads = threads;
  ort.env.wasm.wasmPaths = new URL("ort/", HERE).href;
  let session;
  try {
    session = await ort.InferenceSession.create(modelUrl, {
      executionProviders: backend === "webgpu" ? ["webgpu", "wasm"] : ["wasm"],
      graphOptimizationLevel: "all",
    });
  } catch (e) {
    throw new Error(`could not load the model ${modelUrl}: ${e.message || e}`);
  }
  const maxSide = options.maxSide !== undefined ? options.maxSide : web.max_side;
  return new Segmenter(ort, session, meta, { backend, threads, maxSide });
}

export class Segmenter {
  constructor(ort, session, meta, { backend, threads, maxSide }) {
    this.ort = ort;
    this.session = session;
    this.meta = meta;
    this.classNames = meta.class_names;
    this.palette = meta.palette;
    this.numClasses = meta.class_names.length;
    this.backend = backend === "wasm" ? `wasm (${threads} thread${threads > 1 ? "s" : ""})` : backend;
    this.maxSide = maxSide || 0;
    const shape = meta.input.shape;
    this.fixedSize = shape[1] ? [shape[1], shape[2]] : null;
  }

  /** The [height, width] the network sees for an image of height x width (as predict). */
  networkSize(height, width) {
    if (this.fixedSize) return this.fixedSize;
    const longest = Math.max(height, width);
    if (this.maxSide && longest > this.maxSide) {
      const s = this.maxSide / longest;
      return [Math.max(1, roundHalfEven(height * s)), Math.max(1, roundHalfEven(width * s))];
    }
    return [height, width];
  }

  /**
   * Segments one image.
   * @param {ImageData|ImageBitmap|HTMLImageElement|HTMLCanvasElement} image
   * @returns {Promise<{labels: Uint8Array, width: number, height: number, classNames: string[],
   *   palette: number[][], ms: number, backend: string}>}
   */
  async segment(image) {
    const t0 = performance.now();
    const pixels = toImageData(image);
    const { width, height } = pixels;
    const [nh, nw] = this.networkSize(height, width);
    let rgb = rgbOf(pixels.data, width * height);
    if (nh !== height || nw !== width) rgb = resizePillowBilinear(rgb, height, width, nh, nw);
    const input = new this.ort.Tensor("uint8", rgb, [1, nh, nw, 3]);
    let labels;
    if (nh === height && nw === width) {
      const out = await this.session.run({ image: input }, ["labels"]);
      labels = new Uint8Array(out.labels.data);
      out.labels.dispose && out.labels.dispose();
    } else {
      const out = await this.session.run({ image: input }, ["scores"]);
      labels = resizeArgmax(out.scores.data, nh, nw, this.numClasses, height, width);
      out.scores.dispose && out.scores.dispose();
    }
    input.dispose && input.dispose();
    return { labels, width, height, classNames: this.classNames, palette: this.palette,
             ms: performance.now() - t0, backend: this.backend };
  }
}

function roundHalfEven(x) {  // Python's round()
  const f = Math.floor(x), d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

function toImageData(image) {
  if (typeof ImageData !== "undefined" && image instanceof ImageData) return image;
  const width = image.naturalWidth || image.videoWidth || image.width;
  const height = image.naturalHeight || image.videoHeight || image.height;
  if (!width || !height) {
    throw new Error("segment() needs an ImageData, ImageBitmap, HTMLImageElement or HTMLCanvasElement " +
                    "with a size (a loaded image)");
  }
  const canvas = typeof OffscreenCanvas !== "undefined" ? new OffscreenCanvas(width, height)
    : Object.assign(document.createElement("canvas"), { width, height });
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  ctx.drawImage(image, 0, 0);
  return ctx.getImageData(0, 0, width, height);
}

function rgbOf(rgba, n) {
  const rgb = new Uint8Array(n * 3);
  for (let i = 0, j = 0; i < n; i++, j += 4) {
    rgb[i * 3] = rgba[j];
    rgb[i * 3 + 1] = rgba[j + 1];
    rgb[i * 3 + 2] = rgba[j + 2];
  }
  return rgb;
}

// ------------------------------------------------------------------ Pillow's bilinear resize
// Image.resize((w, h), Image.BILINEAR) of Pillow (libImaging/Resample.c): a triangle filter
// widened by the scale factor when reducing, coefficients in 22-bit fixed point, horizontal
// pass first (rounded to uint8), then vertical.
const PRECISION_BITS = 22;
const ONE = 2 ** PRECISION_BITS;
const HALF = 2 ** (PRECISION_BITS - 1);

function coefficients(inSize, outSize) {
  const scale = inSize / outSize;
  const filterscale = Math.max(scale, 1.0);
  const support = 1.0 * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const k = new Int32Array(outSize * ksize);
  const w = new Float64Array(ksize);
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const ss = 1.0 / filterscale;
    let xmin = Math.trunc(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    let xmax = Math.trunc(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    let ww = 0.0;
    for (let x = 0; x < xmax; x++) {
      let t = Math.abs((x + xmin - center + 0.5) * ss);
      t = t < 1.0 ? 1.0 - t : 0.0;
      w[x] = t;
      ww += t;
    }
    for (let x = 0; x < xmax; x++) {
      const v = ww !== 0.0 ? w[x] / ww : w[x];
      k[xx * ksize + x] = v < 0 ? Math.trunc(-0.5 + v * ONE) : Math.trunc(0.5 + v * ONE);
    }
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  return { bounds, k, ksize };
}

function clip8(ss) {
  const v = Math.floor(ss / ONE);
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

/** uint8 RGB (h, w, 3) -> (nh, nw, 3), as Pillow's Image.resize((nw, nh), BILINEAR). */
export function resizePillowBilinear(rgb, h, w, nh, nw) {
  let src = rgb, sw = w;
  if (nw !== w) {
    const { bounds, k, ksize } = coefficients(w, nw);
    const out = new Uint8Array(h * nw * 3);
    for (let y = 0; y < h; y++) {
      for (let xx = 0; xx < nw; xx++) {
        const xmin = bounds[xx * 2], xmax = bounds[xx * 2 + 1], kk = xx * ksize;
        let s0 = HALF, s1 = HALF, s2 = HALF;
        for (let x = 0; x < xmax; x++) {
          const p = (y * sw + x + xmin) * 3, c = k[kk + x];
          s0 += src[p] * c; s1 += src[p + 1] * c; s2 += src[p + 2] * c;
        }
        const o = (y * nw + xx) * 3;
        out[o] = clip8(s0); out[o + 1] = clip8(s1); out[o + 2] = clip8(s2);
      }
    }
    src = out; sw = nw;
  }
  if (nh !== h) {
    const { bounds, k, ksize } = coefficients(h, nh);
    const out = new Uint8Array(nh * sw * 3);
    for (let yy = 0; yy < nh; yy++) {
      const ymin = bounds[yy * 2], ymax = bounds[yy * 2 + 1], kk = yy * ksize;
      for (let x = 0; x < sw; x++) {
        let s0 = HALF, s1 = HALF, s2 = HALF;
        for (let y = 0; y < ymax; y++) {
          const p = ((y + ymin) * sw + x) * 3, c = k[kk + y];
          s0 += src[p] * c; s1 += src[p + 1] * c; s2 += src[p + 2] * c;
        }
        const o = (yy * sw + x) * 3;
        out[o] = clip8(s0); out[o + 1] = clip8(s1); out[o + 2] = clip8(s2);
      }
    }
    src = out;
  }
  return src;
}

// ------------------------------------------------------------------ scores back to full size
// fcn_keras.predict.resize_rows: bilinear, half-pixel centres (tf.image.resize), float32.
function axisWeights(nIn, nOut) {
  const lo = new Int32Array(nOut), hi = new Int32Array(nOut), f = new Float32Array(nOut);
  const scale = nIn / nOut;
  for (let i = 0; i < nOut; i++) {
    const pos = Math.min(Math.max((i + 0.5) * scale - 0.5, 0), nIn - 1);
    lo[i] = Math.floor(pos);
    hi[i] = Math.min(lo[i] + 1, nIn - 1);
    f[i] = pos - lo[i];
  }
  return { lo, hi, f };
}

/** argmax over C of the (h, w, C) scores resized to (height, width): Uint8Array(height * width). */
export function resizeArgmax(scores, h, w, c, height, width) {
  const fr = Math.fround;
  const ys = axisWeights(h, height), xs = axisWeights(w, width);
  const labels = new Uint8Array(height * width);
  const row = new Float32Array(w * c);
  for (let y = 0; y < height; y++) {
    const top = ys.lo[y] * w * c, bottom = ys.hi[y] * w * c, fy = ys.f[y];
    for (let i = 0; i < w * c; i++) {
      const t = scores[top + i];
      row[i] = fr(t + fr(fr(scores[bottom + i] - t) * fy));
    }
    for (let x = 0; x < width; x++) {
      const a = xs.lo[x] * c, b = xs.hi[x] * c, fx = xs.f[x];
      let best = 0, bestValue = -Infinity;
      for (let k = 0; k < c; k++) {
        const l = row[a + k];
        const v = fr(l + fr(fr(row[b + k] - l) * fx));
        if (v > bestValue) { bestValue = v; best = k; }
      }
      labels[y * width + x] = best;
    }
  }
  return labels;
}

// ------------------------------------------------------------------ label PNG
// A palette PNG whose pixel values are the class ids (as fcn_keras.viz.save_label_png).
let crcTable = null;
function crc32(bytes) {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = crcTable[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type, data) {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

/** The labels as a palette PNG Blob (pixel value = class id, the model's colours). */
export async function labelPng({ labels, width, height, palette }) {
  const header = new Uint8Array(13);
  const view = new DataView(header.buffer);
  view.setUint32(0, width);
  view.setUint32(4, height);
  header.set([8, 3, 0, 0, 0], 8);  // 8-bit, palette colour, deflate, no filter, no interlace
  const plte = new Uint8Array(256 * 3);
  palette.forEach((rgb, i) => plte.set(rgb.slice(0, 3), i * 3));
  const raw = new Uint8Array(height * (width + 1));
  for (let y = 0; y < height; y++) raw.set(labels.subarray(y * width, (y + 1) * width), y * (width + 1) + 1);
  const zipped = new Uint8Array(await new Response(
    new Blob([raw]).stream().pipeThrough(new CompressionStream("deflate"))).arrayBuffer());
  const signature = new Uint8Array([137, 80, 78, 71, 13, 10, 26, 10]);
  return new Blob([signature, chunk("IHDR", header), chunk("PLTE", plte), chunk("IDAT", zipped),
                   chunk("IEND", new Uint8Array(0))], { type: "image/png" });
}
