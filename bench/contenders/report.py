"""The tables bench/peers.py prints: per-unit times, ratios to graphc's best, and how far
each contender's losses are from graphc's."""
from __future__ import annotations

from .workloads import Result, Workload


def loss_difference(reference: list, losses: list) -> float:
    """The largest relative difference between two runs' losses, over the steps both ran."""
    pairs = list(zip(reference, losses))
    if not pairs:
        return float("nan")
    return max(abs(a - b) / max(abs(a), abs(b), 1e-300) for a, b in pairs)


def fmt_seconds(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.2f} us" if seconds < 1e-5 else f"{seconds * 1e6:.1f} us"
    return f"{seconds * 1e3:.2f} ms" if seconds < 1 else f"{seconds:.2f} s"


def print_table(workload: Workload, rows: list[tuple[str, str, Result | str]]) -> None:
    """One workload's table: ``rows`` are (family, label, Result or why it has none)."""
    done = [(f, label, r) for f, label, r in rows if isinstance(r, Result)]
    graphc = [r for f, _, r in done if f == "graphc"]
    best = min((r.seconds for r in graphc), default=None)
    reference = graphc[0].losses if graphc else None
    per = "per compile" if workload.unit == "compile" else f"per {workload.unit}"
    rate = workload.unit == "row"
    print(f"\n{workload.key}: {workload.title}")
    print(f"   {'contender':<48} {per:>12} {'rows/s' if rate else '':>10} {'vs graphc best':>15} "
          f"{'loss diff':>10}")
    for family, label, result in rows:
        if not isinstance(result, Result):
            print(f"   {label:<48} {result}")
            continue
        ratio = f"{result.seconds / best:.2f}x" if best else "-"
        diff = "reference" if result.losses is reference else f"{loss_difference(reference or [], result.losses):.1e}"
        speed = f"{1 / result.seconds / 1e6:.2f} M" if rate else ""
        print(f"   {label:<48} {fmt_seconds(result.seconds):>12} {speed:>10} {ratio:>15} {diff:>10}")
    if graphc and len(done) > len(graphc):
        worst = max(loss_difference(reference, r.losses) for _, _, r in done)
        print(f"   max relative difference of any contender's losses from graphc's: {worst:.1e} "
              f"({min(len(r.losses) for _, _, r in done)}+ steps compared)")
