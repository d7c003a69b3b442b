"""onnxruntime execution providers by setting name (``engine.execution_provider``), and the check that the
installed onnxruntime has the one asked for.

Each name maps to the providers an onnxruntime session is given, best first; CPU closes every list,
so operators a GPU provider lacks still run. The package named is the onnxruntime build that has the
provider (they replace one another: one ``onnxruntime*`` package per environment).
"""

from __future__ import annotations

from collections.abc import Iterable

from facegate.core.errors import ConfigError

CPU = "CPUExecutionProvider"
# name -> (the session's providers, best first; the pip package whose onnxruntime has the first)
PROVIDERS: dict[str, tuple[tuple[str, ...], str]] = {
    "cpu": ((CPU,), "onnxruntime"),
    "cuda": (("CUDAExecutionProvider", CPU), "onnxruntime-gpu"),
    "tensorrt": (("TensorrtExecutionProvider", "CUDAExecutionProvider", CPU), "onnxruntime-gpu"),
    "openvino": (("OpenVINOExecutionProvider", CPU), "onnxruntime-openvino"),
    "rocm": (("ROCMExecutionProvider", CPU), "onnxruntime-rocm"),
}


class ProviderUnavailable(ConfigError):
    """The execution provider asked for is not in the installed onnxruntime."""

    code = "provider_unavailable"


def session_providers(name: str, available: Iterable[str] | None = None) -> list[str]:
    """The providers an onnxruntime session is given for ``name`` (those of its list onnxruntime has).

    Raises :class:`ProviderUnavailable`, naming the package to install, when the installed onnxruntime
    (``available``: ``onnxruntime.get_available_providers()`` unless given) lacks the provider asked for.
    """
    if name not in PROVIDERS:
        raise ConfigError(f"execution_provider must be one of {tuple(PROVIDERS)}; got {name!r}")
    wanted, package = PROVIDERS[name]
    if available is None:
        import onnxruntime

        available = onnxruntime.get_available_providers()
    available = set(available)
    if wanted[0] not in available:
        raise ProviderUnavailable(
            f"execution_provider {name!r} needs {wanted[0]}, which the installed onnxruntime lacks "
            f"(it has {', '.join(sorted(available)) or 'none'}): install {package} in place of onnxruntime "
            f"(pip uninstall -y onnxruntime {package} && pip install {package}; docs/deploy.md, GPU), "
            f"or set execution_provider to 'cpu'"
        )
    return [p for p in wanted if p in available]
