"""What CPU this is: its model name and the vector / matrix ISA features that decide which kernels run.

Benchmarks print `cpu_description()` first (the same code runs ~1.7x slower per frame on one x86-64
than on another, so only ratios compare across machines), and the viewer asks `cpu_bf16_units()`
whether bf16 previews can pay.
"""

from __future__ import annotations

ISA_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16")
"""The /proc/cpuinfo flags that change which oneDNN / ATen kernels a frame takes, in report order."""


def read_cpuinfo() -> str:
    """/proc/cpuinfo's text, or '' where there is none (not Linux)."""
    try:
        with open("/proc/cpuinfo") as f:
            return f.read()
    except OSError:
        return ""


def _field(cpuinfo: str, name: str) -> str:
    """The first value of field `name` in cpuinfo text, '' when absent."""
    return next(
        (
            line.split(":", 1)[1].strip()
            for line in cpuinfo.splitlines()
            if line.split(":", 1)[0].strip() == name and ":" in line
        ),
        "",
    )


def cpu_flags(cpuinfo: str | None = None) -> set[str]:
    """Every flag of the first processor in cpuinfo (read from /proc when None)."""
    return set(_field(read_cpuinfo() if cpuinfo is None else cpuinfo, "flags").split())


def cpu_bf16_units(cpuinfo: str | None = None) -> list[str]:
    """The CPU's bf16 matrix features (AMX, AVX512-BF16) named in /proc/cpuinfo; empty where unknown.

    bf16 can pay only with these; elsewhere bf16 is emulated and slower (even here the fused fp32 path is faster)."""
    flags = cpu_flags(cpuinfo)
    return [f for f in ("amx_bf16", "avx512_bf16") if f in flags]


def cpu_description(cpuinfo: str | None = None) -> str:
    """'<model name> (ISA: avx2 avx512f ...; N logical CPUs)': the line a benchmark prints first."""
    info = read_cpuinfo() if cpuinfo is None else cpuinfo
    model = _field(info, "model name") or "unknown CPU"
    flags = cpu_flags(info)
    isa = " ".join(f for f in ISA_FLAGS if f in flags) or "none of " + "/".join(ISA_FLAGS)
    count = sum(1 for line in info.splitlines() if line.split(":", 1)[0].strip() == "processor")
    return f"CPU: {model} (ISA: {isa}; {count} logical CPUs)"
