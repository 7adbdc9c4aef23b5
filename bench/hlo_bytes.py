"""Read an optimized XLA HLO module (`compiled.as_text()`): bytes each step really moves, and the copies in it.

`cost_analysis()["bytes accessed"]` counts a `while` body once whatever its trip count, so a scanned layer loop
looks L times cheaper than it is. `module_bytes` walks the module itself: every executed instruction's operands
read plus its result written (a fusion's operand that is only sliced inside counts as the slice; an in-place
`dynamic-update-slice` counts its update), `while` bodies times their known trip count. Without loops it agrees
with `cost_analysis` (`bench/decode_bytes.py` prints both) except where XLA's cost model over-counts: a gather
(counted as a read of its whole table) and an in-place update whose target is reshaped inside its fusion (counted
as a full read and write).

`copies` lists the data movement a decode step should not have: copies, transposes, concatenations, slices
materialised as buffers (`dynamic-slice`, `slice`), dtype conversions and large broadcasts, with their sizes and how
often they run.
"""
from __future__ import annotations
import dataclasses
import re

_ARRAY = re.compile(r"\b(pred|s4|s8|s16|s32|s64|u4|u8|u16|u32|u64|f16|bf16|f32|f64|c64|c128|f8e4m3fn|f8e5m2)\[([0-9,]*)\]")
_BITS = dict(pred=8, s4=4, s8=8, s16=16, s32=32, s64=64, u4=4, u8=8, u16=16, u32=32, u64=64, f16=16, bf16=16, f32=32,
             f64=64, c64=64, c128=128, f8e4m3fn=8, f8e5m2=8)
FREE = {"parameter", "constant", "get-tuple-element", "tuple", "bitcast", "after-all", "partition-id", "replica-id",
        "iota"}
MOVES = {"copy", "transpose", "concatenate", "dynamic-slice", "slice", "broadcast", "pad", "reverse", "gather",
         "convert"}


def type_bytes(t: str) -> int:
    "Bytes of an HLO type string (an array or a tuple of arrays)."
    total = 0
    for dtype, dims in _ARRAY.findall(t):
        n = 1
        for d in filter(None, dims.split(",")): n *= int(d)
        total += n * _BITS[dtype] // 8
    return total


@dataclasses.dataclass
class Instr:
    name: str
    type: str
    opcode: str
    operands: list
    attrs: str
    root: bool
    param: int | None = None  # a parameter's number

    @property
    def nbytes(self) -> int: return type_bytes(self.type)

    def called(self, key: str) -> str | None:
        m = re.search(key + r"=%([\w.\-]+)", self.attrs)
        return m and m.group(1)


def _split_type(s: str) -> tuple[str, str]:
    "(type, rest) of the text after ' = '."
    if not s.startswith("("):
        t, _, rest = s.partition(" ")
        return t, rest
    depth = 0
    for i, ch in enumerate(s):
        depth += ch == "("
        depth -= ch == ")"
        if depth == 0: return s[:i + 1], s[i + 2:]
    raise ValueError(s[:80])


def _operands(rest: str) -> tuple[str, str, str]:
    "(opcode, operand text, attributes) of the text after an instruction's type."
    opcode, _, args = rest.partition("(")
    depth, i = 1, 0
    while depth:
        depth += {"(": 1, ")": -1}.get(args[i], 0)
        i += 1
    return opcode, args[:i - 1], args[i:]


def parse(text: str) -> tuple[dict, str]:
    "({computation name: [Instr]}, name of the entry computation)."
    comps, entry, current = {}, None, None
    for line in text.splitlines():
        head = re.match(r"^(ENTRY )?%([\w.\-]+) \(", line)
        if head and line.rstrip().endswith("{"):
            current = comps.setdefault(head.group(2), [])
            if head.group(1): entry = head.group(2)
            continue
        m = re.match(r"^\s+(ROOT )?%([\w.\-]+) = (.*)$", line)
        if m and current is not None:
            t, rest = _split_type(m.group(3))
            opcode, args, attrs = _operands(rest)
            current.append(Instr(m.group(2), t, opcode, re.findall(r"%([\w.\-]+)", args), attrs, bool(m.group(1)),
                                 int(args) if opcode == "parameter" else None))
    return comps, entry


def _trip_count(instr: Instr) -> int | None:
    m = re.search(r'"known_trip_count":\{"n":"(\d+)"\}', instr.attrs)
    return int(m.group(1)) if m else None


def _root(comp: list) -> Instr:
    return next(i for i in comp if i.root)


