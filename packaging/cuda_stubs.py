"""Stand-ins for the CUDA libraries that a CPU-only FaceGuard bundle must load but never calls.

The torch wheel pinned here is a CUDA build: ``libtorch.so`` and ``libtorch_python.so`` link
``libtorch_cuda.so``, which links cuBLAS(Lt), cuFFT, cuSPARSE(Lt), cuRAND, cuDNN, NCCL, NVRTC,
cuFile and NVSHMEM (about 1.9 GB together). The dynamic loader refuses to load torch without
files of those names, but on the CPU torch never calls into them: every CUDA code path
starts with the CUDA runtime (``libcudart``, kept real, 0.7 MB), which reports no device
(the bundle also hides GPUs with ``CUDA_VISIBLE_DEVICES=""``, see ``rthook_cpu_only.py``).

A stub has the real library's file name, SONAME, symbol versions and exported symbols
(functions, and objects of the same size), so the loader is satisfied; every function
prints which symbol was called and aborts, so a call that should never happen fails
loudly instead of computing garbage. This is the same idea as the link-time stubs the
CUDA toolkit ships in ``lib64/stubs``. Needs ``readelf`` (binutils) and a C compiler.
"""

from __future__ import annotations

import re
import subprocess
from collections import defaultdict
from pathlib import Path

_SYM = re.compile(
    r"^\s*\d+:\s+[0-9a-f]+\s+(?P<size>\d+|0x[0-9a-f]+)\s+(?P<type>\w+)\s+(?P<bind>\w+)"
    r"\s+\w+\s+(?P<ndx>\w+)\s+(?P<name>\S+)"
)


def _readelf(*args: str) -> str:
    return subprocess.run(["readelf", "-W", *args], check=True, capture_output=True,
                          text=True).stdout


def needed(lib: Path) -> list[str]:
    """DT_NEEDED entries (file names) of an ELF shared object."""
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", _readelf("-d", str(lib)))


def soname(lib: Path) -> str:
    found = re.search(r"\(SONAME\)\s+Library soname: \[([^\]]+)\]", _readelf("-d", str(lib)))
    return found.group(1) if found else lib.name


def exported_symbols(lib: Path) -> list[tuple[str, str | None, str, str, int]]:
    """(name, version or None, type, binding, size) of each symbol ``lib`` defines."""
    out = []
    for line in _readelf("--dyn-syms", str(lib)).splitlines():
        m = _SYM.match(line)
        if not m or m["ndx"] in ("UND", "ABS") or m["type"] not in (
                "FUNC", "IFUNC", "OBJECT", "TLS"):
            continue
        name, _, version = m["name"].replace("@@", "@").partition("@")
        if name in ("_init", "_fini"):  # the linker adds its own
            continue
        out.append((name, version or None, m["type"], m["bind"], int(m["size"], 0)))
    return out


def undefined_symbols(lib: Path) -> set[str]:
    """Names of the symbols ``lib`` imports from other libraries."""
    names = set()
    for line in _readelf("--dyn-syms", str(lib)).splitlines():
        m = _SYM.match(line)
        if m and m["ndx"] == "UND":
            names.add(m["name"].partition("@")[0])
    return names


def runtime_symbols() -> set[str]:
    """Names the C and C++ runtimes define: a stub must never shadow them.

    Some CUDA libraries re-export parts of libstdc++ (``operator delete``, say); a stub
    exporting those would take them over for the whole process.
    """
    names = set()
    for lib in ("libc.so.6", "libm.so.6", "libstdc++.so.6", "libgcc_s.so.1"):
        path = subprocess.run(["cc", f"-print-file-name={lib}"], check=True,
                              capture_output=True, text=True).stdout.strip()
        if not Path(path).is_file():
            raise FileNotFoundError(f"cannot find the system's {lib} (cc says {path!r})")
        names |= {name for name, *_ in exported_symbols(Path(path))}
    return names


def _assembly(symbols: list[tuple[str, str | None, str, str, int]], lib: str) -> str:
    """GNU assembler text: one aborting entry per function, zeroed storage per object."""
    lines = []
    for i, (name, _, kind, bind, size) in enumerate(symbols):
        scope = ".weak" if bind == "WEAK" else ".globl"
        if kind in ("FUNC", "IFUNC"):
            lines += [".text", f"{scope} {name}", f".type {name}, @function", f"{name}:",
                      f"  leaq .Lname{i}(%rip), %rdi", "  jmp fg_stub_called",
                      ".section .rodata", f".Lname{i}: .asciz \"{lib}: {name}\""]
        else:
            section = '.section .tbss,"awT",@nobits' if kind == "TLS" else ".bss"
            typ = "@tls_object" if kind == "TLS" else "@object"
            lines += [section, f"{scope} {name}", f".type {name}, {typ}",
                      f".size {name}, {max(size, 1)}", f"{name}: .zero {max(size, 1)}"]
    lines.append('.section .note.GNU-stack,"",@progbits')  # no executable stack
    return "\n".join(lines) + "\n"


_HELPER = r"""
#include <stdio.h>
#include <stdlib.h>
__attribute__((visibility("hidden"), noreturn, used))
void fg_stub_called(const char *what) {
    fprintf(stderr, "FaceGuard is a CPU-only build: CUDA stub %s was called\n", what);
    abort();
}
"""


def make_stub(real: Path, out: Path, workdir: Path, wanted: set[str] | None = None) -> Path:
    """Compile a stub of the shared library ``real`` to ``out`` (same SONAME and versions).

    It exports the symbols of ``real`` that are in ``wanted`` (default: all of them).
    """
    symbols = [s for s in exported_symbols(real) if wanted is None or s[0] in wanted]
    workdir.mkdir(parents=True, exist_ok=True)
    stem = real.name.replace(".", "_")
    asm, helper, script = (workdir / f"{stem}{ext}" for ext in (".S", "_helper.c", ".map"))
    asm.write_text(_assembly(symbols, real.name))
    helper.write_text(_HELPER)
    cmd = ["cc", "-shared", "-fPIC", "-O1", "-o", str(out), str(asm), str(helper),
           f"-Wl,-soname,{soname(real)}"]
    by_version: dict[str, list[str]] = defaultdict(list)
    for name, version, *_ in symbols:
        by_version[version].append(name)
    if any(by_version):
        # The same version nodes as the real library, so versioned references resolve
        # (unversioned names, if any, join the first node; the helper stays local).
        nodes = [v for v in by_version if v]
        by_version[nodes[0]] += by_version.pop(None, [])
        script.write_text("".join(
            f"{v} {{ global: {' '.join(f'{n};' for n in by_version[v])}"
            f"{' local: *;' if i == 0 else ''} }};\n" for i, v in enumerate(nodes)))
        cmd.append(f"-Wl,--version-script={script}")
    out.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(cmd, check=True)
    return out
