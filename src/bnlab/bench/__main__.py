"""``python -m bnlab.bench [--quick] [--threads N] [--skip SECTION ...] [--full]``: the
machine's line, then every section of :data:`bnlab.bench.SECTIONS` not skipped, in order, then
the machine-readable ``bench:`` line of all their results."""

from __future__ import annotations

import argparse
import os
import platform
import sys
from typing import Optional

import torch

from bnlab.bench import SECTIONS, Bench
from bnlab.bench import __doc__ as bench_doc
from bnlab.bench.timing import compile_works
from bnlab.job.allocator import keep_freed_memory


def parse_args(argv: Optional[list[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bnlab.bench", description=bench_doc.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="small budget: checks the script")
    parser.add_argument(
        "--threads", type=int, default=os.cpu_count(), help="torch threads (default: every core)"
    )
    parser.add_argument("--skip", nargs="*", default=[], choices=list(SECTIONS))
    parser.add_argument(
        "--full", action="store_true", help="suite: the full-budget runs, not the fast ones"
    )
    return parser.parse_args(argv)


def out(line: str) -> None:
    print(line, flush=True)


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    allocator = keep_freed_memory()
    torch.manual_seed(0)
    reason = compile_works()
    out(
        f"bnlab bench: {os.cpu_count()} cores, {args.threads} torch threads, torch "
        f"{torch.__version__}, Python {platform.python_version()}, "
        f"{platform.processor() or platform.machine()}, "
        f"cuda: {torch.cuda.get_device_name() if torch.cuda.is_available() else 'none'}"
    )
    out(
        f"allocator: freed memory kept in-process: {allocator}; torch.compile: "
        + ("works" if reason is None else f"unavailable ({reason})")
    )
    bench = Bench(quick=args.quick, full=args.full, compiled=reason is None, out=out)
    results: dict[str, object] = {}
    for name, section in SECTIONS.items():
        if name not in args.skip:
            results.update(section(bench))
    out("bench: " + " ".join(f"{k}={_fmt(v)}" for k, v in results.items()))
    return 0


def _fmt(value: object) -> str:
    if value is None:
        return "failed"
    if isinstance(value, float):
        return f"{value:.3g}" if value < 100 else f"{value:.0f}"
    return str(value)


if __name__ == "__main__":
    sys.exit(main())
