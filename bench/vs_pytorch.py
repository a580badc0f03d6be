#!/usr/bin/python3
"""vs_pytorch.py — the PyTorch side of bench/vs_pytorch.sh (issue 11, point 3).

Trains, in eager-mode PyTorch (1.13, Debian's python3-torch), the same model that
`build/release/bench train` trains in ctxbench, on the same byte stream with the same optimiser,
and prints one line of key=value pairs in the bench's format (tokens_per_s among them).

The model (ctxbench src/model/model.c, kernels.c, attention_train.c, pe/rope.c): byte-level
(V = 256) decoder-only GPT-2-style pre-norm transformer; per layer
    x = x + proj(attention(qkv(ln1(x))))   x = x + fcproj(gelu_tanh(fc(ln2(x))))
then a final LayerNorm and the tied embedding as the output matrix (no output bias). LayerNorm
eps 1e-5 with weight and bias, biases on qkv/proj/fc/fcproj, no dropout, causal softmax
attention with scale 1/sqrt(HS). Init N(0, 0.02), proj and fcproj N(0, 0.02/sqrt(2L)), biases 0,
LayerNorm weights 1. AdamW (betas 0.9/0.95, eps 1e-8, weight decay 0.1 on the four matrices of
each layer and the embedding only), global-norm clip 1.0, mean cross-entropy; the learning rate
follows bench train's schedule: no warm-up, cosine from 1e-3 to 1e-4 over warm-up + timed steps.

Schemes: nope (no positional information) and rope as ctxbench's default `rope`: base 10000,
all HS dimensions rotated, pairing=half (pair t = (x[t], x[t + HS/2]), GPT-NeoX style), angles
pos * base^(-2t/HS) computed in double and cos/sin rounded to float, on q and k of every head of
every layer (after the qkv bias, before the scores).

Data: bench train's stream, rebuilt here bit for bit: 2^20 bytes ' ' + (xoshiro256** seeded with
7 through splitmix64) % 95; step s, sequence b reads the window at ((s B + b) 9973) mod (2^20 - T
- 1), targets shifted by one.

Modes:
  vs_pytorch.py [--scheme nope|rope] [--layers 4] [--d-model 128] [--heads 4] [--context 128]
                [--batch 16] [--steps 20] [--warmup-steps 3] [--threads 2] [--verbose]
      time `steps` training steps after `warmup-steps` untimed ones; one output line.
  vs_pytorch.py --check [--bench build/release/bench] [--check-steps 50] ...
      50 steps of each engine from its own init on the same data, both schemes; prints losses.
  vs_pytorch.py --summarize FILE
      the table of bench/vs_pytorch.sh from its measurement lines (no torch needed).

Only for this comparison: ctxbench itself needs no Python.
"""
import argparse
import math
import os
import re
import statistics
import subprocess
import sys
import time

VOCAB = 256
MASK64 = (1 << 64) - 1
STREAM_LEN = 1 << 20
STREAM_SEED = 7
WINDOW_STRIDE = 9973
CTXBENCH_SEED = 1  # bench train's model_build seed


# ---------------------------------------------------------------------------------------------
# Data: the byte stream of bench train (bench/bench.c), with ctxbench's RNG (src/core/core.c).

def _splitmix64(x):
    x = (x + 0x9E3779B97F4A7C15) & MASK64
    z = x
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return x, z ^ (z >> 31)


def rng_stream(seed):
    """rng_next() of core.c: xoshiro256** seeded through splitmix64, as an endless generator."""
    x, s = seed, []
    for _ in range(4):
        x, v = _splitmix64(x)
        s.append(v)
    s0, s1, s2, s3 = s
    while True:
        r = (s1 * 5) & MASK64
        yield ((((r << 7) | (r >> 57)) & MASK64) * 9) & MASK64
        t = (s1 << 17) & MASK64
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = ((s3 << 45) | (s3 >> 19)) & MASK64


