"""Decision presets (the share of strangers that may be given a name, FPIR) and the faces' quality classes."""

from __future__ import annotations

from facegate.core.errors import ConfigError

# doors (strict), everyday use (balanced), sorting photos (lenient)
PRESETS = {"strict": 0.001, "balanced": 0.01, "lenient": 0.05}
DEFAULT_PRESET = "balanced"


def target_fpir(preset: str, fpir: float | None = None) -> float:
    """The FPIR a preset stands for, or ``fpir`` when one is set explicitly."""
    if fpir is not None:
        if not 1e-6 <= fpir <= 0.5:
            raise ConfigError(f"target FPIR {fpir} is outside [0.000001, 0.5]")
        return float(fpir)
    try:
        return PRESETS[preset]
    except KeyError:
        raise ConfigError(f"unknown decision preset {preset!r}; presets are {', '.join(PRESETS)}") from None


# what makes a face's similarities less telling (facegate.gallery.openset.quality_class); stored with templates
QUALITY_CLASSES = ("ok", "small", "greyscale", "compressed", "blurry")
