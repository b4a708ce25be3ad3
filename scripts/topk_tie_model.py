#!/usr/bin/env python3
"""Evidence for an equivalence argument about a sorter mutant: a model of a generated
kllm_topk_sorter's compare-exchange network (read from its wires), run with one comparator's
value operator replaced, on every vector of 0s and 1s and on random tie-heavy vectors.

  scripts/topk_tie_model.py <kllm_topk_sorter.v> <swap wire> <new operator> [random vectors]
  e.g. scripts/topk_tie_model.py verilog_out/orizuru_n16_k2/kllm_topk_sorter.v min_swap5_4 '<='

It first checks the unmutated model against a plain sort (so the model is the network), then
prints how often the mutated comparator's decision changed and how often the block's outputs
(the k smallest/largest (value, position) keys) changed. Exits 1 if an output changed.
"""
import random
import re
import sys

CMP = re.compile(r"(~)?\(?\(\$signed\((\w+)\[\d+:\d+\]\) (<=|>=|<|>) \$signed\((\w+)\[\d+:\d+\]\)\) \| "
                 r"\(\((\w+)\[\d+:\d+\] (==|!=) (\w+)\[\d+:\d+\]\) & \((\w+)\[\d+:0\] (<=|<) (\w+)\[\d+:0\]\)\)\)?")
OPS = {"<": lambda x, y: x < y, "<=": lambda x, y: x <= y, ">": lambda x, y: x > y, ">=": lambda x, y: x >= y,
       "==": lambda x, y: x == y, "!=": lambda x, y: x != y}


def load(path):
    prog = []
    for m in re.finditer(r"^\s*wire (?:\[\d+:0\] )?((?:max|min)_\w+) = (.*);\s*$", open(path).read(), re.M):
        name, e = m.groups()
        if mm := re.match(r"\{leaf_q\[(\d+)\*X_W \+: X_W\], \d+'d(\d+)\}", e):
            prog.append((name, "leaf", int(mm.group(1)), int(mm.group(2))))
        elif mm := re.match(r"(\w+) \? (\w+) : (\w+)$", e):
            prog.append((name, "mux") + mm.groups())
        else:
            mm = CMP.match(e)
            assert mm, f"unknown wire form: {e}"
            inv, a, op, b, _, eq, _, _, pop, _ = mm.groups()
            prog.append((name, "cmp", bool(inv), a, op, b, eq, pop))
    return prog


def run(prog, vec, mutant=None):
    env = {}
    for w in prog:
        if w[1] == "leaf":
            env[w[0]] = (vec[w[2]], w[3])
        elif w[1] == "mux":
            env[w[0]] = env[w[3]] if env[w[2]] else env[w[4]]
        else:
            name, _, inv, a, op, b, eq, pop = w
            if mutant and name == mutant[0]:
                op = mutant[1]
            x, y = env[a], env[b]
            r = OPS[op](x[0], y[0]) or (OPS[eq](x[0], y[0]) and OPS[pop](x[1], y[1]))
            env[name] = (not r) if inv else r
    return env


def main():
    path, wire, op = sys.argv[1:4]
    count = int(sys.argv[4]) if len(sys.argv) > 4 else 300000
    prog = load(path)
    names = {w[0] for w in prog}
    last = max(int(re.match(r"min_e(\d+)_", n).group(1)) for n in names if re.match(r"min_e\d+_", n))
    outs = {side: sorted((n for n in names if re.match(rf"{side}_e{last}_\d+$", n)), key=lambda n: int(n.split("_")[-1]))
            for side in ("max", "min")}
    n = 1 + max(w[2] for w in prog if w[1] == "leaf")
    k = len(outs["min"])
    rng = random.Random(1)
    for _ in range(2000):  # the model is the network: it sorts
        vec = [rng.randrange(-3, 3) for _ in range(n)]
        env = run(prog, vec)
        assert [env[o] for o in outs["min"]] == sorted((v, p) for p, v in enumerate(vec))[:k]
        assert [env[o] for o in outs["max"]] == [(-v, p) for v, p in sorted((-v, p) for p, v in enumerate(vec))[:k]]
    vecs = [[(b >> i) & 1 for i in range(n)] for b in range(1 << n)] if n <= 16 else []
    vecs += [[rng.randrange(rng.randint(2, 9)) for _ in range(n)] for _ in range(count)]
    internal = differ = 0
    for vec in vecs:
        a, b = run(prog, vec), run(prog, vec, (wire, op))
        internal += a[wire] != b[wire]
        if any(a[o] != b[o] for side in outs.values() for o in side):
            differ += 1
            if differ == 1:
                print(f"outputs differ for {vec}")
    print(f"{path}: {wire} with '{op}': {len(vecs)} vectors ({1 << n if n <= 16 else 0} of 0s and 1s), "
          f"comparator decision changed in {internal}, outputs changed in {differ}")
    sys.exit(1 if differ else 0)


if __name__ == "__main__":
    main()
