#!/usr/bin/env python3
"""The numpy baseline of `make bench`: per-matrix K-Means weight codebooks by a plain Lloyd loop.

Same quantizer and objective as `kllm-gen quantize` (rows normalized by their largest magnitude,
values on the 8-bit integer centroid grid weighted by the row scale squared, one 16-entry codebook
per matrix, centroids rounded to integers at the end), written the straightforward vectorized
way: np.searchsorted for the assignment, np.bincount for the update, until the centroids' squared shift
falls below 1e-4 of the weighted variance (scikit-learn's default tolerance), at most 300 times.

  kmeans_numpy.py run FILE.safetensors     one line per matrix, then the total time
  kmeans_numpy.py make FILE.safetensors SEED ROWSxCOLS...   a seeded f16 test checkpoint

Reads safetensors by its documented layout (8-byte header length, JSON header, raw data), so it
needs numpy only.
"""
import json
import struct
import sys
import time

import numpy as np

DTYPES = {"F32": np.float32, "F16": np.float16}


def tensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
    base = 8 + n
    data = np.memmap(path, dtype=np.uint8, mode="r")
    for name in sorted(k for k in header if k != "__metadata__"):
        t = header[name]
        a, b = t["data_offsets"]
        raw = data[base + a:base + b]
        if t["dtype"] == "BF16":
            v = (raw.view(np.uint16).astype(np.uint32) << 16).view(np.float32)
        elif t["dtype"] in DTYPES:
            v = raw.view(DTYPES[t["dtype"]]).astype(np.float32)
        else:
            continue
        if len(t["shape"]) >= 2:
            yield name, t["shape"], v.reshape(t["shape"][0], -1)


def lloyd(w, k=16, bits=8):
    hi = 2 ** (bits - 1) - 1
    s = np.abs(w).max(axis=1).astype(np.float64)
    s[s == 0] = 1.0
    t = (w / s[:, None] * hi).ravel()
    wt = np.repeat(s * s, w.shape[1])
    # Deterministic start: weighted quantiles.
    order = np.argsort(t, kind="stable")
    cw = np.cumsum(wt[order])
    c = t[order][np.searchsorted(cw, (np.arange(k) + 0.5) / k * cw[-1])]
    mean = np.average(t, weights=wt)
    tol = 1e-4 * np.average((t - mean) ** 2, weights=wt)
    for it in range(1, 301):
        idx = np.searchsorted((c[1:] + c[:-1]) / 2, t, side="left")
        wsum = np.bincount(idx, weights=wt, minlength=k)
        tsum = np.bincount(idx, weights=wt * t, minlength=k)
        nxt = np.where(wsum > 0, tsum / np.maximum(wsum, 1e-300), c)
        nxt.sort()
        shift = ((nxt - c) ** 2).sum()
        c = nxt
        if shift <= tol:
            break
    ci = np.unique(np.clip(np.round(c), -hi - 1, hi))
    idx = np.searchsorted((ci[1:] + ci[:-1]) / 2, t, side="left")
    q = (ci[idx] * np.repeat(s / hi, w.shape[1])).reshape(w.shape)
    err = ((w.astype(np.float64) - q) ** 2).sum()
    sig = (w.astype(np.float64) ** 2).sum()
    return 10 * np.log10(sig / err), it


def run(path):
    t0 = time.perf_counter()
    total = 0
    for name, shape, w in tensors(path):
        t = time.perf_counter()
        sqnr, its = lloyd(w)
        total += w.size
        print(f"{name} {'x'.join(map(str, shape))} SQNR {sqnr:.2f} dB, {its} iterations, {time.perf_counter() - t:.2f} s")
    dt = time.perf_counter() - t0
    print(f"numpy Lloyd: {total} weights in {dt:.2f} s = {total / dt:.3e} weights/s")


def make(path, seed, shapes):
    rng = np.random.default_rng(seed)
    header, blobs, off = {}, [], 0
    for i, sh in enumerate(shapes):
        r, c = map(int, sh.split("x"))
        scale = 10.0 ** rng.uniform(-2.5, -0.5, size=(r, 1))
        b = (rng.standard_normal((r, c)) * scale).astype(np.float16).tobytes()
        header[f"model.layers.{i}.mlp.up_proj.weight"] = {"dtype": "F16", "shape": [r, c], "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for b in blobs:
            f.write(b)


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "run":
        run(sys.argv[2])
    elif len(sys.argv) >= 5 and sys.argv[1] == "make":
        make(sys.argv[2], int(sys.argv[3]), sys.argv[4:])
    else:
        sys.exit(__doc__)
