"""Episodes on the device: ``EpisodeStore`` (flat ragged streams), ``sample_windows`` (training
windows cut inside ``jit``) and anchor sampling (uniform, weighted, epochs).

docs/episodes.md is the guide; docs/ops/sample_windows.md the op's contract.
"""

from .sampling import AnchorTable, Anchors, EpochIterator
from .store import EpisodeStore, RaggedStream, StoreError
from .windows import MAX_WINDOWS, Window, WindowResult, sample_windows

__all__ = ["AnchorTable", "Anchors", "EpisodeStore", "EpochIterator", "MAX_WINDOWS",
           "RaggedStream", "StoreError", "Window", "WindowResult", "sample_windows"]
