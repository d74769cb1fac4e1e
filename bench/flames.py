"""py-spy flame graphs of the stack's processes, and the top self-time frames read back from them."""

from __future__ import annotations

import asyncio
import html
import itertools
import re
import shutil
import sys
from collections import Counter
from pathlib import Path
from typing import Any

# <title>frame (123 samples, 4.56%)</title><rect x="…%" y="100" width="…%" … fg:x="17" fg:w="123"/>
_FRAME = re.compile(
    r"<title>(?P<name>.*?) \([\d,]+ samples?, [\d.]+%\)</title>"
    r'<rect [^>]*?y="(?P<y>[\d.]+)"[^>]*?fg:x="(?P<x>\d+)" fg:w="(?P<w>\d+)"'
)


_ENTRY_FRAMES = ("<module> ", "main ", "serve ", "run_cli ", "run_event_loop ")  # on every stack: no signal
RATE = 97  # samples per second (py-spy's default is 100; off the round number avoids aliasing)


def py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(found).exists():
        raise RuntimeError("py-spy is not installed (it is a dev dependency: make install)")
    return found


async def record(
    pids: dict[str, int], out_dir: Path, duration_s: int, rate: int = RATE, prefix: str = ""
) -> dict[str, Any]:
    """Start one ``py-spy record`` per process; returns the running recorders (await ``finish``)."""
    await asyncio.to_thread(out_dir.mkdir, parents=True, exist_ok=True)
    recorders: dict[str, Any] = {}
    for name, pid in pids.items():
        svg = out_dir / f"profile-{prefix}{name}.svg"
        proc = await asyncio.create_subprocess_exec(
            py_spy(),
            "record",
            "--nonblocking",
            "--rate",
            str(rate),
            "--duration",
            str(duration_s),
            "--format",
            "flamegraph",
            "-o",
            str(svg),
            "--pid",
            str(pid),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        recorders[name] = (proc, svg)
    return recorders


async def finish(recorders: dict[str, Any], duration_s: int, rate: int = RATE) -> dict[str, Any]:
    """Wait for every recorder; per process the SVG path, its size and its top self-time frames."""
    summary: dict[str, Any] = {}
    for name, (proc, svg) in recorders.items():
        output, _ = await proc.communicate()
        if proc.returncode != 0 or not svg.exists():
            summary[name] = {"error": output.decode(errors="replace")[-500:]}
            continue
        text = svg.read_text()
        samples = total_samples(text)
        summary[name] = {
            "svg": svg.name,
            "bytes": svg.stat().st_size,
            "samples": samples,
            # Non-idle samples over the samples a fully busy thread would give: CPU use, in cores.
            "busy_cores": round(samples / (rate * duration_s), 2),
            "top_self": top_self(text),
            "top_app_inclusive": top_inclusive(text, "crm_"),
        }
    return summary


def top_self(svg_text: str, top: int = 8) -> list[dict[str, Any]]:
    """Frames with the most samples of their own (not in a callee), as share of all samples."""
    frames = _frames(svg_text)
    if not frames:
        return []
    levels = sorted({f[1] for f in frames})
    step = min((b - a for a, b in itertools.pairwise(levels)), default=0.0)
    root_y = next((f[1] for f in frames if f[0] == "all"), levels[0])
    # py-spy draws the root on top (callees below, larger y); a flame graph the other way round.
    child_offset = step if root_y == levels[0] else -step
    by_level: dict[float, list[tuple[str, float, int, int]]] = {y: [] for y in levels}
    for f in frames:
        by_level[f[1]].append(f)
    total = max(f[3] for f in frames)
    own: Counter[str] = Counter()
    for name, y, x, w in frames:
        if name == "all":
            continue
        below = sum(c[3] for c in by_level.get(y + child_offset, []) if x <= c[2] and c[2] + c[3] <= x + w)
        own[name] += w - below
    return [{"frame": name, "self_pct": round(100 * n / total, 1)} for name, n in own.most_common(top)]


def _frames(svg_text: str) -> list[tuple[str, float, int, int]]:
    return [(html.unescape(m["name"]), float(m["y"]), int(m["x"]), int(m["w"])) for m in _FRAME.finditer(svg_text)]


def total_samples(svg_text: str) -> int:
    return max((f[3] for f in _frames(svg_text)), default=0)


def top_inclusive(svg_text: str, module_prefix: str, top: int = 6) -> list[dict[str, Any]]:
    """Frames of our own code (``module_prefix`` in the file) with the most samples including callees."""
    frames = _frames(svg_text)
    total = max((f[3] for f in frames), default=0)
    spans: dict[str, set[tuple[int, int]]] = {}
    for name, _, x, w in frames:
        if f"({module_prefix}" in name and not name.startswith(_ENTRY_FRAMES):
            spans.setdefault(name, set()).add((x, w))
    inclusive = Counter({name: _covered(s) for name, s in spans.items()})
    return [{"frame": name, "pct": round(100 * n / total, 1)} for name, n in inclusive.most_common(top)]


def _covered(spans: set[tuple[int, int]]) -> int:
    """Samples under the union of ``spans`` (a recursive frame is counted once)."""
    covered, end = 0, -1
    for x, w in sorted(spans):
        start, stop = max(x, end), x + w
        if stop > start:
            covered += stop - start
            end = stop
    return covered