def byte_stream(n=STREAM_LEN, seed=STREAM_SEED):
    """bench train's n bytes ' ' + rng_next() % 95 from rng_seed(seed) (0.4 s)."""
    g = rng_stream(seed)
    return bytes(32 + next(g) % 95 for _ in range(n))


def ctxbench_normals(g, n):
    """n float32 draws of rng_normal() (core.c: Box-Muller on two 53-bit uniforms, cos branch)."""
    import numpy as np
    out = np.empty(n, dtype=np.float64)
    k = 2.0 ** -53
    for i in range(n):
        u1 = (next(g) >> 11) * k
        u2 = (next(g) >> 11) * k
        if u1 < 1e-300:
            u1 = 1e-300
        out[i] = math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)
    return out.astype(np.float32)


def window_starts(step, B, T, n=STREAM_LEN):
    return [((step * B + b) * WINDOW_STRIDE) % (n - T - 1) for b in range(B)]


def lr_at(step, total_steps, lr=1e-3, min_lr_ratio=0.1):
    """train_lr_at of src/model/model.c with warmup 0 (as bench train sets it)."""
    if total_steps <= 1:
        return lr
    progress = min(step / (total_steps - 1), 1.0)
    lo = lr * min_lr_ratio
    return lo + 0.5 * (lr - lo) * (1.0 + math.cos(math.pi * progress))


def train_flops_per_step(n_params, L, C, B, T):
    """bench.c's train_step_flops: 6 N per token for the GEMMs (forward 2, backward 4), plus the
    causal attention: QK^T and PV over half of T x T, 2 T C per token forward, 4 T C backward."""
    tokens = B * T
    return 6.0 * n_params * tokens + 6.0 * L * tokens * T * C


# ---------------------------------------------------------------------------------------------
# BLAS in this process: which library and core OpenBLAS picked.

def openblas_info():
    """(path, corename, config, parallel) of the OpenBLAS loaded into this process, or Nones."""
    import ctypes
    path = None
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                if "openblas" in line and ".so" in line:
                    path = line.split()[-1]
                    break
    except OSError:
        pass
    if not path:
        return None, None, None, None
    try:
        lib = ctypes.CDLL(path)
        lib.openblas_get_corename.restype = ctypes.c_char_p
        lib.openblas_get_config.restype = ctypes.c_char_p
        par = {0: "sequential", 1: "pthreads", 2: "openmp"}.get(lib.openblas_get_parallel(), "?")
        return path, lib.openblas_get_corename().decode(), lib.openblas_get_config().decode(), par
    except (OSError, AttributeError):
        return path, None, None, None


# ---------------------------------------------------------------------------------------------
# The model.