def _through_bitcasts(comp: list, instr: Instr) -> Instr:
    by_name = {i.name: i for i in comp}
    while instr.opcode in ("bitcast", "copy") and instr.operands and instr.operands[0] in by_name:
        if instr.opcode == "copy": break
        instr = by_name[instr.operands[0]]
    return instr


def root_op(comps: dict, fusion: Instr) -> str:
    "The op at the root of a fusion's computation (through bitcasts)."
    body = comps[fusion.called("calls")]
    return _through_bitcasts(body, _root(body)).opcode


def fusion_bytes(comps: dict, fusion: Instr, operand_types: list) -> int:
    "Bytes a fusion reads and writes, as XLA's cost analysis counts them (sliced operands, in-place updates)."
    body = comps[fusion.called("calls")]
    params = {i.name: i.param for i in body if i.opcode == "parameter"}
    users = {}
    for i in body:
        for k, op in enumerate(i.operands): users.setdefault(op, []).append((i, k))
    root = _root(body)
    roots = [root] if root.opcode != "tuple" else [next(j for j in body if j.name == n) for n in root.operands]
    in_place = {}  # parameter name -> bytes of the update written into it
    out = 0
    for r in roots:
        r0 = _through_bitcasts(body, r)
        if r0.opcode == "dynamic-update-slice":
            target = _through_bitcasts(body, next(j for j in body if j.name == r0.operands[0]))
            update = next(j for j in body if j.name == r0.operands[1])
            if target.opcode == "parameter":
                in_place[target.name] = update.nbytes
                out += update.nbytes
                continue
        out += r.nbytes
    read = 0
    for name, idx in params.items():
        full = type_bytes(operand_types[idx]) if idx < len(operand_types) else 0
        if name in in_place: continue
        us = users.get(name, [])
        if us and all(u.opcode in ("dynamic-slice", "slice", "gather") and k == 0 for u, k in us):
            read += min(full, sum(u.nbytes for u, _ in us))
        else:
            read += full
    return read + out


@dataclasses.dataclass
class Move:
    computation: str
    name: str
    kind: str  # the op that moves data (a fusion's root op)
    type: str
    nbytes: int
    times: int  # executions per call of the module (while trip counts multiplied)


def walk(text: str) -> tuple[int, list[Move], list[str]]:
    "(bytes moved per call, the data-movement ops, notes) of an optimized HLO module."
    comps, entry = parse(text)
    notes, moves = [], []

    def cost(name: str, times: int) -> int:
        comp, total = comps[name], 0
        types = {i.name: i.type for i in comp}
        for i in comp:
            op_types = [types.get(o, "") for o in i.operands]
            if i.opcode in FREE: continue
            if i.opcode == "while":
                n = _trip_count(i)
                if n is None: notes.append(f"{i.name}: trip count unknown, body counted once"); n = 1
                total += n * cost(i.called("body"), times * n) + cost(i.called("condition"), times * n)
                continue
            if i.opcode in ("call", "async-start"):
                total += cost(i.called("to_apply") or i.called("calls"), times)
                continue
            if i.opcode == "conditional":
                total += max(cost(b, times) for b in re.findall(r"%([\w.\-]+)", i.attrs.split("branch_computations=")[1].split("}")[0]))
                continue
            if i.opcode == "fusion":
                b = fusion_bytes(comps, i, op_types)
                kind = _through_bitcasts(comps[i.called("calls")], _root(comps[i.called("calls")])).opcode
            elif i.opcode == "dynamic-slice":
                b, kind = 2 * i.nbytes, i.opcode
            elif i.opcode == "dynamic-update-slice":
                b, kind = 2 * type_bytes(op_types[1]), i.opcode
            else:
                b, kind = sum(type_bytes(t) for t in op_types) + i.nbytes, i.opcode
            total += b
            if kind in MOVES and i.nbytes >= 1 << 20:
                moves.append(Move(name, i.name, kind, i.type.split("{")[0], i.nbytes, times))
        return total

    return cost(entry, 1), moves, notes


def report(moves: list[Move], min_bytes: int = 1 << 20) -> list[str]:
    "One line per data-movement op of at least `min_bytes`, largest traffic first."
    rows = sorted((m for m in moves if m.nbytes >= min_bytes), key=lambda m: -m.nbytes * m.times)
    return [f"{m.kind:>14} {m.type:<28} {m.nbytes / 1e6:9.1f} MB x{m.times:<3} ({m.computation}/{m.name})" for m in rows]
