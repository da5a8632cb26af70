"""Training hyperparameters shared by every arm, devices, and the seeds of random streams."""

from __future__ import annotations

import math
import re
import zlib
from dataclasses import dataclass

import numpy as np
import torch

from .._exceptions import ConfigError
from .._validation import Interval, Options, SequenceOf, check_param, validate_params
from ..defaults import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_EPOCHS,
    DEFAULT_HIDDEN,
    DEFAULT_LR,
    DEFAULT_OPTIMIZER,
    DEVICE_CHOICES,
    OPTIMIZER_CHOICES,
)

OPTIMIZERS = OPTIMIZER_CHOICES

_WIDTH = re.compile(r"[0-9]+")


def parse_hidden_layers(text: str) -> tuple[int, ...]:
    """Hidden layer widths from text: ``"64,32"`` -> ``(64, 32)``; empty -> ``()``, a linear model.

    The text form of :attr:`TrainingConfig.hidden` that front ends take from their users.
    Spaces around the widths are ignored; anything but comma-separated positive
    integers is a :class:`audit.ConfigError` that names ``hidden`` and the text.

    Examples
    --------
    >>> parse_hidden_layers("64, 32")
    (64, 32)
    >>> parse_hidden_layers("")
    ()
    >>> parse_hidden_layers("64;32")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    audit._exceptions.ConfigError: hidden must be comma-separated positive integers ..., not '64;32'
    """
    if not isinstance(text, str):
        raise ConfigError(f"hidden must be text such as '64,32', not {text!r}", param="hidden")
    if not text.strip():
        return ()
    pieces = [piece.strip() for piece in text.split(",")]
    if not all(_WIDTH.fullmatch(piece) for piece in pieces):
        raise ConfigError(
            "hidden must be comma-separated positive integers (e.g. '64,32'; empty for a linear "
            f"model), not {text!r}", param="hidden")
    widths = tuple(int(piece) for piece in pieces)
    if any(w < 1 for w in widths):
        raise ConfigError(f"hidden layer widths must be positive, not {text!r}", param="hidden")
    return widths


@dataclass(frozen=True, kw_only=True)
class TrainingConfig:
    """Hyperparameters shared by every arm of an audit.

    Attributes
    ----------
    hidden
        Hidden layer widths of the MLP; ``()`` is a linear/logistic model.
    epochs
        Passes over the training rows (for DP-SGD: ``epochs / q`` Poisson steps).
    batch_size
        Mini-batch size (for DP-SGD the *expected* batch size).
    lr
        Learning rate.
    optimizer
        ``"adam"`` or ``"sgd"`` (momentum 0.9).
    """

    hidden: tuple[int, ...] = DEFAULT_HIDDEN
    epochs: int = DEFAULT_EPOCHS
    batch_size: int = DEFAULT_BATCH_SIZE
    lr: float = DEFAULT_LR
    optimizer: str = DEFAULT_OPTIMIZER

    def __post_init__(self) -> None:
        validate_params("TrainingConfig", self, {
            "hidden": SequenceOf(Interval(int, 1, None)),
            "epochs": Interval(int, 1, None),
            "batch_size": Interval(int, 1, None),
            "lr": Interval(float, 0, math.inf, closed="neither"),
            "optimizer": Options(OPTIMIZERS),
        })


_STREAMS = {"sampling": 1, "noise": 2, "dropout": 3}


def stream_seed(seed: int, key: str, purpose: str) -> int:
    """Seed of an independent random stream for (training seed, arm, purpose).

    Streams for Poisson sampling, DP noise and dropout masks are derived with
    ``numpy.random.SeedSequence`` from the training seed, the arm's name and the
    purpose, so two arms trained with the same seed (e.g. two epsilons) never share
    draws or noise, and no stream coincides with another seed's initialisation.
    Initialisation itself uses ``torch.manual_seed(seed)`` so that every arm of a
    seed starts from the same weights.
    """
    entropy = [int(seed) & 0xFFFFFFFF, zlib.crc32(key.encode("utf-8")), _STREAMS[purpose], 0x5EED]
    return int(np.random.SeedSequence(entropy).generate_state(2, dtype=np.uint32).astype(np.uint64)
               @ np.array([1, 2**32], dtype=np.uint64)) & 0x7FFFFFFFFFFFFFFF


def resolve_device(device: str) -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; ``"cuda"`` without a GPU is an error."""
    device = check_param("", "device", device, Options(DEVICE_CHOICES))
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' requested but no CUDA GPU is available; use device='cpu' "
                          "or device='auto'", param="device", fix={"device": "cpu"})
    return torch.device(device)