def build_model(torch, scheme, L, C, NH, T, seed, ctxbench_init=False):
    nn = torch.nn
    F = torch.nn.functional
    HS = C // NH

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln1 = nn.LayerNorm(C, eps=1e-5)
            self.qkv = nn.Linear(C, 3 * C)        # fused: rows 0..C-1 q, C..2C-1 k, 2C.. v
            self.proj = nn.Linear(C, C)
            self.ln2 = nn.LayerNorm(C, eps=1e-5)
            self.fc = nn.Linear(C, 4 * C)
            self.fcproj = nn.Linear(4 * C, C)

        def forward(self, x, mask, cos, sin):
            B_, T_, _ = x.shape
            qkv = self.qkv(self.ln1(x))
            # (3, B, NH, T, HS) views of q, k, v: head h is columns h*HS .. h*HS+HS-1 of each
            qkv = qkv.view(B_, T_, 3, NH, HS).permute(2, 0, 3, 1, 4)
            if cos is not None:
                # pairing=half: (x[t], x[t + HS/2]) rotated by pos * theta_t; q and k in one op
                qk = qkv[:2]
                a, b = qk[..., : HS // 2], qk[..., HS // 2:]
                qk = torch.cat((a * cos - b * sin, a * sin + b * cos), dim=-1)
                q, k = qk[0], qk[1]
            else:
                q, k = qkv[0], qkv[1]
            v = qkv[2]
            q = q.reshape(B_ * NH, T_, HS) * (1.0 / math.sqrt(HS))  # scale the small operand
            k = k.reshape(B_ * NH, T_, HS)
            v = v.reshape(B_ * NH, T_, HS)
            # scores + causal mask (0 / -inf), row softmax. (baddbmm(mask, q, k^T, alpha=scale) or
            # bmm, scale, masked_fill measured no faster: baddbmm loops addmm_ per matrix on CPU.)
            att = torch.softmax(torch.bmm(q, k.transpose(1, 2)) + mask, dim=-1)
            y = torch.bmm(att, v).view(B_, NH, T_, HS).transpose(1, 2).reshape(B_, T_, C)
            x = x + self.proj(y)
            x = x + self.fcproj(F.gelu(self.fc(self.ln2(x)), approximate="tanh"))
            return x

    class GPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.wte = nn.Embedding(VOCAB, C)
            self.blocks = nn.ModuleList([Block() for _ in range(L)])
            self.lnf = nn.LayerNorm(C, eps=1e-5)
            mask = torch.full((T, T), float("-inf")).triu(1)
            self.register_buffer("mask", mask, persistent=False)
            if scheme == "rope":
                np_ = HS // 2
                inv = torch.tensor([10000.0 ** (-2.0 * t / HS) for t in range(np_)], dtype=torch.float64)
                phi = torch.arange(T, dtype=torch.float64)[:, None] * inv[None, :]  # (T, HS/2)
                self.register_buffer("cos", phi.cos().float(), persistent=False)
                self.register_buffer("sin", phi.sin().float(), persistent=False)
            else:
                self.cos = self.sin = None

        def forward(self, idx, targets):
            T_ = idx.shape[1]
            x = self.wte(idx)
            mask = self.mask[:T_, :T_]
            cos = self.cos[:T_] if self.cos is not None else None
            sin = self.sin[:T_] if self.sin is not None else None
            for blk in self.blocks:
                x = blk(x, mask, cos, sin)
            logits = F.linear(self.lnf(x), self.wte.weight)  # tied, no bias
            return F.cross_entropy(logits.view(-1, VOCAB), targets.view(-1))

    torch.manual_seed(seed)
    model = GPT()
    proj_std = 0.02 / math.sqrt(2 * L)
    with torch.no_grad():
        nn.init.normal_(model.wte.weight, 0.0, 0.02)
        for blk in model.blocks:
            nn.init.normal_(blk.qkv.weight, 0.0, 0.02)
            nn.init.normal_(blk.fc.weight, 0.0, 0.02)
            nn.init.normal_(blk.proj.weight, 0.0, proj_std)
            nn.init.normal_(blk.fcproj.weight, 0.0, proj_std)
            for lin in (blk.qkv, blk.proj, blk.fc, blk.fcproj):
                nn.init.zeros_(lin.bias)
        if ctxbench_init:
            # model_build's very weights: one RNG, tensors in its order, each (L, out, in) block
            import numpy as np
            g = rng_stream(seed)
            std = np.float32(0.02)
            pstd = np.float32(0.02) / np.sqrt(np.float32(2 * L))
            model.wte.weight.copy_(torch.from_numpy(std * ctxbench_normals(g, VOCAB * C)).view(VOCAB, C))
            for name, sd in (("qkv", std), ("proj", pstd), ("fc", std), ("fcproj", pstd)):
                shape = getattr(model.blocks[0], name).weight.shape
                w = torch.from_numpy(sd * ctxbench_normals(g, L * shape[0] * shape[1])).view(L, *shape)
                for l, blk in enumerate(model.blocks):
                    getattr(blk, name).weight.copy_(w[l])
    decay = [model.wte.weight] + [getattr(blk, n).weight for blk in model.blocks
                                  for n in ("qkv", "proj", "fc", "fcproj")]
    ids = {id(p) for p in decay}
    no_decay = [p for p in model.parameters() if id(p) not in ids]
    return model, decay, no_decay


def train(torch, args, data, steps, warm, log_every=0, ctxbench_init=False):
    """Runs warm + steps training steps; returns (seconds of the timed steps, losses, n_params)."""
    B, T = args.batch, args.context
    model, decay, no_decay = build_model(torch, args.scheme, args.layers, args.d_model, args.heads, T,
                                         CTXBENCH_SEED if ctxbench_init else args.seed, ctxbench_init)
    model.train()
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=1e-3, betas=(0.9, 0.95), eps=1e-8, foreach=not args.no_foreach)
    params = list(model.parameters())
    n_params = sum(p.numel() for p in params)
    total = warm + steps
    # every step's (B, T) inputs and targets as int64, built before the clock starts
    buf = torch.frombuffer(bytearray(data), dtype=torch.uint8)
    xs, ys = [], []
    for s in range(total):
        starts = torch.tensor(window_starts(s, B, T, len(data)), dtype=torch.int64)
        at = starts[:, None] + torch.arange(T, dtype=torch.int64)[None, :]
        xs.append(buf[at].long().contiguous())
        ys.append(buf[at + 1].long().contiguous())
    losses = []
    t0 = time.perf_counter()
    for s in range(total):
        if s == warm:
            t0 = time.perf_counter()
        lr = lr_at(s, total)
        for g in opt.param_groups:
            g["lr"] = lr
        loss = model(xs[s], ys[s])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        losses.append(loss.item())
        if log_every and ((s + 1) % log_every == 0 or s == 0):
            print("  torch %-15s %-4s step %3d  loss %.4f" % ("(ctxbench init)" if ctxbench_init else "(own init)",
                                                            args.scheme, s + 1, losses[-1]), flush=True)
    return time.perf_counter() - t0, losses, n_params


def import_torch(threads, verbose):
    import torch
    torch.set_num_threads(threads)
    if verbose:
        print(torch.__config__.show())
        print(torch.__config__.parallel_info())
        path, core, config, par = openblas_info()
        print("OpenBLAS in this process: %s\n  core %s, config: %s, threading %s\n" % (path, core, config, par))
        print("ATEN_CPU_CAPABILITY=%s  OPENBLAS_CORETYPE=%s  OMP_NUM_THREADS=%s\n" % (
            os.environ.get("ATEN_CPU_CAPABILITY", "(unset)"), os.environ.get("OPENBLAS_CORETYPE", "(unset)"),
            os.environ.get("OMP_NUM_THREADS", "(unset)")), flush=True)
    return torch


def cpu_capability(torch):
    for line in torch.__config__.show().splitlines():
        if "CPU capability usage:" in line:
            return line.split(":", 1)[1].strip()
    return "?"


def run_bench(args):
    torch = import_torch(args.threads, args.verbose)
    data = byte_stream()
    secs, losses, n_params = train(torch, args, data, args.steps, args.warmup_steps)
    B, T = args.batch, args.context
    flops = train_flops_per_step(n_params, args.layers, args.d_model, B, T)
    _, core, _, _ = openblas_info()
    print("torch scheme=%s layers=%d d_model=%d heads=%d context=%d batch=%d threads=%d steps=%d "
          "seconds=%.4f tokens_per_s=%.1f model_gflops=%.2f final_loss=%.4f blas_core=%s params=%d "
          "torch=%s cpu_capability=%s" % (
              args.scheme, args.layers, args.d_model, args.heads, T, B, torch.get_num_threads(), args.steps,
              secs, args.steps * B * T / secs, flops * args.steps / secs / 1e9, losses[-1], core, n_params,
              torch.__version__, cpu_capability(torch).replace(" ", "_")), flush=True)


# ---------------------------------------------------------------------------------------------
# --check: both engines learn alike.

def parse_kv(line):
    return dict(re.findall(r"(\w+)=(\S+)", line))


def run_ctxbench(args, scheme, steps):
    cmd = [args.bench, "train", "--scheme", scheme, "--layers", str(args.layers), "--d-model", str(args.d_model),
           "--heads", str(args.heads), "--context", str(args.context), "--batch", str(args.batch),
           "--steps", str(steps), "--warmup-steps", "0", "--threads", str(args.threads)]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    line = next((l for l in p.stdout.splitlines() if l.startswith("train ")), None)
    if p.returncode != 0 or line is None:
        sys.exit("vs_pytorch.py: %s failed (exit %d): %s" % (" ".join(cmd), p.returncode,
                                                             (p.stderr or p.stdout).strip()))
    return parse_kv(line)


def run_check(args):
    n = args.check_steps
    # ctxbench first, before torch (and so OpenBLAS) is loaded here: it keeps this environment as is,
    # and its blas_core becomes OPENBLAS_CORETYPE of this process before OpenBLAS reads it.
    ctx = {}
    for scheme in args.schemes:
        first = run_ctxbench(args, scheme, 1)
        last = run_ctxbench(args, scheme, n)
        ctx[scheme] = (float(first["final_loss"]), float(last["final_loss"]), last.get("blas_core"))
    core = next(iter(ctx.values()))[2]
    if core and not args.keep_coretype:
        os.environ["OPENBLAS_CORETYPE"] = core
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    torch = import_torch(args.threads, args.verbose)
    data = byte_stream()
    print("check: %d training steps per engine, each from its own init, on bench train's byte stream "
          "(printable bytes, uniform: the best loss is ln 95 = %.4f; at init ln 256 = %.4f)" % (
              n, math.log(95), math.log(256)))
    rows = []
    for scheme in args.schemes:
        args.scheme = scheme
        _, own, _ = train(torch, args, data, n, 0, log_every=10)
        _, same, _ = train(torch, args, data, n, 0, log_every=10, ctxbench_init=True)
        rows.append((scheme, ctx[scheme][0], own[0], same[0], ctx[scheme][1], own[-1], same[-1]))
    print()
    print("loss of the batch at step 1 and step %d (before that step's update):" % n)
    print("%-6s %-8s %10s %12s %18s" % ("scheme", "step", "ctxbench", "torch", "torch, ctxbench's init"))
    for scheme, c1, t1, s1, cn, tn, sn in rows:
        print("%-6s %-8d %10.4f %12.4f %18.4f" % (scheme, 1, c1, t1, s1))
        print("%-6s %-8d %10.4f %12.4f %18.4f" % (scheme, n, cn, tn, sn))
    print("torch = its own init (torch.manual_seed(%d)); \"ctxbench's init\" = model_build's weights for seed %d,"
          " rebuilt from ctxbench's RNG. ctxbench blas_core=%s, torch's OpenBLAS core=%s"
          % (args.seed, CTXBENCH_SEED, core, openblas_info()[1]))


# ---------------------------------------------------------------------------------------------
# --summarize: the table of vs_pytorch.sh.

def fmt_range(xs):
    return "%9.0f [%.0f-%.0f]" % (statistics.median(xs), min(xs), max(xs))


def run_summarize(args):
    meas = {}  # (engine, scheme) -> {round: kv}
    with open(args.summarize) as f:
        for line in f:
            parts = line.split(None, 2)
            if len(parts) < 3 or not parts[0].isdigit():
                continue
            if parts[1] not in ("train", "torch"):
                continue
            kv = parse_kv(parts[2])
            engine = "ctxbench" if parts[1] == "train" else "torch"
            meas.setdefault((engine, kv["scheme"]), {})[int(parts[0])] = kv
    schemes = []
    for (_, s) in meas:
        if s not in schemes:
            schemes.append(s)
    print("tokens/s: median [min-max] over rounds; ratio = ctxbench / PyTorch of the same round")
    print("%-6s %-26s %-26s %-8s %s" % ("scheme", "ctxbench tokens/s", "PyTorch tokens/s", "median",
                                         "ratio per round"))
    for s in schemes:
        c, t = meas.get(("ctxbench", s), {}), meas.get(("torch", s), {})
        if not c or not t:
            continue
        rounds = sorted(set(c) & set(t))
        ct = [float(c[r]["tokens_per_s"]) for r in sorted(c)]
        tt = [float(t[r]["tokens_per_s"]) for r in sorted(t)]
        ratios = [float(c[r]["tokens_per_s"]) / float(t[r]["tokens_per_s"]) for r in rounds]
        print("%-6s %-26s %-26s %-8s %s" % (s, fmt_range(ct), fmt_range(tt), "%.2fx" % statistics.median(ratios),
                                             " ".join("%.2f" % x for x in ratios)))
    print()
    print("model GFLOP/s (median; FLOPs per step as below, the same count for both engines)")
    for s in schemes:
        c, t = meas.get(("ctxbench", s), {}), meas.get(("torch", s), {})
        if not c or not t:
            continue
        anykv = next(iter(t.values()))
        L, C, B, T = (int(anykv[k]) for k in ("layers", "d_model", "batch", "context"))
        n_params = int(anykv["params"])
        fl = train_flops_per_step(n_params, L, C, B, T)
        tok = B * T
        cg = statistics.median(float(kv["tokens_per_s"]) for kv in c.values()) * fl / tok / 1e9
        tg = statistics.median(float(kv["tokens_per_s"]) for kv in t.values()) * fl / tok / 1e9
        cb = statistics.median(float(kv["model_gflops"]) for kv in c.values())
        print("%-6s ctxbench %6.2f GFLOP/s (its own model_gflops %.2f)   PyTorch %6.2f GFLOP/s   "
              "[%.3f GFLOP/step = 6 x %d params x %d tokens + 6 x %d layers x %d tokens x T %d x C %d]"
              % (s, cg, cb, tg, fl / 1e9, n_params, tok, L, tok, T, C))


# ---------------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scheme", choices=("nope", "rope"), default="nope")
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--d-model", type=int, default=128)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--context", type=int, default=128)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--steps", type=int, default=20, help="timed steps")
    ap.add_argument("--warmup-steps", type=int, default=3, help="untimed steps before them")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1, help="torch.manual_seed of the init")
    ap.add_argument("--no-foreach", action="store_true", help="AdamW without foreach=True")
    ap.add_argument("--verbose", action="store_true", help="print torch.__config__ and the BLAS in use")
    ap.add_argument("--check", action="store_true", help="losses of both engines over --check-steps steps")
    ap.add_argument("--check-steps", type=int, default=50)
    ap.add_argument("--schemes", default="nope,rope", help="--check: comma-separated schemes")
    ap.add_argument("--bench", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "build",
                                                    "release", "bench"), help="--check: ctxbench's bench binary")
    ap.add_argument("--keep-coretype", action="store_true",
                    help="--check: keep this process's OPENBLAS_CORETYPE instead of ctxbench's blas_core")
    ap.add_argument("--summarize", metavar="FILE", help="print vs_pytorch.sh's table from its measurement lines")
    args = ap.parse_args()
    for name in ("layers", "d_model", "heads", "context", "batch", "steps", "threads", "check_steps"):
        if getattr(args, name) < 1:
            ap.error("--%s must be positive" % name.replace("_", "-"))
    if args.warmup_steps < 0:
        ap.error("--warmup-steps must be >= 0")
    if args.d_model % args.heads or (args.d_model // args.heads) % 2:
        ap.error("--d-model must be a multiple of --heads with an even head size")
    if args.context + 1 >= STREAM_LEN:
        ap.error("--context too large for the byte stream")
    args.schemes = [s for s in args.schemes.split(",") if s]
    if any(s not in ("nope", "rope") for s in args.schemes):
        ap.error("--schemes: nope and/or rope")
    if args.summarize:
        run_summarize(args)
    elif args.check:
        run_check(args)
    else:
        run_bench(args)


if __name__ == "__main__":
    main()
